//! `confcom quote-helper`: the per-node AESM service (`/var/run/aesmd/aesm.socket`) that enclave
//! apps with `SGX_AESM_ADDR=1` get their DCAP quotes from.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use aesm_service::evidence::{EvidenceRecorder, evidence_path_for_socket};
use aesm_service::listen::{self, ABSTRACT_SOCKET_NAME, DEFAULT_SOCKET_PATH};
use aesm_service::sim::{CollateralCache, collateral_routes, sim_dir_for_socket};
use aesm_service::{Dispatcher, Metrics, QuoteBackend, ServerConfig, SimBackend, serve};
use anyhow::{Context, Result};
use sgx_sim::{CollateralOptions, InitOptions, SimPlatform};

/// Device nodes of the SGX drivers (in-kernel since Linux 5.11, the DCAP driver, the legacy
/// out-of-tree driver), relative to the dev root.
pub const SGX_DEVICE_NODES: [&str; 3] = ["sgx_enclave", "sgx/enclave", "isgx"];

/// Which quoting backend serves the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The simulated platform where no SGX device node exists; Intel's DCAP library where one does.
    Auto,
    /// Always the simulated platform (development and CI only: its quotes are not Intel-rooted).
    Sim,
    /// Intel's DCAP quote library (libsgx_dcap_ql.so.1) driving Intel's QE3 and PCE on SGX hardware.
    Dcap,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The AESM socket to serve.
    #[arg(long, env = "CONFCOM_AESM_SOCKET", default_value = DEFAULT_SOCKET_PATH)]
    pub socket: PathBuf,
    /// Quoting backend.
    #[arg(
        long,
        env = "CONFCOM_QUOTE_BACKEND",
        value_enum,
        default_value = "auto"
    )]
    pub backend: Backend,
    /// Where the simulated platform keeps its state (PKI, platform secret, attestation key).
    #[arg(
        long,
        env = "CONFCOM_QUOTE_HELPER_STATE_DIR",
        default_value = "/var/lib/confcom/quote-helper"
    )]
    pub state_dir: PathBuf,
    /// A cluster-wide simulated CA (root, PCK CA, TCB signer; `confcom sim init --ca-dir`, or the
    /// Secret `addon render --enable-pccs --simulate` makes): the platform is created under it, so
    /// that one trust anchor and one PCCS serve every node. Read only.
    #[arg(long, env = "CONFCOM_SIM_CA_DIR", value_name = "DIR")]
    pub sim_ca_dir: Option<PathBuf>,
    /// Address of /metrics, /healthz, /readyz and /collateral/<name>.
    #[arg(long, env = "CONFCOM_METRICS_ADDR", default_value = "0.0.0.0:9102")]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub metrics_limits: super::conn_limits::MetricsLimitsArgs,
    /// Mode of the socket file, in octal (aesmd uses 777: app pods run under arbitrary uids).
    #[arg(long, env = "CONFCOM_AESM_SOCKET_MODE", default_value = "777", value_parser = parse_mode)]
    pub socket_mode: u32,
    /// Also listen on the abstract socket name `sgx_aesm_socket_base` (Gramine tries it first;
    /// reachable only from the host's network namespace).
    #[arg(long, env = "CONFCOM_AESM_ABSTRACT_SOCKET")]
    pub abstract_socket: bool,
    /// AESM connections held at once; at the cap the one that has waited longest for its request
    /// is closed (one being answered never is).
    #[arg(long, env = "CONFCOM_AESM_MAX_CONNECTIONS", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_connections: u32,
    /// Milliseconds a client has, after connecting, to send its whole request.
    #[arg(long, env = "CONFCOM_AESM_REQUEST_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub request_timeout_ms: u64,
    /// Do not publish the platform part of the quotes made (their PCK certificate chain, QE
    /// report and attestation key, without any app's report) as `platform-quote.dat` beside the
    /// socket, where the SGX DRA driver reads the platform's attestation on hardware.
    #[arg(long, env = "CONFCOM_NO_PLATFORM_EVIDENCE")]
    pub no_platform_evidence: bool,
    /// Intel's DCAP quote library for the dcap backend (a bare name goes through the loader's
    /// search path).
    #[arg(long, env = "CONFCOM_DCAP_LIBRARY", default_value = dcap_ql::DEFAULT_LIBRARY)]
    pub dcap_library: PathBuf,
    /// Where the host's /dev is seen (SGX device nodes decide what `--backend auto` does).
    #[arg(long, env = "CONFCOM_DEV_ROOT", default_value = "/dev", hide = true)]
    pub dev_root: PathBuf,
}

fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "`{text}` is not an octal file mode between 0 and 777"
        )),
    }
}

impl Args {
    fn server_config(&self) -> ServerConfig {
        ServerConfig {
            max_connections: self.max_connections as usize,
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms),
            ..ServerConfig::default()
        }
    }
}

/// The SGX device nodes present under `dev_root`.
pub fn sgx_device_nodes(dev_root: &Path) -> Vec<PathBuf> {
    SGX_DEVICE_NODES
        .iter()
        .map(|node| dev_root.join(node))
        .filter(|path| path.exists())
        .collect()
}

/// A state directory made before `--sim-ca-dir` keeps its own root: say so, since its quotes do not
/// verify under the cluster's CA.
fn warn_if_other_root(platform: &SimPlatform, ca_dir: &Path) {
    let ca_root = std::fs::read(ca_dir.join(sgx_sim::ROOT_CERT_DER_FILE)).unwrap_or_default();
    if platform.root_ca_der() != ca_root.as_slice() {
        tracing::warn!(
            state_dir = %platform.state_dir().display(),
            sim_ca_dir = %ca_dir.display(),
            "the simulated platform was created under another root than --sim-ca-dir's: its \
             quotes do not verify under the cluster's CA; remove the state directory to create \
             the platform anew under it"
        );
    }
}

/// Decides which backend serves on this node: [`Backend::Sim`] or [`Backend::Dcap`].
fn check_backend(backend: Backend, dev_root: &Path) -> Result<Backend> {
    let nodes = sgx_device_nodes(dev_root);
    match backend {
        Backend::Sim => {
            tracing::warn!(
                sgx_device_nodes = ?nodes,
                "SIMULATED SGX: --backend sim serves quotes from a simulated platform. They are NOT \
                 rooted in Intel's PKI and prove nothing about this machine. Never use this on a \
                 production node."
            );
            Ok(Backend::Sim)
        }
        Backend::Dcap => Ok(Backend::Dcap),
        Backend::Auto if nodes.is_empty() => {
            tracing::warn!(
                dev_root = %dev_root.display(),
                "no SGX device node found: serving quotes from the SIMULATED SGX platform \
                 (verifiable only against the simulated root)"
            );
            Ok(Backend::Sim)
        }
        Backend::Auto => {
            tracing::info!(
                sgx_device_nodes = ?nodes,
                "SGX device nodes found: quoting with Intel's DCAP library"
            );
            Ok(Backend::Dcap)
        }
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_until(
        args,
        crate::daemon::shutdown_signal(),
        |started| {
            tracing::debug!(
                socket = %started.socket.display(),
                metrics_addr = %started.metrics_addr,
                "ready; stop with SIGTERM or SIGINT"
            );
        },
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// What a running helper exposes to the caller of [`serve_until`] once it listens.
#[derive(Debug, Clone)]
pub struct Started {
    pub socket: PathBuf,
    pub metrics_addr: SocketAddr,
}

/// Sets everything up, serves until `shutdown` completes, then removes the sockets. `on_started`
/// is called once the socket and the metrics endpoint listen.
pub async fn serve_until(
    args: Args,
    shutdown: impl Future<Output = ()>,
    on_started: impl FnOnce(Started),
) -> Result<()> {
    listen::validate_socket_path(&args.socket)?;
    let (backend, sim): (Arc<dyn QuoteBackend>, Option<Arc<SimPlatform>>) =
        match check_backend(args.backend, &args.dev_root)? {
            Backend::Dcap => (
                Arc::new(dcap_ql::DcapBackend::start(
                    &args.dcap_library,
                    dcap_ql::DcapOptions::default(),
                )?),
                None,
            ),
            _ => {
                let init = InitOptions {
                    ca_dir: args.sim_ca_dir.clone(),
                    ..InitOptions::default()
                };
                let platform = Arc::new(
                    SimPlatform::open_or_init(&args.state_dir, &init).with_context(|| {
                        format!(
                            "cannot open the simulated platform in {}",
                            args.state_dir.display()
                        )
                    })?,
                );
                if let Some(ca) = &args.sim_ca_dir {
                    warn_if_other_root(&platform, ca);
                }
                (
                    Arc::new(SimBackend::new(Arc::clone(&platform))),
                    Some(platform),
                )
            }
        };
    let collateral = match &sim {
        Some(platform) => {
            let cache = Arc::new(CollateralCache::new(
                Arc::clone(platform),
                CollateralOptions::default(),
            ));
            cache
                .get()
                .context("cannot issue collateral for the simulated platform")?;
            Some(cache)
        }
        None => None,
    };

    let (std_listener, socket_file) = listen::bind_socket(&args.socket, args.socket_mode)?;
    let mut listeners = vec![
        tokio::net::UnixListener::from_std(std_listener)
            .context("cannot register the AESM socket")?,
    ];
    if args.abstract_socket {
        let abstract_listener = listen::bind_abstract(ABSTRACT_SOCKET_NAME)?;
        listeners.push(
            tokio::net::UnixListener::from_std(abstract_listener)
                .context("cannot register the abstract AESM socket")?,
        );
    }
    let sim_dir = sim_dir_for_socket(&args.socket);
    if let Some(platform) = &sim {
        platform.publish_cpu(&sim_dir).with_context(|| {
            format!("cannot publish the simulated CPU in {}", sim_dir.display())
        })?;
    }

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::new(&mut registry);
    let readiness = ops_http::Readiness::new();
    let ops_listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on --metrics-addr {}", args.metrics_addr))?;
    let metrics_addr = ops_listener.local_addr().unwrap_or(args.metrics_addr);
    let (stop_ops, ops_stopped) = tokio::sync::oneshot::channel::<()>();
    let ops = tokio::spawn(super::conn_limits::serve_ops(
        ops_listener,
        registry,
        "confcom_quote_helper_ops",
        readiness.clone(),
        collateral.map(collateral_routes),
        args.metrics_limits.limits(),
        async move {
            let _ = ops_stopped.await;
        },
    ));

    tracing::info!(
        socket = %args.socket.display(),
        socket_mode = format!("{:o}", args.socket_mode),
        abstract_socket = args.abstract_socket.then_some(ABSTRACT_SOCKET_NAME),
        backend = backend.name(),
        state_dir = sim.as_ref().map(|_| args.state_dir.display().to_string()),
        sim_dir = sim.as_ref().map(|_| sim_dir.display().to_string()),
        metrics_addr = %metrics_addr,
        attestation_key_initialized = sim.as_ref().map(|p| p.attestation_key_initialized()),
        "quote helper serving"
    );
    // Ready once the socket answers a request through its path, as apps reach it.
    let watch = tokio::spawn(aesm_service::readiness::watch(
        args.socket.clone(),
        readiness.clone(),
        aesm_service::readiness::DEFAULT_RECHECK,
    ));
    on_started(Started {
        socket: args.socket.clone(),
        metrics_addr,
    });

    let mut dispatcher = Dispatcher::new(backend);
    if !args.no_platform_evidence {
        dispatcher = dispatcher.with_evidence(Arc::new(EvidenceRecorder::new(
            evidence_path_for_socket(&args.socket),
        )));
    }
    let result = serve(
        listeners,
        dispatcher,
        args.server_config(),
        metrics,
        shutdown,
    )
    .await;
    watch.abort();
    readiness.set_ready(false);
    drop(socket_file);
    let _ = stop_ops.send(());
    match ops.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "metrics endpoint failed"),
        Err(err) => tracing::warn!(error = %err, "metrics endpoint task failed"),
    }
    tracing::info!(socket = %args.socket.display(), "quote helper stopped");
    result.context("the AESM server failed")
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use aesm_service::listen::DEFAULT_SOCKET_MODE;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        crate::args::parse(extra)
    }

    #[test]
    fn defaults_are_those_of_an_aks_node() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.socket, PathBuf::from("/var/run/aesmd/aesm.socket"));
        assert_eq!(args.backend, Backend::Auto);
        assert_eq!(
            args.state_dir,
            PathBuf::from("/var/lib/confcom/quote-helper")
        );
        assert_eq!(args.metrics_addr, "0.0.0.0:9102".parse().unwrap());
        assert_eq!(args.socket_mode, DEFAULT_SOCKET_MODE);
        assert!(!args.abstract_socket);
        assert_eq!(args.dev_root, PathBuf::from("/dev"));
        assert_eq!(args.dcap_library, PathBuf::from("libsgx_dcap_ql.so.1"));
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse(&["--socket-mode", "660"]).unwrap().socket_mode, 0o660);
        assert_eq!(
            parse(&["--socket-mode", "0o700"]).unwrap().socket_mode,
            0o700
        );
        assert!(parse(&["--socket-mode", "778"]).is_err());
        assert!(parse(&["--socket-mode", "1777"]).is_err());
        assert_eq!(
            parse(&["--backend", "dcap"]).unwrap().backend,
            Backend::Dcap
        );
        assert!(parse(&["--backend", "hardware"]).is_err());
    }

    #[test]
    fn auto_picks_dcap_on_a_node_with_sgx_device_nodes() {
        let dev = tempfile::tempdir().unwrap();
        assert_eq!(
            check_backend(Backend::Auto, dev.path()).unwrap(),
            Backend::Sim
        );
        for node in SGX_DEVICE_NODES {
            let dev = tempfile::tempdir().unwrap();
            let path = dev.path().join(node);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"").unwrap();
            assert_eq!(
                check_backend(Backend::Auto, dev.path()).unwrap(),
                Backend::Dcap
            );
            // Forcing simulation is allowed (with a warning).
            assert_eq!(
                check_backend(Backend::Sim, dev.path()).unwrap(),
                Backend::Sim
            );
        }
    }

    fn http_get(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        (head, raw[split + 4..].to_vec())
    }

    #[test]
    fn serves_quotes_metrics_and_collateral_then_cleans_up() {
        let dir = tempfile::Builder::new()
            .prefix("qh")
            .tempdir_in("/tmp")
            .unwrap();
        let socket = dir.path().join("run/aesmd/aesm.socket");
        let dev = dir.path().join("dev");
        std::fs::create_dir(&dev).unwrap();
        // A stale socket from a crashed helper is replaced.
        std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        let args = parse(&[
            "--socket",
            socket.to_str().unwrap(),
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
            "--metrics-addr",
            "127.0.0.1:0",
            "--dev-root",
            dev.to_str().unwrap(),
        ])
        .unwrap();

        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve_until(
                args,
                async move {
                    let _ = stop_rx.await;
                },
                move |started| started_tx.send(started).unwrap(),
            ))
        });
        let started = started_rx.recv().unwrap();

        // A second helper on the same socket is refused while this one lives.
        let second = parse(&[
            "--socket",
            socket.to_str().unwrap(),
            "--state-dir",
            dir.path().join("state2").to_str().unwrap(),
            "--metrics-addr",
            "127.0.0.1:0",
            "--dev-root",
            dev.to_str().unwrap(),
        ])
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = runtime
            .block_on(serve_until(second, async {}, |_| {}))
            .unwrap_err();
        assert!(format!("{err:#}").contains("already listening"), "{err:#}");

        // An app gets a quote through the socket, with the published CPU material.
        let cpu = sgx_sim::SimCpu::load(&sim_dir_for_socket(&socket)).unwrap();
        let out = aesm_service::client_flow::quote_via_socket(
            &quote_client::AesmClient::new(&started.socket),
            &cpu,
            &sgx_sim::EnclaveIdentity::default(),
            &[3; 64],
        )
        .unwrap();
        sgx_types::quote::Quote::parse(&out.quote).unwrap();

        let (head, body) = http_get(started.metrics_addr, "/metrics");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.contains(
                "confcom_quote_helper_requests_total{type=\"GetQuoteEx\",result=\"success\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("confcom_quote_helper_requests_by_uid_total{uid="));
        let (head, root) = http_get(started.metrics_addr, "/collateral/root-ca.der");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let state = SimPlatform::open(&dir.path().join("state")).unwrap();
        assert_eq!(root, state.root_ca_der());
        let (head, _) = http_get(started.metrics_addr, "/collateral/collateral.json");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        // Ready once the socket answered the helper's own check (a request through the path).
        let mut ready = false;
        for _ in 0..600 {
            ready = http_get(started.metrics_addr, "/readyz")
                .0
                .starts_with("HTTP/1.1 200");
            if ready {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(ready, "/readyz never turned ready");

        stop_tx.send(()).unwrap();
        server.join().unwrap().unwrap();
        assert!(!socket.exists(), "the socket is removed on shutdown");
    }

    #[test]
    fn a_missing_dcap_library_is_a_startup_error_naming_it() {
        let dir = tempfile::Builder::new()
            .prefix("qh")
            .tempdir_in("/tmp")
            .unwrap();
        let library = dir.path().join("libsgx_dcap_ql.so.1");
        let args = parse(&[
            "--socket",
            dir.path().join("aesm.socket").to_str().unwrap(),
            "--backend",
            "dcap",
            "--dcap-library",
            library.to_str().unwrap(),
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = runtime
            .block_on(serve_until(args, async {}, |_| {}))
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains(library.to_str().unwrap()), "{text}");
        assert!(text.contains("--dcap-library"), "{text}");
        assert!(!dir.path().join("aesm.socket").exists());
    }

    #[test]
    fn long_socket_paths_are_refused_up_front() {
        let long = format!("/tmp/{}/aesm.socket", "d".repeat(100));
        let args = parse(&["--socket", &long, "--backend", "sim"]).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = runtime
            .block_on(serve_until(args, async {}, |_| {}))
            .unwrap_err();
        assert!(format!("{err:#}").contains("at most 107"), "{err:#}");
    }
}
