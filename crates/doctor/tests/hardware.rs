//! `doctor` against the hardware backend: a quote helper with the dcap backend over the fake
//! `libsgx_dcap_ql.so.1`, fake device and sysfs roots, and a CPUID reporting SGX. No real SGX
//! hardware is involved.
//!
//! The fake library takes its simulated platform and its injected failures from the environment
//! it is loaded in, so each scenario runs in a child process of this test binary started with that
//! environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::{Helper, fake_node, options, short_tempdir};
use dcap_ql::{DcapBackend, DcapOptions};
use device_plugin::platform::CpuidRegs;
use doctor::{Backend, Options, Status, Verdict, diagnose};
use sgx_sim::{InitOptions, SimPlatform};

const DIR_ENV: &str = "DOCTOR_TEST_DIR";
const MARKER: &str = "child scenario ran:";

/// A CPU with SGX1, SGX2, FLC and one 64 MiB EPC section.
fn sgx_cpuid(leaf: u32, subleaf: u32) -> CpuidRegs {
    match (leaf, subleaf) {
        (0, 0) => [0x1f, 0, 0, 0],
        (7, 0) => [0, 1 << 2, 1 << 30, 0],
        (0x12, 0) => [0b11, 0, 0, 0],
        (0x12, 2) => [1, 0, (64 << 20) | 1, 0],
        _ => [0; 4],
    }
}

fn built_fake() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let lib = exe.parent().unwrap().join("libfake_dcap_ql.so");
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}

/// In the child: the helper with the dcap backend over the fake, and doctor's report.
fn child_report(dir: &Path) -> doctor::Report {
    let node = fake_node(dir);
    let library = dir.join("libsgx_dcap_ql.so.1");
    std::fs::copy(built_fake(), &library).unwrap();
    let backend = Arc::new(DcapBackend::start(&library, DcapOptions::default()).unwrap());
    let platform = Arc::new(SimPlatform::open(&dir.join("sim")).unwrap());
    // Intel's QE3 publishes no CPU material next to the socket.
    let helper = Helper::start_with(dir, backend, platform, false);
    let report = diagnose(&Options {
        cpuid: Some(sgx_cpuid),
        ..options(&node, &helper.socket)
    });
    drop(helper);
    report
}

/// Runs `test` of this binary in a child with the fake's environment; returns its stdout.
fn run_child(test: &str, dir: &Path, fail: Option<&str>) -> String {
    SimPlatform::open_or_init(&dir.join("sim"), &InitOptions::default()).unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, dir)
        .env("FAKE_DCAP_QL_SIM_DIR", dir.join("sim"))
        .env_remove("SGX_AESM_ADDR");
    match fail {
        Some(spec) => cmd.env("FAKE_DCAP_QL_FAIL", spec),
        None => cmd.env_remove("FAKE_DCAP_QL_FAIL"),
    };
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("{MARKER} {test}")), "{stdout}");
    stdout
}

#[test]
fn an_sgx_node_with_the_dcap_helper_is_ready() {
    if let Some(dir) = std::env::var_os(DIR_ENV) {
        let report = child_report(Path::new(&dir));
        let text = report.render_text();
        assert_eq!(report.backend, Some(Backend::Hardware), "{text}");
        assert!(text.contains("backend: Intel's quoting enclave"), "{text}");
        assert!(
            text.contains("✓ CPU: SGX (SGX1, SGX2); EPC 64 MiB"),
            "{text}"
        );
        assert_eq!(
            report.check("quote").unwrap().status,
            Status::Pass,
            "{text}"
        );
        assert!(
            text.contains("attestation key certified, quotes of"),
            "{text}"
        );
        assert_eq!(report.verdict, Verdict::SgxReady, "{text}");
        assert!(text.ends_with("verdict: SGX node: ready\n"), "{text}");
        println!("{MARKER} an_sgx_node_with_the_dcap_helper_is_ready");
        return;
    }
    let dir = short_tempdir();
    run_child(
        "an_sgx_node_with_the_dcap_helper_is_ready",
        dir.path(),
        None,
    );
}

#[test]
fn missing_pck_certificates_make_the_sgx_node_not_ready_with_the_fix() {
    if let Some(dir) = std::env::var_os(DIR_ENV) {
        let report = child_report(Path::new(&dir));
        let text = report.render_text();
        let quote = report.check("quote").unwrap();
        assert_eq!(quote.status, Status::Fail, "{text}");
        assert!(
            quote.summary.contains("AESM_NO_PLATFORM_CERT_DATA (44)"),
            "{text}"
        );
        assert!(quote.fix.as_deref().unwrap().contains("PCCS"), "{text}");
        assert_eq!(report.verdict, Verdict::SgxNotReady, "{text}");
        assert!(!report.ok);
        println!("{MARKER} missing_pck_certificates_make_the_sgx_node_not_ready_with_the_fix");
        return;
    }
    let dir = short_tempdir();
    run_child(
        "missing_pck_certificates_make_the_sgx_node_not_ready_with_the_fix",
        dir.path(),
        Some("get_quote_size=0xE011"),
    );
}

#[test]
fn on_hardware_the_platform_evidence_the_helper_publishes_is_verified() {
    if let Some(dir) = std::env::var_os(DIR_ENV) {
        let dir = Path::new(&dir);
        let node = fake_node(dir);
        let library = dir.join("libsgx_dcap_ql.so.1");
        std::fs::copy(built_fake(), &library).unwrap();
        let backend = Arc::new(DcapBackend::start(&library, DcapOptions::default()).unwrap());
        let platform = Arc::new(SimPlatform::open(&dir.join("sim")).unwrap());
        let helper = Helper::start_with(dir, backend, Arc::clone(&platform), false);
        let diagnose_with = |collateral: Option<PathBuf>| {
            diagnose(&Options {
                cpuid: Some(sgx_cpuid),
                collateral,
                ..options(&node, &helper.socket)
            })
        };
        // No app has quoted yet: nothing to verify, said as such.
        let report = diagnose_with(None);
        let text = report.render_text();
        let verify = report.check("verify").unwrap();
        assert_eq!(verify.status, Status::Skip, "{text}");
        assert!(verify.summary.contains("no platform evidence"), "{text}");
        assert_eq!(report.verdict, Verdict::SgxReady, "{text}");

        // What the helper publishes after an app's quote (the fake QE quotes as this platform).
        platform.init_attestation_key().unwrap();
        let report = platform.cpu().create_report(
            &sgx_sim::EnclaveIdentity::default(),
            &platform.qe_target_info(),
            &[5; 64],
        );
        let quote = platform.quote(&report).unwrap();
        let evidence = aesm_service::evidence::evidence_path_for_socket(&helper.socket);
        std::fs::write(&evidence, aesm_service::evidence::redact(&quote).unwrap()).unwrap();
        let collateral = dir.join("collateral");
        platform
            .collateral(&sgx_sim::CollateralOptions::default())
            .unwrap()
            .write_to(&collateral)
            .unwrap();
        let fmspc: String = platform
            .pck_extension()
            .fmspc
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // Without collateral: found, not verified.
        let report = diagnose_with(None);
        let text = report.render_text();
        let verify = report.check("verify").unwrap();
        assert_eq!(verify.status, Status::Skip, "{text}");
        assert!(verify.summary.contains(&fmspc), "{text}");
        // With the platform's collateral (and its root): verified.
        let report = diagnose_with(Some(collateral.clone()));
        let text = report.render_text();
        let verify = report.check("verify").unwrap();
        assert_eq!(verify.status, Status::Pass, "{text}");
        assert!(verify.summary.contains("UpToDate"), "{text}");
        assert!(verify.summary.contains(&fmspc), "{text}");
        // A whole quote where evidence belongs fails, it is not verified without its signature.
        std::fs::write(&evidence, &quote).unwrap();
        let report = diagnose_with(Some(collateral));
        let text = report.render_text();
        let verify = report.check("verify").unwrap();
        assert_eq!(verify.status, Status::Fail, "{text}");
        assert!(verify.summary.contains("not platform evidence"), "{text}");
        drop(helper);
        println!("{MARKER} on_hardware_the_platform_evidence_the_helper_publishes_is_verified");
        return;
    }
    let dir = short_tempdir();
    run_child(
        "on_hardware_the_platform_evidence_the_helper_publishes_is_verified",
        dir.path(),
        None,
    );
}
