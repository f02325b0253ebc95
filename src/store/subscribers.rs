//! Subscribers and suppressions.
//!
//! Two trees, both keyed by the normalised address:
//! - `subscribers`: `SubscriberRecord` v1, who gets briefings about what;
//! - `suppressed`: `SuppressionRecord` v1, addresses never to be mailed. It is
//!   separate from `subscribers` so that removing or re-importing a subscriber
//!   never lifts a suppression.

use super::kv::{Tree, TxError};
use super::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

/// The key of a suppression: the whole address lower-cased. Unlike
/// subscriber keys, the local part is folded too, so that suppressing
/// `Ada@example.org` also stops `ada@example.org`: a suppression errs on the
/// side of not mailing.
pub(super) fn suppression_key(address: &str) -> String {
    normalise_address(address).to_lowercase()
}

impl Store {
    /// Stores a subscriber, replacing any with the same (normalised)
    /// address. Returns whether the address was new. It does not look at the
    /// suppression list: callers decide what a suppressed address means
    /// (import skips it; delivery must check [`Store::suppression`]).
    pub fn put_subscriber(&self, subscriber: &Subscriber) -> Result<bool, StoreError> {
        let record = SubscriberRecord::from(subscriber);
        self.kv.insert(
            Tree::Subscribers,
            record.address.as_bytes(),
            &encode(&record),
        )
    }

    /// The subscriber with this address, if any.
    pub fn subscriber(&self, address: &str) -> Result<Option<Subscriber>, StoreError> {
        let key = normalise_address(address);
        match self.kv.get(Tree::Subscribers, key.as_bytes())? {
            Some(bytes) => self.decode_subscriber(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every subscriber, in address order.
    pub fn subscribers(&self) -> Result<Vec<Subscriber>, StoreError> {
        self.kv
            .collect(Tree::Subscribers, b"")?
            .into_iter()
            .map(|(_, bytes)| self.decode_subscriber(&bytes))
            .collect()
    }

    /// Up to `limit` subscribers in address order, starting after the
    /// address `after` (from the first with `None`): for reading every
    /// subscriber a page at a time, in bounded memory.
    pub fn subscribers_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscriber>, StoreError> {
        let mut from = after.map(|a| a.as_bytes().to_vec()).unwrap_or_default();
        if after.is_some() {
            // The smallest key after `after`.
            from.push(0);
        }
        let mut page = Vec::new();
        self.kv
            .scan_from(Tree::Subscribers, &from, &mut |_, bytes| {
                page.push(self.decode_subscriber(bytes)?);
                Ok(if page.len() >= limit {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                })
            })?;
        Ok(page)
    }

    /// Removes a subscriber. The suppression list is untouched. Returns
    /// whether there was one.
    pub fn remove_subscriber(&self, address: &str) -> Result<bool, StoreError> {
        let key = normalise_address(address);
        self.kv.remove(Tree::Subscribers, key.as_bytes())
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
        let _gate = self.transaction_gate();
        let mut forgotten = self.kv.transaction("suppression", |tx| {
            let mut forgotten = Forgotten {
                subscriber: tx.remove(Tree::Subscribers, key.as_bytes())?,
                ..Forgotten::default()
            };
            if let Some(bytes) = tx.get(Tree::Suppressed, suppressed_key.as_bytes())? {
                match decode::<SuppressionRecord>(&bytes) {
                    Ok(record) if record.requested => {
                        let kept = SuppressionRecord {
                            v: 1,
                            reason: FORGOTTEN_REASON.to_owned(),
                            at: record.at,
                            requested: true,
                        };
                        tx.insert(Tree::Suppressed, suppressed_key.as_bytes(), &encode(&kept))?;
                        forgotten.suppression_kept = true;
                    }
                    // An unreadable entry is erased too: erasure must not
                    // fail on a damaged record.
                    _ => {
                        tx.remove(Tree::Suppressed, suppressed_key.as_bytes())?;
                        forgotten.suppression_erased = true;
                    }
                }
            }
            Ok::<_, TxError>(forgotten)
        })?;
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
        self.kv
            .insert(Tree::Suppressed, key.as_bytes(), &encode(&record))?;
        Ok(())
    }

    /// Lifts a suppression. Returns whether there was one.
    pub fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        let key = suppression_key(address);
        self.kv.remove(Tree::Suppressed, key.as_bytes())
    }

    /// The suppression of this address, if it is suppressed.
    pub fn suppression(&self, address: &str) -> Result<Option<Suppression>, StoreError> {
        let key = suppression_key(address);
        match self.kv.get(Tree::Suppressed, key.as_bytes())? {
            Some(bytes) => self.decode_suppression(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every suppressed address, in address order.
    pub fn suppressed(&self) -> Result<Vec<Suppression>, StoreError> {
        self.kv
            .collect(Tree::Suppressed, b"")?
            .into_iter()
            .map(|(key, bytes)| {
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
pub(super) const FORGOTTEN_REASON: &str = "asked not to be mailed (personal data erased)";

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SubscriberRecord {
    pub(super) v: u32,
    pub(super) address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(super) name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) watches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) kinds: Vec<String>,
    pub(super) cadence: CadenceRecord,
    pub(super) confirmed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) consent_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) consent_source: Option<String>,
    pub(super) created: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum CadenceRecord {
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
                crate::core::classify::Kind::parse(name)
                    .ok_or_else(|| format!("unknown kind `{name}`"))
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
pub(super) struct SuppressionRecord {
    pub(super) v: u32,
    #[serde(default)]
    pub(super) reason: String,
    pub(super) at: DateTime<Utc>,
    #[serde(default)]
    pub(super) requested: bool,
}

impl Versioned for SuppressionRecord {
    const LATEST: u32 = 1;
}

#[cfg(test)]
mod subscriber_tests {
    use super::*;
    use crate::core::classify::Kind;

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
