//! The platform's state, reports and errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use common::*;
use sgx_sim::{
    CollateralOptions, EnclaveIdentity, InitOptions, SimCpu, SimError, SimPlatform, TcbStatus,
};
use sgx_types::structs::{TargetInfo, Wire};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_fresh_platform_has_no_attestation_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = SimPlatform::open_or_init(dir.path(), &InitOptions::default()).unwrap();
    assert!(!p.attestation_key_initialized());
    assert!(matches!(
        p.quote_size(),
        Err(SimError::AttKeyNotInitialized)
    ));
    let report = p
        .cpu()
        .create_report(&EnclaveIdentity::default(), &p.qe_target_info(), &[0; 64]);
    assert!(matches!(
        p.quote(&report),
        Err(SimError::AttKeyNotInitialized)
    ));
    p.init_attestation_key().unwrap();
    assert!(p.attestation_key_initialized());
    assert_eq!(
        p.quote(&report).unwrap().len() as u32,
        p.quote_size().unwrap()
    );
}

#[test]
fn open_needs_an_initialised_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    match SimPlatform::open(dir.path()) {
        Err(SimError::NotInitialised(path)) => assert_eq!(path, dir.path()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (id, root) = {
        let p = platform(dir.path());
        (p.init_attestation_key().unwrap(), p.root_ca_der().to_vec())
    };
    let p = SimPlatform::open(dir.path()).unwrap();
    assert!(p.attestation_key_initialized(), "the key is persisted");
    assert_eq!(
        p.init_attestation_key().unwrap(),
        id,
        "pub_key_id is stable"
    );
    assert_eq!(p.root_ca_der(), root.as_slice());
    let quote = quote_for(&p, &EnclaveIdentity::default(), [9; 64]);
    assert_eq!(
        verify(&p, &quote, &CollateralOptions::default())
            .unwrap()
            .status,
        "UpToDate"
    );
    // open_or_init on an initialised dir loads, whatever the options say.
    let again = SimPlatform::open_or_init(
        dir.path(),
        &InitOptions {
            tcb_status: TcbStatus::OutOfDate,
            ..InitOptions::default()
        },
    )
    .unwrap();
    assert_eq!(again.root_ca_der(), root.as_slice());
    assert_eq!(again.default_tcb_status(), TcbStatus::UpToDate);
}

#[test]
fn pub_key_id_is_the_hash_of_the_attestation_key_and_auth_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let id = p.init_attestation_key().unwrap();
    let quote = quote_for(&p, &EnclaveIdentity::default(), [0; 64]);
    let q = sgx_types::Quote::parse(&quote).unwrap();
    let mut input = q.signature.attestation_key.to_vec();
    input.extend_from_slice(q.signature.qe_auth_data);
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    assert_eq!(digest.as_ref(), id);
    assert_eq!(&q.signature.qe_report.report_data[..32], id);
    assert_eq!(q.signature.qe_report.report_data[32..], [0; 32]);
}

#[test]
fn concurrent_key_initialisation_agrees_on_one_key() {
    let dir = tempfile::tempdir().unwrap();
    SimPlatform::open_or_init(dir.path(), &InitOptions::default()).unwrap();
    // Two platforms on one state dir, as two processes would be, and threads on each.
    let a = Arc::new(SimPlatform::open(dir.path()).unwrap());
    let b = Arc::new(SimPlatform::open(dir.path()).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let p = if i % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || p.init_attestation_key().unwrap())
        })
        .collect();
    let ids: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:02x?}");
}

#[test]
fn concurrent_initialisation_creates_one_platform() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(dir.path().join("state"));
    let ca = dir.path().join("ca");
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let state = state.clone();
            // Half of them under a shared CA directory that does not exist yet.
            let opts = InitOptions {
                ca_dir: Some(ca.clone()),
                ..InitOptions::default()
            };
            std::thread::spawn(move || {
                let node = if i % 2 == 0 {
                    (*state).clone()
                } else {
                    state.with_file_name(format!("node-{i}"))
                };
                let p = SimPlatform::open_or_init(&node, &opts).unwrap();
                p.root_ca_der().to_vec()
            })
        })
        .collect();
    let roots: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(roots.windows(2).all(|w| w[0] == w[1]), "one root for all");
    let p = SimPlatform::open(&state).unwrap();
    p.init_attestation_key().unwrap();
    let quote = quote_for(&p, &EnclaveIdentity::default(), [0; 64]);
    assert!(verify(&p, &quote, &CollateralOptions::default()).is_ok());
}

#[test]
fn a_report_for_another_target_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let enclave = EnclaveIdentity::default();
    let report = p
        .cpu()
        .create_report(&enclave, &enclave.target_info(), &[0; 64]);
    assert!(matches!(p.quote(&report), Err(SimError::InvalidReport)));
    // A report of another platform's CPU does not verify either.
    let other_dir = tempfile::tempdir().unwrap();
    let other = platform(other_dir.path());
    let foreign = other
        .cpu()
        .create_report(&enclave, &p.qe_target_info(), &[0; 64]);
    assert!(matches!(p.quote(&foreign), Err(SimError::InvalidReport)));
    // A body changed after MACing is rejected.
    let mut tampered = p
        .cpu()
        .create_report(&enclave, &p.qe_target_info(), &[0; 64]);
    tampered.body.isv_svn += 1;
    assert!(matches!(p.quote(&tampered), Err(SimError::InvalidReport)));
}

#[test]
fn the_qe_report_for_the_app_binds_nonce_and_quote() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let app = EnclaveIdentity::default();
    let quote = quote_for(&p, &app, [1; 64]);
    let nonce = [0x42; 16];
    let qe_report = p.qe_report_for_app(&quote, &nonce, &app.target_info());
    assert!(p.cpu().verify_report(&qe_report, &app.target_info()));
    assert!(!p.cpu().verify_report(&qe_report, &p.qe_target_info()));
    let mut input = nonce.to_vec();
    input.extend_from_slice(&quote);
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    assert_eq!(&qe_report.body.report_data[..32], digest.as_ref());
    assert_eq!(qe_report.body.report_data[32..], [0; 32]);
    assert_eq!(
        qe_report.body.mr_signer,
        sgx_types::structs::INTEL_QE3_MRSIGNER
    );
    assert_eq!(qe_report.body.mr_enclave, p.qe_target_info().mr_enclave);
}

#[test]
fn published_cpu_material_lets_apps_quote() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(&dir.path().join("state"));
    let published = dir.path().join("run/sim");
    p.publish_cpu(&published).unwrap();
    assert_eq!(mode(&published.join(sgx_sim::CPU_FILE)), 0o644);
    assert_eq!(mode(&published.join(sgx_sim::QE_TARGET_INFO_FILE)), 0o644);
    let names: Vec<_> = std::fs::read_dir(&published)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".key")),
        "no keys published: {names:?}"
    );
    let cpu = SimCpu::load(&published).unwrap();
    let target =
        TargetInfo::parse(&std::fs::read(published.join(sgx_sim::QE_TARGET_INFO_FILE)).unwrap())
            .unwrap();
    assert_eq!(target, p.qe_target_info());
    let report = cpu.create_report(&EnclaveIdentity::default(), &target, &[3; 64]);
    let quote = p.quote(&report).unwrap();
    assert_eq!(
        verify(&p, &quote, &CollateralOptions::default())
            .unwrap()
            .status,
        "UpToDate"
    );
    assert!(matches!(
        SimCpu::load(&dir.path().join("nowhere")),
        Err(SimError::CpuNotPublished(_))
    ));
}

#[test]
fn secrets_are_private_and_certificates_public() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    drop(p);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(!name.contains(".tmp."), "temp file left behind: {name}");
        let secret = name.ends_with(".key")
            || name == sgx_sim::CPU_FILE
            || name == sgx_sim::ATTESTATION_KEY_FILE
            || name == ".lock";
        let want = if secret { 0o600 } else { 0o644 };
        assert_eq!(mode(&path), want, "{name}");
    }
}

#[test]
fn corrupt_state_is_a_typed_error_and_a_bad_key_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let first_id = platform(dir.path()).init_attestation_key().unwrap();
    let platform_file = dir.path().join(sgx_sim::PLATFORM_FILE);
    let good = std::fs::read(&platform_file).unwrap();
    std::fs::write(&platform_file, &good[..good.len() / 2]).unwrap();
    assert!(matches!(
        SimPlatform::open(dir.path()),
        Err(SimError::Corrupt { .. })
    ));
    std::fs::write(&platform_file, &good).unwrap();

    let key_file = dir.path().join(sgx_sim::ATTESTATION_KEY_FILE);
    let good_key = std::fs::read_to_string(&key_file).unwrap();
    let v: serde_json::Value = serde_json::from_str(&good_key).unwrap();
    let report = v["qe_report"].as_str().unwrap();
    let flipped = format!(
        "{}{}",
        if report.starts_with('0') { "1" } else { "0" },
        &report[1..]
    );
    std::fs::write(&key_file, good_key.replace(report, &flipped)).unwrap();
    // A key file that does not verify counts as no key, as aesmd treats a bad blob; the next
    // initialisation moves it aside and makes a new key.
    let p = SimPlatform::open(dir.path()).unwrap();
    assert!(!p.attestation_key_initialized());
    assert!(matches!(
        p.quote_size(),
        Err(SimError::AttKeyNotInitialized)
    ));
    let new_id = p.init_attestation_key().unwrap();
    assert_ne!(new_id, first_id);
    assert!(dir.path().join("attestation-key.json.corrupt").exists());
    let quote = quote_for(&p, &EnclaveIdentity::default(), [0; 64]);
    assert!(verify(&p, &quote, &CollateralOptions::default()).is_ok());
    let reopened = SimPlatform::open(dir.path()).unwrap();
    assert_eq!(reopened.init_attestation_key().unwrap(), new_id);

    std::fs::remove_file(dir.path().join("pck.key")).unwrap();
    assert!(matches!(
        SimPlatform::open(dir.path()),
        Err(SimError::Io { .. })
    ));
}

#[test]
fn an_interrupted_init_is_redone() {
    let dir = tempfile::tempdir().unwrap();
    let first = SimPlatform::open_or_init(dir.path(), &InitOptions::default()).unwrap();
    let first_root = first.root_ca_der().to_vec();
    drop(first);
    // Without platform.json (written last) the directory counts as not initialised.
    std::fs::remove_file(dir.path().join(sgx_sim::PLATFORM_FILE)).unwrap();
    let p = SimPlatform::open_or_init(dir.path(), &InitOptions::default()).unwrap();
    assert_ne!(p.root_ca_der(), first_root.as_slice());
    p.init_attestation_key().unwrap();
    let quote = quote_for(&p, &EnclaveIdentity::default(), [0; 64]);
    assert!(verify(&p, &quote, &CollateralOptions::default()).is_ok());
}

#[test]
fn a_complete_ca_dir_is_only_read() {
    let dir = tempfile::tempdir().unwrap();
    let made = dir.path().join("made");
    let opts = |ca: &std::path::Path| InitOptions {
        ca_dir: Some(ca.to_owned()),
        ..InitOptions::default()
    };
    SimPlatform::open_or_init(&dir.path().join("node-a"), &opts(&made)).unwrap();
    // The CA files alone, as a Secret mounts them: nothing is written next to them.
    let mounted = dir.path().join("mounted");
    std::fs::create_dir(&mounted).unwrap();
    for entry in std::fs::read_dir(&made).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != ".lock" {
            std::fs::copy(entry.path(), mounted.join(entry.file_name())).unwrap();
        }
    }
    let before: Vec<_> = std::fs::read_dir(&mounted)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let b = SimPlatform::open_or_init(&dir.path().join("node-b"), &opts(&mounted)).unwrap();
    let after: Vec<_> = std::fs::read_dir(&mounted)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        before.len(),
        after.len(),
        "no lock or other file was created"
    );
    assert_eq!(
        b.root_ca_der(),
        std::fs::read(made.join(sgx_sim::ROOT_CERT_DER_FILE))
            .unwrap()
            .as_slice()
    );
}

#[test]
fn platforms_under_one_ca_dir_share_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let opts = InitOptions {
        ca_dir: Some(ca_dir.clone()),
        ..InitOptions::default()
    };
    let a = SimPlatform::open_or_init(&dir.path().join("node-a"), &opts).unwrap();
    let b = SimPlatform::open_or_init(&dir.path().join("node-b"), &opts).unwrap();
    let root = std::fs::read(ca_dir.join(sgx_sim::ROOT_CERT_DER_FILE)).unwrap();
    assert_eq!(a.root_ca_der(), root.as_slice());
    assert_eq!(b.root_ca_der(), root.as_slice());
    assert_eq!(mode(&ca_dir.join(sgx_sim::ROOT_KEY_FILE)), 0o600);
    assert_ne!(a.pck_extension().ppid, b.pck_extension().ppid);
    for p in [&a, &b] {
        p.init_attestation_key().unwrap();
        let quote = quote_for(p, &EnclaveIdentity::default(), [0; 64]);
        let c = p.collateral(&CollateralOptions::default()).unwrap();
        let report = dcap_qvl::verify::QuoteVerifier::new(root.clone())
            .verify(&quote, &qvl_collateral(&c), now())
            .unwrap();
        assert_eq!(report.status, "UpToDate");
    }
    // One PCK CA and one TCB signer for the cluster, as Intel has: any node's collateral verifies
    // every node's quotes.
    let quote_a = quote_for(&a, &EnclaveIdentity::default(), [1; 64]);
    let c_b = b.collateral(&CollateralOptions::default()).unwrap();
    assert!(
        dcap_qvl::verify::QuoteVerifier::new(root)
            .verify(&quote_a, &qvl_collateral(&c_b), now())
            .is_ok()
    );
}

#[test]
fn a_ca_dir_with_half_a_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    std::fs::create_dir(&ca_dir).unwrap();
    std::fs::write(ca_dir.join(sgx_sim::ROOT_CERT_FILE), b"not a certificate").unwrap();
    let opts = InitOptions {
        ca_dir: Some(ca_dir.clone()),
        ..InitOptions::default()
    };
    assert!(matches!(
        SimPlatform::open_or_init(&dir.path().join("node"), &opts),
        Err(SimError::Corrupt { .. })
    ));
    // A complete CA directory whose files do not fit together.
    let good = tempfile::tempdir().unwrap();
    SimPlatform::open_or_init(
        &good.path().join("node"),
        &InitOptions {
            ca_dir: Some(good.path().join("ca")),
            ..InitOptions::default()
        },
    )
    .unwrap();
    let other = tempfile::tempdir().unwrap();
    SimPlatform::open_or_init(
        &other.path().join("node"),
        &InitOptions {
            ca_dir: Some(other.path().join("ca")),
            ..InitOptions::default()
        },
    )
    .unwrap();
    std::fs::copy(
        other.path().join("ca/pck-ca.pem"),
        good.path().join("ca/pck-ca.pem"),
    )
    .unwrap();
    let opts = InitOptions {
        ca_dir: Some(good.path().join("ca")),
        ..InitOptions::default()
    };
    match SimPlatform::open_or_init(&good.path().join("node2"), &opts) {
        Err(SimError::Corrupt { reason, .. }) => assert!(reason.contains("key"), "{reason}"),
        other => panic!("{other:?}"),
    }
    std::fs::copy(
        other.path().join("ca/pck-ca.key"),
        good.path().join("ca/pck-ca.key"),
    )
    .unwrap();
    match SimPlatform::open_or_init(&good.path().join("node3"), &opts) {
        Err(SimError::Corrupt { reason, .. }) => assert!(reason.contains("issuer"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_init_tcb_status_is_the_collateral_default() {
    let dir = tempfile::tempdir().unwrap();
    let p = SimPlatform::open_or_init(
        dir.path(),
        &InitOptions {
            tcb_status: TcbStatus::SWHardeningNeeded,
            ..InitOptions::default()
        },
    )
    .unwrap();
    p.init_attestation_key().unwrap();
    let quote = quote_for(&p, &EnclaveIdentity::default(), [0; 64]);
    let report = verify(&p, &quote, &CollateralOptions::default()).unwrap();
    assert_eq!(report.status, "SWHardeningNeeded");
    let reopened = SimPlatform::open(dir.path()).unwrap();
    assert_eq!(reopened.default_tcb_status(), TcbStatus::SWHardeningNeeded);
}

#[test]
fn the_crl_base_url_is_the_ca_dirs_and_every_node_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let a = SimPlatform::open_or_init(
        &dir.path().join("node-a"),
        &InitOptions {
            ca_dir: Some(ca_dir.clone()),
            crl_base_url: Some("https://pccs.example:8443/".into()),
            ..InitOptions::default()
        },
    )
    .unwrap();
    let root_crl = "https://pccs.example:8443/sgx/certification/v4/rootcacrl?encoding=der";
    let pck_crl = "https://pccs.example:8443/sgx/certification/v4/pckcrl?ca=processor&encoding=der";
    assert_eq!(
        a.crl_distribution_points().root_ca_crl.as_deref(),
        Some(root_crl)
    );
    assert_eq!(
        a.crl_distribution_points().pck_crl.as_deref(),
        Some(pck_crl)
    );
    // A node under the same CA directory takes the CA's URLs, whatever its own option says.
    let b = SimPlatform::open_or_init(
        &dir.path().join("node-b"),
        &InitOptions {
            ca_dir: Some(ca_dir),
            ..InitOptions::default()
        },
    )
    .unwrap();
    assert_eq!(b.crl_distribution_points(), a.crl_distribution_points());

    for bad in [
        "ftp://x",
        "https://",
        "https://host/path?q=1",
        "sgx-pccs:8081",
    ] {
        let e = SimPlatform::open_or_init(
            &dir.path().join("node-c"),
            &InitOptions {
                crl_base_url: Some(bad.into()),
                ..InitOptions::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(e, sgx_sim::SimError::InvalidOption(_)),
            "{bad}: {e}"
        );
    }
}

#[test]
fn pck_certificates_cover_every_tcb_level_of_the_tcb_info() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    for status in [TcbStatus::UpToDate, TcbStatus::OutOfDate] {
        let opts = CollateralOptions {
            tcb_status: Some(status),
            ..CollateralOptions::default()
        };
        let certs = p.pck_certs(&opts).unwrap();
        let tcb_info: serde_json::Value =
            serde_json::from_str(&p.collateral(&opts).unwrap().tcb_info).unwrap();
        let levels = tcb_info["tcbLevels"].as_array().unwrap();
        assert_eq!(certs.len(), levels.len(), "{status}");
        let own = p.pck_extension().tcb;
        for (cert, level) in certs.iter().zip(levels) {
            let comps: Vec<u8> = level["tcb"]["sgxtcbcomponents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["svn"].as_u64().unwrap() as u8)
                .collect();
            assert_eq!(cert.components.to_vec(), comps);
            assert_eq!(
                u64::from(cert.pce_svn),
                level["tcb"]["pcesvn"].as_u64().unwrap()
            );
            // Each certificate says its TCB in its SGX extension, under the platform's PCK CA.
            let chain = format!(
                "{}{}",
                cert.cert_pem,
                std::str::from_utf8(p.pck_cert_chain())
                    .unwrap()
                    .trim_end_matches('\0')
                    .split_inclusive("-----END CERTIFICATE-----\n")
                    .skip(1)
                    .collect::<String>()
            );
            let parsed = sgx_types::pck::parse_pem_chain(chain.as_bytes()).unwrap();
            let ext = sgx_types::pck::PckExtension::from_certificate(&parsed[0]).unwrap();
            assert_eq!(ext.tcb.comp_svn, cert.components);
            assert_eq!(ext.tcb.cpu_svn, cert.cpu_svn);
            assert_eq!(ext.tcb.pce_svn, cert.pce_svn);
            assert_eq!(ext.fmspc, p.pck_extension().fmspc);
            assert_eq!(ext.ppid, p.pck_extension().ppid);
            assert_eq!(
                parsed[0].tbs_certificate().issuer(),
                parsed[1].tbs_certificate().subject()
            );
            if cert.components == own.comp_svn && cert.pce_svn == own.pce_svn {
                assert!(
                    std::str::from_utf8(p.pck_cert_chain())
                        .unwrap()
                        .starts_with(&cert.cert_pem),
                    "the platform's own level is its own certificate"
                );
            }
        }
        assert!(
            certs
                .iter()
                .any(|c| c.components == own.comp_svn && c.pce_svn == own.pce_svn)
        );
    }
}
