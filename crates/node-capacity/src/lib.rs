//! The SGX EPC size as an extended resource in a Node's status capacity.
//!
//! Pods written for Intel's SGX stack request `sgx.intel.com/epc` in bytes (`limits:
//! {sgx.intel.com/epc: 5Mi}`). No device plugin backs that resource: it is an *extended resource
//! advertised in the node status*. The scheduler counts it against `status.capacity` (kubelet
//! copies capacity into `status.allocatable`), so a pod fits on a node while the sum of its
//! requests stays within the advertised byte count.
//!
//! This crate keeps that entry in step with the EPC size the device plugin discovered:
//!
//! * [`add_patch`] / [`remove_patch`] build the RFC 6902 JSON patches
//!   `[{"op":"add","path":"/status/capacity/sgx.intel.com~1epc","value":"<bytes>"}]` and
//!   `[{"op":"remove","path":"/status/capacity/sgx.intel.com~1epc"}]` (the `/` of the resource
//!   name escaped as `~1`, RFC 6901).
//! * [`Publisher`] sends the add patch as `PATCH /api/v1/nodes/<node>/status` with content type
//!   `application/json-patch+json`, only when the size differs from the one it last published
//!   successfully, and [`Publisher::run`] follows a [`tokio::sync::watch`] of the size, retrying
//!   failed patches with exponential backoff (a newer size replaces a pending one).
//! * [`remove`] and [`remove_from_all_nodes`] take the entry away again (uninstall). A node
//!   without the entry is not an error.
//!
//! The value is whatever the caller knows, `0` included (a node without EPC then advertises
//! `sgx.intel.com/epc: "0"`, which schedules nothing, rather than a stale size). The entry stays
//! when the publisher stops: a pod restart or rollout publishes again, and only an uninstall
//! removes it.
//!
//! The publisher's service account needs `patch` on `nodes/status` and nothing else; the removal
//! functions read nodes first (`get` / `list` on `nodes`) and are meant for an operator's
//! credentials.
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), node_capacity::Error> {
//! let client = node_capacity::in_cluster_client()?;
//! let (sizes, watched) = tokio::sync::watch::channel(Some(98_566_144));
//! let publisher = node_capacity::Publisher::new(client, "node-1");
//! publisher
//!     .run(watched, async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await;
//! # drop(sizes);
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::time::Duration;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, Config};
use tokio::sync::watch;

/// Intel's EPC resource name; its quantity is the EPC size in bytes.
pub const EPC_RESOURCE: &str = "sgx.intel.com/epc";

/// Field manager recorded by the API server for the entry (`managedFields` of the Node).
pub const FIELD_MANAGER: &str = "confcom-device-plugin";

/// HTTP status of a JSON patch that cannot be applied (e.g. removing a missing key).
const UNPROCESSABLE_ENTITY: u16 = 422;

/// Errors talking to the API server. Each message includes its cause (logged with `%err`), so the
/// causes are not also exposed as sources.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not running in a pod with a service account (no `KUBERNETES_SERVICE_HOST`, no token).
    #[error("no in-cluster Kubernetes configuration: {0}")]
    InClusterConfig(kube::config::InClusterError),
    /// Neither a kubeconfig nor an in-cluster configuration was found.
    #[error("no Kubernetes configuration (kubeconfig or in-cluster): {0}")]
    InferConfig(kube::config::InferConfigError),
    /// The client could not be built from the configuration (TLS material, proxy, …).
    #[error("cannot build the Kubernetes client: {0}")]
    Client(kube::Error),
    /// The API server refused or failed the status patch.
    #[error("patching the status of node {node:?} failed: {error}")]
    Patch {
        /// The node.
        node: String,
        /// The cause.
        error: kube::Error,
    },
    /// The node could not be read.
    #[error("reading node {node:?} failed: {error}")]
    Get {
        /// The node.
        node: String,
        /// The cause.
        error: kube::Error,
    },
    /// The nodes could not be listed.
    #[error("listing the nodes failed: {0}")]
    List(kube::Error),
}

/// The JSON pointer of `resource` in a Node: `/status/capacity/<resource, RFC 6901-escaped>`.
pub fn capacity_pointer(resource: &str) -> PointerBuf {
    PointerBuf::from_tokens(["status", "capacity", resource])
}

/// `[{"op":"add","path":"/status/capacity/<resource>","value":"<bytes>"}]`. A quantity is a
/// string in the API; a plain decimal integer is its canonical form for a byte count.
pub fn add_patch(resource: &str, bytes: u64) -> json_patch::Patch {
    json_patch::Patch(vec![PatchOperation::Add(AddOperation {
        path: capacity_pointer(resource),
        value: serde_json::Value::String(bytes.to_string()),
    })])
}

/// `[{"op":"remove","path":"/status/capacity/<resource>"}]`.
pub fn remove_patch(resource: &str) -> json_patch::Patch {
    json_patch::Patch(vec![PatchOperation::Remove(RemoveOperation {
        path: capacity_pointer(resource),
    })])
}

/// Makes sure rustls has a process-wide crypto provider (ring, as everywhere in confcom) before
/// kube builds its TLS configuration.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only when another thread installed one in between, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A client from the pod's service account (`KUBERNETES_SERVICE_HOST`/`_PORT`, the token and CA
/// under `/var/run/secrets/kubernetes.io/serviceaccount`).
pub fn in_cluster_client() -> Result<Client, Error> {
    ensure_crypto_provider();
    let config = Config::incluster().map_err(Error::InClusterConfig)?;
    Client::try_from(config).map_err(Error::Client)
}

/// A client from `KUBECONFIG` / `~/.kube/config`, else from the in-cluster service account (for
/// commands an operator runs).
pub async fn inferred_client() -> Result<Client, Error> {
    ensure_crypto_provider();
    let config = Config::infer().await.map_err(Error::InferConfig)?;
    Client::try_from(config).map_err(Error::Client)
}

/// What [`Publisher::publish`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// The node's status was patched.
    Patched,
    /// The value equals the one last published successfully; nothing was sent.
    Unchanged,
}

/// Keeps one resource in one node's status capacity equal to a byte count.
pub struct Publisher {
    nodes: Api<Node>,
    node: String,
    resource: String,
    published: Option<u64>,
    initial_backoff: Duration,
    max_backoff: Duration,
    reassert: Duration,
}

impl Publisher {
    /// First wait after a failed patch.
    pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
    /// Longest wait between attempts.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
    /// How often [`Publisher::run`] patches the value again even when it has not changed: the
    /// entry may have been reset meanwhile (kubelet clears extended resources of a re-created
    /// node, an operator may have removed it).
    pub const REASSERT: Duration = Duration::from_secs(600);

    /// A publisher of [`EPC_RESOURCE`] on `node`.
    pub fn new(client: Client, node: impl Into<String>) -> Self {
        Self {
            nodes: Api::all(client),
            node: node.into(),
            resource: EPC_RESOURCE.to_owned(),
            published: None,
            initial_backoff: Self::INITIAL_BACKOFF,
            max_backoff: Self::MAX_BACKOFF,
            reassert: Self::REASSERT,
        }
    }

    /// Publish another resource name instead of [`EPC_RESOURCE`].
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = resource.into();
        self
    }

    /// Wait `initial` after the first failure, doubling up to `max`.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Patch the unchanged value again every `every` (see [`Publisher::REASSERT`]).
    pub fn with_reassert(mut self, every: Duration) -> Self {
        self.reassert = every;
        self
    }

    /// The node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The value last published successfully.
    pub fn published(&self) -> Option<u64> {
        self.published
    }

    /// Forget what was published, so that the next [`Publisher::publish`] patches whatever the
    /// value (e.g. after something else may have reset the node's capacity).
    pub fn forget(&mut self) {
        self.published = None;
    }

    /// One attempt: patch the node's status unless `bytes` is what was last published.
    pub async fn publish(&mut self, bytes: u64) -> Result<Published, Error> {
        if self.published == Some(bytes) {
            return Ok(Published::Unchanged);
        }
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        self.nodes
            .patch_status(
                &self.node,
                &params,
                &Patch::Json::<()>(add_patch(&self.resource, bytes)),
            )
            .await
            .map_err(|error| Error::Patch {
                node: self.node.clone(),
                error,
            })?;
        self.published = Some(bytes);
        Ok(Published::Patched)
    }

    /// Keep the node's capacity at the latest value of `sizes` (`None`: nothing known yet) until
    /// `shutdown` completes or the sender is dropped. Failed patches are retried with exponential
    /// backoff; a new value cuts the wait short. The entry is left in place at the end: a
    /// restarting plugin publishes the same value again, and removal is an uninstall step.
    pub async fn run(
        mut self,
        mut sizes: watch::Receiver<Option<u64>>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut backoff = self.initial_backoff;
        loop {
            let wanted = *sizes.borrow_and_update();
            let mut retry_in = None;
            if let Some(bytes) = wanted {
                match self.publish(bytes).await {
                    Ok(Published::Patched) => {
                        backoff = self.initial_backoff;
                        tracing::info!(
                            node = %self.node,
                            resource = %self.resource,
                            bytes,
                            "advertised in the node's status capacity"
                        );
                    }
                    Ok(Published::Unchanged) => backoff = self.initial_backoff,
                    Err(err) => {
                        tracing::warn!(
                            error = %err,
                            retry_in = ?backoff,
                            "cannot advertise the EPC size in the node's status capacity"
                        );
                        retry_in = Some(backoff);
                        backoff = (backoff * 2).min(self.max_backoff);
                    }
                }
            }
            // After a failure: retry soon. Otherwise: patch again later whatever the value.
            let (wait, reassert) = match retry_in {
                Some(delay) => (delay, false),
                None => (self.reassert, true),
            };
            tokio::select! {
                () = &mut shutdown => return,
                changed = sizes.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(wait) => if reassert { self.forget() },
            }
        }
    }
}

/// What a removal did on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removed {
    /// The entry was there and has been removed.
    Removed,
    /// The node had no such entry; nothing was sent (or the API server found it gone).
    Absent,
}

fn has_capacity(node: &Node, resource: &str) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .is_some_and(|c| c.contains_key(resource))
}

async fn remove_present(nodes: &Api<Node>, node: &str, resource: &str) -> Result<Removed, Error> {
    match nodes
        .patch_status(
            node,
            &PatchParams::default(),
            &Patch::Json::<()>(remove_patch(resource)),
        )
        .await
    {
        Ok(_) => Ok(Removed::Removed),
        // The entry went away between the read and the patch.
        Err(kube::Error::Api(status)) if status.code == UNPROCESSABLE_ENTITY => Ok(Removed::Absent),
        Err(error) => Err(Error::Patch {
            node: node.to_owned(),
            error,
        }),
    }
}

/// Remove `resource` from `node`'s status capacity; a node without it is left alone.
pub async fn remove(client: Client, node: &str, resource: &str) -> Result<Removed, Error> {
    let nodes: Api<Node> = Api::all(client);
    let current = nodes.get(node).await.map_err(|error| Error::Get {
        node: node.to_owned(),
        error,
    })?;
    if !has_capacity(&current, resource) {
        return Ok(Removed::Absent);
    }
    remove_present(&nodes, node, resource).await
}

/// Remove `resource` from the status capacity of every node that has it. One result per node, in
/// the order the API server listed them; a failure on one node does not stop the others.
pub async fn remove_from_all_nodes(
    client: Client,
    resource: &str,
) -> Result<Vec<(String, Result<Removed, Error>)>, Error> {
    let nodes: Api<Node> = Api::all(client);
    let list = nodes
        .list(&ListParams::default())
        .await
        .map_err(Error::List)?;
    let mut results = Vec::new();
    for node in list.items {
        let name = node.metadata.name.clone().unwrap_or_default();
        let result = if has_capacity(&node, resource) {
            remove_present(&nodes, &name, resource).await
        } else {
            Ok(Removed::Absent)
        };
        results.push((name, result));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_the_rfc_6902_documents_intel_sends() {
        assert_eq!(
            serde_json::to_string(&add_patch(EPC_RESOURCE, 98_566_144)).unwrap(),
            r#"[{"op":"add","path":"/status/capacity/sgx.intel.com~1epc","value":"98566144"}]"#
        );
        assert_eq!(
            serde_json::to_string(&remove_patch(EPC_RESOURCE)).unwrap(),
            r#"[{"op":"remove","path":"/status/capacity/sgx.intel.com~1epc"}]"#
        );
    }

    #[test]
    fn pointer_escapes_tilde_and_slash() {
        assert_eq!(
            capacity_pointer("a~b/c").as_str(),
            "/status/capacity/a~0b~1c"
        );
    }

    #[test]
    fn the_patch_applies_to_a_node_document() {
        let mut node = serde_json::json!({
            "metadata": {"name": "n"},
            "status": {"capacity": {"cpu": "4"}}
        });
        json_patch::patch(&mut node, &add_patch(EPC_RESOURCE, 4096)).unwrap();
        assert_eq!(node["status"]["capacity"]["sgx.intel.com/epc"], "4096");
        assert_eq!(node["status"]["capacity"]["cpu"], "4");
        json_patch::patch(&mut node, &remove_patch(EPC_RESOURCE)).unwrap();
        assert_eq!(node["status"]["capacity"], serde_json::json!({"cpu": "4"}));
        // Removing again fails, which the API server reports as 422.
        assert!(json_patch::patch(&mut node, &remove_patch(EPC_RESOURCE)).is_err());
    }
}
