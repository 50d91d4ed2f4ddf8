//! `confcom`: one binary, one subcommand per job. Each subcommand lives in `cmd/<name>.rs` and exposes a
//! clap `Args` struct and a `run` function; this file only dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
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
    /// Decode an SGX DCAP quote (binary, hex or base64) and print its fields.
    Inspect(cmd::inspect::Args),
    /// Render the add-on's Kubernetes manifests (`confcom addon render | kubectl apply -f -`).
    Addon(cmd::addon::Args),
    /// Run the SGX admission webhook, or create its certificates (`confcom webhook certs`).
    Webhook(cmd::webhook::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Addon(args) => cmd::addon::run(args),
        Command::Webhook(args) => cmd::webhook::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
