//! `confcom bench dra-driver`: the SGX DRA driver as operators run it, from this binary. It starts
//! `confcom dra-driver --simulate` (64 MiB of EPC) next to a simulated quote helper and a PCCS over
//! the same simulated platform (so that the driver attests, as on a simulated node), against an
//! in-process API-server stand-in ([`api`]), and in the same run `confcom device-plugin
//! --simulate` as the baseline. It measures
//!
//! 1. idle resident memory (`VmRSS`) of both, once the driver is ready (`/readyz`) with its slice
//!    published with the attestation attributes and both have idled for `--idle-secs`: the
//!    driver's against the device plugin's (goal: under 15 MiB for the driver);
//! 2. NodePrepareResources round trips over the driver's real `dra.sock`, as kubelet makes them
//!    (one HTTP/2 connection), each for a new claim (an API read, a CDI spec and the checkpoint
//!    written), with 1 and with 64 calls in flight: p50/p99, against an empty call (the gRPC
//!    round trip alone) measured in the same run;
//! 3. the driver's resident memory after that load (every claim is unprepared first).
//!
//! Resident memory is split into anonymous pages (heap, stacks: what the process itself costs)
//! and file-backed ones (the touched pages of this one binary's code, which every confcom
//! process on a node shares and the kernel can reclaim).

#[allow(dead_code)] // Also the end-to-end test's stand-in, which uses more of it.
pub mod api;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dra_driver::kubelet::proto::pluginregistration::registration_client::RegistrationClient;
use dra_driver::kubelet::proto::pluginregistration::{InfoRequest, RegistrationStatus};
use dra_driver::kubelet::proto::v1;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use api::ApiStandIn;

/// What to measure.
pub struct Config {
    /// How long both daemons idle before their memory is read.
    pub idle: Duration,
    /// NodePrepareResources calls per phase.
    pub calls: usize,
}

const DRIVER: &str = dra_driver::names::DEFAULT_DRIVER_NAME;
const NODE: &str = "bench-node";
const NODE_UID: &str = "5e3b0c1d-0000-4000-8000-00000000b001";
const IN_FLIGHT: usize = 64;
/// Against hangs only.
const DEADLINE: Duration = Duration::from_secs(120);

/// Resident memory in KiB: all of it (`VmRSS`), anonymous (heap, stacks) and file-backed (mostly
/// the pages of this binary's code that the process has touched, shared with every process of
/// the binary on the node).
#[derive(Clone, Copy)]
struct Rss {
    total: u64,
    anon: u64,
    file: u64,
}

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>7.2} MiB   (anonymous {:>5.2} MiB, file-backed {:>5.2} MiB)",
            mib(self.total),
            mib(self.anon),
            mib(self.file)
        )
    }
}

type DraClient = v1::dra_plugin_client::DraPluginClient<tonic::transport::Channel>;

/// A child process, killed on drop; its stderr in a file for error messages.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn spawn(name: &'static str, dir: &Path, args: &[&str]) -> Result<Self> {
        let exe = std::env::current_exe().context("cannot find this binary")?;
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(exe)
            .args(args)
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .env_remove("NODE_NAME")
            .env("CONFCOM_LOG_FORMAT", "json")
            .env("KUBECONFIG", dir.join("kubeconfig"))
            .env("HOME", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start confcom {name}"))?;
        Ok(Self { name, child, log })
    }

    /// Fails with the end of its log if it exited.
    fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            bail!(
                "confcom {} exited ({status}); its log ends:\n{}",
                self.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    }

    /// Resident memory from `/proc/<pid>/status`.
    fn rss(&self) -> Result<Rss> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("no {name} in {path}"))
        };
        Ok(Rss {
            total: field("VmRSS")?,
            anon: field("RssAnon")?,
            file: field("RssFile")?,
        })
    }

    /// SIGTERM; the exit status.
    async fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("cannot run kill")?;
        if !sent.success() {
            bail!("kill -TERM {} failed", self.child.id());
        }
        let started = Instant::now();
        while started.elapsed() < DEADLINE {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("confcom {} did not exit after SIGTERM", self.name)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 20 ms until it gives something, failing after [`DEADLINE`] or when one of
/// `daemons` exits.
async fn wait_for<T, F: Future<Output = Option<T>>>(
    what: &str,
    daemons: &mut [&mut Daemon],
    mut check: impl FnMut() -> F,
) -> Result<T> {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return Ok(found);
        }
        for daemon in daemons.iter_mut() {
            daemon.check_running()?;
        }
        if started.elapsed() > DEADLINE {
            bail!("{what}: not after {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The status code of `GET http://127.0.0.1:<port><path>`.
async fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let head = String::from_utf8_lossy(&answer);
    head.split_whitespace().nth(1)?.parse().ok()
}

fn claim_uid(i: usize) -> String {
    format!("b0000000-0000-4000-8000-{i:012x}")
}

/// Claim `i`, allocated on the node from the quote-helper class: 4 KiB of the shared `epc`.
fn claim(i: usize) -> Value {
    let driver = DRIVER;
    json!({
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": format!("c{i}"), "namespace": "bench", "uid": claim_uid(i),
                     "resourceVersion": "1", "creationTimestamp": "2026-12-06T20:00:00Z"},
        "spec": {"devices": {"requests": [{"name": "enclave", "exactly": {
            "deviceClassName": dra_driver::names::class::QUOTE_HELPER,
            "allocationMode": "ExactCount", "count": 1,
            "capacity": {"requests": {"epc": "4Ki"}}}}]}},
        "status": {"allocation": {
            "devices": {
                "results": [{"request": "enclave", "driver": driver, "pool": NODE, "device": "epc",
                             "shareID": format!("5b0f9e2a-1111-4222-8333-{i:012x}"),
                             "consumedCapacity": {"epc": "4Ki"}}],
                "config": [{"source": "FromClass", "requests": ["enclave"], "opaque": {
                    "driver": driver, "parameters": {
                        "apiVersion": dra_driver::names::config::API_VERSION,
                        "kind": "SgxConfig", "quoteHelper": true}}}],
            },
            "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [NODE]}]}]},
        }},
    })
}

fn v1_claim(i: usize) -> v1::Claim {
    v1::Claim {
        namespace: "bench".into(),
        uid: claim_uid(i),
        name: format!("c{i}"),
    }
}

async fn prepare(client: &mut DraClient, claims: Vec<v1::Claim>) -> Result<Duration> {
    let uids: Vec<String> = claims.iter().map(|c| c.uid.clone()).collect();
    let started = Instant::now();
    let answer = client
        .node_prepare_resources(v1::NodePrepareResourcesRequest { claims })
        .await
        .context("NodePrepareResources")?
        .into_inner();
    let elapsed = started.elapsed();
    for uid in uids {
        match answer.claims.get(&uid) {
            Some(c) if c.error.is_empty() && !c.devices.is_empty() => {}
            other => bail!("claim {uid} not prepared: {other:?}"),
        }
    }
    Ok(elapsed)
}

async fn unprepare(client: &mut DraClient, range: std::ops::Range<usize>) -> Result<()> {
    // Kubelet sends a pod's claims; the driver takes at most 1024 per call.
    let all: Vec<usize> = range.collect();
    for chunk in all.chunks(256) {
        let answer = client
            .node_unprepare_resources(v1::NodeUnprepareResourcesRequest {
                claims: chunk.iter().copied().map(v1_claim).collect(),
            })
            .await
            .context("NodeUnprepareResources")?
            .into_inner();
        if let Some((uid, c)) = answer.claims.iter().find(|(_, c)| !c.error.is_empty()) {
            bail!("claim {uid} not unprepared: {}", c.error);
        }
    }
    Ok(())
}

/// `calls` prepares of new claims from `first` on, `in_flight` at a time over one connection.
async fn prepare_load(
    client: &DraClient,
    first: usize,
    calls: usize,
    in_flight: usize,
) -> Result<Vec<Duration>> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(first));
    let end = first + calls;
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (mut client, next) = (client.clone(), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= end {
                    return Ok::<_, anyhow::Error>(samples);
                }
                samples.push(prepare(&mut client, vec![v1_claim(i)]).await?);
            }
        }));
    }
    let mut samples = Vec::with_capacity(calls);
    for task in tasks {
        samples.extend(task.await.context("a load task failed")??);
    }
    Ok(samples)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len().saturating_sub(1)) as f64 * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

/// One row: p50/p99 of `samples`, and the p50 against `floor`'s.
fn row(
    out: &mut String,
    name: &str,
    mut samples: Vec<Duration>,
    floor: Option<Duration>,
) -> Duration {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    let ratio = floor
        .map(|f| {
            format!(
                "   ({:.1}× the empty call's p50)",
                p50.as_secs_f64() / f.as_secs_f64()
            )
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {name:<26} n={:<5} p50 {:>8.3} ms   p99 {:>8.3} ms{ratio}",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
    );
    p50
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Runs the benchmark and returns its report.
pub fn run(config: &Config) -> Result<String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Short, so that the socket paths fit in sun_path.
    let dir = tempfile::Builder::new()
        .prefix("cbd")
        .tempdir_in("/tmp")
        .context("cannot create a temporary directory")?;
    runtime.block_on(measure(dir.path(), config))
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

async fn measure(dir: &Path, config: &Config) -> Result<String> {
    let api = ApiStandIn::start(NODE, NODE_UID, DRIVER)
        .await
        .context("cannot start the API-server stand-in")?;
    api.kubeconfig(dir).context("cannot write the kubeconfig")?;
    for i in 0..2 * config.calls {
        api.put_claim(claim(i));
    }

    // The node's simulated platform, its quote helper and a PCCS over it.
    let state = dir.join("state");
    let init = Command::new(std::env::current_exe()?)
        .args(["sim", "init", "--state-dir", path_str(&state)?])
        .stdout(Stdio::null())
        .output()
        .context("cannot run confcom sim init")?;
    if !init.status.success() {
        bail!(
            "confcom sim init failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
    }
    let socket = dir.join("aesmd/aesm.socket");
    let mut helper = Daemon::spawn(
        "quote-helper",
        dir,
        &[
            "quote-helper",
            "--backend",
            "sim",
            "--metrics-addr",
            "127.0.0.1:0",
            "--socket",
            path_str(&socket)?,
            "--state-dir",
            path_str(&state)?,
        ],
    )?;
    let sim = aesm_service::sim::sim_dir_for_socket(&socket);
    wait_for(
        "the quote helper's CPU material",
        &mut [&mut helper],
        || {
            let ready = socket.exists() && sim.join(sgx_sim::CPU_FILE).exists();
            async move { ready.then_some(()) }
        },
    )
    .await?;
    let pccs_port = free_port()?;
    let pccs_listen = format!("127.0.0.1:{pccs_port}");
    let mut pccs = Daemon::spawn(
        "pccs",
        dir,
        &[
            "pccs",
            "--listen",
            &pccs_listen,
            "--sim-state",
            path_str(&state)?,
        ],
    )?;
    wait_for("the PCCS", &mut [&mut pccs], || async move {
        (http_status(pccs_port, "/healthz").await == Some(200)).then_some(())
    })
    .await?;

    let driver_port = free_port()?;
    let driver_metrics = format!("127.0.0.1:{driver_port}");
    let pccs_url = format!("http://{pccs_listen}");
    let (reg, plugins, cdi) = (dir.join("reg"), dir.join("plugins"), dir.join("cdi"));
    let started = Instant::now();
    let mut driver = Daemon::spawn(
        "dra-driver",
        dir,
        &[
            "dra-driver",
            "--simulate",
            "--epc-mib",
            "64",
            "--node-name",
            NODE,
            "--registry-dir",
            path_str(&reg)?,
            "--plugins-dir",
            path_str(&plugins)?,
            "--cdi-root",
            path_str(&cdi)?,
            "--aesm-socket",
            path_str(&socket)?,
            "--pccs-url",
            &pccs_url,
            "--metrics-addr",
            &driver_metrics,
        ],
    )?;
    let plugin_port = free_port()?;
    let plugin_metrics = format!("127.0.0.1:{plugin_port}");
    let plugin_dir = dir.join("dp");
    std::fs::create_dir_all(&plugin_dir)?;
    let mut plugin = Daemon::spawn(
        "device-plugin",
        dir,
        &[
            "device-plugin",
            "--simulate",
            "--epc-mib",
            "64",
            "--plugin-dir",
            path_str(&plugin_dir)?,
            "--metrics-addr",
            &plugin_metrics,
        ],
    )?;

    wait_for("the driver's /readyz", &mut [&mut driver], || async move {
        (http_status(driver_port, "/readyz").await == Some(200)).then_some(())
    })
    .await?;
    wait_for("the slice with the TCB status", &mut [&mut driver], || {
        let published = api
            .state()
            .slices
            .values()
            .any(|s| s["spec"]["devices"][0]["attributes"]["tcbStatus"]["string"].is_string());
        async move { published.then_some(()) }
    })
    .await?;
    let to_ready = started.elapsed();
    wait_for(
        "the device plugin's /healthz",
        &mut [&mut plugin],
        || async move { (http_status(plugin_port, "/healthz").await == Some(200)).then_some(()) },
    )
    .await?;
    tokio::time::sleep(config.idle).await;
    driver.check_running()?;
    plugin.check_running()?;
    let (driver_idle, plugin_idle) = (driver.rss()?, plugin.rss()?);

    // Kubelet's side: registration, then the DRA service over one connection.
    let registration_socket = reg.join(format!("{DRIVER}-reg.sock"));
    let channel =
        device_plugin::transport::unix_channel(registration_socket, Duration::from_secs(10))
            .await?;
    let mut registration = RegistrationClient::new(channel);
    let info = registration.get_info(InfoRequest {}).await?.into_inner();
    registration
        .notify_registration_status(RegistrationStatus {
            plugin_registered: true,
            error: String::new(),
        })
        .await?;
    let channel = device_plugin::transport::unix_channel(
        PathBuf::from(&info.endpoint),
        Duration::from_secs(10),
    )
    .await?;
    let mut client = DraClient::new(channel);
    // Warm up (the connection to the API server).
    prepare(&mut client, vec![v1_claim(0)]).await?;
    unprepare(&mut client, 0..1).await?;

    let mut empty = Vec::with_capacity(config.calls);
    for _ in 0..config.calls {
        let started = Instant::now();
        client
            .node_prepare_resources(v1::NodePrepareResourcesRequest { claims: vec![] })
            .await?;
        empty.push(started.elapsed());
    }
    let sequential = prepare_load(&client, 1, config.calls, 1).await?;
    unprepare(&mut client, 1..config.calls + 1).await?;
    let concurrent = prepare_load(&client, config.calls + 1, config.calls - 1, IN_FLIGHT).await?;
    unprepare(&mut client, config.calls + 1..2 * config.calls).await?;
    let driver_loaded = driver.rss()?;
    drop((client, registration));
    let exit = driver.terminate().await?;
    let _ = plugin.terminate().await;
    drop((helper, pccs));
    if !exit.success() {
        bail!("confcom dra-driver exited with {exit} after SIGTERM");
    }
    let errors = api.state().errors.clone();
    if !errors.is_empty() {
        bail!("the API-server stand-in refused requests: {errors:?}");
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "confcom dra-driver --simulate (64 MiB EPC, attested through a simulated quote helper and PCCS) \
         against an in-process API server; ready with its slice in {:.2} s",
        to_ready.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "idle resident memory (VmRSS after {:.1} s idle)",
        config.idle.as_secs_f64()
    );
    let goal = if mib(driver_idle.total) < 15.0 {
        "met"
    } else {
        "NOT met"
    };
    let _ = writeln!(out, "  dra-driver                 {driver_idle}");
    let _ = writeln!(
        out,
        "  device-plugin --simulate   {plugin_idle}   (baseline)"
    );
    let _ = writeln!(
        out,
        "  ratio                      {:>7.2}×       (anonymous {:.2}×; goal for the driver: VmRSS under 15 MiB: {goal})",
        driver_idle.total as f64 / plugin_idle.total as f64,
        driver_idle.anon as f64 / plugin_idle.anon as f64,
    );
    let _ = writeln!(out, "  dra-driver after the load  {driver_loaded}");
    let _ = writeln!(
        out,
        "NodePrepareResources over dra.sock, one connection, a new claim per call (API read, CDI spec, checkpoint)"
    );
    let floor = row(&mut out, "empty call (gRPC floor)", empty, None);
    row(&mut out, "1 in flight", sequential, Some(floor));
    row(
        &mut out,
        &format!("{IN_FLIGHT} in flight"),
        concurrent,
        Some(floor),
    );
    Ok(out)
}
