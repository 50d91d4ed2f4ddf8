//! The connection limits `confcom addon render` passes to the cluster services (the PCCS and the
//! webhook), and the memory limit that follows from their connection cap.

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
        [
            ("--max-connections", self.max_connections),
            ("--max-pending-per-address", self.max_pending_per_address),
            ("--handshake-timeout-secs", self.handshake_timeout_secs),
            ("--header-timeout-secs", self.header_timeout_secs),
            ("--idle-timeout-secs", self.idle_timeout_secs),
        ]
        .into_iter()
        .filter_map(|(flag, value)| value.map(|v| [flag.to_owned(), v.to_string()]))
        .flatten()
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

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
