//! Configuration: TOML files read into raw serde structs, then validated into
//! types that cannot be wrong (parsed URLs, compiled selectors and regexes,
//! parsed cron schedules, durations).
//!
//! Every error names the file, the line and the field, and says what is
//! allowed. Validation collects all errors rather than stopping at the first,
//! so `tidings validate` shows everything wrong in one go.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use toml::Spanned;

use crate::extract;
use crate::facts::FactRule;

/// A schedule in the form the `cron` crate reads, plus its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The expression as the user wrote it.
    pub expression: String,
    /// The parsed schedule (always the 6- or 7-field form).
    pub cron: cron::Schedule,
    /// The zone the schedule's times are in.
    pub timezone: chrono_tz::Tz,
}

impl Schedule {
    /// Parses a crontab expression: the standard 5-field form
    /// (`min hour dom month dow`), or the `cron` crate's 6-field form (with
    /// seconds first) and 7-field form (with a year last).
    pub fn parse(expression: &str, timezone: chrono_tz::Tz) -> Result<Self, String> {
        let fields = expression.split_whitespace().count();
        let normalised = match fields {
            5 => format!("0 {expression}"),
            6 | 7 => expression.to_owned(),
            n => {
                return Err(format!(
                    "has {n} fields; use 5 (min hour day-of-month month day-of-week), \
                     6 (seconds first) or 7 (seconds first, year last)"
                ));
            }
        };
        let cron = cron::Schedule::from_str(&normalised).map_err(|e| e.to_string())?;
        Ok(Self {
            expression: expression.to_owned(),
            cron,
            timezone,
        })
    }

    /// The next `count` fire times after `now`, in the schedule's zone.
    pub fn upcoming(&self, now: DateTime<Utc>, count: usize) -> Vec<DateTime<chrono_tz::Tz>> {
        self.cron
            .after(&now.with_timezone(&self.timezone))
            .take(count)
            .collect()
    }
}

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
    /// Unique name: letters, digits, `.`, `_` and `-`.
    pub name: String,
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
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub source: PathBuf,
    /// Where the store lives.
    pub state_dir: PathBuf,
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
}

impl Config {
    /// A configuration with no file and no watches, for ad-hoc commands.
    pub fn empty() -> Self {
        Self {
            source: PathBuf::new(),
            state_dir: PathBuf::from("state"),
            contact: None,
            limits: Limits::default(),
            daemon: DaemonSettings::default(),
            watches: Vec::new(),
            mail: MailSettings::default(),
            web: None,
        }
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

/// A string or a list of strings: `select = "main"` or `select = ["a", "b"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    state_dir: Option<Spanned<String>>,
    contact: Option<Spanned<String>>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    daemon: RawDaemonSettings,
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    watch: Vec<RawWatch>,
    mail: Option<RawMail>,
    web: Option<RawWeb>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    concurrency: Option<Spanned<i64>>,
    per_host: Option<Spanned<i64>>,
    connect_timeout: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    max_body_bytes: Option<Spanned<i64>>,
    max_redirects: Option<Spanned<i64>>,
    retries: Option<Spanned<i64>>,
    diff_timeout: Option<Spanned<String>>,
    per_host_interval: Option<Spanned<String>>,
    confirm_after: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemonSettings {
    shutdown_deadline: Option<Spanned<String>>,
    alert_after_failures: Option<Spanned<i64>>,
    max_jitter: Option<Spanned<String>>,
    backoff_base: Option<Spanned<String>>,
    backoff_max: Option<Spanned<String>>,
    admin_email: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    schedule: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    main_content: Option<bool>,
    robots: Option<bool>,
    exclude: Option<Spanned<OneOrMany>>,
    ignore: Option<Spanned<OneOrMany>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatchFile {
    #[serde(default)]
    watch: Vec<RawWatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    name: Spanned<String>,
    url: Spanned<String>,
    schedule: Option<Spanned<String>>,
    #[serde(default)]
    tags: Vec<String>,
    select: Option<Spanned<OneOrMany>>,
    exclude: Option<Spanned<OneOrMany>>,
    ignore: Option<Spanned<OneOrMany>>,
    main_content: Option<bool>,
    robots: Option<bool>,
    #[serde(default)]
    fact: Vec<RawFactRule>,
}

/// `[[watch.fact]]`: a named regex whose first group (or whole match) is a
/// fact worth tracking on this page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFactRule {
    name: Spanned<String>,
    regex: Option<Spanned<String>>,
    select: Option<Spanned<String>>,
}

/// The default schedule: every six hours, on the hour.
pub const DEFAULT_SCHEDULE: &str = "0 */6 * * *";
/// The default time zone for schedules.
pub const DEFAULT_TIMEZONE: chrono_tz::Tz = chrono_tz::Europe::London;

/// One file's text, for turning byte spans into line numbers.
struct SourceFile {
    path: PathBuf,
    text: String,
}

impl SourceFile {
    fn line_of(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
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
    let file = read(path).map_err(|e| ConfigErrors(vec![e]))?;
    let raw: RawDaemon = parse(&file).map_err(|e| ConfigErrors(vec![e]))?;
    let mut errors = Vec::new();

    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let state_dir = raw
        .state_dir
        .as_ref()
        .map_or_else(|| base.join("state"), |dir| base.join(dir.get_ref()));
    let contact = raw.contact.as_ref().and_then(|contact| {
        let value = contact.get_ref().trim();
        if value.is_empty() || value.contains(['\r', '\n']) {
            errors.push(file.error(
                Some(&contact.span()),
                "contact",
                "must be one line, such as an email address or URL where site owners can reach you",
            ));
            None
        } else {
            Some(value.to_owned())
        }
    });
    let limits = validate_limits(&file, &raw.limits, &mut errors);
    let daemon = validate_daemon(&file, &raw.daemon, &mut errors);
    let defaults = validate_defaults(&file, &raw.defaults, &mut errors);
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

    let mut watches = Vec::new();
    validate_watches(&file, raw.watch, &defaults, &mut watches, &mut errors);
    for pattern in &raw.include {
        let full = base.join(pattern.get_ref());
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
                Ok(included) => match read(&included)
                    .and_then(|f| parse::<RawWatchFile>(&f).map(|raw| (f, raw)))
                {
                    Ok((included_file, raw_file)) => validate_watches(
                        &included_file,
                        raw_file.watch,
                        &defaults,
                        &mut watches,
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

    if errors.is_empty() {
        Ok(Config {
            source: path.to_path_buf(),
            state_dir,
            contact,
            limits,
            daemon,
            watches,
            mail,
            web,
        })
    } else {
        Err(ConfigErrors(errors))
    }
}

fn read(path: &Path) -> Result<SourceFile, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| SourceFile {
            path: path.to_path_buf(),
            text,
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
        field: None,
        message: e.message().trim().to_owned(),
    })
}

fn validate_limits(file: &SourceFile, raw: &RawLimits, errors: &mut Vec<ConfigError>) -> Limits {
    let mut limits = Limits::default();
    let mut count =
        |value: &Option<Spanned<i64>>, field: &str, min: i64, max: i64, target: &mut usize| {
            if let Some(value) = value {
                match usize::try_from(*value.get_ref()) {
                    Ok(n) if (min..=max).contains(value.get_ref()) => *target = n,
                    _ => errors.push(file.error(
                        Some(&value.span()),
                        format!("limits.{field}"),
                        format!("must be a whole number from {min} to {max}"),
                    )),
                }
            }
        };
    count(
        &raw.concurrency,
        "concurrency",
        1,
        1024,
        &mut limits.concurrency,
    );
    count(&raw.per_host, "per_host", 1, 64, &mut limits.per_host);
    count(
        &raw.max_body_bytes,
        "max_body_bytes",
        1024,
        1 << 30,
        &mut limits.max_body_bytes,
    );
    count(
        &raw.max_redirects,
        "max_redirects",
        0,
        20,
        &mut limits.max_redirects,
    );
    let mut retries = limits.retries as usize;
    count(&raw.retries, "retries", 0, 10, &mut retries);
    limits.retries = u32::try_from(retries).unwrap_or(2);
    let mut confirm_after = limits.confirm_after as usize;
    count(
        &raw.confirm_after,
        "confirm_after",
        1,
        20,
        &mut confirm_after,
    );
    limits.confirm_after = u32::try_from(confirm_after).unwrap_or(3);

    let mut duration = |value: &Option<Spanned<String>>, field: &str, target: &mut Duration| {
        if let Some(value) = value {
            match humantime::parse_duration(value.get_ref()) {
                Ok(d) if !d.is_zero() => *target = d,
                _ => errors.push(file.error(
                    Some(&value.span()),
                    format!("limits.{field}"),
                    format!(
                        "`{}` is not a duration; write e.g. \"10s\", \"500ms\" or \"2m\"",
                        value.get_ref()
                    ),
                )),
            }
        }
    };
    duration(
        &raw.connect_timeout,
        "connect_timeout",
        &mut limits.connect_timeout,
    );
    duration(&raw.timeout, "timeout", &mut limits.timeout);
    duration(&raw.diff_timeout, "diff_timeout", &mut limits.diff_timeout);
    if let Some(value) = &raw.per_host_interval {
        // Zero is allowed here: a benchmark against one loopback host wants no gap.
        match humantime::parse_duration(value.get_ref()) {
            Ok(d) => limits.per_host_interval = d,
            Err(_) => errors.push(file.error(
                Some(&value.span()),
                "limits.per_host_interval",
                format!(
                    "`{}` is not a duration; write e.g. \"1s\" or \"0s\"",
                    value.get_ref()
                ),
            )),
        }
    }
    limits
}

fn validate_daemon(
    file: &SourceFile,
    raw: &RawDaemonSettings,
    errors: &mut Vec<ConfigError>,
) -> DaemonSettings {
    let mut settings = DaemonSettings::default();
    let mut duration =
        |value: &Option<Spanned<String>>, field: &str, allow_zero: bool, target: &mut Duration| {
            if let Some(value) = value {
                match humantime::parse_duration(value.get_ref()) {
                    Ok(d) if allow_zero || !d.is_zero() => *target = d,
                    _ => errors.push(file.error(
                        Some(&value.span()),
                        format!("daemon.{field}"),
                        format!(
                            "`{}` is not a duration; write e.g. \"20s\", \"5m\" or \"6h\"",
                            value.get_ref()
                        ),
                    )),
                }
            }
        };
    duration(
        &raw.shutdown_deadline,
        "shutdown_deadline",
        false,
        &mut settings.shutdown_deadline,
    );
    duration(
        &raw.max_jitter,
        "max_jitter",
        true,
        &mut settings.max_jitter,
    );
    duration(
        &raw.backoff_base,
        "backoff_base",
        false,
        &mut settings.backoff_base,
    );
    duration(
        &raw.backoff_max,
        "backoff_max",
        false,
        &mut settings.backoff_max,
    );
    if let Some(address) = &raw.admin_email {
        let text = address.get_ref().trim();
        if let Ok(valid) = crate::subscriptions::validate_address(text) {
            settings.admin_email = Some(valid);
        } else {
            errors.push(file.error(
                Some(&address.span()),
                "daemon.admin_email",
                format!("`{text}` is not an email address such as ops@example.org"),
            ));
        }
    }
    if let Some(value) = &raw.alert_after_failures {
        match u32::try_from(*value.get_ref()) {
            Ok(n) if (1..=1000).contains(&n) => settings.alert_after_failures = n,
            _ => errors.push(file.error(
                Some(&value.span()),
                "daemon.alert_after_failures",
                "must be a whole number from 1 to 1000",
            )),
        }
    }
    settings
}

/// `[defaults]`, validated.
struct Defaults {
    schedule: Schedule,
    timezone: chrono_tz::Tz,
    main_content: bool,
    robots: bool,
    exclude: Vec<String>,
    ignore: Vec<String>,
}

fn validate_defaults(
    file: &SourceFile,
    raw: &RawDefaults,
    errors: &mut Vec<ConfigError>,
) -> Defaults {
    let timezone = match &raw.timezone {
        Some(zone) => zone.get_ref().parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
            errors.push(file.error(
                Some(&zone.span()),
                "defaults.timezone",
                format!(
                    "`{}` is not an IANA time zone name such as \"Europe/London\"",
                    zone.get_ref()
                ),
            ));
            DEFAULT_TIMEZONE
        }),
        None => DEFAULT_TIMEZONE,
    };
    let fallback =
        || Schedule::parse(DEFAULT_SCHEDULE, timezone).expect("the default schedule parses");
    let schedule = match &raw.schedule {
        Some(expression) => {
            Schedule::parse(expression.get_ref(), timezone).unwrap_or_else(|reason| {
                errors.push(file.error(
                    Some(&expression.span()),
                    "defaults.schedule",
                    format!("cron expression `{}` {reason}", expression.get_ref()),
                ));
                fallback()
            })
        }
        None => fallback(),
    };
    Defaults {
        schedule,
        timezone,
        main_content: raw.main_content.unwrap_or(true),
        robots: raw.robots.unwrap_or(true),
        exclude: raw
            .exclude
            .clone()
            .map(|v| v.into_inner().into_vec())
            .unwrap_or_default(),
        ignore: raw
            .ignore
            .clone()
            .map(|v| v.into_inner().into_vec())
            .unwrap_or_default(),
    }
}

fn validate_watches(
    file: &SourceFile,
    raw_watches: Vec<RawWatch>,
    defaults: &Defaults,
    watches: &mut Vec<Watch>,
    errors: &mut Vec<ConfigError>,
) {
    let mut seen: HashSet<String> = watches.iter().map(|w| w.name.clone()).collect();
    for raw in raw_watches {
        let name = raw.name.get_ref().clone();
        let field = |f: &str| format!("watch `{name}`: {f}");
        let mut ok = true;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            errors.push(file.error(
                Some(&raw.name.span()),
                format!("watch name `{name}`"),
                "names may use only letters, digits, `.`, `_` and `-`",
            ));
            ok = false;
        } else if !seen.insert(name.clone()) {
            errors.push(file.error(
                Some(&raw.name.span()),
                format!("watch name `{name}`"),
                "is used by another watch; names must be unique",
            ));
            ok = false;
        }
        let url = match url::Url::parse(raw.url.get_ref()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(url)
            }
            Ok(_) => {
                errors.push(file.error(
                    Some(&raw.url.span()),
                    field("url"),
                    "must be an http or https URL with a host",
                ));
                None
            }
            Err(e) => {
                errors.push(file.error(
                    Some(&raw.url.span()),
                    field("url"),
                    format!(
                        "`{}` is not a URL ({e}); write an absolute http(s) URL",
                        raw.url.get_ref()
                    ),
                ));
                None
            }
        };
        let schedule = match &raw.schedule {
            Some(expression) => match Schedule::parse(expression.get_ref(), defaults.timezone) {
                Ok(schedule) => Some(schedule),
                Err(reason) => {
                    errors.push(file.error(
                        Some(&expression.span()),
                        field("schedule"),
                        format!("cron expression `{}` {reason}", expression.get_ref()),
                    ));
                    None
                }
            },
            None => Some(defaults.schedule.clone()),
        };
        let select = raw
            .select
            .as_ref()
            .map(|v| v.get_ref().clone().into_vec())
            .unwrap_or_default();
        let mut exclude = defaults.exclude.clone();
        exclude.extend(
            raw.exclude
                .as_ref()
                .map(|v| v.get_ref().clone().into_vec())
                .unwrap_or_default(),
        );
        let mut ignore = defaults.ignore.clone();
        ignore.extend(
            raw.ignore
                .as_ref()
                .map(|v| v.get_ref().clone().into_vec())
                .unwrap_or_default(),
        );
        let main_content = raw.main_content.unwrap_or(defaults.main_content);
        let rules = match extract::Rules::new(&select, &exclude, &ignore, main_content) {
            Ok(rules) => Some(rules),
            Err(e) => {
                let (which, span) = match &e {
                    extract::RuleError::Selector { selector, .. } => {
                        let in_select = select.contains(selector);
                        let spanned = if in_select { &raw.select } else { &raw.exclude };
                        (
                            if in_select { "select" } else { "exclude" },
                            spanned.as_ref().map(Spanned::span),
                        )
                    }
                    extract::RuleError::Regex { .. } => {
                        ("ignore", raw.ignore.as_ref().map(Spanned::span))
                    }
                };
                errors.push(file.error(span.as_ref(), field(which), e.to_string()));
                None
            }
        };
        let mut facts = Vec::new();
        let mut named = Vec::new();
        for rule in &raw.fact {
            let rule_name = rule.name.get_ref().trim();
            if rule_name.is_empty() || rule_name.contains(": ") {
                errors.push(file.error(
                    Some(&rule.name.span()),
                    field("fact.name"),
                    "must be a short label, not empty and without \": \"",
                ));
                ok = false;
                continue;
            }
            match (&rule.regex, &rule.select) {
                (Some(pattern), None) => match regex::Regex::new(pattern.get_ref()) {
                    Ok(pattern) => facts.push(FactRule {
                        name: rule_name.to_owned(),
                        pattern,
                    }),
                    Err(e) => {
                        errors.push(file.error(
                            Some(&pattern.span()),
                            field(&format!("fact `{rule_name}`: regex")),
                            format!("invalid regex: {e}"),
                        ));
                        ok = false;
                    }
                },
                (None, Some(selector)) => match extract::check_selector(selector.get_ref()) {
                    Ok(()) => named.push((rule_name.to_owned(), selector.get_ref().clone())),
                    Err(e) => {
                        errors.push(file.error(
                            Some(&selector.span()),
                            field(&format!("fact `{rule_name}`: select")),
                            e.to_string(),
                        ));
                        ok = false;
                    }
                },
                _ => {
                    errors.push(file.error(
                        Some(&rule.name.span()),
                        field(&format!("fact `{rule_name}`")),
                        "give exactly one of `regex` (a pattern whose first group is the value) or `select` (a CSS selector whose text is the value)",
                    ));
                    ok = false;
                }
            }
        }
        let rules = match rules.map(|rules| rules.with_named(&named)) {
            Some(Ok(rules)) => Some(rules),
            Some(Err(e)) => {
                errors.push(file.error(None, field("fact"), e.to_string()));
                None
            }
            None => None,
        };
        if let (true, Some(url), Some(schedule), Some(rules)) = (ok, url, schedule, rules) {
            watches.push(Watch {
                name,
                url,
                schedule,
                tags: raw.tags,
                rules,
                facts,
                robots: raw.robots.unwrap_or(defaults.robots),
            });
        }
    }
}

/// Loads a config from text, through a temporary file (for the tests).
#[cfg(test)]
fn load_text(text: &str) -> Result<Config, ConfigErrors> {
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
            assert_eq!(schedule.upcoming(Utc::now(), 3).len(), 3, "{expression}");
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
    fn duplicate_names_are_refused() {
        let errors = load_text(
            "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\n[[watch]]\nname = \"a\"\nurl = \"https://example.org/2\"\n",
        )
        .expect_err("duplicate");
        assert!(errors.to_string().contains("unique"));
    }
}

// ---------------------------------------------------------------------------
// [mail]: how briefings are sent

/// How briefings leave tidings, from `[mail]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// The sender's address (also the domain of every Message-ID).
    pub from_address: String,
    /// The sender's display name, if any.
    pub from_name: Option<String>,
    /// The List-Id, a dot-atom such as `briefings.example.org`.
    pub list_id: String,
    /// The one-click unsubscribe endpoint (https), if the web endpoint is
    /// set up; `{token}` in it is replaced by the subscriber's token.
    pub unsubscribe_url: Option<url::Url>,
    /// Where mail goes.
    pub transport: MailTransport,
    /// The most one send may take, connection included.
    pub timeout: Duration,
    /// The directory of template overrides (it need not exist).
    pub templates: PathBuf,
    /// The most briefings sent per second, so a change with thousands of
    /// subscribers does not trip a relay's limits.
    pub max_per_second: u32,
    /// The wait before the first retry of a temporary failure; it doubles
    /// with each further failure (with jitter), up to `retry_max`.
    pub retry_base: Duration,
    /// The longest wait between retries.
    pub retry_max: Duration,
    /// How long a briefing is retried before it is marked failed (it can
    /// still be retried by hand with `tidings outbox retry`).
    pub give_up_after: Duration,
    /// How long sent, failed and cancelled briefings stay listed.
    pub keep_finished: Duration,
}

/// Where mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// `.eml` files in a directory: the default when no SMTP server is
    /// configured. `None` means `STATE/mail`.
    File {
        /// The directory.
        dir: Option<PathBuf>,
    },
    /// An SMTP server.
    Smtp(SmtpSettings),
}

/// An SMTP server and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// The server's host name (checked against its certificate).
    pub host: String,
    /// The port: by default 587 for STARTTLS, 465 for implicit TLS, 25 for
    /// none.
    pub port: u16,
    /// How the connection is protected.
    pub tls: SmtpTls,
    /// The AUTH user, if the server needs one.
    pub username: Option<String>,
    /// Where the AUTH password is read from. Never the config itself or the
    /// command line, which other users can read in `ps`.
    pub password: Option<PasswordSource>,
    /// Most connections kept open to the server.
    pub pool_size: u32,
    /// An extra CA certificate (PEM) to trust, for a private relay.
    pub ca_file: Option<PathBuf>,
}

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required: no mail is sent in clear.
    Starttls,
    /// STARTTLS if the server offers it, else clear text.
    StarttlsOptional,
    /// TLS from the first byte (port 465).
    Implicit,
    /// Clear text: only for a relay on this machine.
    None,
}

/// Where an SMTP password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// A file holding the password (trailing newline ignored).
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// The sender used when `[mail]` gives none.
pub const DEFAULT_FROM: &str = "tidings@localhost";

impl Default for MailSettings {
    fn default() -> Self {
        Self::defaults_for(Path::new("config"))
    }
}

impl MailSettings {
    /// The settings with no `[mail]` section: `.eml` files in `STATE/mail`,
    /// templates from `templates/` beside the config file.
    pub fn defaults_for(config_dir: &Path) -> Self {
        Self {
            from_address: DEFAULT_FROM.to_owned(),
            from_name: Some("tidings".to_owned()),
            list_id: "briefings.tidings.localhost".to_owned(),
            unsubscribe_url: None,
            transport: MailTransport::File { dir: None },
            timeout: Duration::from_secs(60),
            templates: config_dir.join("templates"),
            max_per_second: 200,
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(3 * 24 * 3600),
            keep_finished: Duration::from_secs(14 * 24 * 3600),
        }
    }

    /// The domain of the sender's address: Message-IDs are made on it.
    pub fn domain(&self) -> &str {
        self.from_address
            .rsplit_once('@')
            .map_or("localhost", |(_, domain)| domain)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    from: Option<Spanned<String>>,
    list_id: Option<Spanned<String>>,
    unsubscribe_url: Option<Spanned<String>>,
    transport: Option<Spanned<String>>,
    dir: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    tls: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    pool_size: Option<Spanned<i64>>,
    ca_file: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    templates: Option<Spanned<String>>,
    max_per_second: Option<Spanned<i64>>,
    retry_base: Option<Spanned<String>>,
    retry_max: Option<Spanned<String>>,
    give_up_after: Option<Spanned<String>>,
    keep_finished: Option<Spanned<String>>,
}

/// Splits `Name <address>` or a bare address.
fn parse_mailbox(text: &str) -> Result<(Option<String>, String), String> {
    let text = text.trim();
    let (name, address) = match (text.find('<'), text.strip_suffix('>')) {
        (Some(open), Some(inner)) => {
            let name = text[..open].trim().trim_matches('"').trim();
            (
                (!name.is_empty()).then(|| name.to_owned()),
                inner[open + 1..].trim(),
            )
        }
        _ => (None, text),
    };
    if name
        .as_deref()
        .is_some_and(|n| n.chars().any(char::is_control))
    {
        return Err("the name has control characters".to_owned());
    }
    let options = email_address::Options::default()
        .without_display_text()
        .without_domain_literal();
    email_address::EmailAddress::parse_with_options(address, options)
        .map_err(|e| format!("`{address}` is not an email address: {e}"))?;
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    Ok((name, format!("{local}@{}", domain.to_ascii_lowercase())))
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn validate_mail(
    file: &SourceFile,
    base: &Path,
    raw: &RawMail,
    errors: &mut Vec<ConfigError>,
) -> MailSettings {
    let mut mail = MailSettings::defaults_for(base);
    let mut error = |span: Option<Range<usize>>, field: &str, message: String| {
        errors.push(file.error(span.as_ref(), format!("mail.{field}"), message));
    };
    let mut from_given = false;
    if let Some(from) = &raw.from {
        match parse_mailbox(from.get_ref()) {
            Ok((name, address)) => {
                mail.from_name = name;
                mail.from_address = address;
                from_given = true;
            }
            Err(e) => error(
                Some(from.span()),
                "from",
                format!("{e}; write e.g. \"Briefings <briefings@example.org>\""),
            ),
        }
    }
    mail.list_id = format!("briefings.{}", mail.domain());
    if let Some(list_id) = &raw.list_id {
        let value = list_id
            .get_ref()
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        let atom = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if value.contains('.')
            && value.chars().all(atom)
            && !value.starts_with('.')
            && !value.ends_with('.')
        {
            mail.list_id = value.to_owned();
        } else {
            error(
                Some(list_id.span()),
                "list_id",
                format!("`{value}` is not a list id; write e.g. \"briefings.example.org\""),
            );
        }
    }
    if let Some(value) = &raw.unsubscribe_url {
        match url::Url::parse(value.get_ref().trim()) {
            Ok(url) if url.scheme() == "https" => mail.unsubscribe_url = Some(url),
            _ => error(
                Some(value.span()),
                "unsubscribe_url",
                "must be an https URL (one-click unsubscribe requires https)".to_owned(),
            ),
        }
    }
    for (field, value, target) in [
        ("timeout", &raw.timeout, &mut mail.timeout),
        ("retry_base", &raw.retry_base, &mut mail.retry_base),
        ("retry_max", &raw.retry_max, &mut mail.retry_max),
        ("give_up_after", &raw.give_up_after, &mut mail.give_up_after),
        ("keep_finished", &raw.keep_finished, &mut mail.keep_finished),
    ] {
        let Some(value) = value else { continue };
        match humantime::parse_duration(value.get_ref()) {
            Ok(d) if !d.is_zero() => *target = d,
            _ => error(
                Some(value.span()),
                field,
                format!(
                    "`{}` is not a duration; write e.g. \"60s\" or \"3days\"",
                    value.get_ref()
                ),
            ),
        }
    }
    if let Some(value) = &raw.max_per_second {
        match u32::try_from(*value.get_ref()) {
            Ok(n) if n > 0 => mail.max_per_second = n,
            _ => error(
                Some(value.span()),
                "max_per_second",
                "must be a whole number of briefings per second, at least 1".to_owned(),
            ),
        }
    }
    if let Some(value) = &raw.templates {
        mail.templates = base.join(value.get_ref());
    }

    let smtp_only: [(&str, Option<Range<usize>>); 8] = [
        ("host", raw.host.as_ref().map(Spanned::span)),
        ("port", raw.port.as_ref().map(Spanned::span)),
        ("tls", raw.tls.as_ref().map(Spanned::span)),
        ("username", raw.username.as_ref().map(Spanned::span)),
        (
            "password_file",
            raw.password_file.as_ref().map(Spanned::span),
        ),
        ("password_env", raw.password_env.as_ref().map(Spanned::span)),
        ("pool_size", raw.pool_size.as_ref().map(Spanned::span)),
        ("ca_file", raw.ca_file.as_ref().map(Spanned::span)),
    ];
    let transport = raw
        .transport
        .as_ref()
        .map(|t| (t.get_ref().as_str(), t.span()));
    match transport {
        None | Some(("file", _)) => {
            for (field, span) in smtp_only.iter().filter(|(_, span)| span.is_some()) {
                error(
                    span.clone(),
                    field,
                    "applies only to transport = \"smtp\"".to_owned(),
                );
            }
            mail.transport = MailTransport::File {
                dir: raw.dir.as_ref().map(|dir| base.join(dir.get_ref())),
            };
        }
        Some(("smtp", span)) => {
            if let Some(dir) = &raw.dir {
                error(
                    Some(dir.span()),
                    "dir",
                    "applies only to transport = \"file\"".to_owned(),
                );
            }
            let host = match &raw.host {
                Some(host) if !host.get_ref().trim().is_empty() => host.get_ref().trim().to_owned(),
                _ => {
                    error(
                        Some(span),
                        "host",
                        "transport = \"smtp\" needs host = \"smtp.example.org\"".to_owned(),
                    );
                    String::new()
                }
            };
            let tls = match raw.tls.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
                None | Some(("starttls", _)) => SmtpTls::Starttls,
                Some(("starttls-optional", _)) => SmtpTls::StarttlsOptional,
                Some(("implicit", _)) => SmtpTls::Implicit,
                Some(("none", _)) => SmtpTls::None,
                Some((other, span)) => {
                    error(
                        Some(span),
                        "tls",
                        format!(
                            "`{other}` is not one of \"starttls\", \"starttls-optional\", \"implicit\", \"none\""
                        ),
                    );
                    SmtpTls::Starttls
                }
            };
            let mut port = match tls {
                SmtpTls::Starttls | SmtpTls::StarttlsOptional => 587,
                SmtpTls::Implicit => 465,
                SmtpTls::None => 25,
            };
            if let Some(value) = &raw.port {
                match u16::try_from(*value.get_ref()) {
                    Ok(p) if p > 0 => port = p,
                    _ => error(
                        Some(value.span()),
                        "port",
                        "must be a port number from 1 to 65535".to_owned(),
                    ),
                }
            }
            let username = raw.username.as_ref().map(|u| u.get_ref().clone());
            let password = match (&raw.password_file, &raw.password_env) {
                (Some(file), None) => Some(PasswordSource::File(base.join(file.get_ref()))),
                (None, Some(env)) => Some(PasswordSource::Env(env.get_ref().clone())),
                (None, None) => None,
                (Some(_), Some(env)) => {
                    error(
                        Some(env.span()),
                        "password_env",
                        "give password_file or password_env, not both".to_owned(),
                    );
                    None
                }
            };
            if username.is_some() != password.is_some() {
                let span = raw.username.as_ref().map(Spanned::span).or_else(|| {
                    raw.password_file
                        .as_ref()
                        .or(raw.password_env.as_ref())
                        .map(Spanned::span)
                });
                error(
                    span,
                    "username",
                    "username needs password_file or password_env, and they need username"
                        .to_owned(),
                );
            }
            if tls == SmtpTls::None
                && username.is_some()
                && !host.is_empty()
                && !is_loopback_host(&host)
            {
                error(raw.tls.as_ref().map(Spanned::span), "tls", "tls = \"none\" would send the password in clear; it is allowed only for a server on this machine".to_owned());
            }
            let mut pool_size = 4;
            if let Some(value) = &raw.pool_size {
                match u32::try_from(*value.get_ref()) {
                    Ok(n) if (1..=64).contains(&n) => pool_size = n,
                    _ => error(
                        Some(value.span()),
                        "pool_size",
                        "must be a whole number from 1 to 64".to_owned(),
                    ),
                }
            }
            mail.transport = MailTransport::Smtp(SmtpSettings {
                host,
                port,
                tls,
                username,
                password,
                pool_size,
                ca_file: raw.ca_file.as_ref().map(|f| base.join(f.get_ref())),
            });
        }
        Some((other, span)) => error(
            Some(span),
            "transport",
            format!("`{other}` is not \"file\" or \"smtp\""),
        ),
    }
    if !from_given && matches!(mail.transport, MailTransport::Smtp(_)) {
        error(
            None,
            "from",
            "transport = \"smtp\" needs from = \"Briefings <briefings@example.org>\"".to_owned(),
        );
    }
    mail
}

#[cfg(test)]
mod mail_tests {
    use super::*;

    #[test]
    fn no_mail_section_means_eml_files() {
        let config = load_text("").expect("valid");
        assert_eq!(config.mail.transport, MailTransport::File { dir: None });
        assert_eq!(config.mail.from_address, DEFAULT_FROM);
    }

    #[test]
    fn an_smtp_section_is_read() {
        let config = load_text(
            "[mail]\nfrom = \"Briefings <Briefings@Example.ORG>\"\ntransport = \"smtp\"\nhost = \"smtp.example.org\"\n\
             tls = \"implicit\"\nusername = \"tidings\"\npassword_env = \"SMTP_PASSWORD\"\n\
             unsubscribe_url = \"https://example.org/u/{token}\"\n",
        )
        .expect("valid");
        let mail = &config.mail;
        assert_eq!(mail.from_address, "Briefings@example.org");
        assert_eq!(mail.from_name.as_deref(), Some("Briefings"));
        assert_eq!(mail.list_id, "briefings.example.org");
        let MailTransport::Smtp(smtp) = &mail.transport else {
            panic!("smtp expected")
        };
        assert_eq!((smtp.port, smtp.tls), (465, SmtpTls::Implicit));
        assert_eq!(
            smtp.password,
            Some(PasswordSource::Env("SMTP_PASSWORD".to_owned()))
        );
    }

    #[test]
    fn mail_errors_name_line_and_field() {
        let errors = load_text(
            "[mail]\nfrom = \"not an address\"\ntransport = \"smtp\"\nhost = \"mail.example.org\"\n\
             tls = \"none\"\nusername = \"u\"\npassword_file = \"pw\"\nunsubscribe_url = \"http://x.org\"\n",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        assert!(text.contains(":2: mail.from"), "{text}");
        assert!(text.contains(":5: mail.tls"), "{text}");
        assert!(text.contains(":8: mail.unsubscribe_url"), "{text}");
        let errors = load_text("[mail]\nhost = \"x\"\npasword = 1\n").expect_err("unknown field");
        assert!(errors.to_string().contains("pasword"), "{errors}");
    }
    #[test]
    fn delivery_pacing_and_retries_are_read_and_checked() {
        let config = load_text(
            "[mail]\nmax_per_second = 20\nretry_base = \"30s\"\nretry_max = \"2h\"\n\
             give_up_after = \"1day\"\nkeep_finished = \"7days\"\n",
        )
        .expect("valid");
        assert_eq!(config.mail.max_per_second, 20);
        assert_eq!(config.mail.retry_base, Duration::from_secs(30));
        assert_eq!(config.mail.retry_max, Duration::from_secs(7200));
        assert_eq!(config.mail.give_up_after, Duration::from_secs(86_400));
        assert_eq!(config.mail.keep_finished, Duration::from_secs(7 * 86_400));
        let errors =
            load_text("[mail]\nmax_per_second = 0\nretry_base = \"soon\"\n").expect_err("invalid");
        let text = errors.to_string();
        assert!(text.contains(":2: mail.max_per_second"), "{text}");
        assert!(text.contains(":3: mail.retry_base"), "{text}");
    }
}

// ---------------------------------------------------------------------------
// [web]: the optional HTTP server (subscriptions, change pages, feeds)

/// The HTTP server's settings, from `[web]` with `enabled = true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSettings {
    /// Where to listen. Loopback by default: the server is meant to sit
    /// behind a reverse proxy that terminates TLS.
    pub listen: std::net::SocketAddr,
    /// The public address of the server, used for every link in emails and
    /// pages. https, or http only for a loopback host.
    pub base_url: url::Url,
    /// The file holding the secret that signs links and form tokens.
    pub secret_file: PathBuf,
    /// Whether the client address is taken from `X-Forwarded-For` (set by
    /// the reverse proxy) rather than the connection. Only safe when every
    /// request comes through that proxy.
    pub trust_forwarded: bool,
    /// Subscribe requests allowed per client address per hour.
    pub subscribe_per_ip: u32,
    /// Subscribe requests allowed per email address per hour, which also
    /// bounds the confirmation mails anyone can make tidings send to one
    /// person.
    pub subscribe_per_address: u32,
}

/// Where the server listens when `[web] listen` is not given.
pub const DEFAULT_WEB_LISTEN: std::net::SocketAddr = std::net::SocketAddr::V4(
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 8080),
);

impl WebSettings {
    /// Settings for a server at `base_url`, with the defaults for the rest.
    pub fn new(base_url: url::Url, secret_file: PathBuf) -> Self {
        Self {
            listen: DEFAULT_WEB_LISTEN,
            base_url,
            secret_file,
            trust_forwarded: false,
            subscribe_per_ip: 20,
            subscribe_per_address: 3,
        }
    }

    /// The absolute URL of one of the server's paths (`/changes/x~2`),
    /// under the base URL, which may have a path of its own.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.as_str().trim_end_matches('/'))
    }

    /// The base URL's path without its trailing slash (empty at the root):
    /// the prefix of the server's own links, when a proxy serves it under a
    /// sub-path.
    pub fn base_path(&self) -> &str {
        self.base_url.path().trim_end_matches('/')
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    enabled: Option<Spanned<bool>>,
    listen: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
    trust_forwarded: Option<bool>,
    subscribe_per_ip: Option<Spanned<i64>>,
    subscribe_per_address: Option<Spanned<i64>>,
}

/// Validates `[web]`. Fields are checked even when the server is disabled,
/// so a typo is found before someone turns it on; `None` unless enabled.
fn validate_web(
    file: &SourceFile,
    base: &Path,
    raw: &RawWeb,
    errors: &mut Vec<ConfigError>,
) -> Option<WebSettings> {
    let mut error = |span: Option<Range<usize>>, field: &str, message: String| {
        errors.push(file.error(span.as_ref(), format!("web.{field}"), message));
    };
    let enabled = raw.enabled.as_ref().is_some_and(|e| *e.get_ref());
    let enabled_span = raw.enabled.as_ref().map(Spanned::span);
    let mut ok = true;

    let mut listen = DEFAULT_WEB_LISTEN;
    if let Some(value) = &raw.listen {
        match value.get_ref().trim().parse::<std::net::SocketAddr>() {
            Ok(address) => listen = address,
            Err(_) => {
                error(
                    Some(value.span()),
                    "listen",
                    format!(
                        "`{}` is not an address and port; write e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"",
                        value.get_ref()
                    ),
                );
                ok = false;
            }
        }
    }

    let base_url = match &raw.base_url {
        Some(value) => {
            let text = value.get_ref().trim();
            match url::Url::parse(text) {
                Ok(url) if url.query().is_some() || url.fragment().is_some() => {
                    error(
                        Some(value.span()),
                        "base_url",
                        format!("`{text}` must not have a query or fragment"),
                    );
                    None
                }
                Ok(url)
                    if url.scheme() == "https"
                        || (url.scheme() == "http"
                            && url.host_str().is_some_and(is_loopback_host)) =>
                {
                    Some(url)
                }
                Ok(_) => {
                    error(
                        Some(value.span()),
                        "base_url",
                        format!(
                            "`{text}` must be an https URL (http is allowed only for localhost): \
                             links in emails carry unsubscribe and confirmation tokens"
                        ),
                    );
                    None
                }
                Err(e) => {
                    error(
                        Some(value.span()),
                        "base_url",
                        format!(
                            "`{text}` is not a URL ({e}); write e.g. \"https://briefings.example.org\""
                        ),
                    );
                    None
                }
            }
        }
        None => {
            if enabled {
                error(
                    enabled_span.clone(),
                    "base_url",
                    "is required with enabled = true: the public address emails link to, \
                     e.g. \"https://briefings.example.org\""
                        .to_owned(),
                );
            }
            None
        }
    };

    let secret_file = match &raw.secret_file {
        Some(value) if !value.get_ref().trim().is_empty() => {
            Some(base.join(value.get_ref().trim()))
        }
        Some(value) => {
            error(
                Some(value.span()),
                "secret_file",
                "must name a file holding at least 32 random bytes".to_owned(),
            );
            None
        }
        None => {
            if enabled {
                error(
                    enabled_span.clone(),
                    "secret_file",
                    "is required with enabled = true: a file of at least 32 random bytes that \
                     signs links (make one with `head -c 32 /dev/urandom > web.secret`)"
                        .to_owned(),
                );
            }
            None
        }
    };

    let mut per_hour = |value: &Option<Spanned<i64>>, field: &str, default: u32| -> u32 {
        match value {
            Some(value) => match u32::try_from(*value.get_ref()) {
                Ok(n) if (1..=100_000).contains(&n) => n,
                _ => {
                    error(
                        Some(value.span()),
                        field,
                        "must be a whole number of requests per hour, from 1 to 100000".to_owned(),
                    );
                    ok = false;
                    default
                }
            },
            None => default,
        }
    };
    let subscribe_per_ip = per_hour(&raw.subscribe_per_ip, "subscribe_per_ip", 20);
    let subscribe_per_address = per_hour(&raw.subscribe_per_address, "subscribe_per_address", 3);

    match (enabled && ok, base_url, secret_file) {
        (true, Some(base_url), Some(secret_file)) => Some(WebSettings {
            listen,
            base_url,
            secret_file,
            trust_forwarded: raw.trust_forwarded.unwrap_or(false),
            subscribe_per_ip,
            subscribe_per_address,
        }),
        _ => None,
    }
}

/// With the web server on and no `[mail] unsubscribe_url` of its own,
/// briefings link to the server's one-click unsubscribe page. Only for an
/// https base URL: RFC 8058 one-click needs https, and mail clients ignore
/// it otherwise.
fn derive_unsubscribe_url(mail: &mut MailSettings, web: &WebSettings) {
    if mail.unsubscribe_url.is_none() && web.base_url.scheme() == "https" {
        mail.unsubscribe_url = url::Url::parse(&web.url("/unsubscribe/{token}")).ok();
    }
}

#[cfg(test)]
mod web_tests {
    use super::*;

    #[test]
    fn no_web_section_or_disabled_means_no_server() {
        assert!(load_text("").expect("valid").web.is_none());
        let config = load_text("[web]\nenabled = false\nlisten = \"0.0.0.0:80\"\n").expect("valid");
        assert!(config.web.is_none());
    }

    #[test]
    fn an_enabled_server_is_read_and_links_unsubscribes_to_it() {
        let config = load_text(
            "[web]\nenabled = true\nbase_url = \"https://example.org/tidings/\"\nsecret_file = \"web.secret\"\ntrust_forwarded = true\nsubscribe_per_address = 5\n",
        )
        .expect("valid");
        let web = config.web.expect("enabled");
        assert_eq!(web.listen, DEFAULT_WEB_LISTEN);
        assert!(web.trust_forwarded);
        assert_eq!((web.subscribe_per_ip, web.subscribe_per_address), (20, 5));
        assert!(web.secret_file.ends_with("web.secret"));
        assert_eq!(
            web.url("/changes/a~2"),
            "https://example.org/tidings/changes/a~2"
        );
        assert_eq!(web.base_path(), "/tidings");
        let unsubscribe = config.mail.unsubscribe_url.expect("derived").to_string();
        assert_eq!(
            unsubscribe.replace("%7Btoken%7D", "{token}"),
            "https://example.org/tidings/unsubscribe/{token}"
        );
    }

    #[test]
    fn an_own_unsubscribe_url_is_kept() {
        let config = load_text(
            "[mail]\nunsubscribe_url = \"https://lists.example.org/u/{token}\"\n[web]\nenabled = true\nbase_url = \"https://example.org\"\nsecret_file = \"s\"\n",
        )
        .expect("valid");
        assert!(
            config
                .mail
                .unsubscribe_url
                .expect("kept")
                .as_str()
                .starts_with("https://lists.example.org/")
        );
    }

    #[test]
    fn web_errors_name_line_and_field() {
        let errors = load_text("[web]\nenabled = true\n").expect_err("incomplete");
        let text = errors.to_string();
        assert!(text.contains(":2: web.base_url: is required"), "{text}");
        assert!(text.contains(":2: web.secret_file: is required"), "{text}");
        let errors = load_text(
            "[web]\nenabled = true\nlisten = \"localhost\"\nbase_url = \"http://example.org\"\nsecret_file = \"s\"\nsubscribe_per_ip = 0\n",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        assert!(text.contains(":3: web.listen"), "{text}");
        assert!(
            text.contains(":4: web.base_url: `http://example.org` must be an https URL"),
            "{text}"
        );
        assert!(text.contains(":6: web.subscribe_per_ip"), "{text}");
        let config = load_text(
            "[web]\nenabled = true\nbase_url = \"http://127.0.0.1:8080\"\nsecret_file = \"s\"\n",
        )
        .expect("http on loopback is allowed");
        assert!(
            config.mail.unsubscribe_url.is_none(),
            "no one-click over http"
        );
        let errors = load_text("[web]\nenabeld = true\n").expect_err("typo");
        assert!(errors.to_string().contains("enabeld"), "{errors}");
    }
}
