//! `tidings restore FILE`: the store from a backup, never over a live one.

use std::path::Path;

use anyhow::{Context, bail};

use crate::cli::args::Location;
use crate::cli::common::load_config;
use crate::store::Store;

pub(crate) fn restore_command(file: &Path, location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    if let crate::config::StoreBackend::Postgres(settings) = &config.store {
        bail!(
            "the store is the PostgreSQL database {}: use pg_dump and pg_restore (see docs/postgres.md)",
            crate::store::redact_url(&settings.url)
        );
    }
    if let Ok(report) = crate::service::status::query(&config.state_dir) {
        bail!(
            "the daemon (pid {}) is running on {}: stop it first (systemctl stop tidings), restore, then start it again",
            report
                .pid
                .map_or_else(|| "?".to_owned(), |pid| pid.to_string()),
            config.state_dir.display()
        );
    }
    std::fs::create_dir_all(&config.state_dir)
        .with_context(|| format!("cannot create {}", config.state_dir.display()))?;
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let summary = Store::restore_from(&config.state_dir, std::io::BufReader::new(input), file)?;
    println!(
        "restored {} trees, {} records from {} into {}",
        summary.trees,
        summary.entries,
        file.display(),
        config.state_dir.display()
    );
    if let Some(aside) = &summary.moved_aside {
        println!("the store it replaced is kept in {}", aside.display());
    }
    Ok(0)
}
