//! An API-server stand-in for one node's SGX DRA driver, on a loopback port, reached through a
//! kubeconfig with an `http://` server. It keeps state like the API server (uids,
//! resourceVersions, names from `generateName`, 409 on a stale resourceVersion or a failed
//! precondition, immutable fields) and checks every request as the real one expects it:
//!
//! - `GET /api/v1/nodes/<node>`: the Node, with its uid;
//! - `GET /apis/resource.k8s.io/v1/resourceslices?fieldSelector=spec.nodeName=<node>,spec.driver=<driver>`;
//! - `POST …/resourceslices?fieldManager=confcom-dra-driver`, `PUT …/resourceslices/<name>?fieldManager=…`
//!   (JSON bodies parsed into `resource.k8s.io/v1` ResourceSlices with nothing left over) and
//!   `DELETE …/resourceslices/<name>` (with preconditions);
//! - `GET /apis/resource.k8s.io/v1/namespaces/<ns>/resourceclaims/<name>`: the claims put in.
//!
//! Anything else is answered as the API server would refuse it and recorded in
//! [`State::errors`]. With [`State::gate_off`] it stores slices as an API server without the
//! `DRAConsumableCapacity` feature gate does (no `allowMultipleAllocations`, no
//! `requestPolicy`).
//!
//! Used by `confcom bench dra-driver` and by the binary's end-to-end test
//! (`crates/confcom/tests/dra_driver.rs` includes this file).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::resource::v1::ResourceSlice;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The ResourceSlice collection.
pub const SLICES: &str = "/apis/resource.k8s.io/v1/resourceslices";
/// The field manager the driver must name in its writes.
pub const FIELD_MANAGER: &str = dra_driver::publish::FIELD_MANAGER;
/// Largest request body read (a slice or delete options).
const MAX_BODY: usize = 1 << 20;

/// One request, as seen.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path.
    pub path: String,
    /// The decoded query.
    pub query: BTreeMap<String, String>,
}

impl Seen {
    /// A list of this node's slices.
    pub fn is_slice_list(&self) -> bool {
        self.method == "GET" && self.path == SLICES
    }

    /// A write to a slice (create, update, delete).
    pub fn is_slice_write(&self) -> bool {
        self.method != "GET" && self.path.starts_with(SLICES)
    }
}

/// What the stand-in holds.
#[derive(Default)]
pub struct State {
    /// The one node.
    pub node: String,
    /// Its uid.
    pub node_uid: String,
    /// The driver whose slices are listed.
    pub driver: String,
    /// Stored slices by name, as the API server returns them.
    pub slices: BTreeMap<String, Value>,
    /// ResourceClaims by (namespace, name), served as they are.
    pub claims: BTreeMap<(String, String), Value>,
    /// Store slices as an API server without the DRAConsumableCapacity gate.
    pub gate_off: bool,
    /// Every request, in order.
    pub seen: Vec<Seen>,
    /// Requests the real API server would answer differently.
    pub errors: Vec<String>,
    next_rv: u64,
    next_name: u64,
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn query_map(query: &str) -> BTreeMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// `body` as a ResourceSlice, refused when it has a field the v1 types do not know or breaks an
/// API rule the driver's own validation knows.
fn parse_slice(body: &[u8]) -> Result<ResourceSlice, String> {
    let raw: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let slice: ResourceSlice =
        serde_json::from_value(raw.clone()).map_err(|e| format!("not a ResourceSlice: {e}"))?;
    let back = serde_json::to_value(&slice).map_err(|e| e.to_string())?;
    if back != raw {
        return Err(format!(
            "fields the v1 types do not know: sent {raw}, typed {back}"
        ));
    }
    if raw["apiVersion"] != "resource.k8s.io/v1" || raw["kind"] != "ResourceSlice" {
        return Err(format!(
            "apiVersion {} kind {}",
            raw["apiVersion"], raw["kind"]
        ));
    }
    dra_driver::slices::validate_slice(&slice).map_err(|e| format!("invalid: {e}"))?;
    Ok(slice)
}

fn uses_consumable_capacity(slice: &Value) -> bool {
    slice.to_string().contains("allowMultipleAllocations")
}

fn drop_consumable_capacity(slice: &mut Value) {
    let Some(devices) = slice["spec"]["devices"].as_array_mut() else {
        return;
    };
    for device in devices.iter_mut().filter_map(Value::as_object_mut) {
        device.remove("allowMultipleAllocations");
        if let Some(capacity) = device.get_mut("capacity").and_then(Value::as_object_mut) {
            for c in capacity.values_mut().filter_map(Value::as_object_mut) {
                c.remove("requestPolicy");
            }
        }
    }
}

impl State {
    fn rv(&mut self) -> String {
        self.next_rv += 1;
        self.next_rv.to_string()
    }

    fn refuse(&mut self, what: String) -> (u16, Value) {
        let answer = status(400, "BadRequest", &what);
        self.errors.push(what);
        answer
    }

    /// The stored slices, typed.
    pub fn typed_slices(&self) -> Result<Vec<ResourceSlice>, serde_json::Error> {
        self.slices
            .values()
            .map(|v| serde_json::from_value(v.clone()))
            .collect()
    }

    /// Slice writes seen (create, update, delete).
    pub fn slice_writes(&self) -> usize {
        self.seen.iter().filter(|s| s.is_slice_write()).count()
    }

    /// Slice lists seen.
    pub fn slice_lists(&self) -> usize {
        self.seen.iter().filter(|s| s.is_slice_list()).count()
    }

    fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &BTreeMap<String, String>,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        if matches!(method, "POST" | "PUT") {
            if content_type != "application/json" {
                return self.refuse(format!("{method} {path}: content type {content_type:?}"));
            }
            let expected = BTreeMap::from([("fieldManager".to_owned(), FIELD_MANAGER.to_owned())]);
            if *query != expected {
                return self.refuse(format!("{method} {path}: query {query:?}"));
            }
        } else if method == "DELETE" && !query.is_empty() {
            return self.refuse(format!("DELETE {path}: query {query:?}"));
        }
        if method == "GET" && path == format!("/api/v1/nodes/{}", self.node) {
            if !query.is_empty() {
                return self.refuse(format!("GET {path}: query {query:?}"));
            }
            return (
                200,
                json!({"apiVersion": "v1", "kind": "Node",
                       "metadata": {"name": self.node, "uid": self.node_uid,
                                    "resourceVersion": "1",
                                    "creationTimestamp": "2026-12-06T19:00:00Z"},
                       "spec": {}, "status": {}}),
            );
        }
        if method == "GET" && path == SLICES {
            let selector = format!("spec.nodeName={},spec.driver={}", self.node, self.driver);
            let expected = BTreeMap::from([("fieldSelector".to_owned(), selector)]);
            if *query != expected {
                return self.refuse(format!("list with query {query:?}"));
            }
            let items: Vec<Value> = self
                .slices
                .values()
                .filter(|s| {
                    s["spec"]["nodeName"] == self.node && s["spec"]["driver"] == self.driver
                })
                .cloned()
                .collect();
            return (
                200,
                json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSliceList",
                       "metadata": {"resourceVersion": self.next_rv.to_string()}, "items": items}),
            );
        }
        if method == "POST" && path == SLICES {
            let slice = match parse_slice(body) {
                Ok(slice) => slice,
                Err(e) => return self.refuse(format!("POST: {e}")),
            };
            let meta = &slice.metadata;
            if meta.name.is_some() || meta.resource_version.is_some() || meta.uid.is_some() {
                return self.refuse(format!("POST with server-set metadata: {meta:?}"));
            }
            let Some(prefix) = meta.generate_name.clone() else {
                return self.refuse("POST without name or generateName".to_owned());
            };
            self.next_name += 1;
            let name = format!("{prefix}{:05x}", self.next_name);
            let Ok(mut stored) = serde_json::to_value(&slice) else {
                return status(500, "InternalError", "cannot store the slice");
            };
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
                    &format!("resourceslices.resource.k8s.io \"{name}\" not found"),
                );
            };
            if method == "PUT" {
                let slice = match parse_slice(body) {
                    Ok(slice) => slice,
                    Err(e) => return self.refuse(format!("PUT: {e}")),
                };
                if slice.metadata.name.as_deref() != Some(name) {
                    return self.refuse(format!("PUT {name} with another name"));
                }
                if slice.metadata.resource_version.as_deref()
                    != current["metadata"]["resourceVersion"].as_str()
                {
                    return status(409, "Conflict", "the object has been modified");
                }
                let Ok(mut stored) = serde_json::to_value(&slice) else {
                    return status(500, "InternalError", "cannot store the slice");
                };
                for field in ["driver", "nodeName"] {
                    if stored["spec"][field] != current["spec"][field] {
                        return status(
                            422,
                            "Invalid",
                            &format!("spec.{field}: field is immutable"),
                        );
                    }
                }
                if stored["spec"]["pool"]["name"] != current["spec"]["pool"]["name"] {
                    return status(422, "Invalid", "spec.pool.name: field is immutable");
                }
                stored["metadata"]["uid"] = current["metadata"]["uid"].clone();
                stored["metadata"]["resourceVersion"] = json!(self.rv());
                // A disabled field is kept only where the old object already used it.
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
                    match serde_json::from_slice(body) {
                        Ok(options) => options,
                        Err(e) => return self.refuse(format!("DELETE options: {e}")),
                    }
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
        if method == "GET"
            && let [
                "",
                "apis",
                "resource.k8s.io",
                "v1",
                "namespaces",
                ns,
                "resourceclaims",
                name,
            ] = path.split('/').collect::<Vec<_>>().as_slice()
        {
            if !query.is_empty() {
                return self.refuse(format!("GET {path}: query {query:?}"));
            }
            return match self.claims.get(&((*ns).to_owned(), (*name).to_owned())) {
                Some(claim) => (200, claim.clone()),
                None => {
                    let (code, mut body) = status(
                        404,
                        "NotFound",
                        &format!("resourceclaims.resource.k8s.io \"{name}\" not found"),
                    );
                    body["details"] =
                        json!({"name": name, "group": "resource.k8s.io", "kind": "resourceclaims"});
                    (code, body)
                }
            };
        }
        self.errors.push(format!("unexpected {method} {path}"));
        status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }
}

/// The stand-in, serving until dropped.
pub struct ApiStandIn {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiStandIn {
    /// Serves `node` (with `node_uid`) and `driver`'s slices on a loopback port, from the
    /// current tokio runtime.
    pub async fn start(node: &str, node_uid: &str, driver: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            node: node.to_owned(),
            node_uid: node_uid.to_owned(),
            driver: driver.to_owned(),
            ..State::default()
        }));
        let changed = Arc::new(Notify::new());
        let (shared, notify) = (Arc::clone(&state), Arc::clone(&changed));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, notify) = (Arc::clone(&shared), Arc::clone(&notify));
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (state, notify) = (Arc::clone(&state), Arc::clone(&notify));
                        async move {
                            let (code, reply) = serve(&state, req).await;
                            notify.notify_waiters();
                            let mut response =
                                Response::new(Full::new(Bytes::from(reply.to_string())));
                            *response.status_mut() = hyper::StatusCode::from_u16(code)
                                .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
                            response.headers_mut().insert(
                                hyper::header::CONTENT_TYPE,
                                hyper::header::HeaderValue::from_static("application/json"),
                            );
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            state,
            changed,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its state, to read or change.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serve `claim` (a ResourceClaim as JSON) by its namespace and name.
    pub fn put_claim(&self, claim: Value) {
        let ns = claim["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = claim["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.state().claims.insert((ns, name), claim);
    }

    /// Writes a kubeconfig for this server into `dir`; its path.
    pub fn kubeconfig(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: standin\n  cluster:\n    server: http://{}\n\
             users:\n- name: standin\n  user: {{}}\n\
             contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n\
             current-context: standin\n",
            self.addr
        );
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// Waits until `check` gives something for the state after a request (or now). Unbounded:
    /// callers bound it.
    pub async fn until<T>(&self, mut check: impl FnMut(&State) -> Option<T>) -> T {
        loop {
            let notified = self.changed.notified();
            if let Some(found) = check(&self.state()) {
                return found;
            }
            notified.await;
        }
    }
}

impl Drop for ApiStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(state: &Mutex<State>, req: Request<Incoming>) -> (u16, Value) {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = query_map(req.uri().query().unwrap_or_default());
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // The API server answers JSON unless the client asks for protobuf or CBOR only.
    let accept = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = Limited::new(req.into_body(), MAX_BODY).collect().await;
    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
    s.seen.push(Seen {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
    });
    if let Some(accept) = accept
        && !accept.contains("application/json")
        && !accept.contains("*/*")
    {
        return s.refuse(format!("{method} {path}: Accept {accept}"));
    }
    let Ok(body) = body else {
        return s.refuse(format!(
            "{method} {path}: body unreadable or over {MAX_BODY} bytes"
        ));
    };
    s.handle(&method, &path, &query, &content_type, &body.to_bytes())
}
