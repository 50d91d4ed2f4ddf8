//! The SGX DRA driver (`--dra`): its kubelet-plugin DaemonSet, the narrowest RBAC for publishing
//! its node's ResourceSlices, the ValidatingAdmissionPolicy that keeps each driver pod to the
//! slices of its own node, the DeviceClasses apps claim from, and the quote helper's claim on DRA
//! nodes.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MatchResources, NamedRuleWithOperations, ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding, ValidatingAdmissionPolicyBindingSpec,
    ValidatingAdmissionPolicySpec, Validation, Variable,
};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule};
use k8s_openapi::api::resource::v1::{
    CELDeviceSelector, CapacityRequirements, DeviceClaim, DeviceClass, DeviceClassConfiguration,
    DeviceClassSpec, DeviceRequest, DeviceSelector, ExactDeviceRequest, OpaqueDeviceConfiguration,
    ResourceClaimSpec, ResourceClaimTemplate, ResourceClaimTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;

use super::RenderOptions;
use super::node_daemons::{
    daemon_set, discovery, downward_env, kubelet_plugin_container, node_daemon_pod_spec,
};
use super::parts::{self, *};
use crate::names::*;

/// EPC the quote helper's enclaves (QE3, PCE) claim on a DRA node.
pub(super) const QUOTE_HELPER_EPC: &str = "4Mi";

/// `device.driver == "<driver>"`: every device of the SGX driver, whatever its attributes.
pub fn epc_selector() -> String {
    format!("device.driver == \"{DRA_DRIVER}\"")
}

/// The EPC selector, and the provisioning device node present (an absent attribute selects
/// nothing instead of aborting the allocation).
pub fn provision_selector() -> String {
    let attrs = format!("device.attributes[\"{DRA_DRIVER}\"]");
    format!(
        "{} && \"{DRA_ATTR_PROVISIONING}\" in {attrs} && {attrs}.{DRA_ATTR_PROVISIONING}",
        epc_selector()
    )
}

/// A claim selector for platforms whose TCB is up to date (`tcbStatus == "UpToDate"`), as the
/// examples and the deployment guide show it. A device without the attribute (its platform not
/// attested yet) is not selected, rather than aborting the allocation.
pub fn tcb_up_to_date_selector() -> String {
    let attrs = format!("device.attributes[\"{DRA_DRIVER}\"]");
    format!("\"{DRA_ATTR_TCB_STATUS}\" in {attrs} && {attrs}.{DRA_ATTR_TCB_STATUS} == \"UpToDate\"")
}

fn cel(expression: String) -> DeviceSelector {
    DeviceSelector {
        cel: Some(CELDeviceSelector { expression }),
    }
}

fn opaque_config(field: &str) -> DeviceClassConfiguration {
    DeviceClassConfiguration {
        opaque: Some(OpaqueDeviceConfiguration {
            driver: s(DRA_DRIVER),
            parameters: RawExtension(serde_json::json!({
                "apiVersion": DRA_CONFIG_API_VERSION,
                "kind": DRA_CONFIG_KIND,
                field: true,
            })),
        }),
    }
}

/// The three DeviceClasses: plain EPC, EPC wired to the quote helper, EPC with provisioning.
/// With `extended_resources`, pods' `sgx.intel.com/enclave` and `sgx.intel.com/provision`
/// requests map to the EPC and provision classes on nodes no device plugin serves (KEP-5004).
pub(super) fn device_classes(opts: &RenderOptions) -> Vec<DeviceClass> {
    let class =
        |name: &str, selector: String, config: Option<&str>, extended: Option<&str>| DeviceClass {
            metadata: meta(name, None, COMPONENT_DRA_DRIVER),
            spec: Some(DeviceClassSpec {
                selectors: Some(vec![cel(selector)]),
                config: config.map(|field| vec![opaque_config(field)]),
                extended_resource_name: extended.filter(|_| opts.dra_extended_resources).map(s),
            }),
        };
    vec![
        class(DRA_CLASS_EPC, epc_selector(), None, Some(RESOURCE_ENCLAVE)),
        class(
            DRA_CLASS_QUOTE_HELPER,
            epc_selector(),
            Some("quoteHelper"),
            None,
        ),
        class(
            DRA_CLASS_PROVISION,
            provision_selector(),
            Some("provision"),
            Some(RESOURCE_PROVISION),
        ),
    ]
}

pub(super) fn service_account(opts: &RenderOptions) -> ServiceAccount {
    parts::service_account(opts, DRA_DRIVER_SERVICE_ACCOUNT, COMPONENT_DRA_DRIVER)
}

/// Exactly the verbs the driver uses: its publisher lists its node's ResourceSlices, creates
/// missing ones, replaces (PUT, `update`) changed ones and deletes obsolete ones; the kubelet
/// plugin gets the claims it prepares; the publisher gets its Node for the slices' owner
/// reference. No `get`, `watch` or `patch` of slices. Which slices it may write is narrowed to its
/// own node by [`slice_policy`].
pub(super) fn cluster_role() -> ClusterRole {
    let rule = |group: &str, resource: &str, verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![s(group)]),
        resources: Some(vec![s(resource)]),
        verbs: verbs.iter().map(|v| s(v)).collect(),
        ..PolicyRule::default()
    };
    ClusterRole {
        metadata: meta(DRA_DRIVER_CLUSTER_ROLE, None, COMPONENT_DRA_DRIVER),
        rules: Some(vec![
            rule(
                "resource.k8s.io",
                "resourceslices",
                &["list", "create", "update", "delete"],
            ),
            rule("resource.k8s.io", "resourceclaims", &["get"]),
            rule("", "nodes", &["get"]),
        ]),
        ..ClusterRole::default()
    }
}

pub(super) fn cluster_role_binding(opts: &RenderOptions) -> ClusterRoleBinding {
    parts::cluster_role_binding(
        opts,
        DRA_DRIVER_CLUSTER_ROLE,
        DRA_DRIVER_SERVICE_ACCOUNT,
        COMPONENT_DRA_DRIVER,
    )
}

/// The username the API server gives the driver's pods.
pub fn driver_username(namespace: &str) -> String {
    format!("system:serviceaccount:{namespace}:{DRA_DRIVER_SERVICE_ACCOUNT}")
}

/// The policy's variables, in evaluation order (later ones may use earlier ones).
pub fn slice_policy_variables() -> Vec<(&'static str, String)> {
    vec![
        (
            "hasNode",
            format!("'{USER_EXTRA_NODE_NAME}' in request.userInfo.extra"),
        ),
        (
            "userNode",
            format!("variables.hasNode ? request.userInfo.extra['{USER_EXTRA_NODE_NAME}'][0] : ''"),
        ),
        // The slice as stored (DELETE has no new object) or as written.
        (
            "slice",
            s("request.operation == 'DELETE' ? oldObject : object"),
        ),
        (
            "sliceNode",
            s("has(variables.slice.spec.nodeName) ? variables.slice.spec.nodeName : ''"),
        ),
    ]
}

/// The policy's validations: (expression, message or message expression, is an expression).
pub fn slice_policy_validations() -> Vec<(String, String, bool)> {
    vec![
        (
            s("variables.hasNode"),
            format!(
                "no node association found for the SGX DRA driver's service account: its token \
                 must be bound to a pod on a node ({USER_EXTRA_NODE_NAME} in the user's extra \
                 info, ServiceAccountTokenPodNodeInfo)"
            ),
            false,
        ),
        (
            format!("variables.slice.spec.driver == '{DRA_DRIVER}'"),
            format!("the SGX DRA driver may only write ResourceSlices of driver {DRA_DRIVER}"),
            false,
        ),
        (
            s("variables.sliceNode == variables.userNode"),
            s(
                "'the SGX DRA driver on node ' + variables.userNode + ' may only write \
               ResourceSlices with spec.nodeName ' + variables.userNode + ', not \"' + \
               variables.sliceNode + '\"'",
            ),
            true,
        ),
    ]
}

/// Ties the driver's ServiceAccount to the ResourceSlices of the node its pod runs on: the node
/// authorizer and NodeRestriction guard kubelets' slices, but a ServiceAccount's RBAC is
/// cluster-wide.
pub(super) fn slice_policy(opts: &RenderOptions) -> ValidatingAdmissionPolicy {
    ValidatingAdmissionPolicy {
        metadata: meta(DRA_DRIVER_SLICE_POLICY, None, COMPONENT_DRA_DRIVER),
        spec: Some(ValidatingAdmissionPolicySpec {
            failure_policy: Some(s("Fail")),
            match_constraints: Some(MatchResources {
                resource_rules: Some(vec![NamedRuleWithOperations {
                    api_groups: Some(vec![s("resource.k8s.io")]),
                    api_versions: Some(vec![s("*")]),
                    operations: Some(vec![s("CREATE"), s("UPDATE"), s("DELETE")]),
                    resources: Some(vec![s("resourceslices")]),
                    ..NamedRuleWithOperations::default()
                }]),
                ..MatchResources::default()
            }),
            match_conditions: Some(vec![MatchCondition {
                name: s("sgx-dra-driver-service-account"),
                expression: format!(
                    "request.userInfo.username == '{}'",
                    driver_username(&opts.namespace)
                ),
            }]),
            variables: Some(
                slice_policy_variables()
                    .into_iter()
                    .map(|(name, expression)| Variable {
                        name: s(name),
                        expression,
                    })
                    .collect(),
            ),
            validations: Some(
                slice_policy_validations()
                    .into_iter()
                    .map(|(expression, message, is_expression)| Validation {
                        expression,
                        message: (!is_expression).then(|| message.clone()),
                        message_expression: is_expression.then_some(message),
                        reason: Some(s("Forbidden")),
                    })
                    .collect(),
            ),
            ..ValidatingAdmissionPolicySpec::default()
        }),
        ..ValidatingAdmissionPolicy::default()
    }
}

pub(super) fn slice_policy_binding() -> ValidatingAdmissionPolicyBinding {
    ValidatingAdmissionPolicyBinding {
        metadata: meta(DRA_DRIVER_SLICE_POLICY, None, COMPONENT_DRA_DRIVER),
        spec: ValidatingAdmissionPolicyBindingSpec {
            policy_name: s(DRA_DRIVER_SLICE_POLICY),
            validation_actions: vec![s("Deny")],
            ..ValidatingAdmissionPolicyBindingSpec::default()
        },
    }
}

/// The kubelet plugin: registration socket, DRA socket, checkpoint and CDI specs in host
/// directories at the same paths as on the host (kubelet and the runtime read them there), the
/// SGX device nodes and sysfs read-only for discovery; and for the attestation attributes, where a
/// quote helper runs (or in simulation), its socket's directory read-only and the PCCS for
/// collateral.
pub(super) fn daemon(opts: &RenderOptions) -> DaemonSet {
    let plugin_dir = format!("{KUBELET_PLUGINS_DIR}/{DRA_DRIVER}");
    let mut args = vec![
        s("dra-driver"),
        s("--node-name"),
        format!("$({ENV_NODE_NAME})"),
        s("--metrics-addr"),
        format!("0.0.0.0:{DRA_DRIVER_METRICS_PORT}"),
    ];
    let mut mounts = vec![
        mount("plugins-registry", KUBELET_PLUGINS_REGISTRY_DIR, false),
        mount("plugin-dir", &plugin_dir, false),
        mount("cdi", CDI_DYNAMIC_DIR, false),
    ];
    let mut volumes = vec![
        host_path_volume(
            "plugins-registry",
            KUBELET_PLUGINS_REGISTRY_DIR,
            "Directory",
        ),
        host_path_volume("plugin-dir", &plugin_dir, "DirectoryOrCreate"),
        host_path_volume("cdi", CDI_DYNAMIC_DIR, "DirectoryOrCreate"),
    ];
    discovery(opts, &mut args, &mut mounts, &mut volumes);
    let mut env = vec![
        downward_env(ENV_NODE_NAME, "spec.nodeName"),
        downward_env(ENV_POD_UID, "metadata.uid"),
    ];
    // The attestation attributes: on simulated nodes the driver takes the node's quote through the
    // quote helper's socket; on hardware it reads the platform evidence the quote helper publishes
    // beside its socket (the driver has no enclave of its own), so there only with the quote
    // helper. The socket's directory is read-only. The tcbStatus attribute takes collateral from
    // the PCCS the quote helpers use: in simulation the in-cluster PCCS (it serves the simulated
    // platforms' collateral), on hardware `--pccs-url`, else the in-cluster PCCS, else Intel's
    // PCS; the driver trusts the add-on's CA where it serves that PCCS over HTTPS.
    let attests = opts.simulate || opts.enable_quote_helper;
    if attests {
        mounts.push(mount("aesmd", AESMD_DIR, true));
        volumes.push(host_path_volume("aesmd", AESMD_DIR, "DirectoryOrCreate"));
    }
    // (`--pccs-url` is refused with `--simulate`: the in-cluster PCCS is the only one there.)
    let pccs_url = if opts.simulate {
        opts.enable_pccs.then(|| super::pccs::in_cluster_url(opts))
    } else if opts.enable_quote_helper {
        Some(
            opts.quote_helper_pccs_url()
                .unwrap_or_else(|| INTEL_PCS_URL.to_owned()),
        )
    } else {
        None
    };
    if let Some(url) = pccs_url {
        let in_cluster = opts.enable_pccs && url == super::pccs::in_cluster_url(opts);
        args.extend([s("--pccs-url"), url]);
        if in_cluster && opts.pccs_tls.is_some() {
            let (volume, ca_mount, ssl_cert_file) = super::pccs::pccs_ca_trust();
            volumes.push(volume);
            mounts.push(ca_mount);
            env.push(ssl_cert_file);
        }
    }
    let container = kubelet_plugin_container(
        opts,
        "dra-driver",
        args,
        env,
        mounts,
        DRA_DRIVER_METRICS_PORT,
    );
    let reason = "registers with the kubelet through sockets in the root-owned host directories \
                  /var/lib/kubelet/plugins_registry and /var/lib/kubelet/plugins and writes CDI \
                  specs to /var/run/cdi; every capability is dropped";
    let spec = PodSpec {
        service_account_name: Some(s(DRA_DRIVER_SERVICE_ACCOUNT)),
        automount_service_account_token: Some(true),
        ..node_daemon_pod_spec(opts, super::Pool::Dra, container, volumes)
    };
    daemon_set(opts, DRA_DRIVER_NAME, COMPONENT_DRA_DRIVER, reason, spec)
}

/// The class the quote helper claims from on DRA nodes: on hardware the provision class (the
/// quoting and provisioning enclaves need EPC and the provisioning device node, the DRA form of
/// the device plugin resources it requests elsewhere); a simulated device has no provisioning node
/// and the simulated backend needs none, so there the EPC class.
pub fn quote_helper_class(simulate: bool) -> &'static str {
    if simulate {
        DRA_CLASS_EPC
    } else {
        DRA_CLASS_PROVISION
    }
}

/// The claim of the quote helper on DRA nodes: EPC from [`quote_helper_class`].
pub(super) fn quote_helper_claim_template(opts: &RenderOptions) -> ResourceClaimTemplate {
    ResourceClaimTemplate {
        metadata: meta(
            DRA_QUOTE_HELPER_CLAIM_TEMPLATE,
            Some(&opts.namespace),
            COMPONENT_QUOTE_HELPER,
        ),
        spec: Some(ResourceClaimTemplateSpec {
            metadata: None,
            spec: Some(ResourceClaimSpec {
                devices: Some(DeviceClaim {
                    requests: Some(vec![DeviceRequest {
                        name: s("sgx"),
                        exactly: Some(ExactDeviceRequest {
                            device_class_name: s(quote_helper_class(opts.simulate)),
                            capacity: Some(CapacityRequirements {
                                requests: Some(BTreeMap::from([(
                                    s(DRA_CAPACITY_EPC),
                                    k8s_openapi::apimachinery::pkg::api::resource::Quantity(s(
                                        QUOTE_HELPER_EPC,
                                    )),
                                )])),
                            }),
                            ..ExactDeviceRequest::default()
                        }),
                        ..DeviceRequest::default()
                    }]),
                    ..DeviceClaim::default()
                }),
            }),
        }),
    }
}
