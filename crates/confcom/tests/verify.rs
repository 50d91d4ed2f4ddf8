//! `confcom verify` end to end with the built binary: verdicts on the real vectors (checked against
//! dcap-qvl), exit codes, every policy flag, the PCS directory layout and batches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use serde_json::Value;

const SAMPLE_NOW: &str = "1751624924";

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
}

fn sample() -> String {
    vectors().join("dcap-qvl/sgx_quote").display().to_string()
}

fn sample_collateral() -> String {
    vectors()
        .join("dcap-qvl/sgx_quote_collateral.json")
        .display()
        .to_string()
}

fn confcom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(args)
        .output()
        .unwrap()
}

fn verify(extra: &[&str]) -> Output {
    let (quote, collateral) = (sample(), sample_collateral());
    let mut args = vec![
        "verify",
        &quote,
        "--collateral",
        &collateral,
        "--now",
        SAMPLE_NOW,
    ];
    args.extend_from_slice(extra);
    confcom(&args)
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

#[test]
fn sample_is_accepted_with_the_status_dcap_qvl_reports() {
    let out = verify(&[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("ACCEPTED: ConfigurationAndSWHardeningNeeded"),
        "{text}"
    );
    assert!(
        text.contains("SGX_QL_QV_RESULT_CONFIG_AND_SW_HARDENING_NEEDED, 0xa008"),
        "{text}"
    );
    assert!(text.contains("INTEL-SA-00289, INTEL-SA-00615"), "{text}");
    assert!(text.contains("Intel SGX Root CA"), "{text}");
    assert!(!text.contains("SIMULATED"), "{text}");

    let v = json(&verify(&["--json"]));
    let bytes = std::fs::read(sample()).unwrap();
    let collateral: dcap_qvl::QuoteCollateralV3 =
        serde_json::from_slice(&std::fs::read(sample_collateral()).unwrap()).unwrap();
    let theirs = dcap_qvl::verify::QuoteVerifier::new(
        std::fs::read(vectors().join("intel-sgx-root-ca.der")).unwrap(),
    )
    .verify(&bytes, &collateral, SAMPLE_NOW.parse().unwrap())
    .unwrap();
    assert_eq!(v["status"], theirs.status);
    assert_eq!(v["advisory_ids"], serde_json::json!(theirs.advisory_ids));
    assert_eq!(v["qv_result"], 0xA008);
    assert_eq!(v["result"], "accepted");
    assert_eq!(v["accepted"], true);
    assert_eq!(v["intel_root"], true);
    assert_eq!(v["fmspc"], "00a067110000");
    assert_eq!(v["tcb_evaluation_data_number"], 17);
    assert_eq!(v["collateral_expires"], "2025-07-19T10:01:18Z");
    // The enclave identity uses `inspect`'s names and values.
    let inspected = confcom(&["inspect", "--json", &sample()]);
    let inspected: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(v["report_body"], inspected["report_body"]);
}

#[test]
fn hex_and_base64_quotes_and_rfc3339_time_work() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(sample()).unwrap();
    let hex_file = dir.path().join("quote.hex");
    std::fs::write(&hex_file, hex::encode(&bytes)).unwrap();
    let b64_file = dir.path().join("quote.b64");
    std::fs::write(
        &b64_file,
        base64::engine::general_purpose::STANDARD.encode(&bytes),
    )
    .unwrap();
    for file in [&hex_file, &b64_file] {
        let out = confcom(&[
            "verify",
            file.to_str().unwrap(),
            "--collateral",
            &sample_collateral(),
            "--now",
            "2025-07-04T10:28:44Z",
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
}

#[test]
fn tampered_vectors_fail_naming_the_check_and_version_2_is_unreadable() {
    let tampered = vectors().join("dcap-qvl/tampered");
    for (file, exit, message) in [
        ("quote_attkey_flip.bin", 1, "QE report data mismatch"),
        (
            "quote_header_version2.bin",
            2,
            "unsupported quote version 2",
        ),
        (
            "quote_isvsig_flip.bin",
            1,
            "ISV enclave report signature invalid",
        ),
        (
            "quote_mrenclave_flip.bin",
            1,
            "ISV enclave report signature invalid",
        ),
        ("quote_qeauth_flip.bin", 1, "QE report data mismatch"),
        ("quote_qereport_flip.bin", 1, "QE report signature invalid"),
        (
            "quote_reportdata_flip.bin",
            1,
            "ISV enclave report signature invalid",
        ),
    ] {
        let path = tampered.join(file).display().to_string();
        let out = confcom(&[
            "verify",
            &path,
            "--collateral",
            &sample_collateral(),
            "--now",
            SAMPLE_NOW,
        ]);
        assert_eq!(code(&out), exit, "{file}: {}{}", stdout(&out), stderr(&out));
        let all = stdout(&out) + &stderr(&out);
        assert!(all.contains(message), "{file}: {all}");
    }
    for (file, message) in [
        ("coll_pckcrl_sigflip.json", "PCK CRL signature invalid"),
        (
            "coll_qeidentity_modified.json",
            "QE identity signature invalid",
        ),
        ("coll_tcbinfo_modified.json", "TCB info signature invalid"),
        ("coll_tcbinfo_sigflip.json", "TCB info signature invalid"),
    ] {
        let path = tampered.join(file).display().to_string();
        let out = confcom(&[
            "verify",
            &sample(),
            "--collateral",
            &path,
            "--now",
            SAMPLE_NOW,
        ]);
        assert_eq!(code(&out), 1, "{file}: {}{}", stdout(&out), stderr(&out));
        assert!(stdout(&out).contains(message), "{file}: {}", stdout(&out));
        assert!(stdout(&out).contains("SGX_QL_QV_RESULT_INVALID_SIGNATURE"));
    }
}

#[test]
fn unreadable_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let not_json = dir.path().join("c.json");
    std::fs::write(&not_json, "not json").unwrap();
    let not_quote = dir.path().join("q.bin");
    std::fs::write(&not_quote, [3u8, 0, 2, 0, 0xff]).unwrap();
    let missing = dir.path().join("missing").display().to_string();
    for args in [
        vec!["verify", &missing, "--collateral", &sample_collateral()],
        vec!["verify", &sample(), "--collateral", &missing],
        vec![
            "verify",
            &sample(),
            "--collateral",
            not_json.to_str().unwrap(),
        ],
        vec![
            "verify",
            not_quote.to_str().unwrap(),
            "--collateral",
            &sample_collateral(),
        ],
        vec![
            "verify",
            &sample(),
            "--collateral",
            &sample_collateral(),
            "--root",
            &missing,
        ],
        vec![
            "verify",
            &sample(),
            "--collateral",
            dir.path().to_str().unwrap(),
        ],
    ] {
        let out = confcom(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}{}", stdout(&out), stderr(&out));
        assert!(!stderr(&out).is_empty() || stdout(&out).contains("UNREADABLE"));
    }
}

#[test]
fn expired_collateral_is_rejected_with_the_date() {
    let (quote, collateral) = (sample(), sample_collateral());
    let out = confcom(&[
        "verify",
        &quote,
        "--collateral",
        &collateral,
        "--now",
        "2025-07-20T00:00:00Z",
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("expired at 2025-07-19T"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn every_policy_flag_accepts_a_match_and_rejects_a_mismatch_naming_the_field() {
    let v = json(&verify(&["--json"]));
    let body = &v["report_body"];
    let s = |key: &str| body[key].as_str().unwrap().to_owned();
    let n = |key: &str| body[key].as_u64().unwrap();
    let flip = |hex: String| {
        let mut b = hex::decode(hex).unwrap();
        b[0] ^= 1;
        hex::encode(b)
    };
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "--mrenclave",
            s("mr_enclave"),
            flip(s("mr_enclave")),
            "MRENCLAVE mismatch",
        ),
        (
            "--mrsigner",
            s("mr_signer"),
            flip(s("mr_signer")),
            "MRSIGNER mismatch",
        ),
        (
            "--isv-prod-id",
            n("isv_prod_id").to_string(),
            (n("isv_prod_id") + 1).to_string(),
            "ISVPRODID mismatch",
        ),
        (
            "--min-isv-svn",
            n("isv_svn").to_string(),
            (n("isv_svn") + 1).to_string(),
            "ISVSVN",
        ),
        (
            "--report-data",
            s("report_data"),
            flip(s("report_data")),
            "report data mismatch",
        ),
        (
            "--min-tcb-eval",
            "17".into(),
            "18".into(),
            "tcbEvaluationDataNumber 17 below",
        ),
        (
            "--accept",
            "UpToDate,ConfigurationAndSWHardeningNeeded".into(),
            "UpToDate,OutOfDate".into(),
            "TCB status ConfigurationAndSWHardeningNeeded not accepted",
        ),
    ];
    for (flag, good, bad, message) in cases {
        let out = verify(&[flag, &good]);
        assert_eq!(
            code(&out),
            0,
            "{flag} {good}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let out = verify(&[flag, &bad]);
        assert_eq!(code(&out), 1, "{flag} {bad}: {}", stdout(&out));
        assert!(stdout(&out).contains("REJECTED"), "{}", stdout(&out));
        assert!(stdout(&out).contains(message), "{flag}: {}", stdout(&out));
    }
}

#[test]
fn debug_enclave_needs_allow_debug() {
    let quote = vectors()
        .join("automata-dcap-rs/quote_sgx.bin")
        .display()
        .to_string();
    let collateral = vectors()
        .join("automata-dcap-rs/dcap-qvl-collateral.json")
        .display()
        .to_string();
    let base = [
        "verify",
        &quote,
        "--collateral",
        &collateral,
        "--now",
        "1724716800",
    ];
    let out = confcom(&base);
    assert_eq!(code(&out), 1);
    assert!(
        stdout(&out).contains("debug enclave not allowed"),
        "{}",
        stdout(&out)
    );
    let mut allowed = base.to_vec();
    allowed.push("--allow-debug");
    let out = confcom(&allowed);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("ConfigurationAndSWHardeningNeeded"));
}

#[test]
fn root_flag_takes_pem_and_a_wrong_root_fails() {
    let pem = vectors()
        .join("intel-sgx-root-ca.pem")
        .display()
        .to_string();
    assert_eq!(code(&verify(&["--root", &pem])), 0);
    // The sample's TCB signing certificate is not self-issued: refused as a root (unreadable).
    let dir = tempfile::tempdir().unwrap();
    let collateral: Value =
        serde_json::from_slice(&std::fs::read(sample_collateral()).unwrap()).unwrap();
    let chain = collateral["tcb_info_issuer_chain"].as_str().unwrap();
    let signer = chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap();
    let signer_file = dir.path().join("signer.pem");
    std::fs::write(&signer_file, signer).unwrap();
    assert_eq!(code(&verify(&["--root", signer_file.to_str().unwrap()])), 2);
}

/// Writes the sample collateral in the PCS directory layout.
fn pcs_dir(dir: &Path) {
    let c: Value = serde_json::from_slice(&std::fs::read(sample_collateral()).unwrap()).unwrap();
    let s = |k: &str| c[k].as_str().unwrap().to_owned();
    std::fs::write(
        dir.join("tcb_info.json"),
        format!(
            "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
            s("tcb_info"),
            s("tcb_info_signature")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("qe_identity.json"),
        format!(
            "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
            s("qe_identity"),
            s("qe_identity_signature")
        ),
    )
    .unwrap();
    std::fs::write(dir.join("pck_crl.der"), hex::decode(s("pck_crl")).unwrap()).unwrap();
    std::fs::write(
        dir.join("root_ca_crl.der"),
        hex::decode(s("root_ca_crl")).unwrap(),
    )
    .unwrap();
    for name in [
        "tcb_info_issuer_chain",
        "qe_identity_issuer_chain",
        "pck_crl_issuer_chain",
    ] {
        std::fs::write(dir.join(format!("{name}.pem")), s(name)).unwrap();
    }
}

#[test]
fn pcs_directory_layout_verifies_and_wins_over_collateral_json() {
    let dir = tempfile::tempdir().unwrap();
    pcs_dir(dir.path());
    let d = dir.path().to_str().unwrap();
    let out = confcom(&["verify", &sample(), "--collateral", d, "--now", SAMPLE_NOW]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    // A tampered collateral.json beside the PCS files is ignored where PCS files exist.
    let tampered = vectors().join("dcap-qvl/tampered/coll_tcbinfo_modified.json");
    std::fs::copy(&tampered, dir.path().join("collateral.json")).unwrap();
    let out = confcom(&["verify", &sample(), "--collateral", d, "--now", SAMPLE_NOW]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    std::fs::remove_file(dir.path().join("tcb_info.json")).unwrap();
    let out = confcom(&["verify", &sample(), "--collateral", d, "--now", SAMPLE_NOW]);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("TCB info signature invalid"));
}

#[test]
fn batch_prints_one_line_per_file_and_exits_with_the_worst_result() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(sample()).unwrap();
    for i in 0..6 {
        std::fs::write(dir.path().join(format!("good{i}.bin")), &bytes).unwrap();
    }
    std::fs::copy(
        vectors().join("dcap-qvl/tampered/quote_isvsig_flip.bin"),
        dir.path().join("isvsig.bin"),
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let base = [
        "verify",
        "--batch",
        d,
        "--collateral",
        &sample_collateral(),
        "--now",
        SAMPLE_NOW,
    ];
    let out = confcom(&base);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| l.contains(": ACCEPTED ")).count(),
        6
    );
    assert!(lines[0].contains("good0.bin"), "sorted by name: {lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("isvsig.bin: FAILED: ISV enclave report signature invalid"))
    );

    std::fs::write(dir.path().join("junk.txt"), "hello").unwrap();
    let mut json_args = base.to_vec();
    json_args.push("--json");
    let out = confcom(&json_args);
    assert_eq!(code(&out), 2, "worst result: unreadable");
    let objects: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 8);
    assert_eq!(
        objects.iter().filter(|o| o["result"] == "accepted").count(),
        6
    );
    assert_eq!(
        objects.iter().filter(|o| o["result"] == "failed").count(),
        1
    );
    assert_eq!(
        objects
            .iter()
            .filter(|o| o["result"] == "unreadable")
            .count(),
        1
    );

    // Several files on the command line behave like a batch.
    let one = dir.path().join("good0.bin").display().to_string();
    let two = dir.path().join("good1.bin").display().to_string();
    let out = confcom(&[
        "verify",
        &one,
        &two,
        "--collateral",
        &sample_collateral(),
        "--now",
        SAMPLE_NOW,
    ]);
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out).lines().count(), 2);
}

#[test]
fn a_simulated_root_is_marked_in_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let platform = sgx_sim::SimPlatform::open_or_init(
        &dir.path().join("state"),
        &sgx_sim::InitOptions::default(),
    )
    .unwrap();
    platform.init_attestation_key().unwrap();
    let report = platform.cpu().create_report(
        &sgx_sim::EnclaveIdentity::default(),
        &platform.qe_target_info(),
        &[9; 64],
    );
    let quote = dir.path().join("quote.bin");
    std::fs::write(&quote, platform.quote(&report).unwrap()).unwrap();
    let collateral = dir.path().join("collateral");
    platform
        .collateral(&sgx_sim::CollateralOptions::default())
        .unwrap()
        .write_to(&collateral)
        .unwrap();
    let (q, c) = (
        quote.display().to_string(),
        collateral.display().to_string(),
    );
    let root = collateral.join("root-ca.pem").display().to_string();

    // Against Intel's root: rejected, with a hint to the directory's own root.
    let out = confcom(&["verify", &q, "--collateral", &c]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stderr(&out).contains("--root"), "{}", stderr(&out));

    let out = confcom(&["verify", &q, "--collateral", &c, "--root", &root]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("SIMULATED or private PKI"),
        "{}",
        stdout(&out)
    );
    let out = confcom(&["verify", &q, "--collateral", &c, "--root", &root, "--json"]);
    let v = json(&out);
    assert_eq!(v["intel_root"], false);
    assert!(
        v["trust_anchor"]
            .as_str()
            .unwrap()
            .starts_with("SIMULATED or private PKI")
    );
    let out = confcom(&["verify", &q, &q, "--collateral", &c, "--root", &root]);
    assert!(
        stdout(&out)
            .lines()
            .all(|l| l.contains("SIMULATED or private PKI"))
    );
}
