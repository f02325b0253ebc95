//! Backups: every tree of the store in one file, and a restore from it into
//! a fresh store.
//!
//! The file is a zstd stream of: a magic line, the archive version and the
//! store's format, then each tree (its name, then its keys and values,
//! length-prefixed), an end mark, and a BLAKE3 checksum of everything
//! before it. A backup holds the store's transaction gate for writing while
//! it reads, so it never sees half of a multi-tree transaction (a snapshot,
//! its change record and the briefings it owes are all in or all out).
//!
//! The `texts` and `changes` trees are written with the texts and records
//! themselves, read from the store's pack files (see `kv::packs`), so an
//! archive holds every one whatever the layout it came from; a restore
//! writes them into new packs.
//!
//! A restore writes into `store.sled.restoring` beside the store, checks
//! the checksum, and only then moves the old store aside (to
//! `store.sled.before-restore-TIME`) and the new one into place.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{FORMAT_VERSION, Store, StoreError};

/// The first bytes of every backup.
const MAGIC: &[u8; 16] = b"tidings-backup\n\0";
/// The layout of the file; a newer one is refused.
const ARCHIVE_VERSION: u32 = 1;
/// The longest key or value read back (sled itself has no smaller limit;
/// this only stops a damaged length from asking for all memory).
const MAX_FIELD: u32 = 1 << 30;

/// A backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The backup file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The backup file, or the store directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a backup this tidings can read.
    #[error("{path}: not a usable tidings backup: {reason}")]
    Format {
        /// The backup file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store is PostgreSQL, which has its own backups.
    #[error("the store is the database {url}: back it up with pg_dump (see docs/postgres.md)")]
    Shared {
        /// The URL, without a password.
        url: String,
    },
    /// The store to restore into is open in another process (the daemon).
    #[error(
        "the store in {path} is in use (is the daemon running? stop it first: systemctl stop tidings)"
    )]
    Live {
        /// The state directory.
        path: PathBuf,
    },
}

/// What a backup held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupSummary {
    /// Trees written or read.
    pub trees: usize,
    /// Keys across every tree.
    pub entries: u64,
    /// Where the store that a restore replaced was moved.
    pub moved_aside: Option<PathBuf>,
}

/// Writes bytes through the compressor and the checksum.
struct Out<W: Write> {
    inner: W,
    hash: blake3::Hasher,
}

impl<W: Write> Out<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.inner.write_all(bytes)
    }

    fn field(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(bytes.len())
            .map_err(|_| std::io::Error::other("a key or value over 4 GiB"))?;
        self.put(&len.to_be_bytes())?;
        self.put(bytes)
    }
}

/// Reads bytes through the decompressor and the checksum.
struct In<R: Read> {
    inner: R,
    hash: blake3::Hasher,
}

impl<R: Read> In<R> {
    fn take(&mut self, len: usize) -> std::io::Result<Vec<u8>> {
        let mut bytes = vec![0; len];
        self.inner.read_exact(&mut bytes)?;
        self.hash.update(&bytes);
        Ok(bytes)
    }

    fn u32(&mut self) -> std::io::Result<u32> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn field(&mut self) -> std::io::Result<Vec<u8>> {
        let len = self.u32()?;
        if len > MAX_FIELD {
            return Err(std::io::Error::other(format!("a field of {len} bytes")));
        }
        self.take(len as usize)
    }
}

impl Store {
    /// Holds the gate for one multi-tree transaction.
    pub(super) fn transaction_gate(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes every tree to `out` as one consistent backup. `label` names
    /// the destination in errors.
    pub fn backup_to(&self, out: impl Write, label: &Path) -> Result<BackupSummary, BackupError> {
        let io = |source| BackupError::Io {
            path: label.to_path_buf(),
            source,
        };
        let encoder = zstd::Encoder::new(out, 3).map_err(io)?;
        let mut out = Out {
            inner: encoder,
            hash: blake3::Hasher::new(),
        };
        let mut summary = BackupSummary::default();
        {
            // No transaction commits while the trees are read.
            let _gate = self
                .gate
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            out.put(MAGIC).map_err(io)?;
            out.put(&ARCHIVE_VERSION.to_be_bytes()).map_err(io)?;
            out.put(&FORMAT_VERSION.to_be_bytes()).map_err(io)?;
            let super::Kv::Sled(kv) = &self.kv else {
                return Err(BackupError::Shared {
                    url: self.path.display().to_string(),
                });
            };
            let db = &kv.db;
            let default_name = db.name();
            for name in db.tree_names() {
                let tree = if name == default_name {
                    (**db).clone()
                } else {
                    db.open_tree(&name).map_err(|e| StoreError::Io {
                        path: self.path.clone(),
                        source: e,
                    })?
                };
                out.put(b"T").map_err(io)?;
                // The default tree is written with an empty name.
                out.field(if name == default_name { &[] } else { &name })
                    .map_err(io)?;
                let packed = packed_tree(&name);
                for entry in tree.iter() {
                    let (key, value) = entry.map_err(|e| StoreError::Io {
                        path: self.path.clone(),
                        source: e,
                    })?;
                    out.put(b"E").map_err(io)?;
                    out.field(&key).map_err(io)?;
                    match packed {
                        Some(tree) => out.field(&kv.resolve(tree, &key, &value)?).map_err(io)?,
                        None => out.field(&value).map_err(io)?,
                    }
                    summary.entries += 1;
                }
                summary.trees += 1;
            }
        }
        out.put(b".").map_err(io)?;
        let checksum = out.hash.finalize();
        out.inner.write_all(checksum.as_bytes()).map_err(io)?;
        let mut inner = out.inner.finish().map_err(io)?;
        inner.flush().map_err(io)?;
        Ok(summary)
    }

    /// Restores the backup read from `input` as the store in `dir`. The
    /// store there, if any, must not be open anywhere; it is kept, moved
    /// aside. `label` names the backup in errors.
    pub fn restore_from(
        dir: &Path,
        input: impl Read,
        label: &Path,
    ) -> Result<BackupSummary, BackupError> {
        let target = dir.join("store.sled");
        let staging = dir.join("store.sled.restoring");
        let dir_io = |source| BackupError::Io {
            path: dir.to_path_buf(),
            source,
        };
        if target.exists() {
            // Opening takes sled's lock: it fails while the daemon holds it.
            match Store::open(dir) {
                Ok(store) => drop(store),
                Err(StoreError::Open { .. }) => {
                    return Err(BackupError::Live {
                        path: dir.to_path_buf(),
                    });
                }
                Err(other) => return Err(other.into()),
            }
        }
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(dir_io)?;
        }
        let summary = match read_into(&staging, input, label) {
            Ok(summary) => summary,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(error);
            }
        };
        let moved_aside = if target.exists() {
            let aside = dir.join(format!(
                "store.sled.before-restore-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            ));
            std::fs::rename(&target, &aside).map_err(dir_io)?;
            Some(aside)
        } else {
            None
        };
        std::fs::rename(&staging, &target).map_err(dir_io)?;
        Ok(BackupSummary {
            moved_aside,
            ..summary
        })
    }
}

/// The first bytes of a zstd frame.
const ZSTD_FRAME: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// The tree of this name if its values live in packs on sled.
fn packed_tree(name: &[u8]) -> Option<super::kv::Tree> {
    [super::kv::Tree::Texts, super::kv::Tree::Changes]
        .into_iter()
        .find(|tree| tree.name().as_bytes() == name)
}

/// Reads a backup into a new sled database at `path`.
fn read_into(path: &Path, input: impl Read, label: &Path) -> Result<BackupSummary, BackupError> {
    let format = |reason: String| BackupError::Format {
        path: label.to_path_buf(),
        reason,
    };
    let broken = |e: std::io::Error| format(format!("cut short or damaged ({e})"));
    let decoder = zstd::Decoder::new(input).map_err(broken)?;
    let mut input = In {
        inner: decoder,
        hash: blake3::Hasher::new(),
    };
    if input.take(MAGIC.len()).map_err(broken)? != MAGIC {
        return Err(format("it does not start as one".to_owned()));
    }
    let version = input.u32().map_err(broken)?;
    if version > ARCHIVE_VERSION {
        return Err(format(format!(
            "archive version {version} is newer than this tidings reads ({ARCHIVE_VERSION})"
        )));
    }
    let store_format = input.u32().map_err(broken)?;
    if store_format > FORMAT_VERSION {
        return Err(format(format!(
            "it holds a store of format {store_format}; this tidings reads format {FORMAT_VERSION} or older"
        )));
    }
    let db = sled::Config::new()
        .path(path)
        .open()
        .map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    let store_io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Texts and change records go to packs, as a store of this build keeps
    // them; synced once at the end, before sled's flush makes their
    // references durable.
    let packs = super::kv::Packs::open(path.join("texts"))?;
    let mut packed = 0u64;
    let mut in_packs = None;
    let mut summary = BackupSummary::default();
    let mut tree: Option<sled::Tree> = None;
    loop {
        let mark = input.take(1).map_err(broken)?;
        match mark[0] {
            b'T' => {
                let name = input.field().map_err(broken)?;
                in_packs = packed_tree(&name).and_then(super::kv::packed);
                tree = Some(if name.is_empty() {
                    (*db).clone()
                } else {
                    db.open_tree(&name).map_err(store_io)?
                });
                summary.trees += 1;
            }
            b'E' => {
                let key = input.field().map_err(broken)?;
                let value = input.field().map_err(broken)?;
                let Some(tree) = &tree else {
                    return Err(format("an entry before any tree".to_owned()));
                };
                // A text or a compressed change record is a zstd frame;
                // anything else (a reference, from a hand-made archive, or a
                // change record from before compression) is kept as it is
                // and checked on read.
                let value = match in_packs {
                    Some(kind) if value.starts_with(&ZSTD_FRAME) => {
                        packed += 1;
                        packs
                            .write_all(&[(kind, &key, &value)], false)?
                            .pop()
                            .unwrap_or_default()
                    }
                    _ => value,
                };
                tree.insert(key, value).map_err(store_io)?;
                summary.entries += 1;
            }
            b'.' => break,
            other => return Err(format(format!("unexpected mark {other:#04x}"))),
        }
    }
    let expected = input.hash.finalize();
    let mut found = [0u8; 32];
    input.inner.read_exact(&mut found).map_err(broken)?;
    if found != *expected.as_bytes() {
        return Err(format(
            "the checksum does not match: the file is damaged".to_owned(),
        ));
    }
    if packed > 0 {
        packs.sync()?;
        // The store now keeps texts (and change records) in packs, whatever
        // format the archive came from: an older tidings must refuse it.
        db.insert("format", &FORMAT_VERSION.to_be_bytes())
            .map_err(store_io)?;
    }
    db.flush().map_err(store_io)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{Block, BlockKind};
    use crate::core::subscriptions::{Cadence, Subscriber};

    fn subscriber(address: &str) -> Subscriber {
        Subscriber {
            address: address.to_owned(),
            name: "Ada".to_owned(),
            watches: vec!["a".to_owned()],
            tags: Vec::new(),
            kinds: Vec::new(),
            cadence: Cadence::Immediate,
            confirmed: true,
            consent_at: None,
            consent_source: None,
            created: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_backup_restores_every_tree_and_keeps_the_old_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("source");
        let store = Store::open(&source).expect("store");
        store
            .put_subscriber(&subscriber("ada@example.org"))
            .expect("put");
        store.pause_watch("a", chrono::Utc::now()).expect("pause");
        let text = vec![Block::new(BlockKind::Paragraph, "Kept in a pack")];
        let version = crate::store::NewVersion {
            seen_at: chrono::Utc::now(),
            blocks: &text,
            extractor_version: 1,
            change: None,
            facts: None,
            notify: None,
        };
        store
            .commit_version("a", &version, &crate::store::WatchState::default())
            .expect("commit");
        let changed = vec![Block::new(BlockKind::Paragraph, "Changed in a pack")];
        let detail = serde_json::json!({"added": ["Changed"]});
        let second = crate::store::NewVersion {
            blocks: &changed,
            change: Some(crate::store::NewChange {
                changed_words: 2,
                detail: serde_json::value::to_raw_value(&detail).expect("json"),
            }),
            ..version.clone()
        };
        store
            .commit_version("a", &second, &crate::store::WatchState::default())
            .expect("commit a change");
        assert!(source.join("store.sled/texts/pack-00000001").exists());
        let mut bytes = Vec::new();
        let written = store
            .backup_to(&mut bytes, Path::new("mem"))
            .expect("backup");
        assert!(written.entries >= 3, "{written:?}");

        let target = dir.path().join("target");
        let old = Store::open(&target).expect("old store");
        old.put_subscriber(&subscriber("old@example.org"))
            .expect("put");
        assert!(matches!(
            Store::restore_from(&target, bytes.as_slice(), Path::new("mem")),
            Err(BackupError::Live { .. })
        ));
        drop(old);
        let read =
            Store::restore_from(&target, bytes.as_slice(), Path::new("mem")).expect("restore");
        assert_eq!((read.trees, read.entries), (written.trees, written.entries));
        assert!(read.moved_aside.as_ref().is_some_and(|p| p.exists()));
        let restored = Store::open(&target).expect("open restored");
        assert!(
            restored
                .subscriber("ada@example.org")
                .expect("read")
                .is_some()
        );
        assert!(
            restored
                .subscriber("old@example.org")
                .expect("read")
                .is_none()
        );
        assert!(restored.paused_since("a").expect("read").is_some());
        // The text came through the archive into a pack of the new store.
        assert!(target.join("store.sled/texts/pack-00000001").exists());
        let (_, restored_text) = restored.latest("a").expect("latest").expect("some");
        assert_eq!(restored_text, changed);
        let first = restored.version("a", 1).expect("read").expect("some");
        assert_eq!(restored.text(&first).expect("text"), text);
        // So did the change record, read back from the new store's pack.
        let change = restored.change("a", 2).expect("read").expect("some");
        assert_eq!(change.detail, detail);

        let mut damaged = bytes.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0xff;
        drop(restored);
        let error = Store::restore_from(&target, damaged.as_slice(), Path::new("bad"))
            .expect_err("damaged");
        assert!(matches!(error, BackupError::Format { .. }), "{error}");
        assert!(!target.with_extension("sled.restoring").exists());
        let error = Store::restore_from(&target, &b"hello"[..], Path::new("txt"))
            .expect_err("not a backup");
        assert!(
            error.to_string().contains("not a usable tidings backup"),
            "{error}"
        );
    }
}
