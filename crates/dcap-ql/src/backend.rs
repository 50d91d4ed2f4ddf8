//! [`DcapBackend`]: the quote helper's [`QuoteBackend`] over Intel's DCAP quote library.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use aesm_protocol::AesmCode;
use aesm_service::{BackendError, QuoteBackend};
use sgx_types::quote::Quote;
use sgx_types::{Report, TargetInfo};

use crate::error::DcapError;
use crate::library::{DcapLibrary, LoadPolicy, PathType};
use crate::quote3::{self, Quote3Error};

/// How `SGX_QL_ERROR_BUSY` is retried: up to `attempts` calls in all, waiting `initial_delay`,
/// then twice as long each time, at most `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in all (at least 1).
    pub attempts: u32,
    /// The first wait.
    pub initial_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Five calls (as Occlum retries), waiting 10, 20, 40 and 80 ms between them.
    fn default() -> Self {
        Self {
            attempts: 5,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed call number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }
}

/// Start-up options of the backend.
#[derive(Debug, Clone)]
pub struct DcapOptions {
    /// BUSY retries.
    pub retry: RetryPolicy,
    /// Paths given to `sgx_ql_set_path` before anything else (QE3, PCE, quote provider, ID
    /// enclave), for libraries installed outside the loader's search path.
    pub paths: Vec<(PathType, PathBuf)>,
    /// Use `sgx_ql_init_quote` for InitQuoteEx where the library provides it (it returns the real
    /// public key id); otherwise `sgx_qe_get_target_info`.
    pub core_init: bool,
}

impl Default for DcapOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            paths: Vec::new(),
            core_init: true,
        }
    }
}

#[derive(Debug, Default)]
struct Cache {
    target_info: Option<TargetInfo>,
    pub_key_id: Option<[u8; 32]>,
    /// The code of the last failure logged at error level; cleared by a success.
    last_logged: Option<u32>,
}

/// The hardware backend: Intel's DCAP quote library in process, every call serialised.
///
/// - InitQuoteEx → `sgx_ql_init_quote` of Intel's QE3 logic library (reached through the DCAP
///   library's handle; it returns the public key id), or `sgx_qe_get_target_info` where it is
///   absent; both create or load and certify the attestation key.
/// - GetQuoteSizeEx → `sgx_qe_get_quote_size`; GetQuoteEx → `sgx_qe_get_quote`.
/// - `SGX_QL_ERROR_BUSY` is retried per [`RetryPolicy`]; every other `quote3_error_t` goes to the
///   client as the AESM code of [`quote3::aesm_code`], and to the log as one line naming the cause
///   and the fix (at error level the first time a code is seen after a success, then at debug).
/// - Calls run on the server's blocking pool ([`QuoteBackend::runs_inline`] is `false`).
/// - A QE report for the app (`qe_report_info`) cannot be produced: `sgx_qe_get_quote` has no such
///   parameter. [`QuoteBackend::qe_report_for_app`] answers `AESM_UNABLE_TO_GENERATE_QE_REPORT`
///   (49); the dispatcher still echoes the request's `qe_report_info`.
/// - Without `sgx_ql_init_quote`, the public key id (ECDSA_ID) is computed from the first quote
///   produced (SHA-256 of the attestation key and the QE authentication data, exactly what the QE
///   reports); until then InitQuoteEx returns 32 zero bytes. Intel's own DCAP wrapper, Open Enclave
///   and Gramine check only its size.
#[derive(Debug)]
pub struct DcapBackend {
    library: Mutex<DcapLibrary>,
    retry: RetryPolicy,
    core_init: bool,
    cache: Mutex<Cache>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DcapBackend {
    /// Loads the library at `path` ([`DcapLibrary::open`]: refuses when `SGX_AESM_ADDR` is set),
    /// applies the configured paths and sets the enclave load policy to `SGX_QL_PERSISTENT`.
    pub fn start(path: &Path, options: DcapOptions) -> Result<Self, DcapError> {
        let mut library = DcapLibrary::open(path)?;
        for (path_type, file) in &options.paths {
            library
                .set_path(*path_type, file)
                .map_err(|code| DcapError::SetPath {
                    path_type: *path_type,
                    path: file.clone(),
                    code,
                })?;
        }
        library
            .set_enclave_load_policy(LoadPolicy::Persistent)
            .map_err(|code| DcapError::LoadPolicy {
                code,
                fix: code.diagnosis().fix,
            })?;
        let core_init = options.core_init && library.has_core_init();
        tracing::info!(
            library = %library.path().display(),
            policy = "SGX_QL_PERSISTENT",
            init = if core_init { "sgx_ql_init_quote" } else { "sgx_qe_get_target_info" },
            "Intel's DCAP quote library loaded"
        );
        Ok(Self {
            library: Mutex::new(library),
            retry: options.retry,
            core_init,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The library's path.
    pub fn library_path(&self) -> PathBuf {
        lock(&self.library).path().to_path_buf()
    }

    /// Runs `f` on the library, retrying BUSY; maps a failure to the client's AESM code and logs it.
    fn call<T>(
        &self,
        function: &'static str,
        mut f: impl FnMut(&mut DcapLibrary) -> Result<T, Quote3Error>,
    ) -> Result<T, BackendError> {
        let mut attempt = 1;
        loop {
            let result = f(&mut lock(&self.library));
            match result {
                Ok(v) => {
                    lock(&self.cache).last_logged = None;
                    return Ok(v);
                }
                Err(e)
                    if e.code() == quote3::ERROR_BUSY && attempt < self.retry.attempts.max(1) =>
                {
                    let delay = self.retry.delay(attempt);
                    tracing::debug!(function, attempt, ?delay, "DCAP library busy, retrying");
                    std::thread::sleep(delay);
                    attempt += 1;
                }
                Err(e) => return Err(self.failure(function, e, attempt)),
            }
        }
    }

    fn failure(&self, function: &'static str, error: Quote3Error, attempts: u32) -> BackendError {
        let code = error.aesm_code();
        let d = error.diagnosis();
        let first = {
            let mut cache = lock(&self.cache);
            let first = cache.last_logged != Some(error.code());
            cache.last_logged = Some(error.code());
            first
        };
        let message = format!("{function}: {error}: {}; fix: {}", d.cause, d.fix);
        if first {
            tracing::error!(
                function,
                quote3_error = %error,
                aesm_code = %code,
                attempts,
                class = ?d.class,
                "{}; fix: {}",
                d.cause,
                d.fix
            );
        } else {
            tracing::debug!(function, quote3_error = %error, aesm_code = %code, "{}", d.cause);
        }
        BackendError::new(code, message)
    }

    /// Learns the ECDSA_ID from a quote: SHA-256(attestation key ‖ QE authentication data).
    fn note_pub_key_id(&self, quote: &[u8]) {
        let Ok(parsed) = Quote::parse(quote) else {
            return;
        };
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&parsed.signature.attestation_key);
        ctx.update(parsed.signature.qe_auth_data);
        let mut id = [0u8; 32];
        id.copy_from_slice(ctx.finish().as_ref());
        lock(&self.cache).pub_key_id = Some(id);
    }
}

impl QuoteBackend for DcapBackend {
    fn name(&self) -> &'static str {
        "dcap"
    }

    fn is_simulated(&self) -> bool {
        false
    }

    /// Enclave calls, PCK certificate fetches by the quote provider and BUSY backoff can take long:
    /// the server runs these calls on its blocking pool.
    fn runs_inline(&self) -> bool {
        false
    }

    fn init_attestation_key(&self) -> Result<[u8; 32], BackendError> {
        if self.core_init {
            let (ti, id) = self.call("sgx_ql_init_quote", |lib| {
                lib.init_quote()
                    .unwrap_or(Err(Quote3Error(quote3::INTERFACE_UNAVAILABLE)))
            })?;
            let mut cache = lock(&self.cache);
            cache.target_info = Some(ti);
            cache.pub_key_id = Some(id);
            return Ok(id);
        }
        let ti = self.call("sgx_qe_get_target_info", |lib| lib.qe_target_info())?;
        let mut cache = lock(&self.cache);
        cache.target_info = Some(ti);
        Ok(cache.pub_key_id.unwrap_or([0u8; 32]))
    }

    fn qe_target_info(&self) -> Result<TargetInfo, BackendError> {
        if let Some(ti) = lock(&self.cache).target_info {
            return Ok(ti);
        }
        let ti = self.call("sgx_qe_get_target_info", |lib| lib.qe_target_info())?;
        lock(&self.cache).target_info = Some(ti);
        Ok(ti)
    }

    fn quote_size(&self) -> Result<u32, BackendError> {
        self.call("sgx_qe_get_quote_size", |lib| lib.quote_size())
    }

    fn quote(&self, app_report: &Report) -> Result<Vec<u8>, BackendError> {
        let mut quote = self.call("sgx_qe_get_quote", |lib| {
            let size = lib.quote_size()?;
            lib.quote(app_report, size)
        })?;
        // The library fills the buffer of the size it asked for; trim anything after the quote.
        if let Ok(parsed) = Quote::parse(&quote) {
            let len = parsed.quote_len();
            quote.truncate(len);
        }
        self.note_pub_key_id(&quote);
        Ok(quote)
    }

    fn qe_report_for_app(
        &self,
        _quote: &[u8],
        _nonce: &[u8; 16],
        _app_target: &TargetInfo,
    ) -> Result<Report, BackendError> {
        Err(BackendError::new(
            AesmCode::UnableToGenerateQeReport,
            "Intel's DCAP library (sgx_qe_get_quote) cannot produce a QE report for the app; \
             request the quote without qe_report_info",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let p = RetryPolicy::default();
        let delays: Vec<_> = (1..=6).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 200]);
        assert_eq!(p.delay(u32::MAX), p.max_delay);
    }
}
