//! What a quoting backend provides: the [`QuoteBackend`] trait.
//!
//! A backend stands for Intel's quoting enclave (QE3) and its provisioning side: the simulated
//! platform here, Intel's DCAP quote library on hardware. The service does the protocol checks and
//! calls the backend only with well-formed inputs; the backend reports failures as AESM codes
//! ([`BackendError`]), which go to the client unchanged.
//!
//! Calls are blocking. Short ones (a signature, a MAC, a file read on first use) run inline on the
//! server's worker threads, which is the fastest way; a backend whose calls wait on hardware or on
//! a lock for long says so with [`QuoteBackend::runs_inline`] and the server moves its calls to
//! tokio's blocking pool. Implementations must be `Send + Sync` and do their own locking where the
//! underlying library needs calls serialised.

use std::fmt;

use aesm_protocol::AesmCode;
use sgx_types::{Report, TargetInfo};

/// A backend failure: the AESM code for the client and a message for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.name())]
pub struct BackendError {
    /// What the client receives in `errorCode`.
    pub code: AesmCode,
    /// What went wrong, for the service's log.
    pub message: String,
}

impl BackendError {
    /// An error with `code` and a log message.
    pub fn new(code: AesmCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `AESM_ATT_KEY_NOT_INITIALIZED` (42): no attestation key yet (no full-mode InitQuoteEx).
    pub fn att_key_not_initialized() -> Self {
        Self::new(
            AesmCode::AttKeyNotInitialized,
            "the attestation key is not initialised (no full-mode InitQuoteEx yet)",
        )
    }

    /// `AESM_INVALID_REPORT` (47): the app's report is not MACed for the quoting enclave.
    pub fn invalid_report() -> Self {
        Self::new(
            AesmCode::InvalidReport,
            "the report's MAC does not verify for the quoting enclave",
        )
    }
}

/// A quoting backend (simulated QE3, or Intel's DCAP quote library on hardware).
///
/// Object-safe: the server holds an `Arc<dyn QuoteBackend>`.
pub trait QuoteBackend: Send + Sync + fmt::Debug {
    /// A short name for logs and metrics, e.g. `"sim"` or `"dcap"`.
    fn name(&self) -> &'static str;

    /// Whether the quotes are simulated (not rooted in Intel's PKI).
    fn is_simulated(&self) -> bool;

    /// Whether calls are short enough to run on the server's async worker threads (the default).
    /// Return `false` when a call may block for long (an enclave call, a lock held across one);
    /// the server then runs each request on tokio's blocking pool, so that a slow quote never
    /// stalls accepting and reading other connections.
    fn runs_inline(&self) -> bool {
        true
    }

    /// Creates (first call) or loads the attestation key and certifies it; returns the public key
    /// id, SHA-256(attestation public key ‖ QE authentication data). Called by a full-mode
    /// InitQuoteEx; must be idempotent.
    fn init_attestation_key(&self) -> Result<[u8; 32], BackendError>;

    /// The quoting enclave's target info, for the app enclave's report.
    fn qe_target_info(&self) -> Result<TargetInfo, BackendError>;

    /// The size of a quote; [`BackendError::att_key_not_initialized`] before the key exists.
    fn quote_size(&self) -> Result<u32, BackendError>;

    /// A quote for the app enclave's report (exactly [`QuoteBackend::quote_size`] bytes). Fails
    /// with [`BackendError::invalid_report`] if the report is not MACed for the quoting enclave.
    fn quote(&self, app_report: &Report) -> Result<Vec<u8>, BackendError>;

    /// The QE report for the app enclave: report_data = SHA-256(nonce ‖ quote) ‖ 0^32, MACed for
    /// `app_target`.
    fn qe_report_for_app(
        &self,
        quote: &[u8],
        nonce: &[u8; 16],
        app_target: &TargetInfo,
    ) -> Result<Report, BackendError>;
}
