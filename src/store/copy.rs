//! `tidings store copy --from-sled DIR`: moves an embedded store into the
//! PostgreSQL store, record for record. The records are the same bytes on
//! both backends (see [`super::kv`]), so the copy needs no conversion, and
//! it is checked by counting every tree on both sides afterwards. Texts
//! are read through the sled side's packs, so the database receives the
//! texts themselves (it keeps them in its table). The `format` record is
//! not copied: the database keeps its own layout number.

use std::ops::ControlFlow;

use super::kv::{Kv, Tree};
use super::{Store, StoreError};

/// Entries written per transaction: large enough that a big store copies
/// in minutes, small enough that no transaction grows without bound.
const BATCH: usize = 500;

/// What a copy moved, per tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopySummary {
    /// Each tree's name and how many entries it holds on both sides.
    pub trees: Vec<(&'static str, u64)>,
}

impl CopySummary {
    /// Entries across every tree.
    pub fn total(&self) -> u64 {
        self.trees.iter().map(|(_, n)| n).sum()
    }
}

impl Store {
    /// Copies every record of `source` (an embedded store) into this store,
    /// which must be PostgreSQL and hold no records yet. Afterwards every
    /// tree is counted on both sides; a difference is an error.
    pub fn copy_from(&self, source: &Store) -> Result<CopySummary, StoreError> {
        let refuse = |reason: String| StoreError::Corrupt {
            path: self.path.clone(),
            what: "copy",
            reason,
        };
        if !self.is_shared() {
            return Err(refuse("the target of a copy must be PostgreSQL".to_owned()));
        }
        if source.is_shared() {
            return Err(refuse(
                "the source of a copy must be a sled store".to_owned(),
            ));
        }
        for tree in Tree::ALL {
            if tree != Tree::Meta && self.kv.len(tree)? > 0 {
                return Err(refuse(format!(
                    "the database already holds {} records; copy into an empty database",
                    tree.name()
                )));
            }
        }
        // No multi-tree transaction commits in the source while it is read.
        let _gate = source
            .gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut summary = CopySummary::default();
        let mut highest_id = 0;
        for tree in Tree::ALL {
            let mut batch: Vec<super::kv::Entry> = Vec::with_capacity(BATCH);
            let mut copied = 0u64;
            let mut failure = None;
            source.kv.scan(tree, b"", false, &mut |key, value| {
                if tree == Tree::Meta && key == b"format" {
                    // Counted as copied: the target holds its own.
                    copied += 1;
                    return Ok(ControlFlow::Continue(()));
                }
                if matches!(tree, Tree::Outbox | Tree::OutboxDone | Tree::Digests) {
                    highest_id = highest_id.max(row_id(key));
                }
                batch.push((key.to_vec(), value.to_vec()));
                if batch.len() >= BATCH {
                    if let Err(e) = write_batch(&self.kv, tree, &batch) {
                        failure = Some(e);
                        return Ok(ControlFlow::Break(()));
                    }
                    copied += batch.len() as u64;
                    batch.clear();
                }
                Ok(ControlFlow::Continue(()))
            })?;
            if let Some(e) = failure {
                return Err(e);
            }
            write_batch(&self.kv, tree, &batch)?;
            copied += batch.len() as u64;
            let (there, here) = (source.kv.len(tree)?, self.kv.len(tree)?);
            if there != here || copied != here {
                return Err(refuse(format!(
                    "{}: {there} records in the sled store, {copied} copied, {here} in the database",
                    tree.name()
                )));
            }
            summary.trees.push((tree.name(), here));
        }
        // Ids handed out from now on must follow the copied rows', so that
        // the outbox stays first-queued-first and no id is reused.
        self.kv.advance_ids(highest_id)?;
        Ok(summary)
    }
}

/// The id at the end of an outbox or digest key (8 bytes, big-endian).
fn row_id(key: &[u8]) -> u64 {
    key.len()
        .checked_sub(8)
        .and_then(|start| key.get(start..))
        .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
        .map_or(0, u64::from_be_bytes)
}

fn write_batch(kv: &Kv, tree: Tree, batch: &[super::kv::Entry]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    kv.transaction("copy", |tx| {
        for (key, value) in batch {
            tx.insert(tree, key, value)?;
        }
        Ok(())
    })
}
