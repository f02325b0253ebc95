//! The embedded backend: one sled tree per [`Tree`], and the version
//! texts and change records in pack files beside them (see
//! [`super::packs`]).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::packs::{Packed, Packs};
use super::{Staged, Tree, Tx, TxError, Visit, prefix_end};
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub(crate) struct SledKv {
    path: PathBuf,
    pub(crate) db: sled::Db,
    /// Indexed by [`Tree::index`]; the first is the default tree.
    trees: Vec<sled::Tree>,
    /// The texts and change records that the `texts` and `changes` trees
    /// refer to.
    pub(crate) packs: Arc<Packs>,
}

impl SledKv {
    pub(crate) fn new(path: PathBuf, db: sled::Db, packs: Packs) -> Result<Self, StoreError> {
        let mut trees = Vec::with_capacity(Tree::ALL.len());
        for tree in Tree::ALL {
            trees.push(match tree {
                Tree::Meta => (*db).clone(),
                other => db
                    .open_tree(other.name())
                    .map_err(|source| StoreError::Io {
                        path: path.clone(),
                        source,
                    })?,
            });
        }
        Ok(Self {
            path,
            db,
            trees,
            packs: Arc::new(packs),
        })
    }

    fn io(&self, source: sled::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree.index()]
    }

    /// A value; for `texts` and `changes`, the entry itself, read from its
    /// pack.
    pub(crate) fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(value) = self.tree(tree).get(key).map_err(|e| self.io(e))? else {
            return Ok(None);
        };
        self.resolve(tree, key, &value).map(Some)
    }

    /// What a stored value stands for: for the trees whose entries live in
    /// packs, the entry its reference points at.
    pub(crate) fn resolve(
        &self,
        tree: Tree,
        key: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        match packed(tree) {
            Some(kind) => self.packs.resolve_as(kind, key, value),
            None => Ok(value.to_vec()),
        }
    }

    /// The values to write for `items`: each entry goes to a pack first,
    /// in one append and one sync, and its reference is returned; a text
    /// the tree already holds is not written again (its value is returned).
    pub(crate) fn stage(&self, items: &[Staged<'_>]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut values: Vec<Option<Vec<u8>>> = Vec::with_capacity(items.len());
        let mut to_write = Vec::with_capacity(items.len());
        for item in items {
            let existing = match item.tree {
                Tree::Texts => self
                    .tree(Tree::Texts)
                    .get(item.key)
                    .map_err(|e| self.io(e))?,
                _ => None,
            };
            match (existing, packed(item.tree)) {
                (Some(value), _) => values.push(Some(value.to_vec())),
                (None, Some(kind)) => {
                    values.push(None);
                    to_write.push((kind, item.key, item.value));
                }
                (None, None) => values.push(Some(item.value.to_vec())),
            }
        }
        let mut written = self.packs.write_all(&to_write, true)?.into_iter();
        Ok(values
            .into_iter()
            .map(|value| value.or_else(|| written.next()).unwrap_or_default())
            .collect())
    }

    pub(crate) fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .tree(tree)
            .insert(key, value)
            .map_err(|e| self.io(e))?
            .is_none())
    }

    pub(crate) fn insert_new(
        &self,
        tree: Tree,
        key: &[u8],
        value: &[u8],
    ) -> Result<bool, StoreError> {
        Ok(self
            .tree(tree)
            .compare_and_swap(key, None::<&[u8]>, Some(value))
            .map_err(|e| self.io(e))?
            .is_ok())
    }

    pub(crate) fn remove(&self, tree: Tree, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .tree(tree)
            .remove(key)
            .map_err(|e| self.io(e))?
            .is_some())
    }

    pub(crate) fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        self.scan_range(tree, prefix.to_vec(), prefix_end(prefix), reverse, visit)
    }

    pub(crate) fn scan_range(
        &self,
        tree: Tree,
        low: Vec<u8>,
        high: Option<Vec<u8>>,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        let kind = packed(tree);
        let tree = self.tree(tree);
        let iter = match high {
            Some(end) => tree.range(low..end),
            None => tree.range(low..),
        };
        let mut step = |entry: sled::Result<(sled::IVec, sled::IVec)>| {
            let (key, value) = entry.map_err(|e| self.io(e))?;
            if let Some(kind) = kind {
                return visit(&key, &self.packs.resolve_as(kind, &key, &value)?);
            }
            visit(&key, &value)
        };
        if reverse {
            for entry in iter.rev() {
                if step(entry)?.is_break() {
                    break;
                }
            }
        } else {
            for entry in iter {
                if let ControlFlow::Break(()) = step(entry)? {
                    break;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn len(&self, tree: Tree) -> u64 {
        self.tree(tree).len() as u64
    }

    pub(crate) fn generate_id(&self) -> Result<u64, StoreError> {
        self.db.generate_id().map_err(|e| self.io(e))
    }

    pub(crate) fn transaction<T>(
        &self,
        what: &'static str,
        f: impl Fn(&mut Tx<'_, '_>) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let result = self.trees.as_slice().transaction(|trees| {
            let mut tx = Tx::Sled(trees);
            match f(&mut tx) {
                Ok(value) => Ok(value),
                Err(TxError::Sled(e)) => Err(e.into()),
                Err(TxError::Abort(reason)) => Err(ConflictableTransactionError::Abort(reason)),
                Err(TxError::Pg(e)) => Err(ConflictableTransactionError::Abort(e.to_string())),
            }
        });
        result.map_err(|err| match err {
            TransactionError::Abort(reason) => StoreError::Corrupt {
                path: self.path.clone(),
                what,
                reason,
            },
            TransactionError::Storage(source) => self.io(source),
        })
    }

    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.io(e))
    }

    pub(crate) fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk().map_err(|e| self.io(e))? + self.packs.size_on_disk()?)
    }
}

/// What the packs hold for a tree whose values are pack references.
pub(crate) fn packed(tree: Tree) -> Option<Packed> {
    match tree {
        Tree::Texts => Some(Packed::Text),
        Tree::Changes => Some(Packed::Change),
        _ => None,
    }
}
