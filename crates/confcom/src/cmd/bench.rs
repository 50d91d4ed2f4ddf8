//! `confcom bench pccs`: see [`super::bench_pccs`].
//!
//! `confcom bench dra-driver`: see [`super::bench_dra`].
//!
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
    /// `confcom pccs` cached collateral requests/s (against /healthz on the same server), and
    /// quotes/s verified with the collateral fetched per quote against local files.
    Pccs(PccsArgs),
    /// `confcom dra-driver --simulate`: idle resident memory against `confcom device-plugin
    /// --simulate` in the same run, and NodePrepareResources p50/p99 over its socket with 1 and 64
    /// calls in flight against an empty call.
    DraDriver(DraDriverArgs),
}

#[derive(clap::Args)]
pub struct DraDriverArgs {
    /// Seconds both daemons idle before their memory is read.
    #[arg(long, default_value_t = 5.0)]
    pub idle_secs: f64,
    /// NodePrepareResources calls per phase.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    pub calls: u32,
}

#[derive(clap::Args)]
pub struct PccsArgs {
    /// Seconds per phase.
    #[arg(long, default_value_t = 2.0)]
    pub secs: f64,
    /// Concurrent HTTP clients of the request-rate phase.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub clients: u16,
}

fn check_secs(secs: f64) -> Result<Duration> {
    if !(secs.is_finite() && (0.05..=3600.0).contains(&secs)) {
        bail!("--secs must be between 0.05 and 3600");
    }
    Ok(Duration::from_secs_f64(secs))
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
    let args = match args.what {
        What::QuoteHelper(args) => args,
        What::Pccs(args) => {
            let config = super::bench_pccs::Config {
                round: check_secs(args.secs)?,
                clients: usize::from(args.clients),
            };
            print!("{}", super::bench_pccs::run(&config)?);
            return Ok(ExitCode::SUCCESS);
        }
        What::DraDriver(args) => {
            let config = super::bench_dra::Config {
                idle: check_secs(args.idle_secs)?,
                calls: args.calls as usize,
            };
            print!("{}", super::bench_dra::run(&config)?);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let config = BenchConfig {
        round: check_secs(args.secs)?,
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
