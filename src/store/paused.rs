//! Paused watches: the `paused` tree, name → when and why it was paused.
//! A pause is stored, so it lasts across restarts until `tidings resume`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::kv::Tree;
use super::records::{Versioned, decode, encode};
use super::{Store, StoreError};

/// A pause as stored: `v` 1.
#[derive(Debug, Serialize, Deserialize)]
struct PauseRecord {
    v: u32,
    since: DateTime<Utc>,
}

impl Versioned for PauseRecord {
    const LATEST: u32 = 1;
}

impl Store {
    /// Pauses a watch: the daemon starts no check of it until resumed.
    /// Returns false when it was paused already (the first time is kept).
    pub fn pause_watch(&self, watch: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let record = encode(&PauseRecord { v: 1, since: at });
        self.kv.insert_new(Tree::Paused, watch.as_bytes(), &record)
    }

    /// Lifts a pause; false when the watch was not paused.
    pub fn resume_watch(&self, watch: &str) -> Result<bool, StoreError> {
        self.kv.remove(Tree::Paused, watch.as_bytes())
    }

    /// When a watch was paused, if it is.
    pub fn paused_since(&self, watch: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.kv
            .get(Tree::Paused, watch.as_bytes())?
            .map(|bytes| {
                decode::<PauseRecord>(&bytes)
                    .map(|record| record.since)
                    .map_err(|reason| self.corrupt("pause", reason))
            })
            .transpose()
    }

    /// Every paused watch and when it was paused.
    pub fn paused(&self) -> Result<BTreeMap<String, DateTime<Utc>>, StoreError> {
        let mut paused = BTreeMap::new();
        for (key, value) in self.kv.collect(Tree::Paused, b"")? {
            let record: PauseRecord =
                decode(&value).map_err(|reason| self.corrupt("pause", reason))?;
            paused.insert(String::from_utf8_lossy(&key).into_owned(), record.since);
        }
        Ok(paused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_are_kept_until_lifted() {
        let store = Store::temporary().expect("store");
        let at = Utc::now();
        assert!(store.pause_watch("a", at).expect("pause"));
        assert!(
            !store
                .pause_watch("a", at + chrono::Duration::hours(1))
                .expect("again")
        );
        assert_eq!(store.paused_since("a").expect("read"), Some(at));
        assert_eq!(store.paused().expect("list").len(), 1);
        assert!(store.resume_watch("a").expect("resume"));
        assert!(!store.resume_watch("a").expect("resume again"));
        assert_eq!(store.paused_since("a").expect("read"), None);
    }
}
