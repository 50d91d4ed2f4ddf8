//! CDI specs (Container Device Interface): one transient spec per prepared claim, written to the
//! CDI root as `<vendor>-<class>_<claim UID>.json` with kind `<vendor>/<class>`, vendor
//! `k8s.<driver>` and class `claim`; one device per allocation result, named
//! `<claim UID>-<device>[-<share ID>]`.
//!
//! The spec carries only fields every runtime with CDI support reads, and its `cdiVersion` is the
//! lowest version those fields need (see [`minimum_version`]), so containerd 1.7/2.0 (which know
//! versions up to 0.8.0) accept it.

use std::path::{Path, PathBuf};

use device_plugin::platform::DeviceNodes;
use device_plugin::resource::{ResourceKind, SIMULATION_ENV, device_specs};
use serde::{Deserialize, Serialize};

use crate::names;

/// Environment variable naming the quote helper's socket (`1`: the default
/// `/var/run/aesmd/aesm.socket`), as the webhook sets it.
pub const ENV_AESM_ADDR: &str = "SGX_AESM_ADDR";
/// Environment variable holding the EPC bytes allocated to the device (the enclave's budget).
pub const ENV_EPC_BYTES: &str = "SGX_EPC_BYTES";

/// A CDI spec, as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    /// The CDI version (see [`minimum_version`]).
    pub cdi_version: String,
    /// `<vendor>/<class>`.
    pub kind: String,
    /// The devices (at least one).
    pub devices: Vec<Device>,
}

/// One CDI device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Device {
    /// Unqualified device name.
    pub name: String,
    /// What the runtime adds to a container given this device (never empty).
    pub container_edits: ContainerEdits,
}

/// The edits of one device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerEdits {
    /// `KEY=VALUE` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Device nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_nodes: Vec<DeviceNode>,
    /// Mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
}

impl ContainerEdits {
    /// Whether the edits change nothing (such a device is invalid CDI).
    pub fn is_empty(&self) -> bool {
        self.env.is_empty() && self.device_nodes.is_empty() && self.mounts.is_empty()
    }
}

/// A device node: `path` in the container, `host_path` on the host when it differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceNode {
    /// Path in the container.
    pub path: String,
    /// Path on the host (CDI ≥ 0.5.0); absent means the same as `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// cgroup device permissions, a subset of `rwm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
}

/// A mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mount {
    /// Source on the host.
    pub host_path: String,
    /// Target in the container.
    pub container_path: String,
    /// Mount type (CDI ≥ 0.4.0).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub mount_type: Option<String>,
    /// Mount options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A name that breaks CDI's naming rules.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    /// The vendor (`k8s.<driver>`) is not DNS-like.
    #[error(
        "CDI vendor {0:?} must start with a letter, end with a letter or digit and hold only letters, digits, '-', '_' and '.'"
    )]
    InvalidVendor(String),
    /// The class is not a valid CDI class.
    #[error(
        "CDI class {0:?} must start with a letter, end with a letter or digit and hold only letters, digits, '-', '_' and '.'"
    )]
    InvalidClass(String),
    /// The device name is not a valid CDI device name.
    #[error(
        "CDI device name {0:?} must start and end with a letter or digit and hold only letters, digits, '-', '_', '.' and ':'"
    )]
    InvalidDeviceName(String),
}

fn name_ok(name: &str, first: fn(u8) -> bool, inner: fn(u8) -> bool) -> bool {
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&f), Some(&l)) => {
            first(f) && l.is_ascii_alphanumeric() && bytes.iter().all(|&b| inner(b))
        }
        _ => false,
    }
}

/// Check a CDI vendor.
pub fn validate_vendor(vendor: &str) -> Result<(), NameError> {
    if name_ok(
        vendor,
        |b| b.is_ascii_alphabetic(),
        |b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'),
    ) {
        Ok(())
    } else {
        Err(NameError::InvalidVendor(vendor.to_owned()))
    }
}

/// Check a CDI class (dots are allowed from CDI 0.6.0 on; [`minimum_version`] accounts for it).
pub fn validate_class(class: &str) -> Result<(), NameError> {
    if class.len() <= 63
        && name_ok(
            class,
            |b| b.is_ascii_alphabetic(),
            |b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'),
        )
    {
        Ok(())
    } else {
        Err(NameError::InvalidClass(class.to_owned()))
    }
}

/// Check a CDI device name (a leading digit needs CDI 0.5.0; [`minimum_version`] accounts for it).
pub fn validate_device_name(name: &str) -> Result<(), NameError> {
    if name_ok(
        name,
        |b| b.is_ascii_alphanumeric(),
        |b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'),
    ) {
        Ok(())
    } else {
        Err(NameError::InvalidDeviceName(name.to_owned()))
    }
}

/// The CDI vendor of the driver's per-claim devices: `k8s.<driver>`.
pub fn vendor(driver: &str) -> String {
    format!("k8s.{driver}")
}

/// The spec kind: `k8s.<driver>/claim`.
pub fn kind(driver: &str) -> String {
    format!("{}/{}", vendor(driver), names::cdi::CLASS)
}

/// The spec file of a claim: `<cdi root>/k8s.<driver>-claim_<claim UID>.json`.
pub fn spec_path(cdi_root: &Path, driver: &str, claim_uid: &str) -> PathBuf {
    cdi_root.join(format!(
        "{}-{}_{claim_uid}.json",
        vendor(driver),
        names::cdi::CLASS
    ))
}

/// The CDI device name of one allocation result: `<claim UID>-<device>[-<share ID>]`.
pub fn device_name(claim_uid: &str, device: &str, share_id: Option<&str>) -> String {
    match share_id {
        Some(share) => format!("{claim_uid}-{device}-{share}"),
        None => format!("{claim_uid}-{device}"),
    }
}

/// The fully qualified CDI device ID kubelet passes to the runtime: `<kind>=<name>`.
pub fn qualified_id(driver: &str, name: &str) -> String {
    format!("{}={name}", kind(driver))
}

/// The lowest CDI version whose fields cover `spec` (the rules of the CDI spec's version history:
/// mount `type` needs 0.4.0; a device name not starting with a letter, or a device node
/// `hostPath`, needs 0.5.0; a dot in the class needs 0.6.0). Never newer than needed: older
/// runtimes reject versions they do not know.
pub fn minimum_version(spec: &Spec) -> &'static str {
    let class_has_dot = spec
        .kind
        .split_once('/')
        .is_some_and(|(_, class)| class.contains('.'));
    if class_has_dot {
        return "0.6.0";
    }
    let edits = || spec.devices.iter().map(|d| &d.container_edits);
    let v050 = spec.devices.iter().any(|d| {
        !d.name
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphabetic)
    }) || edits().any(|e| e.device_nodes.iter().any(|n| n.host_path.is_some()));
    if v050 {
        return "0.5.0";
    }
    if edits().any(|e| e.mounts.iter().any(|m| m.mount_type.is_some())) {
        return "0.4.0";
    }
    "0.3.0"
}

/// What one device grants, decided from the claim's configuration and the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Wire the container to the node's quote helper.
    pub quote_helper: bool,
    /// Give the provision device node too.
    pub provision: bool,
    /// EPC bytes allocated.
    pub epc_bytes: u64,
}

/// Why a device cannot be granted on this node.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrantError {
    /// No enclave device node exists on the (non-simulated) node.
    #[error(
        "the node has no SGX enclave device node (/dev/sgx_enclave, /dev/sgx/enclave or /dev/isgx)"
    )]
    NoEnclaveNode,
    /// Provisioning was asked for and no provision device node exists.
    #[error(
        "provisioning was requested but the node has no SGX provision device node (/dev/sgx_provision or /dev/sgx/provision)"
    )]
    NoProvisionNode,
}

/// The edits of one device: the enclave device node(s) of the node's layout with the in-tree ↔
/// DCAP compatibility path (as the device plugin grants them), the provision node(s) when asked,
/// the quote-helper wiring when asked (as the webhook adds it: `SGX_AESM_ADDR=1` and a read-only
/// bind mount of `/var/run/aesmd`), and always the allocated EPC bytes. A simulated node has no
/// device nodes; its devices carry `SGX_SIMULATION=1` instead.
pub fn edits(
    nodes: &DeviceNodes,
    simulated: bool,
    grant: Grant,
) -> Result<ContainerEdits, GrantError> {
    let mut edits = ContainerEdits::default();
    if simulated {
        edits.env.push(format!("{SIMULATION_ENV}=1"));
    } else {
        if !nodes.any_enclave() {
            return Err(GrantError::NoEnclaveNode);
        }
        let mut specs = device_specs(ResourceKind::Enclave, nodes);
        if grant.provision {
            if !nodes.any_provision() {
                return Err(GrantError::NoProvisionNode);
            }
            specs.extend(device_specs(ResourceKind::Provision, nodes));
        }
        edits.device_nodes = specs
            .into_iter()
            .map(|s| DeviceNode {
                host_path: (s.host_path != s.container_path).then_some(s.host_path),
                path: s.container_path,
                permissions: Some(s.permissions),
            })
            .collect();
    }
    edits
        .env
        .push(format!("{ENV_EPC_BYTES}={}", grant.epc_bytes));
    if grant.quote_helper {
        edits.env.push(format!("{ENV_AESM_ADDR}=1"));
        edits.mounts.push(Mount {
            host_path: names::paths::AESMD_DIR.to_owned(),
            container_path: names::paths::AESMD_DIR.to_owned(),
            mount_type: Some("bind".to_owned()),
            options: vec!["rbind".to_owned(), "ro".to_owned()],
        });
    }
    Ok(edits)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(names: &[&str], edits: ContainerEdits) -> Spec {
        Spec {
            cdi_version: String::new(),
            kind: kind(names::DEFAULT_DRIVER_NAME),
            devices: names
                .iter()
                .map(|n| Device {
                    name: (*n).to_owned(),
                    container_edits: edits.clone(),
                })
                .collect(),
        }
    }

    fn env_only() -> ContainerEdits {
        ContainerEdits {
            env: vec!["A=1".into()],
            ..Default::default()
        }
    }

    #[test]
    fn version_is_the_lowest_the_fields_need() {
        assert_eq!(minimum_version(&spec(&["abc-epc"], env_only())), "0.3.0");
        // A claim UID may start with a digit: 0.5.0.
        assert_eq!(
            minimum_version(&spec(&["abc-epc", "0bc-epc"], env_only())),
            "0.5.0"
        );
        let mut mount = env_only();
        mount.mounts.push(Mount {
            host_path: "/a".into(),
            container_path: "/a".into(),
            mount_type: Some("bind".into()),
            options: vec![],
        });
        assert_eq!(minimum_version(&spec(&["abc"], mount.clone())), "0.4.0");
        mount.mounts[0].mount_type = None;
        assert_eq!(minimum_version(&spec(&["abc"], mount)), "0.3.0");
        let mut alias = env_only();
        alias.device_nodes.push(DeviceNode {
            path: "/dev/sgx/enclave".into(),
            host_path: Some("/dev/sgx_enclave".into()),
            permissions: None,
        });
        assert_eq!(minimum_version(&spec(&["abc"], alias)), "0.5.0");
        let mut dotted = spec(&["abc"], env_only());
        dotted.kind = "example.com/a.b".into();
        assert_eq!(minimum_version(&dotted), "0.6.0");
    }

    #[test]
    fn names_follow_the_cdi_rules() {
        let vendor = vendor(names::DEFAULT_DRIVER_NAME);
        assert_eq!(vendor, "k8s.sgx.confcom-rs.github.io");
        validate_vendor(&vendor).unwrap();
        validate_class(names::cdi::CLASS).unwrap();
        assert!(validate_vendor("1k8s.io").is_err());
        assert!(validate_vendor("k8s.io-").is_err());
        assert!(validate_class("cl/aim").is_err());
        assert!(validate_class("").is_err());
        let name = device_name(
            "0a3e1c52-7d0b-4c5e-9d7c-111111111111",
            "epc-numa1",
            Some("6f1b6d40-0000-4000-8000-000000000001"),
        );
        validate_device_name(&name).unwrap();
        assert!(validate_device_name("-a").is_err());
        assert!(validate_device_name("a/b").is_err());
        assert!(validate_device_name("a:").is_err());
        assert_eq!(
            qualified_id("d.example.com", "u-epc"),
            "k8s.d.example.com/claim=u-epc"
        );
        assert_eq!(
            spec_path(Path::new("/var/run/cdi"), "d.example.com", "u"),
            PathBuf::from("/var/run/cdi/k8s.d.example.com-claim_u.json")
        );
    }

    const IN_TREE: DeviceNodes = DeviceNodes {
        in_tree_enclave: true,
        in_tree_provision: true,
        dcap_enclave: false,
        dcap_provision: false,
        legacy_enclave: false,
    };

    fn grant(quote_helper: bool, provision: bool) -> Grant {
        Grant {
            quote_helper,
            provision,
            epc_bytes: 8192,
        }
    }

    #[test]
    fn in_tree_layout_gets_both_enclave_paths_and_provision_only_when_asked() {
        let plain = edits(&IN_TREE, false, grant(false, false)).unwrap();
        let paths: Vec<_> = plain
            .device_nodes
            .iter()
            .map(|n| (n.path.as_str(), n.host_path.as_deref()))
            .collect();
        assert_eq!(
            paths,
            [
                ("/dev/sgx_enclave", None),
                ("/dev/sgx/enclave", Some("/dev/sgx_enclave"))
            ]
        );
        assert_eq!(plain.env, ["SGX_EPC_BYTES=8192"]);
        assert!(plain.mounts.is_empty());
        let full = edits(&IN_TREE, false, grant(true, true)).unwrap();
        assert!(
            full.device_nodes
                .iter()
                .any(|n| n.path == "/dev/sgx_provision")
        );
        assert!(full.env.contains(&"SGX_AESM_ADDR=1".to_owned()));
        assert_eq!(full.mounts[0].host_path, "/var/run/aesmd");
        assert_eq!(full.mounts[0].container_path, "/var/run/aesmd");
    }

    #[test]
    fn missing_nodes_are_errors_and_simulation_needs_none() {
        let dcap_enclave_only = DeviceNodes {
            dcap_enclave: true,
            ..DeviceNodes::default()
        };
        assert_eq!(
            edits(&dcap_enclave_only, false, grant(false, true)),
            Err(GrantError::NoProvisionNode)
        );
        assert_eq!(
            edits(&DeviceNodes::default(), false, grant(false, false)),
            Err(GrantError::NoEnclaveNode)
        );
        let sim = edits(&DeviceNodes::default(), true, grant(false, true)).unwrap();
        assert!(sim.device_nodes.is_empty());
        assert_eq!(sim.env, ["SGX_SIMULATION=1", "SGX_EPC_BYTES=8192"]);
        assert!(!sim.is_empty());
    }
}
