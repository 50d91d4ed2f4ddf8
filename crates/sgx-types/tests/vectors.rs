//! Golden tests on the real quotes in `../shared/vectors` (relative to the repository root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use sgx_types::ParseError;
use sgx_types::pck::{PckExtension, parse_pem_chain};
use sgx_types::quote::{INTEL_QE_VENDOR_ID, Quote};

fn vector(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const GOOD: &[&str] = &[
    "dcap-qvl/sgx_quote",
    "automata-dcap-rs/quote_sgx.bin",
    "dcap-qvl/tampered/quote_attkey_flip.bin",
    "dcap-qvl/tampered/quote_isvsig_flip.bin",
    "dcap-qvl/tampered/quote_mrenclave_flip.bin",
    "dcap-qvl/tampered/quote_qeauth_flip.bin",
    "dcap-qvl/tampered/quote_qereport_flip.bin",
    "dcap-qvl/tampered/quote_reportdata_flip.bin",
];

#[test]
fn every_vector_round_trips_byte_for_byte() {
    for name in GOOD {
        let bytes = vector(name);
        let quote = Quote::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(quote.to_bytes(), bytes, "{name}");
        assert_eq!(quote.quote_len(), bytes.len(), "{name}");
        assert!(quote.trailing_bytes.is_empty(), "{name}");
        assert_eq!(quote.signed_bytes(), bytes[..432], "{name}");
    }
}

#[test]
fn dcap_qvl_sample_fields() {
    let bytes = vector("dcap-qvl/sgx_quote");
    let q = Quote::parse(&bytes).unwrap();
    assert_eq!(q.header.version, 3);
    assert_eq!(q.header.att_key_type, 2);
    assert_eq!(q.header.tee_type, 0);
    assert_eq!(q.header.qe_svn, 10);
    assert_eq!(q.header.pce_svn, 15);
    assert_eq!(q.header.qe_vendor_id, INTEL_QE_VENDOR_ID);
    assert_eq!(q.report_body.attributes.flags & 0xff, 0x05);
    assert!(!q.report_body.attributes.is_debug());
    assert_eq!(q.signature_data_len(), 4164);
    assert_eq!(q.signature.certification_data.cert_type, 5);
    assert_eq!(q.signature.certification_data.data.len(), 3548);
    assert_eq!(q.signature.qe_auth_data.len(), 32);
    // The PEM chain equals the extracted file plus a NUL terminator.
    let pem = vector("dcap-qvl/sgx_quote.pckchain.pem");
    assert_eq!(&q.signature.certification_data.data[..pem.len()], &pem[..]);
    assert_eq!(q.signature.certification_data.data[pem.len()..], [0]);

    let chain = parse_pem_chain(q.signature.certification_data.pck_chain_pem().unwrap()).unwrap();
    assert_eq!(chain.len(), 3);
    let ext = PckExtension::from_certificate(&chain[0]).unwrap();
    assert_eq!(ext.fmspc, [0x00, 0xa0, 0x67, 0x11, 0x00, 0x00]);
    assert_eq!(ext.pce_id, [0, 0]);
    assert_eq!(ext.sgx_type, 0);
    assert_eq!(ext.tcb.cpu_svn, ext.tcb.comp_svn);
    assert!(ext.platform_instance_id.is_none());
    // Re-encoding the decoded extension gives back the certificate's bytes.
    let raw = chain[0]
        .tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .find(|e| e.extn_id == sgx_types::pck::SGX_EXTENSION_OID)
        .unwrap()
        .extn_value
        .as_bytes()
        .to_vec();
    assert_eq!(ext.to_der().unwrap(), raw);
    // The root of the chain is Intel's root.
    let root_der = vector("intel-sgx-root-ca.der");
    use der::Encode;
    assert_eq!(chain[2].to_der().unwrap(), root_der);
}

#[test]
fn automata_quote_is_a_debug_enclave() {
    let bytes = vector("automata-dcap-rs/quote_sgx.bin");
    let q = Quote::parse(&bytes).unwrap();
    assert_eq!(q.report_body.attributes.flags & 0xff, 0x07);
    assert!(q.report_body.attributes.is_debug());
    assert_eq!((q.header.qe_svn, q.header.pce_svn), (10, 15));
    assert_eq!(q.signature_data_len(), 4164);
}

#[test]
fn version_2_header_is_unsupported() {
    let bytes = vector("dcap-qvl/tampered/quote_header_version2.bin");
    assert_eq!(
        Quote::parse(&bytes).unwrap_err(),
        ParseError::UnsupportedVersion { version: 2 }
    );
}

#[test]
fn padded_quote_reports_trailing_bytes() {
    let mut bytes = vector("dcap-qvl/sgx_quote");
    let len = bytes.len();
    bytes.resize(8192, 0);
    let q = Quote::parse(&bytes).unwrap();
    assert_eq!(q.quote_len(), len);
    assert_eq!(q.trailing_bytes.len(), 8192 - len);
    assert_eq!(q.to_bytes(), bytes[..len]);
}

#[test]
fn every_truncation_is_a_named_error() {
    let bytes = vector("dcap-qvl/sgx_quote");
    for cut in 0..bytes.len() {
        let err = Quote::parse(&bytes[..cut]).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, ParseError::Truncated { .. } | ParseError::Empty),
            "cut {cut}: {msg}"
        );
    }
}

#[test]
fn oversized_signature_length_is_truncation_not_panic() {
    let mut bytes = vector("dcap-qvl/sgx_quote");
    bytes[432..436].copy_from_slice(&u32::MAX.to_le_bytes());
    match Quote::parse(&bytes).unwrap_err() {
        ParseError::Truncated { field, offset, .. } => {
            assert_eq!(field, "signature_data");
            assert_eq!(offset, 436);
        }
        other => panic!("{other}"),
    }
    // A cert data size running past the signature data.
    let mut bytes = vector("dcap-qvl/sgx_quote");
    bytes[1048..1052].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    match Quote::parse(&bytes).unwrap_err() {
        ParseError::Truncated { field, offset, .. } => {
            assert_eq!(field, "certification_data");
            assert_eq!(offset, 1052);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn signature_length_longer_than_structure_is_rejected() {
    let mut bytes = vector("dcap-qvl/sgx_quote");
    bytes.push(0);
    let len = u32::from_le_bytes(bytes[432..436].try_into().unwrap()) + 1;
    bytes[432..436].copy_from_slice(&len.to_le_bytes());
    assert!(matches!(
        Quote::parse(&bytes).unwrap_err(),
        ParseError::Invalid {
            field: "signature_data_len",
            ..
        }
    ));
}

#[test]
fn pem_chain_decoding_is_strict() {
    let pem = vector("dcap-qvl/sgx_quote.pckchain.pem");
    assert_eq!(parse_pem_chain(&pem).unwrap().len(), 3);
    let mut with_nul = pem.clone();
    with_nul.push(0);
    assert_eq!(parse_pem_chain(&with_nul).unwrap().len(), 3);
    let mut two_nuls = with_nul.clone();
    two_nuls.push(0);
    assert!(parse_pem_chain(&two_nuls).is_err());
    let mut junk = with_nul.clone();
    junk.insert(junk.len() - 1, b'x');
    assert!(parse_pem_chain(&junk).is_err());
    // A non-base64 character inside the body.
    let mut bad = pem.clone();
    let pos = pem.iter().position(|&b| b == b'\n').unwrap() + 5;
    bad[pos] = b'*';
    assert!(parse_pem_chain(&bad).is_err());
    assert!(parse_pem_chain(b"").is_err());
}

#[test]
fn altered_base64_is_not_recovered_to_the_original_certificate() {
    // A single changed base64 character inside a certificate must never decode to the same chain.
    let pem = vector("dcap-qvl/sgx_quote.pckchain.pem");
    let original = sgx_types::pck::split_pem_chain(&pem).unwrap();
    let begin_len = b"-----BEGIN CERTIFICATE-----\n".len();
    for pos in begin_len..begin_len + 200 {
        let mut altered = pem.clone();
        altered[pos] = if altered[pos] == b'k' { b'j' } else { b'k' };
        if let Ok(ders) = sgx_types::pck::split_pem_chain(&altered) {
            assert_ne!(ders, original, "byte {pos}");
        }
    }
    // Line structure is part of the encoding: rewrapping at 76 columns is rejected.
    let text = String::from_utf8(pem.clone()).unwrap();
    let rewrapped = text.replacen('\n', "", 2);
    assert!(parse_pem_chain(rewrapped.as_bytes()).is_err());
    let crlf = text.replace('\n', "\r\n");
    assert_eq!(parse_pem_chain(crlf.as_bytes()).unwrap().len(), 3);
}
