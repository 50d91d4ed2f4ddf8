//! `confcom webhook --tls-cert FILE --tls-key FILE [--listen ADDR]`: the mutating admission webhook
//! that wires opted-in SGX pods to the node's quote helper; `confcom webhook certs --out DIR`
//! creates its CA and serving certificate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use addon::admission::Mutator;
use addon::certs::{CertRequest, EnsureOutcome};
use addon::names::{DEFAULT_NAMESPACE, WEBHOOK_NAME};
use addon::server::{self, Limits, WebhookMetrics};
use anyhow::{Context, Result, bail};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Serving certificate (PEM chain).
    #[arg(
        long,
        value_name = "FILE",
        required = true,
        env = "CONFCOM_WEBHOOK_TLS_CERT"
    )]
    tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM).
    #[arg(
        long,
        value_name = "FILE",
        required = true,
        env = "CONFCOM_WEBHOOK_TLS_KEY"
    )]
    tls_key: Option<PathBuf>,
    /// Address to listen on.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "0.0.0.0:8443",
        env = "CONFCOM_WEBHOOK_LISTEN"
    )]
    listen: SocketAddr,
    /// Address of the operations endpoint (`/metrics`, `/healthz`, `/readyz`).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "0.0.0.0:9103",
        env = "CONFCOM_METRICS_ADDR"
    )]
    metrics_addr: SocketAddr,
    /// Further resource names that count as an EPC request (repeatable); the AKS and Intel names
    /// always do.
    #[arg(long = "epc-resource", value_name = "NAME")]
    epc_resources: Vec<String>,
    #[command(flatten)]
    limits: super::conn_limits::ServerLimitsArgs,
    #[command(flatten)]
    metrics_limits: super::conn_limits::MetricsLimitsArgs,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create a CA and the webhook's serving certificate in DIR (once: existing files are kept).
    Certs(CertsArgs),
}

#[derive(clap::Args)]
pub struct CertsArgs {
    /// Output directory (created if missing): ca.crt, tls.crt, tls.key.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Namespace the add-on is rendered into (the certificate names the Service there).
    #[arg(long, value_name = "NS", default_value = DEFAULT_NAMESPACE, env = "CONFCOM_NAMESPACE")]
    namespace: String,
    /// Validity in days.
    #[arg(long, value_name = "N", default_value_t = 3650)]
    days: u32,
    /// Replace existing certificates.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(Command::Certs(certs)) = args.command {
        return certs_cmd(certs, WEBHOOK_NAME);
    }
    let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) else {
        bail!("--tls-cert and --tls-key are required");
    };
    let tls = server::tls_config_from_pem_files(&cert, &key)?;
    let mutator = Mutator::new(args.epc_resources);
    let conn = args.limits.conn_limits();
    let limits = Limits {
        max_connections: conn.max_connections,
        max_pending_per_address: conn.max_pending_per_address,
        handshake_timeout: conn.handshake_timeout,
        header_timeout: conn.header_timeout,
        idle_timeout: conn.idle_timeout,
        ..Limits::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let ops_listener = tokio::net::TcpListener::bind(args.metrics_addr)
            .await
            .with_context(|| format!("binding {}", args.metrics_addr))?;
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = WebhookMetrics::register(&mut registry);
        let readiness = ops_http::Readiness::new();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let ops = tokio::spawn(super::conn_limits::serve_ops(
            ops_listener,
            registry,
            "confcom_webhook_ops",
            readiness.clone(),
            None,
            args.metrics_limits.limits(),
            stopped(stop_rx.clone()),
        ));
        tracing::info!(
            listen = %args.listen,
            metrics_addr = %args.metrics_addr,
            epc_resources = ?mutator.epc_resources().collect::<Vec<_>>(),
            "admission webhook serving"
        );
        readiness.set_ready(true);
        let served = server::serve(listener, Arc::new(tls), mutator, limits, metrics, async {
            crate::daemon::shutdown_signal().await;
            readiness.set_ready(false);
        })
        .await;
        let _ = stop_tx.send(true);
        let ops_result = ops.await.context("operations endpoint task")?;
        served?;
        ops_result.context("operations endpoint")?;
        tracing::info!("admission webhook stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Creates a private CA and a serving certificate for the Service `service` in `--namespace`.
pub fn certs_cmd(args: CertsArgs, service: &str) -> Result<ExitCode> {
    let request = CertRequest {
        namespace: args.namespace,
        service: service.to_owned(),
        days: args.days,
    };
    let outcome = addon::certs::ensure_dir(
        &args.out,
        &request,
        time::OffsetDateTime::now_utc(),
        args.force,
    )?;
    let dir = args.out.display();
    match outcome {
        EnsureOutcome::Created => eprintln!(
            "created ca.crt, tls.crt and tls.key in {dir} for {}",
            request.dns_names().join(", ")
        ),
        EnsureOutcome::AlreadyPresent => {
            eprintln!("{dir} already holds certificates; kept them (--force replaces)")
        }
    }
    Ok(ExitCode::SUCCESS)
}
