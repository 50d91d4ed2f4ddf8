//! What the node has: its EPC devices and SGX driver layout, read once from the platform and
//! shared by the ResourceSlice publisher and the kubelet side.

use device_plugin::platform::DeviceNodes;

use crate::devices::{DriverLayout, SgxFeatures};

/// One EPC device as published: a whole-EPC device or one NUMA node's EPC section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpcDevice {
    /// Device name in the ResourceSlice (a DNS label): `epc` for the whole EPC, `epc-numa<N>`
    /// per NUMA node.
    pub name: String,
    /// NUMA node, when the kernel reports one.
    pub numa_node: Option<i64>,
    /// EPC bytes of this device.
    pub bytes: u64,
}

/// The node's inventory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inventory {
    /// The devices, in name order.
    pub devices: Vec<EpcDevice>,
    /// Which SGX device nodes exist on the host (what prepared containers are given).
    pub nodes: DeviceNodes,
    /// A simulated platform: no device nodes are given to containers.
    pub simulated: bool,
    /// The SGX driver layout of the enclave device node (`None`: no enclave device node).
    pub layout: Option<DriverLayout>,
    /// The CPU's SGX features.
    pub features: SgxFeatures,
}

impl Inventory {
    /// The device of the given name.
    pub fn device(&self, name: &str) -> Option<&EpcDevice> {
        self.devices.iter().find(|d| d.name == name)
    }
}
