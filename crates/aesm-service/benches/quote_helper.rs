//! End-to-end GetQuoteEx throughput of the quote helper over its Unix socket, next to the raw
//! ECDSA P-256 signing rate of the same crypto library on one core, measured in the same run.
//!
//! Each request uses a new connection, as `libsgx_quote_ex`, Gramine and `aesm-client` do, from
//! blocking clients (one thread each, as those libraries are). The clients share the machine's
//! cores with the service, so the rates include their cost. The service runs on a multi-threaded
//! runtime with one worker per core, exactly as `confcom quote-helper` does. The raw signing rate
//! is measured before and after the socket runs; their mean is the baseline.
//!
//! Each point runs several rounds, the service and a bare tokio loop taking turns so that both see
//! the same background load; the median round is reported. The CPU time of the service's own
//! threads gives its cost per request, whatever the clients cost.
//!
//! ```sh
//! cargo bench -p aesm-service --bench quote_helper                  # 3 rounds of 2 s per point
//! BENCH_SECS=4 BENCH_ROUNDS=5 cargo bench -p aesm-service --bench quote_helper
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aesm_protocol::frame::{read_frame, read_frame_async, write_frame, write_frame_async};
use aesm_protocol::{
    AesmRequest, AesmResponse, GetQuoteExRequest, RequestKind, decode_response, encode_request,
};
use aesm_service::{Dispatcher, Metrics, ServerConfig, SimBackend, listen, serve};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use sgx_sim::{EnclaveIdentity, InitOptions, SimPlatform};
use sgx_types::AttKeyId;
use sgx_types::structs::Wire;

fn main() {
    let secs: f64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(3);
    let duration = Duration::from_secs_f64(secs);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let dir = tempfile::Builder::new()
        .prefix("qhb")
        .tempdir_in("/tmp")
        .unwrap();
    let socket = dir.path().join("aesm.socket");
    let platform = Arc::new(
        SimPlatform::open_or_init(&dir.path().join("state"), &InitOptions::default()).unwrap(),
    );
    platform.init_attestation_key().unwrap();
    let report = platform
        .cpu()
        .create_report(
            &EnclaveIdentity::default(),
            &platform.qe_target_info(),
            &[7; 64],
        )
        .to_vec();
    let quote_size = platform.quote_size().unwrap();
    let request = encode_request(&AesmRequest::GetQuoteEx(GetQuoteExRequest {
        report,
        att_key_id: Some(AttKeyId::intel_qe3_ecdsa().to_vec()),
        qe_report_info: None,
        buf_size: quote_size,
        timeout: Some(15_000),
    }));

    // The service, as `confcom quote-helper` runs it.
    let (std_listener, _socket_file) = listen::bind_socket(&socket, 0o777).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let backend = Arc::new(SimBackend::new(Arc::clone(&platform)));
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name(SERVICE_THREAD)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::UnixListener::from_std(std_listener).unwrap();
            serve(
                vec![listener],
                Dispatcher::new(backend),
                ServerConfig::default(),
                Metrics::default(),
                async move {
                    let _ = stopped.await;
                },
            )
            .await
        })
    });

    println!(
        "quote helper benchmark: {cores} cores, {rounds} rounds of {secs} s per point, quote \
         {quote_size} bytes, a new connection per request, blocking clients"
    );
    let raw_before = raw_signing_rate(duration);
    let decoded = aesm_protocol::decode_request(&request).unwrap();
    let dispatcher = Dispatcher::new(Arc::new(SimBackend::new(Arc::clone(&platform))));
    let in_process = rate_of(duration, || {
        let out = dispatcher.handle(&decoded);
        assert_eq!(out.response.error_code(), 0);
        std::hint::black_box(aesm_protocol::encode_response(&out.response));
    });
    let request = Arc::new(request);
    // Two references, each a bare tokio loop that accepts, reads the frame and writes a reply of
    // the same size with nothing else (no decoding, checks, metrics, timeouts): one signs inline
    // (the floor of any design), one does not sign (what clients, sockets and the kernel alone
    // allow on this machine). At each client count the three servers run back to back, so that
    // they see the same background load.
    let bare_socket = dir.path().join("bare.socket");
    let null_socket = dir.path().join("null.socket");
    let (bare_stop, bare_server) = start_bare_server(&bare_socket, quote_size as usize, true);
    let (null_stop, null_server) = start_bare_server(&null_socket, quote_size as usize, false);
    let mut points = Vec::new();
    let mut bare = Vec::new();
    let mut null = Vec::new();
    for clients in [1usize, 8, 64] {
        let mut service = Vec::new();
        let mut bare_rounds = Vec::new();
        for _ in 0..rounds {
            let cpu_before = thread_cpu(SERVICE_THREAD);
            let point = run_clients(&socket, &request, clients, duration);
            let cpu = thread_cpu(SERVICE_THREAD) - cpu_before;
            service.push((point, cpu));
            bare_rounds.push(run_clients(&bare_socket, &request, clients, duration).rate);
        }
        service.sort_by(|a, b| a.0.rate.total_cmp(&b.0.rate));
        bare_rounds.sort_by(f64::total_cmp);
        let spread = (service[0].0.rate, service[service.len() - 1].0.rate);
        let (median, cpu) = service.swap_remove(service.len() / 2);
        points.push((clients, median, cpu, spread));
        bare.push(bare_rounds[bare_rounds.len() / 2]);
        null.push(run_clients(&null_socket, &request, clients, duration).rate);
    }
    bare_stop.send(()).unwrap();
    null_stop.send(()).unwrap();
    bare_server.join().unwrap();
    null_server.join().unwrap();
    let raw_after = raw_signing_rate(duration);
    let raw = (raw_before + raw_after) / 2.0;

    println!(
        "raw ECDSA P-256 signing (ring, 1 thread, 432-byte message): {raw:.0} signatures/s \
         (before {raw_before:.0}, after {raw_after:.0}: the machine's noise)"
    );
    println!(
        "GetQuoteEx in process, 1 thread, no socket (dispatch + sim QE + encode): \
         {in_process:.0} requests/s = {:.2}x raw",
        in_process / raw
    );
    println!();
    println!(
        "{:>8} {:>12} {:>14} {:>14} {:>10} {:>10} {:>12} {:>14}",
        "clients",
        "requests/s",
        "x raw signing",
        "(rounds)",
        "p50",
        "p99",
        "x bare loop",
        "service CPU"
    );
    for ((clients, point, cpu, (low, high)), bare) in points.iter().zip(&bare) {
        // CPU time of the service's threads per request, in signatures' worth of raw signing.
        let cpu_per_request = cpu.as_secs_f64() / point.requests as f64;
        println!(
            "{:>8} {:>12.0} {:>13.2}x {:>14} {:>10} {:>10} {:>11.2}x {:>14}",
            clients,
            point.rate,
            point.rate / raw,
            format!("{:.2}-{:.2}", low / raw, high / raw),
            fmt_duration(point.p50),
            fmt_duration(point.p99),
            point.rate / bare,
            format!(
                "{:.1} µs = {:.1} sig",
                cpu_per_request * 1e6,
                cpu_per_request * raw
            ),
        );
    }
    let list = |rates: &[f64], f: &dyn Fn(f64) -> String| {
        rates.iter().map(|r| f(*r)).collect::<Vec<_>>().join(", ")
    };
    println!(
        "bare loop (accept, read, sign inline, write), 1/8/64 clients: {} requests/s = {} x raw",
        list(&bare, &|r| format!("{r:.0}")),
        list(&bare, &|r| format!("{:.2}", r / raw)),
    );
    println!(
        "the same loop without signing (what clients, sockets and kernel allow here): {} \
         requests/s = {} x raw",
        list(&null, &|r| format!("{r:.0}")),
        list(&null, &|r| format!("{:.2}", r / raw)),
    );

    stop.send(()).unwrap();
    server.join().unwrap().unwrap();
}

/// Name of the service's runtime threads, whose CPU time is measured.
const SERVICE_THREAD: &str = "aesm-bench-svc";

/// CPU time (user + system) spent so far by this process's threads named `name`, from
/// `/proc/self/task/*/stat`.
fn thread_cpu(name: &str) -> Duration {
    // Clock ticks per second of /proc's times: 100 on every Linux architecture with a stable ABI.
    const TICKS: f64 = 100.0;
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != name {
            continue;
        }
        // After "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    Duration::from_secs_f64(ticks as f64 / TICKS)
}

fn raw_signing_rate(duration: Duration) -> f64 {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let message = [0x5au8; 432];
    rate_of(duration, || {
        std::hint::black_box(key.sign(&rng, &message).unwrap());
    })
}

/// Calls `f` on this thread for `duration` (after a short warm-up); returns calls per second.
fn rate_of(duration: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..200 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < duration {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

struct Point {
    rate: f64,
    requests: usize,
    p50: Duration,
    p99: Duration,
}

/// `clients` blocking clients (threads), as `libsgx_quote_ex`, Gramine and `aesm-client` are: a new
/// connection per request, write the frame, read the reply, decode it.
fn run_clients(socket: &Path, request: &Arc<Vec<u8>>, clients: usize, duration: Duration) -> Point {
    let run = |until: Instant| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let socket = socket.to_owned();
                let request = Arc::clone(request);
                std::thread::spawn(move || {
                    let mut latencies = Vec::new();
                    while Instant::now() < until {
                        let t = Instant::now();
                        one_request(&socket, &request);
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    };
    // Warm up: threads, connections, allocator.
    run(Instant::now() + Duration::from_millis(300));
    let started = Instant::now();
    let mut latencies = run(started + duration);
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    Point {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        requests: latencies.len(),
        p50: pick(0.50),
        p99: pick(0.99),
    }
}

fn start_bare_server(
    socket: &Path,
    reply_len: usize,
    sign: bool,
) -> (
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::UnixListener::from_std(listener).unwrap();
            let rng = Arc::new(SystemRandom::new());
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &*rng).unwrap();
            let key = Arc::new(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &*rng)
                    .unwrap(),
            );
            let template: Arc<[u8]> = aesm_protocol::encode_response(&AesmResponse::GetQuoteEx(
                aesm_protocol::GetQuoteExResponse {
                    error_code: 0,
                    quote: Some(vec![0; reply_len]),
                    qe_report_info: None,
                },
            ))
            .into();
            loop {
                let (mut stream, _) = tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => accepted.unwrap(),
                };
                let key = Arc::clone(&key);
                let rng = Arc::clone(&rng);
                let template = Arc::clone(&template);
                tokio::spawn(async move {
                    let Ok(Some(body)) = read_frame_async(&mut stream, 1 << 16).await else {
                        return;
                    };
                    // A real GetQuoteEx reply of the quote's size, the signature in its last bytes.
                    let mut reply = template.to_vec();
                    if sign {
                        let signature = key.sign(&*rng, &body[..432.min(body.len())]).unwrap();
                        let end = reply.len();
                        reply[end - 64..].copy_from_slice(signature.as_ref());
                    }
                    let _ = write_frame_async(&mut stream, &reply).await;
                });
            }
        })
    });
    (stop, thread)
}

fn one_request(socket: &Path, request: &[u8]) {
    let mut stream = UnixStream::connect(socket).unwrap();
    write_frame(&mut stream, request).unwrap();
    let body = read_frame(&mut stream, 1 << 20).unwrap().expect("a reply");
    match decode_response(&body, RequestKind::GetQuoteEx).unwrap() {
        AesmResponse::GetQuoteEx(r) if r.error_code == 0 && r.quote.is_some() => {}
        other => panic!("GetQuoteEx failed: {other:?}"),
    }
}

fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1000.0)
    }
}
