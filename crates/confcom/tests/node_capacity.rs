//! `confcom device-plugin` advertising `sgx.intel.com/epc` in its node's status capacity, and
//! `confcom addon remove-capacity` taking it away, against a local HTTP server standing in for the
//! API server (reached through a kubeconfig with an `http://` server URL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;

/// Against hangs only; never a performance bound.
const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    content_type: String,
    body: String,
}

/// Answers requests in order from a script (500 when it runs out) and reports each one.
struct FakeApiServer {
    addr: std::net::SocketAddr,
    replies: Arc<Mutex<VecDeque<(u16, String)>>>,
    seen: mpsc::Receiver<Seen>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeApiServer {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let replies: Arc<Mutex<VecDeque<(u16, String)>>> = Arc::default();
        let (tx, seen) = mpsc::channel();
        let script = Arc::clone(&replies);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let script = Arc::clone(&script);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let script = Arc::clone(&script);
                        let tx = tx.clone();
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_owned();
                            let content_type = req
                                .headers()
                                .get(hyper::header::CONTENT_TYPE)
                                .map(|v| v.to_str().unwrap().to_owned())
                                .unwrap_or_default();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let _ = tx.send(Seen {
                                method,
                                path,
                                content_type,
                                body: String::from_utf8(body.to_vec()).unwrap(),
                            });
                            let (code, body) = script
                                .lock()
                                .unwrap()
                                .pop_front()
                                .unwrap_or_else(|| (500, failure(500)));
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(code)
                                    .header(hyper::header::CONTENT_TYPE, "application/json")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            replies,
            seen,
            _runtime: runtime,
        }
    }

    fn reply(&self, code: u16, body: serde_json::Value) {
        self.replies
            .lock()
            .unwrap()
            .push_back((code, body.to_string()));
    }

    fn next(&self) -> Seen {
        self.seen
            .recv_timeout(DEADLINE)
            .expect("no request reached the fake API server")
    }

    fn pending(&self) -> Vec<Seen> {
        self.seen.try_iter().collect()
    }

    /// A kubeconfig for this server in `dir`.
    fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
             users:\n- name: fake\n  user: {{}}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\n",
            self.addr
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn failure(code: u16) -> String {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "scripted failure", "reason": "InternalError", "code": code})
    .to_string()
}

fn node(name: &str, capacity: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "status": {"capacity": capacity}})
}

/// A short temporary directory (Unix socket paths are limited to 107 bytes).
fn short_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("nc")
        .tempdir_in("/tmp")
        .unwrap()
}

/// `confcom device-plugin --simulate` with no kubelet (it keeps retrying the registration), no
/// Kubernetes credentials unless the caller adds some, and stderr on a pipe.
fn simulated_plugin(dir: &Path) -> Command {
    let plugin_dir = dir.join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_confcom"));
    command
        .args([
            "device-plugin",
            "--simulate",
            "--epc-mib",
            "64",
            "--metrics-addr",
            "127.0.0.1:0",
            "--plugin-dir",
        ])
        .arg(&plugin_dir)
        .env("HOME", dir)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("NODE_NAME")
        .env_remove("CONFCOM_NO_NODE_CAPACITY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// A running plugin and its log lines.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn spawn(command: &mut Command) -> Self {
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// Log lines up to and including the first that contains `until`.
    fn log_until(&mut self, until: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("no log line with {until:?}; got {lines:?}"));
            let done = line.contains(until);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    fn stop(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// Logged by the plugin each time kubelet.sock is not there: proof that it is still serving.
const REGISTRATION_RETRY: &str = "registration with kubelet failed";

#[test]
fn the_device_plugin_patches_its_node_status_with_the_epc_bytes() {
    let server = FakeApiServer::start();
    server.reply(
        200,
        node("sgx-node-1", json!({"sgx.intel.com/epc": "67108864"})),
    );
    let dir = short_dir();
    let mut child = Running::spawn(
        simulated_plugin(dir.path())
            .env("KUBECONFIG", server.kubeconfig(dir.path()))
            .env("NODE_NAME", "sgx-node-1"),
    );
    let seen = server.next();
    assert_eq!(seen.method, "PATCH");
    assert_eq!(seen.path, "/api/v1/nodes/sgx-node-1/status");
    assert_eq!(seen.content_type, "application/json-patch+json");
    assert_eq!(
        seen.body,
        r#"[{"op":"add","path":"/status/capacity/sgx.intel.com~1epc","value":"67108864"}]"#
    );
    let lines = child.log_until("advertised in the node's status capacity");
    assert!(
        lines.iter().any(|l| l.contains("bytes=67108864")),
        "{lines:?}"
    );
    child.log_until(REGISTRATION_RETRY);
    child.stop();
    assert!(server.pending().is_empty(), "one size, one patch");
}

#[test]
fn without_a_node_name_nothing_is_advertised_and_the_log_says_so_once() {
    let server = FakeApiServer::start();
    let dir = short_dir();
    let mut child = Running::spawn(
        simulated_plugin(dir.path()).env("KUBECONFIG", server.kubeconfig(dir.path())),
    );
    let mut lines = child.log_until(REGISTRATION_RETRY);
    lines.extend(child.log_until(REGISTRATION_RETRY));
    child.stop();
    let said: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("no --node-name / NODE_NAME"))
        .collect();
    assert_eq!(said.len(), 1, "{lines:?}");
    assert!(said[0].contains("INFO"), "{said:?}");
    assert!(server.pending().is_empty());
}

#[test]
fn no_node_capacity_switches_it_off_despite_a_node_name() {
    let server = FakeApiServer::start();
    let dir = short_dir();
    let mut child = Running::spawn(
        simulated_plugin(dir.path())
            .args(["--node-name", "sgx-node-1", "--no-node-capacity"])
            .env("KUBECONFIG", server.kubeconfig(dir.path())),
    );
    let lines = child.log_until(REGISTRATION_RETRY);
    child.stop();
    assert!(
        lines.iter().any(|l| l.contains("--no-node-capacity")),
        "{lines:?}"
    );
    assert!(server.pending().is_empty());
}

#[test]
fn without_credentials_the_plugin_warns_and_keeps_serving() {
    let dir = short_dir();
    let mut child = Running::spawn(simulated_plugin(dir.path()).env("NODE_NAME", "sgx-node-1"));
    let lines = child.log_until("cannot advertise sgx.intel.com/epc");
    let warning = lines.last().unwrap();
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("keeps serving"), "{warning}");
    // Still running: the registration loop goes on after the warning.
    child.log_until(REGISTRATION_RETRY);
    assert!(child.child.try_wait().unwrap().is_none());
    child.stop();
}

#[test]
fn addon_remove_capacity_removes_the_entry_where_it_exists() {
    let server = FakeApiServer::start();
    server.reply(
        200,
        json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [
            node("a", json!({"cpu": "4", "sgx.intel.com/epc": "67108864"})),
            node("b", json!({"cpu": "4"})),
        ]}),
    );
    server.reply(200, node("a", json!({"cpu": "4"})));
    let dir = short_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(["addon", "remove-capacity"])
        .env("KUBECONFIG", server.kubeconfig(dir.path()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "a: removed sgx.intel.com/epc\nb: no sgx.intel.com/epc\n"
    );
    let list = server.next();
    assert_eq!(
        (list.method.as_str(), list.path.as_str()),
        ("GET", "/api/v1/nodes")
    );
    let patch = server.next();
    assert_eq!(patch.method, "PATCH");
    assert_eq!(patch.path, "/api/v1/nodes/a/status");
    assert_eq!(patch.content_type, "application/json-patch+json");
    assert_eq!(
        patch.body,
        r#"[{"op":"remove","path":"/status/capacity/sgx.intel.com~1epc"}]"#
    );
    assert!(server.pending().is_empty());
}

#[test]
fn addon_remove_capacity_fails_when_a_node_cannot_be_patched() {
    let server = FakeApiServer::start();
    server.reply(200, node("c", json!({"sgx.intel.com/epc": "4096"})));
    // The patch gets the script's default: 500.
    let dir = short_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(["addon", "remove-capacity", "--node", "c"])
        .env("KUBECONFIG", server.kubeconfig(dir.path()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("c: patching the status of node \"c\" failed")),
        "{stderr}"
    );
    let get = server.next();
    assert_eq!(
        (get.method.as_str(), get.path.as_str()),
        ("GET", "/api/v1/nodes/c")
    );
    assert_eq!(server.next().method, "PATCH");
}

#[test]
fn serving_a_device_resource_named_like_the_capacity_is_refused() {
    let dir = short_dir();
    let out = simulated_plugin(dir.path())
        .args([
            "--node-name",
            "sgx-node-1",
            "--epc-resource",
            "sgx.intel.com/epc",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--no-node-capacity"), "{stderr}");
    // Switched off, the name is the operator's to use.
    let mut child = Running::spawn(simulated_plugin(dir.path()).args([
        "--epc-resource",
        "sgx.intel.com/epc",
        "--no-node-capacity",
    ]));
    let lines = child.log_until(REGISTRATION_RETRY);
    child.stop();
    assert!(
        lines.iter().any(|l| l.contains("sgx.intel.com/epc")),
        "{lines:?}"
    );
}

#[test]
fn a_failed_api_request_is_reported_once_by_us_not_again_by_the_client_library() {
    // No scripted reply: the stand-in answers 500, which kube's client also classifies as a
    // failure of its own HTTP layer.
    let server = FakeApiServer::start();
    let dir = short_dir();
    let mut child = Running::spawn(
        simulated_plugin(dir.path())
            .env("KUBECONFIG", server.kubeconfig(dir.path()))
            .env("NODE_NAME", "sgx-node-1"),
    );
    let lines = child.log_until("cannot advertise the EPC size in the node's status capacity");
    child.stop();
    let warning = lines.last().unwrap();
    assert!(
        warning.contains("WARN") && warning.contains("500"),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("ERROR")),
        "the failure is logged at ERROR besides our warning: {lines:?}"
    );
}
