//! `tidings show WATCH@N`: one stored version and the change that produced it.

use std::io::Write;

use anyhow::Context;

use crate::cli::args::Location;
use crate::cli::common::{load_config, open_store_or_daemon, read_text};

pub(crate) fn show_command(version: &str, location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    let access = open_store_or_daemon(&config)?;
    let (watch, number) = match version.rsplit_once('@') {
        Some((watch, "latest")) => (watch, None),
        Some((watch, n)) => (
            watch,
            Some(
                n.parse::<u64>()
                    .with_context(|| format!("`{version}`: expected WATCH@N or WATCH@latest"))?,
            ),
        ),
        None => (version, None),
    };
    let (_, blocks) = read_text(&access, watch, number)?;
    let mut out = std::io::stdout().lock();
    write!(out, "{}", crate::core::model::render_blocks(&blocks))?;
    out.flush()?;
    Ok(0)
}
