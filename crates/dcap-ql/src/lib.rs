//! The quote helper's hardware backend: Intel's in-process DCAP quote library
//! (`libsgx_dcap_ql.so.1`), loaded at run time, behind [`aesm_service::QuoteBackend`].
//!
//! On a real SGX node Intel's quoting and provisioning enclaves (QE3, PCE) are signed by Intel and
//! driven by its DCAP quote library, which fetches the PCK certificates through a quote provider
//! library (Intel's default QPL talking to a PCCS, or Microsoft's az-dcap-client). This crate loads
//! that library with `dlopen`, so the quote helper serves the same AESM protocol on hardware as in
//! simulation.
//!
//! - [`library`]: [`DcapLibrary`], the six C functions behind a safe interface (the only `unsafe`).
//! - [`backend`]: [`DcapBackend`], the [`QuoteBackend`](aesm_service::QuoteBackend): calls
//!   serialised, `SGX_QL_ERROR_BUSY` retried with backoff, `SGX_QL_PERSISTENT` at start.
//! - [`quote3`]: `quote3_error_t` names, the AESM code each becomes, and a diagnosis (cause and fix)
//!   for the log.
//!
//! The library must run in process: [`DcapLibrary::open`] refuses when `SGX_AESM_ADDR` is set in
//! the helper's own environment, since the library would then send its requests to the AESM
//! socket, i.e. back to the helper.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use aesm_service::Dispatcher;
//! use dcap_ql::{DcapBackend, DcapOptions, DEFAULT_LIBRARY};
//!
//! # fn demo() -> Result<(), dcap_ql::DcapError> {
//! let backend = DcapBackend::start(DEFAULT_LIBRARY.as_ref(), DcapOptions::default())?;
//! let dispatcher = Dispatcher::new(Arc::new(backend));
//! # let _ = dispatcher; Ok(()) }
//! ```

pub mod backend;
mod error;
pub mod library;
pub mod quote3;

pub use backend::{DcapBackend, DcapOptions, RetryPolicy};
pub use error::DcapError;
pub use library::{AESM_ADDR_ENV, DEFAULT_LIBRARY, DcapLibrary, LoadPolicy, PathType};
pub use quote3::{Diagnosis, FailureClass, Quote3Error};
