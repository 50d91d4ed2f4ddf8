//! Slow and idle clients against the governed server: honest requests are answered while they
//! are held open, the oldest incomplete connection is the one closed at the cap, and one client
//! address cannot hold more than its share of incomplete connections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ops_http::guard::{ConnMetrics, Limit};
use ops_http::testing::{self, HALF_REQUEST_LINE};
use ops_http::{Limits, Readiness};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const OTHER_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

struct Server {
    addr: SocketAddr,
    metrics: ConnMetrics,
    _stop: oneshot::Sender<()>,
}

/// Limits small enough for a test, with timeouts far beyond its run.
fn limits(max_connections: usize, max_pending_per_address: usize) -> Limits {
    Limits {
        max_connections,
        max_pending_per_address,
        handshake_timeout: Duration::from_secs(300),
        header_read_timeout: Duration::from_secs(300),
        idle_timeout: Duration::from_secs(300),
        ..Limits::default()
    }
}

async fn start(limits: Limits, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    testing::raise_nofile();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut registry = Registry::default();
    let metrics = ConnMetrics::register(&mut registry, "confcom_test");
    let readiness = Readiness::new();
    readiness.set_ready(true);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(ops_http::serve_guarded(
        listener,
        tls,
        Arc::new(registry),
        readiness,
        None,
        limits,
        metrics.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        metrics,
        _stop: stop,
    }
}

#[tokio::test]
async fn honest_request_is_answered_while_slow_clients_beyond_the_cap_are_held() {
    const CAP: usize = 64;
    const SLOW: usize = 300;
    let server = start(limits(CAP, 10_000), None).await;
    let mut slow = testing::hold(server.addr, CLIENT, SLOW, HALF_REQUEST_LINE)
        .await
        .unwrap();

    let (status, body) = testing::get(
        tokio::net::TcpStream::connect(server.addr).await.unwrap(),
        "/metrics",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("confcom_test_connections_dropped_total{limit=\"cap\"}"));

    // The honest connection took one more slot: the oldest SLOW + 1 - CAP slow ones were closed,
    // the newest CAP - 1 are still held.
    let evicted = SLOW + 1 - CAP;
    assert_eq!(server.metrics.dropped(Limit::Cap), evicted as u64);
    for (i, stream) in slow.iter_mut().enumerate().take(evicted) {
        assert!(testing::closed_by_server(stream).await, "slow #{i} open");
    }
    for (i, stream) in slow.iter().enumerate().skip(evicted) {
        assert!(testing::still_open(stream), "slow #{i} closed");
    }
    drop(slow);
}

#[tokio::test]
async fn honest_https_request_is_answered_while_silent_tcp_clients_are_held() {
    const CAP: usize = 48;
    const SLOW: usize = 200;
    let (server_tls, client_tls) = testing::self_signed_tls().unwrap();
    let server = start(limits(CAP, 10_000), Some(server_tls)).await;
    // TCP connections that never start the handshake.
    let mut slow = testing::hold(server.addr, CLIENT, SLOW, b"").await.unwrap();

    let tls = testing::tls_connect(server.addr, client_tls).await.unwrap();
    let (status, _) = testing::get(tls, "/healthz").await.unwrap();
    assert_eq!(status, 200);

    let evicted = SLOW + 1 - CAP;
    assert_eq!(server.metrics.dropped(Limit::Cap), evicted as u64);
    assert!(testing::closed_by_server(&mut slow[0]).await);
    assert!(testing::closed_by_server(&mut slow[evicted - 1]).await);
    assert!(testing::still_open(&slow[evicted]));
    assert!(testing::still_open(slow.last().unwrap()));
    drop(slow);
}

#[tokio::test]
async fn one_address_loses_its_own_oldest_incomplete_connections_not_another_s() {
    const PER_ADDRESS: usize = 8;
    let server = start(limits(10_000, PER_ADDRESS), None).await;
    let mut mine = testing::hold(server.addr, CLIENT, PER_ADDRESS, HALF_REQUEST_LINE)
        .await
        .unwrap();
    let mut theirs = testing::hold(
        server.addr,
        OTHER_CLIENT,
        3 * PER_ADDRESS,
        HALF_REQUEST_LINE,
    )
    .await
    .unwrap();

    // 127.0.0.1 is at its cap: its honest request closes its own oldest incomplete connection.
    let (status, _) = testing::get(
        testing::connect_from(CLIENT, server.addr).await.unwrap(),
        "/healthz",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(testing::closed_by_server(&mut mine[0]).await);
    for stream in &mine[1..] {
        assert!(testing::still_open(stream));
    }
    // 127.0.0.2 went over its cap by 2 * PER_ADDRESS: its oldest ones were closed.
    for stream in theirs.iter_mut().take(2 * PER_ADDRESS) {
        assert!(testing::closed_by_server(stream).await);
    }
    for stream in &theirs[2 * PER_ADDRESS..] {
        assert!(testing::still_open(stream));
    }
    assert_eq!(
        server.metrics.dropped(Limit::PerAddress),
        2 * PER_ADDRESS as u64 + 1
    );
    assert_eq!(server.metrics.dropped(Limit::Cap), 0);
}

#[tokio::test]
async fn a_stalled_head_is_closed_by_the_header_timeout_and_counted() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(100),
        ..limits(16, 16)
    };
    let server = start(limits, None).await;
    let mut slow = testing::hold(server.addr, CLIENT, 1, HALF_REQUEST_LINE)
        .await
        .unwrap();
    assert!(testing::closed_by_server(&mut slow[0]).await);
    assert_eq!(server.metrics.dropped(Limit::HeaderTimeout), 1);
}

#[tokio::test]
async fn a_silent_tls_client_is_closed_by_the_handshake_timeout_and_counted() {
    let (server_tls, _) = testing::self_signed_tls().unwrap();
    let limits = Limits {
        handshake_timeout: Duration::from_millis(100),
        ..limits(16, 16)
    };
    let server = start(limits, Some(server_tls)).await;
    let mut slow = testing::hold(server.addr, CLIENT, 1, b"").await.unwrap();
    assert!(testing::closed_by_server(&mut slow[0]).await);
    assert_eq!(server.metrics.dropped(Limit::HandshakeTimeout), 1);
}
