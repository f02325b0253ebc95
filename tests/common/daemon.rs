//! `tidings run` as a real process, for tests: start it, signal it, watch
//! it through `tidings status --json` (it holds the store's lock, so the
//! socket is the way in), and kill it on drop so a failing test leaves no
//! daemon behind.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{WatchDef, Workspace, command, config_text};
use tidings::service::status::{StatusReport, WatchStatus};

/// How long any one condition is waited for.
pub const WAIT: Duration = Duration::from_secs(15);
/// How often it is polled.
pub const POLL: Duration = Duration::from_millis(100);

pub const EVERY_SECOND: &str = "schedule = \"*/1 * * * * *\"";

/// A config whose watches run every second, with no jitter.
pub fn daemon_config(watches: &[WatchDef], daemon_extra: &str) -> String {
    let watches: Vec<WatchDef> = watches
        .iter()
        .map(|w| {
            if w.extra.contains("schedule") {
                w.clone()
            } else {
                w.clone().with(EVERY_SECOND)
            }
        })
        .collect();
    format!(
        "{}\n[daemon]\nmax_jitter = \"0s\"\nshutdown_deadline = \"10s\"\n{daemon_extra}",
        config_text(&watches)
    )
}

/// Rewrites the workspace's config (with its `[store]` section).
pub fn write(ws: &Workspace, text: &str) {
    ws.write_text(text);
}

/// A running `tidings run`, killed on drop so a failing test leaves no
/// daemon behind.
pub struct Daemon {
    pub child: Child,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Daemon {
    /// Starts `tidings run --config CONFIG` with stderr in a log file in the
    /// workspace.
    pub fn spawn(ws: &Workspace) -> Self {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let log = ws.path().join(format!(
            "daemon-{}.log",
            STARTS.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&log).expect("create log");
        let child = command(ws.path())
            .args(["run", "--config", ws.config.to_str().expect("utf-8 path")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start tidings run");
        Self {
            child,
            log,
            exit: None,
        }
    }

    /// Starts the daemon and waits until it serves status (so its signal
    /// handlers are installed: before that, HUP or TERM would just kill it).
    pub fn start(ws: &Workspace) -> Self {
        let mut daemon = Self::spawn(ws);
        daemon.wait_for("the daemon to start", |d| {
            daemon_status(&ws.config).filter(|s| s.pid == Some(d.child.id()))
        });
        daemon
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.pid()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// What the daemon wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process has exited; its status once it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait");
        }
        self.exit
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit within {WAIT:?}\n--- log\n{}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Polls `probe` until it gives a value, failing the test (with the
    /// daemon's log) after [`WAIT`] or if the daemon dies meanwhile.
    pub fn wait_for<T>(&mut self, what: &str, mut probe: impl FnMut(&Self) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(value) = probe(self) {
                return value;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "the daemon exited ({status}) while waiting for {what}\n--- log\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what}\n--- log\n{}",
                self.log()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits until status shows a watch for which `test` holds, and returns it.
    pub fn wait_for_watch(
        &mut self,
        config: &Path,
        name: &str,
        what: &str,
        test: impl Fn(&WatchStatus) -> bool,
    ) -> WatchStatus {
        let mut last = None;
        let found = {
            let deadline = Instant::now() + WAIT;
            loop {
                let status = daemon_status(config);
                if let Some(watch) = status.as_ref().and_then(|s| find(s, name))
                    && test(&watch)
                {
                    break Some(watch);
                }
                last = status;
                if self.exited().is_some() || Instant::now() >= deadline {
                    break None;
                }
                std::thread::sleep(POLL);
            }
        };
        found.unwrap_or_else(|| {
            panic!(
                "no `{name}` with {what} (exit: {:?})\n--- last status\n{last:#?}\n--- log\n{}",
                self.exited(),
                self.log()
            )
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `tidings status --json`, if a running daemon answered it.
pub fn daemon_status(config: &Path) -> Option<StatusReport> {
    let dir = config.parent().expect("config dir");
    let output = command(dir)
        .args([
            "status",
            "--json",
            "--config",
            config.to_str().expect("utf-8 path"),
        ])
        .output()
        .expect("run tidings status");
    if !output.status.success() {
        return None;
    }
    let report: StatusReport = serde_json::from_slice(&output.stdout).ok()?;
    report.daemon_running.then_some(report)
}

pub fn find(report: &StatusReport, name: &str) -> Option<WatchStatus> {
    report.watches.iter().find(|w| w.name == name).cloned()
}

pub fn names(report: &StatusReport) -> Vec<String> {
    report.watches.iter().map(|w| w.name.clone()).collect()
}
