//! A strict model of a CDI spec file, written for these tests from the CDI specification's field
//! list (what containerd's CDI library reads): unknown fields fail to load, as they do there.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    pub cdi_version: String,
    pub kind: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub devices: Vec<Device>,
    #[serde(default)]
    pub container_edits: Option<ContainerEdits>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Device {
    pub name: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub container_edits: ContainerEdits,
}

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerEdits {
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub device_nodes: Vec<DeviceNode>,
    #[serde(default)]
    pub hooks: Vec<serde_json::Value>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub intel_rdt: Option<serde_json::Value>,
    #[serde(default, rename = "additionalGids")]
    pub additional_gids: Vec<u32>,
    #[serde(default)]
    pub net_devices: Vec<serde_json::Value>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceNode {
    pub path: String,
    #[serde(default)]
    pub host_path: Option<String>,
    #[serde(default, rename = "type")]
    pub node_type: Option<String>,
    #[serde(default)]
    pub major: Option<i64>,
    #[serde(default)]
    pub minor: Option<i64>,
    #[serde(default)]
    pub file_mode: Option<u32>,
    #[serde(default)]
    pub permissions: Option<String>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    #[serde(default, rename = "type")]
    pub mount_type: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

const VERSIONS: [&str; 10] = [
    "0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0",
];

fn version_index(v: &str) -> usize {
    VERSIONS
        .iter()
        .position(|known| *known == v)
        .unwrap_or_else(|| panic!("unknown cdiVersion {v}"))
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Load and check a spec as a CDI runtime would: known version, high enough for the fields used,
/// at most the 0.8.0 containerd 2.0.0 reads, valid kind and device names, no empty device edits,
/// absolute paths, permissions within `rwm`.
pub fn check(text: &str) -> Spec {
    let spec: Spec = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let version = version_index(&spec.cdi_version);
    assert!(
        version <= version_index("0.8.0"),
        "too new for containerd 2.0"
    );

    let (vendor, class) = spec.kind.split_once('/').expect("kind is vendor/class");
    let vb = vendor.as_bytes();
    assert!(
        vb[0].is_ascii_alphabetic() && alnum(vb[vb.len() - 1]),
        "vendor {vendor}"
    );
    assert!(
        vb.iter().all(|&b| alnum(b) || b"-_.".contains(&b)),
        "vendor {vendor}"
    );
    let cb = class.as_bytes();
    assert!(
        cb[0].is_ascii_alphabetic() && alnum(cb[cb.len() - 1]),
        "class {class}"
    );
    assert!(
        cb.iter().all(|&b| alnum(b) || b"-_.".contains(&b)),
        "class {class}"
    );

    let mut needed = version_index("0.3.0");
    if class.contains('.') {
        needed = needed.max(version_index("0.6.0"));
    }
    assert!(!spec.devices.is_empty(), "a spec needs a device");
    for device in &spec.devices {
        let nb = device.name.as_bytes();
        assert!(
            !nb.is_empty() && alnum(nb[0]) && alnum(nb[nb.len() - 1]),
            "name {}",
            device.name
        );
        assert!(
            nb.iter().all(|&b| alnum(b) || b"-_.:".contains(&b)),
            "name {}",
            device.name
        );
        if !nb[0].is_ascii_alphabetic() {
            needed = needed.max(version_index("0.5.0"));
        }
        let e = &device.container_edits;
        assert!(
            !(e.env.is_empty()
                && e.device_nodes.is_empty()
                && e.hooks.is_empty()
                && e.mounts.is_empty()),
            "invalid device, empty device edits: {}",
            device.name
        );
        for env in &e.env {
            assert!(env.contains('='), "env {env}");
        }
        for node in &e.device_nodes {
            assert!(node.path.starts_with('/'), "{node:?}");
            if let Some(host) = &node.host_path {
                assert!(host.starts_with('/'));
                needed = needed.max(version_index("0.5.0"));
            }
            if let Some(p) = &node.permissions {
                assert!(p.chars().all(|c| "rwm".contains(c)), "{p}");
            }
        }
        for mount in &e.mounts {
            assert!(mount.host_path.starts_with('/') && mount.container_path.starts_with('/'));
            if mount.mount_type.is_some() {
                needed = needed.max(version_index("0.4.0"));
            }
        }
    }
    assert_eq!(
        version, needed,
        "cdiVersion {} is not the minimum the fields need ({})",
        spec.cdi_version, VERSIONS[needed]
    );
    spec
}
