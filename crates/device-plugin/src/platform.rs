//! SGX discovery: EPC size and the device nodes of each driver layout.
//!
//! [`SgxPlatform`] is the seam between the plugin and the machine; [`HostPlatform`] reads a real
//! (or fake, in tests) `/dev` and `/sys`, and falls back to CPUID leaf 0x12 for the EPC size.

use std::path::{Path, PathBuf};

/// Bytes in one MiB, the unit of the EPC resource.
pub const MIB: u64 = 1024 * 1024;
/// Most EPC sections CPUID enumerates (the kernel's `SGX_MAX_EPC_SECTIONS`).
pub const MAX_EPC_SECTIONS: usize = 8;

/// Discovery failures. SGX being absent is not one: it yields an empty [`Epc`].
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// A sysfs directory or file could not be read.
    #[error("cannot read {path}: {source}")]
    SysfsRead {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A sysfs file did not hold a byte count.
    #[error("{path} holds {value:?}, not a byte count")]
    SysfsValue {
        /// The path.
        path: PathBuf,
        /// What it held (trimmed, at most 64 characters).
        value: String,
    },
    /// CPUID reported more than [`MAX_EPC_SECTIONS`] sections or an unknown section type.
    #[error("CPUID leaf 0x12 sub-leaf {subleaf}: {reason}")]
    Cpuid {
        /// The sub-leaf.
        subleaf: u32,
        /// What was wrong.
        reason: &'static str,
    },
}

/// Where an EPC size came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpcSource {
    /// `/sys/devices/system/node/node*/x86/sgx_total_bytes`.
    Sysfs,
    /// CPUID leaf 0x12, sub-leaves 2 and up.
    Cpuid,
    /// Configured by the operator (`--epc-mib`).
    Configured,
    /// No SGX found.
    None,
}

/// One part of the EPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpcSection {
    /// NUMA node, when known (sysfs reports per node; CPUID does not).
    pub numa_node: Option<i64>,
    /// Size in bytes.
    pub bytes: u64,
}

/// The EPC of the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Epc {
    /// Its sections, NUMA nodes in ascending order when known.
    pub sections: Vec<EpcSection>,
    /// Where the numbers came from.
    pub source: EpcSource,
}

impl Epc {
    /// No EPC.
    pub fn none() -> Self {
        Self {
            sections: Vec::new(),
            source: EpcSource::None,
        }
    }

    /// An operator-configured size without topology.
    pub fn configured(mib: u64) -> Self {
        Self {
            sections: vec![EpcSection {
                numa_node: None,
                bytes: mib.saturating_mul(MIB),
            }],
            source: EpcSource::Configured,
        }
    }

    /// Total size in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.sections
            .iter()
            .map(|s| s.bytes)
            .fold(0, u64::saturating_add)
    }

    /// Whole MiB per NUMA node, in order, when every section has a node.
    pub fn numa_mib(&self) -> Option<Vec<(i64, u64)>> {
        self.sections
            .iter()
            .map(|s| s.numa_node.map(|node| (node, s.bytes / MIB)))
            .collect()
    }

    /// Total whole MiB (sum over sections, each rounded down, so it matches [`Epc::numa_mib`]).
    pub fn total_mib(&self) -> u64 {
        self.sections.iter().map(|s| s.bytes / MIB).sum()
    }
}

/// Which SGX device nodes exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceNodes {
    /// In-tree driver (Linux ≥ 5.11): `/dev/sgx_enclave`.
    pub in_tree_enclave: bool,
    /// In-tree driver: `/dev/sgx_provision`.
    pub in_tree_provision: bool,
    /// DCAP out-of-tree driver: `/dev/sgx/enclave`.
    pub dcap_enclave: bool,
    /// DCAP out-of-tree driver: `/dev/sgx/provision`.
    pub dcap_provision: bool,
    /// Legacy out-of-tree driver (SGX1): `/dev/isgx`.
    pub legacy_enclave: bool,
}

impl DeviceNodes {
    /// Every node present (used by simulate mode for health only; it grants none of them).
    pub const ALL: Self = Self {
        in_tree_enclave: true,
        in_tree_provision: true,
        dcap_enclave: true,
        dcap_provision: true,
        legacy_enclave: true,
    };

    /// Whether any enclave device node exists.
    pub fn any_enclave(&self) -> bool {
        self.in_tree_enclave || self.dcap_enclave || self.legacy_enclave
    }

    /// Whether any provision device node exists.
    pub fn any_provision(&self) -> bool {
        self.in_tree_provision || self.dcap_provision
    }
}

/// Device node paths relative to the dev root, and as seen on the host and in containers.
pub mod paths {
    /// In-tree enclave node, relative to the dev root.
    pub const IN_TREE_ENCLAVE: &str = "sgx_enclave";
    /// In-tree provision node.
    pub const IN_TREE_PROVISION: &str = "sgx_provision";
    /// Directory of the DCAP driver's nodes.
    pub const DCAP_DIR: &str = "sgx";
    /// DCAP enclave node.
    pub const DCAP_ENCLAVE: &str = "sgx/enclave";
    /// DCAP provision node.
    pub const DCAP_PROVISION: &str = "sgx/provision";
    /// Legacy driver node.
    pub const LEGACY_ENCLAVE: &str = "isgx";
}

/// What the plugin needs to know about the machine.
pub trait SgxPlatform: Send + Sync + 'static {
    /// The EPC, or [`Epc::none`] when SGX is absent.
    fn epc(&self) -> Result<Epc, DiscoveryError>;
    /// The SGX device nodes present now.
    fn device_nodes(&self) -> DeviceNodes;
    /// Directories whose changes may change [`SgxPlatform::device_nodes`] (watched with inotify).
    fn watch_dirs(&self) -> Vec<PathBuf>;
}

/// The real machine, seen through `dev_root` (the host's `/dev`) and `sysfs_root` (the host's
/// `/sys`).
#[derive(Clone, Debug)]
pub struct HostPlatform {
    dev_root: PathBuf,
    sysfs_root: PathBuf,
    use_cpuid: bool,
}

impl HostPlatform {
    /// A platform reading the given roots, with the CPUID fallback on x86_64.
    pub fn new(dev_root: impl Into<PathBuf>, sysfs_root: impl Into<PathBuf>) -> Self {
        Self {
            dev_root: dev_root.into(),
            sysfs_root: sysfs_root.into(),
            use_cpuid: true,
        }
    }

    /// Turn the CPUID fallback off (tests with a fake sysfs).
    pub fn without_cpuid(mut self) -> Self {
        self.use_cpuid = false;
        self
    }

    /// The dev root.
    pub fn dev_root(&self) -> &Path {
        &self.dev_root
    }
}

impl SgxPlatform for HostPlatform {
    fn epc(&self) -> Result<Epc, DiscoveryError> {
        let sections = sysfs_epc(&self.sysfs_root)?;
        if !sections.is_empty() {
            return Ok(Epc {
                sections,
                source: EpcSource::Sysfs,
            });
        }
        if self.use_cpuid {
            let sections = cpuid_epc()?;
            if !sections.is_empty() {
                return Ok(Epc {
                    sections,
                    source: EpcSource::Cpuid,
                });
            }
        }
        Ok(Epc::none())
    }

    fn device_nodes(&self) -> DeviceNodes {
        let exists = |rel: &str| is_device_node(&self.dev_root.join(rel));
        DeviceNodes {
            in_tree_enclave: exists(paths::IN_TREE_ENCLAVE),
            in_tree_provision: exists(paths::IN_TREE_PROVISION),
            dcap_enclave: exists(paths::DCAP_ENCLAVE),
            dcap_provision: exists(paths::DCAP_PROVISION),
            legacy_enclave: exists(paths::LEGACY_ENCLAVE),
        }
    }

    fn watch_dirs(&self) -> Vec<PathBuf> {
        vec![self.dev_root.clone(), self.dev_root.join(paths::DCAP_DIR)]
    }
}

/// A device node is anything but a directory (character devices on a node; plain files in the
/// fake dev roots of tests). Symlinks are followed: `/dev/sgx/enclave` is often one.
fn is_device_node(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_dir())
}

/// EPC bytes per NUMA node from `<sysfs_root>/devices/system/node/node<N>/x86/sgx_total_bytes`;
/// empty when no such file exists (no NUMA, SGX not initialised, or not Linux ≥ 5.16).
pub fn sysfs_epc(sysfs_root: &Path) -> Result<Vec<EpcSection>, DiscoveryError> {
    let dir = sysfs_root.join("devices/system/node");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(DiscoveryError::SysfsRead { path: dir, source }),
    };
    let mut sections = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| DiscoveryError::SysfsRead {
            path: dir.clone(),
            source,
        })?;
        let name = entry.file_name();
        let Some(node) = name
            .to_str()
            .and_then(|n| n.strip_prefix("node"))
            .and_then(|n| n.parse::<i64>().ok())
        else {
            continue;
        };
        let path = entry.path().join("x86/sgx_total_bytes");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(DiscoveryError::SysfsRead { path, source }),
        };
        let trimmed = text.trim();
        let bytes = trimmed
            .parse::<u64>()
            .map_err(|_| DiscoveryError::SysfsValue {
                path: path.clone(),
                value: trimmed.chars().take(64).collect(),
            })?;
        if bytes > 0 {
            sections.push(EpcSection {
                numa_node: Some(node),
                bytes,
            });
        }
    }
    sections.sort_by_key(|s| s.numa_node);
    Ok(sections)
}

/// One CPUID result: `[eax, ebx, ecx, edx]`.
pub type CpuidRegs = [u32; 4];

/// EPC sections from CPUID leaf 0x12 sub-leaves 2, 3, … as returned by `subleaf(n)`: type
/// `EAX[3:0]` 0 ends the list, 1 is a section of `ECX[31:12] + EDX[19:0] << 32` bytes, anything
/// else is an error (as in the kernel).
pub fn epc_from_cpuid(
    mut subleaf: impl FnMut(u32) -> CpuidRegs,
) -> Result<Vec<EpcSection>, DiscoveryError> {
    let mut sections = Vec::new();
    for i in 0..=MAX_EPC_SECTIONS as u32 {
        let n = 2 + i;
        let [eax, _ebx, ecx, edx] = subleaf(n);
        match eax & 0xF {
            0 => return Ok(sections),
            1 if sections.len() == MAX_EPC_SECTIONS => {
                return Err(DiscoveryError::Cpuid {
                    subleaf: n,
                    reason: "more than 8 EPC sections",
                });
            }
            1 => {
                let bytes = u64::from(ecx & 0xFFFF_F000) + (u64::from(edx & 0xF_FFFF) << 32);
                sections.push(EpcSection {
                    numa_node: None,
                    bytes,
                });
            }
            _ => {
                return Err(DiscoveryError::Cpuid {
                    subleaf: n,
                    reason: "unknown EPC section type",
                });
            }
        }
    }
    Ok(sections)
}

/// Whether CPUID says SGX is supported: max basic leaf ≥ 0x12 and CPUID.(7,0):EBX bit 2.
pub fn sgx_supported(mut leaf: impl FnMut(u32, u32) -> CpuidRegs) -> bool {
    let [max_leaf, ..] = leaf(0, 0);
    max_leaf >= 0x12 && leaf(7, 0)[1] & (1 << 2) != 0
}

/// A CPUID instruction: `(leaf, sub-leaf) → [eax, ebx, ecx, edx]`.
pub type CpuidFn = fn(u32, u32) -> CpuidRegs;

/// This CPU's CPUID (x86-64), or `None` elsewhere.
pub fn host_cpuid() -> Option<CpuidFn> {
    #[cfg(target_arch = "x86_64")]
    {
        Some(cpuid)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// What CPUID says about SGX: the one reading of the feature bits that the device plugin, the
/// DRA driver and the doctor share.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CpuSgx {
    /// CPUID.(EAX=7,ECX=0):EBX[2].
    pub sgx: bool,
    /// CPUID.(EAX=7,ECX=0):ECX[30], flexible launch control.
    pub flc: bool,
    /// CPUID.(EAX=0x12,ECX=0):EAX[0].
    pub sgx1: bool,
    /// CPUID.(EAX=0x12,ECX=0):EAX[1], SGX2 (enclave dynamic memory management).
    pub sgx2: bool,
    /// CPUID.(EAX=0x12,ECX=1):EAX[7], key separation and sharing (the KSS bit enclaves may set in
    /// SECS.ATTRIBUTES).
    pub kss: bool,
    /// CPUID.(EAX=0x12,ECX=1):EAX[10], AEX-Notify (the AEXNOTIFY attribute bit).
    pub aex_notify: bool,
    /// EPC section sizes in bytes (sub-leaves 2, 3, …).
    pub epc_sections: Vec<u64>,
    /// Why the EPC sections could not be read, if so.
    pub epc_error: Option<String>,
}

impl CpuSgx {
    /// No SGX at all (not x86-64, or a simulated platform without a CPU to ask).
    pub fn absent() -> Self {
        Self {
            sgx: false,
            flc: false,
            sgx1: false,
            sgx2: false,
            kss: false,
            aex_notify: false,
            epc_sections: Vec::new(),
            epc_error: None,
        }
    }
}

/// Reads SGX support from `cpuid`.
pub fn cpu_sgx(cpuid: CpuidFn) -> CpuSgx {
    let [max_leaf, ..] = cpuid(0, 0);
    let leaf7 = if max_leaf >= 7 { cpuid(7, 0) } else { [0; 4] };
    let mut out = CpuSgx {
        sgx: leaf7[1] & (1 << 2) != 0,
        flc: leaf7[2] & (1 << 30) != 0,
        ..CpuSgx::absent()
    };
    if out.sgx && max_leaf >= 0x12 {
        let eax = cpuid(0x12, 0)[0];
        out.sgx1 = eax & 1 != 0;
        out.sgx2 = eax & 2 != 0;
        let attributes = cpuid(0x12, 1)[0];
        out.kss = attributes & (1 << 7) != 0;
        out.aex_notify = attributes & (1 << 10) != 0;
        match epc_from_cpuid(|n| cpuid(0x12, n)) {
            Ok(sections) => out.epc_sections = sections.iter().map(|s| s.bytes).collect(),
            Err(e) => out.epc_error = Some(e.to_string()),
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
fn cpuid(leaf: u32, subleaf: u32) -> CpuidRegs {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

#[cfg(target_arch = "x86_64")]
fn cpuid_epc() -> Result<Vec<EpcSection>, DiscoveryError> {
    if !sgx_supported(cpuid) {
        return Ok(Vec::new());
    }
    epc_from_cpuid(|n| cpuid(0x12, n))
}

#[cfg(not(target_arch = "x86_64"))]
fn cpuid_epc() -> Result<Vec<EpcSection>, DiscoveryError> {
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(bytes: u64) -> CpuidRegs {
        [
            1 | 0x4000_0000,
            0x0,
            (bytes & 0xFFFF_F000) as u32 | 1,
            (bytes >> 32) as u32,
        ]
    }

    #[test]
    fn cpuid_sections_are_summed_until_the_invalid_type() {
        let regs = [
            section(64 * MIB),
            section(6 * 1024 * MIB + 4 * MIB),
            [0; 4],
            section(MIB),
        ];
        let sections = epc_from_cpuid(|n| regs[(n - 2) as usize]).unwrap();
        let epc = Epc {
            sections,
            source: EpcSource::Cpuid,
        };
        assert_eq!(epc.sections.len(), 2);
        assert_eq!(epc.total_bytes(), 64 * MIB + 6 * 1024 * MIB + 4 * MIB);
        assert_eq!(epc.total_mib(), 64 + 6 * 1024 + 4);
        assert_eq!(epc.numa_mib(), None);
    }

    #[test]
    fn cpuid_high_bits_of_the_size_come_from_edx() {
        let sections = epc_from_cpuid(|n| {
            if n == 2 {
                section(256 * 1024 * MIB)
            } else {
                [0; 4]
            }
        })
        .unwrap();
        assert_eq!(sections[0].bytes, 256 * 1024 * MIB);
    }

    #[test]
    fn cpuid_unknown_type_and_too_many_sections_are_errors() {
        let err = epc_from_cpuid(|n| if n == 3 { [2, 0, 0, 0] } else { section(MIB) }).unwrap_err();
        assert!(
            matches!(err, DiscoveryError::Cpuid { subleaf: 3, .. }),
            "{err}"
        );
        let err = epc_from_cpuid(|_| section(MIB)).unwrap_err();
        assert!(
            matches!(err, DiscoveryError::Cpuid { subleaf: 10, .. }),
            "{err}"
        );
        assert!(epc_from_cpuid(|_| [0; 4]).unwrap().is_empty());
    }

    #[test]
    fn cpuid_feature_bits_are_read() {
        let cpu = cpu_sgx(|leaf, subleaf| match (leaf, subleaf) {
            (0, 0) => [0x1f, 0, 0, 0],
            (7, 0) => [0, 1 << 2, 1 << 30, 0],
            (0x12, 0) => [0b11, 0, 0, 0],
            (0x12, 1) => [(1 << 7) | (1 << 10) | 0b10, 0, 0, 0],
            (0x12, 2) => section(64 * MIB),
            _ => [0; 4],
        });
        assert!(cpu.sgx && cpu.flc && cpu.sgx1 && cpu.sgx2 && cpu.kss && cpu.aex_notify);
        assert_eq!(cpu.epc_sections, vec![64 * MIB]);
        let sgx1_only = cpu_sgx(|leaf, subleaf| match (leaf, subleaf) {
            (0, 0) => [0x1f, 0, 0, 0],
            (7, 0) => [0, 1 << 2, 0, 0],
            (0x12, 0) => [0b01, 0, 0, 0],
            (0x12, 1) => [0b10, 0, 0, 0],
            _ => [0; 4],
        });
        assert!(sgx1_only.sgx1 && !sgx1_only.sgx2 && !sgx1_only.flc);
        assert!(!sgx1_only.kss && !sgx1_only.aex_notify);
        // Without the SGX bit the SGX leaf is not believed, whatever it holds.
        let none = cpu_sgx(|leaf, _| match leaf {
            0 => [0x1f, 0, 0, 0],
            0x12 => [!0; 4],
            _ => [0; 4],
        });
        assert!(!none.sgx && !none.sgx2 && !none.kss && !none.aex_notify);
    }

    #[test]
    fn sgx_support_needs_the_leaf_and_the_feature_bit() {
        assert!(sgx_supported(|leaf, _| if leaf == 0 {
            [0x1b, 0, 0, 0]
        } else {
            [0, 0b100, 0, 0]
        }));
        assert!(!sgx_supported(|leaf, _| if leaf == 0 {
            [0x11, 0, 0, 0]
        } else {
            [0, 0b100, 0, 0]
        }));
        assert!(!sgx_supported(|leaf, _| if leaf == 0 {
            [0x1b, 0, 0, 0]
        } else {
            [0, 0b011, 0, 0]
        }));
    }

    #[test]
    fn this_machine_has_no_sgx_and_discovery_says_so_without_error() {
        // The CPUID path runs for real here; a machine without SGX must give an empty EPC.
        let dir = tempfile::tempdir().unwrap();
        let platform = HostPlatform::new(dir.path().join("dev"), dir.path().join("sys"));
        let epc = platform.epc().unwrap();
        if !sgx_supported(cpuid_for_test) {
            assert_eq!(epc, Epc::none());
        }
        assert_eq!(platform.device_nodes(), DeviceNodes::default());
    }

    #[cfg(target_arch = "x86_64")]
    fn cpuid_for_test(leaf: u32, subleaf: u32) -> CpuidRegs {
        cpuid(leaf, subleaf)
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn cpuid_for_test(_: u32, _: u32) -> CpuidRegs {
        [0; 4]
    }

    #[test]
    fn sysfs_per_node_files_are_summed_in_node_order() {
        let dir = tempfile::tempdir().unwrap();
        for (node, bytes) in [(1, "2147483648\n"), (0, "1073741824\n")] {
            let x86 = dir
                .path()
                .join(format!("devices/system/node/node{node}/x86"));
            std::fs::create_dir_all(&x86).unwrap();
            std::fs::write(x86.join("sgx_total_bytes"), bytes).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("devices/system/node/node2")).unwrap();
        std::fs::create_dir_all(dir.path().join("devices/system/node/power")).unwrap();
        let epc = HostPlatform::new(dir.path().join("dev"), dir.path())
            .without_cpuid()
            .epc()
            .unwrap();
        assert_eq!(epc.source, EpcSource::Sysfs);
        assert_eq!(epc.total_mib(), 3072);
        assert_eq!(epc.numa_mib(), Some(vec![(0, 1024), (1, 2048)]));
    }

    #[test]
    fn sysfs_garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let x86 = dir.path().join("devices/system/node/node0/x86");
        std::fs::create_dir_all(&x86).unwrap();
        std::fs::write(x86.join("sgx_total_bytes"), "lots\n").unwrap();
        let err = sysfs_epc(dir.path()).unwrap_err();
        assert!(err.to_string().contains("\"lots\""), "{err}");
    }

    #[test]
    fn device_nodes_of_each_layout_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let platform = HostPlatform::new(dir.path(), dir.path()).without_cpuid();
        std::fs::write(dir.path().join("sgx_enclave"), "").unwrap();
        assert_eq!(
            platform.device_nodes(),
            DeviceNodes {
                in_tree_enclave: true,
                ..DeviceNodes::default()
            }
        );
        std::fs::create_dir(dir.path().join("sgx")).unwrap();
        std::fs::write(dir.path().join("sgx/provision"), "").unwrap();
        std::fs::write(dir.path().join("isgx"), "").unwrap();
        let nodes = platform.device_nodes();
        assert!(
            nodes.dcap_provision
                && nodes.legacy_enclave
                && !nodes.dcap_enclave
                && !nodes.in_tree_provision
        );
        // A directory named like a node is not one.
        std::fs::create_dir(dir.path().join("sgx_provision")).unwrap();
        assert!(!platform.device_nodes().in_tree_provision);
    }
}
