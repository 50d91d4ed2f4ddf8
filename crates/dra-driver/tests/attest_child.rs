//! The attestation child's protocol: the settings and every kind of outcome survive the trip
//! through JSON, and output that is no outcome (malformed, oversized, absent, a failed or hung
//! child) is a transient failure with a clear message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use dcap_verify::{TcbStatus, TrustAnchor};
use dra_driver::attest::child::{
    self, ChildCommand, ChildError, MAX_OUTPUT_BYTES, MAX_REQUEST_BYTES, Outcome, Request, Runner,
};
use dra_driver::attest::{AttestConfig, Attestation, CollateralConfig};

fn outcomes() -> Vec<Outcome> {
    let mut all: Vec<Outcome> = TcbStatus::ALL
        .into_iter()
        .map(|status| Outcome::Attested {
            attestation: Attestation {
                fmspc: Some([0x00, 0x90, 0x6e, 0xa1, 0x00, 0x00]),
                pce_svn: Some(13),
                cpu_svn: Some([0xab; 16]),
                tcb_status: Some(status),
                tcb_date: Some("2024-03-13T00:00:00Z".into()),
            },
            refresh_at: Some(1_900_000_000),
            collateral_error: None,
        })
        .collect();
    all.extend([
        // A quote without collateral.
        Outcome::Attested {
            attestation: Attestation {
                fmspc: Some([1, 2, 3, 4, 5, 6]),
                pce_svn: Some(0),
                cpu_svn: Some([0; 16]),
                tcb_status: None,
                tcb_date: None,
            },
            refresh_at: None,
            collateral_error: None,
        },
        // Collateral out of reach.
        Outcome::Attested {
            attestation: Attestation {
                fmspc: Some([0xff; 6]),
                pce_svn: Some(u16::MAX),
                cpu_svn: Some([0xff; 16]),
                tcb_status: None,
                tcb_date: None,
            },
            refresh_at: None,
            collateral_error: Some(
                "cannot reach the PCCS at http://pccs:8081: \"quoted\"\n".into(),
            ),
        },
        Outcome::Attested {
            attestation: Attestation::default(),
            refresh_at: Some(0),
            collateral_error: None,
        },
        Outcome::Failed {
            error: "the quote helper does not answer: connection refused".into(),
            transient: true,
        },
        Outcome::Failed {
            error: "no platform evidence yet — ünïcode".into(),
            transient: false,
        },
    ]);
    all
}

#[test]
fn every_outcome_round_trips() {
    for outcome in outcomes() {
        let json = serde_json::to_vec(&outcome).unwrap();
        assert!(json.len() < 4096, "{}", String::from_utf8_lossy(&json));
        let back = child::parse_output(&json).unwrap();
        assert_eq!(back, outcome, "{}", String::from_utf8_lossy(&json));
        // As the child writes it: one line.
        let mut line = json.clone();
        line.push(b'\n');
        assert_eq!(child::parse_output(&line).unwrap(), outcome);
    }
}

#[test]
fn the_wire_format_is_readable() {
    let outcome = &outcomes()[0];
    let value = serde_json::to_value(outcome).unwrap();
    assert_eq!(value["attested"]["fmspc"], "00906ea10000");
    assert_eq!(value["attested"]["cpu_svn"], "ab".repeat(16));
    assert_eq!(value["attested"]["tcb_status"], "UpToDate");
}

#[test]
fn output_that_is_no_outcome_is_refused() {
    let malformed: &[&[u8]] = &[
        b"not json",
        b"{}",
        b"[]",
        b"null",
        br#"{"failed": {"error": "x"}}"#,
        br#"{"failed": {"error": "x", "transient": true, "extra": 1}}"#,
        br#"{"failed": {"error": "x", "transient": true}} {"failed": {"error": "y", "transient": true}}"#,
        br#"{"attested": {"fmspc": "00906ea100", "pce_svn": null, "cpu_svn": null, "tcb_status": null, "tcb_date": null, "refresh_at": null, "collateral_error": null}}"#,
        br#"{"attested": {"fmspc": "zz906ea10000", "pce_svn": null, "cpu_svn": null, "tcb_status": null, "tcb_date": null, "refresh_at": null, "collateral_error": null}}"#,
        br#"{"attested": {"fmspc": null, "pce_svn": 70000, "cpu_svn": null, "tcb_status": null, "tcb_date": null, "refresh_at": null, "collateral_error": null}}"#,
        br#"{"attested": {"fmspc": null, "pce_svn": null, "cpu_svn": null, "tcb_status": "uptodate", "tcb_date": null, "refresh_at": null, "collateral_error": null}}"#,
        br#"{"attested": {"fmspc": null, "pce_svn": null, "cpu_svn": null, "tcb_status": null, "tcb_date": null, "refresh_at": -1, "collateral_error": null}}"#,
        b"\xff\xfe",
    ];
    for bytes in malformed {
        let err = child::parse_output(bytes).unwrap_err();
        assert!(
            matches!(err, ChildError::Malformed(_)),
            "{}: {err:?}",
            String::from_utf8_lossy(bytes)
        );
        assert!(
            err.to_string()
                .starts_with("the attestation process wrote a malformed result: "),
            "{err}"
        );
    }
    for empty in [&b""[..], b"\n", b"  \n"] {
        assert!(matches!(
            child::parse_output(empty),
            Err(ChildError::NoResult)
        ));
    }
    // Over the bound, even when it would parse.
    let mut padded = serde_json::to_vec(&outcomes()[0]).unwrap();
    padded.resize(MAX_OUTPUT_BYTES + 1, b' ');
    let err = child::parse_output(&padded).unwrap_err();
    assert!(matches!(err, ChildError::Oversized), "{err:?}");
    assert!(err.to_string().contains("more than 65536 bytes"), "{err}");
}

fn full_config() -> AttestConfig {
    let mut config = AttestConfig::new(
        "/var/run/aesmd/aesm.socket",
        CollateralConfig::Pccs {
            url: "https://pccs.confcom.svc:8081".into(),
            ca_files: vec![
                PathBuf::from("/etc/ca/a.pem"),
                PathBuf::from("/etc/ca/b.pem"),
            ],
            timeout: Duration::from_secs(30),
        },
    );
    config.cpu_dir = Some(PathBuf::from("/var/run/aesmd/sim"));
    config.evidence = Some(PathBuf::from("/var/run/aesmd/platform-quote.dat"));
    config.root = Some(TrustAnchor::intel());
    config.root_from_quote = true;
    config
}

#[test]
fn the_settings_round_trip() {
    let configs = [
        full_config(),
        AttestConfig::new("/s", CollateralConfig::None),
        AttestConfig::new("/s", CollateralConfig::Dir(PathBuf::from("/collateral"))),
    ];
    for config in configs {
        let request = Request::for_config(&config).unwrap();
        let json = serde_json::to_vec(&request).unwrap();
        assert!(json.len() < MAX_REQUEST_BYTES);
        let parsed = Request::parse(&json).unwrap();
        assert_eq!(parsed, request);
        let back = parsed.into_config().unwrap();
        assert_eq!(Request::for_config(&back).unwrap(), request);
        assert_eq!(
            back.root.as_ref().map(|r| r.der().to_vec()),
            config.root.as_ref().map(|r| r.der().to_vec())
        );
    }
}

#[test]
fn bad_settings_are_refused_with_a_reason() {
    let cases: &[(&str, &str)] = &[
        ("", "not valid"),
        ("{", "not valid"),
        (r#"{"collateral": "none"}"#, "socket"),
        (
            r#"{"socket": "/s", "collateral": "none", "extra": 1}"#,
            "extra",
        ),
        (
            r#"{"socket": "", "collateral": "none"}"#,
            "socket path is empty",
        ),
        (
            r#"{"socket": "/s", "collateral": "elsewhere"}"#,
            "elsewhere",
        ),
        (
            r#"{"socket": "/s", "collateral": {"dir": ""}}"#,
            "collateral path is empty",
        ),
        (
            r#"{"socket": "/s", "collateral": {"pccs": {"url": "", "timeout_ms": 1000}}}"#,
            "URL is empty",
        ),
        (
            r#"{"socket": "/s", "collateral": {"pccs": {"url": "http://p", "timeout_ms": 0}}}"#,
            "timeout",
        ),
        (
            r#"{"socket": "/s", "collateral": {"pccs": {"url": "http://p", "timeout_ms": 99999999}}}"#,
            "timeout",
        ),
        (
            r#"{"socket": "/s", "collateral": "none", "root": "zz"}"#,
            "root certificate",
        ),
        (
            r#"{"socket": "/s", "collateral": "none", "root": "3000"}"#,
            "root certificate",
        ),
    ];
    for (json, expected) in cases {
        let err = Request::parse(json.as_bytes())
            .and_then(Request::into_config)
            .err()
            .unwrap_or_else(|| panic!("{json} was accepted"))
            .to_string();
        assert!(err.contains(expected), "{json}: {err}");
    }
    let oversized = vec![b' '; MAX_REQUEST_BYTES + 1];
    let err = Request::parse(&oversized).unwrap_err().to_string();
    assert!(err.contains("over 65536 bytes"), "{err}");
}

#[test]
fn the_child_side_answers_every_request_it_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let config = AttestConfig::new(dir.path().join("aesm.socket"), CollateralConfig::None);
    let request = serde_json::to_vec(&Request::for_config(&config).unwrap()).unwrap();
    let mut out = Vec::new();
    child::answer(request.as_slice(), &mut out, || 0).unwrap();
    assert_eq!(out.last(), Some(&b'\n'));
    match child::parse_output(&out).unwrap() {
        Outcome::Failed { error, transient } => {
            assert!(transient);
            assert!(error.contains("does not answer"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // A refused request gets no outcome.
    let mut out = Vec::new();
    let err = child::answer(&b"{}"[..], &mut out, || 0).unwrap_err();
    assert!(err.to_string().contains("not valid"), "{err}");
    assert!(out.is_empty());
    let mut out = Vec::new();
    let err = child::answer(&vec![b' '; 2 * MAX_REQUEST_BYTES][..], &mut out, || 0).unwrap_err();
    assert!(err.to_string().contains("over"), "{err}");
    assert!(out.is_empty());
}

/// A stand-in for the child: a shell script that reads its request and does `script`.
fn shell(script: &str, timeout: Duration) -> ChildCommand {
    ChildCommand {
        program: PathBuf::from("/bin/sh"),
        arg0: Some("attest-stand-in".into()),
        args: vec!["-c".into(), script.into()],
        timeout,
    }
}

fn request() -> Request {
    Request::for_config(&AttestConfig::new("/s", CollateralConfig::None)).unwrap()
}

#[tokio::test]
async fn a_child_s_outcome_is_read_and_its_failures_are_errors() {
    let long = Duration::from_secs(600);
    for outcome in outcomes() {
        let json = serde_json::to_string(&outcome).unwrap();
        let script = format!(
            "cat >/dev/null; printf '%s\\n' '{}'",
            json.replace('\'', "'\\''")
        );
        let got = child::run_child(&shell(&script, long), &request())
            .await
            .unwrap();
        assert_eq!(got, outcome);
    }
    // The request reaches the child's stdin.
    let echoed = child::run_child(&shell("cat", long), &request())
        .await
        .unwrap_err();
    assert!(matches!(echoed, ChildError::Malformed(_)), "{echoed:?}");

    type Expected = fn(&ChildError) -> bool;
    let cases: Vec<(String, Expected)> = vec![
        ("cat >/dev/null".into(), |e| {
            matches!(e, ChildError::NoResult)
        }),
        ("cat >/dev/null; echo garbage".into(), |e| {
            matches!(e, ChildError::Malformed(_))
        }),
        (
            format!("cat >/dev/null; head -c {} /dev/zero", 4 * MAX_OUTPUT_BYTES),
            |e| matches!(e, ChildError::Oversized),
        ),
        (
            "cat >/dev/null; exit 3".into(),
            |e| matches!(e, ChildError::Exit(status) if status.code() == Some(3)),
        ),
        // Exits without reading its request.
        ("exit 4".into(), |e| matches!(e, ChildError::Exit(_))),
    ];
    for (script, expected) in cases {
        let err = child::run_child(&shell(&script, long), &request())
            .await
            .unwrap_err();
        assert!(expected(&err), "{script}: {err:?}");
        assert!(
            err.to_string().starts_with("the attestation process "),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_hung_child_is_killed() {
    let err = child::run_child(
        &shell("exec sleep 600", Duration::from_millis(200)),
        &request(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ChildError::Timeout(_)), "{err:?}");
    assert!(err.to_string().contains("was killed"), "{err}");
}

#[tokio::test]
async fn the_runner_turns_every_child_failure_into_a_transient_one() {
    let config = AttestConfig::new("/s", CollateralConfig::None);
    let missing = Runner::Child(ChildCommand {
        program: PathBuf::from("/nonexistent/confcom"),
        arg0: None,
        args: vec![],
        timeout: Duration::from_secs(600),
    });
    match missing.attest(&config).await {
        Outcome::Failed { error, transient } => {
            assert!(transient);
            assert!(
                error.starts_with("cannot start the attestation process /nonexistent/confcom: "),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    let garbage = Runner::Child(shell(
        "cat >/dev/null; echo garbage",
        Duration::from_secs(600),
    ));
    match garbage.attest(&config).await {
        Outcome::Failed { error, transient } => {
            assert!(transient);
            assert!(error.contains("malformed result"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}
