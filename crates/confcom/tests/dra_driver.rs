//! `confcom dra-driver --simulate` end to end, as on a node: the binary runs next to a simulated
//! quote helper (`confcom quote-helper --backend sim`) and a PCCS over the same simulated platform
//! (`confcom pccs --sim-state`), and talks to an API-server stand-in that keeps state and checks
//! every request (`src/cmd/bench_dra/api.rs`, shared with `confcom bench dra-driver`). The test
//! then acts as kubelet over the real Unix sockets. A short `confcom bench dra-driver` run prints
//! its table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../src/cmd/bench_dra/api.rs"]
mod api;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::ApiStandIn;
use dra_driver::kubelet::proto::pluginregistration::registration_client::RegistrationClient;
use dra_driver::kubelet::proto::pluginregistration::{InfoRequest, RegistrationStatus};
use dra_driver::kubelet::proto::v1;
use k8s_openapi::api::resource::v1::ResourceSlice;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Against hangs only; never a performance bound. Long enough for the publisher's 30 s re-check.
const DEADLINE: Duration = Duration::from_secs(120);
const DRIVER: &str = dra_driver::names::DEFAULT_DRIVER_NAME;
const NODE: &str = "sgx-node-1";
const NODE_UID: &str = "6f1c2a9e-0d4b-4c1e-9a51-6a3f0b7e2d10";
const NS: &str = "apps";
const CLAIM: &str = "enclave-app";
const CLAIM_UID: &str = "0c3e1c52-7d0b-4c5e-9d7c-0000000000e2";
const SHARE: &str = "5b0f9e2a-1111-4222-8333-444455556666";
/// Not the simulator's default, so that the attribute cannot come from a default.
const FMSPC: &str = "30606A000000";

fn confcom() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confcom"));
    command
        .env_remove("RUST_LOG")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("NODE_NAME")
        .stdin(Stdio::null());
    command
}

async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} never happened"))
}

/// Polls `check` until it holds (bounded only so that a broken test fails instead of hanging).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    bounded(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// A child process, its stderr collected line by line; killed on drop.
struct Running {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let lines = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                lines.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            log,
            reader: Some(reader),
        }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The first log line containing `text`.
    async fn log_line(&self, text: &str) -> String {
        let mut found = None;
        eventually(&format!("a log line with {text:?}"), || {
            found = self.log().into_iter().find(|l| l.contains(text));
            found.is_some()
        })
        .await;
        found.unwrap()
    }

    /// SIGTERM, as the kubelet does when it stops a pod; the exit status, once the whole log is
    /// read.
    async fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut exited = None;
        eventually("the process exits after SIGTERM", || {
            exited = self.child.try_wait().unwrap();
            exited.is_some()
        })
        .await;
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        exited.unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node's simulated SGX platform and its peers: the quote helper on `<dir>/aesmd/aesm.socket`
/// and a PCCS serving the same platform's collateral.
struct SimNode {
    socket: PathBuf,
    pccs_url: String,
    fmspc: String,
    _helper: Running,
    _pccs: Running,
}

impl SimNode {
    async fn start(dir: &Path) -> Self {
        let state = dir.join("state");
        let out = confcom()
            .args(["sim", "init", "--fmspc", FMSPC, "--state-dir"])
            .arg(&state)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{stdout}");
        let fmspc = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("FMSPC"))
            .unwrap_or_else(|| panic!("no FMSPC in {stdout}"))
            .trim()
            .to_ascii_lowercase();

        let socket = dir.join("aesmd/aesm.socket");
        let helper = Running::spawn(
            confcom()
                .args([
                    "quote-helper",
                    "--backend",
                    "sim",
                    "--metrics-addr",
                    "127.0.0.1:0",
                ])
                .arg("--socket")
                .arg(&socket)
                .arg("--state-dir")
                .arg(&state),
        );
        // Listening, with the simulated CPU material published next to the socket.
        let sim = aesm_service::sim::sim_dir_for_socket(&socket);
        eventually("the quote helper's socket and CPU material", || {
            socket.exists()
                && sim.join(sgx_sim::CPU_FILE).exists()
                && sim.join(sgx_sim::QE_TARGET_INFO_FILE).exists()
        })
        .await;

        let pccs = Running::spawn(
            confcom()
                .args(["pccs", "--listen", "127.0.0.1:0", "--sim-state"])
                .arg(&state)
                .env("CONFCOM_LOG_FORMAT", "json"),
        );
        let line = pccs.log_line("\"listen\"").await;
        let log: Value = serde_json::from_str(&line).unwrap();
        let pccs_url = format!("http://{}", log["fields"]["listen"].as_str().unwrap());
        Self {
            socket,
            pccs_url,
            fmspc,
            _helper: helper,
            _pccs: pccs,
        }
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The driver's directories under one short root (socket paths ≤ 107 bytes).
struct Layout {
    root: tempfile::TempDir,
}

impl Layout {
    fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("dd")
            .tempdir_in("/tmp")
            .unwrap();
        Self { root }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
    fn registration_socket(&self) -> PathBuf {
        self.path("reg").join(format!("{DRIVER}-reg.sock"))
    }
    fn dra_socket(&self) -> PathBuf {
        self.path("plugins").join(DRIVER).join("dra.sock")
    }
    fn cdi_spec(&self) -> PathBuf {
        self.path("cdi")
            .join(format!("k8s.{DRIVER}-claim_{CLAIM_UID}.json"))
    }
}

/// `confcom dra-driver --simulate` for `NODE` with 64 MiB of EPC, against `api`.
fn driver(layout: &Layout, api: &ApiStandIn, node: &SimNode, metrics_port: u16) -> Running {
    let kubeconfig = api.kubeconfig(layout.root.path()).unwrap();
    Running::spawn(
        confcom()
            .args([
                "dra-driver",
                "--simulate",
                "--epc-mib",
                "64",
                "--node-name",
                NODE,
            ])
            .arg("--registry-dir")
            .arg(layout.path("reg"))
            .arg("--plugins-dir")
            .arg(layout.path("plugins"))
            .arg("--cdi-root")
            .arg(layout.path("cdi"))
            .arg("--aesm-socket")
            .arg(&node.socket)
            .args(["--pccs-url", &node.pccs_url])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", layout.root.path()),
    )
}

/// `GET http://127.0.0.1:<port><path>`: status and body (HTTP/1.0, read to the end).
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}

async fn until_ready(port: u16) {
    bounded("/readyz answers 200", async {
        while http_get(port, "/readyz").await.map(|(code, _)| code) != Some(200) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// The value of the sample `name` (with no labels) in a Prometheus text exposition.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let (key, value) = l.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

/// The claim kubelet prepares: allocated on this node from the quote-helper class (whose opaque
/// config wires the node's quote helper), 5 MiB of the shared `epc` device.
fn allocated_claim() -> Value {
    json!({
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {
            "name": CLAIM, "namespace": NS, "uid": CLAIM_UID,
            "resourceVersion": "4711", "generation": 1,
            "creationTimestamp": "2026-12-06T20:00:00Z",
            "finalizers": ["resource.kubernetes.io/delete-protection"],
        },
        "spec": {"devices": {"requests": [{
            "name": "enclave",
            "exactly": {"deviceClassName": dra_driver::names::class::QUOTE_HELPER,
                        "allocationMode": "ExactCount", "count": 1,
                        "capacity": {"requests": {"epc": "5Mi"}}},
        }]}},
        "status": {
            "allocation": {
                "devices": {
                    "results": [{"request": "enclave", "driver": DRIVER, "pool": NODE,
                                 "device": "epc", "shareID": SHARE,
                                 "consumedCapacity": {"epc": "5Mi"}}],
                    "config": [{"source": "FromClass", "requests": ["enclave"],
                                "opaque": {"driver": DRIVER, "parameters": {
                                    "apiVersion": dra_driver::names::config::API_VERSION,
                                    "kind": "SgxConfig", "quoteHelper": true}}}],
                },
                "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [NODE]}]}]},
                "allocationTimestamp": "2026-12-06T20:00:01Z",
            },
            "reservedFor": [{"resource": "pods", "name": "app",
                             "uid": "9d1f0000-0000-4000-8000-00000000a990"}],
        },
    })
}

fn v1_claim() -> v1::Claim {
    v1::Claim {
        namespace: NS.into(),
        uid: CLAIM_UID.into(),
        name: CLAIM.into(),
    }
}

async fn dra_client(
    endpoint: &Path,
) -> v1::dra_plugin_client::DraPluginClient<tonic::transport::Channel> {
    let channel =
        device_plugin::transport::unix_channel(endpoint.to_owned(), Duration::from_secs(10))
            .await
            .unwrap();
    v1::dra_plugin_client::DraPluginClient::new(channel)
}

/// Every socket kubelet's plugin watcher would register in `dir`.
fn registry_sockets(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

fn the_slice(api: &ApiStandIn) -> Option<ResourceSlice> {
    let state = api.state();
    assert!(
        state.errors.is_empty(),
        "the API server saw: {:?}",
        state.errors
    );
    let slices = state.typed_slices().unwrap();
    assert!(slices.len() <= 1, "{slices:?}");
    slices.into_iter().next()
}

fn string_attribute(slice: &ResourceSlice, name: &str) -> Option<String> {
    slice.spec.devices.as_ref()?[0]
        .attributes
        .as_ref()?
        .get(name)?
        .string
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_publishes_serves_kubelet_and_restarts_without_rewriting_its_slice() {
    let layout = Layout::new();
    let node = SimNode::start(layout.root.path()).await;
    assert_eq!(node.fmspc, FMSPC.to_ascii_lowercase());
    let api = ApiStandIn::start(NODE, NODE_UID, DRIVER).await.unwrap();
    api.put_claim(allocated_claim());
    let port = free_port();
    let mut running = driver(&layout, &api, &node, port);

    // The slice, with the attributes of the node's own attestation.
    let slice = bounded(
        "a slice with the TCB status",
        api.until(|s| {
            let slices = s.typed_slices().ok()?;
            slices
                .into_iter()
                .find(|sl| string_attribute(sl, "tcbStatus").is_some())
        }),
    )
    .await;
    assert_eq!(the_slice(&api).as_ref(), Some(&slice));
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[..];
    assert_eq!(owner.len(), 1, "{owner:?}");
    assert_eq!(
        (
            owner[0].api_version.as_str(),
            owner[0].kind.as_str(),
            owner[0].name.as_str(),
            owner[0].uid.as_str(),
            owner[0].controller,
        ),
        ("v1", "Node", NODE, NODE_UID, Some(true))
    );
    assert_eq!(slice.spec.driver, DRIVER);
    assert_eq!(slice.spec.node_name.as_deref(), Some(NODE));
    assert_eq!(slice.spec.pool.name, NODE);
    assert_eq!(slice.spec.pool.resource_slice_count, 1);
    let devices = slice.spec.devices.as_ref().unwrap();
    assert_eq!(devices.len(), 1, "{devices:?}");
    let epc = &devices[0];
    assert_eq!(epc.name, "epc");
    assert_eq!(epc.allow_multiple_allocations, Some(true));
    let capacity = serde_json::to_value(&epc.capacity.as_ref().unwrap()["epc"]).unwrap();
    assert_eq!(
        capacity,
        json!({"value": "64Mi",
               "requestPolicy": {"default": "16Mi", "validRange": {"min": "4Ki", "step": "4Ki"}}})
    );
    let attributes = epc.attributes.as_ref().unwrap();
    assert_eq!(attributes["simulated"].bool, Some(true));
    assert_eq!(string_attribute(&slice, "fmspc"), Some(node.fmspc.clone()));
    assert_eq!(
        string_attribute(&slice, "tcbStatus").as_deref(),
        Some("UpToDate")
    );
    let tcb_date = string_attribute(&slice, "tcbDate").unwrap();
    assert!(
        dcap_verify::time::parse_rfc3339(&tcb_date).is_some(),
        "{tcb_date}"
    );
    // The requests the publisher made: the Node, lists, the create and updates only.
    for seen in &api.state().seen {
        let allowed = (seen.method == "GET" && seen.path == format!("/api/v1/nodes/{NODE}"))
            || seen.is_slice_list()
            || (seen.method == "POST" && seen.path == api::SLICES)
            || (seen.method == "PUT" && seen.path.starts_with(api::SLICES));
        assert!(allowed, "{seen:?}");
    }

    until_ready(port).await;

    // Kubelet's plugin watcher finds the registration socket.
    let sockets = registry_sockets(&layout.path("reg"));
    assert_eq!(sockets, [layout.registration_socket()]);
    let channel =
        device_plugin::transport::unix_channel(sockets[0].clone(), Duration::from_secs(10))
            .await
            .unwrap();
    let mut registration = RegistrationClient::new(channel);
    let info = registration
        .get_info(InfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.r#type, "DRAPlugin");
    assert_eq!(info.name, DRIVER);
    let endpoint = PathBuf::from(&info.endpoint);
    assert!(endpoint.is_absolute(), "{endpoint:?}");
    assert_eq!(endpoint, std::path::absolute(layout.dra_socket()).unwrap());
    assert_eq!(
        info.supported_versions.first().map(String::as_str),
        Some("v1.DRAPlugin")
    );
    registration
        .notify_registration_status(RegistrationStatus {
            plugin_registered: true,
            error: String::new(),
        })
        .await
        .unwrap();

    // NodePrepareResources for the allocated claim.
    let mut dra = dra_client(&endpoint).await;
    let prepared = dra
        .node_prepare_resources(v1::NodePrepareResourcesRequest {
            claims: vec![v1_claim()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(prepared.claims.len(), 1);
    let answer = &prepared.claims[CLAIM_UID];
    assert_eq!(answer.error, "");
    let cdi_id = format!("k8s.{DRIVER}/claim={CLAIM_UID}-epc-{SHARE}");
    assert_eq!(
        answer.devices,
        [v1::Device {
            request_names: vec!["enclave".into()],
            pool_name: NODE.into(),
            device_name: "epc".into(),
            cdi_device_ids: vec![cdi_id.clone()],
            share_id: Some(SHARE.into()),
        }]
    );

    // The CDI spec the container runtime reads for that ID.
    let spec: Value = serde_json::from_slice(&std::fs::read(layout.cdi_spec()).unwrap()).unwrap();
    let (kind, name) = cdi_id.split_once('=').unwrap();
    assert_eq!(spec["kind"], kind);
    let device = &spec["devices"][0];
    assert_eq!(spec["devices"].as_array().unwrap().len(), 1, "{spec}");
    assert_eq!(device["name"], name);
    let edits = &device["containerEdits"];
    let env: Vec<&str> = edits["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"SGX_AESM_ADDR=1"), "{spec}");
    assert!(
        env.contains(&format!("SGX_EPC_BYTES={}", 5 << 20).as_str()),
        "{spec}"
    );
    let mounts = edits["mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{spec}");
    assert_eq!(mounts[0]["hostPath"], "/var/run/aesmd");
    assert_eq!(mounts[0]["containerPath"], "/var/run/aesmd");
    // A simulated node has no SGX device node to hand out.
    assert!(
        edits["deviceNodes"].as_array().is_none_or(Vec::is_empty),
        "{spec}"
    );

    // /metrics shows the prepare.
    let (code, metrics) = http_get(port, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        sample(&metrics, "confcom_dra_driver_prepare_claims_total"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "confcom_dra_driver_prepared_claims"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "confcom_dra_driver_prepare_errors_total"),
        Some(0.0),
        "{metrics}"
    );

    // SIGTERM: a clean exit that takes both sockets away.
    drop((dra, registration));
    let status = running.terminate().await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(!layout.registration_socket().exists());
    assert!(!layout.dra_socket().exists());
    let published = the_slice(&api).unwrap();
    let (writes, lists) = {
        let s = api.state();
        (s.slice_writes(), s.slice_lists())
    };

    // Started again: it finds its slice as it left it and writes nothing (no flapping of the
    // attributes while the new process attests again).
    let port = free_port();
    let mut running = driver(&layout, &api, &node, port);
    until_ready(port).await;
    running
        .log_line("platform attributes from the node's attestation")
        .await;
    // Two syncs of the restarted publisher (at start, and after the attestation or at the
    // re-check), so that at least one saw the attestation.
    bounded(
        "two syncs after the restart",
        api.until(|s| (s.slice_lists() >= lists + 2).then_some(())),
    )
    .await;
    let mut dra = dra_client(&layout.dra_socket()).await;
    // The prepared claim is in the checkpoint: unprepare removes its CDI spec.
    let unprepared = dra
        .node_unprepare_resources(v1::NodeUnprepareResourcesRequest {
            claims: vec![v1_claim()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unprepared.claims[CLAIM_UID].error, "");
    assert!(!layout.cdi_spec().exists());
    let (_, metrics) = http_get(port, "/metrics").await.unwrap();
    assert_eq!(
        sample(&metrics, "confcom_dra_driver_prepared_claims"),
        Some(0.0),
        "{metrics}"
    );
    drop(dra);
    let status = running.terminate().await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    let writes_after: Vec<String> = api
        .state()
        .seen
        .iter()
        .filter(|s| s.is_slice_write())
        .skip(writes)
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert!(
        writes_after.is_empty(),
        "the restart wrote: {writes_after:?}"
    );
    assert_eq!(the_slice(&api), Some(published));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_consumable_capacity_gate_the_log_says_so_once() {
    let layout = Layout::new();
    let node = SimNode::start(layout.root.path()).await;
    let api = ApiStandIn::start(NODE, NODE_UID, DRIVER).await.unwrap();
    api.state().gate_off = true;
    let port = free_port();
    let mut running = driver(&layout, &api, &node, port);
    // Stored without the sharing fields, after the attestation was published too.
    let slice = bounded(
        "a slice with the TCB status",
        api.until(|s| {
            s.typed_slices()
                .ok()?
                .into_iter()
                .find(|sl| string_attribute(sl, "tcbStatus").is_some())
        }),
    )
    .await;
    let epc = &slice.spec.devices.as_ref().unwrap()[0];
    assert_eq!(epc.allow_multiple_allocations, None);
    assert!(
        epc.capacity.as_ref().unwrap()["epc"]
            .request_policy
            .is_none()
    );
    until_ready(port).await;
    let lists = api.state().slice_lists();
    // Another sync (the re-check) finds the stripped slice: no new write, no second line.
    let writes = api.state().slice_writes();
    bounded(
        "a re-check",
        api.until(|s| (s.slice_lists() > lists).then_some(())),
    )
    .await;
    let status = running.terminate().await;
    assert_eq!(status.code(), Some(0));
    assert_eq!(api.state().slice_writes(), writes);
    assert!(api.state().errors.is_empty(), "{:?}", api.state().errors);
    let log = running.log();
    let said: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("DRAConsumableCapacity"))
        .collect();
    assert_eq!(said.len(), 1, "{log:#?}");
    let line = said[0];
    assert!(line.contains("WARN"), "{line}");
    for words in [
        "dropped allowMultipleAllocations and requestPolicy",
        "on by default from Kubernetes 1.36",
        "exclusive",
    ] {
        assert!(line.contains(words), "{line}");
    }
}

#[test]
fn a_short_bench_run_prints_every_row() {
    let out = confcom()
        .args(["bench", "dra-driver", "--idle-secs", "0.1", "--calls", "4"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "  dra-driver ",
        "  device-plugin --simulate ",
        "  ratio ",
        "  dra-driver after the load ",
        "  empty call (gRPC floor) ",
        "  1 in flight ",
        "  64 in flight ",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(row) && [" MiB", "×", " p99 "].iter().any(|w| l.contains(w))),
            "no row {row:?}:\n{stdout}"
        );
    }
    // A bad flag is refused before anything starts.
    let out = confcom()
        .args(["bench", "dra-driver", "--calls", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
