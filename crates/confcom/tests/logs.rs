//! Daemon logs as container runtimes capture them: stderr is a pipe, so text logs carry no ANSI
//! escape codes, and `--log-format json` gives one JSON object per line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Runs the simulated device plugin with stderr on a pipe until it has logged `lines` lines.
fn device_plugin_log(extra: &[&str], lines: usize) -> Vec<String> {
    let dir = tempfile::Builder::new()
        .prefix("lg")
        .tempdir_in("/tmp")
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(extra)
        .args([
            "device-plugin",
            "--simulate",
            "--metrics-addr",
            "127.0.0.1:0",
            "--plugin-dir",
        ])
        .arg(dir.path())
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let got: Vec<String> = stderr.lines().take(lines).map(Result::unwrap).collect();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        got.len(),
        lines,
        "the plugin stopped logging early: {got:?}"
    );
    got
}

#[test]
fn text_logs_on_a_pipe_have_no_escape_codes() {
    let lines = device_plugin_log(&[], 3);
    assert!(
        lines[0].contains("INFO") && lines[0].contains("starting the SGX device plugin"),
        "{lines:?}"
    );
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "escape code in {line:?}");
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let lines = device_plugin_log(&["--log-format", "json"], 3);
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["level"].is_string(), "{line}");
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
}

/// `confcom quote` against a socket that does not exist, after a simulated platform was made.
fn failed_quote(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let init = Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(["sim", "init", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let output = Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(extra)
        .args([
            "quote",
            "--report-data",
            "00",
            "--wait-secs",
            "0",
            "--socket",
        ])
        .arg(dir.path().join("absent.socket"))
        .arg("--state-dir")
        .arg(&state)
        .arg("--out")
        .arg(dir.path().join("quote.bin"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn a_failed_command_names_each_cause_once_on_one_line() {
    let stderr = failed_quote(&[]);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let os_error = std::io::Error::from_raw_os_error(2).to_string();
    assert_eq!(lines[0].matches(&os_error).count(), 1, "{stderr}");
    assert_eq!(
        lines[0].matches("AESM service unavailable").count(),
        1,
        "{stderr}"
    );
    assert!(lines[0].starts_with("error: "), "{stderr}");
}

#[test]
fn a_failed_command_in_json_keeps_the_chain_as_a_field() {
    let stderr = failed_quote(&["--log-format", "json"]);
    let last = stderr.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["level"], "ERROR", "{last}");
    let chain: Vec<&str> = v["fields"]["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(chain.join(": "), v["fields"]["message"].as_str().unwrap());
    let os_error = std::io::Error::from_raw_os_error(2).to_string();
    assert_eq!(
        v["fields"]["message"]
            .as_str()
            .unwrap()
            .matches(&os_error)
            .count(),
        1,
        "{last}"
    );
}
