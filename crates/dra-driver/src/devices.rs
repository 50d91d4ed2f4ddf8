//! Discovery → [`Inventory`]: the EPC devices and SGX features of the node, from the same
//! platform scan the device plugin makes ([`device_plugin::platform`]) and the same reading of
//! CPUID ([`device_plugin::platform::cpu_sgx`]).
//!
//! - One device per EPC section the kernel reports per NUMA node
//!   (`/sys/devices/system/node/node<N>/x86/sgx_total_bytes`), named `epc-numa<N>`.
//! - Otherwise (no NUMA information: older kernels, CPUID-sized or operator-configured EPC) one
//!   device `epc` for the whole EPC.
//! - `--simulate`: one simulated `epc` device of a given size, layout `simulated`.

use device_plugin::platform::{CpuSgx, DeviceNodes, Epc, EpcSource, SgxPlatform};

use crate::inventory::{EpcDevice, Inventory};
use crate::names::EPC_PAGE_BYTES;

/// Name of the single device for the whole EPC.
pub const WHOLE_EPC_DEVICE: &str = "epc";

/// Discovery failures.
#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    /// The platform scan failed.
    #[error("SGX discovery failed: {0}")]
    Discovery(#[from] device_plugin::platform::DiscoveryError),
    /// A simulated EPC smaller than two pages.
    #[error("a simulated EPC of {bytes} bytes is smaller than two {page}-byte EPC pages")]
    SimulatedTooSmall {
        /// The size asked for.
        bytes: u64,
        /// The page size.
        page: u64,
    },
}

/// Which SGX driver gives the node its device nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverLayout {
    /// The in-tree Linux driver (≥ 5.11): `/dev/sgx_enclave`, `/dev/sgx_provision`.
    InTree,
    /// Intel's out-of-tree DCAP driver: `/dev/sgx/enclave`, `/dev/sgx/provision`.
    Dcap,
    /// The legacy out-of-tree driver (SGX1): `/dev/isgx`.
    Legacy,
    /// No SGX hardware: a simulated platform.
    Simulated,
}

impl DriverLayout {
    /// The attribute value (`inTree`, `dcap`, `legacy`, `simulated`).
    pub fn as_str(self) -> &'static str {
        match self {
            DriverLayout::InTree => "inTree",
            DriverLayout::Dcap => "dcap",
            DriverLayout::Legacy => "legacy",
            DriverLayout::Simulated => "simulated",
        }
    }

    /// The layout of the enclave device node present, the in-tree driver first (it is what
    /// current kernels have; a DCAP driver beside it only adds compatibility links); `None`
    /// when there is no enclave device node.
    pub fn of(nodes: &DeviceNodes) -> Option<Self> {
        if nodes.in_tree_enclave {
            Some(DriverLayout::InTree)
        } else if nodes.dcap_enclave {
            Some(DriverLayout::Dcap)
        } else if nodes.legacy_enclave {
            Some(DriverLayout::Legacy)
        } else {
            None
        }
    }
}

/// SGX features of the CPU that workloads select on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SgxFeatures {
    /// SGX2: enclave dynamic memory management (EDMM).
    pub sgx2: bool,
    /// Flexible launch control.
    pub flc: bool,
    /// Key separation and sharing.
    pub kss: bool,
    /// AEX-Notify.
    pub aex_notify: bool,
}

impl From<&CpuSgx> for SgxFeatures {
    fn from(cpu: &CpuSgx) -> Self {
        Self {
            sgx2: cpu.sgx && cpu.sgx2,
            flc: cpu.sgx && cpu.flc,
            kss: cpu.sgx && cpu.kss,
            aex_notify: cpu.sgx && cpu.aex_notify,
        }
    }
}

/// The devices for `epc`: one per NUMA node when every section has one, else one for the whole
/// EPC; none without EPC. Sizes are whole EPC pages; a device smaller than the two pages its
/// capacity policy needs (`min + step`) is left out, so that one odd section cannot keep the
/// node's whole slice from being published.
pub fn epc_devices(epc: &Epc) -> Vec<EpcDevice> {
    let pages = |bytes: u64| bytes - bytes % EPC_PAGE_BYTES;
    let per_node = epc.source == EpcSource::Sysfs
        && !epc.sections.is_empty()
        && epc.sections.iter().all(|s| s.numa_node.is_some());
    let mut devices: Vec<EpcDevice> = if per_node {
        epc.sections
            .iter()
            .filter_map(|s| {
                let node = s.numa_node?;
                Some(EpcDevice {
                    name: format!("{WHOLE_EPC_DEVICE}-numa{node}"),
                    numa_node: Some(node),
                    bytes: pages(s.bytes),
                })
            })
            .filter(|d| big_enough(d.bytes))
            .collect()
    } else {
        let total = pages(epc.total_bytes());
        if !big_enough(total) {
            Vec::new()
        } else {
            vec![EpcDevice {
                name: WHOLE_EPC_DEVICE.to_owned(),
                numa_node: None,
                bytes: total,
            }]
        }
    };
    devices.sort_by(|a, b| a.name.cmp(&b.name));
    devices
}

/// Whether a device of `bytes` can carry the capacity policy (at least two pages).
fn big_enough(bytes: u64) -> bool {
    let enough = bytes >= 2 * EPC_PAGE_BYTES;
    if !enough && bytes > 0 {
        tracing::warn!(bytes, "an EPC section under two pages is not published");
    }
    enough
}

/// The node's inventory from one scan of `platform` and the CPU's SGX features `cpu`.
pub fn discover(platform: &dyn SgxPlatform, cpu: &CpuSgx) -> Result<Inventory, DevicesError> {
    let epc = platform.epc()?;
    let nodes = platform.device_nodes();
    Ok(Inventory {
        devices: epc_devices(&epc),
        nodes,
        simulated: false,
        layout: DriverLayout::of(&nodes),
        features: SgxFeatures::from(cpu),
    })
}

/// The CPU's SGX features through this machine's CPUID (none off x86-64).
pub fn host_cpu() -> CpuSgx {
    match device_plugin::platform::host_cpuid() {
        Some(cpuid) => device_plugin::platform::cpu_sgx(cpuid),
        None => CpuSgx::absent(),
    }
}

/// A simulated platform with `bytes` of EPC (rounded down to whole pages): one `epc` device,
/// no device nodes given to containers, and no hardware features (there is no SGX CPU to have
/// them).
pub fn simulated(bytes: u64) -> Result<Inventory, DevicesError> {
    let pages = bytes - bytes % EPC_PAGE_BYTES;
    // The capacity policy needs `min + step` (two pages) to fit in the device.
    if pages < 2 * EPC_PAGE_BYTES {
        return Err(DevicesError::SimulatedTooSmall {
            bytes,
            page: EPC_PAGE_BYTES,
        });
    }
    Ok(Inventory {
        devices: vec![EpcDevice {
            name: WHOLE_EPC_DEVICE.to_owned(),
            numa_node: None,
            bytes: pages,
        }],
        nodes: DeviceNodes::default(),
        simulated: true,
        layout: Some(DriverLayout::Simulated),
        features: SgxFeatures::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use device_plugin::HostPlatform;
    use std::path::Path;

    const MIB: u64 = 1024 * 1024;

    fn numa(sys: &Path, node: u32, bytes: u64) {
        let dir = sys.join(format!("devices/system/node/node{node}/x86"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sgx_total_bytes"), format!("{bytes}\n")).unwrap();
    }

    fn cpu(sgx2: bool, kss: bool) -> CpuSgx {
        CpuSgx {
            sgx: true,
            flc: true,
            sgx1: true,
            sgx2,
            kss,
            ..CpuSgx::absent()
        }
    }

    #[test]
    fn numa_nodes_give_one_device_each_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let (dev, sys) = (dir.path().join("dev"), dir.path().join("sys"));
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("sgx_enclave"), "").unwrap();
        std::fs::write(dev.join("sgx_provision"), "").unwrap();
        numa(&sys, 1, 2048 * MIB);
        numa(&sys, 0, 1024 * MIB + 100);
        let platform = HostPlatform::new(&dev, &sys).without_cpuid();
        let inventory = discover(&platform, &cpu(true, false)).unwrap();
        assert_eq!(
            inventory.devices,
            vec![
                EpcDevice {
                    name: "epc-numa0".into(),
                    numa_node: Some(0),
                    // Whole pages only.
                    bytes: 1024 * MIB,
                },
                EpcDevice {
                    name: "epc-numa1".into(),
                    numa_node: Some(1),
                    bytes: 2048 * MIB,
                },
            ]
        );
        assert_eq!(inventory.layout, Some(DriverLayout::InTree));
        assert!(inventory.nodes.in_tree_provision && !inventory.simulated);
        assert_eq!(
            inventory.features,
            SgxFeatures {
                sgx2: true,
                flc: true,
                kss: false,
                aex_notify: false
            }
        );
    }

    #[test]
    fn without_numa_information_the_whole_epc_is_one_device() {
        let epc = Epc::configured(96);
        assert_eq!(
            epc_devices(&epc),
            vec![EpcDevice {
                name: "epc".into(),
                numa_node: None,
                bytes: 96 * MIB,
            }]
        );
        // CPUID sections have no node: summed into one device.
        let cpuid = Epc {
            sections: vec![
                device_plugin::platform::EpcSection {
                    numa_node: None,
                    bytes: 64 * MIB,
                },
                device_plugin::platform::EpcSection {
                    numa_node: None,
                    bytes: 32 * MIB,
                },
            ],
            source: EpcSource::Cpuid,
        };
        assert_eq!(epc_devices(&cpuid)[0].bytes, 96 * MIB);
        assert!(epc_devices(&Epc::none()).is_empty());
    }

    #[test]
    fn a_section_under_two_pages_is_left_out_and_the_others_publish() {
        let section = |node, bytes| device_plugin::platform::EpcSection {
            numa_node: Some(node),
            bytes,
        };
        let epc = Epc {
            sections: vec![section(0, 64 * MIB), section(1, EPC_PAGE_BYTES + 100)],
            source: EpcSource::Sysfs,
        };
        let devices = epc_devices(&epc);
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].name, "epc-numa0");
        // The slice of what is left passes the API rules.
        let inventory = Inventory {
            devices,
            ..simulated(64 * MIB).unwrap()
        };
        let spec = crate::slices::desired_spec(
            crate::names::DEFAULT_DRIVER_NAME,
            "node-a",
            &inventory,
            &crate::attest::Attestation::default(),
            1,
        );
        crate::slices::validate_slice(&crate::slices::slice_object("uid", spec)).unwrap();
        let tiny = Epc {
            sections: vec![section(0, EPC_PAGE_BYTES)],
            source: EpcSource::Sysfs,
        };
        assert!(epc_devices(&tiny).is_empty());
    }

    #[test]
    fn no_numa_files_and_a_dcap_or_legacy_layout() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("dev");
        std::fs::create_dir_all(dev.join("sgx")).unwrap();
        std::fs::write(dev.join("sgx/enclave"), "").unwrap();
        let platform = HostPlatform::new(&dev, dir.path().join("sys")).without_cpuid();
        let inventory = discover(&platform, &CpuSgx::absent()).unwrap();
        assert!(inventory.devices.is_empty());
        assert_eq!(inventory.layout, Some(DriverLayout::Dcap));
        assert_eq!(inventory.features, SgxFeatures::default());
        std::fs::write(dev.join("isgx"), "").unwrap();
        std::fs::remove_file(dev.join("sgx/enclave")).unwrap();
        assert_eq!(
            DriverLayout::of(&platform.device_nodes()),
            Some(DriverLayout::Legacy)
        );
        std::fs::remove_file(dev.join("isgx")).unwrap();
        assert_eq!(DriverLayout::of(&platform.device_nodes()), None);
        // Both drivers: the in-tree one is what the kernel uses.
        std::fs::write(dev.join("sgx_enclave"), "").unwrap();
        std::fs::write(dev.join("sgx/enclave"), "").unwrap();
        assert_eq!(
            DriverLayout::of(&platform.device_nodes()),
            Some(DriverLayout::InTree)
        );
    }

    #[test]
    fn a_simulated_epc_is_one_simulated_device() {
        let inventory = simulated(256 * MIB + 5).unwrap();
        assert_eq!(inventory.devices.len(), 1);
        assert_eq!(inventory.devices[0].name, "epc");
        assert_eq!(inventory.devices[0].bytes, 256 * MIB);
        assert!(inventory.simulated);
        assert_eq!(inventory.layout, Some(DriverLayout::Simulated));
        assert_eq!(inventory.nodes, DeviceNodes::default());
        assert!(matches!(
            simulated(4096),
            Err(DevicesError::SimulatedTooSmall { bytes: 4096, .. })
        ));
        assert_eq!(DriverLayout::Simulated.as_str(), "simulated");
        assert_eq!(DriverLayout::InTree.as_str(), "inTree");
    }

    #[test]
    fn features_need_the_sgx_bit() {
        let mut c = cpu(true, true);
        c.aex_notify = true;
        assert_eq!(
            SgxFeatures::from(&c),
            SgxFeatures {
                sgx2: true,
                flc: true,
                kss: true,
                aex_notify: true
            }
        );
        c.sgx = false;
        assert_eq!(SgxFeatures::from(&c), SgxFeatures::default());
    }
}
