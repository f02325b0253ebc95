//! `tidings status`: a summary of every watch from the daemon (or, without
//! one, from the store); the per-watch table with `--all` or `--watch`.

use std::io::Write;

use anyhow::Context;

use crate::cli::args::Location;
use crate::cli::common::{lenient_embedded_state_dir, lenient_state_dir, load_config};
use crate::service::status::{self, Frame, Request, StatusError, StatusReport, StatusSummary};
use crate::store::Store;

/// What `tidings status` was asked to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Show {
    /// Counts by state, the failing watches, the next due (the default).
    Summary,
    /// The per-watch table: every watch when `watches` is empty.
    Table { watches: Vec<String>, json: bool },
    /// The full report as one JSON document (`--json`), as before the
    /// summary existed, so that scripts keep working.
    Json,
}

impl Show {
    pub(crate) fn from_flags(json: bool, all: bool, watches: Vec<String>) -> Self {
        if !watches.is_empty() {
            Self::Table { watches, json }
        } else if json {
            Self::Json
        } else if all {
            Self::Table {
                watches: Vec::new(),
                json: false,
            }
        } else {
            Self::Summary
        }
    }
}

pub(crate) fn status_command(show: Show, location: &Location) -> anyhow::Result<u8> {
    // A running daemon on the embedded store answers from memory and needs
    // only its state directory: reading and validating a config of 100,000
    // watches first would cost about a second of the answer.
    if let Some(state_dir) = lenient_embedded_state_dir(location) {
        if let Some(code) = ask_daemon(&state_dir, &show)? {
            return Ok(code);
        }
    }
    // A config that no longer validates (say, an edit the daemon rejected on
    // SIGHUP) must not stop the admin from asking the running daemon.
    let config = match load_config(location, true) {
        Ok(config) => config,
        Err(error) => match lenient_state_dir(location) {
            Some(state_dir) => {
                if let Some(code) = ask_daemon(&state_dir, &show)? {
                    eprintln!(
                        "warning: the config file does not validate; showing the running daemon's status"
                    );
                    return Ok(code);
                }
                return Err(error);
            }
            None => return Err(error),
        },
    };
    let shared = matches!(&config.store, crate::config::StoreBackend::Postgres(_));
    if !shared {
        if let Some(code) = ask_daemon(&config.state_dir, &show)? {
            return Ok(code);
        }
    }
    let mut report = match status::query(&config.state_dir) {
        Ok(report) => report,
        Err(StatusError::NotRunning { .. }) => {
            let store = Store::open_configured(&config, false).with_context(|| {
                format!(
                    "no daemon answers on {} and the store cannot be opened",
                    status::socket_path(&config.state_dir).display()
                )
            })?;
            crate::service::daemon::offline_status(&config, &store, &config.source)
        }
        Err(other) => return Err(other.into()),
    };
    if shared {
        // Every node, from the database they share.
        let store = Store::open_configured(&config, false)?;
        report.nodes = store.nodes()?;
    }
    print_from_report(report, &show)
}

/// Asks a running daemon for what `show` wants and prints it; `None` when
/// no daemon answers on this state directory.
fn ask_daemon(state_dir: &std::path::Path, show: &Show) -> anyhow::Result<Option<u8>> {
    let answered = match show {
        Show::Summary => {
            let report = match status::ask(state_dir, &Request::Summary) {
                Ok(body) => {
                    serde_json::from_str::<StatusReport>(&body).map_err(|e| StatusError::Garbled {
                        path: status::socket_path(state_dir),
                        reason: e.to_string(),
                    })
                }
                Err(error) => Err(error),
            };
            // A daemon from before the summary sends the full report,
            // which is summed up here.
            report.map(|report| print_from_report(report, show))
        }
        Show::Json => status::query(state_dir).map(|report| print_from_report(report, show)),
        Show::Table { watches, json } => {
            let request = Request::Table {
                watches: watches.clone(),
            };
            let mut out = std::io::stdout().lock();
            let mut started = false;
            let mut failed = None;
            let streamed = status::stream(state_dir, &request, TABLE_WAIT, |frame| {
                match frame {
                    Frame::Rows(rows) => {
                        if *json {
                            for row in &rows {
                                serde_json::to_writer(&mut out, row)?;
                                writeln!(out)?;
                            }
                        } else {
                            if !started {
                                write!(out, "{}", status::table_header())?;
                                started = true;
                            }
                            let mut text = String::new();
                            status::render_rows(&rows, &mut text);
                            out.write_all(text.as_bytes())?;
                        }
                    }
                    Frame::Error(message) => failed = Some(message),
                    _ => {}
                }
                Ok(())
            });
            out.flush()?;
            match (streamed, failed) {
                (Ok(()), None) => Ok(Ok(0)),
                (Ok(()), Some(message)) => Ok(Err(anyhow::anyhow!(message))),
                (Err(error), _) => Err(error),
            }
        }
    };
    match answered {
        Ok(printed) => printed.map(Some),
        Err(StatusError::NotRunning { .. }) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// How long the CLI waits between two pages of a streamed table.
const TABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Prints a report as `show` asks, from a report already in hand (the
/// store read offline, or a daemon's answer).
fn print_from_report(report: StatusReport, show: &Show) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    match show {
        Show::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
        Show::Summary => {
            let summary = report
                .summary
                .clone()
                .unwrap_or_else(|| StatusSummary::of(&report));
            write!(out, "{}", status::render_summary(&report, &summary))?;
        }
        Show::Table { watches, json } => {
            let rows: Vec<_> = if watches.is_empty() {
                report.watches.clone()
            } else {
                let mut rows = Vec::new();
                for name in watches {
                    match report.watches.iter().find(|w| &w.name == name) {
                        Some(row) => rows.push(row.clone()),
                        None => anyhow::bail!("no watch named `{name}` in {}", report.config),
                    }
                }
                rows
            };
            if *json {
                for row in &rows {
                    writeln!(out, "{}", serde_json::to_string(row)?)?;
                }
            } else if watches.is_empty() {
                write!(
                    out,
                    "{}",
                    status::render(&StatusReport {
                        watches: rows,
                        ..report
                    })
                )?;
            } else {
                let mut text = status::table_header();
                status::render_rows(&rows, &mut text);
                out.write_all(text.as_bytes())?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}
