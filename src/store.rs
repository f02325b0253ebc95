//! Durable state in sled: the only module that knows sled.
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
//! state are committed in one sled transaction: a kill at any point leaves
//! either all of them or none.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::model::{Block, BlockKind};

mod outbox;
pub use outbox::{
    Delivery, DeliveryState, DigestEntry, Item, Notify, Prepared, Purged, Recipient, change_key,
    digest_delivery_key,
};

/// The on-disk layout this build writes. A store with a newer layout is
/// refused rather than misread.
const FORMAT_VERSION: u32 = 1;
/// zstd level 1: page text still compresses about 3.5:1, at half the CPU of
/// zstd's default level, which matters on a first pass over a thousand pages.
const ZSTD_LEVEL: i32 = 1;
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The pipeline's description of the change.
    pub detail: serde_json::Value,
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
    /// Bytes on disk (sled's own figure).
    pub disk_bytes: u64,
}

/// The sled database and its trees.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    watches: sled::Tree,
    versions: sled::Tree,
    texts: sled::Tree,
    facts: sled::Tree,
    changes: sled::Tree,
    /// Subscribers by normalised address (see [`Subscriber`]).
    subscribers: sled::Tree,
    /// Suppressed addresses: never mailed, whatever an import says.
    suppressed: sled::Tree,
    /// Briefings to send, one row per delivery (see [`outbox`]).
    outbox: sled::Tree,
    /// Delivery rows that are finished: sent, failed or cancelled.
    outbox_done: sled::Tree,
    /// Changes waiting for a subscriber's next digest (see [`outbox`]).
    digests: sled::Tree,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .path(dir.join("store.sled"))
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(500));
        Self::from_config(dir, &config)
    }

    /// A store that lives in a temporary directory and vanishes on drop.
    pub fn temporary() -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .temporary(true)
            .cache_capacity(CACHE_BYTES);
        Self::from_config(Path::new("<temporary>"), &config)
    }

    fn from_config(dir: &Path, config: &sled::Config) -> Result<Self, StoreError> {
        let path = dir.to_path_buf();
        let db = config.open().map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let store = Self {
            watches: db.open_tree("watches").map_err(io)?,
            versions: db.open_tree("versions").map_err(io)?,
            texts: db.open_tree("texts").map_err(io)?,
            facts: db.open_tree("facts").map_err(io)?,
            changes: db.open_tree("changes").map_err(io)?,
            subscribers: db.open_tree("subscribers").map_err(io)?,
            suppressed: db.open_tree("suppressed").map_err(io)?,
            outbox: db.open_tree("outbox").map_err(io)?,
            outbox_done: db.open_tree("outbox_done").map_err(io)?,
            digests: db.open_tree("digests").map_err(io)?,
            db,
            path,
        };
        store.check_format()?;
        Ok(store)
    }

    fn check_format(&self) -> Result<(), StoreError> {
        match self.db.get(b"format").map_err(|e| self.io(e))? {
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| self.corrupt("format", "not a 4-byte number"))?;
                if found > FORMAT_VERSION {
                    return Err(StoreError::TooNew {
                        path: self.path.clone(),
                        found,
                    });
                }
            }
            None => {
                self.db
                    .insert(b"format", &FORMAT_VERSION.to_be_bytes())
                    .map_err(|e| self.io(e))?;
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
        match self.watches.get(watch.as_bytes()).map_err(|e| self.io(e))? {
            Some(bytes) => Ok(decode::<WatchRecord>(&bytes)
                .map_err(|reason| self.corrupt("watch", reason))?
                .into()),
            None => Ok(WatchState::default()),
        }
    }

    /// Names of all watches the store has state for, sorted.
    pub fn watch_names(&self) -> Result<Vec<String>, StoreError> {
        self.watches
            .iter()
            .keys()
            .map(|key| {
                let key = key.map_err(|e| self.io(e))?;
                String::from_utf8(key.to_vec())
                    .map_err(|_| self.corrupt("watch", "name is not UTF-8"))
            })
            .collect()
    }

    /// Records a check that stored no new version (unchanged, not modified,
    /// or failed).
    pub fn record_check(&self, watch: &str, state: &WatchState) -> Result<(), StoreError> {
        let bytes = encode(&WatchRecord::from(state));
        self.watches
            .insert(watch.as_bytes(), bytes)
            .map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Commits a new version, its change record and the watch's new state in
    /// one transaction, and returns the version number. `state.latest_version`
    /// is set here; the caller's value is ignored.
    pub fn commit_version(
        &self,
        watch: &str,
        version: &NewVersion<'_>,
        state: &WatchState,
    ) -> Result<u64, StoreError> {
        let text_json = text_json(version.blocks);
        let hash = blake3::hash(&text_json);
        let facts_json = version.facts.as_ref().map(|(facts_version, facts)| {
            encode(&FactsRecord {
                v: 1,
                facts_version: *facts_version,
                facts: facts.clone(),
            })
        });
        let compressed = zstd::bulk::compress(&text_json, ZSTD_LEVEL)
            .map_err(|e| self.corrupt("text", format!("compression failed: {e}")))?;
        let text_bytes: u64 = version
            .blocks
            .iter()
            .map(|block| block.render().len() as u64 + 2)
            .sum();

        // Row ids come from sled's counter outside the transaction: a retried
        // transaction reuses them, and a crash merely skips some.
        let notify = version.change.as_ref().and(version.notify.as_ref());
        let ids = match notify {
            Some(notify) => notify
                .recipients
                .iter()
                .map(|_| self.db.generate_id())
                .collect::<Result<Vec<u64>, _>>()
                .map_err(|e| self.io(e))?,
            None => Vec::new(),
        };

        let result = (
            &self.watches,
            &self.versions,
            &self.texts,
            &self.changes,
            &self.facts,
            &self.outbox,
            &self.digests,
        )
            .transaction(
                |(watches, versions, texts, changes, facts, outbox, digests)| {
                    let previous = match watches.get(watch.as_bytes())? {
                        Some(bytes) => {
                            decode::<WatchRecord>(&bytes)
                                .map_err(ConflictableTransactionError::Abort)?
                                .latest_version
                        }
                        None => None,
                    };
                    let number = previous.map_or(1, |n| n + 1);
                    if texts.get(hash.as_bytes())?.is_none() {
                        texts.insert(hash.as_bytes(), compressed.as_slice())?;
                    }
                    if let Some(facts_json) = &facts_json {
                        facts.insert(hash.as_bytes(), facts_json.as_slice())?;
                    }
                    let record = VersionRecord {
                        v: 1,
                        seen_at: version.seen_at,
                        hash: hash.to_hex().to_string(),
                        text_bytes,
                        blocks: version.blocks.len() as u64,
                        extractor_version: version.extractor_version,
                        changed_words: version.change.as_ref().map(|c| c.changed_words),
                    };
                    versions.insert(version_key(watch, number), encode(&record))?;
                    if let (Some(change), Some(from_version)) = (&version.change, previous) {
                        let change_record = ChangeRecordV1 {
                            v: 1,
                            from_version,
                            to_version: number,
                            detected_at: version.seen_at,
                            changed_words: change.changed_words,
                            detail: change.detail.clone(),
                        };
                        changes.insert(version_key(watch, number), encode(&change_record))?;
                        if let Some(notify) = notify {
                            outbox::queue(
                                outbox,
                                digests,
                                watch,
                                number,
                                version.seen_at,
                                notify,
                                &ids,
                            )?;
                        }
                    }
                    let mut watch_record = WatchRecord::from(state);
                    watch_record.latest_version = Some(number);
                    watches.insert(watch.as_bytes(), encode(&watch_record))?;
                    Ok(number)
                },
            );
        result.map_err(|err| match err {
            TransactionError::Abort(reason) => self.corrupt("watch", reason),
            TransactionError::Storage(source) => self.io(source),
        })
    }

    /// All versions of a watch, oldest first.
    pub fn history(&self, watch: &str) -> Result<Vec<VersionInfo>, StoreError> {
        self.versions
            .scan_prefix(watch_prefix(watch))
            .map(|entry| {
                let (key, value) = entry.map_err(|e| self.io(e))?;
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
        self.versions
            .get(version_key(watch, number))
            .map_err(|e| self.io(e))?
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
            .texts
            .get(hash.as_bytes())
            .map_err(|e| self.io(e))?
            .ok_or_else(|| self.corrupt("text", format!("text {} is missing", version.hash)))?;
        let json = zstd::stream::decode_all(compressed.as_ref())
            .map_err(|e| self.corrupt("text", format!("decompression failed: {e}")))?;
        let record: TextRecord =
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
        self.facts
            .get(hash.as_bytes())
            .map_err(|e| self.io(e))?
            .map(|bytes| {
                decode::<FactsRecord>(&bytes)
                    .map(|record| (record.facts_version, record.facts))
                    .map_err(|reason| self.corrupt("facts", reason))
            })
            .transpose()
    }

    /// The latest version and its text, if the watch has any.
    pub fn latest(&self, watch: &str) -> Result<Option<(VersionInfo, Vec<Block>)>, StoreError> {
        let Some(number) = self.watch_state(watch)?.latest_version else {
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
        self.changes
            .get(version_key(watch, number))
            .map_err(|e| self.io(e))?
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
            watches: self.watches.len() as u64,
            versions: self.versions.len() as u64,
            texts: self.texts.len() as u64,
            disk_bytes: self.db.size_on_disk().map_err(|e| self.io(e))?,
        })
    }

    /// Writes everything to disk. Called at the end of every command and
    /// before a check is reported as done.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.io(e))
    }

    fn io(&self, source: sled::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
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
    blake3::hash(&text_json(blocks)).to_hex().to_string()
}

fn text_json(blocks: &[Block]) -> Vec<u8> {
    // Serialising plain strings cannot fail.
    serde_json::to_vec(&TextRecord::from_blocks(blocks)).unwrap_or_default()
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

fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // Serialising these plain records cannot fail: no maps with non-string
    // keys, no custom serialisers.
    serde_json::to_vec(record).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de> + Versioned>(bytes: &[u8]) -> Result<T, String> {
    #[derive(Deserialize)]
    struct Header {
        v: u32,
    }
    let header: Header = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if header.v > T::LATEST {
        return Err(format!(
            "record version {} is newer than this tidings reads ({})",
            header.v,
            T::LATEST
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// A persisted record type and the newest version of it this build writes.
trait Versioned {
    const LATEST: u32;
}

#[derive(Debug, Serialize, Deserialize)]
struct WatchRecord {
    v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_check: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_success: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_change: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(default)]
    consecutive_failures: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    failure_alerted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    latest_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    suspect: Option<SuspectRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SuspectRecord {
    hash: String,
    reason: String,
    since: DateTime<Utc>,
    /// Added without a version bump: a record without it was seen once.
    #[serde(default = "once")]
    seen: u32,
}

fn once() -> u32 {
    1
}

#[derive(Debug, Serialize, Deserialize)]
struct FactsRecord {
    v: u32,
    facts_version: u32,
    facts: serde_json::Value,
}

impl Versioned for FactsRecord {
    const LATEST: u32 = 1;
}

impl Versioned for WatchRecord {
    const LATEST: u32 = 1;
}

impl From<&WatchState> for WatchRecord {
    fn from(state: &WatchState) -> Self {
        Self {
            v: 1,
            etag: state.etag.clone(),
            last_modified: state.last_modified.clone(),
            last_check: state.last_check,
            last_success: state.last_success,
            last_change: state.last_change,
            last_error: state.last_error.clone(),
            consecutive_failures: state.consecutive_failures,
            failure_alerted: state.failure_alerted,
            latest_version: state.latest_version,
            suspect: state.suspect.as_ref().map(|s| SuspectRecord {
                hash: s.hash.clone(),
                reason: s.reason.clone(),
                since: s.since,
                seen: s.seen,
            }),
        }
    }
}

impl From<WatchRecord> for WatchState {
    fn from(record: WatchRecord) -> Self {
        Self {
            etag: record.etag,
            last_modified: record.last_modified,
            last_check: record.last_check,
            last_success: record.last_success,
            last_change: record.last_change,
            last_error: record.last_error,
            consecutive_failures: record.consecutive_failures,
            failure_alerted: record.failure_alerted,
            latest_version: record.latest_version,
            suspect: record.suspect.map(|s| Suspect {
                hash: s.hash,
                reason: s.reason,
                since: s.since,
                seen: s.seen,
            }),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct VersionRecord {
    v: u32,
    seen_at: DateTime<Utc>,
    hash: String,
    text_bytes: u64,
    blocks: u64,
    extractor_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    changed_words: Option<u64>,
}

impl Versioned for VersionRecord {
    const LATEST: u32 = 1;
}

impl VersionRecord {
    fn into_info(self, number: u64) -> VersionInfo {
        VersionInfo {
            number,
            seen_at: self.seen_at,
            hash: self.hash,
            text_bytes: self.text_bytes,
            blocks: self.blocks,
            extractor_version: self.extractor_version,
            changed_words: self.changed_words,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ChangeRecordV1 {
    v: u32,
    from_version: u64,
    to_version: u64,
    detected_at: DateTime<Utc>,
    changed_words: u64,
    detail: serde_json::Value,
}

impl Versioned for ChangeRecordV1 {
    const LATEST: u32 = 1;
}

impl From<ChangeRecordV1> for ChangeRecord {
    fn from(record: ChangeRecordV1) -> Self {
        Self {
            from_version: record.from_version,
            to_version: record.to_version,
            detected_at: record.detected_at,
            changed_words: record.changed_words,
            detail: record.detail,
        }
    }
}

/// A snapshot text as stored: compact field names, since there is one per
/// block of every distinct version.
#[derive(Debug, Serialize, Deserialize)]
struct TextRecord {
    v: u32,
    blocks: Vec<BlockRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BlockRecord {
    /// `h1`..`h6`, `p`, `li`, `tr` or `pre`.
    k: String,
    t: String,
}

impl TextRecord {
    fn from_blocks(blocks: &[Block]) -> Self {
        Self {
            v: 1,
            blocks: blocks
                .iter()
                .map(|block| BlockRecord {
                    k: match block.kind {
                        BlockKind::Heading { level } => format!("h{level}"),
                        BlockKind::Paragraph => "p".into(),
                        BlockKind::ListItem => "li".into(),
                        BlockKind::TableRow => "tr".into(),
                        BlockKind::Preformatted => "pre".into(),
                        BlockKind::Named => "n".into(),
                    },
                    t: block.text.clone(),
                })
                .collect(),
        }
    }

    fn into_blocks(self) -> Result<Vec<Block>, String> {
        if self.v > 1 {
            return Err(format!("text record version {} is too new", self.v));
        }
        self.blocks
            .into_iter()
            .map(|record| {
                let kind = match record.k.as_str() {
                    "p" => BlockKind::Paragraph,
                    "li" => BlockKind::ListItem,
                    "tr" => BlockKind::TableRow,
                    "pre" => BlockKind::Preformatted,
                    "n" => BlockKind::Named,
                    other => match other.strip_prefix('h').and_then(|l| l.parse::<u8>().ok()) {
                        Some(level) => BlockKind::Heading { level },
                        None => return Err(format!("unknown block kind `{other}`")),
                    },
                };
                Ok(Block::new(kind, record.t))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(texts: &[&str]) -> Vec<Block> {
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
            detail: serde_json::json!({"removed": ["Eden"]}),
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

// ---------------------------------------------------------------------------
// Subscribers and suppressions
//
// Two trees, both keyed by the normalised address:
// - `subscribers`: `SubscriberRecord` v1, who gets briefings about what;
// - `suppressed`: `SuppressionRecord` v1, addresses never to be mailed. It is
//   separate from `subscribers` so that removing or re-importing a subscriber
//   never lifts a suppression.

/// How often a subscriber hears from tidings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    /// One briefing per change, as soon as it is seen.
    Immediate,
    /// One briefing gathering every change since the last, on a schedule.
    Digest {
        /// A cron expression as `config::Schedule::parse` reads it, e.g.
        /// `0 8 * * Mon`.
        cron: String,
        /// The zone the expression's times are in.
        timezone: chrono_tz::Tz,
    },
}

/// One person who receives briefings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The address, normalised by [`normalise_address`] when stored.
    pub address: String,
    /// How to greet them; may be empty.
    pub name: String,
    /// Watches followed by name. With `tags` empty too, every watch.
    pub watches: Vec<String>,
    /// Tags followed (a partnership and all its pages).
    pub tags: Vec<String>,
    /// The kinds of change wanted; empty means every kind but `minor`.
    pub kinds: Vec<crate::classify::Kind>,
    /// Immediate, or a digest.
    pub cadence: Cadence,
    /// Whether the address is confirmed (admin-added ones are).
    pub confirmed: bool,
    /// When consent was given, if recorded.
    pub consent_at: Option<DateTime<Utc>>,
    /// Where consent came from, e.g. `admin-cli` or `csv-import`.
    pub consent_source: Option<String>,
    /// When the subscriber was first stored.
    pub created: DateTime<Utc>,
}

/// An address that is never mailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// The address, lower-cased whole (suppressions ignore case).
    pub address: String,
    /// Why, in the admin's words (or a fixed phrase after `forget`).
    pub reason: String,
    /// When it was suppressed.
    pub at: DateTime<Utc>,
    /// Whether the person asked not to be mailed (an unsubscribe or a
    /// complaint), as opposed to an admin decision or a bounce. Only such
    /// entries survive [`Store::forget`].
    pub requested: bool,
}

/// What [`Store::forget`] erased and kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// A subscriber record was erased.
    pub subscriber: bool,
    /// A suppression entry was erased (it was not at the person's request).
    pub suppression_erased: bool,
    /// A suppression entry was kept, stripped to the address and time,
    /// because the person asked not to be mailed.
    pub suppression_kept: bool,
    /// Queued or sent briefings (and digest entries) erased.
    pub deliveries: usize,
}

/// The form an address is stored under: surrounding whitespace trimmed and
/// the domain lower-cased. The local part keeps its case, since RFC 5321
/// lets a server treat it as case-sensitive, though few do.
pub fn normalise_address(address: &str) -> String {
    let address = address.trim();
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
        None => address.to_owned(),
    }
}

/// The key of a suppression: the whole address lower-cased. Unlike
/// subscriber keys, the local part is folded too, so that suppressing
/// `Ada@example.org` also stops `ada@example.org`: a suppression errs on the
/// side of not mailing.
fn suppression_key(address: &str) -> String {
    normalise_address(address).to_lowercase()
}

impl Store {
    /// Stores a subscriber, replacing any with the same (normalised)
    /// address. Returns whether the address was new. It does not look at the
    /// suppression list: callers decide what a suppressed address means
    /// (import skips it; delivery must check [`Store::suppression`]).
    pub fn put_subscriber(&self, subscriber: &Subscriber) -> Result<bool, StoreError> {
        let record = SubscriberRecord::from(subscriber);
        let previous = self
            .subscribers
            .insert(record.address.as_bytes(), encode(&record))
            .map_err(|e| self.io(e))?;
        Ok(previous.is_none())
    }

    /// The subscriber with this address, if any.
    pub fn subscriber(&self, address: &str) -> Result<Option<Subscriber>, StoreError> {
        let key = normalise_address(address);
        match self
            .subscribers
            .get(key.as_bytes())
            .map_err(|e| self.io(e))?
        {
            Some(bytes) => self.decode_subscriber(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every subscriber, in address order.
    pub fn subscribers(&self) -> Result<Vec<Subscriber>, StoreError> {
        self.subscribers
            .iter()
            .values()
            .map(|bytes| self.decode_subscriber(&bytes.map_err(|e| self.io(e))?))
            .collect()
    }

    /// Removes a subscriber. The suppression list is untouched. Returns
    /// whether there was one.
    pub fn remove_subscriber(&self, address: &str) -> Result<bool, StoreError> {
        let key = normalise_address(address);
        Ok(self
            .subscribers
            .remove(key.as_bytes())
            .map_err(|e| self.io(e))?
            .is_some())
    }

    /// Erases what tidings holds about a person: their subscriber record and
    /// any suppression made by an admin or a bounce.
    ///
    /// One thing is kept on purpose: if the person themselves asked not to
    /// be mailed, their suppression entry stays, stripped of its free-text
    /// reason. Without it the next import of an old list would mail them
    /// again, which is the opposite of what they asked for; keeping the bare
    /// address to honour an objection is what the ICO's guidance on
    /// suppression lists allows. Both trees change in one transaction.
    pub fn forget(&self, address: &str) -> Result<Forgotten, StoreError> {
        let key = normalise_address(address);
        let suppressed_key = suppression_key(address);
        let result = (&self.subscribers, &self.suppressed).transaction(|(subs, supp)| {
            let mut forgotten = Forgotten {
                subscriber: subs.remove(key.as_bytes())?.is_some(),
                ..Forgotten::default()
            };
            if let Some(bytes) = supp.get(suppressed_key.as_bytes())? {
                match decode::<SuppressionRecord>(&bytes) {
                    Ok(record) if record.requested => {
                        let kept = SuppressionRecord {
                            v: 1,
                            reason: FORGOTTEN_REASON.to_owned(),
                            at: record.at,
                            requested: true,
                        };
                        supp.insert(suppressed_key.as_bytes(), encode(&kept))?;
                        forgotten.suppression_kept = true;
                    }
                    // An unreadable entry is erased too: erasure must not
                    // fail on a damaged record.
                    _ => {
                        supp.remove(suppressed_key.as_bytes())?;
                        forgotten.suppression_erased = true;
                    }
                }
            }
            Ok::<_, ConflictableTransactionError<()>>(forgotten)
        });
        let mut forgotten = match result {
            Ok(forgotten) => forgotten,
            Err(TransactionError::Storage(e)) => return Err(self.io(e)),
            Err(TransactionError::Abort(())) => {
                return Err(self.corrupt("suppression", "aborted"));
            }
        };
        // Queued and sent briefings hold the address too. They go after the
        // subscriber record, so a crash in between leaves rows that the
        // worker cancels (no subscriber) and a second `forget` removes.
        let purged = self.purge_address(address)?;
        forgotten.deliveries = purged.deliveries + purged.digest_entries;
        Ok(forgotten)
    }

    /// Suppresses an address: it will never be mailed, and imports skip it,
    /// until [`Store::unsuppress`]. The subscriber record (if any) is kept,
    /// so lifting the suppression restores the subscription.
    pub fn suppress(&self, suppression: &Suppression) -> Result<(), StoreError> {
        let key = suppression_key(&suppression.address);
        let record = SuppressionRecord {
            v: 1,
            reason: suppression.reason.clone(),
            at: suppression.at,
            requested: suppression.requested,
        };
        self.suppressed
            .insert(key.as_bytes(), encode(&record))
            .map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Lifts a suppression. Returns whether there was one.
    pub fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        let key = suppression_key(address);
        Ok(self
            .suppressed
            .remove(key.as_bytes())
            .map_err(|e| self.io(e))?
            .is_some())
    }

    /// The suppression of this address, if it is suppressed.
    pub fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        let key = suppression_key(address);
        match self
            .suppressed
            .get(key.as_bytes())
            .map_err(|e| self.io(e))?
        {
            Some(bytes) => self.decode_suppression(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every suppressed address, in address order.
    pub fn suppressed(&self) -> Result<Vec<Suppression>, StoreError> {
        self.suppressed
            .iter()
            .map(|entry| {
                let (key, bytes) = entry.map_err(|e| self.io(e))?;
                let address = String::from_utf8_lossy(&key).into_owned();
                self.decode_suppression(&address, &bytes)
            })
            .collect()
    }

    fn decode_subscriber(&self, bytes: &[u8]) -> Result<Subscriber, StoreError> {
        let record: SubscriberRecord =
            decode(bytes).map_err(|reason| self.corrupt("subscriber", reason))?;
        Subscriber::try_from(record).map_err(|reason| self.corrupt("subscriber", reason))
    }

    fn decode_suppression(&self, address: &str, bytes: &[u8]) -> Result<Suppression, StoreError> {
        let record: SuppressionRecord =
            decode(bytes).map_err(|reason| self.corrupt("suppression", reason))?;
        Ok(Suppression {
            address: address.to_owned(),
            reason: record.reason,
            at: record.at,
            requested: record.requested,
        })
    }
}

/// The reason left on a suppression kept through `forget`: the admin's own
/// words may name the person or their circumstances.
const FORGOTTEN_REASON: &str = "asked not to be mailed (personal data erased)";

#[derive(Debug, Serialize, Deserialize)]
struct SubscriberRecord {
    v: u32,
    address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    watches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    kinds: Vec<String>,
    cadence: CadenceRecord,
    confirmed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consent_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consent_source: Option<String>,
    created: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum CadenceRecord {
    Immediate,
    Digest { cron: String, timezone: String },
}

impl Versioned for SubscriberRecord {
    const LATEST: u32 = 1;
}

impl From<&Subscriber> for SubscriberRecord {
    fn from(subscriber: &Subscriber) -> Self {
        Self {
            v: 1,
            address: normalise_address(&subscriber.address),
            name: subscriber.name.clone(),
            watches: subscriber.watches.clone(),
            tags: subscriber.tags.clone(),
            kinds: subscriber
                .kinds
                .iter()
                .map(|kind| kind.as_str().to_owned())
                .collect(),
            cadence: match &subscriber.cadence {
                Cadence::Immediate => CadenceRecord::Immediate,
                Cadence::Digest { cron, timezone } => CadenceRecord::Digest {
                    cron: cron.clone(),
                    timezone: timezone.name().to_owned(),
                },
            },
            confirmed: subscriber.confirmed,
            consent_at: subscriber.consent_at,
            consent_source: subscriber.consent_source.clone(),
            created: subscriber.created,
        }
    }
}

impl TryFrom<SubscriberRecord> for Subscriber {
    type Error = String;

    fn try_from(record: SubscriberRecord) -> Result<Self, String> {
        // An unknown kind is refused, not skipped: dropping it could turn
        // "boundary only" into "everything".
        let kinds = record
            .kinds
            .iter()
            .map(|name| {
                crate::classify::Kind::parse(name).ok_or_else(|| format!("unknown kind `{name}`"))
            })
            .collect::<Result<_, _>>()?;
        let cadence = match record.cadence {
            CadenceRecord::Immediate => Cadence::Immediate,
            CadenceRecord::Digest { cron, timezone } => Cadence::Digest {
                cron,
                timezone: timezone
                    .parse()
                    .map_err(|_| format!("unknown time zone `{timezone}`"))?,
            },
        };
        Ok(Self {
            address: record.address,
            name: record.name,
            watches: record.watches,
            tags: record.tags,
            kinds,
            cadence,
            confirmed: record.confirmed,
            consent_at: record.consent_at,
            consent_source: record.consent_source,
            created: record.created,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SuppressionRecord {
    v: u32,
    #[serde(default)]
    reason: String,
    at: DateTime<Utc>,
    #[serde(default)]
    requested: bool,
}

impl Versioned for SuppressionRecord {
    const LATEST: u32 = 1;
}

#[cfg(test)]
mod subscriber_tests {
    use super::*;
    use crate::classify::Kind;

    fn subscriber(address: &str) -> Subscriber {
        Subscriber {
            address: address.to_owned(),
            name: "Ada Lovelace".to_owned(),
            watches: vec!["lsc-ics".to_owned()],
            tags: vec!["lancashire".to_owned()],
            kinds: vec![Kind::Boundary, Kind::Members],
            cadence: Cadence::Digest {
                cron: "0 8 * * Mon".to_owned(),
                timezone: chrono_tz::Europe::London,
            },
            confirmed: true,
            consent_at: Some(Utc::now()),
            consent_source: Some("admin-cli".to_owned()),
            created: Utc::now(),
        }
    }

    fn suppression(address: &str, requested: bool) -> Suppression {
        Suppression {
            address: address.to_owned(),
            reason: "Ada phoned on Tuesday".to_owned(),
            at: Utc::now(),
            requested,
        }
    }

    #[test]
    fn addresses_are_trimmed_and_domains_lower_cased() {
        assert_eq!(normalise_address("  Ada@Example.ORG \n"), "Ada@example.org");
        assert_eq!(normalise_address("no-at-sign"), "no-at-sign");
    }

    #[test]
    fn subscribers_round_trip_under_their_normalised_address() {
        let store = Store::temporary().expect("store");
        let ada = subscriber(" ada@EXAMPLE.org");
        assert!(store.put_subscriber(&ada).expect("put"));
        assert!(!store.put_subscriber(&ada).expect("put again"));
        let stored = store
            .subscriber("ada@example.ORG")
            .expect("get")
            .expect("some");
        assert_eq!(stored.address, "ada@example.org");
        assert_eq!(stored.kinds, ada.kinds);
        assert_eq!(stored.cadence, ada.cadence);
        assert_eq!(stored.created, ada.created);
        assert_eq!(store.subscribers().expect("all").len(), 1);
        assert!(store.remove_subscriber("ada@example.org").expect("remove"));
        assert!(!store.remove_subscriber("ada@example.org").expect("remove"));
        assert!(store.subscribers().expect("all").is_empty());
    }

    #[test]
    fn suppressions_outlive_the_subscriber_record() {
        let store = Store::temporary().expect("store");
        store
            .put_subscriber(&subscriber("b@example.org"))
            .expect("put");
        store
            .suppress(&suppression("B@Example.org ", false))
            .expect("suppress");
        store.remove_subscriber("b@example.org").expect("remove");
        let found = store
            .suppression("b@example.org")
            .expect("get")
            .expect("some");
        assert_eq!(found.address, "b@example.org");
        assert_eq!(store.suppressed().expect("all").len(), 1);
        assert!(store.unsuppress("B@example.org").expect("unsuppress"));
        assert!(store.suppressed().expect("all").is_empty());
    }

    #[test]
    fn forget_erases_everything_but_a_requested_suppression() {
        let store = Store::temporary().expect("store");
        store
            .put_subscriber(&subscriber("c@example.org"))
            .expect("put");
        store
            .suppress(&suppression("c@example.org", true))
            .expect("suppress");
        let forgotten = store.forget("c@example.org").expect("forget");
        assert!(forgotten.subscriber && forgotten.suppression_kept);
        assert!(store.subscriber("c@example.org").expect("get").is_none());
        let kept = store
            .suppression("c@example.org")
            .expect("get")
            .expect("kept");
        assert_eq!(kept.reason, FORGOTTEN_REASON);
        assert!(!kept.reason.contains("Ada"));

        store
            .put_subscriber(&subscriber("d@example.org"))
            .expect("put");
        store
            .suppress(&suppression("d@example.org", false))
            .expect("suppress");
        let forgotten = store.forget("d@example.org").expect("forget");
        assert!(forgotten.subscriber && forgotten.suppression_erased);
        assert!(store.suppression("d@example.org").expect("get").is_none());
        assert_eq!(
            store.forget("nobody@example.org").expect("forget"),
            Forgotten::default()
        );
    }

    #[test]
    fn subscriber_records_newer_than_this_build_are_refused() {
        let err = decode::<SubscriberRecord>(br#"{"v":2}"#).expect_err("too new");
        assert!(err.contains("newer"), "{err}");
    }
}

// ---------------------------------------------------------------------------
// Reads for the web server (`web`): change pages, feeds, the watch list.
// Read-only: no new trees.

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
