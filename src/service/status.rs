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
    /// Every watch.
    pub watches: Vec<WatchStatus>,
    /// Every node on a shared (PostgreSQL) store, read from the database.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeStatus>,
}

/// One node of a shared store, for `tidings status`.
pub use crate::store::NodeRow as NodeStatus;

/// What a client asks the daemon over the socket: one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// The status report (also what a client that sends nothing gets).
    Status,
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
            Self::History { .. } | Self::Text { .. } | Self::Check { .. } | Self::ExportSubscribers
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
        !matches!(self, Self::Version(_) | Self::Line(_))
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

/// The report as a table for people.
pub fn render(report: &StatusReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
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
    let time = |t: &Option<DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.format("%m-%d %H:%M:%S").to_string(),
        )
    };
    let _ = writeln!(
        out,
        "\n{:<28} {:>14} {:>14} {:>14} {:>4} {:>5}  LAST ERROR",
        "WATCH", "LAST CHECK", "NEXT RUN", "LAST CHANGE", "FAIL", "VER"
    );
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
    for watch in &report.watches {
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
    out
}
