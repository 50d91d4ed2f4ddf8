//! The node daemons: the device plugin DaemonSet with its ServiceAccount and RBAC (it patches its
//! node's status with `sgx.intel.com/epc`), the quote helper DaemonSet and its quote provider
//! configuration.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, ObjectFieldSelector,
    PodResourceClaim, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceClaim,
    ResourceRequirements, ServiceAccount, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::parts::*;
use super::{Pool, RenderOptions};
use crate::names::*;

/// The pod spec of a node daemon in `pool`: placement, tolerations, priority, hardening.
pub(super) fn node_daemon_pod_spec(
    opts: &RenderOptions,
    pool: Pool,
    container: Container,
    volumes: Vec<Volume>,
) -> PodSpec {
    let (node_selector, affinity) = node_placement(opts, pool);
    PodSpec {
        containers: vec![container],
        volumes: Some(volumes),
        node_selector: Some(node_selector),
        affinity,
        tolerations: Some(sgx_tolerations()),
        priority_class_name: Some(s("system-node-critical")),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        }),
        termination_grace_period_seconds: Some(30),
        ..PodSpec::default()
    }
}

/// A node daemon's DaemonSet (rolling update one node at a time), stating why it runs as root.
pub(super) fn daemon_set(
    opts: &RenderOptions,
    name: &str,
    component: &str,
    root_reason: &str,
    spec: PodSpec,
) -> DaemonSet {
    let annotations = BTreeMap::from([(s(ANNOTATION_RUNS_AS_ROOT), s(root_reason))]);
    let mut metadata = meta(name, Some(&opts.namespace), component);
    metadata.annotations = Some(annotations.clone());
    DaemonSet {
        metadata,
        spec: DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector_labels(component)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(component)),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(spec),
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some(s("RollingUpdate")),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::Int(1)),
                    max_surge: Some(IntOrString::Int(0)),
                }),
            }),
            ..DaemonSetSpec::default()
        },
        ..DaemonSet::default()
    }
}

pub(super) fn device_plugin_service_account(opts: &RenderOptions) -> ServiceAccount {
    service_account(opts, DEVICE_PLUGIN_SERVICE_ACCOUNT, COMPONENT_DEVICE_PLUGIN)
}

/// The device plugin adds `sgx.intel.com/epc` (bytes) to its node's `status.capacity` with a JSON
/// patch of the status subresource: `patch` on `nodes/status`, nothing else (no read, no other
/// node field). Removing the entry at uninstall is done with the operator's credentials.
pub(super) fn device_plugin_cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: meta(DEVICE_PLUGIN_CLUSTER_ROLE, None, COMPONENT_DEVICE_PLUGIN),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![s("")]),
            resources: Some(vec![s("nodes/status")]),
            verbs: vec![s("patch")],
            ..PolicyRule::default()
        }]),
        ..ClusterRole::default()
    }
}

pub(super) fn device_plugin_cluster_role_binding(opts: &RenderOptions) -> ClusterRoleBinding {
    cluster_role_binding(
        opts,
        DEVICE_PLUGIN_CLUSTER_ROLE,
        DEVICE_PLUGIN_SERVICE_ACCOUNT,
        COMPONENT_DEVICE_PLUGIN,
    )
}

/// What a kubelet plugin (the device plugin, the DRA driver) needs for SGX discovery: `--simulate`,
/// or the host's device nodes and sysfs read-only (for discovery only: kubelet or the CDI specs
/// hand the host's device nodes to app containers); and `--epc-mib` when set.
pub(super) fn discovery(
    opts: &RenderOptions,
    args: &mut Vec<String>,
    mounts: &mut Vec<VolumeMount>,
    volumes: &mut Vec<Volume>,
) {
    if opts.simulate {
        args.push(s("--simulate"));
    } else {
        args.extend([
            s("--dev-root"),
            s("/host/dev"),
            s("--sysfs-root"),
            s("/host/sys"),
        ]);
        mounts.push(mount("host-dev", "/host/dev", true));
        mounts.push(mount("host-sys", "/host/sys", true));
        volumes.push(host_path_volume("host-dev", "/dev", "Directory"));
        volumes.push(host_path_volume("host-sys", "/sys", "Directory"));
    }
    if let Some(mib) = opts.epc_mib() {
        args.extend([s("--epc-mib"), mib.to_string()]);
    }
}

/// The container of a kubelet plugin (the device plugin, the DRA driver): the add-on's image
/// running `args`, `/metrics`, `/healthz` (liveness) and `/readyz` (readiness) on
/// `metrics_port`, small requests and limits, root (for kubelet's root-owned directories) with
/// every capability dropped.
pub(super) fn kubelet_plugin_container(
    opts: &RenderOptions,
    name: &str,
    args: Vec<String>,
    env: Vec<EnvVar>,
    mounts: Vec<VolumeMount>,
    metrics_port: u16,
) -> Container {
    let mut args = args;
    args.extend(opts.ops_limits.args());
    let memory = opts.ops_limits.memory_limit(128);
    Container {
        name: s(name),
        image: Some(opts.image.clone()),
        image_pull_policy: Some(s("IfNotPresent")),
        args: Some(args),
        env: Some(env),
        ports: Some(vec![named_port("metrics", metrics_port)]),
        liveness_probe: Some(http_probe("/healthz", "metrics", None, 20)),
        readiness_probe: Some(http_probe("/readyz", "metrics", None, 10)),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "10m"), ("memory", "32Mi")])),
            limits: Some(quantities(&[("cpu", "200m"), ("memory", &memory)])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(hardened(true)),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

/// An environment variable set from the pod's own `field_path` (the downward API).
pub(super) fn downward_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: s(name),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some(s("v1")),
                field_path: s(field_path),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

pub(super) fn device_plugin(opts: &RenderOptions) -> DaemonSet {
    let mut args = vec![
        s("device-plugin"),
        s("--plugin-dir"),
        format!("{KUBELET_DEVICE_PLUGIN_DIR}/"),
        s("--metrics-addr"),
        format!("0.0.0.0:{DEVICE_PLUGIN_METRICS_PORT}"),
    ];
    let mut mounts = vec![mount("device-plugins", KUBELET_DEVICE_PLUGIN_DIR, false)];
    let mut volumes = vec![host_path_volume(
        "device-plugins",
        KUBELET_DEVICE_PLUGIN_DIR,
        "Directory",
    )];
    discovery(opts, &mut args, &mut mounts, &mut volumes);
    // The node's name turns on the sgx.intel.com/epc entry in the node's status capacity.
    let env = vec![downward_env(ENV_NODE_NAME, "spec.nodeName")];
    let container = kubelet_plugin_container(
        opts,
        "device-plugin",
        args,
        env,
        mounts,
        DEVICE_PLUGIN_METRICS_PORT,
    );
    let reason = "registers with the kubelet through sockets in the root-owned host directory \
                  /var/lib/kubelet/device-plugins; every capability is dropped";
    // The only pod with an API token: it may patch nodes/status and nothing else.
    let spec = PodSpec {
        service_account_name: Some(s(DEVICE_PLUGIN_SERVICE_ACCOUNT)),
        automount_service_account_token: Some(true),
        ..node_daemon_pod_spec(opts, Pool::DevicePlugin, container, volumes)
    };
    daemon_set(
        opts,
        DEVICE_PLUGIN_NAME,
        COMPONENT_DEVICE_PLUGIN,
        reason,
        spec,
    )
}

/// What the hardware quote helpers' `sgx_default_qcnl.conf` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Qcnl {
    /// Everything from one PCCS.
    Pccs(String),
    /// Intel's `sgx_default_qcnl_azure.conf`: PCK certificates from Azure's THIM (the host's
    /// endpoint first, then the global cache), collateral from a PCCS or Intel's PCS (THIM's own
    /// collateral may lag Intel's TCB baseline).
    AzureThim {
        /// Where CRLs, TCB info and identities come from.
        collateral_service: String,
    },
}

/// Azure's global THIM cache (PCK certificates), API v4.
pub(super) const AZURE_THIM_URL: &str = "https://global.acccache.azure.net/sgx/certification/v4/";
/// The THIM endpoint of an Azure host (instance metadata), API v4.
pub(super) const AZURE_LOCAL_THIM_URL: &str =
    "http://169.254.169.254/metadata/THIM/sgx/certification/v4/";
/// The `api-version` THIM's PCK certificate route takes.
pub(super) const AZURE_THIM_API_VERSION: &str = "2021-07-22-preview";

/// `sgx_default_qcnl.conf` (the JSON form Intel's quote provider library reads since DCAP 1.15).
fn qcnl_conf(qcnl: &Qcnl) -> String {
    let mut conf = serde_json::Map::new();
    let mut set = |key: &str, value: serde_json::Value| {
        conf.insert(key.to_owned(), value);
    };
    match qcnl {
        Qcnl::Pccs(url) => {
            set("pccs_url", url.as_str().into());
            set("use_secure_cert", true.into());
            set("retry_times", 6.into());
            set("retry_delay", 10.into());
            set("pck_cache_expire_hours", 168.into());
            set("verify_collateral_cache_expire_hours", 168.into());
        }
        Qcnl::AzureThim { collateral_service } => {
            // Intel's sgx_default_qcnl_azure.conf, with the collateral service chosen here.
            set("pccs_url", AZURE_THIM_URL.into());
            set("use_secure_cert", true.into());
            set("collateral_service", collateral_service.as_str().into());
            set("pccs_api_version", "3.1".into());
            set("retry_times", 6.into());
            set("retry_delay", 5.into());
            set("local_pck_url", AZURE_LOCAL_THIM_URL.into());
            set("pck_cache_expire_hours", 48.into());
            set("verify_collateral_cache_expire_hours", 48.into());
            set(
                "custom_request_options",
                serde_json::json!({
                    "get_cert": {
                        "headers": { "metadata": "true" },
                        "params": { "api-version": AZURE_THIM_API_VERSION }
                    }
                }),
            );
        }
    }
    // Serializing a map of strings, bools, integers and objects cannot fail.
    let mut text = serde_json::to_string_pretty(&conf).unwrap_or_default();
    text.push('\n');
    text
}

pub(super) fn qcnl_config_map(opts: &RenderOptions, qcnl: &Qcnl) -> ConfigMap {
    ConfigMap {
        metadata: meta(
            QCNL_CONFIG_MAP_NAME,
            Some(&opts.namespace),
            COMPONENT_QUOTE_HELPER,
        ),
        data: Some(BTreeMap::from([(s(QCNL_CONF_KEY), qcnl_conf(qcnl))])),
        ..ConfigMap::default()
    }
}

/// The quote helper of one node pool: on device-plugin nodes it requests the device plugin's
/// resources, on DRA nodes it claims the same from the provision class.
pub(super) fn quote_helper(opts: &RenderOptions, pool: Pool) -> DaemonSet {
    let backend = if opts.simulate { "sim" } else { "dcap" };
    let mut args = vec![
        s("quote-helper"),
        s("--socket"),
        s(AESMD_SOCKET),
        s("--backend"),
        s(backend),
        s("--state-dir"),
        s(QUOTE_HELPER_STATE_DIR),
        s("--metrics-addr"),
        format!("0.0.0.0:{QUOTE_HELPER_METRICS_PORT}"),
    ];
    let mut mounts = vec![
        mount("aesmd", AESMD_DIR, false),
        mount("state", QUOTE_HELPER_STATE_DIR, false),
    ];
    let mut volumes = vec![
        host_path_volume("aesmd", AESMD_DIR, "DirectoryOrCreate"),
        host_path_volume("state", QUOTE_HELPER_STATE_DIR, "DirectoryOrCreate"),
    ];
    let mut env = None;
    if opts.simulate && opts.sim_ca.is_some() {
        args.extend([s("--sim-ca-dir"), s(super::pccs::SIM_CA_MOUNT)]);
        mounts.push(mount("sim-ca", super::pccs::SIM_CA_MOUNT, true));
        volumes.push(super::pccs::sim_ca_volume());
    }
    if !opts.simulate {
        // The quote provider library caches collateral under $HOME (after $AZDCAP_CACHE and
        // $XDG_CACHE_HOME); give it a writable scratch dir.
        mounts.push(mount("tmp", "/tmp", false));
        volumes.push(Volume {
            name: s("tmp"),
            empty_dir: Some(Default::default()),
            ..Volume::default()
        });
        env = Some(vec![EnvVar {
            name: s("HOME"),
            value: Some(s("/tmp")),
            ..EnvVar::default()
        }]);
        if opts.pccs_url.is_none() && opts.enable_pccs && opts.pccs_tls.is_some() {
            // The in-cluster PCCS serves HTTPS under a private CA: the quote provider library
            // trusts what SSL_CERT_FILE names besides Mozilla's roots.
            let (volume, ca_mount, ssl_cert_file) = super::pccs::pccs_ca_trust();
            volumes.push(volume);
            mounts.push(ca_mount);
            if let Some(env) = env.as_mut() {
                env.push(ssl_cert_file);
            }
        }
        if opts.quote_helper_qcnl().is_some() {
            mounts.push(VolumeMount {
                sub_path: Some(s(QCNL_CONF_KEY)),
                ..mount("qcnl", QCNL_CONF_PATH, true)
            });
            volumes.push(Volume {
                name: s("qcnl"),
                config_map: Some(ConfigMapVolumeSource {
                    name: s(QCNL_CONFIG_MAP_NAME),
                    default_mode: Some(0o444),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
    }
    // The quoting and provisioning enclaves need EPC and the provision device node, both granted
    // by the device plugin (the dependency the AKS documentation describes) or, on DRA nodes, by
    // a claim. Extended resources must have requests equal to limits.
    let mut requests = quantities(&[("cpu", "20m"), ("memory", "32Mi")]);
    args.extend(opts.ops_limits.args());
    let memory = opts.ops_limits.memory_limit(256);
    let mut limits = quantities(&[("cpu", "500m"), ("memory", &memory)]);
    let mut claims = None;
    let mut pod_claims = None;
    match pool {
        Pool::DevicePlugin => {
            let sgx = [(RESOURCE_EPC_MIB, "4"), (RESOURCE_PROVISION, "1")];
            requests.extend(quantities(&sgx));
            limits.extend(quantities(&sgx));
        }
        Pool::Dra => {
            claims = Some(vec![ResourceClaim {
                name: s("sgx"),
                request: None,
            }]);
            pod_claims = Some(vec![PodResourceClaim {
                name: s("sgx"),
                resource_claim_template_name: Some(s(DRA_QUOTE_HELPER_CLAIM_TEMPLATE)),
                ..PodResourceClaim::default()
            }]);
        }
    }
    let container = Container {
        name: s("quote-helper"),
        image: Some(if opts.simulate {
            opts.image.clone()
        } else {
            opts.dcap_image.clone()
        }),
        image_pull_policy: Some(s("IfNotPresent")),
        args: Some(args),
        env,
        ports: Some(vec![named_port("metrics", QUOTE_HELPER_METRICS_PORT)]),
        liveness_probe: Some(http_probe("/healthz", "metrics", None, 20)),
        readiness_probe: Some(http_probe("/readyz", "metrics", None, 10)),
        resources: Some(ResourceRequirements {
            requests: Some(requests),
            limits: Some(limits),
            claims,
        }),
        security_context: Some(hardened(true)),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let reason = if opts.simulate {
        "creates the AESM socket in the root-owned host directory /var/run/aesmd shared with app \
         pods; every capability is dropped"
    } else {
        "creates the AESM socket in the root-owned host directory /var/run/aesmd shared with app \
         pods and opens the root-owned SGX device nodes; every capability is dropped"
    };
    let name = match pool {
        Pool::DevicePlugin => QUOTE_HELPER_NAME,
        Pool::Dra => DRA_QUOTE_HELPER_NAME,
    };
    let spec = PodSpec {
        resource_claims: pod_claims,
        ..node_daemon_pod_spec(opts, pool, container, volumes)
    };
    daemon_set(opts, name, COMPONENT_QUOTE_HELPER, reason, spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qcnl_conf_is_json_with_the_url() {
        let text = qcnl_conf(&Qcnl::Pccs(
            "https://pccs.example:8081/sgx/certification/v4/".to_owned(),
        ));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["pccs_url"],
            "https://pccs.example:8081/sgx/certification/v4/"
        );
        assert_eq!(v["use_secure_cert"], true);
    }

    #[test]
    fn azure_thim_conf_is_intels_azure_file_with_the_collateral_service() {
        // Intel's QuoteGeneration/qcnl/linux/sgx_default_qcnl_azure.conf, as Azure users copy it.
        let intel: serde_json::Value = serde_json::from_str(
            r#"{
              "pccs_url": "https://global.acccache.azure.net/sgx/certification/v4/",
              "use_secure_cert": true,
              "collateral_service": "https://api.trustedservices.intel.com/sgx/certification/v4/",
              "pccs_api_version": "3.1",
              "retry_times": 6,
              "retry_delay": 5,
              "local_pck_url": "http://169.254.169.254/metadata/THIM/sgx/certification/v4/",
              "pck_cache_expire_hours": 48,
              "verify_collateral_cache_expire_hours": 48,
              "custom_request_options": {
                "get_cert": {
                  "headers": { "metadata": "true" },
                  "params": { "api-version": "2021-07-22-preview" }
                }
              }
            }"#,
        )
        .unwrap();
        let text = qcnl_conf(&Qcnl::AzureThim {
            collateral_service: "https://api.trustedservices.intel.com/sgx/certification/v4/"
                .to_owned(),
        });
        let ours: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(ours, intel);
        let text = qcnl_conf(&Qcnl::AzureThim {
            collateral_service: "http://sgx-pccs.kube-system.svc:8081/sgx/certification/v4/"
                .to_owned(),
        });
        let ours: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            ours["collateral_service"],
            "http://sgx-pccs.kube-system.svc:8081/sgx/certification/v4/"
        );
        assert_eq!(ours["pccs_url"], intel["pccs_url"]);
    }
}
