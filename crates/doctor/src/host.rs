//! What the node itself has: SGX in the CPU, device nodes, EPC in sysfs, the EPC cgroup, the
//! device plugin's sockets. Discovery is the device plugin's ([`device_plugin::platform`]).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use device_plugin::platform::{self, DeviceNodes, EpcSection, paths};
use device_plugin::resource::socket_file_name;
use device_plugin::{
    ENCLAVE_RESOURCE, EPC_RESOURCE, HostPlatform, KUBELET_SOCKET, PROVISION_RESOURCE, SgxPlatform,
};

use crate::{Check, MIB};

pub use device_plugin::platform::{CpuSgx, CpuidFn, cpu_sgx, host_cpuid};

pub(crate) fn cpu_checks(cpu: Option<&CpuSgx>) -> Vec<Check> {
    let Some(cpu) = cpu else {
        return vec![Check::fail(
            "cpu",
            "CPU: not x86-64, so no SGX",
            "run on an SGX-capable Intel x86-64 machine",
        )];
    };
    if !cpu.sgx {
        return vec![Check::fail(
            "cpu",
            "CPU: no SGX (CPUID.(EAX=7,ECX=0):EBX bit 2 is clear)",
            "enable SGX in the firmware (BIOS: SGX \"Enabled\", not \"Software controlled\"), or use \
             an SGX-capable VM size (e.g. Azure DCsv3/DCdsv3)",
        )];
    }
    let mut features = Vec::new();
    if cpu.sgx1 {
        features.push("SGX1");
    }
    if cpu.sgx2 {
        features.push("SGX2");
    }
    let epc: u64 = cpu.epc_sections.iter().sum();
    let mut checks = vec![match &cpu.epc_error {
        Some(e) => Check::fail(
            "cpu",
            format!(
                "CPU: SGX ({}), but the EPC sections do not read: {e}",
                features.join(", ")
            ),
            "update the firmware or the hypervisor's SGX configuration",
        ),
        None if cpu.epc_sections.is_empty() => Check::fail(
            "cpu",
            format!(
                "CPU: SGX ({}), but no EPC section (CPUID leaf 0x12)",
                features.join(", ")
            ),
            "reserve EPC in the firmware (PRMRR size) or give the VM EPC",
        ),
        None => Check::pass(
            "cpu",
            format!(
                "CPU: SGX ({}); EPC {} MiB in {} section(s) per CPUID",
                features.join(", "),
                epc / MIB,
                cpu.epc_sections.len()
            ),
        ),
    }];
    checks.push(if cpu.flc {
        Check::pass("flc", "CPU: flexible launch control (SGX_LC)")
    } else {
        Check::fail(
            "flc",
            "CPU: no flexible launch control (CPUID.(EAX=7,ECX=0):ECX bit 30 is clear)",
            "the in-tree Linux driver and DCAP need FLC; enable it in the firmware or use a newer CPU",
        )
    });
    checks
}

/// One device node found: its path and how it can be opened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeInfo {
    /// The path under the dev root.
    pub path: PathBuf,
    /// `ls -l` style mode, e.g. `crw-rw-rw-`.
    pub mode: String,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
}

fn mode_string(meta: &std::fs::Metadata) -> String {
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else if ft.is_socket() {
        's'
    } else {
        '-'
    };
    let mode = meta.mode();
    let mut s = String::with_capacity(10);
    s.push(kind);
    for shift in [6u32, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn node_info(dev_root: &Path, rel: &str) -> Option<NodeInfo> {
    let path = dev_root.join(rel);
    let meta = std::fs::metadata(&path).ok()?;
    Some(NodeInfo {
        mode: mode_string(&meta),
        uid: meta.uid(),
        gid: meta.gid(),
        path,
    })
}

fn describe(nodes: &[NodeInfo]) -> String {
    nodes
        .iter()
        .map(|n| {
            format!(
                "{} {} uid {} gid {}",
                n.path.display(),
                n.mode,
                n.uid,
                n.gid
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub(crate) fn device_checks(dev_root: &Path, nodes: &DeviceNodes) -> Vec<Check> {
    let present = |rels: &[&str]| -> Vec<NodeInfo> {
        rels.iter().filter_map(|r| node_info(dev_root, r)).collect()
    };
    let mut layouts = Vec::new();
    if nodes.in_tree_enclave {
        layouts.push("in-tree driver");
    }
    if nodes.dcap_enclave {
        layouts.push("DCAP driver");
    }
    if nodes.legacy_enclave {
        layouts.push("legacy driver (SGX1, /dev/isgx)");
    }
    let enclave = if nodes.any_enclave() {
        Check::pass(
            "devices",
            format!(
                "SGX device nodes: {} ({})",
                layouts.join(" + "),
                describe(&present(&[
                    paths::IN_TREE_ENCLAVE,
                    paths::DCAP_ENCLAVE,
                    paths::LEGACY_ENCLAVE
                ]))
            ),
        )
    } else {
        Check::fail(
            "devices",
            format!(
                "SGX device nodes: none ({}/sgx_enclave, {}/sgx/enclave, {}/isgx)",
                dev_root.display(),
                dev_root.display(),
                dev_root.display()
            ),
            "use a kernel with the SGX driver (Linux 5.11 or newer, CONFIG_X86_SGX=y) or install \
             Intel's DCAP driver; SGX must be enabled in the CPU first",
        )
    };
    let provision = if nodes.any_provision() {
        Check::pass(
            "provision",
            format!(
                "SGX provision device: {}",
                describe(&present(&[paths::IN_TREE_PROVISION, paths::DCAP_PROVISION]))
            ),
        )
    } else {
        Check::fail(
            "provision",
            format!(
                "SGX provision device: none ({}/sgx_provision, {}/sgx/provision)",
                dev_root.display(),
                dev_root.display()
            ),
            "the quote helper needs it to certify its attestation key; it comes with the same \
             driver as the enclave device",
        )
    };
    vec![enclave, provision]
}

pub(crate) fn epc_check(sysfs_root: &Path, cpu_has_sgx: bool) -> (Check, u64) {
    match platform::sysfs_epc(sysfs_root) {
        Ok(sections) if !sections.is_empty() => {
            let total: u64 = sections.iter().map(|s: &EpcSection| s.bytes).sum();
            let per_node = sections
                .iter()
                .map(|s| format!("node{} {} MiB", s.numa_node.unwrap_or(0), s.bytes / MIB))
                .collect::<Vec<_>>()
                .join(", ");
            (
                Check::pass(
                    "epc",
                    format!("EPC from sysfs: {} MiB ({per_node})", total / MIB),
                ),
                total,
            )
        }
        Ok(_) if cpu_has_sgx => (
            Check::warn(
                "epc",
                format!(
                    "EPC from sysfs: no {}/devices/system/node/node*/x86/sgx_total_bytes",
                    sysfs_root.display()
                ),
                "kernels before 5.16 (or without NUMA) lack the file; the device plugin then \
                 sizes EPC from CPUID",
            ),
            0,
        ),
        Ok(_) => (
            Check::fail(
                "epc",
                format!(
                    "EPC from sysfs: none ({}/devices/system/node/node*/x86/sgx_total_bytes)",
                    sysfs_root.display()
                ),
                "the kernel has not initialised SGX: check the CPU and driver lines above",
            ),
            0,
        ),
        Err(e) => (
            Check::fail(
                "epc",
                format!("EPC from sysfs: {e}"),
                "check the sysfs mount",
            ),
            0,
        ),
    }
}

pub(crate) fn epc_limit_check(sysfs_root: &Path) -> Check {
    let path = sysfs_root.join("fs/cgroup/misc.capacity");
    let enforced = std::fs::read_to_string(&path).ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("sgx_epc ").map(|v| v.trim().to_owned()))
    });
    match enforced {
        Some(capacity) => Check::pass(
            "epc-limits",
            format!(
                "EPC limits: enforced by the kernel (misc cgroup controller, sgx_epc capacity {capacity})"
            ),
        ),
        None => Check::warn(
            "epc-limits",
            format!(
                "EPC limits: scheduling-only (no sgx_epc in {}; the EPC cgroup is not in mainline Linux)",
                path.display()
            ),
            "a pod can use more EPC than it requested; the kernel reclaims EPC pages under pressure",
        ),
    }
}

fn is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

pub(crate) fn plugin_check(plugin_dir: &Path) -> Check {
    let ours: Vec<String> = [EPC_RESOURCE, ENCLAVE_RESOURCE, PROVISION_RESOURCE]
        .iter()
        .map(|r| socket_file_name(r))
        .filter(|name| is_socket(&plugin_dir.join(name)))
        .collect();
    let kubelet = is_socket(&plugin_dir.join(KUBELET_SOCKET));
    let checkpoint =
        std::fs::read_to_string(plugin_dir.join("kubelet_internal_checkpoint")).unwrap_or_default();
    let registered: Vec<&str> = [EPC_RESOURCE, ENCLAVE_RESOURCE, PROVISION_RESOURCE]
        .into_iter()
        .filter(|r| checkpoint.contains(&format!("\"{r}\"")))
        .collect();
    if ours.is_empty() {
        return Check::fail(
            "device-plugin",
            format!(
                "device plugin: no confcom sockets in {}",
                plugin_dir.display()
            ),
            "run `confcom device-plugin` (the sgx-plugin DaemonSet) with this plugin directory",
        );
    }
    let mut summary = format!(
        "device plugin: {} in {}",
        ours.join(", "),
        plugin_dir.display()
    );
    if !registered.is_empty() {
        summary.push_str(&format!(
            "; kubelet's checkpoint lists {}",
            registered.join(", ")
        ));
    }
    if kubelet {
        Check::pass("device-plugin", summary)
    } else {
        Check::fail(
            "device-plugin",
            format!("{summary}, but no {KUBELET_SOCKET}"),
            "kubelet is not running or uses another device-plugin directory (--plugin-dir)",
        )
    }
}

/// The device nodes and EPC as the device plugin sees them.
pub(crate) fn discover(dev_root: &Path, sysfs_root: &Path) -> DeviceNodes {
    HostPlatform::new(dev_root, sysfs_root)
        .without_cpuid()
        .device_nodes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use device_plugin::platform::CpuidRegs;

    fn sgx_cpu(leaf: u32, subleaf: u32) -> CpuidRegs {
        match (leaf, subleaf) {
            (0, 0) => [0x1f, 0, 0, 0],
            (7, 0) => [0, 1 << 2, 1 << 30, 0],
            (0x12, 0) => [0b11, 0, 0, 0],
            (0x12, 2) => [1, 0, (64 * MIB) as u32 | 1, 0],
            (0x12, 3) => [1, 0, (32 * MIB) as u32 | 1, 0],
            _ => [0; 4],
        }
    }

    fn no_sgx(leaf: u32, _subleaf: u32) -> CpuidRegs {
        if leaf == 0 { [0x1f, 0, 0, 0] } else { [0; 4] }
    }

    #[test]
    fn cpuid_bits_are_read() {
        let cpu = cpu_sgx(sgx_cpu);
        assert!(cpu.sgx && cpu.flc && cpu.sgx1 && cpu.sgx2);
        assert_eq!(cpu.epc_sections, vec![64 * MIB, 32 * MIB]);
        let checks = cpu_checks(Some(&cpu));
        assert!(checks.iter().all(|c| c.passed()), "{checks:?}");
        assert!(checks[0].summary.contains("SGX1, SGX2"));
        assert!(checks[0].summary.contains("96 MiB in 2 section(s)"));

        let none = cpu_sgx(no_sgx);
        assert!(!none.sgx && !none.sgx1);
        let checks = cpu_checks(Some(&none));
        assert_eq!(checks.len(), 1);
        assert!(!checks[0].passed());
        assert!(checks[0].fix.as_deref().unwrap().contains("firmware"));
    }

    #[test]
    fn modes_print_like_ls() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"").unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        assert_eq!(mode_string(&std::fs::metadata(&f).unwrap()), "-rw-r-----");
    }
}
