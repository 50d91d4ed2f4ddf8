//! The DRA checks on fake kubelet, plugin and CDI directories: sockets that answer, stale ones,
//! the driver's own checkpoint (written with the driver's code), damaged files, missing and
//! leftover CDI specs, rolling-update socket names, ResourceSlice summaries, and how a DRA node
//! changes the device-plugin finding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use doctor::dra::{self, DraOptions, SliceLookup, SliceSummary};
use doctor::{Check, Status};
use dra_driver::kubelet::{cdi, checkpoint};

const DRIVER: &str = dra_driver::names::DEFAULT_DRIVER_NAME;
const BOOT_ID: &str = "8c5e4c7e-0d1a-4a54-9a7e-3a2f6c7d9b10";

/// A node's directories under a short temp path (sockets hold at most 107 bytes).
struct Node {
    dir: tempfile::TempDir,
    _listeners: Vec<UnixListener>,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("dra")
            .tempdir_in("/tmp")
            .unwrap();
        for sub in ["reg", "plugins", "cdi", "dp"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("boot_id"), format!("{BOOT_ID}\n")).unwrap();
        Self {
            dir,
            _listeners: Vec::new(),
        }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn options(&self) -> DraOptions {
        DraOptions {
            driver: DRIVER.to_owned(),
            registry_dir: self.path("reg"),
            plugins_dir: self.path("plugins"),
            cdi_root: self.path("cdi"),
            boot_id_path: self.path("boot_id"),
            slices: SliceLookup::NotAsked,
        }
    }

    fn plugin_dir(&self) -> PathBuf {
        let dir = self.path("plugins").join(DRIVER);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Serves (keeps listening on) a socket.
    fn listen(&mut self, path: &Path) {
        self._listeners.push(UnixListener::bind(path).unwrap());
    }

    /// A socket file nothing listens on any more.
    fn stale(&self, path: &Path) {
        drop(UnixListener::bind(path).unwrap());
    }

    /// The driver as it runs: both sockets answer.
    fn running_driver(&mut self) {
        let reg = self.path("reg").join(format!("{DRIVER}-reg.sock"));
        self.listen(&reg);
        let dra = self.plugin_dir().join("dra.sock");
        self.listen(&dra);
    }

    /// Prepared claims as the driver records them, with their CDI specs when `with_spec`.
    fn prepare(&self, claims: &[(&str, &str, &str, &str, bool)]) {
        let mut cp = checkpoint::Checkpoint::default();
        for (uid, namespace, name, boot_id, with_spec) in claims {
            let spec = cdi::spec_path(&self.path("cdi"), DRIVER, uid);
            if *with_spec {
                std::fs::write(
                    &spec,
                    serde_json::json!({
                        "cdiVersion": "0.5.0",
                        "kind": cdi::kind(DRIVER),
                        "devices": [{"name": format!("{uid}-epc"), "containerEdits": {"env": ["SGX_EPC_BYTES=5242880"]}}],
                    })
                    .to_string(),
                )
                .unwrap();
            }
            cp.claims.insert(
                (*uid).to_owned(),
                checkpoint::PreparedClaim {
                    name: (*name).to_owned(),
                    namespace: (*namespace).to_owned(),
                    boot_id: (*boot_id).to_owned(),
                    cdi_spec: spec,
                    devices: vec![checkpoint::PreparedDevice {
                        request: "epc".to_owned(),
                        pool: "node-a".to_owned(),
                        device: "epc0".to_owned(),
                        share_id: Some("0b9f3d2e-1111-4a54-9a7e-3a2f6c7d9b10".to_owned()),
                        cdi_name: format!("{uid}-epc0"),
                        cdi_id: format!("k8s.{DRIVER}/claim={uid}-epc0"),
                        quote_helper: true,
                        provision: false,
                        epc_bytes: 5 << 20,
                    }],
                },
            );
        }
        checkpoint::save(&self.plugin_dir().join("checkpoint.json"), &cp).unwrap();
    }
}

fn by_id(checks: &[Check]) -> BTreeMap<&'static str, &Check> {
    checks.iter().map(|c| (c.id, c)).collect()
}

fn text(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| format!("{:?} {}: {} ({:?})\n", c.status, c.id, c.summary, c.fix))
        .collect()
}

#[test]
fn a_node_without_the_driver_gets_one_skipped_line() {
    let node = Node::new();
    let (checks, findings) = dra::checks(&node.options());
    assert_eq!(checks.len(), 1, "{}", text(&checks));
    assert_eq!(checks[0].id, "dra");
    assert_eq!(checks[0].status, Status::Skip);
    assert!(!findings.present);
}

#[test]
fn a_running_driver_with_prepared_claims_passes_and_names_them() {
    let mut node = Node::new();
    node.running_driver();
    node.prepare(&[
        (
            "4f1c2d3e-0000-4000-8000-000000000001",
            "team-a",
            "job-x-sgx-7k2p",
            BOOT_ID,
            true,
        ),
        (
            "4f1c2d3e-0000-4000-8000-000000000002",
            "team-b",
            "app-sgx-9zq1",
            BOOT_ID,
            true,
        ),
    ]);
    let (checks, findings) = dra::checks(&node.options());
    let c = by_id(&checks);
    let all = text(&checks);
    for id in [
        "dra-registration",
        "dra-socket",
        "dra-checkpoint",
        "dra-cdi",
    ] {
        assert_eq!(c[id].status, Status::Pass, "{all}");
    }
    assert!(!c.contains_key("dra-slices"), "no API lookup asked for");
    assert!(c["dra-registration"].summary.contains("-reg.sock answers"));
    let summary = &c["dra-checkpoint"].summary;
    assert!(summary.contains("2 prepared claims"), "{summary}");
    assert!(summary.contains("team-a/job-x-sgx-7k2p"), "{summary}");
    assert!(summary.contains("team-b/app-sgx-9zq1"), "{summary}");
    assert!(c["dra-cdi"].summary.ends_with(": 2"), "{all}");
    assert!(findings.present);
    assert_eq!(findings.prepared_claims.len(), 2);
    assert!(
        findings
            .prepared_claims
            .iter()
            .all(|p| p.cdi_spec_present && p.this_boot == Some(true))
    );
    assert_eq!(findings.cdi_specs.len(), 2);
}

#[test]
fn stale_sockets_are_named_stale() {
    let node = Node::new();
    node.stale(&node.path("reg").join(format!("{DRIVER}-reg.sock")));
    node.stale(&node.plugin_dir().join("dra.sock"));
    let (checks, _) = dra::checks(&node.options());
    let c = by_id(&checks);
    for id in ["dra-registration", "dra-socket"] {
        assert_eq!(c[id].status, Status::Fail, "{}", text(&checks));
        assert!(
            c[id]
                .summary
                .contains("is a stale socket file: it exists but nothing listens on it"),
            "{}",
            c[id].summary
        );
        assert!(
            c[id]
                .fix
                .as_deref()
                .unwrap()
                .contains("rollout restart ds/sgx-dra-driver")
        );
    }
    // No checkpoint yet is not a failure.
    assert_eq!(c["dra-checkpoint"].status, Status::Pass);
}

#[test]
fn an_absent_socket_and_a_plain_file_are_told_apart() {
    let node = Node::new();
    std::fs::write(node.plugin_dir().join("dra.sock"), b"").unwrap();
    let (checks, _) = dra::checks(&node.options());
    let c = by_id(&checks);
    assert_eq!(c["dra-registration"].status, Status::Fail);
    assert!(c["dra-registration"].summary.contains("does not exist"));
    assert_eq!(c["dra-socket"].status, Status::Fail);
    assert!(c["dra-socket"].summary.contains("is not a socket"));
}

#[test]
fn rolling_update_socket_names_count() {
    let mut node = Node::new();
    let uid = "0f4e6a7b-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
    let reg = node.path("reg").join(format!("{DRIVER}-{uid}-reg.sock"));
    node.listen(&reg);
    let dra = node.plugin_dir().join(format!("dra-{uid}.sock"));
    node.listen(&dra);
    let (checks, _) = dra::checks(&node.options());
    let c = by_id(&checks);
    assert_eq!(
        c["dra-registration"].status,
        Status::Pass,
        "{}",
        text(&checks)
    );
    assert!(c["dra-registration"].summary.contains(uid));
    assert_eq!(c["dra-socket"].status, Status::Pass);
}

#[test]
fn a_damaged_checkpoint_is_a_finding_not_a_crash() {
    let mut node = Node::new();
    node.running_driver();
    let file = node.plugin_dir().join("checkpoint.json");
    for (bytes, expect) in [
        (&b"{\"version\": 1, \"claims\": {\"u\": "[..], "is not JSON"),
        (&b"[1, 2, 3]"[..], "no numeric \"version\""),
        (&b"{\"version\": 1}"[..], "no \"claims\" object"),
        (&[0xff, 0xfe, 0x00][..], "is not JSON"),
    ] {
        std::fs::write(&file, bytes).unwrap();
        let (checks, findings) = dra::checks(&node.options());
        let c = by_id(&checks)["dra-checkpoint"];
        assert_eq!(c.status, Status::Fail, "{}", text(&checks));
        assert!(c.summary.contains(expect), "{}", c.summary);
        assert!(c.fix.as_deref().unwrap().contains("checkpoint.json.bad"));
        assert!(findings.prepared_claims.is_empty());
    }
    // A newer format is read as far as it goes, and said so.
    std::fs::write(
        &file,
        br#"{"version": 7, "claims": {"u1": {"namespace": "ns", "name": "c", "extra": {}}}}"#,
    )
    .unwrap();
    let (checks, findings) = dra::checks(&node.options());
    let c = by_id(&checks)["dra-checkpoint"];
    assert_eq!(c.status, Status::Warn);
    assert!(c.summary.contains("version 7"));
    assert_eq!(findings.prepared_claims[0].display_name(), "ns/c");
}

#[test]
fn a_missing_cdi_spec_of_a_claim_prepared_in_this_boot_fails() {
    let mut node = Node::new();
    node.running_driver();
    node.prepare(&[
        (
            "aaaaaaaa-0000-4000-8000-000000000001",
            "ns",
            "has-spec",
            BOOT_ID,
            true,
        ),
        (
            "aaaaaaaa-0000-4000-8000-000000000002",
            "ns",
            "lost-spec",
            BOOT_ID,
            false,
        ),
    ]);
    let (checks, _) = dra::checks(&node.options());
    let c = by_id(&checks)["dra-cdi"];
    assert_eq!(c.status, Status::Fail, "{}", text(&checks));
    assert!(c.summary.contains("ns/lost-spec"));
    assert!(!c.summary.contains("ns/has-spec"));
    assert!(
        c.fix
            .as_deref()
            .unwrap()
            .contains("unresolvable CDI devices")
    );
}

#[test]
fn claims_from_before_a_reboot_are_noted_not_failed() {
    let mut node = Node::new();
    node.running_driver();
    node.prepare(&[(
        "bbbbbbbb-0000-4000-8000-000000000001",
        "ns",
        "old",
        "00000000-0000-4000-8000-00000000dead",
        false,
    )]);
    let (checks, findings) = dra::checks(&node.options());
    let c = by_id(&checks);
    assert_eq!(
        c["dra-checkpoint"].status,
        Status::Warn,
        "{}",
        text(&checks)
    );
    assert!(
        c["dra-checkpoint"]
            .summary
            .contains("before the last reboot: ns/old")
    );
    assert_eq!(c["dra-cdi"].status, Status::Pass, "{}", text(&checks));
    assert_eq!(findings.prepared_claims[0].this_boot, Some(false));
}

#[test]
fn leftover_and_damaged_cdi_specs_are_reported() {
    let mut node = Node::new();
    node.running_driver();
    node.prepare(&[(
        "cccccccc-0000-4000-8000-000000000001",
        "ns",
        "c",
        BOOT_ID,
        true,
    )]);
    let leftover = cdi::spec_path(
        &node.path("cdi"),
        DRIVER,
        "dddddddd-0000-4000-8000-000000000009",
    );
    std::fs::copy(
        cdi::spec_path(
            &node.path("cdi"),
            DRIVER,
            "cccccccc-0000-4000-8000-000000000001",
        ),
        &leftover,
    )
    .unwrap();
    // Another driver's spec is none of ours.
    std::fs::write(
        node.path("cdi").join("k8s.gpu.example.com-claim_x.json"),
        b"{}",
    )
    .unwrap();
    let (checks, findings) = dra::checks(&node.options());
    let c = by_id(&checks)["dra-cdi"];
    assert_eq!(c.status, Status::Warn, "{}", text(&checks));
    assert!(c.summary.contains("1 not in the checkpoint"));
    assert!(c.summary.contains("dddddddd-0000-4000-8000-000000000009"));
    assert_eq!(findings.cdi_specs.len(), 2);

    std::fs::write(&leftover, b"cdiVersion: 0.5.0\n").unwrap();
    let (checks, _) = dra::checks(&node.options());
    let c = by_id(&checks)["dra-cdi"];
    assert_eq!(c.status, Status::Fail);
    assert!(c.summary.contains("not a CDI spec"));
}

fn slice(name: &str, pool: &str, generation: i64, count: i64, devices: usize) -> SliceSummary {
    SliceSummary {
        name: name.to_owned(),
        pool: pool.to_owned(),
        generation,
        slice_count: count,
        devices,
    }
}

#[test]
fn resource_slices_of_the_node_are_summarised_with_their_generation() {
    let c = dra::slices_check(DRIVER, "node-a", &[]);
    assert_eq!(c.status, Status::Fail);
    assert!(c.summary.contains("none of driver"));
    let c = dra::slices_check(DRIVER, "node-a", &[slice("00000-x", "node-a", 3, 1, 1)]);
    assert_eq!(c.status, Status::Pass);
    assert!(
        c.summary
            .contains("pool node-a generation 3, 1 slice, 1 device"),
        "{}",
        c.summary
    );
    // An older generation still around, or a count the pool's slices disagree with.
    let c = dra::slices_check(
        DRIVER,
        "node-a",
        &[slice("a", "node-a", 3, 1, 1), slice("b", "node-a", 2, 1, 1)],
    );
    assert_eq!(c.status, Status::Warn);
    assert!(c.summary.contains("generation 3"));
    let c = dra::slices_check(DRIVER, "node-a", &[slice("a", "node-a", 4, 2, 2)]);
    assert_eq!(c.status, Status::Warn);

    // Through the options, as `--api` passes them.
    let mut node = Node::new();
    node.running_driver();
    let mut options = node.options();
    options.slices = SliceLookup::Found {
        node: "node-a".to_owned(),
        slices: vec![slice("00000-x", "node-a", 5, 1, 1)],
    };
    let (checks, findings) = dra::checks(&options);
    assert_eq!(by_id(&checks)["dra-slices"].status, Status::Pass);
    assert_eq!(findings.slices.as_ref().unwrap()[0].generation, 5);
    options.slices = SliceLookup::Failed("forbidden".to_owned());
    let (checks, _) = dra::checks(&options);
    assert_eq!(by_id(&checks)["dra-slices"].status, Status::Warn);
}

fn diagnose(node: &Node) -> doctor::Report {
    doctor::diagnose(&doctor::Options {
        dev_root: node.path("dev"),
        sysfs_root: node.path("sys"),
        socket: node.path("aesm.socket"),
        plugin_dir: node.path("dp"),
        cpuid: None,
        dra: node.options(),
        ..doctor::Options::default()
    })
}

#[test]
fn a_dra_node_needs_no_device_plugin_but_must_not_have_both() {
    let mut node = Node::new();
    let report = diagnose(&node);
    assert_eq!(report.check("device-plugin").unwrap().status, Status::Fail);
    assert_eq!(report.check("dra").unwrap().status, Status::Skip);

    node.running_driver();
    let report = diagnose(&node);
    let dp = report.check("device-plugin").unwrap();
    assert_eq!(dp.status, Status::Skip, "{}", report.render_text());
    assert!(dp.summary.contains("the DRA driver serves this node"));
    assert!(report.check("device-plugin-and-dra").is_none());
    let json: serde_json::Value = serde_json::from_str(&report.render_json()).unwrap();
    assert_eq!(json["dra"]["present"], true);
    assert!(
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "dra-socket")
    );

    let dp_socket = node
        .path("dp")
        .join(device_plugin::resource::socket_file_name(
            device_plugin::EPC_RESOURCE,
        ));
    node.listen(&dp_socket);
    let report = diagnose(&node);
    let both = report.check("device-plugin-and-dra").unwrap();
    assert_eq!(both.status, Status::Fail, "{}", report.render_text());
    assert!(both.fix.as_deref().unwrap().contains("--dra-node-selector"));
}

#[test]
fn leftovers_of_the_dra_driver_do_not_conflict_with_the_device_plugin() {
    let mut node = Node::new();
    let dp_socket = node
        .path("dp")
        .join(device_plugin::resource::socket_file_name(
            device_plugin::EPC_RESOURCE,
        ));
    node.listen(&dp_socket);
    node.listen(&node.path("dp").join("kubelet.sock"));

    // The driver's directory, left by an uninstall (or made by `DirectoryOrCreate`).
    std::fs::create_dir_all(node.plugin_dir()).unwrap();
    let report = diagnose(&node);
    assert!(
        report.check("device-plugin-and-dra").is_none(),
        "{}",
        report.render_text()
    );
    assert_eq!(report.check("device-plugin").unwrap().status, Status::Pass);
    assert_eq!(report.check("dra").unwrap().status, Status::Skip);
    assert!(report.check("dra-socket").is_none());
    let json: serde_json::Value = serde_json::from_str(&report.render_json()).unwrap();
    assert_eq!(json["dra"]["present"], true);
    assert_eq!(json["dra"]["serving"], false);

    // Stale socket files in both places: nothing answers, still no driver.
    node.stale(&node.plugin_dir().join("dra.sock"));
    node.stale(&node.path("reg").join(format!("{DRIVER}-reg.sock")));
    let (_, findings) = dra::checks(&node.options());
    assert!(findings.present);
    assert!(!findings.serving);
    let report = diagnose(&node);
    assert!(
        report.check("device-plugin-and-dra").is_none(),
        "{}",
        report.render_text()
    );
    assert_eq!(report.check("device-plugin").unwrap().status, Status::Pass);
    assert_eq!(report.check("dra").unwrap().status, Status::Skip);

    // A driver that answers on either socket serves the node: the conflict again.
    std::fs::remove_file(node.plugin_dir().join("dra.sock")).unwrap();
    node.listen(&node.plugin_dir().join("dra.sock"));
    assert!(dra::checks(&node.options()).1.serving);
    let report = diagnose(&node);
    assert_eq!(
        report.check("device-plugin-and-dra").unwrap().status,
        Status::Fail
    );
    assert!(report.check("dra-socket").is_some());
}
