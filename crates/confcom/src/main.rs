//! `confcom`: one binary, one subcommand per job. Each subcommand lives in `cmd/<name>.rs` and exposes a
//! clap `Args` struct and a `run` function; this file only dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod cmd;
mod daemon;
mod errors;
mod input;
mod logging;
mod render;

#[derive(Parser)]
#[command(
    name = "confcom",
    version,
    about = "Kubernetes confidential-computing add-on for Intel SGX nodes"
)]
struct Cli {
    /// Log output format.
    #[arg(
        long,
        global = true,
        default_value = "text",
        env = "CONFCOM_LOG_FORMAT"
    )]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole out-of-process attestation flow on a simulated platform and verify the quote.
    Demo(cmd::demo::Args),
    /// Decode an SGX DCAP quote (binary, hex or base64) and print its fields.
    Inspect(cmd::inspect::Args),
    /// Verify DCAP quotes against collateral and a relying-party policy (exit 0 accepted, 1 rejected, 2 unreadable).
    Verify(cmd::verify::Args),
    /// Render the add-on's Kubernetes manifests (`confcom addon render | kubectl apply -f -`).
    Addon(cmd::addon::Args),
    /// Run the SGX admission webhook, or create its certificates (`confcom webhook certs`).
    Webhook(cmd::webhook::Args),
    /// Run the SGX device plugin (kubelet device-plugin API v1beta1) until SIGTERM.
    DevicePlugin(cmd::device_plugin::Args),
    /// Run the SGX DRA driver: EPC as shared devices in ResourceSlices, kubelet's DRA plugin with CDI specs, until SIGTERM.
    DraDriver(cmd::dra_driver::Args),
    /// One attestation of the DRA driver, run by the driver in a child process: the settings
    /// (JSON) on stdin, the result (JSON) on stdout.
    #[command(name = cmd::dra_driver::ATTEST_ONCE_COMMAND, hide = true)]
    DraDriverAttestOnce,
    /// Run the SGX quote helper: the AESM socket (/var/run/aesmd/aesm.socket) enclave apps with SGX_AESM_ADDR=1 get quotes from.
    QuoteHelper(cmd::quote_helper::Args),
    /// Act as an enclave app on the simulated platform: get a quote through the AESM socket and write it.
    Quote(cmd::quote::Args),
    /// The simulated SGX platform: `sim init` a node, `sim collateral` for verifiers, `sim report` as an enclave.
    Sim(cmd::sim::Args),
    /// Serve collateral over Intel's PCCS REST API (/sgx/certification/v3/ and /v4/) from a simulated platform or an offline directory.
    Pccs(cmd::pccs::Args),
    /// Diagnose this node: SGX in the CPU, device nodes, EPC, the quote helper, quotes, the device plugin.
    Doctor(cmd::doctor::Args),
    /// Measure on this machine: `bench quote-helper` loads a simulated quote helper over its socket.
    Bench(cmd::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Addon(args) => cmd::addon::run(args),
        Command::Webhook(args) => cmd::webhook::run(args),
        Command::DevicePlugin(args) => cmd::device_plugin::run(args),
        Command::DraDriver(args) => cmd::dra_driver::run(args, cli.log_format),
        Command::DraDriverAttestOnce => cmd::dra_driver::attest_once(),
        Command::QuoteHelper(args) => cmd::quote_helper::run(args),
        Command::Sim(args) => cmd::sim::run(args),
        Command::Quote(args) => cmd::quote::run(args),
        Command::Pccs(args) => cmd::pccs::run(args),
        Command::Doctor(args) => cmd::doctor::run(args),
        Command::Bench(args) => cmd::bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            let json = matches!(cli.log_format, logging::LogFormat::Json);
            eprintln!("{}", errors::report(&err, json));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        // Flag names, env fallbacks, groups and defaults of every subcommand, as clap checks them.
        super::Cli::command().debug_assert();
    }
}
