//! The one error type of the simulated platform.

use std::path::PathBuf;

/// Everything that can go wrong in the simulated platform.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Quote generation was asked for before the attestation key was created (`init_attestation_key`).
    #[error("the attestation key is not initialised (run InitQuoteEx in full mode first)")]
    AttKeyNotInitialized,
    /// The report's MAC does not verify for the simulated QE's target info.
    #[error("the report's MAC does not verify for the quoting enclave")]
    InvalidReport,
    /// The state directory holds no simulated platform.
    #[error("no simulated SGX platform in {0} (run `confcom sim init --state-dir {0}`)")]
    NotInitialised(PathBuf),
    /// The directory holds no published simulated CPU material (`cpu.json`).
    #[error(
        "no simulated CPU material in {0} (a quote helper with the sim backend publishes it next to its socket)"
    )]
    CpuNotPublished(PathBuf),
    /// A file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A state or published file exists but its content is not what the platform wrote.
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A certificate, CRL or key could not be built.
    #[error("PKI: {0}")]
    Pki(String),
    /// A cryptographic primitive failed (key generation, signing, randomness).
    #[error("crypto: {0}")]
    Crypto(&'static str),
    /// An option value is out of range or inconsistent.
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

impl SimError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl From<rcgen::Error> for SimError {
    fn from(e: rcgen::Error) -> Self {
        Self::Pki(e.to_string())
    }
}
