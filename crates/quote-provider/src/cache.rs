//! The on-disk cache of fetched documents, for containers as well as hosts.
//!
//! The directory is the first of [`crate::config::cache_candidates`] that can be created and
//! written (a probe file is created and removed); one that cannot is skipped, and when none can,
//! nothing is cached and every call goes to the network. Each entry is one JSON file named by the
//! SHA-256 of its key, written to a temporary file in the same directory and renamed into place,
//! so readers never see half an entry. An entry records when it was stored and the earliest
//! `nextUpdate` of what it holds; it is served while younger than the configured hours and not past
//! that `nextUpdate`. Damaged or unreadable entries are misses.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Largest entry read back.
const MAX_ENTRY: u64 = 16 << 20;
/// Version of the entry format.
const FORMAT: u64 = 1;

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
            stored_at: now(),
            not_after,
            fields,
        }
    }

    /// Whether the entry may be served at `at`: not past `not_after`, and (unless `max_age` is
    /// `None`) stored less than `max_age` seconds before.
    pub fn fresh(&self, at: u64, max_age: Option<u64>) -> bool {
        at < self.not_after && max_age.is_none_or(|age| at < self.stored_at.saturating_add(age))
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

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A usable cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The first of `candidates` that can be created and written; `None` when none can.
    pub fn open(candidates: &[PathBuf]) -> Option<Self> {
        candidates
            .iter()
            .find(|dir| usable(dir))
            .map(|dir| Self { dir: dir.clone() })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
        self.dir
            .join(format!("{}.json", hex::encode(digest.as_ref())))
    }

    /// The entry of `key`, if present and fresh at `at` (see [`Entry::fresh`]).
    pub fn get(&self, key: &str, at: u64, max_age: Option<u64>) -> Option<Entry> {
        let file = std::fs::File::open(self.path(key)).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_ENTRY + 1).read_to_end(&mut bytes).ok()?;
        if bytes.len() as u64 > MAX_ENTRY {
            return None;
        }
        Entry::from_json(&bytes).filter(|entry| entry.fresh(at, max_age))
    }

    /// Stores `entry` under `key`: a temporary file in the directory, renamed into place.
    pub fn put(&self, key: &str, entry: &Entry) -> std::io::Result<()> {
        let mut file = tempfile::Builder::new()
            .prefix(".entry")
            .tempfile_in(&self.dir)?;
        file.write_all(&entry.to_json())?;
        file.as_file().sync_all()?;
        file.persist(self.path(key)).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Whether `dir` exists or can be created, and a file can be created in it.
fn usable(dir: &Path) -> bool {
    if std::fs::create_dir_all(dir).is_err() || !dir.is_dir() {
        return false;
    }
    tempfile::Builder::new()
        .prefix(".probe")
        .tempfile_in(dir)
        .is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

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
        cache.put("k", &stored).unwrap();
        let at = stored.stored_at;
        assert_eq!(cache.get("k", at, Some(3600)), Some(stored.clone()));
        assert_eq!(cache.get("k", at + 3599, Some(3600)), Some(stored.clone()));
        assert_eq!(
            cache.get("k", at + 3600, Some(3600)),
            None,
            "older than the hours"
        );
        assert_eq!(
            cache.get("k", at + 10 * 3600, None),
            Some(stored),
            "no age limit"
        );
        assert_eq!(cache.get("other", at, None), None);
        // Only the entry file remains: no probe or temporary files.
        let names: Vec<_> = std::fs::read_dir(cache.dir()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn next_update_ends_an_entry_whatever_the_hours() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&[dir.path().to_owned()]).unwrap();
        let at = now();
        cache.put("k", &entry(at + 10)).unwrap();
        assert!(cache.get("k", at, Some(3600)).is_some());
        assert!(cache.get("k", at + 10, Some(3600)).is_none());
        assert!(cache.get("k", at + 10, None).is_none());
    }

    #[test]
    fn damaged_entries_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(&[dir.path().to_owned()]).unwrap();
        cache.put("k", &entry(u64::MAX)).unwrap();
        std::fs::write(cache.path("k"), b"{\"format\":1,\"fields\":{\"a\":\"zz\"}}").unwrap();
        assert!(cache.get("k", now(), None).is_none());
        std::fs::write(cache.path("k"), b"\x00\x01").unwrap();
        assert!(cache.get("k", now(), None).is_none());
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
}
