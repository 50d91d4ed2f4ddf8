//! `confcom doctor`: diagnose this node for the add-on (SGX in the CPU, device nodes, EPC, the
//! quote helper, quotes, the device plugin); one line per finding with its fix, and a verdict.

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
    /// Print a JSON object instead of the lines.
    #[arg(long)]
    pub json: bool,
}

/// Exit code when the node is not ready (or not an SGX node).
pub const EXIT_NOT_READY: u8 = 1;

pub fn run(args: Args) -> Result<ExitCode> {
    let options = doctor::Options {
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
