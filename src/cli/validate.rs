//! `tidings validate`: check the config file and say what is wrong, where.

use std::io::Write;

use anyhow::bail;
use chrono::Utc;

use crate::cli::EXIT_BAD_CONFIG;
use crate::cli::args::Location;
use crate::cli::common::config_path;
use crate::config::{self};

pub(crate) fn validate_command(location: &Location) -> anyhow::Result<u8> {
    let Some(path) = config_path(location) else {
        bail!("no config file found; pass --config PATH");
    };
    let config = match config::load(&path) {
        Ok(config) => config,
        Err(errors) => {
            for error in &errors.0 {
                eprintln!("error: {error}");
            }
            eprintln!(
                "{}: not valid ({} problem(s))",
                path.display(),
                errors.0.len()
            );
            return Ok(EXIT_BAD_CONFIG);
        }
    };
    // A PostgreSQL store is reached now, so that a wrong URL, a missing
    // password file, a server that does not answer or a schema that needs
    // `store migrate` is found before the daemon starts.
    let store_line = match &config.store {
        config::StoreBackend::Sled => None,
        config::StoreBackend::Postgres(settings) => {
            match crate::store::Store::open_configured(&config, false) {
                Ok(_) => Some(format!(
                    "store: PostgreSQL at {}, schema current",
                    crate::store::redact_url(&settings.url)
                )),
                Err(error) => {
                    eprintln!("error: {}: [store]: {error}", path.display());
                    eprintln!("{}: not valid (1 problem(s))", path.display());
                    return Ok(EXIT_BAD_CONFIG);
                }
            }
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: valid, {} watch(es)",
        path.display(),
        config.watches.len()
    )?;
    if let Some(line) = store_line {
        writeln!(out, "{line}")?;
    }
    for warning in config.warnings() {
        writeln!(out, "warning: {warning}")?;
    }
    let now = Utc::now();
    for watch in &config.watches {
        writeln!(out, "\n{}  {}", watch.name, watch.url)?;
        if let Some(title) = &watch.title {
            writeln!(out, "  title: {title}")?;
        }
        if !watch.tags.is_empty() {
            writeln!(out, "  tags: {}", watch.tags.join(", "))?;
        }
        let upcoming: Vec<String> = watch
            .schedule
            .upcoming(now, 3)
            .iter()
            .map(|t| t.format("%a %Y-%m-%d %H:%M %Z").to_string())
            .collect();
        writeln!(
            out,
            "  schedule: {} ({}); next: {}",
            watch.schedule.expression,
            watch.schedule.timezone,
            upcoming.join(", ")
        )?;
    }
    out.flush()?;
    Ok(0)
}

// ---------------------------------------------------------------------------
// replay
