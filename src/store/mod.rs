//! Durable state: the only module that knows sled and PostgreSQL.
//!
//! The records live in named trees behind [`kv`]: an embedded sled
//! database in the state directory (the default, one process), or a
//! PostgreSQL database that several nodes share.
//!
//! What is kept:
//! - per watch, its [`WatchState`]: validators for conditional GET, the last
//!   check, the last error, the latest version;
//! - every snapshot version of every watch ([`VersionInfo`]);
//! - snapshot texts, stored once per distinct content (keyed by a BLAKE3 hash)
//!   and compressed with zstd;
//! - the facts read from each snapshot text, beside the text;
//! - the change record that led to each version after the first.
//!
//! Every record written here is a store-private type carrying a format
//! version (`"v"`), so the domain types in `model` can change without
//! breaking stores on disk. A snapshot, its change record and the watch's new
//! state are committed in one transaction: a kill at any point leaves
//! either all of them or none.

use std::path::{Path, PathBuf};

use crate::core::model::Block;
use chrono::{DateTime, Utc};

mod backup;
mod commit;
mod copy;
pub(crate) mod kv;
mod nodes;
mod outbox;
mod paused;
mod reads;
mod records;
mod subscribers;

use kv::{Kv, Tree};
use records::*;

pub use crate::core::subscriptions::{Cadence, Subscriber, Suppression, normalise_address};
pub use backup::{BackupError, BackupSummary};
pub use commit::PreparedVersion;
pub use copy::CopySummary;
pub use kv::pg::redact as redact_url;
pub use nodes::{CheckClaim, Node, NodeRow, hostname};
pub use outbox::{
    Delivery, DeliveryState, DigestEntry, Item, Notify, Prepared, Purged, Recipient, change_key,
    digest_delivery_key,
};
pub use subscribers::Forgotten;

/// The newest on-disk layout this build reads, and the one it writes on
/// sled. A store with a newer layout is refused rather than misread.
///
/// 1: every text inside sled's `texts` tree. 2 (sled only): texts in pack
/// files, the tree holding references (older texts stay inline and still
/// read). 3 (sled only): change records in packs too, the `changes` tree
/// holding references (older records stay inline and still read). An older
/// sled store is marked 3 when this build opens it, so an older tidings
/// refuses it instead of misreading a reference as a record.
const FORMAT_VERSION: u32 = 3;
/// The layout PostgreSQL stores are written in: unchanged by packs, so
/// nodes of an older build can share the database.
const PG_FORMAT_VERSION: u32 = 1;
/// zstd level 1: page text still compresses about 3.5:1, at half the CPU of
/// zstd's default level, which matters on a first pass over a thousand pages.
const ZSTD_LEVEL: i32 = 1;
/// How often a commit stages its entries again when the watch's latest
/// version moved under it (another writer committed to the same watch, which
/// the daemon's one-check-per-watch rule and leases make rare). Each retry
/// follows another writer's commit, so the bound is only against a store
/// that keeps changing without end.
const COMMIT_ATTEMPTS: usize = 10_000;
/// sled's page cache. Its default (1 GiB) is far more than a monitor of a few
/// thousand pages needs; the store is read a few records per check.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// A store operation that failed. Each names the store's path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled could not open the database (it is in use, or damaged).
    #[error("cannot open store at {path}: {source}")]
    Open {
        /// The store directory.
        path: PathBuf,
        /// What sled said.
        source: sled::Error,
    },
    /// A read or write failed.
    #[error("store at {path}: {source}")]
    Io {
        /// The store directory.
        path: PathBuf,
        /// What sled said.
        source: sled::Error,
    },
    /// A record could not be decoded: the store was written by a newer
    /// tidings, or is damaged.
    #[error("store at {path}: unreadable {what} record: {reason}")]
    Corrupt {
        /// The store directory.
        path: PathBuf,
        /// Which kind of record.
        what: &'static str,
        /// Why it could not be read.
        reason: String,
    },
    /// sled failed inside (it panicked) while opening or reading the store:
    /// its files are damaged.
    #[error("store damaged: {path}: {detail} (restore from backup or move it aside)")]
    Damaged {
        /// The store directory.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// PostgreSQL refused or failed (the server is unreachable, the
    /// password is wrong, a statement failed).
    #[error("database {url}: {detail}")]
    Database {
        /// The URL, without a password.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The database's schema is older than this tidings writes.
    #[error(
        "database {url} has schema version {found}; this tidings needs {wanted}: run `tidings store migrate`"
    )]
    SchemaBehind {
        /// The URL, without a password.
        url: String,
        /// The version found.
        found: i32,
        /// The version this build writes.
        wanted: i32,
    },
    /// The database's schema is newer than this tidings knows.
    #[error(
        "database {url} has schema version {found}, newer than this tidings ({wanted}): upgrade tidings on this machine"
    )]
    SchemaTooNew {
        /// The URL, without a password.
        url: String,
        /// The version found.
        found: i32,
        /// The version this build writes.
        wanted: i32,
    },
    /// A version text kept outside sled, in a pack file of the store
    /// directory, could not be written or read back.
    #[error("store text file {path}: {detail}")]
    TextFile {
        /// The pack file (or the directory of packs).
        path: PathBuf,
        /// What is wrong, and what to do.
        detail: String,
    },
    /// The store was written by a newer tidings.
    #[error(
        "store at {path} has format {found}; this tidings reads format {FORMAT_VERSION} or older"
    )]
    TooNew {
        /// The store directory.
        path: PathBuf,
        /// The format found on disk.
        found: u32,
    },
}

/// What tidings remembers about one watch between checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchState {
    /// `ETag` of the last good fetch.
    pub etag: Option<String>,
    /// `Last-Modified` of the last good fetch.
    pub last_modified: Option<String>,
    /// When the watch was last checked, successfully or not.
    pub last_check: Option<DateTime<Utc>>,
    /// When a check last succeeded.
    pub last_success: Option<DateTime<Utc>>,
    /// When a change was last recorded.
    pub last_change: Option<DateTime<Utc>>,
    /// The last failure's message, cleared by a success.
    pub last_error: Option<String>,
    /// Failed checks since the last success.
    pub consecutive_failures: u32,
    /// The newest stored version, if any.
    pub latest_version: Option<u64>,
    /// A fetched text held back until a later fetch confirms it (a sudden
    /// loss of most of the text, or a flip back to a recent version).
    pub suspect: Option<Suspect>,
    /// Whether the admin has been told this watch keeps failing (so they are
    /// told once, and again only when it recovers).
    pub failure_alerted: bool,
}

/// A text held back for confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspect {
    /// Hash of the held text ([`text_hash`]).
    pub hash: String,
    /// Why it was held.
    pub reason: String,
    /// When it was first seen.
    pub since: DateTime<Utc>,
    /// How many fetches in a row have returned it.
    pub seen: u32,
}

/// One stored version of a watch's text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VersionInfo {
    /// 1 for the first version, counting up.
    pub number: u64,
    /// When this text was fetched.
    pub seen_at: DateTime<Utc>,
    /// BLAKE3 hash of the text, in hex.
    pub hash: String,
    /// Bytes of rendered text.
    pub text_bytes: u64,
    /// Number of blocks.
    pub blocks: u64,
    /// The extractor that produced the text.
    pub extractor_version: u32,
    /// Words added plus removed relative to the previous version, if any.
    pub changed_words: Option<u64>,
}

/// The change that led to a version, as the pipeline described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// The version before the change.
    pub from_version: u64,
    /// The version the change produced.
    pub to_version: u64,
    /// When the change was detected.
    pub detected_at: DateTime<Utc>,
    /// Words added plus removed.
    pub changed_words: u64,
    /// The pipeline's description of the change, as JSON. The store keeps it
    /// opaque so that it never depends on the diff's types.
    pub detail: serde_json::Value,
}

/// A new version to commit.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    /// When the text was fetched.
    pub seen_at: DateTime<Utc>,
    /// The text.
    pub blocks: &'a [Block],
    /// The extractor that produced it.
    pub extractor_version: u32,
    /// The change from the previous version, if there was one.
    pub change: Option<NewChange>,
    /// The facts read from the text, with the version of the reader that
    /// produced them. Kept opaque, as the change detail is.
    pub facts: Option<(u32, serde_json::Value)>,
    /// Who is to be told about the change, written in the same transaction
    /// as the snapshot so that no briefing can be lost between the two.
    /// Ignored without a `change`.
    pub notify: Option<Notify>,
}

/// The change part of a [`NewVersion`].
#[derive(Debug, Clone)]
pub struct NewChange {
    /// Words added plus removed.
    pub changed_words: u64,
    /// The pipeline's description of the change, as JSON: written as it
    /// is into the change record (read back as a `serde_json::Value`).
    pub detail: Box<serde_json::value::RawValue>,
}

/// Storage statistics, for `tidings history` and the growth benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Watches with any state.
    pub watches: u64,
    /// Versions across all watches.
    pub versions: u64,
    /// Distinct snapshot texts.
    pub texts: u64,
    /// Bytes on disk (sled's own figure, or PostgreSQL's size of the
    /// table and its index).
    pub disk_bytes: u64,
}

/// The store: its records, kept by an embedded sled database or by
/// PostgreSQL (see [`kv`]).
#[derive(Debug, Clone)]
pub struct Store {
    /// The state directory (sled), or the database URL without its
    /// password (PostgreSQL): what messages name.
    path: PathBuf,
    kv: Kv,
    /// The node this process is, on a shared store (see [`nodes`]).
    node: Option<std::sync::Arc<Node>>,
    /// Held for reading by every multi-tree transaction and for writing
    /// by a backup, so that a backup never sees half of one.
    gate: std::sync::Arc<std::sync::RwLock<()>>,
}

/// The text of a caught panic, for an error message.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .path(dir.join("store.sled"))
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(500));
        let packs = kv::Packs::open(dir.join("store.sled").join("texts"))?;
        Self::from_config(dir, &config, packs)
    }

    /// A store that lives in a temporary directory and vanishes on drop.
    pub fn temporary() -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .temporary(true)
            .cache_capacity(CACHE_BYTES);
        Self::from_config(Path::new("<temporary>"), &config, kv::Packs::temporary()?)
    }

    fn from_config(
        dir: &Path,
        config: &sled::Config,
        packs: kv::Packs,
    ) -> Result<Self, StoreError> {
        // sled indexes its files without checking them, so a damaged file
        // makes it panic rather than return an error. That panic is caught
        // here and reported as what it is, with what to do about it; sled's
        // own corruption errors say the same.
        // The panic is reported as an error, so sled's own panic message
        // (an index out of bounds deep in its recovery) is kept off the
        // terminal while the store opens.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::open_trees(dir, config, packs)
        }));
        std::panic::set_hook(hook);
        match opened {
            Ok(Err(StoreError::Open {
                path,
                source: sled::Error::Corruption { .. },
            })) => Err(StoreError::Damaged {
                path,
                detail: "sled found corrupt data".to_owned(),
            }),
            Ok(result) => result,
            Err(panic) => Err(StoreError::Damaged {
                path: dir.to_path_buf(),
                detail: format!(
                    "reading it failed inside sled ({})",
                    panic_message(panic.as_ref())
                ),
            }),
        }
    }

    fn open_trees(dir: &Path, config: &sled::Config, packs: kv::Packs) -> Result<Self, StoreError> {
        let path = dir.to_path_buf();
        // sled drops what it cannot read back when it recovers a damaged
        // file, which would make a damaged store look new and empty: a
        // store whose file has data has a format record, or it is damaged.
        let had_data =
            std::fs::metadata(dir.join("store.sled").join("db")).is_ok_and(|meta| meta.len() > 0);
        let db = config.open().map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let store = Self {
            kv: Kv::Sled(kv::SledKv::new(path.clone(), db, packs)?),
            node: None,
            gate: std::sync::Arc::default(),
            path,
        };
        store.check_format(had_data)?;
        Ok(store)
    }

    /// Opens the PostgreSQL store at `settings.url`. With `migrate`, an
    /// older schema is brought up to date first (as `run` does at start);
    /// without, it is refused with what to run.
    pub fn open_postgres(
        settings: &crate::config::PostgresSettings,
        migrate: bool,
    ) -> Result<Self, StoreError> {
        let password = settings
            .read_password()
            .map_err(|detail| StoreError::Database {
                url: kv::pg::redact(&settings.url),
                detail,
            })?;
        let pg = kv::PgKv::open(
            &kv::PgSettings {
                url: settings.url.clone(),
                password,
            },
            migrate,
        )?;
        let store = Self {
            path: PathBuf::from(pg.label()),
            kv: Kv::Pg(pg),
            node: None,
            gate: std::sync::Arc::default(),
        };
        store.check_format(false)?;
        Ok(store)
    }

    /// Brings the PostgreSQL schema up to date; returns the versions
    /// before and after.
    pub fn migrate_postgres(
        settings: &crate::config::PostgresSettings,
    ) -> Result<(i32, i32), StoreError> {
        let password = settings
            .read_password()
            .map_err(|detail| StoreError::Database {
                url: kv::pg::redact(&settings.url),
                detail,
            })?;
        kv::PgKv::migrate_only(&kv::PgSettings {
            url: settings.url.clone(),
            password,
        })
    }

    /// Opens the store a config names: sled in its state directory, or
    /// PostgreSQL. `migrate` as for [`Store::open_postgres`].
    pub fn open_configured(
        config: &crate::config::Config,
        migrate: bool,
    ) -> Result<Self, StoreError> {
        match &config.store {
            crate::config::StoreBackend::Sled => Self::open(&config.state_dir),
            crate::config::StoreBackend::Postgres(settings) => {
                Self::open_postgres(settings, migrate)
            }
        }
    }

    /// Whether this store is PostgreSQL (shared by every node) rather than
    /// embedded (held by one process).
    pub fn is_shared(&self) -> bool {
        matches!(self.kv, Kv::Pg(_))
    }

    fn check_format(&self, had_data: bool) -> Result<(), StoreError> {
        let writes = match self.kv {
            Kv::Sled(_) => FORMAT_VERSION,
            Kv::Pg(_) => PG_FORMAT_VERSION,
        };
        match self.kv.get(Tree::Meta, b"format")? {
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_be_bytes)
                    .map_err(|_| self.corrupt("format", "not a 4-byte number"))?;
                if found > FORMAT_VERSION {
                    return Err(StoreError::TooNew {
                        path: self.path.clone(),
                        found,
                    });
                }
                if found < writes {
                    // Texts written from now on go to packs: mark the store
                    // so that an older tidings refuses it.
                    self.kv
                        .insert(Tree::Meta, b"format", &writes.to_be_bytes())?;
                    self.kv.flush()?;
                }
            }
            None if had_data => {
                return Err(StoreError::Damaged {
                    path: self.path.clone(),
                    detail: "its records could not be read back (sled recovered none of them)"
                        .to_owned(),
                });
            }
            None => {
                self.kv
                    .insert_new(Tree::Meta, b"format", &writes.to_be_bytes())?;
                // Durable at once, so that a store killed in its first
                // moments is never taken for a damaged one.
                self.kv.flush()?;
            }
        }
        Ok(())
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state of a watch, or the default for one never checked.
    pub fn watch_state(&self, watch: &str) -> Result<WatchState, StoreError> {
        match self.kv.get(Tree::Watches, watch.as_bytes())? {
            Some(bytes) => Ok(decode::<WatchRecord>(&bytes)
                .map_err(|reason| self.corrupt("watch", reason))?
                .into()),
            None => Ok(WatchState::default()),
        }
    }

    /// Names of all watches the store has state for, sorted.
    pub fn watch_names(&self) -> Result<Vec<String>, StoreError> {
        self.kv
            .collect(Tree::Watches, b"")?
            .into_iter()
            .map(|(key, _)| {
                String::from_utf8(key).map_err(|_| self.corrupt("watch", "name is not UTF-8"))
            })
            .collect()
    }

    /// Records a check that stored no new version (unchanged, not modified,
    /// or failed).
    pub fn record_check(&self, watch: &str, state: &WatchState) -> Result<(), StoreError> {
        let bytes = encode(&WatchRecord::from(state));
        self.kv.insert(Tree::Watches, watch.as_bytes(), &bytes)?;
        Ok(())
    }

    /// All versions of a watch, oldest first.
    pub fn history(&self, watch: &str) -> Result<Vec<VersionInfo>, StoreError> {
        self.kv
            .collect(Tree::Versions, &watch_prefix(watch))?
            .into_iter()
            .map(|(key, value)| {
                let number =
                    number_from_key(&key).ok_or_else(|| self.corrupt("version", "bad key"))?;
                let record: VersionRecord =
                    decode(&value).map_err(|reason| self.corrupt("version", reason))?;
                Ok(record.into_info(number))
            })
            .collect()
    }

    /// One version's record, if it exists.
    pub fn version(&self, watch: &str, number: u64) -> Result<Option<VersionInfo>, StoreError> {
        self.kv
            .get(Tree::Versions, &version_key(watch, number))?
            .map(|value| {
                decode::<VersionRecord>(&value)
                    .map(|record| record.into_info(number))
                    .map_err(|reason| self.corrupt("version", reason))
            })
            .transpose()
    }

    /// The text of a version.
    pub fn text(&self, version: &VersionInfo) -> Result<Vec<Block>, StoreError> {
        let hash = blake3::Hash::from_hex(&version.hash)
            .map_err(|e| self.corrupt("version", format!("bad hash: {e}")))?;
        let compressed = self
            .kv
            .get(Tree::Texts, hash.as_bytes())?
            .ok_or_else(|| self.corrupt("text", format!("text {} is missing", version.hash)))?;
        let json = decompress(&compressed)
            .map_err(|e| self.corrupt("text", format!("decompression failed: {e}")))?;
        if let Some(blocks) = text_record_blocks(&json) {
            return Ok(blocks);
        }
        let record: TextRecordIn<'_> =
            serde_json::from_slice(&json).map_err(|e| self.corrupt("text", e.to_string()))?;
        record
            .into_blocks()
            .map_err(|reason| self.corrupt("text", reason))
    }

    /// The facts stored beside a version's text, with the version of the
    /// reader that produced them.
    pub fn facts(
        &self,
        version: &VersionInfo,
    ) -> Result<Option<(u32, serde_json::Value)>, StoreError> {
        let hash = blake3::Hash::from_hex(&version.hash)
            .map_err(|e| self.corrupt("version", format!("bad hash: {e}")))?;
        self.kv
            .get(Tree::Facts, hash.as_bytes())?
            .map(|bytes| {
                decode::<FactsRecord>(&bytes)
                    .map(|record| (record.facts_version, record.facts))
                    .map_err(|reason| self.corrupt("facts", reason))
            })
            .transpose()
    }

    /// The latest version and its text, if the watch has any.
    pub fn latest(&self, watch: &str) -> Result<Option<(VersionInfo, Vec<Block>)>, StoreError> {
        self.latest_of(watch, self.watch_state(watch)?.latest_version)
    }

    /// [`Store::latest`] for a caller that has just read the watch's state
    /// (`latest` is its `latest_version`), so it is not read again.
    pub fn latest_of(
        &self,
        watch: &str,
        latest: Option<u64>,
    ) -> Result<Option<(VersionInfo, Vec<Block>)>, StoreError> {
        let Some(number) = latest else {
            return Ok(None);
        };
        let Some(info) = self.version(watch, number)? else {
            return Err(self.corrupt(
                "watch",
                format!("latest version {number} of `{watch}` is missing"),
            ));
        };
        let blocks = self.text(&info)?;
        Ok(Some((info, blocks)))
    }

    /// The change record that produced a version, if it was a change.
    pub fn change(&self, watch: &str, number: u64) -> Result<Option<ChangeRecord>, StoreError> {
        self.kv
            .get(Tree::Changes, &version_key(watch, number))?
            .map(|value| {
                decode::<ChangeRecordV1>(&value)
                    .map(ChangeRecord::from)
                    .map_err(|reason| self.corrupt("change", reason))
            })
            .transpose()
    }

    /// Counts and size on disk.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        Ok(StoreStats {
            watches: self.kv.len(Tree::Watches)?,
            versions: self.kv.len(Tree::Versions)?,
            texts: self.kv.len(Tree::Texts)?,
            disk_bytes: self.kv.size_on_disk()?,
        })
    }

    /// Writes everything to disk. Called at the end of every command and
    /// before a check is reported as done.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.kv.flush()
    }

    fn corrupt(&self, what: &'static str, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what,
            reason: reason.into(),
        }
    }
}

/// The hash a text is stored under, in hex: lets the pipeline recognise a
/// text it has seen before without reading it back.
pub fn text_hash(blocks: &[Block]) -> String {
    // The JSON streamed through a buffer into the hasher, never held whole:
    // the same bytes as `text_json`, and the hasher gets them in large
    // pieces, which it hashes several chunks at a time.
    let mut hasher = blake3::Hasher::new();
    let mut buffered = std::io::BufWriter::with_capacity(16 * 1024, &mut hasher);
    // Writing into a hasher cannot fail.
    let _ = write_text_record(&mut buffered, blocks);
    let _ = std::io::Write::flush(&mut buffered);
    drop(buffered);
    hasher.finalize().to_hex().to_string()
}

fn text_json(blocks: &[Block]) -> Vec<u8> {
    // Borrowed, not a copy of every block's text, into a buffer sized for
    // the whole record up front (`{"k":"li","t":""},` is 19 bytes besides
    // the text), since this runs over every page a check stores.
    let size = 20 + blocks.iter().map(|b| b.text.len() + 24).sum::<usize>();
    let mut json = Vec::with_capacity(size);
    // Writing into a Vec cannot fail.
    let _ = write_text_record(&mut json, blocks);
    json
}

/// A zstd frame decompressed in one call into a buffer of the size its
/// header states (every text written by `commit_version` states it), or
/// streamed when it does not.
fn decompress(compressed: &[u8]) -> std::io::Result<Vec<u8>> {
    /// A stated size past this is not trusted for one allocation.
    const MOST: u64 = 256 << 20;
    match zstd::zstd_safe::get_frame_content_size(compressed) {
        Ok(Some(size)) if size <= MOST => {
            let size = usize::try_from(size).unwrap_or(0);
            zstd::bulk::decompress(compressed, size)
                .or_else(|_| zstd::stream::decode_all(compressed))
        }
        _ => zstd::stream::decode_all(compressed),
    }
}

fn watch_prefix(watch: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(watch.len() + 1);
    key.extend_from_slice(watch.as_bytes());
    // Watch names cannot contain NUL (config validation), so "a\0" never
    // prefixes the versions of a watch called "ab".
    key.push(0);
    key
}

fn version_key(watch: &str, number: u64) -> Vec<u8> {
    let mut key = watch_prefix(watch);
    // Big-endian so that sled's byte order is version order.
    key.extend_from_slice(&number.to_be_bytes());
    key
}

fn number_from_key(key: &[u8]) -> Option<u64> {
    let tail = key.get(key.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::BlockKind;

    /// List items of these texts; the store's other test modules share it.
    pub(super) fn blocks(texts: &[&str]) -> Vec<Block> {
        texts
            .iter()
            .map(|t| Block::new(BlockKind::ListItem, *t))
            .collect()
    }

    fn commit(store: &Store, watch: &str, text: &[Block], change: Option<NewChange>) -> u64 {
        let version = NewVersion {
            seen_at: Utc::now(),
            blocks: text,
            extractor_version: 1,
            change,
            facts: Some((1, serde_json::json!(["fact"]))),
            notify: None,
        };
        store
            .commit_version(watch, &version, &WatchState::default())
            .expect("commit")
    }

    #[test]
    fn versions_count_up_and_texts_round_trip() {
        let store = Store::temporary().expect("store");
        let first = blocks(&["Allerdale", "Eden"]);
        let second = vec![
            Block::new(BlockKind::Heading { level: 2 }, "Places"),
            Block::new(BlockKind::ListItem, "Allerdale"),
        ];
        assert_eq!(commit(&store, "wnec", &first, None), 1);
        let change = NewChange {
            changed_words: 1,
            detail: serde_json::value::to_raw_value(&serde_json::json!({"removed": ["Eden"]}))
                .expect("json"),
        };
        assert_eq!(commit(&store, "wnec", &second, Some(change)), 2);

        let history = store.history("wnec").expect("history");
        assert_eq!(history.iter().map(|v| v.number).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(store.text(&history[0]).expect("text"), first);
        let (latest, text) = store.latest("wnec").expect("latest").expect("some");
        assert_eq!(latest.number, 2);
        assert_eq!(text, second);
        let change = store.change("wnec", 2).expect("change").expect("some");
        assert_eq!(change.from_version, 1);
        assert_eq!(change.detail["removed"][0], "Eden");
        assert!(store.change("wnec", 1).expect("change").is_none());
    }

    #[test]
    fn text_hash_is_the_hash_of_the_stored_json() {
        let blocks = vec![
            Block::new(BlockKind::Heading { level: 2 }, "Members"),
            Block::new(BlockKind::Paragraph, "Caf\u{e9} \"quoted\" \\ line"),
            Block::new(BlockKind::ListItem, "Cumbria"),
            Block::new(BlockKind::TableRow, "a | b"),
            Block::new(BlockKind::Preformatted, "x\n  y"),
            Block::new(BlockKind::Named, "lead: Jane"),
            Block::new(BlockKind::Heading { level: 9 }, "deep"),
        ];
        let json = text_json(&blocks);
        // The format every stored text and its hash were written in.
        assert_eq!(
            String::from_utf8(json.clone()).expect("utf-8"),
            r#"{"v":1,"blocks":[{"k":"h2","t":"Members"},{"k":"p","t":"Café \"quoted\" \\ line"},{"k":"li","t":"Cumbria"},{"k":"tr","t":"a | b"},{"k":"pre","t":"x\n  y"},{"k":"n","t":"lead: Jane"},{"k":"h9","t":"deep"}]}"#
        );
        assert_eq!(text_hash(&blocks), blake3::hash(&json).to_hex().to_string());
        let record: TextRecordIn<'_> = serde_json::from_slice(&json).expect("reads back");
        assert_eq!(record.into_blocks().expect("blocks"), blocks);
    }

    /// What serde_json reads from a text record's bytes.
    fn text_by_serde(json: &[u8]) -> Result<Vec<Block>, String> {
        serde_json::from_slice::<TextRecordIn<'_>>(json)
            .map_err(|e| e.to_string())
            .and_then(TextRecordIn::into_blocks)
    }

    #[test]
    fn text_records_read_without_serde_as_serde_reads_them() {
        let texts = [
            String::new(),
            "Members".to_owned(),
            "Caf\u{e9} \"quoted\" \\ line".to_owned(),
            "back\\slash\ttab\nline \u{2028}\u{fffd}\u{1f600}\u{7f}".to_owned(),
            (0u8..0x20).map(char::from).collect(),
            format!("{}\"{}\\", "a".repeat(31), "b".repeat(40)),
            "ends with a backslash \\".to_owned(),
            "\"".to_owned(),
        ];
        let kinds = [
            BlockKind::Heading { level: 2 },
            BlockKind::Heading { level: 0 },
            BlockKind::Paragraph,
            BlockKind::ListItem,
            BlockKind::TableRow,
            BlockKind::Preformatted,
            BlockKind::Named,
        ];
        let blocks: Vec<Block> = texts
            .iter()
            .enumerate()
            .map(|(i, text)| Block::new(kinds[i % kinds.len()], text.clone()))
            .collect();
        for n in 0..=blocks.len() {
            let json = text_json(&blocks[..n]);
            assert_eq!(text_record_blocks(&json).as_deref(), Some(&blocks[..n]));
            assert_eq!(text_by_serde(&json).as_deref(), Ok(&blocks[..n]));
        }
        // Anything else is left to serde_json, or read as it reads it.
        let others: [&[u8]; 16] = [
            br#"{"v":1,"blocks":[]}"#,
            br#"{"v":1,"blocks":[]} "#,
            br#"{"v":1, "blocks":[]}"#,
            br#"{"v":0,"blocks":[{"k":"p","t":"old"}]}"#,
            br#"{"v":2,"blocks":[]}"#,
            br#"{"v":1,"blocks":[{"k":"x","t":"unknown kind"}]}"#,
            br#"{"v":1,"blocks":[{"k":"p","t":"no end"}"#,
            br#"{"v":1,"blocks":[{"k":"p","t":"no end}]}"#,
            br#"{"v":1,"blocks":[{"k":"p","t":"bad \q escape"}]}"#,
            br#"{"v":1,"blocks":[{"k":"p","t":"\u00e9\u2028 \"x\""}]}"#,
            br#"{"v":1,"blocks":[{"k":"p","t":"a"},]}"#,
            br#"{"v":1,"blocks":[{"t":"a","k":"p"}]}"#,
            br#"{"v":1,"blocks":[{"k":"p","t":"a"}],"x":1}"#,
            b"{\"v\":1,\"blocks\":[{\"k\":\"p\",\"t\":\"raw\ttab\"}]}",
            b"{\"v\":1,\"blocks\":[{\"k\":\"p\",\"t\":\"bad \xff utf-8\"}]}",
            b"{\"v\":1,\"blocks\":[{\"k\":\"p\",\"t\":\"trailing \\",
        ];
        for json in others {
            if let Some(blocks) = text_record_blocks(json) {
                assert_eq!(
                    Ok(blocks),
                    text_by_serde(json),
                    "{}",
                    String::from_utf8_lossy(json)
                );
            }
        }
    }

    #[test]
    fn identical_texts_are_stored_once() {
        let store = Store::temporary().expect("store");
        let text = blocks(&["Cumbria County Council"]);
        commit(&store, "a", &text, None);
        commit(&store, "b", &text, None);
        let stats = store.stats().expect("stats");
        assert_eq!(stats.versions, 2);
        assert_eq!(stats.texts, 1);
    }

    #[test]
    fn a_watch_name_that_prefixes_another_keeps_its_own_history() {
        let store = Store::temporary().expect("store");
        commit(&store, "lsc", &blocks(&["one"]), None);
        commit(&store, "lsc-ics", &blocks(&["two"]), None);
        assert_eq!(store.history("lsc").expect("history").len(), 1);
    }

    #[test]
    fn records_newer_than_this_build_are_refused() {
        let err = decode::<WatchRecord>(br#"{"v":99}"#).expect_err("too new");
        assert!(err.contains("newer"), "{err}");
    }

    #[test]
    fn changes_go_to_packs_and_inline_records_of_both_older_kinds_still_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        commit(&store, "w", &blocks(&["Carlisle"]), None);
        let detail = serde_json::json!({"removed": vec!["Eden"; 200]});
        let change = NewChange {
            changed_words: 1,
            detail: serde_json::value::to_raw_value(&detail).expect("json"),
        };
        commit(&store, "w", &blocks(&["Penrith"]), Some(change));
        let Kv::Sled(sled) = &store.kv else {
            panic!("a sled store");
        };
        let raw = sled
            .db
            .open_tree("changes")
            .expect("tree")
            .get(version_key("w", 2))
            .expect("get")
            .expect("stored");
        assert!(raw.starts_with(b"{\"v\":1,\"pack\":1"), "a reference");
        // Read through the store, it is the compressed record itself.
        let record = store
            .kv
            .get(Tree::Changes, &version_key("w", 2))
            .expect("get")
            .expect("stored");
        assert!(record.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]), "zstd frame");
        assert!(record.len() < serde_json::to_vec(&detail).expect("json").len() / 4);
        let read = store.change("w", 2).expect("read").expect("some");
        assert_eq!((read.from_version, read.to_version), (1, 2));
        assert_eq!(read.detail, detail);
        let info = store.version("w", 2).expect("read").expect("some");
        assert_eq!(store.facts(&info).expect("facts").map(|f| f.0), Some(1));

        // A record written inline before packs: compressed (version 2)...
        let inline = encode_compressed(&ChangeRecordV1 {
            v: 2,
            from_version: 1,
            to_version: 2,
            detected_at: Utc::now(),
            changed_words: 4,
            detail: serde_json::json!({"inline": true}),
        });
        store
            .kv
            .insert(Tree::Changes, &version_key("w", 2), &inline)
            .expect("insert");
        let old = store.change("w", 2).expect("read").expect("some");
        assert_eq!(
            (old.changed_words, old.detail),
            (4, serde_json::json!({"inline": true}))
        );
        // ...or before compression: plain JSON, version 1.
        let plain = serde_json::json!({"v": 1, "from_version": 1, "to_version": 2,
            "detected_at": "2026-11-28T12:00:00Z", "changed_words": 3, "detail": {"old": true}});
        store
            .kv
            .insert(
                Tree::Changes,
                &version_key("w", 2),
                &serde_json::to_vec(&plain).expect("json"),
            )
            .expect("insert");
        let old = store.change("w", 2).expect("read").expect("some");
        assert_eq!(
            (old.changed_words, old.detail),
            (3, serde_json::json!({"old": true}))
        );
        let listed = store.latest_changes("w", 5, |_| true).expect("scan");
        assert_eq!(listed.len(), 1);
    }

    #[test]
    fn a_change_record_whose_pack_is_missing_or_cut_short_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path()).expect("open");
            commit(&store, "w", &blocks(&["Carlisle"]), None);
            let change = NewChange {
                changed_words: 1,
                detail: serde_json::value::to_raw_value(&serde_json::json!({"added": ["Penrith"]}))
                    .expect("json"),
            };
            commit(&store, "w", &blocks(&["Penrith"]), Some(change));
            store.flush().expect("flush");
        }
        let packs = packs_in(dir.path());
        assert_eq!(packs.len(), 1);
        // The pack cut in the middle of the last entry (the change record).
        let bytes = std::fs::read(&packs[0]).expect("read");
        std::fs::write(&packs[0], &bytes[..bytes.len() - 8]).expect("cut");
        let store = Store::open(dir.path()).expect("reopen");
        let error = store.change("w", 2).expect_err("cut short");
        let message = error.to_string();
        assert!(matches!(error, StoreError::TextFile { .. }), "{message}");
        assert!(
            message.contains(&packs[0].display().to_string()) && message.contains("cut short"),
            "{message}"
        );
        drop(store);
        std::fs::remove_file(&packs[0]).expect("remove");
        let store = Store::open(dir.path()).expect("reopen");
        let message = store.change("w", 2).expect_err("missing").to_string();
        assert!(message.contains("missing"), "{message}");
    }

    #[test]
    fn a_change_staged_but_never_committed_leaves_no_record_and_the_next_commit_skips_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path()).expect("open");
            commit(&store, "w", &blocks(&["Carlisle"]), None);
            // The first half of a commit of version 2: its change record is
            // in a pack, durably; the transaction never runs.
            let key = version_key("w", 2);
            store
                .kv
                .stage(&[kv::Staged {
                    tree: Tree::Changes,
                    key: &key,
                    value: b"\x28\xB5\x2F\xFD staged",
                }])
                .expect("stage");
            // And a torn append after it, as a kill during a write leaves.
            let pack = &packs_in(dir.path())[0];
            let mut bytes = std::fs::read(pack).expect("read");
            bytes.extend_from_slice(b"TPK1 torn");
            std::fs::write(pack, &bytes).expect("write");
            store.flush().expect("flush");
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert!(store.change("w", 2).expect("read").is_none());
        let change = NewChange {
            changed_words: 1,
            detail: serde_json::value::to_raw_value(&serde_json::json!({"added": ["Penrith"]}))
                .expect("json"),
        };
        assert_eq!(commit(&store, "w", &blocks(&["Penrith"]), Some(change)), 2);
        let read = store.change("w", 2).expect("read").expect("some");
        assert_eq!(read.detail["added"][0], "Penrith");
    }

    /// The pack files of a store in `dir`.
    fn packs_in(dir: &Path) -> Vec<std::path::PathBuf> {
        match std::fs::read_dir(dir.join("store.sled").join("texts")) {
            Ok(entries) => entries.map(|e| e.expect("entry").path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn texts_go_to_packs_and_a_store_with_texts_inside_sled_still_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = blocks(&["Written by an older tidings"]);
        {
            let store = Store::open(dir.path()).expect("open");
            commit(&store, "w", &old, None);
            assert_eq!(packs_in(dir.path()).len(), 1, "the text went to a pack");
            // Turn it into the layout before packs: the text inline in the
            // tree, format 1, no pack files.
            let inline = zstd::bulk::compress(&text_json(&old), ZSTD_LEVEL).expect("zstd");
            let hash = blake3::hash(&text_json(&old));
            store
                .kv
                .insert(Tree::Texts, hash.as_bytes(), &inline)
                .expect("insert");
            store
                .kv
                .insert(Tree::Meta, b"format", &1u32.to_be_bytes())
                .expect("format");
            store.flush().expect("flush");
        }
        std::fs::remove_dir_all(dir.path().join("store.sled").join("texts")).expect("remove");

        let store = Store::open(dir.path()).expect("open an old store");
        let (_, text) = store.latest("w").expect("latest").expect("some");
        assert_eq!(text, old);
        assert_eq!(
            store.kv.get(Tree::Meta, b"format").expect("get"),
            Some(FORMAT_VERSION.to_be_bytes().to_vec()),
            "marked so that an older tidings refuses it"
        );
        let new = blocks(&["Written now"]);
        let change = NewChange {
            changed_words: 2,
            detail: serde_json::value::to_raw_value(&serde_json::json!({})).expect("json"),
        };
        commit(&store, "w", &new, Some(change));
        assert_eq!(packs_in(dir.path()).len(), 1);
        let history = store.history("w").expect("history");
        assert_eq!(store.text(&history[0]).expect("old text"), old);
        assert_eq!(store.text(&history[1]).expect("new text"), new);
        assert_eq!(store.stats().expect("stats").texts, 2);
    }

    #[test]
    fn a_text_written_but_never_committed_leaves_no_reference() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = blocks(&["Staged, then the process died"]);
        let json = text_json(&text);
        let hash = blake3::hash(&json);
        {
            let store = Store::open(dir.path()).expect("open");
            // The first half of a commit: the text is in a pack, durably;
            // the transaction that would refer to it never runs.
            let compressed = zstd::bulk::compress(&json, ZSTD_LEVEL).expect("zstd");
            store
                .kv
                .stage_text(hash.as_bytes(), compressed)
                .expect("stage");
            store.flush().expect("flush");
        }
        assert_eq!(packs_in(dir.path()).len(), 1);
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(
            store.kv.get(Tree::Texts, hash.as_bytes()).expect("get"),
            None
        );
        assert!(store.history("w").expect("history").is_empty());
        assert_eq!(store.stats().expect("stats").texts, 0);
        // Committing it again works and reads back.
        commit(&store, "w", &text, None);
        let (_, read) = store.latest("w").expect("latest").expect("some");
        assert_eq!(read, text);
    }

    #[test]
    fn a_text_that_cannot_be_written_commits_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        // Where the packs go is taken by a file: the text cannot be written.
        std::fs::write(dir.path().join("store.sled").join("texts"), b"in the way").expect("write");
        let version = NewVersion {
            seen_at: Utc::now(),
            blocks: &blocks(&["Carlisle"]),
            extractor_version: 1,
            change: None,
            facts: None,
            notify: None,
        };
        let error = store
            .commit_version("w", &version, &WatchState::default())
            .expect_err("no pack");
        assert!(matches!(error, StoreError::TextFile { .. }), "{error}");
        assert!(error.to_string().contains("texts"), "{error}");
        assert!(store.history("w").expect("history").is_empty());
        assert_eq!(store.watch_state("w").expect("state").latest_version, None);
        assert_eq!(store.kv.len(Tree::Texts).expect("count"), 0);
    }

    #[test]
    fn a_missing_pack_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path()).expect("open");
            commit(&store, "w", &blocks(&["Carlisle"]), None);
            store.flush().expect("flush");
        }
        let packs = packs_in(dir.path());
        assert_eq!(packs.len(), 1);
        std::fs::remove_file(&packs[0]).expect("remove");
        let store = Store::open(dir.path()).expect("reopen");
        let error = store.latest("w").expect_err("missing pack");
        let message = error.to_string();
        assert!(matches!(error, StoreError::TextFile { .. }), "{message}");
        assert!(
            message.contains(&packs[0].display().to_string()) && message.contains("missing"),
            "{message}"
        );
    }

    #[test]
    fn store_reopens_with_its_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path()).expect("open");
            commit(&store, "w", &blocks(&["Carlisle"]), None);
            store.flush().expect("flush");
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(
            store.watch_state("w").expect("state").latest_version,
            Some(1)
        );
        assert_eq!(store.watch_names().expect("names"), ["w"]);
    }
}
