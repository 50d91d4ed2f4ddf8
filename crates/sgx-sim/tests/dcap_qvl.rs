//! Every quote of the simulated platform verifies with dcap-qvl against the platform's collateral,
//! and every configured status comes out as configured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use dcap_qvl::verify::QuoteVerifier;
use sgx_sim::{CollateralOptions, EnclaveIdentity, QeStatus, TcbStatus};

#[test]
fn a_quote_verifies_up_to_date_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let enclave = EnclaveIdentity::default();
    let quote = quote_for(&p, &enclave, [0x5a; 64]);
    assert_eq!(quote.len(), p.quote_size().unwrap() as usize);
    let report = verify(&p, &quote, &CollateralOptions::default()).unwrap();
    assert_eq!(report.status, "UpToDate");
    assert!(report.advisory_ids.is_empty());
    assert_eq!(report.ppid, p.pck_extension().ppid.to_vec());
    let sgx = report.report.as_sgx().unwrap();
    assert_eq!(sgx.mr_enclave, enclave.mr_enclave);
    assert_eq!(sgx.report_data, [0x5a; 64]);
}

#[test]
fn each_tcb_status_comes_out_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let quote = quote_for(&p, &EnclaveIdentity::default(), [1; 64]);
    for status in TcbStatus::ALL {
        let opts = CollateralOptions {
            tcb_status: Some(status),
            advisory_ids: vec!["INTEL-SA-00615".into(), "INTEL-SA-00828".into()],
            ..CollateralOptions::default()
        };
        let result = verify(&p, &quote, &opts);
        if status == TcbStatus::Revoked {
            let err = result.unwrap_err();
            assert!(err.contains("Revoked"), "{err}");
        } else {
            let report = result.unwrap_or_else(|e| panic!("{status}: {e}"));
            assert_eq!(report.status, status.name());
            assert_eq!(report.platform_status.status.to_string(), status.name());
            assert_eq!(report.advisory_ids, ["INTEL-SA-00615", "INTEL-SA-00828"]);
        }
    }
}

#[test]
fn each_qe_status_comes_out_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let quote = quote_for(&p, &EnclaveIdentity::default(), [2; 64]);
    for qe_status in QeStatus::ALL {
        let opts = CollateralOptions {
            qe_status,
            ..CollateralOptions::default()
        };
        let result = verify(&p, &quote, &opts);
        match qe_status {
            QeStatus::Revoked => assert!(result.unwrap_err().contains("Revoked")),
            _ => {
                let report = result.unwrap();
                assert_eq!(report.qe_status.status.to_string(), qe_status.as_str());
                // An out-of-date QE makes an up-to-date platform out of date overall.
                assert_eq!(report.status, qe_status.as_str());
            }
        }
    }
}

#[test]
fn a_revoked_pck_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let quote = quote_for(&p, &EnclaveIdentity::default(), [3; 64]);
    let opts = CollateralOptions {
        revoke_pck: true,
        ..CollateralOptions::default()
    };
    let err = verify(&p, &quote, &opts).unwrap_err();
    assert!(err.contains("Revoked"), "{err}");
}

#[test]
fn intels_root_rejects_a_sim_quote() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let quote = quote_for(&p, &EnclaveIdentity::default(), [4; 64]);
    let c = p.collateral(&CollateralOptions::default()).unwrap();
    let result = QuoteVerifier::new_prod().verify(&quote, &qvl_collateral(&c), now());
    assert!(result.is_err());
}

#[test]
fn a_debug_enclave_is_rejected_unless_the_verifier_allows_debug() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let mut enclave = EnclaveIdentity::default();
    enclave.attributes.flags |= sgx_types::Attributes::DEBUG;
    let quote = quote_for(&p, &enclave, [5; 64]);
    let err = verify(&p, &quote, &CollateralOptions::default()).unwrap_err();
    assert!(err.contains("Debug"), "{err}");
    let c = p.collateral(&CollateralOptions::default()).unwrap();
    let report = QuoteVerifier::new(p.root_ca_der().to_vec())
        .allow_debug(true)
        .verify(&quote, &qvl_collateral(&c), now())
        .unwrap();
    assert_eq!(report.status, "UpToDate");
}

#[test]
fn collateral_is_valid_only_inside_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let quote = quote_for(&p, &EnclaveIdentity::default(), [6; 64]);
    let issued = time::OffsetDateTime::now_utc() - time::Duration::hours(12);
    let opts = CollateralOptions {
        issue_time: Some(issued),
        validity: time::Duration::days(1),
        ..CollateralOptions::default()
    };
    let c = p.collateral(&opts).unwrap();
    let verifier = QuoteVerifier::new(p.root_ca_der().to_vec());
    let collateral = qvl_collateral(&c);
    assert_eq!(
        verifier.verify(&quote, &collateral, now()).unwrap().status,
        "UpToDate"
    );
    let after_next_update = now() + 2 * 86_400;
    let err = verifier
        .verify(&quote, &collateral, after_next_update)
        .unwrap_err();
    assert!(format!("{err:#}").contains("xpired"), "{err:#}");
    let before_issue = (issued - time::Duration::hours(1)).unix_timestamp() as u64;
    assert!(verifier.verify(&quote, &collateral, before_issue).is_err());
}

#[test]
fn a_tampered_quote_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let mut quote = quote_for(&p, &EnclaveIdentity::default(), [7; 64]);
    quote[48 + 320] ^= 1; // a report_data byte
    let err = verify(&p, &quote, &CollateralOptions::default()).unwrap_err();
    assert!(err.contains("signature"), "{err}");
}
