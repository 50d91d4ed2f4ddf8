#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! NodePrepareResources latency over the real DRA socket, against an in-process API-server
//! stand-in, with 1 and with 64 calls in flight. Each prepared claim is new (API read, CDI spec and
//! checkpoint written with fsync) and is unprepared after the measurement.
//!
//! Baseline, measured in the same run: an empty NodePrepareResources call (the gRPC round trip
//! alone). Printed: p50/p99 per call and the ratio to the baseline's p50.
//!
//! `cargo bench -p dra-driver --bench prepare`

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use dra_driver::kubelet::proto::v1;
use tokio::sync::Mutex;

const SEQUENTIAL: usize = 200;
const IN_FLIGHT: usize = 64;
const ROUNDS: usize = 8;

fn uid(i: usize) -> String {
    format!("b0000000-0000-4000-8000-{i:012x}")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn report(name: &str, mut samples: Vec<Duration>, baseline: Option<Duration>) -> Duration {
    samples.sort();
    let p50 = percentile(&samples, 0.5);
    let p99 = percentile(&samples, 0.99);
    let ratio = baseline
        .map(|b| {
            format!(
                "  ({:.1}x baseline p50)",
                p50.as_secs_f64() / b.as_secs_f64()
            )
        })
        .unwrap_or_default();
    println!(
        "{name:<44} n={:<5} p50={:>9.3} ms  p99={:>9.3} ms{ratio}",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
    );
    p50
}

type Client = v1::dra_plugin_client::DraPluginClient<tonic::transport::Channel>;

async fn prepare_one(client: &mut Client, i: usize) -> Duration {
    let uid = uid(i);
    let name = format!("c{i}");
    let started = Instant::now();
    let response = client
        .node_prepare_resources(v1::NodePrepareResourcesRequest {
            claims: vec![v1_claim("bench", &name, &uid)],
        })
        .await
        .unwrap()
        .into_inner();
    let elapsed = started.elapsed();
    assert_eq!(response.claims[&uid].error, "");
    elapsed
}

async fn unprepare(client: &mut Client, range: std::ops::Range<usize>) {
    let claims = range
        .map(|i| v1_claim("bench", &format!("c{i}"), &uid(i)))
        .collect();
    let response = client
        .node_unprepare_resources(v1::NodeUnprepareResourcesRequest { claims })
        .await
        .unwrap()
        .into_inner();
    assert!(response.claims.values().all(|c| c.error.is_empty()));
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let root = short_tempdir();
        let config = config_in(root.path());
        std::fs::write(&config.boot_id_path, "bench-boot\n").unwrap();
        let api = FakeApi::start().await;
        let total = SEQUENTIAL + IN_FLIGHT * ROUNDS;
        for i in 0..total {
            api.put(claim(
                "bench",
                &format!("c{i}"),
                &uid(i),
                vec![result(
                    "enclave",
                    NODE,
                    "epc",
                    Some(&uid(i + total)),
                    Some("16Mi"),
                )],
                vec![common::config("FromClass", &[], sgx(true, false))],
            ));
        }
        let driver = Driver::start(config.clone(), in_tree_inventory(), &api);
        let kubelet = Kubelet::connect(&config.registry_dir).await;
        let mut client = kubelet.v1.clone();

        // Warm-up, then the baseline: an empty call.
        for _ in 0..20 {
            client
                .node_prepare_resources(v1::NodePrepareResourcesRequest { claims: vec![] })
                .await
                .unwrap();
        }
        let mut empty = Vec::new();
        for _ in 0..SEQUENTIAL {
            let started = Instant::now();
            client
                .node_prepare_resources(v1::NodePrepareResourcesRequest { claims: vec![] })
                .await
                .unwrap();
            empty.push(started.elapsed());
        }
        let baseline = report("empty call (baseline)", empty, None);

        // 1 in flight.
        let mut one = Vec::new();
        for i in 0..SEQUENTIAL {
            one.push(prepare_one(&mut client, i).await);
        }
        report("prepare, 1 claim, 1 call in flight", one, Some(baseline));

        // Prepared claims again: answered from the checkpoint.
        let mut repeat = Vec::new();
        for i in 0..SEQUENTIAL {
            repeat.push(prepare_one(&mut client, i).await);
        }
        report(
            "re-prepare (checkpoint hit), 1 in flight",
            repeat,
            Some(baseline),
        );
        unprepare(&mut client, 0..SEQUENTIAL).await;

        // 64 in flight, one claim each.
        let samples = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        for round in 0..ROUNDS {
            let base = SEQUENTIAL + round * IN_FLIGHT;
            let tasks: Vec<_> = (0..IN_FLIGHT)
                .map(|k| {
                    let mut client = kubelet.v1.clone();
                    let samples = samples.clone();
                    tokio::spawn(async move {
                        let d = prepare_one(&mut client, base + k).await;
                        samples.lock().await.push(d);
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            unprepare(&mut client, base..base + IN_FLIGHT).await;
        }
        let wall = started.elapsed();
        let samples = std::mem::take(&mut *samples.lock().await);
        let n = samples.len();
        report(
            "prepare, 1 claim, 64 calls in flight",
            samples,
            Some(baseline),
        );
        println!(
            "{:<44} {:.0} claims/s (including the unprepare of each round)",
            "throughput, 64 in flight",
            n as f64 / wall.as_secs_f64()
        );
        assert_eq!(api.violations(), Vec::<String>::new());
        driver.stop().await;
    });
}
