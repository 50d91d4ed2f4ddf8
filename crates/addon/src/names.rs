//! Names, labels and paths shared by the rendered manifests and the webhook.

/// Label every rendered object carries; `kubectl apply --prune -l` and uninstall select on it.
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
/// Value of [`LABEL_PART_OF`].
pub const PART_OF: &str = "confcom";
/// Label naming the component of an object (`device-plugin`, `quote-helper`, `webhook`).
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// Label naming the application.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// Label naming the tool that produced the object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Component value of the device plugin objects.
pub const COMPONENT_DEVICE_PLUGIN: &str = "device-plugin";
/// Component value of the quote helper objects.
pub const COMPONENT_QUOTE_HELPER: &str = "quote-helper";
/// Component value of the admission webhook objects.
pub const COMPONENT_WEBHOOK: &str = "webhook";
/// Component value of the PCCS objects.
pub const COMPONENT_PCCS: &str = "pccs";
/// Component value of the DRA driver objects (`--dra`).
pub const COMPONENT_DRA_DRIVER: &str = "dra-driver";

/// Annotation stating why a container runs as uid 0 (YAML comments cannot come from typed objects).
pub const ANNOTATION_RUNS_AS_ROOT: &str = "confcom.sgx/runs-as-root";
/// Opt-in label, on a pod or on its namespace, for the quote-helper wiring done by the webhook.
/// The value `"true"` opts in; on a pod in an opted-in namespace, `"false"` opts out.
pub const LABEL_QUOTE_HELPER_OPT_IN: &str = "confcom.sgx/quote-helper";

/// Namespace the add-on installs into unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "kube-system";

/// Name of the device plugin DaemonSet (the name AKS uses, so its pods read `sgx-device-plugin-…`).
pub const DEVICE_PLUGIN_NAME: &str = "sgx-device-plugin";
/// Name of the quote helper DaemonSet (AKS pods read `sgx-quote-helper-…`).
pub const QUOTE_HELPER_NAME: &str = "sgx-quote-helper";
/// Name of the ConfigMap holding `sgx_default_qcnl.conf` for the hardware quote helper.
pub const QCNL_CONFIG_MAP_NAME: &str = "sgx-quote-helper-qcnl";
/// Name of the webhook Deployment, its Service and the MutatingWebhookConfiguration.
pub const WEBHOOK_NAME: &str = "sgx-webhook";
/// Name of the webhook's TLS Secret.
pub const WEBHOOK_TLS_SECRET_NAME: &str = "sgx-webhook-tls";
/// HTTPS path of the webhook entry selected by the pod label.
pub const WEBHOOK_PATH_POD: &str = "/mutate/pod-opt-in";
/// HTTPS path of the webhook entry selected by the namespace label.
pub const WEBHOOK_PATH_NAMESPACE: &str = "/mutate/namespace-opt-in";
/// HTTPS path of the webhook entry for pods that request [`RESOURCE_INTEL_EPC`] (Intel's way).
pub const WEBHOOK_PATH_INTEL_EPC: &str = "/mutate/sgx-epc";
/// Port the webhook container listens on.
pub const WEBHOOK_PORT: u16 = 8443;

/// EPC resource advertised by the device plugin (the AKS name, in MiB).
pub const RESOURCE_EPC_MIB: &str = "kubernetes.azure.com/sgx_epc_mem_in_MiB";
/// Intel's EPC resource name (bytes), also accepted by the webhook as an EPC request.
pub const RESOURCE_INTEL_EPC: &str = "sgx.intel.com/epc";
/// Intel's enclave slot resource.
pub const RESOURCE_ENCLAVE: &str = "sgx.intel.com/enclave";
/// Intel's provisioning slot resource (grants the provision device node).
pub const RESOURCE_PROVISION: &str = "sgx.intel.com/provision";
/// Pod annotation of Intel's webhook naming the container that quotes for the pod, or `aesmd` for
/// out-of-process quoting through the node's AESM socket.
pub const ANNOTATION_QUOTE_PROVIDER: &str = "sgx.intel.com/quote-provider";
/// The [`ANNOTATION_QUOTE_PROVIDER`] value (and container name) of out-of-process quoting.
pub const QUOTE_PROVIDER_AESMD: &str = "aesmd";
/// Pod annotation with the pod's summed [`RESOURCE_INTEL_EPC`] (binary-SI), read by Kata and
/// Intel's tooling.
pub const ANNOTATION_INTEL_EPC: &str = "sgx.intel.com/epc";
/// Prefix of the per-container EPC annotation (`<prefix>.<container>` = bytes) read by Intel's NRI
/// EPC limit plugin.
pub const ANNOTATION_NRI_EPC_LIMIT_PREFIX: &str = "epc-limit.nri.io/container";
/// Name of the pod volume Intel's webhook uses for the aesmd socket directory.
pub const INTEL_AESMD_VOLUME_NAME: &str = "aesmd-socket";

/// Host directory of the AESM socket shared between the quote helper and app pods.
pub const AESMD_DIR: &str = "/var/run/aesmd";
/// The AESM socket inside [`AESMD_DIR`].
pub const AESMD_SOCKET: &str = "/var/run/aesmd/aesm.socket";
/// Environment variable that switches Intel's DCAP library (and Open Enclave, Occlum) to out-of-process quoting.
pub const ENV_SGX_AESM_ADDR: &str = "SGX_AESM_ADDR";
/// Name of the pod volume the webhook adds for [`AESMD_DIR`].
pub const AESMD_VOLUME_NAME: &str = "confcom-aesmd";

/// Kubelet's device-plugin directory.
pub const KUBELET_DEVICE_PLUGIN_DIR: &str = "/var/lib/kubelet/device-plugins";
/// Host directory of the quote helper's persistent state.
pub const QUOTE_HELPER_STATE_DIR: &str = "/var/lib/confcom/quote-helper";
/// Path of the quote provider configuration read by Intel's DCAP quote provider library.
pub const QCNL_CONF_PATH: &str = "/etc/sgx_default_qcnl.conf";
/// Key of the quote provider configuration in its ConfigMap.
pub const QCNL_CONF_KEY: &str = "sgx_default_qcnl.conf";

/// Metrics port of the device plugin.
pub const DEVICE_PLUGIN_METRICS_PORT: u16 = 9101;
/// Metrics port of the quote helper.
pub const QUOTE_HELPER_METRICS_PORT: u16 = 9102;
/// Metrics port of the webhook.
pub const WEBHOOK_METRICS_PORT: u16 = 9103;

/// Node label set by Node Feature Discovery on SGX-capable nodes.
pub const NFD_SGX_LABEL: &str = "intel.feature.node.kubernetes.io/sgx";
/// Node label the AKS documentation asks for on SGX nodes outside Azure.
pub const TEE_LABEL: &str = "tee";

/// Image used unless `--image` says otherwise.
pub const DEFAULT_IMAGE: &str = concat!("ghcr.io/confcom-rs/confcom:", env!("CARGO_PKG_VERSION"));
/// Image of the hardware quote helper (carries Intel's DCAP quote library) unless `--dcap-image` says otherwise.
pub const DEFAULT_DCAP_IMAGE: &str = concat!(
    "ghcr.io/confcom-rs/confcom-dcap:",
    env!("CARGO_PKG_VERSION")
);
/// Simulated EPC size advertised with `--simulate` when `--epc-mib` is not given.
pub const DEFAULT_SIM_EPC_MIB: u64 = 256;
/// Unprivileged uid/gid of the containers that need no root.
pub const NONROOT_UID: i64 = 65532;

/// ServiceAccount of the device plugin: it patches its node's status (`sgx.intel.com/epc`).
pub const DEVICE_PLUGIN_SERVICE_ACCOUNT: &str = "sgx-device-plugin";
/// ClusterRole and ClusterRoleBinding that let the device plugin patch `nodes/status` (nothing
/// else).
pub const DEVICE_PLUGIN_CLUSTER_ROLE: &str = "confcom-sgx-device-plugin";
/// Environment variable the device plugin reads its node's name from (set from `spec.nodeName`).
pub const ENV_NODE_NAME: &str = "NODE_NAME";
/// Name of the PCCS Deployment, its Service and its TLS Secret's prefix.
pub const PCCS_NAME: &str = "sgx-pccs";
/// Port of the PCCS (Intel's PCCS listens on 8081).
pub const PCCS_PORT: u16 = 8081;
/// The PCCS's serving certificate and key (`--pccs-certs`), a `kubernetes.io/tls` Secret.
pub const PCCS_TLS_SECRET_NAME: &str = "sgx-pccs-tls";
/// The CA of the PCCS's serving certificate, for its clients (the quote helpers, relying parties).
pub const PCCS_CA_CONFIG_MAP_NAME: &str = "sgx-pccs-ca";
/// The key of the CA certificate in [`PCCS_CA_CONFIG_MAP_NAME`] (as in the webhook's Secret).
pub const PCCS_CA_KEY: &str = "ca.crt";
/// Name of the Secret holding a simulated cluster's shared CA (`--sim-ca`).
pub const SIM_CA_SECRET_NAME: &str = "sgx-sim-ca";
/// Intel's public Provisioning Certification Service, API v4: the in-cluster PCCS's default
/// upstream.
pub const INTEL_PCS_URL: &str = "https://api.trustedservices.intel.com/sgx/certification/v4/";

/// The DRA driver's name (`ResourceSlice.spec.driver`, kubelet plugin name); equal to
/// `dra_driver::names::DEFAULT_DRIVER_NAME` (a test of the `confcom` crate holds them together).
pub const DRA_DRIVER: &str = "sgx.confcom-rs.github.io";
/// DeviceClass: EPC from any of the driver's devices.
pub const DRA_CLASS_EPC: &str = "sgx.confcom-rs.github.io";
/// DeviceClass: EPC plus the wiring to the node's quote helper.
pub const DRA_CLASS_QUOTE_HELPER: &str = "quote-helper.sgx.confcom-rs.github.io";
/// DeviceClass: EPC plus the provisioning device node.
pub const DRA_CLASS_PROVISION: &str = "provision.sgx.confcom-rs.github.io";
/// The device capacity holding EPC bytes.
pub const DRA_CAPACITY_EPC: &str = "epc";
/// Device attribute (bool): the provisioning device node exists on the node.
pub const DRA_ATTR_PROVISIONING: &str = "provisioning";
/// Device attribute (string): the platform's TCB status under current collateral.
pub const DRA_ATTR_TCB_STATUS: &str = "tcbStatus";
/// `apiVersion` of the driver's opaque configuration.
pub const DRA_CONFIG_API_VERSION: &str = "sgx.confcom-rs.github.io/v1alpha1";
/// `kind` of the driver's opaque configuration.
pub const DRA_CONFIG_KIND: &str = "SgxConfig";
/// Kubelet's plugin registration directory.
pub const KUBELET_PLUGINS_REGISTRY_DIR: &str = "/var/lib/kubelet/plugins_registry";
/// Parent of the kubelet plugins' own directories.
pub const KUBELET_PLUGINS_DIR: &str = "/var/lib/kubelet/plugins";
/// The dynamic CDI directory the container runtimes read.
pub const CDI_DYNAMIC_DIR: &str = "/var/run/cdi";

/// Name of the DRA driver's kubelet-plugin DaemonSet.
pub const DRA_DRIVER_NAME: &str = "sgx-dra-driver";
/// ServiceAccount of the DRA driver: it publishes its node's ResourceSlices.
pub const DRA_DRIVER_SERVICE_ACCOUNT: &str = "sgx-dra-driver";
/// ClusterRole and ClusterRoleBinding of the DRA driver.
pub const DRA_DRIVER_CLUSTER_ROLE: &str = "confcom-sgx-dra-driver";
/// ValidatingAdmissionPolicy (and its binding) that limits the driver to its own node's slices.
pub const DRA_DRIVER_SLICE_POLICY: &str = "confcom-sgx-dra-driver-own-node";
/// Name of the quote helper DaemonSet on DRA nodes (it takes its SGX devices from a claim).
pub const DRA_QUOTE_HELPER_NAME: &str = "sgx-quote-helper-dra";
/// ResourceClaimTemplate of the quote helper on DRA nodes.
pub const DRA_QUOTE_HELPER_CLAIM_TEMPLATE: &str = "sgx-quote-helper";
/// Metrics and health port of the DRA driver.
pub const DRA_DRIVER_METRICS_PORT: u16 = 9104;
/// Environment variable the DRA driver reads its pod's UID from (rolling-update socket names).
pub const ENV_POD_UID: &str = "POD_UID";
/// The user-info extra key carrying the node of a service-account token bound to a pod.
pub const USER_EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
