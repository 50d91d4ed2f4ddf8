#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The endpoint over real TCP with raw HTTP/1.1 requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ops_http::{ExtraRoutes, Limits, Readiness, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Deadline against hangs only; never a performance bound.
const DEADLINE: Duration = Duration::from_secs(30);
/// The body cap of the test server's POST route `/echo`.
const POST_CAP: usize = 1024;

struct Server {
    addr: SocketAddr,
    readiness: Readiness,
    counter: Counter,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(limits: Limits) -> Server {
    let mut registry = Registry::default();
    let counter: Counter = Counter::default();
    registry.register(
        "confcom_test_things",
        "Things counted by the test",
        counter.clone(),
    );
    let readiness = Readiness::new();
    let extra = ExtraRoutes::new(
        |path: &str, query: Option<&str>, _headers: &ops_http::HeaderMap| {
            let name = path.strip_prefix("/collateral/")?;
            match name {
                "teapot" => Some(Response::new(418, "text/plain", b"short\n".to_vec())),
                "bad-type" => Some(Response::new(200, "text/plain\nx", b"x".to_vec())),
                _ => {
                    let mut answer = Response::ok(
                        "application/json",
                        format!("{{\"name\":\"{name}\"}}").into_bytes(),
                    );
                    answer.headers = vec![
                        ("X-Query", query.unwrap_or("none").to_owned()),
                        ("X-Bad", "line\nbreak".to_owned()),
                    ];
                    Some(answer)
                }
            }
        },
    )
    .with_post(
        POST_CAP,
        |path: &str| path == "/echo",
        |_path: &str, query: Option<&str>, headers: &ops_http::HeaderMap, body: &[u8]| {
            let mut answer = Response::ok("application/octet-stream", body.to_vec());
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            answer.headers = vec![
                ("X-Query", query.unwrap_or("none").to_owned()),
                ("X-Content-Type", content_type.to_owned()),
            ];
            Some(answer)
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(ops_http::serve_with_limits(
        listener,
        Arc::new(registry),
        readiness.clone(),
        Some(extra),
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        readiness,
        counter,
        stop: Some(stop),
        task,
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    tokio::time::timeout(DEADLINE, async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        out
    })
    .await
    .expect("server answered before the deadline")
}

fn parse(bytes: &[u8]) -> Answer {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&bytes[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Answer {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}

async fn request(addr: SocketAddr, method: &str, path: &str) -> Answer {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    parse(&raw(addr, req.as_bytes()).await)
}

#[tokio::test]
async fn healthz_answers_while_running() {
    let server = start(Limits::default()).await;
    let answer = request(server.addr, "GET", "/healthz").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"ok\n");
}

#[tokio::test]
async fn readyz_follows_the_readiness_flag() {
    let server = start(Limits::default()).await;
    assert_eq!(request(server.addr, "GET", "/readyz").await.status, 503);
    server.readiness.set_ready(true);
    assert_eq!(request(server.addr, "GET", "/readyz").await.status, 200);
    server.readiness.set_ready(false);
    assert_eq!(request(server.addr, "GET", "/readyz").await.status, 503);
}

#[tokio::test]
async fn metrics_serves_the_registry_in_openmetrics_text() {
    let server = start(Limits::default()).await;
    server.counter.inc_by(7);
    let answer = request(server.addr, "GET", "/metrics?x=1").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some(ops_http::METRICS_CONTENT_TYPE)
    );
    let text = String::from_utf8(answer.body).unwrap();
    assert!(
        text.contains("# HELP confcom_test_things Things counted by the test."),
        "{text}"
    );
    assert!(text.contains("confcom_test_things_total 7"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[tokio::test]
async fn extra_routes_answer_their_paths_and_others_are_404() {
    let server = start(Limits::default()).await;
    let answer = request(server.addr, "GET", "/collateral/tcb?fmspc=00906ED50000").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.body, br#"{"name":"tcb"}"#);
    // The route sees the query; its headers are sent, an invalid one is left out.
    assert_eq!(answer.header("x-query"), Some("fmspc=00906ED50000"));
    assert_eq!(answer.header("x-bad"), None);

    let teapot = request(server.addr, "GET", "/collateral/teapot").await;
    assert_eq!(teapot.status, 418);
    assert_eq!(teapot.body, b"short\n");

    let bad_type = request(server.addr, "GET", "/collateral/bad-type").await;
    assert_eq!(bad_type.status, 200);
    assert_eq!(
        bad_type.header("content-type"),
        Some("application/octet-stream")
    );

    assert_eq!(
        request(server.addr, "GET", "/nothing-here").await.status,
        404
    );
}

#[tokio::test]
async fn head_has_no_body_and_other_methods_are_refused() {
    let server = start(Limits::default()).await;
    let head = request(server.addr, "HEAD", "/healthz").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    let post = raw(
        server.addr,
        b"POST /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    let post = parse(&post);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn garbage_and_oversized_heads_get_an_error_not_a_hang() {
    let server = start(Limits::default()).await;
    let garbage = raw(server.addr, b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n").await;
    if !garbage.is_empty() {
        assert_eq!(parse(&garbage).status, 400);
    }
    let mut huge = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    huge.extend(b"\r\n\r\n");
    let answer = raw(server.addr, &huge).await;
    if !answer.is_empty() {
        assert_eq!(parse(&answer).status, 431);
    }
    // The server is still alive afterwards.
    assert_eq!(request(server.addr, "GET", "/healthz").await.status, 200);
}

#[tokio::test]
async fn a_silent_client_is_disconnected() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let server = start(limits).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut buf))
        .await
        .expect("disconnected");
    // Either a clean close or a reset; never a served request.
    if read.is_ok() {
        assert!(
            !buf.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf)
        );
    }
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let limits = Limits {
        max_connections: 1,
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = start(limits).await;
    let (events, mut seen) = mpsc::unbounded_channel::<&'static str>();

    // The first client takes the only slot and sends nothing more.
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    first.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    // Wait until the server has taken the first connection: a second request is then queued.
    let first_events = events.clone();
    let first_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = first.read_to_end(&mut buf).await;
        first_events.send("first closed").unwrap();
    });
    let addr = server.addr;
    let second_task = tokio::spawn(async move {
        let answer = request(addr, "GET", "/healthz").await;
        assert_eq!(answer.status, 200);
        events.send("second answered").unwrap();
    });
    let order = tokio::time::timeout(DEADLINE, async {
        vec![seen.recv().await.unwrap(), seen.recv().await.unwrap()]
    })
    .await
    .unwrap();
    first_task.await.unwrap();
    second_task.await.unwrap();
    assert_eq!(order, ["first closed", "second answered"]);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let mut server = start(Limits::default()).await;
    assert_eq!(request(server.addr, "GET", "/healthz").await.status, 200);
    server.stop.take().unwrap().send(()).unwrap();
    let result = tokio::time::timeout(DEADLINE, &mut server.task)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok());
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_blocking_route_does_not_stall_other_connections() {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let wait = std::sync::Mutex::new(wait);
    let extra = ExtraRoutes::blocking(
        move |path: &str, _query: Option<&str>, _headers: &ops_http::HeaderMap| {
            (path == "/slow").then(|| {
                // Holds its thread until the test lets it go, as a silent upstream would.
                let _ = wait.lock().unwrap().recv();
                Response::ok("text/plain", b"late\n".to_vec())
            })
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(ops_http::serve(
        listener,
        Arc::new(Registry::default()),
        Readiness::new(),
        Some(extra),
        async move {
            let _ = stopped.await;
        },
    ));
    let slow = tokio::spawn(request(addr, "GET", "/slow"));
    // With the only worker free, the health check is answered while /slow waits.
    let health = request(addr, "GET", "/healthz").await;
    assert_eq!(health.status, 200);
    assert!(!slow.is_finished());
    release.send(()).unwrap();
    let slow = slow.await.unwrap();
    assert_eq!(slow.status, 200);
    assert_eq!(slow.body, b"late\n");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn post_routes_get_the_whole_body_and_other_paths_stay_405() {
    let server = start(Limits::default()).await;
    let body = "x".repeat(POST_CAP);
    let req = format!(
        "POST /echo?a=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = parse(&raw(server.addr, req.as_bytes()).await);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, body.as_bytes());
    assert_eq!(answer.header("x-query"), Some("a=1"));
    assert_eq!(answer.header("x-content-type"), Some("application/json"));

    // A chunked body arrives whole too.
    let chunked = b"POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    let answer = parse(&raw(server.addr, chunked).await);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"abcde");

    // POST elsewhere is still refused, and the POST path is no GET route.
    let other = raw(
        server.addr,
        b"POST /collateral/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
    )
    .await;
    assert_eq!(parse(&other).status, 405);
    assert_eq!(request(server.addr, "GET", "/echo").await.status, 404);
}

/// Sends `head` then `body` on a keep-alive connection and reads until the server closes it.
async fn answered_then_closed(addr: SocketAddr, head: &[u8], body: &[u8]) -> Answer {
    tokio::time::timeout(DEADLINE, async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(head).await.unwrap();
        // The server may answer (and close) before the whole body is sent.
        let _ = stream.write_all(body).await;
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        parse(&out)
    })
    .await
    .expect("closed before the deadline")
}

#[tokio::test]
async fn an_oversized_body_gets_413_and_the_connection_is_closed() {
    let server = start(Limits::default()).await;
    // Declared too large: answered without reading the body, although keep-alive was asked.
    let declared = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        POST_CAP + 1
    );
    let answer = answered_then_closed(server.addr, declared.as_bytes(), &[]).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.header("connection"), Some("close"));

    // Chunked, growing past the cap.
    let chunk = format!("{:x}\r\n{}\r\n", 600, "y".repeat(600));
    let body = format!("{chunk}{chunk}0\r\n\r\n");
    let answer = answered_then_closed(
        server.addr,
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
        body.as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.header("connection"), Some("close"));
    assert_eq!(request(server.addr, "GET", "/healthz").await.status, 200);
}

#[tokio::test]
async fn a_slow_body_is_dropped_while_others_are_answered() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = start(limits).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    // An honest POST is answered while the slow one is held.
    let honest = raw(
        server.addr,
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    )
    .await;
    let honest = parse(&honest);
    assert_eq!(honest.status, 200);
    assert_eq!(honest.body, b"ok");
    // The slow one is closed by the server, unanswered.
    let mut out = Vec::new();
    let read = tokio::time::timeout(DEADLINE, slow.read_to_end(&mut out))
        .await
        .expect("the slow body was dropped");
    if read.is_ok() {
        assert!(out.is_empty(), "{:?}", String::from_utf8_lossy(&out));
    }
}
