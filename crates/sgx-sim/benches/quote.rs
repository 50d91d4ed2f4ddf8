//! Quote generation throughput of the simulated platform next to the raw ring ECDSA P-256 signing rate
//! measured in the same run (single thread). A quote costs one report MAC check (AES-CMAC) and one
//! ECDSA signature, so the ratio shows what the rest of the hot path adds.
//!
//! `cargo bench -p sgx-sim --bench quote [-- SECONDS_PER_ROUND]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use sgx_sim::{EnclaveIdentity, InitOptions, SimPlatform};

/// Runs `f` repeatedly for about `budget` and returns operations per second.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            f();
        }
        n += 64;
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

    let dir = tempfile::tempdir().unwrap();
    let platform = SimPlatform::open_or_init(dir.path(), &InitOptions::default()).unwrap();
    platform.init_attestation_key().unwrap();
    let report = platform.cpu().create_report(
        &EnclaveIdentity::default(),
        &platform.qe_target_info(),
        &[7; 64],
    );
    let quote_len = platform.quote(&report).unwrap().len();

    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let message = [0x5au8; 432];

    // Interleaved rounds so that machine noise hits both sides alike.
    let (mut raw, mut quotes, mut reports) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        raw.push(rate(budget, || {
            black_box(key.sign(&rng, black_box(&message)).unwrap());
        }));
        quotes.push(rate(budget, || {
            black_box(platform.quote(black_box(&report)).unwrap());
        }));
        reports.push(rate(budget, || {
            black_box(platform.cpu().create_report(
                black_box(&EnclaveIdentity::default()),
                &platform.qe_target_info(),
                &[7; 64],
            ));
        }));
    }
    let (raw, quotes, reports) = (median(raw), median(quotes), median(reports));
    println!("sgx-sim quote generation, single thread, median of {rounds} rounds of {per_round} s");
    println!(
        "  raw ring ECDSA P-256 sign (432 B)  {raw:>10.0} ops/s  {:>7.2} µs",
        1e6 / raw
    );
    println!(
        "  SimPlatform::quote ({quote_len} B)       {quotes:>10.0} ops/s  {:>7.2} µs",
        1e6 / quotes
    );
    println!(
        "  SimCpu::create_report (app side)   {reports:>10.0} ops/s  {:>7.2} µs",
        1e6 / reports
    );
    println!(
        "  ratio quote / raw sign             {:>10.3}",
        quotes / raw
    );
}
