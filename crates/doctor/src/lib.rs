//! `confcom doctor`: diagnoses a node the way an operator needs, one line per finding, each with a
//! fix when it fails, and an overall verdict.
//!
//! What is checked, in order:
//! 1. **CPU** (CPUID): SGX (leaf 7 sub-leaf 0, EBX bit 2), flexible launch control (ECX bit 30),
//!    SGX1/SGX2 (leaf 0x12 sub-leaf 0, EAX bits 0 and 1), the EPC sections (leaf 0x12 sub-leaves 2…).
//! 2. **Device nodes** of each driver layout (in-tree `/dev/sgx_enclave` + `/dev/sgx_provision`,
//!    DCAP `/dev/sgx/*`, legacy `/dev/isgx`) with their permissions.
//! 3. **EPC** from sysfs (`node*/x86/sgx_total_bytes`), and whether the kernel enforces EPC limits
//!    (`sgx_epc` in `misc.capacity`; not in mainline Linux, so limits are usually scheduling-only).
//! 4. **The quote helper**: does the AESM socket answer, which backend serves it (simulated or
//!    Intel's QE3), can a quote be obtained (on a simulated node a full quote with its QE report; on
//!    hardware the certified key's quote size, since a quote needs an enclave's report) and, given
//!    collateral, does it verify ([`dcap_verify`]).
//! 5. **The device plugin**: its sockets and kubelet's in the plugin directory, and kubelet's
//!    checkpoint.
//! 6. **The DRA driver** ([`dra`]), where it is on the node: its registration and DRA sockets, the
//!    claims its checkpoint lists as prepared, their CDI specs in `/var/run/cdi`, and, when the
//!    caller looked them up through the API, the node's ResourceSlices and their pool generation.
//!    A node served by the DRA driver needs no device plugin; one served by both is a failure.
//!
//! Verdicts: `SGX node: ready`, `SGX node: not ready`, `simulated node: working`,
//! `simulated node: not working`, `not an SGX node`; only `ready` and `working` are success.
//!
//! ```no_run
//! let options = doctor::Options::default();
//! let report = doctor::diagnose(&options);
//! print!("{}", report.render_text());
//! std::process::exit(if report.verdict.is_ok() { 0 } else { 1 });
//! ```

use std::fmt;
use std::path::PathBuf;

pub mod dra;
mod host;
mod service;

pub use host::{CpuSgx, CpuidFn, NodeInfo, cpu_sgx, host_cpuid};
pub use service::Backend;

const MIB: u64 = 1024 * 1024;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// ✓
    Pass,
    /// ✗ – with a fix.
    Fail,
    /// ! – worth knowing, not a failure.
    Warn,
    /// – – not run.
    Skip,
}

impl Status {
    /// The mark printed before the line.
    pub fn mark(self) -> &'static str {
        match self {
            Self::Pass => "✓",
            Self::Fail => "✗",
            Self::Warn => "!",
            Self::Skip => "-",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// A stable id (`cpu`, `flc`, `devices`, `provision`, `epc`, `epc-limits`, `aesm-socket`,
    /// `backend`, `quote`, `verify`, `device-plugin`).
    pub id: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub summary: String,
    /// What to do (for failures and warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn pass(id: &'static str, summary: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Pass,
            summary: summary.into(),
            fix: None,
        }
    }

    pub(crate) fn fail(
        id: &'static str,
        summary: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            id,
            status: Status::Fail,
            summary: summary.into(),
            fix: Some(fix.into()),
        }
    }

    pub(crate) fn warn(
        id: &'static str,
        summary: impl Into<String>,
        note: impl Into<String>,
    ) -> Self {
        Self {
            id,
            status: Status::Warn,
            summary: summary.into(),
            fix: Some(note.into()),
        }
    }

    pub(crate) fn skip(id: &'static str, summary: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Skip,
            summary: summary.into(),
            fix: None,
        }
    }

    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.status == Status::Pass
    }
}

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// SGX hardware, and everything the add-on needs works.
    SgxReady,
    /// SGX hardware (or part of it), but something fails.
    SgxNotReady,
    /// The simulated quote helper answers and quotes.
    SimulatedWorking,
    /// A simulated quote helper answers but cannot quote (or its quote does not verify).
    SimulatedNotWorking,
    /// No SGX and no simulated helper.
    NotSgx,
}

impl Verdict {
    /// Whether the node is usable (exit code 0).
    pub fn is_ok(self) -> bool {
        matches!(self, Self::SgxReady | Self::SimulatedWorking)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SgxReady => "SGX node: ready",
            Self::SgxNotReady => "SGX node: not ready",
            Self::SimulatedWorking => "simulated node: working",
            Self::SimulatedNotWorking => "simulated node: not working",
            Self::NotSgx => "not an SGX node",
        })
    }
}

/// Where to look.
#[derive(Debug, Clone)]
pub struct Options {
    /// The host's `/dev`.
    pub dev_root: PathBuf,
    /// The host's `/sys`.
    pub sysfs_root: PathBuf,
    /// The quote helper's AESM socket.
    pub socket: PathBuf,
    /// kubelet's device-plugin directory.
    pub plugin_dir: PathBuf,
    /// Collateral to verify a simulated quote with (a `collateral.json` directory as the helper's
    /// `/collateral/` serves it, with its `root-ca.der`), or on hardware the platform evidence the
    /// helper publishes (Intel's root unless the directory has a `root-ca.der`).
    pub collateral: Option<PathBuf>,
    /// The CPUID instruction (`None`: not x86-64).
    pub cpuid: Option<CpuidFn>,
    /// The time for verification (Unix seconds).
    pub now: u64,
    /// The DRA driver's files and, optionally, the node's ResourceSlices.
    pub dra: dra::DraOptions,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dev_root: "/dev".into(),
            sysfs_root: "/sys".into(),
            socket: "/var/run/aesmd/aesm.socket".into(),
            plugin_dir: device_plugin::DEFAULT_PLUGIN_DIR.into(),
            collateral: None,
            cpuid: host_cpuid(),
            now: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            dra: dra::DraOptions::default(),
        }
    }
}

/// Everything found, and the verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// The verdict in words.
    pub verdict_text: String,
    /// Whether the node is usable.
    pub ok: bool,
    /// The backend serving the socket, if it answered.
    pub backend: Option<Backend>,
    /// The findings, in order.
    pub checks: Vec<Check>,
    /// What the DRA checks found (prepared claims, CDI specs, slices).
    pub dra: dra::DraFindings,
}

impl Report {
    /// One line per check (`✓ …`, `✗ …` followed by `fix: …`), then the verdict.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!("{} {}\n", c.status.mark(), c.summary));
            if let Some(fix) = &c.fix {
                let label = if c.status == Status::Fail {
                    "fix"
                } else {
                    "note"
                };
                out.push_str(&format!("    {label}: {fix}\n"));
            }
        }
        out.push_str(&format!("verdict: {}\n", self.verdict));
        out
    }

    /// The report as JSON.
    pub fn render_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The check with `id`.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Runs every check.
pub fn diagnose(options: &Options) -> Report {
    let cpu = options.cpuid.map(cpu_sgx);
    let mut checks = host::cpu_checks(cpu.as_ref());
    let cpu_has_sgx = cpu.as_ref().is_some_and(|c| c.sgx);

    let nodes = host::discover(&options.dev_root, &options.sysfs_root);
    checks.extend(host::device_checks(&options.dev_root, &nodes));
    let (epc, _) = host::epc_check(&options.sysfs_root, cpu_has_sgx);
    checks.push(epc);
    checks.push(host::epc_limit_check(&options.sysfs_root));

    let service =
        service::check_service(&options.socket, options.collateral.as_deref(), options.now);
    checks.extend(service.checks.iter().cloned());
    let (dra_checks, dra) = dra::checks(&options.dra);
    let device_plugin_sockets = [
        device_plugin::EPC_RESOURCE,
        device_plugin::ENCLAVE_RESOURCE,
        device_plugin::PROVISION_RESOURCE,
    ]
    .iter()
    .any(|r| {
        let path = options
            .plugin_dir
            .join(device_plugin::resource::socket_file_name(r));
        std::fs::symlink_metadata(path).is_ok()
    });
    if dra.present && !device_plugin_sockets {
        checks.push(Check::skip(
            "device-plugin",
            format!(
                "device plugin: none in {} (the DRA driver serves this node)",
                options.plugin_dir.display()
            ),
        ));
    } else {
        checks.push(host::plugin_check(&options.plugin_dir));
    }
    // Only a driver that answers serves the node: its directory survives an uninstall (and the
    // DaemonSet creates it with `DirectoryOrCreate`), and a socket file may be stale.
    if dra.serving && device_plugin_sockets {
        checks.push(Check::fail(
            "device-plugin-and-dra",
            "both the device plugin and the DRA driver serve this node: the same EPC is offered \
             twice, and extended resources mapped to DRA classes go to the device plugin here",
            "give each its own node pool (`confcom addon render --dra --dra-node-selector K=V`, \
             see deploy/README.md, \"Migrating from the device plugin\") or delete the \
             sgx-device-plugin DaemonSet when --dra replaces it",
        ));
    }
    if device_plugin_sockets && dra.present && !dra.serving {
        // The device plugin serves this node; what the DRA driver left is no failure of it.
        checks.push(Check::skip(
            "dra",
            format!(
                "DRA driver {}: not serving this node (no registration or DRA socket answers); \
                 the device plugin serves it, and what is left of the driver ({}) is unused",
                options.dra.driver,
                options.dra.plugin_dir().display()
            ),
        ));
    } else {
        checks.extend(dra_checks);
    }

    let hardware = cpu_has_sgx || nodes.any_enclave();
    let verdict = match service.backend {
        Some(Backend::Simulated) if service.quote_ok && service.verified != Some(false) => {
            Verdict::SimulatedWorking
        }
        Some(Backend::Simulated) => Verdict::SimulatedNotWorking,
        _ if hardware => {
            let all_pass = checks.iter().all(|c| c.status != Status::Fail);
            if cpu_has_sgx && nodes.any_enclave() && all_pass {
                Verdict::SgxReady
            } else {
                Verdict::SgxNotReady
            }
        }
        _ => Verdict::NotSgx,
    };
    Report {
        verdict,
        verdict_text: verdict.to_string(),
        ok: verdict.is_ok(),
        backend: service.backend,
        checks,
        dra,
    }
}
