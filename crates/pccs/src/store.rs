//! The collateral cache on disk: an embedded transactional key-value store ([`redb`]), so that
//! cached collateral survives restarts, readers never see a half-written entry, and a crash in the
//! middle of a write loses nothing that was committed (and so nothing already served from it).
//!
//! An entry is one upstream answer: its body, the headers a PCCS answer carries, when it was
//! fetched and when it is due for a refresh. Its encoding (`fetched_at`, `refresh_at` as u64 LE,
//! then a u32 LE count of headers, each as u16 LE length-prefixed name and value, then the body)
//! is read back through the bounds-checked reader, so a damaged entry is an error, not a panic.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use sgx_types::reader::Reader;

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("collateral");

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or used.
    #[error("collateral store: {0}")]
    Database(String),
    /// An entry does not decode.
    #[error("collateral store entry {key:?} is damaged: {reason}")]
    Damaged {
        /// The entry.
        key: String,
        /// Why.
        reason: String,
    },
}

fn db_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

/// One cached upstream answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Unix seconds of the fetch.
    pub fetched_at: u64,
    /// Unix seconds from which the entry should be fetched again.
    pub refresh_at: u64,
    /// Headers of the answer (lower-case names), as received.
    pub headers: Vec<(String, String)>,
    /// The body, as received.
    pub body: Vec<u8>,
}

impl Entry {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn encode(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(self.body.len() + 256);
        out.extend_from_slice(&self.fetched_at.to_le_bytes());
        out.extend_from_slice(&self.refresh_at.to_le_bytes());
        let count = u32::try_from(self.headers.len()).map_err(|_| "too many headers")?;
        out.extend_from_slice(&count.to_le_bytes());
        for (name, value) in &self.headers {
            for text in [name, value] {
                let len = u16::try_from(text.len()).map_err(|_| "header longer than 64 KiB")?;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
        out.extend_from_slice(&self.body);
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader::new(bytes);
        let fetched_at = r.u64_le("fetched_at").map_err(|e| e.to_string())?;
        let refresh_at = r.u64_le("refresh_at").map_err(|e| e.to_string())?;
        let count = r.u32_le("header count").map_err(|e| e.to_string())?;
        let mut headers = Vec::new();
        for _ in 0..count {
            let mut text = || -> Result<String, String> {
                let len = r.u16_le("header length").map_err(|e| e.to_string())?;
                let raw = r
                    .take(usize::from(len), "header")
                    .map_err(|e| e.to_string())?;
                String::from_utf8(raw.to_vec()).map_err(|e| e.to_string())
            };
            let name = text()?;
            let value = text()?;
            headers.push((name, value));
        }
        Ok(Self {
            fetched_at,
            refresh_at,
            headers,
            body: r.rest().to_vec(),
        })
    }
}

/// The store: one database file.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the store at `path`. One process at a time holds it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(db_error)?;
        // Create the table, so that reads of an empty store find it.
        let tx = db.begin_write().map_err(db_error)?;
        tx.open_table(ENTRIES).map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        Ok(Self { db })
    }

    /// The entry under `key`.
    pub fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        let table = tx.open_table(ENTRIES).map_err(db_error)?;
        let Some(value) = table.get(key).map_err(db_error)? else {
            return Ok(None);
        };
        Entry::decode(value.value())
            .map(Some)
            .map_err(|reason| StoreError::Damaged {
                key: key.to_owned(),
                reason,
            })
    }

    /// Stores `entry` under `key`, durably, before returning.
    pub fn put(&self, key: &str, entry: &Entry) -> Result<(), StoreError> {
        let bytes = entry.encode().map_err(|reason| StoreError::Damaged {
            key: key.to_owned(),
            reason,
        })?;
        let tx = self.db.begin_write().map_err(db_error)?;
        {
            let mut table = tx.open_table(ENTRIES).map_err(db_error)?;
            table.insert(key, bytes.as_slice()).map_err(db_error)?;
        }
        tx.commit().map_err(db_error)
    }

    /// Makes every entry due, so that the next request for it fetches it again; the entries stay
    /// (and are served if the fetch fails). Returns how many there are.
    pub fn mark_all_due(&self) -> Result<usize, StoreError> {
        let tx = self.db.begin_write().map_err(db_error)?;
        let count;
        {
            let mut table = tx.open_table(ENTRIES).map_err(db_error)?;
            let mut updated = Vec::new();
            for item in table.iter().map_err(db_error)? {
                let (key, value) = item.map_err(db_error)?;
                let mut bytes = value.value().to_vec();
                // The encoding starts with fetched_at then refresh_at, both u64 LE.
                if let Some(refresh_at) = bytes.get_mut(8..16) {
                    refresh_at.copy_from_slice(&0u64.to_le_bytes());
                }
                updated.push((key.value().to_owned(), bytes));
            }
            count = updated.len();
            for (key, bytes) in updated {
                table
                    .insert(key.as_str(), bytes.as_slice())
                    .map_err(db_error)?;
            }
        }
        tx.commit().map_err(db_error)?;
        Ok(count)
    }

    /// Every key with its refresh time.
    pub fn due(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let tx = self.db.begin_read().map_err(db_error)?;
        let table = tx.open_table(ENTRIES).map_err(db_error)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(db_error)? {
            let (key, value) = item.map_err(db_error)?;
            let refresh_at = value
                .value()
                .get(8..16)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes);
            out.push((key.value().to_owned(), refresh_at));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            fetched_at: 1_700_000_000,
            refresh_at: 1_700_086_400,
            headers: vec![
                ("tcb-info-issuer-chain".into(), "-----BEGIN%20CERT".into()),
                ("request-id".into(), "abc".into()),
            ],
            body: b"{\"tcbInfo\":{}}".to_vec(),
        }
    }

    #[test]
    fn entries_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.redb");
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.get("v4/tcb/00906ED50000").unwrap(), None);
            store.put("v4/tcb/00906ED50000", &entry()).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let got = store.get("v4/tcb/00906ED50000").unwrap().unwrap();
        assert_eq!(got, entry());
        assert_eq!(
            got.header("TCB-Info-Issuer-Chain"),
            Some("-----BEGIN%20CERT")
        );
        assert_eq!(
            store.due().unwrap(),
            vec![("v4/tcb/00906ED50000".to_owned(), 1_700_086_400)]
        );
        assert_eq!(store.mark_all_due().unwrap(), 1);
        let due = store.get("v4/tcb/00906ED50000").unwrap().unwrap();
        assert_eq!(due.refresh_at, 0);
        assert_eq!(due.body, entry().body, "the entry stays");
    }

    #[test]
    fn damaged_entries_are_errors() {
        let encoded = entry().encode().unwrap();
        assert_eq!(Entry::decode(&encoded).unwrap(), entry());
        // Every cut inside the header part fails; cuts in the body only shorten it.
        let header_end = encoded.len() - entry().body.len();
        for cut in 0..header_end {
            assert!(Entry::decode(&encoded[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_utf8 = encoded.clone();
        bad_utf8[22] = 0xff;
        assert!(Entry::decode(&bad_utf8).is_err());
    }
}
