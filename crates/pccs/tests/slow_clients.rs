//! The PCCS API served over HTTP and HTTPS while hundreds of slow clients are held open: an honest
//! `qe/identity` request is answered before they are released, and the oldest of them are the ones
//! the server closed to stay within its connection cap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ops_http::guard::{ConnMetrics, Limit};
use ops_http::testing::{self, HALF_REQUEST_LINE};
use ops_http::{Limits, Readiness};
use pccs::SimSource;
use prometheus_client::registry::Registry;
use sgx_sim::{InitOptions, SimPlatform};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const QE_IDENTITY: &str = "/sgx/certification/v4/qe/identity";
const CAP: usize = 40;
const SLOW: usize = 200;

struct Pccs {
    addr: SocketAddr,
    metrics: ConnMetrics,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Pccs {
    testing::raise_nofile();
    let dir = tempfile::tempdir().unwrap();
    let platform =
        Arc::new(SimPlatform::open_or_init(dir.path(), &InitOptions::default()).unwrap());
    let routes = pccs::routes(
        Arc::new(SimSource::new(platform)),
        pccs::RouteOptions::default(),
        |_| {},
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut registry = Registry::default();
    let metrics = ConnMetrics::register(&mut registry, "confcom_pccs");
    let limits = Limits {
        max_connections: CAP,
        // Far beyond the test's run: only the cap closes connections here.
        handshake_timeout: Duration::from_secs(300),
        header_read_timeout: Duration::from_secs(300),
        idle_timeout: Duration::from_secs(300),
        ..Limits::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(ops_http::serve_guarded(
        listener,
        tls,
        Arc::new(registry),
        Readiness::new(),
        Some(routes),
        limits,
        metrics.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    Pccs {
        addr,
        metrics,
        _dir: dir,
        _stop: stop,
    }
}

/// The oldest `SLOW + 1 - CAP` slow connections were closed (the honest one took a slot), the
/// rest are still held.
async fn check_evictions(pccs: &Pccs, slow: &mut [TcpStream]) {
    let evicted = SLOW + 1 - CAP;
    assert_eq!(pccs.metrics.dropped(Limit::Cap), evicted as u64);
    for (i, stream) in slow.iter_mut().enumerate().take(evicted) {
        assert!(testing::closed_by_server(stream).await, "slow #{i} open");
    }
    for (i, stream) in slow.iter().enumerate().skip(evicted) {
        assert!(testing::still_open(stream), "slow #{i} closed");
    }
}

#[tokio::test]
async fn qe_identity_is_served_over_http_while_slow_heads_are_held() {
    let pccs = start(None).await;
    let mut slow = testing::hold(pccs.addr, CLIENT, SLOW, HALF_REQUEST_LINE)
        .await
        .unwrap();
    let (status, answer) = testing::get(TcpStream::connect(pccs.addr).await.unwrap(), QE_IDENTITY)
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"enclaveIdentity\""), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("sgx-enclave-identity-issuer-chain")
    );
    check_evictions(&pccs, &mut slow).await;
}

#[tokio::test]
async fn qe_identity_is_served_over_https_while_silent_tcp_clients_are_held() {
    let (server_tls, client_tls) = testing::self_signed_tls().unwrap();
    let pccs = start(Some(server_tls)).await;
    // TCP connections that never start the TLS handshake.
    let mut slow = testing::hold(pccs.addr, CLIENT, SLOW, b"").await.unwrap();
    let tls = testing::tls_connect(pccs.addr, client_tls).await.unwrap();
    let (status, answer) = testing::get(tls, QE_IDENTITY).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("\"enclaveIdentity\""), "{answer}");
    check_evictions(&pccs, &mut slow).await;
}
