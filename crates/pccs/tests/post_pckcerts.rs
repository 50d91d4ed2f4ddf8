//! `POST pckcerts` (PCS's request for a multi-package platform, with its platform manifest): from a
//! simulated platform answered exactly as `GET pckcerts`, malformed bodies refused as invalid
//! requests, bodies bounded in size and time over HTTP, and in upstream mode forwarded as PCS's
//! request and cached.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ops_http::{Limits, Readiness};
use pccs::api::{self, Reply};
use pccs::store::Store;
use pccs::{CollateralSource, SimSource, UpstreamSource};
use prometheus_client::registry::Registry;
use sgx_sim::{InitOptions, SimPlatform};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const V3: &str = "/sgx/certification/v3/pckcerts";
const V4: &str = "/sgx/certification/v4/pckcerts";
const JSON: &str = "application/json";
/// Deadline against hangs only; never a performance bound.
const DEADLINE: Duration = Duration::from_secs(30);

fn platform(dir: &tempfile::TempDir) -> Arc<SimPlatform> {
    Arc::new(SimPlatform::open_or_init(&dir.path().join("sim"), &InitOptions::default()).unwrap())
}

/// A well-formed manifest of `digits` hex digits (opaque to everyone but Intel).
fn manifest(digits: usize) -> String {
    "0123456789ABCDEF".chars().cycle().take(digits).collect()
}

fn body(manifest: &str, pceid: &str) -> Vec<u8> {
    format!("{{\"platformManifest\":\"{manifest}\",\"pceid\":\"{pceid}\"}}").into_bytes()
}

fn post(
    source: &dyn CollateralSource,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Reply {
    api::handle_post(source, path, content_type, body).unwrap()
}

fn get(source: &dyn CollateralSource, path_and_query: &str) -> Reply {
    let (path, query) = path_and_query.split_once('?').unwrap();
    api::handle(source, path, Some(query)).unwrap()
}

/// Every header but the request id, which differs per answer.
fn headers(reply: &Reply) -> Vec<(&'static str, String)> {
    let mut out: Vec<_> = reply
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("Request-ID"))
        .cloned()
        .collect();
    out.sort();
    out
}

fn assert_message(reply: &Reply, status: u16, message: &str, case: &str) {
    assert_eq!(reply.status, status, "{case}");
    assert_eq!(reply.content_type, "text/plain; charset=utf-8", "{case}");
    assert_eq!(std::str::from_utf8(&reply.body).unwrap(), message, "{case}");
}

#[test]
fn post_is_answered_as_get_for_the_simulated_platform() {
    let dir = tempfile::tempdir().unwrap();
    let source = SimSource::new(platform(&dir));
    let ppid = "ab".repeat(384);
    for path in [V3, V4] {
        let by_get = get(&source, &format!("{path}?encrypted_ppid={ppid}&pceid=0000"));
        assert_eq!(by_get.status, 200);
        for manifest in [manifest(16_882), manifest(112_884).to_lowercase()] {
            let by_post = post(&source, path, Some(JSON), &body(&manifest, "0000"));
            assert_eq!(by_post.status, 200, "{path}");
            assert_eq!(by_post.content_type, by_get.content_type);
            assert_eq!(by_post.body, by_get.body, "{path}");
            assert_eq!(headers(&by_post), headers(&by_get), "{path}");
            assert_eq!(by_post.header("Request-ID").map(str::len), Some(32));
        }
        // A media type parameter and other members are accepted (and ignored).
        let extra = format!(
            "{{\"pceid\":\"0000\",\"platformManifest\":\"{}\",\"other\":1}}",
            manifest(17_000)
        );
        let reply = post(
            &source,
            path,
            Some("Application/JSON; charset=utf-8"),
            extra.as_bytes(),
        );
        assert_eq!(reply.body, by_get.body, "{path}");
    }
    // A manifest with another PCE id names no platform here.
    let reply = post(&source, V4, Some(JSON), &body(&manifest(16_882), "0100"));
    assert_message(
        &reply,
        404,
        "No cache data for this platform.",
        "other pceid",
    );
    // Only pckcerts takes POST.
    for path in [
        "/sgx/certification/v4/pckcert",
        "/sgx/certification/v4/tcb",
        "/sgx/certification/v5/pckcerts",
    ] {
        assert!(
            api::handle_post(&source, path, Some(JSON), &body(&manifest(16_882), "0000")).is_none()
        );
    }
}

#[test]
fn malformed_bodies_are_invalid_requests() {
    let dir = tempfile::tempdir().unwrap();
    let source = SimSource::new(platform(&dir));
    let good = manifest(16_882);
    let cases: Vec<(&str, &str, Option<&str>, Vec<u8>)> = vec![
        ("no content type", V4, None, body(&good, "0000")),
        (
            "text content type",
            V4,
            Some("text/plain"),
            body(&good, "0000"),
        ),
        (
            "form content type",
            V4,
            Some("application/x-www-form-urlencoded"),
            body(&good, "0000"),
        ),
        (
            "not JSON",
            V4,
            Some(JSON),
            b"platformManifest=00&pceid=0000".to_vec(),
        ),
        ("empty", V4, Some(JSON), Vec::new()),
        (
            "truncated JSON",
            V4,
            Some(JSON),
            body(&good, "0000")[..40].to_vec(),
        ),
        (
            "an array",
            V4,
            Some(JSON),
            format!("[\"{good}\",\"0000\"]").into_bytes(),
        ),
        (
            "no manifest",
            V4,
            Some(JSON),
            b"{\"pceid\":\"0000\"}".to_vec(),
        ),
        (
            "no pceid",
            V4,
            Some(JSON),
            format!("{{\"platformManifest\":\"{good}\"}}").into_bytes(),
        ),
        (
            "manifest a number",
            V4,
            Some(JSON),
            b"{\"platformManifest\":1234,\"pceid\":\"0000\"}".to_vec(),
        ),
        (
            "pceid a number",
            V4,
            Some(JSON),
            format!("{{\"platformManifest\":\"{good}\",\"pceid\":0}}").into_bytes(),
        ),
        (
            "manifest not hex",
            V4,
            Some(JSON),
            body(&format!("{}G", manifest(16_881)), "0000"),
        ),
        (
            "manifest with a space",
            V4,
            Some(JSON),
            body(&format!("{} ", manifest(16_881)), "0000"),
        ),
        (
            "manifest too short on v4",
            V4,
            Some(JSON),
            body(&manifest(16_861), "0000"),
        ),
        (
            "manifest too short on v3",
            V3,
            Some(JSON),
            body(&manifest(16_881), "0000"),
        ),
        (
            "manifest too long",
            V4,
            Some(JSON),
            body(&manifest(112_885), "0000"),
        ),
        (
            "manifest too long on v3",
            V3,
            Some(JSON),
            body(&manifest(112_885), "0000"),
        ),
        ("pceid short", V4, Some(JSON), body(&good, "000")),
        ("pceid long", V4, Some(JSON), body(&good, "00000")),
        ("pceid not hex", V4, Some(JSON), body(&good, "00zz")),
    ];
    for (case, path, content_type, body) in &cases {
        let reply = post(&source, path, *content_type, body);
        assert_message(&reply, 400, "Invalid request parameters.", case);
        assert!(reply.header("Request-ID").is_some(), "{case}");
    }
    // The bounds differ by version, as PCS documents them: 16,862 digits are enough on v4 only.
    let short = body(&manifest(16_862), "0000");
    assert_eq!(post(&source, V4, Some(JSON), &short).status, 200);
    assert_eq!(post(&source, V3, Some(JSON), &short).status, 400);
    // PCS's pattern counts hex digits, not bytes: an odd count is well-formed.
    assert_eq!(
        post(&source, V4, Some(JSON), &body(&manifest(16_863), "0000")).status,
        200
    );
}

struct Served {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn serve(source: Arc<dyn CollateralSource>, limits: Limits) -> Served {
    let routes = pccs::routes(source, pccs::RouteOptions::default(), |_| {});
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(ops_http::serve_with_limits(
        listener,
        Arc::new(Registry::default()),
        Readiness::new(),
        Some(routes),
        limits,
        async {
            let _ = stopped.await;
        },
    ));
    Served { addr, _stop: stop }
}

/// Sends `request` and reads until the server closes the connection.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    tokio::time::timeout(DEADLINE, async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // The server may answer (and close) before the whole request is sent.
        let _ = stream.write_all(request).await;
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        out
    })
    .await
    .expect("closed before the deadline")
}

fn post_request(path: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Status, lower-case headers and body of an HTTP/1.1 answer (not chunked).
fn parse(answer: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no answer head: {:?}", String::from_utf8_lossy(answer)));
    let head = std::str::from_utf8(&answer[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .filter(|(k, _)| k != "request-id" && k != "date")
        .collect();
    (status, headers, answer[split + 4..].to_vec())
}

#[tokio::test]
async fn post_over_http_with_its_body_bounded_in_size_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let served = serve(Arc::new(SimSource::new(platform(&dir))), limits).await;
    let ppid = "ab".repeat(384);

    // The POST's answer is the GET's, headers included.
    let get_request = format!(
        "GET {V4}?encrypted_ppid={ppid}&pceid=0000 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    let by_get = parse(&exchange(served.addr, get_request.as_bytes()).await);
    let largest = body(&manifest(112_884), "0000");
    let by_post = parse(&exchange(served.addr, &post_request(V4, &largest, true)).await);
    assert_eq!(by_get.0, 200);
    assert_eq!(by_post, by_get);

    // Over the cap: 413, and the connection closed although keep-alive was asked.
    let oversized = vec![b'0'; api::MAX_POST_BODY + 1];
    let (status, headers, _) =
        parse(&exchange(served.addr, &post_request(V4, &oversized, false)).await);
    assert_eq!(status, 413);
    assert!(
        headers.contains(&("connection".to_owned(), "close".to_owned())),
        "{headers:?}"
    );

    // A slow body is dropped by the timeout while an honest request is answered meanwhile.
    let mut slow = TcpStream::connect(served.addr).await.unwrap();
    let slow_request = post_request(V4, &largest, false);
    slow.write_all(&slow_request[..slow_request.len() / 2])
        .await
        .unwrap();
    let honest = parse(&exchange(served.addr, &post_request(V4, &largest, true)).await);
    assert_eq!(honest, by_get);
    let mut out = Vec::new();
    let read = tokio::time::timeout(DEADLINE, slow.read_to_end(&mut out))
        .await
        .expect("the slow body was dropped");
    if read.is_ok() {
        assert!(out.is_empty(), "{:?}", String::from_utf8_lossy(&out));
    }
}

/// One request as the stand-in upstream saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    method: String,
    target: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// A PCCS over `source` on a local port, one request per connection, recording what it is asked.
fn stand_in(source: Arc<dyn CollateralSource>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let (mut content_type, mut length) = (None, 0usize);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-type" => content_type = Some(value.trim().to_owned()),
                    "content-length" => length = value.trim().parse().unwrap(),
                    _ => {}
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let mut words = request_line.split(' ');
            let method = words.next().unwrap().to_owned();
            let target = words.next().unwrap().to_owned();
            let reply = if method == "POST" {
                api::handle_post(source.as_ref(), &target, content_type.as_deref(), &body)
            } else {
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                api::handle(source.as_ref(), path, Some(query))
            }
            .unwrap();
            log.lock().unwrap().push(Seen {
                method,
                target,
                content_type,
                body,
            });
            let mut head = format!(
                "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                reply.status,
                reply.content_type,
                reply.body.len()
            );
            for (name, value) in &reply.headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&reply.body);
        }
    });
    (url, seen)
}

#[test]
fn upstream_mode_forwards_pcs_request_and_caches_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let upstream_source: Arc<dyn CollateralSource> = Arc::new(SimSource::new(platform(&dir)));
    let (url, seen) = stand_in(Arc::clone(&upstream_source));
    let store = Store::open(&dir.path().join("cache.redb")).unwrap();
    let pccs = UpstreamSource::new(&url, store, Duration::from_secs(10)).unwrap();
    let count = || seen.lock().unwrap().len();

    // Malformed bodies are refused here, never forwarded.
    for bad in [
        b"{}".to_vec(),
        body(&manifest(100), "0000"),
        body(&manifest(16_882), "00"),
    ] {
        assert_eq!(post(&pccs, V4, Some(JSON), &bad).status, 400);
    }
    assert_eq!(count(), 0);

    // Forwarded as PCS's request: the path, the JSON content type and the body as sent.
    let sent = body(&manifest(20_000), "0000");
    let ours = post(&pccs, V4, Some(JSON), &sent);
    let theirs = post(upstream_source.as_ref(), V4, Some(JSON), &sent);
    assert_eq!(ours.status, 200);
    let expected = Seen {
        method: "POST".into(),
        target: V4.into(),
        content_type: Some(JSON.into()),
        body: sent.clone(),
    };
    // Compared without printing the large bodies.
    let forwarded = seen.lock().unwrap().clone();
    assert_eq!(forwarded.len(), 1);
    assert!(
        forwarded[0] == expected,
        "forwarded {} {} {:?} with a body of {} bytes",
        forwarded[0].method,
        forwarded[0].target,
        forwarded[0].content_type,
        forwarded[0].body.len()
    );
    let as_json = |r: &Reply| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap();
    assert_eq!(as_json(&ours), as_json(&theirs));
    assert_eq!(headers(&ours), headers(&theirs));

    // The second POST of the same body is served from the cache.
    let again = post(&pccs, V4, Some(JSON), &sent);
    assert_eq!(again.body, ours.body);
    assert_eq!(count(), 1);

    // Another manifest is another platform: asked again. The forwarded body carries only what
    // was validated, hex in upper case.
    let other = format!(
        "{{\"platformManifest\":\"{}\",\"pceid\":\"0000\",\"note\":\"x\"}}",
        manifest(20_002).to_lowercase()
    );
    assert_eq!(post(&pccs, V4, Some(JSON), other.as_bytes()).status, 200);
    assert_eq!(count(), 2);
    assert!(seen.lock().unwrap()[1].body == body(&manifest(20_002), "0000"));

    // The upstream's "no such platform" is passed on as no data.
    let unknown = post(&pccs, V4, Some(JSON), &body(&manifest(20_000), "0100"));
    assert_eq!(unknown.status, 404);
    assert_eq!(count(), 3);
}
