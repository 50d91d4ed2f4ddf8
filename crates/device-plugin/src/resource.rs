//! The three resources, their device sets, and what Allocate grants.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::listing::{self, DeviceSet, LIST_AND_WATCH_BUDGET, Listing};
use crate::platform::DeviceNodes;
use crate::proto::{ContainerAllocateResponse, DeviceSpec, ListAndWatchResponse};
use crate::{Error, ids};

/// Default name of the EPC resource (one device per MiB).
pub const EPC_RESOURCE: &str = "kubernetes.azure.com/sgx_epc_mem_in_MiB";
/// Default name of the enclave slot resource.
pub const ENCLAVE_RESOURCE: &str = "sgx.intel.com/enclave";
/// Default name of the provision slot resource.
pub const PROVISION_RESOURCE: &str = "sgx.intel.com/provision";
/// Environment variable set in containers in simulate mode.
pub const SIMULATION_ENV: &str = "SGX_SIMULATION";

/// What a resource stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// EPC memory, one device per MiB; grants the enclave device node.
    Epc,
    /// Shareable enclave slots; grant the enclave device node.
    Enclave,
    /// Shareable provision slots; grant the provision device node.
    Provision,
}

impl ResourceKind {
    /// Short lowercase name (`epc`, `enclave`, `provision`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Epc => "epc",
            Self::Enclave => "enclave",
            Self::Provision => "provision",
        }
    }

    /// The default kubelet resource name.
    pub fn default_name(self) -> &'static str {
        match self {
            Self::Epc => EPC_RESOURCE,
            Self::Enclave => ENCLAVE_RESOURCE,
            Self::Provision => PROVISION_RESOURCE,
        }
    }

    /// Whether the device nodes this resource grants are present.
    pub fn nodes_present(self, nodes: &DeviceNodes) -> bool {
        match self {
            Self::Epc | Self::Enclave => nodes.any_enclave(),
            Self::Provision => nodes.any_provision(),
        }
    }
}

/// Check a resource name as kubelet does (an extended resource name: `domain/name`, domain not
/// `kubernetes.io`, name a qualified-name part).
pub fn validate_resource_name(name: &str) -> Result<(), Error> {
    let invalid = |reason: &'static str| {
        Err(Error::InvalidResourceName {
            name: name.to_owned(),
            reason,
        })
    };
    let Some((domain, short)) = name.split_once('/') else {
        return invalid("it needs a domain prefix, e.g. example.com/name");
    };
    if domain.is_empty() || domain.len() > 253 {
        return invalid("the domain must be 1 to 253 characters");
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !domain.split('.').all(label_ok) {
        return invalid("the domain must be a lowercase DNS subdomain");
    }
    if name.contains("kubernetes.io/") || domain == "kubernetes.io" {
        return invalid("the kubernetes.io domain is reserved for native resources");
    }
    if short.is_empty() || short.len() > 63 {
        return invalid("the name after the domain must be 1 to 63 characters");
    }
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    if !short
        .bytes()
        .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'))
        || !short.bytes().next().is_some_and(alnum)
        || !short.bytes().last().is_some_and(alnum)
    {
        return invalid(
            "the name after the domain must be alphanumeric with '-', '_' or '.' inside",
        );
    }
    // kubelet also rejects names whose quota form `requests.<name>` is not a qualified name, which
    // only adds the 253-character limit on the domain already checked.
    Ok(())
}

/// The socket file name of a resource: `confcom-<name after the domain>.sock`.
pub fn socket_file_name(resource_name: &str) -> String {
    let short = resource_name.rsplit('/').next().unwrap_or(resource_name);
    let safe: String = short
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("confcom-{safe}.sock")
}

/// Why an Allocate request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocateError {
    /// The request had no container requests.
    #[error("the request names no container")]
    NoContainers,
    /// A container request named no device.
    #[error("container request {container} names no device")]
    NoDevices {
        /// Index of the container request.
        container: usize,
    },
    /// An id that is not one of ours.
    #[error("unknown device id {id:?} for {resource}")]
    UnknownDevice {
        /// The resource.
        resource: String,
        /// The id (at most 64 characters of it).
        id: String,
    },
    /// The same id twice in one container request.
    #[error("device id {id:?} appears twice in container request {container}")]
    DuplicateDevice {
        /// The id.
        id: String,
        /// Index of the container request.
        container: usize,
    },
    /// An id of an unhealthy device.
    #[error("device {id:?} of {resource} is unhealthy: its SGX device node is missing")]
    UnhealthyDevice {
        /// The resource.
        resource: String,
        /// The id.
        id: String,
    },
}

#[derive(Debug)]
struct Inner {
    /// Devices advertised (after the cap).
    count: u64,
    healthy: bool,
    ever_healthy: bool,
    numa: Vec<(i64, u64)>,
    listing_len: usize,
    omitted: u64,
}

/// One resource served by the plugin: its name, its current device set and the ListAndWatch
/// message for it. Shared by the gRPC service, the health watch and the registration loop.
#[derive(Debug)]
pub struct Resource {
    kind: ResourceKind,
    name: String,
    simulate: bool,
    inner: Mutex<Inner>,
    listing: watch::Sender<Arc<ListAndWatchResponse>>,
}

/// The outcome of [`Resource::update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advertised {
    /// Whether the message changed (and was sent to the watchers).
    pub changed: bool,
    /// Devices listed healthy.
    pub healthy: u64,
    /// Devices listed unhealthy.
    pub unhealthy: u64,
    /// Unhealthy devices left out to stay within the budget.
    pub omitted: u64,
    /// Encoded size of the message.
    pub encoded_len: usize,
}

impl Resource {
    /// A resource with no devices yet.
    pub fn new(kind: ResourceKind, name: impl Into<String>, simulate: bool) -> Self {
        let (listing, _) = watch::channel(Arc::new(ListAndWatchResponse::default()));
        Self {
            kind,
            name: name.into(),
            simulate,
            inner: Mutex::new(Inner {
                count: 0,
                healthy: false,
                ever_healthy: false,
                numa: Vec::new(),
                listing_len: 0,
                omitted: 0,
            }),
            listing,
        }
    }

    /// What it stands for.
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    /// The kubelet resource name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it runs in simulate mode.
    pub fn simulate(&self) -> bool {
        self.simulate
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked while holding it; the data (plain
        // numbers) is still consistent, so keep serving.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Subscribe to the ListAndWatch messages (the current one is marked unseen).
    pub fn subscribe(&self) -> watch::Receiver<Arc<ListAndWatchResponse>> {
        let mut rx = self.listing.subscribe();
        rx.mark_changed();
        rx
    }

    /// Set the device set: `count` devices (at most [`listing::max_devices`]), all healthy or all
    /// not, `numa` blocks when known. A resource that was never healthy advertises no devices while
    /// unhealthy; once it was, it lists its devices `Unhealthy` (within the budget). Sends a new
    /// message to the watchers only when it differs from the last one.
    pub fn update(&self, count: u64, healthy: bool, numa: Vec<(i64, u64)>) -> Advertised {
        let count = count.min(listing::max_devices(LIST_AND_WATCH_BUDGET));
        let mut inner = self.lock();
        let ever_healthy = inner.ever_healthy || (healthy && count > 0);
        let same = inner.count == count
            && inner.healthy == healthy
            && inner.numa == numa
            && inner.ever_healthy == ever_healthy;
        let advertised_count = if healthy || ever_healthy { count } else { 0 };
        let set = DeviceSet {
            count: advertised_count,
            unhealthy: if healthy {
                Vec::new()
            } else {
                std::iter::once(0..advertised_count).collect()
            },
            numa: numa.clone(),
        };
        if same {
            let current = self.listing.borrow();
            let unhealthy = current
                .devices
                .iter()
                .filter(|d| d.health != listing::HEALTHY)
                .count() as u64;
            return Advertised {
                changed: false,
                healthy: current.devices.len() as u64 - unhealthy,
                unhealthy,
                omitted: inner.omitted,
                encoded_len: inner.listing_len,
            };
        }
        let built = listing::build(&set, LIST_AND_WATCH_BUDGET).unwrap_or_else(|err| {
            // Unreachable: the count was capped to what fits above. Advertise nothing rather than
            // a message kubelet would reject.
            tracing::error!(resource = %self.name, error = %err, "ListAndWatch message does not fit");
            Listing {
                response: ListAndWatchResponse::default(),
                encoded_len: 0,
                variant: listing::Variant { unhealthy_listed: false, topology: false },
                healthy: 0,
                unhealthy_listed: 0,
                omitted: set.count,
            }
        });
        *inner = Inner {
            count,
            healthy,
            ever_healthy,
            numa,
            listing_len: built.encoded_len,
            omitted: built.omitted,
        };
        let advertised = Advertised {
            changed: true,
            healthy: built.healthy,
            unhealthy: built.unhealthy_listed,
            omitted: built.omitted,
            encoded_len: built.encoded_len,
        };
        self.listing.send_replace(Arc::new(built.response));
        advertised
    }

    /// Check the ids of one container request against the current device set.
    pub fn check_ids(
        &self,
        container: usize,
        ids_requested: &[String],
    ) -> Result<(), AllocateError> {
        if ids_requested.is_empty() {
            return Err(AllocateError::NoDevices { container });
        }
        let inner = self.lock();
        let advertised = if inner.healthy || inner.ever_healthy {
            inner.count
        } else {
            0
        };
        // One bit per advertised device (at most ~32 KiB at the cap): cheaper than hashing 65 536 ids.
        let mut seen = vec![0u64; usize::try_from(advertised.div_ceil(64)).unwrap_or(0)];
        for id in ids_requested {
            let shown = || id.chars().take(64).collect::<String>();
            let index = ids::decode(id).filter(|&i| i < advertised).ok_or_else(|| {
                AllocateError::UnknownDevice {
                    resource: self.name.clone(),
                    id: shown(),
                }
            })?;
            // `index < advertised`, so the word exists.
            let (word, bit) = ((index / 64) as usize, 1u64 << (index % 64));
            let Some(slot) = seen.get_mut(word) else {
                return Err(AllocateError::UnknownDevice {
                    resource: self.name.clone(),
                    id: shown(),
                });
            };
            if *slot & bit != 0 {
                return Err(AllocateError::DuplicateDevice {
                    id: shown(),
                    container,
                });
            }
            *slot |= bit;
            if !inner.healthy {
                return Err(AllocateError::UnhealthyDevice {
                    resource: self.name.clone(),
                    id: shown(),
                });
            }
        }
        Ok(())
    }

    /// The response for one container, given the device nodes present now.
    pub fn container_response(&self, nodes: &DeviceNodes) -> ContainerAllocateResponse {
        let mut response = ContainerAllocateResponse::default();
        if self.simulate {
            response.envs = BTreeMap::from([(SIMULATION_ENV.to_owned(), "1".to_owned())]);
            return response;
        }
        response.devices = device_specs(self.kind, nodes);
        response
    }
}

fn spec(host: &str, container: &str) -> DeviceSpec {
    DeviceSpec {
        container_path: container.to_owned(),
        host_path: host.to_owned(),
        permissions: "rw".to_owned(),
    }
}

/// Device nodes granted to a container: each present node at its own path, plus the in-tree ↔ DCAP
/// alias when only one of the two layouts exists. `/dev/isgx` is never aliased (different ioctl
/// ABI). The EPC and enclave resources never grant the provision node.
pub fn device_specs(kind: ResourceKind, nodes: &DeviceNodes) -> Vec<DeviceSpec> {
    const IN_TREE_ENCLAVE: &str = "/dev/sgx_enclave";
    const DCAP_ENCLAVE: &str = "/dev/sgx/enclave";
    const IN_TREE_PROVISION: &str = "/dev/sgx_provision";
    const DCAP_PROVISION: &str = "/dev/sgx/provision";
    let (in_tree, dcap, in_tree_path, dcap_path) = match kind {
        ResourceKind::Epc | ResourceKind::Enclave => (
            nodes.in_tree_enclave,
            nodes.dcap_enclave,
            IN_TREE_ENCLAVE,
            DCAP_ENCLAVE,
        ),
        ResourceKind::Provision => (
            nodes.in_tree_provision,
            nodes.dcap_provision,
            IN_TREE_PROVISION,
            DCAP_PROVISION,
        ),
    };
    let mut specs = Vec::new();
    if in_tree {
        specs.push(spec(in_tree_path, in_tree_path));
        if !dcap {
            specs.push(spec(in_tree_path, dcap_path));
        }
    }
    if dcap {
        specs.push(spec(dcap_path, dcap_path));
        if !in_tree {
            specs.push(spec(dcap_path, in_tree_path));
        }
    }
    if kind != ResourceKind::Provision && nodes.legacy_enclave {
        specs.push(spec("/dev/isgx", "/dev/isgx"));
    }
    specs
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    fn pairs(specs: &[DeviceSpec]) -> Vec<(&str, &str)> {
        specs
            .iter()
            .map(|s| (s.host_path.as_str(), s.container_path.as_str()))
            .collect()
    }

    #[test]
    fn resource_names_are_checked_like_kubelet() {
        for ok in [
            EPC_RESOURCE,
            ENCLAVE_RESOURCE,
            PROVISION_RESOURCE,
            "example.com/epc",
            "a.b/x.y_z-1",
        ] {
            validate_resource_name(ok).unwrap();
        }
        for bad in [
            "epc",
            "/epc",
            "example.com/",
            "Example.com/epc",
            "kubernetes.io/epc",
            "foo.kubernetes.io/epc",
            "example.com/-epc",
            "example.com/ep c",
            "example.com/a/b",
        ] {
            let err = validate_resource_name(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidResourceName { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn socket_names_use_the_short_name() {
        assert_eq!(
            socket_file_name(EPC_RESOURCE),
            "confcom-sgx_epc_mem_in_MiB.sock"
        );
        assert_eq!(socket_file_name(ENCLAVE_RESOURCE), "confcom-enclave.sock");
        assert_eq!(
            socket_file_name(PROVISION_RESOURCE),
            "confcom-provision.sock"
        );
    }

    #[test]
    fn in_tree_layout_grants_the_node_and_its_dcap_alias() {
        let nodes = DeviceNodes {
            in_tree_enclave: true,
            in_tree_provision: true,
            ..DeviceNodes::default()
        };
        assert_eq!(
            pairs(&device_specs(ResourceKind::Epc, &nodes)),
            [
                ("/dev/sgx_enclave", "/dev/sgx_enclave"),
                ("/dev/sgx_enclave", "/dev/sgx/enclave")
            ]
        );
        assert_eq!(
            pairs(&device_specs(ResourceKind::Provision, &nodes)),
            [
                ("/dev/sgx_provision", "/dev/sgx_provision"),
                ("/dev/sgx_provision", "/dev/sgx/provision")
            ]
        );
        assert!(
            device_specs(ResourceKind::Epc, &nodes)
                .iter()
                .all(|s| s.permissions == "rw")
        );
    }

    #[test]
    fn dcap_layout_grants_the_node_and_its_in_tree_alias() {
        let nodes = DeviceNodes {
            dcap_enclave: true,
            dcap_provision: true,
            ..DeviceNodes::default()
        };
        assert_eq!(
            pairs(&device_specs(ResourceKind::Enclave, &nodes)),
            [
                ("/dev/sgx/enclave", "/dev/sgx/enclave"),
                ("/dev/sgx/enclave", "/dev/sgx_enclave")
            ]
        );
    }

    #[test]
    fn both_layouts_are_passed_through_without_aliases() {
        let nodes = DeviceNodes {
            in_tree_enclave: true,
            dcap_enclave: true,
            ..DeviceNodes::default()
        };
        assert_eq!(
            pairs(&device_specs(ResourceKind::Epc, &nodes)),
            [
                ("/dev/sgx_enclave", "/dev/sgx_enclave"),
                ("/dev/sgx/enclave", "/dev/sgx/enclave")
            ]
        );
    }

    #[test]
    fn legacy_isgx_is_never_aliased_and_has_no_provision() {
        let nodes = DeviceNodes {
            legacy_enclave: true,
            ..DeviceNodes::default()
        };
        assert_eq!(
            pairs(&device_specs(ResourceKind::Epc, &nodes)),
            [("/dev/isgx", "/dev/isgx")]
        );
        assert!(device_specs(ResourceKind::Provision, &nodes).is_empty());
        assert!(!ResourceKind::Provision.nodes_present(&nodes));
    }

    #[test]
    fn never_healthy_resources_advertise_nothing_and_later_loss_marks_unhealthy() {
        let res = Resource::new(ResourceKind::Epc, EPC_RESOURCE, false);
        let adv = res.update(128, false, vec![]);
        assert_eq!((adv.healthy, adv.unhealthy), (0, 0));
        assert!(res.subscribe().borrow().devices.is_empty());
        assert!(res.update(128, true, vec![]).changed);
        assert_eq!(res.subscribe().borrow().devices.len(), 128);
        assert!(
            !res.update(128, true, vec![]).changed,
            "no change, no message"
        );
        let adv = res.update(128, false, vec![]);
        assert_eq!((adv.changed, adv.healthy, adv.unhealthy), (true, 0, 128));
        assert!(
            res.subscribe()
                .borrow()
                .devices
                .iter()
                .all(|d| d.health == listing::UNHEALTHY)
        );
        let err = res.check_ids(0, &["1".to_owned()]).unwrap_err();
        assert!(
            matches!(err, AllocateError::UnhealthyDevice { .. }),
            "{err}"
        );
    }

    #[test]
    fn allocate_ids_are_checked() {
        let res = Resource::new(ResourceKind::Epc, EPC_RESOURCE, false);
        res.update(100, true, vec![]);
        res.check_ids(0, &[ids::encode(0), ids::encode(99)])
            .unwrap();
        assert_eq!(
            res.check_ids(2, &[]),
            Err(AllocateError::NoDevices { container: 2 })
        );
        for bad in [
            ids::encode(100),
            "sgx-epc-1".to_owned(),
            String::new(),
            "x".repeat(10_000),
        ] {
            let err = res.check_ids(0, std::slice::from_ref(&bad)).unwrap_err();
            assert!(
                matches!(&err, AllocateError::UnknownDevice { id, .. } if id.len() <= 64),
                "{err}"
            );
        }
        let err = res
            .check_ids(0, &["5".to_owned(), "5".to_owned()])
            .unwrap_err();
        assert!(
            matches!(err, AllocateError::DuplicateDevice { .. }),
            "{err}"
        );
    }

    #[test]
    fn counts_above_the_budget_are_capped() {
        let res = Resource::new(ResourceKind::Epc, EPC_RESOURCE, false);
        let adv = res.update(512 * 1024, true, vec![]);
        assert_eq!(adv.healthy, listing::max_devices(LIST_AND_WATCH_BUDGET));
        assert!(adv.encoded_len <= LIST_AND_WATCH_BUDGET);
    }

    #[test]
    fn simulate_grants_no_nodes_and_sets_the_env() {
        let res = Resource::new(ResourceKind::Epc, EPC_RESOURCE, true);
        let resp = res.container_response(&DeviceNodes::ALL);
        assert!(resp.devices.is_empty());
        assert_eq!(resp.envs.get(SIMULATION_ENV).map(String::as_str), Some("1"));
    }
}
