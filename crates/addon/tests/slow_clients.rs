//! The webhook's HTTPS server under slow clients: an AdmissionReview is answered while hundreds
//! of TCP connections that never start the TLS handshake are held open, the oldest of them are the
//! ones closed at the connection cap, and one client address cannot hold more than its share of
//! incomplete connections. Connections stalled in the middle of a request body are evictable like
//! incomplete ones, and the bodies being read at once stay within the body budget.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use addon::admission::Mutator;
use addon::names::WEBHOOK_PATH_POD;
use addon::server::{self, Limits, WebhookMetrics};
use ops_http::guard::Limit;
use ops_http::testing;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const FIXTURE: &str = include_str!("reviews/pod-create.json");
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const OTHER_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

struct Webhook {
    addr: SocketAddr,
    client_tls: Arc<rustls::ClientConfig>,
    metrics: WebhookMetrics,
    _stop: oneshot::Sender<()>,
}

async fn start(max_connections: usize, max_pending_per_address: usize) -> Webhook {
    start_with(Limits {
        max_connections,
        max_pending_per_address,
        ..Limits::default()
    })
    .await
}

async fn start_with(limits: Limits) -> Webhook {
    testing::raise_nofile();
    let (server_tls, client_tls) = testing::self_signed_tls().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        // Far beyond the test's run: only the caps close connections here.
        handshake_timeout: Duration::from_secs(300),
        header_timeout: Duration::from_secs(300),
        idle_timeout: Duration::from_secs(300),
        body_timeout: Duration::from_secs(300),
        ..limits
    };
    let metrics = WebhookMetrics::register(&mut Registry::default());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::serve(
        listener,
        server_tls,
        Mutator::default(),
        limits,
        metrics.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    Webhook {
        addr,
        client_tls,
        metrics,
        _stop: stop,
    }
}

/// Posts the pod-create review over a new TLS connection and returns the status and the body.
async fn review(webhook: &Webhook) -> (u16, String) {
    let mut tls = testing::tls_connect(webhook.addr, Arc::clone(&webhook.client_tls))
        .await
        .unwrap();
    let head = format!(
        "POST {WEBHOOK_PATH_POD} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        FIXTURE.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(FIXTURE.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    (status, answer)
}

#[tokio::test]
async fn a_review_is_answered_while_silent_tcp_clients_beyond_the_cap_are_held() {
    const CAP: usize = 48;
    const SLOW: usize = 240;
    let webhook = start(CAP, 10_000).await;
    let mut slow = testing::hold(webhook.addr, CLIENT, SLOW, b"")
        .await
        .unwrap();

    let (status, answer) = review(&webhook).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"AdmissionReview\""), "{answer}");
    assert!(
        answer.contains("5f1d3c2a-8b4e-4f7a-9c61-2d0e8a7b3f10"),
        "{answer}"
    );

    // The review's connection took one more slot: the oldest SLOW + 1 - CAP were closed.
    let evicted = SLOW + 1 - CAP;
    assert_eq!(
        webhook.metrics.connections().dropped(Limit::Cap),
        evicted as u64
    );
    for (i, stream) in slow.iter_mut().enumerate().take(evicted) {
        assert!(testing::closed_by_server(stream).await, "silent #{i} open");
    }
    for (i, stream) in slow.iter().enumerate().skip(evicted) {
        assert!(testing::still_open(stream), "silent #{i} closed");
    }
    drop(slow);
}

#[tokio::test]
async fn one_address_at_its_cap_loses_its_own_oldest_handshakes_only() {
    const PER_ADDRESS: usize = 10;
    let webhook = start(10_000, PER_ADDRESS).await;
    let mut theirs = testing::hold(webhook.addr, OTHER_CLIENT, 3 * PER_ADDRESS, b"")
        .await
        .unwrap();
    let mine = testing::hold(webhook.addr, CLIENT, PER_ADDRESS - 1, b"")
        .await
        .unwrap();

    let (status, answer) = review(&webhook).await;
    assert_eq!(status, 200, "{answer}");
    for stream in theirs.iter_mut().take(2 * PER_ADDRESS) {
        assert!(testing::closed_by_server(stream).await);
    }
    for stream in theirs[2 * PER_ADDRESS..].iter().chain(&mine) {
        assert!(testing::still_open(stream));
    }
    assert_eq!(
        webhook.metrics.connections().dropped(Limit::PerAddress),
        2 * PER_ADDRESS as u64
    );
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection that posts a review declaring `declared` body bytes, waits for the server's
/// `100 Continue` (sent once the server reads the body, so connections reach that point in the
/// order they are opened), sends `sent` bytes of the body and then nothing more.
async fn stalled_body(webhook: &Webhook, declared: usize, sent: usize) -> Tls {
    let mut tls = testing::tls_connect(webhook.addr, Arc::clone(&webhook.client_tls))
        .await
        .unwrap();
    let head = format!(
        "POST {WEBHOOK_PATH_POD} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {declared}\r\nExpect: 100-continue\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(tls.read(&mut byte).await.unwrap(), 1, "closed before 100");
        answer.push(byte[0]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 100"), "{answer:?}");
    tls.write_all(&vec![b'{'; sent]).await.unwrap();
    tls.flush().await.unwrap();
    tls
}

/// Whether the server closed `tls` (end of file, with or without `close_notify`, or a reset)
/// without answering.
async fn tls_closed_by_server(tls: &mut Tls) -> bool {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(testing::CLOSE_BOUND, tls.read(&mut buf)).await {
        Ok(Ok(0)) => true,
        Ok(Ok(_)) | Err(_) => false,
        Ok(Err(err)) => matches!(
            err.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
        ),
    }
}

/// Whether `tls` has nothing to read and is not closed (one poll, no waiting).
async fn tls_still_open(tls: &mut Tls) -> bool {
    let mut buf = [0u8; 16];
    tokio::time::timeout(Duration::ZERO, tls.read(&mut buf))
        .await
        .is_err()
}

#[tokio::test]
async fn a_review_is_answered_while_stalled_bodies_fill_the_cap_and_the_oldest_is_closed() {
    const CAP: usize = 32;
    let webhook = start(CAP, 10_000).await;
    let mut stalled = Vec::with_capacity(CAP);
    for _ in 0..CAP {
        stalled.push(stalled_body(&webhook, 64 * 1024, 1024).await);
    }
    assert_eq!(webhook.metrics.connections().dropped(Limit::Cap), 0);

    let (status, answer) = review(&webhook).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains("5f1d3c2a-8b4e-4f7a-9c61-2d0e8a7b3f10"),
        "{answer}"
    );
    assert_eq!(webhook.metrics.connections().dropped(Limit::Cap), 1);
    assert!(tls_closed_by_server(&mut stalled[0]).await, "oldest open");
    for (i, tls) in stalled.iter_mut().enumerate().skip(1) {
        assert!(tls_still_open(tls).await, "stalled #{i} closed");
    }
}

#[tokio::test]
async fn bodies_beyond_the_budget_wait_until_a_reader_is_gone() {
    const MAX_BODY: usize = 64 * 1024;
    let webhook = start_with(Limits {
        max_connections: 3,
        max_pending_per_address: 10_000,
        max_body_bytes: MAX_BODY,
        body_budget_bytes: 2 * MAX_BODY,
        ..Limits::default()
    })
    .await;
    // Two bodies of the largest size take the whole budget.
    let mut first = stalled_body(&webhook, MAX_BODY, 1024).await;
    let mut second = stalled_body(&webhook, MAX_BODY, 1024).await;

    let mut honest = testing::tls_connect(webhook.addr, Arc::clone(&webhook.client_tls))
        .await
        .unwrap();
    let head = format!(
        "POST {WEBHOOK_PATH_POD} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        FIXTURE.len()
    );
    honest.write_all(head.as_bytes()).await.unwrap();
    honest.write_all(FIXTURE.as_bytes()).await.unwrap();
    honest.flush().await.unwrap();
    // Its body is not read while the budget is taken (this can only miss an early answer, never
    // fail a correct server).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tls_still_open(&mut honest).await,
        "answered beyond the budget"
    );

    // A fourth connection is beyond the cap: the oldest body reader is closed, and its share of
    // the budget lets the waiting review be read and answered.
    let _silent = testing::hold(webhook.addr, CLIENT, 1, b"").await.unwrap();
    let mut answer = Vec::new();
    honest.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(tls_closed_by_server(&mut first).await, "oldest reader open");
    assert!(tls_still_open(&mut second).await, "second reader closed");
    assert_eq!(webhook.metrics.connections().dropped(Limit::Cap), 1);
}
