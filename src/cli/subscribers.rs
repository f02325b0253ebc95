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
    let (command, location) = match command {
        S::Add {
            address,
            name,
            follow,
            kinds,
            cadence,
            location,
        } => (
            C::Add {
                address,
                name,
                follow,
                kinds,
                cadence,
            },
            location,
        ),
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
