//! The seam between the store's records and where they are kept: named
//! trees of ordered byte keys, with atomic multi-tree transactions.
//!
//! Two backends behave the same here: sled (embedded, the default) and
//! PostgreSQL (one `tidings_kv` table, for several nodes on one database).
//! Everything above this seam (record encoding, compression, the outbox,
//! subscribers) is shared code, so both backends keep the same records and
//! the same transactional promises, and the same tests run against both.

use std::ops::ControlFlow;

use super::StoreError;

mod packs;
pub(crate) mod pg;
mod pg_nodes;
mod sled_kv;

pub(crate) use packs::Packs;
pub(crate) use pg::{PgKv, PgSettings};
pub use pg_nodes::{CheckClaim, NodeRow};
pub(crate) use sled_kv::{SledKv, packed};

/// The store's trees. Their names are sled's tree names (stores written
/// before the seam open unchanged) and the `tree` column in PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Tree {
    /// sled's default tree: the `format` record.
    Meta,
    Watches,
    Versions,
    /// Content-addressed compressed texts. On sled the tree holds a
    /// reference into a pack file (see [`packs`]), and reads through
    /// [`Kv::get`] and [`Kv::scan`] return the text; a write must go
    /// through [`Kv::stage`] first, and a transaction's `get` sees the
    /// stored value (used only to learn whether a text is there).
    Texts,
    Facts,
    /// The change record that led to each version. On sled, as for
    /// `texts`, a record written since format 3 is a reference into a pack
    /// (written through [`Kv::stage`]): reads through [`Kv::get`] and
    /// [`Kv::scan`] return the record, a transaction's `get` the reference.
    Changes,
    Subscribers,
    Suppressed,
    Outbox,
    OutboxDone,
    Digests,
    Paused,
}

impl Tree {
    /// Every tree, in the order `store copy` moves them.
    pub(crate) const ALL: [Tree; 12] = [
        Tree::Meta,
        Tree::Watches,
        Tree::Versions,
        Tree::Texts,
        Tree::Facts,
        Tree::Changes,
        Tree::Subscribers,
        Tree::Suppressed,
        Tree::Outbox,
        Tree::OutboxDone,
        Tree::Digests,
        Tree::Paused,
    ];

    /// The tree's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Watches => "watches",
            Tree::Versions => "versions",
            Tree::Texts => "texts",
            Tree::Facts => "facts",
            Tree::Changes => "changes",
            Tree::Subscribers => "subscribers",
            Tree::Suppressed => "suppressed",
            Tree::Outbox => "outbox",
            Tree::OutboxDone => "outbox_done",
            Tree::Digests => "digests",
            Tree::Paused => "paused",
        }
    }

    fn index(self) -> usize {
        Tree::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// Why a transaction's closure stopped.
#[derive(Debug)]
pub(crate) enum TxError {
    /// The closure gave up (a record it read is unreadable): nothing is
    /// written, and the reason is reported.
    Abort(String),
    /// sled asks for a retry, or failed.
    Sled(sled::transaction::UnabortableTransactionError),
    /// PostgreSQL failed (a serialization failure is retried).
    Pg(postgres::Error),
}

impl From<sled::transaction::UnabortableTransactionError> for TxError {
    fn from(e: sled::transaction::UnabortableTransactionError) -> Self {
        TxError::Sled(e)
    }
}

impl From<postgres::Error> for TxError {
    fn from(e: postgres::Error) -> Self {
        TxError::Pg(e)
    }
}

/// One transaction's view of every tree.
pub(crate) enum Tx<'a, 'b> {
    Sled(&'a [sled::transaction::TransactionalTree]),
    Pg(&'a mut postgres::Transaction<'b>, &'a pg::Stmts),
}

impl Tx<'_, '_> {
    pub(crate) fn get(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        match self {
            Tx::Sled(trees) => Ok(trees[tree.index()].get(key)?.map(|v| v.to_vec())),
            Tx::Pg(tx, stmts) => Ok(pg::tx_get(tx, stmts, tree, key)?),
        }
    }

    pub(crate) fn insert(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), TxError> {
        match self {
            Tx::Sled(trees) => {
                trees[tree.index()].insert(key, value)?;
                Ok(())
            }
            Tx::Pg(tx, stmts) => Ok(pg::tx_insert(tx, stmts, tree, key, value)?),
        }
    }

    /// Removes a key; true when it was there.
    pub(crate) fn remove(&mut self, tree: Tree, key: &[u8]) -> Result<bool, TxError> {
        match self {
            Tx::Sled(trees) => Ok(trees[tree.index()].remove(key)?.is_some()),
            Tx::Pg(tx, stmts) => Ok(pg::tx_remove(tx, stmts, tree, key)?),
        }
    }
}

/// Where a store's records are kept.
#[derive(Debug, Clone)]
pub(crate) enum Kv {
    Sled(SledKv),
    Pg(PgKv),
}

/// The smallest key after every key that starts with `prefix`, if any.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A value to be written by a later transaction (see [`Kv::stage`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Staged<'a> {
    pub(crate) tree: Tree,
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// A key and its value.
pub(crate) type Entry = (Vec<u8>, Vec<u8>);

/// A visitor over scanned entries: `Break` stops the scan.
pub(crate) type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>, StoreError> + 'a;

impl Kv {
    pub(crate) fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Kv::Sled(kv) => kv.get(tree, key),
            Kv::Pg(kv) => kv.get(tree, key),
        }
    }

    /// The values of several keys of one tree, in the order asked (one
    /// round trip on PostgreSQL).
    pub(crate) fn get_many(
        &self,
        tree: Tree,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        match self {
            Kv::Sled(kv) => keys.iter().map(|key| kv.get(tree, key)).collect(),
            Kv::Pg(kv) => kv.get_many(tree, keys),
        }
    }

    /// Writes a key; returns whether it was new.
    pub(crate) fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        match self {
            Kv::Sled(kv) => kv.insert(tree, key, value),
            Kv::Pg(kv) => kv.insert(tree, key, value),
        }
    }

    /// Writes a key only if it is absent; returns whether it wrote.
    pub(crate) fn insert_new(
        &self,
        tree: Tree,
        key: &[u8],
        value: &[u8],
    ) -> Result<bool, StoreError> {
        match self {
            Kv::Sled(kv) => kv.insert_new(tree, key, value),
            Kv::Pg(kv) => kv.insert_new(tree, key, value),
        }
    }

    /// What a transaction writes into [`Tree::Texts`] for `key`: on sled,
    /// the text is written to a pack and synced (unless already stored) and
    /// its reference returned, so that the transaction that refers to it
    /// commits after it is durable; on PostgreSQL, the text itself.
    #[cfg(test)]
    pub(crate) fn stage_text(&self, key: &[u8], text: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let mut values = self.stage(&[Staged {
            tree: Tree::Texts,
            key,
            value: &text,
        }])?;
        Ok(values.pop().unwrap_or_default())
    }

    /// What a transaction writes for each item, in order: on sled, the
    /// values of [`Tree::Texts`] and [`Tree::Changes`] go to a pack first
    /// (one append and one sync for all of them; a text already stored is
    /// not written again) and their references are returned, so that the
    /// transaction that refers to them commits after they are durable; any
    /// other value, and every value on PostgreSQL, is returned as it is.
    pub(crate) fn stage(&self, items: &[Staged<'_>]) -> Result<Vec<Vec<u8>>, StoreError> {
        match self {
            Kv::Sled(kv) => kv.stage(items),
            Kv::Pg(_) => Ok(items.iter().map(|item| item.value.to_vec()).collect()),
        }
    }

    /// Removes a key; returns whether it was there.
    pub(crate) fn remove(&self, tree: Tree, key: &[u8]) -> Result<bool, StoreError> {
        match self {
            Kv::Sled(kv) => kv.remove(tree, key),
            Kv::Pg(kv) => kv.remove(tree, key),
        }
    }

    /// Visits the keys starting with `prefix` in key order (or backwards).
    pub(crate) fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        match self {
            Kv::Sled(kv) => kv.scan(tree, prefix, reverse, visit),
            Kv::Pg(kv) => kv.scan(tree, prefix, reverse, visit),
        }
    }

    /// Visits the keys from `from` on (inclusive), in key order.
    pub(crate) fn scan_from(
        &self,
        tree: Tree,
        from: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        match self {
            Kv::Sled(kv) => kv.scan_range(tree, from.to_vec(), None, false, visit),
            Kv::Pg(kv) => kv.scan_range(tree, from.to_vec(), None, false, visit),
        }
    }

    /// Every entry with `prefix`, in key order.
    pub(crate) fn collect(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        let mut found = Vec::new();
        self.scan(tree, prefix, false, &mut |key, value| {
            found.push((key.to_vec(), value.to_vec()));
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(found)
    }

    pub(crate) fn len(&self, tree: Tree) -> Result<u64, StoreError> {
        match self {
            Kv::Sled(kv) => Ok(kv.len(tree)),
            Kv::Pg(kv) => kv.len(tree),
        }
    }

    /// A new unique id, increasing (in one process for sled; across
    /// every node for PostgreSQL).
    pub(crate) fn generate_id(&self) -> Result<u64, StoreError> {
        match self {
            Kv::Sled(kv) => kv.generate_id(),
            Kv::Pg(kv) => kv.generate_id(),
        }
    }

    /// Runs `f` as one atomic transaction over every tree, retrying it on a
    /// conflict: `f` may run more than once, so it must not have effects
    /// outside the transaction.
    pub(crate) fn transaction<T: Send>(
        &self,
        what: &'static str,
        f: impl Fn(&mut Tx<'_, '_>) -> Result<T, TxError> + Sync,
    ) -> Result<T, StoreError> {
        match self {
            Kv::Sled(kv) => kv.transaction(what, f),
            Kv::Pg(kv) => kv.transaction(what, f),
        }
    }

    /// Makes every later [`Kv::generate_id`] larger than `id`.
    pub(crate) fn advance_ids(&self, id: u64) -> Result<(), StoreError> {
        match self {
            Kv::Sled(_) => Ok(()),
            Kv::Pg(kv) => kv.advance_ids(id),
        }
    }

    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        match self {
            Kv::Sled(kv) => kv.flush(),
            Kv::Pg(_) => Ok(()),
        }
    }

    pub(crate) fn size_on_disk(&self) -> Result<u64, StoreError> {
        match self {
            Kv::Sled(kv) => kv.size_on_disk(),
            Kv::Pg(kv) => kv.size_on_disk(),
        }
    }
}
