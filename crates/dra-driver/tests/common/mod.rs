//! Stand-ins shared by the kubelet-side tests and the bench: an API server serving
//! ResourceClaims, a kubelet that registers and calls the DRA service over the real sockets, and
//! the driver running in-process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
pub mod cdi;

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dra_driver::inventory::Inventory;
use dra_driver::kubelet::proto::pluginregistration::registration_client::RegistrationClient;
use dra_driver::kubelet::proto::{v1, v1beta1};
use dra_driver::kubelet::{self, Config, KubeClaimReader, Metrics};
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

pub const DRIVER: &str = dra_driver::names::DEFAULT_DRIVER_NAME;
pub const NODE: &str = "sgx-node-1";

/// An API server serving ResourceClaims as `GET /apis/resource.k8s.io/v1/namespaces/<ns>/resourceclaims/<name>`.
/// Anything else the real API server would answer differently is recorded as a violation.
pub struct FakeApi {
    pub client: kube::Client,
    claims: Arc<Mutex<BTreeMap<(String, String), Value>>>,
    violations: Arc<Mutex<Vec<String>>>,
    gets: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeApi {
    pub async fn start() -> Self {
        let claims: Arc<Mutex<BTreeMap<(String, String), Value>>> = Arc::default();
        let violations: Arc<Mutex<Vec<String>>> = Arc::default();
        let gets = Arc::new(AtomicUsize::new(0));
        let (c, v, g) = (claims.clone(), violations.clone(), gets.clone());
        let (client, task) = api::serve(move |req: Request<Incoming>| {
            let reply = answer(&req, &c, &v, &g);
            async move { reply }
        })
        .await;
        Self {
            client,
            claims,
            violations,
            gets,
            task,
        }
    }

    pub fn put(&self, claim: Value) {
        let ns = claim["metadata"]["namespace"].as_str().unwrap().to_owned();
        let name = claim["metadata"]["name"].as_str().unwrap().to_owned();
        self.claims.lock().unwrap().insert((ns, name), claim);
    }

    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    pub fn reader(&self) -> Arc<KubeClaimReader> {
        Arc::new(KubeClaimReader::new(
            self.client.clone(),
            KubeClaimReader::DEFAULT_TIMEOUT,
        ))
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(
    req: &Request<Incoming>,
    claims: &Mutex<BTreeMap<(String, String), Value>>,
    violations: &Mutex<Vec<String>>,
    gets: &AtomicUsize,
) -> (u16, Value) {
    let violation = |what: String| {
        violations.lock().unwrap().push(what.clone());
        (400, api::status(400, "BadRequest", &what))
    };
    if req.method() != hyper::Method::GET {
        return violation(format!("method {}", req.method()));
    }
    if let Some(query) = req.uri().query().filter(|q| !q.is_empty()) {
        return violation(format!("unexpected query {query}"));
    }
    // The API server answers JSON unless the client asks for protobuf or CBOR only.
    if let Some(accept) = req.headers().get(hyper::header::ACCEPT) {
        let accept = accept.to_str().unwrap_or_default();
        if !accept.contains("application/json") && !accept.contains("*/*") {
            return violation(format!("Accept {accept}"));
        }
    }
    let path = req.uri().path();
    let parts: Vec<&str> = path.split('/').collect();
    let [
        "",
        "apis",
        "resource.k8s.io",
        "v1",
        "namespaces",
        ns,
        "resourceclaims",
        name,
    ] = parts.as_slice()
    else {
        return violation(format!("path {path}"));
    };
    gets.fetch_add(1, Ordering::SeqCst);
    match claims
        .lock()
        .unwrap()
        .get(&((*ns).to_owned(), (*name).to_owned()))
    {
        Some(claim) => (200, claim.clone()),
        None => {
            let mut body = api::status(
                404,
                "NotFound",
                &format!("resourceclaims.resource.k8s.io \"{name}\" not found"),
            );
            body["details"] =
                json!({"name": name, "group": "resource.k8s.io", "kind": "resourceclaims"});
            (404, body)
        }
    }
}

/// One allocation result of ours.
pub fn result(
    request: &str,
    pool: &str,
    device: &str,
    share: Option<&str>,
    epc: Option<&str>,
) -> Value {
    let mut r = json!({"request": request, "driver": DRIVER, "pool": pool, "device": device});
    if let Some(share) = share {
        r["shareID"] = json!(share);
    }
    if let Some(epc) = epc {
        r["consumedCapacity"] = json!({"epc": epc});
    }
    r
}

/// An opaque config entry of ours.
pub fn config(source: &str, requests: &[&str], parameters: Value) -> Value {
    let mut c = json!({"source": source, "opaque": {"driver": DRIVER, "parameters": parameters}});
    if !requests.is_empty() {
        c["requests"] = json!(requests);
    }
    c
}

/// SgxConfig parameters.
pub fn sgx(quote_helper: bool, provision: bool) -> Value {
    json!({"apiVersion": dra_driver::names::config::API_VERSION, "kind": "SgxConfig",
           "quoteHelper": quote_helper, "provision": provision})
}

/// A ResourceClaim as the API server returns it, allocated with `results` and `configs`
/// (`results` empty: not allocated).
pub fn claim(ns: &str, name: &str, uid: &str, results: Vec<Value>, configs: Vec<Value>) -> Value {
    let mut claim = json!({
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid,
            "resourceVersion": "4711", "creationTimestamp": "2026-12-06T20:00:00Z",
            "finalizers": ["resource.kubernetes.io/delete-protection"],
        },
        "spec": {"devices": {"requests": [{
            "name": "enclave",
            "exactly": {"deviceClassName": DRIVER, "allocationMode": "ExactCount", "count": 1,
                        "capacity": {"requests": {"epc": "64Mi"}}},
        }]}},
        "status": {},
    });
    if !results.is_empty() {
        claim["status"] = json!({
            "allocation": {
                "devices": {"results": results, "config": configs},
                "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [NODE]}]}]},
                "allocationTimestamp": "2026-12-06T20:00:01Z",
            },
            "reservedFor": [{"resource": "pods", "name": "app", "uid": "9d1f0000-0000-4000-8000-00000000a990"}],
        });
    }
    claim
}

/// A temp dir with a short path (Unix socket paths hold at most 107 bytes).
pub fn short_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dra")
        .tempdir_in("/tmp")
        .unwrap()
}

/// The driver's directories under one root.
pub fn config_in(root: &Path) -> Config {
    let mut config = Config::new(NODE);
    config.registry_dir = root.join("reg");
    config.plugins_dir = root.join("plugins");
    config.cdi_root = root.join("cdi");
    config.boot_id_path = root.join("boot_id");
    config.recheck_interval = Duration::from_millis(200);
    config
}

/// A hardware node with the in-tree driver (enclave and provision nodes) and 1 GiB of EPC.
pub fn in_tree_inventory() -> Inventory {
    let mut inventory = dra_driver::devices::simulated(1 << 30).unwrap();
    inventory.simulated = false;
    inventory.nodes.in_tree_enclave = true;
    inventory.nodes.in_tree_provision = true;
    inventory.layout = dra_driver::devices::DriverLayout::of(&inventory.nodes);
    inventory
}

/// The driver running in-process.
pub struct Driver {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), kubelet::Error>>,
    pub inventory: watch::Sender<Inventory>,
}

impl Driver {
    pub fn start(config: Config, inventory: Inventory, api: &FakeApi) -> Self {
        let (feed, rx) = watch::channel(inventory);
        let (stop, stopped) = oneshot::channel();
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::new(&mut registry);
        let task = tokio::spawn(kubelet::run(
            config,
            rx,
            api.reader(),
            metrics,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            stop: Some(stop),
            task,
            inventory: feed,
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.unwrap().unwrap();
    }
}

/// Wait (bounded only so a broken test fails instead of hanging) until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} never happened");
}

pub fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// A kubelet: finds the registration socket as the plugin watcher does, and talks to the plugin.
pub struct Kubelet {
    pub registration: RegistrationClient<tonic::transport::Channel>,
    pub v1: v1::dra_plugin_client::DraPluginClient<tonic::transport::Channel>,
    pub v1beta1: v1beta1::dra_plugin_client::DraPluginClient<tonic::transport::Channel>,
    pub info: dra_driver::kubelet::proto::pluginregistration::PluginInfo,
}

/// Every socket in the registry dir not starting with `.` (what the plugin watcher registers).
pub fn registry_sockets(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| is_socket(p))
        .collect();
    found.sort();
    found
}

/// A channel to the socket at `path`. A socket file that was just made again may not be listening
/// for a moment (kubelet retries the same way), so a refused connection is tried again.
pub async fn channel(path: &Path) -> tonic::transport::Channel {
    let mut last = None;
    for _ in 0..100 {
        match device_plugin::transport::unix_channel(path.to_owned(), Duration::from_secs(10)).await
        {
            Ok(channel) => return channel,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot connect to {}: {last:?}", path.display())
}

impl Kubelet {
    pub async fn connect(registry_dir: &Path) -> Self {
        eventually("a registration socket", || {
            !registry_sockets(registry_dir).is_empty()
        })
        .await;
        let sockets = registry_sockets(registry_dir);
        assert_eq!(sockets.len(), 1, "{sockets:?}");
        let mut registration = RegistrationClient::new(channel(&sockets[0]).await);
        let info = registration
            .get_info(dra_driver::kubelet::proto::pluginregistration::InfoRequest {})
            .await
            .unwrap()
            .into_inner();
        let endpoint = PathBuf::from(&info.endpoint);
        let dra = channel(&endpoint).await;
        Self {
            registration,
            v1: v1::dra_plugin_client::DraPluginClient::new(dra.clone()),
            v1beta1: v1beta1::dra_plugin_client::DraPluginClient::new(dra),
            info,
        }
    }

    /// NodePrepareResources (v1) for `claims`.
    pub async fn prepare(&mut self, claims: Vec<v1::Claim>) -> v1::NodePrepareResourcesResponse {
        let request = v1::NodePrepareResourcesRequest { claims };
        self.v1
            .node_prepare_resources(request)
            .await
            .unwrap()
            .into_inner()
    }

    /// NodeUnprepareResources (v1) for `claims`.
    pub async fn unprepare(
        &mut self,
        claims: Vec<v1::Claim>,
    ) -> v1::NodeUnprepareResourcesResponse {
        let request = v1::NodeUnprepareResourcesRequest { claims };
        self.v1
            .node_unprepare_resources(request)
            .await
            .unwrap()
            .into_inner()
    }

    /// NodePrepareResources (v1beta1) for `claims`.
    pub async fn prepare_v1beta1(
        &mut self,
        claims: Vec<v1beta1::Claim>,
    ) -> v1beta1::NodePrepareResourcesResponse {
        let request = v1beta1::NodePrepareResourcesRequest { claims };
        self.v1beta1
            .node_prepare_resources(request)
            .await
            .unwrap()
            .into_inner()
    }

    /// NodeUnprepareResources (v1beta1) for `claims`.
    pub async fn unprepare_v1beta1(
        &mut self,
        claims: Vec<v1beta1::Claim>,
    ) -> v1beta1::NodeUnprepareResourcesResponse {
        let request = v1beta1::NodeUnprepareResourcesRequest { claims };
        self.v1beta1
            .node_unprepare_resources(request)
            .await
            .unwrap()
            .into_inner()
    }
}

pub fn v1_claim(ns: &str, name: &str, uid: &str) -> v1::Claim {
    v1::Claim {
        namespace: ns.into(),
        uid: uid.into(),
        name: name.into(),
    }
}

pub fn v1beta1_claim(ns: &str, name: &str, uid: &str) -> v1beta1::Claim {
    v1beta1::Claim {
        namespace: ns.into(),
        uid: uid.into(),
        name: name.into(),
    }
}
