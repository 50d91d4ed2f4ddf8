//! The C types of the quote-ex API, laid out byte for byte as in Intel's SDK headers (all fields are
//! naturally aligned, so `repr(C)` and `#pragma pack(1)` give the same layout, and the sizes are
//! checked at compile time). `cbindgen` turns this module into `include/sgx_quote_ex.h`.
#![allow(non_camel_case_types)]

use aesm_protocol::att_key_id::{
    ATT_KEY_ID_BASE_SIZE, ATT_KEY_ID_SIZE, QE_REPORT_INFO_REPORT_OFFSET, QE_REPORT_INFO_SIZE,
    REPORT_SIZE, TARGET_INFO_SIZE,
};

/// `sgx_status_t`: what every function returns (`SGX_SUCCESS` or one of the `SGX_ERROR_*` codes).
pub type sgx_status_t = u32;

/// `0x0000`: Success.
pub const SGX_SUCCESS: sgx_status_t = 0x0000;
/// `0x0001`: An unexpected failure: a malformed or missing reply, an I/O error, a caught panic.
pub const SGX_ERROR_UNEXPECTED: sgx_status_t = 0x0001;
/// `0x0002`: A parameter is invalid (checked before sending), or the service said `AESM_PARAMETER_ERROR`.
pub const SGX_ERROR_INVALID_PARAMETER: sgx_status_t = 0x0002;
/// `0x0003`: The service is out of memory.
pub const SGX_ERROR_OUT_OF_MEMORY: sgx_status_t = 0x0003;
/// `0x2005`: The service ran out of EPC memory.
pub const SGX_ERROR_OUT_OF_EPC: sgx_status_t = 0x2005;
/// `0x2006`: The service found no SGX device.
pub const SGX_ERROR_NO_DEVICE: sgx_status_t = 0x2006;
/// `0x3001`: The service could not verify the report (wrong target, bad MAC).
pub const SGX_ERROR_MAC_MISMATCH: sgx_status_t = 0x3001;
/// `0x4001`: Nothing listens on the AESM socket.
pub const SGX_ERROR_SERVICE_UNAVAILABLE: sgx_status_t = 0x4001;
/// `0x4002`: The service did not answer within the timeout.
pub const SGX_ERROR_SERVICE_TIMEOUT: sgx_status_t = 0x4002;
/// `0x4003`: EPID blob error (legacy).
pub const SGX_ERROR_AE_INVALID_EPIDBLOB: sgx_status_t = 0x4003;
/// `0x4004`: Privilege error.
pub const SGX_ERROR_SERVICE_INVALID_PRIVILEGE: sgx_status_t = 0x4004;
/// `0x4005`: EPID member revoked (legacy).
pub const SGX_ERROR_EPID_MEMBER_REVOKED: sgx_status_t = 0x4005;
/// `0x4006`: The platform needs an update.
pub const SGX_ERROR_UPDATE_NEEDED: sgx_status_t = 0x4006;
/// `0x4007`: The service could not reach the network.
pub const SGX_ERROR_NETWORK_FAILURE: sgx_status_t = 0x4007;
/// `0x400a`: The service is busy.
pub const SGX_ERROR_BUSY: sgx_status_t = 0x400a;
/// `0x4012`: The platform is not recognised.
pub const SGX_ERROR_UNRECOGNIZED_PLATFORM: sgx_status_t = 0x4012;
/// `0x4013`: The configuration is not supported.
pub const SGX_ERROR_UNSUPPORTED_CONFIG: sgx_status_t = 0x4013;
/// `0x8001`: The service does not support the attestation key id.
pub const SGX_ERROR_UNSUPPORTED_ATT_KEY_ID: sgx_status_t = 0x8001;
/// `0x8002`: The attestation key could not be certified.
pub const SGX_ERROR_ATT_KEY_CERTIFICATION_FAILURE: sgx_status_t = 0x8002;
/// `0x8003`: The attestation key is not initialised: call `sgx_init_quote_ex` first.
pub const SGX_ERROR_ATT_KEY_UNINITIALIZED: sgx_status_t = 0x8003;
/// `0x8004`: The attestation key's certification data is invalid.
pub const SGX_ERROR_INVALID_ATT_KEY_CERT_DATA: sgx_status_t = 0x8004;
/// `0x8005`: The platform's certification data is unavailable.
pub const SGX_ERROR_PLATFORM_CERT_UNAVAILABLE: sgx_status_t = 0x8005;

/// `sgx_attributes_t`: enclave attribute flags and XFRM.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct sgx_attributes_t {
    pub flags: u64,
    pub xfrm: u64,
}

/// `sgx_target_info_t` (512 bytes): what an enclave needs to make a report for the quoting enclave.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct sgx_target_info_t {
    pub mr_enclave: [u8; 32],
    pub attributes: sgx_attributes_t,
    pub reserved1: [u8; 2],
    pub config_svn: u16,
    pub misc_select: u32,
    pub reserved2: [u8; 8],
    pub config_id: [u8; 64],
    pub reserved3: [u8; 384],
}

/// `sgx_report_body_t` (384 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct sgx_report_body_t {
    pub cpu_svn: [u8; 16],
    pub misc_select: u32,
    pub reserved1: [u8; 12],
    pub isv_ext_prod_id: [u8; 16],
    pub attributes: sgx_attributes_t,
    pub mr_enclave: [u8; 32],
    pub reserved2: [u8; 32],
    pub mr_signer: [u8; 32],
    pub reserved3: [u8; 32],
    pub config_id: [u8; 64],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    pub config_svn: u16,
    pub reserved4: [u8; 42],
    pub isv_family_id: [u8; 16],
    pub report_data: [u8; 64],
}

/// `sgx_report_t` (432 bytes): an enclave report, MACed for its target.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct sgx_report_t {
    pub body: sgx_report_body_t,
    pub key_id: [u8; 32],
    pub mac: [u8; 16],
}

/// `sgx_att_key_id_t` (256 bytes): an opaque attestation key id.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct sgx_att_key_id_t {
    pub att_key_id: [u8; 256],
}

/// `sgx_ql_att_key_id_t` (158 bytes, packed): the part of a key id that the service matches on.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy)]
pub struct sgx_ql_att_key_id_t {
    pub id: u16,
    pub version: u16,
    pub mrsigner_length: u16,
    pub mrsigner: [u8; 48],
    pub prod_id: u32,
    pub extended_prod_id: [u8; 16],
    pub config_id: [u8; 64],
    pub family_id: [u8; 16],
    pub algorithm_id: u32,
}

/// `sgx_att_key_id_ext_t` (256 bytes, packed): the structured form of `sgx_att_key_id_t`.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy)]
pub struct sgx_att_key_id_ext_t {
    pub base: sgx_ql_att_key_id_t,
    pub spid: [u8; 16],
    pub att_key_type: u16,
    pub reserved: [u8; 80],
}

/// `sgx_quote_nonce_t` (16 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct sgx_quote_nonce_t {
    pub rand: [u8; 16],
}

/// `sgx_qe_report_info_t` (960 bytes): nonce and app target info in, the QE's report out.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct sgx_qe_report_info_t {
    pub nonce: sgx_quote_nonce_t,
    pub app_enclave_target_info: sgx_target_info_t,
    pub qe_report: sgx_report_t,
}

// The sizes are part of the ABI: they must match Intel's headers and the protocol's constants.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<sgx_target_info_t>() == TARGET_INFO_SIZE);
    assert!(size_of::<sgx_report_body_t>() == 384);
    assert!(size_of::<sgx_report_t>() == REPORT_SIZE);
    assert!(size_of::<sgx_att_key_id_t>() == ATT_KEY_ID_SIZE);
    assert!(size_of::<sgx_ql_att_key_id_t>() == ATT_KEY_ID_BASE_SIZE);
    assert!(size_of::<sgx_att_key_id_ext_t>() == ATT_KEY_ID_SIZE);
    assert!(size_of::<sgx_qe_report_info_t>() == QE_REPORT_INFO_SIZE);
    assert!(offset_of!(sgx_qe_report_info_t, qe_report) == QE_REPORT_INFO_REPORT_OFFSET);
    assert!(offset_of!(sgx_target_info_t, config_id) == 64);
    assert!(offset_of!(sgx_report_body_t, attributes) == 48);
    assert!(offset_of!(sgx_report_body_t, isv_prod_id) == 256);
    assert!(offset_of!(sgx_report_body_t, report_data) == 320);
    assert!(offset_of!(sgx_ql_att_key_id_t, prod_id) == 54);
    assert!(offset_of!(sgx_ql_att_key_id_t, algorithm_id) == 154);
    assert!(offset_of!(sgx_att_key_id_ext_t, att_key_type) == 174);
};
