//! `tidings history WATCH`: the stored versions of a watch.

use std::io::Write;

use anyhow::bail;

use crate::cli::args::Location;
use crate::cli::common::{DAEMON_READ_WAIT, StoreAccess, load_config, open_store_or_daemon};
use crate::service::status::{self, Frame, Request};
use crate::store::VersionInfo;

pub(crate) fn history_command(watch: &str, location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    let mut out = std::io::stdout().lock();
    let mut rows = 0usize;
    // Rows are printed as they come, so a long history read through the
    // daemon streams rather than waiting for the whole answer.
    let mut print = |version: &VersionInfo| -> std::io::Result<()> {
        if rows == 0 {
            writeln!(
                out,
                "{:>7}  {:<20}  {:>6}  {:>8}  {:>7}",
                "VERSION", "SEEN (UTC)", "BLOCKS", "BYTES", "CHANGE"
            )?;
        }
        rows += 1;
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
        )
    };
    let mut failure = None;
    match open_store_or_daemon(&config)? {
        StoreAccess::Local(store) => {
            for version in store.history(watch)? {
                print(&version)?;
            }
        }
        StoreAccess::Daemon(state_dir) => {
            let request = Request::History {
                watch: watch.to_owned(),
            };
            status::stream(&state_dir, &request, DAEMON_READ_WAIT, |frame| {
                match frame {
                    Frame::Version(version) => print(&version)?,
                    Frame::Error(message) => failure = Some(message),
                    _ => {}
                }
                Ok(())
            })?;
        }
    }
    if let Some(message) = failure {
        bail!("{message}");
    }
    if rows == 0 {
        bail!(
            "watch `{watch}` has no stored versions in {}",
            config.state_dir.display()
        );
    }
    std::io::stdout().flush()?;
    Ok(0)
}
