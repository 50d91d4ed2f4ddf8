//! Rendering the add-on's Kubernetes objects from typed k8s-openapi values.
//!
//! [`render`] turns [`RenderOptions`] into a list of [`Object`]s in apply order; [`to_yaml`] prints
//! them as one multi-document YAML stream. Both are pure: the same options (including the webhook
//! certificates, which are read from files beforehand) give the same bytes.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, Deployment, DeploymentSpec,
    RollingUpdateDaemonSet,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar,
    HTTPGetAction, HostPathVolumeSource, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, Secret, SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

use crate::certs::{CertBundle, is_dns_label};
use crate::names::*;

/// Errors in the render options.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The namespace is not a DNS-1123 label.
    #[error("namespace {0:?} is not a DNS-1123 label")]
    InvalidNamespace(String),
    /// An image reference is empty or contains whitespace.
    #[error("image reference {0:?} is empty or contains whitespace")]
    InvalidImage(String),
    /// A node-selector entry is not a valid label key/value.
    #[error("node selector {key:?}={value:?} is not a valid label key and value")]
    InvalidNodeSelector {
        /// Label key.
        key: String,
        /// Label value.
        value: String,
    },
    /// `--epc-mib 0`.
    #[error("--epc-mib must be at least 1")]
    ZeroEpc,
    /// `--pccs-url` without the quote helper that would use it.
    #[error("--pccs-url configures the quote helper: add --enable-sgxquotehelper")]
    PccsUrlWithoutQuoteHelper,
    /// `--pccs-url` with `--simulate`, whose backend fetches no collateral.
    #[error("--pccs-url has no effect with --simulate (the simulated backend needs no PCCS)")]
    PccsUrlInSimulation,
    /// The PCCS URL is not an https URL.
    #[error("--pccs-url {0:?} must be an https:// URL without whitespace or quotes")]
    InvalidPccsUrl(String),
    /// The serving certificate does not name the webhook Service in the chosen namespace.
    #[error(
        "the webhook certificate does not name {expected}; create certificates for this namespace with `confcom webhook certs --namespace {namespace}`"
    )]
    CertificateNamespaceMismatch {
        /// The DNS name the API server will use.
        expected: String,
        /// The namespace rendered into.
        namespace: String,
    },
    /// A rendered object could not be turned into YAML (never expected for these types).
    #[error("YAML serialization failed: {0}")]
    Yaml(#[from] serde_norway::Error),
}

/// Everything `confcom addon render` can be told.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// Namespace of the add-on's namespaced objects (it must exist: the add-on does not own it).
    pub namespace: String,
    /// The confcom image (device plugin, webhook, simulated quote helper).
    pub image: String,
    /// The image of the hardware quote helper: confcom plus Intel's DCAP quote library.
    pub dcap_image: String,
    /// Render the quote helper DaemonSet (`--enable-sgxquotehelper`).
    pub enable_quote_helper: bool,
    /// Simulated SGX: every Linux node, `--simulate` on the device plugin, `--backend sim`.
    pub simulate: bool,
    /// EPC size the device plugin advertises (`--epc-mib`); with `simulate` it defaults to
    /// [`DEFAULT_SIM_EPC_MIB`].
    pub epc_mib: Option<u64>,
    /// Replaces the default SGX node affinity with exact label matches.
    pub node_selector: BTreeMap<String, String>,
    /// PCCS (or caching service) URL for the hardware quote provider.
    pub pccs_url: Option<String>,
    /// Webhook certificates; `Some` renders the webhook objects (`--enable-webhook`).
    pub webhook: Option<CertBundle>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            image: DEFAULT_IMAGE.to_owned(),
            dcap_image: DEFAULT_DCAP_IMAGE.to_owned(),
            enable_quote_helper: false,
            simulate: false,
            epc_mib: None,
            node_selector: BTreeMap::new(),
            pccs_url: None,
            webhook: None,
        }
    }
}

/// One rendered object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // a handful of objects, built once
pub enum Object {
    /// The quote provider configuration.
    ConfigMap(ConfigMap),
    /// The webhook's TLS Secret.
    Secret(Secret),
    /// The device plugin or quote helper.
    DaemonSet(DaemonSet),
    /// The webhook Service.
    Service(Service),
    /// The webhook Deployment.
    Deployment(Deployment),
    /// The webhook registration.
    MutatingWebhookConfiguration(MutatingWebhookConfiguration),
}

impl Object {
    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::ConfigMap(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::DaemonSet(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::MutatingWebhookConfiguration(o) => &o.metadata,
        }
    }

    /// The object's `kind`.
    pub fn kind(&self) -> &'static str {
        use k8s_openapi::Resource;
        match self {
            Object::ConfigMap(_) => ConfigMap::KIND,
            Object::Secret(_) => Secret::KIND,
            Object::DaemonSet(_) => DaemonSet::KIND,
            Object::Service(_) => Service::KIND,
            Object::Deployment(_) => Deployment::KIND,
            Object::MutatingWebhookConfiguration(_) => MutatingWebhookConfiguration::KIND,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// The pod template of a workload object.
    pub fn pod_template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Object::DaemonSet(o) => Some(&o.spec.template),
            Object::Deployment(o) => Some(&o.spec.template),
            _ => None,
        }
    }
}

fn is_label_value(v: &str) -> bool {
    v.len() <= 63
        && (v.is_empty()
            || (v.starts_with(|c: char| c.is_ascii_alphanumeric())
                && v.ends_with(|c: char| c.is_ascii_alphanumeric())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))))
}

fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    prefix_ok && !name.is_empty() && is_label_value(name)
}

impl RenderOptions {
    /// Checks the options; [`render`] calls it first.
    pub fn validate(&self) -> Result<(), RenderError> {
        if !is_dns_label(&self.namespace) {
            return Err(RenderError::InvalidNamespace(self.namespace.clone()));
        }
        for image in [&self.image, &self.dcap_image] {
            if image.is_empty() || image.chars().any(char::is_whitespace) {
                return Err(RenderError::InvalidImage(image.clone()));
            }
        }
        for (key, value) in &self.node_selector {
            if !is_label_key(key) || !is_label_value(value) {
                return Err(RenderError::InvalidNodeSelector {
                    key: key.clone(),
                    value: value.clone(),
                });
            }
        }
        if self.epc_mib == Some(0) {
            return Err(RenderError::ZeroEpc);
        }
        if let Some(url) = &self.pccs_url {
            if !self.enable_quote_helper {
                return Err(RenderError::PccsUrlWithoutQuoteHelper);
            }
            if self.simulate {
                return Err(RenderError::PccsUrlInSimulation);
            }
            let rest = url.strip_prefix("https://").unwrap_or_default();
            if rest.is_empty()
                || rest.starts_with('/')
                || url
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\'))
            {
                return Err(RenderError::InvalidPccsUrl(url.clone()));
            }
        }
        if let Some(certs) = &self.webhook {
            let expected = format!("{WEBHOOK_NAME}.{}.svc", self.namespace);
            if !certificate_names(&certs.cert_pem, &expected) {
                return Err(RenderError::CertificateNamespaceMismatch {
                    expected,
                    namespace: self.namespace.clone(),
                });
            }
        }
        Ok(())
    }

    fn epc_mib(&self) -> Option<u64> {
        match (self.epc_mib, self.simulate) {
            (Some(n), _) => Some(n),
            (None, true) => Some(DEFAULT_SIM_EPC_MIB),
            (None, false) => None,
        }
    }
}

/// Whether the PEM certificate carries `dns_name` as a subjectAltName dNSName. The name's bytes
/// appear verbatim in the DER (IA5String), so a byte search over the decoded certificate suffices
/// for this consistency check; TLS clients do the real name verification.
fn certificate_names(cert_pem: &str, dns_name: &str) -> bool {
    use base64::Engine;
    let body: String = cert_pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body.trim()) else {
        return false;
    };
    // dNSName is [2] IMPLICIT IA5String: tag 0x82, then a short-form length.
    let mut needle = Vec::with_capacity(dns_name.len() + 2);
    needle.push(0x82);
    needle.push(u8::try_from(dns_name.len()).unwrap_or(u8::MAX));
    needle.extend_from_slice(dns_name.as_bytes());
    dns_name.len() < 128 && der.windows(needle.len()).any(|w| w == needle.as_slice())
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn labels(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (s(LABEL_PART_OF), s(PART_OF)),
        (s(LABEL_COMPONENT), s(component)),
        (s(LABEL_NAME), s("confcom")),
        (s(LABEL_MANAGED_BY), s("confcom-addon-render")),
    ])
}

fn selector_labels(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (s(LABEL_PART_OF), s(PART_OF)),
        (s(LABEL_COMPONENT), s(component)),
    ])
}

fn meta(name: &str, namespace: Option<&str>, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(s(name)),
        namespace: namespace.map(s),
        labels: Some(labels(component)),
        ..ObjectMeta::default()
    }
}

fn quantities(entries: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    entries
        .iter()
        .map(|(k, v)| (s(k), Quantity(s(v))))
        .collect()
}

fn hardened(run_as_root: bool) -> SecurityContext {
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

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: s("RuntimeDefault"),
        localhost_profile: None,
    }
}

fn host_path_volume(name: &str, path: &str, type_: &str) -> Volume {
    Volume {
        name: s(name),
        host_path: Some(HostPathVolumeSource {
            path: s(path),
            type_: Some(s(type_)),
        }),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: s(name),
        mount_path: s(path),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

fn http_probe(path: &str, port: &str, scheme: Option<&str>, period: i32) -> Probe {
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

fn named_port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(s(name)),
        container_port: i32::from(port),
        protocol: Some(s("TCP")),
        ..ContainerPort::default()
    }
}

fn sgx_tolerations() -> Vec<Toleration> {
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

fn node_requirement(key: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: s(key),
        operator: s("In"),
        values: Some(values.iter().map(|v| s(v)).collect()),
    }
}

/// Node placement of the node daemons: (nodeSelector, affinity).
fn node_placement(opts: &RenderOptions) -> (BTreeMap<String, String>, Option<Affinity>) {
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
    let affinity = Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: terms,
            }),
            ..NodeAffinity::default()
        }),
        ..Affinity::default()
    };
    (selector, Some(affinity))
}

fn node_daemon_pod_spec(
    opts: &RenderOptions,
    container: Container,
    volumes: Vec<Volume>,
) -> PodSpec {
    let (node_selector, affinity) = node_placement(opts);
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

fn daemon_set(
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

fn device_plugin(opts: &RenderOptions) -> DaemonSet {
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
    if opts.simulate {
        args.push(s("--simulate"));
    } else {
        // Device nodes and sysfs are read for discovery only; the kubelet passes the device nodes
        // to app containers itself.
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
    let container = Container {
        name: s("device-plugin"),
        image: Some(opts.image.clone()),
        image_pull_policy: Some(s("IfNotPresent")),
        args: Some(args),
        ports: Some(vec![named_port("metrics", DEVICE_PLUGIN_METRICS_PORT)]),
        liveness_probe: Some(http_probe("/healthz", "metrics", None, 20)),
        readiness_probe: Some(http_probe("/readyz", "metrics", None, 10)),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "10m"), ("memory", "32Mi")])),
            limits: Some(quantities(&[("cpu", "200m"), ("memory", "128Mi")])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(hardened(true)),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let reason = "registers with the kubelet through sockets in the root-owned host directory \
                  /var/lib/kubelet/device-plugins; every capability is dropped";
    daemon_set(
        opts,
        DEVICE_PLUGIN_NAME,
        COMPONENT_DEVICE_PLUGIN,
        reason,
        node_daemon_pod_spec(opts, container, volumes),
    )
}

/// `sgx_default_qcnl.conf` (the JSON form Intel's quote provider library reads since DCAP 1.15).
fn qcnl_conf(pccs_url: &str) -> String {
    #[derive(Serialize)]
    struct Qcnl<'a> {
        pccs_url: &'a str,
        use_secure_cert: bool,
        retry_times: u32,
        retry_delay: u32,
        pck_cache_expire_hours: u32,
        verify_collateral_cache_expire_hours: u32,
    }
    let conf = Qcnl {
        pccs_url,
        use_secure_cert: true,
        retry_times: 6,
        retry_delay: 10,
        pck_cache_expire_hours: 168,
        verify_collateral_cache_expire_hours: 168,
    };
    // Serializing a struct of strings, bools and integers cannot fail.
    let mut text = serde_json::to_string_pretty(&conf).unwrap_or_default();
    text.push('\n');
    text
}

fn qcnl_config_map(opts: &RenderOptions, pccs_url: &str) -> ConfigMap {
    ConfigMap {
        metadata: meta(
            QCNL_CONFIG_MAP_NAME,
            Some(&opts.namespace),
            COMPONENT_QUOTE_HELPER,
        ),
        data: Some(BTreeMap::from([(s(QCNL_CONF_KEY), qcnl_conf(pccs_url))])),
        ..ConfigMap::default()
    }
}

fn quote_helper(opts: &RenderOptions) -> DaemonSet {
    let backend = if opts.simulate { "sim" } else { "dcap" };
    let args = vec![
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
    if !opts.simulate {
        // Intel's quote provider caches collateral under $HOME; give it a writable scratch dir.
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
        if opts.pccs_url.is_some() {
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
    // by the device plugin (the dependency the AKS documentation describes). Extended resources
    // must have requests equal to limits.
    let sgx = [(RESOURCE_EPC_MIB, "4"), (RESOURCE_PROVISION, "1")];
    let mut requests = quantities(&[("cpu", "20m"), ("memory", "32Mi")]);
    let mut limits = quantities(&[("cpu", "500m"), ("memory", "256Mi")]);
    requests.extend(quantities(&sgx));
    limits.extend(quantities(&sgx));
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
            ..ResourceRequirements::default()
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
    daemon_set(
        opts,
        QUOTE_HELPER_NAME,
        COMPONENT_QUOTE_HELPER,
        reason,
        node_daemon_pod_spec(opts, container, volumes),
    )
}

fn webhook_secret(opts: &RenderOptions, certs: &CertBundle) -> Secret {
    Secret {
        metadata: meta(
            WEBHOOK_TLS_SECRET_NAME,
            Some(&opts.namespace),
            COMPONENT_WEBHOOK,
        ),
        type_: Some(s("kubernetes.io/tls")),
        data: Some(BTreeMap::from([
            (s("tls.crt"), ByteString(certs.cert_pem.as_bytes().to_vec())),
            (s("tls.key"), ByteString(certs.key_pem.as_bytes().to_vec())),
        ])),
        ..Secret::default()
    }
}

fn webhook_service(opts: &RenderOptions) -> Service {
    Service {
        metadata: meta(WEBHOOK_NAME, Some(&opts.namespace), COMPONENT_WEBHOOK),
        spec: Some(ServiceSpec {
            type_: Some(s("ClusterIP")),
            selector: Some(selector_labels(COMPONENT_WEBHOOK)),
            ports: Some(vec![ServicePort {
                name: Some(s("https")),
                port: 443,
                target_port: Some(IntOrString::String(s("https"))),
                protocol: Some(s("TCP")),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn webhook_deployment(opts: &RenderOptions) -> Deployment {
    let cert_dir = "/etc/confcom/webhook";
    let container = Container {
        name: s("webhook"),
        image: Some(opts.image.clone()),
        image_pull_policy: Some(s("IfNotPresent")),
        args: Some(vec![
            s("webhook"),
            s("--tls-cert"),
            format!("{cert_dir}/tls.crt"),
            s("--tls-key"),
            format!("{cert_dir}/tls.key"),
            s("--listen"),
            format!("0.0.0.0:{WEBHOOK_PORT}"),
            s("--metrics-addr"),
            format!("0.0.0.0:{WEBHOOK_METRICS_PORT}"),
        ]),
        ports: Some(vec![
            named_port("https", WEBHOOK_PORT),
            named_port("metrics", WEBHOOK_METRICS_PORT),
        ]),
        // Liveness goes through TLS so a broken serving certificate restarts the pod.
        liveness_probe: Some(http_probe("/healthz", "https", Some("HTTPS"), 20)),
        readiness_probe: Some(http_probe("/readyz", "metrics", None, 10)),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "10m"), ("memory", "16Mi")])),
            limits: Some(quantities(&[("cpu", "200m"), ("memory", "64Mi")])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(hardened(false)),
        volume_mounts: Some(vec![mount("tls", cert_dir, true)]),
        ..Container::default()
    };
    let spec = PodSpec {
        containers: vec![container],
        volumes: Some(vec![Volume {
            name: s("tls"),
            secret: Some(SecretVolumeSource {
                secret_name: Some(s(WEBHOOK_TLS_SECRET_NAME)),
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        }]),
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
        metadata: meta(WEBHOOK_NAME, Some(&opts.namespace), COMPONENT_WEBHOOK),
        spec: DeploymentSpec {
            replicas: Some(2),
            selector: LabelSelector {
                match_labels: Some(selector_labels(COMPONENT_WEBHOOK)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(COMPONENT_WEBHOOK)),
                    ..ObjectMeta::default()
                }),
                spec: Some(spec),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

fn not_own_pods() -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: s(LABEL_PART_OF),
        operator: s("NotIn"),
        values: Some(vec![s(PART_OF)]),
    }
}

fn mutating_webhook(
    opts: &RenderOptions,
    certs: &CertBundle,
    name: &str,
    path: &str,
) -> MutatingWebhook {
    MutatingWebhook {
        name: s(name),
        admission_review_versions: vec![s("v1")],
        client_config: WebhookClientConfig {
            ca_bundle: Some(ByteString(certs.ca_pem.as_bytes().to_vec())),
            service: Some(ServiceReference {
                name: s(WEBHOOK_NAME),
                namespace: opts.namespace.clone(),
                path: Some(s(path)),
                port: Some(443),
            }),
            url: None,
        },
        rules: Some(vec![RuleWithOperations {
            api_groups: Some(vec![s("")]),
            api_versions: Some(vec![s("v1")]),
            operations: Some(vec![s("CREATE")]),
            resources: Some(vec![s("pods")]),
            scope: Some(s("Namespaced")),
        }]),
        // Fail open: a webhook outage must never block pod creation cluster-wide.
        failure_policy: Some(s("Ignore")),
        match_policy: Some(s("Equivalent")),
        side_effects: s("None"),
        timeout_seconds: Some(5),
        reinvocation_policy: Some(s("IfNeeded")),
        ..MutatingWebhook::default()
    }
}

fn webhook_configuration(opts: &RenderOptions, certs: &CertBundle) -> MutatingWebhookConfiguration {
    // Pods labelled `confcom.sgx/quote-helper=true` anywhere, except the add-on's own.
    let mut by_pod = mutating_webhook(
        opts,
        certs,
        "pod-opt-in.quote-helper.confcom.sgx",
        WEBHOOK_PATH_POD,
    );
    by_pod.object_selector = Some(LabelSelector {
        match_labels: Some(BTreeMap::from([(s(LABEL_QUOTE_HELPER_OPT_IN), s("true"))])),
        match_expressions: Some(vec![not_own_pods()]),
    });
    // Pods in namespaces labelled `confcom.sgx/quote-helper=true`, except pods that carry the label
    // themselves (handled above, or opted out with "false") and the add-on's own.
    let mut by_namespace = mutating_webhook(
        opts,
        certs,
        "namespace-opt-in.quote-helper.confcom.sgx",
        WEBHOOK_PATH_NAMESPACE,
    );
    by_namespace.namespace_selector = Some(LabelSelector {
        match_labels: Some(BTreeMap::from([(s(LABEL_QUOTE_HELPER_OPT_IN), s("true"))])),
        match_expressions: None,
    });
    by_namespace.object_selector = Some(LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![
            not_own_pods(),
            LabelSelectorRequirement {
                key: s(LABEL_QUOTE_HELPER_OPT_IN),
                operator: s("NotIn"),
                values: Some(vec![s("false"), s("true")]),
            },
        ]),
    });
    MutatingWebhookConfiguration {
        metadata: meta(WEBHOOK_NAME, None, COMPONENT_WEBHOOK),
        webhooks: Some(vec![by_pod, by_namespace]),
    }
}

/// Renders every object for `opts`, in apply order.
pub fn render(opts: &RenderOptions) -> Result<Vec<Object>, RenderError> {
    opts.validate()?;
    let mut objects = Vec::new();
    objects.push(Object::DaemonSet(device_plugin(opts)));
    if opts.enable_quote_helper {
        if let Some(url) = &opts.pccs_url {
            objects.push(Object::ConfigMap(qcnl_config_map(opts, url)));
        }
        objects.push(Object::DaemonSet(quote_helper(opts)));
    }
    if let Some(certs) = &opts.webhook {
        objects.push(Object::Secret(webhook_secret(opts, certs)));
        objects.push(Object::Service(webhook_service(opts)));
        objects.push(Object::Deployment(webhook_deployment(opts)));
        objects.push(Object::MutatingWebhookConfiguration(webhook_configuration(
            opts, certs,
        )));
    }
    Ok(objects)
}

/// Prints objects as a multi-document YAML stream (`---` between documents).
pub fn to_yaml(objects: &[Object]) -> Result<String, RenderError> {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(object)?);
    }
    Ok(out)
}

/// Errors reading rendered YAML back into typed objects.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// A document is not valid YAML or does not match its kind's schema.
    #[error("document {index}: {source}")]
    Yaml {
        /// Zero-based document index.
        index: usize,
        /// The underlying error.
        source: serde_norway::Error,
    },
    /// A document has a kind the add-on never renders.
    #[error("document {index}: unexpected apiVersion/kind {api_version}/{kind}")]
    UnexpectedKind {
        /// Zero-based document index.
        index: usize,
        /// The document's apiVersion.
        api_version: String,
        /// The document's kind.
        kind: String,
    },
}

/// Reads a YAML stream produced by [`to_yaml`] back into typed objects, dispatching on
/// `apiVersion` and `kind`.
pub fn from_yaml(text: &str) -> Result<Vec<Object>, ParseError> {
    use k8s_openapi::Resource;
    let mut objects = Vec::new();
    for (index, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = serde_norway::Value::deserialize(doc)
            .map_err(|source| ParseError::Yaml { index, source })?;
        if value.is_null() {
            continue;
        }
        let field = |name: &str| {
            value
                .get(name)
                .and_then(serde_norway::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (api_version, kind) = (field("apiVersion"), field("kind"));
        let yaml = |source| ParseError::Yaml { index, source };
        let object = match (api_version.as_str(), kind.as_str()) {
            (ConfigMap::API_VERSION, ConfigMap::KIND) => {
                Object::ConfigMap(serde_norway::from_value(value).map_err(yaml)?)
            }
            (Secret::API_VERSION, Secret::KIND) => {
                Object::Secret(serde_norway::from_value(value).map_err(yaml)?)
            }
            (DaemonSet::API_VERSION, DaemonSet::KIND) => {
                Object::DaemonSet(serde_norway::from_value(value).map_err(yaml)?)
            }
            (Service::API_VERSION, Service::KIND) => {
                Object::Service(serde_norway::from_value(value).map_err(yaml)?)
            }
            (Deployment::API_VERSION, Deployment::KIND) => {
                Object::Deployment(serde_norway::from_value(value).map_err(yaml)?)
            }
            (MutatingWebhookConfiguration::API_VERSION, MutatingWebhookConfiguration::KIND) => {
                Object::MutatingWebhookConfiguration(serde_norway::from_value(value).map_err(yaml)?)
            }
            _ => {
                return Err(ParseError::UnexpectedKind {
                    index,
                    api_version,
                    kind,
                });
            }
        };
        objects.push(object);
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_key_and_value_rules() {
        assert!(is_label_key("tee"));
        assert!(is_label_key("kubernetes.azure.com/sgx"));
        assert!(!is_label_key("Bad_Prefix/x"));
        assert!(!is_label_key("a/"));
        assert!(!is_label_key(""));
        assert!(is_label_value(""));
        assert!(is_label_value("Standard_DC4s_v3"));
        assert!(!is_label_value("-x"));
        assert!(!is_label_value(&"a".repeat(64)));
    }

    #[test]
    fn qcnl_conf_is_json_with_the_url() {
        let text = qcnl_conf("https://pccs.example:8081/sgx/certification/v4/");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["pccs_url"],
            "https://pccs.example:8081/sgx/certification/v4/"
        );
        assert_eq!(v["use_secure_cert"], true);
    }
}
