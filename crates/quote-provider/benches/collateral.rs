//! Collateral calls/s of the quote provider library's Rust API against one in-process PCCS over a
//! simulated platform: with its cache off (four requests per call, over the connections the
//! library keeps) and on (one disk cache entry per call), measured in the same run, alternating
//! halves so that drift weighs on both. `cargo bench -p quote-provider --bench collateral [SECS]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Pccs, Sim};
use dcap_quoteprov::cache::Cache;
use dcap_quoteprov::config::Config;
use dcap_quoteprov::provider::Provider;
use pccs::source::PckCert;

/// Calls/s of `call` over `round`.
fn rate(round: Duration, mut call: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < round {
        call();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; a number is the seconds per measurement.
    let secs = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<f64>().ok())
        .unwrap_or(2.0);
    let round = Duration::from_secs_f64(secs / 2.0);
    let sim = Sim::new();
    let pck = PckCert::from_chain_pem(sim.platform.pck_cert_chain()).unwrap();
    let pccs = Pccs::start(sim.source.clone());
    let dir = tempfile::tempdir().unwrap();
    let config = |hours| Config {
        pccs_url: pccs.url(),
        verify_collateral_cache_expire_hours: hours,
        ..Config::default()
    };
    // A provider per call, as the C entry points make one.
    let off = || {
        let provider = Provider::new(config(0), None);
        provider.collateral(&pck.fmspc, pck.ca).unwrap();
    };
    let on = || {
        let provider = Provider::new(config(24), Cache::open(&[dir.path().to_owned()]));
        provider.collateral(&pck.fmspc, pck.ca).unwrap();
    };
    // Warm up: the kept connections, the cache entry, the issued collateral.
    off();
    on();
    let (mut uncached, mut cached) = (0.0, 0.0);
    for _ in 0..2 {
        uncached += rate(round, off) / 2.0;
        cached += rate(round, on) / 2.0;
    }
    println!("quote provider collateral calls, in-process PCCS, {secs:.1} s per mode");
    println!("cache off (4 GETs per call)  {uncached:>10.0} calls/s");
    println!(
        "cache on (disk entry)        {cached:>10.0} calls/s   ({:.2}× cache off)",
        cached / uncached
    );
}
