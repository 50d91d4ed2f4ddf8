//! The DRA side of a node: the SGX DRA driver's registration and DRA sockets, the claims its
//! checkpoint says are prepared, their CDI specs, and (with API access, looked up by the caller)
//! the ResourceSlices published for the node.
//!
//! Everything read here is parsed leniently: a damaged checkpoint or CDI spec is a finding, never a
//! reason to stop.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::Check;

/// The driver name the add-on installs (`sgx.confcom-rs.github.io`).
pub const DEFAULT_DRIVER: &str = "sgx.confcom-rs.github.io";
/// Kubelet's plugin registration directory.
pub const DEFAULT_REGISTRY_DIR: &str = "/var/lib/kubelet/plugins_registry";
/// Parent of the kubelet plugins' own directories.
pub const DEFAULT_PLUGINS_DIR: &str = "/var/lib/kubelet/plugins";
/// The dynamic CDI directory.
pub const DEFAULT_CDI_ROOT: &str = "/var/run/cdi";
/// The node's boot ID.
pub const DEFAULT_BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";
/// The checkpoint format version this doctor knows.
pub const CHECKPOINT_VERSION: u64 = 1;
/// At most this many claims are named in a summary line (all are in the JSON report).
const NAMED_CLAIMS: usize = 10;

/// Where the DRA driver's files are.
#[derive(Debug, Clone)]
pub struct DraOptions {
    /// The driver name.
    pub driver: String,
    /// Kubelet's plugin registration directory.
    pub registry_dir: PathBuf,
    /// Parent of the driver's own directory (`<driver>/dra.sock`, `<driver>/checkpoint.json`).
    pub plugins_dir: PathBuf,
    /// The CDI directory the driver writes per-claim specs to.
    pub cdi_root: PathBuf,
    /// The node's boot ID file.
    pub boot_id_path: PathBuf,
    /// The ResourceSlices of this node, as the caller looked them up (`--api`).
    pub slices: SliceLookup,
}

impl Default for DraOptions {
    fn default() -> Self {
        Self {
            driver: DEFAULT_DRIVER.to_owned(),
            registry_dir: DEFAULT_REGISTRY_DIR.into(),
            plugins_dir: DEFAULT_PLUGINS_DIR.into(),
            cdi_root: DEFAULT_CDI_ROOT.into(),
            boot_id_path: DEFAULT_BOOT_ID_PATH.into(),
            slices: SliceLookup::NotAsked,
        }
    }
}

impl DraOptions {
    /// The driver's own directory.
    pub fn plugin_dir(&self) -> PathBuf {
        self.plugins_dir.join(&self.driver)
    }

    /// The checkpoint file.
    pub fn checkpoint(&self) -> PathBuf {
        self.plugin_dir().join("checkpoint.json")
    }

    /// The registration socket (`<registry dir>/<driver>-reg.sock`).
    pub fn registration_socket(&self) -> PathBuf {
        self.registry_dir.join(format!("{}-reg.sock", self.driver))
    }

    /// The DRA service socket (`<plugins dir>/<driver>/dra.sock`).
    pub fn dra_socket(&self) -> PathBuf {
        self.plugin_dir().join("dra.sock")
    }

    /// The prefix of the driver's per-claim CDI spec files (`k8s.<driver>-claim_`).
    pub fn cdi_prefix(&self) -> String {
        format!("k8s.{}-claim_", self.driver)
    }
}

/// The ResourceSlices of the node, looked up through the API by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SliceLookup {
    /// No API access asked for.
    #[default]
    NotAsked,
    /// The lookup failed.
    Failed(String),
    /// The slices of the driver with `spec.nodeName` = `node`.
    Found {
        /// The node.
        node: String,
        /// Its slices.
        slices: Vec<SliceSummary>,
    },
}

/// One published ResourceSlice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SliceSummary {
    /// The object's name.
    pub name: String,
    /// `spec.pool.name`.
    pub pool: String,
    /// `spec.pool.generation`.
    pub generation: i64,
    /// `spec.pool.resourceSliceCount`.
    pub slice_count: i64,
    /// How many devices it lists.
    pub devices: usize,
}

/// A prepared claim from the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreparedClaim {
    /// The claim's UID (the checkpoint's key).
    pub uid: String,
    /// `namespace/name`, when recorded.
    pub namespace: Option<String>,
    /// The claim's name, when recorded.
    pub name: Option<String>,
    /// Prepared in the current boot (`None`: unknown).
    pub this_boot: Option<bool>,
    /// The CDI spec file recorded for it.
    pub cdi_spec: Option<PathBuf>,
    /// Whether that file (or the conventional one) exists.
    pub cdi_spec_present: bool,
}

impl PreparedClaim {
    /// `namespace/name`, or the UID when the checkpoint does not name the claim.
    pub fn display_name(&self) -> String {
        match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => format!("{ns}/{name}"),
            (None, Some(name)) => name.clone(),
            _ => format!("uid {}", self.uid),
        }
    }
}

/// What the DRA checks found, for the JSON report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DraFindings {
    /// Whether any trace of the driver is on the node (a socket file, its directory, a CDI spec);
    /// the DRA checks run when there is one.
    pub present: bool,
    /// Whether the driver serves the node: its registration or DRA socket accepts a connection.
    /// Its directory (`DirectoryOrCreate`, left behind by an uninstall) or a stale socket file is
    /// no driver.
    pub serving: bool,
    /// The prepared claims of the checkpoint.
    pub prepared_claims: Vec<PreparedClaim>,
    /// The driver's CDI spec files.
    pub cdi_specs: Vec<PathBuf>,
    /// The node's ResourceSlices, when looked up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slices: Option<Vec<SliceSummary>>,
}

/// How a socket path answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketState {
    Listening,
    Stale,
    Absent,
    NotASocket,
    Unreachable,
}

fn probe(path: &Path) -> SocketState {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return SocketState::Absent,
        Err(_) => return SocketState::Unreachable,
        Ok(m) if !m.file_type().is_socket() => return SocketState::NotASocket,
        Ok(_) => {}
    }
    match UnixStream::connect(path) {
        Ok(_) => SocketState::Listening,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => SocketState::Stale,
        Err(_) => SocketState::Unreachable,
    }
}

/// The sockets of the driver in `dir` matching its plain name or a rolling-update name
/// (`<prefix><pod UID><suffix>`), plain name first.
fn candidates(dir: &Path, plain: &str, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let mut found = vec![dir.join(plain)];
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut more: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != plain && n.starts_with(prefix) && n.ends_with(suffix))
            .map(|n| dir.join(n))
            .collect();
        more.sort();
        found.extend(more);
    }
    found
}

fn socket_check(id: &'static str, what: &str, paths: &[PathBuf], fix_absent: &str) -> Check {
    let states: Vec<(&PathBuf, SocketState)> = paths.iter().map(|p| (p, probe(p))).collect();
    if let Some((path, _)) = states.iter().find(|(_, s)| *s == SocketState::Listening) {
        return Check::pass(id, format!("{what} {} answers", path.display()));
    }
    let present: Vec<&(&PathBuf, SocketState)> = states
        .iter()
        .filter(|(_, s)| *s != SocketState::Absent)
        .collect();
    let Some((path, state)) = present.first() else {
        let plain = paths
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        return Check::fail(id, format!("{what} {plain} does not exist"), fix_absent);
    };
    let path = path.display();
    match state {
        SocketState::Stale => Check::fail(
            id,
            format!(
                "{what} {path} is a stale socket file: it exists but nothing listens on it \
                 (a DRA driver that stopped without removing it)"
            ),
            "start the DRA driver, which replaces the stale file (`kubectl -n kube-system \
             rollout restart ds/sgx-dra-driver`); until then kubelet keeps retrying the old \
             socket",
        ),
        SocketState::NotASocket => Check::fail(
            id,
            format!("{what} {path} is not a socket"),
            "remove the file so that the DRA driver can create its socket there",
        ),
        _ => Check::fail(
            id,
            format!("{what} {path} cannot be reached"),
            "run confcom doctor as root on the node (kubelet's directories are root-only)",
        ),
    }
}

/// The checkpoint as read leniently.
enum CheckpointRead {
    Missing,
    Damaged(String),
    UnknownVersion(u64, Vec<PreparedClaim>),
    Claims(Vec<PreparedClaim>),
}

fn read_checkpoint(
    path: &Path,
    boot_id: Option<&str>,
    cdi: &dyn Fn(&str) -> PathBuf,
) -> CheckpointRead {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return CheckpointRead::Missing,
        Err(e) => return CheckpointRead::Damaged(format!("cannot be read: {e}")),
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return CheckpointRead::Damaged(format!("is not JSON: {e}")),
    };
    let Some(version) = value.get("version").and_then(serde_json::Value::as_u64) else {
        return CheckpointRead::Damaged("has no numeric \"version\"".to_owned());
    };
    let Some(entries) = value.get("claims").and_then(serde_json::Value::as_object) else {
        return CheckpointRead::Damaged("has no \"claims\" object".to_owned());
    };
    let text = |v: &serde_json::Value, key: &str| {
        v.get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let claims = entries
        .iter()
        .map(|(uid, entry)| {
            let cdi_spec = text(entry, "cdiSpec").map(PathBuf::from);
            let expected = cdi(uid);
            let cdi_spec_present = cdi_spec.as_deref().unwrap_or(&expected).is_file();
            PreparedClaim {
                uid: uid.clone(),
                namespace: text(entry, "namespace"),
                name: text(entry, "name"),
                this_boot: match (text(entry, "bootId"), boot_id) {
                    (Some(theirs), Some(ours)) => Some(theirs == ours),
                    _ => None,
                },
                cdi_spec,
                cdi_spec_present,
            }
        })
        .collect();
    if version == CHECKPOINT_VERSION {
        CheckpointRead::Claims(claims)
    } else {
        CheckpointRead::UnknownVersion(version, claims)
    }
}

fn name_list(claims: &[&PreparedClaim]) -> String {
    let mut names: Vec<String> = claims
        .iter()
        .take(NAMED_CLAIMS)
        .map(|c| c.display_name())
        .collect();
    if claims.len() > NAMED_CLAIMS {
        names.push(format!("{} more", claims.len() - NAMED_CLAIMS));
    }
    names.join(", ")
}

fn claims_word(n: usize) -> &'static str {
    if n == 1 { "claim" } else { "claims" }
}

/// Whether any trace of the driver is on the node.
pub fn present(opts: &DraOptions) -> bool {
    let prefix = format!("{}-", opts.driver);
    let registered = candidates(&opts.registry_dir, "", &prefix, "-reg.sock")
        .iter()
        .skip(1)
        .any(|p| std::fs::symlink_metadata(p).is_ok());
    registered || opts.plugin_dir().exists() || !cdi_specs(opts).is_empty()
}

/// Whether the driver serves the node: a registration or DRA socket of its accepts a connection.
pub fn serving(opts: &DraOptions) -> bool {
    let prefix = format!("{}-", opts.driver);
    let reg_plain = format!("{}-reg.sock", opts.driver);
    candidates(&opts.registry_dir, &reg_plain, &prefix, "-reg.sock")
        .into_iter()
        .chain(candidates(&opts.plugin_dir(), "dra.sock", "dra-", ".sock"))
        .any(|p| probe(&p) == SocketState::Listening)
}

fn cdi_specs(opts: &DraOptions) -> Vec<PathBuf> {
    let prefix = opts.cdi_prefix();
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&opts.cdi_root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy())
                        .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".json"))
                })
                .collect()
        })
        .unwrap_or_default();
    specs.sort();
    specs
}

/// The claim UID a spec file is named after.
fn spec_uid<'a>(opts: &DraOptions, path: &'a Path) -> Option<&'a str> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix(opts.cdi_prefix().as_str())?
        .strip_suffix(".json")
}

/// Runs the DRA checks. With no trace of the driver on the node, one skipped `dra` check.
pub fn checks(opts: &DraOptions) -> (Vec<Check>, DraFindings) {
    let mut findings = DraFindings {
        present: present(opts),
        serving: serving(opts),
        ..DraFindings::default()
    };
    if !findings.present {
        return (
            vec![Check::skip(
                "dra",
                format!(
                    "DRA driver {}: not on this node (no registration socket, no {}, no CDI \
                     specs)",
                    opts.driver,
                    opts.plugin_dir().display()
                ),
            )],
            findings,
        );
    }
    let mut out = Vec::new();
    let prefix = format!("{}-", opts.driver);
    let reg_plain = format!("{}-reg.sock", opts.driver);
    out.push(socket_check(
        "dra-registration",
        "DRA registration socket",
        &candidates(&opts.registry_dir, &reg_plain, &prefix, "-reg.sock"),
        "run the DRA driver (`confcom dra-driver`, the sgx-dra-driver DaemonSet) with kubelet's \
         registration directory mounted at the same path",
    ));
    out.push(socket_check(
        "dra-socket",
        "DRA service socket",
        &candidates(&opts.plugin_dir(), "dra.sock", "dra-", ".sock"),
        "run the DRA driver (`confcom dra-driver`, the sgx-dra-driver DaemonSet) with kubelet's \
         plugins directory mounted at the same path",
    ));

    // Prepared claims.
    let boot_id = std::fs::read_to_string(&opts.boot_id_path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let cdi_for = |uid: &str| {
        opts.cdi_root
            .join(format!("{}{uid}.json", opts.cdi_prefix()))
    };
    let checkpoint = opts.checkpoint();
    let shown = checkpoint.display();
    match read_checkpoint(&checkpoint, boot_id.as_deref(), &cdi_for) {
        CheckpointRead::Missing => out.push(Check::pass(
            "dra-checkpoint",
            format!("DRA checkpoint: none at {shown} (no claim prepared yet)"),
        )),
        CheckpointRead::Damaged(reason) => out.push(Check::fail(
            "dra-checkpoint",
            format!("DRA checkpoint {shown} {reason}"),
            "the driver moves a damaged checkpoint aside (checkpoint.json.bad) when it starts and \
             begins empty; restart it (`kubectl -n kube-system rollout restart \
             ds/sgx-dra-driver`): kubelet prepares the claims it still needs again",
        )),
        CheckpointRead::UnknownVersion(version, claims) => {
            out.push(Check::warn(
                "dra-checkpoint",
                format!(
                    "DRA checkpoint {shown} has version {version} (this doctor knows \
                     {CHECKPOINT_VERSION}); {} {} listed",
                    claims.len(),
                    claims_word(claims.len())
                ),
                "a newer driver wrote it; use the confcom of the same release",
            ));
            findings.prepared_claims = claims;
        }
        CheckpointRead::Claims(claims) => {
            let all: Vec<&PreparedClaim> = claims.iter().collect();
            let summary = if all.is_empty() {
                format!("DRA checkpoint: no prepared claims ({shown})")
            } else {
                format!(
                    "DRA checkpoint: {} prepared {}: {}",
                    all.len(),
                    claims_word(all.len()),
                    name_list(&all)
                )
            };
            let earlier: Vec<&PreparedClaim> = claims
                .iter()
                .filter(|c| c.this_boot == Some(false))
                .collect();
            out.push(if earlier.is_empty() {
                Check::pass("dra-checkpoint", summary)
            } else {
                Check::warn(
                    "dra-checkpoint",
                    format!(
                        "{summary}; prepared before the last reboot: {}",
                        name_list(&earlier)
                    ),
                    "their CDI specs (in tmpfs) are gone; the driver writes them again when \
                     kubelet prepares the claims for a new pod sandbox",
                )
            });
            findings.prepared_claims = claims;
        }
    }

    // CDI specs.
    let specs = cdi_specs(opts);
    let cdi = opts.cdi_root.display();
    let missing: Vec<&PreparedClaim> = findings
        .prepared_claims
        .iter()
        .filter(|c| c.this_boot != Some(false) && !c.cdi_spec_present)
        .collect();
    let known: BTreeMap<&str, ()> = findings
        .prepared_claims
        .iter()
        .map(|c| (c.uid.as_str(), ()))
        .collect();
    let orphans: Vec<&PathBuf> = specs
        .iter()
        .filter(|p| spec_uid(opts, p).is_none_or(|uid| !known.contains_key(uid)))
        .collect();
    let damaged: Vec<&PathBuf> = specs
        .iter()
        .filter(|p| {
            std::fs::read(p)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_none_or(|v| v.get("cdiVersion").is_none() || v.get("devices").is_none())
        })
        .collect();
    let summary = format!("CDI specs of {} in {cdi}: {}", opts.driver, specs.len());
    out.push(if !missing.is_empty() {
        Check::fail(
            "dra-cdi",
            format!(
                "{summary}; missing for prepared {}: {}",
                claims_word(missing.len()),
                name_list(&missing)
            ),
            "containers using these claims fail with \"unresolvable CDI devices\"; delete their \
             pods so that kubelet prepares the claims again and the driver rewrites the specs",
        )
    } else if !damaged.is_empty() {
        Check::fail(
            "dra-cdi",
            format!(
                "{summary}; not a CDI spec: {}",
                damaged
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "the runtime rejects these files; delete them and the pods of their claims",
        )
    } else if !orphans.is_empty() && checkpoint.exists() {
        Check::warn(
            "dra-cdi",
            format!(
                "{summary}; {} not in the checkpoint: {}",
                orphans.len(),
                orphans
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "leftovers of claims unprepared while the driver was down; the driver removes a \
             claim's spec when kubelet unprepares it",
        )
    } else {
        Check::pass("dra-cdi", summary)
    });
    findings.cdi_specs = specs;

    // ResourceSlices, when looked up.
    match &opts.slices {
        SliceLookup::NotAsked => {}
        SliceLookup::Failed(err) => out.push(Check::warn(
            "dra-slices",
            format!("ResourceSlices: the API lookup failed: {err}"),
            "check the kubeconfig or in-cluster credentials (list on resourceslices)",
        )),
        SliceLookup::Found { node, slices } => {
            out.push(slices_check(&opts.driver, node, slices));
            findings.slices = Some(slices.clone());
        }
    }
    (out, findings)
}

/// The `dra-slices` check of the slices the API lists for `node`.
pub fn slices_check(driver: &str, node: &str, slices: &[SliceSummary]) -> Check {
    if slices.is_empty() {
        return Check::fail(
            "dra-slices",
            format!("ResourceSlices: none of driver {driver} for node {node}"),
            "the driver publishes them when it starts; kubelet deletes a node's slices when it \
             restarts and the driver's slices 30 s after the driver unregisters, and the driver \
             publishes them again about 30 s later: check the driver's log",
        );
    }
    let mut pools: BTreeMap<&str, Vec<&SliceSummary>> = BTreeMap::new();
    for slice in slices {
        pools.entry(slice.pool.as_str()).or_default().push(slice);
    }
    let mut parts = Vec::new();
    let mut inconsistent = Vec::new();
    for (pool, members) in &pools {
        let newest = members.iter().map(|s| s.generation).max().unwrap_or(0);
        let current: Vec<&&SliceSummary> =
            members.iter().filter(|s| s.generation == newest).collect();
        let devices: usize = current.iter().map(|s| s.devices).sum();
        parts.push(format!(
            "pool {pool} generation {newest}, {} slice{}, {devices} device{}",
            current.len(),
            if current.len() == 1 { "" } else { "s" },
            if devices == 1 { "" } else { "s" }
        ));
        let counts_agree = current
            .iter()
            .all(|s| usize::try_from(s.slice_count).is_ok_and(|n| n == current.len()));
        if !counts_agree || current.len() != members.len() {
            inconsistent.push(*pool);
        }
    }
    let summary = format!(
        "ResourceSlices of {driver} for node {node}: {}",
        parts.join("; ")
    );
    if inconsistent.is_empty() {
        Check::pass("dra-slices", summary)
    } else {
        Check::warn(
            "dra-slices",
            format!(
                "{summary}; incomplete or outdated slices in {}",
                inconsistent.join(", ")
            ),
            "a publication in progress settles within seconds; if it stays, the driver's log \
             names the failed slice write",
        )
    }
}
