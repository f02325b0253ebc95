//! `tidings outbox …`: list, retry, cancel and send queued briefings.

use std::io::Write;

use anyhow::bail;
use chrono::Utc;

use crate::cli::args::Location;
use crate::cli::common::{load_config, open_store, runtime, through_daemon};

pub(crate) fn outbox_command(command: crate::cli::args::OutboxCommand) -> anyhow::Result<u8> {
    use crate::cli::args::OutboxCommand as O;
    use crate::service::delivery::OutboxCommand as Request;
    let (request, json, location) = match command {
        O::List {
            all,
            json,
            location,
        } => (Request::List { all }, json, location),
        O::Retry {
            ids,
            failed,
            location,
        } => {
            if ids.is_empty() && !failed {
                bail!(
                    "name the briefings to retry (ids from `tidings outbox list`), or pass --failed"
                );
            }
            (Request::Retry { ids, failed }, false, location)
        }
        O::Cancel { ids, location } => (Request::Cancel { ids }, false, location),
        O::Send { location } => return outbox_send(&location),
    };
    let config = load_config(&location, false)?;
    let reply: crate::service::delivery::OutboxReply = through_daemon(
        &config,
        &crate::service::status::Request::Outbox(request.clone()),
        |store| {
            Ok(crate::service::delivery::outbox_command(
                store,
                &request,
                config.mail.domain(),
                Utc::now(),
            )?)
        },
    )?;
    if let Some(error) = &reply.error {
        bail!("the daemon could not run the command: {error}");
    }
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&reply.rows)?)?;
        return Ok(0);
    }
    let verb = match request {
        Request::List { .. } => None,
        Request::Retry { .. } => Some("queued again"),
        Request::Cancel { .. } => Some("cancelled"),
    };
    match verb {
        None if reply.rows.is_empty() && reply.digests.is_empty() => {
            writeln!(out, "the outbox is empty, and no change waits for a digest")?;
        }
        None if reply.rows.is_empty() => writeln!(out, "no briefing is queued")?,
        None => {
            writeln!(
                out,
                "{:>6}  {:<9} {:<9} {:>3}  {:<19} {:<32} CHANGES / LAST ERROR",
                "ID", "STATE", "CADENCE", "TRY", "NEXT / DONE", "TO"
            )?;
            for row in &reply.rows {
                let when = row
                    .next_attempt
                    .or(row.finished_at)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{:>6}  {:<9} {:<9} {:>3}  {:<19} {:<32} {}{}",
                    row.id,
                    row.state,
                    row.cadence,
                    row.attempts,
                    when,
                    row.address,
                    row.changes.join(" "),
                    row.last_error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                )?;
            }
        }
        Some(verb) => {
            for row in &reply.rows {
                writeln!(out, "{verb}: {} to {}", row.id, row.address)?;
            }
        }
    }
    if verb.is_none() && !reply.digests.is_empty() {
        writeln!(
            out,
            "\nwaiting for digests ({}):\n{:<19} {:<32} {:<19} CHANGE",
            reply.digests.len(),
            "SEND AT",
            "TO",
            "SEEN"
        )?;
        for digest in &reply.digests {
            writeln!(
                out,
                "{:<19} {:<32} {:<19} {}",
                digest.send_at.format("%Y-%m-%d %H:%M:%S"),
                digest.address,
                digest.seen_at.format("%Y-%m-%d %H:%M:%S"),
                digest.change
            )?;
        }
    }
    for id in &reply.skipped {
        eprintln!("no briefing {id} that can be changed that way");
    }
    Ok(u8::from(!reply.skipped.is_empty()))
}

/// `tidings outbox send`: one pass of the delivery worker.
pub(crate) fn outbox_send(location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    if crate::service::status::query(&config.state_dir).is_ok() {
        bail!(
            "the daemon is running and sends the outbox itself; use `tidings outbox retry` to make briefings due now"
        );
    }
    let store = open_store(&config)?;
    // lettre's SMTP pool spawns tasks when made and dropped: make it (and
    // drop it) inside the runtime's context.
    let runtime = runtime()?;
    let _context = runtime.enter();
    let mailer = crate::mail::Mailer::new(&config.mail, &config.state_dir)?;
    let templates = crate::core::brief::Templates::with_overrides(&config.mail.templates)?;
    let mut deliverer = crate::service::delivery::Deliverer::new(
        store.clone(),
        std::sync::Arc::new(mailer),
        config.mail.clone(),
        std::sync::Arc::new(templates),
        // The same links as the daemon's briefings: change pages,
        // preferences and one-click unsubscribe when [web] is on.
        crate::service::delivery::Links::from_config(&config)?,
    );
    let round = runtime.block_on(async {
        deliverer
            .deliver_due(&tokio_util::sync::CancellationToken::new())
            .await
    })?;
    store.flush()?;
    println!(
        "sent {}, retrying {}, failed {}, cancelled {}, digests {} (mail via {})",
        round.sent,
        round.retried,
        round.failed,
        round.cancelled,
        round.digests,
        deliverer.transport()
    );
    if let Some(reason) = round.paused {
        eprintln!("stopped: {reason}");
        return Ok(1);
    }
    Ok(0)
}

// ---------------------------------------------------------------------------
// Subscribers and test briefings
