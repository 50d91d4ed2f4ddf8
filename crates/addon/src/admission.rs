//! The admission logic of the webhook: `admission.k8s.io/v1` AdmissionReview in, AdmissionReview
//! with a JSONPatch out. Pure functions over bytes; the HTTPS server lives in [`crate::server`].
//!
//! Two things are done to a pod, each only where it is missing, so that a second invocation adds
//! nothing:
//!
//! - **Intel's resources**, for every container and init container that requests
//!   `sgx.intel.com/epc` (as Intel's SGX webhook does): `sgx.intel.com/enclave: 1` in its limits
//!   and, where it lists requests, its requests (the device node), `sgx.intel.com/provision: 1` too when the pod annotation
//!   `sgx.intel.com/quote-provider` names the container, the annotation
//!   `epc-limit.nri.io/container.<name>` with its EPC in bytes, and on the pod the annotation
//!   `sgx.intel.com/epc` with the pod's EPC in binary-SI form. A quantity that cannot be read is
//!   refused with a message naming the container.
//! - **The quote-helper wiring**, for the containers that request EPC of a pod that opted in (pod
//!   label, or namespace label as decided by the webhook configuration's namespaceSelector), and
//!   for the `sgx.intel.com/epc` containers of a pod annotated `sgx.intel.com/quote-provider:
//!   aesmd`: `SGX_AESM_ADDR=1` and a read-only mount of the host's `/var/run/aesmd` (a Unix socket
//!   stays connectable on a read-only mount), and the hostPath volume. A pod that brings its own
//!   aesmd sidecar (a container named `aesmd` besides another EPC container) shares a memory
//!   `emptyDir` between them instead, as with Intel's webhook.
//!
//! The add-on's own pods are never mutated. Anything else unexpected in the pod admits it unchanged
//! with a warning: the webhook fails open, as its `failurePolicy: Ignore` does.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::names::*;
use crate::quantity;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut>,
}

/// The `metav1.Status` of a refusal.
#[derive(Debug, Serialize)]
struct StatusOut {
    code: u16,
    reason: &'static str,
    message: String,
}

/// How the pod reached this webhook entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptIn {
    /// Selected by the pod label: the pod must carry `confcom.sgx/quote-helper: "true"`.
    PodLabel,
    /// Selected by the namespace label: every pod qualifies unless it opts out with `"false"`.
    Namespace,
    /// Selected because a container requests `sgx.intel.com/epc`: Intel's resources, and the
    /// wiring only with the annotation `sgx.intel.com/quote-provider: aesmd`.
    IntelEpc,
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
    /// Refuse the pod, with this message.
    Deny(String),
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
        let Some(spec) = &pod.spec else {
            return Decision::Skip(Skip::Unreadable("pod has no spec".to_owned()));
        };
        let annotations = pod.metadata.annotations.as_ref();
        let quote_provider = annotations
            .and_then(|a| a.get(ANNOTATION_QUOTE_PROVIDER))
            .map(String::as_str);
        let containers = all_containers(spec);

        let intel = match intel_resources(&containers, quote_provider) {
            Ok(intel) => intel,
            Err(message) => return Decision::Deny(message),
        };

        let label = labels.get(LABEL_QUOTE_HELPER_OPT_IN).map(String::as_str);
        let opted_in = match opt_in {
            OptIn::PodLabel => label == Some("true"),
            OptIn::Namespace => label != Some("false"),
            OptIn::IntelEpc => false,
        };
        let aesmd = quote_provider == Some(QUOTE_PROVIDER_AESMD);
        let targets: Vec<&Slot> = containers
            .iter()
            .filter(|slot| {
                (opted_in && self.requests_epc(slot.container))
                    || (aesmd && intel.users.contains(&slot.path))
            })
            .collect();
        if targets.is_empty() && intel.users.is_empty() {
            let any_epc = containers.iter().any(|s| self.requests_epc(s.container));
            return Decision::Skip(if opted_in || (aesmd && !any_epc) {
                Skip::NoEpcRequest
            } else {
                Skip::NotOptedIn
            });
        }

        let mut ops = intel.ops;
        ops.extend(wiring(spec, &targets, &intel.users, quote_provider));
        ops.extend(annotation_ops(annotations, intel.annotations));
        if ops.is_empty() {
            return Decision::Skip(Skip::AlreadyWired);
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
            status: None,
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
            Decision::Deny(message) => {
                response.allowed = false;
                response.status = Some(StatusOut {
                    code: 403,
                    reason: "Forbidden",
                    message: message.clone(),
                });
            }
        }
        let out = ReviewOut {
            api_version: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            response,
        };
        Ok((serde_json::to_vec(&out)?, decision))
    }
}

/// One container of the pod and where it sits.
struct Slot<'a> {
    /// JSON pointer of the container, `/spec/containers/0`.
    path: String,
    container: &'a Container,
    /// A plain init container: runs before the app containers, beside only the restartable init
    /// containers (sidecars) started before it.
    init: bool,
}

/// Init containers first, then the app containers.
fn all_containers(spec: &PodSpec) -> Vec<Slot<'_>> {
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let init = init.iter().enumerate().map(|(i, c)| Slot {
        path: format!("/spec/initContainers/{i}"),
        container: c,
        init: c.restart_policy.as_deref() != Some("Always"),
    });
    let app = spec.containers.iter().enumerate().map(|(i, c)| Slot {
        path: format!("/spec/containers/{i}"),
        container: c,
        init: false,
    });
    init.chain(app).collect()
}

/// What Intel's resources need: the operations on the containers, the annotations the pod should
/// carry, and the containers that request `sgx.intel.com/epc`.
struct IntelResources {
    ops: Vec<PatchOp>,
    annotations: BTreeMap<String, String>,
    users: Vec<String>,
}

/// The container's `sgx.intel.com/epc` quantity (limits, else requests: the API server defaults
/// requests of extended resources from limits).
fn intel_epc(container: &Container) -> Option<&str> {
    let resources = container.resources.as_ref()?;
    [&resources.limits, &resources.requests]
        .into_iter()
        .flatten()
        .find_map(|map| map.get(RESOURCE_INTEL_EPC))
        .map(|q| q.0.as_str())
}

fn intel_resources(
    containers: &[Slot<'_>],
    quote_provider: Option<&str>,
) -> Result<IntelResources, String> {
    let mut out = IntelResources {
        ops: Vec::new(),
        annotations: BTreeMap::new(),
        users: Vec::new(),
    };
    // The pod's EPC as the scheduler counts it: app containers and sidecars run together; a plain
    // init container runs alone (beside the sidecars started before it).
    let mut running: u64 = 0;
    let mut peak: u64 = 0;
    let out_of_range =
        || format!("the pod's {RESOURCE_INTEL_EPC} requests add up to more than 2^64 bytes");
    for slot in containers {
        let container = slot.container;
        let Some(text) = intel_epc(container) else {
            continue;
        };
        let bytes = quantity::parse_bytes(text)
            .map_err(|e| format!("container {:?}: {RESOURCE_INTEL_EPC}: {e}", container.name))?;
        if slot.init {
            peak = peak.max(running.checked_add(bytes).ok_or_else(out_of_range)?);
        } else {
            running = running.checked_add(bytes).ok_or_else(out_of_range)?;
        }
        out.users.push(slot.path.clone());
        out.annotations.insert(
            format!("{ANNOTATION_NRI_EPC_LIMIT_PREFIX}.{}", container.name),
            bytes.to_string(),
        );

        let resources = container.resources.as_ref();
        let limits = resources.and_then(|r| r.limits.as_ref());
        let requests = resources.and_then(|r| r.requests.as_ref());
        let mut wanted = vec![RESOURCE_ENCLAVE];
        if quote_provider == Some(container.name.as_str()) {
            wanted.push(RESOURCE_PROVISION);
        }
        // Limits and requests of an extended resource must be equal: a value already in one of
        // them is the value for the other, else 1.
        let wanted: Vec<(&str, String)> = wanted
            .into_iter()
            .map(|r| {
                let given = limits
                    .and_then(|l| l.get(r))
                    .or_else(|| requests.and_then(|q| q.get(r)));
                (r, given.map_or_else(|| "1".to_owned(), |q| q.0.clone()))
            })
            .collect();
        add_missing(
            &mut out.ops,
            &format!("{}/resources/limits", slot.path),
            limits,
            &wanted,
            true,
        );
        // Requests absent are defaulted from limits by the API server; present, they are completed.
        add_missing(
            &mut out.ops,
            &format!("{}/resources/requests", slot.path),
            requests,
            &wanted,
            false,
        );
    }
    if !out.users.is_empty() {
        out.annotations.insert(
            ANNOTATION_INTEL_EPC.to_owned(),
            quantity::format_binary_si(running.max(peak)),
        );
    }
    Ok(out)
}

/// Adds each of `wanted` that `map` (the resource list at `path`) lacks; creates the list when it
/// is absent and `create` is set.
fn add_missing(
    ops: &mut Vec<PatchOp>,
    path: &str,
    map: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    wanted: &[(&str, String)],
    create: bool,
) {
    let missing: Vec<&(&str, String)> = wanted
        .iter()
        .filter(|(r, _)| !map.is_some_and(|m| m.contains_key(*r)))
        .collect();
    match map {
        Some(_) => ops.extend(missing.iter().map(|(r, v)| PatchOp {
            op: "add",
            path: format!("{path}/{}", pointer_escape(r)),
            value: json!(v),
        })),
        None if create && !missing.is_empty() => ops.push(PatchOp {
            op: "add",
            path: path.to_owned(),
            value: missing
                .iter()
                .map(|(r, v)| (r.to_string(), json!(v)))
                .collect(),
        }),
        None => {}
    }
}

/// `SGX_AESM_ADDR=1` and the `/var/run/aesmd` mount for `targets`, and the volume when one is
/// needed. `users` are the containers requesting `sgx.intel.com/epc`.
fn wiring(
    spec: &PodSpec,
    targets: &[&Slot<'_>],
    users: &[String],
    quote_provider: Option<&str>,
) -> Vec<PatchOp> {
    let aesmd = quote_provider == Some(QUOTE_PROVIDER_AESMD);
    // An aesmd sidecar: a container named aesmd serves the pod's other EPC containers.
    let sidecar = aesmd
        && users.len() >= 2
        && targets
            .iter()
            .any(|t| t.container.name == QUOTE_PROVIDER_AESMD && users.contains(&t.path));
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    // Reuse a volume already there for the socket directory (e.g. from the AKS sample).
    let existing = volumes.iter().find(|v| {
        v.name == AESMD_VOLUME_NAME
            || v.name == INTEL_AESMD_VOLUME_NAME
            || (!sidecar
                && v.host_path
                    .as_ref()
                    .is_some_and(|h| same_path(&h.path, AESMD_DIR)))
    });
    let volume_name = match (existing, sidecar) {
        (Some(v), _) => v.name.as_str(),
        (None, true) => INTEL_AESMD_VOLUME_NAME,
        (None, false) => AESMD_VOLUME_NAME,
    };
    let mut ops = Vec::new();
    let mut mounts_added = false;
    for slot in targets {
        let container = slot.container;
        let env = container.env.as_deref().unwrap_or_default();
        if !env.iter().any(|e| e.name == ENV_SGX_AESM_ADDR) {
            ops.push(append_op(
                &format!("{}/env", slot.path),
                container.env.is_some(),
                json!({"name": ENV_SGX_AESM_ADDR, "value": "1"}),
            ));
        }
        let mounts = container.volume_mounts.as_deref().unwrap_or_default();
        if !mounts.iter().any(|m| same_path(&m.mount_path, AESMD_DIR)) {
            // Apps only connect; an aesmd of the pod's own creates the socket.
            let read_only = !sidecar && quote_provider != Some(container.name.as_str());
            let mut mount = json!({"name": volume_name, "mountPath": AESMD_DIR});
            if read_only {
                mount["readOnly"] = json!(true);
            }
            ops.push(append_op(
                &format!("{}/volumeMounts", slot.path),
                container.volume_mounts.is_some(),
                mount,
            ));
            mounts_added = true;
        }
    }
    if existing.is_none() && mounts_added {
        let volume = if sidecar {
            json!({"name": INTEL_AESMD_VOLUME_NAME, "emptyDir": {"medium": "Memory"}})
        } else {
            json!({
                "name": AESMD_VOLUME_NAME,
                "hostPath": {"path": AESMD_DIR, "type": "DirectoryOrCreate"},
            })
        };
        ops.insert(
            0,
            append_op("/spec/volumes", spec.volumes.is_some(), volume),
        );
    }
    ops
}

/// Sets each of `wanted` that the pod's `current` annotations lack or hold with another value.
fn annotation_ops(
    current: Option<&BTreeMap<String, String>>,
    wanted: BTreeMap<String, String>,
) -> Vec<PatchOp> {
    let changed: BTreeMap<String, String> = wanted
        .into_iter()
        .filter(|(k, v)| current.and_then(|c| c.get(k)) != Some(v))
        .collect();
    if changed.is_empty() {
        return Vec::new();
    }
    match current {
        // `add` on an existing member replaces its value.
        Some(_) => changed
            .into_iter()
            .map(|(k, v)| PatchOp {
                op: "add",
                path: format!("/metadata/annotations/{}", pointer_escape(&k)),
                value: Value::String(v),
            })
            .collect(),
        None => vec![PatchOp {
            op: "add",
            path: "/metadata/annotations".to_owned(),
            value: changed
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        }],
    }
}

/// `name` as one JSON-pointer segment (RFC 6901: `~` → `~0`, `/` → `~1`).
fn pointer_escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
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
