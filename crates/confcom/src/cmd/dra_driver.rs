//! `confcom dra-driver`: the SGX DRA driver DaemonSet. It publishes the node's EPC as shared
//! devices with consumable capacity in a `resource.k8s.io/v1` ResourceSlice (with attributes
//! from the node's own attestation where it can take a quote), and serves kubelet's plugin
//! registration and DRA services, writing a CDI spec per prepared claim.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use device_plugin::platform::{Epc, HostPlatform};
use dra_driver::attest::child::{ChildCommand, Runner};
use dra_driver::attest::{self, AttestConfig, Attestation, CollateralConfig};
use dra_driver::inventory::Inventory;
use dra_driver::kubelet::{self, KubeClaimReader};
use dra_driver::{devices, names, publish};
use tokio::sync::watch;

use crate::logging::LogFormat;

/// EPC of a simulated node when `--epc-mib` does not say (as the device plugin's `--simulate`).
const SIMULATED_EPC_MIB: u64 = 8192;

/// The hidden subcommand the driver runs each attestation in ([`attest_once`]).
pub const ATTEST_ONCE_COMMAND: &str = "dra-driver-attest-once";

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Credentials: a kubeconfig (KUBECONFIG, ~/.kube/config) if present, else the pod's service account, \
which needs get on nodes and resourceclaims and write access to resourceslices (confcom addon render \
--dra renders exactly that). Kubelet finds the driver through <registry-dir>/<driver>-reg.sock; the \
DRA service listens on <plugins-dir>/<driver>/dra.sock, next to the checkpoint of prepared claims. \
Shared EPC (one device, many claims) needs the DRAConsumableCapacity feature gate, on by default \
from Kubernetes 1.36; where the API server drops the sharing fields the driver says so in its log.")]
pub struct Args {
    /// This node's name (the DaemonSet sets NODE_NAME from spec.nodeName): the slice's node and
    /// pool.
    #[arg(long, env = "NODE_NAME", value_name = "NODE")]
    pub node_name: String,
    /// The driver name: ResourceSlice spec.driver, the name kubelet knows the plugin by, and the
    /// domain of the device attributes.
    #[arg(long, env = "CONFCOM_DRA_DRIVER_NAME", default_value = names::DEFAULT_DRIVER_NAME)]
    pub driver_name: String,
    /// kubelet's plugin registration directory.
    #[arg(long, env = "CONFCOM_DRA_REGISTRY_DIR", default_value = names::paths::KUBELET_REGISTRY_DIR)]
    pub registry_dir: PathBuf,
    /// kubelet's plugins directory: the driver serves <dir>/<driver>/dra.sock and keeps its
    /// checkpoint there.
    #[arg(long, env = "CONFCOM_DRA_PLUGINS_DIR", default_value = names::paths::KUBELET_PLUGINS_DIR)]
    pub plugins_dir: PathBuf,
    /// Where the container runtime reads dynamic CDI specs.
    #[arg(long, env = "CDI_ROOT", default_value = names::cdi::DEFAULT_ROOT)]
    pub cdi_root: PathBuf,
    /// Where the host's /dev is seen (SGX device nodes).
    #[arg(long, env = "CONFCOM_DEV_ROOT", default_value = "/dev")]
    pub dev_root: PathBuf,
    /// Where the host's /sys is seen (per-NUMA-node EPC sizes).
    #[arg(long, env = "CONFCOM_SYSFS_ROOT", default_value = "/sys")]
    pub sysfs_root: PathBuf,
    /// EPC size in MiB, overriding discovery (one device for the whole EPC).
    #[arg(long, env = "CONFCOM_EPC_MIB", value_parser = clap::value_parser!(u64).range(1..))]
    pub epc_mib: Option<u64>,
    /// Publish a simulated EPC on a node without SGX (development, CI, demos): containers get no
    /// device node. EPC is --epc-mib, else 8192 MiB.
    #[arg(long, env = "CONFCOM_SIMULATE")]
    pub simulate: bool,
    /// The node's quote helper, for the attestation attributes: the driver's own quote on a
    /// simulated node, the platform evidence the helper publishes beside it on hardware.
    #[arg(
        long,
        env = "CONFCOM_AESM_SOCKET",
        default_value = "/var/run/aesmd/aesm.socket"
    )]
    pub aesm_socket: PathBuf,
    /// The platform evidence the quote helper publishes (default: platform-quote.dat beside
    /// --aesm-socket).
    #[arg(long, env = "CONFCOM_PLATFORM_EVIDENCE", value_name = "FILE")]
    pub platform_evidence: Option<PathBuf>,
    /// Collateral for the TCB status attribute from this PCCS (the in-cluster one, or Intel's
    /// PCS at https://api.trustedservices.intel.com).
    #[arg(long, env = "CONFCOM_PCCS_URL", conflicts_with = "collateral")]
    pub pccs_url: Option<String>,
    /// PEM CA certificates trusted for --pccs-url besides Mozilla's roots and the system's store.
    #[arg(long = "pccs-ca-file", value_name = "FILE")]
    pub pccs_ca_files: Vec<PathBuf>,
    /// Collateral for the TCB status attribute from a file or directory (as confcom verify
    /// --collateral reads it).
    #[arg(long, env = "CONFCOM_COLLATERAL")]
    pub collateral: Option<PathBuf>,
    /// The root certificate (PEM or DER) the quote's PCK chain and the collateral must lead to.
    /// Default: Intel's SGX Root CA; with --simulate, the root the simulated quote's own chain
    /// ends in.
    #[arg(long, env = "CONFCOM_ROOT_CA", value_name = "FILE")]
    pub root: Option<PathBuf>,
    /// Period in seconds of the platform re-scan (EPC size, device nodes) and of the sockets'
    /// fallback check.
    #[arg(long, env = "CONFCOM_RECHECK_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub recheck_secs: u64,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "CONFCOM_METRICS_ADDR", default_value = "0.0.0.0:9104")]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub metrics_limits: super::conn_limits::MetricsLimitsArgs,
}

impl Args {
    fn kubelet_config(&self) -> kubelet::Config {
        let mut config = kubelet::Config::new(&self.node_name);
        config.driver_name.clone_from(&self.driver_name);
        config.registry_dir.clone_from(&self.registry_dir);
        config.plugins_dir.clone_from(&self.plugins_dir);
        config.cdi_root.clone_from(&self.cdi_root);
        config.recheck_interval = Duration::from_secs(self.recheck_secs);
        config
    }

    fn attest_config(&self) -> Result<AttestConfig> {
        let collateral = match (&self.pccs_url, &self.collateral) {
            (Some(url), _) => CollateralConfig::Pccs {
                url: url.clone(),
                ca_files: self.pccs_ca_files.clone(),
                timeout: Duration::from_secs(30),
            },
            (None, Some(path)) => CollateralConfig::Dir(path.clone()),
            (None, None) => CollateralConfig::None,
        };
        let mut config = AttestConfig::new(&self.aesm_socket, collateral);
        config.evidence.clone_from(&self.platform_evidence);
        if let Some(path) = &self.root {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read --root {}", path.display()))?;
            let anchor = dcap_verify::TrustAnchor::from_pem_or_der(&bytes)
                .with_context(|| format!("--root {}", path.display()))?;
            config.root = Some(anchor);
        } else if self.simulate {
            config.root_from_quote = true;
        }
        Ok(config)
    }

    /// What the node has now.
    fn scan(&self, platform: &HostPlatform) -> Result<Inventory> {
        if self.simulate {
            let mib = self.epc_mib.unwrap_or(SIMULATED_EPC_MIB);
            return devices::simulated(mib.saturating_mul(1024 * 1024))
                .context("cannot simulate the EPC");
        }
        let mut inventory = devices::discover(platform, &devices::host_cpu())
            .context("cannot discover the node's SGX platform")?;
        if let Some(mib) = self.epc_mib {
            inventory.devices = devices::epc_devices(&Epc::configured(mib));
        }
        Ok(inventory)
    }
}

pub fn run(args: Args, log_format: LogFormat) -> Result<ExitCode> {
    if args.node_name.is_empty() {
        anyhow::bail!(
            "--node-name (or NODE_NAME) is empty: the driver publishes its node's devices"
        );
    }
    kubelet::validate_driver_name(&args.driver_name).context("invalid --driver-name")?;
    let mut attest_config = args.attest_config()?;
    attest_config.runner = attest_runner(log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(args, attest_config));
    // An attestation in progress (a child process is killed; in process, the fallback, it runs
    // on the blocking pool) may wait out the quote helper's and the PCCS's timeouts; the driver
    // does not wait for it (the sockets are gone already).
    runtime.shutdown_timeout(Duration::from_secs(2));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Each attestation in a child process of this very binary ([`ATTEST_ONCE_COMMAND`]), logging as
/// the driver does, so that the long-running driver never loads the quote, collateral and
/// verification code nor keeps the memory they touch; in process when the binary is not found.
fn attest_runner(log_format: LogFormat) -> Runner {
    let args = vec![
        "--log-format".into(),
        log_format.name().into(),
        ATTEST_ONCE_COMMAND.into(),
    ];
    match ChildCommand::this_binary(args) {
        Ok(command) => Runner::Child(command),
        Err(err) => {
            tracing::warn!(error = %err, "cannot find the driver's own binary: attesting in process");
            Runner::InProcess
        }
    }
}

/// `confcom dra-driver-attest-once`: one attestation with the settings on stdin, its result on
/// stdout (exit 0 whatever the result; an error only for a refused request or a failed write).
pub fn attest_once() -> Result<ExitCode> {
    attest::child::answer(
        std::io::stdin().lock(),
        std::io::stdout().lock(),
        pccs::upstream::now,
    )
    .context("the driver's attestation process")?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: Args, attest_config: AttestConfig) -> Result<()> {
    let platform = HostPlatform::new(&args.dev_root, &args.sysfs_root);
    let inventory = args.scan(&platform)?;
    if inventory.devices.is_empty() {
        tracing::warn!(
            dev_root = %args.dev_root.display(),
            sysfs_root = %args.sysfs_root.display(),
            "no EPC found: the node's ResourceSlice has no device (is SGX enabled in the BIOS?)"
        );
    }
    let client = publish::client()
        .await
        .context("no Kubernetes credentials (kubeconfig or service account)")?;
    let publisher = publish::Publisher::new(client.clone(), &args.driver_name, &args.node_name)
        .context("invalid --driver-name")?;

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = kubelet::Metrics::new(&mut registry);
    let readiness = ops_http::Readiness::new();
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on --metrics-addr {}", args.metrics_addr))?;
    let (stop, stopped) = watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let ops = tokio::spawn(super::conn_limits::serve_ops(
        listener,
        registry,
        "confcom_dra_driver_ops",
        readiness.clone(),
        None,
        args.metrics_limits.limits(),
        until_stopped(),
    ));
    tracing::info!(
        driver = %args.driver_name,
        node = %args.node_name,
        devices = ?inventory.devices.iter().map(|d| (&d.name, d.bytes)).collect::<Vec<_>>(),
        simulate = args.simulate,
        metrics_addr = %args.metrics_addr,
        "starting the SGX DRA driver"
    );

    let config = args.kubelet_config();
    let (inventory_tx, inventory_rx) = watch::channel(inventory);
    let (attest_tx, attest_rx) = watch::channel(Attestation::default());
    let mut tasks = vec![
        tokio::spawn(attest::run(attest_config, attest_tx, until_stopped())),
        tokio::spawn(publisher.run(inventory_rx.clone(), attest_rx, until_stopped())),
    ];
    if !args.simulate {
        tasks.push(tokio::spawn(rescan(
            Arc::new(args),
            platform,
            inventory_tx,
            until_stopped(),
        )));
    }
    let claims = Arc::new(KubeClaimReader::new(
        client,
        KubeClaimReader::DEFAULT_TIMEOUT,
    ));
    let sockets = [config.dra_socket(), config.registration_socket()];
    tasks.push(tokio::spawn({
        let readiness = readiness.clone();
        let stopped = until_stopped();
        async move {
            tokio::pin!(stopped);
            // Ready once both sockets kubelet talks to are served.
            while !sockets.iter().all(|s| s.exists()) {
                tokio::select! {
                    () = &mut stopped => return,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
            readiness.set_ready(true);
        }
    }));
    let result = kubelet::run(
        config,
        inventory_rx,
        claims,
        metrics,
        crate::daemon::shutdown_signal(),
    )
    .await;
    readiness.set_ready(false);
    let _ = stop.send(true);
    for task in tasks {
        task.abort();
    }
    match ops.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "metrics endpoint failed"),
        Err(err) => tracing::warn!(error = %err, "metrics endpoint task failed"),
    }
    result.context("the DRA driver's kubelet plugin failed")
}

/// Scans the platform again every `--recheck-secs` (EPC size, device nodes: a driver loaded or
/// a BIOS change after a reboot) and hands a changed inventory to the publisher and the kubelet
/// side.
async fn rescan(
    args: Arc<Args>,
    platform: HostPlatform,
    inventory: watch::Sender<Inventory>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let period = Duration::from_secs(args.recheck_secs);
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(period) => {}
        }
        let scan = {
            let (args, platform) = (Arc::clone(&args), platform.clone());
            tokio::task::spawn_blocking(move || args.scan(&platform)).await
        };
        match scan {
            Ok(Ok(now)) => {
                last_error = None;
                inventory.send_if_modified(|current| {
                    if *current == now {
                        return false;
                    }
                    tracing::info!(
                        devices = ?now.devices.iter().map(|d| (&d.name, d.bytes)).collect::<Vec<_>>(),
                        "the node's SGX platform changed"
                    );
                    *current = now;
                    true
                });
            }
            Ok(Err(err)) => {
                // Said once per distinct failure; the last inventory stays published.
                let text = crate::errors::one_line(err.as_ref());
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %text, "re-scanning the platform failed");
                    last_error = Some(text);
                }
            }
            Err(err) => tracing::warn!(error = %err, "the platform scan task failed"),
        }
    }
}
