//! Why a quote failed verification, and Intel's `sgx_ql_qv_result_t` code for it.

use thiserror::Error;

use crate::time::Rfc3339;

/// A certificate chain or CRL the verifier checks, named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chain {
    /// The PCK certificate chain (quote certification data or collateral `pck_certificate_chain`).
    Pck,
    /// The TCB info issuer chain (TCB signing certificate and root).
    TcbInfo,
    /// The QE identity issuer chain.
    QeIdentity,
    /// The PCK CRL issuer chain (PCK CA and root).
    PckCrl,
}

impl std::fmt::Display for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Chain::Pck => "PCK certificate chain",
            Chain::TcbInfo => "TCB info issuer chain",
            Chain::QeIdentity => "QE identity issuer chain",
            Chain::PckCrl => "PCK CRL issuer chain",
        })
    }
}

/// Which CRL a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrlKind {
    RootCa,
    Pck,
}

impl std::fmt::Display for CrlKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CrlKind::RootCa => "root CA CRL",
            CrlKind::Pck => "PCK CRL",
        })
    }
}

/// A failed verification check. Each message names the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    // --- trust anchor and CRLs ---
    #[error("trust anchor is not a usable certificate: {0}")]
    TrustAnchorInvalid(String),
    #[error("{which} cannot be decoded: {reason}")]
    CrlMalformed { which: CrlKind, reason: String },
    #[error("{which} signature invalid")]
    CrlSignatureInvalid { which: CrlKind },
    #[error("{which} is not valid before {}", Rfc3339(*.this_update))]
    CrlNotYetValid { which: CrlKind, this_update: u64 },
    #[error("{which} expired at {}", Rfc3339(*.next_update))]
    CrlExpired { which: CrlKind, next_update: u64 },
    #[error("{which} lacks the required {extension} extension")]
    CrlMissingExtension {
        which: CrlKind,
        extension: &'static str,
    },
    #[error("{which} is not issued by the issuer of the certificate it must cover ({subject})")]
    CrlIssuerMismatch { which: CrlKind, subject: String },

    // --- quote header ---
    #[error("quote cannot be decoded: {0}")]
    QuoteMalformed(sgx_types::ParseError),
    #[error("unsupported quote version {0}")]
    UnsupportedQuoteVersion(u16),
    #[error("unsupported attestation key type {0} (only ECDSA-P256)")]
    UnsupportedAttestationKeyType(u16),
    #[error("unknown QE vendor id {0} (expected Intel's 939a7233f79c4ca9940a0db3957f0607)")]
    UnknownQeVendor(String),

    // --- collateral documents ---
    #[error("{what} cannot be decoded: {reason}")]
    CollateralMalformed { what: &'static str, reason: String },
    #[error("TCB info is not valid before {}", Rfc3339(*.0))]
    TcbInfoNotYetValid(u64),
    #[error("TCB info expired at {}", Rfc3339(*.0))]
    TcbInfoExpired(u64),
    #[error("TCB info signature invalid")]
    TcbInfoSignatureInvalid,
    #[error("QE identity is not valid before {}", Rfc3339(*.0))]
    QeIdentityNotYetValid(u64),
    #[error("QE identity expired at {}", Rfc3339(*.0))]
    QeIdentityExpired(u64),
    #[error("QE identity signature invalid")]
    QeIdentitySignatureInvalid,
    #[error("unsupported QE identity: id {id:?} version {version} (expected \"QE\" version 2)")]
    UnsupportedQeIdentity { id: String, version: u32 },

    // --- certificate chains ---
    #[error("{chain} cannot be decoded: {reason}")]
    ChainMalformed { chain: Chain, reason: String },
    #[error("{chain}: root certificate is not the trust anchor")]
    ChainUntrusted { chain: Chain },
    #[error("{chain}: signer must be issued directly by the root CA, found {len} certificates")]
    ChainShape { chain: Chain, len: usize },
    #[error("{chain}: certificate {index} ({subject}) is not valid before {}", Rfc3339(*.not_before))]
    CertificateNotYetValid {
        chain: Chain,
        index: usize,
        subject: String,
        not_before: u64,
    },
    #[error("{chain}: certificate {index} ({subject}) expired at {}", Rfc3339(*.not_after))]
    CertificateExpired {
        chain: Chain,
        index: usize,
        subject: String,
        not_after: u64,
    },
    #[error("{chain}: certificate {index} ({subject}) is not issued by the next certificate")]
    IssuerMismatch {
        chain: Chain,
        index: usize,
        subject: String,
    },
    #[error("{chain}: signature of certificate {index} ({subject}) invalid")]
    CertificateSignatureInvalid {
        chain: Chain,
        index: usize,
        subject: String,
    },
    #[error("{chain}: certificate {index} ({subject}) is unusable: {reason}")]
    CertificateUnusable {
        chain: Chain,
        index: usize,
        subject: String,
        reason: String,
    },
    #[error(
        "{chain}: revocation status of certificate {index} ({subject}) unknown: no CRL from its issuer"
    )]
    RevocationUnknown {
        chain: Chain,
        index: usize,
        subject: String,
    },
    #[error("{what} revoked")]
    CertificateRevoked { what: String },
    #[error("PCK certificate SGX extension invalid: {0}")]
    PckExtensionInvalid(String),
    #[error(
        "unsupported certification data type {0}: a PCK certificate chain (type 5) is required"
    )]
    UnsupportedCertificationData(u16),

    // --- quoting enclave ---
    #[error("QE report signature invalid")]
    QeReportSignatureInvalid,
    #[error("QE auth data has {0} bytes, expected 32")]
    QeAuthDataLength(usize),
    #[error("QE report data mismatch: it does not hash the attestation key and QE auth data")]
    QeReportDataMismatch,
    #[error("QE identity mismatch: {field} expected {expected}, QE report has {actual}")]
    QeIdentityMismatch {
        field: &'static str,
        expected: String,
        actual: String,
    },
    #[error("QE is a debug enclave")]
    QeDebug,
    #[error("QE ISVSVN {isv_svn} is below every QE identity TCB level")]
    QeTcbNotSupported { isv_svn: u16 },

    // --- ISV enclave and platform TCB ---
    #[error("ISV enclave report signature invalid")]
    IsvSignatureInvalid,
    /// Platform evidence ([`crate::Verifier::verify_platform`]) must carry no enclave's report:
    /// its report body and ISV signature are zeros.
    #[error(
        "not platform evidence: the quote carries an enclave's {0} (platform evidence has zeros there)"
    )]
    NotPlatformEvidence(&'static str),
    #[error("FMSPC mismatch: PCK certificate has {pck}, TCB info is for {tcb_info}")]
    FmspcMismatch { pck: String, tcb_info: String },
    #[error("PCE-ID mismatch: PCK certificate has {pck}, TCB info is for {tcb_info}")]
    PceIdMismatch { pck: String, tcb_info: String },
    #[error("TCB info is not for SGX (id {id:?}, version {version})")]
    TcbInfoNotSgx { id: String, version: u32 },
    #[error("no matching TCB level: the platform TCB is below every level of the TCB info")]
    NoMatchingTcbLevel,
    #[error("unrecognized TCB status {status:?} in {structure}")]
    UnrecognizedTcbStatus {
        status: String,
        structure: &'static str,
    },
    #[error("TCB status is Revoked")]
    TcbRevoked,
}

/// Intel's `sgx_ql_qv_result_t` (DCAP `sgx_qve_header.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum QvResult {
    Ok = 0x0000,
    ConfigNeeded = 0xA001,
    OutOfDate = 0xA002,
    OutOfDateConfigNeeded = 0xA003,
    InvalidSignature = 0xA004,
    Revoked = 0xA005,
    Unspecified = 0xA006,
    SwHardeningNeeded = 0xA007,
    ConfigAndSwHardeningNeeded = 0xA008,
}

impl QvResult {
    /// The numeric code.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// Intel's constant name.
    pub fn name(self) -> &'static str {
        match self {
            QvResult::Ok => "SGX_QL_QV_RESULT_OK",
            QvResult::ConfigNeeded => "SGX_QL_QV_RESULT_CONFIG_NEEDED",
            QvResult::OutOfDate => "SGX_QL_QV_RESULT_OUT_OF_DATE",
            QvResult::OutOfDateConfigNeeded => "SGX_QL_QV_RESULT_OUT_OF_DATE_CONFIG_NEEDED",
            QvResult::InvalidSignature => "SGX_QL_QV_RESULT_INVALID_SIGNATURE",
            QvResult::Revoked => "SGX_QL_QV_RESULT_REVOKED",
            QvResult::Unspecified => "SGX_QL_QV_RESULT_UNSPECIFIED",
            QvResult::SwHardeningNeeded => "SGX_QL_QV_RESULT_SW_HARDENING_NEEDED",
            QvResult::ConfigAndSwHardeningNeeded => {
                "SGX_QL_QV_RESULT_CONFIG_AND_SW_HARDENING_NEEDED"
            }
        }
    }
}

impl VerifyError {
    /// The `sgx_ql_qv_result_t` Intel's QvE reports for this failure (`status_error_to_ql_qve_result`):
    /// invalid signatures → INVALID_SIGNATURE, revocations → REVOKED, everything else → UNSPECIFIED.
    pub fn qv_result(&self) -> QvResult {
        use VerifyError::*;
        match self {
            CrlSignatureInvalid { .. }
            | TcbInfoSignatureInvalid
            | QeIdentitySignatureInvalid
            | CertificateSignatureInvalid { .. }
            | QeReportSignatureInvalid
            | IsvSignatureInvalid => QvResult::InvalidSignature,
            CertificateRevoked { .. } | TcbRevoked => QvResult::Revoked,
            _ => QvResult::Unspecified,
        }
    }
}
