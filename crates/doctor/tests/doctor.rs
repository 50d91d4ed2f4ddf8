//! `doctor` on the host running the tests (judged against its `/proc/cpuinfo` and `/dev`), and on fake `/dev` and `/sys` roots with a simulated quote
//! helper served in process on a temp socket and device-plugin sockets in a temp plugin dir.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{Helper, fake_node, options, short_tempdir};
use doctor::{Backend, Options, Status, Verdict, diagnose};
use sgx_sim::{CollateralOptions, InitOptions, SimPlatform};

fn status(report: &doctor::Report, id: &str) -> Status {
    report
        .check(id)
        .unwrap_or_else(|| panic!("no {id} check in\n{}", report.render_text()))
        .status
}

#[test]
fn the_host_running_the_tests_is_judged_by_its_cpu_and_devices() {
    let dir = short_tempdir();
    let report = diagnose(&Options {
        socket: dir.path().join("aesm.socket"),
        plugin_dir: dir.path().to_owned(),
        ..Options::default()
    });
    let text = report.render_text();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_sgx = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "sgx"));
    let devices = ["/dev/sgx_enclave", "/dev/sgx/enclave", "/dev/isgx"]
        .iter()
        .any(|p| Path::new(p).exists());
    if cpu_sgx || devices {
        // An SGX machine: the CPU line must say so; no helper runs here, so not ready.
        assert_eq!(status(&report, "cpu") == Status::Pass, cpu_sgx, "{text}");
        assert_eq!(report.verdict, Verdict::SgxNotReady, "{text}");
    } else {
        assert_eq!(status(&report, "cpu"), Status::Fail, "{text}");
        assert!(text.contains("CPU: no SGX"), "{text}");
        assert_eq!(status(&report, "devices"), Status::Fail, "{text}");
        assert_eq!(status(&report, "epc"), Status::Fail, "{text}");
        assert_eq!(report.verdict, Verdict::NotSgx, "{text}");
        assert!(text.ends_with("verdict: not an SGX node\n"), "{text}");
    }
    assert_eq!(status(&report, "aesm-socket"), Status::Fail, "{text}");
    assert!(!report.ok);
    assert!(!report.verdict.is_ok());
    // Every failure carries its fix.
    for c in report.checks.iter().filter(|c| c.status == Status::Fail) {
        assert!(c.fix.as_deref().is_some_and(|f| !f.is_empty()), "{c:?}");
    }
}

#[test]
fn a_fake_node_with_the_sim_helper_is_a_working_simulated_node() {
    let dir = short_tempdir();
    let node = fake_node(dir.path());
    let helper = Helper::start(dir.path());
    let report = diagnose(&options(&node, &helper.socket));
    let text = report.render_text();

    assert_eq!(report.verdict, Verdict::SimulatedWorking, "{text}");
    assert!(report.ok);
    assert!(
        text.ends_with("verdict: simulated node: working\n"),
        "{text}"
    );
    assert_eq!(report.backend, Some(Backend::Simulated));
    for id in [
        "devices",
        "provision",
        "epc",
        "aesm-socket",
        "backend",
        "quote",
        "device-plugin",
    ] {
        assert_eq!(status(&report, id), Status::Pass, "{id}\n{text}");
    }
    assert!(text.contains("in-tree driver"), "{text}");
    assert!(text.contains("attestation key id, mode 777)"), "{text}");
    assert!(
        text.contains("EPC from sysfs: 64 MiB (node0 64 MiB)"),
        "{text}"
    );
    assert!(text.contains("scheduling-only"), "{text}");
    assert_eq!(status(&report, "epc-limits"), Status::Warn);
    assert!(
        text.contains("kubelet's checkpoint lists kubernetes.azure.com/sgx_epc_mem_in_MiB"),
        "{text}"
    );
    let size = helper.platform.quote_size().unwrap();
    assert!(
        text.contains(&format!("quote: obtained ({size} bytes, v3")),
        "{text}"
    );
    assert_eq!(status(&report, "verify"), Status::Skip, "{text}");

    let json: serde_json::Value = serde_json::from_str(&report.render_json()).unwrap();
    assert_eq!(json["verdict"], "simulated_working");
    assert_eq!(json["verdict_text"], "simulated node: working");
    assert_eq!(json["ok"], true);
    assert!(json["checks"].as_array().unwrap().len() >= 10);
}

#[test]
fn with_collateral_the_simulated_quote_is_verified() {
    let dir = short_tempdir();
    let node = fake_node(dir.path());
    let helper = Helper::start(dir.path());
    let collateral = dir.path().join("collateral");
    helper
        .platform
        .collateral(&CollateralOptions::default())
        .unwrap()
        .write_to(&collateral)
        .unwrap();
    let report = diagnose(&Options {
        collateral: Some(collateral.clone()),
        ..options(&node, &helper.socket)
    });
    let text = report.render_text();
    assert_eq!(status(&report, "verify"), Status::Pass, "{text}");
    assert!(text.contains("verification: UpToDate"), "{text}");
    assert_eq!(report.verdict, Verdict::SimulatedWorking, "{text}");

    // Collateral of another simulated platform: the quote does not verify, so not working.
    let other =
        SimPlatform::open_or_init(&dir.path().join("other"), &InitOptions::default()).unwrap();
    let foreign = dir.path().join("foreign");
    other
        .collateral(&CollateralOptions::default())
        .unwrap()
        .write_to(&foreign)
        .unwrap();
    let report = diagnose(&Options {
        collateral: Some(foreign),
        ..options(&node, &helper.socket)
    });
    let text = report.render_text();
    assert_eq!(status(&report, "verify"), Status::Fail, "{text}");
    assert_eq!(report.verdict, Verdict::SimulatedNotWorking, "{text}");
    assert!(!report.ok);
}

#[test]
fn a_stopped_helper_and_missing_plugin_are_reported_with_fixes() {
    let dir = short_tempdir();
    let node = fake_node(dir.path());
    let mut helper = Helper::start(dir.path());
    helper.stop();
    let empty_plugins = dir.path().join("no-plugins");
    std::fs::create_dir_all(&empty_plugins).unwrap();
    let report = diagnose(&Options {
        plugin_dir: empty_plugins,
        ..options(&node, &helper.socket)
    });
    let text = report.render_text();
    assert_eq!(status(&report, "aesm-socket"), Status::Fail, "{text}");
    assert!(text.contains("does not exist"), "{text}");
    assert!(text.contains("fix: start the quote helper"), "{text}");
    assert_eq!(status(&report, "device-plugin"), Status::Fail, "{text}");
    assert!(text.contains("confcom device-plugin"), "{text}");
    // Device nodes exist (fake), the CPU has no SGX: hardware, not ready.
    assert_eq!(report.verdict, Verdict::SgxNotReady, "{text}");
    assert!(!report.ok);
}

#[test]
fn a_stale_socket_file_is_named_as_such() {
    let dir = short_tempdir();
    let node = fake_node(dir.path());
    let socket = dir.path().join("aesm.socket");
    // A helper that died without removing its socket: the file is there, nothing listens.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let report = diagnose(&options(&node, &socket));
    let text = report.render_text();
    assert_eq!(status(&report, "aesm-socket"), Status::Fail, "{text}");
    assert!(text.contains("is a stale socket file"), "{text}");
    assert!(text.contains("nothing listens on it"), "{text}");
    assert!(text.contains("fix: start the quote helper"), "{text}");

    // Something that is not a socket is named too.
    std::fs::remove_file(&socket).unwrap();
    std::fs::write(&socket, b"").unwrap();
    let text = diagnose(&options(&node, &socket)).render_text();
    assert!(text.contains("is not a socket"), "{text}");
}

#[test]
fn the_kernel_epc_controller_is_recognised() {
    let dir = short_tempdir();
    let node = fake_node(dir.path());
    std::fs::write(
        node.sys.join("fs/cgroup/misc.capacity"),
        "sgx_epc 67108864\n",
    )
    .unwrap();
    let report = diagnose(&options(&node, &dir.path().join("none.socket")));
    let text = report.render_text();
    assert_eq!(status(&report, "epc-limits"), Status::Pass, "{text}");
    assert!(text.contains("enforced by the kernel"), "{text}");
    assert!(text.contains("sgx_epc capacity 67108864"), "{text}");
}

#[test]
fn a_socket_other_uids_cannot_open_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = short_tempdir();
    let node = fake_node(dir.path());
    let helper = Helper::start(dir.path());
    std::fs::set_permissions(&helper.socket, std::fs::Permissions::from_mode(0o700)).unwrap();
    let report = diagnose(&options(&node, &helper.socket));
    let text = report.render_text();
    let check = report.check("aesm-socket").unwrap();
    assert_eq!(check.status, Status::Warn, "{text}");
    assert!(check.summary.contains("mode 700"), "{text}");
    assert!(check.fix.as_deref().unwrap().contains("777"), "{text}");
    assert_eq!(report.verdict, Verdict::SimulatedWorking, "{text}");
}
