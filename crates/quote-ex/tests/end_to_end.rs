//! End to end: the C program, through the built `libsgx_quote_ex.so.1` (linked and via `dlopen`),
//! against the real quote helper (`aesm_service` with the simulated platform), with a report made
//! on the simulated CPU the helper publishes (what `confcom sim report` does); the quote it gets
//! verifies with Phala's `dcap-qvl` under the simulated root, and not under Intel's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/helper.rs"]
mod helper;

use common::cprog::{Loading, field, lines, run, status};
use helper::Helper;
use sgx_sim::{CollateralOptions, EnclaveIdentity, SimPlatform};
use sgx_types::structs::Wire;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// dcap-qvl's verdict on `quote` under `root` with the platform's collateral.
fn verify(
    platform: &SimPlatform,
    root: Option<Vec<u8>>,
    quote: &[u8],
) -> Result<dcap_qvl::verify::VerifiedReport, String> {
    let collateral = platform.collateral(&CollateralOptions::default()).unwrap();
    let qvl: dcap_qvl::QuoteCollateralV3 = serde_json::from_str(&collateral.qvl_json()).unwrap();
    let verifier = match root {
        Some(root) => dcap_qvl::verify::QuoteVerifier::new(root),
        None => dcap_qvl::verify::QuoteVerifier::new_prod(),
    };
    verifier
        .verify(quote, &qvl, now_secs())
        .map_err(|e| format!("{e:?}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn quote_through_the_library(loading: Loading, sequence: &str) {
    let helper = Helper::start();
    // The app enclave: a report for the quoting enclave's target info, on the node's CPU.
    let enclave = EnclaveIdentity {
        mr_enclave: [0x5e; 32],
        ..EnclaveIdentity::default()
    };
    let qe_target = helper.platform.qe_target_info();
    let report_data = [0xd7; 64];
    let report = helper
        .cpu()
        .create_report(&enclave, &qe_target, &report_data);
    let report_path = helper.dir.path().join("report.bin");
    std::fs::write(&report_path, report.to_vec()).unwrap();
    let quote_path = helper.dir.path().join("quote.bin");

    let out = run(
        loading,
        &helper.socket,
        None,
        &[
            sequence,
            report_path.to_str().unwrap(),
            quote_path.to_str().unwrap(),
        ],
    );
    let l = lines(&out);
    assert_eq!(status(&l, "init1"), 0, "{l:?}");
    assert_eq!(field(&l, "init1", "size"), "32");
    assert_eq!(status(&l, "init2"), 0, "{l:?}");
    // The key the library's call initialised is the helper's, and the target info is its QE's.
    assert_eq!(
        field(&l, "init2", "pub_key_id"),
        hex(&helper.platform.init_attestation_key().unwrap())
    );
    assert_eq!(field(&l, "init2", "target_info"), hex(&qe_target.to_vec()));
    assert_eq!(status(&l, "size"), 0);
    assert_eq!(
        field(&l, "size", "quote_size"),
        helper.platform.quote_size().unwrap().to_string()
    );
    assert_eq!(status(&l, "quote"), 0, "{l:?}");

    let quote = std::fs::read(&quote_path).unwrap();
    assert_eq!(quote.len() as u32, helper.platform.quote_size().unwrap());
    let verified = verify(
        &helper.platform,
        Some(helper.platform.root_ca_der().to_vec()),
        &quote,
    )
    .unwrap_or_else(|e| panic!("dcap-qvl rejected the quote: {e}"));
    assert_eq!(verified.status, "UpToDate");
    let body = verified.report.as_sgx().unwrap();
    assert_eq!(body.mr_enclave, enclave.mr_enclave);
    assert_eq!(body.report_data, report_data);
    assert!(
        verify(&helper.platform, None, &quote).is_err(),
        "Intel's root accepted a simulated quote"
    );
}

#[test]
fn intel_dcap_sequence_gets_a_quote_that_dcap_qvl_verifies() {
    quote_through_the_library(Loading::Linked, "dcap");
    quote_through_the_library(Loading::Dlopen, "dcap");
}

#[test]
fn open_enclave_sequence_gets_a_quote_that_dcap_qvl_verifies() {
    quote_through_the_library(Loading::Dlopen, "oe");
}

#[test]
fn a_report_for_another_target_is_a_mac_mismatch() {
    let helper = Helper::start();
    let enclave = EnclaveIdentity::default();
    // MACed for the app itself, not for the quoting enclave.
    let report = helper
        .cpu()
        .create_report(&enclave, &enclave.target_info(), &[1; 64]);
    let report_path = helper.dir.path().join("report.bin");
    std::fs::write(&report_path, report.to_vec()).unwrap();
    let quote_path = helper.dir.path().join("quote.bin");
    let l = lines(&run(
        Loading::Dlopen,
        &helper.socket,
        None,
        &[
            "dcap",
            report_path.to_str().unwrap(),
            quote_path.to_str().unwrap(),
        ],
    ));
    assert_eq!(status(&l, "init2"), 0);
    assert_eq!(status(&l, "quote"), 0x3001);
    assert!(!quote_path.exists());
}

#[test]
fn concurrent_callers_all_get_verifying_quotes() {
    let helper = Helper::start();
    let enclave = EnclaveIdentity::default();
    let report =
        helper
            .cpu()
            .create_report(&enclave, &helper.platform.qe_target_info(), &[0x77; 64]);
    let report_path = helper.dir.path().join("report.bin");
    std::fs::write(&report_path, report.to_vec()).unwrap();
    let prefix = helper.dir.path().join("quote");
    let threads = 8;
    let l = lines(&run(
        Loading::Dlopen,
        &helper.socket,
        None,
        &[
            "threads",
            &threads.to_string(),
            report_path.to_str().unwrap(),
            prefix.to_str().unwrap(),
        ],
    ));
    let root = helper.platform.root_ca_der().to_vec();
    for i in 0..threads {
        assert_eq!(status(&l, &format!("thread{i}")), 0, "{l:?}");
        let quote = std::fs::read(format!("{}.{i}", prefix.display())).unwrap();
        let verified = verify(&helper.platform, Some(root.clone()), &quote).unwrap();
        assert_eq!(verified.report.as_sgx().unwrap().report_data, [0x77; 64]);
    }
}

#[test]
fn the_real_service_errors_map_to_intels_codes() {
    let helper = Helper::start();
    // A fresh helper has no attestation key yet.
    let l = lines(&run(Loading::Linked, &helper.socket, None, &["uninit"]));
    assert_eq!(status(&l, "quote_size"), 0x8003, "{l:?}");
    assert_eq!(status(&l, "quote"), 0x8003, "{l:?}");
    // A key id the helper does not serve.
    let l = lines(&run(Loading::Dlopen, &helper.socket, None, &["badkey"]));
    for call in ["init_full", "quote_size", "quote"] {
        assert_eq!(status(&l, call), 0x8001, "{call}: {l:?}");
    }
    assert!(!helper.platform.attestation_key_initialized());
}

#[test]
fn loading_and_unloading_around_each_call_works() {
    let helper = Helper::start();
    let l = lines(&run(
        Loading::Dlopen,
        &helper.socket,
        None,
        &["reload", "50"],
    ));
    assert_eq!(field(&l, "reload", "ok"), "50", "{l:?}");
    // Every connection was closed.
    assert_eq!(
        field(&l, "reload", "fds_before"),
        field(&l, "reload", "fds_after"),
        "{l:?}"
    );
}
