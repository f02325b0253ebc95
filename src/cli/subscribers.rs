//! `tidings subscribers …`: add, import, export and forget the people who get briefings.

use std::io::Write;

use anyhow::Context;
use chrono::Utc;

use crate::cli::common::{load_config, through_daemon};

pub(crate) fn subscribers_command(
    command: crate::cli::args::SubscribersCommand,
) -> anyhow::Result<u8> {
    use crate::cli::args::SubscribersCommand as S;
    use crate::service::admin::SubscriberCommand as C;
    if let S::Export { location } = &command {
        return export(location);
    }
    let (command, location) = match command {
        S::Add {
            address,
            name,
            follow,
            kinds,
            cadence,
            force,
            location,
        } => {
            let config = load_config(&location, false)?;
            if let Some(code) = check_follows(&config, &follow, force) {
                return Ok(code);
            }
            (
                C::Add {
                    address,
                    name,
                    follow,
                    kinds,
                    cadence,
                },
                location,
            )
        }
        S::Remove { address, location } => (C::Remove { address }, location),
        S::List { json, location } => (C::List { json }, location),
        S::Import {
            file,
            confirmed,
            location,
        } => {
            // Read here, so that the daemon never opens files for the CLI.
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            (
                C::Import {
                    source: file.display().to_string(),
                    text,
                    confirmed,
                },
                location,
            )
        }
        S::Export { location } => (C::Export, location),
        S::Forget { address, location } => (C::Forget { address }, location),
        S::Suppress {
            address,
            reason,
            requested,
            location,
        } => (
            C::Suppress {
                address,
                reason,
                requested,
            },
            location,
        ),
        S::Unsuppress { address, location } => (C::Unsuppress { address }, location),
    };
    let config = load_config(&location, false)?;
    let output: crate::service::admin::Output = through_daemon(
        &config,
        &crate::service::status::Request::Subscribers(command.clone()),
        |store| Ok(crate::service::admin::run(store, &command, Utc::now())),
    )?;
    std::io::stdout()
        .lock()
        .write_all(output.stdout.as_bytes())?;
    std::io::stderr()
        .lock()
        .write_all(output.stderr.as_bytes())?;
    Ok(output.code)
}

/// Pages of subscribers read at a time by an export without a daemon.
const EXPORT_PAGE: usize = 500;

/// `subscribers export`: the CSV is written as it is read, a page at a
/// time, from the running daemon (which holds an embedded store) or from
/// the store itself, so that a long list is never held whole.
fn export(location: &crate::cli::args::Location) -> anyhow::Result<u8> {
    use crate::service::status::{self, Frame, Request, StatusError};
    let config = load_config(location, false)?;
    let mut out = std::io::stdout().lock();
    if let crate::config::StoreBackend::Sled = &config.store {
        let mut failure = None;
        match status::stream(
            &config.state_dir,
            &Request::ExportSubscribers,
            crate::cli::common::DAEMON_READ_WAIT,
            |frame| match frame {
                Frame::Line(text) => out.write_all(text.as_bytes()),
                Frame::Error(message) => {
                    failure = Some(message);
                    Ok(())
                }
                _ => Ok(()),
            },
        ) {
            Ok(()) => {
                if let Some(message) = failure {
                    anyhow::bail!("the daemon could not export the subscribers: {message}");
                }
                out.flush()?;
                return Ok(0);
            }
            Err(StatusError::NotRunning { .. }) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let store = crate::cli::common::open_store(&config)?;
    out.write_all(crate::core::subscriptions::csv_header().as_bytes())?;
    let mut after: Option<String> = None;
    loop {
        let page = store.subscribers_page(after.as_deref(), EXPORT_PAGE)?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.address.clone());
        out.write_all(crate::core::subscriptions::csv_rows(&page).as_bytes())?;
    }
    out.flush()?;
    Ok(0)
}

/// Checks each `--follow` against the config's watches and tags: someone
/// following a name nothing has would never get a briefing. Unknown names
/// are an error (exit 2), or a warning with `--force`.
fn check_follows(config: &crate::config::Config, follow: &[String], force: bool) -> Option<u8> {
    if config.source.as_os_str().is_empty() {
        // No config file at all (a bare --state): nothing to check against.
        return None;
    }
    let unknown: Vec<&str> = follow
        .iter()
        .flat_map(|f| f.split([',', ';']))
        .map(str::trim)
        .filter(|f| !f.is_empty() && !config.knows_follow(f))
        .collect();
    if unknown.is_empty() {
        return None;
    }
    let what = unknown
        .iter()
        .map(|f| match f.strip_prefix("tag:") {
            Some(tag) => format!("no watch has the tag `{tag}`"),
            None => format!("there is no watch `{f}`"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    if force {
        eprintln!(
            "warning: --follow: {what} in {}; subscribed anyway (--force), but nothing will be sent for it until the config has it",
            config.source.display()
        );
        None
    } else {
        eprintln!(
            "error: --follow: {what} in {}; `tidings validate` lists the watches and tags (use --force to subscribe anyway)",
            config.source.display()
        );
        Some(crate::service::admin::EXIT_ERROR)
    }
}
