//! `tidings check [WATCH…]`: one pass over the configured watches.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::args::Location;
use crate::cli::common::{StoreAccess, load_config, open_store_or_daemon, pipeline_for};
use crate::config::{StoreBackend, Watch};
use crate::service::lease::CommandLeases;
use crate::service::pipeline::{CheckReport, CheckSummary, Outcome, Pipeline};
use crate::service::status::{self, Frame, Request};

pub(crate) async fn check_command(
    names: &[String],
    json: bool,
    location: &Location,
) -> anyhow::Result<u8> {
    let config = load_config(location, true)?;
    let watches: Vec<Watch> = if names.is_empty() {
        config.watches.clone()
    } else {
        names
            .iter()
            .map(|name| {
                config.watch(name).cloned().with_context(|| {
                    format!("no watch named `{name}` in {}", config.source.display())
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let store = match open_store_or_daemon(&config)? {
        StoreAccess::Local(store) => store,
        StoreAccess::Daemon(state_dir) => return check_through_daemon(&state_dir, names, json),
    };
    // A pass over every watch leaves paused ones alone, as the daemon
    // does; a watch named on the command line is checked all the same.
    let watches: Vec<Watch> = if names.is_empty() {
        let paused = store.paused()?;
        watches
            .into_iter()
            .filter(|watch| {
                let skip = paused.contains_key(&watch.name);
                if skip {
                    eprintln!("PAUSED: {} (skipped; `tidings resume` it)", watch.name);
                }
                !skip
            })
            .collect()
    } else {
        watches
    };
    // On a shared store, a node may be checking some of these right now:
    // those are left to it, and the rest are leased while this runs.
    let shared = matches!(config.store, StoreBackend::Postgres(_));
    let (leases, watches, held) = CommandLeases::take(store.clone(), &config.store, watches)?;
    for skipped in &held {
        eprintln!(
            "HELD: {}: node {} is checking it (lease until {}); skipped",
            skipped.watch,
            skipped.node,
            skipped.until.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    let pipeline = Arc::new(pipeline_for(&config, store.clone())?);
    let reports = if shared {
        tokio::select! {
            reports = run_checks(&pipeline, &watches, !json) => reports,
            _ = tokio::signal::ctrl_c() => {
                // Other nodes need not wait for the leases to run out.
                leases.release().await;
                eprintln!("interrupted: leases given back");
                return Ok(EXIT_INTERRUPTED);
            }
        }
    } else {
        run_checks(&pipeline, &watches, !json).await
    };
    leases.release().await;
    store.flush()?;
    if json {
        let summary = CheckSummary::new(&reports);
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
        out.flush()?;
    }
    let failed = reports
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Failed { .. }));
    Ok(if failed {
        1
    } else if held.is_empty() {
        0
    } else {
        EXIT_HELD
    })
}

/// No check failed, but a node held some watch's lease, so this run did
/// not check it.
const EXIT_HELD: u8 = 3;
/// Interrupted (Ctrl-C) on a shared store, after giving the leases back.
const EXIT_INTERRUPTED: u8 = 130;

/// Runs a pass with a progress bar on a terminal, printing a line per watch
/// as it completes when `lines` is set.
pub(crate) async fn run_checks(
    pipeline: &Arc<Pipeline>,
    watches: &[Watch],
    lines: bool,
) -> Vec<CheckReport> {
    // A bar for a handful of watches would flash and vanish; it helps only
    // when a pass takes a while.
    let show_bar = watches.len() > 5 && std::io::stderr().is_terminal();
    let bar = if show_bar {
        indicatif::ProgressBar::new(watches.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    let mut stdout = std::io::stdout();
    let reports = pipeline
        .check_all(watches, |report| {
            bar.inc(1);
            if lines {
                bar.suspend(|| {
                    // A closed stdout must not abort the pass; the store is
                    // already updated.
                    let _ = writeln!(stdout, "{}", report.line());
                });
            }
        })
        .await;
    bar.finish_and_clear();
    reports
}

/// `tidings check` while the daemon holds the store: the daemon runs the
/// checks (it is the store's one writer) and reports each as it is stored;
/// the lines, the JSON and the exit status are those of a check without it.
fn check_through_daemon(state_dir: &Path, names: &[String], json: bool) -> anyhow::Result<u8> {
    let request = Request::Check {
        watches: names.to_vec(),
        json,
    };
    let mut out = std::io::stdout();
    let mut ending = None;
    // A pass waits for its slowest fetch, retries included.
    status::stream(state_dir, &request, Duration::from_secs(15 * 60), |frame| {
        match frame {
            Frame::Line(line) => {
                writeln!(out, "{line}")?;
                out.flush()?;
            }
            other => ending = Some(other),
        }
        Ok(())
    })?;
    match ending {
        Some(Frame::Done { code, json }) => {
            if let Some(json) = json {
                writeln!(out, "{json}")?;
            }
            out.flush()?;
            Ok(code)
        }
        Some(Frame::Error(message)) => bail!("{message}"),
        other => bail!("the daemon answered `check` with {other:?}"),
    }
}
