//! `confcom addon render`'s connection limits: set limits reach the PCCS's and the webhook's
//! command lines and the node daemons' operations endpoints, their memory limits follow the
//! connection caps, and the manifests stay valid (kubernetes-validate, strict).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use addon::certs::{self, CertRequest};
use addon::render::{Object, OpsLimits, RenderOptions, ServerLimits, render, to_yaml};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;

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

/// The memory limit of a container.
fn memory_limit(container: &Container) -> String {
    container
        .resources
        .as_ref()
        .unwrap()
        .limits
        .as_ref()
        .unwrap()["memory"]
        .0
        .clone()
}

/// Validates `objects` with kubernetes-validate (strict).
fn validate(objects: &[Object]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("limits.yaml");
    std::fs::write(&file, to_yaml(objects).unwrap()).unwrap();
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "-k", K8S_VERSION])
        .arg(&file)
        .output()
        .expect("kubernetes-validate must be installed: cargo xtask test provides it");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
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

    validate(&objects);
}

#[test]
fn ops_limits_reach_every_node_daemon_and_size_its_memory() {
    let limits = OpsLimits {
        max_connections: Some(1_024),
        max_pending_per_address: Some(16),
        header_timeout_secs: Some(3),
        idle_timeout_secs: Some(30),
    };
    // Device plugin and DRA driver on separate pools, the quote helper on both.
    let options = |ops_limits: OpsLimits| RenderOptions {
        enable_quote_helper: true,
        dra: true,
        dra_node_selector: [("sgx.example.com/dra".to_owned(), "true".to_owned())].into(),
        ops_limits,
        ..RenderOptions::default()
    };
    let daemons = |objects: &[Object]| -> Vec<(String, Container)> {
        objects
            .iter()
            .filter_map(|o| match o {
                Object::DaemonSet(d) => Some((
                    d.metadata.name.clone().unwrap(),
                    d.spec.template.spec.as_ref().unwrap().containers[0].clone(),
                )),
                _ => None,
            })
            .collect()
    };
    let objects = render(&options(limits.clone())).unwrap();
    let found = daemons(&objects);
    assert_eq!(
        found.len(),
        4,
        "device plugin, DRA driver, quote helper on each pool"
    );
    for (name, container) in &found {
        let args = container.args.as_ref().unwrap();
        assert!(
            args.windows(limits.args().len())
                .any(|w| w == limits.args().as_slice()),
            "{name}: {args:?}"
        );
        // 1,024 connections at 24 KiB (24 MiB) instead of room for the default 4,096 (96 MiB);
        // the device plugin and the DRA driver (32 MiB and 24 MiB) at the 64 MiB floor.
        let want = if name.contains("quote-helper") {
            "184Mi"
        } else {
            "64Mi"
        };
        assert_eq!(memory_limit(container), want, "{name}");
    }
    // Defaults: no flags and the usual limits.
    for (name, container) in daemons(&render(&options(OpsLimits::default())).unwrap()) {
        let args = container.args.as_ref().unwrap();
        assert!(
            !args.iter().any(|a| a.starts_with("--metrics-max")),
            "{name}: {args:?}"
        );
        let want = if name.contains("quote-helper") {
            "256Mi"
        } else {
            "128Mi"
        };
        assert_eq!(memory_limit(&container), want, "{name}");
    }
    validate(&objects);
}
