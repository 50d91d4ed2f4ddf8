//! The command lines the add-on's manifests give `confcom` are accepted by `confcom` itself, so a
//! renamed or removed flag fails here rather than in a cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use addon::render::{Object, from_yaml};
use k8s_openapi::api::core::v1::PodSpec;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pod_specs(objects: &[Object]) -> Vec<PodSpec> {
    objects
        .iter()
        .filter_map(|o| match o {
            Object::DaemonSet(d) => d.spec.template.spec.clone(),
            Object::Deployment(d) => d.spec.template.spec.clone(),
            _ => None,
        })
        .collect()
}

#[test]
fn every_rendered_confcom_command_line_parses() {
    let mut checked = Vec::new();
    let mut manifests: Vec<(String, String)> = [
        "confcom.yaml",
        "confcom-quote-helper.yaml",
        "confcom-simulate.yaml",
        "confcom-dra.yaml",
        "confcom-dra-simulate.yaml",
    ]
    .iter()
    .map(|m| {
        let text = std::fs::read_to_string(repo().join("deploy/manifests").join(m)).unwrap();
        ((*m).to_owned(), text)
    })
    .collect();
    // The PCCS, on hardware and in a simulated cluster under one CA.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let init = Command::new(env!("CARGO_BIN_EXE_confcom"))
        .args([
            "sim",
            "init",
            "--ca-dir",
            ca.to_str().unwrap(),
            "--state-dir",
        ])
        .arg(dir.path().join("seed"))
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    for (label, extra) in [
        ("render --enable-pccs", vec![]),
        (
            "render --enable-pccs --simulate",
            vec!["--simulate", "--sim-ca", ca.to_str().unwrap()],
        ),
        (
            "render --enable-pccs --simulate --dra",
            vec!["--simulate", "--sim-ca", ca.to_str().unwrap(), "--dra"],
        ),
        (
            "render --enable-pccs --dra --dra-node-selector with every connection limit",
            vec![
                "--dra",
                "--dra-node-selector",
                "sgx.example.com/dra=true",
                "--metrics-max-connections",
                "1024",
                "--metrics-max-pending-per-address",
                "16",
                "--metrics-header-timeout-secs",
                "3",
                "--metrics-idle-timeout-secs",
                "30",
                "--max-connections",
                "20000",
                "--max-pending-per-address",
                "32",
                "--header-timeout-secs",
                "4",
                "--idle-timeout-secs",
                "30",
            ],
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_confcom"))
            .args([
                "addon",
                "render",
                "--enable-sgxquotehelper",
                "--enable-pccs",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        manifests.push((label.to_owned(), String::from_utf8(out.stdout).unwrap()));
    }
    for (manifest, text) in &manifests {
        let objects = from_yaml(text).unwrap();
        for spec in pod_specs(&objects) {
            let containers = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten());
            for c in containers {
                let Some(args) = &c.args else { continue };
                // The confcom image's entry point is the confcom binary.
                assert!(
                    c.command.is_none(),
                    "{manifest}/{}: unexpected command",
                    c.name
                );
                let out = Command::new(env!("CARGO_BIN_EXE_confcom"))
                    .args(args)
                    .arg("--help")
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{manifest}/{}: `confcom {}` is rejected: {}",
                    c.name,
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
                checked.push(args[0].clone());
            }
        }
    }
    for subcommand in ["device-plugin", "quote-helper", "pccs", "dra-driver"] {
        assert!(checked.iter().any(|s| s == subcommand), "{checked:?}");
    }
}
