//! Intel's structure layouts (`sgx_ql_lib_common.h`, x86_64): sizes and field offsets, including
//! the two halves of the collateral's version.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::mem::{offset_of, size_of};

use dcap_quoteprov::types::*;

#[test]
fn pck_cert_id_is_43_packed_bytes() {
    assert_eq!(size_of::<sgx_ql_pck_cert_id_t>(), 43);
    assert_eq!(std::mem::align_of::<sgx_ql_pck_cert_id_t>(), 1);
    let offsets = [
        offset_of!(sgx_ql_pck_cert_id_t, p_qe3_id),
        offset_of!(sgx_ql_pck_cert_id_t, qe3_id_size),
        offset_of!(sgx_ql_pck_cert_id_t, p_platform_cpu_svn),
        offset_of!(sgx_ql_pck_cert_id_t, p_platform_pce_isv_svn),
        offset_of!(sgx_ql_pck_cert_id_t, p_encrypted_ppid),
        offset_of!(sgx_ql_pck_cert_id_t, encrypted_ppid_size),
        offset_of!(sgx_ql_pck_cert_id_t, crypto_suite),
        offset_of!(sgx_ql_pck_cert_id_t, pce_id),
    ];
    assert_eq!(offsets, [0, 8, 12, 20, 28, 36, 40, 41]);
}

#[test]
fn config_is_34_packed_bytes() {
    assert_eq!(size_of::<sgx_ql_config_t>(), 34);
    let offsets = [
        offset_of!(sgx_ql_config_t, version),
        offset_of!(sgx_ql_config_t, cert_cpu_svn),
        offset_of!(sgx_ql_config_t, cert_pce_isv_svn),
        offset_of!(sgx_ql_config_t, cert_data_size),
        offset_of!(sgx_ql_config_t, p_cert_data),
    ];
    assert_eq!(offsets, [0, 4, 20, 22, 26]);
}

#[test]
fn collateral_is_120_bytes_with_padded_sizes() {
    assert_eq!(size_of::<sgx_ql_qve_collateral_t>(), 120);
    let offsets = [
        offset_of!(sgx_ql_qve_collateral_t, version),
        offset_of!(sgx_ql_qve_collateral_t, tee_type),
        offset_of!(sgx_ql_qve_collateral_t, pck_crl_issuer_chain),
        offset_of!(sgx_ql_qve_collateral_t, pck_crl_issuer_chain_size),
        offset_of!(sgx_ql_qve_collateral_t, root_ca_crl),
        offset_of!(sgx_ql_qve_collateral_t, root_ca_crl_size),
        offset_of!(sgx_ql_qve_collateral_t, pck_crl),
        offset_of!(sgx_ql_qve_collateral_t, pck_crl_size),
        offset_of!(sgx_ql_qve_collateral_t, tcb_info_issuer_chain),
        offset_of!(sgx_ql_qve_collateral_t, tcb_info_issuer_chain_size),
        offset_of!(sgx_ql_qve_collateral_t, tcb_info),
        offset_of!(sgx_ql_qve_collateral_t, tcb_info_size),
        offset_of!(sgx_ql_qve_collateral_t, qe_identity_issuer_chain),
        offset_of!(sgx_ql_qve_collateral_t, qe_identity_issuer_chain_size),
        offset_of!(sgx_ql_qve_collateral_t, qe_identity),
        offset_of!(sgx_ql_qve_collateral_t, qe_identity_size),
    ];
    assert_eq!(
        offsets,
        [
            0, 4, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112
        ]
    );
}

#[test]
fn collateral_versions_put_major_at_offset_0_and_minor_at_offset_2() {
    let v31 = SGX_QL_QVE_COLLATERAL_VERSION_3_1.to_le_bytes();
    assert_eq!(u16::from_le_bytes([v31[0], v31[1]]), 3);
    assert_eq!(u16::from_le_bytes([v31[2], v31[3]]), 1);
    let v30 = SGX_QL_QVE_COLLATERAL_VERSION_3_0.to_le_bytes();
    assert_eq!(u16::from_le_bytes([v30[0], v30[1]]), 3);
    assert_eq!(u16::from_le_bytes([v30[2], v30[3]]), 0);
}

#[test]
fn error_codes_are_intels() {
    assert_eq!(SGX_QL_SUCCESS, 0);
    assert_eq!(SGX_QL_ERROR_UNEXPECTED, 0xE001);
    assert_eq!(SGX_QL_ERROR_INVALID_PARAMETER, 0xE002);
    assert_eq!(SGX_QL_ERROR_OUT_OF_MEMORY, 0xE003);
    assert_eq!(SGX_QL_NO_PLATFORM_CERT_DATA, 0xE011);
    assert_eq!(SGX_QL_NETWORK_ERROR, 0xE019);
    assert_eq!(SGX_QL_NO_QUOTE_COLLATERAL_DATA, 0xE01B);
    assert_eq!(SGX_QL_NO_QVE_IDENTITY_DATA, 0xE037);
    assert_eq!(SGX_QL_PLATFORM_UNKNOWN, 0xE047);
    assert_eq!(SGX_QL_CONFIG_INVALID_JSON, 0xE067);
}
