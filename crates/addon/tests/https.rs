#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The webhook over HTTPS: certificates from `certs::ensure_dir` (what `confcom webhook certs`
//! writes), the server on a loopback port, and a real rustls + hyper client that verifies the
//! serving certificate against the generated CA under the Service's DNS name.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use addon::admission::Mutator;
use addon::certs::{self, CA_CERT_FILE, CertRequest, TLS_CERT_FILE, TLS_KEY_FILE};
use addon::names::{WEBHOOK_PATH_INTEL_EPC, WEBHOOK_PATH_NAMESPACE, WEBHOOK_PATH_POD};
use addon::server::{self, Limits, WebhookMetrics};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const FIXTURE: &str = include_str!("reviews/pod-create.json");
const SERVICE_DNS: &str = "sgx-webhook.kube-system.svc";

fn client_config(ca_file: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: &str,
) -> Result<Sender, std::io::Error> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let tls = connector.connect(server_name, tcp).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    Ok(sender)
}

async fn send(sender: &mut Sender, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", SERVICE_DNS)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

/// The review's pod with the reply's JSONPatch applied.
fn patched(review: &serde_json::Value, reply: &serde_json::Value) -> serde_json::Value {
    let patch = base64::engine::general_purpose::STANDARD
        .decode(reply["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).unwrap();
    pod
}

#[tokio::test]
async fn webhook_serves_admission_reviews_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = certs::ensure_dir(
        dir.path(),
        &CertRequest::default(),
        time::OffsetDateTime::now_utc(),
        false,
    )
    .unwrap();
    assert_eq!(outcome, certs::EnsureOutcome::Created);

    let tls = server::tls_config_from_pem_files(
        &dir.path().join(TLS_CERT_FILE),
        &dir.path().join(TLS_KEY_FILE),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        max_body_bytes: 64 * 1024,
        ..Limits::default()
    };
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = WebhookMetrics::register(&mut registry);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(
        listener,
        Arc::new(tls),
        Mutator::default(),
        limits,
        metrics,
        async {
            let _ = stop_rx.await;
        },
    ));

    let config = client_config(&dir.path().join(CA_CERT_FILE));
    let mut client = connect(addr, Arc::clone(&config), SERVICE_DNS)
        .await
        .unwrap();

    // Health.
    let (status, body) = send(&mut client, "GET", "/healthz", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"ok\n");

    // A pod that opted in and requests EPC gets the patch; same connection (keep-alive).
    let review: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    let (status, body) = send(
        &mut client,
        "POST",
        WEBHOOK_PATH_POD,
        serde_json::to_vec(&review).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["response"]["uid"], review["request"]["uid"]);
    assert_eq!(reply["response"]["allowed"], true);
    let pod = patched(&review, &reply);
    let env = &pod["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "SGX_AESM_ADDR" && e["value"] == "1")
    );
    let volumes = pod["spec"]["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["hostPath"]["path"] == "/var/run/aesmd")
    );

    // The namespace entry answers too; the mutated pod is left alone.
    let mut again = review.clone();
    again["request"]["object"] = pod;
    let (status, body) = send(
        &mut client,
        "POST",
        WEBHOOK_PATH_NAMESPACE,
        serde_json::to_vec(&again).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(reply["response"].get("patch").is_none());

    // The Intel entry: a pod requesting sgx.intel.com/epc without any confcom label gets the
    // enclave device; one with an unreadable quantity is refused.
    let mut intel = review.clone();
    let c = &mut intel["request"]["object"]["spec"]["containers"][0];
    c["resources"] = serde_json::json!({"limits": {"sgx.intel.com/epc": "5Mi"}});
    intel["request"]["object"]["metadata"]["labels"] = serde_json::json!({});
    let (status, body) = send(
        &mut client,
        "POST",
        WEBHOOK_PATH_INTEL_EPC,
        serde_json::to_vec(&intel).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let pod = patched(&intel, &reply);
    let limits = &pod["spec"]["containers"][0]["resources"]["limits"];
    assert_eq!(limits["sgx.intel.com/enclave"], "1");
    assert_eq!(pod["metadata"]["annotations"]["sgx.intel.com/epc"], "5Mi");
    intel["request"]["object"]["spec"]["containers"][0]["resources"]["limits"]["sgx.intel.com/epc"] =
        serde_json::json!("5 Mi");
    let (status, body) = send(
        &mut client,
        "POST",
        WEBHOOK_PATH_INTEL_EPC,
        serde_json::to_vec(&intel).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["response"]["allowed"], false);
    assert_eq!(reply["response"]["status"]["code"], 403);

    // Malformed review, unknown path, wrong method, oversized body.
    let (status, _) = send(&mut client, "POST", WEBHOOK_PATH_POD, b"{oops".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(&mut client, "POST", "/mutate", b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(&mut client, "GET", WEBHOOK_PATH_POD, Vec::new()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = send(&mut client, "POST", WEBHOOK_PATH_POD, vec![b' '; 65 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // The certificate names the Service, not arbitrary hosts.
    let wrong_name = connect(addr, Arc::clone(&config), "sgx-webhook.default.svc").await;
    assert!(
        wrong_name.is_err(),
        "a name outside the certificate must fail"
    );

    // A client that trusts another CA refuses the server.
    let other = tempfile::tempdir().unwrap();
    certs::ensure_dir(
        other.path(),
        &CertRequest::default(),
        time::OffsetDateTime::now_utc(),
        false,
    )
    .unwrap();
    let foreign = client_config(&other.path().join(CA_CERT_FILE));
    assert!(connect(addr, foreign, SERVICE_DNS).await.is_err());

    // The server still answers after the failed handshakes, then shuts down cleanly.
    let (status, _) = send(&mut client, "GET", "/healthz", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();

    // Every answered review is counted by entry and outcome.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        r#"confcom_webhook_reviews_total{entry="pod",outcome="patched"} 1"#,
        r#"confcom_webhook_reviews_total{entry="namespace",outcome="already_wired"} 1"#,
        r#"confcom_webhook_reviews_total{entry="pod",outcome="malformed"} 1"#,
        r#"confcom_webhook_reviews_total{entry="intel_epc",outcome="patched"} 1"#,
        r#"confcom_webhook_reviews_total{entry="intel_epc",outcome="denied"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line} in:\n{text}"
        );
    }
}

#[test]
fn tls_config_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, "no pem here").unwrap();
    std::fs::write(&key, "no pem here").unwrap();
    assert!(server::tls_config_from_pem_files(&cert, &key).is_err());
    assert!(server::tls_config_from_pem_files(&dir.path().join("missing"), &key).is_err());

    // A key that does not belong to the certificate.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc();
    certs::ensure_dir(a.path(), &CertRequest::default(), now, false).unwrap();
    certs::ensure_dir(b.path(), &CertRequest::default(), now, false).unwrap();
    let mismatched = server::tls_config_from_pem_files(
        &a.path().join(TLS_CERT_FILE),
        &b.path().join(TLS_KEY_FILE),
    );
    assert!(mismatched.is_err(), "a foreign key must be refused");
}

/// Stalled clients must not hold the server: a TCP connection that never starts TLS and a TLS
/// connection that sends half a request are both closed, and their connection slots come back (the
/// server below serves one connection at a time). The 30 s bounds only keep a regression from
/// hanging the suite; they are not performance assertions.
#[tokio::test]
async fn stalled_connections_are_closed_and_their_slots_released() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const BOUND: std::time::Duration = std::time::Duration::from_secs(30);

    let dir = tempfile::tempdir().unwrap();
    certs::ensure_dir(
        dir.path(),
        &CertRequest::default(),
        time::OffsetDateTime::now_utc(),
        false,
    )
    .unwrap();
    let tls = server::tls_config_from_pem_files(
        &dir.path().join(TLS_CERT_FILE),
        &dir.path().join(TLS_KEY_FILE),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        max_connections: 1,
        handshake_timeout: std::time::Duration::from_millis(200),
        header_timeout: std::time::Duration::from_millis(200),
        ..Limits::default()
    };
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(
        listener,
        Arc::new(tls),
        Mutator::default(),
        limits,
        WebhookMetrics::default(),
        async {
            let _ = stop_rx.await;
        },
    ));

    // 1. Plain TCP, no TLS ClientHello: closed after the handshake timeout.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(BOUND, silent.read(&mut buf))
        .await
        .expect("the server must close a connection that never handshakes");
    assert!(matches!(read, Ok(0) | Err(_)));

    // 2. TLS established, then half a request line: closed after the header timeout.
    let config = client_config(&dir.path().join(CA_CERT_FILE));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&config));
    let mut tls = connector
        .connect(ServerName::try_from(SERVICE_DNS).unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"POST /mutate/pod-opt-in HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(BOUND, tls.read_to_end(&mut rest))
        .await
        .expect("the server must close a connection whose headers never finish");
    let text = String::from_utf8_lossy(&rest);
    assert!(
        read.is_err() || rest.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected reply to a stalled request: {text}"
    );

    // 3. The single connection slot is free again.
    let mut client = tokio::time::timeout(BOUND, connect(addr, config, SERVICE_DNS))
        .await
        .unwrap()
        .unwrap();
    let (status, _) = send(&mut client, "GET", "/healthz", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    drop(client);
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
