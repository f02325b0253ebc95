//! The embedded backend: one sled tree per [`Tree`], and the version
//! texts in pack files beside them (see [`super::packs`]).

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::packs::Packs;
use super::{Tree, Tx, TxError, Visit, prefix_end};
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub(crate) struct SledKv {
    path: PathBuf,
    pub(crate) db: sled::Db,
    /// Indexed by [`Tree::index`]; the first is the default tree.
    trees: Vec<sled::Tree>,
    /// The texts that the `texts` tree refers to.
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

    /// A value; for `texts`, the text itself, read from its pack.
    pub(crate) fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(value) = self.tree(tree).get(key).map_err(|e| self.io(e))? else {
            return Ok(None);
        };
        match tree {
            Tree::Texts => self.packs.resolve(key, &value).map(Some),
            _ => Ok(Some(value.to_vec())),
        }
    }

    /// The value to write into `texts` for `key`: the text goes to a pack
    /// first, durably, unless the tree already holds it, and the reference
    /// is returned (or the value already there).
    pub(crate) fn stage_text(&self, key: &[u8], text: &[u8]) -> Result<Vec<u8>, StoreError> {
        if let Some(value) = self.tree(Tree::Texts).get(key).map_err(|e| self.io(e))? {
            return Ok(value.to_vec());
        }
        self.packs.write(key, text, true)
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
        let texts = tree == Tree::Texts;
        let tree = self.tree(tree);
        let iter = match high {
            Some(end) => tree.range(low..end),
            None => tree.range(low..),
        };
        let mut step = |entry: sled::Result<(sled::IVec, sled::IVec)>| {
            let (key, value) = entry.map_err(|e| self.io(e))?;
            if texts {
                return visit(&key, &self.packs.resolve(&key, &value)?);
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
