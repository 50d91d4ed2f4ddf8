//! `confcom addon render [flags]`: print the add-on's manifests, ready for `kubectl apply -f -`.
//! `confcom addon remove-capacity [--node NODE]…`: take `sgx.intel.com/epc` out of the nodes'
//! status capacity again (uninstall).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use addon::names::{DEFAULT_DCAP_IMAGE, DEFAULT_IMAGE, DEFAULT_NAMESPACE};
use addon::render::{RenderOptions, render, to_yaml};
use anyhow::{Context, Result};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print the complete, ready-to-apply YAML (deterministic: same flags, same bytes).
    Render(Box<RenderArgs>),
    /// Remove sgx.intel.com/epc from the nodes' status capacity, where the device plugin put it
    /// (uninstall step: run it after deleting the device plugin DaemonSet).
    #[command(after_help = "\
Credentials: KUBECONFIG or ~/.kube/config, else the in-cluster service account. Needs `list` (or \
`get` with --node) on nodes and `patch` on nodes/status. Nodes without the entry are left alone; \
the exit status is 1 if any node could not be patched.")]
    RemoveCapacity(RemoveCapacityArgs),
}

#[derive(clap::Args)]
struct RemoveCapacityArgs {
    /// Only this node (repeatable); default: every node that has the entry.
    #[arg(long = "node", value_name = "NODE")]
    nodes: Vec<String>,
}

#[derive(clap::Args)]
struct RenderArgs {
    /// Also install the quote helper DaemonSet (AESM socket at /var/run/aesmd on every SGX node).
    #[arg(long)]
    enable_sgxquotehelper: bool,
    /// Also install the admission webhook that wires opted-in SGX pods to the quote helper.
    #[arg(long, requires = "webhook_certs")]
    enable_webhook: bool,
    /// Directory written by `confcom webhook certs` (ca.crt, tls.crt, tls.key).
    #[arg(long, value_name = "DIR", requires = "enable_webhook")]
    webhook_certs: Option<PathBuf>,
    /// Simulated SGX: run on every Linux node, device plugin `--simulate`, quote helper `--backend sim`.
    #[arg(long)]
    simulate: bool,
    /// EPC size (MiB) the device plugin advertises; defaults to 256 with --simulate, discovery otherwise.
    #[arg(long, value_name = "N")]
    epc_mib: Option<u64>,
    /// Namespace of the add-on (must exist).
    #[arg(long, value_name = "NS", default_value = DEFAULT_NAMESPACE, env = "CONFCOM_NAMESPACE")]
    namespace: String,
    /// The confcom image.
    #[arg(long, value_name = "REF", default_value = DEFAULT_IMAGE, env = "CONFCOM_IMAGE")]
    image: String,
    /// Image of the hardware quote helper (confcom + Intel's DCAP quote library).
    #[arg(long, value_name = "REF", default_value = DEFAULT_DCAP_IMAGE, env = "CONFCOM_DCAP_IMAGE")]
    dcap_image: String,
    /// Schedule the node daemons on nodes with this label instead of the SGX node affinity
    /// (repeatable).
    #[arg(long, value_name = "K=V", value_parser = parse_key_value)]
    node_selector: Vec<(String, String)>,
    /// Also install the SGX DRA driver (resource.k8s.io/v1): its kubelet-plugin DaemonSet
    /// `sgx-dra-driver`, RBAC, a ValidatingAdmissionPolicy keeping it to its own node's
    /// ResourceSlices, and the DeviceClasses. Without --dra-node-selector it replaces the device
    /// plugin on every SGX node.
    #[arg(long)]
    dra: bool,
    /// Run the DRA driver only on nodes with this label (repeatable); the device plugin then runs
    /// on the other SGX nodes and never on these.
    #[arg(long, value_name = "K=V", value_parser = parse_key_value, requires = "dra")]
    dra_node_selector: Vec<(String, String)>,
    /// Leave out the extended-resource mapping of the DRA classes (`sgx.intel.com/enclave`,
    /// `sgx.intel.com/provision`, KEP-5004).
    #[arg(long, requires = "dra")]
    no_dra_extended_resources: bool,
    /// PCCS URL for the hardware quote provider (renders a ConfigMap with sgx_default_qcnl.conf).
    #[arg(long, value_name = "URL")]
    pccs_url: Option<String>,
    /// On Azure: the hardware quote helpers take PCK certificates from Azure's THIM (the host's
    /// endpoint, then the global cache) and collateral from --pccs-url, the in-cluster PCCS or
    /// Intel's PCS, as Intel's sgx_default_qcnl_azure.conf does.
    #[arg(long)]
    azure_thim: bool,
    /// Also install a PCCS for the cluster (Deployment and Service `sgx-pccs`, port 8081): on
    /// hardware it caches --pccs-upstream and the quote helpers use it; with --simulate it serves
    /// the collateral of the cluster's simulated CA (--sim-ca).
    #[arg(long)]
    enable_pccs: bool,
    /// Upstream of the in-cluster PCCS on hardware (Intel's PCS by default).
    #[arg(long, value_name = "URL", default_value = addon::names::INTEL_PCS_URL, requires = "enable_pccs")]
    pccs_upstream: String,
    /// Directory written by `confcom pccs certs` (ca.crt, tls.crt, tls.key): the in-cluster PCCS
    /// serves HTTPS with them, and the hardware quote helpers trust their CA.
    #[arg(long, value_name = "DIR", requires = "enable_pccs")]
    pccs_certs: Option<PathBuf>,
    /// A simulated cluster's CA directory (`confcom sim init --ca-dir DIR`): rendered as the
    /// Secret sgx-sim-ca, under which every node's quote helper and the PCCS create their
    /// platforms. The YAML then carries the CA's private keys.
    #[arg(long, value_name = "DIR")]
    sim_ca: Option<PathBuf>,
    /// Write the YAML to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
    /// Connection limits passed to the PCCS and the webhook (their defaults when left out); their
    /// memory limits make room for the connection cap (24 KiB a connection).
    #[command(flatten)]
    server_limits: ServerLimitsFlags,
    /// Connection limits passed to the node daemons' operations endpoints (their defaults when
    /// left out); their memory limits make room for the connection cap (24 KiB a connection).
    #[command(flatten)]
    ops_limits: OpsLimitsFlags,
}

/// `confcom addon render`'s flags for [`addon::render::OpsLimits`].
#[derive(clap::Args, Debug)]
struct OpsLimitsFlags {
    /// `--metrics-max-connections` of the device plugin, the quote helper and the DRA driver.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    metrics_max_connections: Option<u64>,
    /// `--metrics-max-pending-per-address` of the node daemons.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    metrics_max_pending_per_address: Option<u64>,
    /// `--metrics-header-timeout-secs` of the node daemons.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    metrics_header_timeout_secs: Option<u64>,
    /// `--metrics-idle-timeout-secs` of the node daemons.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    metrics_idle_timeout_secs: Option<u64>,
}

/// `confcom addon render`'s flags for [`addon::render::ServerLimits`].
#[derive(clap::Args, Debug)]
struct ServerLimitsFlags {
    /// `--max-connections` of the PCCS and the webhook.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,
    /// `--max-pending-per-address` of the PCCS and the webhook.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_pending_per_address: Option<u64>,
    /// `--handshake-timeout-secs` of the PCCS and the webhook.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    handshake_timeout_secs: Option<u64>,
    /// `--header-timeout-secs` of the PCCS and the webhook.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout_secs: Option<u64>,
    /// `--idle-timeout-secs` of the PCCS and the webhook.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    idle_timeout_secs: Option<u64>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Render(args) => render_cmd(*args),
        Command::RemoveCapacity(args) => remove_capacity_cmd(args),
    }
}

fn remove_capacity_cmd(args: RemoveCapacityArgs) -> Result<ExitCode> {
    use node_capacity::{EPC_RESOURCE, Removed};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = node_capacity::inferred_client().await?;
        let results = if args.nodes.is_empty() {
            node_capacity::remove_from_all_nodes(client, EPC_RESOURCE).await?
        } else {
            let mut results = Vec::new();
            for node in args.nodes {
                let result = node_capacity::remove(client.clone(), &node, EPC_RESOURCE).await;
                results.push((node, result));
            }
            results
        };
        let mut failed = false;
        for (node, result) in results {
            match result {
                Ok(Removed::Removed) => println!("{node}: removed {EPC_RESOURCE}"),
                Ok(Removed::Absent) => println!("{node}: no {EPC_RESOURCE}"),
                Err(err) => {
                    failed = true;
                    eprintln!("{node}: {err}");
                }
            }
        }
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}

fn render_cmd(args: RenderArgs) -> Result<ExitCode> {
    let webhook = match (&args.webhook_certs, args.enable_webhook) {
        (Some(dir), true) => Some(
            addon::certs::load_dir(dir)
                .with_context(|| format!("reading webhook certificates from {}", dir.display()))?,
        ),
        _ => None,
    };
    let pccs_tls = match &args.pccs_certs {
        Some(dir) => Some(
            addon::certs::load_dir(dir)
                .with_context(|| format!("reading PCCS certificates from {}", dir.display()))?,
        ),
        None => None,
    };
    let sim_ca = match &args.sim_ca {
        Some(dir) => {
            let mut files = BTreeMap::new();
            for name in addon::render::SIM_CA_FILES {
                let path = dir.join(name);
                if let Ok(bytes) = std::fs::read(&path) {
                    files.insert(name.to_owned(), bytes);
                } else if path.exists() {
                    anyhow::bail!("cannot read {}", path.display());
                }
            }
            Some(files)
        }
        None => None,
    };
    let options = RenderOptions {
        namespace: args.namespace,
        image: args.image,
        dcap_image: args.dcap_image,
        enable_quote_helper: args.enable_sgxquotehelper,
        simulate: args.simulate,
        epc_mib: args.epc_mib,
        node_selector: args.node_selector.into_iter().collect::<BTreeMap<_, _>>(),
        dra: args.dra,
        dra_node_selector: args.dra_node_selector.into_iter().collect(),
        dra_extended_resources: !args.no_dra_extended_resources,
        pccs_url: args.pccs_url,
        enable_pccs: args.enable_pccs,
        pccs_upstream: args.pccs_upstream,
        azure_thim: args.azure_thim,
        pccs_tls,
        sim_ca,
        webhook,
        ops_limits: addon::render::OpsLimits {
            max_connections: args.ops_limits.metrics_max_connections,
            max_pending_per_address: args.ops_limits.metrics_max_pending_per_address,
            header_timeout_secs: args.ops_limits.metrics_header_timeout_secs,
            idle_timeout_secs: args.ops_limits.metrics_idle_timeout_secs,
        },
        server_limits: addon::render::ServerLimits {
            max_connections: args.server_limits.max_connections,
            max_pending_per_address: args.server_limits.max_pending_per_address,
            handshake_timeout_secs: args.server_limits.handshake_timeout_secs,
            header_timeout_secs: args.server_limits.header_timeout_secs,
            idle_timeout_secs: args.server_limits.idle_timeout_secs,
        },
    };
    let yaml = to_yaml(&render(&options)?)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &yaml).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(yaml.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
