//! The quote helper's throughput benchmark, shared by `confcom bench quote-helper` and
//! `cargo bench -p aesm-service --bench quote_helper`: [`run`].
//!
//! It measures GetQuoteEx requests per second end to end over a Unix socket, a new connection per
//! request as `libsgx_quote_ex`, Gramine and `aesm-client` do, from blocking clients (one thread
//! each, as those libraries are), at several client counts. The clients share the machine's cores
//! with the service, so the rates include their cost. Next to it, measured in the same run:
//!
//! - the raw ECDSA P-256 signing rate of the same crypto library on one thread, before and after
//!   (their mean is the baseline every rate is divided by);
//! - GetQuoteEx answered in process, without a socket;
//! - two bare tokio loops (accept, spawn a task, read the frame, write a reply of the same size),
//!   one that signs inline and one that does not: the first is the naive design, the second what
//!   the clients, sockets and kernel alone allow on this machine;
//! - the CPU time of the service's own threads per request, whatever the clients cost.
//!
//! The service runs as `confcom quote-helper` does, on the simulated platform, with one runtime
//! worker per core. Each point runs several rounds, the service and the signing bare loop taking
//! turns so that both see the same background load; the median round is reported.

use std::fmt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aesm_protocol::frame::{read_frame, read_frame_async, write_frame, write_frame_async};
use aesm_protocol::{
    AesmRequest, AesmResponse, GetQuoteExRequest, GetQuoteExResponse, RequestKind, decode_response,
    encode_request, encode_response,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use sgx_sim::{EnclaveIdentity, InitOptions, SimPlatform};
use sgx_types::AttKeyId;
use sgx_types::structs::Wire;
use tokio::sync::oneshot;

use crate::evidence::{EvidenceRecorder, PLATFORM_QUOTE_FILE, evidence_path_for_socket};
use crate::{BackgroundServer, Dispatcher, Metrics, ServerConfig, SimBackend};

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// Length of one round.
    pub round: Duration,
    /// Rounds per client count (the median is reported).
    pub rounds: usize,
    /// The client counts.
    pub clients: Vec<usize>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            round: Duration::from_secs(2),
            rounds: 3,
            clients: vec![1, 8, 64],
        }
    }
}

/// A failure of the benchmark itself (setting up, or a request that did not get its quote).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Setting up the platform, the sockets or the threads failed.
    #[error("cannot set up the benchmark: {0}")]
    Setup(String),
    /// A request failed: the service is broken or the machine ran out of something.
    #[error("a benchmark request failed: {0}")]
    Request(String),
}

fn setup(e: impl fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

/// One client count's results.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchPoint {
    /// Concurrent clients.
    pub clients: usize,
    /// The median round of the service.
    pub service: Load,
    /// The slowest and the fastest round of the service, in requests per second.
    pub spread: (f64, f64),
    /// CPU time of the service's threads per request in the median round.
    pub service_cpu: Duration,
    /// The median round of the bare loop that signs.
    pub bare: f64,
    /// The bare loop that does not sign (one round).
    pub null: f64,
}

/// What one round of clients achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Requests per second.
    pub rate: f64,
    /// Requests answered.
    pub requests: usize,
    /// Median latency.
    pub p50: Duration,
    /// 99th-percentile latency.
    pub p99: Duration,
    /// CPU time the service's threads spent meanwhile (zero for the bare loops).
    pub service_cpu: Duration,
}

/// The whole measurement; [`fmt::Display`] renders it as a table.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// Cores available to this process.
    pub cores: usize,
    /// The configuration it ran with.
    pub config: BenchConfig,
    /// Size of the quotes served.
    pub quote_size: u32,
    /// Raw signatures per second on one thread, before the socket runs.
    pub raw_before: f64,
    /// The same, after.
    pub raw_after: f64,
    /// GetQuoteEx requests per second answered in process on one thread.
    pub in_process: f64,
    /// The same with the platform evidence published ([`crate::evidence`]), as the quote helper
    /// serves.
    pub in_process_evidence: f64,
    /// One per client count.
    pub points: Vec<BenchPoint>,
}

impl BenchReport {
    /// The baseline: the mean raw signing rate.
    pub fn raw(&self) -> f64 {
        (self.raw_before + self.raw_after) / 2.0
    }
}

/// Name of the service's runtime threads, whose CPU time is measured (at most 15 bytes, the
/// kernel's limit for thread names).
const SERVICE_THREAD: &str = "aesm-bench-svc";

/// Runs the benchmark with its sockets and simulated platform under `dir` (which must allow
/// socket paths of at most 107 bytes: keep it short, e.g. under `/tmp`).
pub fn run(dir: &Path, config: &BenchConfig) -> Result<BenchReport, BenchError> {
    if config.rounds == 0 || config.clients.is_empty() || config.clients.contains(&0) {
        return Err(setup(
            "rounds and client counts must be at least 1, with at least one client count",
        ));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let platform = Arc::new(
        SimPlatform::open_or_init(&dir.join("state"), &InitOptions::default()).map_err(setup)?,
    );
    platform.init_attestation_key().map_err(setup)?;
    let report = platform
        .cpu()
        .create_report(
            &EnclaveIdentity::default(),
            &platform.qe_target_info(),
            &[7; 64],
        )
        .to_vec();
    let quote_size = platform.quote_size().map_err(setup)?;
    let request = AesmRequest::GetQuoteEx(GetQuoteExRequest {
        report,
        att_key_id: Some(AttKeyId::intel_qe3_ecdsa().to_vec()),
        qe_report_info: None,
        buf_size: quote_size,
        timeout: Some(15_000),
    });
    let frame = Arc::new(encode_request(&request));

    let service = Service::start(&dir.join("aesm.socket"), Arc::clone(&platform))?;
    let raw_before = raw_signing_rate(config.round)?;
    let in_process_rate = |dispatcher: Dispatcher| {
        let mut failed = None;
        let rate = rate_of(config.round, || {
            let out = dispatcher.handle(&request);
            if out.response.error_code() != 0 {
                failed = Some(out.response.error_code());
            }
            std::hint::black_box(encode_response(&out.response));
        });
        match failed {
            Some(code) => Err(BenchError::Request(format!(
                "GetQuoteEx in process answered {code}"
            ))),
            None => Ok(rate),
        }
    };
    let plain = Dispatcher::new(Arc::new(SimBackend::new(Arc::clone(&platform))));
    let in_process = in_process_rate(plain.clone())?;
    let recorder = EvidenceRecorder::new(dir.join("in-process").join(PLATFORM_QUOTE_FILE));
    std::fs::create_dir_all(dir.join("in-process")).map_err(setup)?;
    let in_process_evidence = in_process_rate(plain.with_evidence(Arc::new(recorder)))?;

    let bare = BareLoop::start(&dir.join("bare.socket"), quote_size as usize, true)?;
    let null = BareLoop::start(&dir.join("null.socket"), quote_size as usize, false)?;
    let mut points = Vec::new();
    for &clients in &config.clients {
        let mut rounds = Vec::new();
        let mut bare_rounds = Vec::new();
        for _ in 0..config.rounds {
            rounds.push(run_clients(
                service.socket(),
                &frame,
                clients,
                config.round,
            )?);
            bare_rounds.push(run_clients(&bare.socket, &frame, clients, config.round)?.rate);
        }
        rounds.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        bare_rounds.sort_by(f64::total_cmp);
        let spread = (
            rounds.first().map_or(0.0, |r| r.rate),
            rounds.last().map_or(0.0, |r| r.rate),
        );
        let service_load = rounds.swap_remove(rounds.len() / 2);
        let service_cpu = service_load
            .service_cpu
            .checked_div(u32::try_from(service_load.requests.max(1)).unwrap_or(u32::MAX))
            .unwrap_or_default();
        points.push(BenchPoint {
            clients,
            service: service_load,
            spread,
            service_cpu,
            bare: bare_rounds
                .get(bare_rounds.len() / 2)
                .copied()
                .unwrap_or(0.0),
            null: run_clients(&null.socket, &frame, clients, config.round)?.rate,
        });
    }
    drop((bare, null));
    service.stop()?;
    let raw_after = raw_signing_rate(config.round)?;
    Ok(BenchReport {
        cores,
        config: config.clone(),
        quote_size,
        raw_before,
        raw_after,
        in_process,
        in_process_evidence,
        points,
    })
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = self.raw();
        writeln!(
            f,
            "quote helper benchmark: {} cores, {} rounds of {:.1} s per point, quote {} bytes, a \
             new connection per request, blocking clients",
            self.cores,
            self.config.rounds,
            self.config.round.as_secs_f64(),
            self.quote_size
        )?;
        writeln!(
            f,
            "raw ECDSA P-256 signing (ring, 1 thread, 432-byte message): {raw:.0} signatures/s \
             (before {:.0}, after {:.0}: the machine's noise)",
            self.raw_before, self.raw_after
        )?;
        writeln!(
            f,
            "GetQuoteEx in process, 1 thread, no socket (dispatch + sim QE + encode): {:.0} \
             requests/s = {:.2}x raw",
            self.in_process,
            self.in_process / raw
        )?;
        writeln!(
            f,
            "the same, publishing the platform evidence (as confcom quote-helper serves): {:.0} \
             requests/s = {:.3}x without",
            self.in_process_evidence,
            self.in_process_evidence / self.in_process
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:>8} {:>12} {:>14} {:>14} {:>10} {:>10} {:>12} {:>18}",
            "clients",
            "requests/s",
            "x raw signing",
            "(rounds)",
            "p50",
            "p99",
            "x bare loop",
            "service CPU"
        )?;
        for p in &self.points {
            let cpu = p.service_cpu.as_secs_f64();
            writeln!(
                f,
                "{:>8} {:>12.0} {:>13.2}x {:>14} {:>10} {:>10} {:>11.2}x {:>18}",
                p.clients,
                p.service.rate,
                p.service.rate / raw,
                format!("{:.2}-{:.2}", p.spread.0 / raw, p.spread.1 / raw),
                fmt_duration(p.service.p50),
                fmt_duration(p.service.p99),
                p.service.rate / p.bare,
                // CPU time per request, also in signatures' worth of raw signing.
                format!("{:.1} µs = {:.1} sig", cpu * 1e6, cpu * raw),
            )?;
        }
        let list = |f: &dyn Fn(&BenchPoint) -> String| {
            self.points.iter().map(f).collect::<Vec<_>>().join(", ")
        };
        let counts = list(&|p| p.clients.to_string());
        writeln!(
            f,
            "bare loop (accept, spawn, read, sign inline, write), {counts} clients: {} \
             requests/s = {} x raw",
            list(&|p| format!("{:.0}", p.bare)),
            list(&|p| format!("{:.2}", p.bare / raw)),
        )?;
        write!(
            f,
            "the same loop without signing (what clients, sockets and kernel allow here): {} \
             requests/s = {} x raw",
            list(&|p| format!("{:.0}", p.null)),
            list(&|p| format!("{:.2}", p.null / raw)),
        )
    }
}

/// The quote helper on a runtime of its own, with one worker per core, its threads named
/// [`SERVICE_THREAD`].
struct Service {
    server: BackgroundServer,
}

impl Service {
    fn start(socket: &Path, platform: Arc<SimPlatform>) -> Result<Self, BenchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name(SERVICE_THREAD)
            .enable_all()
            .build()
            .map_err(setup)?;
        let server = BackgroundServer::start_on(
            runtime,
            socket,
            // As `confcom quote-helper` serves: publishing the platform evidence beside the socket.
            Dispatcher::new(Arc::new(SimBackend::new(platform))).with_evidence(Arc::new(
                EvidenceRecorder::new(evidence_path_for_socket(socket)),
            )),
            ServerConfig::default(),
            Metrics::default(),
        )
        .map_err(setup)?;
        Ok(Self { server })
    }

    fn socket(&self) -> &Path {
        self.server.socket()
    }

    fn stop(self) -> Result<(), BenchError> {
        self.server
            .stop()
            .map_err(|e| BenchError::Request(format!("the service: {e}")))
    }
}

/// A bare tokio loop: accept, spawn, read one frame, write a GetQuoteEx reply of the quote's size,
/// signing inline or not. No decoding, checks, metrics or timeouts.
struct BareLoop {
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BareLoop {
    fn start(socket: &Path, reply_len: usize, sign: bool) -> Result<Self, BenchError> {
        let listener = std::os::unix::net::UnixListener::bind(socket).map_err(setup)?;
        listener.set_nonblocking(true).map_err(setup)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(setup)?;
        let (key, rng) = signing_key()?;
        let (key, rng) = (Arc::new(key), Arc::new(rng));
        let template: Arc<[u8]> = encode_response(&AesmResponse::GetQuoteEx(GetQuoteExResponse {
            error_code: 0,
            quote: Some(vec![0; reply_len]),
            qe_report_info: None,
        }))
        .into();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::UnixListener::from_std(listener) else {
                    return;
                };
                loop {
                    let mut stream = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                    };
                    let (key, rng, template) =
                        (Arc::clone(&key), Arc::clone(&rng), Arc::clone(&template));
                    tokio::spawn(async move {
                        let Ok(Some(body)) = read_frame_async(&mut stream, 1 << 16).await else {
                            return;
                        };
                        // A real GetQuoteEx reply of the quote's size, the signature at its end.
                        let mut reply = template.to_vec();
                        if sign && let Ok(signature) = key.sign(&*rng, &body[..432.min(body.len())])
                        {
                            let start = reply.len().saturating_sub(64);
                            if let Some(tail) = reply.get_mut(start..) {
                                tail.copy_from_slice(signature.as_ref());
                            }
                        }
                        let _ = write_frame_async(&mut stream, &reply).await;
                    });
                }
            });
        });
        Ok(Self {
            socket: socket.to_owned(),
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for BareLoop {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A fresh P-256 key and the random source its signatures draw on.
fn signing_key() -> Result<(EcdsaKeyPair, SystemRandom), BenchError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| setup("cannot generate a P-256 key"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| setup("cannot load a P-256 key"))?;
    Ok((key, rng))
}

/// Signatures per second of ring's P-256 on this thread over `duration`.
fn raw_signing_rate(duration: Duration) -> Result<f64, BenchError> {
    let (key, rng) = signing_key()?;
    let message = [0x5au8; 432];
    let mut failed = false;
    let rate = rate_of(duration, || {
        failed |= std::hint::black_box(key.sign(&rng, &message)).is_err();
    });
    if failed {
        return Err(BenchError::Request("ring failed to sign".into()));
    }
    Ok(rate)
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

/// `clients` blocking clients (threads) for `duration` after a short warm-up: each connects,
/// writes `frame`, reads the reply and decodes it, again and again.
fn run_clients(
    socket: &Path,
    frame: &Arc<Vec<u8>>,
    clients: usize,
    duration: Duration,
) -> Result<Load, BenchError> {
    let run = |until: Instant| -> Result<Vec<Duration>, BenchError> {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let socket = socket.to_owned();
                let frame = Arc::clone(frame);
                std::thread::spawn(move || -> Result<Vec<Duration>, BenchError> {
                    let mut latencies = Vec::new();
                    while Instant::now() < until {
                        let t = Instant::now();
                        one_request(&socket, &frame)?;
                        latencies.push(t.elapsed());
                    }
                    Ok(latencies)
                })
            })
            .collect();
        let mut all = Vec::new();
        for thread in threads {
            match thread.join() {
                Ok(latencies) => all.extend(latencies?),
                Err(_) => return Err(BenchError::Request("a client thread panicked".into())),
            }
        }
        Ok(all)
    };
    run(Instant::now() + Duration::from_millis(300))?;
    let cpu_before = thread_cpu(SERVICE_THREAD);
    let started = Instant::now();
    let mut latencies = run(started + duration)?;
    let elapsed = started.elapsed();
    let service_cpu = thread_cpu(SERVICE_THREAD).saturating_sub(cpu_before);
    latencies.sort_unstable();
    let pick = |q: f64| {
        let i = ((latencies.len().saturating_sub(1)) as f64 * q) as usize;
        latencies.get(i).copied().unwrap_or_default()
    };
    Ok(Load {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        requests: latencies.len(),
        p50: pick(0.50),
        p99: pick(0.99),
        service_cpu,
    })
}

fn one_request(socket: &Path, frame: &[u8]) -> Result<(), BenchError> {
    let failed = |e: &dyn fmt::Display| BenchError::Request(e.to_string());
    let mut stream = UnixStream::connect(socket).map_err(|e| failed(&e))?;
    write_frame(&mut stream, frame).map_err(|e| failed(&e))?;
    let body = read_frame(&mut stream, 1 << 20)
        .map_err(|e| failed(&e))?
        .ok_or_else(|| failed(&"closed without a reply"))?;
    match decode_response(&body, RequestKind::GetQuoteEx).map_err(|e| failed(&e))? {
        AesmResponse::GetQuoteEx(r) if r.error_code == 0 && r.quote.is_some() => Ok(()),
        other => Err(failed(&format!("GetQuoteEx answered {other:?}"))),
    }
}

/// CPU time (user + system) spent so far by this process's threads named `name`, from
/// `/proc/self/task/*/stat` (zero where /proc is not there).
fn thread_cpu(name: &str) -> Duration {
    // Clock ticks per second of /proc's times: USER_HZ, 100 on every Linux architecture.
    const TICKS_PER_SECOND: u64 = 100;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ... utime stime ...": comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if stat.get(open + 1..close) != Some(name) {
            continue;
        }
        let fields: Vec<&str> = stat
            .get(close + 1..)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // After the comm, field 3 (state) is index 0; utime and stime, fields 14 and 15.
        for index in [11, 12] {
            ticks += fields
                .get(index)
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_millis(ticks * (1000 / TICKS_PER_SECOND))
}

fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_measures_every_point_and_renders_them() {
        let dir = tempfile::Builder::new()
            .prefix("qhb")
            .tempdir_in("/tmp")
            .unwrap();
        let config = BenchConfig {
            round: Duration::from_millis(50),
            rounds: 1,
            clients: vec![1, 3],
        };
        let report = run(dir.path(), &config).unwrap();
        assert_eq!(report.points.len(), 2);
        for point in &report.points {
            assert!(point.service.requests > 0 && point.service.rate > 0.0);
            assert!(point.bare > 0.0 && point.null > 0.0);
            assert!(point.service.p50 <= point.service.p99);
        }
        assert!(report.raw_before > 0.0 && report.in_process > 0.0);
        let text = report.to_string();
        assert!(
            text.contains("x raw signing") && text.contains("service CPU"),
            "{text}"
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.trim_start().starts_with('3'))
                .count(),
            1
        );
        // The service stopped and removed its socket.
        assert!(!dir.path().join("aesm.socket").exists());
    }

    #[test]
    fn zero_rounds_or_clients_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for config in [
            BenchConfig {
                rounds: 0,
                ..BenchConfig::default()
            },
            BenchConfig {
                clients: vec![1, 0],
                ..BenchConfig::default()
            },
            BenchConfig {
                clients: Vec::new(),
                ..BenchConfig::default()
            },
        ] {
            assert!(matches!(
                run(dir.path(), &config),
                Err(BenchError::Setup(_))
            ));
        }
    }

    #[test]
    fn this_thread_cpu_time_is_read_from_proc() {
        let name = "qhb-cpu-probe";
        let spent = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let start = Instant::now();
                let mut x = 0u64;
                while start.elapsed() < Duration::from_millis(300) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
                thread_cpu(name)
            })
            .unwrap()
            .join()
            .unwrap();
        // A thread that spun for 300 ms has used some CPU; the exact amount depends on the load.
        assert!(spent > Duration::ZERO, "{spent:?}");
        assert_eq!(thread_cpu("no-such-thread-x"), Duration::ZERO);
    }
}
