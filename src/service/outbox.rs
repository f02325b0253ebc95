//! `tidings outbox …` as values: list, retry and cancel delivery rows, and
//! list the digest entries waiting for their subscriber's schedule. Run on
//! the store by the daemon for the CLI over the control socket, or by the
//! CLI itself when no daemon runs.

use chrono::{DateTime, Utc};

use crate::mail;
use crate::store::{Delivery, DeliveryState, Store, StoreError};

/// An admin's outbox command (`tidings outbox …`), run on the store by the
/// daemon when it is running (it holds the store) or by the CLI itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum OutboxCommand {
    /// List rows: pending and failed ones, or every row with `all`.
    List {
        /// Include sent and cancelled rows.
        all: bool,
    },
    /// Make rows due now: the given ids, or every failed row with
    /// `failed`. Failed and cancelled rows become pending again.
    Retry {
        /// Row ids.
        ids: Vec<u64>,
        /// Every failed row.
        failed: bool,
    },
    /// Cancel pending or failed rows: they are kept, marked cancelled, and
    /// never sent.
    Cancel {
        /// Row ids.
        ids: Vec<u64>,
    },
}

/// One row as `tidings outbox list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxRow {
    /// The row id.
    pub id: u64,
    /// pending, sent, failed or cancelled.
    pub state: String,
    /// The recipient.
    pub address: String,
    /// `immediate` or `digest`.
    pub cadence: String,
    /// The changes, as `WATCH@N`.
    pub changes: Vec<String>,
    /// Sends tried.
    pub attempts: u32,
    /// When it is next tried (pending rows).
    pub next_attempt: Option<DateTime<Utc>>,
    /// When it was queued.
    pub created: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// The last error.
    pub last_error: Option<String>,
    /// The Message-ID it is (or was) sent with.
    pub message_id: String,
}

/// The answer to an [`OutboxCommand`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxReply {
    /// The rows listed, or the rows changed.
    pub rows: Vec<OutboxRow>,
    /// Ids asked about that do not exist (or are in a state the command
    /// cannot change).
    pub skipped: Vec<u64>,
    /// An error, when the command could not run.
    pub error: Option<String>,
    /// Changes waiting for a subscriber's next digest (listed with every
    /// `list`): not rows yet, but briefings owed.
    #[serde(default)]
    pub digests: Vec<DigestRow>,
}

/// A change waiting for a subscriber's digest, as `tidings outbox list`
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DigestRow {
    /// The subscriber.
    pub address: String,
    /// The change, as `WATCH@N`.
    pub change: String,
    /// When the change was seen.
    pub seen_at: DateTime<Utc>,
    /// When the digest is due to be sent: the next fire of the subscriber's
    /// schedule (or the worker's next pass, when they no longer take a
    /// digest).
    pub send_at: DateTime<Utc>,
}

/// Every digest entry waiting, with when it will go.
fn digest_rows(store: &Store, now: DateTime<Utc>) -> Result<Vec<DigestRow>, StoreError> {
    let mut rows = Vec::new();
    for address in store.digest_addresses()? {
        let send_at = match store.subscriber(&address)?.map(|s| s.cadence) {
            Some(crate::store::Cadence::Digest { cron, timezone }) => {
                crate::core::schedule::Schedule::parse(&cron, timezone)
                    .ok()
                    .and_then(|schedule| schedule.upcoming(now, 1).first().copied())
                    .map_or(now, |at| at.with_timezone(&Utc))
            }
            _ => now,
        };
        for entry in store.digest_entries(&address)? {
            rows.push(DigestRow {
                address: address.clone(),
                change: format!("{}@{}", entry.item.watch, entry.item.version),
                seen_at: entry.item.seen_at,
                send_at,
            });
        }
    }
    rows.sort_by(|a, b| {
        a.send_at
            .cmp(&b.send_at)
            .then_with(|| a.address.cmp(&b.address))
    });
    Ok(rows)
}

/// Runs an outbox command on the store. `domain` is the Message-ID domain.
pub fn outbox_command(
    store: &Store,
    command: &OutboxCommand,
    domain: &str,
    now: DateTime<Utc>,
) -> Result<OutboxReply, StoreError> {
    let row = |d: &Delivery| OutboxRow {
        id: d.id,
        state: d.state.as_str().to_owned(),
        address: d.address.clone(),
        cadence: if d.digest { "digest" } else { "immediate" }.to_owned(),
        changes: d
            .items
            .iter()
            .map(|item| format!("{}@{}", item.watch, item.version))
            .collect(),
        attempts: d.attempts,
        next_attempt: (d.state == DeliveryState::Pending).then_some(d.next_attempt),
        created: d.created,
        finished_at: d.finished_at,
        last_error: d.last_error.clone(),
        message_id: mail::message_id(&d.key, domain),
    };
    let mut reply = OutboxReply::default();
    match command {
        OutboxCommand::List { all } => {
            reply.rows = store
                .deliveries()?
                .iter()
                .filter(|d| {
                    *all || matches!(d.state, DeliveryState::Pending | DeliveryState::Failed)
                })
                .map(row)
                .collect();
            reply.digests = digest_rows(store, now)?;
        }
        OutboxCommand::Retry { ids, failed } => {
            let mut targets: Vec<Delivery> = Vec::new();
            for id in ids {
                match store.delivery(*id)? {
                    Some(d) if d.state != DeliveryState::Sent => targets.push(d),
                    _ => reply.skipped.push(*id),
                }
            }
            if *failed {
                targets.extend(
                    store
                        .deliveries()?
                        .into_iter()
                        .filter(|d| d.state == DeliveryState::Failed && !ids.contains(&d.id)),
                );
            }
            for mut d in targets {
                d.state = DeliveryState::Pending;
                d.next_attempt = now;
                d.finished_at = None;
                // A fresh start for the give-up clock too.
                d.created = now;
                if store.update_delivery(&d)? {
                    reply.rows.push(row(&d));
                }
            }
        }
        OutboxCommand::Cancel { ids } => {
            for id in ids {
                match store.delivery(*id)? {
                    Some(mut d)
                        if matches!(d.state, DeliveryState::Pending | DeliveryState::Failed) =>
                    {
                        d.state = DeliveryState::Cancelled;
                        d.finished_at = Some(now);
                        d.last_error = Some("cancelled by the admin".to_owned());
                        if store.update_delivery(&d)? {
                            reply.rows.push(row(&d));
                        }
                    }
                    _ => reply.skipped.push(*id),
                }
            }
        }
    }
    store.flush()?;
    Ok(reply)
}
