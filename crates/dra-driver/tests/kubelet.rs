#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The kubelet side end to end: a kubelet stand-in registers through the real registration
//! socket and calls NodePrepareResources / NodeUnprepareResources (v1 and v1beta1) on the real DRA
//! socket; the driver reads claims from an API-server stand-in and writes CDI specs checked against
//! a strict model of the CDI format.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;
use dra_driver::kubelet::proto::pluginregistration::RegistrationStatus;
use dra_driver::kubelet::proto::{v1, v1beta1};
use serde_json::json;

const NS: &str = "apps";
const U_OK: &str = "0c3e1c52-7d0b-4c5e-9d7c-000000000001";
const U_QH: &str = "a13e1c52-7d0b-4c5e-9d7c-000000000002";
const U_REPLACED: &str = "0c3e1c52-7d0b-4c5e-9d7c-000000000003";
const U_UNALLOC: &str = "0c3e1c52-7d0b-4c5e-9d7c-000000000004";
const U_OTHER: &str = "0c3e1c52-7d0b-4c5e-9d7c-000000000005";
const U_UNKNOWN_DEV: &str = "0c3e1c52-7d0b-4c5e-9d7c-000000000006";
const U_MISSING: &str = "0c3e1c52-7d0b-4c5e-9d7c-000000000007";
const U_BADCFG: &str = "0c3e1c52-7d0b-4c5e-9d7c-000000000008";
const SHARE: &str = "5b0f9e2a-1111-4222-8333-444455556666";

fn spec_path(cdi_root: &Path, uid: &str) -> PathBuf {
    cdi_root.join(format!("k8s.{DRIVER}-claim_{uid}.json"))
}

fn read_spec(path: &Path) -> common::cdi::Spec {
    common::cdi::check(&std::fs::read_to_string(path).unwrap())
}

fn serve_claims(api: &FakeApi) {
    // Class config wires the quote helper; the claim's own config (for its request) overrides it.
    api.put(claim(
        NS,
        "ok",
        U_OK,
        vec![result(
            "enclave/big",
            NODE,
            "epc",
            Some(SHARE),
            Some("64Mi"),
        )],
        vec![
            config("FromClass", &[], sgx(true, false)),
            config("FromClaim", &["enclave"], sgx(false, true)),
        ],
    ));
    api.put(claim(
        NS,
        "qh",
        U_QH,
        vec![result("enclave", NODE, "epc", None, None)],
        vec![config("FromClass", &[], sgx(true, false))],
    ));
    api.put(claim(
        NS,
        "replaced",
        "0c3e1c52-7d0b-4c5e-9d7c-00000000ffff",
        vec![result("enclave", NODE, "epc", None, None)],
        vec![],
    ));
    api.put(claim(NS, "unalloc", U_UNALLOC, vec![], vec![]));
    api.put(claim(
        NS,
        "other",
        U_OTHER,
        vec![result(
            "enclave",
            "sgx-node-2",
            "epc",
            Some(SHARE),
            Some("4Ki"),
        )],
        vec![],
    ));
    api.put(claim(
        NS,
        "unknown-dev",
        U_UNKNOWN_DEV,
        vec![result("enclave", NODE, "epc-numa7", None, None)],
        vec![],
    ));
    api.put(claim(
        NS,
        "badcfg",
        U_BADCFG,
        vec![result("enclave", NODE, "epc", None, None)],
        vec![config(
            "FromClaim",
            &[],
            json!({"apiVersion": dra_driver::names::config::API_VERSION, "kind": "SgxConfig",
                   "quoteHelper": true, "provison": true}),
        )],
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_registers_prepares_and_unprepares_over_the_real_sockets() {
    let root = short_tempdir();
    let config = config_in(root.path());
    std::fs::write(&config.boot_id_path, "boot-1\n").unwrap();
    let cdi_root = config.cdi_root.clone();
    let api = FakeApi::start().await;
    serve_claims(&api);
    let driver = Driver::start(config.clone(), in_tree_inventory(), &api);

    // Registration, as kubelet's plugin watcher does it.
    let mut kubelet = Kubelet::connect(&config.registry_dir).await;
    assert_eq!(
        registry_sockets(&config.registry_dir),
        [config.registry_dir.join(format!("{DRIVER}-reg.sock"))]
    );
    assert_eq!(kubelet.info.r#type, "DRAPlugin");
    assert_eq!(kubelet.info.name, DRIVER);
    let endpoint = PathBuf::from(&kubelet.info.endpoint);
    assert!(endpoint.is_absolute());
    assert_eq!(endpoint, config.plugins_dir.join(DRIVER).join("dra.sock"));
    assert!(is_socket(&endpoint));
    assert_eq!(
        kubelet.info.supported_versions,
        [
            "v1.DRAPlugin",
            "v1beta1.DRAPlugin",
            "v1alpha1.DRAResourceHealth"
        ]
    );
    kubelet
        .registration
        .notify_registration_status(RegistrationStatus {
            plugin_registered: true,
            error: String::new(),
        })
        .await
        .unwrap();
    let rejected = kubelet
        .registration
        .notify_registration_status(RegistrationStatus {
            plugin_registered: false,
            error: "RegisterPlugin error -- plugin already registered".into(),
        })
        .await
        .unwrap_err();
    assert!(
        rejected.message().contains("plugin already registered"),
        "{rejected}"
    );

    // An empty request is legal (liveness probes send one).
    let empty = kubelet.prepare(vec![]).await;
    assert!(empty.claims.is_empty());

    // One request with a good claim and every kind of bad one: each bad one fails alone.
    let response = kubelet
        .prepare(vec![
            v1_claim(NS, "ok", U_OK),
            v1_claim(NS, "replaced", U_REPLACED),
            v1_claim(NS, "unalloc", U_UNALLOC),
            v1_claim(NS, "other", U_OTHER),
            v1_claim(NS, "unknown-dev", U_UNKNOWN_DEV),
            v1_claim(NS, "missing", U_MISSING),
            v1_claim(NS, "badcfg", U_BADCFG),
        ])
        .await;
    let keys: BTreeSet<&str> = response.claims.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        U_OK,
        U_REPLACED,
        U_UNALLOC,
        U_OTHER,
        U_UNKNOWN_DEV,
        U_MISSING,
        U_BADCFG,
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, expected);
    let ok = &response.claims[U_OK];
    assert_eq!(ok.error, "");
    let cdi_name = format!("{U_OK}-epc-{SHARE}");
    assert_eq!(
        ok.devices,
        [v1::Device {
            request_names: vec!["enclave".into()],
            pool_name: NODE.into(),
            device_name: "epc".into(),
            cdi_device_ids: vec![format!("k8s.{DRIVER}/claim={cdi_name}")],
            share_id: Some(SHARE.into()),
        }]
    );
    let error = |uid: &str| response.claims[uid].error.clone();
    for (uid, words) in [
        (U_REPLACED, vec!["replaced", "00000000ffff"]),
        (U_UNALLOC, vec!["not allocated"]),
        (U_OTHER, vec![NODE, "sgx-node-2"]),
        (U_UNKNOWN_DEV, vec!["epc-numa7"]),
        (U_MISSING, vec!["not found"]),
        (U_BADCFG, vec!["provison"]),
    ] {
        let message = error(uid);
        assert!(response.claims[uid].devices.is_empty());
        for word in words {
            assert!(message.contains(word), "{uid}: {message:?} lacks {word:?}");
        }
        assert!(!spec_path(&cdi_root, uid).exists());
    }

    // The CDI spec: enclave node with the DCAP compatibility path, provision (claim config wins
    // over the class config), the consumed EPC; no quote-helper wiring.
    let path = spec_path(&cdi_root, U_OK);
    let spec = read_spec(&path);
    assert_eq!(spec.kind, format!("k8s.{DRIVER}/claim"));
    assert_eq!(spec.cdi_version, "0.5.0");
    assert_eq!(spec.devices.len(), 1);
    assert_eq!(spec.devices[0].name, cdi_name);
    let edits = &spec.devices[0].container_edits;
    let nodes: Vec<(&str, Option<&str>)> = edits
        .device_nodes
        .iter()
        .map(|n| (n.path.as_str(), n.host_path.as_deref()))
        .collect();
    assert_eq!(
        nodes,
        [
            ("/dev/sgx_enclave", None),
            ("/dev/sgx/enclave", Some("/dev/sgx_enclave")),
            ("/dev/sgx_provision", None),
            ("/dev/sgx/provision", Some("/dev/sgx_provision")),
        ]
    );
    assert_eq!(edits.env, [format!("SGX_EPC_BYTES={}", 64 << 20)]);
    assert!(edits.mounts.is_empty());
    let first_spec = std::fs::read(&path).unwrap();

    // v1beta1: no share_id; the class config wires the quote helper.
    let beta = kubelet
        .prepare_v1beta1(vec![v1beta1_claim(NS, "qh", U_QH)])
        .await;
    assert_eq!(beta.claims.len(), 1);
    assert_eq!(beta.claims[U_QH].error, "");
    assert_eq!(
        beta.claims[U_QH].devices,
        [v1beta1::Device {
            request_names: vec!["enclave".into()],
            pool_name: NODE.into(),
            device_name: "epc".into(),
            cdi_device_ids: vec![format!("k8s.{DRIVER}/claim={U_QH}-epc")],
        }]
    );
    let qh = read_spec(&spec_path(&cdi_root, U_QH));
    // The name starts with a letter and there are host paths: still 0.5.0.
    assert_eq!(qh.cdi_version, "0.5.0");
    let edits = &qh.devices[0].container_edits;
    assert_eq!(
        edits.env,
        [
            format!("SGX_EPC_BYTES={}", 1u64 << 30),
            "SGX_AESM_ADDR=1".into()
        ]
    );
    assert_eq!(edits.mounts.len(), 1);
    assert_eq!(edits.mounts[0].host_path, "/var/run/aesmd");
    assert_eq!(edits.mounts[0].container_path, "/var/run/aesmd");
    assert!(edits.mounts[0].options.contains(&"ro".to_owned()));
    assert!(
        !edits
            .device_nodes
            .iter()
            .any(|n| n.path.contains("provision"))
    );

    // Preparing again answers the same, from the checkpoint (no new API read).
    let gets = api.gets();
    let again = kubelet.prepare(vec![v1_claim(NS, "ok", U_OK)]).await;
    assert_eq!(again.claims[U_OK], *ok);
    assert_eq!(api.gets(), gets);

    // A wiped CDI directory (reboot of /var/run): the next prepare writes the spec again.
    std::fs::remove_dir_all(&cdi_root).unwrap();
    let again = kubelet.prepare(vec![v1_claim(NS, "ok", U_OK)]).await;
    assert_eq!(again.claims[U_OK], *ok);
    assert_eq!(std::fs::read(&path).unwrap(), first_spec);

    // Restart the driver between prepare and unprepare, after a reboot (new boot ID) that left a
    // stale spec behind.
    driver.stop().await;
    assert!(registry_sockets(&config.registry_dir).is_empty());
    assert!(!endpoint.exists());
    std::fs::write(&path, b"{}").unwrap();
    std::fs::write(&config.boot_id_path, "boot-2\n").unwrap();
    let driver = Driver::start(config.clone(), in_tree_inventory(), &api);
    let mut kubelet = Kubelet::connect(&config.registry_dir).await;
    let again = kubelet
        .prepare(vec![v1_claim(NS, "ok", U_OK), v1_claim(NS, "qh", U_QH)])
        .await;
    assert_eq!(again.claims[U_OK], *ok);
    assert_eq!(again.claims[U_QH].error, "");
    assert_eq!(std::fs::read(&path).unwrap(), first_spec);
    // The wiped directory took the other claim's spec too: written again.
    assert_eq!(read_spec(&spec_path(&cdi_root, U_QH)), qh);
    assert_eq!(api.gets(), gets);

    // Unprepare, across versions, with a claim never prepared: every claim has an entry.
    let un = kubelet
        .unprepare_v1beta1(vec![
            v1beta1_claim(NS, "ok", U_OK),
            v1beta1_claim(NS, "missing", U_MISSING),
        ])
        .await;
    assert_eq!(un.claims.len(), 2);
    assert!(un.claims.values().all(|c| c.error.is_empty()), "{un:?}");
    assert!(!path.exists());
    assert!(spec_path(&cdi_root, U_QH).exists());
    let un = kubelet.unprepare(vec![v1_claim(NS, "qh", U_QH)]).await;
    assert_eq!(un.claims[U_QH].error, "");
    assert!(!spec_path(&cdi_root, U_QH).exists());
    let checkpoint: serde_json::Value = serde_json::from_slice(
        &std::fs::read(config.plugins_dir.join(DRIVER).join("checkpoint.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(checkpoint["claims"], json!({}));
    assert_eq!(checkpoint["version"], json!(1));
    // Nothing but the specs was ever in the CDI directory (no temporary files left).
    assert_eq!(std::fs::read_dir(&cdi_root).unwrap().count(), 0);

    driver.stop().await;
    assert!(registry_sockets(&config.registry_dir).is_empty());
    assert_eq!(api.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_registration_socket_is_served_again() {
    let root = short_tempdir();
    let config = config_in(root.path());
    let api = FakeApi::start().await;
    let driver = Driver::start(config.clone(), in_tree_inventory(), &api);
    let _ = Kubelet::connect(&config.registry_dir).await;
    let reg = config.registry_dir.join(format!("{DRIVER}-reg.sock"));
    std::fs::remove_file(&reg).unwrap();
    eventually("the registration socket is back", || is_socket(&reg)).await;
    let kubelet = Kubelet::connect(&config.registry_dir).await;
    assert_eq!(kubelet.info.name, DRIVER);
    // The whole registry directory gone, as a kubelet with a wiped root dir would leave it (moved
    // away in one step, so the driver cannot race a recursive removal).
    std::fs::rename(&config.registry_dir, root.path().join("gone")).unwrap();
    eventually("the registration socket is back in a new directory", || {
        is_socket(&reg)
    })
    .await;
    let kubelet = Kubelet::connect(&config.registry_dir).await;
    assert_eq!(kubelet.info.name, DRIVER);
    // The DRA socket too.
    let dra = PathBuf::from(&kubelet.info.endpoint);
    std::fs::remove_file(&dra).unwrap();
    eventually("the DRA socket is back", || is_socket(&dra)).await;
    let mut kubelet = Kubelet::connect(&config.registry_dir).await;
    let empty = kubelet.prepare(vec![]).await;
    assert!(empty.claims.is_empty());
    driver.stop().await;
    assert!(!reg.exists() && !dra.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_node_gets_environment_only_specs() {
    let root = short_tempdir();
    let config = config_in(root.path());
    let api = FakeApi::start().await;
    let uid = "b83e1c52-7d0b-4c5e-9d7c-000000000009";
    api.put(claim(
        NS,
        "sim",
        uid,
        vec![result("enclave", NODE, "epc", Some(SHARE), Some("16Mi"))],
        vec![common::config("FromClass", &[], sgx(false, true))],
    ));
    let inventory = dra_driver::devices::simulated(256 << 20).unwrap();
    let driver = Driver::start(config.clone(), inventory, &api);
    let mut kubelet = Kubelet::connect(&config.registry_dir).await;
    let response = kubelet.prepare(vec![v1_claim(NS, "sim", uid)]).await;
    assert_eq!(response.claims[uid].error, "");
    let spec = read_spec(&spec_path(&config.cdi_root, uid));
    // The name starts with a letter and nothing else needs more than 0.3.0.
    assert_eq!(spec.cdi_version, "0.3.0");
    let edits = &spec.devices[0].container_edits;
    assert!(edits.device_nodes.is_empty());
    assert_eq!(
        edits.env,
        ["SGX_SIMULATION=1", &format!("SGX_EPC_BYTES={}", 16 << 20)]
    );
    driver.stop().await;
    assert_eq!(api.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_checkpoint_is_set_aside_and_the_driver_starts_empty() {
    let root = short_tempdir();
    let config = config_in(root.path());
    let dir = config.plugins_dir.join(DRIVER);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("checkpoint.json"),
        b"{\"version\": 1, \"claims\": [",
    )
    .unwrap();
    let api = FakeApi::start().await;
    api.put(claim(
        NS,
        "qh",
        U_QH,
        vec![result("enclave", NODE, "epc", None, None)],
        vec![],
    ));
    let driver = Driver::start(config.clone(), in_tree_inventory(), &api);
    let mut kubelet = Kubelet::connect(&config.registry_dir).await;
    let response = kubelet.prepare(vec![v1_claim(NS, "qh", U_QH)]).await;
    assert_eq!(response.claims[U_QH].error, "");
    assert_eq!(
        std::fs::read(dir.join("checkpoint.json.bad")).unwrap(),
        b"{\"version\": 1, \"claims\": ["
    );
    let checkpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("checkpoint.json")).unwrap()).unwrap();
    assert_eq!(checkpoint["claims"][U_QH]["name"], json!("qh"));
    driver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_watches_device_health_on_the_dra_socket() {
    use dra_driver::kubelet::proto::health::dra_resource_health_client::DraResourceHealthClient;
    use dra_driver::kubelet::proto::health::{HealthStatus, NodeWatchResourcesRequest};

    let root = short_tempdir();
    let config = config_in(root.path());
    let api = FakeApi::start().await;
    let driver = Driver::start(config.clone(), in_tree_inventory(), &api);
    let kubelet = Kubelet::connect(&config.registry_dir).await;
    // As kubelet opens it (every registered plugin, every 5 s until it answers).
    let endpoint = PathBuf::from(&kubelet.info.endpoint);
    let mut health = DraResourceHealthClient::new(channel(&endpoint).await);
    let mut stream = health
        .node_watch_resources(NodeWatchResourcesRequest {})
        .await
        .unwrap()
        .into_inner();
    // At once: every device, healthy, in the node's pool, with the timeout kubelet applies.
    let first = next_health(&mut stream).await;
    assert_eq!(first.devices.len(), 1, "{first:?}");
    let device = &first.devices[0];
    let id = device.device.as_ref().unwrap();
    assert_eq!(
        (id.pool_name.as_str(), id.device_name.as_str()),
        (NODE, "epc")
    );
    assert_eq!(device.health(), HealthStatus::Healthy);
    assert_eq!(device.health_check_timeout_seconds, 60);
    assert!(device.message.contains("inTree"), "{}", device.message);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - device.last_updated_time).abs() < 600);

    // The SGX driver goes away: the device stays, unhealthy, with the reason.
    let mut gone = in_tree_inventory();
    gone.nodes = Default::default();
    gone.layout = None;
    driver.inventory.send(gone).unwrap();
    let update = next_health(&mut stream).await;
    let device = &update.devices[0];
    assert_eq!(device.health(), HealthStatus::Unhealthy);
    assert!(device.message.contains("SGX driver"), "{}", device.message);
    // And back.
    driver.inventory.send(in_tree_inventory()).unwrap();
    let update = next_health(&mut stream).await;
    assert_eq!(update.devices[0].health(), HealthStatus::Healthy);
    drop(stream);
    driver.stop().await;
}

/// The next message of a health stream (bounded only so a broken test fails instead of hanging).
async fn next_health(
    stream: &mut tonic::Streaming<dra_driver::kubelet::proto::health::NodeWatchResourcesResponse>,
) -> dra_driver::kubelet::proto::health::NodeWatchResourcesResponse {
    tokio::time::timeout(std::time::Duration::from_secs(60), stream.message())
        .await
        .expect("a health update")
        .unwrap()
        .expect("the stream is open")
}
