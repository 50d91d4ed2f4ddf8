//! An upstream-backed PCCS serves `crl?uri=` and `pckcerts` from a stand-in upstream (a simulated
//! platform's PCCS on a local socket that counts its requests): what it has seen in certificates
//! it served, fetched once and cached, and never an arbitrary URI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pccs::api::{self, Reply};
use pccs::store::Store;
use pccs::{CollateralSource, SimSource, UpstreamSource};
use sgx_sim::{InitOptions, SimPlatform};

/// A PCCS over `source` on a local port, answering one request per connection; counts requests.
fn stand_in(source: Arc<dyn CollateralSource>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let target = request_line.split(' ').nth(1).unwrap_or("/");
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target, None),
            };
            let reply = api::handle(source.as_ref(), path, query).unwrap_or(Reply {
                status: 404,
                content_type: "text/plain",
                headers: Vec::new(),
                body: b"not found".to_vec(),
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
    (url, count)
}

fn get(source: &dyn CollateralSource, path_and_query: &str) -> Reply {
    let (path, query) = path_and_query.split_once('?').unwrap();
    api::handle(source, path, Some(query)).unwrap()
}

fn encode(uri: &str) -> String {
    form_urlencoded::byte_serialize(uri.as_bytes()).collect()
}

#[test]
fn crl_by_uri_and_pckcerts_through_an_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Arc::new(
        SimPlatform::open_or_init(&dir.path().join("sim"), &InitOptions::default()).unwrap(),
    );
    let upstream_source = Arc::new(SimSource::new(Arc::clone(&platform)));
    let (url, requests) = stand_in(upstream_source.clone());
    let store = Store::open(&dir.path().join("cache.redb")).unwrap();
    let pccs = UpstreamSource::new(&url, store, Duration::from_secs(10)).unwrap();
    let locations = platform.crl_distribution_points();
    let (root_uri, pck_uri) = (locations.root_ca_crl.unwrap(), locations.pck_crl.unwrap());

    // Nothing served yet: the upstream's distribution points are unknown, and asking for them or
    // for any other URI is refused without a request upstream.
    for uri in [
        root_uri.as_str(),
        "http://169.254.169.254/latest/meta-data/iam",
        &format!("{url}/sgx/certification/v4/rootcacrl?encoding=der"),
        "http://127.0.0.1:1/anything",
    ] {
        let reply = get(
            &pccs,
            &format!("/sgx/certification/v4/crl?uri={}", encode(uri)),
        );
        assert_eq!(reply.status, 400, "{uri}");
        assert_eq!(reply.body, b"Invalid request parameters.");
    }
    assert_eq!(
        requests.load(Ordering::SeqCst),
        0,
        "no request for an unknown URI"
    );

    // pckcerts: the upstream's answer, passed on in Intel's form.
    let ppid = "CD".repeat(384);
    let path = format!("/sgx/certification/v4/pckcerts?encrypted_ppid={ppid}&pceid=0000");
    let ours = get(&pccs, &path);
    let theirs = get(upstream_source.as_ref(), &path);
    assert_eq!(ours.status, 200);
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    let as_json = |r: &Reply| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap();
    assert_eq!(as_json(&ours), as_json(&theirs));
    for header in [
        "SGX-PCK-Certificate-Issuer-Chain",
        "SGX-FMSPC",
        "SGX-PCK-Certificate-CA-Type",
    ] {
        assert_eq!(ours.header(header), theirs.header(header), "{header}");
    }
    // Cached: the second answer costs no request.
    assert_eq!(get(&pccs, &path).body, ours.body);
    assert_eq!(requests.load(Ordering::SeqCst), 1);

    // The certificates it served name the upstream's CRLs: now those are answered (each fetched
    // once through the upstream's own routes, then cached).
    let collateral = platform.collateral(&Default::default()).unwrap();
    for (uri, crl) in [
        (&root_uri, &collateral.root_ca_crl),
        (&pck_uri, &collateral.pck_crl),
    ] {
        let before = requests.load(Ordering::SeqCst);
        let reply = get(
            &pccs,
            &format!("/sgx/certification/v4/crl?uri={}", encode(uri)),
        );
        assert_eq!(reply.status, 200, "{uri}");
        assert_eq!(reply.content_type, "application/pkix-crl");
        assert_eq!(
            sgx_types_der_issuer(&reply.body),
            sgx_types_der_issuer(crl),
            "the upstream's CRL of that CA"
        );
        assert_eq!(requests.load(Ordering::SeqCst), before + 1);
        get(
            &pccs,
            &format!("/sgx/certification/v4/crl?uri={}", encode(uri)),
        );
        assert_eq!(requests.load(Ordering::SeqCst), before + 1, "cached");
    }
    // Still nothing else.
    let before = requests.load(Ordering::SeqCst);
    let reply = get(
        &pccs,
        &format!(
            "/sgx/certification/v4/crl?uri={}",
            encode(&format!("{url}/secret"))
        ),
    );
    assert_eq!(reply.status, 400);
    assert_eq!(requests.load(Ordering::SeqCst), before);
}

/// The issuer name of a DER CRL (the simulated CRLs are re-issued with each collateral, so bytes
/// differ between two issues; the issuer does not).
fn sgx_types_der_issuer(der: &[u8]) -> String {
    use x509_cert::der::Decode;
    <x509_cert::crl::CertificateList>::from_der(der)
        .unwrap()
        .tbs_cert_list
        .issuer
        .to_string()
}
