//! `tidings store migrate` and `tidings store copy --from-sled DIR`.

use std::io::Write;

use anyhow::{Context, bail};

use crate::cli::args::{Location, StoreCommand};
use crate::cli::common::load_config;
use crate::config::{Config, PostgresSettings, StoreBackend};
use crate::store::Store;

pub(crate) fn store_command(command: StoreCommand) -> anyhow::Result<u8> {
    match command {
        StoreCommand::Migrate { location } => migrate(&location),
        StoreCommand::Copy {
            from_sled,
            location,
        } => {
            let config = load_config(&location, true)?;
            let settings = postgres_settings(&config, "store copy")?;
            let source = Store::open(&from_sled).with_context(|| {
                format!(
                    "cannot open the sled store in {} (stop the daemon that uses it first)",
                    from_sled.display()
                )
            })?;
            let target = Store::open_postgres(settings, true)?;
            let summary = target.copy_from(&source)?;
            let mut out = std::io::stdout().lock();
            for (tree, count) in &summary.trees {
                writeln!(out, "{tree:<12} {count:>9}")?;
            }
            writeln!(
                out,
                "copied {} records from {} into {}; counts match",
                summary.total(),
                from_sled.display(),
                target.path().display()
            )?;
            out.flush()?;
            Ok(0)
        }
    }
}

fn postgres_settings<'a>(
    config: &'a Config,
    command: &str,
) -> anyhow::Result<&'a PostgresSettings> {
    match &config.store {
        StoreBackend::Postgres(settings) => Ok(settings),
        StoreBackend::Sled => bail!(
            "`tidings {command}` works on a PostgreSQL store, and {} has no [store] backend = \"postgres\" (see docs/postgres.md)",
            config.source.display()
        ),
    }
}

fn migrate(location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, true)?;
    let settings = postgres_settings(&config, "store migrate")?;
    let (before, after) = Store::migrate_postgres(settings)?;
    if before == after {
        println!("schema is current (version {after})");
    } else {
        println!("schema migrated from version {before} to {after}");
    }
    Ok(0)
}
