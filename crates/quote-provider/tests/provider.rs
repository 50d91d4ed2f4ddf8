//! The Rust API over an in-process PCCS: without any cache directory every call still succeeds
//! (from the network), the cached collateral ends at its `nextUpdate`, a cache entry that lacks a
//! part is fetched again, `tcb_update_type` reaches the service, and `local_pck_url` fails over.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{Pccs, Sim};
use dcap_quoteprov::cache::Cache;
use dcap_quoteprov::config::Config;
use dcap_quoteprov::provider::Provider;
use pccs::SimSource;
use pccs::client::{PckCertRequest, TcbUpdate};
use pccs::source::PckCert;
use sgx_sim::CollateralOptions;

fn config(url: String) -> Config {
    Config {
        pccs_url: url,
        verify_collateral_cache_expire_hours: 24,
        pck_cache_expire_hours: 24,
        ..Config::default()
    }
}

#[test]
fn no_usable_cache_directory_means_no_caching_not_a_failure() {
    let sim = Sim::new();
    let pck = PckCert::from_chain_pem(sim.platform.pck_cert_chain()).unwrap();
    let mut pccs = Pccs::start(sim.source.clone());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let cache = Cache::open(&[file.join(".dcap-qcnl")]);
    assert!(cache.is_none());
    let provider = Provider::new(config(pccs.url()), cache);
    let collateral = provider.collateral(&pck.fmspc, pck.ca).unwrap();
    assert_eq!(collateral.version, 0x0001_0003);
    assert!(provider.root_ca_crl().is_ok());
    pccs.stop();
    let error = provider.collateral(&pck.fmspc, pck.ca).unwrap_err();
    assert_eq!(error.status(), 0xE019, "{error}");
}

/// The cache entry files of `dir`, with their JSON.
fn entries(dir: &Path) -> Vec<(PathBuf, serde_json::Value)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let doc = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p, doc)
        })
        .collect()
}

#[test]
fn cached_collateral_lives_until_the_earliest_next_update() {
    let sim = Sim::new();
    let pck = PckCert::from_chain_pem(sim.platform.pck_cert_chain()).unwrap();
    // Issued 2024-03-01T12:00:00Z, valid 30 days: TCB info, QE identity and both CRLs say
    // nextUpdate 2024-03-31T12:00:00Z.
    let issued = time::OffsetDateTime::from_unix_timestamp(1_709_294_400).unwrap();
    let source = SimSource::with_options(
        Arc::clone(&sim.platform),
        CollateralOptions {
            issue_time: Some(issued),
            validity: time::Duration::days(30),
            ..CollateralOptions::default()
        },
    );
    let pccs = Pccs::start(Arc::new(source));
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&[dir.path().to_owned()]).unwrap();
    let provider = Provider::new(config(pccs.url()), Some(cache));
    let collateral = provider.collateral(&pck.fmspc, pck.ca).unwrap();
    let tcb_info = String::from_utf8(collateral.tcb_info).unwrap();
    assert!(
        tcb_info.contains(r#""nextUpdate":"2024-03-31T12:00:00Z""#),
        "{tcb_info}"
    );
    let entries = entries(dir.path());
    assert_eq!(entries.len(), 1);
    // 2024-03-31T12:00:00Z.
    assert_eq!(entries[0].1["not_after"].as_u64().unwrap(), 1_711_886_400);
}

#[test]
fn entries_lacking_a_part_are_fetched_again() {
    let sim = Sim::new();
    let pck = PckCert::from_chain_pem(sim.platform.pck_cert_chain()).unwrap();
    let mut pccs = Pccs::start(sim.source.clone());
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&[dir.path().to_owned()]).unwrap();
    let provider = Provider::new(config(pccs.url()), Some(cache));
    let collateral = provider.collateral(&pck.fmspc, pck.ca).unwrap();
    let root_ca_crl = provider.root_ca_crl().unwrap();
    let entries_before = entries(dir.path());
    assert_eq!(entries_before.len(), 2);
    // Each entry loses one part, as an entry of another version of the library might.
    for (path, mut doc) in entries_before.clone() {
        let fields = doc["fields"].as_object_mut().unwrap();
        let part = if fields.contains_key("der") {
            "der"
        } else {
            "qe_identity"
        };
        assert!(fields.remove(part).is_some());
        std::fs::write(&path, doc.to_string()).unwrap();
    }
    assert_eq!(provider.collateral(&pck.fmspc, pck.ca).unwrap(), collateral);
    assert_eq!(provider.root_ca_crl().unwrap(), root_ca_crl);
    // Both were fetched again and stored whole.
    let mut after = entries(dir.path());
    let mut before = entries_before;
    after.sort_by(|a, b| a.0.cmp(&b.0));
    before.sort_by(|a, b| a.0.cmp(&b.0));
    for ((_, a), (_, b)) in after.iter().zip(&before) {
        assert_eq!(a["fields"], b["fields"]);
    }
    // With the server stopped, the repaired entries serve.
    pccs.stop();
    assert_eq!(provider.collateral(&pck.fmspc, pck.ca).unwrap(), collateral);
    assert_eq!(provider.root_ca_crl().unwrap(), root_ca_crl);
}

#[test]
fn tcb_update_type_early_goes_on_every_tcb_and_identity_request() {
    let sim = Sim::new();
    let pck = PckCert::from_chain_pem(sim.platform.pck_cert_chain()).unwrap();
    let pccs = Pccs::start(sim.source.clone());
    let dir = tempfile::tempdir().unwrap();
    let cache = || Some(Cache::open(&[dir.path().to_owned()]).unwrap());
    let early = Config {
        tcb_update: Some(TcbUpdate::Early),
        ..config(pccs.url())
    };
    let provider = Provider::new(early.clone(), cache());
    let collateral = provider.collateral(&pck.fmspc, pck.ca).unwrap();
    // The simulated PCCS serves no QvE identity; the request still counts.
    assert!(provider.qve_identity().is_err());
    let seen = pccs.seen();
    let update_of = |route: &str| -> Vec<Option<String>> {
        seen.iter()
            .filter(|s| s.path.ends_with(route))
            .map(|s| s.param("update"))
            .collect()
    };
    assert_eq!(update_of("/tcb"), [Some("early".to_owned())]);
    assert_eq!(update_of("/qe/identity"), [Some("early".to_owned())]);
    assert_eq!(update_of("/qve/identity"), [Some("early".to_owned())]);
    assert_eq!(update_of("/pckcrl"), [None]);
    assert_eq!(update_of("/rootcacrl"), [None]);

    // Early and standard collateral are cached apart: without the setting it is fetched again.
    pccs.forget();
    let provider = Provider::new(config(pccs.url()), cache());
    assert_eq!(provider.collateral(&pck.fmspc, pck.ca).unwrap(), collateral);
    let tcb: Vec<_> = pccs.seen_at("/tcb");
    assert_eq!(tcb.len(), 1);
    assert_eq!(tcb[0].param("update"), None);
    // While the early entry is still served from the cache.
    pccs.forget();
    let provider = Provider::new(early, cache());
    provider.collateral(&pck.fmspc, pck.ca).unwrap();
    assert!(pccs.seen_at("/tcb").is_empty());
}

/// The messages the library sent to [`record`].
static MESSAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn record(_level: u32, message: *const std::ffi::c_char) {
    // SAFETY: the library passes a valid NUL-terminated string for the call's duration.
    let text = unsafe { std::ffi::CStr::from_ptr(message) };
    MESSAGES
        .lock()
        .unwrap()
        .push(text.to_string_lossy().into_owned());
}

#[test]
fn local_pck_url_failures_fail_over_to_pccs_url_with_a_logged_notice() {
    let sim = Sim::new();
    let pck = PckCert::from_chain_pem(sim.platform.pck_cert_chain()).unwrap();
    let pccs = Pccs::start(sim.source.clone());
    let mut dead = Pccs::start(sim.source.clone());
    let dead_url = dead.url();
    dead.stop();
    let thim = Pccs::serve(common::thim_routes(sim.source.clone()));
    let thim_url = format!("http://{}{}", thim.addr, common::THIM_PREFIX);
    let request = PckCertRequest {
        qe_id: vec![0x42; 16],
        cpu_svn: pck.tcbm[..16].try_into().unwrap(),
        pce_svn: u16::from_le_bytes([pck.tcbm[16], pck.tcbm[17]]),
        pce_id: u16::from_le_bytes(pck.pce_id),
        ..PckCertRequest::default()
    };
    let plain = Provider::new(config(pccs.url()), None)
        .quote_config(&request)
        .unwrap();
    assert_eq!(
        plain.cert_data,
        [pck.cert_pem.as_bytes(), pck.issuer_chain.as_bytes()].concat()
    );
    dcap_quoteprov::log::set(Some(record), dcap_quoteprov::types::SGX_QL_LOG_INFO);
    let failover = |local: &str| {
        let provider = Provider::new(
            Config {
                local_pck_url: Some(local.to_owned()),
                ..config(pccs.url())
            },
            None,
        );
        pccs.forget();
        let got = provider.quote_config(&request).unwrap();
        assert_eq!(got, plain, "{local}");
        assert_eq!(pccs.seen_at("/pckcert").len(), 1, "{local}: pccs_url asked");
        let messages = MESSAGES.lock().unwrap();
        assert!(
            messages.iter().any(|m| m.contains("local_pck_url failed")
                && m.contains(local)
                && m.contains(&format!("failing over to pccs_url {}", pccs.url()))),
            "{local}: {messages:?}"
        );
    };
    // Nothing listening.
    failover(&dead_url);
    // THIM refuses (400) a request without its header and parameter.
    failover(&thim_url);
    // 404: a path THIM does not serve.
    failover(&format!("http://{}/sgx/certification/v4/", thim.addr));

    // A 200 answer that is not a certificate is an error, not a reason to fail over (as in
    // Intel's library, which fails over only when the request fails).
    let garbage = Pccs::serve(ops_http::ExtraRoutes::new(|_, _, _| {
        Some(ops_http::Response::ok(
            "text/plain",
            b"not a certificate".to_vec(),
        ))
    }));
    let provider = Provider::new(
        Config {
            local_pck_url: Some(garbage.url()),
            ..config(pccs.url())
        },
        None,
    );
    pccs.forget();
    let error = provider.quote_config(&request).unwrap_err();
    assert_eq!(error.status(), 0xE046, "{error}");
    assert!(pccs.seen_at("/pckcert").is_empty());

    // With its header and parameter, THIM answers and pccs_url is not asked.
    let provider = Provider::new(
        Config {
            local_pck_url: Some(thim_url),
            get_cert_params: vec![("api-version".into(), common::THIM_API_VERSION.into())],
            get_cert_headers: vec![("metadata".into(), "true".into())],
            ..config(pccs.url())
        },
        None,
    );
    pccs.forget();
    assert_eq!(provider.quote_config(&request).unwrap(), plain);
    assert!(pccs.seen_at("/pckcert").is_empty());
    assert_eq!(thim.seen_at("/pckcert").len(), 3);
    dcap_quoteprov::log::set(None, 0);
}
