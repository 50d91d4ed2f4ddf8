//! The quote, certificates, CRLs and collateral files have the shapes Intel's and dcap-qvl's verifiers
//! expect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use der::{Decode, Encode};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use sgx_sim::{CollateralOptions, EnclaveIdentity, files};
use sgx_types::pck::{PckExtension, parse_pem_chain};
use sgx_types::quote::{INTEL_QE_VENDOR_ID, Quote};
use sgx_types::structs::{INTEL_QE3_MRSIGNER, Wire};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};

fn cn(cert: &Certificate) -> String {
    cert.tbs_certificate().subject().to_string()
}

fn spki(cert: &Certificate) -> Vec<u8> {
    cert.tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec()
}

#[test]
fn the_quote_is_a_v3_dcap_quote_that_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let enclave = EnclaveIdentity {
        isv_prod_id: 7,
        isv_svn: 3,
        ..EnclaveIdentity::default()
    };
    let bytes = quote_for(&p, &enclave, [0xcd; 64]);
    let q = Quote::parse(&bytes).unwrap();
    assert_eq!(q.to_bytes(), bytes, "encode(parse(quote)) == quote");
    assert!(q.trailing_bytes.is_empty());
    assert_eq!(q.quote_len(), bytes.len());
    assert_eq!(
        bytes.len(),
        1052 + q.signature.certification_data.data.len()
    );

    let h = q.header;
    assert_eq!((h.version, h.att_key_type, h.tee_type), (3, 2, 0));
    assert_eq!(h.qe_vendor_id, INTEL_QE_VENDOR_ID);
    assert_eq!(h.qe_svn, p.qe_identity().isv_svn);
    assert_eq!(h.pce_svn, p.pck_extension().tcb.pce_svn);
    assert_ne!(h.user_data[..16], [0; 16], "QE id");
    assert_eq!(h.user_data[16..], [0; 4]);

    assert_eq!(q.report_body.isv_prod_id, 7);
    assert_eq!(q.report_body.isv_svn, 3);
    assert_eq!(q.report_body.cpu_svn, p.pck_extension().tcb.cpu_svn);

    // ISV signature: the attestation key over header ‖ body, raw r‖s.
    let mut ak = vec![0x04];
    ak.extend_from_slice(&q.signature.attestation_key);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &ak)
        .verify(&q.signed_bytes(), &q.signature.isv_signature)
        .unwrap();
    assert_eq!(q.signed_bytes(), bytes[..432]);

    // QE report: Intel's QE3 identity, non-debug, signed by the PCK key.
    let qe = q.signature.qe_report;
    assert_eq!(qe.mr_signer, INTEL_QE3_MRSIGNER);
    assert_eq!(qe.isv_prod_id, 1);
    assert!(!qe.attributes.is_debug());
    assert_eq!(
        qe.attributes.to_bytes()[0] & 0xfb,
        0x11,
        "QE identity attribute mask"
    );
    assert_eq!(q.signature.qe_auth_data, sgx_sim::QE_AUTH_DATA);
    let auth: Vec<u8> = (0u8..32).collect();
    assert_eq!(q.signature.qe_auth_data, auth.as_slice());

    let cd = q.signature.certification_data;
    assert_eq!(cd.cert_type, 5);
    assert_eq!(cd.data.last(), Some(&0));
    assert_eq!(cd.data, p.pck_cert_chain());
    let chain = parse_pem_chain(cd.data).unwrap();
    assert_eq!(chain.len(), 3);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, spki(&chain[0]))
        .verify(&qe.to_vec(), &q.signature.qe_report_signature)
        .unwrap();
    assert_eq!(chain[2].to_der().unwrap(), p.root_ca_der());

    let ext = PckExtension::from_certificate(&chain[0]).unwrap();
    assert_eq!(&ext, p.pck_extension());
    assert_eq!(ext.tcb.cpu_svn, ext.tcb.comp_svn);
    assert_eq!(ext.sgx_type, 0);
    assert_eq!(ext.pce_id, [0, 0]);
    assert!(ext.platform_instance_id.is_none());
}

#[test]
fn quotes_differ_only_in_body_and_signature() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let a = quote_for(&p, &EnclaveIdentity::default(), [1; 64]);
    let b = quote_for(&p, &EnclaveIdentity::default(), [2; 64]);
    assert_eq!(a.len(), b.len());
    assert_eq!(a[..48], b[..48]);
    assert_ne!(a[48..432], b[48..432]);
    assert_ne!(a[436..500], b[436..500]);
    assert_eq!(a[500..], b[500..]);
}

#[test]
fn certificates_are_shaped_like_intels() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let chain = parse_pem_chain(p.pck_cert_chain()).unwrap();
    let c = p.collateral(&CollateralOptions::default()).unwrap();
    let tcb_chain = parse_pem_chain(c.tcb_info_issuer_chain.as_bytes()).unwrap();
    let (pck, pck_ca, root, tcb) = (&chain[0], &chain[1], &chain[2], &tcb_chain[0]);
    assert_eq!(tcb_chain[1].to_der().unwrap(), root.to_der().unwrap());

    for (cert, needle) in [
        (root, "SGX Root CA"),
        (pck_ca, "SGX PCK Processor CA"),
        (pck, "SGX PCK Certificate"),
        (tcb, "SGX TCB Signing"),
    ] {
        let name = cn(cert);
        assert!(
            name.contains(needle) && name.contains("Simulated"),
            "{name}"
        );
        assert!(!name.contains("Intel"), "{name}");
        assert!(
            cert.tbs_certificate()
                .get_extension::<ExtendedKeyUsage>()
                .unwrap()
                .is_none(),
            "{name}: no EKU"
        );
    }
    assert_eq!(
        root.tbs_certificate().issuer(),
        root.tbs_certificate().subject()
    );
    assert_eq!(
        pck_ca.tbs_certificate().issuer(),
        root.tbs_certificate().subject()
    );
    assert_eq!(
        tcb.tbs_certificate().issuer(),
        root.tbs_certificate().subject()
    );
    assert_eq!(
        pck.tbs_certificate().issuer(),
        pck_ca.tbs_certificate().subject()
    );

    let bc = |c: &Certificate| {
        c.tbs_certificate()
            .get_extension::<BasicConstraints>()
            .unwrap()
            .unwrap()
            .1
    };
    assert!(bc(root).ca && bc(root).path_len_constraint == Some(1));
    assert!(bc(pck_ca).ca && bc(pck_ca).path_len_constraint == Some(0));
    assert!(!bc(pck).ca && !bc(tcb).ca);

    let ku = |c: &Certificate| {
        c.tbs_certificate()
            .get_extension::<KeyUsage>()
            .unwrap()
            .unwrap()
            .1
            .0
    };
    let ca_ku = KeyUsages::KeyCertSign | KeyUsages::CRLSign;
    let leaf_ku = KeyUsages::DigitalSignature | KeyUsages::NonRepudiation;
    assert_eq!(ku(root), ca_ku);
    assert_eq!(ku(pck_ca), ca_ku);
    assert_eq!(ku(pck), leaf_ku);
    assert_eq!(ku(tcb), leaf_ku);

    let sgx_ext = pck
        .tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .find(|e| e.extn_id == sgx_types::pck::SGX_EXTENSION_OID)
        .unwrap();
    assert!(!sgx_ext.critical);
}

#[test]
fn crls_carry_number_and_authority_key_id_and_a_future_next_update() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let chain = parse_pem_chain(p.pck_cert_chain()).unwrap();
    let (pck, pck_ca, root) = (&chain[0], &chain[1], &chain[2]);
    for revoke_pck in [false, true] {
        let c = p
            .collateral(&CollateralOptions {
                revoke_pck,
                ..CollateralOptions::default()
            })
            .unwrap();
        for (der, issuer) in [(&c.pck_crl, pck_ca), (&c.root_ca_crl, root)] {
            let crl: CertificateList = CertificateList::from_der(der).unwrap();
            let tbs = &crl.tbs_cert_list;
            assert_eq!(&tbs.issuer, issuer.tbs_certificate().subject());
            let ids: Vec<String> = tbs
                .crl_extensions
                .as_ref()
                .unwrap()
                .iter()
                .map(|e| e.extn_id.to_string())
                .collect();
            assert!(ids.contains(&"2.5.29.20".to_string()), "CRLNumber: {ids:?}");
            assert!(ids.contains(&"2.5.29.35".to_string()), "AKI: {ids:?}");
            let next = tbs.next_update.unwrap().to_system_time();
            assert!(next > std::time::SystemTime::now());
            let signed = tbs.to_der().unwrap();
            UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, spki(issuer))
                .verify(&signed, crl.signature.raw_bytes())
                .unwrap();
        }
        let crl: CertificateList = CertificateList::from_der(&c.pck_crl).unwrap();
        let revoked: Vec<_> = crl
            .tbs_cert_list
            .revoked_certificates
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.serial_number)
            .collect();
        let serial = pck.tbs_certificate().serial_number().clone();
        assert_eq!(revoked.contains(&serial), revoke_pck);
        // The issuer chain of the PCK CRL: PCK CA then root.
        let crl_chain = parse_pem_chain(c.pck_crl_issuer_chain.as_bytes()).unwrap();
        assert_eq!(crl_chain[0].to_der().unwrap(), pck_ca.to_der().unwrap());
        assert_eq!(crl_chain[1].to_der().unwrap(), root.to_der().unwrap());
    }
}

#[test]
fn collateral_files_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(&dir.path().join("state"));
    let opts = CollateralOptions {
        advisory_ids: vec!["INTEL-SA-00334".into()],
        tcb_status: Some(sgx_sim::TcbStatus::SWHardeningNeeded),
        ..CollateralOptions::default()
    };
    let c = p.collateral(&opts).unwrap();
    let out = dir.path().join("out");
    c.write_to(&out).unwrap();
    for name in files::ALL {
        let on_disk = std::fs::read(out.join(name)).unwrap();
        assert_eq!(on_disk, c.file(name).unwrap(), "{name}");
    }
    assert!(c.file("../platform.json").is_none());
    assert_eq!(
        std::fs::read(out.join(files::ROOT_CA_DER)).unwrap(),
        p.root_ca_der()
    );

    let tcb_key = spki(&parse_pem_chain(c.tcb_info_issuer_chain.as_bytes()).unwrap()[0]);
    let verify = |body: &str, sig: &[u8]| {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &tcb_key)
            .verify(body.as_bytes(), sig)
            .is_ok()
    };
    assert!(verify(&c.tcb_info, &c.tcb_info_signature));
    assert!(verify(&c.qe_identity, &c.qe_identity_signature));

    // PCS form: {"tcbInfo":<exact signed bytes>,"signature":"<hex r‖s>"}.
    let pcs = String::from_utf8(c.file(files::TCB_INFO).unwrap().to_vec()).unwrap();
    assert_eq!(
        pcs,
        format!(
            "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
            c.tcb_info,
            hex::encode(&c.tcb_info_signature)
        )
    );
    let v: serde_json::Value = serde_json::from_str(&pcs).unwrap();
    assert_eq!(v["tcbInfo"]["version"], 3);
    assert_eq!(v["tcbInfo"]["id"], "SGX");
    assert_eq!(
        v["tcbInfo"]["fmspc"],
        hex::encode_upper(p.pck_extension().fmspc)
    );
    assert_eq!(
        v["tcbInfo"]["tcbLevels"][0]["tcbStatus"],
        "SWHardeningNeeded"
    );
    assert_eq!(
        v["tcbInfo"]["tcbLevels"][0]["advisoryIDs"][0],
        "INTEL-SA-00334"
    );
    let qe: serde_json::Value =
        serde_json::from_slice(c.file(files::QE_IDENTITY).unwrap()).unwrap();
    assert_eq!(qe["enclaveIdentity"]["id"], "QE");
    assert_eq!(qe["enclaveIdentity"]["version"], 2);
    assert_eq!(qe["signature"], hex::encode(&c.qe_identity_signature));

    // collateral.json has exactly the fields of dcap-qvl's own sample.
    let ours: serde_json::Value =
        serde_json::from_slice(c.file(files::COLLATERAL_JSON).unwrap()).unwrap();
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/dcap-qvl/sgx_quote_collateral.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&ours), keys(&sample));
    assert_eq!(ours["tcb_info"], c.tcb_info);
    assert_eq!(ours["pck_crl"], hex::encode(&c.pck_crl));
}

#[test]
fn tcb_info_v2_uses_flat_component_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let c = p
        .collateral(&CollateralOptions {
            tcb_info_version: 2,
            tcb_status: Some(sgx_sim::TcbStatus::OutOfDate),
            ..CollateralOptions::default()
        })
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&c.tcb_info).unwrap();
    assert_eq!(v["version"], 2);
    assert!(v.get("id").is_none());
    let levels = v["tcbLevels"].as_array().unwrap();
    let comps = p.pck_extension().tcb.comp_svn;
    let platform_level = levels
        .iter()
        .find(|l| l["tcbStatus"] == "OutOfDate")
        .unwrap();
    for (i, svn) in comps.iter().enumerate() {
        assert_eq!(
            platform_level["tcb"][format!("sgxtcbcomp{:02}svn", i + 1)],
            *svn
        );
    }
    assert_eq!(levels[0]["tcbStatus"], "UpToDate");
    assert!(matches!(
        p.collateral(&CollateralOptions {
            tcb_info_version: 4,
            ..CollateralOptions::default()
        }),
        Err(sgx_sim::SimError::InvalidOption(_))
    ));
}

#[test]
fn dates_are_utc_seconds_as_pcs_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let issue = time::macros::datetime!(2026-03-04 05:06:07.891 +02:00);
    let c = p
        .collateral(&CollateralOptions {
            issue_time: Some(issue),
            validity: time::Duration::days(30),
            ..CollateralOptions::default()
        })
        .unwrap();
    for body in [&c.tcb_info, &c.qe_identity] {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["issueDate"], "2026-03-04T03:06:07Z");
        assert_eq!(v["nextUpdate"], "2026-04-03T03:06:07Z");
    }
    let crl: CertificateList = CertificateList::from_der(&c.pck_crl).unwrap();
    assert_eq!(
        crl.tbs_cert_list.this_update.to_unix_duration().as_secs(),
        issue.unix_timestamp() as u64
    );
}

/// The CRL distribution points of a PEM chain's certificates.
fn cdps(pem: &[u8]) -> Vec<Vec<String>> {
    parse_pem_chain(pem)
        .unwrap()
        .iter()
        .map(|c| sgx_sim::crl_distribution_points(&c.to_der().unwrap()))
        .collect()
}

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors");

#[test]
fn crl_distribution_points_sit_where_intels_do() {
    // Intel's: the root, the PCK CA and the TCB signer name the root CA CRL; the PCK certificate
    // names its CA's CRL on the PCS (`pckcrl?ca=processor&encoding=der`).
    let intel_root_crl = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
    let intel_root = std::fs::read(format!("{VECTORS}/intel-sgx-root-ca.der")).unwrap();
    assert_eq!(
        sgx_sim::crl_distribution_points(&intel_root),
        [intel_root_crl]
    );
    let intel_chain = std::fs::read(format!("{VECTORS}/dcap-qvl/sgx_quote.pckchain.pem")).unwrap();
    assert_eq!(
        cdps(&intel_chain),
        [
            vec![
                "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=processor&encoding=der"
                    .to_owned()
            ],
            vec![intel_root_crl.to_owned()],
            vec![intel_root_crl.to_owned()],
        ]
    );
    let intel_collateral: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!("{VECTORS}/dcap-qvl/sgx_quote_collateral.json")).unwrap(),
    )
    .unwrap();
    let intel_tcb_chain = intel_collateral["tcb_info_issuer_chain"].as_str().unwrap();
    assert_eq!(
        cdps(intel_tcb_chain.as_bytes())[0],
        [intel_root_crl],
        "TCB signer"
    );

    // Ours: the same shape, under the in-cluster PCCS.
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    let root_crl =
        "http://sgx-pccs.kube-system.svc:8081/sgx/certification/v4/rootcacrl?encoding=der";
    let pck_crl = "http://sgx-pccs.kube-system.svc:8081/sgx/certification/v4/pckcrl?ca=processor&encoding=der";
    assert_eq!(
        cdps(p.pck_cert_chain()),
        [
            vec![pck_crl.to_owned()],
            vec![root_crl.to_owned()],
            vec![root_crl.to_owned()]
        ]
    );
    let c = p.collateral(&CollateralOptions::default()).unwrap();
    assert_eq!(
        cdps(c.tcb_info_issuer_chain.as_bytes())[0],
        [root_crl],
        "TCB signer"
    );
    let locations = p.crl_distribution_points();
    assert_eq!(locations.root_ca_crl.as_deref(), Some(root_crl));
    assert_eq!(locations.pck_crl.as_deref(), Some(pck_crl));
    assert_eq!(
        sgx_sim::root_ca_crl_url(sgx_sim::DEFAULT_CRL_BASE_URL),
        root_crl
    );
}
