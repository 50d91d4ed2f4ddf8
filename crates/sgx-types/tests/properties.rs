//! Property tests: the parser never panics, and every quote the encoder builds parses back to itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use sgx_types::quote::{INTEL_QE_VENDOR_ID, Quote, QuoteHeader, SignatureData};
use sgx_types::structs::Wire;
use sgx_types::{CertificationData, ReportBody};

fn report_body() -> impl Strategy<Value = ReportBody> {
    prop::collection::vec(any::<u8>(), 384).prop_map(|b| ReportBody::parse(&b).unwrap())
}

prop_compose! {
    fn parts()(
        version in prop_oneof![Just(3u16), Just(4u16)],
        qe_svn in any::<u16>(),
        pce_svn in any::<u16>(),
        user_data in prop::array::uniform20(any::<u8>()),
        body in report_body(),
        qe_report in report_body(),
        sigs in prop::collection::vec(any::<u8>(), 192),
        auth in prop::collection::vec(any::<u8>(), 0..64),
        cert_type in prop_oneof![Just(5u16), 1u16..=4],
        cert in prop::collection::vec(any::<u8>(), 0..600),
        padding in 0usize..300,
    ) -> (u16, u16, u16, [u8; 20], ReportBody, ReportBody, Vec<u8>, Vec<u8>, u16, Vec<u8>, usize) {
        (version, qe_svn, pce_svn, user_data, body, qe_report, sigs, auth, cert_type, cert, padding)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..5000)) {
        let _ = Quote::parse(&bytes);
    }

    #[test]
    fn mutated_real_quote_never_panics(pos in 0usize..4600, val in any::<u8>(), cut in 0usize..4700) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors/dcap-qvl/sgx_quote");
        let mut bytes = std::fs::read(path).unwrap();
        bytes[pos] = val;
        bytes.truncate(cut);
        if let Ok(q) = Quote::parse(&bytes) {
            prop_assert_eq!(q.to_bytes(), bytes[..q.quote_len()].to_vec());
        }
    }

    #[test]
    fn built_quotes_round_trip(p in parts()) {
        let (version, qe_svn, pce_svn, user_data, body, qe_report, sigs, auth, cert_type, cert, padding) = p;
        let quote = Quote {
            header: QuoteHeader {
                version,
                att_key_type: 2,
                tee_type: 0,
                qe_svn,
                pce_svn,
                qe_vendor_id: INTEL_QE_VENDOR_ID,
                user_data,
            },
            report_body: body,
            signature: SignatureData {
                isv_signature: sigs[..64].try_into().unwrap(),
                attestation_key: sigs[64..128].try_into().unwrap(),
                qe_report,
                qe_report_signature: sigs[128..].try_into().unwrap(),
                qe_auth_data: &auth,
                certification_data: CertificationData { cert_type, data: &cert },
            },
            trailing_bytes: &[],
        };
        let mut bytes = quote.to_bytes();
        prop_assert_eq!(bytes.len(), quote.quote_len());
        let expected_sig_len = 128 + 384 + 64 + 2 + auth.len() + 6 + cert.len() + if version == 4 { 6 } else { 0 };
        prop_assert_eq!(quote.signature_data_len(), expected_sig_len);
        prop_assert_eq!(Quote::parse(&bytes).unwrap(), quote);
        let len = bytes.len();
        bytes.resize(len + padding, 0);
        let padded = Quote::parse(&bytes).unwrap();
        prop_assert_eq!(padded.trailing_bytes.len(), padding);
        prop_assert_eq!(padded.to_bytes(), bytes[..len].to_vec());
        if version == 4 {
            // The outer certification data is type 6 wrapping the QE part.
            prop_assert_eq!(u16::from_le_bytes([bytes[564], bytes[565]]), 6);
        }
    }
}
