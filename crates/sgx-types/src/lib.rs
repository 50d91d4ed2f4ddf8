//! Byte-exact SGX structures and the DCAP ECDSA quote wire format.
//!
//! Everything here is pure: no I/O, no clocks, no cryptographic policy. Untrusted bytes are read through
//! one bounds-checked [`reader::Reader`], so a short or malformed input yields a [`ParseError`] naming the
//! field and offset, never a panic.
//!
//! ```
//! use sgx_types::quote::Quote;
//! # fn demo(bytes: &[u8]) -> Result<(), sgx_types::ParseError> {
//! let quote = Quote::parse(bytes)?;
//! println!("MRENCLAVE {:02x?}, {} trailing bytes", quote.report_body.mr_enclave, quote.trailing_bytes.len());
//! assert_eq!(quote.to_bytes(), &bytes[..quote.quote_len()]);
//! # Ok(()) }
//! ```

pub mod error;
pub mod pck;
pub mod quote;
pub mod reader;
pub mod structs;
pub mod tcb;

pub use error::ParseError;
pub use quote::{CertificationData, Quote, QuoteHeader, SignatureData};
pub use structs::{AttKeyId, Attributes, QeReportInfo, QlAttKeyId, Report, ReportBody, TargetInfo};
