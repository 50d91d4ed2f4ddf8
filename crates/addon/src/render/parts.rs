//! Building blocks shared by the rendered objects: labels, metadata, hardening, probes, placement.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Container, PodSecurityContext, PodSpec, PodTemplateSpec, Secret, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ContainerPort, HTTPGetAction, HostPathVolumeSource, NodeAffinity,
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Probe, SeccompProfile,
    SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Pool, RenderOptions};
use crate::certs::CertBundle;
use crate::names::*;

pub(super) fn s(v: &str) -> String {
    v.to_owned()
}

pub(super) fn labels(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (s(LABEL_PART_OF), s(PART_OF)),
        (s(LABEL_COMPONENT), s(component)),
        (s(LABEL_NAME), s("confcom")),
        (s(LABEL_MANAGED_BY), s("confcom-addon-render")),
    ])
}

pub(super) fn selector_labels(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (s(LABEL_PART_OF), s(PART_OF)),
        (s(LABEL_COMPONENT), s(component)),
    ])
}

pub(super) fn meta(name: &str, namespace: Option<&str>, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(s(name)),
        namespace: namespace.map(s),
        labels: Some(labels(component)),
        ..ObjectMeta::default()
    }
}

/// The service account `name` of `component` in the add-on's namespace.
pub(super) fn service_account(opts: &RenderOptions, name: &str, component: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(name, Some(&opts.namespace), component),
        ..ServiceAccount::default()
    }
}

/// The binding of the cluster role `role` (and named after it) to `component`'s service account
/// `service_account` in the add-on's namespace.
pub(super) fn cluster_role_binding(
    opts: &RenderOptions,
    role: &str,
    service_account: &str,
    component: &str,
) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(role, None, component),
        role_ref: RoleRef {
            api_group: Some(s("rbac.authorization.k8s.io")),
            kind: s("ClusterRole"),
            name: s(role),
        },
        subjects: Some(vec![Subject {
            kind: s("ServiceAccount"),
            name: s(service_account),
            namespace: Some(opts.namespace.clone()),
            ..Subject::default()
        }]),
    }
}

pub(super) fn quantities(entries: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    entries
        .iter()
        .map(|(k, v)| (s(k), Quantity(s(v))))
        .collect()
}

pub(super) fn hardened(run_as_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(!run_as_root),
        run_as_user: Some(if run_as_root { 0 } else { NONROOT_UID }),
        run_as_group: Some(if run_as_root { 0 } else { NONROOT_UID }),
        capabilities: Some(Capabilities {
            drop: Some(vec![s("ALL")]),
            add: None,
        }),
        seccomp_profile: Some(runtime_default()),
        ..SecurityContext::default()
    }
}

pub(super) fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: s("RuntimeDefault"),
        localhost_profile: None,
    }
}

pub(super) fn host_path_volume(name: &str, path: &str, type_: &str) -> Volume {
    Volume {
        name: s(name),
        host_path: Some(HostPathVolumeSource {
            path: s(path),
            type_: Some(s(type_)),
        }),
        ..Volume::default()
    }
}

pub(super) fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: s(name),
        mount_path: s(path),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

/// A `kubernetes.io/tls` Secret with a server's certificate and key.
pub(super) fn tls_secret(
    opts: &RenderOptions,
    name: &str,
    component: &str,
    certs: &CertBundle,
) -> Secret {
    Secret {
        metadata: meta(name, Some(&opts.namespace), component),
        type_: Some(s("kubernetes.io/tls")),
        data: Some(BTreeMap::from([
            (s("tls.crt"), ByteString(certs.cert_pem.as_bytes().to_vec())),
            (s("tls.key"), ByteString(certs.key_pem.as_bytes().to_vec())),
        ])),
        ..Secret::default()
    }
}

pub(super) fn http_probe(path: &str, port: &str, scheme: Option<&str>, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(s(path)),
            port: IntOrString::String(s(port)),
            scheme: scheme.map(s),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

pub(super) fn named_port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(s(name)),
        container_port: i32::from(port),
        protocol: Some(s("TCP")),
        ..ContainerPort::default()
    }
}

pub(super) fn sgx_tolerations() -> Vec<Toleration> {
    vec![
        Toleration {
            key: Some(s(RESOURCE_EPC_MIB)),
            operator: Some(s("Equal")),
            value: Some(s("true")),
            effect: Some(s("NoSchedule")),
            ..Toleration::default()
        },
        Toleration {
            key: Some(s(RESOURCE_INTEL_EPC)),
            operator: Some(s("Exists")),
            ..Toleration::default()
        },
        Toleration {
            key: Some(s("CriticalAddonsOnly")),
            operator: Some(s("Exists")),
            ..Toleration::default()
        },
    ]
}

pub(super) fn node_requirement(key: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: s(key),
        operator: s("In"),
        values: Some(values.iter().map(|v| s(v)).collect()),
    }
}

/// Node placement of the node daemons of `pool`: (nodeSelector, affinity).
///
/// Without `--dra-node-selector` one pool holds every SGX node, served by the device plugin or
/// (`--dra`) by the DRA driver. With it, the DRA pool is exactly the nodes with those labels, and
/// the device plugin pool excludes them (one `NotIn` per label, ORed), so no node runs both.
pub(super) fn node_placement(
    opts: &RenderOptions,
    pool: Pool,
) -> (BTreeMap<String, String>, Option<Affinity>) {
    let split = opts.dra && !opts.dra_node_selector.is_empty();
    if split && pool == Pool::Dra {
        let mut selector = BTreeMap::from([(s("kubernetes.io/os"), s("linux"))]);
        if !opts.simulate {
            selector.insert(s("kubernetes.io/arch"), s("amd64"));
        }
        selector.extend(opts.dra_node_selector.clone());
        return (selector, None);
    }
    let (selector, terms) = sgx_placement(opts);
    if !split {
        return (selector, terms.map(required_affinity));
    }
    // Not a DRA node: for every existing term (or none), one term per DRA label saying the node
    // lacks that label value.
    let base = terms.unwrap_or_else(|| vec![NodeSelectorTerm::default()]);
    let mut excluded = Vec::new();
    for term in &base {
        for (key, value) in &opts.dra_node_selector {
            let mut term = term.clone();
            term.match_expressions
                .get_or_insert_with(Vec::new)
                .push(NodeSelectorRequirement {
                    key: key.clone(),
                    operator: s("NotIn"),
                    values: Some(vec![value.clone()]),
                });
            excluded.push(term);
        }
    }
    (selector, Some(required_affinity(excluded)))
}

fn required_affinity(terms: Vec<NodeSelectorTerm>) -> Affinity {
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: terms,
            }),
            ..NodeAffinity::default()
        }),
        ..Affinity::default()
    }
}

/// The SGX nodes: (nodeSelector, ORed node affinity terms).
fn sgx_placement(
    opts: &RenderOptions,
) -> (BTreeMap<String, String>, Option<Vec<NodeSelectorTerm>>) {
    let mut selector = BTreeMap::from([(s("kubernetes.io/os"), s("linux"))]);
    if !opts.node_selector.is_empty() {
        selector.extend(opts.node_selector.clone());
        return (selector, None);
    }
    if opts.simulate {
        return (selector, None);
    }
    // SGX exists only on x86-64; the terms are ORed: NFD's SGX label, or the `tee=sgx` label the
    // AKS documentation asks for on SGX nodes outside Azure.
    selector.insert(s("kubernetes.io/arch"), s("amd64"));
    let terms = vec![
        NodeSelectorTerm {
            match_expressions: Some(vec![node_requirement(NFD_SGX_LABEL, &["true"])]),
            ..NodeSelectorTerm::default()
        },
        NodeSelectorTerm {
            match_expressions: Some(vec![node_requirement(TEE_LABEL, &["sgx"])]),
            ..NodeSelectorTerm::default()
        },
    ];
    (selector, Some(terms))
}

/// A Deployment of the add-on's cluster services (webhook, PCCS): one container, non-root, on
/// Linux nodes, tolerating `CriticalAddonsOnly`, `system-cluster-critical`, no service-account
/// token.
pub(super) fn cluster_deployment(
    opts: &RenderOptions,
    name: &str,
    component: &str,
    container: Container,
    volumes: Vec<Volume>,
    replicas: i32,
    strategy: Option<DeploymentStrategy>,
) -> Deployment {
    let spec = PodSpec {
        containers: vec![container],
        volumes: Some(volumes),
        node_selector: Some(BTreeMap::from([(s("kubernetes.io/os"), s("linux"))])),
        tolerations: Some(vec![Toleration {
            key: Some(s("CriticalAddonsOnly")),
            operator: Some(s("Exists")),
            ..Toleration::default()
        }]),
        priority_class_name: Some(s("system-cluster-critical")),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(NONROOT_UID),
            run_as_group: Some(NONROOT_UID),
            fs_group: Some(NONROOT_UID),
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        }),
        ..PodSpec::default()
    };
    Deployment {
        metadata: meta(name, Some(&opts.namespace), component),
        spec: DeploymentSpec {
            replicas: Some(replicas),
            strategy,
            selector: LabelSelector {
                match_labels: Some(selector_labels(component)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(component)),
                    ..ObjectMeta::default()
                }),
                spec: Some(spec),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}
