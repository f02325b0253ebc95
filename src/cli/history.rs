//! `tidings history WATCH`: the stored versions of a watch.

use std::io::Write;

use anyhow::bail;

use crate::cli::args::Location;
use crate::cli::common::{load_config, open_store};

pub(crate) fn history_command(watch: &str, location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    let store = open_store(&config)?;
    let history = store.history(watch)?;
    if history.is_empty() {
        bail!(
            "watch `{watch}` has no stored versions in {}",
            config.state_dir.display()
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>7}  {:<20}  {:>6}  {:>8}  {:>7}",
        "VERSION", "SEEN (UTC)", "BLOCKS", "BYTES", "CHANGE"
    )?;
    for version in history {
        let change = version
            .changed_words
            .map_or_else(|| "-".to_owned(), |words| format!("{words}w"));
        writeln!(
            out,
            "{:>7}  {:<20}  {:>6}  {:>8}  {:>7}",
            version.number,
            version.seen_at.format("%Y-%m-%d %H:%M:%S"),
            version.blocks,
            version.text_bytes,
            change
        )?;
    }
    out.flush()?;
    Ok(0)
}
