//! Arbitrary damage to a quote or its collateral (truncation, insertion, overwrites, garbage) yields a
//! typed error, never a panic, and never a verdict for anything but the original bytes (bytes after the
//! quote proper and a chain's optional final line break aside).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use dcap_verify::{Collateral, Policy, QeIdentity, TcbInfo, TrustAnchor, Verifier};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Overwrite(usize, Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Edit::Overwrite(i, b)),
    ]
}

fn apply(bytes: &[u8], e: &Edit) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match e {
        Edit::Truncate(i) => out.truncate(i % bytes.len().max(1)),
        Edit::Insert(i, b) => {
            let at = i % (out.len() + 1);
            out.splice(at..at, b.iter().copied());
        }
        Edit::Overwrite(i, b) => {
            let at = i % out.len().max(1);
            for (k, byte) in b.iter().enumerate() {
                if let Some(slot) = out.get_mut(at + k) {
                    *slot ^= byte | 1;
                }
            }
        }
    }
    out
}

fn text_edit(s: &str, e: &Edit) -> String {
    String::from_utf8_lossy(&apply(s.as_bytes(), e)).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn damaged_quotes_are_errors(e in edit()) {
        let quote = sample_quote();
        let damaged = apply(&quote, &e);
        // Bytes after the quote proper are not part of it (aesmd pads quotes): only damage inside counts.
        prop_assume!(damaged.get(..quote.len()) != Some(&quote[..]));
        let verifier = Verifier::new(TrustAnchor::intel());
        prop_assert!(verifier.verify(&damaged, &sample_collateral(), SAMPLE_NOW, &Policy::default()).is_err());
    }

    #[test]
    fn damaged_collateral_is_an_error(field in 0usize..9, e in edit()) {
        let good = sample_collateral();
        let mut c = good.clone();
        match field {
            0 => c.root_ca_crl = apply(&c.root_ca_crl, &e),
            1 => c.pck_crl = apply(&c.pck_crl, &e),
            2 => c.pck_crl_issuer_chain = text_edit(&c.pck_crl_issuer_chain, &e),
            3 => c.tcb_info_issuer_chain = text_edit(&c.tcb_info_issuer_chain, &e),
            4 => c.tcb_info = text_edit(&c.tcb_info, &e),
            5 => c.tcb_info_signature = apply(&c.tcb_info_signature, &e),
            6 => c.qe_identity_issuer_chain = text_edit(&c.qe_identity_issuer_chain, &e),
            7 => c.qe_identity = text_edit(&c.qe_identity, &e),
            _ => c.qe_identity_signature = apply(&c.qe_identity_signature, &e),
        }
        // A chain's final line break is optional: dropping only that is no damage.
        let chains = |c: &Collateral| {
            [&c.pck_crl_issuer_chain, &c.tcb_info_issuer_chain, &c.qe_identity_issuer_chain]
                .map(|s| s.trim_end().to_owned())
        };
        prop_assume!(c != good);
        if matches!(field, 2 | 3 | 6) {
            prop_assume!(chains(&c) != chains(&good));
        }
        prop_assert!(ours(&sample_quote(), &c, SAMPLE_NOW, &Policy::default()).is_err());
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let _ = TcbInfo::from_json(&text);
        let _ = QeIdentity::from_json(&text);
        let _ = Collateral::from_json(&text);
        let _ = dcap_verify::parse_signed_document(&text);
        let _ = TrustAnchor::from_pem_or_der(&bytes);
        let c = Collateral {
            root_ca_crl: bytes.clone(),
            pck_crl: bytes.clone(),
            pck_crl_issuer_chain: text.clone(),
            tcb_info_issuer_chain: text.clone(),
            tcb_info: text.clone(),
            qe_identity_issuer_chain: text.clone(),
            qe_identity: text.clone(),
            pck_certificate_chain: Some(text.clone()),
            ..sample_collateral()
        };
        prop_assert!(ours(&bytes, &c, SAMPLE_NOW, &Policy::default()).is_err());
        prop_assert!(ours(&bytes, &sample_collateral(), SAMPLE_NOW, &Policy::default()).is_err());
    }
}
