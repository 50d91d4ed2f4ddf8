//! The on-disk cache of fetched documents, for containers as well as hosts.
//!
//! The directory is the first of [`crate::config::cache_candidates`] that is trusted and can be
//! written (a probe file is created and removed); one that is not is skipped, and when none is,
//! nothing is cached and every call goes to the network. A missing directory is created with mode
//! 0700; an existing one is trusted only if it is a real directory (not a symbolic link) owned by
//! the effective user and writable by nobody else, since a shared parent such as `/tmp` lets any
//! user create the name first. Each entry is one JSON file named by its [`Kind`] and the SHA-256 of
//! its key (`pck-<hex>.json`, `qv-<hex>.json`), written to a temporary file in the same directory
//! and renamed into place, so readers never see half an entry. [`Cache::clear`] removes the entries
//! of some kinds (`sgx_qpl_clear_cache`) and nothing else: Intel's library may keep its own files
//! in a directory of the same name. Entries are opened without following symbolic links and
//! without blocking (a FIFO planted under an entry's name is refused, not waited on), must be
//! regular files, and are read up to a bounded size. An entry records when it was stored and the earliest `nextUpdate`
//! of what it holds; it is served while younger than the configured hours and not past that
//! `nextUpdate`. An entry stored in the future (clock skew, or a planted file) is stale. Damaged
//! or unreadable entries are misses.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Largest entry read back.
const MAX_ENTRY: u64 = 16 << 20;
/// Version of the entry format.
const FORMAT: u64 = 1;

/// What an entry holds, in the classes of `sgx_qpl_clear_cache`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// PCK certificates (`SGX_QPL_CACHE_CERTIFICATE`).
    Certificate,
    /// Verification collateral, QvE identity and root CA CRL (`SGX_QPL_CACHE_QV_COLLATERAL`).
    Collateral,
}

impl Kind {
    /// The start of the kind's file names.
    fn prefix(self) -> &'static str {
        match self {
            Kind::Certificate => "pck-",
            Kind::Collateral => "qv-",
        }
    }

    /// Whether `name` is the file name of an entry of this kind: the prefix, 64 lower-case hex
    /// digits, `.json`.
    fn names(self, name: &str) -> bool {
        name.strip_prefix(self.prefix())
            .and_then(|rest| rest.strip_suffix(".json"))
            .is_some_and(|digest| {
                digest.len() == 64
                    && digest
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
    }
}

/// One cached document: named byte fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Seconds since the epoch when it was fetched.
    pub stored_at: u64,
    /// Seconds since the epoch after which it must not be served (the earliest `nextUpdate`;
    /// `u64::MAX` when it has none).
    pub not_after: u64,
    /// The document's parts.
    pub fields: BTreeMap<String, Vec<u8>>,
}

impl Entry {
    /// A new entry stored now.
    pub fn new(not_after: u64, fields: BTreeMap<String, Vec<u8>>) -> Self {
        Self {
            stored_at: pccs::upstream::now(),
            not_after,
            fields,
        }
    }

    /// Whether the entry may be served at `at`: stored no later than `at` (an entry from the
    /// future is stale), not past `not_after`, and (unless `max_age` is `None`) stored less than
    /// `max_age` seconds before.
    pub fn fresh(&self, at: u64, max_age: Option<u64>) -> bool {
        self.stored_at <= at
            && at < self.not_after
            && max_age.is_none_or(|age| at < self.stored_at.saturating_add(age))
    }

    fn to_json(&self) -> Vec<u8> {
        let fields: Map<String, Value> = self
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(hex::encode(v))))
            .collect();
        let doc = serde_json::json!({
            "format": FORMAT,
            "stored_at": self.stored_at,
            "not_after": self.not_after,
            "fields": fields,
        });
        doc.to_string().into_bytes()
    }

    fn from_json(bytes: &[u8]) -> Option<Self> {
        let doc: Value = serde_json::from_slice(bytes).ok()?;
        if doc["format"].as_u64()? != FORMAT {
            return None;
        }
        let fields = doc["fields"]
            .as_object()?
            .iter()
            .map(|(k, v)| Some((k.clone(), hex::decode(v.as_str()?).ok()?)))
            .collect::<Option<BTreeMap<_, _>>>()?;
        Some(Self {
            stored_at: doc["stored_at"].as_u64()?,
            not_after: doc["not_after"].as_u64()?,
            fields,
        })
    }
}

/// A usable cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The first of `candidates` that is trusted (see the module documentation) and can be
    /// written, created with mode 0700 when missing; `None` when there is none.
    pub fn open(candidates: &[PathBuf]) -> Option<Self> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        candidates
            .iter()
            .find(|dir| usable(dir, euid))
            .map(|dir| Self { dir: dir.clone() })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, kind: Kind, key: &str) -> PathBuf {
        let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
        self.dir.join(format!(
            "{}{}.json",
            kind.prefix(),
            hex::encode(digest.as_ref())
        ))
    }

    /// The entry of `key`, if present and fresh at `at` (see [`Entry::fresh`]).
    pub fn get(&self, kind: Kind, key: &str, at: u64, max_age: Option<u64>) -> Option<Entry> {
        // No symbolic link is followed, and opening a FIFO does not wait for a writer.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(self.path(kind, key))
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > MAX_ENTRY {
            return None;
        }
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY + 1).read_to_end(&mut bytes).ok()?;
        if bytes.len() as u64 > MAX_ENTRY {
            return None;
        }
        Entry::from_json(&bytes).filter(|entry| entry.fresh(at, max_age))
    }

    /// Stores `entry` under `key`: a temporary file in the directory, renamed into place.
    pub fn put(&self, kind: Kind, key: &str, entry: &Entry) -> std::io::Result<()> {
        let mut file = tempfile::Builder::new()
            .prefix(".entry")
            .tempfile_in(&self.dir)?;
        file.write_all(&entry.to_json())?;
        file.as_file().sync_all()?;
        file.persist(self.path(kind, key)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Removes every entry of `kinds` (and no other file); returns how many were removed. An
    /// entry removed meanwhile by another process is not an error; one that cannot be removed
    /// does not stop the others, and the first such failure is returned at the end.
    pub fn clear(&self, kinds: &[Kind]) -> std::io::Result<usize> {
        let mut removed = 0;
        let mut failure = None;
        for file in std::fs::read_dir(&self.dir)? {
            let file = file?;
            let name = file.file_name();
            let Some(name) = name.to_str() else { continue };
            if !kinds.iter().any(|kind| kind.names(name)) {
                continue;
            }
            // Removing a name never follows a symbolic link.
            match std::fs::remove_file(file.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }
}

/// Whether `dir` exists or can be created (mode 0700), is trusted by `euid`, and a file can be
/// created in it.
fn usable(dir: &Path, euid: u32) -> bool {
    let created = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    if created.is_err() || !trusted(dir, euid) {
        return false;
    }
    tempfile::Builder::new()
        .prefix(".probe")
        .tempfile_in(dir)
        .is_ok()
}

/// Whether `dir` is a directory itself (not a symbolic link to one), owned by `euid`, and not
/// writable by its group or others.
fn trusted(dir: &Path, euid: u32) -> bool {
    std::fs::symlink_metadata(dir).is_ok_and(|meta| {
        meta.file_type().is_dir() && meta.uid() == euid && meta.mode() & 0o022 == 0
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use pccs::upstream::now;
    use std::os::unix::fs::PermissionsExt;

    fn entry(not_after: u64) -> Entry {
        let mut fields = BTreeMap::new();
        fields.insert("body".to_owned(), b"{\"x\":1}\0\xff".to_vec());
        fields.insert("empty".to_owned(), Vec::new());
        Entry::new(not_after, fields)
    }

    #[test]
    fn entries_round_trip_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&[dir.path().join("c")]).unwrap();
        let stored = entry(u64::MAX);
        cache.put(Kind::Collateral, "k", &stored).unwrap();
        let at = stored.stored_at;
        assert_eq!(
            cache.get(Kind::Collateral, "k", at, Some(3600)),
            Some(stored.clone())
        );
        assert_eq!(
            cache.get(Kind::Collateral, "k", at + 3599, Some(3600)),
            Some(stored.clone())
        );
        assert_eq!(
            cache.get(Kind::Collateral, "k", at + 3600, Some(3600)),
            None,
            "older than the hours"
        );
        assert_eq!(
            cache.get(Kind::Collateral, "k", at + 10 * 3600, None),
            Some(stored),
            "no age limit"
        );
        assert_eq!(cache.get(Kind::Collateral, "other", at, None), None);
        // Only the entry file remains: no probe or temporary files.
        let names: Vec<_> = std::fs::read_dir(cache.dir()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn next_update_ends_an_entry_whatever_the_hours() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&[dir.path().to_owned()]).unwrap();
        let mut stored = entry(0);
        let at = stored.stored_at;
        stored.not_after = at + 10;
        cache.put(Kind::Collateral, "k", &stored).unwrap();
        assert!(cache.get(Kind::Collateral, "k", at, Some(3600)).is_some());
        assert!(
            cache
                .get(Kind::Collateral, "k", at + 10, Some(3600))
                .is_none()
        );
        assert!(cache.get(Kind::Collateral, "k", at + 10, None).is_none());
    }

    #[test]
    fn damaged_entries_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&[dir.path().to_owned()]).unwrap();
        cache.put(Kind::Collateral, "k", &entry(u64::MAX)).unwrap();
        std::fs::write(
            cache.path(Kind::Collateral, "k"),
            b"{\"format\":1,\"fields\":{\"a\":\"zz\"}}",
        )
        .unwrap();
        assert!(cache.get(Kind::Collateral, "k", now(), None).is_none());
        std::fs::write(cache.path(Kind::Collateral, "k"), b"\x00\x01").unwrap();
        assert!(cache.get(Kind::Collateral, "k", now(), None).is_none());
    }

    #[test]
    fn unusable_directories_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let good = dir.path().join("good");
        let cache = Cache::open(&[file.join(".dcap-qcnl"), good.clone()]).unwrap();
        assert_eq!(cache.dir(), good);
        assert!(Cache::open(&[file.join(".dcap-qcnl")]).is_none());
        assert!(Cache::open(&[]).is_none());
    }

    #[test]
    fn entries_stored_in_the_future_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&[dir.path().to_owned()]).unwrap();
        let mut planted = entry(u64::MAX);
        let at = planted.stored_at;
        planted.stored_at = at + 3600;
        cache.put(Kind::Collateral, "k", &planted).unwrap();
        assert_eq!(cache.get(Kind::Collateral, "k", at, Some(24 * 3600)), None);
        assert_eq!(
            cache.get(Kind::Collateral, "k", at, None),
            None,
            "not even without an age limit"
        );
        assert!(
            cache
                .get(Kind::Collateral, "k", at + 3600, Some(24 * 3600))
                .is_some()
        );
    }

    #[test]
    fn a_new_directory_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&[dir.path().join("new")]).unwrap();
        let mode = std::fs::metadata(cache.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    }

    #[test]
    fn untrusted_directories_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let group = dir.path().join("group");
        std::fs::create_dir(&group).unwrap();
        std::fs::set_permissions(&group, std::fs::Permissions::from_mode(0o770)).unwrap();
        let own = dir.path().join("own");
        std::fs::create_dir(&own).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&own, &link).unwrap();
        let good = dir.path().join("good");
        let cache = Cache::open(&[shared.clone(), group, link.clone(), good.clone()]).unwrap();
        assert_eq!(cache.dir(), good);
        // Nothing was written into the skipped ones.
        assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(&own).unwrap().count(), 0);
        // Mode 0700 and owned: trusted by its owner, not by anyone else.
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert!(trusted(&own, euid));
        assert!(!trusted(&own, euid.wrapping_add(1)));
        assert!(!trusted(&link, euid));
    }

    #[test]
    fn symlinked_entries_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&[dir.path().to_owned()]).unwrap();
        cache
            .put(Kind::Collateral, "elsewhere", &entry(u64::MAX))
            .unwrap();
        std::os::unix::fs::symlink(
            cache.path(Kind::Collateral, "elsewhere"),
            cache.path(Kind::Collateral, "k"),
        )
        .unwrap();
        assert!(
            cache
                .get(Kind::Collateral, "elsewhere", now(), None)
                .is_some()
        );
        assert!(cache.get(Kind::Collateral, "k", now(), None).is_none());
    }

    #[test]
    fn a_fifo_entry_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&[dir.path().to_owned()]).unwrap();
        let path = std::ffi::CString::new(
            cache
                .path(Kind::Collateral, "k")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        // A blocking open would wait here for a writer that never comes.
        assert!(cache.get(Kind::Collateral, "k", now(), None).is_none());
    }

    #[test]
    fn clear_removes_the_entries_of_the_kinds_asked_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&[dir.path().to_owned()]).unwrap();
        cache
            .put(Kind::Certificate, "cert", &entry(u64::MAX))
            .unwrap();
        cache
            .put(Kind::Collateral, "collateral", &entry(u64::MAX))
            .unwrap();
        cache
            .put(Kind::Collateral, "qve", &entry(u64::MAX))
            .unwrap();
        // The same key under two kinds is two entries.
        assert!(cache.get(Kind::Certificate, "qve", now(), None).is_none());
        // Files that are not our entries: another library's, a stray temporary file, a
        // directory with an entry's name.
        let others = [
            "0123.json",
            ".entry12345",
            "pck-XYZ.json",
            &format!("pck-{}.json.bak", "a".repeat(64)),
        ];
        for name in others {
            std::fs::write(dir.path().join(name), b"{}").unwrap();
        }
        std::fs::create_dir(dir.path().join(format!("qv-{}.json", "b".repeat(64)))).unwrap();

        assert_eq!(cache.clear(&[]).unwrap(), 0);
        assert_eq!(cache.clear(&[Kind::Certificate]).unwrap(), 1);
        assert!(cache.get(Kind::Certificate, "cert", now(), None).is_none());
        assert!(
            cache
                .get(Kind::Collateral, "collateral", now(), None)
                .is_some()
        );
        assert_eq!(
            cache.clear(&[Kind::Certificate]).unwrap(),
            0,
            "nothing left"
        );
        // A directory named like an entry cannot be removed as a file: a failure, after the
        // other entries are gone.
        assert!(cache.clear(&[Kind::Collateral]).is_err());
        assert!(
            cache
                .get(Kind::Collateral, "collateral", now(), None)
                .is_none()
        );
        assert!(cache.get(Kind::Collateral, "qve", now(), None).is_none());
        std::fs::remove_dir(dir.path().join(format!("qv-{}.json", "b".repeat(64)))).unwrap();
        assert_eq!(
            cache.clear(&[Kind::Certificate, Kind::Collateral]).unwrap(),
            0
        );
        for name in others {
            assert!(dir.path().join(name).exists(), "{name} was removed");
        }
    }

    #[test]
    fn oversized_entries_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&[dir.path().to_owned()]).unwrap();
        let stored = entry(u64::MAX);
        let mut json = stored.to_json();
        std::fs::write(cache.path(Kind::Collateral, "k"), &json).unwrap();
        assert_eq!(cache.get(Kind::Collateral, "k", now(), None), Some(stored));
        // Still valid JSON, but larger than any entry this library writes.
        json.resize(usize::try_from(MAX_ENTRY).unwrap() + 1, b' ');
        std::fs::write(cache.path(Kind::Collateral, "k"), &json).unwrap();
        assert!(cache.get(Kind::Collateral, "k", now(), None).is_none());
    }
}
