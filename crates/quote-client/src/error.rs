//! The client's error type, one variant per failure class of Intel's client transport.

use std::io;
use std::path::PathBuf;
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
