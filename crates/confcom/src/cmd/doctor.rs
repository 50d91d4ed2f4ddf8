//! `confcom doctor`: diagnose this node for the add-on (SGX in the CPU, device nodes, EPC, the
//! quote helper, quotes, the device plugin, the DRA driver); one line per finding with its fix, and
//! a verdict.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Where the host's /dev is seen.
    #[arg(long, default_value = "/dev", env = "CONFCOM_DEV_ROOT")]
    pub dev_root: PathBuf,
    /// Where the host's /sys is seen.
    #[arg(long, default_value = "/sys", env = "CONFCOM_SYSFS_ROOT")]
    pub sysfs_root: PathBuf,
    /// The quote helper's AESM socket.
    #[arg(
        long,
        default_value = "/var/run/aesmd/aesm.socket",
        env = "CONFCOM_AESM_SOCKET"
    )]
    pub socket: PathBuf,
    /// kubelet's device-plugin directory.
    #[arg(long, default_value = device_plugin::DEFAULT_PLUGIN_DIR)]
    pub plugin_dir: PathBuf,
    /// Collateral to verify a simulated quote with: a directory holding the helper's
    /// /collateral/ files (collateral.json and root-ca.der).
    #[arg(long)]
    pub collateral: Option<PathBuf>,
    /// The DRA driver's name (its socket, directory and CDI spec names derive from it).
    #[arg(long, value_name = "NAME", default_value = doctor::dra::DEFAULT_DRIVER)]
    pub dra_driver: String,
    /// Kubelet's plugin registration directory.
    #[arg(long, value_name = "DIR", default_value = doctor::dra::DEFAULT_REGISTRY_DIR)]
    pub kubelet_registry_dir: PathBuf,
    /// Parent of the kubelet plugins' directories (the DRA driver's dra.sock and checkpoint).
    #[arg(long, value_name = "DIR", default_value = doctor::dra::DEFAULT_PLUGINS_DIR)]
    pub kubelet_plugins_dir: PathBuf,
    /// The CDI directory the DRA driver writes its per-claim specs to.
    #[arg(long, value_name = "DIR", default_value = doctor::dra::DEFAULT_CDI_ROOT)]
    pub cdi_root: PathBuf,
    /// Also list this node's ResourceSlices of the DRA driver through the API (KUBECONFIG or
    /// ~/.kube/config, else the in-cluster service account; needs list on resourceslices).
    #[arg(long)]
    pub api: bool,
    /// This node's name in the cluster, for --api (default: the host name).
    #[arg(long, value_name = "NODE", env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// Print a JSON object instead of the lines.
    #[arg(long)]
    pub json: bool,
}

/// Exit code when the node is not ready (or not an SGX node).
pub const EXIT_NOT_READY: u8 = 1;

pub fn run(args: Args) -> Result<ExitCode> {
    let slices = if args.api {
        let node = match &args.node_name {
            Some(node) => node.clone(),
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default(),
        };
        lookup_slices(&node, &args.dra_driver)
    } else {
        doctor::dra::SliceLookup::NotAsked
    };
    let dra = doctor::dra::DraOptions {
        driver: args.dra_driver,
        registry_dir: args.kubelet_registry_dir,
        plugins_dir: args.kubelet_plugins_dir,
        cdi_root: args.cdi_root,
        slices,
        ..doctor::dra::DraOptions::default()
    };
    let options = doctor::Options {
        dra,
        dev_root: args.dev_root,
        sysfs_root: args.sysfs_root,
        socket: args.socket,
        plugin_dir: args.plugin_dir,
        collateral: args.collateral,
        ..doctor::Options::default()
    };
    let report = doctor::diagnose(&options);
    if args.json {
        println!("{}", report.render_json());
    } else {
        print!("{}", report.render_text());
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_READY)
    })
}

/// The ResourceSlices of `driver` for `node`, through the API.
fn lookup_slices(node: &str, driver: &str) -> doctor::dra::SliceLookup {
    use doctor::dra::{SliceLookup, SliceSummary};
    use k8s_openapi::api::resource::v1::ResourceSlice;
    if node.is_empty() {
        return SliceLookup::Failed("no node name: pass --node-name".to_owned());
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return SliceLookup::Failed(format!("cannot start the async runtime: {e}")),
    };
    let listed = runtime.block_on(async {
        let client = node_capacity::inferred_client()
            .await
            .map_err(|e| e.to_string())?;
        let params = kube::api::ListParams::default()
            .fields(&format!("spec.nodeName={node},spec.driver={driver}"));
        kube::Api::<ResourceSlice>::all(client)
            .list(&params)
            .await
            .map_err(|e| e.to_string())
    });
    match listed {
        Ok(list) => SliceLookup::Found {
            node: node.to_owned(),
            slices: list
                .items
                .into_iter()
                .map(|slice| SliceSummary {
                    name: slice.metadata.name.unwrap_or_default(),
                    pool: slice.spec.pool.name,
                    generation: slice.spec.pool.generation,
                    slice_count: slice.spec.pool.resource_slice_count,
                    devices: slice.spec.devices.map_or(0, |d| d.len()),
                })
                .collect(),
        },
        Err(e) => SliceLookup::Failed(e),
    }
}
