//! End-to-end GetQuoteEx throughput of the quote helper over its Unix socket at 1, 8 and 64
//! blocking clients, next to the raw ECDSA P-256 signing rate of the same crypto library on one
//! core and a bare tokio loop, measured in the same run. What is measured and how:
//! [`aesm_service::bench`]; `confcom bench quote-helper` runs the same.
//!
//! ```sh
//! cargo bench -p aesm-service --bench quote_helper                  # 3 rounds of 2 s per point
//! BENCH_SECS=4 BENCH_ROUNDS=5 cargo bench -p aesm-service --bench quote_helper
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use aesm_service::bench::{BenchConfig, run};

fn main() {
    let env = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<f64>().ok());
    let defaults = BenchConfig::default();
    let config = BenchConfig {
        round: env("BENCH_SECS").map_or(defaults.round, Duration::from_secs_f64),
        rounds: env("BENCH_ROUNDS").map_or(defaults.rounds, |r| r as usize),
        ..defaults
    };
    let dir = tempfile::Builder::new()
        .prefix("qhb")
        .tempdir_in("/tmp")
        .unwrap();
    println!("{}", run(dir.path(), &config).unwrap());
}
