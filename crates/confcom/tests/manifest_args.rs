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
    for manifest in [
        "confcom.yaml",
        "confcom-quote-helper.yaml",
        "confcom-simulate.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join("deploy/manifests").join(manifest)).unwrap();
        let objects = from_yaml(&text).unwrap();
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
    for subcommand in ["device-plugin", "quote-helper"] {
        assert!(checked.iter().any(|s| s == subcommand), "{checked:?}");
    }
}
