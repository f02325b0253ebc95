//! Configuration: TOML files read into raw serde structs, then validated into
//! types that cannot be wrong (parsed URLs, compiled selectors and regexes,
//! parsed cron schedules, durations).
//!
//! Every error names the file, the line and the field, and says what is
//! allowed. Validation collects all errors rather than stopping at the first,
//! so `tidings validate` shows everything wrong in one go.

mod fingerprint;
mod mail;
mod raw;
mod split;
mod store;
mod validate;
mod web;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::core::extract;
use crate::core::facts::FactRule;
pub use crate::core::schedule::{DEFAULT_TIMEZONE, Schedule};
pub use fingerprint::Fingerprint;
use mail::validate_mail;
pub use mail::{DEFAULT_FROM, MailSettings, MailTransport, PasswordSource, SmtpSettings, SmtpTls};
use raw::*;
pub use store::{PostgresSettings, StoreBackend};
use validate::*;
pub use web::{DEFAULT_WEB_LISTEN, Operator, Privacy, WebSettings};
use web::{derive_unsubscribe_url, validate_web};

/// Fetching and diffing limits, from `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Checks in flight at once.
    pub concurrency: usize,
    /// Checks in flight at once against one host.
    pub per_host: usize,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request.
    pub timeout: Duration,
    /// Largest page body accepted.
    pub max_body_bytes: usize,
    /// Redirects followed.
    pub max_redirects: usize,
    /// Retries after a transient failure.
    pub retries: u32,
    /// Time budget for one diff.
    pub diff_timeout: Duration,
    /// Least time between two requests to one host.
    pub per_host_interval: Duration,
    /// Fetches in a row a suspect text (a large loss, a placeholder or
    /// error page, a flip back) must last before it counts.
    pub confirm_after: u32,
    /// Elements nested deeper than this are flattened before parsing.
    pub max_depth: usize,
    /// A page cut into more blocks than this is a failed check.
    pub max_blocks: usize,
    /// Changed blocks described in full; past it a change is summarised.
    pub max_diff_changes: usize,
    /// Time allowed to parse and read one page.
    pub page_deadline: Duration,
}

impl Limits {
    /// The per-page work budget extraction enforces.
    pub fn budget(&self) -> extract::Budget {
        extract::Budget {
            max_depth: self.max_depth,
            max_blocks: self.max_blocks,
            deadline: self.page_deadline,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            concurrency: 16,
            per_host: 4,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body_bytes: 5 * 1024 * 1024,
            max_redirects: 5,
            retries: 2,
            diff_timeout: Duration::from_millis(500),
            per_host_interval: Duration::from_secs(1),
            confirm_after: 3,
            max_depth: 512,
            max_blocks: 20_000,
            max_diff_changes: 2_000,
            page_deadline: Duration::from_secs(20),
        }
    }
}

/// How the daemon runs, from `[daemon]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// Time allowed for in-flight checks to finish on SIGTERM.
    pub shutdown_deadline: Duration,
    /// Consecutive failures after which the admin is told, once.
    pub alert_after_failures: u32,
    /// The most a watch's runs are shifted after their cron time.
    pub max_jitter: Duration,
    /// The wait after a watch's first failure; doubles per failure.
    pub backoff_base: Duration,
    /// The longest wait between attempts of a failing watch.
    pub backoff_max: Duration,
    /// Who is mailed (through `[mail]`) when a watch keeps failing and when
    /// it recovers. Without it, the journal and `tidings status` say so.
    pub admin_email: Option<String>,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            shutdown_deadline: Duration::from_secs(20),
            alert_after_failures: 3,
            max_jitter: Duration::from_secs(300),
            backoff_base: Duration::from_secs(300),
            backoff_max: Duration::from_secs(6 * 3600),
            admin_email: None,
        }
    }
}

/// One watched page.
#[derive(Debug, Clone)]
pub struct Watch {
    /// Unique name: letters, digits, `.`, `_` and `-`. The stable key.
    pub name: String,
    /// What readers call the page, from `title`; see [`Watch::title`].
    pub title: Option<String>,
    /// The page.
    pub url: url::Url,
    /// When to check it (used by the daemon).
    pub schedule: Schedule,
    /// Free-form labels, such as the partnership a page belongs to.
    pub tags: Vec<String>,
    /// Compiled extraction rules.
    pub rules: extract::Rules,
    /// The watch's own named fact rules.
    pub facts: Vec<FactRule>,
    /// Whether robots.txt is honoured for this watch.
    pub robots: bool,
    /// Origins (`https://host:port`) a redirect may lead to besides the
    /// watch's own site.
    pub allow_redirects_to: Vec<String>,
}

impl Watch {
    /// The page's title for readers: its `title`, or its name.
    pub fn title(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.name)
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub source: PathBuf,
    /// Where the store lives (sled), and this node's socket and lock.
    pub state_dir: PathBuf,
    /// Which store, from `[store]`.
    pub store: StoreBackend,
    /// The address put in the User-Agent so site owners can reach the admin.
    pub contact: Option<String>,
    /// Limits.
    pub limits: Limits,
    /// Daemon behaviour.
    pub daemon: DaemonSettings,
    /// The watches, in file order.
    pub watches: Vec<Watch>,
    /// How briefings are sent, from `[mail]`.
    pub mail: MailSettings,
    /// The HTTP server, from `[web]`: `Some` only when `enabled = true`.
    pub web: Option<WebSettings>,
    /// Tag titles, from `[tags.NAME] title = "…"`.
    pub tag_titles: std::collections::BTreeMap<String, String>,
}

impl Config {
    /// A configuration with no file and no watches, for ad-hoc commands.
    pub fn empty() -> Self {
        Self {
            source: PathBuf::new(),
            state_dir: PathBuf::from("state"),
            store: StoreBackend::Sled,
            contact: None,
            limits: Limits::default(),
            daemon: DaemonSettings::default(),
            watches: Vec::new(),
            mail: MailSettings::default(),
            web: None,
            tag_titles: std::collections::BTreeMap::new(),
        }
    }

    /// A tag's title, or the tag itself.
    pub fn tag_title<'a>(&'a self, tag: &'a str) -> &'a str {
        self.tag_titles.get(tag).map_or(tag, String::as_str)
    }

    /// Every title, for the parts that show names to people.
    pub fn titles(&self) -> crate::core::titles::Titles {
        crate::core::titles::Titles::new(
            self.watches
                .iter()
                .filter_map(|w| Some((w.name.clone(), w.title.clone()?))),
            self.tag_titles.clone(),
        )
    }

    /// The names of every watch and tag, for checking what someone follows.
    pub fn knows_follow(&self, follow: &str) -> bool {
        match follow.strip_prefix("tag:") {
            Some(tag) => self
                .watches
                .iter()
                .any(|w| w.tags.iter().any(|t| t == tag.trim())),
            None => self.watch(follow).is_some(),
        }
    }

    /// What is allowed but probably not meant: printed by `validate` and
    /// logged by the daemon at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.contact.is_none() {
            warnings.push(
                "no `contact` is set; site owners will not know whom to ask about tidings' requests"
                    .to_owned(),
            );
        }
        if let Some(web) = &self.web {
            if web.operator.is_none() {
                warnings.push(
                    "[web] is on without [web.operator]: /subscribe and every briefing should say who runs this service and how to reach them (UK GDPR)"
                        .to_owned(),
                );
            }
            if web.privacy.is_none() {
                warnings.push(
                    "[web] is on without privacy_url or privacy_text: /subscribe collects email addresses and should link a privacy notice (UK GDPR)"
                        .to_owned(),
                );
            }
        }
        for tag in self.tag_titles.keys() {
            if !self.watches.iter().any(|w| w.tags.contains(tag)) {
                warnings.push(format!(
                    "[tags.{tag}] has a title but no watch has that tag"
                ));
            }
        }
        warnings
    }

    /// The watch with this name.
    pub fn watch(&self, name: &str) -> Option<&Watch> {
        self.watches.iter().find(|watch| watch.name == name)
    }
}

/// One thing wrong with a configuration, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file at fault.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field at fault, e.g. `watch[2].url`.
    pub field: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// Reads a duration setting and checks it against its range, so that no
/// accepted value can overflow a clock calculation later (a backoff of
/// "300000years" used to crash the daemon).
fn bounded_duration(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let range = || {
        format!(
            "from {} to {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        )
    };
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d >= min && d <= max => Ok(d),
        Ok(_) => Err(format!("`{text}` is out of range: must be {}", range())),
        Err(_) => Err(format!(
            "`{text}` is not a duration: write one {} such as \"30s\", \"5m\" or \"6h\"",
            range()
        )),
    }
}

/// The default schedule: every six hours, on the hour.
pub const DEFAULT_SCHEDULE: &str = "0 */6 * * *";

/// One file's text, for turning byte spans into line numbers.
#[derive(Clone)]
struct SourceFile {
    path: PathBuf,
    text: String,
    /// Lines before `text` in the file: a `[[watch]]` block is parsed on
    /// its own, and its errors still name the file's line.
    first_line: usize,
}

impl SourceFile {
    fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
            + self.first_line
    }

    fn error(
        &self,
        span: Option<&Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            line: span.map(|s| self.line_of(s)),
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// Reads and validates a daemon configuration file and the files it includes.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_fingerprinted(path).map(|(config, _)| config)
}

/// [`load`], and the [`Fingerprint`] of the files it read.
pub fn load_fingerprinted(path: &Path) -> Result<(Config, Fingerprint), ConfigErrors> {
    load_reusing(path, None)
}

/// What a reload may take from the config loaded before it: the watches of
/// `[[watch]]` blocks whose text it validated then. Settings outside the
/// blocks do not stop that: `[limits]` is applied to every watch after, and
/// a changed default is applied to the watches it reaches (see
/// `validate::rebase`); only one that reaches their extraction rules
/// (`exclude`, `ignore`, `main_content`) makes their blocks read again.
pub struct Reuse<'a> {
    /// The fingerprint of that load.
    pub fingerprint: &'a Fingerprint,
    /// A watch of it, by name, as validated then.
    pub watch: &'a dyn Fn(&str) -> Option<Watch>,
}

/// [`load_fingerprinted`], reusing what `reuse` offers: a reload of a
/// 100,000-watch file with one watch edited parses and validates that
/// one block, not the whole file.
pub fn load_reusing(
    path: &Path,
    reuse: Option<&Reuse<'_>>,
) -> Result<(Config, Fingerprint), ConfigErrors> {
    let mut fingerprint = Fingerprint::default();
    let whole = read(path).map_err(|e| ConfigErrors(vec![e]))?;
    fingerprint
        .files
        .push((path.to_path_buf(), blake3::hash(whole.text.as_bytes())));
    let cut = split::split(&whole.text);
    let (file, blocks) = match cut {
        Some(cut) => (
            SourceFile {
                path: whole.path.clone(),
                text: cut.rest,
                first_line: 0,
            },
            cut.blocks,
        ),
        None => (whole.clone(), Vec::new()),
    };
    let raw: RawDaemon = parse(&file).map_err(|e| ConfigErrors(vec![e]))?;
    if !blocks.is_empty() && !raw.watch.is_empty() {
        // `watch = [...]` beside `[[watch]]` tables: let the whole-file
        // parse say what is wrong.
        let error = parse::<RawDaemon>(&whole).err();
        return Err(ConfigErrors(error.into_iter().collect()));
    }
    let mut errors = Vec::new();

    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let state_dir = raw
        .state_dir
        .as_ref()
        .map_or_else(|| base.join("state"), |dir| base.join(dir.get_ref()));
    let contact = raw.contact.as_ref().and_then(|contact| {
        let value = contact.get_ref().trim();
        // It goes into the User-Agent header of every request: a control
        // character would make every fetch fail.
        if value.is_empty() || value.chars().any(|c| c.is_control() && c != '\t') {
            errors.push(file.error(
                Some(&contact.span()),
                "contact",
                "must be one line without control characters, such as an email address or URL where site owners can reach you",
            ));
            None
        } else {
            Some(value.to_owned())
        }
    });
    let limits = validate_limits(&file, &raw.limits, &mut errors);
    let daemon = validate_daemon(&file, &raw.daemon, &mut errors);
    let store = store::validate_store(&file, base, &raw.store, &mut errors);
    let defaults = validate_defaults(&file, &raw.defaults, &mut errors);
    let defaults_key = defaults.key();
    let mut mail = raw.mail.as_ref().map_or_else(
        || MailSettings::defaults_for(base),
        |mail| validate_mail(&file, base, mail, &mut errors),
    );
    let web = raw
        .web
        .as_ref()
        .and_then(|web| validate_web(&file, base, web, &mut errors));
    if let Some(web) = &web {
        derive_unsubscribe_url(&mut mail, web);
    }

    let mut tag_titles = std::collections::BTreeMap::new();
    for (tag, raw_tag) in &raw.tags {
        if let Some(title) = &raw_tag.title {
            let text = title
                .get_ref()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if text.is_empty() {
                errors.push(file.error(
                    Some(&title.span()),
                    format!("tags.{tag}.title"),
                    "is empty; write what readers call this group of pages",
                ));
            } else {
                tag_titles.insert(tag.clone(), text);
            }
        }
    }

    // Sized up front: growing these a step at a time moved 100,000
    // watches and names over and over on every reload.
    let mut watches = Vec::with_capacity(blocks.len());
    let mut seen = std::collections::HashSet::with_capacity(blocks.len());
    fingerprint.blocks.reserve(blocks.len());
    validate_watches(
        &file,
        raw.watch,
        &defaults,
        &mut watches,
        &mut seen,
        &mut errors,
    );
    // Each block on its own, in file order; a block validated before (same
    // text) is taken as it was, with any changed default it takes applied.
    let mut line = 0;
    let mut counted = 0;
    for block in blocks {
        line += memchr::memchr_iter(b'\n', &whole.text.as_bytes()[counted..block.start]).count();
        counted = block.start;
        let text = &whole.text[block.clone()];
        let hash = blake3::hash(text.as_bytes());
        let reused = reuse.and_then(|r| {
            let (name, inherits) = r.fingerprint.blocks.get(&hash)?;
            let old = r.fingerprint.defaults.as_ref()?;
            if !inherits.rebases(old, &defaults_key) {
                return None;
            }
            let watch = rebase((r.watch)(name)?, *inherits, old, &defaults)?;
            Some((watch, *inherits))
        });
        if let Some((watch, inherits)) = reused {
            if seen.insert(watch.name.clone()) {
                fingerprint
                    .blocks
                    .insert(hash, (watch.name.clone(), inherits));
                watches.push(watch);
            } else {
                errors.push(ConfigError {
                    file: whole.path.clone(),
                    line: Some(line + 1),
                    field: Some(format!("watch name `{}`", watch.name)),
                    message: "is used by another watch; names must be unique".to_owned(),
                });
            }
            continue;
        }
        let block_file = SourceFile {
            path: whole.path.clone(),
            text: text.to_owned(),
            first_line: line,
        };
        match parse::<RawWatchFile>(&block_file) {
            Ok(raw_block) => {
                let before = watches.len();
                let inherits = raw_block.watch.first().map(Inherits::of);
                validate_watches(
                    &block_file,
                    raw_block.watch,
                    &defaults,
                    &mut watches,
                    &mut seen,
                    &mut errors,
                );
                if let ([watch], Some(inherits)) = (&watches[before..], inherits) {
                    fingerprint
                        .blocks
                        .insert(hash, (watch.name.clone(), inherits));
                }
            }
            Err(error) => errors.push(error),
        }
    }
    for pattern in &raw.include {
        let full = base.join(pattern.get_ref());
        fingerprint.patterns.push(full.clone());
        let Some(full_text) = full.to_str() else {
            errors.push(file.error(Some(&pattern.span()), "include", "path is not valid UTF-8"));
            continue;
        };
        let paths = match glob::glob(full_text) {
            Ok(paths) => paths,
            Err(e) => {
                errors.push(file.error(
                    Some(&pattern.span()),
                    "include",
                    format!("bad glob pattern: {e}"),
                ));
                continue;
            }
        };
        let mut matched = false;
        for entry in paths {
            matched = true;
            match entry {
                Ok(included) => match read(&included).and_then(|f| {
                    fingerprint
                        .files
                        .push((included.clone(), blake3::hash(f.text.as_bytes())));
                    parse::<RawWatchFile>(&f).map(|raw| (f, raw))
                }) {
                    Ok((included_file, raw_file)) => validate_watches(
                        &included_file,
                        raw_file.watch,
                        &defaults,
                        &mut watches,
                        &mut seen,
                        &mut errors,
                    ),
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(file.error(
                    Some(&pattern.span()),
                    "include",
                    format!("cannot read {}: {}", e.path().display(), e.error()),
                )),
            }
        }
        if !matched {
            errors.push(file.error(
                Some(&pattern.span()),
                "include",
                format!("`{}` matches no file", pattern.get_ref()),
            ));
        }
    }

    fingerprint.defaults = Some(defaults_key);
    // Every page read for a watch is held to the [limits] work budget.
    for watch in &mut watches {
        watch.rules = std::mem::take(&mut watch.rules).with_budget(limits.budget());
    }
    if errors.is_empty() {
        Ok((
            Config {
                source: path.to_path_buf(),
                state_dir,
                store,
                contact,
                limits,
                daemon,
                watches,
                mail,
                web,
                tag_titles,
            },
            fingerprint,
        ))
    } else {
        Err(ConfigErrors(errors))
    }
}

fn read(path: &Path) -> Result<SourceFile, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| SourceFile {
            path: path.to_path_buf(),
            text,
            first_line: 0,
        })
        .map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            field: None,
            message: format!("cannot read: {e}"),
        })
}

fn parse<T: for<'de> Deserialize<'de>>(file: &SourceFile) -> Result<T, ConfigError> {
    toml::from_str(&file.text).map_err(|e| ConfigError {
        file: file.path.clone(),
        line: e.span().map(|s| file.line_of(&s)),
        field: e.span().and_then(|s| file.key_at(&s)),
        message: e.message().trim().to_owned(),
    })
}

impl SourceFile {
    /// The `table.key` whose value starts at `span`, for serde errors that
    /// name the line but not the field ("invalid type: string, expected
    /// i64"). `None` when the span is not a `key = value` line's value.
    fn key_at(&self, span: &Range<usize>) -> Option<String> {
        let start = span.start.min(self.text.len());
        let before = self.text.get(..start)?;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let (key, _) = before[line_start..].split_once('=')?;
        let key = key.trim().trim_matches('"');
        if key.is_empty() || key.contains(['[', '#']) {
            return None;
        }
        let table = before[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|line| line.starts_with('['))
            .map(|line| line.trim_matches(['[', ']']).trim().to_owned());
        Some(match table {
            Some(table) => format!("{table}.{key}"),
            None => key.to_owned(),
        })
    }
}

/// Loads a config from text, through a temporary file (for the tests).
#[cfg(test)]
pub(crate) fn load_text(text: &str) -> Result<Config, ConfigErrors> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tidings.toml");
    std::fs::write(&path, text).expect("write");
    load(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_six_and_seven_field_schedules_parse() {
        for expression in ["0 9 * * Mon", "0 0 9 * * Mon", "0 0 9 * * Mon 2030"] {
            let schedule = Schedule::parse(expression, DEFAULT_TIMEZONE).expect(expression);
            assert_eq!(
                schedule.upcoming(chrono::Utc::now(), 3).len(),
                3,
                "{expression}"
            );
        }
        assert!(Schedule::parse("* * *", DEFAULT_TIMEZONE).is_err());
    }

    #[test]
    fn a_minimal_config_validates() {
        let config = load_text(
            "contact = \"ops@example.org\"\n[[watch]]\nname = \"lsc\"\nurl = \"https://example.org/ics\"\n",
        )
        .expect("valid");
        assert_eq!(config.watches.len(), 1);
        assert_eq!(config.watches[0].schedule.expression, DEFAULT_SCHEDULE);
    }

    #[test]
    fn errors_name_line_and_field() {
        let errors = load_text(
            "[[watch]]\nname = \"ok\"\nurl = \"https://example.org\"\n\n[[watch]]\nname = \"bad\"\nurl = \"not a url\"\nschedule = \"every day\"\n",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        assert!(text.contains(":7: watch `bad`: url"), "{text}");
        assert!(text.contains(":8: watch `bad`: schedule"), "{text}");
    }

    #[test]
    fn unknown_fields_are_refused_with_their_line() {
        let errors = load_text(
            "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\nselector = \"main\"\n",
        )
        .expect_err("unknown field");
        let error = &errors.0[0];
        assert_eq!(error.line, Some(4), "{error}");
        assert!(error.message.contains("selector"), "{error}");
    }

    #[test]
    fn fact_rules_compile_or_name_their_line() {
        let config = load_text(
            "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\n[[watch.fact]]\nname = \"board\"\nregex = 'board meeting on (\\d+ \\w+)'\n",
        )
        .expect("valid");
        assert_eq!(config.watches[0].facts[0].name, "board");
        let errors = load_text(
            "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\n[[watch.fact]]\nname = \"board\"\nregex = \"(unclosed\"\n",
        )
        .expect_err("bad regex");
        assert!(
            errors
                .to_string()
                .contains(":6: watch `a`: fact `board`: regex"),
            "{errors}"
        );
    }

    #[test]
    fn fact_rules_take_a_regex_or_a_selector_not_both() {
        let config = load_text(
            "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\n[[watch.fact]]\nname = \"chair\"\nselect = \".chair-name\"\n",
        )
        .expect("valid");
        assert!(config.watches[0].facts.is_empty());
        let errors = load_text(
            "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\n[[watch.fact]]\nname = \"chair\"\nselect = \"..bad\"\n",
        )
        .expect_err("bad selector");
        assert!(
            errors
                .to_string()
                .contains(":6: watch `a`: fact `chair`: select"),
            "{errors}"
        );
        let errors = load_text(
            "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\n[[watch.fact]]\nname = \"chair\"\n",
        )
        .expect_err("neither");
        assert!(errors.to_string().contains("exactly one of"), "{errors}");
    }

    #[test]
    fn type_errors_name_the_field() {
        let errors = load_text("[limits]\nconcurrency = \"lots\"\n").expect_err("type error");
        let error = &errors.0[0];
        assert_eq!(error.line, Some(2), "{error}");
        assert_eq!(
            error.field.as_deref(),
            Some("limits.concurrency"),
            "{error}"
        );
        assert!(
            errors.to_string().contains(":2: limits.concurrency: "),
            "{errors}"
        );
    }

    #[test]
    fn every_duration_has_a_range() {
        for (text, field) in [
            (
                "[daemon]\nbackoff_base = \"300000years\"\n",
                "daemon.backoff_base",
            ),
            ("[daemon]\nbackoff_max = \"0s\"\n", "daemon.backoff_max"),
            ("[limits]\ntimeout = \"100years\"\n", "limits.timeout"),
            (
                "[limits]\npage_deadline = \"1ms\"\n",
                "limits.page_deadline",
            ),
            ("[mail]\nretry_max = \"9999days\"\n", "retry_max"),
        ] {
            let errors = load_text(text).expect_err(text);
            assert!(
                errors.to_string().contains(&format!("{field}: ")),
                "{text}: {errors}"
            );
            assert!(errors.to_string().contains("from "), "{errors}");
        }
        let config = load_text("[daemon]\nbackoff_base = \"1day\"\n").expect("in range");
        assert_eq!(config.daemon.backoff_base, Duration::from_secs(86_400));
    }

    #[test]
    fn watch_names_are_safe_path_segments() {
        for name in [".", "..", "...", "a/b", "a\\u0000b", "tab\\tname", ""] {
            let text = format!("[[watch]]\nname = \"{name}\"\nurl = \"https://example.org\"\n");
            assert!(load_text(&text).is_err(), "{name:?} accepted");
        }
        assert!(load_text("[[watch]]\nname = \"a.b\"\nurl = \"https://example.org\"\n").is_ok());
    }

    #[test]
    fn contact_must_be_a_header_value() {
        let errors = load_text("contact = \"ops\\u0000@example.org\"\n").expect_err("nul");
        assert!(errors.to_string().contains(":1: contact:"), "{errors}");
        assert!(load_text("contact = \"ops@example.org (Ops team)\"\n").is_ok());
    }

    #[test]
    fn schedules_that_never_fire_are_refused() {
        for schedule in ["* * 31 2 *", "0 0 0 1 1 * 2001"] {
            let text = format!(
                "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\nschedule = \"{schedule}\"\n"
            );
            let errors = load_text(&text).expect_err(schedule);
            assert!(errors.to_string().contains("never fires"), "{errors}");
        }
        let errors = load_text("[defaults]\nschedule = \"0 0 30 2 *\"\n").expect_err("defaults");
        assert!(errors.to_string().contains("defaults.schedule"), "{errors}");
    }

    #[test]
    fn work_budget_settings_reach_the_rules() {
        let config = load_text(
            "[limits]\nmax_depth = 64\nmax_blocks = 500\nmax_diff_changes = 50\npage_deadline = \"3s\"\n[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\n",
        )
        .expect("valid");
        let budget = config.watches[0].rules.budget();
        assert_eq!(budget.max_depth, 64);
        assert_eq!(budget.max_blocks, 500);
        assert_eq!(budget.deadline, Duration::from_secs(3));
        assert_eq!(config.limits.max_diff_changes, 50);
        let errors = load_text("[limits]\nmax_depth = 1\n").expect_err("too shallow");
        assert!(errors.to_string().contains("limits.max_depth"), "{errors}");
    }

    #[test]
    fn watch_and_tag_titles_are_read_and_names_stay_the_keys() {
        let config = load_text(
            "[tags.lsc]\ntitle = \"Lancashire and South Cumbria\"\n[[watch]]\nname = \"lsc-ics\"\ntitle = \"  Our   ICS \"\nurl = \"https://example.org\"\ntags = [\"lsc\", \"icb\"]\n[[watch]]\nname = \"b\"\nurl = \"https://example.org/b\"\n",
        )
        .expect("valid");
        assert_eq!(config.watches[0].title(), "Our ICS");
        assert_eq!(config.watches[1].title(), "b");
        assert_eq!(config.tag_title("lsc"), "Lancashire and South Cumbria");
        assert_eq!(config.tag_title("icb"), "icb");
        let titles = config.titles();
        assert_eq!(titles.watch("lsc-ics"), "Our ICS");
        assert!(config.knows_follow("tag:icb") && config.knows_follow("b"));
        assert!(!config.knows_follow("tag:nope") && !config.knows_follow("nope"));
        let errors = load_text("[tags.x]\ntitle = \" \"\n").expect_err("empty");
        let text = errors.to_string();
        assert!(text.contains(":2: tags.x.title: is empty"), "{text}");
        let errors = load_text("[tags.y]\nname = \"z\"\n").expect_err("unknown");
        assert!(errors.to_string().contains("name"), "{errors}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let errors = load_text(
            "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\n[[watch]]\nname = \"a\"\nurl = \"https://example.org/2\"\n",
        )
        .expect_err("duplicate");
        assert!(errors.to_string().contains("unique"));
    }
}
