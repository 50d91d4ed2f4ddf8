//! Status codes: `aesm_error_t` (what the daemon puts into `errorCode`), `sgx_status_t` (what
//! `libsgx_quote_ex` returns), `quote3_error_t` (what the DCAP quote library returns), and the
//! mappings between them (`aesm-protocol.md` §1.7).
//!
//! The mappings are pure functions so that the C library, the client and the server share one copy.

use std::fmt;

macro_rules! aesm_codes {
    ($( $(#[$doc:meta])* $variant:ident = $value:literal => $name:literal, )*) => {
        /// An `aesm_error_t` value, as carried in every response's `errorCode`.
        ///
        /// Wire values outside this enum (27, or anything above 51) stay plain `u32`s; use
        /// [`AesmCode::from_u32`] to interpret one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum AesmCode {
            $( $(#[$doc])* $variant = $value, )*
        }

        impl AesmCode {
            /// Every defined code, in numeric order.
            pub const ALL: &'static [AesmCode] = &[$(AesmCode::$variant,)*];

            /// The code for a wire value, or `None` if the value is not an `aesm_error_t`.
            pub fn from_u32(value: u32) -> Option<Self> {
                match value {
                    $( $value => Some(AesmCode::$variant), )*
                    _ => None,
                }
            }

            /// Intel's name of the code, e.g. `"AESM_SERVICE_UNAVAILABLE"`.
            pub fn name(self) -> &'static str {
                match self {
                    $( AesmCode::$variant => $name, )*
                }
            }
        }
    };
}

aesm_codes! {
    Success = 0 => "AESM_SUCCESS",
    UnexpectedError = 1 => "AESM_UNEXPECTED_ERROR",
    NoDeviceError = 2 => "AESM_NO_DEVICE_ERROR",
    ParameterError = 3 => "AESM_PARAMETER_ERROR",
    EpidBlobError = 4 => "AESM_EPIDBLOB_ERROR",
    EpidRevokedError = 5 => "AESM_EPID_REVOKED_ERROR",
    GetLicenseTokenError = 6 => "AESM_GET_LICENSETOKEN_ERROR",
    SessionInvalid = 7 => "AESM_SESSION_INVALID",
    MaxNumSessionReached = 8 => "AESM_MAX_NUM_SESSION_REACHED",
    PsdaUnavailable = 9 => "AESM_PSDA_UNAVAILABLE",
    EphSessionFailed = 10 => "AESM_EPH_SESSION_FAILED",
    LongTermPairingFailed = 11 => "AESM_LONG_TERM_PAIRING_FAILED",
    NetworkError = 12 => "AESM_NETWORK_ERROR",
    NetworkBusyError = 13 => "AESM_NETWORK_BUSY_ERROR",
    ProxySettingAssist = 14 => "AESM_PROXY_SETTING_ASSIST",
    FileAccessError = 15 => "AESM_FILE_ACCESS_ERROR",
    SgxProvisionFailed = 16 => "AESM_SGX_PROVISION_FAILED",
    ServiceStopped = 17 => "AESM_SERVICE_STOPPED",
    Busy = 18 => "AESM_BUSY",
    BackendServerBusy = 19 => "AESM_BACKEND_SERVER_BUSY",
    UpdateAvailable = 20 => "AESM_UPDATE_AVAILABLE",
    OutOfMemoryError = 21 => "AESM_OUT_OF_MEMORY_ERROR",
    MsgError = 22 => "AESM_MSG_ERROR",
    ThreadError = 23 => "AESM_THREAD_ERROR",
    SgxDeviceNotAvailable = 24 => "AESM_SGX_DEVICE_NOT_AVAILABLE",
    EnableSgxDeviceFailed = 25 => "AESM_ENABLE_SGX_DEVICE_FAILED",
    PlatformInfoBlobInvalidSig = 26 => "AESM_PLATFORM_INFO_BLOB_INVALID_SIG",
    KdfMismatch = 28 => "AESM_KDF_MISMATCH",
    OutOfEpc = 29 => "AESM_OUT_OF_EPC",
    ServiceUnavailable = 30 => "AESM_SERVICE_UNAVAILABLE",
    UnrecognizedPlatform = 31 => "AESM_UNRECOGNIZED_PLATFORM",
    EcdsaIdMismatch = 32 => "AESM_ECDSA_ID_MISMATCH",
    PathnameBufferOverflowError = 33 => "AESM_PATHNAME_BUFFER_OVERFLOW_ERROR",
    ErrorStoredKey = 34 => "AESM_ERROR_STORED_KEY",
    PubKeyIdMismatch = 35 => "AESM_PUB_KEY_ID_MISMATCH",
    InvalidPceSigScheme = 36 => "AESM_INVALID_PCE_SIG_SCHEME",
    AttKeyBlobError = 37 => "AESM_ATT_KEY_BLOB_ERROR",
    UnsupportedAttKeyId = 38 => "AESM_UNSUPPORTED_ATT_KEY_ID",
    UnsupportedLoadingPolicy = 39 => "AESM_UNSUPPORTED_LOADING_POLICY",
    InterfaceUnavailable = 40 => "AESM_INTERFACE_UNAVAILABLE",
    PlatformLibUnavailable = 41 => "AESM_PLATFORM_LIB_UNAVAILABLE",
    AttKeyNotInitialized = 42 => "AESM_ATT_KEY_NOT_INITIALIZED",
    AttKeyCertDataInvalid = 43 => "AESM_ATT_KEY_CERT_DATA_INVALID",
    NoPlatformCertData = 44 => "AESM_NO_PLATFORM_CERT_DATA",
    ErrorReport = 45 => "AESM_ERROR_REPORT",
    EnclaveLost = 46 => "AESM_ENCLAVE_LOST",
    InvalidReport = 47 => "AESM_INVALID_REPORT",
    EnclaveLoadError = 48 => "AESM_ENCLAVE_LOAD_ERROR",
    UnableToGenerateQeReport = 49 => "AESM_UNABLE_TO_GENERATE_QE_REPORT",
    KeyCertificationError = 50 => "AESM_KEY_CERTIFICATION_ERROR",
    ConfigUnsupported = 51 => "AESM_CONFIG_UNSUPPORTED",
}

impl AesmCode {
    /// The wire value.
    pub fn code(self) -> u32 {
        self as u32
    }
}

impl From<AesmCode> for u32 {
    fn from(code: AesmCode) -> u32 {
        code.code()
    }
}

impl fmt::Display for AesmCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// Formats a wire `errorCode` with Intel's name when it has one, e.g. `"AESM_PARAMETER_ERROR (3)"`.
pub fn describe_aesm_code(value: u32) -> String {
    match AesmCode::from_u32(value) {
        Some(code) => code.to_string(),
        None => format!("unknown AESM error ({value})"),
    }
}

/// `sgx_status_t` values that the quote-ex client API returns (LSGX `sgx_error.h`).
pub mod sgx_status {
    /// `SGX_SUCCESS`
    pub const SUCCESS: u32 = 0x0000;
    /// `SGX_ERROR_UNEXPECTED`
    pub const UNEXPECTED: u32 = 0x0001;
    /// `SGX_ERROR_INVALID_PARAMETER`
    pub const INVALID_PARAMETER: u32 = 0x0002;
    /// `SGX_ERROR_OUT_OF_MEMORY`
    pub const OUT_OF_MEMORY: u32 = 0x0003;
    /// `SGX_ERROR_OUT_OF_EPC`
    pub const OUT_OF_EPC: u32 = 0x2005;
    /// `SGX_ERROR_NO_DEVICE`
    pub const NO_DEVICE: u32 = 0x2006;
    /// `SGX_ERROR_MAC_MISMATCH`
    pub const MAC_MISMATCH: u32 = 0x3001;
    /// `SGX_ERROR_SERVICE_UNAVAILABLE`
    pub const SERVICE_UNAVAILABLE: u32 = 0x4001;
    /// `SGX_ERROR_SERVICE_TIMEOUT`
    pub const SERVICE_TIMEOUT: u32 = 0x4002;
    /// `SGX_ERROR_AE_INVALID_EPIDBLOB`
    pub const AE_INVALID_EPIDBLOB: u32 = 0x4003;
    /// `SGX_ERROR_SERVICE_INVALID_PRIVILEGE`
    pub const SERVICE_INVALID_PRIVILEGE: u32 = 0x4004;
    /// `SGX_ERROR_EPID_MEMBER_REVOKED`
    pub const EPID_MEMBER_REVOKED: u32 = 0x4005;
    /// `SGX_ERROR_UPDATE_NEEDED`
    pub const UPDATE_NEEDED: u32 = 0x4006;
    /// `SGX_ERROR_NETWORK_FAILURE`
    pub const NETWORK_FAILURE: u32 = 0x4007;
    /// `SGX_ERROR_BUSY`
    pub const BUSY: u32 = 0x400a;
    /// `SGX_ERROR_UNRECOGNIZED_PLATFORM`
    pub const UNRECOGNIZED_PLATFORM: u32 = 0x4012;
    /// `SGX_ERROR_UNSUPPORTED_CONFIG`
    pub const UNSUPPORTED_CONFIG: u32 = 0x4013;
    /// `SGX_ERROR_UNSUPPORTED_ATT_KEY_ID`
    pub const UNSUPPORTED_ATT_KEY_ID: u32 = 0x8001;
    /// `SGX_ERROR_ATT_KEY_CERTIFICATION_FAILURE`
    pub const ATT_KEY_CERTIFICATION_FAILURE: u32 = 0x8002;
    /// `SGX_ERROR_ATT_KEY_UNINITIALIZED`
    pub const ATT_KEY_UNINITIALIZED: u32 = 0x8003;
    /// `SGX_ERROR_INVALID_ATT_KEY_CERT_DATA`
    pub const INVALID_ATT_KEY_CERT_DATA: u32 = 0x8004;
    /// `SGX_ERROR_PLATFORM_CERT_UNAVAILABLE`
    pub const PLATFORM_CERT_UNAVAILABLE: u32 = 0x8005;
}

/// `quote3_error_t` values (`TEE_MK_ERROR(x) = 0xE000 | x`, DCAP `sgx_ql_lib_common.h`) used by the
/// mappings of this module.
pub mod quote3_error {
    /// `SGX_QL_SUCCESS`
    pub const SUCCESS: u32 = 0x0000;
    /// `SGX_QL_ERROR_UNEXPECTED`
    pub const ERROR_UNEXPECTED: u32 = 0xE001;
    /// `SGX_QL_ERROR_INVALID_PARAMETER`
    pub const ERROR_INVALID_PARAMETER: u32 = 0xE002;
    /// `SGX_QL_ERROR_OUT_OF_MEMORY`
    pub const ERROR_OUT_OF_MEMORY: u32 = 0xE003;
    /// `SGX_QL_UNSUPPORTED_ATT_KEY_ID`
    pub const UNSUPPORTED_ATT_KEY_ID: u32 = 0xE00B;
    /// `SGX_QL_ATT_KEY_NOT_INITIALIZED`
    pub const ATT_KEY_NOT_INITIALIZED: u32 = 0xE00F;
    /// `SGX_QL_ATT_KEY_CERT_DATA_INVALID`
    pub const ATT_KEY_CERT_DATA_INVALID: u32 = 0xE010;
    /// `SGX_QL_NO_PLATFORM_CERT_DATA`
    pub const NO_PLATFORM_CERT_DATA: u32 = 0xE011;
    /// `SGX_QL_NO_DEVICE`
    pub const NO_DEVICE: u32 = 0xE03F;
    /// `SGX_QL_SERVICE_UNAVAILABLE`
    pub const SERVICE_UNAVAILABLE: u32 = 0xE040;
    /// `SGX_QL_NETWORK_FAILURE`
    pub const NETWORK_FAILURE: u32 = 0xE041;
    /// `SGX_QL_SERVICE_TIMEOUT`
    pub const SERVICE_TIMEOUT: u32 = 0xE042;
    /// `SGX_QL_ERROR_BUSY`
    pub const ERROR_BUSY: u32 = 0xE043;
}

/// The six quote-ex entry points of `libsgx_quote_ex`, for the per-API mapping overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuoteExApi {
    /// `sgx_select_att_key_id`
    SelectAttKeyId,
    /// `sgx_init_quote_ex`
    InitQuoteEx,
    /// `sgx_get_quote_size_ex`
    GetQuoteSizeEx,
    /// `sgx_get_quote_ex`
    GetQuoteEx,
    /// `sgx_get_supported_att_key_id_num`
    GetSupportedAttKeyIdNum,
    /// `sgx_get_supported_att_key_ids`
    GetSupportedAttKeyIds,
}

/// The transport outcome of one IPC call (`uae_oal_status_t`, LSGX `uae_oal_api.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TransportStatus {
    /// `UAE_OAL_SUCCESS`: a response was received (its `errorCode` decides the result).
    Success = 0,
    /// `UAE_OAL_ERROR_UNEXPECTED`: the exchange failed (I/O error, malformed or missing reply).
    Unexpected = 1,
    /// `UAE_OAL_ERROR_AESM_UNAVAILABLE`: no service listens on the socket.
    AesmUnavailable = 2,
    /// `UAE_OAL_ERROR_TIMEOUT`: the client timeout expired.
    Timeout = 3,
    /// `UAE_OAL_ERROR_INVALID`: the request itself was invalid and was not sent.
    Invalid = 4,
}

/// `oal_map_status`: the `sgx_status_t` for a failed transport, `None` for [`TransportStatus::Success`].
pub fn sgx_status_for_transport(status: TransportStatus) -> Option<u32> {
    match status {
        TransportStatus::Success => None,
        TransportStatus::Unexpected => Some(sgx_status::UNEXPECTED),
        TransportStatus::AesmUnavailable => Some(sgx_status::SERVICE_UNAVAILABLE),
        TransportStatus::Timeout => Some(sgx_status::SERVICE_TIMEOUT),
        TransportStatus::Invalid => Some(sgx_status::INVALID_PARAMETER),
    }
}

/// `oal_map_result`: the generic mapping of an AESM code to `sgx_status_t`, before per-API overrides.
pub fn generic_sgx_status(aesm_code: u32) -> u32 {
    use sgx_status as s;
    match aesm_code {
        0 => s::SUCCESS,
        1 => s::UNEXPECTED,
        2 => s::NO_DEVICE,
        3 => s::INVALID_PARAMETER,
        12..=14 => s::NETWORK_FAILURE,
        17 | 30 | 46 | 48 => s::SERVICE_UNAVAILABLE,
        18 => s::BUSY,
        20 => s::UPDATE_NEEDED,
        21 => s::OUT_OF_MEMORY,
        31 => s::UNRECOGNIZED_PLATFORM,
        _ => s::UNEXPECTED,
    }
}

/// The `sgx_status_t` that `libsgx_quote_ex` returns for `api` when the daemon answered `aesm_code`:
/// the generic mapping, then the per-API overrides that apply when the generic result is
/// `SGX_ERROR_UNEXPECTED` (LSGX `sgx_uae_service.cpp`).
pub fn sgx_status_for(api: QuoteExApi, aesm_code: u32) -> u32 {
    use sgx_status as s;
    let generic = generic_sgx_status(aesm_code);
    if generic != s::UNEXPECTED {
        return generic;
    }
    // Codes shared by init_quote_ex and get_quote_ex.
    let quoting_common = |code: u32| match code {
        4 => Some(s::AE_INVALID_EPIDBLOB),
        5 => Some(s::EPID_MEMBER_REVOKED),
        19 => Some(s::BUSY),
        16 => Some(s::UNEXPECTED),
        29 => Some(s::OUT_OF_EPC),
        38 => Some(s::UNSUPPORTED_ATT_KEY_ID),
        _ => None,
    };
    let overridden = match api {
        QuoteExApi::SelectAttKeyId => match aesm_code {
            38 => Some(s::UNSUPPORTED_ATT_KEY_ID),
            _ => None,
        },
        QuoteExApi::InitQuoteEx => match aesm_code {
            50 => Some(s::ATT_KEY_CERTIFICATION_FAILURE),
            44 => Some(s::PLATFORM_CERT_UNAVAILABLE),
            other => quoting_common(other),
        },
        QuoteExApi::GetQuoteSizeEx => match aesm_code {
            42 => Some(s::ATT_KEY_UNINITIALIZED),
            43 => Some(s::UNEXPECTED),
            38 => Some(s::UNSUPPORTED_ATT_KEY_ID),
            _ => None,
        },
        QuoteExApi::GetQuoteEx => match aesm_code {
            42 => Some(s::ATT_KEY_UNINITIALIZED),
            43 | 49 => Some(s::UNEXPECTED),
            45 | 47 => Some(s::MAC_MISMATCH),
            other => quoting_common(other),
        },
        QuoteExApi::GetSupportedAttKeyIdNum | QuoteExApi::GetSupportedAttKeyIds => None,
    };
    overridden.unwrap_or(generic)
}

/// `sgx_status_to_quote3_error` of the DCAP quote-library wrapper: what `sgx_qe_*` returns when
/// `libsgx_quote_ex` returned `status`.
pub fn quote3_error_for_sgx_status(status: u32) -> u32 {
    use quote3_error as q;
    use sgx_status as s;
    match status {
        s::SUCCESS => q::SUCCESS,
        s::UNEXPECTED => q::ERROR_UNEXPECTED,
        s::INVALID_PARAMETER => q::ERROR_INVALID_PARAMETER,
        s::OUT_OF_MEMORY => q::ERROR_OUT_OF_MEMORY,
        s::NO_DEVICE => q::NO_DEVICE,
        s::SERVICE_UNAVAILABLE => q::SERVICE_UNAVAILABLE,
        s::NETWORK_FAILURE => q::NETWORK_FAILURE,
        s::SERVICE_TIMEOUT => q::SERVICE_TIMEOUT,
        s::BUSY => q::ERROR_BUSY,
        s::UNSUPPORTED_ATT_KEY_ID => q::UNSUPPORTED_ATT_KEY_ID,
        s::ATT_KEY_CERTIFICATION_FAILURE => q::ATT_KEY_CERT_DATA_INVALID,
        s::PLATFORM_CERT_UNAVAILABLE => q::NO_PLATFORM_CERT_DATA,
        s::ATT_KEY_UNINITIALIZED => q::ATT_KEY_NOT_INITIALIZED,
        _ => q::ERROR_UNEXPECTED,
    }
}

/// `quote3_error_to_aesm_error` inside aesmd's ECDSA bundle: the AESM code a daemon with a hardware
/// (DCAP quote library) backend reports for a `quote3_error_t`.
pub fn aesm_code_for_quote3_error(error: u32) -> AesmCode {
    use AesmCode as A;
    match error {
        0x0000 => A::Success,
        0xE002 => A::ParameterError,
        0xE003 => A::OutOfMemoryError,
        0xE004 => A::EcdsaIdMismatch,
        0xE005 => A::PathnameBufferOverflowError,
        0xE006 => A::FileAccessError,
        0xE007 => A::ErrorStoredKey,
        0xE008 => A::PubKeyIdMismatch,
        0xE009 => A::InvalidPceSigScheme,
        0xE00A => A::AttKeyBlobError,
        0xE00B => A::UnsupportedAttKeyId,
        0xE00C => A::UnsupportedLoadingPolicy,
        0xE00D => A::InterfaceUnavailable,
        0xE00E => A::PlatformLibUnavailable,
        0xE00F => A::AttKeyNotInitialized,
        0xE010 => A::AttKeyCertDataInvalid,
        0xE011 => A::NoPlatformCertData,
        0xE012 => A::OutOfEpc,
        0xE013 => A::ErrorReport,
        0xE014 => A::EnclaveLost,
        0xE015 => A::InvalidReport,
        0xE016 => A::EnclaveLoadError,
        0xE017 => A::UnableToGenerateQeReport,
        0xE018 => A::KeyCertificationError,
        0xE019 => A::NetworkError,
        0xE01A => A::MsgError,
        _ => A::UnexpectedError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_27_is_not_a_code() {
        assert_eq!(AesmCode::ALL.len(), 51);
        for code in AesmCode::ALL {
            assert_eq!(AesmCode::from_u32(code.code()), Some(*code));
            assert!(code.name().starts_with("AESM_"));
        }
        assert_eq!(AesmCode::from_u32(27), None);
        assert_eq!(AesmCode::from_u32(52), None);
        assert_eq!(AesmCode::ServiceUnavailable.code(), 30);
        assert_eq!(AesmCode::UnsupportedAttKeyId.code(), 38);
        assert_eq!(AesmCode::AttKeyNotInitialized.code(), 42);
        assert_eq!(
            AesmCode::ConfigUnsupported.name(),
            "AESM_CONFIG_UNSUPPORTED"
        );
        assert_eq!(describe_aesm_code(3), "AESM_PARAMETER_ERROR (3)");
        assert_eq!(describe_aesm_code(27), "unknown AESM error (27)");
    }

    #[test]
    fn generic_mapping_matches_oal_map_result() {
        use sgx_status as s;
        let table = [
            (0, s::SUCCESS),
            (1, s::UNEXPECTED),
            (2, s::NO_DEVICE),
            (3, s::INVALID_PARAMETER),
            (12, s::NETWORK_FAILURE),
            (13, s::NETWORK_FAILURE),
            (14, s::NETWORK_FAILURE),
            (17, s::SERVICE_UNAVAILABLE),
            (18, s::BUSY),
            (20, s::UPDATE_NEEDED),
            (21, s::OUT_OF_MEMORY),
            (30, s::SERVICE_UNAVAILABLE),
            (31, s::UNRECOGNIZED_PLATFORM),
            (46, s::SERVICE_UNAVAILABLE),
            (48, s::SERVICE_UNAVAILABLE),
            (38, s::UNEXPECTED),
            (9999, s::UNEXPECTED),
        ];
        for (code, status) in table {
            assert_eq!(generic_sgx_status(code), status, "aesm code {code}");
        }
    }

    #[test]
    fn per_api_overrides() {
        use QuoteExApi as A;
        use sgx_status as s;
        let table = [
            (A::SelectAttKeyId, 38, s::UNSUPPORTED_ATT_KEY_ID),
            (A::SelectAttKeyId, 42, s::UNEXPECTED),
            (A::InitQuoteEx, 38, s::UNSUPPORTED_ATT_KEY_ID),
            (A::InitQuoteEx, 50, s::ATT_KEY_CERTIFICATION_FAILURE),
            (A::InitQuoteEx, 44, s::PLATFORM_CERT_UNAVAILABLE),
            (A::InitQuoteEx, 4, s::AE_INVALID_EPIDBLOB),
            (A::InitQuoteEx, 5, s::EPID_MEMBER_REVOKED),
            (A::InitQuoteEx, 19, s::BUSY),
            (A::InitQuoteEx, 16, s::UNEXPECTED),
            (A::InitQuoteEx, 29, s::OUT_OF_EPC),
            (A::InitQuoteEx, 42, s::UNEXPECTED),
            (A::InitQuoteEx, 47, s::UNEXPECTED),
            (A::GetQuoteSizeEx, 42, s::ATT_KEY_UNINITIALIZED),
            (A::GetQuoteSizeEx, 43, s::UNEXPECTED),
            (A::GetQuoteSizeEx, 38, s::UNSUPPORTED_ATT_KEY_ID),
            (A::GetQuoteSizeEx, 29, s::UNEXPECTED),
            (A::GetQuoteEx, 42, s::ATT_KEY_UNINITIALIZED),
            (A::GetQuoteEx, 38, s::UNSUPPORTED_ATT_KEY_ID),
            (A::GetQuoteEx, 45, s::MAC_MISMATCH),
            (A::GetQuoteEx, 47, s::MAC_MISMATCH),
            (A::GetQuoteEx, 49, s::UNEXPECTED),
            (A::GetQuoteEx, 29, s::OUT_OF_EPC),
            (A::GetQuoteEx, 19, s::BUSY),
            (A::GetQuoteEx, 50, s::UNEXPECTED),
            (A::GetSupportedAttKeyIdNum, 38, s::UNEXPECTED),
            (A::GetSupportedAttKeyIds, 30, s::SERVICE_UNAVAILABLE),
            // Generic results other than UNEXPECTED are never overridden.
            (A::GetQuoteEx, 3, s::INVALID_PARAMETER),
            (A::GetQuoteEx, 0, s::SUCCESS),
        ];
        for (api, code, status) in table {
            assert_eq!(
                sgx_status_for(api, code),
                status,
                "{api:?} aesm code {code}"
            );
        }
    }

    #[test]
    fn transport_and_quote3_mappings() {
        assert_eq!(sgx_status_for_transport(TransportStatus::Success), None);
        assert_eq!(
            sgx_status_for_transport(TransportStatus::Unexpected),
            Some(0x0001)
        );
        assert_eq!(
            sgx_status_for_transport(TransportStatus::AesmUnavailable),
            Some(0x4001)
        );
        assert_eq!(
            sgx_status_for_transport(TransportStatus::Timeout),
            Some(0x4002)
        );
        assert_eq!(
            sgx_status_for_transport(TransportStatus::Invalid),
            Some(0x0002)
        );

        assert_eq!(quote3_error_for_sgx_status(0x4001), 0xE040);
        assert_eq!(quote3_error_for_sgx_status(0x4002), 0xE042);
        assert_eq!(quote3_error_for_sgx_status(0x8001), 0xE00B);
        assert_eq!(quote3_error_for_sgx_status(0x8002), 0xE010);
        assert_eq!(quote3_error_for_sgx_status(0x8003), 0xE00F);
        assert_eq!(quote3_error_for_sgx_status(0x8005), 0xE011);
        assert_eq!(quote3_error_for_sgx_status(0x3001), 0xE001);

        assert_eq!(aesm_code_for_quote3_error(0), AesmCode::Success);
        assert_eq!(
            aesm_code_for_quote3_error(0xE001),
            AesmCode::UnexpectedError
        );
        assert_eq!(
            aesm_code_for_quote3_error(0xE00B),
            AesmCode::UnsupportedAttKeyId
        );
        assert_eq!(aesm_code_for_quote3_error(0xE012), AesmCode::OutOfEpc);
        assert_eq!(aesm_code_for_quote3_error(0xE015), AesmCode::InvalidReport);
        assert_eq!(aesm_code_for_quote3_error(0xE019), AesmCode::NetworkError);
        assert_eq!(aesm_code_for_quote3_error(0xE01A), AesmCode::MsgError);
        assert_eq!(
            aesm_code_for_quote3_error(0xE0FF),
            AesmCode::UnexpectedError
        );
        // The full chain of the hardware backend: QL error -> AESM -> sgx_status -> quote3.
        let code = aesm_code_for_quote3_error(0xE00F).code();
        let status = sgx_status_for(QuoteExApi::GetQuoteEx, code);
        assert_eq!(quote3_error_for_sgx_status(status), 0xE00F);
    }
}
