//! Why a call failed, and the `quote3_error_t` it returns.

use pccs::client::FetchError;

use crate::config::ConfigError;
use crate::types::*;

/// What a call was fetching; decides the code of a `404`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Document {
    /// The PCK certificate (`sgx_ql_get_quote_config`).
    PckCert,
    /// Verification collateral (`sgx_ql_get_quote_verification_collateral`).
    Collateral,
    /// TDX verification collateral (`tdx_ql_get_quote_verification_collateral`).
    TdxCollateral,
    /// The QvE identity (`sgx_ql_get_qve_identity`).
    QveIdentity,
    /// The root CA CRL (`sgx_ql_get_root_ca_crl`).
    RootCaCrl,
}

impl std::fmt::Display for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Document::PckCert => "the PCK certificate",
            Document::Collateral => "the verification collateral",
            Document::TdxCollateral => "the TDX verification collateral",
            Document::QveIdentity => "the QvE identity",
            Document::RootCaCrl => "the root CA CRL",
        })
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum QplError {
    /// The settings are unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A pointer, size or name given by the caller is invalid.
    #[error("invalid parameter: {0}")]
    InvalidParameter(&'static str),
    /// Fetching failed.
    #[error("{document}: {source}")]
    Fetch {
        /// What was fetched.
        document: Document,
        /// Why it failed.
        source: FetchError,
    },
    /// `local_cache_only` is set and the cache has no fresh entry.
    #[error("{0} is not in the local cache (local_cache_only is set)")]
    NotCached(Document),
    /// A document is too large for its size field.
    #[error("{what} has {len} bytes, more than the {max} its size field holds")]
    TooLarge {
        /// Which.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A cache entry lacks a part (a file not written by this library).
    #[error("a cache entry has no usable {0}")]
    DamagedCacheEntry(&'static str),
    /// `malloc` failed.
    #[error("out of memory")]
    OutOfMemory,
    /// `sgx_qpl_clear_cache` could not remove every entry.
    #[error("cannot clear the cache in {}: {reason}", dir.display())]
    ClearCache {
        /// The cache directory.
        dir: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}

impl QplError {
    /// The `quote3_error_t` of this failure, as Intel's library maps it.
    pub fn status(&self) -> quote3_error_t {
        match self {
            QplError::Config(ConfigError::InvalidJson { .. }) => SGX_QL_CONFIG_INVALID_JSON,
            QplError::Config(_) => SGX_QL_ERROR_UNEXPECTED,
            QplError::InvalidParameter(_) => SGX_QL_ERROR_INVALID_PARAMETER,
            QplError::NotCached(document) => not_found(*document),
            QplError::TooLarge { .. } => SGX_QL_ERROR_MESSAGE_PARSING_ERROR,
            QplError::OutOfMemory => SGX_QL_ERROR_OUT_OF_MEMORY,
            QplError::DamagedCacheEntry(_) => SGX_QL_ERROR_UNEXPECTED,
            QplError::ClearCache { .. } => SGX_QL_PERSISTENT_STORAGE_ERROR,
            QplError::Fetch { document, source } => match source {
                FetchError::BadUrl(_) | FetchError::Trust(_) => SGX_QL_ERROR_UNEXPECTED,
                FetchError::UntrustedCertificate { .. } => SGX_QL_ROOT_CA_UNTRUSTED,
                FetchError::Transport { .. } => SGX_QL_NETWORK_ERROR,
                FetchError::BadReply { .. } => SGX_QL_ERROR_MESSAGE_PARSING_ERROR,
                FetchError::Unsupported { .. } => SGX_QL_ERROR_INVALID_PARAMETER,
                FetchError::Status { status, .. } => match status {
                    404 => not_found(*document),
                    403 => SGX_QL_NETWORK_ERROR,
                    461 => SGX_QL_PLATFORM_UNKNOWN,
                    462 => SGX_QL_CERTS_UNAVAILABLE,
                    503 => SGX_QL_SERVICE_UNAVAILABLE,
                    _ => SGX_QL_UNKNOWN_MESSAGE_RESPONSE,
                },
            },
        }
    }
}

fn not_found(document: Document) -> quote3_error_t {
    match document {
        Document::PckCert => SGX_QL_NO_PLATFORM_CERT_DATA,
        Document::Collateral | Document::TdxCollateral | Document::RootCaCrl => {
            SGX_QL_NO_QUOTE_COLLATERAL_DATA
        }
        Document::QveIdentity => SGX_QL_NO_QVE_IDENTITY_DATA,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_error(document: Document, status: u16) -> quote3_error_t {
        QplError::Fetch {
            document,
            source: FetchError::Status {
                url: "http://x/".into(),
                status,
                message: String::new(),
            },
        }
        .status()
    }

    #[test]
    fn http_statuses_map_as_intels_library_maps_them() {
        assert_eq!(status_error(Document::PckCert, 404), 0xE011);
        assert_eq!(status_error(Document::Collateral, 404), 0xE01B);
        assert_eq!(status_error(Document::QveIdentity, 404), 0xE037);
        assert_eq!(status_error(Document::Collateral, 403), 0xE019);
        assert_eq!(status_error(Document::PckCert, 461), 0xE047);
        assert_eq!(status_error(Document::PckCert, 462), 0xE049);
        assert_eq!(status_error(Document::Collateral, 503), 0xE040);
        assert_eq!(status_error(Document::Collateral, 500), 0xE044);
        assert_eq!(QplError::NotCached(Document::PckCert).status(), 0xE011);
        assert_eq!(QplError::InvalidParameter("x").status(), 0xE002);
        let transport = QplError::Fetch {
            document: Document::Collateral,
            source: FetchError::Transport {
                url: "http://x/".into(),
                reason: "Connection refused".into(),
            },
        };
        assert_eq!(transport.status(), 0xE019);
        let untrusted = QplError::Fetch {
            document: Document::PckCert,
            source: FetchError::UntrustedCertificate {
                url: "https://x/".into(),
                reason: "invalid peer certificate: UnknownIssuer".into(),
            },
        };
        assert_eq!(untrusted.status(), 0xE065);
        // A parsing failure that mentions a certificate is still a parsing failure.
        let bad = QplError::Fetch {
            document: Document::PckCert,
            source: FetchError::BadReply {
                url: "https://x/".into(),
                reason: "certificate: invalid PEM, unknown label".into(),
            },
        };
        assert_eq!(bad.status(), 0xE046);
    }
}
