//! The Rust API over an in-process PCCS: without any cache directory every call still succeeds
//! (from the network), and the cached collateral ends at its `nextUpdate`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Pccs, Sim};
use dcap_quoteprov::cache::Cache;
use dcap_quoteprov::config::Config;
use dcap_quoteprov::provider::{Provider, crl_next_update, json_next_update};
use pccs::source::PckCert;

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

#[test]
fn cached_collateral_lives_until_the_earliest_next_update() {
    let sim = Sim::new();
    let pck = PckCert::from_chain_pem(sim.platform.pck_cert_chain()).unwrap();
    let pccs = Pccs::start(sim.source.clone());
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&[dir.path().to_owned()]).unwrap();
    let provider = Provider::new(config(pccs.url()), Some(cache.clone()));
    provider.collateral(&pck.fmspc, pck.ca).unwrap();

    let client =
        pccs::client::PccsClient::new(&pccs.url(), std::time::Duration::from_secs(10)).unwrap();
    let fetched = client.collateral(&pck.fmspc, pck.ca).unwrap();
    let earliest = [
        json_next_update(&fetched.tcb_info, "tcbInfo").unwrap(),
        json_next_update(&fetched.qe_identity, "enclaveIdentity").unwrap(),
        crl_next_update(&fetched.pck_crl.der).unwrap(),
        crl_next_update(&fetched.root_ca_crl).unwrap(),
    ]
    .into_iter()
    .min()
    .unwrap();
    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(entry).unwrap()).unwrap();
    assert_eq!(doc["not_after"].as_u64().unwrap(), earliest);
}
