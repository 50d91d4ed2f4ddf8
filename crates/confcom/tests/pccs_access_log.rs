//! `confcom pccs` logs one access line per request (in the --log-format of its other logs) unless
//! `--no-access-log`; and Intel's quote provider library's 3.1 requests for a simulated cluster
//! (`crl?uri=` with the root certificate's CRL distribution point) and Intel's PCCS's LAZY
//! `pckcerts` request are answered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Runs `confcom pccs --sim-state state` with `extra` flags, GETs each of `paths`, stops it and
/// returns the HTTP statuses and every JSON log line it wrote.
fn serve(state: &str, extra: &[&str], paths: &[String]) -> (Vec<u16>, Vec<Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(["--log-format", "json", "pccs", "--sim-state", state])
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut logs = Vec::new();
    let listen = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "exited early");
        let log: Value = serde_json::from_str(&line).unwrap();
        let listen = log["fields"]["listen"].as_str().map(str::to_owned);
        logs.push(log);
        if let Some(listen) = listen {
            break listen;
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let statuses = paths
        .iter()
        .map(|p| {
            let mut r = agent.get(&format!("http://{listen}{p}")).call().unwrap();
            let _ = r.body_mut().read_to_vec();
            r.status().as_u16()
        })
        .collect();
    // SIGTERM: the server stops gracefully, so that no line is cut off mid-write.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    logs.extend(
        rest.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()),
    );
    (statuses, logs)
}

fn access(logs: &[Value]) -> Vec<&Value> {
    logs.iter()
        .filter(|l| l["target"] == "access")
        .map(|l| &l["fields"])
        .collect()
}

#[test]
fn each_request_is_one_access_line_unless_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args(["sim", "init", "--state-dir", state])
        .output()
        .unwrap();
    assert!(out.status.success());
    let root_crl =
        "http://sgx-pccs.kube-system.svc:8081/sgx/certification/v4/rootcacrl?encoding=der";
    let encoded: String = root_crl
        .chars()
        .map(|c| match c {
            ':' | '/' | '?' | '&' | '=' => format!("%{:02X}", c as u32),
            c => c.to_string(),
        })
        .collect();
    let paths = vec![
        // What Intel's QPL asks with pccs_api_version 3.1.
        format!("/sgx/certification/v4/crl?uri={encoded}"),
        // What Intel's PCCS asks its upstream in LAZY mode.
        format!(
            "/sgx/certification/v4/pckcerts?encrypted_ppid={}&pceid=0000",
            "12".repeat(384)
        ),
        "/sgx/certification/v4/crl?uri=http%3A%2F%2Fexample.com%2F".to_owned(),
        "/healthz".to_owned(),
    ];
    let (statuses, logs) = serve(state, &[], &paths);
    assert_eq!(statuses, [200, 200, 400, 200]);
    let lines = access(&logs);
    assert_eq!(lines.len(), paths.len(), "{logs:?}");
    for ((line, path), status) in lines.iter().zip(&paths).zip(&statuses) {
        assert_eq!(line["method"], "GET");
        assert_eq!(line["uri"].as_str(), Some(path.as_str()));
        assert_eq!(line["status"].as_u64(), Some(u64::from(*status)));
        assert!(line["bytes"].as_u64().unwrap() > 0);
        assert!(line["duration_us"].as_u64().is_some());
        assert!(line["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    }
    // The PCCS routes' answers carry a request id (32 hex digits); /healthz none.
    assert_eq!(lines[0]["request_id"].as_str().unwrap().len(), 32);
    assert_eq!(lines[3]["request_id"], "-");

    let (statuses, logs) = serve(state, &["--no-access-log"], &paths);
    assert_eq!(statuses, [200, 200, 400, 200]);
    assert!(access(&logs).is_empty(), "{logs:?}");
}
