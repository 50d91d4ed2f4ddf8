#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The plugin against the kubelet stand-in, over real Unix sockets.

mod common;

use common::{Event, FakeMachine, Kubelet, Plugin, config, eventually, short_dir};
use device_plugin::proto::{
    AllocateRequest, ContainerAllocateRequest, ContainerPreferredAllocationRequest, DeviceSpec,
    Empty, PreferredAllocationRequest,
};
use device_plugin::{
    ENCLAVE_RESOURCE, EPC_RESOURCE, PROVISION_RESOURCE, ResourceKind, ids, listing,
};

fn allocate_request(ids: &[String]) -> AllocateRequest {
    AllocateRequest {
        container_requests: vec![ContainerAllocateRequest {
            devices_ids: ids.to_vec(),
        }],
    }
}

fn pairs(specs: &[DeviceSpec]) -> Vec<(String, String, String)> {
    specs
        .iter()
        .map(|s| {
            (
                s.host_path.clone(),
                s.container_path.clone(),
                s.permissions.clone(),
            )
        })
        .collect()
}

fn rw(host: &str, container: &str) -> (String, String, String) {
    (host.to_owned(), container.to_owned(), "rw".to_owned())
}

#[tokio::test]
async fn registers_every_resource_and_lists_its_devices() {
    let machine = FakeMachine::new(&["sgx_enclave", "sgx_provision"], &[64, 64]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let plugin = Plugin::start(config(dir.path()), machine.platform());

    let mut registered = Vec::new();
    while registered.len() < 3 {
        if let Event::Registered(req) = kubelet.next().await {
            assert_eq!(req.version, "v1beta1");
            let options = req.options.unwrap();
            assert!(!options.get_preferred_allocation_available && !options.pre_start_required);
            assert!(
                dir.path().join(&req.endpoint).exists(),
                "the plugin listens before registering"
            );
            registered.push((req.resource_name, req.endpoint));
        }
    }
    registered.sort();
    assert_eq!(
        registered,
        [
            (
                EPC_RESOURCE.to_owned(),
                "confcom-sgx_epc_mem_in_MiB.sock".to_owned()
            ),
            (
                ENCLAVE_RESOURCE.to_owned(),
                "confcom-enclave.sock".to_owned()
            ),
            (
                PROVISION_RESOURCE.to_owned(),
                "confcom-provision.sock".to_owned()
            ),
        ]
    );

    let epc = kubelet.list_of(EPC_RESOURCE).await;
    assert_eq!(epc.devices.len(), 128);
    assert!(epc.devices.iter().all(|d| d.health == "Healthy"));
    let mut seen: Vec<u64> = epc
        .devices
        .iter()
        .map(|d| ids::decode(&d.id).unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..128).collect::<Vec<_>>());
    // Topology from the two sysfs NUMA nodes fits at this size.
    let node_of = |index: usize| epc.devices[index].topology.as_ref().unwrap().nodes[0].id;
    assert_eq!(
        (node_of(0), node_of(63), node_of(64), node_of(127)),
        (0, 0, 1, 1)
    );

    for slots in [ENCLAVE_RESOURCE, PROVISION_RESOURCE] {
        let list = kubelet.list_of(slots).await;
        assert_eq!(list.devices.len(), 110, "{slots}");
        assert!(list.devices.iter().all(|d| d.topology.is_none()));
    }
    eventually("ready", || plugin.readiness.is_ready()).await;
    assert_eq!(plugin.metrics.registrations_ok(EPC_RESOURCE), 1);

    let options = kubelet
        .client(EPC_RESOURCE)
        .get_device_plugin_options(Empty {})
        .await
        .unwrap()
        .into_inner();
    assert!(!options.get_preferred_allocation_available);
    plugin.shutdown().await.unwrap();
}

async fn allocate_with_layout(
    nodes: &[&str],
) -> (
    Vec<(String, String, String)>,
    Option<Vec<(String, String, String)>>,
) {
    let machine = FakeMachine::new(nodes, &[16]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let plugin = Plugin::start(config(dir.path()), machine.platform());
    let epc = kubelet.list_of(EPC_RESOURCE).await;
    assert_eq!(epc.devices.len(), 16);
    let ids: Vec<String> = epc.devices.iter().take(4).map(|d| d.id.clone()).collect();
    let response = kubelet
        .client(EPC_RESOURCE)
        .allocate(allocate_request(&ids))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.container_responses.len(), 1);
    let epc_specs = pairs(&response.container_responses[0].devices);

    let enclave = kubelet.list_of(ENCLAVE_RESOURCE).await;
    let enclave_ids = vec![enclave.devices[0].id.clone()];
    let enclave_response = kubelet
        .client(ENCLAVE_RESOURCE)
        .allocate(allocate_request(&enclave_ids))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        pairs(&enclave_response.container_responses[0].devices),
        epc_specs,
        "enclave slots grant the same nodes"
    );

    let provision = kubelet.list_of(PROVISION_RESOURCE).await;
    let provision_specs = if provision.devices.is_empty() {
        None
    } else {
        let ids = vec![provision.devices[0].id.clone()];
        let response = kubelet
            .client(PROVISION_RESOURCE)
            .allocate(allocate_request(&ids))
            .await
            .unwrap()
            .into_inner();
        Some(pairs(&response.container_responses[0].devices))
    };
    plugin.shutdown().await.unwrap();
    (epc_specs, provision_specs)
}

#[tokio::test]
async fn allocate_grants_in_tree_nodes_with_dcap_aliases() {
    let (epc, provision) = allocate_with_layout(&["sgx_enclave", "sgx_provision"]).await;
    assert_eq!(
        epc,
        [
            rw("/dev/sgx_enclave", "/dev/sgx_enclave"),
            rw("/dev/sgx_enclave", "/dev/sgx/enclave")
        ]
    );
    assert_eq!(
        provision.unwrap(),
        [
            rw("/dev/sgx_provision", "/dev/sgx_provision"),
            rw("/dev/sgx_provision", "/dev/sgx/provision")
        ]
    );
}

#[tokio::test]
async fn allocate_grants_dcap_nodes_with_in_tree_aliases() {
    let (epc, provision) = allocate_with_layout(&["sgx/enclave", "sgx/provision"]).await;
    assert_eq!(
        epc,
        [
            rw("/dev/sgx/enclave", "/dev/sgx/enclave"),
            rw("/dev/sgx/enclave", "/dev/sgx_enclave")
        ]
    );
    assert_eq!(
        provision.unwrap(),
        [
            rw("/dev/sgx/provision", "/dev/sgx/provision"),
            rw("/dev/sgx/provision", "/dev/sgx_provision")
        ]
    );
}

#[tokio::test]
async fn allocate_grants_legacy_isgx_alone_and_no_provision() {
    let (epc, provision) = allocate_with_layout(&["isgx"]).await;
    assert_eq!(epc, [rw("/dev/isgx", "/dev/isgx")]);
    assert_eq!(
        provision, None,
        "the legacy driver has no provision node: zero provision devices"
    );
}

#[tokio::test]
async fn allocate_passes_both_layouts_through_when_both_exist() {
    let (epc, _) = allocate_with_layout(&[
        "sgx_enclave",
        "sgx/enclave",
        "sgx_provision",
        "sgx/provision",
    ])
    .await;
    assert_eq!(
        epc,
        [
            rw("/dev/sgx_enclave", "/dev/sgx_enclave"),
            rw("/dev/sgx/enclave", "/dev/sgx/enclave")
        ]
    );
}

#[tokio::test]
async fn simulate_advertises_without_hardware_and_sets_the_env() {
    let machine = FakeMachine::new(&[], &[]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let mut config = config(dir.path());
    config.simulate = true;
    config.epc_mib = Some(300);
    config.enclave_limit = 5;
    let plugin = Plugin::start(config, machine.platform());
    let epc = kubelet.list_of(EPC_RESOURCE).await;
    assert_eq!(epc.devices.len(), 300);
    assert_eq!(*plugin.epc_bytes.borrow(), Some(300 * 1024 * 1024));
    assert_eq!(kubelet.list_of(ENCLAVE_RESOURCE).await.devices.len(), 5);
    let ids: Vec<String> = epc.devices.iter().map(|d| d.id.clone()).collect();
    let response = kubelet
        .client(EPC_RESOURCE)
        .allocate(allocate_request(&ids))
        .await
        .unwrap()
        .into_inner();
    let container = &response.container_responses[0];
    assert!(container.devices.is_empty());
    assert_eq!(
        container.envs.get("SGX_SIMULATION").map(String::as_str),
        Some("1")
    );
    plugin.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_sgx_means_zero_devices_not_a_crash() {
    let machine = FakeMachine::new(&[], &[]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let plugin = Plugin::start(config(dir.path()), machine.platform());
    for resource in [EPC_RESOURCE, ENCLAVE_RESOURCE, PROVISION_RESOURCE] {
        assert!(
            kubelet.list_of(resource).await.devices.is_empty(),
            "{resource}"
        );
    }
    eventually("ready (registered with zero devices)", || {
        plugin.readiness.is_ready()
    })
    .await;
    let err = kubelet
        .client(EPC_RESOURCE)
        .allocate(allocate_request(&["0".to_owned()]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    plugin.shutdown().await.unwrap();
}

#[tokio::test]
async fn device_node_loss_and_return_are_sent_as_health_changes() {
    let machine = FakeMachine::new(&["sgx_enclave", "sgx_provision"], &[32]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let mut plugin = Plugin::start(config(dir.path()), machine.platform());
    let first = kubelet.list_of(EPC_RESOURCE).await;
    assert!(first.devices.iter().all(|d| d.health == "Healthy"));
    let ids: Vec<String> = first.devices.iter().take(2).map(|d| d.id.clone()).collect();
    assert_eq!(
        *plugin.epc_bytes.borrow_and_update(),
        Some(32 * 1024 * 1024)
    );

    machine.remove_node("sgx_enclave");
    let lost = kubelet.list_of(EPC_RESOURCE).await;
    assert_eq!(lost.devices.len(), 32);
    // The health change re-read the EPC; its size is the same, so its watchers were not woken.
    assert!(!plugin.epc_bytes.has_changed().unwrap());
    assert!(lost.devices.iter().all(|d| d.health == "Unhealthy"));
    let enclave = kubelet.list_of(ENCLAVE_RESOURCE).await;
    assert!(enclave.devices.iter().all(|d| d.health == "Unhealthy"));
    let err = kubelet
        .client(EPC_RESOURCE)
        .allocate(allocate_request(&ids))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("unhealthy"), "{err}");

    machine.add_node("sgx_enclave");
    let back = kubelet.list_of(EPC_RESOURCE).await;
    assert!(back.devices.iter().all(|d| d.health == "Healthy"));
    kubelet
        .client(EPC_RESOURCE)
        .allocate(allocate_request(&ids))
        .await
        .unwrap();
    plugin.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_allocate_requests_get_clear_errors() {
    let machine = FakeMachine::new(&["sgx_enclave"], &[8]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let plugin = Plugin::start(config(dir.path()), machine.platform());
    kubelet.list_of(EPC_RESOURCE).await;
    let mut client = kubelet.client(EPC_RESOURCE);

    let cases: Vec<(AllocateRequest, &str)> = vec![
        (
            AllocateRequest {
                container_requests: vec![],
            },
            "names no container",
        ),
        (allocate_request(&[]), "names no device"),
        (allocate_request(&[ids::encode(8)]), "unknown device id"),
        (
            allocate_request(&["sgx-epc-0".to_owned()]),
            "unknown device id",
        ),
        (
            allocate_request(&["1".to_owned(), "1".to_owned()]),
            "appears twice",
        ),
    ];
    for (request, message) in cases {
        let err = client.allocate(request).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
        assert!(err.message().contains(message), "{err}");
    }
    let preferred = PreferredAllocationRequest {
        container_requests: vec![ContainerPreferredAllocationRequest {
            available_device_i_ds: vec!["0".to_owned()],
            must_include_device_i_ds: vec![],
            allocation_size: 1,
        }],
    };
    let err = client
        .get_preferred_allocation(preferred)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    // The plugin still serves after the refusals.
    client
        .allocate(allocate_request(&["0".to_owned()]))
        .await
        .unwrap();
    plugin.shutdown().await.unwrap();
}

#[tokio::test]
async fn re_registers_after_kubelet_restart_in_order() {
    let machine = FakeMachine::new(&["sgx_enclave", "sgx_provision"], &[16]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let plugin = Plugin::start(config(dir.path()), machine.platform());
    for resource in [EPC_RESOURCE, ENCLAVE_RESOURCE, PROVISION_RESOURCE] {
        kubelet.list_of(resource).await;
    }
    eventually("ready", || plugin.readiness.is_ready()).await;

    kubelet.restart().await;
    // Order per resource: the old stream ends, then Register on the new kubelet.sock, then a full
    // device list on the new stream.
    let mut state: std::collections::HashMap<String, Vec<&str>> = Default::default();
    while state
        .values()
        .filter(|steps| steps.last() == Some(&"list"))
        .count()
        < 3
    {
        match kubelet.next().await {
            Event::StreamEnded { resource, .. } => state.entry(resource).or_default().push("ended"),
            Event::Registered(req) => state
                .entry(req.resource_name)
                .or_default()
                .push("registered"),
            Event::Options { resource, .. } => state.entry(resource).or_default().push("options"),
            Event::List { resource, list } => {
                assert_eq!(
                    list.devices.len(),
                    if resource == EPC_RESOURCE { 16 } else { 110 }
                );
                state.entry(resource).or_default().push("list");
            }
        }
    }
    for (resource, steps) in &state {
        assert_eq!(
            steps,
            &["ended", "registered", "options", "list"],
            "{resource}"
        );
    }
    for socket in [
        "confcom-sgx_epc_mem_in_MiB.sock",
        "confcom-enclave.sock",
        "confcom-provision.sock",
    ] {
        assert!(dir.path().join(socket).exists(), "{socket} listens again");
    }
    eventually("second registration counted", || {
        plugin.metrics.registrations_ok(EPC_RESOURCE) == 2
    })
    .await;
    eventually("kubelet restart counted", || {
        plugin.metrics.kubelet_restarts() == 1
    })
    .await;
    eventually("ready again", || plugin.readiness.is_ready()).await;
    // The new connection serves Allocate.
    kubelet
        .client(EPC_RESOURCE)
        .allocate(allocate_request(&["3".to_owned()]))
        .await
        .unwrap();
    plugin.shutdown().await.unwrap();
}

#[tokio::test]
async fn registration_is_retried_until_kubelet_appears() {
    let machine = FakeMachine::new(&["sgx_enclave"], &[4]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::not_started(dir.path());
    let mut config = config(dir.path());
    config.resources = vec![(ResourceKind::Epc, EPC_RESOURCE.to_owned())];
    let plugin = Plugin::start(config, machine.platform());
    let socket = dir.path().join("confcom-sgx_epc_mem_in_MiB.sock");
    eventually("plugin socket", || socket.exists()).await;
    assert!(!plugin.readiness.is_ready());
    kubelet.serve();
    match kubelet
        .until("registration", |e| matches!(e, Event::Registered(_)))
        .await
    {
        Event::Registered(req) => assert_eq!(req.resource_name, EPC_RESOURCE),
        _ => unreachable!(),
    }
    assert_eq!(kubelet.list_of(EPC_RESOURCE).await.devices.len(), 4);
    eventually("ready", || plugin.readiness.is_ready()).await;
    plugin.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_removes_our_sockets_only() {
    let machine = FakeMachine::new(&["sgx_enclave"], &[4]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let plugin = Plugin::start(config(dir.path()), machine.platform());
    for resource in [EPC_RESOURCE, ENCLAVE_RESOURCE, PROVISION_RESOURCE] {
        kubelet.list_of(resource).await;
    }
    plugin.shutdown().await.unwrap();
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["kubelet.sock"]);
    // kubelet sees the streams end.
    kubelet
        .until("stream end", |e| matches!(e, Event::StreamEnded { .. }))
        .await;
}

#[tokio::test]
async fn every_message_at_256_gib_passes_kubelets_receive_limit() {
    let machine = FakeMachine::new(&["sgx_enclave"], &[128 * 1024, 128 * 1024]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let mut config = config(dir.path());
    config.resources = vec![(ResourceKind::Epc, EPC_RESOURCE.to_owned())];
    let plugin = Plugin::start(config, machine.platform());
    // All healthy: every MiB listed, through a client limited like kubelet.
    let healthy = kubelet.list_of(EPC_RESOURCE).await;
    assert_eq!(healthy.devices.len(), 262_144);
    assert!(prost::Message::encoded_len(&healthy) <= listing::LIST_AND_WATCH_BUDGET);
    assert!(
        healthy
            .devices
            .iter()
            .all(|d| d.topology.is_none() && d.health == "Healthy")
    );
    // All unhealthy: still within the limit (the stream would end with an error otherwise).
    machine.remove_node("sgx_enclave");
    let unhealthy = kubelet.list_of(EPC_RESOURCE).await;
    assert!(prost::Message::encoded_len(&unhealthy) <= listing::LIST_AND_WATCH_BUDGET);
    assert!(
        unhealthy.devices.iter().all(|d| d.health == "Healthy"),
        "unhealthy devices are left out"
    );
    assert!(unhealthy.devices.is_empty());
    machine.add_node("sgx_enclave");
    assert_eq!(kubelet.list_of(EPC_RESOURCE).await.devices.len(), 262_144);
    plugin.shutdown().await.unwrap();
    // The stream ended cleanly, never with ResourceExhausted.
    match kubelet
        .until("stream end", |e| matches!(e, Event::StreamEnded { .. }))
        .await
    {
        Event::StreamEnded { error, .. } => assert_eq!(error, None),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn epc_beyond_one_message_is_capped() {
    let machine = FakeMachine::new(&["sgx_enclave"], &[]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let mut config = config(dir.path());
    config.resources = vec![(ResourceKind::Epc, EPC_RESOURCE.to_owned())];
    config.epc_mib = Some(512 * 1024);
    let plugin = Plugin::start(config, machine.platform());
    let list = kubelet.list_of(EPC_RESOURCE).await;
    assert_eq!(
        list.devices.len() as u64,
        listing::max_devices(listing::LIST_AND_WATCH_BUDGET)
    );
    assert_eq!(list.devices.len(), 262_408);
    plugin.shutdown().await.unwrap();
}

#[tokio::test]
async fn re_registers_when_only_kubelet_sock_is_recreated() {
    let machine = FakeMachine::new(&["sgx_enclave"], &[8]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let mut config = config(dir.path());
    config.resources = vec![(ResourceKind::Epc, EPC_RESOURCE.to_owned())];
    let plugin = Plugin::start(config, machine.platform());
    kubelet.list_of(EPC_RESOURCE).await;
    // A kubelet that does not clean the directory: only kubelet.sock is new.
    kubelet.stop().await;
    kubelet.serve();
    match kubelet
        .until("registration", |e| matches!(e, Event::Registered(_)))
        .await
    {
        Event::Registered(req) => assert_eq!(req.endpoint, "confcom-sgx_epc_mem_in_MiB.sock"),
        _ => unreachable!(),
    }
    assert_eq!(kubelet.list_of(EPC_RESOURCE).await.devices.len(), 8);
    eventually("second registration counted", || {
        plugin.metrics.registrations_ok(EPC_RESOURCE) == 2
    })
    .await;
    plugin.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_periodic_check_alone_recovers_from_a_kubelet_restart_and_a_lost_node() {
    let machine = FakeMachine::new(&["sgx_enclave"], &[8]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let mut config = config(dir.path());
    config.resources = vec![(ResourceKind::Epc, EPC_RESOURCE.to_owned())];
    config.inotify = false;
    let plugin = Plugin::start(config, machine.platform());
    kubelet.list_of(EPC_RESOURCE).await;

    kubelet.restart().await;
    let mut steps = Vec::new();
    while steps.last() != Some(&"list") {
        match kubelet.next().await {
            Event::StreamEnded { .. } => steps.push("ended"),
            Event::Registered(_) => steps.push("registered"),
            Event::Options { .. } => steps.push("options"),
            Event::List { .. } => steps.push("list"),
        }
    }
    assert_eq!(steps, ["ended", "registered", "options", "list"]);

    machine.remove_node("sgx_enclave");
    let lost = kubelet.list_of(EPC_RESOURCE).await;
    assert!(lost.devices.iter().all(|d| d.health == "Unhealthy"));
    plugin.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_epc_size_change_is_sent() {
    let machine = FakeMachine::new(&["sgx_enclave"], &[16]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let mut config = config(dir.path());
    config.resources = vec![(ResourceKind::Epc, EPC_RESOURCE.to_owned())];
    let mut plugin = Plugin::start(config, machine.platform());
    assert_eq!(kubelet.list_of(EPC_RESOURCE).await.devices.len(), 16);
    assert_eq!(*plugin.epc_bytes.borrow_and_update(), Some(16 << 20));
    // sysfs has no inotify: the periodic re-check reads it. A size that is not whole MiB counts
    // in whole MiB devices but in exact bytes on the EPC size watch.
    let x86 = machine
        .root
        .path()
        .join("sys/devices/system/node/node1/x86");
    std::fs::create_dir_all(&x86).unwrap();
    std::fs::write(
        x86.join("sgx_total_bytes"),
        format!("{}\n", (8 << 20) + 4096),
    )
    .unwrap();
    let grown = kubelet.list_of(EPC_RESOURCE).await;
    assert_eq!(grown.devices.len(), 24);
    assert!(plugin.epc_bytes.has_changed().unwrap());
    assert_eq!(*plugin.epc_bytes.borrow(), Some((24 << 20) + 4096));
    let node = |i: usize| grown.devices[i].topology.as_ref().unwrap().nodes[0].id;
    assert_eq!((node(15), node(16)), (0, 1));
    plugin.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_report_devices_registrations_and_allocations() {
    let machine = FakeMachine::new(&["sgx_enclave", "sgx_provision"], &[32]);
    let dir = short_dir("dp");
    let mut kubelet = Kubelet::start(dir.path());
    let plugin = Plugin::start(config(dir.path()), machine.platform());
    kubelet.list_of(EPC_RESOURCE).await;
    eventually("ready", || plugin.readiness.is_ready()).await;
    kubelet
        .client(EPC_RESOURCE)
        .allocate(allocate_request(&["0".to_owned(), "1".to_owned()]))
        .await
        .unwrap();
    let _ = kubelet
        .client(EPC_RESOURCE)
        .allocate(allocate_request(&["zzz".to_owned()]))
        .await
        .unwrap_err();
    let text = plugin.metrics_text();
    for line in [
        r#"confcom_device_plugin_devices{resource="kubernetes.azure.com/sgx_epc_mem_in_MiB",health="healthy"} 32"#,
        r#"confcom_device_plugin_devices{resource="sgx.intel.com/enclave",health="healthy"} 110"#,
        r#"confcom_device_plugin_registrations_total{resource="sgx.intel.com/provision",result="ok"} 1"#,
        r#"confcom_device_plugin_allocations_total{resource="kubernetes.azure.com/sgx_epc_mem_in_MiB"} 1"#,
        r#"confcom_device_plugin_allocated_devices_total{resource="kubernetes.azure.com/sgx_epc_mem_in_MiB"} 2"#,
        r#"confcom_device_plugin_allocation_errors_total{resource="kubernetes.azure.com/sgx_epc_mem_in_MiB",reason="unknown_device"} 1"#,
        "confcom_device_plugin_kubelet_restarts_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        text.contains("confcom_device_plugin_listandwatch_message_bytes{"),
        "{text}"
    );
    plugin.shutdown().await.unwrap();
}
