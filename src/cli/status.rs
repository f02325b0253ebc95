//! `tidings status`: what the daemon (or, without one, the store) says about every watch.

use std::io::Write;

use anyhow::Context;

use crate::cli::args::Location;
use crate::cli::common::{lenient_embedded_state_dir, lenient_state_dir, load_config};
use crate::store::Store;

pub(crate) fn status_command(json: bool, location: &Location) -> anyhow::Result<u8> {
    // A running daemon on the embedded store answers from memory and needs
    // only its state directory: reading and validating a config of 100,000
    // watches first would cost about a second of the answer.
    if let Some(state_dir) = lenient_embedded_state_dir(location) {
        if let Ok(report) = crate::service::status::query(&state_dir) {
            return print_status(&report, json);
        }
    }
    // A config that no longer validates (say, an edit the daemon rejected on
    // SIGHUP) must not stop the admin from asking the running daemon.
    let config = match load_config(location, true) {
        Ok(config) => config,
        Err(error) => match lenient_state_dir(location) {
            Some(state_dir) => match crate::service::status::query(&state_dir) {
                Ok(report) => {
                    eprintln!(
                        "warning: the config file does not validate; showing the running daemon's status"
                    );
                    return print_status(&report, json);
                }
                Err(_) => return Err(error),
            },
            None => return Err(error),
        },
    };
    let mut report = match crate::service::status::query(&config.state_dir) {
        Ok(report) => report,
        Err(crate::service::status::StatusError::NotRunning { .. }) => {
            let store = Store::open_configured(&config, false).with_context(|| {
                format!(
                    "no daemon answers on {} and the store cannot be opened",
                    crate::service::status::socket_path(&config.state_dir).display()
                )
            })?;
            crate::service::daemon::offline_status(&config, &store, &config.source)
        }
        Err(other) => return Err(other.into()),
    };
    if let crate::config::StoreBackend::Postgres(_) = &config.store {
        // Every node, from the database they share.
        let store = Store::open_configured(&config, false)?;
        report.nodes = store.nodes()?;
    }
    print_status(&report, json)
}

pub(crate) fn print_status(
    report: &crate::service::status::StatusReport,
    json: bool,
) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(report)?)?;
    } else {
        write!(out, "{}", crate::service::status::render(report))?;
    }
    out.flush()?;
    Ok(0)
}
