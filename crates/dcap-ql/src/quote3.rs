//! `quote3_error_t`: names, the AESM code each one becomes, and what an operator should do about it.

use std::fmt;

use aesm_protocol::AesmCode;
use aesm_protocol::codes::aesm_code_for_quote3_error;

macro_rules! quote3_codes {
    ($( $const:ident = $value:literal => $name:literal, )*) => {
        $(
            #[doc = concat!("`", $name, "`")]
            pub const $const: u32 = $value;
        )*

        /// Intel's name of a `quote3_error_t` value, if it has one.
        pub fn name(code: u32) -> Option<&'static str> {
            match code {
                $( $value => Some($name), )*
                _ => None,
            }
        }
    };
}

quote3_codes! {
    SUCCESS = 0x0000 => "SGX_QL_SUCCESS",
    ERROR_UNEXPECTED = 0xE001 => "SGX_QL_ERROR_UNEXPECTED",
    ERROR_INVALID_PARAMETER = 0xE002 => "SGX_QL_ERROR_INVALID_PARAMETER",
    ERROR_OUT_OF_MEMORY = 0xE003 => "SGX_QL_ERROR_OUT_OF_MEMORY",
    ERROR_ECDSA_ID_MISMATCH = 0xE004 => "SGX_QL_ERROR_ECDSA_ID_MISMATCH",
    PATHNAME_BUFFER_OVERFLOW_ERROR = 0xE005 => "SGX_QL_PATHNAME_BUFFER_OVERFLOW_ERROR",
    FILE_ACCESS_ERROR = 0xE006 => "SGX_QL_FILE_ACCESS_ERROR",
    ERROR_STORED_KEY = 0xE007 => "SGX_QL_ERROR_STORED_KEY",
    ERROR_PUB_KEY_ID_MISMATCH = 0xE008 => "SGX_QL_ERROR_PUB_KEY_ID_MISMATCH",
    ERROR_INVALID_PCE_SIG_SCHEME = 0xE009 => "SGX_QL_ERROR_INVALID_PCE_SIG_SCHEME",
    ATT_KEY_BLOB_ERROR = 0xE00A => "SGX_QL_ATT_KEY_BLOB_ERROR",
    UNSUPPORTED_ATT_KEY_ID = 0xE00B => "SGX_QL_UNSUPPORTED_ATT_KEY_ID",
    UNSUPPORTED_LOADING_POLICY = 0xE00C => "SGX_QL_UNSUPPORTED_LOADING_POLICY",
    INTERFACE_UNAVAILABLE = 0xE00D => "SGX_QL_INTERFACE_UNAVAILABLE",
    PLATFORM_LIB_UNAVAILABLE = 0xE00E => "SGX_QL_PLATFORM_LIB_UNAVAILABLE",
    ATT_KEY_NOT_INITIALIZED = 0xE00F => "SGX_QL_ATT_KEY_NOT_INITIALIZED",
    ATT_KEY_CERT_DATA_INVALID = 0xE010 => "SGX_QL_ATT_KEY_CERT_DATA_INVALID",
    NO_PLATFORM_CERT_DATA = 0xE011 => "SGX_QL_NO_PLATFORM_CERT_DATA",
    OUT_OF_EPC = 0xE012 => "SGX_QL_OUT_OF_EPC",
    ERROR_REPORT = 0xE013 => "SGX_QL_ERROR_REPORT",
    ENCLAVE_LOST = 0xE014 => "SGX_QL_ENCLAVE_LOST",
    INVALID_REPORT = 0xE015 => "SGX_QL_INVALID_REPORT",
    ENCLAVE_LOAD_ERROR = 0xE016 => "SGX_QL_ENCLAVE_LOAD_ERROR",
    UNABLE_TO_GENERATE_QE_REPORT = 0xE017 => "SGX_QL_UNABLE_TO_GENERATE_QE_REPORT",
    KEY_CERTIFCATION_ERROR = 0xE018 => "SGX_QL_KEY_CERTIFCATION_ERROR",
    NETWORK_ERROR = 0xE019 => "SGX_QL_NETWORK_ERROR",
    MESSAGE_ERROR = 0xE01A => "SGX_QL_MESSAGE_ERROR",
    ERROR_INVALID_PRIVILEGE = 0xE035 => "SGX_QL_ERROR_INVALID_PRIVILEGE",
    UNSUPPORTED_MODE = 0xE03E => "SGX_QL_UNSUPPORTED_MODE",
    NO_DEVICE = 0xE03F => "SGX_QL_NO_DEVICE",
    SERVICE_UNAVAILABLE = 0xE040 => "SGX_QL_SERVICE_UNAVAILABLE",
    NETWORK_FAILURE = 0xE041 => "SGX_QL_NETWORK_FAILURE",
    SERVICE_TIMEOUT = 0xE042 => "SGX_QL_SERVICE_TIMEOUT",
    ERROR_BUSY = 0xE043 => "SGX_QL_ERROR_BUSY",
    UNKNOWN_MESSAGE_RESPONSE = 0xE044 => "SGX_QL_UNKNOWN_MESSAGE_RESPONSE",
    PERSISTENT_STORAGE_ERROR = 0xE045 => "SGX_QL_PERSISTENT_STORAGE_ERROR",
    ERROR_MESSAGE_PARSING_ERROR = 0xE046 => "SGX_QL_ERROR_MESSAGE_PARSING_ERROR",
    PLATFORM_UNKNOWN = 0xE047 => "SGX_QL_PLATFORM_UNKNOWN",
    UNKNOWN_API_VERSION = 0xE048 => "SGX_QL_UNKNOWN_API_VERSION",
    CERTS_UNAVAILABLE = 0xE049 => "SGX_QL_CERTS_UNAVAILABLE",
}

/// A `quote3_error_t` returned by the library (never `SGX_QL_SUCCESS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quote3Error(pub u32);

impl Quote3Error {
    /// The raw value.
    pub fn code(self) -> u32 {
        self.0
    }

    /// What the client receives: see [`aesm_code`].
    pub fn aesm_code(self) -> AesmCode {
        aesm_code(self.0)
    }

    /// The failure class with its cause and fix.
    pub fn diagnosis(self) -> Diagnosis {
        diagnose(self.0)
    }
}

impl fmt::Display for Quote3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match name(self.0) {
            Some(n) => write!(f, "{n} ({:#06x})", self.0),
            None => write!(f, "unknown quote3_error_t ({:#06x})", self.0),
        }
    }
}

/// The AESM code a client receives for a `quote3_error_t`.
///
/// aesmd's own table (`aesm_protocol::codes::aesm_code_for_quote3_error`, spec §1.7) covers
/// 0xE001–0xE01A and sends everything else to `AESM_UNEXPECTED_ERROR`. The in-process library also
/// returns the newer codes that name a failure class of their own; for those this backend answers
/// the AESM code whose meaning matches, chosen so that an app using Intel's DCAP library out of
/// process gets back the very `quote3_error_t` the library returned here (AESM code →
/// `libsgx_quote_ex` status → DCAP wrapper):
///
/// | quote3_error_t | AESM code | the app sees |
/// |---|---|---|
/// | `SGX_QL_NO_DEVICE` 0xE03F | `AESM_NO_DEVICE_ERROR` 2 | 0xE03F |
/// | `SGX_QL_SERVICE_UNAVAILABLE` 0xE040 | `AESM_SERVICE_UNAVAILABLE` 30 | 0xE040 |
/// | `SGX_QL_NETWORK_FAILURE` 0xE041 | `AESM_NETWORK_ERROR` 12 | 0xE041 |
/// | `SGX_QL_ERROR_BUSY` 0xE043 (after the retries) | `AESM_BUSY` 18 | 0xE043 |
/// | `SGX_QL_ERROR_INVALID_PRIVILEGE` 0xE035 | `AESM_SGX_PROVISION_FAILED` 16 | 0xE001, as from aesmd |
pub fn aesm_code(code: u32) -> AesmCode {
    match code {
        NO_DEVICE => AesmCode::NoDeviceError,
        SERVICE_UNAVAILABLE => AesmCode::ServiceUnavailable,
        NETWORK_FAILURE => AesmCode::NetworkError,
        ERROR_BUSY => AesmCode::Busy,
        ERROR_INVALID_PRIVILEGE => AesmCode::SgxProvisionFailed,
        other => aesm_code_for_quote3_error(other),
    }
}

/// The failure classes an operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// No SGX device node (or SGX disabled).
    DeviceMissing,
    /// The PCE could not be used: no access to the provision device, or key certification failed.
    Provisioning,
    /// The quote provider library had no PCK certificates for this platform (0xE011).
    PckCertificatesUnavailable,
    /// The quote provider library could not reach its PCK certificate service.
    QuoteProviderNetwork,
    /// No quote provider library is installed.
    QuoteProviderMissing,
    /// The PCK certificates do not fit the platform, or the service's reply was unusable.
    PckCertificatesInvalid,
    /// Not enough EPC for QE3 and the PCE.
    OutOfEpc,
    /// Intel's QE3/PCE enclaves could not be loaded.
    EnclaveLoad,
    /// The library stayed busy through every retry.
    Busy,
    /// The library runs out of process (`SGX_AESM_ADDR` set).
    OutOfProcess,
    /// The app's report is not for this platform's quoting enclave (the client's problem).
    InvalidReport,
    /// The attestation key is gone (e.g. after a TCB change); the next InitQuoteEx recreates it.
    AttestationKeyLost,
    /// Anything else.
    Other,
}

/// Why a call failed and what to do about it, for the one log line per failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Diagnosis {
    /// The class.
    pub class: FailureClass,
    /// The cause, in an operator's words.
    pub cause: &'static str,
    /// The fix.
    pub fix: &'static str,
}

/// The diagnosis of a `quote3_error_t`.
pub fn diagnose(code: u32) -> Diagnosis {
    use FailureClass as C;
    let (class, cause, fix) = match code {
        NO_DEVICE => (
            C::DeviceMissing,
            "the DCAP library found no SGX device (/dev/sgx_enclave or /dev/sgx/enclave)",
            "give the quote helper the SGX device nodes (request sgx.intel.com/enclave and \
             sgx.intel.com/provision, or mount /dev/sgx_enclave and /dev/sgx_provision) and check \
             that SGX is enabled in the firmware; `confcom doctor` shows what the node has",
        ),
        ERROR_INVALID_PRIVILEGE | KEY_CERTIFCATION_ERROR | ERROR_INVALID_PCE_SIG_SCHEME => (
            C::Provisioning,
            "the provisioning certification enclave could not certify the attestation key \
             (no access to the provision device, or the PCE refused)",
            "give the quote helper /dev/sgx_provision (or /dev/sgx/provision) with read-write \
             access (group sgx_prv), and keep libsgx-ae-pce at the version of libsgx-dcap-ql",
        ),
        NO_PLATFORM_CERT_DATA | CERTS_UNAVAILABLE | PLATFORM_UNKNOWN => (
            C::PckCertificatesUnavailable,
            "the quote provider library (libdcap_quoteprov.so.1) could not fetch PCK \
             certificates for this platform",
            "check the provider's configuration (PCCS_URL in /etc/sgx_default_qcnl.conf for \
             Intel's QPL; az-dcap-client's settings on Azure) and that the platform is registered \
             with the PCCS",
        ),
        NETWORK_ERROR | NETWORK_FAILURE => (
            C::QuoteProviderNetwork,
            "the quote provider library could not reach its PCK certificate service",
            "check the service URL in /etc/sgx_default_qcnl.conf (or az-dcap-client's), proxy \
             settings and network access from the node",
        ),
        PLATFORM_LIB_UNAVAILABLE => (
            C::QuoteProviderMissing,
            "no quote provider library (libdcap_quoteprov.so.1) is installed",
            "install libsgx-dcap-default-qpl (Intel PCCS) or az-dcap-client (Azure), or give the \
             quote helper its path (SGX_QL_QPL_PATH)",
        ),
        ATT_KEY_CERT_DATA_INVALID
        | MESSAGE_ERROR
        | ERROR_MESSAGE_PARSING_ERROR
        | UNKNOWN_MESSAGE_RESPONSE => (
            C::PckCertificatesInvalid,
            "the PCK certificates from the quote provider do not fit this platform's TCB, or its \
             service sent an unusable reply",
            "refresh the PCCS cache for this platform (after a microcode or BIOS update) and \
             check that the provider talks to a compatible PCCS API version",
        ),
        OUT_OF_EPC => (
            C::OutOfEpc,
            "not enough EPC to load Intel's quoting and provisioning enclaves",
            "request EPC for the quote helper (kubernetes.azure.com/sgx_epc_mem_in_MiB) or reduce \
             the EPC used by other enclaves on the node",
        ),
        ENCLAVE_LOAD_ERROR | INTERFACE_UNAVAILABLE | ENCLAVE_LOST => (
            C::EnclaveLoad,
            "Intel's QE3/PCE enclaves could not be loaded",
            "install libsgx-ae-qe3 and libsgx-ae-pce matching libsgx-dcap-ql (or set their paths), \
             and check the enclave device permissions",
        ),
        ERROR_BUSY => (
            C::Busy,
            "the DCAP library stayed busy through every retry",
            "retry later; if it persists, check for another process driving the same quoting \
             enclave",
        ),
        UNSUPPORTED_MODE | SERVICE_UNAVAILABLE => (
            C::OutOfProcess,
            "the DCAP library runs out of process and would send requests to an AESM socket",
            "unset SGX_AESM_ADDR in the quote helper's environment",
        ),
        INVALID_REPORT | ERROR_REPORT => (
            C::InvalidReport,
            "the app's report is not MACed for this platform's quoting enclave",
            "the app must create its report for the target info of a fresh InitQuoteEx",
        ),
        ATT_KEY_NOT_INITIALIZED | ATT_KEY_BLOB_ERROR | ERROR_STORED_KEY => (
            C::AttestationKeyLost,
            "the attestation key is not initialised in the DCAP library",
            "the client must call InitQuoteEx (sgx_qe_get_target_info) again",
        ),
        _ => (
            C::Other,
            "the DCAP library failed",
            "see Intel's documentation of the code; run `confcom doctor` on the node",
        ),
    };
    Diagnosis { class, cause, fix }
}

#[cfg(test)]
mod tests {
    use aesm_protocol::codes::{QuoteExApi, quote3_error_for_sgx_status, sgx_status_for};

    use super::*;

    /// What an app using Intel's DCAP library out of process gets for the AESM code we answer.
    fn seen_by_app(api: QuoteExApi, code: u32) -> u32 {
        quote3_error_for_sgx_status(sgx_status_for(api, aesm_code(code).code()))
    }

    #[test]
    fn aesmd_table_is_kept_for_the_codes_it_covers() {
        for code in 0xE001..=0xE01A {
            assert_eq!(
                aesm_code(code),
                aesm_code_for_quote3_error(code),
                "{code:#x}"
            );
        }
        assert_eq!(
            aesm_code(NO_PLATFORM_CERT_DATA),
            AesmCode::NoPlatformCertData
        );
        assert_eq!(
            aesm_code(ATT_KEY_NOT_INITIALIZED),
            AesmCode::AttKeyNotInitialized
        );
        assert_eq!(aesm_code(0xE0FF), AesmCode::UnexpectedError);
    }

    #[test]
    fn failure_classes_reach_an_out_of_process_app_as_the_same_quote3_error() {
        for code in [NO_DEVICE, SERVICE_UNAVAILABLE, NETWORK_FAILURE, ERROR_BUSY] {
            assert_eq!(seen_by_app(QuoteExApi::GetQuoteEx, code), code, "{code:#x}");
            assert_eq!(
                seen_by_app(QuoteExApi::InitQuoteEx, code),
                code,
                "{code:#x}"
            );
        }
        // 0xE011 at InitQuoteEx: 44 → SGX_ERROR_PLATFORM_CERT_UNAVAILABLE → 0xE011.
        assert_eq!(
            seen_by_app(QuoteExApi::InitQuoteEx, NO_PLATFORM_CERT_DATA),
            NO_PLATFORM_CERT_DATA
        );
        assert_eq!(
            seen_by_app(QuoteExApi::GetQuoteSizeEx, ATT_KEY_NOT_INITIALIZED),
            ATT_KEY_NOT_INITIALIZED
        );
    }

    #[test]
    fn every_named_code_has_a_diagnosis_and_a_display() {
        for code in (0xE001..=0xE049).filter(|c| name(*c).is_some()) {
            let d = diagnose(code);
            assert!(!d.cause.is_empty() && !d.fix.is_empty());
            assert!(
                Quote3Error(code)
                    .to_string()
                    .contains(&format!("{code:#06x}"))
            );
        }
        assert_eq!(
            Quote3Error(NO_PLATFORM_CERT_DATA).to_string(),
            "SGX_QL_NO_PLATFORM_CERT_DATA (0xe011)"
        );
        assert_eq!(diagnose(NO_DEVICE).class, FailureClass::DeviceMissing);
        assert_eq!(
            diagnose(ERROR_INVALID_PRIVILEGE).class,
            FailureClass::Provisioning
        );
        assert_eq!(
            diagnose(NO_PLATFORM_CERT_DATA).class,
            FailureClass::PckCertificatesUnavailable
        );
        assert_eq!(
            diagnose(NETWORK_FAILURE).class,
            FailureClass::QuoteProviderNetwork
        );
        assert!(
            diagnose(NO_PLATFORM_CERT_DATA)
                .fix
                .contains("sgx_default_qcnl.conf")
        );
    }
}
