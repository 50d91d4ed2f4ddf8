//! Every vector in shared/vectors: our verdict against EXPECTED_RESULTS.txt and dcap-qvl in the same test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use dcap_verify::{Collateral, CrlKind, Policy, QvResult, TcbStatus, VerifyError};

fn expected_line(rel: &str, prefix: &str) -> String {
    read_text(rel)
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("{rel}: no line for {prefix}"))
        .to_owned()
}

#[test]
fn dcap_qvl_sample_matches_expected_results_and_dcap_qvl() {
    let quote = sample_quote();
    let collateral = sample_collateral();
    let verdict = ours(&quote, &collateral, SAMPLE_NOW, &Policy::default()).unwrap();
    let (status, advisories) =
        reference(&intel_root(), &quote, &collateral, SAMPLE_NOW, false).unwrap();

    assert_eq!(verdict.status.name(), status);
    assert_eq!(verdict.advisory_ids, advisories);
    let line = expected_line(
        "dcap-qvl/tampered/EXPECTED_RESULTS.txt",
        "sgx_quote + sgx_quote_collateral.json",
    );
    assert!(
        line.contains(&format!("status={}", verdict.status)),
        "{line}"
    );
    assert!(
        line.contains(&format!("{:?}", verdict.advisory_ids)),
        "{line}"
    );
    assert!(
        line.contains(&format!("platform={}", verdict.platform_status)),
        "{line}"
    );
    assert!(
        line.contains(&format!("qe={}", verdict.qe_status)),
        "{line}"
    );

    assert_eq!(verdict.status, TcbStatus::ConfigurationAndSWHardeningNeeded);
    assert_eq!(verdict.qv_result, QvResult::ConfigAndSwHardeningNeeded);
    assert_eq!(verdict.qv_result.code(), 0xA008);
    assert!(verdict.accepted, "{:?}", verdict.rejections);
    assert!(verdict.intel_root);
    assert_eq!(hex::encode(verdict.fmspc), "00a067110000");
    assert_eq!(verdict.tcb_evaluation_data_number, 17);
    assert_eq!(verdict.tcb_info_version, 3);
    assert_eq!(verdict.quote_version, 3);
    // TCB info, QE identity and PCK CRL all expire in July 2025; the earliest is the QE identity's.
    assert_eq!(
        dcap_verify::time::Rfc3339(verdict.earliest_expiry).to_string(),
        "2025-07-19T10:01:18Z"
    );
}

#[test]
fn automata_debug_quote_rejected_by_default_and_accepted_with_allow_debug() {
    let quote = read("automata-dcap-rs/quote_sgx.bin");
    let collateral =
        Collateral::from_json(&read_text("automata-dcap-rs/dcap-qvl-collateral.json")).unwrap();
    let expected = read_text("automata-dcap-rs/EXPECTED_RESULTS.txt");

    let verdict = ours(&quote, &collateral, AUTOMATA_NOW, &Policy::default()).unwrap();
    assert!(!verdict.accepted);
    assert!(
        verdict.rejections.iter().any(|r| r.contains("debug")),
        "{:?}",
        verdict.rejections
    );
    let err = reference(&intel_root(), &quote, &collateral, AUTOMATA_NOW, false).unwrap_err();
    assert!(err.contains("Debug mode is enabled"), "{err}");
    assert!(expected.contains("default (allow_debug=false): ERR Debug mode is enabled"));

    let policy = Policy {
        allow_debug: true,
        ..Policy::default()
    };
    let verdict = ours(&quote, &collateral, AUTOMATA_NOW, &policy).unwrap();
    assert!(verdict.accepted, "{:?}", verdict.rejections);
    let (status, advisories) =
        reference(&intel_root(), &quote, &collateral, AUTOMATA_NOW, true).unwrap();
    assert_eq!(verdict.status.name(), status);
    assert_eq!(verdict.advisory_ids, advisories);
    let line = expected
        .lines()
        .find(|l| l.starts_with("allow_debug=true"))
        .unwrap();
    assert!(
        line.contains(&format!("status={}", verdict.status)),
        "{line}"
    );
    assert!(
        line.contains(&format!("{:?}", verdict.advisory_ids)),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "platform={} qe={}",
            verdict.platform_status, verdict.qe_status
        )),
        "{line}"
    );
}

/// Each tampered vector, the error class we must report, and the words of dcap-qvl's expected error.
#[test]
fn every_tampered_vector_is_rejected_by_both_verifiers() {
    type Check = fn(&VerifyError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("quote_attkey_flip.bin", |e| {
            matches!(e, VerifyError::QeReportDataMismatch)
        }),
        ("quote_header_version2.bin", |e| {
            matches!(e, VerifyError::UnsupportedQuoteVersion(2))
        }),
        ("quote_isvsig_flip.bin", |e| {
            matches!(e, VerifyError::IsvSignatureInvalid)
        }),
        ("quote_mrenclave_flip.bin", |e| {
            matches!(e, VerifyError::IsvSignatureInvalid)
        }),
        ("quote_qeauth_flip.bin", |e| {
            matches!(e, VerifyError::QeReportDataMismatch)
        }),
        ("quote_qereport_flip.bin", |e| {
            matches!(e, VerifyError::QeReportSignatureInvalid)
        }),
        ("quote_reportdata_flip.bin", |e| {
            matches!(e, VerifyError::IsvSignatureInvalid)
        }),
        ("coll_pckcrl_sigflip.json", |e| {
            matches!(
                e,
                VerifyError::CrlSignatureInvalid {
                    which: CrlKind::Pck
                }
            )
        }),
        ("coll_qeidentity_modified.json", |e| {
            matches!(e, VerifyError::QeIdentitySignatureInvalid)
        }),
        ("coll_tcbinfo_modified.json", |e| {
            matches!(e, VerifyError::TcbInfoSignatureInvalid)
        }),
        ("coll_tcbinfo_sigflip.json", |e| {
            matches!(e, VerifyError::TcbInfoSignatureInvalid)
        }),
    ];
    let expected = read_text("dcap-qvl/tampered/EXPECTED_RESULTS.txt");
    for (file, is_expected) in cases {
        let rel = format!("dcap-qvl/tampered/{file}");
        let (quote, collateral) = if file.ends_with(".json") {
            (
                sample_quote(),
                Collateral::from_json(&read_text(&rel)).unwrap(),
            )
        } else {
            (read(&rel), sample_collateral())
        };
        let err = ours(&quote, &collateral, SAMPLE_NOW, &Policy::default()).unwrap_err();
        assert!(is_expected(&err), "{file}: {err}");
        let theirs = reference(&intel_root(), &quote, &collateral, SAMPLE_NOW, false).unwrap_err();
        let line = expected
            .lines()
            .find(|l| l.starts_with(&format!("tampered/{file}:")))
            .unwrap();
        let want = line.split_once(": ERR ").unwrap().1;
        assert!(
            theirs.contains(want) || want.contains(theirs.split(": ").last().unwrap()),
            "{file}: dcap-qvl said {theirs}, expected {want}"
        );
        let qv = err.qv_result();
        if *file != "quote_header_version2.bin"
            && !file.starts_with("quote_attkey")
            && !file.starts_with("quote_qeauth")
        {
            assert_eq!(qv, QvResult::InvalidSignature, "{file}");
        }
    }
}

#[test]
fn sample_400_days_later_fails_on_the_expired_root_crl_like_dcap_qvl() {
    let now = SAMPLE_NOW + 400 * 86400;
    let err = ours(
        &sample_quote(),
        &sample_collateral(),
        now,
        &Policy::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::CrlExpired {
                which: CrlKind::RootCa,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "root CA CRL expired at {}",
            dcap_verify::time::Rfc3339(1775215317)
        )
    );
    let theirs = reference(
        &intel_root(),
        &sample_quote(),
        &sample_collateral(),
        now,
        false,
    )
    .unwrap_err();
    assert!(theirs.contains("CrlExpired"), "{theirs}");
}

/// dcap-qvl's words for each of our errors on the tampered set.
fn dcap_qvl_words(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::UnsupportedQuoteVersion(_) => "Unsupported quote version",
        VerifyError::IsvSignatureInvalid => "ISV enclave report signature is invalid",
        VerifyError::QeReportDataMismatch => "QE report hash mismatch",
        VerifyError::QeReportSignatureInvalid => "Signature is invalid for qe_report",
        VerifyError::CrlSignatureInvalid {
            which: CrlKind::Pck,
        } => "InvalidCrlSignatureForPublicKey",
        VerifyError::QeIdentitySignatureInvalid => "Signature is invalid for qe_identity",
        VerifyError::TcbInfoSignatureInvalid => "Signature is invalid for tcb_info",
        other => panic!("unexpected error {other}"),
    }
}

/// With a tampered quote and tampered collateral together, the same check fails first in both
/// verifiers (dcap-qvl's order).
#[test]
fn with_several_faults_the_same_error_wins_as_in_dcap_qvl() {
    let quotes = [
        "quote_attkey_flip.bin",
        "quote_header_version2.bin",
        "quote_isvsig_flip.bin",
        "quote_qeauth_flip.bin",
        "quote_qereport_flip.bin",
    ];
    let collaterals = [
        "coll_pckcrl_sigflip.json",
        "coll_qeidentity_modified.json",
        "coll_tcbinfo_modified.json",
        "coll_tcbinfo_sigflip.json",
    ];
    let mut pairs = 0;
    for q in quotes {
        for c in collaterals {
            let quote = read(&format!("dcap-qvl/tampered/{q}"));
            let collateral =
                Collateral::from_json(&read_text(&format!("dcap-qvl/tampered/{c}"))).unwrap();
            let ours = ours(&quote, &collateral, SAMPLE_NOW, &Policy::default()).unwrap_err();
            let theirs =
                reference(&intel_root(), &quote, &collateral, SAMPLE_NOW, false).unwrap_err();
            let words = dcap_qvl_words(&ours);
            assert!(
                theirs.contains(words),
                "{q} + {c}: we say {ours}, dcap-qvl says {theirs}"
            );
            pairs += 1;
        }
    }
    assert_eq!(pairs, 20);
}
