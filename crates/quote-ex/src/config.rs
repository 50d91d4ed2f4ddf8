//! Where the library connects and how long it waits, read from the environment at every call (so a
//! program that sets the variables after loading the library is honoured).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use quote_client::AesmClient;

/// Overrides the socket path (default `/var/run/aesmd/aesm.socket`). `SGX_AESM_ADDR` is never
/// read: Intel's DCAP library and Open Enclave only test whether it is set.
pub const SOCKET_ENV: &str = quote_client::SOCKET_ENV;
/// Overrides the per-request timeout in milliseconds (default 15000, Intel's `IPC_LATENCY`).
/// Values that are not a positive integer are ignored.
pub const TIMEOUT_ENV: &str = "CONFCOM_AESM_TIMEOUT_MS";
/// How long, in seconds, each call waits for a quote helper that is not up yet (socket absent or
/// refusing): default 30, `0` for no wait. Values that are not a number of seconds are ignored.
pub const WAIT_ENV: &str = quote_client::SERVICE_WAIT_ENV;
/// When set to a non-empty value other than `0`, every failing call prints one line to stderr
/// naming the function, the cause and the returned `sgx_status_t`.
pub const LOG_ENV: &str = "CONFCOM_QUOTE_EX_LOG";

/// The connection settings of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The AESM socket path.
    pub socket: PathBuf,
    /// The timeout of each request (connect, send and receive together).
    pub timeout: Duration,
    /// How long each call waits for a service that is not up yet.
    pub service_wait: Duration,
    /// Whether failures are reported on stderr.
    pub log: bool,
}

impl Config {
    /// The settings from `CONFCOM_AESM_SOCKET`, `CONFCOM_AESM_TIMEOUT_MS`,
    /// `CONFCOM_AESM_WAIT_SECS` and `CONFCOM_QUOTE_EX_LOG`, with Intel's defaults (and a 30 s wait
    /// for the service).
    pub fn from_env() -> Self {
        let mut config = Self::from_values(
            std::env::var_os(SOCKET_ENV).as_deref(),
            std::env::var_os(TIMEOUT_ENV).as_deref(),
            std::env::var_os(LOG_ENV).as_deref(),
        );
        config.service_wait = quote_client::service_wait_from_env();
        config
    }

    fn from_values(socket: Option<&OsStr>, timeout: Option<&OsStr>, log: Option<&OsStr>) -> Self {
        let socket = match socket {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => PathBuf::from(quote_client::DEFAULT_SOCKET_PATH),
        };
        let timeout = timeout
            .and_then(OsStr::to_str)
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map_or(quote_client::DEFAULT_TIMEOUT, Duration::from_millis);
        let log = log.is_some_and(|v| !v.is_empty() && v != "0");
        Self {
            socket,
            timeout,
            service_wait: quote_client::DEFAULT_SERVICE_WAIT,
            log,
        }
    }

    /// A client with these settings.
    pub fn client(&self) -> AesmClient {
        AesmClient::new(&self.socket)
            .with_timeout(self.timeout)
            .with_service_wait(self.service_wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<&OsStr> {
        Some(OsStr::new(s))
    }

    #[test]
    fn defaults_are_intels() {
        let c = Config::from_values(None, None, None);
        assert_eq!(c.socket, PathBuf::from("/var/run/aesmd/aesm.socket"));
        assert_eq!(c.timeout, Duration::from_millis(15_000));
        assert_eq!(c.service_wait, Duration::from_secs(30));
        assert!(!c.log);
        assert_eq!(Config::from_values(os(""), os(""), os("")), c);
    }

    #[test]
    fn overrides_are_read() {
        let c = Config::from_values(os("/tmp/a/s"), os(" 250 "), os("1"));
        assert_eq!(c.socket, PathBuf::from("/tmp/a/s"));
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert!(c.log);
        assert_eq!(c.client().socket_path(), PathBuf::from("/tmp/a/s"));
        assert_eq!(c.client().timeout(), Duration::from_millis(250));
        let c = Config {
            service_wait: Duration::from_secs(2),
            ..c
        };
        assert_eq!(c.client().service_wait(), Duration::from_secs(2));
    }

    #[test]
    fn unusable_timeouts_fall_back_to_the_default() {
        for bad in ["0", "-5", "abc", "1.5", "99999999999999999999999"] {
            let c = Config::from_values(None, os(bad), os("0"));
            assert_eq!(c.timeout, Duration::from_millis(15_000), "{bad}");
            assert!(!c.log);
        }
    }
}
