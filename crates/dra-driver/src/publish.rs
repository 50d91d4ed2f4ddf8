//! Keeps the node's ResourceSlice published through the API server.
//!
//! [`Publisher::sync`] makes the API server hold exactly one slice of this driver for this node
//! with the desired content ([`crate::slices::desired_spec`]):
//!
//! 1. GET the Node (once) for its UID, which the slice's owner reference names.
//! 2. LIST the slices with `fieldSelector=spec.nodeName=<node>,spec.driver=<driver>`.
//! 3. Keep the one with the highest pool generation; delete the others (with UID and
//!    resourceVersion preconditions).
//! 4. If the kept slice already has the desired content, write nothing: a restart does not
//!    flap the slice or bump its generation. If the content changed (EPC size, attributes,
//!    attestation results), update it in place with the pool's next generation. If there is none
//!    (first start, or kubelet wiped the node's slices), create one.
//!
//! [`Publisher::run`] syncs at start, again whenever the [`Inventory`] or the [`Attestation`]
//! changes, and every [`Publisher::RECHECK`] (kubelet deletes a node's slices when it starts and
//! 30 s after a driver goes away: a wiped slice comes back at the next re-check). Failed syncs are
//! retried with exponential backoff.
//!
//! An API server without the `DRAConsumableCapacity` feature gate drops `allowMultipleAllocations`
//! and `requestPolicy` from what it stores; the publisher notices and says so once in the log
//! (each EPC device is then allocated to one claim at a time).

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::resource::v1::{ResourceSlice, ResourceSliceSpec};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use tokio::sync::watch;

use crate::attest::Attestation;
use crate::inventory::Inventory;
use crate::slices::{
    SliceError, consumable_capacity_dropped, desired_spec, node_owner, same_content, slice_object,
    validate_driver_name, validate_slice, without_consumable_capacity,
};

/// Field manager recorded by the API server for the driver's writes.
pub const FIELD_MANAGER: &str = "confcom-dra-driver";

/// Publishing failures. Each message includes its cause.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No Kubernetes credentials (not in a pod with a service account, no kubeconfig).
    #[error("no Kubernetes credentials for publishing ResourceSlices: {0}")]
    Credentials(node_capacity::Error),
    /// The slice would break an API rule.
    #[error("invalid ResourceSlice: {0}")]
    Invalid(#[from] SliceError),
    /// The Node could not be read.
    #[error("reading node {node:?} failed: {error}")]
    Node {
        /// The node.
        node: String,
        /// The cause.
        error: kube::Error,
    },
    /// The Node has no UID (the API server always sets one).
    #[error("node {0:?} has no metadata.uid")]
    NodeUid(String),
    /// An API request failed.
    #[error("{verb} ResourceSlices failed: {error}")]
    Api {
        /// What was done.
        verb: &'static str,
        /// The cause.
        error: kube::Error,
    },
    /// The API server returned a slice without a name.
    #[error("the API server returned a ResourceSlice without a name")]
    Unnamed,
}

/// A client from the pod's service account, else from a kubeconfig; a clear error without
/// either.
pub async fn client() -> Result<Client, PublishError> {
    node_capacity::inferred_client()
        .await
        .map_err(PublishError::Credentials)
}

/// Copies the attestation attributes of `stored`'s devices into the same devices of `desired`
/// where it has none.
fn keep_attestation_attributes(stored: &ResourceSliceSpec, desired: &mut ResourceSliceSpec) {
    use crate::names::attr;
    const ATTESTATION: [&str; 5] = [
        attr::FMSPC,
        attr::PCE_SVN,
        attr::CPU_SVN,
        attr::TCB_STATUS,
        attr::TCB_DATE,
    ];
    for device in desired.devices.iter_mut().flatten() {
        let Some(old) = stored
            .devices
            .iter()
            .flatten()
            .find(|d| d.name == device.name)
            .and_then(|d| d.attributes.as_ref())
        else {
            continue;
        };
        let attributes = device.attributes.get_or_insert_default();
        for name in ATTESTATION {
            if let Some(value) = old.get(name) {
                attributes
                    .entry(name.to_owned())
                    .or_insert_with(|| value.clone());
            }
        }
    }
}

/// What one [`Publisher::sync`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The slice created (its name), if one was.
    pub created: Option<String>,
    /// The slice updated and its new pool generation, if one was.
    pub updated: Option<(String, i64)>,
    /// Slices deleted (duplicates, older generations).
    pub deleted: Vec<String>,
}

impl SyncReport {
    /// Whether nothing was written.
    pub fn unchanged(&self) -> bool {
        self.created.is_none() && self.updated.is_none() && self.deleted.is_empty()
    }
}

/// Publishes one node's slice of one driver.
pub struct Publisher {
    slices: Api<ResourceSlice>,
    nodes: Api<Node>,
    driver: String,
    node: String,
    node_uid: Option<String>,
    dropped_fields: bool,
    recheck: Duration,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Publisher {
    /// How often [`Publisher::run`] checks the slice is still there and unchanged.
    pub const RECHECK: Duration = Duration::from_secs(30);
    /// First wait after a failed sync.
    pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
    /// Longest wait after failed syncs.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

    /// A publisher for `driver` (validated: a DNS subdomain of at most 63 characters) on `node`.
    pub fn new(
        client: Client,
        driver: impl Into<String>,
        node: impl Into<String>,
    ) -> Result<Self, PublishError> {
        let driver = driver.into();
        validate_driver_name(&driver)?;
        Ok(Self {
            slices: Api::all(client.clone()),
            nodes: Api::all(client),
            driver,
            node: node.into(),
            node_uid: None,
            dropped_fields: false,
            recheck: Self::RECHECK,
            initial_backoff: Self::INITIAL_BACKOFF,
            max_backoff: Self::MAX_BACKOFF,
        })
    }

    /// Re-check every `recheck` instead of [`Publisher::RECHECK`].
    pub fn with_recheck(mut self, recheck: Duration) -> Self {
        self.recheck = recheck;
        self
    }

    /// Wait `initial` after the first failure, doubling up to `max`.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Whether the API server was seen dropping the consumable-capacity fields.
    pub fn consumable_capacity_dropped(&self) -> bool {
        self.dropped_fields
    }

    fn note_dropped(&mut self, slice: &str) {
        if !self.dropped_fields {
            self.dropped_fields = true;
            tracing::warn!(
                slice,
                "the API server dropped allowMultipleAllocations and requestPolicy from the \
                 ResourceSlice: shared EPC needs the DRAConsumableCapacity feature gate (on by \
                 default from Kubernetes 1.36) in kube-apiserver, kube-scheduler and kubelet; \
                 until it is on, each EPC device is exclusive, allocated to one claim at a time"
            );
        }
    }

    async fn node_uid(&mut self) -> Result<String, PublishError> {
        if let Some(uid) = &self.node_uid {
            return Ok(uid.clone());
        }
        let node = self
            .nodes
            .get(&self.node)
            .await
            .map_err(|error| PublishError::Node {
                node: self.node.clone(),
                error,
            })?;
        let uid = node
            .metadata
            .uid
            .ok_or_else(|| PublishError::NodeUid(self.node.clone()))?;
        self.node_uid = Some(uid.clone());
        Ok(uid)
    }

    fn post_params() -> PostParams {
        PostParams {
            dry_run: false,
            field_manager: Some(FIELD_MANAGER.to_owned()),
        }
    }

    /// Makes the API server hold exactly the desired slice for `inventory` and `attestation`.
    pub async fn sync(
        &mut self,
        inventory: &Inventory,
        attestation: &Attestation,
    ) -> Result<SyncReport, PublishError> {
        let selector = format!("spec.nodeName={},spec.driver={}", self.node, self.driver);
        let listed = self
            .slices
            .list(&ListParams::default().fields(&selector))
            .await
            .map_err(|error| PublishError::Api {
                verb: "listing",
                error,
            })?;
        let mut existing: Vec<ResourceSlice> = listed
            .items
            .into_iter()
            .filter(|s| {
                s.spec.driver == self.driver && s.spec.node_name.as_deref() == Some(&self.node)
            })
            .collect();
        if existing.is_empty() {
            // No slice (first start, kubelet's wipe, or the garbage collector after the Node was
            // deleted and made again under its name): the Node is read again, so that the new
            // slice is owned by the Node that exists now.
            self.node_uid = None;
        }
        let uid = self.node_uid().await?;
        // Highest generation first, then by name: the first is the one kept.
        existing.sort_by(|a, b| {
            b.spec
                .pool
                .generation
                .cmp(&a.spec.pool.generation)
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        let mut report = SyncReport::default();
        let mut rest = existing.into_iter();
        let kept = rest.next();
        for extra in rest {
            let Some(name) = extra.metadata.name.clone() else {
                continue;
            };
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: extra.metadata.uid.clone(),
                    resource_version: extra.metadata.resource_version.clone(),
                }),
                ..DeleteParams::default()
            };
            match self.slices.delete(&name, &params).await {
                Ok(_) => report.deleted.push(name),
                // Gone already, or changed meanwhile: the next sync sees the truth.
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(error) => {
                    return Err(PublishError::Api {
                        verb: "deleting",
                        error,
                    });
                }
            }
        }

        match kept {
            Some(mut slice) => {
                let generation = slice.spec.pool.generation;
                let mut desired =
                    desired_spec(&self.driver, &self.node, inventory, attestation, generation);
                if *attestation == Attestation::default() {
                    // Not attested yet (a restart): what the slice says of the attestation stands
                    // until the quote helper answers, so that a restart does not flap it.
                    keep_attestation_attributes(&slice.spec, &mut desired);
                }
                let owned = slice
                    .metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.kind == "Node" && r.name == self.node && r.uid == uid)
                    });
                let name = slice.metadata.name.clone().ok_or(PublishError::Unnamed)?;
                if owned && same_content(&slice.spec, &desired) {
                    return Ok(report);
                }
                if owned && same_content(&slice.spec, &without_consumable_capacity(&desired)) {
                    self.note_dropped(&name);
                    return Ok(report);
                }
                let next = generation.saturating_add(1);
                let desired = ResourceSliceSpec {
                    pool: k8s_openapi::api::resource::v1::ResourcePool {
                        generation: next,
                        ..desired.pool.clone()
                    },
                    ..desired
                };
                slice.spec = desired.clone();
                let mut refs = slice.metadata.owner_references.take().unwrap_or_default();
                refs.retain(|r| !(r.kind == "Node" && r.api_version == "v1"));
                refs.push(node_owner(&self.node, &uid));
                slice.metadata.owner_references = Some(refs);
                slice.metadata.managed_fields = None;
                validate_slice(&slice)?;
                let stored = self
                    .slices
                    .replace(&name, &Self::post_params(), &slice)
                    .await
                    .map_err(|error| PublishError::Api {
                        verb: "updating",
                        error,
                    })?;
                if consumable_capacity_dropped(&desired, &stored.spec) {
                    self.note_dropped(&name);
                }
                tracing::info!(slice = name, generation = next, "ResourceSlice updated");
                report.updated = Some((name, next));
            }
            None => {
                let desired = desired_spec(&self.driver, &self.node, inventory, attestation, 0);
                let slice = slice_object(&uid, desired.clone());
                validate_slice(&slice)?;
                let stored = self
                    .slices
                    .create(&Self::post_params(), &slice)
                    .await
                    .map_err(|error| PublishError::Api {
                        verb: "creating",
                        error,
                    })?;
                let name = stored.metadata.name.clone().ok_or(PublishError::Unnamed)?;
                if consumable_capacity_dropped(&desired, &stored.spec) {
                    self.note_dropped(&name);
                }
                tracing::info!(slice = name, "ResourceSlice created");
                report.created = Some(name);
            }
        }
        Ok(report)
    }

    /// Keeps the slice published until `shutdown` completes (also in the middle of a sync): a sync
    /// at start, on every change of `inventory` or `attestation`, every re-check interval, and
    /// after failures with backoff.
    pub async fn run(
        mut self,
        mut inventory: watch::Receiver<Inventory>,
        mut attestation: watch::Receiver<Attestation>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut backoff = self.initial_backoff;
        let mut inventory_open = true;
        let mut attestation_open = true;
        loop {
            let current_inventory = inventory.borrow_and_update().clone();
            let current_attestation = attestation.borrow_and_update().clone();
            // A sync waits on the API server (up to the client's timeouts): the shutdown does not.
            let synced = tokio::select! {
                () = &mut shutdown => return,
                synced = self.sync(&current_inventory, &current_attestation) => synced,
            };
            let wait = match synced {
                Ok(report) => {
                    backoff = self.initial_backoff;
                    if !report.deleted.is_empty() {
                        tracing::info!(deleted = ?report.deleted, "obsolete ResourceSlices deleted");
                    }
                    self.recheck
                }
                Err(e @ PublishError::Invalid(_)) => {
                    // Retrying does not fix an invalid slice; a new inventory may.
                    tracing::error!(error = %e, "ResourceSlice not published");
                    self.recheck
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "publishing the ResourceSlice failed");
                    crate::next_backoff(&mut backoff, self.max_backoff)
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
                changed = inventory.changed(), if inventory_open => {
                    inventory_open = changed.is_ok();
                }
                changed = attestation.changed(), if attestation_open => {
                    attestation_open = changed.is_ok();
                }
            }
        }
    }
}
