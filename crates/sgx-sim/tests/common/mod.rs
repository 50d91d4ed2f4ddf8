#![allow(dead_code)]

use std::path::Path;

use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::verify::{QuoteVerifier, VerifiedReport};
use sgx_sim::{Collateral, CollateralOptions, EnclaveIdentity, InitOptions, SimPlatform};

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn platform(dir: &Path) -> SimPlatform {
    let p = SimPlatform::open_or_init(dir, &InitOptions::default()).unwrap();
    p.init_attestation_key().unwrap();
    p
}

pub fn quote_for(p: &SimPlatform, enclave: &EnclaveIdentity, report_data: [u8; 64]) -> Vec<u8> {
    let report = p
        .cpu()
        .create_report(enclave, &p.qe_target_info(), &report_data);
    p.quote(&report).unwrap()
}

/// The collateral as dcap-qvl reads it: through our `collateral.json`.
pub fn qvl_collateral(c: &Collateral) -> QuoteCollateralV3 {
    serde_json::from_slice(c.file(sgx_sim::files::COLLATERAL_JSON).unwrap()).unwrap()
}

pub fn verify(
    p: &SimPlatform,
    quote: &[u8],
    opts: &CollateralOptions,
) -> anyhow_like::Result<VerifiedReport> {
    let c = p.collateral(opts).unwrap();
    QuoteVerifier::new(p.root_ca_der().to_vec())
        .verify(quote, &qvl_collateral(&c), now())
        .map_err(|e| format!("{e:#}"))
}

pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, String>;
}
