//! What the daemon answers on its control socket (status, outbox and
//! subscriber commands), and the same status read from the store when no
//! daemon runs.

use std::path::Path;

use chrono::Utc;

use super::Daemon;
use crate::config::Config;
use crate::core::schedule::{self, History, Timing};
use crate::service::delivery;
use crate::service::status::{self, StatusReport, WatchStatus};
use crate::store::Store;

impl Daemon {
    pub(super) fn serve_status_report(&self) -> StatusReport {
        let now = Utc::now();
        let watches = self
            .plan
            .values()
            .map(|planned| {
                let state = self
                    .store
                    .watch_state(&planned.watch.name)
                    .unwrap_or_default();
                WatchStatus {
                    name: planned.watch.name.clone(),
                    url: planned.watch.url.to_string(),
                    last_check: state.last_check,
                    next_run: Some(planned.due),
                    last_change: state.last_change,
                    last_error: state.last_error,
                    consecutive_failures: state.consecutive_failures,
                    latest_version: state.latest_version,
                    in_flight: self.in_flight.contains(&planned.watch.name),
                }
            })
            .collect();
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
            watches,
        }
    }

    /// Answers a control-socket request.
    pub(super) fn answer(&mut self, request: &status::Request) -> Vec<u8> {
        match request {
            status::Request::Status => {
                serde_json::to_vec(&self.serve_status_report()).unwrap_or_default()
            }
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
        }
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
    let watches = config
        .watches
        .iter()
        .map(|watch| {
            let state = store.watch_state(&watch.name).unwrap_or_default();
            let history = History {
                last_check: state.last_check,
                consecutive_failures: state.consecutive_failures,
            };
            WatchStatus {
                name: watch.name.clone(),
                url: watch.url.to_string(),
                last_check: state.last_check,
                next_run: Some(schedule::due(
                    &watch.schedule,
                    &watch.name,
                    history,
                    now,
                    &timing,
                )),
                last_change: state.last_change,
                last_error: state.last_error,
                consecutive_failures: state.consecutive_failures,
                latest_version: state.latest_version,
                in_flight: false,
            }
        })
        .collect();
    StatusReport {
        daemon_running: false,
        config: config_path.display().to_string(),
        watches,
        ..StatusReport::default()
    }
}
