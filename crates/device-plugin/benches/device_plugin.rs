#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `cargo bench -p device-plugin`: ListAndWatch encoding (compact ids vs the naive decimal ids,
//! measured in the same run), Allocate latency for a 64 GiB request, and re-registration latency
//! after a simulated kubelet restart. Plain `Instant` loops; medians and extremes are printed.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Event, FakeMachine, Kubelet, Plugin, config, short_dir};
use device_plugin::listing::{self, DeviceSet, LIST_AND_WATCH_BUDGET};
use device_plugin::proto::{
    AllocateRequest, ContainerAllocateRequest, Device, Empty, ListAndWatchResponse,
};
use device_plugin::{EPC_RESOURCE, ResourceKind, ids};
use prost::Message;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn time<T>(iterations: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut samples = Vec::with_capacity(iterations);
    let mut last = None;
    for _ in 0..iterations {
        let start = Instant::now();
        let out = f();
        samples.push(start.elapsed());
        last = Some(std::hint::black_box(out));
    }
    (median(samples), last.unwrap())
}

/// What a straightforward plugin sends: decimal ids, "Healthy", no topology.
fn naive(count: u64) -> Vec<u8> {
    let devices = (0..count)
        .map(|i| Device {
            id: i.to_string(),
            health: listing::HEALTHY.to_owned(),
            topology: None,
        })
        .collect();
    ListAndWatchResponse { devices }.encode_to_vec()
}

fn compact(count: u64) -> Vec<u8> {
    listing::build(&DeviceSet::healthy(count), LIST_AND_WATCH_BUDGET)
        .unwrap()
        .response
        .encode_to_vec()
}

fn bench_listing() {
    const ROUNDS: usize = 21;
    println!(
        "ListAndWatch message, all healthy, build + encode ({ROUNDS} alternating rounds; min / median):"
    );
    println!(
        "{:>8} {:>8} {:>10} {:>10} {:>6} {:>21} {:>21} {:>12}",
        "EPC", "devices", "naive B", "compact B", "size", "naive t", "compact t", "time (min)"
    );
    for gib in [8u64, 64, 256] {
        let count = gib * 1024;
        // Alternate the two so that load on the machine hits both alike.
        let (mut naive_t, mut compact_t) = (Vec::new(), Vec::new());
        let (mut naive_len, mut compact_len) = (0, 0);
        for _ in 0..ROUNDS {
            let (t, bytes) = time(1, || naive(count));
            naive_t.push(t);
            naive_len = bytes.len();
            let (t, bytes) = time(1, || compact(count));
            compact_t.push(t);
            compact_len = bytes.len();
        }
        let (naive_min, compact_min) = (
            *naive_t.iter().min().unwrap(),
            *compact_t.iter().min().unwrap(),
        );
        let verdict = |len: usize| {
            if len > LIST_AND_WATCH_BUDGET {
                " (over 4 MiB: kubelet drops it)"
            } else {
                ""
            }
        };
        println!(
            "{:>5} GiB {:>8} {:>10} {:>10} {:>5.3}x {:>9.2?} / {:>9.2?} {:>9.2?} / {:>9.2?} {:>11.2}x{}{}",
            gib,
            count,
            naive_len,
            compact_len,
            compact_len as f64 / naive_len as f64,
            naive_min,
            median(naive_t),
            compact_min,
            median(compact_t),
            compact_min.as_secs_f64() / naive_min.as_secs_f64(),
            verdict(naive_len),
            verdict(compact_len),
        );
    }
    let unhealthy = DeviceSet {
        count: 262_144,
        unhealthy: std::iter::once(0..262_144).collect(),
        numa: vec![],
    };
    let built = listing::build(&unhealthy, LIST_AND_WATCH_BUDGET).unwrap();
    println!(
        "256 GiB all unhealthy: {} B sent ({} devices left out; listing them Unhealthy would take {} B)",
        built.encoded_len,
        built.omitted,
        listing::encoded_size(
            &unhealthy,
            listing::Variant {
                unhealthy_listed: true,
                topology: false
            }
        )
    );
    println!(
        "cap: {} devices fit one message",
        listing::max_devices(LIST_AND_WATCH_BUDGET)
    );
}

async fn bench_allocate() {
    let machine = FakeMachine::new(&["sgx_enclave"], &[]);
    let dir = short_dir("dpb");
    let mut kubelet = Kubelet::start(dir.path());
    let mut config = config(dir.path());
    config.resources = vec![(ResourceKind::Epc, EPC_RESOURCE.to_owned())];
    config.epc_mib = Some(128 * 1024);
    let plugin = Plugin::start(config, machine.platform());
    kubelet.list_of(EPC_RESOURCE).await;
    let mut client = kubelet.client(EPC_RESOURCE);
    let request = |count: u64| AllocateRequest {
        container_requests: vec![ContainerAllocateRequest {
            devices_ids: (0..count).map(ids::encode).collect(),
        }],
    };
    let big = request(64 * 1024);
    let small = request(1);
    let mut big_samples = Vec::new();
    let mut small_samples = Vec::new();
    let mut options_samples = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        client.get_device_plugin_options(Empty {}).await.unwrap();
        options_samples.push(start.elapsed());
        let start = Instant::now();
        client.allocate(small.clone()).await.unwrap();
        small_samples.push(start.elapsed());
        let start = Instant::now();
        let response = client.allocate(big.clone()).await.unwrap().into_inner();
        big_samples.push(start.elapsed());
        assert_eq!(response.container_responses.len(), 1);
    }
    let max = *big_samples.iter().max().unwrap();
    let (big_m, small_m, options_m) = (
        median(big_samples),
        median(small_samples),
        median(options_samples),
    );
    println!(
        "Allocate over the plugin socket (median of 30): 64 GiB request ({} ids, {} B) {:.2?} (max {:.2?}); \
         1 MiB request {:.2?}; GetDevicePluginOptions {:.2?}; 64 GiB / 1 MiB = {:.1}x",
        64 * 1024,
        big.encoded_len(),
        big_m,
        max,
        small_m,
        options_m,
        big_m.as_secs_f64() / small_m.as_secs_f64()
    );
    plugin.shutdown().await.unwrap();
}

async fn bench_reregistration() {
    let machine = FakeMachine::new(&["sgx_enclave", "sgx_provision"], &[64]);
    let dir = short_dir("dpb");
    let mut kubelet = Kubelet::start(dir.path());
    let config = config(dir.path());
    let recheck = Duration::from_secs(5);
    let config = device_plugin::Config {
        recheck_interval: recheck,
        max_backoff: Duration::from_secs(5),
        ..config
    };
    let plugin = Plugin::start(config, machine.platform());
    let mut lists = 0;
    while lists < 3 {
        if let Event::List { .. } = kubelet.next().await {
            lists += 1;
        }
    }
    let mut registered_all = Vec::new();
    let mut listed_all = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        kubelet.restart().await;
        let (mut registered, mut listed) = (0, 0);
        let mut registered_at = Duration::ZERO;
        while listed < 3 {
            match kubelet.next().await {
                Event::Registered(_) => {
                    registered += 1;
                    if registered == 3 {
                        registered_at = start.elapsed();
                    }
                }
                Event::List { .. } if registered > 0 => listed += 1,
                _ => {}
            }
        }
        registered_all.push(registered_at);
        listed_all.push(start.elapsed());
    }
    let worst = *listed_all.iter().max().unwrap();
    let (registered_m, listed_m) = (median(registered_all), median(listed_all));
    println!(
        "Re-registration after a kubelet restart (3 resources, median of 20): all registered {:.2?}, \
         all device lists received {:.2?} (max {:.2?}); vs a {:?} stat-only fallback: {:.0}x faster",
        registered_m,
        listed_m,
        worst,
        recheck,
        recheck.as_secs_f64() / listed_m.as_secs_f64()
    );
    plugin.shutdown().await.unwrap();
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        assert!(compact(8192).len() < naive(8192).len());
        println!("smoke run only; use `cargo bench -p device-plugin` for numbers");
        return;
    }
    bench_listing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench_allocate());
    runtime.block_on(bench_reregistration());
}
