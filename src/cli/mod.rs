//! The commands behind the CLI. This is the top of the program: the only
//! place that uses `anyhow`, prints to stdout, and turns outcomes into exit
//! statuses.

pub mod args;
pub mod demo;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Parser;

use crate::cli::args::{Cli, Command, DiffFormat, Location, RuleArgs};
use crate::config::{self, Config, ConfigErrors, Watch};
use crate::core::classify;
use crate::core::diff::{self, DiffOptions, TextDiff};
use crate::core::extract::{self, Rules};
use crate::core::facts;
use crate::core::model::{Block, Extracted};
use crate::core::render;
use crate::fetch::{FetchOutcome, Validators};
use crate::service::pipeline::{self, CheckReport, FetchedPage, Outcome, Pipeline};
use crate::store::Store;

/// Exit status for a bad configuration (EX_CONFIG from sysexits.h), so
/// systemd can be told not to restart into the same mistake.
pub const EXIT_BAD_CONFIG: u8 = 78;
/// Exit status for an error, following diff(1).
pub use crate::service::admin::EXIT_ERROR;

/// Parses the command line, runs the command and returns its exit status.
pub fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    // The service logs its lifecycle by default; one-shot commands only warn.
    let service = matches!(cli.command, Command::Run { .. });
    init_tracing(cli.verbose + u8::from(service));
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            if is_broken_pipe(&error) {
                // `tidings history w | head` is not an error.
                return ExitCode::SUCCESS;
            }
            if let Some(errors) = error.downcast_ref::<ConfigErrors>() {
                for line in &errors.0 {
                    eprintln!("error: {line}");
                }
                eprintln!(
                    "error: the configuration is not valid ({} problem(s))",
                    errors.0.len()
                );
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// glibc gives every thread that allocates its own arena and keeps freed
/// memory in each; with a blocking pool of worker threads that roughly
/// doubled resident memory for no speed. Two arenas are enough for two
/// cores' worth of page work.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator tuning; it is called once,
        // first thing in main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "tidings=warn",
        1 => "tidings=info",
        _ => "tidings=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal && std::env::var_os("NO_COLOR").is_none());
    // Under systemd, stderr goes to the journal, which stamps every line
    // itself: a second timestamp and colour codes would only be noise.
    let _ = if terminal {
        builder.try_init()
    } else {
        builder.without_time().with_target(false).try_init()
    };
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
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

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Demo { state } => runtime()?.block_on(crate::cli::demo::run(state.as_deref())),
        Command::Diff {
            old,
            new,
            format,
            no_store,
            location,
            rules,
        } => runtime()?.block_on(diff_command(
            &old,
            new.as_deref(),
            format,
            no_store,
            &location,
            &rules,
        )),
        Command::Extract {
            source,
            json,
            location,
            rules,
        } => runtime()?.block_on(extract_command(&source, json, &location, &rules)),
        Command::Check {
            watches,
            json,
            location,
        } => runtime()?.block_on(check_command(&watches, json, &location)),
        Command::History { watch, location } => history_command(&watch, &location),
        Command::Show { version, location } => show_command(&version, &location),
        Command::Validate { location } => validate_command(&location),
        Command::Replay {
            dir,
            state,
            json,
            rules,
        } => replay_command(&dir, state.as_deref(), json, &rules),
        Command::Import { urls, out, contact } => import_command(&urls, &out, &contact),
        Command::EvalExtract { dir, json } => eval_extract_command(&dir, json),
        Command::EvalHistories { dir, json } => eval_histories_command(&dir, json),
        Command::Run { location } => run_command(&location),
        Command::Status { json, location } => status_command(json, &location),
        Command::Subscribers { command } => subscribers_command(command),
        Command::SendTest { address, location } => send_test_command(&address, &location),
        Command::Outbox { command } => outbox_command(command),
    }
}

// ---------------------------------------------------------------------------
// Config and store resolution

/// Finds the config file: `--config`/`$TIDINGS_CONFIG`, then
/// `STATE/tidings.toml`, then `config/tidings.toml`, then
/// `/etc/tidings/tidings.toml`.
fn config_path(location: &Location) -> Option<PathBuf> {
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
fn load_config(location: &Location, required: bool) -> anyhow::Result<Config> {
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

fn open_store(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.state_dir).with_context(|| {
        format!(
            "cannot create state directory {}",
            config.state_dir.display()
        )
    })?;
    match Store::open(&config.state_dir) {
        Ok(store) => Ok(store),
        Err(error) => {
            // sled lets one process hold a store. When that is the daemon,
            // say so plainly instead of sled's "could not acquire lock".
            if let Ok(report) = crate::service::status::query(&config.state_dir) {
                bail!(
                    "the running daemon (pid {}) holds the store in {}; `tidings status`, `outbox` and `subscribers` ask it directly; other commands need the store to themselves: stop the daemon (systemctl stop tidings), run the command, start it again",
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

fn rules_from(args: &RuleArgs) -> anyhow::Result<Rules> {
    Ok(Rules::new(
        &args.select,
        &args.exclude,
        &args.ignore,
        !args.whole_page,
    )?)
}

/// The rules for a URL: the command line's if given, else those of the
/// configured watch with this URL, else the defaults.
fn rules_for(config: &Config, url: Option<&url::Url>, args: &RuleArgs) -> anyhow::Result<Rules> {
    if args.is_set() {
        return rules_from(args);
    }
    Ok(url
        .and_then(|url| config.watches.iter().find(|w| &w.url == url))
        .map_or_else(Rules::default, |w| w.rules.clone()))
}

fn pipeline_for(config: &Config, store: Store) -> anyhow::Result<Pipeline> {
    Ok(Pipeline::new(
        store,
        config.limits.clone(),
        config.contact.as_deref(),
    )?)
}

/// A store-less pipeline, for fetching in ad-hoc commands.
fn fetch_only(config: &Config) -> anyhow::Result<Pipeline> {
    pipeline_for(config, Store::temporary()?)
}

// ---------------------------------------------------------------------------
// Sides of a diff

/// One side of `tidings diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Side {
    Url(url::Url),
    File(PathBuf),
    Stored { watch: String, version: Option<u64> },
}

fn parse_side(text: &str) -> anyhow::Result<Side> {
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

/// Reads an HTML file, decoding its charset as a fetched page would be.
fn read_html_file(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(crate::fetch::decode_html(&bytes, None))
}

async fn fetch_html(pipeline: &Pipeline, url: &url::Url) -> anyhow::Result<(String, Validators)> {
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

fn extract_or_explain(html: &str, rules: &Rules, what: &str) -> anyhow::Result<Extracted> {
    extract::extract(html, rules).with_context(|| format!("cannot extract text from {what}"))
}

fn stored_text(
    store: &Store,
    watch: &str,
    version: Option<u64>,
) -> anyhow::Result<(u64, Vec<Block>)> {
    let info = match version {
        Some(n) => store.version(watch, n)?.with_context(|| {
            format!("watch `{watch}` has no version {n} (see `tidings history {watch}`)")
        })?,
        None => {
            let Some((info, blocks)) = store.latest(watch)? else {
                bail!("watch `{watch}` has no stored versions yet");
            };
            return Ok((info.number, blocks));
        }
    };
    let blocks = store.text(&info)?;
    Ok((info.number, blocks))
}

/// The text of one side, and a label for it.
async fn side_text(
    side: &Side,
    config: &Config,
    store: &mut Option<Store>,
    args: &RuleArgs,
) -> anyhow::Result<(Vec<Block>, String)> {
    match side {
        Side::Url(url) => {
            let pipeline = fetch_only(config)?;
            let (html, _) = fetch_html(&pipeline, url).await?;
            let rules = rules_for(config, Some(url), args)?;
            Ok((
                extract_or_explain(&html, &rules, url.as_str())?.blocks,
                url.to_string(),
            ))
        }
        Side::File(path) => {
            let html = read_html_file(path)?;
            let rules = rules_for(config, None, args)?;
            let label = path.display().to_string();
            Ok((extract_or_explain(&html, &rules, &label)?.blocks, label))
        }
        Side::Stored { watch, version } => {
            if store.is_none() {
                *store = Some(open_store(config)?);
            }
            let store = store.as_ref().context("store is open")?;
            let (number, blocks) = stored_text(store, watch, *version)?;
            Ok((blocks, format!("{watch}@{number}")))
        }
    }
}

fn print_diff(
    diff: &TextDiff,
    old: &[Block],
    new: &[Block],
    labels: (&str, &str),
    format: DiffFormat,
) -> anyhow::Result<()> {
    let mut out = anstream::stdout();
    let assessment = classify::classify(
        diff,
        &facts::page_facts(old, &[]),
        &facts::page_facts(new, &[]),
    );
    match format {
        DiffFormat::Word => {
            let colour =
                anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never;
            if !assessment.changes.is_empty() {
                writeln!(out, "{}", render::assessment_header(&assessment, colour))?;
            }
            write!(out, "{}", render::word(diff, colour))?;
        }
        DiffFormat::Unified => write!(out, "{}", render::unified(old, new, labels.0, labels.1))?,
        DiffFormat::Json => {
            let mut json = serde_json::to_value(render::JsonDiff::new(diff))?;
            json["old"] = labels.0.into();
            json["new"] = labels.1.into();
            json["alert"] = assessment.alerts().into();
            json["kinds"] = serde_json::to_value(assessment.kinds())?;
            json["changes"] = serde_json::to_value(render::json_assessment(&assessment))?;
            writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        }
    }
    out.flush()?;
    Ok(())
}

async fn diff_command(
    old: &str,
    new: Option<&str>,
    format: DiffFormat,
    no_store: bool,
    location: &Location,
    args: &RuleArgs,
) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    let options = DiffOptions {
        timeout: config.limits.diff_timeout,
        ..DiffOptions::default()
    };
    let Some(new) = new else {
        return diff_against_stored(old, format, no_store, &config, args, &options).await;
    };
    let mut store = None;
    let (old_blocks, old_label) = side_text(&parse_side(old)?, &config, &mut store, args).await?;
    let (new_blocks, new_label) = side_text(&parse_side(new)?, &config, &mut store, args).await?;
    let result = diff::diff(&old_blocks, &new_blocks, &options);
    print_diff(
        &result,
        &old_blocks,
        &new_blocks,
        (&old_label, &new_label),
        format,
    )?;
    Ok(u8::from(!result.is_empty()))
}

/// `tidings diff URL|WATCH`: the page now against its latest stored version.
async fn diff_against_stored(
    target: &str,
    format: DiffFormat,
    no_store: bool,
    config: &Config,
    args: &RuleArgs,
    options: &DiffOptions,
) -> anyhow::Result<u8> {
    let watch = match config.watch(target) {
        Some(watch) => watch.clone(),
        None => {
            let url = url::Url::parse(target)
                .with_context(|| format!("`{target}` is neither a configured watch nor a URL"))?;
            match config.watches.iter().find(|w| w.url == url) {
                Some(watch) => watch.clone(),
                None => ad_hoc_watch(&url)?,
            }
        }
    };
    let rules = if args.is_set() {
        rules_from(args)?
    } else {
        watch.rules.clone()
    };
    let store = open_store(config)?;
    let pipeline = pipeline_for(config, store.clone())?;
    let (html, validators) = fetch_html(&pipeline, &watch.url).await?;
    let fetched_at = Utc::now();
    let extracted = extract_or_explain(&html, &rules, watch.url.as_str())?;
    let previous = store.latest(&watch.name)?;
    let exit = match &previous {
        Some((info, old_blocks)) => {
            let result = diff::diff(old_blocks, &extracted.blocks, options);
            let old_label = format!("{}@{}", watch.name, info.number);
            print_diff(
                &result,
                old_blocks,
                &extracted.blocks,
                (&old_label, watch.url.as_str()),
                format,
            )?;
            u8::from(!result.is_empty())
        }
        None => {
            eprintln!(
                "{}: no stored version yet; nothing to compare with",
                watch.name
            );
            if format == DiffFormat::Json {
                // Scripts asking for JSON get JSON, even with nothing to
                // compare: an empty diff against no earlier version.
                let json = serde_json::json!({
                    "old": null,
                    "new": watch.url.as_str(),
                    "changed": false,
                    "changed_words": 0,
                    "added": [],
                    "removed": [],
                    "changed_blocks": [],
                    "alert": false,
                    "kinds": [],
                    "changes": [],
                });
                println!("{}", serde_json::to_string_pretty(&json)?);
            }
            0
        }
    };
    if !no_store {
        let page = FetchedPage {
            html: &html,
            fetched_at,
            validators,
            audience: None,
        };
        let outcome =
            pipeline::apply_page(&store, &watch.name, &rules, &watch.facts, &page, options)?;
        store.flush()?;
        if let Outcome::New { version }
        | Outcome::Changed { version, .. }
        | Outcome::Rebaselined { version } = outcome
        {
            eprintln!("stored as {}@{version}", watch.name);
        }
    }
    Ok(exit)
}

/// A watch for a URL that is not in the config, named after the URL, so
/// that repeated `tidings diff URL` runs share a history.
fn ad_hoc_watch(url: &url::Url) -> anyhow::Result<Watch> {
    Ok(Watch {
        name: slug(url),
        url: url.clone(),
        schedule: config::Schedule::parse(config::DEFAULT_SCHEDULE, config::DEFAULT_TIMEZONE)
            .map_err(anyhow::Error::msg)?,
        tags: Vec::new(),
        rules: Rules::default(),
        facts: Vec::new(),
        robots: true,
    })
}

/// A watch name made from a URL's host and path: `example.org-about-stp`.
fn slug(url: &url::Url) -> String {
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

async fn extract_command(
    source: &str,
    json: bool,
    location: &Location,
    args: &RuleArgs,
) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    let (html, rules, label) = match parse_side(source)? {
        Side::Url(url) => {
            let pipeline = fetch_only(&config)?;
            let (html, _) = fetch_html(&pipeline, &url).await?;
            let rules = rules_for(&config, Some(&url), args)?;
            (html, rules, url.to_string())
        }
        Side::File(path) => (
            read_html_file(&path)?,
            rules_from(args)?,
            path.display().to_string(),
        ),
        Side::Stored { .. } => bail!("`{source}` is not a URL or an existing HTML file"),
    };
    let extracted = extract_or_explain(&html, &rules, &label)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&extracted)?)?;
    } else {
        write!(out, "{}", extracted.render())?;
    }
    out.flush()?;
    Ok(0)
}

// ---------------------------------------------------------------------------
// check

async fn check_command(names: &[String], json: bool, location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, true)?;
    let watches: Vec<Watch> = if names.is_empty() {
        config.watches.clone()
    } else {
        names
            .iter()
            .map(|name| {
                config.watch(name).cloned().with_context(|| {
                    format!("no watch named `{name}` in {}", config.source.display())
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let store = open_store(&config)?;
    let pipeline = Arc::new(pipeline_for(&config, store.clone())?);
    let reports = run_checks(&pipeline, &watches, !json).await;
    store.flush()?;
    if json {
        let summary = CheckSummary::new(&reports);
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
        out.flush()?;
    }
    let failed = reports
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Failed { .. }));
    Ok(u8::from(failed))
}

/// Runs a pass with a progress bar on a terminal, printing a line per watch
/// as it completes when `lines` is set.
pub(crate) async fn run_checks(
    pipeline: &Arc<Pipeline>,
    watches: &[Watch],
    lines: bool,
) -> Vec<CheckReport> {
    // A bar for a handful of watches would flash and vanish; it helps only
    // when a pass takes a while.
    let show_bar = watches.len() > 5 && std::io::stderr().is_terminal();
    let bar = if show_bar {
        indicatif::ProgressBar::new(watches.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    let mut stdout = std::io::stdout();
    let reports = pipeline
        .check_all(watches, |report| {
            bar.inc(1);
            if lines {
                bar.suspend(|| {
                    // A closed stdout must not abort the pass; the store is
                    // already updated.
                    let _ = writeln!(stdout, "{}", report.line());
                });
            }
        })
        .await;
    bar.finish_and_clear();
    reports
}

/// The JSON report of `tidings check --json`.
#[derive(Debug, serde::Serialize)]
struct CheckSummary<'a> {
    new: Vec<&'a str>,
    changed: Vec<&'a str>,
    unchanged: Vec<&'a str>,
    error: Vec<&'a str>,
    watches: &'a [CheckReport],
}

impl<'a> CheckSummary<'a> {
    fn new(reports: &'a [CheckReport]) -> Self {
        let names = |label: &str| {
            reports
                .iter()
                .filter(|r| r.outcome.label() == label)
                .map(|r| r.watch.as_str())
                .collect()
        };
        Self {
            new: names("NEW"),
            changed: names("CHANGED"),
            unchanged: names("UNCHANGED"),
            error: names("ERROR"),
            watches: reports,
        }
    }
}

// ---------------------------------------------------------------------------
// history, show

fn history_command(watch: &str, location: &Location) -> anyhow::Result<u8> {
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

fn show_command(version: &str, location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    let store = open_store(&config)?;
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
    let (_, blocks) = stored_text(&store, watch, number)?;
    let mut out = std::io::stdout().lock();
    write!(out, "{}", crate::core::model::render_blocks(&blocks))?;
    out.flush()?;
    Ok(0)
}

// ---------------------------------------------------------------------------
// validate

fn validate_command(location: &Location) -> anyhow::Result<u8> {
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
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: valid, {} watch(es)",
        path.display(),
        config.watches.len()
    )?;
    if config.contact.is_none() {
        writeln!(
            out,
            "warning: no `contact` is set; site owners will not know whom to ask about tidings' requests"
        )?;
    }
    let now = Utc::now();
    for watch in &config.watches {
        writeln!(out, "\n{}  {}", watch.name, watch.url)?;
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

/// The numbered HTML files of a replay folder, in order.
fn replay_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read replay folder {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "html")
                && path
                    .file_stem()
                    .and_then(|stem| stem.to_str())
                    .is_some_and(|stem| {
                        !stem.is_empty() && stem.chars().all(|c| c.is_ascii_digit())
                    })
        })
        .collect();
    files.sort_by_key(|path| {
        path.file_stem()
            .and_then(|stem| stem.to_str())
            .and_then(|stem| stem.parse::<u64>().ok())
    });
    if files.is_empty() {
        bail!(
            "{} holds no numbered HTML files (00.html, 01.html, …)",
            dir.display()
        );
    }
    Ok(files)
}

fn replay_command(
    dir: &Path,
    state: Option<&Path>,
    json: bool,
    args: &RuleArgs,
) -> anyhow::Result<u8> {
    let files = replay_files(dir)?;
    let rules = rules_from(args)?;
    let (store, _temporary) = match state {
        Some(state) => {
            std::fs::create_dir_all(state)
                .with_context(|| format!("cannot create state directory {}", state.display()))?;
            (Store::open(state)?, None)
        }
        None => {
            let temporary = tempfile::tempdir().context("cannot create a temporary store")?;
            (Store::open(temporary.path())?, Some(temporary))
        }
    };
    let watch = dir
        .file_name()
        .and_then(|n| n.to_str())
        .map_or_else(|| "replay".to_owned(), slug_text);
    let options = DiffOptions::default();
    let mut out = std::io::stdout().lock();
    for file in &files {
        let step = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        let html = read_html_file(file)?;
        let page = FetchedPage {
            html: &html,
            fetched_at: Utc::now(),
            validators: Validators::default(),
            audience: None,
        };
        let outcome = match pipeline::apply_page(&store, &watch, &rules, &[], &page, &options) {
            Ok(outcome) => outcome,
            Err(pipeline::ApplyError::Store(e)) => return Err(e.into()),
            Err(other) => Outcome::Failed {
                error: format!("{}: {other}", file.display()),
            },
        };
        if json {
            let mut value = serde_json::to_value(&outcome)?;
            value["step"] = step.clone().into();
            if let Outcome::Changed { diff, .. } = &outcome {
                value["diff"] = serde_json::to_value(render::JsonDiff::new(diff))?;
            }
            writeln!(out, "{}", serde_json::to_string(&value)?)?;
        } else {
            writeln!(out, "{step}: {}", describe(&outcome))?;
        }
    }
    store.flush()?;
    out.flush()?;
    Ok(0)
}

fn slug_text(text: &str) -> String {
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

/// One line about an outcome, for replay.
fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::New { version } => format!("NEW (version {version})"),
        Outcome::Unchanged { .. } => "UNCHANGED".to_owned(),
        Outcome::Rebaselined { version } => {
            format!("UNCHANGED (re-baselined as version {version})")
        }
        Outcome::Failed { error } => format!("ERROR: {error}"),
        Outcome::Held { reason } => format!("UNCHANGED ({reason})"),
        Outcome::Changed {
            version,
            diff,
            assessment,
        } => {
            let (added, removed, changed) = diff.block_counts();
            let alert = if assessment.alerts() {
                "alert"
            } else {
                "no alert"
            };
            format!(
                "CHANGED (version {version}, {alert}): +{added} -{removed} ~{changed} blocks, {} words; {}",
                diff.changed_words(),
                truncate(&assessment.one_line(), 160)
            )
        }
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max_chars).collect();
    cut.push('…');
    cut
}

// ---------------------------------------------------------------------------
// import

fn import_command(urls: &Path, out: &Path, contact: &str) -> anyhow::Result<u8> {
    let list =
        std::fs::read_to_string(urls).with_context(|| format!("cannot read {}", urls.display()))?;
    let mut names = std::collections::HashSet::new();
    let mut text = String::new();
    text.push_str("# Written by `tidings import`.\n");
    text.push_str(&format!(
        "contact = {}\nstate_dir = \".\"\n\n",
        toml_string(contact)
    ));
    let mut watches = String::new();
    let mut all_loopback = true;
    for (index, line) in list.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let url = url::Url::parse(line)
            .with_context(|| format!("{}:{}: `{line}` is not a URL", urls.display(), index + 1))?;
        // Name a watch after the last two path segments ("page-17"), which
        // reads better in reports than the whole URL; fall back to the
        // host-and-path slug when that collides.
        let segments: Vec<&str> = url
            .path_segments()
            .map(Iterator::collect)
            .unwrap_or_default();
        let tail = segments
            .iter()
            .rev()
            .take(2)
            .rev()
            .copied()
            .collect::<Vec<_>>()
            .join("-");
        let mut name = slug_text(&tail).trim_matches('-').to_owned();
        if name.is_empty() || names.contains(&name) {
            name = slug(&url);
        }
        let mut unique = name.clone();
        let mut n = 2;
        while !names.insert(unique.clone()) {
            unique = format!("{name}-{n}");
            n += 1;
        }
        all_loopback &= is_loopback(&url);
        watches.push_str(&format!(
            "\n[[watch]]\nname = {}\nurl = {}\n",
            toml_string(&unique),
            toml_string(url.as_str())
        ));
    }
    text.push_str("[limits]\nper_host = 8\n");
    if all_loopback {
        // Pages on this machine (a benchmark or a test) need no spacing out;
        // real sites keep the default pause between requests.
        text.push_str("per_host_interval = \"0s\"\n");
    }
    text.push_str(&watches);
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {} watch(es) to {}", names.len(), out.display());
    Ok(0)
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

// ---------------------------------------------------------------------------
// eval-extract

fn eval_extract_command(dir: &Path, json: bool) -> anyhow::Result<u8> {
    let aeb_dir = dir.join("aeb");
    let trafilatura_dir = dir.join("trafilatura");
    let readability_dir = dir.join("readability");
    if !aeb_dir.is_dir() && !trafilatura_dir.is_dir() && !readability_dir.is_dir() {
        bail!(
            "{} has no aeb/, trafilatura/ or readability/ folder",
            dir.display()
        );
    }
    let aeb = aeb_dir
        .is_dir()
        .then(|| crate::eval::extraction::score_aeb(&aeb_dir))
        .transpose()?;
    let trafilatura = trafilatura_dir
        .is_dir()
        .then(|| crate::eval::extraction::score_trafilatura(&trafilatura_dir))
        .transpose()?;
    let readability = readability_dir
        .is_dir()
        .then(|| crate::eval::extraction::score_readability(&readability_dir))
        .transpose()?;
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({ "aeb": aeb, "trafilatura": trafilatura, "readability": readability });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        if let Some(report) = &aeb {
            writeln!(out, "## aeb ({})\n\n{report}", aeb_dir.display())?;
        }
        if let Some(report) = &trafilatura {
            writeln!(
                out,
                "## trafilatura ({})\n\n{report}",
                trafilatura_dir.display()
            )?;
        }
        if let Some(report) = &readability {
            writeln!(
                out,
                "## readability ({})\n\n{report}",
                readability_dir.display()
            )?;
        }
    }
    out.flush()?;
    Ok(0)
}

fn run_command(location: &Location) -> anyhow::Result<u8> {
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

fn status_command(json: bool, location: &Location) -> anyhow::Result<u8> {
    // A config that no longer validates (say, an edit the daemon rejected on
    // SIGHUP) must not stop the admin from asking the running daemon.
    let config = match load_config(location, true) {
        Ok(config) => config,
        Err(error) => match lenient_state_dir(location) {
            Some(state_dir) => match crate::service::status::query(&state_dir) {
                Ok(report) => {
                    eprintln!(
                        "warning: the config file does not validate; showing the running daemon's status"
                    );
                    return print_status(&report, json);
                }
                Err(_) => return Err(error),
            },
            None => return Err(error),
        },
    };
    let report = match crate::service::status::query(&config.state_dir) {
        Ok(report) => report,
        Err(crate::service::status::StatusError::NotRunning { .. }) => {
            let store = Store::open(&config.state_dir).with_context(|| {
                format!(
                    "no daemon answers on {} and the store cannot be opened",
                    crate::service::status::socket_path(&config.state_dir).display()
                )
            })?;
            crate::service::daemon::offline_status(&config, &store, &config.source)
        }
        Err(other) => return Err(other.into()),
    };
    print_status(&report, json)
}

fn print_status(report: &crate::service::status::StatusReport, json: bool) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(report)?)?;
    } else {
        write!(out, "{}", crate::service::status::render(report))?;
    }
    out.flush()?;
    Ok(0)
}

/// The state directory from `--state`, or read loosely from the config
/// file's `state_dir` line even when the rest of the file is invalid.
fn lenient_state_dir(location: &Location) -> Option<PathBuf> {
    if let Some(state) = &location.state {
        return Some(state.clone());
    }
    let path = config_path(location)?;
    let text = std::fs::read_to_string(&path).ok()?;
    let value: toml::Table = text.parse().ok()?;
    let dir = value.get("state_dir")?.as_str()?;
    Some(path.parent().unwrap_or_else(|| Path::new(".")).join(dir))
}

fn eval_histories_command(dir: &Path, json: bool) -> anyhow::Result<u8> {
    let report = crate::eval::histories::evaluate(dir)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{report}")?;
    }
    out.flush()?;
    Ok(0)
}

// ---------------------------------------------------------------------------
// The outbox

/// Runs a request in the running daemon, which holds the store (sled lets
/// one process open it), or here on the store when no daemon answers.
fn through_daemon<T: serde::de::DeserializeOwned>(
    config: &Config,
    request: &crate::service::status::Request,
    here: impl FnOnce(&Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
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

fn outbox_command(command: crate::cli::args::OutboxCommand) -> anyhow::Result<u8> {
    use crate::cli::args::OutboxCommand as O;
    use crate::service::delivery::OutboxCommand as Request;
    let (request, json, location) = match command {
        O::List {
            all,
            json,
            location,
        } => (Request::List { all }, json, location),
        O::Retry {
            ids,
            failed,
            location,
        } => {
            if ids.is_empty() && !failed {
                bail!(
                    "name the briefings to retry (ids from `tidings outbox list`), or pass --failed"
                );
            }
            (Request::Retry { ids, failed }, false, location)
        }
        O::Cancel { ids, location } => (Request::Cancel { ids }, false, location),
        O::Send { location } => return outbox_send(&location),
    };
    let config = load_config(&location, false)?;
    let reply: crate::service::delivery::OutboxReply = through_daemon(
        &config,
        &crate::service::status::Request::Outbox(request.clone()),
        |store| {
            Ok(crate::service::delivery::outbox_command(
                store,
                &request,
                config.mail.domain(),
                Utc::now(),
            )?)
        },
    )?;
    if let Some(error) = &reply.error {
        bail!("the daemon could not run the command: {error}");
    }
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&reply.rows)?)?;
        return Ok(0);
    }
    let verb = match request {
        Request::List { .. } => None,
        Request::Retry { .. } => Some("queued again"),
        Request::Cancel { .. } => Some("cancelled"),
    };
    match verb {
        None if reply.rows.is_empty() => writeln!(out, "the outbox is empty")?,
        None => {
            writeln!(
                out,
                "{:>6}  {:<9} {:<9} {:>3}  {:<19} {:<32} CHANGES / LAST ERROR",
                "ID", "STATE", "CADENCE", "TRY", "NEXT / DONE", "TO"
            )?;
            for row in &reply.rows {
                let when = row
                    .next_attempt
                    .or(row.finished_at)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{:>6}  {:<9} {:<9} {:>3}  {:<19} {:<32} {}{}",
                    row.id,
                    row.state,
                    row.cadence,
                    row.attempts,
                    when,
                    row.address,
                    row.changes.join(" "),
                    row.last_error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                )?;
            }
        }
        Some(verb) => {
            for row in &reply.rows {
                writeln!(out, "{verb}: {} to {}", row.id, row.address)?;
            }
        }
    }
    for id in &reply.skipped {
        eprintln!("no briefing {id} that can be changed that way");
    }
    Ok(u8::from(!reply.skipped.is_empty()))
}

/// `tidings outbox send`: one pass of the delivery worker.
fn outbox_send(location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    if crate::service::status::query(&config.state_dir).is_ok() {
        bail!(
            "the daemon is running and sends the outbox itself; use `tidings outbox retry` to make briefings due now"
        );
    }
    let store = open_store(&config)?;
    // lettre's SMTP pool spawns tasks when made and dropped: make it (and
    // drop it) inside the runtime's context.
    let runtime = runtime()?;
    let _context = runtime.enter();
    let mailer = crate::mail::Mailer::new(&config.mail, &config.state_dir)?;
    let templates = crate::core::brief::Templates::with_overrides(&config.mail.templates)?;
    let mut deliverer = crate::service::delivery::Deliverer::new(
        store.clone(),
        std::sync::Arc::new(mailer),
        config.mail.clone(),
        std::sync::Arc::new(templates),
        crate::service::delivery::Links::default(),
    );
    let round = runtime.block_on(async {
        deliverer
            .deliver_due(&tokio_util::sync::CancellationToken::new())
            .await
    })?;
    store.flush()?;
    println!(
        "sent {}, retrying {}, failed {}, cancelled {}, digests {} (mail via {})",
        round.sent,
        round.retried,
        round.failed,
        round.cancelled,
        round.digests,
        deliverer.transport()
    );
    if let Some(reason) = round.paused {
        eprintln!("stopped: {reason}");
        return Ok(1);
    }
    Ok(0)
}

// ---------------------------------------------------------------------------
// Subscribers and test briefings

fn subscribers_command(command: crate::cli::args::SubscribersCommand) -> anyhow::Result<u8> {
    use crate::cli::args::SubscribersCommand as S;
    use crate::service::admin::SubscriberCommand as C;
    let (command, location) = match command {
        S::Add {
            address,
            name,
            follow,
            kinds,
            cadence,
            location,
        } => (
            C::Add {
                address,
                name,
                follow,
                kinds,
                cadence,
            },
            location,
        ),
        S::Remove { address, location } => (C::Remove { address }, location),
        S::List { json, location } => (C::List { json }, location),
        S::Import { file, location } => {
            // Read here, so that the daemon never opens files for the CLI.
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            (
                C::Import {
                    source: file.display().to_string(),
                    text,
                },
                location,
            )
        }
        S::Export { location } => (C::Export, location),
        S::Forget { address, location } => (C::Forget { address }, location),
        S::Suppress {
            address,
            reason,
            requested,
            location,
        } => (
            C::Suppress {
                address,
                reason,
                requested,
            },
            location,
        ),
        S::Unsuppress { address, location } => (C::Unsuppress { address }, location),
    };
    let config = load_config(&location, false)?;
    let output: crate::service::admin::Output = through_daemon(
        &config,
        &crate::service::status::Request::Subscribers(command.clone()),
        |store| Ok(crate::service::admin::run(store, &command, Utc::now())),
    )?;
    std::io::stdout()
        .lock()
        .write_all(output.stdout.as_bytes())?;
    std::io::stderr()
        .lock()
        .write_all(output.stderr.as_bytes())?;
    Ok(output.code)
}

fn send_test_command(address: &str, location: &Location) -> anyhow::Result<u8> {
    let address =
        crate::core::subscriptions::validate_address(address).map_err(|e| anyhow::anyhow!(e))?;
    let config = load_config(location, false)?;
    let templates = crate::core::brief::Templates::with_overrides(&config.mail.templates)?;
    let now = Utc::now();
    let subscriber = crate::store::Subscriber {
        address: address.clone(),
        name: String::new(),
        watches: Vec::new(),
        tags: Vec::new(),
        kinds: Vec::new(),
        cadence: crate::store::Cadence::Immediate,
        confirmed: true,
        consent_at: None,
        consent_source: None,
        created: now,
    };
    let changes = crate::core::brief::sample_changes(now);
    let Some(mut briefing) = templates.compose(&subscriber, &changes, None)? else {
        bail!("the sample briefing is empty");
    };
    briefing.subject = format!(
        "[tidings test] {}",
        briefing.subject.trim_start_matches("[tidings] ")
    );
    let key = format!(
        "send-test:{address}:{}",
        now.timestamp_nanos_opt().unwrap_or_default()
    );
    let outgoing = crate::mail::Outgoing {
        to: &address,
        to_name: "",
        briefing: &briefing,
        delivery_key: &key,
        thread_key: None,
        unsubscribe_token: None,
    };
    let message = crate::mail::build_message(&config.mail, &outgoing)?;
    // lettre's SMTP pool spawns a tokio task when it is made and another
    // when it is dropped: the mailer lives inside the runtime's context.
    let runtime = runtime()?;
    let _context = runtime.enter();
    let mailer = crate::mail::Mailer::new(&config.mail, &config.state_dir)?;
    let sent = runtime.block_on(mailer.send(&message))?;
    match sent {
        crate::mail::Sent::File(path) => {
            println!("wrote a test briefing for {address} to {}", path.display())
        }
        crate::mail::Sent::Smtp => println!(
            "sent a test briefing to {address} via {}",
            mailer.describe()
        ),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_are_told_apart() {
        assert!(matches!(
            parse_side("https://example.org/a").expect("url"),
            Side::Url(_)
        ));
        assert_eq!(
            parse_side("lsc@3").expect("stored"),
            Side::Stored {
                watch: "lsc".into(),
                version: Some(3)
            }
        );
        assert_eq!(
            parse_side("lsc@latest").expect("stored"),
            Side::Stored {
                watch: "lsc".into(),
                version: None
            }
        );
        assert!(parse_side("lsc@three").is_err());
        assert!(parse_side("no-such-file.html").is_err());
    }

    #[test]
    fn slugs_are_valid_watch_names() {
        let url = url::Url::parse("https://www.example.org/about-us/stp/?x=1").expect("url");
        assert_eq!(slug(&url), "www.example.org-about-us-stp");
    }
}
