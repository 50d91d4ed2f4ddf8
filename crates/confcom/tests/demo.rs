//! `confcom demo` end to end, and its quote cross-checked by the `dcap-qvl` crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn demo_attests_and_dcap_qvl_agrees() {
    let dir = tempfile::Builder::new()
        .prefix("demo")
        .tempdir_in("/tmp")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(["demo", "--dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("UpToDate"), "{stdout}");
    assert!(stdout.contains("SIMULATED or private PKI"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("attestation succeeded"),
        "{stdout}"
    );

    // The quote the demo obtained verifies with an independent verifier under the simulated root.
    let quote = std::fs::read(dir.path().join("quote.bin")).unwrap();
    let collateral: dcap_qvl::QuoteCollateralV3 = serde_json::from_slice(
        &std::fs::read(dir.path().join("collateral/collateral.json")).unwrap(),
    )
    .unwrap();
    let root = std::fs::read(dir.path().join("collateral/root-ca.der")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let report = dcap_qvl::verify::QuoteVerifier::new(root)
        .verify(&quote, &collateral, now)
        .unwrap();
    assert_eq!(report.status, "UpToDate");
    // Intel's root does not accept a simulated quote.
    assert!(
        dcap_qvl::verify::QuoteVerifier::new_prod()
            .verify(&quote, &collateral, now)
            .is_err()
    );

    // A second run reuses the platform: same root, and the first quote still verifies.
    let again = Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(["demo", "--dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(again.status.success());
    let root_again = std::fs::read(dir.path().join("collateral/root-ca.der")).unwrap();
    let collateral: dcap_qvl::QuoteCollateralV3 = serde_json::from_slice(
        &std::fs::read(dir.path().join("collateral/collateral.json")).unwrap(),
    )
    .unwrap();
    assert!(
        dcap_qvl::verify::QuoteVerifier::new(root_again)
            .verify(&quote, &collateral, now)
            .is_ok()
    );
}
