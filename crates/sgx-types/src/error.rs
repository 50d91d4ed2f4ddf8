//! The one error type for everything parsed from untrusted bytes.

use thiserror::Error;

/// Why bytes could not be read as an SGX structure, a quote or a PCK extension.
///
/// Every variant names the field and, where it applies, the byte offset from the start of the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("truncated at {field} (offset {offset}): needs {needed} bytes, {available} left")]
    Truncated {
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("{field} at offset {offset} has the wrong size: {actual} bytes, expected {expected}")]
    WrongSize {
        field: &'static str,
        offset: usize,
        actual: usize,
        expected: usize,
    },
    #[error("unsupported quote version {version} (offset 0): only 3 and 4 (SGX) are supported")]
    UnsupportedVersion { version: u16 },
    #[error(
        "unsupported attestation key type {att_key_type} (offset 2): only 2 (ECDSA-P256) is supported"
    )]
    UnsupportedAttKeyType { att_key_type: u16 },
    #[error("unsupported TEE type {tee_type:#x} (offset 4): only 0 (SGX) is supported")]
    UnsupportedTeeType { tee_type: u32 },
    #[error("{field} at offset {offset} is invalid: {reason}")]
    Invalid {
        field: &'static str,
        offset: usize,
        reason: String,
    },
    #[error("input is empty")]
    Empty,
    #[error("PCK certificate: {0}")]
    Pck(String),
}
