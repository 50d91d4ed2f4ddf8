//! The admission logic of the webhook: `admission.k8s.io/v1` AdmissionReview in, AdmissionReview
//! with a JSONPatch out. Pure functions over bytes; the HTTPS server lives in [`crate::server`].
//!
//! A pod is wired to the node's quote helper when it opted in (pod label, or namespace label as
//! decided by the webhook configuration's namespaceSelector) and at least one of its containers or
//! init containers requests EPC. Each such container gets `SGX_AESM_ADDR=1` and a read-only mount of
//! the host's `/var/run/aesmd` (a Unix socket stays connectable on a read-only mount); the pod gets
//! the hostPath volume. Whatever is already there is left alone, so a second invocation adds
//! nothing. The add-on's own pods are never mutated. Anything unexpected in the pod admits it
//! unchanged with a warning: the webhook fails open, as its `failurePolicy: Ignore` does.

use std::collections::BTreeSet;

use base64::Engine;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::names::*;

/// Errors that make a review unanswerable (the HTTP layer replies 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The body is not JSON or not an AdmissionReview.
    #[error("request body is not an AdmissionReview: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The apiVersion/kind is not `admission.k8s.io/v1` `AdmissionReview`.
    #[error(
        "unsupported review {api_version:?}/{kind:?}; only admission.k8s.io/v1 AdmissionReview"
    )]
    Unsupported {
        /// Received apiVersion.
        api_version: String,
        /// Received kind.
        kind: String,
    },
    /// The review has no `request` or an empty `uid`.
    #[error("AdmissionReview without a request uid")]
    MissingRequest,
}

/// `admission.k8s.io/v1` AdmissionReview, the fields the webhook reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    api_version: String,
    kind: String,
    request: Option<RequestIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn {
    uid: String,
    kind: Option<GroupVersionKind>,
    #[serde(default)]
    sub_resource: Option<String>,
    operation: Option<String>,
    #[serde(default)]
    object: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
}

/// `admission.k8s.io/v1` AdmissionReview with a response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut {
    uid: String,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// How the pod reached this webhook entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptIn {
    /// Selected by the pod label: the pod must carry `confcom.sgx/quote-helper: "true"`.
    PodLabel,
    /// Selected by the namespace label: every pod qualifies unless it opts out with `"false"`.
    Namespace,
}

/// Why a pod was admitted unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not a pod CREATE.
    NotPodCreate,
    /// One of the add-on's own pods.
    OwnPod,
    /// The pod did not opt in (or opted out).
    NotOptedIn,
    /// No container or init container requests EPC.
    NoEpcRequest,
    /// Everything is already in place.
    AlreadyWired,
    /// The pod could not be read; admitted unchanged (fail open).
    Unreadable(String),
}

/// One RFC 6902 operation (the webhook only ever adds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatchOp {
    /// Always `"add"`.
    pub op: &'static str,
    /// JSON pointer.
    pub path: String,
    /// The value added.
    pub value: Value,
}

/// The verdict on one pod.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Admit unchanged.
    Skip(Skip),
    /// Admit with these operations (never empty).
    Patch(Vec<PatchOp>),
}

/// Webhook settings.
#[derive(Clone, Debug)]
pub struct Mutator {
    epc_resources: BTreeSet<String>,
}

impl Default for Mutator {
    fn default() -> Self {
        Self::new(std::iter::empty::<String>())
    }
}

impl Mutator {
    /// A mutator that treats [`RESOURCE_EPC_MIB`], [`RESOURCE_INTEL_EPC`] and `extra_epc_resources`
    /// as EPC requests.
    pub fn new(extra_epc_resources: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut epc_resources: BTreeSet<String> = [RESOURCE_EPC_MIB, RESOURCE_INTEL_EPC]
            .map(str::to_owned)
            .into();
        epc_resources.extend(extra_epc_resources.into_iter().map(Into::into));
        Self { epc_resources }
    }

    /// The resource names counted as EPC requests.
    pub fn epc_resources(&self) -> impl Iterator<Item = &str> {
        self.epc_resources.iter().map(String::as_str)
    }

    fn requests_epc(&self, container: &Container) -> bool {
        let Some(resources) = &container.resources else {
            return false;
        };
        [&resources.limits, &resources.requests]
            .into_iter()
            .flatten()
            .any(|map| map.keys().any(|k| self.epc_resources.contains(k)))
    }

    /// Decides what to do with a pod given as JSON (the review's `request.object`).
    pub fn decide(&self, pod_json: &Value, opt_in: OptIn) -> Decision {
        let pod: Pod = match Pod::deserialize(pod_json) {
            Ok(pod) => pod,
            Err(e) => return Decision::Skip(Skip::Unreadable(e.to_string())),
        };
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if labels.get(LABEL_PART_OF).map(String::as_str) == Some(PART_OF) {
            return Decision::Skip(Skip::OwnPod);
        }
        let label = labels.get(LABEL_QUOTE_HELPER_OPT_IN).map(String::as_str);
        let opted_in = match opt_in {
            OptIn::PodLabel => label == Some("true"),
            OptIn::Namespace => label != Some("false"),
        };
        if !opted_in {
            return Decision::Skip(Skip::NotOptedIn);
        }
        let Some(spec) = &pod.spec else {
            return Decision::Skip(Skip::Unreadable("pod has no spec".to_owned()));
        };
        let lists: [(&str, &[Container]); 2] = [
            (
                "initContainers",
                spec.init_containers.as_deref().unwrap_or_default(),
            ),
            ("containers", &spec.containers),
        ];
        let targets: Vec<(&str, usize, &Container)> = lists
            .iter()
            .flat_map(|(list, containers)| {
                containers
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| self.requests_epc(c))
                    .map(move |(i, c)| (*list, i, c))
            })
            .collect();
        if targets.is_empty() {
            return Decision::Skip(Skip::NoEpcRequest);
        }

        let volumes = spec.volumes.as_deref().unwrap_or_default();
        // Reuse a volume that already maps the host's aesmd directory (e.g. from the AKS sample).
        let existing = volumes.iter().find(|v| {
            v.name == AESMD_VOLUME_NAME
                || v.host_path
                    .as_ref()
                    .is_some_and(|h| same_path(&h.path, AESMD_DIR))
        });
        let volume_name = existing.map_or(AESMD_VOLUME_NAME, |v| v.name.as_str());
        let mut ops = Vec::new();
        let mut mounts_added = false;
        for (list, index, container) in targets {
            let base = format!("/spec/{list}/{index}");
            let env = container.env.as_deref().unwrap_or_default();
            if !env.iter().any(|e| e.name == ENV_SGX_AESM_ADDR) {
                ops.push(append_op(
                    &format!("{base}/env"),
                    container.env.is_some(),
                    json!({"name": ENV_SGX_AESM_ADDR, "value": "1"}),
                ));
            }
            let mounts = container.volume_mounts.as_deref().unwrap_or_default();
            if !mounts.iter().any(|m| same_path(&m.mount_path, AESMD_DIR)) {
                ops.push(append_op(
                    &format!("{base}/volumeMounts"),
                    container.volume_mounts.is_some(),
                    json!({"name": volume_name, "mountPath": AESMD_DIR, "readOnly": true}),
                ));
                mounts_added = true;
            }
        }
        if ops.is_empty() {
            return Decision::Skip(Skip::AlreadyWired);
        }
        if existing.is_none() && mounts_added {
            let volume = json!({
                "name": AESMD_VOLUME_NAME,
                "hostPath": {"path": AESMD_DIR, "type": "DirectoryOrCreate"},
            });
            ops.insert(
                0,
                append_op("/spec/volumes", spec.volumes.is_some(), volume),
            );
        }
        Decision::Patch(ops)
    }

    /// Answers one AdmissionReview (the HTTP request body) for the entry `opt_in`. Returns the
    /// response body and the decision (for logging and metrics).
    pub fn review(&self, body: &[u8], opt_in: OptIn) -> Result<(Vec<u8>, Decision), ReviewError> {
        let review: ReviewIn = serde_json::from_slice(body)?;
        if review.api_version != "admission.k8s.io/v1" || review.kind != "AdmissionReview" {
            return Err(ReviewError::Unsupported {
                api_version: review.api_version,
                kind: review.kind,
            });
        }
        let request = review.request.ok_or(ReviewError::MissingRequest)?;
        if request.uid.is_empty() {
            return Err(ReviewError::MissingRequest);
        }
        let is_pod = request
            .kind
            .as_ref()
            .is_some_and(|k| k.group.is_empty() && k.version == "v1" && k.kind == "Pod");
        let decision = match (&request.object, request.operation.as_deref()) {
            (Some(object), Some("CREATE")) if is_pod && request.sub_resource.is_none() => {
                self.decide(object, opt_in)
            }
            _ => Decision::Skip(Skip::NotPodCreate),
        };
        let mut response = ResponseOut {
            uid: request.uid,
            allowed: true,
            patch_type: None,
            patch: None,
            warnings: Vec::new(),
        };
        match &decision {
            Decision::Patch(ops) => {
                let patch = serde_json::to_vec(ops)?;
                response.patch_type = Some("JSONPatch");
                response.patch = Some(base64::engine::general_purpose::STANDARD.encode(patch));
            }
            Decision::Skip(Skip::Unreadable(reason)) => response.warnings.push(format!(
                "confcom webhook admitted the pod unchanged: {reason}"
            )),
            Decision::Skip(_) => {}
        }
        let out = ReviewOut {
            api_version: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            response,
        };
        Ok((serde_json::to_vec(&out)?, decision))
    }
}

fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Adds `value` to the array at `path`: appends when the array exists, creates it otherwise.
fn append_op(path: &str, exists: bool, value: Value) -> PatchOp {
    if exists {
        PatchOp {
            op: "add",
            path: format!("{path}/-"),
            value,
        }
    } else {
        PatchOp {
            op: "add",
            path: path.to_owned(),
            value: Value::Array(vec![value]),
        }
    }
}
