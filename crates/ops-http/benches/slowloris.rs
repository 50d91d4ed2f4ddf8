//! Slowloris: honest requests per second and p99 latency of a governed server with no slow
//! connections and with 10,000 slow ones held (half a request line each, from 100 loopback
//! addresses so that the per-address cap does not close them), in one run, and their ratio; then
//! the server's memory per connection (RSS growth over N held connections) for slow connections,
//! idle keep-alive connections, and idle TLS connections.
//!
//! `cargo bench -p ops-http --bench slowloris [SLOW] [REQUESTS]` (defaults 10000 and 4000).
//! The server runs in a child process (this binary again), so that the client's and the server's
//! descriptors are counted apart and its RSS is its own; both raise their soft RLIMIT_NOFILE.
//! The server has the cluster services' default limits (cap 10,240) except for long header/idle
//! timeouts, so that the slow connections stay held for the whole measurement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ops_http::guard::ConnMetrics;
use ops_http::testing::{self, HALF_REQUEST_LINE};
use ops_http::{Limits, Readiness};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Set in the server child: the certificate and key (hex DER, `CERT:KEY`) it serves HTTPS with.
const CHILD_ENV: &str = "CONFCOM_SLOWLORIS_SERVER";
const HONEST_CONCURRENCY: usize = 8;

fn main() {
    if let Ok(pair) = std::env::var(CHILD_ENV) {
        let (cert, key) = pair.split_once(':').unwrap();
        server_child(testing::SelfSigned {
            cert_der: unhex(cert),
            key_der: unhex(key),
        });
        return;
    }
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let slow = numbers.first().copied().unwrap_or(10_000);
    let requests = numbers.get(1).copied().unwrap_or(4_000);
    testing::raise_nofile();

    let pair = testing::SelfSigned::generate().unwrap();
    let client_tls = pair.client_config().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        // 1. Throughput and latency, without and with the slow connections.
        let server = Child::spawn(&pair);
        let plain = server.plain;
        // Warm up (allocator, code paths), then the baseline.
        honest(plain, requests / 4).await;
        let base = honest(plain, requests).await;
        let rss0 = rss(server.pid);
        let held = hold_slow(plain, slow).await;
        wait_open(plain, slow).await;
        let rss1 = rss(server.pid);
        let loaded = honest(plain, requests).await;
        let still = open_connections(plain).await;
        drop(held);
        wait_open(plain, 0).await;
        let after = honest(plain, requests).await;
        server.stop();

        println!(
            "slowloris: honest GET /healthz, a new connection each, {HONEST_CONCURRENCY} at a time, {requests} requests per row"
        );
        println!(
            "  no slow connections:        {:>8.0} req/s  p99 {:>6.2} ms",
            base.rate, base.p99_ms
        );
        println!(
            "  {slow} slow connections held: {:>8.0} req/s  p99 {:>6.2} ms  (still held after the row: {still})",
            loaded.rate, loaded.p99_ms
        );
        println!(
            "  no slow connections again:  {:>8.0} req/s  p99 {:>6.2} ms",
            after.rate, after.p99_ms
        );
        println!(
            "  ratio held / no slow (first row): rate {:.2}, p99 {:.2}",
            loaded.rate / base.rate,
            loaded.p99_ms / base.p99_ms
        );

        // 2. Memory, each kind of connection on top of the previous ones in a fresh server (so
        // that no freed memory is reused and hides the growth).
        let n = 2_000;
        let server = Child::spawn(&pair);
        println!("server memory per held connection (RSS growth / connections):");
        println!(
            "  half a request line (HTTP):  {:>6.0} bytes ({slow} held, first server)",
            rss1.saturating_sub(rss0) as f64 / slow as f64
        );
        let mut open = 0;
        let mut before = rss(server.pid);
        let report = |what: &str, before: &mut u64| {
            let now = rss(server.pid);
            println!(
                "  {what:<28} {:>6.0} bytes ({n} held)",
                now.saturating_sub(*before) as f64 / n as f64
            );
            *before = now;
        };
        let mut slow_fresh = Vec::new();
        for s in 0..20u8 {
            let from = IpAddr::V4(Ipv4Addr::new(127, 2, 0, 1 + s));
            slow_fresh.extend(testing::hold(server.plain, from, n / 20, HALF_REQUEST_LINE).await.unwrap());
        }
        open += n;
        wait_open(server.plain, open).await;
        report("half a request line (HTTP):", &mut before);
        let idle = hold_idle_plain(server.plain, n).await;
        open += n;
        wait_open(server.plain, open).await;
        report("idle keep-alive (HTTP):", &mut before);
        let mut silent = Vec::new();
        for s in 0..20u8 {
            let from = IpAddr::V4(Ipv4Addr::new(127, 3, 0, 1 + s));
            silent.extend(testing::hold(server.tls, from, n / 20, b"").await.unwrap());
        }
        open += n;
        wait_open(server.plain, open).await;
        report("no TLS handshake (HTTPS):", &mut before);
        let idle_tls = hold_idle_tls(server.tls, client_tls, n).await;
        open += n;
        wait_open(server.plain, open).await;
        report("idle keep-alive (HTTPS):", &mut before);
        drop((slow_fresh, idle, silent, idle_tls));
        server.stop();
    });
}

struct Child {
    process: std::process::Child,
    plain: SocketAddr,
    tls: SocketAddr,
    pid: u32,
}

impl Child {
    fn spawn(pair: &testing::SelfSigned) -> Self {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .env(
                CHILD_ENV,
                format!("{}:{}", hex(&pair.cert_der), hex(&pair.key_der)),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
        let plain = lines.next().unwrap().unwrap().parse().unwrap();
        let tls = lines.next().unwrap().unwrap().parse().unwrap();
        let pid = process.id();
        Self {
            process,
            plain,
            tls,
            pid,
        }
    }

    fn stop(mut self) {
        drop(self.process.stdin.take());
        let _ = self.process.wait();
    }
}

/// The server: plain and TLS listeners sharing one registry, default limits but long timeouts.
fn server_child(pair: testing::SelfSigned) {
    testing::raise_nofile();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", plain.local_addr().unwrap());
        println!("{}", tls.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        let limits = Limits {
            header_read_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(600),
            handshake_timeout: Duration::from_secs(600),
            connection_timeout: Duration::from_secs(3600),
            // The cluster services' cap (the PCCS's and the webhook's), not the ops endpoints'.
            max_connections: ops_http::guard::DEFAULT_MAX_CONNECTIONS,
            ..Limits::default()
        };
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = ConnMetrics::register(&mut registry, "confcom_bench");
        let tls_metrics = ConnMetrics::register(&mut registry, "confcom_bench_tls");
        let registry = Arc::new(registry);
        let readiness = Readiness::new();
        let server_tls = pair.server_config().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        std::thread::spawn(move || {
            // Until the parent closes our stdin.
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
            let _ = stop_tx.send(true);
        });
        let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let a = ops_http::serve_guarded(
            plain,
            None,
            Arc::clone(&registry),
            readiness.clone(),
            None,
            limits,
            metrics,
            stop(stop_rx.clone()),
        );
        let b = ops_http::serve_guarded(
            tls,
            Some(server_tls),
            registry,
            readiness,
            None,
            limits,
            tls_metrics,
            stop(stop_rx),
        );
        let _ = tokio::join!(a, b);
    });
}

struct Run {
    rate: f64,
    p99_ms: f64,
}

async fn honest(addr: SocketAddr, requests: usize) -> Run {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..HONEST_CONCURRENCY {
        let n = requests / HONEST_CONCURRENCY + usize::from(worker < requests % HONEST_CONCURRENCY);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let stream = TcpStream::connect(addr).await.unwrap();
                let (status, _) = testing::get(stream, "/healthz").await.unwrap();
                assert_eq!(status, 200);
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(requests);
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = start.elapsed();
    all.sort();
    let p99 = all[(all.len() * 99 / 100).min(all.len() - 1)];
    Run {
        rate: all.len() as f64 / elapsed.as_secs_f64(),
        p99_ms: p99.as_secs_f64() * 1e3,
    }
}

/// `n` connections with half a request line, from 127.1.0.1 .. 127.1.0.100.
async fn hold_slow(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let sources = 100;
    let mut tasks = Vec::new();
    for s in 0..sources {
        let count = n / sources + usize::from(s < n % sources);
        let from = IpAddr::V4(Ipv4Addr::new(127, 1, 0, 1 + s as u8));
        tasks.push(tokio::spawn(async move {
            testing::hold(addr, from, count, HALF_REQUEST_LINE)
                .await
                .unwrap()
        }));
    }
    let mut held = Vec::with_capacity(n);
    for task in tasks {
        held.extend(task.await.unwrap());
    }
    held
}

const KEEP_ALIVE_GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Reads one small keep-alive answer (headers and the 3-byte body).
async fn read_answer<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.ends_with(b"ok\n") {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn hold_idle_plain(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(KEEP_ALIVE_GET).await.unwrap();
        read_answer(&mut stream).await;
        held.push(stream);
    }
    held
}

async fn hold_idle_tls(
    addr: SocketAddr,
    client: Arc<rustls::ClientConfig>,
    n: usize,
) -> Vec<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = testing::tls_connect(addr, Arc::clone(&client))
            .await
            .unwrap();
        stream.write_all(KEEP_ALIVE_GET).await.unwrap();
        read_answer(&mut stream).await;
        held.push(stream);
    }
    held
}

/// The server's `confcom_bench_connections_open` + `confcom_bench_tls_connections_open`, less
/// the connection asking.
async fn open_connections(addr: SocketAddr) -> i64 {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (_, body) = testing::get(stream, "/metrics").await.unwrap();
    let body = String::from_utf8(body).unwrap();
    body.lines()
        .filter(|l| l.contains("_connections_open "))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
        .sum::<i64>()
        - 1
}

async fn wait_open(addr: SocketAddr, want: usize) {
    for _ in 0..2_000 {
        if open_connections(addr).await == want as i64 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server never held {want} connections");
}

/// The resident set of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
