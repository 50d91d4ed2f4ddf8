//! Time windows: one second before issueDate / thisUpdate or after nextUpdate of each collateral piece
//! is rejected with that piece named; the edges themselves are inside. A warm verifier respects them too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use dcap_verify::time::{Rfc3339, parse_rfc3339};
use dcap_verify::{CrlKind, Policy, TrustAnchor, Verifier, VerifyError};
use x509_cert::crl::CertificateList;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece {
    RootCrl,
    PckCrl,
    TcbInfo,
    QeIdentity,
}

/// (piece, first valid second, last valid second), in the verifier's check order.
fn windows() -> Vec<(Piece, u64, u64)> {
    let c = sample_collateral();
    let crl = |der: &[u8]| {
        let crl = <CertificateList as der::Decode>::from_der(der).unwrap();
        let this = crl.tbs_cert_list.this_update.to_unix_duration().as_secs();
        let next = crl
            .tbs_cert_list
            .next_update
            .unwrap()
            .to_unix_duration()
            .as_secs();
        (this, next - 1) // a CRL is expired at its nextUpdate second
    };
    let doc = |json: &str| {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        (
            parse_rfc3339(v["issueDate"].as_str().unwrap()).unwrap(),
            parse_rfc3339(v["nextUpdate"].as_str().unwrap()).unwrap(),
        )
    };
    let (a, b) = crl(&c.root_ca_crl);
    let (c1, d1) = crl(&c.pck_crl);
    let (e, f) = doc(&c.tcb_info);
    let (g, h) = doc(&c.qe_identity);
    // Check order: root CA CRL (step 1), TCB info (3), QE identity (4), PCK CRL (5, with the PCK chain).
    vec![
        (Piece::RootCrl, a, b),
        (Piece::TcbInfo, e, f),
        (Piece::QeIdentity, g, h),
        (Piece::PckCrl, c1, d1),
    ]
}

fn names(err: &VerifyError, piece: Piece, bound: u64, early: bool) -> bool {
    use VerifyError::*;
    match (piece, early, err) {
        (
            Piece::RootCrl,
            true,
            CrlNotYetValid {
                which: CrlKind::RootCa,
                this_update,
            },
        ) => *this_update == bound,
        (
            Piece::RootCrl,
            false,
            CrlExpired {
                which: CrlKind::RootCa,
                next_update,
            },
        ) => *next_update == bound + 1,
        (
            Piece::PckCrl,
            true,
            CrlNotYetValid {
                which: CrlKind::Pck,
                this_update,
            },
        ) => *this_update == bound,
        (
            Piece::PckCrl,
            false,
            CrlExpired {
                which: CrlKind::Pck,
                next_update,
            },
        ) => *next_update == bound + 1,
        (Piece::TcbInfo, true, TcbInfoNotYetValid(t))
        | (Piece::TcbInfo, false, TcbInfoExpired(t)) => *t == bound,
        (Piece::QeIdentity, true, QeIdentityNotYetValid(t))
        | (Piece::QeIdentity, false, QeIdentityExpired(t)) => *t == bound,
        _ => false,
    }
}

#[test]
fn one_second_outside_each_window_is_rejected_naming_the_piece() {
    let quote = sample_quote();
    let collateral = sample_collateral();
    let all = windows();
    let lo = all.iter().map(|w| w.1).max().unwrap();
    let hi = all.iter().map(|w| w.2).min().unwrap();
    assert!(lo <= hi);
    let policy = Policy::default();
    // Both edges of the combined window verify, with dcap-qvl agreeing.
    for t in [lo, hi] {
        ours(&quote, &collateral, t, &policy).unwrap_or_else(|e| panic!("at {}: {e}", Rfc3339(t)));
        reference(&intel_root(), &quote, &collateral, t, false).unwrap();
    }
    let mut checked = 0;
    for &(piece, first, last) in &all {
        for (t, early) in [(first - 1, true), (last + 1, false)] {
            let err = ours(&quote, &collateral, t, &policy).unwrap_err();
            // The first piece in check order that is invalid at t is the one reported.
            let (culprit, c_first, c_last) = *all.iter().find(|w| t < w.1 || t > w.2).unwrap();
            let bound = if t < c_first { c_first } else { c_last };
            assert!(
                names(&err, culprit, bound, t < c_first),
                "{piece:?} at {}: {err}",
                Rfc3339(t)
            );
            if culprit == piece {
                checked += 1;
                let message = err.to_string();
                let shown = if early {
                    Rfc3339(first)
                } else {
                    Rfc3339(last + u64::from(matches!(piece, Piece::RootCrl | Piece::PckCrl)))
                };
                assert!(message.contains(&shown.to_string()), "{message}");
            }
            // dcap-qvl agrees wherever it checks the same bound (it does not check a CRL's thisUpdate).
            let crl_not_yet = matches!(culprit, Piece::RootCrl | Piece::PckCrl) && t < c_first;
            if !crl_not_yet {
                assert!(
                    reference(&intel_root(), &quote, &collateral, t, false).is_err(),
                    "{piece:?} at {t}"
                );
            }
        }
    }
    // Every piece binds the window at least on one side for this sample.
    assert!(checked >= 4, "only {checked} bounds named their own piece");
}

#[test]
fn a_warm_verifier_still_enforces_every_window() {
    let quote = sample_quote();
    let collateral = sample_collateral();
    let verifier = Verifier::new(TrustAnchor::intel());
    let policy = Policy::default();
    let all = windows();
    let lo = all.iter().map(|w| w.1).max().unwrap();
    let hi = all.iter().map(|w| w.2).min().unwrap();
    for t in [lo, SAMPLE_NOW, hi] {
        verifier.verify(&quote, &collateral, t, &policy).unwrap();
    }
    for t in [lo - 1, hi + 1, hi + 86400 * 400] {
        let cold = ours(&quote, &collateral, t, &policy).unwrap_err();
        let warm = verifier
            .verify(&quote, &collateral, t, &policy)
            .unwrap_err();
        assert_eq!(cold, warm);
    }
    verifier
        .verify(&quote, &collateral, SAMPLE_NOW, &policy)
        .unwrap();
}
