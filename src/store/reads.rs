//! Reads for the web server (`web`): change pages, feeds, the watch list;
//! and the daemon's bulk read of every watch's state. Read-only: no new
//! trees.

use super::*;

impl Store {
    /// A watch's change records, newest first: at most `limit` of those
    /// `keep` accepts. Reads backwards through the `changes` tree, so the
    /// cost follows `limit`, not the length of the history.
    pub fn latest_changes(
        &self,
        watch: &str,
        limit: usize,
        mut keep: impl FnMut(&ChangeRecord) -> bool,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let mut found = Vec::new();
        for entry in self.changes.scan_prefix(watch_prefix(watch)).rev() {
            if found.len() >= limit {
                break;
            }
            let (_, value) = entry.map_err(|e| self.io(e))?;
            let record = decode::<ChangeRecordV1>(&value)
                .map(ChangeRecord::from)
                .map_err(|reason| self.corrupt("change", reason))?;
            if keep(&record) {
                found.push(record);
            }
        }
        Ok(found)
    }

    /// Every watch's state, in one pass over the tree: for the daemon's
    /// start-up, reloads and status report, where one lookup per watch
    /// pulls and decodes a whole leaf each time (100,000 watches do not fit
    /// the cache).
    pub fn watch_states(
        &self,
    ) -> Result<std::collections::HashMap<String, WatchState>, StoreError> {
        self.watches
            .iter()
            .map(|entry| {
                let (key, value) = entry.map_err(|e| self.io(e))?;
                let name = String::from_utf8(key.to_vec())
                    .map_err(|_| self.corrupt("watch", "name is not UTF-8"))?;
                let record: WatchRecord =
                    decode(&value).map_err(|reason| self.corrupt("watch", reason))?;
                Ok((name, record.into()))
            })
            .collect()
    }
}
