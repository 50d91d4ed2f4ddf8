//! Our verifier against dcap-qvl 0.7.1 (ring backend) on the same quotes and collateral, in the same
//! run, printed as speed-up ratios (dcap-qvl time / our time) with their spread over repeated rounds.
//!
//! - cold: one quote, a fresh `Verifier` each time (no caches);
//! - stream: 1,000 quotes of one platform through one `Verifier` (its first quote is cold), both for
//!   the real dcap-qvl sample repeated and for 1,000 distinct quotes of a simulated platform.
//!
//! Run: `cargo bench -p dcap-verify --bench verify` (release profile).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dcap_verify::{Collateral, Policy, TrustAnchor, Verifier};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors");
const SAMPLE_NOW: u64 = 1751624924;

struct Case {
    quotes: Vec<Vec<u8>>,
    collateral: Collateral,
    theirs: dcap_qvl::QuoteCollateralV3,
    root: Vec<u8>,
    now: u64,
}

impl Case {
    fn ours_stream(&self) -> Duration {
        let anchor = TrustAnchor::from_der(&self.root).unwrap();
        let policy = Policy::default();
        let start = Instant::now();
        let verifier = Verifier::new(anchor);
        for q in &self.quotes {
            black_box(
                verifier
                    .verify(q, &self.collateral, self.now, &policy)
                    .unwrap(),
            );
        }
        start.elapsed()
    }

    fn theirs_stream(&self) -> Duration {
        let start = Instant::now();
        let verifier = dcap_qvl::verify::QuoteVerifier::new(self.root.clone());
        for q in &self.quotes {
            black_box(verifier.verify(q, &self.theirs, self.now).unwrap());
        }
        start.elapsed()
    }

    fn ours_cold(&self, n: usize) -> Duration {
        let anchor = TrustAnchor::from_der(&self.root).unwrap();
        let policy = Policy::default();
        let start = Instant::now();
        for _ in 0..n {
            black_box(
                dcap_verify::verify(
                    &self.quotes[0],
                    &self.collateral,
                    &anchor,
                    self.now,
                    &policy,
                )
                .unwrap(),
            );
        }
        start.elapsed()
    }

    fn theirs_cold(&self, n: usize) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            let verifier = dcap_qvl::verify::QuoteVerifier::new(self.root.clone());
            black_box(
                verifier
                    .verify(&self.quotes[0], &self.theirs, self.now)
                    .unwrap(),
            );
        }
        start.elapsed()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

/// Runs `rounds` interleaved rounds and prints per-quote medians and the ratio's median, p10 and p90.
fn report(
    name: &str,
    per_round: usize,
    rounds: usize,
    mut ours: impl FnMut() -> Duration,
    mut theirs: impl FnMut() -> Duration,
) {
    // Warm-up round (page faults, lazy statics).
    ours();
    theirs();
    let (mut o, mut t, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let a = ours().as_secs_f64();
        let b = theirs().as_secs_f64();
        o.push(a / per_round as f64 * 1e6);
        t.push(b / per_round as f64 * 1e6);
        ratios.push(b / a);
    }
    for v in [&mut o, &mut t, &mut ratios] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "{name:<52} ours {:>7.1} µs/quote  dcap-qvl {:>7.1} µs/quote  speed-up x{:.2} median [p10 x{:.2}, p90 x{:.2}] over {rounds} rounds of {per_round}",
        percentile(&o, 0.5),
        percentile(&t, 0.5),
        percentile(&ratios, 0.5),
        percentile(&ratios, 0.1),
        percentile(&ratios, 0.9),
    );
}

fn sample_case() -> Case {
    let quote = std::fs::read(format!("{VECTORS}/dcap-qvl/sgx_quote")).unwrap();
    let json =
        std::fs::read_to_string(format!("{VECTORS}/dcap-qvl/sgx_quote_collateral.json")).unwrap();
    Case {
        quotes: vec![quote; 1000],
        collateral: Collateral::from_json(&json).unwrap(),
        theirs: serde_json::from_str(&json).unwrap(),
        root: dcap_verify::INTEL_ROOT_CA_DER.to_vec(),
        now: SAMPLE_NOW,
    }
}

fn sim_case(dir: &std::path::Path) -> Case {
    use sgx_sim::{CollateralOptions, EnclaveIdentity, InitOptions, SimPlatform};
    let platform = SimPlatform::open_or_init(dir, &InitOptions::default()).unwrap();
    platform.init_attestation_key().unwrap();
    let quotes = (0..1000u32)
        .map(|i| {
            let mut report_data = [0u8; 64];
            report_data[..4].copy_from_slice(&i.to_le_bytes());
            let report = platform.cpu().create_report(
                &EnclaveIdentity::default(),
                &platform.qe_target_info(),
                &report_data,
            );
            platform.quote(&report).unwrap()
        })
        .collect();
    let json = platform
        .collateral(&CollateralOptions::default())
        .unwrap()
        .qvl_json();
    Case {
        quotes,
        collateral: Collateral::from_json(&json).unwrap(),
        theirs: serde_json::from_str(&json).unwrap(),
        root: platform.root_ca_der().to_vec(),
        now: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 60,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (cold_rounds, stream_rounds) = if quick { (5, 3) } else { (21, 11) };
    println!(
        "dcap-verify against dcap-qvl 0.7.1 (ring), same inputs, same run; ratio = dcap-qvl time / our time"
    );
    let sample = sample_case();
    report(
        "cold quote, fresh verifier (dcap-qvl sample)",
        100,
        cold_rounds,
        || sample.ours_cold(100),
        || sample.theirs_cold(100),
    );
    report(
        "stream of 1000 quotes, one verifier (sample x1000)",
        1000,
        stream_rounds,
        || sample.ours_stream(),
        || sample.theirs_stream(),
    );
    let dir = tempfile::tempdir().unwrap();
    let sim = sim_case(dir.path());
    report(
        "cold quote, fresh verifier (simulated platform)",
        100,
        cold_rounds,
        || sim.ours_cold(100),
        || sim.theirs_cold(100),
    );
    report(
        "stream of 1000 distinct quotes of one sim platform",
        1000,
        stream_rounds,
        || sim.ours_stream(),
        || sim.theirs_stream(),
    );
}
