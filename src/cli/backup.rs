//! `tidings backup FILE`: a consistent backup of the store, made by the
//! running daemon (which holds the store) or from the store itself.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::args::Location;
use crate::cli::common::{load_config, open_store};
use crate::service::status::{self, Request, StatusError};

/// How long the daemon may take to read the store and send it.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(600);

pub(crate) fn backup_command(file: &Path, location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    if let crate::config::StoreBackend::Postgres(settings) = &config.store {
        bail!(
            "the store is the PostgreSQL database {}: use pg_dump and pg_restore (see docs/postgres.md)",
            crate::store::redact_url(&settings.url)
        );
    }
    // Written beside the target and renamed, so a failed backup never
    // replaces a good one.
    let partial = file.with_extension("partial");
    let written = match status::ask_bytes(&config.state_dir, &Request::Backup, DAEMON_TIMEOUT) {
        Ok(bytes) => {
            if bytes.is_empty() {
                bail!(
                    "the daemon could not make a backup; its log says why (journalctl -u tidings)"
                );
            }
            std::fs::write(&partial, &bytes)
                .with_context(|| format!("cannot write {}", partial.display()))?;
            format!("{} bytes from the running daemon", bytes.len())
        }
        Err(StatusError::NotRunning { .. }) => {
            let store = open_store(&config)?;
            let out = std::fs::File::create(&partial)
                .with_context(|| format!("cannot create {}", partial.display()))?;
            let mut out = std::io::BufWriter::new(out);
            let summary = store.backup_to(&mut out, &partial)?;
            out.flush()?;
            format!("{} trees, {} records", summary.trees, summary.entries)
        }
        Err(other) => return Err(other.into()),
    };
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", partial.display()))?;
    std::fs::rename(&partial, file)
        .with_context(|| format!("cannot move the backup to {}", file.display()))?;
    println!(
        "backed up the store in {} to {} ({written})",
        config.state_dir.display(),
        file.display()
    );
    Ok(0)
}
