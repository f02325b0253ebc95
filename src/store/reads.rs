//! Reads for the web server (`web`): change pages, feeds, the watch list.
//! Read-only: no new trees.

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
}
