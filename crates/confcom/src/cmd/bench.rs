//! `confcom bench quote-helper`: the quote helper's throughput on this machine, from the shipped
//! binary. It starts the helper on a simulated platform behind a temporary socket and loads it with
//! blocking clients, a new connection per request, next to raw signing and a bare tokio loop
//! measured in the same run (see `aesm_service::bench`).

use std::process::ExitCode;
use std::time::Duration;

use aesm_service::bench::{BenchConfig, run as run_bench};
use anyhow::{Context, Result, bail};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand)]
pub enum What {
    /// GetQuoteEx requests/s over the AESM socket at several client counts, against raw ECDSA
    /// P-256 signing on one core and a bare tokio loop, with latency and the helper's CPU per request.
    QuoteHelper(QuoteHelperArgs),
}

#[derive(clap::Args)]
pub struct QuoteHelperArgs {
    /// Seconds per round.
    #[arg(long, default_value_t = 2.0)]
    pub secs: f64,
    /// Rounds per client count; the median round is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub clients: Vec<usize>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let What::QuoteHelper(args) = args.what;
    if !(args.secs.is_finite() && (0.05..=3600.0).contains(&args.secs)) {
        bail!("--secs must be between 0.05 and 3600");
    }
    let config = BenchConfig {
        round: Duration::from_secs_f64(args.secs),
        rounds: args.rounds,
        clients: args.clients,
    };
    // Short, so that the socket paths fit in sun_path.
    let dir = tempfile::Builder::new()
        .prefix("confcom-bench")
        .tempdir_in("/tmp")
        .context("cannot create a temporary directory")?;
    let report = run_bench(dir.path(), &config)?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
