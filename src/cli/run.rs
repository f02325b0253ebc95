//! `tidings run`: the daemon.

use crate::cli::EXIT_BAD_CONFIG;
use crate::cli::args::Location;
use crate::cli::common::{config_path, runtime};

pub(crate) fn run_command(location: &Location) -> anyhow::Result<u8> {
    let Some(config) = config_path(location) else {
        tracing::error!("no config file found; pass --config PATH");
        return Ok(EXIT_BAD_CONFIG);
    };
    let options = crate::service::daemon::DaemonOptions {
        config,
        state: location.state.clone(),
    };
    match runtime()?.block_on(crate::service::daemon::run(options)) {
        Ok(code) => Ok(code),
        Err(error) => {
            // The service's contract: 1 for anything but a bad config.
            tracing::error!("{error:#}");
            Ok(1)
        }
    }
}
