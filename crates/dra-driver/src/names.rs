//! Names the driver publishes and answers to. Classes, selectors and manifests elsewhere must
//! spell them exactly as here.

/// The default driver name: a DNS subdomain of a domain this project owns, used as
/// `ResourceSlice.spec.driver`, in allocation results and as the kubelet plugin name.
pub const DEFAULT_DRIVER_NAME: &str = "sgx.confcom-rs.github.io";

/// Longest driver name the API server accepts (`DriverNameMaxLength`).
pub const DRIVER_NAME_MAX_LEN: usize = 63;

/// The capacity every EPC device carries, in bytes.
pub const CAPACITY_EPC: &str = "epc";

/// EPC pages are 4 KiB: requests are rounded up to whole pages.
pub const EPC_PAGE_BYTES: u64 = 4096;

/// Device attributes (unqualified: they belong to the driver's own domain).
pub mod attr {
    /// bool: SGX2 (EDMM, CPUID.(EAX=12H,ECX=0):EAX[1]).
    pub const SGX2: &str = "sgx2";
    /// bool: Flexible Launch Control (CPUID.(EAX=7,ECX=0):ECX[30]).
    pub const FLC: &str = "flc";
    /// bool: Key Separation and Sharing (CPUID.(EAX=12H,ECX=1):EAX[7]).
    pub const KSS: &str = "kss";
    /// bool: AEX-Notify (CPUID.(EAX=12H,ECX=1):EAX[10]).
    pub const AEX_NOTIFY: &str = "aexNotify";
    /// string: the SGX driver layout of the node (`inTree`, `dcap`, `legacy`, `simulated`).
    pub const DRIVER_LAYOUT: &str = "driverLayout";
    /// bool: whether the provisioning device node exists (needed for PCK certificate retrieval).
    pub const PROVISIONING: &str = "provisioning";
    /// int: the NUMA node of the EPC section (absent when the kernel does not say).
    pub const NUMA_NODE: &str = "numaNode";
    /// bool: a simulated platform (no SGX hardware).
    pub const SIMULATED: &str = "simulated";
    /// string: the platform's FMSPC, 12 lowercase hex digits, from the PCK certificate of the node's attestation.
    pub const FMSPC: &str = "fmspc";
    /// int: the platform's PCE SVN, from the node's attestation (quote header).
    pub const PCE_SVN: &str = "pceSvn";
    /// string: the platform's CPU SVN, 32 lowercase hex digits, from the QE report of the node's attestation.
    pub const CPU_SVN: &str = "cpuSvn";
    /// string: the platform's TCB status under current collateral (`UpToDate`, `SWHardeningNeeded`,
    /// `ConfigurationNeeded`, `ConfigurationAndSWHardeningNeeded`, `OutOfDate`,
    /// `OutOfDateConfigurationNeeded`, `Revoked`).
    pub const TCB_STATUS: &str = "tcbStatus";
    /// string: the TCB date of the platform's TCB level (RFC 3339).
    pub const TCB_DATE: &str = "tcbDate";
}

/// DeviceClasses rendered by `confcom addon render --dra` (for the default driver name).
pub mod class {
    /// Enclaves: EPC from any of the driver's devices.
    pub const EPC: &str = "sgx.confcom-rs.github.io";
    /// Enclaves wired to the node's quote helper (`SGX_AESM_ADDR=1`, the `/var/run/aesmd` mount).
    pub const QUOTE_HELPER: &str = "quote-helper.sgx.confcom-rs.github.io";
    /// Provisioning: `/dev/sgx_provision` as well (PCK certificate retrieval, as a quote provider).
    pub const PROVISION: &str = "provision.sgx.confcom-rs.github.io";
}

/// The opaque configuration a class or claim passes to the driver
/// (`spec.config[].opaque.parameters`).
pub mod config {
    /// `apiVersion` of the opaque parameters.
    pub const API_VERSION: &str = "sgx.confcom-rs.github.io/v1alpha1";
    /// `kind` of the opaque parameters.
    pub const KIND: &str = "SgxConfig";
}

/// CDI names: specs are written per claim as `<vendor>-<class>_<claim UID>.json`.
pub mod cdi {
    /// The CDI class of per-claim devices (the vendor is `k8s.<driver name>`).
    pub const CLASS: &str = "claim";
    /// The dynamic CDI directory containerd and CRI-O read by default.
    pub const DEFAULT_ROOT: &str = "/var/run/cdi";
}

/// Kubelet's directories and the driver's sockets.
pub mod paths {
    /// Where kubelet's plugin watcher looks for registration sockets.
    pub const KUBELET_REGISTRY_DIR: &str = "/var/lib/kubelet/plugins_registry";
    /// Parent of the driver's own directory (`<dir>/<driver>/dra.sock`, checkpoint).
    pub const KUBELET_PLUGINS_DIR: &str = "/var/lib/kubelet/plugins";
    /// The DRA service socket's file name inside the driver's directory.
    pub const DRA_SOCKET: &str = "dra.sock";
    /// The checkpoint's file name inside the driver's directory.
    pub const CHECKPOINT: &str = "checkpoint.json";
    /// The quote helper's socket directory on the host, mounted into wired containers.
    pub const AESMD_DIR: &str = "/var/run/aesmd";
}
