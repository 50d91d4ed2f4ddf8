//! The cost of answering one PCCS request without HTTP: `pccs::handle` over a simulated platform's
//! cached collateral, against a bare copy of the same body (what any answer costs at least).
//! `cargo bench -p pccs --bench handle [SECS]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

fn main() {
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1.0);
    let budget = Duration::from_secs_f64(secs);
    let dir = tempfile::tempdir().unwrap();
    let platform =
        Arc::new(sgx_sim::SimPlatform::open_or_init(dir.path(), &Default::default()).unwrap());
    let fmspc = hex::encode_upper(platform.pck_extension().fmspc);
    let source = pccs::SimSource::new(Arc::clone(&platform));
    let query = format!("fmspc={fmspc}");
    let reply = pccs::handle(&source, "/sgx/certification/v4/tcb", Some(&query)).unwrap();
    assert_eq!(reply.status, 200);
    let body = reply.body.clone();

    let copy = rate(budget, || {
        black_box(black_box(&body).clone());
    });
    let handle = rate(budget, || {
        black_box(pccs::handle(
            &source,
            "/sgx/certification/v4/tcb",
            Some(black_box(&query)),
        ));
    });
    println!("TCB info request, {} byte body", body.len());
    println!("  body copy only        {copy:>12.0}/s");
    println!(
        "  pccs::handle          {handle:>12.0}/s   ({:.2} µs each, {:.3}× a bare copy)",
        1e6 / handle,
        handle / copy
    );
}
