//! What the library adds to a quote: Intel's DCAP sequence (`sgx_init_quote_ex` full mode,
//! `sgx_get_quote_size_ex`, `sgx_get_quote_ex`) against the real quote helper with the simulated
//! platform, three ways, in interleaved rounds of the same run:
//!
//! - baseline: the same three requests with `quote_client::AesmClient` directly;
//! - `api`: through `sgx_quote_ex::api` with an explicit configuration;
//! - C ABI: through the exported `sgx_*` functions, which also read the settings from the
//!   environment on every call.
//!
//! Prints sequences per second (median of the rounds) and each ratio to the baseline.
//!
//! `cargo bench -p quote-ex --bench quote_sequence [-- SECONDS_PER_ROUND]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/helper.rs"]
mod helper;

use std::hint::black_box;
use std::time::{Duration, Instant};

use helper::Helper;
use sgx_quote_ex::types::*;
use sgx_quote_ex::{Config, api};
use sgx_sim::EnclaveIdentity;
use sgx_types::structs::Wire;

fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let per_round: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1.0);
    let budget = Duration::from_secs_f64(per_round);
    let rounds = 5;

    let helper = Helper::start();
    // SAFETY: set once, before this process calls anything that reads the environment
    // concurrently (the helper's runtime does not read it).
    unsafe { std::env::set_var("CONFCOM_AESM_SOCKET", &helper.socket) };

    let key_bytes = sgx_types::AttKeyId::intel_qe3_ecdsa().to_vec();
    let key = sgx_att_key_id_t {
        att_key_id: key_bytes.clone().try_into().unwrap(),
    };
    let report = helper.cpu().create_report(
        &EnclaveIdentity::default(),
        &helper.platform.qe_target_info(),
        &[7; 64],
    );
    let report_bytes = report.to_vec();
    // SAFETY: `sgx_report_t` is 432 bytes of plain data, as `report_bytes`.
    let c_report: sgx_report_t = unsafe { std::ptr::read_unaligned(report_bytes.as_ptr().cast()) };

    let client = quote_client::AesmClient::new(&helper.socket);
    let baseline = || {
        client.init_quote_ex(&key_bytes, Some(32)).unwrap();
        let size = client.get_quote_size_ex(Some(&key_bytes)).unwrap();
        let quote = client
            .get_quote_ex(&report_bytes, &key_bytes, None, size)
            .unwrap();
        black_box(quote);
    };

    let config = Config::from_env();
    let through_api = || {
        let mut ti = std::mem::MaybeUninit::<sgx_target_info_t>::zeroed();
        let mut size = 32usize;
        let mut id = [0u8; 32];
        let mut quote_size = 0u32;
        // SAFETY: valid key id, target info, size and 32-byte buffer.
        let st = unsafe {
            api::init_quote_ex(&config, &key, ti.as_mut_ptr(), &mut size, id.as_mut_ptr())
        };
        assert_eq!(st, SGX_SUCCESS);
        // SAFETY: valid key id and output.
        let st = unsafe { api::get_quote_size_ex(&config, &key, &mut quote_size) };
        assert_eq!(st, SGX_SUCCESS);
        let mut quote = vec![0u8; quote_size as usize];
        // SAFETY: valid report, key id and a buffer of `quote_size` bytes.
        let st = unsafe {
            api::get_quote_ex(
                &config,
                &c_report,
                &key,
                std::ptr::null_mut(),
                quote.as_mut_ptr(),
                quote_size,
            )
        };
        assert_eq!(st, SGX_SUCCESS);
        black_box(quote);
    };

    let through_c = || {
        let mut ti = std::mem::MaybeUninit::<sgx_target_info_t>::zeroed();
        let mut size = 32usize;
        let mut id = [0u8; 32];
        let mut quote_size = 0u32;
        // SAFETY: as above, through the exported functions.
        let st = unsafe {
            sgx_quote_ex::sgx_init_quote_ex(&key, ti.as_mut_ptr(), &mut size, id.as_mut_ptr())
        };
        assert_eq!(st, SGX_SUCCESS);
        // SAFETY: valid key id and output.
        let st = unsafe { sgx_quote_ex::sgx_get_quote_size_ex(&key, &mut quote_size) };
        assert_eq!(st, SGX_SUCCESS);
        let mut quote = vec![0u8; quote_size as usize];
        // SAFETY: valid report, key id and a buffer of `quote_size` bytes.
        let st = unsafe {
            sgx_quote_ex::sgx_get_quote_ex(
                &c_report,
                &key,
                std::ptr::null_mut(),
                quote.as_mut_ptr(),
                quote_size,
            )
        };
        assert_eq!(st, SGX_SUCCESS);
        black_box(quote);
    };

    // Warm up (the first init creates the attestation key).
    baseline();
    through_api();
    through_c();

    let (mut base, mut via_api, mut via_c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        base.push(rate(budget, baseline));
        via_api.push(rate(budget, through_api));
        via_c.push(rate(budget, through_c));
    }
    let (base, via_api, via_c) = (median(base), median(via_api), median(via_c));
    println!(
        "DCAP sequence (init + size + quote) against the simulated quote helper, {rounds} rounds of {per_round} s:"
    );
    println!("  quote_client directly (baseline) {base:>10.1} sequences/s");
    println!(
        "  sgx_quote_ex::api                {via_api:>10.1} sequences/s  ratio {:.3}",
        via_api / base
    );
    println!(
        "  exported C functions             {via_c:>10.1} sequences/s  ratio {:.3}",
        via_c / base
    );
}
