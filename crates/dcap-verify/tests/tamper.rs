//! Flipping any single byte of the dcap-qvl sample quote (signed region, signature data, certification
//! data including the PEM text and the embedded root) or of its signed collateral makes verification
//! fail. One verifier is shared across the walk, so this also shows that its caches, keyed by exact
//! bytes, never let a modified input through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use dcap_verify::{Collateral, Policy, TrustAnchor, Verifier};

fn flip(bytes: &mut [u8], i: usize) {
    bytes[i] ^= 0x01;
}

#[test]
fn every_byte_of_the_quote_is_covered() {
    let quote = sample_quote();
    let collateral = sample_collateral();
    let verifier = Verifier::new(TrustAnchor::intel());
    let policy = Policy::default();
    verifier
        .verify(&quote, &collateral, SAMPLE_NOW, &policy)
        .unwrap();
    let parsed = sgx_types::Quote::parse(&quote).unwrap();
    assert_eq!(
        parsed.quote_len(),
        quote.len(),
        "the sample has no trailing bytes"
    );
    let mut passed = Vec::new();
    for i in 0..quote.len() {
        let mut tampered = quote.clone();
        flip(&mut tampered, i);
        if verifier
            .verify(&tampered, &collateral, SAMPLE_NOW, &policy)
            .is_ok()
        {
            passed.push(i);
        }
    }
    assert!(
        passed.is_empty(),
        "quote bytes whose flip went unnoticed: {passed:?}"
    );
    // The untampered quote still verifies after the walk (the caches were not poisoned).
    assert!(
        verifier
            .verify(&quote, &collateral, SAMPLE_NOW, &policy)
            .unwrap()
            .accepted
    );
}

const FIELDS: [&str; 9] = [
    "root_ca_crl",
    "pck_crl",
    "pck_crl_issuer_chain",
    "tcb_info_issuer_chain",
    "tcb_info",
    "tcb_info_signature",
    "qe_identity_issuer_chain",
    "qe_identity",
    "qe_identity_signature",
];

fn bytes_of(c: &Collateral, field: &str) -> Vec<u8> {
    match field {
        "root_ca_crl" => c.root_ca_crl.clone(),
        "pck_crl" => c.pck_crl.clone(),
        "pck_crl_issuer_chain" => c.pck_crl_issuer_chain.clone().into_bytes(),
        "tcb_info_issuer_chain" => c.tcb_info_issuer_chain.clone().into_bytes(),
        "tcb_info" => c.tcb_info.clone().into_bytes(),
        "tcb_info_signature" => c.tcb_info_signature.clone(),
        "qe_identity_issuer_chain" => c.qe_identity_issuer_chain.clone().into_bytes(),
        "qe_identity" => c.qe_identity.clone().into_bytes(),
        "qe_identity_signature" => c.qe_identity_signature.clone(),
        other => panic!("unknown field {other}"),
    }
}

fn with_bytes(c: &Collateral, field: &str, bytes: Vec<u8>) -> Collateral {
    let mut c = c.clone();
    // Flipping bit 0 of ASCII text keeps it ASCII, so the text fields stay valid UTF-8.
    let text = || String::from_utf8(bytes.clone()).unwrap();
    match field {
        "root_ca_crl" => c.root_ca_crl = bytes,
        "pck_crl" => c.pck_crl = bytes,
        "pck_crl_issuer_chain" => c.pck_crl_issuer_chain = text(),
        "tcb_info_issuer_chain" => c.tcb_info_issuer_chain = text(),
        "tcb_info" => c.tcb_info = text(),
        "tcb_info_signature" => c.tcb_info_signature = bytes,
        "qe_identity_issuer_chain" => c.qe_identity_issuer_chain = text(),
        "qe_identity" => c.qe_identity = text(),
        "qe_identity_signature" => c.qe_identity_signature = bytes,
        other => panic!("unknown field {other}"),
    }
    c
}

#[test]
fn every_byte_of_the_signed_collateral_is_covered() {
    let quote = sample_quote();
    let collateral = sample_collateral();
    let verifier = Verifier::new(TrustAnchor::intel());
    let policy = Policy::default();
    verifier
        .verify(&quote, &collateral, SAMPLE_NOW, &policy)
        .unwrap();
    let mut total = 0;
    for field in FIELDS {
        let original = bytes_of(&collateral, field);
        assert!(original.is_ascii() || !field.contains("chain"));
        let mut passed = Vec::new();
        for i in 0..original.len() {
            let mut bytes = original.clone();
            flip(&mut bytes, i);
            let tampered = with_bytes(&collateral, field, bytes);
            if verifier
                .verify(&quote, &tampered, SAMPLE_NOW, &policy)
                .is_ok()
            {
                passed.push(i);
            }
        }
        assert!(
            passed.is_empty(),
            "{field}: flips went unnoticed at {passed:?}"
        );
        total += original.len();
    }
    assert!(total > 8000, "walked only {total} bytes");
    assert!(
        verifier
            .verify(&quote, &collateral, SAMPLE_NOW, &policy)
            .unwrap()
            .accepted
    );
}
