//! The library keeps its threads across calls: 200 collateral calls (each fetching four documents,
//! no cache) start no thread per call. Alone in its test binary, so that no other test's threads
//! count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Pccs, Sim};
use dcap_quoteprov::config::Config;
use dcap_quoteprov::provider::Provider;
use pccs::source::PckCert;

/// The ids of the process's threads now.
fn tasks() -> BTreeSet<u64> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

#[test]
fn two_hundred_collateral_calls_do_not_start_two_hundred_threads() {
    let sim = Sim::new();
    let pck = PckCert::from_chain_pem(sim.platform.pck_cert_chain()).unwrap();
    let pccs = Pccs::start(sim.source.clone());
    let config = Config {
        pccs_url: pccs.url(),
        verify_collateral_cache_expire_hours: 0,
        ..Config::default()
    };
    // A sampler records every thread id it sees while the calls run; short-lived threads started
    // per call would show up as many new ids.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            while !done.load(Ordering::Relaxed) {
                seen.extend(tasks());
            }
            seen
        })
    };
    let before = tasks();
    for _ in 0..200 {
        // A provider per call, as the C entry points make one.
        let provider = Provider::new(config.clone(), None);
        let collateral = provider.collateral(&pck.fmspc, pck.ca).unwrap();
        assert!(!collateral.tcb_info.is_empty());
    }
    let after = tasks();
    done.store(true, Ordering::Relaxed);
    let seen = sampler.join().unwrap();
    let new: Vec<_> = seen.difference(&before).collect();
    // The lookup worker, kept for the process: one thread, whatever the number of calls.
    assert!(new.len() <= 2, "threads started during the calls: {new:?}");
    assert!(after.len() <= before.len() + 1, "{before:?} → {after:?}");
    // 800 requests, over the connections the kept clients hold open.
    assert_eq!(pccs.seen().len(), 800);
}
