//! The connection limits `confcom addon render` passes to the cluster services (the PCCS and the
//! webhook) and to the node daemons' operations endpoints, and the memory limits that follow from
//! their connection caps.

use ops_http::DEFAULT_OPS_MAX_CONNECTIONS;
use ops_http::guard::{BYTES_PER_CONNECTION, DEFAULT_MAX_CONNECTIONS};

/// Connection limits of the PCCS and the webhook; `None` leaves a flag out (the server's default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerLimits {
    /// `--max-connections`.
    pub max_connections: Option<u64>,
    /// `--max-pending-per-address`.
    pub max_pending_per_address: Option<u64>,
    /// `--handshake-timeout-secs`.
    pub handshake_timeout_secs: Option<u64>,
    /// `--header-timeout-secs`.
    pub header_timeout_secs: Option<u64>,
    /// `--idle-timeout-secs`.
    pub idle_timeout_secs: Option<u64>,
}

impl ServerLimits {
    /// The flags of the limits that are set, in a fixed order.
    pub fn args(&self) -> Vec<String> {
        flags([
            ("--max-connections", self.max_connections),
            ("--max-pending-per-address", self.max_pending_per_address),
            ("--handshake-timeout-secs", self.handshake_timeout_secs),
            ("--header-timeout-secs", self.header_timeout_secs),
            ("--idle-timeout-secs", self.idle_timeout_secs),
        ])
    }

    /// A container memory limit of `base_mib` plus room for the connection cap (at
    /// [`BYTES_PER_CONNECTION`] each), so that a full cap does not get the pod killed.
    pub fn memory_limit(&self, base_mib: u64) -> String {
        let cap = self
            .max_connections
            .unwrap_or(DEFAULT_MAX_CONNECTIONS as u64);
        let per = BYTES_PER_CONNECTION as u64;
        let mib = base_mib.saturating_add(cap.saturating_mul(per).div_ceil(1024 * 1024));
        format!("{mib}Mi")
    }
}

/// The least memory limit a node daemon gets, whatever its connection cap: the requests are 32 MiB,
/// and a limit next to that would get a daemon killed on any growth besides its connections
/// (collateral, claims, gRPC buffers).
pub const NODE_DAEMON_MIN_MEMORY_MIB: u64 = 64;

/// Connection limits of the node daemons' operations endpoints (`/metrics`, `/healthz`,
/// `/readyz` of the device plugin, the quote helper and the DRA driver); `None` leaves a flag out.
/// They serve plain HTTP, so there is no handshake timeout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpsLimits {
    /// `--metrics-max-connections`.
    pub max_connections: Option<u64>,
    /// `--metrics-max-pending-per-address`.
    pub max_pending_per_address: Option<u64>,
    /// `--metrics-header-timeout-secs`.
    pub header_timeout_secs: Option<u64>,
    /// `--metrics-idle-timeout-secs`.
    pub idle_timeout_secs: Option<u64>,
}

impl OpsLimits {
    /// The flags of the limits that are set, in a fixed order.
    pub fn args(&self) -> Vec<String> {
        flags([
            ("--metrics-max-connections", self.max_connections),
            (
                "--metrics-max-pending-per-address",
                self.max_pending_per_address,
            ),
            ("--metrics-header-timeout-secs", self.header_timeout_secs),
            ("--metrics-idle-timeout-secs", self.idle_timeout_secs),
        ])
    }

    /// A daemon's memory limit: `default_mib` (which has room for the default cap of
    /// [`DEFAULT_OPS_MAX_CONNECTIONS`]) with that room replaced by room for the configured cap,
    /// and never below [`NODE_DAEMON_MIN_MEMORY_MIB`].
    pub fn memory_limit(&self, default_mib: u64) -> String {
        let Some(cap) = self.max_connections else {
            return format!("{default_mib}Mi");
        };
        let per = BYTES_PER_CONNECTION as u64;
        let room = |n: u64| n.saturating_mul(per).div_ceil(1024 * 1024);
        let base = default_mib.saturating_sub(room(DEFAULT_OPS_MAX_CONNECTIONS as u64));
        let mib = base
            .saturating_add(room(cap))
            .max(NODE_DAEMON_MIN_MEMORY_MIB);
        format!("{mib}Mi")
    }
}

/// `--flag value` for each limit that is set, in the given order.
fn flags<const N: usize>(limits: [(&str, Option<u64>); N]) -> Vec<String> {
    limits
        .into_iter()
        .filter_map(|(flag, value)| value.map(|v| [flag.to_owned(), v.to_string()]))
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_limits_become_metrics_flags_and_size_the_memory_limit() {
        assert!(OpsLimits::default().args().is_empty());
        assert_eq!(OpsLimits::default().memory_limit(128), "128Mi");
        let limits = OpsLimits {
            max_connections: Some(1_024),
            idle_timeout_secs: Some(30),
            ..OpsLimits::default()
        };
        assert_eq!(
            limits.args(),
            [
                "--metrics-max-connections",
                "1024",
                "--metrics-idle-timeout-secs",
                "30"
            ]
        );
        // 128 MiB holds the default 4,096 connections at 24 KiB (96 MiB) besides 32 MiB; 32 MiB
        // and 1,024 connections (24 MiB) is under the floor.
        assert_eq!(limits.memory_limit(128), "64Mi");
        // 256 MiB: 160 MiB besides the connections, 184 MiB with 1,024.
        assert_eq!(limits.memory_limit(256), "184Mi");
        let default_cap = OpsLimits {
            max_connections: Some(DEFAULT_OPS_MAX_CONNECTIONS as u64),
            ..OpsLimits::default()
        };
        assert_eq!(default_cap.memory_limit(256), "256Mi");
    }

    #[test]
    fn a_small_cap_leaves_the_memory_limit_at_the_floor() {
        // One connection: 32 MiB and 24 KiB, next to the 32 MiB request; the floor instead.
        for cap in [0, 1, 16, 1_365] {
            let limits = OpsLimits {
                max_connections: Some(cap),
                ..OpsLimits::default()
            };
            assert_eq!(limits.memory_limit(128), "64Mi", "cap {cap}");
        }
        // Just above the floor the cap sizes the limit again: 1,366 connections are 33 MiB.
        let above = OpsLimits {
            max_connections: Some(1_366),
            ..OpsLimits::default()
        };
        assert_eq!(above.memory_limit(128), "65Mi");
        // The floor does not cut a larger daemon's limit.
        let one = OpsLimits {
            max_connections: Some(1),
            ..OpsLimits::default()
        };
        assert_eq!(one.memory_limit(256), "161Mi");
    }

    #[test]
    fn only_set_limits_become_flags() {
        assert!(ServerLimits::default().args().is_empty());
        let limits = ServerLimits {
            max_connections: Some(20_000),
            header_timeout_secs: Some(3),
            ..ServerLimits::default()
        };
        assert_eq!(
            limits.args(),
            ["--max-connections", "20000", "--header-timeout-secs", "3"]
        );
    }

    #[test]
    fn the_memory_limit_grows_with_the_cap() {
        // 10,240 connections at 24 KiB: 240 MiB.
        assert_eq!(ServerLimits::default().memory_limit(64), "304Mi");
        let small = ServerLimits {
            max_connections: Some(1_000),
            ..ServerLimits::default()
        };
        assert_eq!(small.memory_limit(64), "88Mi");
    }
}
