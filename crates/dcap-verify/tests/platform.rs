//! Platform evidence (`Verifier::verify_platform`): Intel's sample quote with its enclave report
//! body and ISV signature zeroed gives the verdict of the whole quote on everything that
//! describes the platform, every byte after the zeroed parts is still covered, and a quote that
//! still carries an enclave's report is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use dcap_verify::{Policy, TrustAnchor, Verifier, VerifyError};
use sgx_types::structs::ReportBody;

/// The sample quote's platform part: report body and ISV signature zeroed.
fn evidence() -> Vec<u8> {
    let quote = sample_quote();
    let mut parsed = sgx_types::Quote::parse(&quote).unwrap();
    parsed.report_body = ReportBody::default();
    parsed.signature.isv_signature = [0; 64];
    let evidence = parsed.to_bytes();
    assert_eq!(evidence.len(), quote.len());
    evidence
}

#[test]
fn the_platform_part_of_intel_s_sample_gives_the_quote_s_platform_verdict() {
    let verifier = Verifier::new(TrustAnchor::intel());
    let collateral = sample_collateral();
    let full = verifier
        .verify(&sample_quote(), &collateral, SAMPLE_NOW, &Policy::default())
        .unwrap();
    let platform = verifier
        .verify_platform(&evidence(), &collateral, SAMPLE_NOW)
        .unwrap();
    assert_eq!(platform.status, full.status);
    assert_eq!(platform.platform_status, full.platform_status);
    assert_eq!(platform.qe_status, full.qe_status);
    assert_eq!(platform.advisory_ids, full.advisory_ids);
    assert_eq!(platform.tcb_date, full.tcb_date);
    assert_eq!(platform.fmspc, full.fmspc);
    assert_eq!(platform.pce_id, full.pce_id);
    assert_eq!(platform.pce_svn, full.pce_svn);
    assert_eq!(platform.qe_isv_svn, full.qe_isv_svn);
    assert_eq!(platform.earliest_expiry, full.earliest_expiry);
    assert!(platform.accepted);
    assert!(platform.rejections.is_empty());
    assert_eq!(platform.report_body, ReportBody::default());
}

#[test]
fn a_quote_with_an_enclave_s_report_is_not_platform_evidence() {
    let verifier = Verifier::new(TrustAnchor::intel());
    let collateral = sample_collateral();
    let err = verifier
        .verify_platform(&sample_quote(), &collateral, SAMPLE_NOW)
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::NotPlatformEvidence("report body")),
        "{err}"
    );
    // The report body alone zeroed: the ISV signature still names an enclave's report.
    let quote = sample_quote();
    let mut parsed = sgx_types::Quote::parse(&quote).unwrap();
    parsed.report_body = ReportBody::default();
    let err = verifier
        .verify_platform(&parsed.to_bytes(), &collateral, SAMPLE_NOW)
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::NotPlatformEvidence("ISV signature")),
        "{err}"
    );
    // And evidence is no quote: its missing signature fails `verify`.
    let err = verifier
        .verify(&evidence(), &collateral, SAMPLE_NOW, &Policy::default())
        .unwrap_err();
    assert!(matches!(err, VerifyError::IsvSignatureInvalid), "{err}");
}

#[test]
fn every_byte_after_the_isv_signature_is_covered() {
    let evidence = evidence();
    let collateral = sample_collateral();
    let verifier = Verifier::new(TrustAnchor::intel());
    // Attestation key, QE report, its signature, QE auth data, certification data.
    let start = sgx_types::quote::SIGNATURE_DATA_OFFSET + 64;
    let mut passed = Vec::new();
    for i in start..evidence.len() {
        let mut tampered = evidence.clone();
        tampered[i] ^= 0x01;
        if verifier
            .verify_platform(&tampered, &collateral, SAMPLE_NOW)
            .is_ok()
        {
            passed.push(i);
        }
    }
    assert!(
        passed.is_empty(),
        "evidence bytes whose flip went unnoticed: {passed:?}"
    );
    verifier
        .verify_platform(&evidence, &collateral, SAMPLE_NOW)
        .unwrap();
}
