//! Sending what the outbox holds: the delivery worker.
//!
//! The pipeline writes a delivery row (or a digest entry) for every
//! subscriber a change concerns, in the same transaction as the snapshot.
//! This module turns those rows into email:
//!
//! 1. **Digests.** When a digest subscriber's schedule fires, the changes
//!    waiting for them become one row ([`Store::roll_up_digest`], one
//!    transaction).
//! 2. **Sending.** Due rows go first-queued first, paced to
//!    `[mail] max_per_second`, each composed from the stored change at send
//!    time and sent under the mailer's overall timeout.
//! 3. **Outcomes.** Sent rows are marked and the store flushed before the
//!    next send, so a kill re-sends at most the one briefing in flight, with
//!    the same Message-ID (it derives from the row's delivery key).
//!    Temporary failures (4xx, refused or dropped connections, timeouts) are
//!    retried with exponential backoff and jitter until `give_up_after`;
//!    permanent ones (5xx for the recipient) mark the row failed. An
//!    authentication or TLS failure pauses the whole queue: every send would
//!    fail the same way, and hammering the server with bad credentials can
//!    get the account locked. The pause is reported as a
//!    [`WorkerEvent::Paused`] (the daemon tells the admin) and probed again
//!    now and then, or lifted by a reload.
//!
//! Before sending, each row is checked against the subscriber as they are
//! now: a removed or suppressed subscriber's rows are cancelled, and only
//! the change kinds they still want are included.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{MailSettings, Schedule};
use crate::core::brief::{BriefChange, Briefing, Templates};
use crate::core::classify::{Assessment, Kind};
use crate::core::subscriptions;
use crate::mail::{self, MailError, Mailer, Outgoing};
pub use crate::service::outbox::{OutboxCommand, OutboxReply, OutboxRow, outbox_command};
use crate::store::{self, Cadence, Delivery, DeliveryState, Store, StoreError, Subscriber};

/// Rows read from the store per pass: enough to keep the sender busy
/// between scans, few enough that a huge backlog is not all in memory.
const BATCH: usize = 200;
/// How often a paused queue tries one send again.
const PAUSE_PROBE: Duration = Duration::from_secs(600);

/// Makes the unsubscribe token for an address (the web module's signed
/// token), when the web endpoint is configured.
pub type TokenMaker = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Links a briefing carries beyond the page itself.
#[derive(Clone, Default)]
pub struct Links {
    /// The web endpoint's public base URL: each change links to
    /// `BASE/changes/WATCH~N`.
    pub base_url: Option<url::Url>,
    /// Signs unsubscribe tokens for `[mail] unsubscribe_url`.
    pub unsubscribe_token: Option<TokenMaker>,
    /// Signs preferences tokens: the footer links to
    /// `BASE/preferences/TOKEN` (with `base_url`).
    pub preferences_token: Option<TokenMaker>,
    /// What readers call the watches and tags.
    pub titles: crate::core::titles::Titles,
    /// Who runs the service, and how to reach them (`[web.operator]`).
    pub operator: Option<crate::config::Operator>,
    /// The privacy notice's address.
    pub privacy_url: Option<String>,
}

impl Links {
    /// The links a briefing carries under `config`: the same for the
    /// daemon's worker and for `tidings outbox send`. Reads the web secret
    /// when `[web]` is on.
    pub fn from_config(
        config: &crate::config::Config,
    ) -> Result<Self, crate::core::token::KeyError> {
        let mut links = Self {
            titles: config.titles(),
            ..Self::default()
        };
        if let Some(web) = &config.web {
            let key = crate::core::token::TokenKey::from_file(&web.secret_file)?;
            links.base_url = Some(web.base_url.clone());
            let preferences_key = key.clone();
            links.unsubscribe_token = Some(Arc::new(move |address: &str| {
                crate::core::token::unsubscribe_token(&key, address)
            }));
            links.preferences_token = Some(Arc::new(move |address: &str| {
                crate::core::token::preferences_token(&preferences_key, address)
            }));
            links.operator.clone_from(&web.operator);
            links.privacy_url = web.privacy_href();
        }
        Ok(links)
    }
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("base_url", &self.base_url)
            .field("unsubscribe_token", &self.unsubscribe_token.is_some())
            .field("preferences_token", &self.preferences_token.is_some())
            .finish()
    }
}

/// What one pass of the worker did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Digests rolled up into rows.
    pub digests: usize,
    /// Briefings handed over.
    pub sent: usize,
    /// Temporary failures, to be retried.
    pub retried: usize,
    /// Rows marked failed.
    pub failed: usize,
    /// Rows cancelled (the subscriber left, or wants none of it now).
    pub cancelled: usize,
    /// Why the queue is paused, if it is.
    pub paused: Option<String>,
}

/// What the worker tells the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEvent {
    /// Sending stopped: the server refused our credentials or TLS failed.
    Paused {
        /// The error, naming the server.
        reason: String,
    },
    /// A send succeeded after a pause.
    Resumed,
}

/// What the worker shows in `tidings status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxStatus {
    /// Pending rows.
    pub depth: u64,
    /// Briefings sent since the daemon started.
    pub sent: u64,
    /// Temporary failures since start.
    pub retried: u64,
    /// Rows that failed for good since start.
    pub failed: u64,
    /// Why sending is paused, if it is.
    pub paused: Option<String>,
    /// Where mail goes.
    pub transport: String,
}

/// Messages to a running worker.
pub enum WorkerMessage {
    /// Something may be due: a change was committed, or an admin retried.
    Wake,
    /// New settings after a reload; lifts a pause.
    Reconfigure(Box<Deliverer>),
}

/// Sends the outbox: owns the mailer, the templates and the pacing.
pub struct Deliverer {
    store: Store,
    mailer: Arc<Mailer>,
    settings: MailSettings,
    templates: Arc<Templates>,
    links: Links,
    last_send: Option<tokio::time::Instant>,
    paused: Option<Pause>,
    metrics: Option<Arc<crate::core::metrics::Metrics>>,
}

#[derive(Debug, Clone)]
struct Pause {
    reason: String,
    probe_at: DateTime<Utc>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("mailer", &self.mailer)
            .field("links", &self.links)
            .field("paused", &self.paused)
            .finish_non_exhaustive()
    }
}

enum Composed {
    Ready {
        subscriber: Box<Subscriber>,
        briefing: Box<Briefing>,
        token: Option<String>,
    },
    Cancel(String),
    Fail(String),
}

enum Sendable {
    Message(Box<lettre::Message>),
    Cancel(String),
    Fail(String),
}

impl Deliverer {
    /// A worker for `store` sending through `mailer`.
    pub fn new(
        store: Store,
        mailer: Arc<Mailer>,
        settings: MailSettings,
        templates: Arc<Templates>,
        links: Links,
    ) -> Self {
        Self {
            store,
            mailer,
            settings,
            templates,
            links,
            last_send: None,
            paused: None,
            metrics: None,
        }
    }

    /// Counts sends and send failures into `metrics` (for `/metrics`).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<crate::core::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Where mail goes.
    pub fn transport(&self) -> &str {
        self.mailer.describe()
    }

    /// Turns the digest entries whose schedule has fired into rows.
    pub fn roll_up_digests(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut rolled = 0;
        for address in self.store.digest_addresses()? {
            let subscriber = self.store.subscriber(&address)?;
            // A subscriber who left, or who switched to immediate, gets (or
            // is cancelled) what is waiting now rather than never.
            let cutoff = match subscriber.as_ref().map(|s| &s.cadence) {
                Some(Cadence::Digest { cron, timezone }) => {
                    match Schedule::parse(cron, *timezone) {
                        Ok(schedule) => last_fire(&schedule, now),
                        Err(error) => {
                            tracing::error!(%address, %cron, %error, "digest schedule unreadable; sending now");
                            Some(now)
                        }
                    }
                }
                _ => Some(now),
            };
            let Some(cutoff) = cutoff else { continue };
            let entries: Vec<_> = self
                .store
                .digest_entries(&address)?
                .into_iter()
                .filter(|entry| entry.item.seen_at <= cutoff)
                .collect();
            let key = store::digest_delivery_key(&address, cutoff);
            if self
                .store
                .roll_up_digest(&address, &entries, &key, now)?
                .is_some()
            {
                rolled += 1;
            }
        }
        Ok(rolled)
    }

    /// When the worker next has something to do: the earliest retry, the
    /// next digest due, or the next probe of a paused queue.
    pub fn next_wake(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        if let Some(pause) = &self.paused {
            return Ok(Some(pause.probe_at));
        }
        let mut wake = self.store.next_delivery_attempt()?;
        for address in self.store.digest_addresses()? {
            let next = match self.store.subscriber(&address)?.map(|s| s.cadence) {
                Some(Cadence::Digest { cron, timezone }) => Schedule::parse(&cron, timezone)
                    .ok()
                    .and_then(|schedule| schedule.cron.after(&now.with_timezone(&timezone)).next())
                    .map(|fire| fire.with_timezone(&Utc)),
                _ => Some(now),
            };
            wake = match (wake, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(wake)
    }

    /// One pass: rolls up due digests, then sends every due row, stopping
    /// early at `stop` (between sends) or on a pause.
    pub async fn deliver_due(&mut self, stop: &CancellationToken) -> Result<Round, StoreError> {
        let mut round = Round::default();
        let now = Utc::now();
        if let Some(pause) = &self.paused {
            if now < pause.probe_at {
                round.paused = Some(pause.reason.clone());
                return Ok(round);
            }
        }
        round.digests = self.blocking(move |d| d.roll_up_digests(now)).await?;
        loop {
            let due = self
                .blocking(|d| d.store.due_deliveries(Utc::now(), BATCH))
                .await?;
            if due.is_empty() {
                break;
            }
            for delivery in due {
                if stop.is_cancelled() {
                    return Ok(round);
                }
                self.deliver(delivery, &mut round).await?;
                if round.paused.is_some() {
                    return Ok(round);
                }
            }
        }
        let keep = chrono::Duration::from_std(self.settings.keep_finished).unwrap_or_default();
        self.blocking(move |d| d.store.prune_deliveries(now - keep))
            .await?;
        Ok(round)
    }

    /// Sends one row and records the outcome.
    async fn deliver(
        &mut self,
        mut delivery: Delivery,
        round: &mut Round,
    ) -> Result<(), StoreError> {
        let prepared = {
            let row = delivery.clone();
            self.blocking(move |d| d.prepare(&row)).await?
        };
        let now = Utc::now();
        match prepared {
            Sendable::Cancel(reason) => {
                tracing::info!(id = delivery.id, address = %delivery.address, %reason, "briefing cancelled");
                delivery.state = DeliveryState::Cancelled;
                delivery.last_error = Some(reason);
                delivery.finished_at = Some(now);
                round.cancelled += 1;
            }
            Sendable::Fail(reason) => {
                tracing::error!(id = delivery.id, address = %delivery.address, %reason, "briefing cannot be composed");
                delivery.state = DeliveryState::Failed;
                delivery.last_error = Some(reason);
                delivery.finished_at = Some(now);
                round.failed += 1;
            }
            Sendable::Message(message) => {
                self.pace().await;
                let result = self.mailer.send(&message).await;
                if let Some(metrics) = &self.metrics {
                    metrics.record_send(result.is_err());
                }
                let now = Utc::now();
                match result {
                    Ok(_) => {
                        delivery.attempts += 1;
                        delivery.state = DeliveryState::Sent;
                        delivery.last_error = None;
                        delivery.finished_at = Some(now);
                        round.sent += 1;
                        tracing::info!(id = delivery.id, address = %delivery.address, key = %delivery.key, "briefing sent");
                        if self.paused.take().is_some() {
                            tracing::warn!("mail is flowing again; the outbox is no longer paused");
                        }
                    }
                    Err(MailError::Transient(reason)) => {
                        delivery.attempts += 1;
                        let age = (now - delivery.created).to_std().unwrap_or_default();
                        if age >= self.settings.give_up_after {
                            tracing::error!(id = delivery.id, address = %delivery.address, %reason, attempts = delivery.attempts, "briefing given up after retrying");
                            delivery.state = DeliveryState::Failed;
                            delivery.finished_at = Some(now);
                            round.failed += 1;
                        } else {
                            let wait = retry_wait(
                                delivery.attempts,
                                self.settings.retry_base,
                                self.settings.retry_max,
                                &delivery.key,
                            );
                            delivery.next_attempt =
                                now + chrono::Duration::from_std(wait).unwrap_or_default();
                            tracing::warn!(id = delivery.id, address = %delivery.address, %reason, retry_in = %humantime::format_duration(wait), "briefing will be retried");
                            round.retried += 1;
                        }
                        delivery.last_error = Some(reason);
                    }
                    Err(MailError::Permanent(reason)) => {
                        delivery.attempts += 1;
                        tracing::error!(id = delivery.id, address = %delivery.address, %reason, "briefing refused for good");
                        delivery.state = DeliveryState::Failed;
                        delivery.last_error = Some(reason);
                        delivery.finished_at = Some(now);
                        round.failed += 1;
                    }
                    Err(error @ (MailError::Auth(_) | MailError::Setup(_))) => {
                        // Not the row's fault: it stays pending, its attempt
                        // uncounted, and the whole queue waits.
                        let reason = format!("{} ({})", error, self.mailer.describe());
                        tracing::error!(%reason, "outbox paused: fix the [mail] settings and reload");
                        delivery.last_error = Some(reason.clone());
                        self.paused = Some(Pause {
                            reason: reason.clone(),
                            probe_at: now
                                + chrono::Duration::from_std(PAUSE_PROBE).unwrap_or_default(),
                        });
                        round.paused = Some(reason);
                    }
                }
            }
        }
        let row = delivery;
        self.blocking(move |d| {
            d.store.update_delivery(&row)?;
            // Flushed before the next send: a kill now re-sends nothing.
            d.store.flush()
        })
        .await
    }

    /// Composes a row's briefing from the stored changes and the subscriber
    /// as they are now, or says why it must not be sent.
    fn compose(&self, delivery: &Delivery) -> Result<Composed, StoreError> {
        let Some(subscriber) = self.store.subscriber(&delivery.address)? else {
            return Ok(Composed::Cancel("no longer subscribed".to_owned()));
        };
        if self.store.suppression(&delivery.address)?.is_some() {
            return Ok(Composed::Cancel("the address is suppressed".to_owned()));
        }
        if let Some(prepared) = &delivery.prepared {
            let token = self
                .links
                .unsubscribe_token
                .as_ref()
                .map(|make| make(&subscriber.address));
            return Ok(Composed::Ready {
                subscriber: Box::new(subscriber),
                briefing: Box::new(Briefing {
                    subject: prepared.subject.clone(),
                    text: prepared.text.clone(),
                    html: prepared.html.clone(),
                }),
                token,
            });
        }
        let changes = self.brief_changes(&subscriber, delivery)?;
        if changes.is_empty() {
            return Ok(Composed::Cancel(
                "nothing the subscriber still wants".to_owned(),
            ));
        }
        let token = self
            .links
            .unsubscribe_token
            .as_ref()
            .map(|make| make(&subscriber.address));
        let unsubscribe = mail::unsubscribe_link(&self.settings, token.as_deref());
        let preferences = match (&self.links.base_url, &self.links.preferences_token) {
            (Some(base), Some(make)) => Some(format!(
                "{}/preferences/{}",
                base.as_str().trim_end_matches('/'),
                make(&subscriber.address)
            )),
            _ => None,
        };
        let operator = self.links.operator.as_ref();
        let footer = crate::core::brief::Footer {
            unsubscribe_url: unsubscribe.as_deref(),
            preferences_url: preferences.as_deref(),
            operator: operator.map(|o| o.name.as_str()),
            operator_contact: operator.and_then(|o| o.contact.as_deref()),
            privacy_url: self.links.privacy_url.as_deref(),
            replies_handled: self.settings.replies_handled,
        };
        match self.templates.compose_with(&subscriber, &changes, &footer) {
            Ok(Some(briefing)) => Ok(Composed::Ready {
                subscriber: Box::new(subscriber),
                briefing: Box::new(briefing),
                token,
            }),
            Ok(None) => Ok(Composed::Cancel("nothing to send".to_owned())),
            Err(error) => Ok(Composed::Fail(error.to_string())),
        }
    }

    /// The briefing a row would send now, without sending it (for the demo
    /// and for admins looking at the outbox).
    pub fn preview(&self, delivery: &Delivery) -> Result<Option<Briefing>, StoreError> {
        Ok(match self.compose(delivery)? {
            Composed::Ready { briefing, .. } => Some(*briefing),
            Composed::Cancel(_) | Composed::Fail(_) => None,
        })
    }

    /// The message for a row, with its headers.
    fn prepare(&self, delivery: &Delivery) -> Result<Sendable, StoreError> {
        let (subscriber, briefing, token) = match self.compose(delivery)? {
            Composed::Ready {
                subscriber,
                briefing,
                token,
            } => (subscriber, briefing, token),
            Composed::Cancel(reason) => return Ok(Sendable::Cancel(reason)),
            Composed::Fail(reason) => return Ok(Sendable::Fail(reason)),
        };
        let thread = (!delivery.digest)
            .then(|| delivery.items.first())
            .flatten()
            .map(|item| format!("{}:{}", delivery.address, item.watch));
        let outgoing = Outgoing {
            to: &subscriber.address,
            to_name: &subscriber.name,
            briefing: &briefing,
            delivery_key: &delivery.key,
            thread_key: thread.as_deref(),
            unsubscribe_token: token.as_deref(),
        };
        match mail::build_message(&self.settings, &outgoing) {
            Ok(message) => Ok(Sendable::Message(Box::new(message))),
            Err(error) => Ok(Sendable::Fail(error.to_string())),
        }
    }

    /// The changes of a row that this subscriber still wants.
    fn brief_changes(
        &self,
        subscriber: &Subscriber,
        delivery: &Delivery,
    ) -> Result<Vec<BriefChange>, StoreError> {
        let mut changes = Vec::new();
        for item in &delivery.items {
            let Some(record) = self.store.change(&item.watch, item.version)? else {
                tracing::warn!(watch = %item.watch, version = item.version, "a queued change is missing from the store");
                continue;
            };
            let assessment: Assessment = match serde_json::from_value(
                record.detail["assessment"].clone(),
            ) {
                Ok(assessment) => assessment,
                Err(error) => {
                    tracing::warn!(watch = %item.watch, version = item.version, %error, "a queued change is unreadable");
                    continue;
                }
            };
            // Joined as text, not with Url::join, so that a base with a
            // path (https://example.org/tidings) keeps it.
            let change_url = self.links.base_url.as_ref().map(|base| {
                format!(
                    "{}{}",
                    base.as_str().trim_end_matches('/'),
                    crate::web::change_path(&item.watch, item.version)
                )
            });
            for classified in assessment.changes {
                let kind = classified.kind;
                let wanted = if delivery.digest {
                    // A digest carries minor changes to those who ask for
                    // them; `wants_kind` knows the rule.
                    subscriptions::wants_kind(&digest_view(subscriber), kind)
                } else {
                    kind != Kind::Minor && subscriptions::wants_kind(subscriber, kind)
                };
                if !wanted {
                    continue;
                }
                let titles = &self.links.titles;
                let why =
                    subscriptions::why_titled(subscriber, &item.watch, &item.tags, &[kind], titles)
                        .or_else(|| {
                            subscriptions::why_titled(
                                &digest_view(subscriber),
                                &item.watch,
                                &item.tags,
                                &[kind],
                                titles,
                            )
                        })
                        .unwrap_or_else(|| "You subscribed to these briefings.".to_owned());
                changes.push(BriefChange {
                    watch: item.watch.clone(),
                    title: self.links.titles.watch(&item.watch).to_owned(),
                    url: item.url.clone(),
                    tags: item
                        .tags
                        .iter()
                        .map(|tag| self.links.titles.tag(tag).to_owned())
                        .collect(),
                    seen_at: record.detected_at,
                    kind,
                    summary: classified.summary,
                    evidence: classified.evidence,
                    why,
                    change_url: change_url.clone(),
                });
            }
        }
        Ok(changes)
    }

    /// Waits so that sends keep to `max_per_second`.
    async fn pace(&mut self) {
        let gap = Duration::from_secs(1) / self.settings.max_per_second.max(1);
        if let Some(last) = self.last_send {
            tokio::time::sleep_until(last + gap).await;
        }
        self.last_send = Some(tokio::time::Instant::now());
    }

    /// Runs store work off the async threads: sled reads are quick, but a
    /// flush waits for the disk.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Deliverer) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let view = self.view();
        tokio::task::spawn_blocking(move || work(&view))
            .await
            .unwrap_or_else(|join| {
                Err(StoreError::Corrupt {
                    path: std::path::PathBuf::new(),
                    what: "worker",
                    reason: format!("a store task failed: {join}"),
                })
            })
    }

    /// A copy sharing the store, mailer and templates, for blocking work.
    fn view(&self) -> Deliverer {
        Deliverer {
            store: self.store.clone(),
            mailer: Arc::clone(&self.mailer),
            settings: self.settings.clone(),
            templates: Arc::clone(&self.templates),
            links: self.links.clone(),
            last_send: None,
            paused: None,
            metrics: None,
        }
    }

    /// The worker loop for the daemon: a pass whenever woken, when a retry
    /// or digest falls due, and at least every minute; returns when `stop`
    /// is cancelled (after the send in flight, which has its own timeout).
    pub async fn run(
        mut self,
        mut messages: mpsc::UnboundedReceiver<WorkerMessage>,
        events: mpsc::UnboundedSender<WorkerEvent>,
        status: watch::Sender<OutboxStatus>,
        stop: CancellationToken,
    ) {
        let mut totals = OutboxStatus {
            transport: self.transport().to_owned(),
            ..OutboxStatus::default()
        };
        loop {
            let was_paused = self.paused.is_some();
            match self.deliver_due(&stop).await {
                Ok(round) => {
                    totals.sent += round.sent as u64;
                    totals.retried += round.retried as u64;
                    totals.failed += round.failed as u64;
                    if let Some(reason) = &round.paused {
                        if !was_paused {
                            let _ = events.send(WorkerEvent::Paused {
                                reason: reason.clone(),
                            });
                        }
                    } else if was_paused && round.sent > 0 {
                        let _ = events.send(WorkerEvent::Resumed);
                    }
                }
                Err(error) => tracing::error!(%error, "outbox pass failed; trying again shortly"),
            }
            let now = Utc::now();
            totals.paused = self.paused.as_ref().map(|p| p.reason.clone());
            totals.depth = self
                .blocking(|d| d.store.outbox_depth())
                .await
                .unwrap_or(totals.depth);
            status.send_replace(totals.clone());
            if stop.is_cancelled() {
                return;
            }
            let wake = self
                .blocking(move |d| d.next_wake(now))
                .await
                .ok()
                .flatten();
            let wait = wake
                .map_or(Duration::from_secs(60), |at| {
                    (at - now).to_std().unwrap_or(Duration::ZERO)
                })
                .clamp(Duration::from_millis(50), Duration::from_secs(60));
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
                message = messages.recv() => match message {
                    Some(WorkerMessage::Wake) => {}
                    Some(WorkerMessage::Reconfigure(next)) => {
                        let last_send = self.last_send;
                        self = *next;
                        self.last_send = last_send;
                        totals.transport = self.transport().to_owned();
                    }
                    None => return,
                },
            }
        }
    }
}

/// A subscriber seen as a digest reader, for `wants_kind` and `why` on a
/// row that was queued as a digest (their cadence may have changed since).
fn digest_view(subscriber: &Subscriber) -> Subscriber {
    let mut view = subscriber.clone();
    if matches!(view.cadence, Cadence::Immediate) {
        view.cadence = Cadence::Digest {
            cron: String::new(),
            timezone: chrono_tz::Europe::London,
        };
    }
    view
}

/// The latest fire of a schedule at or before `now`.
fn last_fire(schedule: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .cron
        .after(&now.with_timezone(&schedule.timezone))
        .next_back()
        .map(|fire| fire.with_timezone(&Utc))
        .filter(|fire| *fire <= now)
}

/// The wait before retry number `attempts`: `base` doubled per earlier
/// failure, capped at `max`, less up to a fifth (jitter, so that rows that
/// failed together do not all come back together). The jitter is derived
/// from the row's key, so it is the same on every run.
pub fn retry_wait(attempts: u32, base: Duration, max: Duration, key: &str) -> Duration {
    let doublings = attempts.saturating_sub(1).min(20);
    let full = base.saturating_mul(1u32 << doublings).min(max);
    let seed = blake3::hash(format!("{key}:{attempts}").as_bytes());
    let fraction = f64::from(seed.as_bytes()[0]) / 255.0 * 0.2;
    full.mul_f64(1.0 - fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_with_bounded_jitter() {
        let base = Duration::from_secs(60);
        let max = Duration::from_secs(3600);
        let first = retry_wait(1, base, max, "k");
        assert!(first <= base && first >= base.mul_f64(0.8), "{first:?}");
        let third = retry_wait(3, base, max, "k");
        assert!(third >= Duration::from_secs(192), "{third:?}");
        assert!(retry_wait(30, base, max, "k") <= max);
        assert_eq!(retry_wait(2, base, max, "k"), retry_wait(2, base, max, "k"));
    }

    #[test]
    fn the_last_fire_of_a_weekly_digest_is_the_monday_before() {
        let schedule = Schedule::parse("0 8 * * Mon", chrono_tz::Europe::London).expect("cron");
        // Wednesday 26 November 2025, 12:00 UTC.
        let now = DateTime::parse_from_rfc3339("2025-11-26T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let fire = last_fire(&schedule, now).expect("a fire");
        assert_eq!(fire.to_rfc3339(), "2025-11-24T08:00:00+00:00");
    }
}
