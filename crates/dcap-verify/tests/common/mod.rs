//! Shared helpers for the integration tests: the vectors and dcap-qvl as the reference.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dcap_verify::{Collateral, Policy, TrustAnchor, Verdict, Verifier, VerifyError};

pub const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors");
/// Inside every collateral window of the dcap-qvl sample (2025-07-04T10:28:44Z).
pub const SAMPLE_NOW: u64 = 1751624924;
/// Inside every collateral window of the automata vector (2024-08-27).
pub const AUTOMATA_NOW: u64 = 1724716800;

pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{VECTORS}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn read_text(rel: &str) -> String {
    String::from_utf8(read(rel)).unwrap()
}

pub fn sample_quote() -> Vec<u8> {
    read("dcap-qvl/sgx_quote")
}

pub fn sample_collateral() -> Collateral {
    Collateral::from_json(&read_text("dcap-qvl/sgx_quote_collateral.json")).unwrap()
}

pub fn ours(
    quote: &[u8],
    collateral: &Collateral,
    now: u64,
    policy: &Policy,
) -> Result<Verdict, VerifyError> {
    dcap_verify::verify(quote, collateral, &TrustAnchor::intel(), now, policy)
}

pub fn ours_with(
    anchor: &TrustAnchor,
    quote: &[u8],
    collateral: &Collateral,
    now: u64,
    policy: &Policy,
) -> Result<Verdict, VerifyError> {
    Verifier::new(anchor.clone()).verify(quote, collateral, now, policy)
}

/// dcap-qvl's result: Ok((status, advisory ids)) or Err(message chain).
pub fn reference(
    root_der: &[u8],
    quote: &[u8],
    collateral: &Collateral,
    now: u64,
    allow_debug: bool,
) -> Result<(String, Vec<String>), String> {
    let theirs: dcap_qvl::QuoteCollateralV3 = serde_json::from_str(&collateral.to_json()).unwrap();
    dcap_qvl::verify::QuoteVerifier::new(root_der.to_vec())
        .allow_debug(allow_debug)
        .verify(quote, &theirs, now)
        .map(|r| (r.status, r.advisory_ids))
        .map_err(|e| format!("{e:#}"))
}

pub fn intel_root() -> Vec<u8> {
    dcap_verify::INTEL_ROOT_CA_DER.to_vec()
}
