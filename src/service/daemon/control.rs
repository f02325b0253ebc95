//! What the daemon answers on its control socket, and the same status read
//! from the store when no daemon runs.
//!
//! While the daemon runs it is the store's only user (sled allows one
//! process), so every command that needs the store while it runs asks here:
//! `status`, `outbox` and `subscribers` get one JSON document; `history`,
//! `show`, `diff WATCH@N` and `check` get a stream of [`Frame`]s, one JSON
//! line each, written as they are ready.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::Daemon;
use crate::config::Config;
use crate::core::schedule::{self, History, Timing};
use crate::service::admin::Output;
use crate::service::delivery;
use crate::service::pipeline::{CheckReport, CheckSummary, Outcome};
use crate::service::status::{self, Frame, Request, StatusReport, WatchStatus};
use crate::service::watch_admin;
use crate::store::Store;

/// Rows per frame of a streamed status table.
const TABLE_PAGE: usize = 500;

/// Failing watches whose state a summary reads to pick the worst; more
/// are counted but not all read, so a mass outage does not make the
/// summary read every watch.
const FAILING_READ: usize = 1000;

/// How long one write to a client may take before the client is dropped.
const CLIENT_WRITE: Duration = Duration::from_secs(30);

impl Daemon {
    /// Answers one client of the control socket.
    pub(super) fn serve_client(&mut self, mut stream: UnixStream, request: Request) {
        match request {
            Request::History { watch } => {
                let store = self.store.clone();
                self.control.spawn(async move {
                    let read = tokio::task::spawn_blocking(move || store.history(&watch)).await;
                    let frames: Vec<Frame> = match read {
                        Ok(Ok(history)) => history
                            .into_iter()
                            .map(Frame::Version)
                            .chain(std::iter::once(Frame::End))
                            .collect(),
                        Ok(Err(error)) => vec![Frame::Error(error.to_string())],
                        Err(error) => vec![Frame::Error(format!("the store read failed: {error}"))],
                    };
                    write_frames(&mut stream, frames).await;
                });
            }
            Request::Text { watch, version } => {
                let store = self.store.clone();
                self.control.spawn(async move {
                    let read =
                        tokio::task::spawn_blocking(move || stored_text(&store, &watch, version))
                            .await;
                    let frame = match read {
                        Ok(Ok(Some((number, blocks)))) => Frame::Text { number, blocks },
                        Ok(Ok(None)) => Frame::Missing,
                        Ok(Err(error)) => Frame::Error(error.to_string()),
                        Err(error) => Frame::Error(format!("the store read failed: {error}")),
                    };
                    write_frames(&mut stream, [frame]).await;
                });
            }
            Request::Check { watches, json } => self.check_for_client(stream, watches, json),
            Request::Table { watches } => self.stream_table(stream, &watches),
            Request::ExportSubscribers => {
                let store = self.store.clone();
                self.control.spawn(async move {
                    export_subscribers(store, &mut stream).await;
                });
            }
            other => {
                let body = self.answer(&other);
                self.control.spawn(async move {
                    let _ = tokio::time::timeout(CLIENT_WRITE, stream.write_all(&body)).await;
                });
            }
        }
    }

    /// Hands the stream back when every name is a watch of the running
    /// config; otherwise answers the client with the first unknown name.
    fn known_watches_only(
        &mut self,
        mut stream: UnixStream,
        names: &[String],
    ) -> Option<UnixStream> {
        let Some(unknown) = names.iter().find(|name| !self.plan.contains_key(name)) else {
            return Some(stream);
        };
        let frame = Frame::Error(format!(
            "no watch named `{unknown}` in the running daemon's config ({})",
            self.options.config.display()
        ));
        self.control.spawn(async move {
            write_frames(&mut stream, [frame]).await;
        });
        None
    }

    /// Runs `tidings check` for a client: every named watch (every watch
    /// when none is named) is checked now, unless a check of it is already
    /// running, whose report then serves. Each report goes to the client
    /// once the store holds it.
    fn check_for_client(&mut self, stream: UnixStream, names: Vec<String>, json: bool) {
        // A pass over every watch leaves paused ones alone, as `tidings
        // check` does without a daemon; a watch named is checked all the same.
        let names: Vec<String> = if names.is_empty() {
            self.plan
                .keys()
                .filter(|name| self.store.paused_since(name).ok().flatten().is_none())
                .cloned()
                .collect()
        } else {
            names
        };
        let Some(stream) = self.known_watches_only(stream, &names) else {
            return;
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        for name in &names {
            self.check_waiters
                .entry(name.clone())
                .or_default()
                .push(sender.clone());
            if !self.in_flight.contains(name)
                && let Some(planned) = self.plan.get(name)
            {
                let watch = planned.watch.clone();
                self.start_check(watch);
            }
        }
        drop(sender);
        tracing::info!(watches = names.len(), "check asked for by the CLI");
        self.control
            .spawn(stream_checks(stream, receiver, names.len(), json));
    }

    /// The report without its per-watch table: counts kept in memory, the
    /// stored state of at most [`status::SUMMARY_FAILING`] failing watches,
    /// the pauses and the store's size. Nothing here reads every watch, so
    /// the answer costs about the same at 100 watches as at 100,000.
    pub(super) fn serve_summary(&self) -> StatusReport {
        let now = Utc::now();
        let paused = self.store.paused().unwrap_or_default();
        let mut summary = status::StatusSummary {
            watches: self.plan.len(),
            failing: self.failing.len(),
            paused: paused.keys().filter(|n| self.plan.contains_key(n)).count(),
            paused_watches: paused
                .keys()
                .filter(|n| self.plan.contains_key(n))
                .take(status::SUMMARY_FAILING)
                .cloned()
                .collect(),
            // A stored pause counts even before the plan holds it: on a
            // shared store a pause made elsewhere reaches the plan only at
            // the next heartbeat, and the watch will not be checked.
            next_due: self
                .plan
                .next_due_named(|name| self.in_flight.contains(name) || paused.contains_key(name))
                .map(|(due, name)| (due, name.to_owned())),
            store_bytes: self.store.disk_bytes().ok(),
            ..status::StatusSummary::default()
        };
        for planned in self.plan.values() {
            match planned.inputs.last_check {
                None => summary.never_checked += 1,
                Some(checked) => {
                    if summary
                        .oldest_check
                        .as_ref()
                        .is_none_or(|(oldest, _)| checked < *oldest)
                    {
                        summary.oldest_check = Some((checked, planned.watch.name.clone()));
                    }
                }
            }
        }
        summary.ok = summary
            .watches
            .saturating_sub(summary.never_checked)
            .saturating_sub(summary.failing);
        // Name the worst: read the state of every failing watch only when
        // there are few; otherwise of a bounded sample, named as such.
        let mut failing: Vec<&str> = self.failing.iter().map(String::as_str).collect();
        failing.sort_unstable();
        failing.truncate(FAILING_READ);
        let rows = self.rows_for(&failing, &paused);
        summary.failing_watches = status::worst_first(rows);
        StatusReport {
            summary: Some(summary),
            ..self.report_heading(now)
        }
    }

    /// One watch's status row, from its plan entry and stored state.
    fn row(
        &self,
        planned: &super::plan::Planned,
        state: crate::store::WatchState,
        paused: &std::collections::BTreeMap<String, DateTime<Utc>>,
    ) -> WatchStatus {
        WatchStatus {
            name: planned.watch.name.clone(),
            url: planned.watch.url.to_string(),
            last_check: state.last_check,
            next_run: Some(planned.due).filter(|due| {
                *due < DateTime::<Utc>::MAX_UTC && !paused.contains_key(&planned.watch.name)
            }),
            last_change: state.last_change,
            last_error: state.last_error,
            consecutive_failures: state.consecutive_failures,
            latest_version: state.latest_version,
            in_flight: self.in_flight.contains(&planned.watch.name),
            paused_since: paused.get(&planned.watch.name).copied(),
        }
    }

    /// The status rows of some watches, their stored state read in one
    /// round trip.
    fn rows_for(
        &self,
        names: &[&str],
        paused: &std::collections::BTreeMap<String, DateTime<Utc>>,
    ) -> Vec<WatchStatus> {
        let (mut states, _) = self.store.plan_inputs(names).unwrap_or_default();
        names
            .iter()
            .filter_map(|name| self.plan.get(name))
            .map(|planned| {
                let state = states.remove(&planned.watch.name).unwrap_or_default();
                self.row(planned, state, paused)
            })
            .collect()
    }

    /// Streams the per-watch table, a page of rows per frame. The plan
    /// lives on the loop, so its part of each row (name, URL, due time) is
    /// copied once, a few MB at 100,000 watches; a tracked task then reads
    /// each page's stored state off the loop and sends it, so neither the
    /// daemon nor the CLI ever holds the whole table as JSON.
    fn stream_table(&mut self, stream: UnixStream, names: &[String]) {
        let Some(mut stream) = self.known_watches_only(stream, names) else {
            return;
        };
        let pick = |planned: &super::plan::Planned| WatchStatus {
            name: planned.watch.name.clone(),
            url: planned.watch.url.to_string(),
            next_run: Some(planned.due).filter(|due| *due < DateTime::<Utc>::MAX_UTC),
            in_flight: self.in_flight.contains(&planned.watch.name),
            last_check: planned.inputs.last_check,
            ..WatchStatus::default()
        };
        let rows: Vec<WatchStatus> = if names.is_empty() {
            self.plan.values().map(pick).collect()
        } else {
            names
                .iter()
                .filter_map(|n| self.plan.get(n))
                .map(pick)
                .collect()
        };
        let store = self.store.clone();
        self.control.spawn(async move {
            let paused = {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.paused().unwrap_or_default())
                    .await
                    .unwrap_or_default()
            };
            let mut rows = rows.into_iter();
            loop {
                let mut page: Vec<WatchStatus> = rows.by_ref().take(TABLE_PAGE).collect();
                if page.is_empty() {
                    write_frames(&mut stream, [Frame::End]).await;
                    return;
                }
                let reading = store.clone();
                let names: Vec<String> = page.iter().map(|w| w.name.clone()).collect();
                let read = tokio::task::spawn_blocking(move || {
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    reading.plan_inputs(&names).map(|(states, _)| states)
                })
                .await;
                let mut states = match read {
                    Ok(Ok(states)) => states,
                    Ok(Err(error)) => {
                        write_frames(&mut stream, [Frame::Error(error.to_string())]).await;
                        return;
                    }
                    Err(error) => {
                        let frame = Frame::Error(format!("the store read failed: {error}"));
                        write_frames(&mut stream, [frame]).await;
                        return;
                    }
                };
                for row in &mut page {
                    let state = states.remove(&row.name).unwrap_or_default();
                    row.last_check = state.last_check.or(row.last_check);
                    row.last_change = state.last_change;
                    row.last_error = state.last_error;
                    row.consecutive_failures = state.consecutive_failures;
                    row.latest_version = state.latest_version;
                    row.paused_since = paused.get(&row.name).copied();
                    // The plan may not hold a pause stored elsewhere yet
                    // (see `serve_summary`); a paused watch has no next run.
                    if row.paused_since.is_some() {
                        row.next_run = None;
                    }
                }
                if !write_frames(&mut stream, [Frame::Rows(page)]).await {
                    return;
                }
            }
        });
    }

    /// The report's heading fields, with no watches.
    fn report_heading(&self, now: DateTime<Utc>) -> StatusReport {
        StatusReport {
            daemon_running: true,
            pid: Some(std::process::id()),
            started_at: Some(self.started_at),
            config: self.options.config.display().to_string(),
            queue_depth: self.queue_depth(now),
            in_flight: self.in_flight.len(),
            checks: self.checks,
            changes: self.changes,
            failures: self.failures,
            outbox: Some(self.outbox.report(&self.store)),
            ..StatusReport::default()
        }
    }

    pub(super) fn serve_status_report(&self) -> StatusReport {
        let now = Utc::now();
        let mut stored = self.stored();
        let watches = self
            .plan
            .values()
            .map(|planned| {
                let state = stored
                    .states
                    .remove(&planned.watch.name)
                    .unwrap_or_default();
                self.row(planned, state, &stored.paused)
            })
            .collect();
        let mut report = StatusReport {
            watches,
            ..self.report_heading(now)
        };
        report.summary = Some(status::StatusSummary::of(&report));
        report
    }

    /// Answers a control-socket request.
    pub(super) fn answer(&mut self, request: &status::Request) -> Vec<u8> {
        match request {
            status::Request::Status => {
                serde_json::to_vec(&self.serve_status_report()).unwrap_or_default()
            }
            status::Request::Summary => {
                serde_json::to_vec(&self.serve_summary()).unwrap_or_default()
            }
            // Streamed by `serve_client`, never answered as one document.
            status::Request::History { .. }
            | status::Request::Text { .. }
            | status::Request::Check { .. }
            | status::Request::Table { .. }
            | status::Request::ExportSubscribers => serde_json::to_vec(&Frame::Error(
                "this request is answered as a stream".to_owned(),
            ))
            .unwrap_or_default(),
            status::Request::Outbox(command) => {
                let reply = delivery::outbox_command(
                    &self.store,
                    command,
                    self.config.mail.domain(),
                    Utc::now(),
                )
                .unwrap_or_else(|error| delivery::OutboxReply {
                    error: Some(error.to_string()),
                    ..delivery::OutboxReply::default()
                });
                self.outbox.wake();
                serde_json::to_vec(&reply).unwrap_or_default()
            }
            status::Request::Subscribers(command) => {
                let output = crate::service::admin::run(&self.store, command, Utc::now());
                // The command's name only: an import carries people's addresses.
                tracing::info!(
                    command = command.name(),
                    code = output.code,
                    "subscriber command from the CLI"
                );
                serde_json::to_vec(&output).unwrap_or_default()
            }
            status::Request::CheckNow { watches } => {
                let output = self.check_now(watches);
                serde_json::to_vec(&output).unwrap_or_default()
            }
            status::Request::Pause { watches } => {
                let output = watch_admin::pause(
                    &self.store,
                    &self.config.source,
                    |name| self.plan.contains_key(name),
                    watches,
                    Utc::now(),
                );
                tracing::info!(?watches, code = output.code, "pause from the CLI");
                self.replan(watches);
                serde_json::to_vec(&output).unwrap_or_default()
            }
            status::Request::Resume { watches } => {
                let output = watch_admin::resume(
                    &self.store,
                    &self.config.source,
                    |name| self.plan.contains_key(name),
                    watches,
                );
                tracing::info!(?watches, code = output.code, "resume from the CLI");
                self.replan(watches);
                serde_json::to_vec(&output).unwrap_or_default()
            }
            // Answered by `send_backup`, off the loop; never reaches here.
            status::Request::Backup => Vec::new(),
        }
    }

    /// Makes watches due now, unless paused or running already.
    fn check_now(&mut self, watches: &[String]) -> Output {
        if let Some(unknown) = watch_admin::unknown_watches(&self.config.source, watches, |name| {
            self.plan.contains_key(name)
        }) {
            return unknown;
        }
        let now = Utc::now();
        let mut output = Output::default();
        for name in watches {
            if self.in_flight.contains(name) {
                output
                    .stdout
                    .push_str(&format!("{name} is being checked already\n"));
            } else if self.store.paused_since(name).ok().flatten().is_some() {
                output.stderr.push_str(&format!(
                    "{name} is paused; `tidings resume {name}` first\n"
                ));
                output.code = 1;
            } else if self.plan.contains_key(name) {
                self.plan.set_due(name, now);
                self.asked_now.insert(name.clone());
                output.stdout.push_str(&format!(
                    "checking {name} now; `tidings status` shows the result\n"
                ));
            }
        }
        tracing::info!(?watches, "check now, from the CLI");
        output
    }

    /// Plans watches again after a pause or resume: a paused watch is
    /// never due; a resumed one is due as its schedule and history say.
    fn replan(&mut self, watches: &[String]) {
        let now = Utc::now();
        for name in watches {
            self.asked_now.remove(name);
            if let Some(due) = self.replan_stored(name, now) {
                self.plan.set_due(name, due);
            }
        }
    }

    /// Answers a backup request: the store is read off the loop (it holds
    /// the transaction gate, so checks committing meanwhile wait for it)
    /// and the bytes are written to the client by a tracked task.
    pub(super) fn send_backup(&mut self, mut stream: tokio::net::UnixStream) {
        use tokio::io::AsyncWriteExt as _;
        let store = self.store.clone();
        self.admin_mail.spawn(async move {
            let made = tokio::task::spawn_blocking(move || {
                let mut bytes = Vec::new();
                store
                    .backup_to(&mut bytes, std::path::Path::new("the control socket"))
                    .map(|summary| (summary, bytes))
            })
            .await;
            match made {
                Ok(Ok((summary, bytes))) => {
                    tracing::info!(
                        trees = summary.trees,
                        entries = summary.entries,
                        bytes = bytes.len(),
                        "backup sent to the CLI"
                    );
                    let sent = tokio::time::timeout(
                        std::time::Duration::from_secs(300),
                        stream.write_all(&bytes),
                    )
                    .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        tracing::warn!("the backup could not be sent to the CLI");
                    }
                }
                Ok(Err(error)) => tracing::error!(%error, "backup failed"),
                Err(error) => tracing::error!(%error, "backup task failed"),
            }
        });
    }
}

/// The status of watches read straight from the store, for `tidings status`
/// when no daemon is running.
pub fn offline_status(config: &Config, store: &Store, config_path: &Path) -> StatusReport {
    let now = Utc::now();
    let timing = Timing {
        max_jitter: config.daemon.max_jitter,
        backoff_base: config.daemon.backoff_base,
        backoff_max: config.daemon.backoff_max,
    };
    // One pass over each tree: a lookup per watch pulls a leaf each time.
    let mut states = store.watch_states().unwrap_or_default();
    let paused = store.paused().unwrap_or_default();
    let watches = config
        .watches
        .iter()
        .map(|watch| {
            let state = states.remove(&watch.name).unwrap_or_default();
            let history = History {
                last_check: state.last_check,
                consecutive_failures: state.consecutive_failures,
            };
            WatchStatus {
                name: watch.name.clone(),
                url: watch.url.to_string(),
                last_check: state.last_check,
                // A paused watch has no next run until it is resumed.
                next_run: (!paused.contains_key(&watch.name))
                    .then(|| schedule::due(&watch.schedule, &watch.name, history, now, &timing)),
                last_change: state.last_change,
                last_error: state.last_error,
                consecutive_failures: state.consecutive_failures,
                latest_version: state.latest_version,
                in_flight: false,
                paused_since: paused.get(&watch.name).copied(),
            }
        })
        .collect();
    let mut report = StatusReport {
        daemon_running: false,
        config: config_path.display().to_string(),
        watches,
        ..StatusReport::default()
    };
    let mut summary = status::StatusSummary::of(&report);
    summary.store_bytes = store.disk_bytes().ok();
    report.summary = Some(summary);
    report
}

/// Subscribers read per page of an export.
const EXPORT_PAGE: usize = 500;

/// Streams every subscriber as CSV, a page of rows per frame: memory
/// follows the page, not the list.
async fn export_subscribers(store: Store, stream: &mut UnixStream) {
    let header = crate::core::subscriptions::csv_header();
    if !write_frames(stream, [Frame::Line(header)]).await {
        return;
    }
    let mut after: Option<String> = None;
    loop {
        let (reading, from) = (store.clone(), after.clone());
        let read = tokio::task::spawn_blocking(move || {
            reading.subscribers_page(from.as_deref(), EXPORT_PAGE)
        })
        .await;
        let frame = match read {
            Ok(Ok(page)) if page.is_empty() => Frame::End,
            Ok(Ok(page)) => {
                after = page.last().map(|s| s.address.clone());
                Frame::Line(crate::core::subscriptions::csv_rows(&page))
            }
            Ok(Err(error)) => Frame::Error(error.to_string()),
            Err(error) => Frame::Error(format!("the store read failed: {error}")),
        };
        let last = frame.is_last();
        if !write_frames(stream, [frame]).await || last {
            return;
        }
    }
}

/// Writes frames to a client, giving up on a client that stops reading.
async fn write_frames(stream: &mut UnixStream, frames: impl IntoIterator<Item = Frame>) -> bool {
    for frame in frames {
        let line = status::frame_line(&frame);
        match tokio::time::timeout(CLIENT_WRITE, stream.write_all(&line)).await {
            Ok(Ok(())) => {}
            _ => return false,
        }
    }
    true
}

/// Streams a client's check reports as they arrive, then the exit status
/// (and the JSON summary when asked for). A client that goes away does not
/// stop the checks: they finish and are stored.
async fn stream_checks(
    mut stream: UnixStream,
    mut reports: mpsc::UnboundedReceiver<CheckReport>,
    expected: usize,
    json: bool,
) {
    let mut done = Vec::with_capacity(expected);
    let mut listening = true;
    while let Some(report) = reports.recv().await {
        if listening && !json {
            listening = write_frames(&mut stream, [Frame::Line(report.line())]).await;
        }
        done.push(report);
    }
    if !listening {
        return;
    }
    if done.len() < expected {
        let frame = Frame::Error(format!(
            "the daemon stopped before every check finished ({} of {expected} reported)",
            done.len()
        ));
        write_frames(&mut stream, [frame]).await;
        return;
    }
    let failed = done
        .iter()
        .any(|report| matches!(report.outcome, Outcome::Failed { .. }));
    let json =
        json.then(|| serde_json::to_string_pretty(&CheckSummary::new(&done)).unwrap_or_default());
    write_frames(
        &mut stream,
        [Frame::Done {
            code: u8::from(failed),
            json,
        }],
    )
    .await;
}

/// A stored text: the version asked for, or the latest; `None` when there
/// is no such version.
pub fn stored_text(
    store: &Store,
    watch: &str,
    version: Option<u64>,
) -> Result<Option<(u64, Vec<crate::core::model::Block>)>, crate::store::StoreError> {
    match version {
        Some(number) => match store.version(watch, number)? {
            Some(info) => Ok(Some((info.number, store.text(&info)?))),
            None => Ok(None),
        },
        None => Ok(store
            .latest(watch)?
            .map(|(info, blocks)| (info.number, blocks))),
    }
}
