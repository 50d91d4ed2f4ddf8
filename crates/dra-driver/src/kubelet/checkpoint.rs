//! The driver's checkpoint: what it prepared, per claim UID, so a restarted driver answers a
//! repeated prepare with the same devices and unprepares what an earlier instance wrote.
//!
//! `<plugins dir>/<driver>/checkpoint.json`, versioned JSON, replaced atomically. Each entry
//! records the node boot ID it was prepared in: after a reboot the transient CDI specs in
//! `/var/run/cdi` are gone, and the next prepare of the claim writes its spec again.
//!
//! A damaged or unknown-version file is logged, moved aside to `checkpoint.json.bad` and replaced
//! by an empty checkpoint: the driver keeps running (kubelet re-sends prepare for claims it still
//! needs).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::{self, WriteError};

/// The checkpoint format written by this version.
pub const VERSION: u32 = 1;

/// The whole checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// Prepared claims by UID.
    pub claims: BTreeMap<String, PreparedClaim>,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Self {
            version: VERSION,
            claims: BTreeMap::new(),
        }
    }
}

/// One prepared claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreparedClaim {
    /// Claim name.
    pub name: String,
    /// Claim namespace.
    pub namespace: String,
    /// The boot ID of the node when the CDI spec was last written.
    pub boot_id: String,
    /// The CDI spec file written for the claim.
    pub cdi_spec: PathBuf,
    /// The devices, in allocation-result order.
    pub devices: Vec<PreparedDevice>,
}

/// One prepared device (one allocation result) and what it grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreparedDevice {
    /// The request (without a subrequest suffix).
    pub request: String,
    /// The pool (the node name).
    pub pool: String,
    /// The device in the pool.
    pub device: String,
    /// The share ID of a shared device's allocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_id: Option<String>,
    /// The unqualified CDI device name.
    pub cdi_name: String,
    /// The fully qualified CDI device ID.
    pub cdi_id: String,
    /// Whether the quote helper is wired.
    pub quote_helper: bool,
    /// Whether the provision node is given.
    pub provision: bool,
    /// EPC bytes allocated.
    pub epc_bytes: u64,
}

/// Why the checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading the file failed (other than its absence).
    #[error("reading checkpoint {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is not a checkpoint.
    #[error("checkpoint {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file has a version this driver does not know.
    #[error("checkpoint {path} has unsupported version {version} (this driver writes {VERSION})")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        version: u64,
    },
    /// Writing the file failed.
    #[error("saving checkpoint: {0}")]
    Write(#[from] WriteError),
}

/// Read the checkpoint at `path`; a missing file is an empty checkpoint.
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Checkpoint::default()),
        Err(source) => {
            return Err(CheckpointError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let damaged = |reason: String| CheckpointError::Damaged {
        path: path.to_owned(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|err| damaged(err.to_string()))?;
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(version) => {
            return Err(CheckpointError::UnsupportedVersion {
                path: path.to_owned(),
                version,
            });
        }
        None => return Err(damaged("no numeric \"version\" field".to_owned())),
    }
    serde_json::from_value(value).map_err(|err| damaged(err.to_string()))
}

/// Read the checkpoint, or start empty when it cannot be used: the error is logged and an
/// unreadable file is moved aside to `<path>.bad` (replacing an older one) for inspection.
pub fn load_or_recover(path: &Path) -> Checkpoint {
    match load(path) {
        Ok(checkpoint) => checkpoint,
        Err(err) => {
            let aside = bad_path(path);
            let moved = std::fs::rename(path, &aside);
            tracing::error!(
                error = %err,
                moved_to = %aside.display(),
                moved = moved.is_ok(),
                "checkpoint unusable; starting with no prepared claims"
            );
            Checkpoint::default()
        }
    }
}

/// Where [`load_or_recover`] moves an unusable checkpoint.
pub fn bad_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".bad");
    PathBuf::from(name)
}

/// Replace the checkpoint at `path` atomically (mode 0600).
pub fn save(path: &Path, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    let bytes = serde_json::to_vec_pretty(checkpoint).map_err(|err| CheckpointError::Damaged {
        path: path.to_owned(),
        reason: err.to_string(),
    })?;
    atomic::write_atomic(path, &bytes, 0o600)?;
    Ok(())
}

/// The node's boot ID (`/proc/sys/kernel/random/boot_id`), or `None` when unreadable (then every
/// repeated prepare writes its CDI spec again).
pub fn read_boot_id(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(id) if !id.trim().is_empty() => Some(id.trim().to_owned()),
        Ok(_) => None,
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "cannot read the boot ID");
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let device = PreparedDevice {
            request: "enclave".into(),
            pool: "node-a".into(),
            device: "epc".into(),
            share_id: Some("6f1b6d40-0000-4000-8000-000000000001".into()),
            cdi_name: "u1-epc-6f1b6d40-0000-4000-8000-000000000001".into(),
            cdi_id: "k8s.d/claim=u1-epc-6f1b6d40-0000-4000-8000-000000000001".into(),
            quote_helper: true,
            provision: false,
            epc_bytes: 1 << 20,
        };
        let mut checkpoint = Checkpoint::default();
        checkpoint.claims.insert(
            "u1".into(),
            PreparedClaim {
                name: "c1".into(),
                namespace: "ns".into(),
                boot_id: "b".into(),
                cdi_spec: "/var/run/cdi/k8s.d-claim_u1.json".into(),
                devices: vec![device],
            },
        );
        checkpoint
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.json");
        assert_eq!(load(&path).unwrap(), Checkpoint::default());
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path).unwrap(), sample());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
        assert!(text.contains("\"bootId\": \"b\""), "{text}");
    }

    #[test]
    fn damaged_file_is_moved_aside_and_replaced_by_an_empty_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.json");
        std::fs::write(&path, b"{\"version\": 1, \"claims\": {\"u1\": ").unwrap();
        assert!(matches!(load(&path), Err(CheckpointError::Damaged { .. })));
        assert_eq!(load_or_recover(&path), Checkpoint::default());
        assert!(!path.exists());
        assert_eq!(
            std::fs::read(bad_path(&path)).unwrap(),
            b"{\"version\": 1, \"claims\": {\"u1\": "
        );
    }

    #[test]
    fn unknown_versions_and_fields_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.json");
        std::fs::write(&path, br#"{"version": 2, "claims": {}}"#).unwrap();
        assert!(matches!(
            load(&path),
            Err(CheckpointError::UnsupportedVersion { version: 2, .. })
        ));
        std::fs::write(&path, br#"{"version": 1, "claims": {}, "extra": 1}"#).unwrap();
        assert!(matches!(load(&path), Err(CheckpointError::Damaged { .. })));
        std::fs::write(&path, br#"{"claims": {}}"#).unwrap();
        assert!(matches!(load(&path), Err(CheckpointError::Damaged { .. })));
    }

    #[test]
    fn boot_id_is_trimmed_and_absence_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boot_id");
        assert_eq!(read_boot_id(&path), None);
        std::fs::write(&path, "1b2c\n").unwrap();
        assert_eq!(read_boot_id(&path).as_deref(), Some("1b2c"));
    }
}
