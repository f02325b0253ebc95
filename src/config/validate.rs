//! Raw settings → validated ones: limits, `[daemon]`, `[defaults]` and the
//! watches. Each function collects its errors and returns the best value it
//! can, so one run of `tidings validate` reports every problem.

use std::collections::HashSet;
use std::time::Duration;

use toml::Spanned;

use super::raw::*;
use super::*;
use crate::core::extract;
use crate::core::facts::FactRule;

pub(super) fn validate_limits(
    file: &SourceFile,
    raw: &RawLimits,
    errors: &mut Vec<ConfigError>,
) -> Limits {
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
    count(
        &raw.max_depth,
        "max_depth",
        16,
        100_000,
        &mut limits.max_depth,
    );
    count(
        &raw.max_blocks,
        "max_blocks",
        100,
        1_000_000,
        &mut limits.max_blocks,
    );
    count(
        &raw.max_diff_changes,
        "max_diff_changes",
        10,
        1_000_000,
        &mut limits.max_diff_changes,
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

    let mut duration = |value: &Option<Spanned<String>>,
                        field: &str,
                        range: (Duration, Duration),
                        target: &mut Duration| {
        read_duration(
            file,
            errors,
            value,
            &format!("limits.{field}"),
            range,
            target,
        );
    };
    duration(
        &raw.connect_timeout,
        "connect_timeout",
        (MS * 100, MINUTE * 5),
        &mut limits.connect_timeout,
    );
    duration(
        &raw.timeout,
        "timeout",
        (MS * 100, HOUR),
        &mut limits.timeout,
    );
    duration(
        &raw.diff_timeout,
        "diff_timeout",
        (MS * 10, MINUTE),
        &mut limits.diff_timeout,
    );
    // Zero is allowed here: a benchmark against one loopback host wants no gap.
    duration(
        &raw.per_host_interval,
        "per_host_interval",
        (Duration::ZERO, HOUR),
        &mut limits.per_host_interval,
    );
    duration(
        &raw.page_deadline,
        "page_deadline",
        (MS * 100, MINUTE * 10),
        &mut limits.page_deadline,
    );
    limits
}

pub(super) fn validate_daemon(
    file: &SourceFile,
    raw: &RawDaemonSettings,
    errors: &mut Vec<ConfigError>,
) -> DaemonSettings {
    let mut settings = DaemonSettings::default();
    let mut duration = |value: &Option<Spanned<String>>,
                        field: &str,
                        range: (Duration, Duration),
                        target: &mut Duration| {
        read_duration(
            file,
            errors,
            value,
            &format!("daemon.{field}"),
            range,
            target,
        );
    };
    duration(
        &raw.shutdown_deadline,
        "shutdown_deadline",
        (MS * 10, HOUR),
        &mut settings.shutdown_deadline,
    );
    duration(
        &raw.max_jitter,
        "max_jitter",
        (Duration::ZERO, DAY),
        &mut settings.max_jitter,
    );
    duration(
        &raw.backoff_base,
        "backoff_base",
        (MS * 10, DAY),
        &mut settings.backoff_base,
    );
    duration(
        &raw.backoff_max,
        "backoff_max",
        (MS * 10, DAY * 30),
        &mut settings.backoff_max,
    );
    if let Some(address) = &raw.admin_email {
        let text = address.get_ref().trim();
        if let Ok(valid) = crate::core::subscriptions::validate_address(text) {
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
pub(super) struct Defaults {
    schedule: Schedule,
    timezone: chrono_tz::Tz,
    main_content: bool,
    robots: bool,
    exclude: Vec<String>,
    ignore: Vec<String>,
}

/// What validating a watch reads from `[defaults]`, as values: a reload
/// compares the last load's with its own to tell which watches a changed
/// default can reach (see [`rebase`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DefaultsKey {
    schedule: String,
    timezone: chrono_tz::Tz,
    main_content: bool,
    robots: bool,
    exclude: Vec<String>,
    ignore: Vec<String>,
}

impl Defaults {
    pub(super) fn key(&self) -> DefaultsKey {
        DefaultsKey {
            schedule: self.schedule.expression.clone(),
            timezone: self.timezone,
            main_content: self.main_content,
            robots: self.robots,
            exclude: self.exclude.clone(),
            ignore: self.ignore.clone(),
        }
    }
}

/// Which defaults a watch's block leaves to `[defaults]`: the keys it does
/// not set. `exclude` and `ignore` are not here because every watch takes
/// the defaults' lists as well as its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Inherits {
    schedule: bool,
    main_content: bool,
    robots: bool,
}

impl Inherits {
    pub(super) fn of(raw: &RawWatch) -> Self {
        Self {
            schedule: raw.schedule.is_none(),
            main_content: raw.main_content.is_none(),
            robots: raw.robots.is_none(),
        }
    }

    /// Whether a watch validated under `old` can be brought to `new` by
    /// [`rebase`]: not when a changed default reaches its extraction rules,
    /// which only its block's text can compile again.
    pub(super) fn rebases(self, old: &DefaultsKey, new: &DefaultsKey) -> bool {
        old.exclude == new.exclude
            && old.ignore == new.ignore
            && (!self.main_content || old.main_content == new.main_content)
    }
}

/// A watch validated under the defaults `old`, as validating its block
/// under `new` would make it, without reading the block again: a reload
/// after a change to `[defaults]` or `[limits]` must not parse 100,000
/// blocks to learn that their watches are as they were. Only what
/// [`validate_watches`] takes from the defaults can differ: the schedule
/// (the default one, or the watch's own in a new time zone) and `robots`.
/// Call it only when [`Inherits::rebases`]; `None` when the watch's own
/// schedule no longer fires in the new zone (its block, read again, says
/// so with its line).
pub(super) fn rebase(
    mut watch: Watch,
    inherits: Inherits,
    old: &DefaultsKey,
    new: &Defaults,
) -> Option<Watch> {
    if inherits.schedule {
        if old.schedule != new.schedule.expression || old.timezone != new.timezone {
            watch.schedule = new.schedule.clone();
        }
    } else if old.timezone != new.timezone {
        watch.schedule = Schedule::parse(&watch.schedule.expression, new.timezone)
            .and_then(fires_again)
            .ok()?;
    }
    if inherits.robots {
        watch.robots = new.robots;
    }
    Some(watch)
}

pub(super) fn validate_defaults(
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
        Some(expression) => Schedule::parse(expression.get_ref(), timezone)
            .and_then(fires_again)
            .unwrap_or_else(|reason| {
                errors.push(file.error(
                    Some(&expression.span()),
                    "defaults.schedule",
                    format!("cron expression `{}` {reason}", expression.get_ref()),
                ));
                fallback()
            }),
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

/// A schedule whose fire times are all in the past (a year that is over)
/// would never run the watch again.
fn fires_again(schedule: Schedule) -> Result<Schedule, String> {
    if schedule.upcoming(chrono::Utc::now(), 1).is_empty() {
        Err("never fires again (every time it names is past)".to_owned())
    } else {
        Ok(schedule)
    }
}

pub(super) fn validate_watches(
    file: &SourceFile,
    raw_watches: Vec<RawWatch>,
    defaults: &Defaults,
    watches: &mut Vec<Watch>,
    seen: &mut HashSet<String>,
    errors: &mut Vec<ConfigError>,
) {
    for raw in raw_watches {
        let name = raw.name.get_ref().clone();
        let field = |f: &str| format!("watch `{name}`: {f}");
        let mut ok = true;
        // A name is a path segment in the store, in feed and page URLs:
        // `.` and `..` would name another path.
        if name.is_empty()
            || name.chars().all(|c| c == '.')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            errors.push(file.error(
                Some(&raw.name.span()),
                format!("watch name `{}`", name.escape_debug()),
                "names may use only letters, digits, `.`, `_` and `-`, and may not be only dots",
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
        let title = match &raw.title {
            Some(title) => {
                let text = title
                    .get_ref()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                if text.is_empty() {
                    errors.push(file.error(
                        Some(&title.span()),
                        field("title"),
                        "is empty; write what readers call this page, or leave it out",
                    ));
                    ok = false;
                }
                Some(text)
            }
            None => None,
        };
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
            Some(expression) => match Schedule::parse(expression.get_ref(), defaults.timezone)
                .and_then(fires_again)
            {
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
        let mut allow_redirects_to = Vec::new();
        for origin in &raw.allow_redirects_to {
            match url::Url::parse(origin.get_ref()) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                    allow_redirects_to.push(parsed.origin().ascii_serialization());
                }
                _ => {
                    errors.push(file.error(
                        Some(&origin.span()),
                        field("allow_redirects_to"),
                        format!(
                            "`{}` is not an http(s) origin such as \"https://other.example:8443\"",
                            origin.get_ref()
                        ),
                    ));
                    ok = false;
                }
            }
        }
        if let (true, Some(url), Some(schedule), Some(rules)) = (ok, url, schedule, rules) {
            watches.push(Watch {
                name,
                title,
                url,
                schedule,
                tags: raw.tags,
                rules,
                facts,
                robots: raw.robots.unwrap_or(defaults.robots),
                allow_redirects_to,
            });
        }
    }
}

/// Reads an optional duration that must lie within `(min, max)` into
/// `target`, or records why it cannot, naming the field.
fn read_duration(
    file: &SourceFile,
    errors: &mut Vec<ConfigError>,
    value: &Option<Spanned<String>>,
    field: &str,
    (min, max): (Duration, Duration),
    target: &mut Duration,
) {
    if let Some(value) = value {
        match bounded_duration(value.get_ref(), min, max) {
            Ok(d) => *target = d,
            Err(message) => errors.push(file.error(Some(&value.span()), field, message)),
        }
    }
}
