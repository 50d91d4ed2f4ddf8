//! `confcom addon render`'s connection limits: set limits reach the PCCS's and the webhook's
//! command lines, their memory limits grow with the connection cap, and the manifests stay valid
//! (kubernetes-validate, strict).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use addon::certs::{self, CertRequest};
use addon::render::{Object, RenderOptions, ServerLimits, render, to_yaml};
use k8s_openapi::api::apps::v1::Deployment;

const K8S_VERSION: &str = "1.37.0";

fn options(server_limits: ServerLimits) -> RenderOptions {
    let dir = tempfile::tempdir().unwrap();
    let req = CertRequest {
        namespace: "kube-system".to_owned(),
        ..CertRequest::default()
    };
    certs::ensure_dir(dir.path(), &req, time::OffsetDateTime::now_utc(), false).unwrap();
    RenderOptions {
        enable_pccs: true,
        webhook: Some(certs::load_dir(dir.path()).unwrap()),
        server_limits,
        ..RenderOptions::default()
    }
}

/// (args, memory limit) of each Deployment's first container, by Deployment name.
fn deployments(objects: &[Object]) -> Vec<(String, Vec<String>, String)> {
    objects
        .iter()
        .filter_map(|o| match o {
            Object::Deployment(d) => Some(d),
            _ => None,
        })
        .map(|d: &Deployment| {
            let container = &d.spec.template.spec.as_ref().unwrap().containers[0];
            let memory = container
                .resources
                .as_ref()
                .unwrap()
                .limits
                .as_ref()
                .unwrap()["memory"]
                .0
                .clone();
            (
                d.metadata.name.clone().unwrap(),
                container.args.clone().unwrap(),
                memory,
            )
        })
        .collect()
}

#[test]
fn set_limits_reach_the_pccs_and_the_webhook_and_size_their_memory() {
    let limits = ServerLimits {
        max_connections: Some(20_000),
        max_pending_per_address: Some(32),
        handshake_timeout_secs: Some(3),
        header_timeout_secs: Some(4),
        idle_timeout_secs: Some(30),
    };
    let objects = render(&options(limits.clone())).unwrap();
    let found = deployments(&objects);
    assert_eq!(found.len(), 2, "{found:?}");
    for (name, args, memory) in &found {
        for pair in limits.args().chunks(2) {
            let at = args.iter().position(|a| *a == pair[0]);
            let at = at.unwrap_or_else(|| panic!("{name}: no {} in {args:?}", pair[0]));
            assert_eq!(args[at + 1], pair[1], "{name}");
        }
        // 20,000 connections at 24 KiB: 469 MiB above the base (PCCS 128 MiB, webhook 64 MiB).
        let want = if name.contains("pccs") {
            "597Mi"
        } else {
            "533Mi"
        };
        assert_eq!(memory, want, "{name}");
    }

    // Defaults: no flags, and memory limits with room for the default cap.
    let defaults = deployments(&render(&options(ServerLimits::default())).unwrap());
    for (name, args, memory) in &defaults {
        assert!(
            !args.iter().any(|a| a.starts_with("--max-")),
            "{name}: {args:?}"
        );
        let want = if name.contains("pccs") {
            "368Mi"
        } else {
            "304Mi"
        };
        assert_eq!(memory, want, "{name}");
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("limits.yaml");
    std::fs::write(&file, to_yaml(&objects).unwrap()).unwrap();
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "-k", K8S_VERSION])
        .arg(&file)
        .output()
        .expect("kubernetes-validate must be installed: pip install kubernetes-validate==1.37.0");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
