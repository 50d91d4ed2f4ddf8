//! `confcom pccs` and `confcom verify --pccs`: a simulated platform, an offline directory made by
//! `confcom demo`, and the real Intel collateral of the dcap-qvl sample, served over HTTP and fetched
//! by the verifier; upstream 404s, 500s, refusals and silence end in clear errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

const SAMPLE_NOW: &str = "1751624924";

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
}

fn confcom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(args)
        .output()
        .unwrap()
}

fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A running `confcom pccs`, stopped on drop.
struct Pccs {
    child: Child,
    url: String,
}

impl Pccs {
    fn start(source: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_confcom"))
            .arg("pccs")
            .args(source)
            .args(["--listen", "127.0.0.1:0"])
            .env("CONFCOM_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let listen = loop {
            let line = lines
                .next()
                .expect("confcom pccs exited before serving")
                .unwrap();
            let log: Value = serde_json::from_str(&line).unwrap();
            if let Some(listen) = log["fields"]["listen"].as_str() {
                break listen.to_owned();
            }
        };
        // Keep draining the log so that the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Pccs {
            child,
            url: format!("http://{listen}"),
        }
    }
}

impl Pccs {
    /// HTTPS over the simulated platform of a `confcom demo` directory, with the `tls.crt` and
    /// `tls.key` of `certs` (its `url` keeps the `http://` scheme: it names the address).
    fn start_tls(node: &Path, certs: &Path) -> Self {
        Pccs::start(&[
            "--sim-state",
            node.join("state").to_str().unwrap(),
            "--tls-cert",
            certs.join("tls.crt").to_str().unwrap(),
            "--tls-key",
            certs.join("tls.key").to_str().unwrap(),
        ])
    }
}

impl Drop for Pccs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A simulated node with a quote: `confcom demo --dir`.
fn demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = confcom(&["demo", "--dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", all_output(&out));
    dir
}

fn http_get(url: &str) -> (String, Vec<u8>) {
    http_get_with(url, None)
}

#[test]
fn sim_collateral_and_the_fetched_collateral_agree_byte_for_byte() {
    let node = demo();
    let collateral = node.path().join("collateral");
    let pccs = Pccs::start(&["--offline-dir", collateral.to_str().unwrap()]);
    let saved = tempfile::tempdir().unwrap();
    let out = confcom(&[
        "verify",
        node.path().join("quote.bin").to_str().unwrap(),
        "--pccs",
        &pccs.url,
        "--root",
        collateral.join("root-ca.pem").to_str().unwrap(),
        "--save-collateral",
        saved.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("UpToDate"),
        "{}",
        all_output(&out)
    );
    for name in [
        "tcb_info.json",
        "qe_identity.json",
        "pck_crl.der",
        "root_ca_crl.der",
        "tcb_info_issuer_chain.pem",
        "qe_identity_issuer_chain.pem",
        "pck_crl_issuer_chain.pem",
    ] {
        assert_eq!(
            std::fs::read(saved.path().join(name)).unwrap(),
            std::fs::read(collateral.join(name)).unwrap(),
            "{name}"
        );
    }
    // The saved directory is collateral for offline use.
    let out = confcom(&[
        "verify",
        node.path().join("quote.bin").to_str().unwrap(),
        "--collateral",
        saved.path().to_str().unwrap(),
        "--root",
        collateral.join("root-ca.pem").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
}

#[test]
fn a_simulated_platform_has_a_pccs_endpoint_on_both_api_versions() {
    let node = demo();
    let pccs = Pccs::start(&["--sim-state", node.path().join("state").to_str().unwrap()]);
    let root = node.path().join("collateral/root-ca.pem");
    for base in [
        pccs.url.clone(),
        format!("{}/sgx/certification/v4/", pccs.url),
        format!("{}/sgx/certification/v3", pccs.url),
    ] {
        let out = confcom(&[
            "verify",
            node.path().join("quote.bin").to_str().unwrap(),
            "--pccs",
            &base,
            "--root",
            root.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{base}: {}", all_output(&out));
        let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(verdict["status"], "UpToDate");
        let tcb_info_version = if base.ends_with("v3") { 2 } else { 3 };
        assert_eq!(verdict["tcb_info_version"], tcb_info_version, "{base}");
    }
    let (head, body) = http_get(&format!("{}/metrics", pccs.url));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let metrics = String::from_utf8(body).unwrap();
    assert!(
        metrics.contains("confcom_pccs_requests_total{status=\"200\"}"),
        "{metrics}"
    );
    let (head, _) = http_get(&format!("{}/readyz", pccs.url));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

/// The dcap-qvl sample's collateral in the PCS layout.
fn sample_collateral_dir(dir: &Path) {
    let c: Value = serde_json::from_slice(
        &std::fs::read(vectors().join("dcap-qvl/sgx_quote_collateral.json")).unwrap(),
    )
    .unwrap();
    let s = |k: &str| c[k].as_str().unwrap().to_owned();
    let files = [
        (
            "tcb_info.json",
            format!(
                "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
                s("tcb_info"),
                s("tcb_info_signature")
            )
            .into_bytes(),
        ),
        (
            "qe_identity.json",
            format!(
                "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
                s("qe_identity"),
                s("qe_identity_signature")
            )
            .into_bytes(),
        ),
        ("pck_crl.der", hex::decode(s("pck_crl")).unwrap()),
        ("root_ca_crl.der", hex::decode(s("root_ca_crl")).unwrap()),
        (
            "tcb_info_issuer_chain.pem",
            s("tcb_info_issuer_chain").into_bytes(),
        ),
        (
            "qe_identity_issuer_chain.pem",
            s("qe_identity_issuer_chain").into_bytes(),
        ),
        (
            "pck_crl_issuer_chain.pem",
            s("pck_crl_issuer_chain").into_bytes(),
        ),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn the_real_intel_collateral_is_replayed_and_the_sample_quote_verifies() {
    let dir = tempfile::tempdir().unwrap();
    sample_collateral_dir(dir.path());
    let pccs = Pccs::start(&["--offline-dir", dir.path().to_str().unwrap()]);
    let sample = vectors().join("dcap-qvl/sgx_quote");
    let out = confcom(&[
        "verify",
        sample.to_str().unwrap(),
        "--pccs",
        &pccs.url,
        "--now",
        SAMPLE_NOW,
        "--json",
    ]);
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(verdict["intel_root"], true);
    // Intel's own collateral, fetched, agrees with the same collateral given as a file.
    let given = confcom(&[
        "verify",
        sample.to_str().unwrap(),
        "--collateral",
        vectors()
            .join("dcap-qvl/sgx_quote_collateral.json")
            .to_str()
            .unwrap(),
        "--now",
        SAMPLE_NOW,
        "--json",
    ]);
    assert_eq!(given.stdout, out.stdout);
}

#[test]
fn a_platform_the_pccs_does_not_know_is_a_clear_error() {
    let node = demo();
    let pccs = Pccs::start(&["--sim-state", node.path().join("state").to_str().unwrap()]);
    // Intel's sample quote: another FMSPC than the simulated platform's.
    let sample = vectors().join("dcap-qvl/sgx_quote");
    let out = confcom(&["verify", sample.to_str().unwrap(), "--pccs", &pccs.url]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    let text = all_output(&out);
    assert!(
        text.contains("cannot fetch the collateral of FMSPC"),
        "{text}"
    );
    assert!(
        text.contains("HTTP 404 (No cache data for this platform.)"),
        "{text}"
    );
}

/// A one-shot upstream that answers every connection with `reply` (or never, when `None`).
fn upstream(reply: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head);
            match reply {
                Some(reply) => {
                    let _ = stream.write_all(reply.as_bytes());
                }
                // Silence: keep the connection open without a byte.
                None => held.push(stream),
            }
        }
    });
    format!("http://{addr}")
}

#[test]
fn upstream_errors_refusals_and_silence_end_in_clear_errors() {
    let node = demo();
    let quote = node.path().join("quote.bin");
    let quote = quote.to_str().unwrap();
    let cases = [
        (
            upstream(Some(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 31\r\nConnection: close\r\n\r\nInternal server error occurred.",
            )),
            "HTTP 500 (Internal server error occurred.)",
        ),
        (
            upstream(Some(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            )),
            "not a CRL",
        ),
        (upstream(None), "timeout"),
        (
            "http://127.0.0.1:1".to_owned(),
            "cannot fetch the collateral",
        ),
    ];
    for (url, expected) in cases {
        let out = confcom(&["verify", quote, "--pccs", &url, "--fetch-timeout", "2"]);
        assert_eq!(out.status.code(), Some(2), "{url}: {}", all_output(&out));
        let text = all_output(&out).to_lowercase();
        assert!(text.contains(&expected.to_lowercase()), "{url}: {text}");
    }
    // Flags: exactly one collateral source.
    let out = confcom(&["verify", quote]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    let out = confcom(&["verify", quote, "--pccs", "http://x", "--collateral", "."]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    let out = confcom(&["verify", quote, "--pccs", "ftp://x"]);
    assert!(
        all_output(&out).contains("not an http"),
        "{}",
        all_output(&out)
    );
}

// --- a PCCS in front of an upstream service -------------------------------------------------------

fn metric(url: &str, name: &str) -> Option<f64> {
    let (_, body) = http_get(&format!("{url}/metrics"));
    String::from_utf8(body).unwrap().lines().find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok())?
    })
}

fn verify_sample(pccs: &str) -> Output {
    let sample = vectors().join("dcap-qvl/sgx_quote");
    confcom(&[
        "verify",
        sample.to_str().unwrap(),
        "--pccs",
        pccs,
        "--now",
        SAMPLE_NOW,
    ])
}

#[test]
fn an_upstream_is_cached_lazily_and_survives_outages_and_restarts() {
    let collateral = tempfile::tempdir().unwrap();
    sample_collateral_dir(collateral.path());
    let upstream = Pccs::start(&["--offline-dir", collateral.path().to_str().unwrap()]);
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let front = |max_age: &str, upstream: &str| {
        Pccs::start(&[
            "--upstream",
            upstream,
            "--cache-dir",
            cache_dir,
            "--max-age-secs",
            max_age,
            "--upstream-timeout-secs",
            "2",
        ])
    };

    // max-age 0: every request goes upstream while it answers.
    let pccs = front("0", &upstream.url);
    let out = verify_sample(&pccs.url);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let ok = "confcom_pccs_upstream_fetches_total{result=\"ok\"}";
    assert_eq!(
        metric(&pccs.url, ok),
        Some(4.0),
        "pckcrl, tcb, qe identity, root CRL"
    );
    assert_eq!(metric(&pccs.url, "confcom_pccs_upstream_up"), Some(1.0));
    // An FMSPC the upstream does not know is its 404, passed on.
    let (head, body) = http_get(&format!(
        "{}/sgx/certification/v4/tcb?fmspc=00906ED50000",
        pccs.url
    ));
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert_eq!(body, b"No cache data for this platform.");

    // The upstream goes away: the last good collateral is served, and /metrics says so.
    drop(upstream);
    let out = verify_sample(&pccs.url);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(metric(&pccs.url, "confcom_pccs_upstream_up"), Some(0.0));
    assert!(
        metric(&pccs.url, "confcom_pccs_upstream_stale_served_total").unwrap() >= 4.0,
        "every document came from the cache"
    );

    // A restart keeps the cache: a new server with the upstream still down serves it.
    drop(pccs);
    let pccs = front("86400", "http://127.0.0.1:1");
    let out = verify_sample(&pccs.url);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(
        metric(&pccs.url, ok),
        None,
        "nothing was fetched: the cache was fresh"
    );
}

#[test]
fn an_upstream_failure_with_nothing_cached_is_a_502() {
    for (upstream_url, why) in [
        (
            upstream(Some(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )),
            "5xx",
        ),
        (upstream(None), "silence"),
        ("http://127.0.0.1:1".to_owned(), "refused"),
    ] {
        let cache = tempfile::tempdir().unwrap();
        let pccs = Pccs::start(&[
            "--upstream",
            &upstream_url,
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "--upstream-timeout-secs",
            "1",
        ]);
        let (head, body) = http_get(&format!("{}/sgx/certification/v4/qe/identity", pccs.url));
        assert!(head.starts_with("HTTP/1.1 502"), "{why}: {head}");
        assert_eq!(
            body, b"Unable to retrieve the collateral from the Intel SGX PCS.",
            "{why}"
        );
        assert_eq!(
            metric(
                &pccs.url,
                "confcom_pccs_upstream_fetches_total{result=\"error\"}"
            ),
            Some(1.0),
            "{why}"
        );
        // The server still answers other requests while the upstream is silent.
        let (head, _) = http_get(&format!("{}/healthz", pccs.url));
        assert!(head.starts_with("HTTP/1.1 200"), "{why}: {head}");
    }
}

#[test]
fn https_with_generated_certificates() {
    let node = demo();
    let certs = tempfile::tempdir().unwrap();
    let out = confcom(&[
        "pccs",
        "certs",
        "--out",
        certs.path().to_str().unwrap(),
        "--namespace",
        "attest",
    ]);
    assert!(out.status.success(), "{}", all_output(&out));
    let pccs = Pccs::start_tls(node.path(), certs.path());
    let addr = pccs.url.strip_prefix("http://").unwrap().to_owned();

    // A client that trusts the generated CA and asks for the Service's name.
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pki_types::CertificateDer::pem_file_iter(certs.path().join("ca.crt")).unwrap()
    {
        roots.add(ca.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("sgx-pccs.attest.svc").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, std::net::TcpStream::connect(&addr).unwrap());
    write!(
        tls,
        "GET /sgx/certification/v4/rootcacrl HTTP/1.1\r\nHost: sgx-pccs.attest.svc\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    assert!(hex::decode(body.trim()).unwrap().starts_with(&[0x30]));

    // Plain HTTP on the TLS port gets no answer.
    let mut plain = std::net::TcpStream::connect(&addr).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = write!(plain, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"));
}

#[test]
fn one_pccs_serves_every_node_of_a_simulated_cluster_under_one_ca() {
    let dir = tempfile::Builder::new()
        .prefix("pc")
        .tempdir_in("/tmp")
        .unwrap();
    let ca = dir.path().join("ca");
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    // The cluster's CA, as an operator makes it once.
    let out = confcom(&[
        "sim",
        "init",
        "--ca-dir",
        ca.to_str().unwrap(),
        "--state-dir",
        &path("seed"),
    ]);
    assert!(out.status.success(), "{}", all_output(&out));
    // A node: its quote helper under the CA, and an app that quotes through it (started first, it
    // waits for the socket).
    let socket = path("aesmd/aesm.socket");
    let mut helper = Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args([
            "quote-helper",
            "--backend",
            "sim",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args(["--socket", &socket, "--state-dir", &path("node")])
        .args(["--sim-ca-dir", ca.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let quote = path("quote.bin");
    let out = confcom(&[
        "quote",
        "--socket",
        &socket,
        "--report-data",
        "01",
        "--out",
        &quote,
        "--wait-secs",
        "60",
    ]);
    let _ = helper.kill();
    let _ = helper.wait();
    assert!(out.status.success(), "{}", all_output(&out));
    // The cluster's PCCS: a platform of its own under the same CA.
    let pccs = Pccs::start(&[
        "--sim-state",
        &path("pccs"),
        "--sim-ca-dir",
        ca.to_str().unwrap(),
    ]);
    let out = confcom(&[
        "verify",
        &quote,
        "--pccs",
        &pccs.url,
        "--root",
        ca.join("root-ca.pem").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("UpToDate"),
        "{}",
        all_output(&out)
    );
}

#[test]
fn verify_keeps_fetched_collateral_in_its_cache_dir() {
    let collateral = tempfile::tempdir().unwrap();
    sample_collateral_dir(collateral.path());
    let pccs = Pccs::start(&["--offline-dir", collateral.path().to_str().unwrap()]);
    let cache = tempfile::tempdir().unwrap();
    let sample = vectors().join("dcap-qvl/sgx_quote");
    let verify = |url: &str| {
        confcom(&[
            "verify",
            sample.to_str().unwrap(),
            "--pccs",
            url,
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "--now",
            SAMPLE_NOW,
        ])
    };
    let out = verify(&pccs.url);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    // The service is gone; the cache answers.
    let url = pccs.url.clone();
    drop(pccs);
    let out = verify(&url);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    // Without the cache the same run fails.
    let out = confcom(&[
        "verify",
        sample.to_str().unwrap(),
        "--pccs",
        &url,
        "--now",
        SAMPLE_NOW,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
}

fn http_get_with(url: &str, header: Option<(&str, &str)>) -> (String, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    // A guard against a hung server (a failure, not a measurement).
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    let extra = header.map_or(String::new(), |(k, v)| format!("{k}: {v}\r\n"));
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&raw[..split]).into_owned(),
        raw[split + 4..].to_vec(),
    )
}

#[test]
fn the_refresh_route_needs_the_admin_token_and_refetches_the_cache() {
    let collateral = tempfile::tempdir().unwrap();
    sample_collateral_dir(collateral.path());
    let upstream = Pccs::start(&["--offline-dir", collateral.path().to_str().unwrap()]);
    let cache = tempfile::tempdir().unwrap();
    let hash = hex::encode(ring::digest::digest(&ring::digest::SHA512, b"s3cret"));
    let pccs = Pccs::start(&[
        "--upstream",
        &upstream.url,
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "--admin-token-hash",
        &hash,
    ]);
    let ok = "confcom_pccs_upstream_fetches_total{result=\"ok\"}";
    let out = verify_sample(&pccs.url);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(metric(&pccs.url, ok), Some(4.0));
    // Served from the cache: no new fetch.
    let out = verify_sample(&pccs.url);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(metric(&pccs.url, ok), Some(4.0));

    let refresh = format!("{}/sgx/certification/v4/refresh", pccs.url);
    for token in [None, Some(("admin-token", "wrong"))] {
        let (head, body) = http_get_with(&refresh, token);
        assert!(head.starts_with("HTTP/1.1 401"), "{head}");
        assert_eq!(body, b"Authentication failed.");
    }
    let (head, _) = http_get_with(
        &format!("{refresh}?type=certs"),
        Some(("admin-token", "s3cret")),
    );
    assert!(
        head.starts_with("HTTP/1.1 400"),
        "type=certs needs an fmspc: {head}"
    );
    let (head, body) = http_get_with(&refresh, Some(("admin-token", "s3cret")));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, b"Operation successful.");
    // Everything is fetched again at its next request.
    let out = verify_sample(&pccs.url);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(metric(&pccs.url, ok), Some(8.0));
}

/// Serving certificates for `localhost` under a new private CA, as `confcom pccs certs` makes them
/// for a Service (the last DNS name of the set is the bare Service name).
fn localhost_certs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let request = addon::certs::CertRequest {
        service: "localhost".to_owned(),
        ..addon::certs::CertRequest::default()
    };
    assert!(request.dns_names().contains(&"localhost".to_owned()));
    addon::certs::ensure_dir(dir.path(), &request, time_now(), false).unwrap();
    dir
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[test]
fn a_pccs_under_a_private_ca_is_trusted_through_a_ca_file_or_ssl_cert_file() {
    let node = demo();
    let certs = localhost_certs();
    let ca = certs.path().join("ca.crt");
    let pccs = Pccs::start_tls(node.path(), certs.path());
    let port = pccs.url.rsplit(':').next().unwrap().to_owned();
    let https = format!("https://localhost:{port}");
    let quote = node.path().join("quote.bin");
    let root = node.path().join("collateral/root-ca.pem");
    let verify = |extra: &[&str], env: Option<&Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_confcom"));
        command
            .args(["verify", quote.to_str().unwrap(), "--pccs", &https])
            .args(["--root", root.to_str().unwrap(), "--fetch-timeout", "5"])
            .args(extra)
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        if let Some(file) = env {
            command.env("SSL_CERT_FILE", file);
        }
        command.output().unwrap()
    };

    // Neither Mozilla's roots nor the system's store know the private CA.
    let out = verify(&[], None);
    assert_ne!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(
        all_output(&out).to_lowercase().contains("certificate"),
        "the error names the certificate: {}",
        all_output(&out)
    );
    // Named on the command line.
    let out = verify(&["--pccs-ca-file", ca.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    // Or in the system's store, as SSL_CERT_FILE names it (what the rendered quote helpers use).
    let out = verify(&[], Some(&ca));
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    // A CA file that holds no certificate is refused by name.
    let out = verify(
        &[
            "--pccs-ca-file",
            certs.path().join("tls.key").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("holds no PEM certificate"),
        "{}",
        all_output(&out)
    );

    // A caching PCCS in front of it trusts it through --upstream-ca-file.
    let cache = tempfile::tempdir().unwrap();
    let front = Pccs::start(&[
        "--upstream",
        &https,
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "--upstream-ca-file",
        ca.to_str().unwrap(),
    ]);
    let out = confcom(&[
        "verify",
        quote.to_str().unwrap(),
        "--pccs",
        &front.url,
        "--root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
}

/// A gate: requests wait at it until it is opened, then pass freely.
#[derive(Default)]
struct Gate {
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// A slow upstream: a proxy to `target` that holds every request at `gate` and reports each
/// request line on `seen` as it arrives.
fn slow_upstream(
    target: &str,
    gate: std::sync::Arc<Gate>,
    seen: std::sync::mpsc::Sender<String>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let target = target.strip_prefix("http://").unwrap().to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut client) = stream else { continue };
            let (gate, seen, target) = (gate.clone(), seen.clone(), target.clone());
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && client.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let _ = seen.send(text.lines().next().unwrap_or_default().to_owned());
                gate.wait();
                // One request per connection upstream, whatever the client asked.
                let mut request: String = text
                    .trim_end()
                    .lines()
                    .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                    .map(|l| format!("{l}\r\n"))
                    .collect();
                request.push_str("Connection: close\r\n\r\n");
                let mut upstream = std::net::TcpStream::connect(&target).unwrap();
                upstream.write_all(request.as_bytes()).unwrap();
                let mut reply = Vec::new();
                let _ = upstream.read_to_end(&mut reply);
                let _ = client.write_all(&reply);
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_slow_upstream_delays_only_its_own_requests() {
    let collateral = tempfile::tempdir().unwrap();
    sample_collateral_dir(collateral.path());
    let upstream = Pccs::start(&["--offline-dir", collateral.path().to_str().unwrap()]);
    let gate = std::sync::Arc::new(Gate::default());
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let slow = slow_upstream(&upstream.url, gate.clone(), seen_tx);
    let cache = tempfile::tempdir().unwrap();
    let pccs = Pccs::start(&[
        "--upstream",
        &slow,
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "--upstream-timeout-secs",
        "120",
    ]);

    // A request whose upstream fetch is held at the gate…
    let url = format!("{}/sgx/certification/v4/qe/identity", pccs.url);
    let pending = std::thread::spawn(move || http_get(&url));
    let line = seen.recv().unwrap();
    assert!(
        line.starts_with("GET /sgx/certification/v4/qe/identity"),
        "{line}"
    );
    // …does not hold up the server: health, metrics and the readiness answer meanwhile.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (head, _) = http_get(&format!("{}{path}", pccs.url));
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    }
    assert!(
        !pending.is_finished(),
        "the upstream still holds the request"
    );
    // Once the upstream answers, so does the PCCS, and the answer is cached.
    gate.open();
    let (head, body) = pending.join().unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.starts_with(b"{\"enclaveIdentity\":"));
    let out = verify_sample(&pccs.url);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
}

/// A stand-in for Azure's THIM on a host (`/metadata/THIM/sgx/certification/v4/`): `pckcert` only,
/// answered in THIM's JSON form from the PCCS at `target`, and refused (400) without the
/// `metadata: true` header or the `api-version` parameter; anything else is 404. Each request
/// line is reported on `seen`.
fn thim_stand_in(target: &str, seen: std::sync::mpsc::Sender<String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let target = target.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut client) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && client.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let line = text.lines().next().unwrap_or_default().to_owned();
            let _ = seen.send(line.clone());
            let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
            let has_metadata = text
                .lines()
                .any(|l| l.eq_ignore_ascii_case("metadata: true"));
            let reply = match path.strip_prefix("/metadata/THIM/sgx/certification/v4/pckcert?") {
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned(),
                Some(query)
                    if !has_metadata || !query.contains("api-version=2021-07-22-preview") =>
                {
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_owned()
                }
                Some(query) => {
                    let (head, body) =
                        http_get(&format!("{target}/sgx/certification/v4/pckcert?{query}"));
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                            })
                            .unwrap()
                    };
                    let json = serde_json::json!({
                        "pckCert": String::from_utf8(body).unwrap(),
                        "sgx-Pck-Certificate-Issuer-Chain": header("SGX-PCK-Certificate-Issuer-Chain"),
                        "sgx-Tcbm": header("SGX-TCBm"),
                        "cacheMaxAge": 86400,
                    })
                    .to_string();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
                        json.len()
                    )
                }
            };
            let _ = client.write_all(reply.as_bytes());
        }
    });
    format!("http://{addr}/metadata/THIM/sgx/certification/v4/")
}

#[test]
fn pck_certificates_from_azure_thim_and_collateral_from_the_upstream() {
    let node = demo();
    let origin = Pccs::start(&["--sim-state", node.path().join("state").to_str().unwrap()]);
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let thim = thim_stand_in(&origin.url, seen_tx);
    let cache = tempfile::tempdir().unwrap();
    let pccs = Pccs::start(&[
        "--upstream",
        &origin.url,
        "--pck-upstream",
        &thim,
        "--cache-dir",
        cache.path().to_str().unwrap(),
    ]);
    let query = format!(
        "qeid={}&cpusvn={}&pcesvn=0000&pceid=0000",
        "AB".repeat(16),
        "00".repeat(16)
    );
    let (direct_head, direct_body) = http_get(&format!(
        "{}/sgx/certification/v4/pckcert?{query}",
        origin.url
    ));
    assert!(direct_head.starts_with("HTTP/1.1 200"), "{direct_head}");
    let (head, body) = http_get(&format!(
        "{}/sgx/certification/v4/pckcert?{query}",
        pccs.url
    ));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // THIM's JSON answer, served in Intel's form: the same certificate and headers.
    assert_eq!(body, direct_body);
    let headers = |head: &str| -> Vec<String> {
        let mut names: Vec<String> = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("sgx-"))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    };
    assert_eq!(headers(&head), headers(&direct_head));
    assert_eq!(headers(&head).len(), 4, "{head}");
    let line = seen.try_recv().unwrap();
    assert!(
        line.starts_with("GET /metadata/THIM/sgx/certification/v4/pckcert?"),
        "{line}"
    );
    // The collateral comes from --upstream: THIM is not asked, and the quote verifies.
    let out = confcom(&[
        "verify",
        node.path().join("quote.bin").to_str().unwrap(),
        "--pccs",
        &pccs.url,
        "--root",
        node.path().join("collateral/root-ca.pem").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(
        seen.try_recv().is_err(),
        "only the PCK certificate came from THIM"
    );
}
