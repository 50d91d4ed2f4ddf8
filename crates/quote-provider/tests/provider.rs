//! The Rust API over an in-process PCCS: without any cache directory every call still succeeds
//! (from the network), the cached collateral ends at its `nextUpdate`, and a cache entry that
//! lacks a part is fetched again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{Pccs, Sim};
use dcap_quoteprov::cache::Cache;
use dcap_quoteprov::config::Config;
use dcap_quoteprov::provider::Provider;
use pccs::SimSource;
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
