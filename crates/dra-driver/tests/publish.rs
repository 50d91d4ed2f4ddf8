#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The ResourceSlice publisher against a stand-in for the API server that checks every request
//! as the real one would (method, path, query, content type, body parsed into the v1 types with
//! nothing left over) and keeps state like it: uids, resourceVersions, names for generateName,
//! 409 on a stale resourceVersion or failed precondition, and — in one mode — the
//! DRAConsumableCapacity gate off (allowMultipleAllocations and requestPolicy dropped).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dra_driver::attest::Attestation;
use dra_driver::devices;
use dra_driver::inventory::Inventory;
use dra_driver::publish::{FIELD_MANAGER, PublishError, Publisher};
use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::Incoming;
use k8s_openapi::api::resource::v1::ResourceSlice;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

mod common;
use common::api;

const NODE: &str = "sgx-node-1";
const NODE_UID: &str = "6f1c2a9e-0d4b-4c1e-9a51-6a3f0b7e2d10";
const DRIVER: &str = "sgx.confcom-rs.github.io";
const SLICES: &str = "/apis/resource.k8s.io/v1/resourceslices";
const MIB: u64 = 1024 * 1024;

/// One request, as seen.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    slices: BTreeMap<String, Value>,
    next_rv: u64,
    next_name: u64,
    gate_off: bool,
    /// The Node's UID when it is not [`NODE_UID`] (the Node was deleted and made again).
    node_uid: Option<String>,
    /// Fail the next PUT with 409 as if someone wrote the slice meanwhile.
    conflict_next_put: bool,
    seen: Vec<Seen>,
    /// Assertion failures inside the server, reported to the test.
    errors: Vec<String>,
}

struct ApiServer {
    client: kube::Client,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (code, api::status(code, reason, message))
}

fn query_map(query: &str) -> BTreeMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Parses `body` into a ResourceSlice and checks nothing was lost on the way (no field the v1
/// types do not know).
fn parse_slice(body: &[u8]) -> Result<ResourceSlice, String> {
    let raw: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let slice: ResourceSlice =
        serde_json::from_value(raw.clone()).map_err(|e| format!("not a ResourceSlice: {e}"))?;
    let back = serde_json::to_value(&slice).unwrap();
    if back != raw {
        return Err(format!(
            "fields the v1 types do not know: sent {raw}, typed {back}"
        ));
    }
    dra_driver::slices::validate_slice(&slice).map_err(|e| format!("invalid: {e}"))?;
    Ok(slice)
}

fn drop_consumable_capacity(slice: &mut Value) {
    if let Some(devices) = slice["spec"]["devices"].as_array_mut() {
        for d in devices {
            let d = d.as_object_mut().unwrap();
            d.remove("allowMultipleAllocations");
            if let Some(capacity) = d.get_mut("capacity").and_then(Value::as_object_mut) {
                for c in capacity.values_mut() {
                    c.as_object_mut().unwrap().remove("requestPolicy");
                }
            }
        }
    }
}

fn uses_consumable_capacity(slice: &Value) -> bool {
    slice.to_string().contains("allowMultipleAllocations")
}

impl State {
    fn rv(&mut self) -> String {
        self.next_rv += 1;
        self.next_rv.to_string()
    }

    fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &BTreeMap<String, String>,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let write = matches!(method, "POST" | "PUT");
        if write {
            if content_type != "application/json" {
                self.errors
                    .push(format!("{method} {path}: content type {content_type:?}"));
            }
            if query.get("fieldManager").map(String::as_str) != Some(FIELD_MANAGER) {
                self.errors.push(format!(
                    "{method} {path}: query {query:?} lacks the field manager"
                ));
            }
        }
        if method == "GET" && path == format!("/api/v1/nodes/{NODE}") {
            return (
                200,
                json!({"apiVersion": "v1", "kind": "Node",
                       "metadata": {"name": NODE,
                                    "uid": self.node_uid.as_deref().unwrap_or(NODE_UID),
                                    "resourceVersion": "1"}}),
            );
        }
        if method == "GET" && path == SLICES {
            let selector = query.get("fieldSelector").cloned().unwrap_or_default();
            if selector != format!("spec.nodeName={NODE},spec.driver={DRIVER}") {
                self.errors
                    .push(format!("list with field selector {selector:?}"));
            }
            let rv = self.next_rv.to_string();
            let items: Vec<Value> = self
                .slices
                .values()
                .filter(|s| s["spec"]["nodeName"] == NODE && s["spec"]["driver"] == DRIVER)
                .cloned()
                .collect();
            return (
                200,
                json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSliceList",
                       "metadata": {"resourceVersion": rv}, "items": items}),
            );
        }
        if method == "POST" && path == SLICES {
            let slice = match parse_slice(body) {
                Ok(s) => s,
                Err(e) => {
                    self.errors.push(format!("POST: {e}"));
                    return status(422, "Invalid", &e);
                }
            };
            let meta = &slice.metadata;
            if meta.name.is_some() || meta.resource_version.is_some() || meta.uid.is_some() {
                self.errors
                    .push(format!("POST with server-set metadata: {meta:?}"));
            }
            let Some(prefix) = meta.generate_name.clone() else {
                return status(422, "Invalid", "name or generateName is required");
            };
            self.next_name += 1;
            let name = format!("{prefix}{:05x}", self.next_name);
            let mut stored = serde_json::to_value(&slice).unwrap();
            stored["metadata"]["name"] = json!(name);
            stored["metadata"]["uid"] = json!(format!("uid-{name}"));
            stored["metadata"]["resourceVersion"] = json!(self.rv());
            if self.gate_off {
                drop_consumable_capacity(&mut stored);
            }
            self.slices.insert(name, stored.clone());
            return (201, stored);
        }
        if let Some(name) = path.strip_prefix(&format!("{SLICES}/")) {
            let Some(current) = self.slices.get(name).cloned() else {
                return status(
                    404,
                    "NotFound",
                    &format!("resourceslices {name:?} not found"),
                );
            };
            if method == "PUT" {
                let slice = match parse_slice(body) {
                    Ok(s) => s,
                    Err(e) => {
                        self.errors.push(format!("PUT: {e}"));
                        return status(422, "Invalid", &e);
                    }
                };
                if slice.metadata.name.as_deref() != Some(name) {
                    self.errors.push(format!("PUT {name} with another name"));
                }
                if std::mem::take(&mut self.conflict_next_put)
                    || slice.metadata.resource_version.as_ref()
                        != current["metadata"]["resourceVersion"]
                            .as_str()
                            .map(str::to_owned)
                            .as_ref()
                {
                    return status(409, "Conflict", "the object has been modified");
                }
                for field in ["driver", "nodeName"] {
                    if serde_json::to_value(&slice.spec).unwrap()[field] != current["spec"][field] {
                        return status(
                            422,
                            "Invalid",
                            &format!("spec.{field}: field is immutable"),
                        );
                    }
                }
                if serde_json::to_value(&slice.spec).unwrap()["pool"]["name"]
                    != current["spec"]["pool"]["name"]
                {
                    return status(422, "Invalid", "spec.pool.name: field is immutable");
                }
                let mut stored = serde_json::to_value(&slice).unwrap();
                stored["metadata"]["uid"] = current["metadata"]["uid"].clone();
                stored["metadata"]["resourceVersion"] = json!(self.rv());
                // Dropped unless the old object already used the fields.
                if self.gate_off && !uses_consumable_capacity(&current) {
                    drop_consumable_capacity(&mut stored);
                }
                self.slices.insert(name.to_owned(), stored.clone());
                return (200, stored);
            }
            if method == "DELETE" {
                let options: Value = if body.is_empty() {
                    json!({})
                } else {
                    serde_json::from_slice(body).unwrap()
                };
                let pre = &options["preconditions"];
                if pre["uid"].is_string() && pre["uid"] != current["metadata"]["uid"]
                    || pre["resourceVersion"].is_string()
                        && pre["resourceVersion"] != current["metadata"]["resourceVersion"]
                {
                    return status(409, "Conflict", "precondition failed");
                }
                self.slices.remove(name);
                return (200, current);
            }
        }
        self.errors.push(format!("unexpected {method} {path}"));
        status(404, "NotFound", "no such route")
    }
}

impl ApiServer {
    async fn start() -> Self {
        let state: Arc<Mutex<State>> = Arc::default();
        let changed = Arc::new(Notify::new());
        let (shared, notify) = (Arc::clone(&state), Arc::clone(&changed));
        let (client, task) = api::serve(move |req: Request<Incoming>| {
            let (state, notify) = (Arc::clone(&shared), Arc::clone(&notify));
            async move {
                let method = req.method().to_string();
                let path = req.uri().path().to_owned();
                let query = query_map(req.uri().query().unwrap_or_default());
                let content_type = req
                    .headers()
                    .get(hyper::header::CONTENT_TYPE)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let reply = {
                    let mut s = state.lock().unwrap();
                    s.seen.push(Seen {
                        method: method.clone(),
                        path: path.clone(),
                        query: query.clone(),
                    });
                    s.handle(&method, &path, &query, &content_type, &body)
                };
                notify.notify_waiters();
                reply
            }
        })
        .await;
        Self {
            client,
            state,
            changed,
            task,
        }
    }

    fn publisher(&self) -> Publisher {
        Publisher::new(self.client.clone(), DRIVER, NODE)
            .unwrap()
            .with_recheck(Duration::from_millis(20))
            .with_backoff(Duration::from_millis(10), Duration::from_millis(50))
    }

    /// The requests seen since the last call, as `METHOD path`.
    fn take_seen(&self) -> Vec<Seen> {
        let mut s = self.state.lock().unwrap();
        assert!(s.errors.is_empty(), "the API server saw: {:?}", s.errors);
        std::mem::take(&mut s.seen)
    }

    fn slices(&self) -> Vec<ResourceSlice> {
        let s = self.state.lock().unwrap();
        assert!(s.errors.is_empty(), "the API server saw: {:?}", s.errors);
        s.slices
            .values()
            .map(|v| serde_json::from_value(v.clone()).unwrap())
            .collect()
    }

    /// Waits until `done` holds for the stored slices (the guard only keeps a broken test from
    /// hanging; nothing is timed).
    async fn until(&self, done: impl Fn(&[ResourceSlice]) -> bool) -> Vec<ResourceSlice> {
        let wait = async {
            loop {
                let notified = self.changed.notified();
                let slices = self.slices();
                if done(&slices) {
                    return slices;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .expect("the stored slices never reached the expected state")
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn methods(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

fn inventory(mib: u64) -> Inventory {
    devices::simulated(mib * MIB).unwrap()
}

fn epc_value(slice: &ResourceSlice) -> String {
    slice.spec.devices.as_ref().unwrap()[0]
        .capacity
        .as_ref()
        .unwrap()["epc"]
        .value
        .0
        .clone()
}

#[tokio::test]
async fn a_node_made_again_owns_the_slice_made_again() {
    let server = ApiServer::start().await;
    let mut publisher = server.publisher();
    publisher
        .sync(&inventory(128), &Attestation::default())
        .await
        .unwrap();
    // The Node is deleted and made again under its name; the garbage collector removes the
    // slice its old UID owned.
    const NEW_UID: &str = "0b8e2f55-7c1d-4d2a-9f3e-1a2b3c4d5e6f";
    {
        let mut s = server.state.lock().unwrap();
        s.node_uid = Some(NEW_UID.to_owned());
        s.slices.clear();
    }
    publisher
        .sync(&inventory(128), &Attestation::default())
        .await
        .unwrap();
    let slices = server.slices();
    assert_eq!(slices.len(), 1);
    let owner = &slices[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.uid, NEW_UID);
}

#[tokio::test]
async fn first_start_creates_one_slice_owned_by_the_node() {
    let server = ApiServer::start().await;
    let mut publisher = server.publisher();
    let report = publisher
        .sync(&inventory(128), &Attestation::default())
        .await
        .unwrap();
    let name = report.created.clone().unwrap();
    assert!(report.updated.is_none() && report.deleted.is_empty());
    let seen = server.take_seen();
    assert_eq!(
        methods(&seen),
        [
            format!("GET {SLICES}"),
            format!("GET /api/v1/nodes/{NODE}"),
            format!("POST {SLICES}"),
        ]
    );
    assert_eq!(
        seen[0].query.get("fieldSelector").map(String::as_str),
        Some(format!("spec.nodeName={NODE},spec.driver={DRIVER}").as_str())
    );
    assert_eq!(
        seen[2].query.get("fieldManager").map(String::as_str),
        Some(FIELD_MANAGER)
    );
    let slices = server.slices();
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    assert_eq!(slice.metadata.name.as_deref(), Some(name.as_str()));
    assert!(
        name.starts_with(&format!("00000-{DRIVER}-{NODE}-")),
        "{name}"
    );
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller
        ),
        ("v1", "Node", NODE, NODE_UID, Some(true))
    );
    assert_eq!(slice.spec.pool.name, NODE);
    assert_eq!(slice.spec.pool.generation, 0);
    assert_eq!(slice.spec.pool.resource_slice_count, 1);
    assert_eq!(slice.spec.node_name.as_deref(), Some(NODE));
    assert_eq!(epc_value(slice), "128Mi");
}

#[tokio::test]
async fn a_restart_with_the_same_inventory_writes_nothing() {
    let server = ApiServer::start().await;
    let attested = Attestation {
        fmspc: Some([0, 0x90, 0x6e, 0xa1, 0, 0]),
        tcb_status: Some(sgx_types::tcb::TcbStatus::UpToDate),
        ..Attestation::default()
    };
    server
        .publisher()
        .sync(&inventory(64), &attested)
        .await
        .unwrap();
    let before = server.slices();
    server.take_seen();
    // A new process: no memory of what it published.
    let report = server
        .publisher()
        .sync(&inventory(64), &attested)
        .await
        .unwrap();
    assert!(report.unchanged(), "{report:?}");
    let seen = server.take_seen();
    assert!(
        seen.iter().all(|s| s.method == "GET"),
        "a restart wrote: {:?}",
        methods(&seen)
    );
    assert_eq!(server.slices(), before);
}

#[tokio::test]
async fn a_changed_epc_updates_the_same_pool_with_the_next_generation() {
    let server = ApiServer::start().await;
    let mut publisher = server.publisher();
    let name = publisher
        .sync(&inventory(64), &Attestation::default())
        .await
        .unwrap()
        .created
        .unwrap();
    server.take_seen();
    let report = publisher
        .sync(&inventory(96), &Attestation::default())
        .await
        .unwrap();
    assert_eq!(report.updated, Some((name.clone(), 1)));
    assert_eq!(
        methods(&server.take_seen()),
        [format!("GET {SLICES}"), format!("PUT {SLICES}/{name}")]
    );
    let slices = server.slices();
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0].metadata.name.as_deref(), Some(name.as_str()));
    assert_eq!(slices[0].spec.pool.generation, 1);
    assert_eq!(epc_value(&slices[0]), "96Mi");

    // Attestation results are content too.
    let report = publisher
        .sync(
            &inventory(96),
            &Attestation {
                tcb_status: Some(sgx_types::tcb::TcbStatus::OutOfDate),
                ..Attestation::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(report.updated, Some((name, 2)));
}

#[tokio::test]
async fn a_stale_resource_version_is_retried_from_a_fresh_list() {
    let server = ApiServer::start().await;
    let mut publisher = server.publisher();
    publisher
        .sync(&inventory(64), &Attestation::default())
        .await
        .unwrap();
    server.state.lock().unwrap().conflict_next_put = true;
    let err = publisher
        .sync(&inventory(80), &Attestation::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PublishError::Api { error: kube::Error::Api(e), .. } if e.code == 409),
        "{err}"
    );
    let report = publisher
        .sync(&inventory(80), &Attestation::default())
        .await
        .unwrap();
    assert_eq!(report.updated.unwrap().1, 1);
    assert_eq!(epc_value(&server.slices()[0]), "80Mi");
}

#[tokio::test]
async fn extra_slices_are_deleted_and_the_newest_generation_kept() {
    let server = ApiServer::start().await;
    let mut publisher = server.publisher();
    publisher
        .sync(&inventory(64), &Attestation::default())
        .await
        .unwrap();
    // A second slice of an older generation (e.g. left by an older driver version).
    {
        let mut s = server.state.lock().unwrap();
        let mut old = s.slices.values().next().unwrap().clone();
        old["metadata"]["name"] = json!("old-slice");
        old["metadata"]["uid"] = json!("uid-old");
        old["spec"]["pool"]["generation"] = json!(0);
        let mut newest = old.clone();
        newest["metadata"]["name"] = json!("zz-newest");
        newest["metadata"]["uid"] = json!("uid-newest");
        newest["spec"]["pool"]["generation"] = json!(5);
        s.slices.insert("old-slice".into(), old);
        s.slices.insert("zz-newest".into(), newest);
    }
    let report = publisher
        .sync(&inventory(64), &Attestation::default())
        .await
        .unwrap();
    assert_eq!(report.deleted.len(), 2, "{report:?}");
    assert!(report.updated.is_none() && report.created.is_none());
    let slices = server.slices();
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0].metadata.name.as_deref(), Some("zz-newest"));
    let deletes: Vec<Seen> = server
        .take_seen()
        .into_iter()
        .filter(|s| s.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 2);
}

#[tokio::test]
async fn a_wiped_slice_comes_back_and_changes_are_published() {
    let server = ApiServer::start().await;
    let (inventory_tx, inventory_rx) = watch::channel(inventory(64));
    let (_attest_tx, attest_rx) = watch::channel(Attestation::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(server.publisher().run(inventory_rx, attest_rx, async {
        let _ = stop_rx.await;
    }));
    let first = server.until(|s| s.len() == 1).await;
    let first_name = first[0].metadata.name.clone();

    // Kubelet's wipe: DeleteCollection of the node's slices.
    server.state.lock().unwrap().slices.clear();
    let back = server.until(|s| s.len() == 1).await;
    assert_ne!(back[0].metadata.name, first_name);
    assert_eq!(epc_value(&back[0]), "64Mi");

    // A new inventory is published without waiting for a re-check.
    inventory_tx.send(inventory(32)).unwrap();
    let updated = server
        .until(|s| s.len() == 1 && epc_value(&s[0]) == "32Mi")
        .await;
    assert_eq!(updated[0].metadata.name, back[0].metadata.name);
    assert_eq!(
        updated[0].spec.pool.generation,
        back[0].spec.pool.generation + 1
    );

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap();
}

/// Collects log output.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    /// Collects what this thread logs while the guard lives.
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let log = Log::default();
        let writer = log.clone();
        let guard = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish(),
        );
        (log, guard)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn dropped_consumable_capacity_fields_are_said_once() {
    let (log, _guard) = Log::capture();
    let server = ApiServer::start().await;
    server.state.lock().unwrap().gate_off = true;
    let mut publisher = server.publisher();
    publisher
        .sync(&inventory(64), &Attestation::default())
        .await
        .unwrap();
    assert!(publisher.consumable_capacity_dropped());
    let stored = &server.slices()[0];
    assert_eq!(
        stored.spec.devices.as_ref().unwrap()[0].allow_multiple_allocations,
        None
    );
    // Syncing again neither rewrites the slice (what is stored is all the server keeps) nor
    // repeats the warning.
    server.take_seen();
    let report = publisher
        .sync(&inventory(64), &Attestation::default())
        .await
        .unwrap();
    assert!(report.unchanged(), "{report:?}");
    assert!(server.take_seen().iter().all(|s| s.method == "GET"));
    let text = log.text();
    assert_eq!(
        text.matches("DRAConsumableCapacity").count(),
        1,
        "log:\n{text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains("DRAConsumableCapacity"))
        .unwrap();
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("on by default from Kubernetes 1.36"),
        "{line}"
    );
    assert!(line.contains("exclusive"), "{line}");

    // A restarted driver finds the stripped slice and says it once at start, without writing.
    let (log2, _guard2) = Log::capture();
    let mut restarted = server.publisher();
    assert!(
        restarted
            .sync(&inventory(64), &Attestation::default())
            .await
            .unwrap()
            .unchanged()
    );
    assert!(restarted.consumable_capacity_dropped());
    assert_eq!(log2.text().matches("DRAConsumableCapacity").count(), 1);
}

#[tokio::test]
async fn with_the_gate_on_nothing_is_said() {
    let (log, _guard) = Log::capture();
    let server = ApiServer::start().await;
    let mut publisher = server.publisher();
    publisher
        .sync(&inventory(64), &Attestation::default())
        .await
        .unwrap();
    assert!(!publisher.consumable_capacity_dropped());
    assert!(!log.text().contains("DRAConsumableCapacity"));
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_an_api_server_that_does_not_answer() {
    let asked = Arc::new(Notify::new());
    let notify = Arc::clone(&asked);
    let (client, task) = api::serve(move |_req: Request<Incoming>| {
        let notify = Arc::clone(&notify);
        async move {
            notify.notify_one();
            std::future::pending::<(u16, Value)>().await
        }
    })
    .await;
    let publisher = Publisher::new(client, DRIVER, NODE).unwrap();
    let (_inventory_tx, inventory_rx) = watch::channel(inventory(64));
    let (_attestation_tx, attestation_rx) = watch::channel(Attestation::default());
    // Shut down once the first request hangs; the guard only keeps a broken test from hanging
    // (the client would wait minutes for an answer).
    let shutdown = async move { asked.notified().await };
    tokio::time::timeout(
        Duration::from_secs(60),
        publisher.run(inventory_rx, attestation_rx, shutdown),
    )
    .await
    .expect("run returns at shutdown while a request is pending");
    task.abort();
}

#[test]
fn a_bad_driver_name_is_refused_before_anything_is_sent() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = ApiServer::start().await;
        let err = Publisher::new(server.client.clone(), "Not_A_Domain", NODE)
            .err()
            .unwrap();
        assert!(err.to_string().contains("DNS subdomain"), "{err}");
        assert!(server.take_seen().is_empty());
    });
}
