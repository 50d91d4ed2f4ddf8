//! Preparing and unpreparing claims: from an allocated ResourceClaim to the devices kubelet is
//! told about and the CDI spec the runtime reads, with the checkpoint kept in step.
//!
//! Every failure is per claim: one bad claim never fails the others in the same call. The claims
//! state is behind one lock, held only to look and to change it: claims are read from the API
//! server (in parallel) and new claims' CDI specs written before it is taken, and the checkpoint
//! is saved after it is released, once for every call that changed the state meanwhile (a group
//! commit: concurrent calls share one save instead of queueing for one each). Claims already
//! prepared are answered from the checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::join_all;
use k8s_openapi::api::resource::v1::{DeviceAllocationConfiguration, ResourceClaim};
use tokio::sync::{Mutex, MutexGuard, watch};

use super::atomic::WriteError;
use super::cdi::{self, Grant, GrantError, NameError, Spec};
use super::checkpoint::{self, Checkpoint, CheckpointError, PreparedClaim, PreparedDevice};
use super::claims::{ClaimReadError, ClaimReader};
use super::metrics::Metrics;
use super::opaque::{ConfigError, SgxConfig};
use crate::inventory::Inventory;
use crate::names;

/// A claim as kubelet names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRef {
    /// Namespace.
    pub namespace: String,
    /// UID.
    pub uid: String,
    /// Name.
    pub name: String,
}

/// Why one claim could not be prepared or unprepared (reported to kubelet in the claim's `error`).
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// kubelet sent an empty namespace, UID or name, or a UID that is not one (the UID names the
    /// claim's CDI spec file, so it is held to what the API server assigns: letters, digits and
    /// `-`, at most 64).
    #[error(
        "kubelet sent an incomplete or malformed claim reference (namespace {namespace:?}, name {name:?}, uid {uid:?})"
    )]
    IncompleteReference {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// UID.
        uid: String,
    },
    /// The claim could not be read.
    #[error(transparent)]
    Read(#[from] ClaimReadError),
    /// The claim of that name has another UID now.
    #[error(
        "claim {namespace}/{name} was replaced: kubelet asked for UID {expected}, the API server has {found:?}"
    )]
    Replaced {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The UID kubelet sent.
        expected: String,
        /// The UID of the current object.
        found: Option<String>,
    },
    /// The claim has no allocation.
    #[error("claim {namespace}/{name} is not allocated")]
    NotAllocated {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// None of the claim's results are this driver's devices on this node.
    #[error("claim {namespace}/{name} has no device of driver {driver} in pool {node} (this node){}", others_text(.other_pools))]
    NoDevicesOnNode {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The driver.
        driver: String,
        /// This node (the pool name).
        node: String,
        /// Pools of this driver the claim was allocated from instead.
        other_pools: Vec<String>,
    },
    /// A result names a device this node does not have.
    #[error(
        "claim {namespace}/{name} was allocated device {device:?}, which this node does not have (devices: {known})"
    )]
    UnknownDevice {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The device.
        device: String,
        /// The node's devices.
        known: String,
    },
    /// An opaque configuration for this driver was refused.
    #[error("claim {namespace}/{name}: config[{index}] ({source_kind}): {error}")]
    Config {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Index in `status.allocation.devices.config`.
        index: usize,
        /// `FromClass` or `FromClaim`.
        source_kind: String,
        /// The problem.
        error: ConfigError,
    },
    /// A consumed capacity that is not a whole number of bytes.
    #[error(
        "claim {namespace}/{name}: consumed EPC capacity {value:?} of device {device} is not a whole number of bytes"
    )]
    BadCapacity {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The device.
        device: String,
        /// The quantity.
        value: String,
    },
    /// The node cannot grant what the claim needs.
    #[error("claim {namespace}/{name}: {error}")]
    Grant {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The problem.
        error: GrantError,
    },
    /// A CDI name would be invalid.
    #[error(transparent)]
    CdiName(#[from] NameError),
    /// Writing or removing the CDI spec failed.
    #[error("CDI spec {path}: {reason}")]
    CdiFile {
        /// The spec file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The checkpoint could not be saved.
    #[error("{0}")]
    Checkpoint(String),
}

fn others_text(pools: &[String]) -> String {
    if pools.is_empty() {
        String::new()
    } else {
        format!("; it was allocated from pool(s) {}", pools.join(", "))
    }
}

/// Where the preparer keeps its files, and who it is.
#[derive(Clone, Debug)]
pub struct PreparerConfig {
    /// The driver name.
    pub driver: String,
    /// The node name (= this node's pool name).
    pub node: String,
    /// The CDI spec directory.
    pub cdi_root: PathBuf,
    /// The checkpoint file.
    pub checkpoint: PathBuf,
    /// The boot ID file (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: PathBuf,
}

/// The claim state machine behind the DRA service (shared by v1 and v1beta1).
pub struct Preparer {
    config: PreparerConfig,
    inventory: watch::Receiver<Inventory>,
    claims: Arc<dyn ClaimReader>,
    metrics: Metrics,
    /// The boot ID, read once: it cannot change while the driver runs.
    boot_id: Option<String>,
    state: Mutex<Checkpoint>,
    /// How many times `state` changed; only changed while `state` is locked.
    version: AtomicU64,
    /// The version the checkpoint on disk holds; locked while saving.
    durable: Mutex<u64>,
}

/// The outcome of one claim.
pub type ClaimOutcome<T> = Result<T, ClaimError>;

impl Preparer {
    /// A preparer starting from the checkpoint on disk (an unusable one is set aside, see
    /// [`checkpoint::load_or_recover`]).
    pub fn new(
        config: PreparerConfig,
        inventory: watch::Receiver<Inventory>,
        claims: Arc<dyn ClaimReader>,
        metrics: Metrics,
    ) -> Self {
        let mut state = checkpoint::load_or_recover(&config.checkpoint);
        // What the file says is not trusted to name files: an entry whose key is no UID is
        // dropped, and each spec's path is the one this configuration gives its UID (also after
        // --cdi-root changed; the spec is then written there on the claim's next prepare).
        state.claims.retain(|uid, _| {
            let ok = uid_ok(uid);
            if !ok {
                tracing::warn!(claim.uid = %uid, "checkpoint entry with a malformed UID dropped");
            }
            ok
        });
        for (uid, entry) in &mut state.claims {
            entry.cdi_spec = cdi::spec_path(&config.cdi_root, &config.driver, uid);
        }
        let boot_id = checkpoint::read_boot_id(&config.boot_id);
        metrics.set_prepared_claims(state.claims.len());
        tracing::info!(
            prepared = state.claims.len(),
            checkpoint = %config.checkpoint.display(),
            "checkpoint loaded"
        );
        Self {
            config,
            inventory,
            claims,
            metrics,
            boot_id,
            state: Mutex::new(state),
            version: AtomicU64::new(0),
            durable: Mutex::new(0),
        }
    }

    /// UIDs of the prepared claims.
    pub async fn prepared(&self) -> BTreeSet<String> {
        self.state.lock().await.claims.keys().cloned().collect()
    }

    /// Prepare `claims`; the result holds one entry per distinct UID.
    pub async fn prepare(
        &self,
        claims: &[ClaimRef],
    ) -> BTreeMap<String, ClaimOutcome<Vec<PreparedDevice>>> {
        let started = std::time::Instant::now();
        let to_read: Vec<&ClaimRef> = {
            let state = self.state.lock().await;
            let mut seen = BTreeSet::new();
            claims
                .iter()
                .filter(|c| complete(c) && !state.claims.contains_key(&c.uid))
                .filter(|c| seen.insert(c.uid.as_str()))
                .collect()
        };
        let reads = join_all(
            to_read
                .iter()
                .map(|c| self.claims.get(&c.namespace, &c.name)),
        )
        .await;
        let mut read: BTreeMap<&str, Result<ResourceClaim, ClaimReadError>> =
            to_read.iter().map(|c| c.uid.as_str()).zip(reads).collect();

        // New claims: planned, and their CDI specs written, before the lock is taken, so that
        // the file writes of concurrent calls overlap.
        let boot_id = self.boot_id.as_deref();
        let inventory = self.inventory.borrow().clone();
        let jobs: Vec<(&ClaimRef, Result<ResourceClaim, ClaimReadError>)> = to_read
            .iter()
            .filter_map(|c| read.remove(c.uid.as_str()).map(|object| (*c, object)))
            .collect();
        let mut fresh: BTreeMap<&str, ClaimOutcome<PreparedClaim>> =
            join_all(jobs.into_iter().map(|(claim, object)| {
                let inventory = &inventory;
                async move {
                    let outcome = self.prepare_new(claim, object, boot_id, inventory).await;
                    (claim.uid.as_str(), outcome)
                }
            }))
            .await
            .into_iter()
            .collect();

        let mut state = self.state.lock().await;
        let mut results = BTreeMap::new();
        let mut changed = Vec::new();
        for claim in claims {
            if results.contains_key(&claim.uid) {
                continue;
            }
            let outcome = if !complete(claim) {
                Err(incomplete(claim))
            } else if let Some(entry) = state.claims.get_mut(&claim.uid) {
                // Prepared before (or by a concurrent call meanwhile, with the same spec).
                self.refresh(claim, entry, boot_id, &inventory)
                    .await
                    .map(|rewritten| {
                        if rewritten {
                            changed.push(claim.uid.clone());
                            self.changed_state();
                        }
                        entry.devices.clone()
                    })
            } else {
                let prepared = match fresh.remove(claim.uid.as_str()) {
                    Some(prepared) => prepared,
                    // Unprepared by a concurrent call after the first look: read it now.
                    None => {
                        let object = self.claims.get(&claim.namespace, &claim.name).await;
                        self.prepare_new(claim, object, boot_id, &inventory).await
                    }
                };
                prepared.map(|entry| {
                    let devices = entry.devices.clone();
                    state.claims.insert(claim.uid.clone(), entry);
                    changed.push(claim.uid.clone());
                    self.changed_state();
                    devices
                })
            };
            results.insert(claim.uid.clone(), outcome);
        }
        self.commit(state, &changed, &mut results, "prepared").await;
        let errors = results.values().filter(|r| r.is_err()).count();
        for (uid, outcome) in &results {
            match outcome {
                Ok(devices) => {
                    tracing::info!(claim.uid = %uid, devices = devices.len(), "claim prepared")
                }
                Err(err) => tracing::warn!(claim.uid = %uid, error = %err, "claim not prepared"),
            }
        }
        self.metrics.prepared(
            results.len() as u64,
            errors as u64,
            started.elapsed().as_secs_f64(),
        );
        results
    }

    /// Unprepare `claims`: remove the CDI specs written for them and forget them. An unknown UID
    /// is success. The result holds one entry per distinct UID.
    pub async fn unprepare(&self, claims: &[ClaimRef]) -> BTreeMap<String, ClaimOutcome<()>> {
        let started = std::time::Instant::now();
        let mut state = self.state.lock().await;
        let mut results = BTreeMap::new();
        let mut changed = Vec::new();
        for claim in claims {
            if results.contains_key(&claim.uid) {
                continue;
            }
            if !uid_ok(&claim.uid) {
                results.insert(claim.uid.clone(), Err(incomplete(claim)));
                continue;
            }
            let mut paths = vec![cdi::spec_path(
                &self.config.cdi_root,
                &self.config.driver,
                &claim.uid,
            )];
            if let Some(entry) = state.claims.get(&claim.uid)
                && !paths.contains(&entry.cdi_spec)
            {
                paths.push(entry.cdi_spec.clone());
            }
            let mut outcome = Ok(());
            for path in paths {
                let removal = tokio::task::spawn_blocking({
                    let path = path.clone();
                    move || super::atomic::remove_durably(&path)
                })
                .await;
                match removal {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => {
                        outcome = Err(ClaimError::CdiFile {
                            path,
                            reason: format!("cannot remove: {err}"),
                        })
                    }
                    Err(err) => {
                        outcome = Err(ClaimError::CdiFile {
                            path,
                            reason: format!("removal task failed: {err}"),
                        })
                    }
                }
            }
            if outcome.is_ok() && state.claims.remove(&claim.uid).is_some() {
                changed.push(claim.uid.clone());
                self.changed_state();
            }
            results.insert(claim.uid.clone(), outcome);
        }
        self.commit(state, &changed, &mut results, "unprepared")
            .await;
        let errors = results.values().filter(|r| r.is_err()).count();
        for (uid, outcome) in &results {
            match outcome {
                Ok(()) => tracing::info!(claim.uid = %uid, "claim unprepared"),
                Err(err) => tracing::warn!(claim.uid = %uid, error = %err, "claim not unprepared"),
            }
        }
        self.metrics.unprepared(
            results.len() as u64,
            errors as u64,
            started.elapsed().as_secs_f64(),
        );
        results
    }

    /// A claim prepared before: write its CDI spec again when the node rebooted since (or the boot
    /// ID is unknown) or the spec is gone. Returns whether the entry changed.
    async fn refresh(
        &self,
        claim: &ClaimRef,
        entry: &mut PreparedClaim,
        boot_id: Option<&str>,
        inventory: &Inventory,
    ) -> ClaimOutcome<bool> {
        let same_boot = boot_id.is_some_and(|b| b == entry.boot_id);
        let present = tokio::fs::try_exists(&entry.cdi_spec)
            .await
            .unwrap_or(false);
        if same_boot && present {
            return Ok(false);
        }
        tracing::info!(
            claim.uid = %claim.uid,
            rebooted = !same_boot,
            spec_present = present,
            "writing the CDI spec of a prepared claim again"
        );
        let spec = self.spec(claim, &entry.devices, inventory)?;
        self.write_spec(&entry.cdi_spec, &spec).await?;
        entry.boot_id = boot_id.unwrap_or_default().to_owned();
        Ok(true)
    }

    async fn prepare_new(
        &self,
        claim: &ClaimRef,
        object: Result<ResourceClaim, ClaimReadError>,
        boot_id: Option<&str>,
        inventory: &Inventory,
    ) -> ClaimOutcome<PreparedClaim> {
        let object = object?;
        let devices = plan(
            &self.config.driver,
            &self.config.node,
            claim,
            &object,
            inventory,
        )?;
        let spec = self.spec(claim, &devices, inventory)?;
        let path = cdi::spec_path(&self.config.cdi_root, &self.config.driver, &claim.uid);
        self.write_spec(&path, &spec).await?;
        Ok(PreparedClaim {
            name: claim.name.clone(),
            namespace: claim.namespace.clone(),
            boot_id: boot_id.unwrap_or_default().to_owned(),
            cdi_spec: path,
            devices,
        })
    }

    fn spec(
        &self,
        claim: &ClaimRef,
        devices: &[PreparedDevice],
        inventory: &Inventory,
    ) -> ClaimOutcome<Spec> {
        build_spec(&self.config.driver, devices, inventory).map_err(|error| ClaimError::Grant {
            namespace: claim.namespace.clone(),
            name: claim.name.clone(),
            error,
        })
    }

    async fn write_spec(&self, path: &std::path::Path, spec: &Spec) -> ClaimOutcome<()> {
        let file_error = |reason: String| ClaimError::CdiFile {
            path: path.to_owned(),
            reason,
        };
        let bytes = serde_json::to_vec_pretty(spec).map_err(|e| file_error(e.to_string()))?;
        let target = path.to_owned();
        tokio::task::spawn_blocking(move || {
            // The CDI root may have been removed since start (it is usually on tmpfs).
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir).map_err(|source| WriteError::Write {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            super::atomic::write_atomic(&target, &bytes, 0o644)
        })
        .await
        .map_err(|e| file_error(format!("write task failed: {e}")))?
        .map_err(|e| {
            file_error(match e {
                // The error names the spec already.
                WriteError::Rename { from, source, .. } => {
                    format!("renaming {} over it: {source}", from.display())
                }
                e => e.to_string(),
            })
        })
    }

    /// Ends a call that changed the claims in `changed`: releases `state` and makes the
    /// checkpoint hold what the state was then. When saving fails, those claims fail (what they did
    /// in this call is `done`); the state keeps them, so that kubelet's retry finds them prepared
    /// (or gone) and the next call saves again.
    async fn commit<T>(
        &self,
        state: MutexGuard<'_, Checkpoint>,
        changed: &[String],
        results: &mut BTreeMap<String, ClaimOutcome<T>>,
        done: &str,
    ) {
        let version = self.version.load(Ordering::SeqCst);
        self.metrics.set_prepared_claims(state.claims.len());
        drop(state);
        if let Err(err) = self.persist(version).await {
            tracing::error!(error = %err, "cannot save the checkpoint; the claims {done} in this call fail");
            for uid in changed {
                results.insert(uid.clone(), Err(ClaimError::Checkpoint(err.to_string())));
            }
        }
    }

    /// Counts a change of the state, at once (with the state locked): a call cancelled before
    /// its commit still leaves the next call a version to save.
    fn changed_state(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// Makes the checkpoint on disk hold at least `version` of the state. A call whose change a
    /// save in progress missed waits for it and then saves once for every call waiting with it.
    async fn persist(&self, version: u64) -> Result<(), CheckpointError> {
        let mut durable = self.durable.lock().await;
        if *durable >= version {
            return Ok(());
        }
        let (snapshot, current) = {
            let state = self.state.lock().await;
            (state.clone(), self.version.load(Ordering::SeqCst))
        };
        self.save(&snapshot).await?;
        *durable = current;
        Ok(())
    }

    async fn save(&self, state: &Checkpoint) -> Result<(), CheckpointError> {
        let path = self.config.checkpoint.clone();
        let state = state.clone();
        tokio::task::spawn_blocking(move || checkpoint::save(&path, &state))
            .await
            .map_err(|e| CheckpointError::Damaged {
                path: self.config.checkpoint.clone(),
                reason: format!("save task failed: {e}"),
            })?
    }
}

fn complete(claim: &ClaimRef) -> bool {
    uid_ok(&claim.uid) && !claim.name.is_empty() && !claim.namespace.is_empty()
}

/// Whether `uid` looks like a UID the API server assigns (a UUID: letters, digits and `-`). It
/// becomes part of a file name, so nothing else is let through.
fn uid_ok(uid: &str) -> bool {
    (1..=64).contains(&uid.len()) && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn incomplete(claim: &ClaimRef) -> ClaimError {
    ClaimError::IncompleteReference {
        namespace: claim.namespace.clone(),
        name: claim.name.clone(),
        uid: claim.uid.clone(),
    }
}

/// The CDI spec of a claim's devices on a node with `inventory`.
pub fn build_spec(
    driver: &str,
    devices: &[PreparedDevice],
    inventory: &Inventory,
) -> Result<Spec, GrantError> {
    let mut spec = Spec {
        cdi_version: String::new(),
        kind: cdi::kind(driver),
        devices: Vec::with_capacity(devices.len()),
    };
    for device in devices {
        let grant = Grant {
            quote_helper: device.quote_helper,
            provision: device.provision,
            epc_bytes: device.epc_bytes,
        };
        spec.devices.push(cdi::Device {
            name: device.cdi_name.clone(),
            container_edits: cdi::edits(&inventory.nodes, inventory.simulated, grant)?,
        });
    }
    spec.cdi_version = cdi::minimum_version(&spec).to_owned();
    Ok(spec)
}

/// The devices of an allocated claim on this node: the results of `driver` in pool `node`, each
/// with the configuration that applies to its request (class configs first, then claim configs;
/// the last match wins) and its consumed EPC bytes (the whole device when none is recorded).
pub fn plan(
    driver: &str,
    node: &str,
    claim: &ClaimRef,
    object: &ResourceClaim,
    inventory: &Inventory,
) -> ClaimOutcome<Vec<PreparedDevice>> {
    let namespace = || claim.namespace.clone();
    let name = || claim.name.clone();
    let found_uid = object.metadata.uid.clone();
    if found_uid.as_deref() != Some(claim.uid.as_str()) {
        return Err(ClaimError::Replaced {
            namespace: namespace(),
            name: name(),
            expected: claim.uid.clone(),
            found: found_uid,
        });
    }
    let allocated = object
        .status
        .as_ref()
        .and_then(|s| s.allocation.as_ref())
        .and_then(|a| a.devices.as_ref());
    let Some(allocated) = allocated else {
        return Err(ClaimError::NotAllocated {
            namespace: namespace(),
            name: name(),
        });
    };
    let results = allocated.results.as_deref().unwrap_or_default();
    let ours: Vec<_> = results.iter().filter(|r| r.driver == driver).collect();
    let here: Vec<_> = ours.iter().filter(|r| r.pool == node).collect();
    if here.is_empty() {
        let other_pools: BTreeSet<String> = ours.iter().map(|r| r.pool.clone()).collect();
        return Err(ClaimError::NoDevicesOnNode {
            namespace: namespace(),
            name: name(),
            driver: driver.to_owned(),
            node: node.to_owned(),
            other_pools: other_pools.into_iter().collect(),
        });
    }
    let configs = configs(driver, allocated.config.as_deref().unwrap_or_default()).map_err(
        |(index, source_kind, error)| ClaimError::Config {
            namespace: namespace(),
            name: name(),
            index,
            source_kind,
            error,
        },
    )?;
    let mut devices = Vec::with_capacity(here.len());
    for result in here {
        let Some(device) = inventory.device(&result.device) else {
            return Err(ClaimError::UnknownDevice {
                namespace: namespace(),
                name: name(),
                device: result.device.clone(),
                known: inventory
                    .devices
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let config = configs
            .iter()
            .rev()
            .find(|(requests, _)| applies(requests, &result.request))
            .map(|(_, config)| *config)
            .unwrap_or_default();
        let consumed = result.consumed_capacity.as_ref().and_then(|c| {
            c.get(names::CAPACITY_EPC)
                .or_else(|| c.get(&format!("{driver}/{}", names::CAPACITY_EPC)))
        });
        let epc_bytes = match consumed {
            Some(quantity) => parse_bytes(&quantity.0).ok_or_else(|| ClaimError::BadCapacity {
                namespace: namespace(),
                name: name(),
                device: result.device.clone(),
                value: quantity.0.clone(),
            })?,
            None => device.bytes,
        };
        let share_id = result.share_id.clone().filter(|s| !s.is_empty());
        let cdi_name = cdi::device_name(&claim.uid, &result.device, share_id.as_deref());
        cdi::validate_device_name(&cdi_name)?;
        devices.push(PreparedDevice {
            request: main_request(&result.request).to_owned(),
            pool: result.pool.clone(),
            device: result.device.clone(),
            share_id,
            cdi_id: cdi::qualified_id(driver, &cdi_name),
            cdi_name,
            quote_helper: config.quote_helper,
            provision: config.provision,
            epc_bytes,
        });
    }
    Ok(devices)
}

type Configs = Vec<(Vec<String>, SgxConfig)>;

/// This driver's opaque configs in the order they apply: `FromClass` before `FromClaim`.
fn configs(
    driver: &str,
    all: &[DeviceAllocationConfiguration],
) -> Result<Configs, (usize, String, ConfigError)> {
    let mut ranked = Vec::new();
    for (index, config) in all.iter().enumerate() {
        let Some(opaque) = config.opaque.as_ref().filter(|o| o.driver == driver) else {
            continue;
        };
        let rank = match config.source.as_str() {
            "FromClass" => 0,
            "FromClaim" => 1,
            other => {
                return Err((
                    index,
                    other.to_owned(),
                    ConfigError::Malformed {
                        reason: format!("unknown config source {other:?}"),
                    },
                ));
            }
        };
        let decoded = SgxConfig::decode(&opaque.parameters.0)
            .map_err(|err| (index, config.source.clone(), err))?;
        ranked.push((rank, config.requests.clone().unwrap_or_default(), decoded));
    }
    ranked.sort_by_key(|(rank, _, _)| *rank);
    Ok(ranked.into_iter().map(|(_, r, c)| (r, c)).collect())
}

/// Whether a config with `requests` applies to the result of `request` (`req` or `req/sub`): an
/// empty list applies to all; a main request name covers its subrequests.
fn applies(requests: &[String], request: &str) -> bool {
    requests.is_empty()
        || requests
            .iter()
            .any(|r| r == request || r == main_request(request))
}

fn main_request(request: &str) -> &str {
    request.split_once('/').map_or(request, |(main, _)| main)
}

/// A Kubernetes quantity as a whole number of bytes: digits with an optional binary (`Ki` … `Ei`)
/// or decimal (`k` … `E`) suffix. Fractions, exponents and milli-units are refused.
pub fn parse_bytes(quantity: &str) -> Option<u64> {
    let digits = quantity.bytes().take_while(u8::is_ascii_digit).count();
    let (number, suffix) = quantity.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let multiplier = crate::slices::suffix_multiplier(suffix)?;
    number.checked_mul(multiplier)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DRIVER: &str = "sgx.example.com";
    const UID: &str = "u-1";

    fn inventory() -> Inventory {
        let mut inventory = crate::devices::simulated(1 << 30).unwrap();
        inventory.devices.push(crate::inventory::EpcDevice {
            name: "epc-numa1".into(),
            numa_node: Some(1),
            bytes: 1 << 20,
        });
        inventory
    }

    fn reference() -> ClaimRef {
        ClaimRef {
            namespace: "ns".into(),
            uid: UID.into(),
            name: "c".into(),
        }
    }

    fn object(results: serde_json::Value, config: serde_json::Value) -> ResourceClaim {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": "c", "namespace": "ns", "uid": UID},
            "spec": {},
            "status": {"allocation": {"devices": {"results": results, "config": config}}},
        }))
        .unwrap()
    }

    fn params(quote_helper: bool, provision: bool) -> serde_json::Value {
        SgxConfig {
            quote_helper,
            provision,
        }
        .to_parameters()
    }

    #[test]
    fn configs_apply_by_request_class_first_and_other_drivers_are_ignored() {
        let claim = object(
            serde_json::json!([
                {"request": "a", "driver": DRIVER, "pool": "n", "device": "epc"},
                {"request": "b/x", "driver": DRIVER, "pool": "n", "device": "epc-numa1",
                 "consumedCapacity": {format!("{DRIVER}/epc"): "8Ki"}},
                {"request": "c", "driver": "gpu.example.com", "pool": "n", "device": "gpu0"},
            ]),
            serde_json::json!([
                // Listed first but applied after the class config.
                {"source": "FromClaim", "requests": ["b"],
                 "opaque": {"driver": DRIVER, "parameters": params(false, true)}},
                {"source": "FromClass",
                 "opaque": {"driver": DRIVER, "parameters": params(true, false)}},
                {"source": "FromClaim",
                 "opaque": {"driver": "gpu.example.com", "parameters": {"any": "thing"}}},
            ]),
        );
        let devices = plan(DRIVER, "n", &reference(), &claim, &inventory()).unwrap();
        assert_eq!(devices.len(), 2);
        let (a, b) = (&devices[0], &devices[1]);
        assert_eq!((a.quote_helper, a.provision), (true, false));
        assert_eq!(
            a.epc_bytes,
            1 << 30,
            "no consumed capacity: the whole device"
        );
        assert_eq!((b.quote_helper, b.provision), (false, true));
        assert_eq!(b.request, "b");
        assert_eq!(b.epc_bytes, 8192);
        assert_eq!(b.cdi_id, format!("k8s.{DRIVER}/claim={UID}-epc-numa1"));
    }

    #[test]
    fn capacity_that_is_not_whole_bytes_and_unknown_sources_are_claim_errors() {
        let claim = object(
            serde_json::json!([{"request": "a", "driver": DRIVER, "pool": "n", "device": "epc",
                                "consumedCapacity": {"epc": "1500m"}}]),
            serde_json::json!([]),
        );
        let err = plan(DRIVER, "n", &reference(), &claim, &inventory()).unwrap_err();
        assert!(matches!(err, ClaimError::BadCapacity { .. }), "{err}");
        let claim = object(
            serde_json::json!([{"request": "a", "driver": DRIVER, "pool": "n", "device": "epc"}]),
            serde_json::json!([{"source": "FromNowhere",
                                "opaque": {"driver": DRIVER, "parameters": params(true, true)}}]),
        );
        let err = plan(DRIVER, "n", &reference(), &claim, &inventory()).unwrap_err();
        assert!(err.to_string().contains("FromNowhere"), "{err}");
    }

    /// Serves claim `ns/<name>` with UID `u-<name>`, allocated device `epc` of pool `n`.
    struct ClaimsByName;

    impl ClaimReader for ClaimsByName {
        fn get<'a>(
            &'a self,
            namespace: &'a str,
            name: &'a str,
        ) -> futures_util::future::BoxFuture<'a, Result<ResourceClaim, ClaimReadError>> {
            let claim = serde_json::from_value(serde_json::json!({
                "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                "metadata": {"name": name, "namespace": namespace, "uid": format!("u-{name}")},
                "spec": {},
                "status": {"allocation": {"devices": {"results": [
                    {"request": "a", "driver": DRIVER, "pool": "n", "device": "epc"}
                ]}}},
            }));
            Box::pin(async move { claim.map_err(|e| panic!("test claim: {e}")) })
        }
    }

    fn preparer_in(dir: &std::path::Path, checkpoint: PathBuf) -> Preparer {
        let (_feed, inventory_rx) = watch::channel(inventory());
        Preparer::new(
            PreparerConfig {
                driver: DRIVER.into(),
                node: "n".into(),
                cdi_root: dir.join("cdi"),
                checkpoint,
                boot_id: dir.join("boot_id"),
            },
            inventory_rx,
            Arc::new(ClaimsByName),
            Metrics::default(),
        )
    }

    fn named(name: &str) -> ClaimRef {
        ClaimRef {
            namespace: "ns".into(),
            uid: format!("u-{name}"),
            name: name.into(),
        }
    }

    #[tokio::test]
    async fn concurrent_calls_all_end_up_in_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = dir.path().join("checkpoint.json");
        let preparer = preparer_in(dir.path(), checkpoint.clone());
        let names: Vec<String> = (0..48).map(|i| format!("c{i}")).collect();
        let outcomes = join_all(names.iter().map(|n| {
            let claim = named(n);
            let preparer = &preparer;
            async move { preparer.prepare(&[claim]).await }
        }))
        .await;
        for (name, outcome) in names.iter().zip(&outcomes) {
            assert!(outcome[&format!("u-{name}")].is_ok(), "{name}: {outcome:?}");
        }
        let saved = checkpoint::load_or_recover(&checkpoint);
        assert_eq!(saved.claims.len(), names.len());
        // Half of them unprepared concurrently: the checkpoint holds the other half.
        join_all(names.iter().step_by(2).map(|n| {
            let claim = named(n);
            let preparer = &preparer;
            async move { preparer.unprepare(&[claim]).await }
        }))
        .await;
        let saved = checkpoint::load_or_recover(&checkpoint);
        let left: BTreeSet<String> = names
            .iter()
            .skip(1)
            .step_by(2)
            .map(|n| format!("u-{n}"))
            .collect();
        assert_eq!(saved.claims.keys().cloned().collect::<BTreeSet<_>>(), left);
    }

    #[tokio::test]
    async fn a_checkpoint_that_cannot_be_saved_fails_the_claim_and_the_retry_saves_it() {
        let dir = tempfile::tempdir().unwrap();
        // The checkpoint's directory is a file: every save fails until it is a directory.
        let blocker = dir.path().join("plugin");
        std::fs::write(&blocker, "not a directory").unwrap();
        let checkpoint = blocker.join("checkpoint.json");
        let preparer = preparer_in(dir.path(), checkpoint.clone());
        let claim = named("c");
        let first = preparer.prepare(std::slice::from_ref(&claim)).await;
        assert!(
            matches!(first["u-c"], Err(ClaimError::Checkpoint(_))),
            "{first:?}"
        );
        std::fs::remove_file(&blocker).unwrap();
        std::fs::create_dir(&blocker).unwrap();
        // kubelet's retry finds it prepared and saves it.
        let second = preparer.prepare(std::slice::from_ref(&claim)).await;
        assert!(second["u-c"].is_ok(), "{second:?}");
        assert!(
            checkpoint::load_or_recover(&checkpoint)
                .claims
                .contains_key("u-c")
        );
    }

    #[tokio::test]
    async fn the_checkpoint_names_no_file_the_driver_touches() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint_path = dir.path().join("checkpoint.json");
        let victim = dir.path().join("victim.json");
        std::fs::write(&victim, "{}").unwrap();
        let entry = || PreparedClaim {
            name: "c".into(),
            namespace: "ns".into(),
            boot_id: String::new(),
            cdi_spec: victim.clone(),
            devices: Vec::new(),
        };
        let mut damaged = Checkpoint::default();
        damaged.claims.insert("u-c".into(), entry());
        damaged.claims.insert("../escape".into(), entry());
        checkpoint::save(&checkpoint_path, &damaged).unwrap();

        let preparer = preparer_in(dir.path(), checkpoint_path);
        assert_eq!(
            preparer.prepared().await,
            BTreeSet::from(["u-c".to_owned()]),
            "the entry whose key is no UID is dropped"
        );
        let unprepared = preparer.unprepare(&[named("c")]).await;
        assert!(unprepared["u-c"].is_ok(), "{unprepared:?}");
        assert!(victim.exists(), "the path the file named was not removed");
    }

    #[tokio::test]
    async fn a_uid_that_is_no_uid_is_refused_and_names_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let cdi_root = dir.path().join("cdi");
        std::fs::create_dir_all(&cdi_root).unwrap();
        // A file the UID would reach if it were spliced into a path unchecked.
        let victim = dir.path().join("victim.json");
        std::fs::write(&victim, "{}").unwrap();
        let config = PreparerConfig {
            driver: DRIVER.into(),
            node: "n".into(),
            cdi_root,
            checkpoint: dir.path().join("checkpoint.json"),
            boot_id: dir.path().join("boot_id"),
        };
        let (_feed, inventory_rx) = watch::channel(inventory());
        let preparer = Preparer::new(
            config,
            inventory_rx,
            Arc::new(super::super::claims::NoClaims),
            Metrics::default(),
        );
        for uid in ["../../victim", "a/b", "", &"x".repeat(65)] {
            let claim = ClaimRef {
                uid: uid.to_owned(),
                ..reference()
            };
            let prepared = preparer.prepare(std::slice::from_ref(&claim)).await;
            assert!(
                matches!(prepared[uid], Err(ClaimError::IncompleteReference { .. })),
                "{uid:?}: {:?}",
                prepared[uid]
            );
            let unprepared = preparer.unprepare(&[claim]).await;
            assert!(
                matches!(unprepared[uid], Err(ClaimError::IncompleteReference { .. })),
                "{uid:?}"
            );
        }
        assert!(victim.exists());
        assert!(uid_ok("3f2a6c1e-9b1d-4c55-8e0f-2d7b9a4c1e00"));
    }

    #[tokio::test]
    async fn a_spec_that_cannot_be_renamed_into_place_is_named_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = PreparerConfig {
            driver: DRIVER.into(),
            node: "n".into(),
            cdi_root: dir.path().join("cdi"),
            checkpoint: dir.path().join("checkpoint.json"),
            boot_id: dir.path().join("boot_id"),
        };
        let (_feed, inventory_rx) = watch::channel(inventory());
        let preparer = Preparer::new(
            config,
            inventory_rx,
            Arc::new(super::super::claims::NoClaims),
            Metrics::default(),
        );
        let path = dir.path().join("cdi").join("spec.json");
        std::fs::create_dir_all(path.join("in-the-way")).unwrap();
        let spec = build_spec(DRIVER, &[], &inventory()).unwrap();
        let err = preparer.write_spec(&path, &spec).await.unwrap_err();
        let text = err.to_string();
        assert_eq!(text.matches(path.to_str().unwrap()).count(), 1, "{text}");
        assert!(text.contains("renaming"), "{text}");
    }

    #[test]
    fn quantities_parse_to_bytes() {
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("64Mi"), Some(64 << 20));
        assert_eq!(parse_bytes("2G"), Some(2_000_000_000));
        assert_eq!(parse_bytes("1.5Gi"), None);
        assert_eq!(parse_bytes("100m"), None);
        assert_eq!(parse_bytes("Mi"), None);
        assert_eq!(parse_bytes("16Ei"), None);
    }

    #[test]
    fn config_requests_cover_subrequests() {
        assert!(applies(&[], "a/b"));
        assert!(applies(&["a".into()], "a/b"));
        assert!(applies(&["a/b".into()], "a/b"));
        assert!(!applies(&["a/c".into()], "a/b"));
        assert!(!applies(&["b".into()], "a"));
        assert_eq!(main_request("a/b"), "a");
    }
}
