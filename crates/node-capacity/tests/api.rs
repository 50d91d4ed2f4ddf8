#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The requests the publisher and the removal functions send, checked byte for byte by a local
//! HTTP server standing in for the API server (kube talks plain HTTP to an `http://` cluster URL).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use node_capacity::{EPC_RESOURCE, Error, Published, Publisher, Removed};
use serde_json::json;
use tokio::sync::{mpsc, watch};

const NODE: &str = "sgx-node-1";
const JSON_PATCH: &str = "application/json-patch+json";

/// One request as the API server would see it.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: String,
}

/// A scripted API server: answers requests in order from `replies` (an unscripted request gets a
/// 500) and reports each request on a channel before answering it.
struct FakeApiServer {
    client: kube::Client,
    replies: Arc<Mutex<VecDeque<(u16, String)>>>,
    seen: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeApiServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let replies: Arc<Mutex<VecDeque<(u16, String)>>> = Arc::default();
        let (tx, seen) = mpsc::unbounded_channel();
        let script = Arc::clone(&replies);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let script = Arc::clone(&script);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let script = Arc::clone(&script);
                        let tx = tx.clone();
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_owned();
                            let query = req.uri().query().unwrap_or_default().to_owned();
                            let content_type = req
                                .headers()
                                .get(hyper::header::CONTENT_TYPE)
                                .map(|v| v.to_str().unwrap().to_owned())
                                .unwrap_or_default();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let _ = tx.send(Seen {
                                method,
                                path,
                                query,
                                content_type,
                                body: String::from_utf8(body.to_vec()).unwrap(),
                            });
                            let (code, body) =
                                script.lock().unwrap().pop_front().unwrap_or_else(|| {
                                    (500, status_body(500, "InternalError", "unscripted"))
                                });
                            let response = Response::builder()
                                .status(code)
                                .header(hyper::header::CONTENT_TYPE, "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let url = format!("http://{addr}").parse().unwrap();
        let client = kube::Client::try_from(kube::Config::new(url)).unwrap();
        Self {
            client,
            replies,
            seen,
            task,
        }
    }

    fn reply(&self, code: u16, body: serde_json::Value) {
        self.replies
            .lock()
            .unwrap()
            .push_back((code, body.to_string()));
    }

    fn fail(&self, code: u16, reason: &str) {
        self.replies
            .lock()
            .unwrap()
            .push_back((code, status_body(code, reason, "scripted failure")));
    }

    /// The next request (the guard only keeps a broken test from hanging; nothing is timed).
    async fn next(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(60), self.seen.recv())
            .await
            .expect("no request reached the server")
            .unwrap()
    }

    /// Requests already received and not yet looked at.
    fn pending(&mut self) -> Vec<Seen> {
        std::iter::from_fn(|| self.seen.try_recv().ok()).collect()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn status_body(code: u16, reason: &str, message: &str) -> String {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    })
    .to_string()
}

fn node(name: &str, capacity: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name},
        "status": {"capacity": capacity}
    })
}

fn add_body(bytes: u64) -> String {
    format!(r#"[{{"op":"add","path":"/status/capacity/sgx.intel.com~1epc","value":"{bytes}"}}]"#)
}

const REMOVE_BODY: &str = r#"[{"op":"remove","path":"/status/capacity/sgx.intel.com~1epc"}]"#;

fn assert_add_patch(seen: &Seen, bytes: u64) {
    assert_eq!(seen.method, "PATCH");
    assert_eq!(seen.path, format!("/api/v1/nodes/{NODE}/status"));
    assert_eq!(seen.content_type, JSON_PATCH);
    assert_eq!(seen.body, add_body(bytes));
}

#[tokio::test]
async fn publish_sends_the_json_patch_to_the_status_subresource() {
    let mut server = FakeApiServer::start().await;
    server.reply(200, node(NODE, json!({"sgx.intel.com/epc": "98566144"})));
    let mut publisher = Publisher::new(server.client.clone(), NODE);
    assert_eq!(
        publisher.publish(98_566_144).await.unwrap(),
        Published::Patched
    );
    let seen = server.next().await;
    assert_eq!(seen.method, "PATCH");
    assert_eq!(seen.path, "/api/v1/nodes/sgx-node-1/status");
    let query: Vec<&str> = seen.query.split('&').filter(|p| !p.is_empty()).collect();
    assert_eq!(query, ["fieldManager=confcom-device-plugin"]);
    assert_eq!(seen.content_type, "application/json-patch+json");
    assert_eq!(
        seen.body,
        r#"[{"op":"add","path":"/status/capacity/sgx.intel.com~1epc","value":"98566144"}]"#
    );
    assert_eq!(publisher.published(), Some(98_566_144));
}

#[tokio::test]
async fn an_unchanged_value_is_not_sent_again_and_a_new_one_is() {
    let mut server = FakeApiServer::start().await;
    server.reply(200, node(NODE, json!({})));
    server.reply(200, node(NODE, json!({})));
    server.reply(200, node(NODE, json!({})));
    let mut publisher = Publisher::new(server.client.clone(), NODE);
    assert_eq!(
        publisher.publish(1 << 20).await.unwrap(),
        Published::Patched
    );
    assert_eq!(
        publisher.publish(1 << 20).await.unwrap(),
        Published::Unchanged
    );
    assert_eq!(
        publisher.publish(2 << 20).await.unwrap(),
        Published::Patched
    );
    let seen = server.pending();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_add_patch(&seen[0], 1 << 20);
    assert_add_patch(&seen[1], 2 << 20);
    // After forget() the same value goes out again.
    publisher.forget();
    assert_eq!(
        publisher.publish(2 << 20).await.unwrap(),
        Published::Patched
    );
    assert_add_patch(&server.next().await, 2 << 20);
}

#[tokio::test]
async fn a_failed_patch_is_an_error_and_is_not_remembered() {
    let mut server = FakeApiServer::start().await;
    server.fail(403, "Forbidden");
    server.reply(200, node(NODE, json!({})));
    let mut publisher = Publisher::new(server.client.clone(), NODE);
    let err = publisher.publish(4096).await.unwrap_err();
    match &err {
        Error::Patch { node, error } => {
            assert_eq!(node, NODE);
            assert!(
                matches!(error, kube::Error::Api(status) if status.code == 403),
                "{error:?}"
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(publisher.published(), None);
    assert_eq!(publisher.publish(4096).await.unwrap(), Published::Patched);
    let seen = server.pending();
    assert_eq!(seen.len(), 2);
    assert_add_patch(&seen[0], 4096);
    assert_add_patch(&seen[1], 4096);
}

#[tokio::test]
async fn run_retries_after_a_server_error_and_follows_changes() {
    let mut server = FakeApiServer::start().await;
    server.fail(500, "InternalError");
    server.reply(200, node(NODE, json!({})));
    server.reply(200, node(NODE, json!({})));
    let publisher = Publisher::new(server.client.clone(), NODE)
        .with_backoff(Duration::from_millis(1), Duration::from_millis(10));
    let (sizes, watched) = watch::channel(None);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(publisher.run(watched, async move {
        let _ = stopped.await;
    }));

    // Nothing known yet: nothing is sent. The first size fails once (500), then goes through.
    sizes.send_replace(Some(64 << 20));
    assert_add_patch(&server.next().await, 64 << 20);
    assert_add_patch(&server.next().await, 64 << 20);

    // The same value again is not re-sent: the next request carries the new value. (The
    // publisher runs on this thread: yielding lets it take the repeated value before the next.)
    sizes.send_replace(Some(64 << 20));
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    sizes.send_replace(Some(128 << 20));
    assert_add_patch(&server.next().await, 128 << 20);

    let _ = stop.send(());
    task.await.unwrap();
    assert!(server.pending().is_empty());
}

#[tokio::test]
async fn run_patches_an_unchanged_value_again_after_a_while() {
    // Something (kubelet on a re-created node, an operator) may reset the entry: the value is
    // asserted again periodically, not only when it changes.
    let mut server = FakeApiServer::start().await;
    for _ in 0..3 {
        server.reply(200, node(NODE, json!({})));
    }
    let publisher =
        Publisher::new(server.client.clone(), NODE).with_reassert(Duration::from_millis(20));
    let (sizes, watched) = watch::channel(Some(32 << 20));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(publisher.run(watched, async move {
        let _ = stopped.await;
    }));
    for _ in 0..3 {
        assert_add_patch(&server.next().await, 32 << 20);
    }
    let _ = stop.send(());
    task.await.unwrap();
    drop(sizes);
}

#[tokio::test]
async fn run_ends_when_the_sender_is_dropped() {
    let server = FakeApiServer::start().await;
    let publisher = Publisher::new(server.client.clone(), NODE);
    let (sizes, watched) = watch::channel(None);
    let task = tokio::spawn(publisher.run(watched, std::future::pending()));
    drop(sizes);
    task.await.unwrap();
}

#[tokio::test]
async fn remove_reads_the_node_then_sends_the_remove_patch() {
    let mut server = FakeApiServer::start().await;
    server.reply(
        200,
        node(NODE, json!({"cpu": "4", "sgx.intel.com/epc": "98566144"})),
    );
    server.reply(200, node(NODE, json!({"cpu": "4"})));
    let removed = node_capacity::remove(server.client.clone(), NODE, EPC_RESOURCE)
        .await
        .unwrap();
    assert_eq!(removed, Removed::Removed);
    let get = server.next().await;
    assert_eq!(
        (get.method.as_str(), get.path.as_str()),
        ("GET", "/api/v1/nodes/sgx-node-1")
    );
    let patch = server.next().await;
    assert_eq!(patch.method, "PATCH");
    assert_eq!(patch.path, "/api/v1/nodes/sgx-node-1/status");
    assert_eq!(patch.content_type, JSON_PATCH);
    assert_eq!(patch.body, REMOVE_BODY);
}

#[tokio::test]
async fn remove_leaves_a_node_without_the_entry_alone() {
    let mut server = FakeApiServer::start().await;
    server.reply(200, node(NODE, json!({"cpu": "4"})));
    let removed = node_capacity::remove(server.client.clone(), NODE, EPC_RESOURCE)
        .await
        .unwrap();
    assert_eq!(removed, Removed::Absent);
    assert_eq!(server.next().await.method, "GET");
    assert!(server.pending().is_empty(), "no patch for a missing entry");
}

#[tokio::test]
async fn remove_takes_422_as_already_gone() {
    let mut server = FakeApiServer::start().await;
    server.reply(200, node(NODE, json!({"sgx.intel.com/epc": "4096"})));
    server.fail(422, "Invalid");
    let removed = node_capacity::remove(server.client.clone(), NODE, EPC_RESOURCE)
        .await
        .unwrap();
    assert_eq!(removed, Removed::Absent);
    assert_eq!(server.pending().len(), 2);
}

#[tokio::test]
async fn remove_from_all_nodes_patches_only_nodes_with_the_entry_and_reports_each() {
    let mut server = FakeApiServer::start().await;
    server.reply(
        200,
        json!({
            "apiVersion": "v1", "kind": "NodeList", "metadata": {},
            "items": [
                node("a", json!({"sgx.intel.com/epc": "4096"})),
                node("b", json!({"cpu": "2"})),
                node("c", json!({"sgx.intel.com/epc": "8192"})),
            ]
        }),
    );
    server.reply(200, node("a", json!({})));
    server.fail(500, "InternalError");
    let results = node_capacity::remove_from_all_nodes(server.client.clone(), EPC_RESOURCE)
        .await
        .unwrap();
    let names: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(matches!(results[0].1, Ok(Removed::Removed)));
    assert!(matches!(results[1].1, Ok(Removed::Absent)));
    assert!(matches!(&results[2].1, Err(Error::Patch { node, .. }) if node == "c"));

    let list = server.next().await;
    assert_eq!(
        (list.method.as_str(), list.path.as_str()),
        ("GET", "/api/v1/nodes")
    );
    for name in ["a", "c"] {
        let patch = server.next().await;
        assert_eq!(patch.method, "PATCH");
        assert_eq!(patch.path, format!("/api/v1/nodes/{name}/status"));
        assert_eq!(patch.content_type, JSON_PATCH);
        assert_eq!(patch.body, REMOVE_BODY);
    }
    assert!(server.pending().is_empty());
}
