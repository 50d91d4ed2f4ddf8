//! `confcom bench pccs`: `confcom pccs` and `confcom verify --pccs` on this machine. A simulated
//! platform's PCCS runs in process on a loopback port; in the same run it measures
//!
//! 1. cached collateral requests/s (`GET …/v4/tcb?fmspc=`) from keep-alive clients, next to the same
//!    clients fetching `/healthz` from the same server (the HTTP floor: what serving costs without
//!    collateral);
//! 2. the same requests against a second server over the same source with the access log on (as
//!    `confcom pccs` runs by default; the log goes where the process's logs go, so run with
//!    `2>/dev/null` or `2>file` to measure formatting and writing rather than a terminal);
//! 3. quotes/s verified with the collateral fetched for each quote (four requests), against quotes/s
//!    verified with the same collateral read once from local files.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dcap_verify::{Collateral, Policy, TrustAnchor, Verifier};
use pccs::client::PccsClient;
use pccs::{CaType, SimSource};
use sgx_sim::{CollateralOptions, EnclaveIdentity, InitOptions, SimPlatform};

use super::verify::to_collateral;

/// What to measure.
pub struct Config {
    /// Length of each measurement.
    pub round: Duration,
    /// Concurrent HTTP clients of the request-rate phase.
    pub clients: usize,
}

/// Requests/s of `clients` threads, each with its own keep-alive connection, GETting `url`.
fn request_rate(url: &str, clients: usize, round: Duration) -> Result<f64> {
    let done = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                let agent = ureq::Agent::new_with_defaults();
                let mut n = 0;
                while start.elapsed() < round {
                    let ok = agent
                        .get(url)
                        .call()
                        .ok()
                        .and_then(|mut r| r.body_mut().read_to_vec().ok())
                        .is_some();
                    if !ok {
                        failed.store(true, Ordering::Relaxed);
                        break;
                    }
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    if failed.load(Ordering::Relaxed) {
        anyhow::bail!("a request to {url} failed");
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// Runs `f` for `round` and returns calls/s.
fn rate(round: Duration, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < round {
        f()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Runs the benchmark and returns its report.
pub fn run(config: &Config) -> Result<String> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let platform = Arc::new(
        SimPlatform::open_or_init(dir.path(), &InitOptions::default())
            .context("cannot create the simulated platform")?,
    );
    platform.init_attestation_key()?;
    let report = platform.cpu().create_report(
        &EnclaveIdentity::default(),
        &platform.qe_target_info(),
        &[7; 64],
    );
    let quote = platform.quote(&report)?;
    let local = platform.collateral(&CollateralOptions::default())?;
    let fmspc = platform.pck_extension().fmspc;

    // The PCCS, as `confcom pccs --sim-state` runs it, on a loopback port.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .context("cannot listen on loopback")?;
    let addr = listener.local_addr()?;
    let logged_listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .context("cannot listen on loopback")?;
    let logged_addr = logged_listener.local_addr()?;
    let source: Arc<dyn pccs::CollateralSource> = Arc::new(SimSource::new(Arc::clone(&platform)));
    let mut servers = Vec::new();
    for (listener, access_log) in [(listener, false), (logged_listener, true)] {
        let mut registry = prometheus_client::registry::Registry::default();
        let options = pccs::RouteOptions {
            access_log,
            ..pccs::RouteOptions::default()
        };
        let routes = super::pccs::routes(Arc::clone(&source), options, &mut registry);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = runtime.spawn(ops_http::serve(
            listener,
            Arc::new(registry),
            ops_http::Readiness::new(),
            Some(routes),
            async move {
                let _ = stopped.await;
            },
        ));
        servers.push((stop, server));
    }
    let base = format!("http://{addr}");
    let tcb_path = format!(
        "/sgx/certification/v4/tcb?fmspc={}",
        hex::encode_upper(fmspc)
    );
    let tcb_url = format!("{base}{tcb_path}");
    let logged_url = format!("http://{logged_addr}{tcb_path}");
    // Warm up: the first request issues the collateral.
    request_rate(&tcb_url, 1, Duration::from_millis(50))?;

    let floor = request_rate(&format!("{base}/healthz"), config.clients, config.round)?;
    // Log off, on, off, on: each rate is the mean of its two halves, so that drift over the run
    // weighs on both alike.
    let half = config.round / 2;
    let mut cached = 0.0;
    let mut logged = 0.0;
    for _ in 0..2 {
        cached += request_rate(&tcb_url, config.clients, half)? / 2.0;
        logged += request_rate(&logged_url, config.clients, half)? / 2.0;
    }

    let anchor = TrustAnchor::from_pem_or_der(platform.root_ca_der())?;
    let policy = Policy::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let local_files = dir.path().join("collateral");
    local.write_to(&local_files)?;
    let from_files = Collateral::load(&local_files)?;
    let verifier = Verifier::new(anchor.clone());
    let local_rate = rate(config.round, || {
        verifier.verify(&quote, &from_files, now, &policy)?;
        Ok(())
    })?;
    let client = PccsClient::new(&base, Duration::from_secs(10))?;
    let fetch_verifier = Verifier::new(anchor);
    let fetch_rate = rate(config.round, || {
        let fetched = client.collateral(&fmspc, CaType::Processor)?;
        let collateral = to_collateral(&fetched).map_err(anyhow::Error::msg)?;
        fetch_verifier.verify(&quote, &collateral, now, &policy)?;
        Ok(())
    })?;

    for (stop, server) in servers {
        let _ = stop.send(());
        runtime
            .block_on(server)
            .context("the PCCS task")?
            .context("the PCCS server")?;
    }

    Ok(format!(
        "confcom pccs on 127.0.0.1, simulated platform, {} clients, {:.1} s per phase\n\
         cached TCB info requests/s   {cached:>10.0}   ({:.2}× /healthz on the same server: {floor:.0}/s)\n\
         same, access log on          {logged:>10.0}   ({:.3}× access log off)\n\
         verify with local files      {local_rate:>10.0} quotes/s\n\
         verify with fetch (4 GETs)   {fetch_rate:>10.0} quotes/s   ({:.2}× local files)\n",
        config.clients,
        config.round.as_secs_f64(),
        cached / floor,
        logged / cached,
        fetch_rate / local_rate,
    ))
}
