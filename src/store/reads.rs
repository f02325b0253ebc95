//! Reads for the web server (`web`): change pages, feeds, the watch list.
//! Read-only: no new trees.

use super::kv::Tree;
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
        if limit == 0 {
            return Ok(found);
        }
        self.kv.scan(
            Tree::Changes,
            &watch_prefix(watch),
            true,
            &mut |_, value| {
                let record = decode::<ChangeRecordV1>(value)
                    .map(ChangeRecord::from)
                    .map_err(|reason| self.corrupt("change", reason))?;
                if keep(&record) {
                    found.push(record);
                }
                Ok(if found.len() >= limit {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                })
            },
        )?;
        Ok(found)
    }
}
