//! Quotes and collateral of the simulated platform (`sgx-sim`): every TCB and QE status comes out as
//! configured and as dcap-qvl reports it, revocation, the wrong root, TCB info v2 against v3, the PCS
//! directory layout, v4 quotes, and a warm verifier against cold verdicts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::reference;
use dcap_verify::{
    Collateral, CrlKind, Policy, QvResult, TcbStatus, TrustAnchor, Verifier, VerifyError,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use sgx_sim::{CollateralOptions, EnclaveIdentity, InitOptions, QeStatus, SimPlatform};
use sgx_types::Quote;

struct Sim {
    dir: tempfile::TempDir,
    platform: SimPlatform,
    anchor: TrustAnchor,
}

fn sim() -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let platform = SimPlatform::open_or_init(dir.path(), &InitOptions::default()).unwrap();
    platform.init_attestation_key().unwrap();
    let anchor = TrustAnchor::from_der(platform.root_ca_der()).unwrap();
    Sim {
        dir,
        platform,
        anchor,
    }
}

fn now() -> u64 {
    // Collateral is issued "now" by the simulator; verify a minute later, well inside its 30 days.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60
}

impl Sim {
    fn quote(&self, report_data: [u8; 64]) -> Vec<u8> {
        let report = self.platform.cpu().create_report(
            &EnclaveIdentity::default(),
            &self.platform.qe_target_info(),
            &report_data,
        );
        self.platform.quote(&report).unwrap()
    }

    fn collateral(&self, opts: &CollateralOptions) -> Collateral {
        let c = self.platform.collateral(opts).unwrap();
        Collateral::from_json(&c.qvl_json()).unwrap()
    }
}

#[test]
fn up_to_date_under_the_sim_root_and_dcap_qvl_agrees() {
    let sim = sim();
    let quote = sim.quote([7; 64]);
    let collateral = sim.collateral(&CollateralOptions::default());
    let now = now();
    let v = Verifier::new(sim.anchor.clone())
        .verify(&quote, &collateral, now, &Policy::default())
        .unwrap();
    assert_eq!(v.status, TcbStatus::UpToDate);
    assert_eq!(v.qv_result, QvResult::Ok);
    assert!(v.accepted);
    assert!(!v.intel_root, "a sim root is not Intel's");
    assert_eq!(v.report_body.report_data, [7; 64]);
    let (status, advisories) =
        reference(sim.anchor.der(), &quote, &collateral, now, false).unwrap();
    assert_eq!(status, "UpToDate");
    assert_eq!(advisories, v.advisory_ids);
}

#[test]
fn every_tcb_and_qe_status_comes_out_as_configured_and_as_dcap_qvl_says() {
    let sim = sim();
    let quote = sim.quote([1; 64]);
    let now = now();
    let verifier = Verifier::new(sim.anchor.clone());
    for platform in TcbStatus::ALL {
        for qe in QeStatus::ALL {
            let opts = CollateralOptions {
                tcb_status: Some(platform),
                qe_status: qe,
                advisory_ids: vec!["INTEL-SA-00615".into()],
                ..CollateralOptions::default()
            };
            let collateral = sim.collateral(&opts);
            let qe_status = TcbStatus::from_name(qe.as_str()).unwrap();
            let expected = platform.converge_with_qe(qe_status);
            let ours = verifier.verify(&quote, &collateral, now, &Policy::default());
            let theirs = reference(sim.anchor.der(), &quote, &collateral, now, false);
            let case = format!("platform {platform}, QE {qe_status}");
            if expected == TcbStatus::Revoked {
                assert_eq!(ours.unwrap_err(), VerifyError::TcbRevoked, "{case}");
                assert!(theirs.unwrap_err().contains("Revoked"), "{case}");
                continue;
            }
            let v = ours.unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(v.status, expected, "{case}");
            assert_eq!(v.platform_status, platform, "{case}");
            assert_eq!(v.qe_status, qe_status, "{case}");
            assert_eq!(v.qv_result, QvResult::from(expected), "{case}");
            assert_eq!(
                v.accepted,
                Policy::DEFAULT_ACCEPTED.contains(&expected),
                "{case}"
            );
            let (status, advisories) = theirs.unwrap_or_else(|e| panic!("{case}: dcap-qvl: {e}"));
            assert_eq!(status, expected.name(), "{case}");
            assert_eq!(advisories, v.advisory_ids, "{case}");
        }
    }
}

#[test]
fn revoked_pck_certificate_is_rejected() {
    let sim = sim();
    let quote = sim.quote([0; 64]);
    let collateral = sim.collateral(&CollateralOptions {
        revoke_pck: true,
        ..CollateralOptions::default()
    });
    let now = now();
    let err =
        dcap_verify::verify(&quote, &collateral, &sim.anchor, now, &Policy::default()).unwrap_err();
    assert_eq!(err.to_string(), "PCK certificate revoked");
    assert_eq!(err.qv_result(), QvResult::Revoked);
    assert!(reference(sim.anchor.der(), &quote, &collateral, now, false).is_err());
}

#[test]
fn intel_root_rejects_a_sim_quote() {
    let sim = sim();
    let quote = sim.quote([0; 64]);
    let collateral = sim.collateral(&CollateralOptions::default());
    let now = now();
    let err = dcap_verify::verify(
        &quote,
        &collateral,
        &TrustAnchor::intel(),
        now,
        &Policy::default(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        VerifyError::CrlSignatureInvalid {
            which: CrlKind::RootCa
        }
    );
    assert!(
        reference(
            dcap_verify::INTEL_ROOT_CA_DER,
            &quote,
            &collateral,
            now,
            false
        )
        .is_err()
    );
}

#[test]
fn tcb_info_v2_gives_the_same_verdicts_as_v3() {
    let sim = sim();
    let quote = sim.quote([2; 64]);
    let now = now();
    let verifier = Verifier::new(sim.anchor.clone());
    for status in TcbStatus::ALL {
        let v3 = CollateralOptions {
            tcb_status: Some(status),
            advisory_ids: vec!["INTEL-SA-00289".into()],
            ..CollateralOptions::default()
        };
        let v2 = CollateralOptions {
            tcb_info_version: 2,
            ..v3.clone()
        };
        let c3 = sim.collateral(&v3);
        let c2 = sim.collateral(&v2);
        assert!(
            c2.tcb_info.contains("sgxtcbcomp01svn") && !c2.tcb_info.contains("sgxtcbcomponents")
        );
        let r3 = verifier.verify(&quote, &c3, now, &Policy::default());
        let r2 = verifier.verify(&quote, &c2, now, &Policy::default());
        match (r3, r2) {
            (Ok(a), Ok(b)) => {
                assert_eq!((a.tcb_info_version, b.tcb_info_version), (3, 2));
                assert_eq!(
                    a,
                    dcap_verify::Verdict {
                        tcb_info_version: 3,
                        ..b
                    },
                    "{status}"
                );
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{status}"),
            (a, b) => panic!("{status}: v3 {a:?} but v2 {b:?}"),
        }
        // dcap-qvl reads only v3.
        assert!(reference(sim.anchor.der(), &quote, &c2, now, false).is_err());
    }
}

#[test]
fn pcs_directory_layout_verifies_and_its_pcs_files_win() {
    let sim = sim();
    let quote = sim.quote([3; 64]);
    let now = now();
    let good = sim
        .platform
        .collateral(&CollateralOptions::default())
        .unwrap();
    let dir = sim.dir.path().join("collateral");
    good.write_to(&dir).unwrap();
    let from_dir = Collateral::load(&dir).unwrap();
    assert_eq!(from_dir, Collateral::from_json(&good.qvl_json()).unwrap());
    let v = dcap_verify::verify(&quote, &from_dir, &sim.anchor, now, &Policy::default()).unwrap();
    assert_eq!(v.status, TcbStatus::UpToDate);

    // collateral.json saying OutOfDate loses against the PCS files saying UpToDate…
    let out_of_date = sim
        .platform
        .collateral(&CollateralOptions {
            tcb_status: Some(sgx_sim::TcbStatus::OutOfDate),
            ..CollateralOptions::default()
        })
        .unwrap();
    std::fs::write(dir.join("collateral.json"), out_of_date.qvl_json()).unwrap();
    let v = dcap_verify::verify(
        &quote,
        &Collateral::load(&dir).unwrap(),
        &sim.anchor,
        now,
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(v.status, TcbStatus::UpToDate);
    // …and without the PCS TCB info file, collateral.json's TCB info is used.
    std::fs::remove_file(dir.join("tcb_info.json")).unwrap();
    let mixed = Collateral::load(&dir).unwrap();
    assert_eq!(
        mixed.tcb_info,
        Collateral::from_json(&out_of_date.qvl_json())
            .unwrap()
            .tcb_info
    );
    // The anchor written next to the collateral is the platform's root.
    let pem = std::fs::read(dir.join("root-ca.pem")).unwrap();
    assert_eq!(
        TrustAnchor::from_pem_or_der(&pem).unwrap().der(),
        sim.anchor.der()
    );
}

#[derive(serde::Deserialize)]
struct AttKeyFile {
    pkcs8: String,
}

/// Rewrites a v3 quote as v4 (type-6 certification data wrapping the QE part) and re-signs the header
/// and body with the platform's attestation key.
fn as_v4(sim: &Sim, v3: &[u8]) -> Vec<u8> {
    let file: AttKeyFile = serde_json::from_slice(
        &std::fs::read(sim.dir.path().join(sgx_sim::ATTESTATION_KEY_FILE)).unwrap(),
    )
    .unwrap();
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &hex::decode(file.pkcs8).unwrap(),
        &SystemRandom::new(),
    )
    .unwrap();
    let mut quote = Quote::parse(v3).unwrap();
    quote.header.version = 4;
    let sig = key
        .sign(&SystemRandom::new(), &quote.signed_bytes())
        .unwrap();
    quote.signature.isv_signature.copy_from_slice(sig.as_ref());
    quote.to_bytes()
}

#[test]
fn v4_quotes_pass_the_same_checks() {
    let sim = sim();
    let v3 = sim.quote([4; 64]);
    let v4 = as_v4(&sim, &v3);
    assert_eq!(Quote::parse(&v4).unwrap().header.version, 4);
    assert_ne!(v3.len(), v4.len());
    let collateral = sim.collateral(&CollateralOptions::default());
    let now = now();
    let a = dcap_verify::verify(&v3, &collateral, &sim.anchor, now, &Policy::default()).unwrap();
    let b = dcap_verify::verify(&v4, &collateral, &sim.anchor, now, &Policy::default()).unwrap();
    assert_eq!(b.quote_version, 4);
    assert_eq!(
        a,
        dcap_verify::Verdict {
            quote_version: 3,
            ..b
        }
    );
    // The v4 ISV signature covers the v4 header: the v3 signature does not verify there.
    let mut bad = v4.clone();
    bad[436..500].copy_from_slice(&v3[436..500]);
    assert_eq!(
        dcap_verify::verify(&bad, &collateral, &sim.anchor, now, &Policy::default()).unwrap_err(),
        VerifyError::IsvSignatureInvalid
    );
}

#[test]
fn a_warm_verifier_gives_the_cold_verdict_for_every_quote_of_a_stream() {
    let sim = sim();
    let collateral = sim.collateral(&CollateralOptions::default());
    let now = now();
    let verifier = Verifier::new(sim.anchor.clone());
    for i in 0..20u8 {
        let mut quote = sim.quote([i; 64]);
        if i % 5 == 4 {
            quote[100] ^= 1; // a tampered report body among good quotes
        }
        let cold = dcap_verify::verify(&quote, &collateral, &sim.anchor, now, &Policy::default());
        let warm = verifier.verify(&quote, &collateral, now, &Policy::default());
        assert_eq!(cold, warm, "quote {i}");
        assert_eq!(warm.is_ok(), i % 5 != 4, "quote {i}");
    }
    let stats = verifier.cache_stats();
    assert_eq!(
        (stats.collateral, stats.pck_chains, stats.qe_reports),
        (1, 1, 1)
    );
}
