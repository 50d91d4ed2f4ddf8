//! Rendering the add-on's Kubernetes objects from typed k8s-openapi values.
//!
//! [`render`] turns [`RenderOptions`] into a list of [`Object`]s in apply order; [`to_yaml`] prints
//! them as one multi-document YAML stream. Both are pure: the same options (including the webhook
//! certificates, which are read from files beforehand) give the same bytes.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::api::resource::v1::{DeviceClass, ResourceClaimTemplate};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::certs::{CertBundle, is_dns_label};
use crate::names::*;

pub mod dra;
mod limits;
mod node_daemons;
mod parts;
mod pccs;
mod webhook;

use node_daemons::{
    Qcnl, device_plugin, device_plugin_cluster_role, device_plugin_cluster_role_binding,
    device_plugin_service_account, qcnl_config_map, quote_helper,
};
use pccs::{pccs_ca_config_map, pccs_deployment, pccs_service, pccs_tls_secret, sim_ca_secret};
use webhook::{webhook_configuration, webhook_deployment, webhook_secret, webhook_service};

pub use limits::{OpsLimits, ServerLimits};

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
    /// The upstream of the in-cluster PCCS is not an https URL.
    #[error("--pccs-upstream {0:?} must be an https:// URL without whitespace or quotes")]
    InvalidPccsUpstream(String),
    /// A simulated cluster's PCCS needs the CA every node shares.
    #[error(
        "--enable-pccs with --simulate needs --sim-ca DIR, the cluster's simulated CA (create one with `confcom sim init --ca-dir DIR --state-dir $(mktemp -d)`)"
    )]
    PccsWithoutSimCa,
    /// `--sim-ca` outside simulation, or without a quote helper or PCCS to use it.
    #[error(
        "--sim-ca is for simulated clusters: add --simulate and --enable-sgxquotehelper or --enable-pccs"
    )]
    SimCaUnused,
    /// The simulated CA directory lacks a file.
    #[error("--sim-ca lacks {0} (a directory made by `confcom sim init --ca-dir`)")]
    IncompleteSimCa(&'static str),
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
    /// `--azure-thim` without a hardware quote helper to configure.
    #[error(
        "--azure-thim configures the hardware quote helper: add --enable-sgxquotehelper, without --simulate"
    )]
    AzureThimUnused,
    /// `--pccs-certs` without the PCCS that would serve them.
    #[error("--pccs-certs are the in-cluster PCCS's serving certificates: add --enable-pccs")]
    PccsCertsWithoutPccs,
    /// The PCCS serving certificate does not name the PCCS Service in the chosen namespace.
    #[error(
        "the PCCS certificate does not name {expected}; create certificates for this namespace with `confcom pccs certs --namespace {namespace}`"
    )]
    PccsCertificateNamespaceMismatch {
        /// The DNS name clients use.
        expected: String,
        /// The namespace rendered into.
        namespace: String,
    },
    /// `--dra-node-selector` without `--dra`.
    #[error("--dra-node-selector selects the DRA driver's nodes: add --dra")]
    DraNodeSelectorWithoutDra,
    /// `--no-dra-extended-resources` without `--dra`.
    #[error("--no-dra-extended-resources configures the DRA device classes: add --dra")]
    DraExtendedResourcesWithoutDra,
    /// A `--dra-node-selector` entry is not a valid label key/value.
    #[error("DRA node selector {key:?}={value:?} is not a valid label key and value")]
    InvalidDraNodeSelector {
        /// Label key.
        key: String,
        /// Label value.
        value: String,
    },
    /// The device plugin's `--node-selector` picks only nodes of the DRA pool, which the device
    /// plugin leaves to the DRA driver: it would run nowhere.
    #[error(
        "--node-selector selects only nodes that --dra-node-selector gives to the DRA driver; the device plugin would run nowhere (drop --dra-node-selector to replace the device plugin with the DRA driver)"
    )]
    DevicePluginPoolInsideDraPool,
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
    /// Render the SGX DRA driver (`--dra`): its DaemonSet, RBAC, slice policy and DeviceClasses.
    /// Without [`Self::dra_node_selector`] it replaces the device plugin on the SGX nodes.
    pub dra: bool,
    /// The DRA node pool (`--dra-node-selector`): the DRA driver runs on nodes with all these
    /// labels, the device plugin on every other SGX node.
    pub dra_node_selector: BTreeMap<String, String>,
    /// Map `sgx.intel.com/enclave` and `sgx.intel.com/provision` to the DRA classes (KEP-5004);
    /// off with `--no-dra-extended-resources`.
    pub dra_extended_resources: bool,
    /// PCCS (or caching service) URL for the hardware quote provider.
    pub pccs_url: Option<String>,
    /// Render the in-cluster PCCS (`--enable-pccs`); on hardware the quote helpers use it unless
    /// `pccs_url` names another.
    pub enable_pccs: bool,
    /// The in-cluster PCCS's upstream on hardware (`--pccs-upstream`).
    pub pccs_upstream: String,
    /// The hardware quote helpers take PCK certificates from Azure's THIM (`--azure-thim`), as
    /// Intel's `sgx_default_qcnl_azure.conf` says: the host's THIM endpoint first, then the global
    /// cache; collateral from `pccs_url`, else the in-cluster PCCS, else Intel's PCS.
    pub azure_thim: bool,
    /// The in-cluster PCCS's serving certificates (`--pccs-certs`); `Some` makes it serve HTTPS.
    pub pccs_tls: Option<CertBundle>,
    /// A simulated cluster's shared CA: the files of a `confcom sim init --ca-dir` directory.
    pub sim_ca: Option<BTreeMap<String, Vec<u8>>>,
    /// Webhook certificates; `Some` renders the webhook objects (`--enable-webhook`).
    pub webhook: Option<CertBundle>,
    /// Connection limits passed to the PCCS and the webhook; their memory limits make room for
    /// the connection cap.
    pub server_limits: ServerLimits,
    /// Connection limits passed to the node daemons' operations endpoints; their memory limits
    /// make room for the connection cap.
    pub ops_limits: OpsLimits,
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
            dra: false,
            dra_node_selector: BTreeMap::new(),
            dra_extended_resources: true,
            pccs_url: None,
            enable_pccs: false,
            pccs_upstream: INTEL_PCS_URL.to_owned(),
            azure_thim: false,
            pccs_tls: None,
            sim_ca: None,
            webhook: None,
            server_limits: ServerLimits::default(),
            ops_limits: OpsLimits::default(),
        }
    }
}

/// One rendered object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // a handful of objects, built once
pub enum Object {
    /// The device plugin's identity (it patches its node's status).
    ServiceAccount(ServiceAccount),
    /// What the device plugin may do: patch `nodes/status`.
    ClusterRole(ClusterRole),
    /// Grants the device plugin's ClusterRole to its ServiceAccount.
    ClusterRoleBinding(ClusterRoleBinding),
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
    /// The DRA driver's limit to its own node's ResourceSlices.
    ValidatingAdmissionPolicy(ValidatingAdmissionPolicy),
    /// Puts the policy into force.
    ValidatingAdmissionPolicyBinding(ValidatingAdmissionPolicyBinding),
    /// A DRA device class.
    DeviceClass(DeviceClass),
    /// The quote helper's claim on DRA nodes.
    ResourceClaimTemplate(ResourceClaimTemplate),
}

impl Object {
    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::ServiceAccount(o) => &o.metadata,
            Object::ClusterRole(o) => &o.metadata,
            Object::ClusterRoleBinding(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::DaemonSet(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::MutatingWebhookConfiguration(o) => &o.metadata,
            Object::ValidatingAdmissionPolicy(o) => &o.metadata,
            Object::ValidatingAdmissionPolicyBinding(o) => &o.metadata,
            Object::DeviceClass(o) => &o.metadata,
            Object::ResourceClaimTemplate(o) => &o.metadata,
        }
    }

    /// The object's `kind`.
    pub fn kind(&self) -> &'static str {
        use k8s_openapi::Resource;
        match self {
            Object::ServiceAccount(_) => ServiceAccount::KIND,
            Object::ClusterRole(_) => ClusterRole::KIND,
            Object::ClusterRoleBinding(_) => ClusterRoleBinding::KIND,
            Object::ConfigMap(_) => ConfigMap::KIND,
            Object::Secret(_) => Secret::KIND,
            Object::DaemonSet(_) => DaemonSet::KIND,
            Object::Service(_) => Service::KIND,
            Object::Deployment(_) => Deployment::KIND,
            Object::MutatingWebhookConfiguration(_) => MutatingWebhookConfiguration::KIND,
            Object::ValidatingAdmissionPolicy(_) => ValidatingAdmissionPolicy::KIND,
            Object::ValidatingAdmissionPolicyBinding(_) => ValidatingAdmissionPolicyBinding::KIND,
            Object::DeviceClass(_) => DeviceClass::KIND,
            Object::ResourceClaimTemplate(_) => ResourceClaimTemplate::KIND,
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
        if !self.dra {
            if !self.dra_node_selector.is_empty() {
                return Err(RenderError::DraNodeSelectorWithoutDra);
            }
            if !self.dra_extended_resources {
                return Err(RenderError::DraExtendedResourcesWithoutDra);
            }
        }
        for (key, value) in &self.dra_node_selector {
            if !is_label_key(key) || !is_label_value(value) {
                return Err(RenderError::InvalidDraNodeSelector {
                    key: key.clone(),
                    value: value.clone(),
                });
            }
        }
        if !self.dra_node_selector.is_empty()
            && !self.node_selector.is_empty()
            && self
                .dra_node_selector
                .iter()
                .all(|(k, v)| self.node_selector.get(k) == Some(v))
        {
            return Err(RenderError::DevicePluginPoolInsideDraPool);
        }
        if let Some(url) = &self.pccs_url {
            if !self.enable_quote_helper {
                return Err(RenderError::PccsUrlWithoutQuoteHelper);
            }
            if self.simulate {
                return Err(RenderError::PccsUrlInSimulation);
            }
            if !is_https_url(url) {
                return Err(RenderError::InvalidPccsUrl(url.clone()));
            }
        }
        if self.azure_thim && (self.simulate || !self.enable_quote_helper) {
            return Err(RenderError::AzureThimUnused);
        }
        if self.enable_pccs {
            if self.simulate && self.sim_ca.is_none() {
                return Err(RenderError::PccsWithoutSimCa);
            }
            if !is_https_url(&self.pccs_upstream) {
                return Err(RenderError::InvalidPccsUpstream(self.pccs_upstream.clone()));
            }
        }
        if let Some(files) = &self.sim_ca {
            if !self.simulate || !(self.enable_quote_helper || self.enable_pccs) {
                return Err(RenderError::SimCaUnused);
            }
            if let Some(missing) = SIM_CA_FILES.iter().find(|f| !files.contains_key(**f)) {
                return Err(RenderError::IncompleteSimCa(missing));
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
        if let Some(certs) = &self.pccs_tls {
            if !self.enable_pccs {
                return Err(RenderError::PccsCertsWithoutPccs);
            }
            let expected = format!("{PCCS_NAME}.{}.svc", self.namespace);
            if !certificate_names(&certs.cert_pem, &expected) {
                return Err(RenderError::PccsCertificateNamespaceMismatch {
                    expected,
                    namespace: self.namespace.clone(),
                });
            }
        }
        Ok(())
    }

    /// The PCCS the hardware quote helpers' quote provider uses: `--pccs-url`, else the in-cluster
    /// PCCS when rendered.
    fn quote_helper_pccs_url(&self) -> Option<String> {
        if self.simulate {
            return None;
        }
        self.pccs_url
            .clone()
            .or_else(|| self.enable_pccs.then(|| pccs::in_cluster_url(self)))
    }

    /// The hardware quote helpers' `sgx_default_qcnl.conf`, when the add-on configures one.
    fn quote_helper_qcnl(&self) -> Option<Qcnl> {
        if self.simulate {
            return None;
        }
        if self.azure_thim {
            return Some(Qcnl::AzureThim {
                collateral_service: self
                    .quote_helper_pccs_url()
                    .unwrap_or_else(|| INTEL_PCS_URL.to_owned()),
            });
        }
        self.quote_helper_pccs_url().map(Qcnl::Pccs)
    }

    /// Whether any node runs the device plugin: always without `--dra`, and with it only when
    /// `--dra-node-selector` leaves the other SGX nodes to the device plugin.
    pub fn device_plugin_pool(&self) -> bool {
        !self.dra || !self.dra_node_selector.is_empty()
    }

    fn epc_mib(&self) -> Option<u64> {
        match (self.epc_mib, self.simulate) {
            (Some(n), _) => Some(n),
            (None, true) => Some(DEFAULT_SIM_EPC_MIB),
            (None, false) => None,
        }
    }
}

/// The node pool a node daemon runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pool {
    /// The SGX nodes served by the device plugin.
    DevicePlugin,
    /// The SGX nodes served by the DRA driver.
    Dra,
}

/// The files of a simulated CA directory (`confcom sim init --ca-dir`).
pub const SIM_CA_FILES: [&str; 6] = [
    "root-ca.pem",
    "root-ca.key",
    "pck-ca.pem",
    "pck-ca.key",
    "tcb-signing.pem",
    "tcb-signing.key",
];

/// An `https://` URL with a host, without whitespace, control characters or quotes.
fn is_https_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").unwrap_or_default();
    !(rest.is_empty()
        || rest.starts_with('/')
        || url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\')))
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

/// Renders every object for `opts`, in apply order.
pub fn render(opts: &RenderOptions) -> Result<Vec<Object>, RenderError> {
    opts.validate()?;
    let mut objects = Vec::new();
    if opts.device_plugin_pool() {
        objects.extend([
            Object::ServiceAccount(device_plugin_service_account(opts)),
            Object::ClusterRole(device_plugin_cluster_role()),
            Object::ClusterRoleBinding(device_plugin_cluster_role_binding(opts)),
            Object::DaemonSet(device_plugin(opts)),
        ]);
    }
    if opts.dra {
        objects.extend([
            Object::ServiceAccount(dra::service_account(opts)),
            Object::ClusterRole(dra::cluster_role()),
            Object::ClusterRoleBinding(dra::cluster_role_binding(opts)),
            Object::ValidatingAdmissionPolicy(dra::slice_policy(opts)),
            Object::ValidatingAdmissionPolicyBinding(dra::slice_policy_binding()),
        ]);
        objects.extend(
            dra::device_classes(opts)
                .into_iter()
                .map(Object::DeviceClass),
        );
        objects.push(Object::DaemonSet(dra::daemon(opts)));
    }
    if let Some(files) = &opts.sim_ca {
        objects.push(Object::Secret(sim_ca_secret(opts, files)));
    }
    if let Some(certs) = &opts.pccs_tls {
        objects.push(Object::Secret(pccs_tls_secret(opts, certs)));
        objects.push(Object::ConfigMap(pccs_ca_config_map(opts, certs)));
    }
    if opts.enable_pccs {
        objects.push(Object::Service(pccs_service(opts)));
        objects.push(Object::Deployment(pccs_deployment(opts)));
    }
    if opts.enable_quote_helper {
        if let Some(qcnl) = opts.quote_helper_qcnl() {
            objects.push(Object::ConfigMap(qcnl_config_map(opts, &qcnl)));
        }
        if opts.device_plugin_pool() {
            objects.push(Object::DaemonSet(quote_helper(opts, Pool::DevicePlugin)));
        }
        if opts.dra {
            objects.push(Object::ResourceClaimTemplate(
                dra::quote_helper_claim_template(opts),
            ));
            objects.push(Object::DaemonSet(quote_helper(opts, Pool::Dra)));
        }
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
            (ServiceAccount::API_VERSION, ServiceAccount::KIND) => {
                Object::ServiceAccount(serde_norway::from_value(value).map_err(yaml)?)
            }
            (ClusterRole::API_VERSION, ClusterRole::KIND) => {
                Object::ClusterRole(serde_norway::from_value(value).map_err(yaml)?)
            }
            (ClusterRoleBinding::API_VERSION, ClusterRoleBinding::KIND) => {
                Object::ClusterRoleBinding(serde_norway::from_value(value).map_err(yaml)?)
            }
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
            (ValidatingAdmissionPolicy::API_VERSION, ValidatingAdmissionPolicy::KIND) => {
                Object::ValidatingAdmissionPolicy(serde_norway::from_value(value).map_err(yaml)?)
            }
            (
                ValidatingAdmissionPolicyBinding::API_VERSION,
                ValidatingAdmissionPolicyBinding::KIND,
            ) => Object::ValidatingAdmissionPolicyBinding(
                serde_norway::from_value(value).map_err(yaml)?,
            ),
            (DeviceClass::API_VERSION, DeviceClass::KIND) => {
                Object::DeviceClass(serde_norway::from_value(value).map_err(yaml)?)
            }
            (ResourceClaimTemplate::API_VERSION, ResourceClaimTemplate::KIND) => {
                Object::ResourceClaimTemplate(serde_norway::from_value(value).map_err(yaml)?)
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
}
