//! Third-party implementations against the running service: Fortanix's `aesm-client` drives the
//! quote-ex flow, Phala's `dcap-qvl` verifies every quote under the sim root (and Intel's root
//! rejects it); the service's state survives a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use aesm_client::AesmClient;
use aesm_client::unix::AesmClientExt;
use aesm_service::ServerConfig;
use aesm_service::client_flow::quote_via_socket;
use common::{Helper, verify_with_intel_root, verify_with_qvl};
use sgx_sim::EnclaveIdentity;
use sgx_types::quote::Quote;
use sgx_types::structs::Wire;
use sgx_types::{AttKeyId, Report, TargetInfo};

#[test]
fn aesm_client_gets_a_quote_that_dcap_qvl_verifies() {
    let helper = Helper::start();
    let client = AesmClient::with_path(&helper.socket);
    client.try_connect().unwrap();

    let ids = client.get_supported_att_key_ids().unwrap();
    assert_eq!(ids, vec![AttKeyId::intel_qe3_ecdsa().to_vec()]);

    let info = client.init_quote_ex(ids[0].clone()).unwrap();
    let qe_target = TargetInfo::parse(info.target_info()).unwrap();
    assert_eq!(qe_target, helper.platform.qe_target_info());
    assert_eq!(
        info.pub_key_id(),
        helper.platform.init_attestation_key().unwrap().as_slice()
    );

    let enclave = EnclaveIdentity {
        mr_enclave: [0x11; 32],
        ..EnclaveIdentity::default()
    };
    let cpu = helper.cpu();
    let report = cpu.create_report(&enclave, &qe_target, &[0x42; 64]);
    let nonce: Vec<u8> = (1..=16).collect();
    let result = client
        .get_quote_ex(
            ids[0].clone(),
            report.to_vec(),
            Some(enclave.target_info().to_vec()),
            nonce.clone(),
        )
        .unwrap();

    // The quote comes padded to the size GetQuoteSizeEx announced; trimmed, it verifies.
    let size = helper.platform.quote_size().unwrap() as usize;
    assert_eq!(result.quote().len(), size);
    let quote = Quote::parse(result.quote()).unwrap();
    assert_eq!(quote.quote_len(), size);
    assert_eq!(quote.report_body, report.body);
    assert_eq!(quote.report_body.report_data, [0x42; 64]);
    assert_eq!(
        verify_with_qvl(&helper.platform, result.quote()).unwrap(),
        "UpToDate"
    );
    let intel = verify_with_intel_root(&helper.platform, result.quote());
    assert!(
        intel.is_err(),
        "Intel's root accepted a simulated quote: {intel:?}"
    );

    // The QE report is MACed for the app enclave and binds nonce and quote.
    let qe_report = Report::parse(result.qe_report()).unwrap();
    assert!(cpu.verify_report(&qe_report, &enclave.target_info()));
    assert!(!cpu.verify_report(&qe_report, &qe_target));
    let mut bound = nonce;
    bound.extend_from_slice(result.quote());
    let digest = ring::digest::digest(&ring::digest::SHA256, &bound);
    assert_eq!(&qe_report.body.report_data[..32], digest.as_ref());
    assert_eq!(&qe_report.body.report_data[32..], &[0; 32]);
}

#[test]
fn aesm_client_sees_42_before_init_and_47_for_a_foreign_report() {
    let helper = Helper::start();
    let client = AesmClient::with_path(&helper.socket);
    let key = AttKeyId::intel_qe3_ecdsa().to_vec();
    let cpu = helper.cpu();
    let target = helper.platform.qe_target_info();
    let report = cpu.create_report(&EnclaveIdentity::default(), &target, &[0; 64]);

    match client.get_quote_ex(key.clone(), report.to_vec(), None, vec![0; 16]) {
        Err(aesm_client::Error::AesmCode(code)) => {
            assert_eq!(format!("{code:?}"), "AttKeyNotInitialized_42")
        }
        other => panic!("expected 42, got {other:?}"),
    }
    client.init_quote_ex(key.clone()).unwrap();
    // MACed for some other enclave than the QE.
    let foreign = cpu.create_report(
        &EnclaveIdentity::default(),
        &EnclaveIdentity::default().target_info(),
        &[0; 64],
    );
    match client.get_quote_ex(key, foreign.to_vec(), None, vec![0; 16]) {
        Err(aesm_client::Error::AesmCode(code)) => {
            assert_eq!(format!("{code:?}"), "InvalidReport_47")
        }
        other => panic!("expected 47, got {other:?}"),
    }
}

#[test]
fn the_rust_client_flow_yields_a_trimmed_verifying_quote() {
    let helper = Helper::start();
    let enclave = EnclaveIdentity {
        isv_prod_id: 7,
        isv_svn: 3,
        ..EnclaveIdentity::default()
    };
    let out = quote_via_socket(&helper.client(), &helper.cpu(), &enclave, &[9; 64]).unwrap();
    assert_eq!(out.quote.len(), out.quote_size as usize);
    let quote = Quote::parse(&out.quote).unwrap();
    assert!(quote.trailing_bytes.is_empty());
    assert_eq!(quote.report_body.isv_prod_id, 7);
    assert_eq!(quote.report_body.isv_svn, 3);
    assert_eq!(out.pub_key_id.len(), 32);
    assert_eq!(
        verify_with_qvl(&helper.platform, &out.quote).unwrap(),
        "UpToDate"
    );
}

#[test]
fn state_survives_a_restart() {
    let first = Helper::start();
    let state_dir = first.state_dir.clone();
    let keep = common::short_tempdir();
    let kept_state = keep.path().join("state");
    // Move the state out of the first helper's temp dir so that it outlives it.
    std::fs::rename(&state_dir, &kept_state).unwrap();
    drop(first);

    let helper = Helper::start_with(ServerConfig::default(), Some(&kept_state));
    let before = quote_via_socket(
        &helper.client(),
        &helper.cpu(),
        &EnclaveIdentity::default(),
        &[1; 64],
    )
    .unwrap();
    helper.stop().0.unwrap();

    let helper = Helper::start_with(ServerConfig::default(), Some(&kept_state));
    // A fresh process has the key already: no InitQuoteEx needed for the size.
    assert!(helper.platform.attestation_key_initialized());
    let after = quote_via_socket(
        &helper.client(),
        &helper.cpu(),
        &EnclaveIdentity::default(),
        &[2; 64],
    )
    .unwrap();
    assert_eq!(before.pub_key_id, after.pub_key_id);
    assert_eq!(before.qe_target_info, after.qe_target_info);
    // The old quote still verifies against what the restarted platform issues.
    assert_eq!(
        verify_with_qvl(&helper.platform, &before.quote).unwrap(),
        "UpToDate"
    );
    assert_eq!(
        verify_with_qvl(&helper.platform, &after.quote).unwrap(),
        "UpToDate"
    );
}
