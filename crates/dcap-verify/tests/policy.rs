//! Each relying-party option accepts the matching quote and rejects a mismatching one, naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use dcap_verify::{Policy, TcbStatus};

fn check(policy: Policy, accepted: bool, needle: &str) {
    let v = ours(&sample_quote(), &sample_collateral(), SAMPLE_NOW, &policy).unwrap();
    assert_eq!(v.accepted, accepted, "{policy:?}: {:?}", v.rejections);
    if accepted {
        assert!(v.rejections.is_empty());
    } else {
        assert_eq!(v.rejections.len(), 1, "{:?}", v.rejections);
        assert!(
            v.rejections[0].contains(needle),
            "{:?} lacks {needle}",
            v.rejections
        );
    }
}

#[test]
fn each_option_accepts_a_match_and_rejects_a_mismatch() {
    let body = sgx_types::Quote::parse(&sample_quote())
        .unwrap()
        .report_body;
    let base = Policy::default;
    let mut other = body.mr_enclave;
    other[31] ^= 1;
    check(
        Policy {
            mr_enclave: Some(body.mr_enclave),
            ..base()
        },
        true,
        "",
    );
    check(
        Policy {
            mr_enclave: Some(other),
            ..base()
        },
        false,
        "MRENCLAVE mismatch",
    );
    let mut other = body.mr_signer;
    other[0] ^= 0x80;
    check(
        Policy {
            mr_signer: Some(body.mr_signer),
            ..base()
        },
        true,
        "",
    );
    check(
        Policy {
            mr_signer: Some(other),
            ..base()
        },
        false,
        "MRSIGNER mismatch",
    );
    check(
        Policy {
            isv_prod_id: Some(body.isv_prod_id),
            ..base()
        },
        true,
        "",
    );
    check(
        Policy {
            isv_prod_id: Some(body.isv_prod_id.wrapping_add(1)),
            ..base()
        },
        false,
        "ISVPRODID mismatch",
    );
    check(
        Policy {
            min_isv_svn: Some(body.isv_svn),
            ..base()
        },
        true,
        "",
    );
    check(
        Policy {
            min_isv_svn: Some(body.isv_svn + 1),
            ..base()
        },
        false,
        "ISVSVN",
    );
    check(
        Policy {
            report_data: Some(body.report_data.to_vec()),
            ..base()
        },
        true,
        "",
    );
    check(
        Policy {
            report_data: Some(body.report_data[..32].to_vec()),
            ..base()
        },
        true,
        "",
    );
    let mut other = body.report_data;
    other[63] ^= 1;
    check(
        Policy {
            report_data: Some(other.to_vec()),
            ..base()
        },
        false,
        "report data mismatch",
    );
    check(
        Policy {
            min_tcb_evaluation_data_number: Some(17),
            ..base()
        },
        true,
        "",
    );
    check(
        Policy {
            min_tcb_evaluation_data_number: Some(18),
            ..base()
        },
        false,
        "tcbEvaluationDataNumber 17",
    );
    check(
        Policy {
            accepted_statuses: vec![TcbStatus::ConfigurationAndSWHardeningNeeded],
            ..base()
        },
        true,
        "",
    );
    check(
        Policy {
            accepted_statuses: vec![TcbStatus::UpToDate],
            ..base()
        },
        false,
        "TCB status ConfigurationAndSWHardeningNeeded not accepted",
    );
    // allow_debug only matters for debug enclaves: the sample is not one.
    assert!(!body.attributes.is_debug());
    check(
        Policy {
            allow_debug: true,
            ..base()
        },
        true,
        "",
    );
}

#[test]
fn all_mismatches_are_reported_together() {
    let policy = Policy {
        mr_enclave: Some([0; 32]),
        mr_signer: Some([0; 32]),
        isv_prod_id: Some(9999),
        accepted_statuses: vec![TcbStatus::UpToDate],
        ..Policy::default()
    };
    let v = ours(&sample_quote(), &sample_collateral(), SAMPLE_NOW, &policy).unwrap();
    assert!(!v.accepted);
    assert_eq!(v.rejections.len(), 4, "{:?}", v.rejections);
}

#[test]
fn debug_enclave_needs_allow_debug() {
    let quote = read("automata-dcap-rs/quote_sgx.bin");
    let collateral =
        dcap_verify::Collateral::from_json(&read_text("automata-dcap-rs/dcap-qvl-collateral.json"))
            .unwrap();
    let v = ours(&quote, &collateral, AUTOMATA_NOW, &Policy::default()).unwrap();
    assert_eq!(
        v.rejections,
        vec!["debug enclave not allowed: the DEBUG attribute is set".to_owned()]
    );
    let v = ours(
        &quote,
        &collateral,
        AUTOMATA_NOW,
        &Policy {
            allow_debug: true,
            ..Policy::default()
        },
    )
    .unwrap();
    assert!(v.accepted);
}
