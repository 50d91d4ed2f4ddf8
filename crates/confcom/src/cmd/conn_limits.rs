//! The connection limits of confcom's TCP servers as flags with environment fallbacks:
//! [`ServerLimitsArgs`] for `confcom pccs` and `confcom webhook`, [`MetricsLimitsArgs`] for the
//! operations endpoint (`--metrics-addr`) of every daemon. deploy/README.md gives the defaults'
//! reasoning.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ops_http::guard::{
    ConnLimits, ConnMetrics, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PENDING_PER_ADDRESS,
};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// Connection limits of a cluster service (the PCCS, the webhook).
#[derive(clap::Args, Clone, Debug)]
pub struct ServerLimitsArgs {
    /// Connections held at once; at the cap the oldest idle or incomplete connection is closed
    /// (budget about 24 KiB of memory each).
    #[arg(long, env = "CONFCOM_MAX_CONNECTIONS", value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = positive)]
    pub max_connections: usize,
    /// Connections from one client address (IPv6: one /64) that have not sent a complete request
    /// yet; beyond it that address's oldest such connection is closed.
    #[arg(long, env = "CONFCOM_MAX_PENDING_PER_ADDRESS", value_name = "N", default_value_t = DEFAULT_MAX_PENDING_PER_ADDRESS, value_parser = positive)]
    pub max_pending_per_address: usize,
    /// Seconds allowed for a TLS handshake.
    #[arg(long, env = "CONFCOM_HANDSHAKE_TIMEOUT_SECS", value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub handshake_timeout_secs: u64,
    /// Seconds allowed for a request's headers to arrive.
    #[arg(long, env = "CONFCOM_HEADER_TIMEOUT_SECS", value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// Seconds a keep-alive connection may wait for its next request.
    #[arg(long, env = "CONFCOM_IDLE_TIMEOUT_SECS", value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_secs: u64,
}

impl ServerLimitsArgs {
    /// The governor's limits.
    pub fn conn_limits(&self) -> ConnLimits {
        ConnLimits {
            max_connections: self.max_connections,
            max_pending_per_address: self.max_pending_per_address,
            handshake_timeout: Duration::from_secs(self.handshake_timeout_secs),
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
        }
    }

    /// The limits of an `ops_http` server (the PCCS).
    pub fn ops_limits(&self) -> ops_http::Limits {
        let conn = self.conn_limits();
        ops_http::Limits {
            max_connections: conn.max_connections,
            max_pending_per_address: conn.max_pending_per_address,
            handshake_timeout: conn.handshake_timeout,
            header_read_timeout: conn.header_timeout,
            idle_timeout: conn.idle_timeout,
            ..ops_http::Limits::default()
        }
    }
}

/// Connection limits of a daemon's operations endpoint (`/metrics`, `/healthz`, `/readyz`).
#[derive(clap::Args, Clone, Debug)]
pub struct MetricsLimitsArgs {
    /// Connections the operations endpoint holds at once; at the cap the oldest idle or
    /// incomplete connection is closed.
    #[arg(long, env = "CONFCOM_METRICS_MAX_CONNECTIONS", value_name = "N", default_value_t = ops_http::DEFAULT_OPS_MAX_CONNECTIONS, value_parser = positive)]
    pub metrics_max_connections: usize,
    /// Connections from one client address to the operations endpoint that have not sent a
    /// complete request yet.
    #[arg(long, env = "CONFCOM_METRICS_MAX_PENDING_PER_ADDRESS", value_name = "N", default_value_t = DEFAULT_MAX_PENDING_PER_ADDRESS, value_parser = positive)]
    pub metrics_max_pending_per_address: usize,
    /// Seconds allowed for a request's headers to arrive at the operations endpoint.
    #[arg(long, env = "CONFCOM_METRICS_HEADER_TIMEOUT_SECS", value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub metrics_header_timeout_secs: u64,
    /// Seconds a keep-alive connection to the operations endpoint may wait for its next request.
    #[arg(long, env = "CONFCOM_METRICS_IDLE_TIMEOUT_SECS", value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub metrics_idle_timeout_secs: u64,
}

impl MetricsLimitsArgs {
    /// The limits of the operations endpoint.
    pub fn limits(&self) -> ops_http::Limits {
        ops_http::Limits {
            max_connections: self.metrics_max_connections,
            max_pending_per_address: self.metrics_max_pending_per_address,
            header_read_timeout: Duration::from_secs(self.metrics_header_timeout_secs),
            idle_timeout: Duration::from_secs(self.metrics_idle_timeout_secs),
            ..ops_http::Limits::default()
        }
    }
}

/// Serves a daemon's operations endpoint with `limits` ([`MetricsLimitsArgs::limits`]), its connection metrics registered in
/// `registry` as `<prefix>_connections_open` and `<prefix>_connections_dropped_total{limit}`.
pub fn serve_ops(
    listener: TcpListener,
    mut registry: Registry,
    prefix: &str,
    readiness: ops_http::Readiness,
    extra: Option<ops_http::ExtraRoutes>,
    limits: ops_http::Limits,
    shutdown: impl Future<Output = ()>,
) -> impl Future<Output = std::io::Result<()>> {
    let metrics = ConnMetrics::register(&mut registry, prefix);
    ops_http::serve_guarded(
        listener,
        None,
        Arc::new(registry),
        readiness,
        extra,
        limits,
        metrics,
        shutdown,
    )
}

fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerLimitsArgs,
        #[command(flatten)]
        ops: MetricsLimitsArgs,
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let cli = Cli::try_parse_from(["confcom"]).unwrap();
        assert_eq!(cli.server.conn_limits(), ConnLimits::default());
        assert_eq!(cli.ops.limits(), ops_http::Limits::default());
        assert_eq!(
            cli.server.ops_limits().max_connections,
            DEFAULT_MAX_CONNECTIONS
        );
    }

    #[test]
    fn flags_set_the_limits_and_zero_is_refused() {
        let cli = Cli::try_parse_from([
            "confcom",
            "--max-connections",
            "20000",
            "--max-pending-per-address",
            "7",
            "--handshake-timeout-secs",
            "2",
            "--header-timeout-secs",
            "3",
            "--idle-timeout-secs",
            "30",
            "--metrics-max-connections",
            "100",
            "--metrics-header-timeout-secs",
            "9",
        ])
        .unwrap();
        let conn = cli.server.conn_limits();
        assert_eq!(conn.max_connections, 20_000);
        assert_eq!(conn.max_pending_per_address, 7);
        assert_eq!(conn.handshake_timeout, Duration::from_secs(2));
        assert_eq!(conn.header_timeout, Duration::from_secs(3));
        assert_eq!(conn.idle_timeout, Duration::from_secs(30));
        assert_eq!(cli.ops.limits().max_connections, 100);
        assert_eq!(cli.ops.limits().header_read_timeout, Duration::from_secs(9));
        assert!(Cli::try_parse_from(["confcom", "--max-connections", "0"]).is_err());
        assert!(Cli::try_parse_from(["confcom", "--header-timeout-secs", "0"]).is_err());
    }
}
