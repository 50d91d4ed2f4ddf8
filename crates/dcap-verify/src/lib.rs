//! DCAP SGX quote verification: every check of Intel's QVL and dcap-qvl, in dcap-qvl's order, as a pure
//! function of the quote, its collateral, a trust anchor and the time.
//!
//! Checks, in order (so that the same error wins when several apply):
//! 1. the root CA CRL (signed by the anchor, within its window, not revoking the root), the PCK CRL
//!    decoded;
//! 2. the quote header (version 3 or 4, ECDSA-P256 attestation key, Intel's QE vendor id);
//! 3. the TCB info (window, issuer chain issued directly by the root, signature over its exact bytes);
//! 4. the QE identity (the same), which must be `QE` version 2;
//! 5. the PCK CRL issuer chain, the PCK CRL's signature by the PCK CA and its window; the PCK chain to
//!    the anchor: root byte-identical to the anchor, each certificate valid now and not revoked (root
//!    CA CRL for the PCK CA, PCK CRL for the leaf), the PCK SGX extension;
//! 6. the QE report signature by the PCK key;
//! 7. the QE report data = SHA-256(attestation key ‖ QE auth data) ‖ zeros;
//! 8. the QE against the QE identity (MRSIGNER, not debug, ISVPRODID, masked MISCSELECT and
//!    attributes, its TCB level by ISVSVN);
//! 9. the ISV signature by the attestation key over header ‖ report body;
//! 10. FMSPC and PCE-ID of the PCK certificate against the TCB info, the platform TCB level (first in
//!     descending order met by all 16 CPUSVN components and the PCESVN);
//! 11. convergence with the QE status (a Revoked result is an error);
//! 12. the relying-party [`Policy`] (debug, identity, report data, TCB evaluation number, statuses).
//!
//! ```
//! use dcap_verify::{Collateral, Policy, TrustAnchor, verify};
//! # fn demo(quote: &[u8], collateral_json: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let collateral = Collateral::from_json(collateral_json)?;
//! let verdict = verify(quote, &collateral, &TrustAnchor::intel(), 1_751_624_924, &Policy::default())?;
//! println!("{} ({:#06x}), accepted: {}", verdict.status, verdict.qv_result.code(), verdict.accepted);
//! # Ok(()) }
//! ```
//!
//! For many quotes, keep one [`Verifier`]: it caches verified collateral, PCK chains and QE report
//! signatures by their exact bytes, so a warm quote costs little more than its ISV signature.

mod collateral;
mod error;
mod policy;
mod tcb;
pub mod time;
mod verifier;
mod x509;

pub use collateral::{Collateral, LoadError, parse_signed_document};
pub use error::{Chain, CrlKind, QvResult, VerifyError};
pub use policy::{Policy, Verdict};
pub use tcb::{QeIdentity, QeTcbLevel, TcbInfo, TcbLevel, TcbStatus};
pub use verifier::{CacheStats, INTEL_ROOT_CA_DER, TrustAnchor, Verifier, verify};
