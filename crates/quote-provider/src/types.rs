//! The C types of the quote provider API, laid out as in Intel's `sgx_ql_lib_common.h`:
//! `sgx_ql_pck_cert_id_t` (43 bytes) and `sgx_ql_config_t` (34 bytes) are packed (`#pragma pack(1)`
//! in Intel's header), `sgx_ql_qve_collateral_t` (120 bytes) is not. The sizes and offsets are
//! checked at compile time. `cbindgen` turns this module into `include/sgx_default_quote_provider.h`.
#![allow(non_camel_case_types)]

use std::ffi::c_char;

/// `quote3_error_t`: what every function returns (`SGX_QL_SUCCESS` or an error, `0xE000 | x`).
pub type quote3_error_t = u32;

/// `0x0000`: Success.
pub const SGX_QL_SUCCESS: quote3_error_t = 0x0000;
/// `0xE001`: An unexpected failure: an unusable configuration, a caught panic.
pub const SGX_QL_ERROR_UNEXPECTED: quote3_error_t = 0xE001;
/// `0xE002`: A NULL pointer, a wrong size or an unknown CA name.
pub const SGX_QL_ERROR_INVALID_PARAMETER: quote3_error_t = 0xE002;
/// `0xE003`: An allocation failed.
pub const SGX_QL_ERROR_OUT_OF_MEMORY: quote3_error_t = 0xE003;
/// `0xE011`: The service has no PCK certificate for the platform (`404` on `pckcert`).
pub const SGX_QL_NO_PLATFORM_CERT_DATA: quote3_error_t = 0xE011;
/// `0xE019`: The service could not be reached (or answered `403`).
pub const SGX_QL_NETWORK_ERROR: quote3_error_t = 0xE019;
/// `0xE01A`: A reply's message is malformed.
pub const SGX_QL_MESSAGE_ERROR: quote3_error_t = 0xE01A;
/// `0xE01B`: The service has no collateral for the FMSPC or CA (`404`).
pub const SGX_QL_NO_QUOTE_COLLATERAL_DATA: quote3_error_t = 0xE01B;
/// `0xE037`: The service has no QvE identity (`404` on `qve/identity`).
pub const SGX_QL_NO_QVE_IDENTITY_DATA: quote3_error_t = 0xE037;
/// `0xE040`: The service answered `503`.
pub const SGX_QL_SERVICE_UNAVAILABLE: quote3_error_t = 0xE040;
/// `0xE041`: Network failure (defined by Intel; not returned).
pub const SGX_QL_NETWORK_FAILURE: quote3_error_t = 0xE041;
/// `0xE042`: Service timeout (defined by Intel; not returned).
pub const SGX_QL_SERVICE_TIMEOUT: quote3_error_t = 0xE042;
/// `0xE043`: Busy (defined by Intel; not returned).
pub const SGX_QL_ERROR_BUSY: quote3_error_t = 0xE043;
/// `0xE044`: The service answered with a status this library does not map.
pub const SGX_QL_UNKNOWN_MESSAGE_RESPONSE: quote3_error_t = 0xE044;
/// `0xE045`: Persistent storage error: `sgx_qpl_clear_cache` could not remove a cache entry (a
/// cache that cannot be written is skipped, not an error).
pub const SGX_QL_PERSISTENT_STORAGE_ERROR: quote3_error_t = 0xE045;
/// `0xE046`: A reply lacks a header or its body is not what the API promises.
pub const SGX_QL_ERROR_MESSAGE_PARSING_ERROR: quote3_error_t = 0xE046;
/// `0xE047`: The service does not know the platform (`461`).
pub const SGX_QL_PLATFORM_UNKNOWN: quote3_error_t = 0xE047;
/// `0xE048`: Unknown API version (defined by Intel; not returned).
pub const SGX_QL_UNKNOWN_API_VERSION: quote3_error_t = 0xE048;
/// `0xE049`: Certificates are not available for certain TCBs (`462`).
pub const SGX_QL_CERTS_UNAVAILABLE: quote3_error_t = 0xE049;
/// `0xE065`: The TLS certificate of the service is not trusted.
pub const SGX_QL_ROOT_CA_UNTRUSTED: quote3_error_t = 0xE065;
/// `0xE067`: The configuration file starts with `{` but is not JSON.
pub const SGX_QL_CONFIG_INVALID_JSON: quote3_error_t = 0xE067;

/// `sgx_ql_config_version_t`: the only version, `SGX_QL_CONFIG_VERSION_1`.
pub type sgx_ql_config_version_t = u32;
/// `SGX_QL_CONFIG_VERSION_1`.
pub const SGX_QL_CONFIG_VERSION_1: sgx_ql_config_version_t = 1;

/// `sgx_ql_log_level_t`: `SGX_QL_LOG_ERROR` 0, `SGX_QL_LOG_INFO` 1, `SGX_QL_LOG_DEBUG` 2,
/// `SGX_QL_LOG_TRACE` 3.
pub type sgx_ql_log_level_t = u32;
/// Errors.
pub const SGX_QL_LOG_ERROR: sgx_ql_log_level_t = 0;
/// Errors and information.
pub const SGX_QL_LOG_INFO: sgx_ql_log_level_t = 1;
/// Also debugging detail.
pub const SGX_QL_LOG_DEBUG: sgx_ql_log_level_t = 2;
/// Everything.
pub const SGX_QL_LOG_TRACE: sgx_ql_log_level_t = 3;

/// `sgx_ql_logging_callback_t` (Intel) and `sgx_ql_logging_function_t` (Open Enclave,
/// az-dcap-client): receives a level and a NUL-terminated message, valid during the call only.
pub type sgx_ql_logging_callback_t =
    Option<unsafe extern "C" fn(level: sgx_ql_log_level_t, message: *const c_char)>;

/// `collateral version 3.0`: the CRLs are hex text of their DER (`major_version` 3, `minor_version`
/// 0, as one `uint32_t`).
pub const SGX_QL_QVE_COLLATERAL_VERSION_3_0: u32 = 0x0000_0003;
/// `collateral version 3.1`: the CRLs are raw DER.
pub const SGX_QL_QVE_COLLATERAL_VERSION_3_1: u32 = 0x0001_0003;
/// `tee_type` of SGX collateral.
pub const SGX_QL_TEE_TYPE_SGX: u32 = 0x0000_0000;
/// `tee_type` of TDX collateral (`tdx_ql_get_quote_verification_collateral`).
pub const SGX_QL_TEE_TYPE_TDX: u32 = 0x0000_0081;

/// `sgx_qpl_cache_type_t`: the classes of cache entries `sgx_qpl_clear_cache` removes, a bitmask.
pub type sgx_qpl_cache_type_t = u32;
/// PCK certificates.
pub const SGX_QPL_CACHE_CERTIFICATE: sgx_qpl_cache_type_t = 1;
/// Verification collateral, QvE identity and root CA CRL.
pub const SGX_QPL_CACHE_QV_COLLATERAL: sgx_qpl_cache_type_t = 2;
/// The PCK certificates of every TCB of a platform (Intel's `pckcerts` cache; this library keeps
/// none, so the bit is accepted and removes nothing).
pub const SGX_QPL_CACHE_MULTICERTS: sgx_qpl_cache_type_t = 4;

/// `sgx_cpu_svn_t` (16 bytes): a CPU security version.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct sgx_cpu_svn_t {
    pub svn: [u8; 16],
}

/// `sgx_isv_svn_t`: a 16-bit security version.
pub type sgx_isv_svn_t = u16;

/// `sgx_ql_pck_cert_id_t` (43 bytes, packed): which PCK certificate the quoting enclave asks for.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy)]
pub struct sgx_ql_pck_cert_id_t {
    /// The QE id (16 bytes).
    pub p_qe3_id: *mut u8,
    /// Bytes at `p_qe3_id`: 16.
    pub qe3_id_size: u32,
    /// The platform's raw CPUSVN.
    pub p_platform_cpu_svn: *mut sgx_cpu_svn_t,
    /// The platform's PCESVN.
    pub p_platform_pce_isv_svn: *mut sgx_isv_svn_t,
    /// The encrypted PPID, or NULL.
    pub p_encrypted_ppid: *mut u8,
    /// Bytes at `p_encrypted_ppid`: 384 (RSA-3072), or 0 with NULL.
    pub encrypted_ppid_size: u32,
    /// The PPID encryption algorithm.
    pub crypto_suite: u8,
    /// The PCE id.
    pub pce_id: u16,
}

/// `sgx_ql_config_t` (34 bytes, packed): the PCK certificate chain and the TCB it was issued for.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy)]
pub struct sgx_ql_config_t {
    /// `SGX_QL_CONFIG_VERSION_1`.
    pub version: sgx_ql_config_version_t,
    /// The certificate's CPUSVN (from `SGX-TCBm`).
    pub cert_cpu_svn: sgx_cpu_svn_t,
    /// The certificate's PCESVN (from `SGX-TCBm`).
    pub cert_pce_isv_svn: sgx_isv_svn_t,
    /// Bytes at `p_cert_data`, the trailing NUL included.
    pub cert_data_size: u32,
    /// PEM leaf ‖ PEM issuer chain ‖ NUL.
    pub p_cert_data: *mut u8,
}

/// `sgx_ql_qve_collateral_t` (120 bytes): a quote's verification collateral. Each buffer ends with
/// a NUL that its size counts.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sgx_ql_qve_collateral_t {
    /// `major_version` in the low 16 bits (offset 0), `minor_version` in the high 16 bits (offset
    /// 2): [`SGX_QL_QVE_COLLATERAL_VERSION_3_1`] or [`SGX_QL_QVE_COLLATERAL_VERSION_3_0`].
    pub version: u32,
    /// `0x00` for SGX, `0x81` for TDX.
    pub tee_type: u32,
    /// The PCK CRL's issuer chain, PEM.
    pub pck_crl_issuer_chain: *mut c_char,
    pub pck_crl_issuer_chain_size: u32,
    /// The root CA CRL: DER (3.1) or hex text (3.0).
    pub root_ca_crl: *mut c_char,
    pub root_ca_crl_size: u32,
    /// The PCK CRL: DER (3.1) or hex text (3.0).
    pub pck_crl: *mut c_char,
    pub pck_crl_size: u32,
    /// The TCB info's issuer chain, PEM.
    pub tcb_info_issuer_chain: *mut c_char,
    pub tcb_info_issuer_chain_size: u32,
    /// `{"tcbInfo":…,"signature":…}` as served.
    pub tcb_info: *mut c_char,
    pub tcb_info_size: u32,
    /// The QE identity's issuer chain, PEM.
    pub qe_identity_issuer_chain: *mut c_char,
    pub qe_identity_issuer_chain_size: u32,
    /// `{"enclaveIdentity":…,"signature":…}` as served.
    pub qe_identity: *mut c_char,
    pub qe_identity_size: u32,
}

/// `tdx_ql_qv_collateral_t`: TDX collateral has the layout of SGX collateral (`tee_type` 0x81).
pub type tdx_ql_qv_collateral_t = sgx_ql_qve_collateral_t;
/// `tdx_ql_qve_collateral_t`: the older name of [`tdx_ql_qv_collateral_t`].
pub type tdx_ql_qve_collateral_t = sgx_ql_qve_collateral_t;

/// `sgx_ql_qve_collateral_param_t` (514 bytes): one custom parameter of
/// `sgx_ql_get_quote_verification_collateral_with_params` (accepted, not sent).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sgx_ql_qve_collateral_param_t {
    pub key: [u8; 257],
    pub value: [u8; 257],
}

// The sizes and offsets are part of the ABI (`docs/pccs-and-qpl-facts.md` §3.3).
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<sgx_ql_pck_cert_id_t>() == 43);
    assert!(offset_of!(sgx_ql_pck_cert_id_t, qe3_id_size) == 8);
    assert!(offset_of!(sgx_ql_pck_cert_id_t, p_platform_cpu_svn) == 12);
    assert!(offset_of!(sgx_ql_pck_cert_id_t, p_platform_pce_isv_svn) == 20);
    assert!(offset_of!(sgx_ql_pck_cert_id_t, p_encrypted_ppid) == 28);
    assert!(offset_of!(sgx_ql_pck_cert_id_t, encrypted_ppid_size) == 36);
    assert!(offset_of!(sgx_ql_pck_cert_id_t, crypto_suite) == 40);
    assert!(offset_of!(sgx_ql_pck_cert_id_t, pce_id) == 41);
    assert!(size_of::<sgx_ql_config_t>() == 34);
    assert!(offset_of!(sgx_ql_config_t, cert_cpu_svn) == 4);
    assert!(offset_of!(sgx_ql_config_t, cert_pce_isv_svn) == 20);
    assert!(offset_of!(sgx_ql_config_t, cert_data_size) == 22);
    assert!(offset_of!(sgx_ql_config_t, p_cert_data) == 26);
    assert!(size_of::<sgx_ql_qve_collateral_t>() == 120);
    assert!(offset_of!(sgx_ql_qve_collateral_t, tee_type) == 4);
    assert!(offset_of!(sgx_ql_qve_collateral_t, pck_crl_issuer_chain) == 8);
    assert!(offset_of!(sgx_ql_qve_collateral_t, pck_crl_issuer_chain_size) == 16);
    assert!(offset_of!(sgx_ql_qve_collateral_t, root_ca_crl) == 24);
    assert!(offset_of!(sgx_ql_qve_collateral_t, root_ca_crl_size) == 32);
    assert!(offset_of!(sgx_ql_qve_collateral_t, pck_crl) == 40);
    assert!(offset_of!(sgx_ql_qve_collateral_t, pck_crl_size) == 48);
    assert!(offset_of!(sgx_ql_qve_collateral_t, tcb_info_issuer_chain) == 56);
    assert!(offset_of!(sgx_ql_qve_collateral_t, tcb_info_issuer_chain_size) == 64);
    assert!(offset_of!(sgx_ql_qve_collateral_t, tcb_info) == 72);
    assert!(offset_of!(sgx_ql_qve_collateral_t, tcb_info_size) == 80);
    assert!(offset_of!(sgx_ql_qve_collateral_t, qe_identity_issuer_chain) == 88);
    assert!(offset_of!(sgx_ql_qve_collateral_t, qe_identity_issuer_chain_size) == 96);
    assert!(offset_of!(sgx_ql_qve_collateral_t, qe_identity) == 104);
    assert!(offset_of!(sgx_ql_qve_collateral_t, qe_identity_size) == 112);
    assert!(size_of::<sgx_ql_qve_collateral_param_t>() == 514);
};
