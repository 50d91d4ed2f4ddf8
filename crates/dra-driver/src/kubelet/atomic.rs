//! Atomic file replacement: a temporary file in the same directory, written and fsynced, renamed
//! over the target, then the directory fsynced. Readers see the old file or the new one, never a
//! partial one, and a crash leaves at most a hidden temporary file behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The target path has no parent directory or no file name.
    #[error("{path}: not a file path")]
    NotAFilePath {
        /// The target.
        path: PathBuf,
    },
    /// Creating, writing or syncing the temporary file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The temporary file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Renaming the temporary file over the target failed.
    #[error("renaming {from} to {to}: {source}")]
    Rename {
        /// The temporary file.
        from: PathBuf,
        /// The target.
        to: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Syncing the directory after the rename failed.
    #[error("syncing directory {path}: {source}")]
    SyncDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replace `path` with `bytes` atomically, creating the file with `mode` (before the umask).
///
/// The temporary file is `.<name>.<pid>.<n>.tmp`: hidden, and without the `.json`/`.yaml` ending
/// CDI runtimes scan for, so a half-written spec is never read.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    let not_a_file = || WriteError::NotAFilePath {
        path: path.to_owned(),
    };
    let dir = path.parent().ok_or_else(not_a_file)?;
    let name = path.file_name().ok_or_else(not_a_file)?;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}.{n}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(WriteError::Write { path: tmp, source });
    }
    if let Err(source) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(WriteError::Rename {
            from: tmp,
            to: path.to_owned(),
            source,
        });
    }
    sync_dir(dir)
}

/// Remove `path` (absent is fine) and fsync its directory, so the removal survives a crash.
pub fn remove_durably(path: &Path) -> io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(true)
}

fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| WriteError::SyncDir {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.json");
        write_atomic(&path, b"first", 0o644).unwrap();
        write_atomic(&path, b"second", 0o644).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("spec.json")]);
    }

    #[test]
    fn new_files_get_the_requested_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.json");
        write_atomic(&path, b"{}", 0o600).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_missing_directory_is_a_write_error_and_nothing_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("spec.json");
        let err = write_atomic(&path, b"x", 0o644).unwrap_err();
        assert!(matches!(err, WriteError::Write { .. }), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn a_directory_in_the_way_fails_the_rename_and_the_temporary_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.json");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"x").unwrap();
        let err = write_atomic(&path, b"x", 0o644).unwrap_err();
        assert!(matches!(err, WriteError::Rename { .. }), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn removal_of_an_absent_file_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.json");
        assert!(!remove_durably(&path).unwrap());
        std::fs::write(&path, b"x").unwrap();
        assert!(remove_durably(&path).unwrap());
        assert!(!path.exists());
    }
}
