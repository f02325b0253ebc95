//! The durable outbox: briefings waiting to be sent, and changes waiting
//! for a subscriber's next digest.
//!
//! Three trees:
//! - `outbox`: one [`Delivery`] per email to send, keyed by a big-endian
//!   row id so that iteration is first-queued first. A row is written
//!   `pending`;
//! - `outbox_done`: rows that moved to `sent`, `failed` or `cancelled`, kept
//!   for a while (for `tidings outbox list`) and then pruned. Kept apart so
//!   that the worker's scans for due rows read pending rows only, however
//!   many finished ones a busy fortnight leaves;
//! - `digests`: one [`DigestEntry`] per change a digest subscriber is
//!   owed, keyed by `ADDRESS \0 id`. When the subscriber's schedule fires,
//!   their entries become one outbox row, in one transaction.
//!
//! Rows for a change are written inside [`Store::commit_version`]'s
//! transaction: either the snapshot and every row exist, or neither does.
//! Rows name changes by watch and version rather than holding a rendered
//! email, so that a briefing is composed from the stored change when it is
//! sent (with the subscriber's name and choices as they are then).

use super::kv::{Tree, Tx, TxError};
use super::{Store, StoreError, Versioned, decode, encode, normalise_address};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who is to hear about a change, as the pipeline decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The page's URL, kept with the row so that a briefing can be composed
    /// even after the watch leaves the config.
    pub url: String,
    /// The watch's tags (its partnership first).
    pub tags: Vec<String>,
    /// Each subscriber to tell.
    pub recipients: Vec<Recipient>,
}

/// One subscriber to tell about a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Their (normalised) address.
    pub address: String,
    /// Whether the change waits for their digest, rather than going at once.
    pub digest: bool,
}

/// One change a briefing reports: a version of a watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The watch.
    pub watch: String,
    /// The version the change produced.
    pub version: u64,
    /// The page's URL.
    pub url: String,
    /// The watch's tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// When the change was seen.
    pub seen_at: DateTime<Utc>,
}

/// A message composed before it was queued (a confirmation mail the web
/// endpoint could not send at once), sent as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    /// The subject.
    pub subject: String,
    /// The text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting to be sent (or to be retried at `next_attempt`).
    Pending,
    /// Handed to the mail server (or written as a file).
    Sent,
    /// Refused for good (a 5xx reply), or given up on after retrying.
    Failed,
    /// Not sent, on purpose: an admin cancelled it, or the subscriber left.
    Cancelled,
}

impl DeliveryState {
    /// The state's name, as `tidings outbox list` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The row id: first queued, lowest.
    pub id: u64,
    /// What makes this email unique (`change:WATCH:N:ADDRESS` or
    /// `digest:ADDRESS:TIME`): its Message-ID is derived from it, so a
    /// re-send after a crash carries the same id.
    pub key: String,
    /// The recipient.
    pub address: String,
    /// Whether this is a digest.
    pub digest: bool,
    /// The changes it reports.
    pub items: Vec<Item>,
    /// Where it stands.
    pub state: DeliveryState,
    /// Sends tried so far.
    pub attempts: u32,
    /// When to try next (pending rows).
    pub next_attempt: DateTime<Utc>,
    /// When it was queued.
    pub created: DateTime<Utc>,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When it was sent, failed for good or cancelled.
    pub finished_at: Option<DateTime<Utc>>,
    /// The message itself, when it was composed before it was queued;
    /// otherwise it is composed from `items` at send time.
    pub prepared: Option<Prepared>,
}

/// A change waiting for a subscriber's next digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestEntry {
    /// The entry's id.
    pub id: u64,
    /// The subscriber.
    pub address: String,
    /// The change.
    pub item: Item,
}

/// What [`Store::purge_address`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Outbox rows, in any state.
    pub deliveries: usize,
    /// Pending digest entries.
    pub digest_entries: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct DeliveryRecord {
    v: u32,
    key: String,
    address: String,
    #[serde(default)]
    digest: bool,
    items: Vec<Item>,
    state: DeliveryState,
    #[serde(default)]
    attempts: u32,
    next_attempt: DateTime<Utc>,
    created: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prepared: Option<Prepared>,
}

impl Versioned for DeliveryRecord {
    const LATEST: u32 = 1;
}

impl DeliveryRecord {
    fn from_delivery(delivery: &Delivery) -> Self {
        Self {
            v: 1,
            key: delivery.key.clone(),
            address: delivery.address.clone(),
            digest: delivery.digest,
            items: delivery.items.clone(),
            state: delivery.state,
            attempts: delivery.attempts,
            next_attempt: delivery.next_attempt,
            created: delivery.created,
            last_error: delivery.last_error.clone(),
            finished_at: delivery.finished_at,
            prepared: delivery.prepared.clone(),
        }
    }

    fn into_delivery(self, id: u64) -> Delivery {
        Delivery {
            id,
            key: self.key,
            address: self.address,
            digest: self.digest,
            items: self.items,
            state: self.state,
            attempts: self.attempts,
            next_attempt: self.next_attempt,
            created: self.created,
            last_error: self.last_error,
            finished_at: self.finished_at,
            prepared: self.prepared,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct DigestRecord {
    v: u32,
    item: Item,
}

impl Versioned for DigestRecord {
    const LATEST: u32 = 1;
}

fn digest_prefix(address: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(address.len() + 9);
    key.extend_from_slice(address.as_bytes());
    // Addresses cannot contain NUL, so one address never prefixes another's
    // entries.
    key.push(0);
    key
}

fn digest_key(address: &str, id: u64) -> Vec<u8> {
    let mut key = digest_prefix(address);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn id_from_key(key: &[u8]) -> Option<u64> {
    let tail = key.get(key.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

/// The delivery key of an immediate briefing.
pub fn change_key(watch: &str, version: u64, address: &str) -> String {
    format!("change:{watch}:{version}:{address}")
}

/// The delivery key of a digest: one per subscriber per scheduled time.
pub fn digest_delivery_key(address: &str, due: DateTime<Utc>) -> String {
    format!("digest:{address}:{}", due.to_rfc3339())
}

/// Writes the rows for a committed change, inside the commit's transaction.
pub(super) fn queue(
    tx: &mut Tx<'_, '_>,
    watch: &str,
    version: u64,
    seen_at: DateTime<Utc>,
    notify: &Notify,
    ids: &[u64],
) -> Result<(), TxError> {
    let item = Item {
        watch: watch.to_owned(),
        version,
        url: notify.url.clone(),
        tags: notify.tags.clone(),
        seen_at,
    };
    for (recipient, id) in notify.recipients.iter().zip(ids) {
        if recipient.digest {
            let record = DigestRecord {
                v: 1,
                item: item.clone(),
            };
            tx.insert(
                Tree::Digests,
                &digest_key(&recipient.address, *id),
                &encode(&record),
            )?;
        } else {
            let record = DeliveryRecord {
                v: 1,
                key: change_key(watch, version, &recipient.address),
                address: recipient.address.clone(),
                digest: false,
                items: vec![item.clone()],
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt: seen_at,
                created: seen_at,
                last_error: None,
                finished_at: None,
                prepared: None,
            };
            tx.insert(Tree::Outbox, &id.to_be_bytes(), &encode(&record))?;
        }
    }
    Ok(())
}

impl Store {
    /// Every outbox row, pending and finished, first queued first.
    pub fn deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        let mut rows = self.rows(Tree::Outbox)?;
        rows.extend(self.rows(Tree::OutboxDone)?);
        rows.sort_by_key(|d| d.id);
        Ok(rows)
    }

    fn rows(&self, tree: Tree) -> Result<Vec<Delivery>, StoreError> {
        self.kv
            .collect(tree, b"")?
            .into_iter()
            .map(|(key, value)| self.decode_delivery(&key, &value))
            .collect()
    }

    /// One outbox row.
    pub fn delivery(&self, id: u64) -> Result<Option<Delivery>, StoreError> {
        let key = id.to_be_bytes();
        for tree in [Tree::Outbox, Tree::OutboxDone] {
            if let Some(value) = self.kv.get(tree, &key)? {
                return self.decode_delivery(&key, &value).map(Some);
            }
        }
        Ok(None)
    }

    /// Pending rows due at `now`, first queued first, at most `limit`.
    pub fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut due = Vec::new();
        self.kv.scan(Tree::Outbox, b"", false, &mut |key, value| {
            let delivery = self.decode_delivery(key, value)?;
            if delivery.state == DeliveryState::Pending && delivery.next_attempt <= now {
                due.push(delivery);
                if due.len() >= limit {
                    return Ok(std::ops::ControlFlow::Break(()));
                }
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })?;
        if self.node().is_none() || !self.is_shared() {
            return Ok(due);
        }
        // Several nodes: keep the rows this node may send, read again after
        // the claim so that a row another node sent meanwhile is left out.
        let granted = self.claim_rows(due.iter().map(|d| d.id).collect())?;
        let mut mine = Vec::with_capacity(granted.len());
        for id in granted {
            if let Some(row) = self.delivery(id)? {
                if row.state == DeliveryState::Pending && row.next_attempt <= now {
                    mine.push(row);
                }
            }
        }
        Ok(mine)
    }

    /// The earliest `next_attempt` of any pending row.
    pub fn next_delivery_attempt(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let pending: Vec<Delivery> = self
            .rows(Tree::Outbox)?
            .into_iter()
            .filter(|d| d.state == DeliveryState::Pending)
            .collect();
        // A row another node has claimed is its to send: this node looks
        // again only when that claim runs out (the other node died).
        let now = Utc::now();
        let ready: Vec<u64> = pending
            .iter()
            .filter(|d| d.next_attempt <= now)
            .map(|d| d.id)
            .collect();
        let held: std::collections::HashMap<u64, DateTime<Utc>> =
            self.claimed_until(&ready)?.into_iter().collect();
        Ok(pending
            .iter()
            .map(|d| {
                held.get(&d.id)
                    .map_or(d.next_attempt, |until| (*until).max(d.next_attempt))
            })
            .min())
    }

    /// Pending rows: the outbox's depth.
    pub fn outbox_depth(&self) -> Result<u64, StoreError> {
        self.kv.len(Tree::Outbox)
    }

    /// Writes a row back (after a send, a retry or a cancel), into the
    /// pending or the finished tree as its state says, in one transaction.
    /// A row that is no longer there (purged by `forget`) is not brought
    /// back.
    pub fn update_delivery(&self, delivery: &Delivery) -> Result<bool, StoreError> {
        let key = delivery.id.to_be_bytes();
        let record = encode(&DeliveryRecord::from_delivery(delivery));
        let pending = delivery.state == DeliveryState::Pending;
        let _gate = self.transaction_gate();
        self.kv.transaction("delivery", |tx| {
            let was_pending = tx.remove(Tree::Outbox, &key)?;
            let was_done = tx.remove(Tree::OutboxDone, &key)?;
            if !was_pending && !was_done {
                return Ok(false);
            }
            let target = if pending {
                Tree::Outbox
            } else {
                Tree::OutboxDone
            };
            tx.insert(target, &key, &record)?;
            Ok(true)
        })
    }

    /// Queues one email outside any change (an admin's test, say).
    pub fn queue_delivery(
        &self,
        key: &str,
        address: &str,
        digest: bool,
        items: Vec<Item>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.queue_row(key, address, digest, items, None, now)
    }

    fn queue_row(
        &self,
        key: &str,
        address: &str,
        digest: bool,
        items: Vec<Item>,
        prepared: Option<Prepared>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let id = self.kv.generate_id()?;
        let record = DeliveryRecord {
            v: 1,
            key: key.to_owned(),
            address: normalise_address(address),
            digest,
            items,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt: now,
            created: now,
            last_error: None,
            finished_at: None,
            prepared,
        };
        self.kv
            .insert(Tree::Outbox, &id.to_be_bytes(), &encode(&record))?;
        Ok(id)
    }

    /// Queues a message composed elsewhere, to be sent as it is (with the
    /// recipient's suppression checked at send time, like every row).
    pub fn queue_prepared(
        &self,
        key: &str,
        address: &str,
        prepared: Prepared,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.queue_row(key, address, false, Vec::new(), Some(prepared), now)
    }

    /// Removes finished rows (sent, failed, cancelled) that finished before
    /// `before`. Returns how many.
    pub fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut pruned = 0;
        for delivery in self.rows(Tree::OutboxDone)? {
            if delivery.finished_at.is_some_and(|at| at < before) {
                self.kv
                    .remove(Tree::OutboxDone, &delivery.id.to_be_bytes())?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    /// Addresses with changes waiting for a digest, sorted.
    pub fn digest_addresses(&self) -> Result<Vec<String>, StoreError> {
        let mut addresses: Vec<String> = Vec::new();
        for (key, _) in self.kv.collect(Tree::Digests, b"")? {
            let end = key.iter().position(|&b| b == 0).unwrap_or(key.len());
            let address = String::from_utf8_lossy(&key[..end]).into_owned();
            if addresses.last() != Some(&address) {
                addresses.push(address);
            }
        }
        Ok(addresses)
    }

    /// The changes waiting for one subscriber's digest, oldest first.
    pub fn digest_entries(&self, address: &str) -> Result<Vec<DigestEntry>, StoreError> {
        let address = normalise_address(address);
        self.kv
            .collect(Tree::Digests, &digest_prefix(&address))?
            .into_iter()
            .map(|(key, value)| {
                let id = id_from_key(&key).ok_or_else(|| self.corrupt("digest", "bad key"))?;
                let record: DigestRecord =
                    decode(&value).map_err(|reason| self.corrupt("digest", reason))?;
                Ok(DigestEntry {
                    id,
                    address: address.clone(),
                    item: record.item,
                })
            })
            .collect()
    }

    /// Turns waiting digest entries into one outbox row keyed `key`, in one
    /// transaction: the entries are removed as the row is written, so a
    /// crash can neither lose them nor send them twice. Entries already gone
    /// (a concurrent `forget`) are left out; with none left, nothing is
    /// written and `None` is returned.
    pub fn roll_up_digest(
        &self,
        address: &str,
        entries: &[DigestEntry],
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        if entries.is_empty() {
            return Ok(None);
        }
        let address = normalise_address(address);
        let id = self.kv.generate_id()?;
        let _gate = self.transaction_gate();
        self.kv.transaction("digest", |tx| {
            let mut items = Vec::with_capacity(entries.len());
            for entry in entries {
                if tx.remove(Tree::Digests, &digest_key(&address, entry.id))? {
                    items.push(entry.item.clone());
                }
            }
            if items.is_empty() {
                return Ok(None);
            }
            let record = DeliveryRecord {
                v: 1,
                key: key.to_owned(),
                address: address.clone(),
                digest: true,
                items,
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt: now,
                created: now,
                last_error: None,
                finished_at: None,
                prepared: None,
            };
            tx.insert(Tree::Outbox, &id.to_be_bytes(), &encode(&record))?;
            Ok(Some(id))
        })
    }

    /// Removes every outbox row and digest entry for an address: part of
    /// erasing a person's data, and of an unsubscribe taking effect at once.
    pub fn purge_address(&self, address: &str) -> Result<Purged, StoreError> {
        let address = normalise_address(address);
        let mut purged = Purged::default();
        for tree in [Tree::Outbox, Tree::OutboxDone] {
            for delivery in self.rows(tree)? {
                if delivery.address.eq_ignore_ascii_case(&address) {
                    self.kv.remove(tree, &delivery.id.to_be_bytes())?;
                    purged.deliveries += 1;
                }
            }
        }
        // Case-insensitively, like the rows above: erasure errs on the side
        // of removing too much, never too little.
        for stored in self.digest_addresses()? {
            if !stored.eq_ignore_ascii_case(&address) {
                continue;
            }
            for (key, _) in self.kv.collect(Tree::Digests, &digest_prefix(&stored))? {
                self.kv.remove(Tree::Digests, &key)?;
                purged.digest_entries += 1;
            }
        }
        Ok(purged)
    }

    fn decode_delivery(&self, key: &[u8], value: &[u8]) -> Result<Delivery, StoreError> {
        let id = id_from_key(key).ok_or_else(|| self.corrupt("delivery", "bad key"))?;
        let record: DeliveryRecord =
            decode(value).map_err(|reason| self.corrupt("delivery", reason))?;
        Ok(record.into_delivery(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{Block, BlockKind};
    use crate::store::{NewChange, NewVersion, WatchState};

    fn commit(store: &Store, text: &str, notify: Option<Notify>) -> u64 {
        let blocks = vec![Block::new(BlockKind::Paragraph, text)];
        let version = NewVersion {
            seen_at: Utc::now(),
            blocks: &blocks,
            extractor_version: 1,
            change: store
                .watch_state("w")
                .expect("state")
                .latest_version
                .map(|_| NewChange {
                    changed_words: 1,
                    detail: serde_json::value::to_raw_value(&serde_json::json!({})).expect("json"),
                }),
            facts: None,
            notify,
        };
        store
            .commit_version("w", &version, &WatchState::default())
            .expect("commit")
    }

    fn notify(recipients: &[(&str, bool)]) -> Notify {
        Notify {
            url: "https://example.org/".to_owned(),
            tags: vec!["lsc".to_owned()],
            recipients: recipients
                .iter()
                .map(|(address, digest)| Recipient {
                    address: (*address).to_owned(),
                    digest: *digest,
                })
                .collect(),
        }
    }

    #[test]
    fn a_change_queues_rows_and_digest_entries_with_its_snapshot() {
        let store = Store::temporary().expect("store");
        // A first version is not a change: nobody is told.
        commit(&store, "one", Some(notify(&[("a@example.org", false)])));
        assert!(store.deliveries().expect("rows").is_empty());

        let n = commit(
            &store,
            "two",
            Some(notify(&[("a@example.org", false), ("b@example.org", true)])),
        );
        let rows = store.deliveries().expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].key, change_key("w", n, "a@example.org"));
        assert_eq!(rows[0].items[0].version, n);
        assert_eq!(rows[0].state, DeliveryState::Pending);
        assert_eq!(store.outbox_depth().expect("depth"), 1);
        assert_eq!(
            store.digest_addresses().expect("addresses"),
            ["b@example.org"]
        );
        assert_eq!(store.digest_entries("b@example.org").expect("e").len(), 1);
    }

    #[test]
    fn rolling_up_a_digest_moves_entries_into_one_row_once() {
        let store = Store::temporary().expect("store");
        commit(&store, "one", None);
        commit(&store, "two", Some(notify(&[("b@example.org", true)])));
        commit(&store, "three", Some(notify(&[("b@example.org", true)])));
        let entries = store.digest_entries("b@example.org").expect("entries");
        assert_eq!(entries.len(), 2);
        let now = Utc::now();
        let key = digest_delivery_key("b@example.org", now);
        let id = store
            .roll_up_digest("b@example.org", &entries, &key, now)
            .expect("roll up")
            .expect("a row");
        let row = store.delivery(id).expect("get").expect("row");
        assert!(row.digest);
        assert_eq!(row.items.len(), 2);
        assert!(store.digest_addresses().expect("addresses").is_empty());
        // The same entries again: already gone, nothing written.
        assert_eq!(
            store
                .roll_up_digest("b@example.org", &entries, &key, now)
                .expect("again"),
            None
        );
        assert_eq!(store.deliveries().expect("rows").len(), 1);
    }

    #[test]
    fn updates_prune_and_purge() {
        let store = Store::temporary().expect("store");
        let now = Utc::now();
        let id = store
            .queue_delivery("test:1", "c@example.org", false, Vec::new(), now)
            .expect("queue");
        let mut row = store.delivery(id).expect("get").expect("row");
        row.state = DeliveryState::Sent;
        row.finished_at = Some(now - chrono::Duration::days(30));
        assert!(store.update_delivery(&row).expect("update"));
        assert_eq!(store.outbox_depth().expect("depth"), 0);
        assert_eq!(
            store
                .prune_deliveries(now - chrono::Duration::days(7))
                .expect("prune"),
            1
        );
        assert!(!store.update_delivery(&row).expect("gone"));

        store
            .queue_delivery("test:2", "d@example.org", false, Vec::new(), now)
            .expect("queue");
        commit(&store, "one", None);
        commit(&store, "two", Some(notify(&[("d@example.org", true)])));
        let purged = store.purge_address("D@Example.org").expect("purge");
        assert_eq!(purged.deliveries, 1);
        assert_eq!(purged.digest_entries, 1);
        assert!(store.deliveries().expect("rows").is_empty());
    }

    #[test]
    fn delivery_records_newer_than_this_build_are_refused() {
        let err = decode::<DeliveryRecord>(br#"{"v":2}"#).expect_err("too new");
        assert!(err.contains("newer"), "{err}");
    }
}
