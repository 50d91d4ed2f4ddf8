//! `confcom device-plugin`: the SGX device plugin DaemonSet (kubelet device-plugin API v1beta1),
//! which also advertises the EPC size in bytes as `sgx.intel.com/epc` in its node's status
//! capacity when it knows its node's name.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use device_plugin::{Config, HostPlatform, Metrics, ResourceKind};

/// A resource that can be switched off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Resource {
    /// EPC memory in MiB.
    Epc,
    /// Enclave slots.
    Enclave,
    /// Provision slots.
    Provision,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Node capacity: with --node-name (or NODE_NAME, which the DaemonSet sets from spec.nodeName) the \
plugin also puts the EPC size in bytes into the node's status capacity as sgx.intel.com/epc \
(JSON patch of nodes/<name>/status), at start and whenever the size changes, for pods that request \
it Intel's way. Credentials: a kubeconfig (KUBECONFIG, ~/.kube/config) if present, else the pod's \
service account, which needs `patch` on `nodes/status`. Without them the plugin logs a warning and serves kubelet as usual. \
The entry outlives the plugin; `confcom addon remove-capacity` removes it when uninstalling.")]
pub struct Args {
    /// kubelet's device-plugin directory (kubelet.sock and our sockets).
    #[arg(long, env = "CONFCOM_PLUGIN_DIR", default_value = device_plugin::DEFAULT_PLUGIN_DIR)]
    pub plugin_dir: PathBuf,
    /// Where the host's /dev is seen (SGX device nodes).
    #[arg(long, env = "CONFCOM_DEV_ROOT", default_value = "/dev")]
    pub dev_root: PathBuf,
    /// Where the host's /sys is seen (per-NUMA-node EPC sizes).
    #[arg(long, env = "CONFCOM_SYSFS_ROOT", default_value = "/sys")]
    pub sysfs_root: PathBuf,
    /// EPC size in MiB, overriding discovery (sysfs, then CPUID leaf 0x12).
    #[arg(long, env = "CONFCOM_EPC_MIB")]
    pub epc_mib: Option<u64>,
    /// Advertise SGX resources on a node without SGX (development, CI, demos): containers get no
    /// device node and SGX_SIMULATION=1. EPC is --epc-mib, else 8192 MiB.
    #[arg(long, env = "CONFCOM_SIMULATE")]
    pub simulate: bool,
    /// Number of sgx.intel.com/enclave slots.
    #[arg(long, env = "CONFCOM_ENCLAVE_LIMIT", default_value_t = device_plugin::DEFAULT_SLOTS)]
    pub enclave_limit: u64,
    /// Number of sgx.intel.com/provision slots.
    #[arg(long, env = "CONFCOM_PROVISION_LIMIT", default_value_t = device_plugin::DEFAULT_SLOTS)]
    pub provision_limit: u64,
    /// Name of the EPC resource.
    #[arg(long, env = "CONFCOM_EPC_RESOURCE", default_value = device_plugin::EPC_RESOURCE)]
    pub epc_resource: String,
    /// Name of the enclave slot resource.
    #[arg(long, env = "CONFCOM_ENCLAVE_RESOURCE", default_value = device_plugin::ENCLAVE_RESOURCE)]
    pub enclave_resource: String,
    /// Name of the provision slot resource.
    #[arg(long, env = "CONFCOM_PROVISION_RESOURCE", default_value = device_plugin::PROVISION_RESOURCE)]
    pub provision_resource: String,
    /// Resources not to serve (repeat or comma-separate).
    #[arg(long, env = "CONFCOM_DISABLE", value_delimiter = ',')]
    pub disable: Vec<Resource>,
    /// Period in seconds of the fallback checks (sockets, kubelet.sock, device nodes, EPC size).
    #[arg(long, env = "CONFCOM_RECHECK_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub recheck_secs: u64,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "CONFCOM_METRICS_ADDR", default_value = "0.0.0.0:9101")]
    pub metrics_addr: SocketAddr,
    #[command(flatten)]
    pub metrics_limits: super::conn_limits::MetricsLimitsArgs,
    /// This node's name: advertise the EPC size in its status capacity as sgx.intel.com/epc
    /// (bytes). Without it (or empty) nothing is advertised there.
    #[arg(long, env = "NODE_NAME", value_name = "NODE", value_parser = node_name)]
    pub node_name: Option<String>,
    /// Do not advertise sgx.intel.com/epc in the node's status capacity, even with --node-name.
    #[arg(long, env = "CONFCOM_NO_NODE_CAPACITY")]
    pub no_node_capacity: bool,
}

/// A node name is a DNS-1123 subdomain: at most 253 characters of `[a-z0-9.-]`, starting and
/// ending with an alphanumeric character. Empty (an unset `NODE_NAME=`) stands for no name.
fn node_name(s: &str) -> Result<String, String> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = s.is_empty()
        || (s.len() <= 253
            && s.starts_with(alnum)
            && s.ends_with(alnum)
            && s.chars().all(|c| alnum(c) || c == '-' || c == '.'));
    if valid {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a node name (DNS-1123 subdomain)"))
    }
}

/// Whether and where the EPC size goes into a node's status capacity.
#[derive(Debug, PartialEq, Eq)]
enum NodeCapacity<'a> {
    /// Switched off with --no-node-capacity.
    Disabled,
    /// No node name: not running as the DaemonSet (tests, a developer's machine).
    NoNodeName,
    /// Advertise on this node.
    Node(&'a str),
}

impl Args {
    fn config(&self) -> Config {
        let mut config = Config::new(&self.plugin_dir);
        config.resources = [
            (Resource::Epc, ResourceKind::Epc, &self.epc_resource),
            (
                Resource::Enclave,
                ResourceKind::Enclave,
                &self.enclave_resource,
            ),
            (
                Resource::Provision,
                ResourceKind::Provision,
                &self.provision_resource,
            ),
        ]
        .into_iter()
        .filter(|(switch, _, _)| !self.disable.contains(switch))
        .map(|(_, kind, name)| (kind, name.clone()))
        .collect();
        config.simulate = self.simulate;
        config.epc_mib = self.epc_mib;
        config.enclave_limit = self.enclave_limit;
        config.provision_limit = self.provision_limit;
        config.recheck_interval = Duration::from_secs(self.recheck_secs);
        config
    }

    fn node_capacity(&self) -> NodeCapacity<'_> {
        match (self.node_name.as_deref(), self.no_node_capacity) {
            (_, true) => NodeCapacity::Disabled,
            (None | Some(""), false) => NodeCapacity::NoNodeName,
            (Some(node), false) => NodeCapacity::Node(node),
        }
    }
}

/// Start advertising the EPC size from `sizes` in the node's status capacity, if configured and
/// possible. Credentials: `KUBECONFIG` (or `~/.kube/config`) if present, else the pod's service
/// account – the DaemonSet has only the latter. Never fails: without a node name or credentials
/// the device plugin runs as before, and says why once.
async fn start_node_capacity(
    args: &Args,
    sizes: tokio::sync::watch::Receiver<Option<u64>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let node = match args.node_capacity() {
        NodeCapacity::Disabled => {
            tracing::info!(
                "node capacity off (--no-node-capacity): {} is not advertised in the node status",
                node_capacity::EPC_RESOURCE
            );
            return None;
        }
        NodeCapacity::NoNodeName => {
            tracing::info!(
                "no --node-name / NODE_NAME: {} is not advertised in the node status",
                node_capacity::EPC_RESOURCE
            );
            return None;
        }
        NodeCapacity::Node(node) => node,
    };
    let client = match node_capacity::inferred_client().await {
        Ok(client) => client,
        Err(err) => {
            tracing::warn!(
                node,
                error = %err,
                "cannot advertise {} in the node status; the device plugin keeps serving without it",
                node_capacity::EPC_RESOURCE
            );
            return None;
        }
    };
    tracing::info!(
        node,
        resource = node_capacity::EPC_RESOURCE,
        "advertising the EPC size in the node's status capacity"
    );
    let publisher = node_capacity::Publisher::new(client, node);
    // The publisher ends when the plugin drops the sender; it is also aborted then, so that a
    // request in flight does not hold up the shutdown.
    Some(tokio::spawn(
        publisher.run(sizes, std::future::pending::<()>()),
    ))
}

pub fn run(args: Args) -> Result<ExitCode> {
    let config = args.config();
    config
        .validate()
        .context("invalid device-plugin configuration")?;
    let served = [
        &args.epc_resource,
        &args.enclave_resource,
        &args.provision_resource,
    ];
    if matches!(args.node_capacity(), NodeCapacity::Node(_))
        && served.iter().any(|r| *r == node_capacity::EPC_RESOURCE)
    {
        anyhow::bail!(
            "{} is the node capacity in bytes this plugin writes into the node's status; serving a \
             device-plugin resource of the same name makes kubelet overwrite it: choose another \
             name, or add --no-node-capacity",
            node_capacity::EPC_RESOURCE
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, config))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: Args, config: Config) -> Result<()> {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::new(&mut registry);
    let readiness = ops_http::Readiness::new();
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on --metrics-addr {}", args.metrics_addr))?;
    let (stop_ops, ops_stopped) = tokio::sync::oneshot::channel::<()>();
    let ops = tokio::spawn(super::conn_limits::serve_ops(
        listener,
        registry,
        "confcom_device_plugin_ops",
        readiness.clone(),
        None,
        args.metrics_limits.limits(),
        async move {
            let _ = ops_stopped.await;
        },
    ));
    tracing::info!(
        plugin_dir = %config.plugin_dir.display(),
        dev_root = %args.dev_root.display(),
        resources = ?config.resources,
        simulate = config.simulate,
        metrics_addr = %args.metrics_addr,
        "starting the SGX device plugin"
    );
    let (epc_bytes, epc_sizes) = tokio::sync::watch::channel(None);
    let capacity = start_node_capacity(&args, epc_sizes).await;
    let platform = Arc::new(HostPlatform::new(&args.dev_root, &args.sysfs_root));
    let result = device_plugin::run_with_epc_watch(
        config,
        platform,
        metrics,
        readiness,
        epc_bytes,
        crate::daemon::shutdown_signal(),
    )
    .await;
    if let Some(task) = capacity {
        task.abort();
    }
    let _ = stop_ops.send(());
    match ops.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "metrics endpoint failed"),
        Err(err) => tracing::warn!(error = %err, "metrics endpoint task failed"),
    }
    result.context("device plugin failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Cli {
        args: Args,
    }

    impl Cli {
        /// `argv[0]` is the program name, as for `clap::Parser::try_parse_from`.
        fn try_parse_from<'a>(
            argv: impl IntoIterator<Item = &'a str>,
        ) -> Result<Self, clap::Error> {
            let argv: Vec<&str> = argv.into_iter().skip(1).collect();
            crate::args::parse(&argv).map(|args| Cli { args })
        }
    }

    #[test]
    fn defaults_are_those_of_a_real_node() {
        let cli = Cli::try_parse_from(["confcom"]).unwrap();
        let config = cli.args.config();
        assert_eq!(
            config.plugin_dir,
            PathBuf::from("/var/lib/kubelet/device-plugins/")
        );
        assert_eq!(cli.args.dev_root, PathBuf::from("/dev"));
        assert_eq!(cli.args.metrics_addr, "0.0.0.0:9101".parse().unwrap());
        assert_eq!(config.resources.len(), 3);
        assert_eq!((config.enclave_limit, config.provision_limit), (110, 110));
        assert!(!config.simulate);
    }

    #[test]
    fn node_capacity_needs_a_node_name_and_can_be_switched_off() {
        // NODE_NAME may be set where the tests run; the flag decides here.
        let named = Cli::try_parse_from(["confcom", "--node-name", "sgx-node-1"]).unwrap();
        assert_eq!(named.args.node_capacity(), NodeCapacity::Node("sgx-node-1"));
        let off =
            Cli::try_parse_from(["confcom", "--node-name", "sgx-node-1", "--no-node-capacity"])
                .unwrap();
        assert_eq!(off.args.node_capacity(), NodeCapacity::Disabled);
        let empty = Cli::try_parse_from(["confcom", "--node-name", ""]).unwrap();
        assert_eq!(empty.args.node_capacity(), NodeCapacity::NoNodeName);
        let unnamed = Args {
            node_name: None,
            ..named.args
        };
        assert_eq!(unnamed.node_capacity(), NodeCapacity::NoNodeName);
    }

    #[test]
    fn node_names_are_dns_subdomains() {
        for good in ["n", "aks-sgx-12345-vmss000000", "ip-10-0-0-1.ec2.internal"] {
            assert_eq!(node_name(good).as_deref(), Ok(good));
        }
        assert_eq!(node_name("").as_deref(), Ok(""));
        for bad in ["Node", "-a", "a-", "a/b", "a b", &"a".repeat(254)] {
            assert!(node_name(bad).is_err(), "{bad:?}");
        }
        assert!(Cli::try_parse_from(["confcom", "--node-name", "../etc"]).is_err());
    }

    #[test]
    fn resources_can_be_renamed_and_switched_off() {
        let cli = Cli::try_parse_from([
            "confcom",
            "--disable",
            "enclave,provision",
            "--epc-resource",
            "sgx.intel.com/epc_mib",
            "--simulate",
            "--epc-mib",
            "64",
        ])
        .unwrap();
        let config = cli.args.config();
        assert_eq!(
            config.resources,
            [(ResourceKind::Epc, "sgx.intel.com/epc_mib".to_owned())]
        );
        assert_eq!(config.epc_mib, Some(64));
        assert!(config.simulate);
    }

    #[test]
    fn bad_values_are_refused_by_the_parser() {
        assert!(Cli::try_parse_from(["confcom", "--disable", "gpu"]).is_err());
        assert!(Cli::try_parse_from(["confcom", "--metrics-addr", "nowhere"]).is_err());
        assert!(Cli::try_parse_from(["confcom", "--recheck-secs", "0"]).is_err());
    }
}
