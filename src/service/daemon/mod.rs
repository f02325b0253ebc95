//! `tidings run`: the long-running service.
//!
//! One task owns all scheduling state. It wakes when the earliest watch is
//! due, starts that watch's check through the same [`Pipeline`] that
//! `tidings check` uses, and plans the watch's next run when the check
//! returns. Signals, the status socket and the systemd watchdog are handled
//! in the same `select!`, so there is no shared mutable state to lock.
//!
//! - **SIGTERM/SIGINT**: stop starting checks, let in-flight ones finish
//!   within `daemon.shutdown_deadline`, abort the rest, flush, exit 0.
//! - **SIGHUP**: re-read the config; added, removed and changed watches take
//!   effect at once. An invalid config is logged and the old one kept.
//! - **systemd**: `READY=1` once running, `STATUS=` after every batch,
//!   `WATCHDOG=1` at half the `WatchdogSec` interval, `RELOADING=1` and
//!   `STOPPING=1` around reloads and shutdown. Without systemd these are
//!   no-ops.

mod control;
mod node;
mod plan;
mod reload;
mod tasks;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::config::{self, Config, Watch};
use crate::core::metrics::Metrics;
use crate::core::schedule::Timing;
use crate::service::delivery::WorkerEvent;
use crate::service::pipeline::{CheckReport, Outcome, Pipeline};
use crate::service::status::{self};
use crate::store::{Store, WatchState};
pub use control::{offline_status, stored_text};
use plan::Plan;
use tasks::*;

/// Exit status for a configuration that cannot start (EX_CONFIG).
pub const EXIT_BAD_CONFIG: u8 = 78;

/// Where the daemon's configuration comes from.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The config file.
    pub config: PathBuf,
    /// Overrides the config's `state_dir`.
    pub state: Option<PathBuf>,
}

/// Runs the daemon until SIGTERM or SIGINT. Returns the exit status.
pub async fn run(options: DaemonOptions) -> anyhow::Result<u8> {
    let (config, fingerprint) = match load(&options, None) {
        Ok(loaded) => loaded,
        Err(errors) => {
            for error in &errors.0 {
                tracing::error!("{error}");
            }
            tracing::error!(config = %options.config.display(), "configuration is not valid; not starting");
            return Ok(EXIT_BAD_CONFIG);
        }
    };
    std::fs::create_dir_all(&config.state_dir).with_context(|| {
        format!(
            "cannot create state directory {}",
            config.state_dir.display()
        )
    })?;
    let (store, _node_lock) = open_store(&config).await?;
    let store = node::join(store, &config).await?;
    let socket = status::socket_path(&config.state_dir);
    // A socket left by a killed daemon would make bind fail; the store's
    // lock (held above) already guarantees no other daemon uses this state.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)
        .with_context(|| format!("cannot listen on {}", socket.display()))?;

    let metrics = Arc::new(Metrics::new());
    let web = match WebHandle::start(&config, &store, &metrics).await {
        Ok(web) => web,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "the web endpoint cannot start; not starting");
            return Ok(EXIT_BAD_CONFIG);
        }
    };
    let mut daemon = Daemon::new(options, config, store, metrics, web)?;
    daemon.fingerprint = fingerprint;
    tracing::info!(
        watches = daemon.plan.len(),
        state = %daemon.config.state_dir.display(),
        "tidings daemon started"
    );
    notify(&[sd_notify::NotifyState::Ready]);
    daemon.publish_status();
    let heartbeat = crate::service::lease::Heartbeat::start(&daemon.store);
    let outcome = daemon.serve(&listener).await;
    heartbeat.stop(false).await;
    let _ = std::fs::remove_file(&socket);
    outcome
}

/// How long the daemon waits for a store held by another process.
const STORE_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Opens the store, waiting a little while another process holds its lock:
/// a one-shot command (`tidings status` finds no socket yet and reads the
/// store itself, or a `history`) holds it only briefly, and must not make a
/// starting daemon fail. A second daemon still fails, after the wait.
///
/// A PostgreSQL store is shared by every node, so it takes no lock of its
/// own: the state directory (this node's socket) is locked instead, and the
/// schema is brought up to date first.
async fn open_store(config: &Config) -> anyhow::Result<(Store, Option<std::fs::File>)> {
    if let config::StoreBackend::Postgres(_) = &config.store {
        let lock = lock_state_dir(&config.state_dir)?;
        let config = config.clone();
        let store =
            tokio::task::spawn_blocking(move || Store::open_configured(&config, true)).await??;
        return Ok((store, Some(lock)));
    }
    let state_dir = &config.state_dir;
    let deadline = tokio::time::Instant::now() + STORE_LOCK_WAIT;
    loop {
        match Store::open(state_dir) {
            Ok(store) => return Ok((store, None)),
            Err(crate::store::StoreError::Open {
                source: sled::Error::Io(io),
                ..
            }) if io.to_string().contains("could not acquire lock")
                && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Takes this node's lock on its state directory, held until the process
/// ends (the kernel drops it even after SIGKILL).
fn lock_state_dir(state_dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = state_dir.join("node.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        anyhow::bail!(
            "another tidings daemon uses the state directory {} (each node needs its own --state)",
            state_dir.display()
        );
    }
    Ok(file)
}

fn load(
    options: &DaemonOptions,
    reuse: Option<&config::Reuse<'_>>,
) -> Result<(Config, config::Fingerprint), config::ConfigErrors> {
    let (mut config, fingerprint) = config::load_reusing(&options.config, reuse)?;
    if let Some(state) = &options.state {
        config.state_dir.clone_from(state);
    }
    Ok((config, fingerprint))
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    // Outside systemd NOTIFY_SOCKET is unset and this does nothing.
    if let Err(error) = sd_notify::notify(states) {
        tracing::debug!(%error, "sd_notify failed");
    }
}

struct Daemon {
    options: DaemonOptions,
    /// The running config, without its watches: they live in the plan.
    config: Config,
    store: Store,
    pipeline: Arc<Pipeline>,
    plan: Plan,
    in_flight: HashSet<String>,
    tasks: JoinSet<CheckReport>,
    /// Which watch each task checks, so even a panicked check frees its watch.
    task_watch: HashMap<tokio::task::Id, String>,
    /// Mail to the admin about failing watches, tracked so shutdown waits
    /// for it.
    admin_mail: JoinSet<()>,
    /// Watches whose last check failed, kept here so the status line never
    /// has to read every watch back from the store.
    failing: HashSet<String>,
    started_at: DateTime<Utc>,
    checks: u64,
    changes: u64,
    failures: u64,
    /// The delivery worker: sends what the pipeline queued.
    outbox: OutboxHandle,
    /// Counters for `/metrics`.
    metrics: Arc<Metrics>,
    /// The web endpoint, when enabled.
    web: Option<WebHandle>,
    /// Answers being written to control-socket clients, tracked so that
    /// shutdown ends them.
    control: JoinSet<()>,
    /// Clients of `tidings check` waiting for a watch's next report.
    check_waiters: HashMap<String, Vec<tokio::sync::mpsc::UnboundedSender<CheckReport>>>,
    /// Checks this node claimed on a shared store (see [`node`]).
    leased: node::Leased,
    /// Leases of checks that finished, given back once per batch.
    finished_leases: node::Finished,
    /// Watches an admin asked to check now (`check-now`): on a shared
    /// store their claim does not wait for the schedule (see [`node`]).
    asked_now: HashSet<String>,
    /// When freed memory was last handed back to the system.
    last_trim: Option<std::time::Instant>,
    /// The files the running config was read from, so that a SIGHUP with
    /// nothing changed costs a hash of them rather than a full load.
    fingerprint: config::Fingerprint,
}

/// Every watch's stored state and pause, read in one pass each.
struct Stored {
    states: HashMap<String, WatchState>,
    paused: std::collections::BTreeMap<String, DateTime<Utc>>,
}

/// How often, at most, the daemon hands freed memory back when idle.
const TRIM_EVERY: Duration = Duration::from_secs(10);

impl Daemon {
    fn new(
        options: DaemonOptions,
        config: Config,
        store: Store,
        metrics: Arc<Metrics>,
        web: Option<WebHandle>,
    ) -> anyhow::Result<Self> {
        let outbox = OutboxHandle::start(&config, &store, &metrics);
        let pipeline = Arc::new(Pipeline::new(
            store.clone(),
            config.limits.clone(),
            config.contact.as_deref(),
        )?);
        let mut daemon = Self {
            options,
            config,
            store,
            pipeline,
            plan: Plan::default(),
            in_flight: HashSet::new(),
            tasks: JoinSet::new(),
            task_watch: HashMap::new(),
            failing: HashSet::new(),
            admin_mail: JoinSet::new(),
            started_at: Utc::now(),
            checks: 0,
            changes: 0,
            failures: 0,
            outbox,
            metrics,
            web,
            control: JoinSet::new(),
            check_waiters: HashMap::new(),
            leased: node::Leased::new(),
            finished_leases: node::Finished::new(),
            asked_now: HashSet::new(),
            last_trim: None,
            fingerprint: config::Fingerprint::default(),
        };
        let now = Utc::now();
        let paused = daemon.store.paused().unwrap_or_default();
        let mut known = daemon.known_inputs(|_| true, &paused);
        // The plan holds the watches from here on; a second copy in the
        // config would cost tens of MB at 100,000 watches.
        let mut batch = plan::Batch::new(now, daemon.timing());
        for watch in std::mem::take(&mut daemon.config.watches) {
            let inputs = known.remove(&watch.name).unwrap_or(plan::Inputs {
                paused: paused.contains_key(&watch.name),
                ..plan::Inputs::default()
            });
            let due = batch.due(&watch, inputs);
            daemon.remember(&watch.name, inputs);
            daemon.plan.insert(watch, inputs, due);
        }
        Ok(daemon)
    }

    fn timing(&self) -> Timing {
        Timing {
            max_jitter: self.config.daemon.max_jitter,
            backoff_base: self.config.daemon.backoff_base,
            backoff_max: self.config.daemon.backoff_max,
        }
    }

    /// Keeps what a watch's next planning starts from in memory (see
    /// [`plan::Inputs`]), and whether it is failing, for the status line.
    fn remember(&mut self, name: &str, inputs: plan::Inputs) {
        self.plan.set_inputs(name, inputs);
        if inputs.consecutive_failures > 0 {
            self.failing.insert(name.to_owned());
        } else {
            self.failing.remove(name);
        }
    }

    /// Reads a planned watch's state and pause from the store, keeps them
    /// in memory, and returns when it is next due; `None` for a watch not
    /// planned. A read that fails leaves that input as the plan knew it.
    fn replan_stored(&mut self, name: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let known = self.plan.inputs(name)?;
        let paused = self
            .store
            .paused_since(name)
            .map_or(known.paused, |since| since.is_some());
        let inputs = match self.store.watch_state(name) {
            Ok(state) => plan::Inputs::stored(Some(&state), paused),
            Err(_) => plan::Inputs { paused, ..known },
        };
        self.remember(name, inputs);
        let watch = &self.plan.get(name)?.watch;
        Some(self.due_from(watch, inputs, now))
    }

    /// When a watch is next due, from inputs already at hand.
    fn due_from(&self, watch: &Watch, inputs: plan::Inputs, now: DateTime<Utc>) -> DateTime<Utc> {
        plan::Batch::new(now, self.timing()).due(watch, inputs)
    }

    /// The planning inputs of the stored watches `keep` names, in one
    /// pass over the store: only the inputs are kept, not the whole
    /// states (about 40 MB at 100,000 watches, the start-up's peak). A read
    /// that fails leaves out what it did not reach, to be planned as never
    /// checked, i.e. at once.
    fn known_inputs(
        &self,
        keep: impl FnMut(&str) -> bool,
        paused: &std::collections::BTreeMap<String, DateTime<Utc>>,
    ) -> HashMap<String, plan::Inputs> {
        let mut known = HashMap::new();
        let visited = self.store.visit_watch_states(keep, |name, state| {
            let inputs = plan::Inputs::stored(Some(&state), paused.contains_key(name));
            known.insert(name.to_owned(), inputs);
        });
        if let Err(error) = visited {
            tracing::error!(%error, "cannot read the watches' stored state; those not read are planned as never checked");
        }
        known
    }

    /// Every watch's stored state and every pause, each read in one pass:
    /// planning or reporting on all watches with one lookup each would
    /// pull and decode a store leaf per watch.
    fn stored(&self) -> Stored {
        Stored {
            states: self.store.watch_states().unwrap_or_default(),
            paused: self.store.paused().unwrap_or_default(),
        }
    }

    /// The most checks started at once: enough to keep every permit of the
    /// pipeline busy, and no more, so due watches wait in the plan rather
    /// than as parked tasks.
    fn max_in_flight(&self) -> usize {
        self.config.limits.concurrency.saturating_mul(2)
    }

    fn queue_depth(&self, now: DateTime<Utc>) -> usize {
        self.plan.due(now, &self.in_flight).count()
    }

    /// Starts every due watch that is not already running, earliest first.
    fn start_due(&mut self, now: DateTime<Utc>) {
        let room = self.max_in_flight().saturating_sub(self.in_flight.len());
        let starting: Vec<Watch> = self
            .plan
            .due(now, &self.in_flight)
            .take(room)
            .map(|p| p.watch.clone())
            .collect();
        for watch in self.claim_due(starting, now) {
            self.start_check(watch);
        }
    }

    /// Starts one watch's check as a tracked task.
    fn start_check(&mut self, watch: Watch) {
        self.in_flight.insert(watch.name.clone());
        let pipeline = Arc::clone(&self.pipeline);
        let name = watch.name.clone();
        let handle = self
            .tasks
            .spawn(async move { pipeline.check(&watch).await });
        self.task_watch.insert(handle.id(), name);
    }

    /// The earliest time a watch that is not running becomes due.
    fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.plan.next_due(&self.in_flight)
    }

    fn publish_status(&self) {
        let failing = self.failing.len();
        let line = format!(
            "{} watches, {} checking, {} failing; {} checks, {} changes since start",
            self.plan.len(),
            self.in_flight.len(),
            failing,
            self.checks,
            self.changes
        );
        notify(&[sd_notify::NotifyState::Status(&line)]);
    }

    fn finish_joined(
        &mut self,
        joined: Result<(tokio::task::Id, CheckReport), tokio::task::JoinError>,
    ) {
        match joined {
            Ok((id, report)) => {
                self.task_watch.remove(&id);
                self.finish(&report);
            }
            Err(error) => {
                // A panicked (or aborted) check is a bug or a shutdown; its
                // watch must not stay marked as running forever.
                if let Some(name) = self.task_watch.remove(&error.id()) {
                    tracing::error!(watch = %name, %error, "a check task failed");
                    self.in_flight.remove(&name);
                    // Let go without marking it done: another node may run it.
                    self.release(&name, false);
                    // Their stream ends short, which they report as an error.
                    self.check_waiters.remove(&name);
                    let now = Utc::now();
                    if let Some(due) = self.replan_stored(&name, now) {
                        let due = due.max(now + chrono::Duration::minutes(1));
                        self.plan.set_due(&name, due);
                    }
                }
            }
        }
    }

    /// Mails the admin, when `[daemon] admin_email` is set, through the
    /// configured `[mail]` transport. Failures to send are logged; the
    /// journal line has already been written either way.
    fn tell_admin(&mut self, subject: &str, text: &str, key: &str) {
        let Some(to) = self.config.daemon.admin_email.clone() else {
            return;
        };
        let mailer = match crate::mail::Mailer::new(&self.config.mail, &self.config.state_dir) {
            Ok(mailer) => mailer,
            Err(error) => {
                tracing::error!(%error, "cannot set up mail to tell the admin");
                return;
            }
        };
        let briefing = crate::core::brief::Briefing {
            subject: subject.to_owned(),
            text: text.to_owned(),
            html: format!("<pre>{}</pre>", escape_html(text)),
        };
        let outgoing = crate::mail::Outgoing {
            to: &to,
            to_name: "",
            briefing: &briefing,
            delivery_key: key,
            thread_key: None,
            unsubscribe_token: None,
        };
        let message = match crate::mail::build_message(&self.config.mail, &outgoing) {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(%error, "cannot compose the admin alert");
                return;
            }
        };
        self.admin_mail.spawn(async move {
            match mailer.send(&message).await {
                Ok(_) => tracing::info!(to = %to, "admin alerted by mail"),
                Err(error) => tracing::error!(%error, to = %to, "admin alert mail failed"),
            }
        });
    }

    /// Handles one finished check: counts it, tells the admin about a watch
    /// that keeps failing (once) or has recovered (once), and plans its next run.
    fn finish(&mut self, report: &CheckReport) {
        self.in_flight.remove(&report.watch);
        self.release(&report.watch, true);
        self.checks += 1;
        self.metrics
            .record_check(matches!(report.outcome, Outcome::Failed { .. }));
        if let Outcome::Changed { assessment, .. } = &report.outcome {
            for kind in assessment.kinds() {
                self.metrics.record_change(kind);
            }
        }
        match &report.outcome {
            Outcome::Changed { .. } => {
                self.changes += 1;
                self.outbox.wake();
            }
            Outcome::Failed { .. } => self.failures += 1,
            _ => {}
        }
        if matches!(report.outcome, Outcome::Failed { .. }) {
            self.failing.insert(report.watch.clone());
        } else {
            self.failing.remove(&report.watch);
        }
        // Planned again from the store below; should that read fail, the
        // plan still knows the check happened.
        if let Some(inputs) = self.plan.inputs(&report.watch) {
            let checked = plan::Inputs {
                last_check: Some(report.checked_at),
                ..inputs
            };
            self.plan.set_inputs(&report.watch, checked);
        }
        if let Ok(mut state) = self.store.watch_state(&report.watch) {
            let threshold = self.config.daemon.alert_after_failures;
            if state.consecutive_failures >= threshold && !state.failure_alerted {
                tracing::error!(
                    watch = %report.watch,
                    url = %report.url,
                    failures = state.consecutive_failures,
                    error = state.last_error.as_deref().unwrap_or(""),
                    "watch keeps failing; it backs off until it recovers"
                );
                state.failure_alerted = true;
                let _ = self.store.record_check(&report.watch, &state);
                self.tell_admin(
                    &format!("tidings: watch {} keeps failing", report.watch),
                    &format!(
                        "The watch {} ({}) has failed {} checks in a row and now backs off until it recovers.\n\nLast error: {}\n\nSubscribers are not told. You will get one more mail when it recovers.\n",
                        report.watch,
                        report.url,
                        state.consecutive_failures,
                        state.last_error.as_deref().unwrap_or("unknown")
                    ),
                    &format!("failing:{}:{}", report.watch, report.checked_at.timestamp()),
                );
            } else if state.consecutive_failures == 0 && state.failure_alerted {
                tracing::warn!(watch = %report.watch, url = %report.url, "watch has recovered");
                state.failure_alerted = false;
                let _ = self.store.record_check(&report.watch, &state);
                self.tell_admin(
                    &format!("tidings: watch {} has recovered", report.watch),
                    &format!(
                        "The watch {} ({}) is being checked normally again.\n",
                        report.watch, report.url
                    ),
                    &format!(
                        "recovered:{}:{}",
                        report.watch,
                        report.checked_at.timestamp()
                    ),
                );
            }
        }
        match &report.outcome {
            Outcome::Changed { assessment, .. } => {
                tracing::info!(watch = %report.watch, kinds = ?assessment.kinds(), summary = %assessment.one_line(), "change recorded");
            }
            Outcome::New { version } => {
                tracing::info!(watch = %report.watch, version, "first version stored")
            }
            Outcome::Held { reason } => {
                tracing::info!(watch = %report.watch, %reason, "change held for confirmation")
            }
            _ => {
                tracing::debug!(watch = %report.watch, outcome = report.outcome.label(), "checked")
            }
        }
        if let Some(due) = self.replan_stored(&report.watch, Utc::now()) {
            self.plan.set_due(&report.watch, due);
        }
    }

    /// The main loop. Returns the exit status.
    async fn serve(&mut self, listener: &UnixListener) -> anyhow::Result<u8> {
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        let watchdog_every = sd_notify::watchdog_enabled().map(|interval| interval / 2);
        let mut watchdog =
            tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(3600)));
        let sync_every = crate::service::lease::beat_every(&self.store);
        let mut pause_sync = tokio::time::interval(sync_every.unwrap_or(Duration::from_secs(3600)));

        loop {
            let now = Utc::now();
            self.start_due(now);
            // Sleep until the next watch is due; cap the nap so a clock jump
            // (suspend, NTP step) is noticed within a minute.
            let wait = self
                .next_wake()
                .map_or(Duration::from_secs(60), |due| {
                    (due - now).to_std().unwrap_or(Duration::ZERO)
                })
                .min(Duration::from_secs(60));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.finish_batch(joined).await;
                }
                Some(_) = self.admin_mail.join_next(), if !self.admin_mail.is_empty() => {}
                _ = hangup.recv() => self.reload(),
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
                accepted = listener.accept() => {
                    if let Ok((mut stream, _)) = accepted {
                        // The request is read inline: clients send it at
                        // once, and a stuck one gets a second. The answer is
                        // written by a tracked task, so a slow reader never
                        // holds up the loop.
                        let request = status::read_request(&mut stream, Duration::from_secs(1)).await;
                        if request == status::Request::Backup {
                            self.send_backup(stream);
                        } else {
                            self.serve_client(stream, request);
                        }
                    }
                }
                Some(_) = self.control.join_next(), if !self.control.is_empty() => {
                    // A status report for every watch is large and short-lived.
                    self.give_back_memory();
                }
                Some(event) = self.outbox.events.recv() => self.outbox_event(event),
                _ = watchdog.tick(), if watchdog_every.is_some() => {
                    notify(&[sd_notify::NotifyState::Watchdog]);
                }
                _ = pause_sync.tick(), if sync_every.is_some() => self.sync_pauses(),
            }
        }
        self.shut_down().await
    }

    fn outbox_event(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::Paused { reason } => {
                self.tell_admin(
                    "tidings: briefings are paused",
                    &format!(
                        "tidings stopped sending briefings: {reason}\n\nNothing is lost: every briefing stays in the outbox and is sent once the [mail] settings are fixed and the daemon reloaded (systemctl reload tidings). `tidings outbox list` shows what is waiting.\n"
                    ),
                    &format!("outbox-paused:{}", Utc::now().timestamp()),
                );
            }
            WorkerEvent::Resumed => {
                tracing::warn!("briefings are being sent again");
            }
        }
    }

    /// Handles a finished check and any others that finished with it, then
    /// flushes the store once for all of them.
    async fn finish_batch(
        &mut self,
        first: Result<(tokio::task::Id, CheckReport), tokio::task::JoinError>,
    ) {
        let mut batch = vec![first];
        while let Some(more) = self.tasks.try_join_next_with_id() {
            batch.push(more);
        }
        // Clients of `tidings check` hear of a check only once it is
        // flushed, as they would from the command without a daemon.
        let mut for_clients = Vec::new();
        for joined in batch {
            if let Ok((_, report)) = &joined
                && let Some(waiters) = self.check_waiters.remove(&report.watch)
            {
                for_clients.push((report.clone(), waiters));
            }
            self.finish_joined(joined);
        }
        self.give_back_leases();
        let store = self.store.clone();
        if let Ok(Err(error)) = tokio::task::spawn_blocking(move || store.flush()).await {
            tracing::error!(%error, "store flush failed");
        }
        for (report, waiters) in for_clients {
            for waiter in waiters {
                let _ = waiter.send(report.clone());
            }
        }
        if self.in_flight.is_empty() {
            self.give_back_memory();
        }
        self.publish_status();
    }

    /// Hands memory freed by the last checks back to the system once the
    /// daemon has nothing in flight, at most every [`TRIM_EVERY`]: glibc
    /// otherwise keeps the peak of a pass resident while the daemon idles
    /// for hours.
    fn give_back_memory(&mut self) {
        if self.last_trim.is_some_and(|at| at.elapsed() < TRIM_EVERY) {
            return;
        }
        self.last_trim = Some(std::time::Instant::now());
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free memory; it takes glibc's
        // own locks and is safe to call from any thread at any time.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    async fn shut_down(&mut self) -> anyhow::Result<u8> {
        notify(&[sd_notify::NotifyState::Stopping]);
        let deadline = self.config.daemon.shutdown_deadline;
        tracing::info!(
            in_flight = self.tasks.len(),
            deadline_secs = deadline.as_secs(),
            "shutting down: letting in-flight checks finish"
        );
        let drained = tokio::time::timeout(deadline, async {
            while let Some(joined) = self.tasks.join_next_with_id().await {
                self.finish_joined(joined);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                aborted = self.tasks.len(),
                "deadline passed; aborting the checks still running"
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        // Checks that finished while draining are recorded as done; the
        // leases of aborted ones go when the node stops.
        self.give_back_leases();
        // Checks asked for by clients that never started are not coming:
        // their streams end short and the clients say so.
        self.check_waiters.clear();
        if tokio::time::timeout(Duration::from_secs(1), async {
            while self.control.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            self.control.abort_all();
        }
        // Admin alerts already composed are worth the wait; each send has
        // its own timeout.
        let _ = tokio::time::timeout(deadline, async {
            while self.admin_mail.join_next().await.is_some() {}
        })
        .await;
        self.admin_mail.abort_all();
        if let Some(web) = self.web.take() {
            web.stop.cancel();
            let abort = web.task.abort_handle();
            match tokio::time::timeout(deadline, web.task).await {
                Ok(Ok(Err(error))) => tracing::error!(%error, "the web endpoint failed"),
                Ok(_) => {}
                Err(_) => abort.abort(),
            }
        }
        // The worker stops after the send in flight (bounded by the mail
        // timeout); whatever is still queued is sent after the restart.
        self.outbox.stop.cancel();
        if let Some(task) = self.outbox.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(deadline, task).await.is_err() {
                tracing::warn!("deadline passed; stopping the delivery worker mid-send");
                abort.abort();
            }
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .context("store flush panicked")??;
        tracing::info!("store flushed; stopped");
        Ok(0)
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
