//! Resolving what every command needs: the config file, the store, extraction rules, a page from a file or the network.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::args::{Location, RuleArgs};
use crate::config::{self, Config};
use crate::core::extract::{self, Rules};
use crate::core::model::{Block, Extracted};
use crate::fetch::{FetchOutcome, Validators};
use crate::service::pipeline::Pipeline;
use crate::service::status::{Frame, Request};
use crate::store::Store;

/// Finds the config file: `--config`/`$TIDINGS_CONFIG`, then
/// `STATE/tidings.toml`, then `config/tidings.toml`, then
/// `/etc/tidings/tidings.toml`.
pub(crate) fn config_path(location: &Location) -> Option<PathBuf> {
    if let Some(path) = &location.config {
        return Some(path.clone());
    }
    let mut candidates = Vec::new();
    if let Some(state) = &location.state {
        candidates.push(state.join("tidings.toml"));
    }
    candidates.push(PathBuf::from("config/tidings.toml"));
    candidates.push(PathBuf::from("/etc/tidings/tidings.toml"));
    candidates.into_iter().find(|path| path.is_file())
}

/// Loads the config if there is one; ad-hoc commands work without.
pub(crate) fn load_config(location: &Location, required: bool) -> anyhow::Result<Config> {
    let mut config = match config_path(location) {
        Some(path) => config::load(&path)?,
        None if required => bail!(
            "no config file found; pass --config PATH (or see config/tidings.toml for an example)"
        ),
        None => Config::empty(),
    };
    if let Some(state) = &location.state {
        config.state_dir.clone_from(state);
    }
    Ok(config)
}

fn ensure_state_dir(config: &Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.state_dir).with_context(|| {
        format!(
            "cannot create state directory {}",
            config.state_dir.display()
        )
    })
}

pub(crate) fn open_store(config: &Config) -> anyhow::Result<Store> {
    if let config::StoreBackend::Postgres(_) = &config.store {
        // Shared by every node: any command opens it directly, daemons or not.
        return Ok(Store::open_configured(config, false)?);
    }
    ensure_state_dir(config)?;
    match Store::open(&config.state_dir) {
        Ok(store) => Ok(store),
        Err(error) => {
            // sled lets one process hold a store. When that is the daemon,
            // say so plainly instead of sled's "could not acquire lock".
            if let Ok(report) = crate::service::status::query(&config.state_dir) {
                bail!(
                    "the running daemon (pid {}) holds the store in {}; `status`, `history`, `show`, `diff WATCH@N`, `check`, `outbox` and `subscribers` ask it directly; this command needs the store to itself: stop the daemon (systemctl stop tidings), run the command, start it again",
                    report
                        .pid
                        .map_or_else(|| "?".to_owned(), |pid| pid.to_string()),
                    config.state_dir.display()
                );
            }
            Err(error.into())
        }
    }
}

/// Where a command reads the store: itself, or through the running daemon
/// that holds it (sled allows one process per store).
pub(crate) enum StoreAccess {
    /// The store, opened by this process.
    Local(Store),
    /// The daemon answering on this state directory's socket.
    Daemon(PathBuf),
}

/// Opens the store, or finds the running daemon that holds it.
pub(crate) fn open_store_or_daemon(config: &Config) -> anyhow::Result<StoreAccess> {
    if let config::StoreBackend::Postgres(_) = &config.store {
        return Ok(StoreAccess::Local(Store::open_configured(config, false)?));
    }
    ensure_state_dir(config)?;
    match Store::open(&config.state_dir) {
        Ok(store) => Ok(StoreAccess::Local(store)),
        Err(error) => {
            if crate::service::status::query(&config.state_dir).is_ok() {
                Ok(StoreAccess::Daemon(config.state_dir.clone()))
            } else {
                Err(error.into())
            }
        }
    }
}

/// How long a read through the daemon may go without an answer.
pub(crate) const DAEMON_READ_WAIT: Duration = Duration::from_secs(60);

/// A stored text: the version asked for, or the latest.
pub(crate) fn read_text(
    access: &StoreAccess,
    watch: &str,
    version: Option<u64>,
) -> anyhow::Result<(u64, Vec<Block>)> {
    match (text_of(access, watch, version)?, version) {
        (Some(text), _) => Ok(text),
        (None, Some(n)) => {
            bail!("watch `{watch}` has no version {n} (see `tidings history {watch}`)")
        }
        (None, None) => bail!("watch `{watch}` has no stored versions yet"),
    }
}

/// The latest stored text of a watch, if it has one.
pub(crate) fn latest_text(
    access: &StoreAccess,
    watch: &str,
) -> anyhow::Result<Option<(u64, Vec<Block>)>> {
    text_of(access, watch, None)
}

fn text_of(
    access: &StoreAccess,
    watch: &str,
    version: Option<u64>,
) -> anyhow::Result<Option<(u64, Vec<Block>)>> {
    Ok(match access {
        StoreAccess::Local(store) => crate::service::daemon::stored_text(store, watch, version)?,
        StoreAccess::Daemon(state_dir) => {
            let request = Request::Text {
                watch: watch.to_owned(),
                version,
            };
            let mut answer = None;
            crate::service::status::stream(state_dir, &request, DAEMON_READ_WAIT, |frame| {
                answer = Some(frame);
                Ok(())
            })?;
            match answer {
                Some(Frame::Text { number, blocks }) => Some((number, blocks)),
                Some(Frame::Error(message)) => bail!("{message}"),
                _ => None,
            }
        }
    })
}

pub(crate) fn rules_from(args: &RuleArgs) -> anyhow::Result<Rules> {
    Ok(Rules::new(
        &args.select,
        &args.exclude,
        &args.ignore,
        !args.whole_page,
    )?)
}

/// The rules for a URL: the command line's if given, else those of the
/// configured watch with this URL, else the defaults.
pub(crate) fn rules_for(
    config: &Config,
    url: Option<&url::Url>,
    args: &RuleArgs,
) -> anyhow::Result<Rules> {
    if args.is_set() {
        return Ok(rules_from(args)?.with_budget(config.limits.budget()));
    }
    Ok(url
        .and_then(|url| config.watches.iter().find(|w| &w.url == url))
        .map_or_else(Rules::default, |w| w.rules.clone())
        .with_budget(config.limits.budget()))
}

pub(crate) fn pipeline_for(config: &Config, store: Store) -> anyhow::Result<Pipeline> {
    Ok(Pipeline::new(
        store,
        config.limits.clone(),
        config.contact.as_deref(),
    )?)
}

/// A store-less pipeline, for fetching in ad-hoc commands.
pub(crate) fn fetch_only(config: &Config) -> anyhow::Result<Pipeline> {
    pipeline_for(config, Store::temporary()?)
}

// ---------------------------------------------------------------------------
// Sides of a diff

/// Reads an HTML file, decoding its charset as a fetched page would be.
pub(crate) fn read_html_file(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(crate::fetch::decode_html(&bytes, None))
}

pub(crate) async fn fetch_html(
    pipeline: &Pipeline,
    url: &url::Url,
) -> anyhow::Result<(String, Validators)> {
    match pipeline
        .fetcher()
        .fetch(url, &Validators::default())
        .await?
    {
        FetchOutcome::Page(page) => Ok((page.html, page.validators)),
        FetchOutcome::NotModified => {
            bail!("{url}: the server answered 304 to an unconditional request")
        }
    }
}

pub(crate) fn extract_or_explain(
    html: &str,
    rules: &Rules,
    what: &str,
) -> anyhow::Result<Extracted> {
    extract::extract(html, rules).with_context(|| format!("cannot extract text from {what}"))
}

/// A watch name made from a URL's host and path: `example.org-about-stp`.
pub(crate) fn slug(url: &url::Url) -> String {
    let raw = format!("{}{}", url.host_str().unwrap_or("page"), url.path());
    let mut name = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    name.trim_matches('-').to_owned()
}

pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max_chars).collect();
    cut.push('…');
    cut
}

// ---------------------------------------------------------------------------
// import

/// Runs a request in the running daemon, which holds the store (sled lets
/// one process open it), or here on the store when no daemon answers.
pub(crate) fn through_daemon<T: serde::de::DeserializeOwned>(
    config: &Config,
    request: &crate::service::status::Request,
    here: impl FnOnce(&Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if let config::StoreBackend::Postgres(_) = &config.store {
        // Every node and command shares the database: no need to ask one.
        return here(&open_store(config)?);
    }
    match crate::service::status::ask(&config.state_dir, request) {
        Ok(body) => serde_json::from_str(&body).context("the daemon sent an unreadable answer"),
        Err(crate::service::status::StatusError::NotRunning { .. }) => {
            let store = open_store(config)?;
            let answer = here(&store)?;
            store.flush()?;
            Ok(answer)
        }
        Err(other) => Err(other.into()),
    }
}

/// The state directory from `--state`, or read loosely from the config
/// file's `state_dir` line even when the rest of the file is invalid.
pub(crate) fn lenient_state_dir(location: &Location) -> Option<PathBuf> {
    if let Some(state) = &location.state {
        return Some(state.clone());
    }
    let path = config_path(location)?;
    let text = std::fs::read_to_string(&path).ok()?;
    let value = store_location(&text)?;
    let dir = value.get("state_dir")?.as_str()?;
    Some(path.parent().unwrap_or_else(|| Path::new(".")).join(dir))
}

/// The state directory, read as leniently as [`lenient_state_dir`], when
/// the config keeps the embedded store; `None` for a shared store, where
/// `status` must also list the other nodes from the database.
pub(crate) fn lenient_embedded_state_dir(location: &Location) -> Option<PathBuf> {
    let path = config_path(location);
    let table = path
        .as_deref()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| store_location(&text));
    let backend = table
        .as_ref()
        .and_then(|table| table.get("store"))
        .and_then(|store| store.get("backend"))
        .and_then(|backend| backend.as_str());
    if backend.is_some_and(|backend| backend != "sled") {
        return None;
    }
    if let Some(state) = &location.state {
        return Some(state.clone());
    }
    let dir = table?.get("state_dir")?.as_str()?.to_owned();
    let path = path?;
    Some(path.parent().unwrap_or_else(|| Path::new(".")).join(dir))
}

/// The parts of a config's text that say where its store is: the top-level
/// keys (they come before the first table header) and the `[store]` table.
/// Parsing only these keeps `status` quick on a config of 100,000 watches
/// (parsing the whole file into a table took about 0.7 CPU s and 200 MB).
/// A text this cut could misread (multi-line strings, whose lines might
/// look like headers), or whose cut does not parse, is parsed whole.
fn store_location(text: &str) -> Option<toml::Table> {
    if text.contains("\"\"\"") || text.contains("'''") {
        return text.parse().ok();
    }
    let mut kept = String::new();
    let mut keep = true;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            // A header, perhaps with spaces and a comment: `[ store ] # …`.
            let header: String = trimmed
                .split('#')
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            keep = header == "[store]";
        }
        if keep {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept.parse().ok().or_else(|| text.parse().ok())
}

/// One side of `tidings diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Side {
    Url(url::Url),
    File(PathBuf),
    Stored { watch: String, version: Option<u64> },
}

pub(crate) fn parse_side(text: &str) -> anyhow::Result<Side> {
    if text.starts_with("http://") || text.starts_with("https://") {
        return Ok(Side::Url(
            url::Url::parse(text).with_context(|| format!("`{text}` is not a valid URL"))?,
        ));
    }
    let path = Path::new(text);
    if path.exists() {
        return Ok(Side::File(path.to_path_buf()));
    }
    if let Some((watch, version)) = text.rsplit_once('@') {
        let version = match version {
            "latest" | "" => None,
            n => Some(n.parse::<u64>().with_context(|| {
                format!("`{text}`: the version after @ must be a number or `latest`")
            })?),
        };
        return Ok(Side::Stored {
            watch: watch.to_owned(),
            version,
        });
    }
    bail!("`{text}` is not a URL, an existing file, or a stored version written WATCH@N")
}

pub(crate) fn slug_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Page work is CPU-bound and runs on the blocking pool; a few more
        // threads than cores keeps sled and the parser busy without each
        // extra thread adding its own allocator arena and regex caches.
        .max_blocking_threads(cores * 2)
        .build()
        .context("cannot start the async runtime")
}

#[cfg(test)]
mod tests {
    use super::store_location;

    #[test]
    fn the_store_location_is_read_from_the_top_and_the_store_table_only() {
        let text = "contact = \"a@example.org\"\nstate_dir = \"here\"\n\n[limits]\nper_host = 8\n\n\
                    [ store ] # shared\nbackend = \"postgres\"\n\n[[watch]]\nname = \"state_dir\"\nurl = \"http://example.org/\"\n";
        let table = store_location(text).expect("parsed");
        assert_eq!(table["state_dir"].as_str(), Some("here"));
        assert_eq!(table["store"]["backend"].as_str(), Some("postgres"));
        assert!(table.get("watch").is_none() && table.get("limits").is_none());
    }

    #[test]
    fn a_text_with_multi_line_strings_is_parsed_whole() {
        let text = "state_dir = \"\"\"\n[store]\n\"\"\"\n[store]\nbackend = \"sled\"\n";
        let table = store_location(text).expect("parsed");
        assert_eq!(table["state_dir"].as_str(), Some("[store]\n"));
        assert_eq!(table["store"]["backend"].as_str(), Some("sled"));
    }
}
