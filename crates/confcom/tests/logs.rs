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
