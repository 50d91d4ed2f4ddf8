//! Atomic file writes for the state directory: temp file + fsync + rename, then fsync of the directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::SimError;

/// Mode of files holding private keys or the platform secret.
pub(crate) const SECRET_MODE: u32 = 0o600;
/// Mode of files anyone may read (certificates, published CPU material).
pub(crate) const PUBLIC_MODE: u32 = 0o644;

fn temp_path(path: &Path) -> Result<std::path::PathBuf, SimError> {
    let name = path
        .file_name()
        .ok_or_else(|| SimError::InvalidOption(format!("{} has no file name", path.display())))?;
    // Unique per process and per write, so concurrent writers never share a temp file.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut tmp = name.to_os_string();
    tmp.push(format!(
        ".tmp.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    Ok(path.with_file_name(tmp))
}

fn write_temp(path: &Path, bytes: &[u8], mode: u32) -> Result<std::path::PathBuf, SimError> {
    let tmp = temp_path(path)?;
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| SimError::io("create", &tmp, e))?;
    // The umask may have narrowed the mode given at creation.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| SimError::io("chmod", &tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| SimError::io("write", &tmp, e))?;
    Ok(tmp)
}

fn sync_dir(path: &Path) -> Result<(), SimError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SimError::io("sync", dir, e))
}

/// Replaces `path` atomically with `bytes` (file mode `mode`): readers see the old or the new
/// content, never a mix, and the new content is on disk when this returns.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SimError> {
    let tmp = write_temp(path, bytes, mode)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(SimError::io("rename", path, e));
    }
    sync_dir(path)
}

/// Creates `path` with `bytes` unless it exists. Returns false (and leaves the file alone) when another
/// writer created it first, so concurrent creators agree on one content.
pub(crate) fn create_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<bool, SimError> {
    let tmp = write_temp(path, bytes, mode)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => sync_dir(path).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(SimError::io("link", path, e)),
    }
}

/// Reads a whole file, mapping errors to [`SimError::Io`]; files larger than `max` are corrupt.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, SimError> {
    let meta = fs::metadata(path).map_err(|e| SimError::io("stat", path, e))?;
    if meta.len() > max {
        return Err(SimError::corrupt(
            path,
            format!(
                "{} bytes, more than the {max} this file can hold",
                meta.len()
            ),
        ));
    }
    fs::read(path).map_err(|e| SimError::io("read", path, e))
}

/// Creates a directory (and its parents) with the given mode when it does not exist.
pub(crate) fn ensure_dir(path: &Path, mode: u32) -> Result<(), SimError> {
    if path.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(path).map_err(|e| SimError::io("create directory", path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| SimError::io("chmod", path, e))
}

/// An exclusive advisory lock on a directory (`flock` on `<dir>/.lock`), held until dropped.
/// Serialises creation of a state or CA directory between threads and processes; the kernel
/// releases it when a holder dies, so no stale lock survives a crash.
pub(crate) struct DirLock {
    _file: File,
}

pub(crate) fn lock_dir(dir: &Path) -> Result<DirLock, SimError> {
    let path = dir.join(".lock");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(SECRET_MODE)
        .open(&path)
        .map_err(|e| SimError::io("open", &path, e))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| SimError::io("lock", &path, e.into()))?;
    Ok(DirLock { _file: file })
}

/// Decodes a fixed-size hex field of a state file, naming the file and field when it is not.
pub(crate) fn hex_field<const N: usize>(
    path: &Path,
    field: &str,
    text: &str,
) -> Result<[u8; N], SimError> {
    let bytes =
        hex::decode(text).map_err(|e| SimError::corrupt(path, format!("{field}: not hex: {e}")))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| {
        SimError::corrupt(
            path,
            format!("{field}: {} bytes, expected {N}", bytes.len()),
        )
    })
}
