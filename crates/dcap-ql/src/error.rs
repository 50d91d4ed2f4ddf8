//! The crate's startup errors: everything that stops the backend from serving.

use std::path::PathBuf;

use crate::library::PathType;
use crate::quote3::Quote3Error;

/// Why the DCAP backend cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DcapError {
    /// `SGX_AESM_ADDR` is set in the quote helper's own environment.
    #[error(
        "SGX_AESM_ADDR is set (to {value:?}) in the quote helper's environment: Intel's DCAP \
         library would then send its requests to the AESM socket, i.e. back to this helper, instead \
         of driving the quoting enclave; unset SGX_AESM_ADDR for the quote helper (only apps set it)"
    )]
    OutOfProcessMode {
        /// The variable's value (never parsed; its presence is what counts).
        value: String,
    },
    /// The library could not be loaded.
    #[error(
        "cannot load Intel's DCAP quote library {path}: {reason}; install libsgx-dcap-ql (it \
         provides libsgx_dcap_ql.so.1) or pass its location with --dcap-library PATH"
    )]
    LibraryNotLoaded {
        /// What was loaded.
        path: PathBuf,
        /// The dynamic loader's message.
        reason: String,
    },
    /// The library lacks one of the six functions.
    #[error(
        "{path} does not export {symbol} ({reason}): it is not Intel's DCAP quote library \
         libsgx_dcap_ql.so.1, or a version too old to have it"
    )]
    MissingSymbol {
        /// The library.
        path: PathBuf,
        /// The missing function.
        symbol: &'static str,
        /// The dynamic loader's message.
        reason: String,
    },
    /// `sgx_qe_set_enclave_load_policy(SGX_QL_PERSISTENT)` failed.
    #[error("sgx_qe_set_enclave_load_policy(SGX_QL_PERSISTENT) failed: {code}: {fix}")]
    LoadPolicy {
        /// What the library returned.
        code: Quote3Error,
        /// What to do.
        fix: &'static str,
    },
    /// `sgx_ql_set_path` rejected a configured path.
    #[error(
        "sgx_ql_set_path({}, {path}) failed: {code}; the path must name an existing file",
        path_type.name()
    )]
    SetPath {
        /// Which path.
        path_type: PathType,
        /// The path.
        path: PathBuf,
        /// What the library returned.
        code: Quote3Error,
    },
}
