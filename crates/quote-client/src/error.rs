//! The client's error type, one variant per failure class of Intel's client transport.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aesm_protocol::{QuoteExApi, TransportStatus, describe_aesm_code, sgx_status_for};

/// Which part of an exchange a timeout interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Connecting to the socket (the service's backlog stayed full).
    Connect,
    /// Sending the request.
    Write,
    /// Waiting for, or reading, the response.
    Read,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Write => "write",
            Stage::Read => "read",
        })
    }
}

/// Why nothing accepted a connection on the socket path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// No socket file at the path (or a directory on the way is missing): the service has not
    /// started, or `/var/run/aesmd` is not mounted.
    Absent,
    /// A socket file that nobody listens on: the service stopped without removing it, or is
    /// starting.
    Stale,
    /// Something at the path refuses connections but is not a socket.
    NotASocket,
    /// Any other reason (permission, path too long, ...).
    Other,
}

impl Unavailable {
    /// Classifies the error of a `connect` to `path`.
    pub fn classify(error: &io::Error, path: &Path) -> Self {
        match error.kind() {
            io::ErrorKind::NotFound => Unavailable::Absent,
            // Linux refuses connections to any non-socket file too.
            io::ErrorKind::ConnectionRefused => match std::fs::metadata(path) {
                Ok(m) if m.file_type().is_socket() => Unavailable::Stale,
                Ok(_) => Unavailable::NotASocket,
                Err(e) if e.kind() == io::ErrorKind::NotFound => Unavailable::Absent,
                Err(_) => Unavailable::Other,
            },
            _ => Unavailable::Other,
        }
    }

    /// Whether the service may simply not be up yet (worth waiting for).
    pub fn is_not_up_yet(self) -> bool {
        matches!(self, Unavailable::Absent | Unavailable::Stale)
    }
}

/// Why a request to the AESM service failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing accepts connections on the socket (missing, refused, not a socket, no permission).
    #[error("AESM service unavailable at {}: {source}", path.display())]
    ServiceUnavailable {
        /// The socket path.
        path: PathBuf,
        /// The connect error.
        source: io::Error,
    },
    /// The client timeout expired.
    #[error("AESM request timed out during {stage} (timeout {timeout:?})")]
    Timeout {
        /// Where the exchange was.
        stage: Stage,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The service answered with a non-zero `errorCode` (`aesm_error_t`).
    #[error("AESM service returned {}", describe_aesm_code(*.0))]
    Aesm(u32),
    /// The reply was missing, truncated, oversized, malformed, or did not answer the request.
    #[error("bad response from the AESM service: {0}")]
    BadResponse(String),
    /// The connection failed after it was established (other than by a timeout).
    #[error("i/o error talking to the AESM service: {0}")]
    Io(#[source] io::Error),
    /// The caller's arguments cannot form a valid request; nothing was sent.
    #[error("invalid parameter: {0}")]
    InvalidParameter(&'static str),
}

impl ClientError {
    /// For [`ClientError::ServiceUnavailable`], why nothing accepted the connection.
    pub fn unavailable(&self) -> Option<Unavailable> {
        match self {
            ClientError::ServiceUnavailable { path, source } => {
                Some(Unavailable::classify(source, path))
            }
            _ => None,
        }
    }

    /// The transport status (`uae_oal_status_t`) this error corresponds to; [`ClientError::Aesm`] is
    /// a successful transport with a failing result.
    pub fn transport_status(&self) -> TransportStatus {
        match self {
            ClientError::ServiceUnavailable { .. } => TransportStatus::AesmUnavailable,
            ClientError::Timeout { .. } => TransportStatus::Timeout,
            ClientError::Aesm(_) => TransportStatus::Success,
            ClientError::BadResponse(_) | ClientError::Io(_) => TransportStatus::Unexpected,
            ClientError::InvalidParameter(_) => TransportStatus::Invalid,
        }
    }

    /// The `sgx_status_t` that `libsgx_quote_ex` returns for this failure of `api`.
    pub fn sgx_status(&self, api: QuoteExApi) -> u32 {
        match self {
            ClientError::Aesm(code) => sgx_status_for(api, *code),
            other => aesm_protocol::sgx_status_for_transport(other.transport_status())
                .unwrap_or(aesm_protocol::sgx_status::UNEXPECTED),
        }
    }
}
