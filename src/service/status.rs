//! What `tidings status` shows, and how it gets it.
//!
//! sled lets one process open a store at a time, so while the daemon runs it
//! answers status requests on a Unix socket in the state directory
//! (`tidings.sock`): connect, read one JSON document, done. When no daemon
//! answers, `tidings status` reads the store itself.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::model::Block;
use crate::store::VersionInfo;

/// The control socket's file name inside the state directory.
pub const SOCKET_NAME: &str = "tidings.sock";

/// The socket path for a state directory.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

/// One watch, as status shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchStatus {
    /// The watch's name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The last check.
    pub last_check: Option<DateTime<Utc>>,
    /// When it will next run (daemon only).
    pub next_run: Option<DateTime<Utc>>,
    /// The last recorded change.
    pub last_change: Option<DateTime<Utc>>,
    /// The last error, cleared by a success.
    pub last_error: Option<String>,
    /// Failed checks since the last success.
    pub consecutive_failures: u32,
    /// The newest stored version.
    pub latest_version: Option<u64>,
    /// Whether a check is running now.
    pub in_flight: bool,
    /// When an admin paused it (`tidings pause`), if it is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_since: Option<DateTime<Utc>>,
}

/// The whole status report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Whether this came from a running daemon (else from the store).
    pub daemon_running: bool,
    /// The daemon's process id.
    pub pid: Option<u32>,
    /// When the daemon started.
    pub started_at: Option<DateTime<Utc>>,
    /// The config file in use.
    pub config: String,
    /// Watches due but waiting for a free slot.
    pub queue_depth: usize,
    /// Checks running now.
    pub in_flight: usize,
    /// Checks completed since start.
    pub checks: u64,
    /// Changes recorded since start.
    pub changes: u64,
    /// Failed checks since start.
    pub failures: u64,
    /// The outbox, as the daemon's delivery worker sees it (daemon only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<crate::service::delivery::OutboxStatus>,
    /// Every watch; empty in a summary (`tidings status` without `--all`
    /// or `--json`), which lists only its failing watches, in `summary`.
    pub watches: Vec<WatchStatus>,
    /// The counts `tidings status` shows by default: a daemon computes them
    /// from memory, so the answer does not grow with the number of watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<StatusSummary>,
    /// Every node on a shared (PostgreSQL) store, read from the database.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeStatus>,
}

/// How many failing watches a summary names; the rest are counted.
pub const SUMMARY_FAILING: usize = 20;

/// Every watch counted by state, and the few worth naming: what an admin
/// asks `tidings status` first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSummary {
    /// Watches in the config.
    pub watches: usize,
    /// Whose last check succeeded.
    pub ok: usize,
    /// Whose last check failed.
    pub failing: usize,
    /// Paused by an admin.
    pub paused: usize,
    /// Never checked yet.
    pub never_checked: usize,
    /// Failing watches, most failures first, at most [`SUMMARY_FAILING`].
    pub failing_watches: Vec<WatchStatus>,
    /// Paused watches by name, at most [`SUMMARY_FAILING`].
    #[serde(default)]
    pub paused_watches: Vec<String>,
    /// The next watch due, and when (not counting running ones).
    pub next_due: Option<(DateTime<Utc>, String)>,
    /// The watch checked longest ago, and when.
    pub oldest_check: Option<(DateTime<Utc>, String)>,
    /// The store's size on disk, when it could be read.
    pub store_bytes: Option<u64>,
}

impl StatusSummary {
    /// The summary of a full report: what the CLI shows when it read the
    /// store itself, or asked a daemon that sends only full reports.
    pub fn of(report: &StatusReport) -> Self {
        let mut summary = Self {
            watches: report.watches.len(),
            ..Self::default()
        };
        let mut failing = Vec::new();
        for watch in &report.watches {
            if watch.paused_since.is_some() {
                summary.paused += 1;
                if summary.paused_watches.len() < SUMMARY_FAILING {
                    summary.paused_watches.push(watch.name.clone());
                }
            }
            if watch.last_check.is_none() {
                summary.never_checked += 1;
            } else if watch.consecutive_failures > 0 {
                failing.push(watch);
            } else {
                summary.ok += 1;
            }
            if let Some(due) = watch
                .next_run
                .filter(|_| !watch.in_flight && watch.paused_since.is_none())
                && summary.next_due.as_ref().is_none_or(|(t, _)| due < *t)
            {
                summary.next_due = Some((due, watch.name.clone()));
            }
            if let Some(checked) = watch.last_check
                && summary
                    .oldest_check
                    .as_ref()
                    .is_none_or(|(t, _)| checked < *t)
            {
                summary.oldest_check = Some((checked, watch.name.clone()));
            }
        }
        summary.failing = failing.len();
        summary.failing_watches = worst_first(failing.into_iter().cloned().collect());
        summary
    }
}

/// Failing watches, most consecutive failures first (then by name), cut to
/// [`SUMMARY_FAILING`].
pub fn worst_first(mut failing: Vec<WatchStatus>) -> Vec<WatchStatus> {
    failing.sort_by(|a, b| {
        b.consecutive_failures
            .cmp(&a.consecutive_failures)
            .then_with(|| a.name.cmp(&b.name))
    });
    failing.truncate(SUMMARY_FAILING);
    failing
}

/// One node of a shared store, for `tidings status`.
pub use crate::store::NodeRow as NodeStatus;

/// What a client asks the daemon over the socket: one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// The full status report, every watch in one document (also what a
    /// client that sends nothing gets): `tidings status --json`.
    Status,
    /// The report without the per-watch table, its [`StatusSummary`]
    /// filled in: what `tidings status` shows by default.
    Summary,
    /// The per-watch table (only the named watches, or every one when
    /// empty), streamed as [`Frame::Rows`] ending in [`Frame::End`]:
    /// `tidings status --all` / `--watch NAME`.
    Table {
        /// Watch names; empty for every watch.
        watches: Vec<String>,
    },
    /// An outbox command, run by the daemon since it holds the store.
    Outbox(crate::service::delivery::OutboxCommand),
    /// A subscriber command, likewise.
    Subscribers(crate::service::admin::SubscriberCommand),
    /// Check these watches now (`tidings check-now`).
    CheckNow {
        /// Watch names.
        watches: Vec<String>,
    },
    /// Start no check of these watches until resumed (`tidings pause`);
    /// stored, so it lasts across restarts.
    Pause {
        /// Watch names.
        watches: Vec<String>,
    },
    /// Lift a pause (`tidings resume`).
    Resume {
        /// Watch names.
        watches: Vec<String>,
    },
    /// A consistent backup of the store (`tidings backup`): the answer is
    /// the backup's bytes.
    Backup,
    /// A watch's stored versions, oldest first: answered with a stream of
    /// [`Frame::Version`] ending in [`Frame::End`].
    History {
        /// The watch.
        watch: String,
    },
    /// One stored text (the latest when `version` is `None`): answered
    /// with [`Frame::Text`], or [`Frame::Missing`] when there is none.
    Text {
        /// The watch.
        watch: String,
        /// The version number.
        version: Option<u64>,
    },
    /// Every subscriber as CSV (`tidings subscribers export`): a stream of
    /// [`Frame::Line`]s (the header, then a page of rows each) ending in
    /// [`Frame::End`], so that a long list is never held whole.
    ExportSubscribers,
    /// Check these watches now (every watch when empty) and report each as
    /// it finishes: a stream of [`Frame::Line`] (unless `json`) ending in
    /// [`Frame::Done`].
    Check {
        /// The watches, by name.
        watches: Vec<String>,
        /// Whether the client wants the JSON summary instead of lines.
        json: bool,
    },
}

impl Request {
    /// Whether the answer is a stream of [`Frame`]s rather than one JSON
    /// document.
    pub fn streams(&self) -> bool {
        matches!(
            self,
            Self::History { .. }
                | Self::Text { .. }
                | Self::Check { .. }
                | Self::ExportSubscribers
                | Self::Table { .. }
        )
    }
}

/// One line of a streamed answer. A stream that stops before its last
/// frame (the daemon died, say) is an error, never a short answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    /// One stored version (`history`).
    Version(VersionInfo),
    /// A stored text and its version number (`show`, `diff WATCH@N`).
    Text {
        /// The version number.
        number: u64,
        /// The text.
        blocks: Vec<Block>,
    },
    /// The version asked for does not exist.
    Missing,
    /// One watch's line, printed as its check finishes (`check`).
    Line(String),
    /// A page of the status table (`status --all`), in name order.
    Rows(Vec<WatchStatus>),
    /// The end of a `check`: its exit status, and the JSON summary when it
    /// was asked for.
    Done {
        /// The exit status `tidings check` would return.
        code: u8,
        /// `tidings check --json`'s document.
        json: Option<String>,
    },
    /// The end of a stream that had no other last frame.
    End,
    /// The daemon could not answer; the message says why.
    Error(String),
}

impl Frame {
    /// Whether this frame ends its stream.
    pub fn is_last(&self) -> bool {
        !matches!(self, Self::Version(_) | Self::Line(_) | Self::Rows(_))
    }
}

/// Why the daemon could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Nothing listens on the socket.
    #[error("no daemon answers on {path}: {source}")]
    NotRunning {
        /// The socket path.
        path: PathBuf,
        /// The connection error.
        source: std::io::Error,
    },
    /// The daemon answered with something unreadable.
    #[error("the daemon on {path} sent an unreadable status: {reason}")]
    Garbled {
        /// The socket path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Asks a running daemon for its status.
pub fn query(state_dir: &Path) -> Result<StatusReport, StatusError> {
    let path = socket_path(state_dir);
    let body = ask(state_dir, &Request::Status)?;
    serde_json::from_str(&body).map_err(|e| StatusError::Garbled {
        path,
        reason: e.to_string(),
    })
}

/// Sends one request to a running daemon and returns its answer's bytes,
/// waiting at most `timeout` for them.
pub fn ask_bytes(
    state_dir: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Vec<u8>, StatusError> {
    let path = socket_path(state_dir);
    let mut stream = UnixStream::connect(&path).map_err(|source| StatusError::NotRunning {
        path: path.clone(),
        source,
    })?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let garbled = |e: std::io::Error| StatusError::Garbled {
        path: path.clone(),
        reason: e.to_string(),
    };
    let mut line = serde_json::to_vec(request).unwrap_or_default();
    line.push(b'\n');
    stream.write_all(&line).map_err(garbled)?;
    let mut body = Vec::new();
    stream.read_to_end(&mut body).map_err(garbled)?;
    Ok(body)
}

/// Sends one request to a running daemon and returns its JSON answer.
pub fn ask(state_dir: &Path, request: &Request) -> Result<String, StatusError> {
    // A daemon that accepted but hangs must not hang the admin's shell.
    let body = ask_bytes(state_dir, request, Duration::from_secs(10))?;
    String::from_utf8(body).map_err(|e| StatusError::Garbled {
        path: socket_path(state_dir),
        reason: e.to_string(),
    })
}

/// Sends a streaming request to a running daemon and hands each frame to
/// `each` as it arrives, up to and including the last. `wait` bounds the
/// silence between two frames (a check can take as long as its fetches).
pub fn stream(
    state_dir: &Path,
    request: &Request,
    wait: Duration,
    mut each: impl FnMut(Frame) -> std::io::Result<()>,
) -> Result<(), StatusError> {
    use std::io::BufRead as _;
    let path = socket_path(state_dir);
    let stream = UnixStream::connect(&path).map_err(|source| StatusError::NotRunning {
        path: path.clone(),
        source,
    })?;
    let _ = stream.set_read_timeout(Some(wait));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let garbled = |reason: String| StatusError::Garbled {
        path: path.clone(),
        reason,
    };
    let mut line = serde_json::to_vec(request).unwrap_or_default();
    line.push(b'\n');
    (&stream)
        .write_all(&line)
        .map_err(|e| garbled(e.to_string()))?;
    let reader = std::io::BufReader::new(&stream);
    for line in reader.lines() {
        let line = line.map_err(|e| garbled(e.to_string()))?;
        let frame: Frame = serde_json::from_str(&line).map_err(|e| garbled(e.to_string()))?;
        let last = frame.is_last();
        each(frame).map_err(|e| garbled(e.to_string()))?;
        if last {
            return Ok(());
        }
    }
    Err(garbled(
        "the answer stopped before its end (did the daemon stop?)".to_owned(),
    ))
}

/// One frame as the line sent on the socket.
pub fn frame_line(frame: &Frame) -> Vec<u8> {
    let mut line = serde_json::to_vec(frame).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Reads a request line from a client, within `timeout`. Silence or
/// garbage means a status request, so that any client that just connects
/// and reads still gets the report.
pub async fn read_request(stream: &mut tokio::net::UnixStream, timeout: Duration) -> Request {
    use tokio::io::AsyncBufReadExt as _;
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    match tokio::time::timeout(timeout, reader.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => serde_json::from_str(line.trim()).unwrap_or(Request::Status),
        _ => Request::Status,
    }
}

/// The report's heading: the daemon's pid, counters and outbox.
fn render_heading(report: &StatusReport, out: &mut String) {
    use std::fmt::Write as _;
    if report.daemon_running {
        let _ = writeln!(
            out,
            "daemon running (pid {}), since {}, config {}",
            report.pid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
            report.started_at.map_or_else(
                || "?".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            ),
            report.config
        );
        let _ = writeln!(
            out,
            "in flight {}, queued {}, checks {}, changes {}, failures {}",
            report.in_flight, report.queue_depth, report.checks, report.changes, report.failures
        );
        if let Some(outbox) = &report.outbox {
            let _ = writeln!(
                out,
                "outbox: {} pending, {} sent, {} retried, {} failed since start; mail via {}",
                outbox.depth, outbox.sent, outbox.retried, outbox.failed, outbox.transport
            );
            if let Some(reason) = &outbox.paused {
                let _ = writeln!(out, "outbox PAUSED: {reason}");
            }
        }
    } else {
        let _ = writeln!(out, "daemon not running; state read from the store");
    }
}

fn time(t: &Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.format("%m-%d %H:%M:%S").to_string(),
    )
}

/// The per-watch table's header line.
pub fn table_header() -> String {
    format!(
        "{:<28} {:>14} {:>14} {:>14} {:>4} {:>5}  LAST ERROR\n",
        "WATCH", "LAST CHECK", "NEXT RUN", "LAST CHANGE", "FAIL", "VER"
    )
}

/// Rows of the per-watch table, one line each.
pub fn render_rows(watches: &[WatchStatus], out: &mut String) {
    use std::fmt::Write as _;
    for watch in watches {
        let name = if watch.in_flight {
            format!("{} *", watch.name)
        } else {
            watch.name.clone()
        };
        let next_run = if watch.paused_since.is_some() {
            "PAUSED".to_owned()
        } else {
            time(&watch.next_run)
        };
        let _ = writeln!(
            out,
            "{:<28} {:>14} {:>14} {:>14} {:>4} {:>5}  {}",
            name,
            time(&watch.last_check),
            next_run,
            time(&watch.last_change),
            watch.consecutive_failures,
            watch
                .latest_version
                .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            watch.last_error.as_deref().unwrap_or("")
        );
    }
}

/// The summary for people: the heading, counts by state, the failing
/// watches by name, the next due, the oldest check, the store's size.
pub fn render_summary(report: &StatusReport, summary: &StatusSummary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    render_heading(report, &mut out);
    let _ = writeln!(
        out,
        "\nwatches {}: {} ok, {} failing, {} never checked, {} paused",
        summary.watches, summary.ok, summary.failing, summary.never_checked, summary.paused
    );
    let named = |entry: &Option<(DateTime<Utc>, String)>| {
        entry.as_ref().map_or_else(
            || "-".to_owned(),
            |(t, name)| format!("{} ({name})", t.format("%Y-%m-%d %H:%M:%S UTC")),
        )
    };
    let _ = writeln!(out, "next due: {}", named(&summary.next_due));
    let _ = writeln!(out, "oldest check: {}", named(&summary.oldest_check));
    if !summary.paused_watches.is_empty() {
        let more = summary.paused - summary.paused_watches.len();
        let _ = writeln!(
            out,
            "PAUSED until `tidings resume`: {}{}",
            summary.paused_watches.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    if let Some(bytes) = summary.store_bytes {
        let size = if bytes >= 1_000_000 {
            format!("{:.1} MB", bytes as f64 / 1e6)
        } else {
            format!("{:.1} KB", bytes as f64 / 1e3)
        };
        let _ = writeln!(out, "store: {size} on disk");
    }
    if !summary.failing_watches.is_empty() {
        let _ = writeln!(
            out,
            "\nfailing{}:",
            if summary.failing > summary.failing_watches.len() {
                format!(
                    " (the {} with most failures of {})",
                    summary.failing_watches.len(),
                    summary.failing
                )
            } else {
                String::new()
            }
        );
        out.push_str(&table_header());
        render_rows(&summary.failing_watches, &mut out);
    }
    render_nodes(report, &mut out);
    let _ = writeln!(
        out,
        "\n`tidings status --all` lists every watch; `--watch NAME` one."
    );
    out
}

/// The report as a table for people: every watch in it.
pub fn render(report: &StatusReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    render_heading(report, &mut out);
    out.push('\n');
    out.push_str(&table_header());
    let paused = report
        .watches
        .iter()
        .filter(|w| w.paused_since.is_some())
        .count();
    if paused > 0 {
        let _ = writeln!(
            out,
            "paused: {paused} watch(es), not checked until `tidings resume`"
        );
    }
    render_rows(&report.watches, &mut out);
    render_nodes(report, &mut out);
    out
}

/// Every node of a shared store.
fn render_nodes(report: &StatusReport, out: &mut String) {
    use std::fmt::Write as _;
    if !report.nodes.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<32} {:<16} {:>8} {:>14} {:>14}  HOLDING",
            "NODE", "HOST", "PID", "STARTED", "HEARTBEAT"
        );
        for node in &report.nodes {
            let _ = writeln!(
                out,
                "{:<32} {:<16} {:>8} {:>14} {:>14}  {}",
                node.node_id,
                node.hostname,
                node.pid,
                time(&Some(node.started_at)),
                if node.stopped {
                    "stopped".to_owned()
                } else {
                    time(&Some(node.heartbeat_at))
                },
                node.holding.join(", ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    fn watch(name: &str, last_check: Option<i64>, failures: u32) -> WatchStatus {
        WatchStatus {
            name: name.to_owned(),
            url: format!("http://127.0.0.1/{name}"),
            last_check: last_check.map(at),
            next_run: Some(at(1000 + name.len() as i64)),
            consecutive_failures: failures,
            last_error: (failures > 0).then(|| "HTTP 500".to_owned()),
            ..WatchStatus::default()
        }
    }

    #[test]
    fn a_summary_counts_by_state_and_names_the_worst_failures_first() {
        let mut watches = vec![
            watch("ok-1", Some(50), 0),
            watch("ok-22", Some(10), 0),
            watch("new", None, 0),
            watch("down", Some(40), 3),
            watch("flaky", Some(30), 1),
        ];
        watches[0].paused_since = Some(at(5));
        let report = StatusReport {
            watches,
            ..StatusReport::default()
        };
        let summary = StatusSummary::of(&report);
        assert_eq!(
            (
                summary.watches,
                summary.ok,
                summary.failing,
                summary.never_checked,
                summary.paused
            ),
            (5, 2, 2, 1, 1)
        );
        let failing: Vec<&str> = summary
            .failing_watches
            .iter()
            .map(|w| w.name.as_str())
            .collect();
        assert_eq!(failing, ["down", "flaky"]);
        assert_eq!(summary.oldest_check, Some((at(10), "ok-22".to_owned())));
        // The paused watch is never next; of the rest the shortest name is.
        assert_eq!(summary.next_due, Some((at(1003), "new".to_owned())));

        let text = render_summary(&report, &summary);
        assert!(
            text.contains("watches 5: 2 ok, 2 failing, 1 never checked, 1 paused"),
            "{text}"
        );
        assert!(text.contains("down"), "{text}");
        assert!(
            !text.contains("ok-22  "),
            "only failing watches are listed: {text}"
        );
    }

    #[test]
    fn a_summary_names_at_most_its_limit_of_failing_watches() {
        let failing: Vec<WatchStatus> = (0..SUMMARY_FAILING + 5)
            .map(|i| watch(&format!("w{i:03}"), Some(1), 1 + (i % 4) as u32))
            .collect();
        let worst = worst_first(failing);
        assert_eq!(worst.len(), SUMMARY_FAILING);
        // 25 watches with 1 to 4 failures: the seven with one are the
        // ones left out, but for two.
        let ones = worst.iter().filter(|w| w.consecutive_failures == 1).count();
        assert_eq!(ones, 2, "{worst:?}");
        assert!(
            worst
                .windows(2)
                .all(|p| p[0].consecutive_failures >= p[1].consecutive_failures)
        );
    }

    #[test]
    fn a_table_page_is_not_the_last_frame_of_its_stream() {
        assert!(!Frame::Rows(Vec::new()).is_last());
        assert!(Frame::End.is_last());
        assert!(
            Request::Table {
                watches: Vec::new()
            }
            .streams()
        );
        assert!(!Request::Summary.streams());
    }
}
