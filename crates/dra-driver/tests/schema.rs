#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The driver's ResourceSlices against the Kubernetes 1.37 OpenAPI schema
//! (`kubernetes-validate --strict`: unknown fields are errors).

use std::process::Command;

use dra_driver::attest::Attestation;
use dra_driver::devices;
use dra_driver::inventory::EpcDevice;
use dra_driver::slices::{desired_spec, slice_object, validate_slice};
use sgx_types::tcb::TcbStatus;

/// The Kubernetes release the k8s-openapi feature `v1_37` describes.
const K8S_VERSION: &str = "1.37.0";

#[test]
fn slices_pass_strict_schema_validation() {
    let mut numa = devices::simulated(64 << 20).unwrap();
    numa.simulated = false;
    numa.layout = Some(devices::DriverLayout::InTree);
    numa.devices = vec![
        EpcDevice {
            name: "epc-numa0".into(),
            numa_node: Some(0),
            bytes: 32 << 30,
        },
        EpcDevice {
            name: "epc-numa1".into(),
            numa_node: Some(1),
            bytes: (32 << 30) + 4096,
        },
    ];
    let attested = Attestation {
        fmspc: Some([0x00, 0x90, 0x6e, 0xa1, 0, 0]),
        pce_svn: Some(13),
        cpu_svn: Some([14; 16]),
        tcb_status: Some(TcbStatus::OutOfDateConfigurationNeeded),
        tcb_date: Some("2024-11-13T00:00:00Z".into()),
    };
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "numa",
            desired_spec("sgx.confcom-rs.github.io", "worker-1", &numa, &attested, 4),
        ),
        (
            "simulated",
            desired_spec(
                "sgx.example.com",
                "kind-worker",
                &devices::simulated(256 << 20).unwrap(),
                &Attestation::default(),
                0,
            ),
        ),
        (
            "empty",
            desired_spec(
                "sgx.confcom-rs.github.io",
                "no-epc",
                &devices::simulated(8192)
                    .map(|mut i| {
                        i.devices.clear();
                        i
                    })
                    .unwrap(),
                &Attestation::default(),
                0,
            ),
        ),
    ];
    let mut files = Vec::new();
    for (name, spec) in cases {
        let mut slice = slice_object("0d9e2b1c-5f3a-4e8b-9c7d-1a2b3c4d5e6f", spec);
        validate_slice(&slice).unwrap();
        // kubernetes-validate names every object it reports on: give it the name the API server
        // would generate.
        slice.metadata.name = Some(format!(
            "{}x7k2p",
            slice.metadata.generate_name.as_deref().unwrap()
        ));
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&slice).unwrap()).unwrap();
        files.push(path);
    }
    let output = Command::new("kubernetes-validate")
        .args(["--strict", "-k", K8S_VERSION])
        .args(&files)
        .output()
        .expect("kubernetes-validate must be installed: pip install kubernetes-validate==1.37.0");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schema validation failed:\n{stdout}\n{stderr}"
    );
    for file in &files {
        let passed = format!("{} passed for resource", file.display());
        assert!(
            stdout.contains(&passed),
            "{file:?} not validated:\n{stdout}\n{stderr}"
        );
    }
}
