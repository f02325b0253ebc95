//! `tidings check-now WATCH…`: the running daemon checks these watches now.

use std::io::Write;

use anyhow::Context;

use crate::cli::EXIT_ERROR;
use crate::cli::args::Location;
use crate::cli::common::load_config;
use crate::service::admin::Output;
use crate::service::status::{self, Request, StatusError};

pub(crate) fn check_now_command(watches: Vec<String>, location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    match status::ask(&config.state_dir, &Request::CheckNow { watches }) {
        Ok(body) => {
            let output: Output =
                serde_json::from_str(&body).context("the daemon sent an unreadable answer")?;
            print(&output)
        }
        Err(StatusError::NotRunning { .. }) => {
            eprintln!(
                "error: no daemon is running for {}; `tidings check WATCH…` checks watches without one",
                config.state_dir.display()
            );
            Ok(EXIT_ERROR)
        }
        Err(other) => Err(other.into()),
    }
}

/// Prints a command's output as the daemon (or the store) gave it.
pub(crate) fn print(output: &Output) -> anyhow::Result<u8> {
    std::io::stdout()
        .lock()
        .write_all(output.stdout.as_bytes())?;
    std::io::stderr()
        .lock()
        .write_all(output.stderr.as_bytes())?;
    Ok(output.code)
}
