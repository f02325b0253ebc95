//! Reads for the web server (`web`): change pages, feeds, the watch list;
//! and the daemon's bulk read of every watch's state. Read-only: no new
//! trees.

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

    /// Every watch's state, in one pass over the tree: for the daemon's
    /// start-up, reloads and status report, where one lookup per watch
    /// pulls and decodes a whole leaf each time (100,000 watches do not fit
    /// the cache).
    pub fn watch_states(
        &self,
    ) -> Result<std::collections::HashMap<String, WatchState>, StoreError> {
        let mut states = std::collections::HashMap::new();
        self.visit_watch_states(
            |_| true,
            |name, state| {
                states.insert(name.to_owned(), state);
            },
        )?;
        Ok(states)
    }

    /// The states of the watches `keep` names, each handed to `visit`, in
    /// one pass: for a caller that keeps less than a whole `WatchState`
    /// per watch (the daemon's start-up keeps its planning inputs), or the
    /// states of a few (a daemon reload that adds 50,000 watches to
    /// 100,000 wants only the new ones'). The others are not decoded.
    pub fn visit_watch_states(
        &self,
        mut keep: impl FnMut(&str) -> bool,
        mut visit: impl FnMut(&str, WatchState),
    ) -> Result<(), StoreError> {
        self.kv.scan(Tree::Watches, &[], false, &mut |key, value| {
            let name =
                std::str::from_utf8(key).map_err(|_| self.corrupt("watch", "name is not UTF-8"))?;
            if keep(name) {
                let record: WatchRecord =
                    decode(value).map_err(|reason| self.corrupt("watch", reason))?;
                visit(name, record.into());
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })
    }
}

impl Store {
    /// The stored state and pause of some watches, each read in one round
    /// trip: what the daemon plans a batch of claimed checks from. A watch
    /// with no state is left out of the map; the set holds the paused ones.
    pub fn plan_inputs(
        &self,
        watches: &[&str],
    ) -> Result<
        (
            std::collections::HashMap<String, WatchState>,
            std::collections::HashSet<String>,
        ),
        StoreError,
    > {
        let keys: Vec<&[u8]> = watches.iter().map(|name| name.as_bytes()).collect();
        let mut states = std::collections::HashMap::new();
        for (name, value) in watches.iter().zip(self.kv.get_many(Tree::Watches, &keys)?) {
            if let Some(value) = value {
                let record: WatchRecord =
                    decode(&value).map_err(|reason| self.corrupt("watch", reason))?;
                states.insert((*name).to_owned(), record.into());
            }
        }
        let paused = watches
            .iter()
            .zip(self.kv.get_many(Tree::Paused, &keys)?)
            .filter(|(_, value)| value.is_some())
            .map(|(name, _)| (*name).to_owned())
            .collect();
        Ok((states, paused))
    }
}

impl Store {
    /// The store's size on disk, without counting its records (which
    /// [`Store::stats`] does, a pass over every tree).
    pub fn disk_bytes(&self) -> Result<u64, StoreError> {
        self.kv.size_on_disk()
    }
}
