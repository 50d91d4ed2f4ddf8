//! `confcom bench quote-helper` and `confcom bench pccs` from the binary: a short run prints the
//! table, bad flags are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn confcom(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_short_quote_helper_run_prints_every_point() {
    let (ok, stdout, stderr) = confcom(&[
        "bench",
        "quote-helper",
        "--secs",
        "0.05",
        "--rounds",
        "1",
        "--clients",
        "2,5",
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("raw ECDSA P-256 signing"), "{stdout}");
    for clients in ["2", "5"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(clients)
                    && l.contains("x ")
                    && l.contains("sig")),
            "no row for {clients} clients:\n{stdout}"
        );
    }
}

#[test]
fn a_short_pccs_run_prints_both_comparisons() {
    let (ok, stdout, stderr) = confcom(&["bench", "pccs", "--secs", "0.1", "--clients", "2"]);
    assert!(ok, "{stdout}\n{stderr}");
    for (row, unit) in [
        ("cached TCB info requests/s", "× /healthz"),
        ("verify with local files", "quotes/s"),
        ("verify with fetch", "× local files"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row} row:\n{stdout}"));
        assert!(line.contains(unit), "{line}");
        let rate: f64 = line[row.len()..]
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap();
        assert!(rate > 0.0, "{line}");
    }
}

#[test]
fn bad_flags_are_refused_with_a_reason() {
    for args in [
        &["bench", "quote-helper", "--rounds", "0"][..],
        &["bench", "quote-helper", "--clients", "1,0"],
        &["bench", "quote-helper", "--secs", "0"],
        &["bench", "quote-helper", "--secs", "NaN"],
        &["bench", "pccs", "--secs", "0"],
    ] {
        let (ok, _, stderr) = confcom(args);
        assert!(!ok, "{args:?} was accepted");
        assert!(stderr.contains("must be"), "{args:?}: {stderr}");
    }
}
