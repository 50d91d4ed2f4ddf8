//! The PCCS routes over a simulated platform and over an offline directory: exact status codes,
//! header names, encodings and bodies, as Intel's PCCS answers them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use pccs::api::{self, Reply};
use pccs::source::{PCK_CERT_CHAIN_FILE, PckCert, QVE_IDENTITY_FILE};
use pccs::{CollateralSource, DirSource, SimSource};
use sgx_sim::{CollateralOptions, InitOptions, SimPlatform, files};
use sgx_types::pck::parse_pem_chain;

struct Sim {
    _dir: tempfile::TempDir,
    platform: Arc<SimPlatform>,
    pck: PckCert,
}

fn sim() -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let platform =
        Arc::new(SimPlatform::open_or_init(dir.path(), &InitOptions::default()).unwrap());
    let pck = PckCert::from_chain_pem(platform.pck_cert_chain()).unwrap();
    Sim {
        _dir: dir,
        platform,
        pck,
    }
}

fn get(source: &dyn CollateralSource, path_and_query: &str) -> Reply {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    api::handle(source, path, query).unwrap_or_else(|| panic!("{path} is not a PCCS route"))
}

fn decoded_chain(reply: &Reply, header: &str) -> String {
    let value = reply
        .header(header)
        .unwrap_or_else(|| panic!("no {header}"));
    // Percent-encoded: no raw spaces or line breaks travel in the header.
    assert!(!value.contains(' ') && !value.contains('\n'), "{value}");
    percent_decode(value)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn assert_message(reply: &Reply, status: u16, message: &str) {
    assert_eq!(reply.status, status);
    assert_eq!(reply.content_type, "text/plain; charset=utf-8");
    assert_eq!(std::str::from_utf8(&reply.body).unwrap(), message);
}

fn pckcert_query(pck: &PckCert, pceid: &str) -> String {
    format!(
        "/sgx/certification/v4/pckcert?encrypted_ppid={}&cpusvn={}&pcesvn=0b00&pceid={pceid}&qeid=00112233445566778899aabbccddeeff",
        "ab".repeat(384),
        hex::encode(&pck.tcbm[..16]),
    )
}

#[test]
fn tcb_info_per_api_version_with_its_header() {
    let sim = sim();
    let source = SimSource::new(Arc::clone(&sim.platform));
    let fmspc = hex::encode(sim.pck.fmspc);
    for (version, tcb_info_version, header, other) in [
        (
            "v4",
            3,
            "TCB-Info-Issuer-Chain",
            "SGX-TCB-Info-Issuer-Chain",
        ),
        (
            "v3",
            2,
            "SGX-TCB-Info-Issuer-Chain",
            "TCB-Info-Issuer-Chain",
        ),
    ] {
        for fmspc in [fmspc.clone(), fmspc.to_ascii_uppercase()] {
            let reply = get(
                &source,
                &format!("/sgx/certification/{version}/tcb?fmspc={fmspc}"),
            );
            assert_eq!(reply.status, 200);
            assert_eq!(reply.content_type, "application/json");
            let doc: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(doc["tcbInfo"]["version"], tcb_info_version);
            assert!(doc["signature"].as_str().unwrap().len() == 128);
            assert!(reply.header(other).is_none());
            let chain = parse_pem_chain(decoded_chain(&reply, header).as_bytes()).unwrap();
            assert_eq!(chain.len(), 2, "TCB signing certificate and root");
            let request_id = reply.header("Request-ID").unwrap();
            assert_eq!(request_id.len(), 32);
            assert!(request_id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
    // Served from the cache: the same document twice (signatures are randomised).
    let a = get(&source, &format!("/sgx/certification/v4/tcb?fmspc={fmspc}"));
    let b = get(
        &source,
        &format!("/sgx/certification/v4/tcb?fmspc={fmspc}&update=early"),
    );
    assert_eq!(a.body, b.body);
    assert_ne!(a.header("Request-ID"), b.header("Request-ID"));

    assert_message(
        &get(&source, "/sgx/certification/v4/tcb?fmspc=00606A000000"),
        404,
        "No cache data for this platform.",
    );
    for bad in [
        "",
        "?fmspc=00606A00000",
        "?fmspc=00606A0000000",
        "?fmspc=00606A00000G",
        "?fmspc=00606A000000&update=later",
        "?fmspc=00606A000000&update=early&tcbEvaluationDataNumber=17",
        "?fmspc=00606A000000&tcbEvaluationDataNumber=x",
        "?fmspc=00606A000000&fmspc=00606A000000",
    ] {
        assert_message(
            &get(&source, &format!("/sgx/certification/v4/tcb{bad}")),
            400,
            "Invalid request parameters.",
        );
    }
}

#[test]
fn pck_crl_is_hex_unless_der_is_asked_for() {
    let sim = sim();
    let source = SimSource::new(Arc::clone(&sim.platform));
    let hex_reply = get(&source, "/sgx/certification/v4/pckcrl?ca=processor");
    assert_eq!(hex_reply.status, 200);
    assert_eq!(hex_reply.content_type, "application/x-pem-file");
    let der = hex::decode(&hex_reply.body).unwrap();
    assert_eq!(der[0], 0x30, "a DER SEQUENCE");
    let der_reply = get(
        &source,
        "/sgx/certification/v4/pckcrl?ca=PROCESSOR&encoding=der",
    );
    assert_eq!(der_reply.content_type, "application/pkix-crl");
    assert_eq!(der_reply.body, der);
    let pem_asked = get(
        &source,
        "/sgx/certification/v3/pckcrl?ca=processor&encoding=pem",
    );
    assert_eq!(
        pem_asked.body, hex_reply.body,
        "encoding=pem answers hex, as Intel's PCCS does"
    );
    let chain = decoded_chain(&der_reply, "SGX-PCK-CRL-Issuer-Chain");
    assert_eq!(chain, sim.pck.issuer_chain, "the PCK CA and the root");
    // The simulated platform's PCK CA is the processor CA.
    assert_message(
        &get(&source, "/sgx/certification/v4/pckcrl?ca=platform"),
        404,
        "No cache data for this platform.",
    );
    for bad in ["", "?ca=cpu", "?ca=processor&encoding=base64"] {
        assert_message(
            &get(&source, &format!("/sgx/certification/v4/pckcrl{bad}")),
            400,
            "Invalid request parameters.",
        );
    }
}

#[test]
fn identities_and_the_root_ca_crl() {
    let sim = sim();
    let source = SimSource::new(Arc::clone(&sim.platform));
    for version in ["v3", "v4"] {
        let reply = get(
            &source,
            &format!("/sgx/certification/{version}/qe/identity"),
        );
        assert_eq!(reply.status, 200);
        let doc: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(doc["enclaveIdentity"]["id"], "QE");
        let chain = decoded_chain(&reply, "SGX-Enclave-Identity-Issuer-Chain");
        assert_eq!(parse_pem_chain(chain.as_bytes()).unwrap().len(), 2);
        // No QvE on a simulated platform.
        assert_message(
            &get(
                &source,
                &format!("/sgx/certification/{version}/qve/identity"),
            ),
            404,
            "No cache data for this platform.",
        );
    }
    let crl = get(&source, "/sgx/certification/v4/rootcacrl");
    assert_eq!(crl.status, 200);
    assert_eq!(hex::decode(&crl.body).unwrap()[0], 0x30);
}

#[test]
fn pck_certificate_with_its_headers() {
    let sim = sim();
    let source = SimSource::new(Arc::clone(&sim.platform));
    let pceid = hex::encode(sim.pck.pce_id);
    let reply = get(&source, &pckcert_query(&sim.pck, &pceid));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, "application/x-pem-file");
    let leaf = String::from_utf8(reply.body.clone()).unwrap();
    assert!(leaf.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(parse_pem_chain(leaf.as_bytes()).unwrap().len(), 1);
    let chain = decoded_chain(&reply, "SGX-PCK-Certificate-Issuer-Chain");
    let whole = String::from_utf8_lossy(sim.platform.pck_cert_chain());
    assert_eq!(format!("{leaf}{chain}"), whole.trim_end_matches('\0'));
    let tcbm = reply.header("SGX-TCBm").unwrap();
    assert_eq!(tcbm.len(), 36);
    assert_eq!(tcbm, tcbm.to_ascii_uppercase());
    assert_eq!(tcbm, hex::encode_upper(sim.pck.tcbm));
    assert_eq!(
        reply.header("SGX-FMSPC").unwrap(),
        hex::encode_upper(sim.pck.fmspc)
    );
    assert_eq!(
        reply.header("SGX-PCK-Certificate-CA-Type"),
        Some("processor")
    );

    // Without the optional encrypted PPID too; another PCE is not this platform.
    let without_ppid = pckcert_query(&sim.pck, &pceid)
        .replace(&format!("encrypted_ppid={}&", "ab".repeat(384)), "");
    assert_eq!(get(&source, &without_ppid).status, 200);
    assert_message(
        &get(&source, &pckcert_query(&sim.pck, "ffff")),
        404,
        "No cache data for this platform.",
    );
    let good = pckcert_query(&sim.pck, &pceid);
    for bad in [
        good.replace("&qeid=00112233445566778899aabbccddeeff", ""),
        good.replace(
            "qeid=00112233445566778899aabbccddeeff",
            &format!("qeid={}", "a".repeat(261)),
        ),
        good.replace("pcesvn=0b00", "pcesvn=0b"),
        good.replace("cpusvn=", "cpusvn=zz"),
        good.replace(&"ab".repeat(384), &"ab".repeat(383)),
        format!("{good}&pceid={pceid}"),
    ] {
        assert_message(&get(&source, &bad), 400, "Invalid request parameters.");
    }
}

#[test]
fn other_paths_are_not_pccs_routes() {
    let sim = sim();
    let source = SimSource::new(Arc::clone(&sim.platform));
    for path in [
        "/sgx/certification/v2/tcb",
        "/sgx/certification/v4/",
        "/sgx/certification/v4/pckcerts/config",
        "/sgx/certification/v4/tcbx",
        "/tcb",
        "/metrics",
    ] {
        assert!(api::handle(&source, path, None).is_none(), "{path}");
    }
    assert_eq!(
        api::handle(&source, "/sgx/certification/v4/rootcacrl/", None)
            .unwrap()
            .status,
        200
    );
}

#[test]
fn an_offline_directory_is_served_byte_for_byte() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let collateral = sim
        .platform
        .collateral(&CollateralOptions::default())
        .unwrap();
    collateral.write_to(dir.path()).unwrap();
    let source = DirSource::new(dir.path());
    let file = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let text = |name: &str| String::from_utf8(file(name)).unwrap();
    let fmspc = hex::encode_upper(sim.pck.fmspc);

    let tcb = get(&source, &format!("/sgx/certification/v4/tcb?fmspc={fmspc}"));
    assert_eq!(tcb.body, file(files::TCB_INFO));
    assert_eq!(
        decoded_chain(&tcb, "TCB-Info-Issuer-Chain"),
        text(files::TCB_INFO_ISSUER_CHAIN)
    );
    // TCB info v3 is not what API v3 serves.
    assert_eq!(
        get(&source, &format!("/sgx/certification/v3/tcb?fmspc={fmspc}")).status,
        404
    );
    let qe = get(&source, "/sgx/certification/v4/qe/identity");
    assert_eq!(qe.body, file(files::QE_IDENTITY));
    assert_eq!(
        decoded_chain(&qe, "SGX-Enclave-Identity-Issuer-Chain"),
        text(files::QE_IDENTITY_ISSUER_CHAIN)
    );
    let crl = get(
        &source,
        "/sgx/certification/v4/pckcrl?ca=processor&encoding=der",
    );
    assert_eq!(crl.body, file(files::PCK_CRL));
    assert_eq!(
        decoded_chain(&crl, "SGX-PCK-CRL-Issuer-Chain"),
        text(files::PCK_CRL_ISSUER_CHAIN)
    );
    assert_eq!(
        get(&source, "/sgx/certification/v4/pckcrl?ca=platform").status,
        404
    );
    let root = get(&source, "/sgx/certification/v4/rootcacrl");
    assert_eq!(
        root.body,
        hex::encode(file(files::ROOT_CA_CRL)).into_bytes()
    );

    // Optional documents appear when their files do.
    let pceid = hex::encode(sim.pck.pce_id);
    assert_eq!(get(&source, &pckcert_query(&sim.pck, &pceid)).status, 404);
    assert_eq!(
        get(&source, "/sgx/certification/v4/qve/identity").status,
        404
    );
    std::fs::write(
        dir.path().join(PCK_CERT_CHAIN_FILE),
        sim.platform.pck_cert_chain(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(QVE_IDENTITY_FILE),
        b"{\"enclaveIdentity\":{},\"signature\":\"00\"}",
    )
    .unwrap();
    let pck = get(&source, &pckcert_query(&sim.pck, &pceid));
    assert_eq!(pck.status, 200);
    assert_eq!(pck.body, sim.pck.cert_pem.as_bytes());
    assert_eq!(
        get(&source, "/sgx/certification/v4/qve/identity").status,
        200
    );

    // A damaged file is a server error, never a panic; a missing one is "no data".
    std::fs::write(dir.path().join(files::TCB_INFO), b"{not json").unwrap();
    assert_message(
        &get(&source, &format!("/sgx/certification/v4/tcb?fmspc={fmspc}")),
        500,
        "Internal server error occurred.",
    );
    std::fs::write(dir.path().join(PCK_CERT_CHAIN_FILE), b"garbage").unwrap();
    assert_eq!(get(&source, &pckcert_query(&sim.pck, &pceid)).status, 500);
    std::fs::remove_file(dir.path().join(files::ROOT_CA_CRL)).unwrap();
    assert_eq!(get(&source, "/sgx/certification/v4/rootcacrl").status, 404);
}

#[test]
fn crl_by_uri_serves_the_crls_the_certificates_name_and_nothing_else() {
    let sim = sim();
    let source = SimSource::new(Arc::clone(&sim.platform));
    let locations = sim.platform.crl_distribution_points();
    let (root_uri, pck_uri) = (locations.root_ca_crl.unwrap(), locations.pck_crl.unwrap());
    // What the source serves as the root CA CRL and the PCK CRL (issued once an hour).
    let root_ca_crl = source.root_ca_crl().unwrap().unwrap();
    let pck_crl = source
        .pck_crl(pccs::CaType::Processor)
        .unwrap()
        .unwrap()
        .der;
    let encode = |uri: &str| form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>();
    for version in ["v3", "v4"] {
        for (uri, crl) in [(&root_uri, &root_ca_crl), (&pck_uri, &pck_crl)] {
            let reply = get(
                &source,
                &format!("/sgx/certification/{version}/crl?uri={}", encode(uri)),
            );
            assert_eq!(reply.status, 200, "{uri}");
            assert_eq!(reply.content_type, "application/pkix-crl");
            assert_eq!(
                &reply.body, crl,
                "raw DER, as Intel's PCCS answers crl?uri="
            );
            assert!(reply.header("Request-ID").is_some());
        }
    }
    // As Intel's QCNL asks (pccs_api_version 3.1): the location appended as it is, not encoded,
    // even when its own query holds a `&`.
    for (uri, crl) in [(&root_uri, &root_ca_crl), (&pck_uri, &pck_crl)] {
        let reply = get(&source, &format!("/sgx/certification/v4/crl?uri={uri}"));
        assert_eq!((reply.status, &reply.body), (200, crl), "{uri}");
    }
    // The distribution points are served themselves too: the root's answers DER.
    let root_path = root_uri.split_once("/sgx/").unwrap().1;
    let direct = get(&source, &format!("/sgx/{root_path}"));
    assert_eq!(direct.content_type, "application/pkix-crl");
    assert_eq!(direct.body, root_ca_crl);
    let pck_path = pck_uri.split_once("/sgx/").unwrap().1;
    assert_eq!(get(&source, &format!("/sgx/{pck_path}")).body, pck_crl);

    // Intel's CRLs are not the simulated platform's.
    let intel = encode("https://certificates.trustedservices.intel.com/IntelSGXRootCA.der");
    assert_message(
        &get(&source, &format!("/sgx/certification/v4/crl?uri={intel}")),
        404,
        "No cache data for this platform.",
    );
    // Anything else, a missing or too long uri: 400, as Intel's PCCS answers.
    let long = format!("{root_uri}{}", "x".repeat(2048));
    for bad in [
        "".to_owned(),
        "?uri=".to_owned(),
        format!(
            "?uri={}",
            encode("http://169.254.169.254/latest/meta-data/")
        ),
        format!("?uri={}", encode(&format!("{root_uri}&x=1"))),
        format!("?uri={}", encode(&long)),
        format!("?uri={}&uri={}", encode(&root_uri), encode(&root_uri)),
    ] {
        assert_message(
            &get(&source, &format!("/sgx/certification/v4/crl{bad}")),
            400,
            "Invalid request parameters.",
        );
    }
}

#[test]
fn an_offline_directory_answers_crl_by_uri_for_its_certificates() {
    // Intel's real collateral: its PCK CRL issuer chain names Intel's root CA CRL.
    let vectors = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors");
    let sample: serde_json::Value = serde_json::from_slice(
        &std::fs::read(vectors.join("dcap-qvl/sgx_quote_collateral.json")).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root_crl = hex::decode(sample["root_ca_crl"].as_str().unwrap()).unwrap();
    std::fs::write(dir.path().join(files::ROOT_CA_CRL), &root_crl).unwrap();
    std::fs::write(
        dir.path().join(files::PCK_CRL_ISSUER_CHAIN),
        sample["pck_crl_issuer_chain"].as_str().unwrap(),
    )
    .unwrap();
    let source = DirSource::new(dir.path());
    let reply = get(
        &source,
        "/sgx/certification/v4/crl?uri=https%3A%2F%2Fcertificates.trustedservices.intel.com%2FIntelSGXRootCA.der",
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, root_crl);
}

/// The PCK certificate selection as Intel's PCCS makes it from a `pckcerts` answer (TCB type 0:
/// the raw CPUSVN's bytes are the TCB components): the first level, in the TCB info's descending
/// order, whose components and PCESVN are all at most the platform's.
fn select<'a>(
    levels: &'a [serde_json::Value],
    cpu_svn: &[u8; 16],
    pce_svn: u16,
) -> &'a serde_json::Value {
    levels
        .iter()
        .find(|level| {
            let tcb = &level["tcb"];
            (1..=16).all(|i| {
                tcb[format!("sgxtcbcomp{i:02}svn")].as_u64().unwrap() <= u64::from(cpu_svn[i - 1])
            }) && tcb["pcesvn"].as_u64().unwrap() <= u64::from(pce_svn)
        })
        .expect("a certificate for the platform's TCB")
}

#[test]
fn pckcerts_holds_every_level_and_its_selection_is_the_pckcert_answer() {
    let sim = sim();
    for status in [sgx_sim::TcbStatus::UpToDate, sgx_sim::TcbStatus::OutOfDate] {
        let options = CollateralOptions {
            tcb_status: Some(status),
            ..CollateralOptions::default()
        };
        let source = SimSource::with_options(Arc::clone(&sim.platform), options);
        let ppid = "ab".repeat(384);
        let reply = get(
            &source,
            &format!("/sgx/certification/v4/pckcerts?encrypted_ppid={ppid}&pceid=0000"),
        );
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_type, "application/json");
        assert_eq!(
            reply.header("SGX-FMSPC"),
            Some(hex::encode_upper(sim.pck.fmspc).as_str())
        );
        assert_eq!(
            reply.header("SGX-PCK-Certificate-CA-Type"),
            Some("processor")
        );
        assert_eq!(
            decoded_chain(&reply, "SGX-PCK-Certificate-Issuer-Chain"),
            sim.pck.issuer_chain
        );
        let levels: Vec<serde_json::Value> = serde_json::from_slice(&reply.body).unwrap();
        // One per TCB level of the TCB info served next to it.
        let tcb = get(
            &source,
            &format!(
                "/sgx/certification/v4/tcb?fmspc={}",
                hex::encode(sim.pck.fmspc)
            ),
        );
        let tcb: serde_json::Value = serde_json::from_slice(&tcb.body).unwrap();
        let tcb_levels = tcb["tcbInfo"]["tcbLevels"].as_array().unwrap();
        assert_eq!(levels.len(), tcb_levels.len(), "{status}");
        for (level, tcb_level) in levels.iter().zip(tcb_levels) {
            let obj = level.as_object().unwrap();
            assert_eq!(obj.len(), 3, "tcb, tcbm, cert: {level}");
            assert_eq!(level["tcb"].as_object().unwrap().len(), 17);
            for (i, c) in tcb_level["tcb"]["sgxtcbcomponents"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
            {
                assert_eq!(level["tcb"][format!("sgxtcbcomp{:02}svn", i + 1)], c["svn"]);
            }
            assert_eq!(level["tcb"]["pcesvn"], tcb_level["tcb"]["pcesvn"]);
            let cert = level["cert"].as_str().unwrap();
            assert!(
                cert.starts_with("-----BEGIN%20CERTIFICATE-----%0A"),
                "{cert}"
            );
            let pem = percent_decode(cert);
            let with_chain = format!("{pem}{}", sim.pck.issuer_chain);
            let parsed = PckCert::from_chain_pem(with_chain.as_bytes()).unwrap();
            assert_eq!(
                hex::encode_upper(parsed.tcbm),
                level["tcbm"].as_str().unwrap()
            );
        }

        // What Intel's PCCS does with it: select for the platform's raw TCB, compare with pckcert.
        let ext = sim.platform.pck_extension();
        let chosen = select(&levels, &ext.tcb.cpu_svn, ext.tcb.pce_svn);
        let single = get(
            &source,
            &format!(
                "/sgx/certification/v4/pckcert?encrypted_ppid={ppid}&cpusvn={}&pcesvn={}&pceid=0000&qeid=00112233445566778899AABBCCDDEEFF",
                hex::encode(ext.tcb.cpu_svn),
                hex::encode(ext.tcb.pce_svn.to_le_bytes()),
            ),
        );
        assert_eq!(single.status, 200);
        assert_eq!(
            percent_decode(chosen["cert"].as_str().unwrap()).as_bytes(),
            single.body.as_slice()
        );
        assert_eq!(chosen["tcbm"].as_str(), single.header("SGX-TCBm"));
        // A platform one PCESVN below (where a lower level exists) selects that level's.
        let below = select(&levels, &ext.tcb.cpu_svn, ext.tcb.pce_svn - 1);
        assert_eq!(
            below["tcb"]["pcesvn"].as_u64(),
            Some(u64::from(ext.tcb.pce_svn - 1))
        );
        assert_ne!(below["cert"], chosen["cert"]);
    }

    let source = SimSource::new(Arc::clone(&sim.platform));
    let ppid = "ab".repeat(384);
    // Another PCE: nothing.
    assert_message(
        &get(
            &source,
            &format!("/sgx/certification/v4/pckcerts?encrypted_ppid={ppid}&pceid=0100"),
        ),
        404,
        "No cache data for this platform.",
    );
    for bad in [
        "".to_owned(),
        "?pceid=0000".to_owned(),
        format!("?encrypted_ppid={ppid}"),
        format!("?encrypted_ppid={}&pceid=0000", "ab".repeat(383)),
        format!("?encrypted_ppid={ppid}&pceid=00"),
    ] {
        assert_message(
            &get(&source, &format!("/sgx/certification/v4/pckcerts{bad}")),
            400,
            "Invalid request parameters.",
        );
    }
}
