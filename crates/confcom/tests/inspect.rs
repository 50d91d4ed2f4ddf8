//! `confcom inspect` end to end, cross-checked against the `dcap-qvl` crate's decoder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use serde_json::Value;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
}

fn confcom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(args)
        .output()
        .unwrap()
}

fn inspect_json(path: &Path) -> Value {
    let out = confcom(&["inspect", "--json", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn h(bytes: &[u8]) -> Value {
    Value::String(hex::encode(bytes))
}

#[test]
fn json_agrees_with_dcap_qvl_field_by_field() {
    let path = vectors().join("dcap-qvl/sgx_quote");
    let bytes = std::fs::read(&path).unwrap();
    let ours = inspect_json(&path);
    let theirs = dcap_qvl::quote::Quote::parse(&bytes).unwrap();

    let hd = &theirs.header;
    assert_eq!(ours["version"], hd.version);
    assert_eq!(ours["att_key_type"], hd.attestation_key_type);
    assert_eq!(ours["tee_type"], hd.tee_type);
    assert_eq!(ours["qe_svn"], hd.qe_svn);
    assert_eq!(ours["pce_svn"], hd.pce_svn);
    assert_eq!(ours["qe_vendor_id"], h(&hd.qe_vendor_id));
    assert_eq!(ours["user_data"], h(&hd.user_data));

    let body = theirs.report.as_sgx().unwrap();
    let rb = &ours["report_body"];
    assert_eq!(rb["cpu_svn"], h(&body.cpu_svn));
    assert_eq!(rb["misc_select"], body.misc_select);
    assert_eq!(rb["attributes"], h(&body.attributes));
    assert_eq!(rb["mr_enclave"], h(&body.mr_enclave));
    assert_eq!(rb["mr_signer"], h(&body.mr_signer));
    assert_eq!(rb["isv_prod_id"], body.isv_prod_id);
    assert_eq!(rb["isv_svn"], body.isv_svn);
    assert_eq!(rb["report_data"], h(&body.report_data));
    assert_eq!(rb["debug"], body.attributes[0] & 2 != 0);
    // dcap-qvl keeps isv_ext_prod_id, config_id, config_svn and isv_family_id inside its reserved fields.
    assert_eq!(rb["isv_ext_prod_id"], h(&body.reserved1[12..28]));
    assert_eq!(rb["config_id"], h(&body.reserved3[32..96]));
    assert_eq!(
        rb["config_svn"],
        u16::from_le_bytes([body.reserved4[0], body.reserved4[1]])
    );
    assert_eq!(rb["isv_family_id"], h(&body.reserved4[44..60]));

    let dcap_qvl::quote::AuthData::V3(auth) = &theirs.auth_data else {
        panic!("v3 expected")
    };
    let sig = &ours["signature"];
    assert_eq!(sig["isv_signature"], h(&auth.ecdsa_signature));
    assert_eq!(sig["attestation_key"], h(&auth.ecdsa_attestation_key));
    assert_eq!(sig["qe_report_signature"], h(&auth.qe_report_signature));
    assert_eq!(sig["qe_auth_data"], h(&auth.qe_auth_data.data));
    assert_eq!(sig["cert_data_type"], auth.certification_data.cert_type);
    let qe = theirs.qe_report();
    assert_eq!(sig["qe_report"]["mr_signer"], h(&qe[128..160]));
    assert_eq!(sig["qe_report"]["mr_enclave"], h(&qe[64..96]));
    assert_eq!(sig["qe_report"]["report_data"], h(&qe[320..384]));
    assert_eq!(
        sig["qe_report"]["isv_svn"],
        u16::from_le_bytes([qe[258], qe[259]])
    );
    assert_eq!(ours["signed_len"], theirs.signed_length());

    let chain = dcap_qvl::intel::extract_cert_chain(&theirs).unwrap();
    let ext = dcap_qvl::intel::parse_pck_extension(&chain[0]).unwrap();
    let pck = &ours["pck"];
    assert_eq!(pck["fmspc"], h(&ext.fmspc));
    assert_eq!(pck["pce_id"], h(&ext.pce_id));
    assert_eq!(pck["ppid"], h(&ext.ppid));
    assert_eq!(pck["cpu_svn"], h(&ext.cpu_svn));
    assert_eq!(pck["pce_svn"], ext.pce_svn);
    assert_eq!(pck["sgx_type"], ext.sgx_type);
    let comps: Vec<u8> = serde_json::from_value(pck["tcb_components"].clone()).unwrap();
    assert_eq!(comps, ext.cpu_svn.to_vec());
    assert_eq!(ours["pck_chain"].as_array().unwrap().len(), chain.len());
    assert_eq!(
        ours["pck_chain"][0]["not_before"],
        Value::String("2023-09-20T21:53:43Z".into())
    );
    assert_eq!(ours["trailing_bytes"], 0);
}

#[test]
fn hex_and_base64_files_read_the_same_as_binary() {
    let path = vectors().join("automata-dcap-rs/quote_sgx.bin");
    let bytes = std::fs::read(&path).unwrap();
    let binary = inspect_json(&path);
    assert_eq!(binary["report_body"]["debug"], true);
    let dir = tempfile::tempdir().unwrap();
    let hex_path = dir.path().join("q.hex");
    std::fs::write(&hex_path, format!("{}\n", hex::encode(&bytes))).unwrap();
    let b64_path = dir.path().join("q.b64");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    // Wrapped at 76 columns, as `base64` prints it.
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    std::fs::write(&b64_path, wrapped.join("\n")).unwrap();
    assert_eq!(inspect_json(&hex_path), binary);
    assert_eq!(inspect_json(&b64_path), binary);
}

#[test]
fn padded_quote_reports_trailing_bytes() {
    let mut bytes = std::fs::read(vectors().join("dcap-qvl/sgx_quote")).unwrap();
    bytes.resize(8192, 0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("padded.bin");
    std::fs::write(&path, &bytes).unwrap();
    let json = inspect_json(&path);
    assert_eq!(json["trailing_bytes"], 8192 - 4600);
    assert_eq!(json["quote_len"], 4600);
}

#[test]
fn bad_input_exits_2_with_one_line_naming_field_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(vectors().join("dcap-qvl/sgx_quote")).unwrap();
    let mut oversized = good.clone();
    oversized[1048..1052].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty"),
        ("truncated", good[..1000].to_vec(), "offset"),
        ("oversized", oversized, "certification_data"),
        (
            "garbage",
            b"hello, world! this is not a quote".to_vec(),
            "neither hex nor base64",
        ),
        (
            "binary-garbage",
            vec![0xde, 0xad, 0xbe, 0xef, 0, 1, 2],
            "unsupported quote version",
        ),
        (
            "version2",
            std::fs::read(vectors().join("dcap-qvl/tampered/quote_header_version2.bin")).unwrap(),
            "unsupported quote version 2",
        ),
    ];
    for (name, content, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        for json in [false, true] {
            let mut args = vec!["inspect", path.to_str().unwrap()];
            if json {
                args.push("--json");
            }
            let out = confcom(&args);
            assert_eq!(out.status.code(), Some(2), "{name}");
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
            assert!(stderr.contains(needle), "{name}: {stderr}");
            assert!(out.stdout.is_empty(), "{name}");
        }
    }
    let out = confcom(&["inspect", dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}
