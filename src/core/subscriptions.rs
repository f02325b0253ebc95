//! Subscriptions, as values: address validation, the CSV format admins
//! import and export, and which changes a subscriber gets.
//!
//! Pure: no I/O, no clock. The store keeps subscribers ([`Subscriber`]);
//! this module reads and writes them as text and decides whether a change
//! matches one.
//!
//! The CSV format is one subscriber per line:
//!
//! ```text
//! address,name,follows,kinds,cadence
//! ada@example.org,Ada Lovelace,tag:lancashire;lsc-ics,boundary;members,0 8 * * Mon@Europe/London
//! bob@example.org,,,,immediate
//! ```
//!
//! - `follows`: watch names and `tag:TAG`s, separated by `;`; empty follows
//!   every watch;
//! - `kinds`: kind names separated by `;` (or `,` inside quotes); empty means
//!   every kind but `minor`;
//! - `cadence`: `immediate` (the default when empty), or a cron expression
//!   with an optional `@Zone` (default `Europe/London`).
//!
//! The header line is optional; lines starting with `#` are comments. No
//! field may hold a line break, and a quoted field must be closed on its
//! line.
//!
//! Three more columns carry the consent record, so an export and
//! re-import cannot confirm anyone by accident: `confirmed` (`true` or
//! `false`), `consent_at` (RFC 3339) and `consent_source`. An import reads
//! them as a record of what the other store knew, never as consent: only
//! the admin can confirm imported people (`import --confirmed`).
//!
//! Exported cells that a spreadsheet would run as a formula (starting with
//! `=`, `+`, `-`, `@`, a tab or a carriage return) are written with a `'`
//! in front; the reader takes that `'` off again.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use email_address::{EmailAddress, Options};

use crate::core::classify::Kind;
use crate::core::schedule::{DEFAULT_TIMEZONE, Schedule};

/// How often a subscriber hears from tidings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    /// One briefing per change, as soon as it is seen.
    Immediate,
    /// One briefing gathering every change since the last, on a schedule.
    Digest {
        /// A cron expression as `config::Schedule::parse` reads it, e.g.
        /// `0 8 * * Mon`.
        cron: String,
        /// The zone the expression's times are in.
        timezone: chrono_tz::Tz,
    },
}

/// One person who receives briefings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The address, normalised by [`normalise_address`] when stored.
    pub address: String,
    /// How to greet them; may be empty.
    pub name: String,
    /// Watches followed by name. With `tags` empty too, every watch.
    pub watches: Vec<String>,
    /// Tags followed (a partnership and all its pages).
    pub tags: Vec<String>,
    /// The kinds of change wanted; empty means every kind but `minor`.
    pub kinds: Vec<Kind>,
    /// Immediate, or a digest.
    pub cadence: Cadence,
    /// Whether the address is confirmed (admin-added ones are).
    pub confirmed: bool,
    /// When consent was given, if recorded.
    pub consent_at: Option<DateTime<Utc>>,
    /// Where consent came from, e.g. `admin-cli` or `csv-import`.
    pub consent_source: Option<String>,
    /// When the subscriber was first stored.
    pub created: DateTime<Utc>,
}

/// An address that is never mailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// The address, lower-cased whole (suppressions ignore case).
    pub address: String,
    /// Why, in the admin's words (or a fixed phrase after `forget`).
    pub reason: String,
    /// When it was suppressed.
    pub at: DateTime<Utc>,
    /// Whether the person asked not to be mailed (an unsubscribe or a
    /// complaint), as opposed to an admin decision or a bounce. Only such
    /// entries survive [`Store::forget`].
    pub requested: bool,
}

/// The form an address is stored under: surrounding whitespace trimmed and
/// the domain lower-cased. The local part keeps its case, since RFC 5321
/// lets a server treat it as case-sensitive, though few do.
pub fn normalise_address(address: &str) -> String {
    let address = address.trim();
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
        None => address.to_owned(),
    }
}

/// The CSV header, also written first by [`to_csv`].
pub const CSV_HEADER: [&str; 8] = [
    "address",
    "name",
    "follows",
    "kinds",
    "cadence",
    "confirmed",
    "consent_at",
    "consent_source",
];

/// The longest address accepted (RFC 5321's limit on a forward path).
const MAX_ADDRESS: usize = 254;
/// The longest local part (RFC 5321 section 4.5.3.1.1).
const MAX_LOCAL: usize = 64;

/// Validates an email address strictly and returns it normalised (trimmed,
/// domain lower-cased).
///
/// Beyond RFC 5322's grammar (checked by the `email_address` crate), an
/// address must be one a stakeholder would really have: no display name, no
/// quoted local part, no IP-literal domain, ASCII only (internationalised
/// domains in their `xn--` form), a domain with a dot, and RFC 5321's length
/// limits. Rejecting the exotic forms costs nothing here and keeps every
/// SMTP server we hand mail to happy.
pub fn validate_address(text: &str) -> Result<String, String> {
    let address = normalise_address(text);
    if address.is_empty() {
        return Err("the address is empty".to_owned());
    }
    if !address.is_ascii() {
        return Err(format!(
            "`{address}` has non-ASCII characters; write an internationalised domain in its xn-- form"
        ));
    }
    if address.len() > MAX_ADDRESS {
        return Err(format!(
            "`{address}` is longer than {MAX_ADDRESS} characters"
        ));
    }
    let options = Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    EmailAddress::parse_with_options(&address, options)
        .map_err(|e| format!("`{address}` is not an email address: {e}"))?;
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| format!("`{address}` has no @"))?;
    if local.len() > MAX_LOCAL {
        return Err(format!(
            "`{address}`: the part before @ is longer than {MAX_LOCAL} characters"
        ));
    }
    let atom = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local
        .split('.')
        .any(|part| part.is_empty() || !part.chars().all(atom))
    {
        return Err(format!(
            "`{address}`: the part before @ may hold letters, digits and !#$%&'*+-/=?^_`{{|}}~, \
             with single dots between them"
        ));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !domain.split('.').all(label_ok) {
        return Err(format!(
            "`{address}`: the domain must be dot-separated labels of letters, digits and inner hyphens"
        ));
    }
    if domain
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("`{address}`: the domain ends in a number"));
    }
    Ok(address)
}

/// Whether a watch name is well formed, by the config's rule.
fn is_watch_name(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().all(|c| c == '.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Parses `follows`: watch names and `tag:TAG`s separated by `;` (commas are
/// accepted too, for the command line). Returns (watches, tags).
pub fn parse_follows(text: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let mut watches = Vec::new();
    let mut tags = Vec::new();
    for item in text
        .split([';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if let Some(tag) = item.strip_prefix("tag:") {
            let tag = tag.trim();
            if tag.is_empty() || tag.chars().any(char::is_control) {
                return Err(format!("`{item}` names no tag"));
            }
            push_unique(&mut tags, tag);
        } else if is_watch_name(item) {
            push_unique(&mut watches, item);
        } else {
            return Err(format!(
                "`{item}` is not a watch name (letters, digits, `.`, `_`, `-`) or tag:TAG"
            ));
        }
    }
    Ok((watches, tags))
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|existing| existing == item) {
        list.push(item.to_owned());
    }
}

/// Parses kind names separated by `;` or `,`. Empty text is an empty list
/// (every kind but `minor`).
pub fn parse_kinds(text: &str) -> Result<Vec<Kind>, String> {
    let mut kinds = Vec::new();
    for name in text
        .split([';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let kind = Kind::parse(&name.to_ascii_lowercase()).ok_or_else(|| {
            format!(
                "`{name}` is not a kind; use {}",
                Kind::ALL.map(Kind::as_str).join(", ")
            )
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds.sort();
    Ok(kinds)
}

/// Parses a cadence: `immediate` (or empty), or `CRON[@Zone]` such as
/// `0 8 * * Mon@Europe/London`. The zone defaults to Europe/London.
pub fn parse_cadence(text: &str) -> Result<Cadence, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("immediate") {
        return Ok(Cadence::Immediate);
    }
    let (expression, timezone) = match text.rsplit_once('@') {
        Some((expression, zone)) => {
            let zone = zone.trim();
            let timezone: chrono_tz::Tz = zone
                .parse()
                .map_err(|_| format!("`{zone}` is not an IANA time zone such as Europe/London"))?;
            (expression.trim(), timezone)
        }
        None => (text, DEFAULT_TIMEZONE),
    };
    Schedule::parse(expression, timezone).map_err(|e| {
        format!("cadence `{expression}` is not `immediate` or a cron expression: {e}")
    })?;
    Ok(Cadence::Digest {
        cron: expression.split_whitespace().collect::<Vec<_>>().join(" "),
        timezone,
    })
}

/// A cadence as [`parse_cadence`] reads it.
pub fn format_cadence(cadence: &Cadence) -> String {
    match cadence {
        Cadence::Immediate => "immediate".to_owned(),
        Cadence::Digest { cron, timezone } => format!("{cron}@{}", timezone.name()),
    }
}

/// A subscriber's follows as [`parse_follows`] reads them.
pub fn format_follows(subscriber: &Subscriber) -> String {
    subscriber
        .watches
        .iter()
        .cloned()
        .chain(subscriber.tags.iter().map(|tag| format!("tag:{tag}")))
        .collect::<Vec<_>>()
        .join(";")
}

/// Kinds as [`parse_kinds`] reads them.
pub fn format_kinds(kinds: &[Kind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(";")
}

/// One subscriber read from a CSV line, before consent and times are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    /// The 1-based line it came from.
    pub line: u64,
    /// The validated, normalised address.
    pub address: String,
    /// The name; may be empty.
    pub name: String,
    /// Watches followed.
    pub watches: Vec<String>,
    /// Tags followed.
    pub tags: Vec<String>,
    /// Kinds wanted.
    pub kinds: Vec<Kind>,
    /// The cadence.
    pub cadence: Cadence,
    /// Whether the exporting store had the address confirmed, if said.
    pub confirmed: Option<bool>,
    /// When consent was given there, if said.
    pub consent_at: Option<DateTime<Utc>>,
    /// Where consent came from there, if said.
    pub consent_source: Option<String>,
}

/// A CSV line at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// The 1-based line.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Reads a subscriber CSV. Every bad line is reported, each with its line
/// number, so an admin fixes the file in one go; nothing is returned unless
/// every line is good.
pub fn parse_csv(text: &str) -> Result<Vec<CsvRow>, Vec<CsvError>> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut first = true;
    // Line by line, each parsed as one CSV record: no field of this format
    // may hold a line break, and it keeps line numbers exact (the csv
    // crate's own count skips comment lines).
    for (index, raw) in text.lines().enumerate() {
        let line = index as u64 + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if has_unterminated_quote(raw) {
            errors.push(CsvError {
                line,
                message: "a quoted field is not closed on this line (a field that starts with \" must end with \")".to_owned(),
            });
            first = false;
            continue;
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(raw.as_bytes());
        let record = match reader.records().next() {
            Some(Ok(record)) => record,
            Some(Err(e)) => {
                errors.push(CsvError {
                    line,
                    message: format!("not valid CSV: {e}"),
                });
                continue;
            }
            None => continue,
        };
        let header = first
            && record
                .get(0)
                .is_some_and(|f| f.eq_ignore_ascii_case("address"));
        first = false;
        if header {
            continue;
        }
        match parse_row(&record, line) {
            Ok(row) => {
                if let Some(first) = seen.insert(row.address.to_lowercase(), line) {
                    errors.push(CsvError {
                        line,
                        message: format!("{} is already on line {first}", row.address),
                    });
                } else {
                    rows.push(row);
                }
            }
            Err(message) => errors.push(CsvError { line, message }),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

fn parse_row(record: &csv::StringRecord, line: u64) -> Result<CsvRow, String> {
    if record.len() > CSV_HEADER.len() {
        return Err(format!(
            "has {} fields; expected at most {} ({}); quote a name with commas in it",
            record.len(),
            CSV_HEADER.len(),
            CSV_HEADER.join(",")
        ));
    }
    let field = |i: usize| unneutralise(record.get(i).unwrap_or(""));
    let address = validate_address(field(0))?;
    let name = field(1);
    if name.chars().any(char::is_control) {
        return Err("the name has control characters".to_owned());
    }
    let (watches, tags) = parse_follows(field(2)).map_err(|e| format!("follows: {e}"))?;
    let kinds = parse_kinds(field(3)).map_err(|e| format!("kinds: {e}"))?;
    let cadence = parse_cadence(field(4)).map_err(|e| format!("cadence: {e}"))?;
    let confirmed = match field(5).to_ascii_lowercase().as_str() {
        "" => None,
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        other => return Err(format!("confirmed: `{other}` is not true or false")),
    };
    let consent_at = match field(6) {
        "" => None,
        text => Some(
            DateTime::parse_from_rfc3339(text)
                .map_err(|e| format!("consent_at: `{text}` is not an RFC 3339 time ({e})"))?
                .with_timezone(&Utc),
        ),
    };
    let consent_source = field(7);
    if consent_source.chars().any(char::is_control) {
        return Err("consent_source has control characters".to_owned());
    }
    Ok(CsvRow {
        line,
        address,
        name: name.to_owned(),
        watches,
        tags,
        kinds,
        cadence,
        confirmed,
        consent_at,
        consent_source: (!consent_source.is_empty()).then(|| consent_source.to_owned()),
    })
}

/// Whether a line ends inside a quoted field. The csv crate would take the
/// end of the line as the end of the field; a line cut short must not be
/// read as if it were whole.
fn has_unterminated_quote(line: &str) -> bool {
    let mut in_quotes = false;
    let mut at_field_start = true;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                } else {
                    in_quotes = false;
                }
            }
            continue;
        }
        match c {
            '"' if at_field_start => in_quotes = true,
            ',' => {
                at_field_start = true;
                continue;
            }
            ' ' | '\t' if at_field_start => continue,
            _ => {}
        }
        at_field_start = false;
    }
    in_quotes
}

/// Characters that make a spreadsheet treat a cell as a formula.
fn starts_like_formula(text: &str) -> bool {
    text.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// Whether a cell (leading spaces aside) is one [`neutralise`] protects: a
/// would-be formula, or text that already starts with the protecting `'`.
fn protected(text: &str) -> bool {
    starts_like_formula(text)
        || text.strip_prefix('\'').is_some_and(|rest| {
            let rest = rest.trim_start();
            starts_like_formula(rest) || rest.starts_with('\'')
        })
}

/// A cell as exported: a would-be formula gets a `'` in front, which
/// spreadsheets show as text.
fn neutralise(text: &str) -> std::borrow::Cow<'_, str> {
    if starts_like_formula(text) || protected(text.trim_start()) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A cell as imported (already trimmed): the `'` that [`neutralise`] added
/// is taken off.
fn unneutralise(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if starts_like_formula(rest) => rest,
        Some(rest) if protected(rest.trim_start()) => rest.trim(),
        _ => text,
    }
}

/// Writes subscribers as CSV, header first, in a form [`parse_csv`] reads
/// back, with each one's confirmation state and consent record, and every
/// cell a spreadsheet would run as a formula neutralised.
pub fn to_csv(subscribers: &[Subscriber]) -> String {
    let mut text = csv_header();
    text.push_str(&csv_rows(subscribers));
    text
}

/// The header line of [`to_csv`].
pub fn csv_header() -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = writer.write_record(CSV_HEADER);
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The rows of [`to_csv`] without the header, so that a long list can be
/// written a page at a time.
pub fn csv_rows(subscribers: &[Subscriber]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for subscriber in subscribers {
        let cells = [
            subscriber.address.clone(),
            subscriber.name.clone(),
            format_follows(subscriber),
            format_kinds(&subscriber.kinds),
            format_cadence(&subscriber.cadence),
            subscriber.confirmed.to_string(),
            subscriber
                .consent_at
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
            subscriber.consent_source.clone().unwrap_or_default(),
        ];
        let _ = writer.write_record(cells.iter().map(|cell| neutralise(cell).into_owned()));
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Whether a subscriber follows a watch: by name, by one of its tags, or
/// because they follow nothing in particular (which means everything).
pub fn follows(subscriber: &Subscriber, watch_name: &str, watch_tags: &[String]) -> bool {
    (subscriber.watches.is_empty() && subscriber.tags.is_empty())
        || subscriber.watches.iter().any(|w| w == watch_name)
        || subscriber.tags.iter().any(|t| watch_tags.contains(t))
}

/// Whether a subscriber wants a change of this kind.
///
/// `minor` is never sent immediately: a typo fix is not worth an email of
/// its own. It reaches digest subscribers who list it; an empty list means
/// every kind but `minor`.
pub fn wants_kind(subscriber: &Subscriber, kind: Kind) -> bool {
    if kind == Kind::Minor {
        return matches!(subscriber.cadence, Cadence::Digest { .. })
            && subscriber.kinds.contains(&Kind::Minor);
    }
    subscriber.kinds.is_empty() || subscriber.kinds.contains(&kind)
}

/// Whether a change of these kinds on this watch goes to this subscriber.
pub fn matches(
    subscriber: &Subscriber,
    watch_name: &str,
    watch_tags: &[String],
    kinds: &[Kind],
) -> bool {
    follows(subscriber, watch_name, watch_tags) && kinds.iter().any(|&k| wants_kind(subscriber, k))
}

/// Why a subscriber gets a change, in a sentence for the briefing's "why
/// you get this" line; `None` when it does not match.
pub fn why(
    subscriber: &Subscriber,
    watch_name: &str,
    watch_tags: &[String],
    kinds: &[Kind],
) -> Option<String> {
    why_titled(
        subscriber,
        watch_name,
        watch_tags,
        kinds,
        &crate::core::titles::Titles::default(),
    )
}

/// [`why`], naming the page and the partnership by their titles.
pub fn why_titled(
    subscriber: &Subscriber,
    watch_name: &str,
    watch_tags: &[String],
    kinds: &[Kind],
    titles: &crate::core::titles::Titles,
) -> Option<String> {
    if !matches(subscriber, watch_name, watch_tags, kinds) {
        return None;
    }
    let what = if subscriber.watches.iter().any(|w| w == watch_name) {
        format!("you follow the page {}", titles.watch(watch_name))
    } else if let Some(tag) = subscriber.tags.iter().find(|t| watch_tags.contains(t)) {
        format!("you follow {}", titles.tag(tag))
    } else {
        "you follow every page tidings watches".to_owned()
    };
    let which = if subscriber.kinds.is_empty() {
        "all but minor changes".to_owned()
    } else {
        format!(
            "{} changes",
            subscriber
                .kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Some(format!(
        "You get this because {what} and asked for {which}."
    ))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn subscriber(watches: &[&str], tags: &[&str], kinds: &[Kind], cadence: Cadence) -> Subscriber {
        Subscriber {
            address: "ada@example.org".to_owned(),
            name: "Ada".to_owned(),
            watches: watches.iter().map(|s| (*s).to_owned()).collect(),
            tags: tags.iter().map(|s| (*s).to_owned()).collect(),
            kinds: kinds.to_vec(),
            cadence,
            confirmed: true,
            consent_at: None,
            consent_source: None,
            created: Utc::now(),
        }
    }

    fn weekly() -> Cadence {
        parse_cadence("0 8 * * Mon@Europe/London").expect("cadence")
    }

    #[test]
    fn good_addresses_are_normalised() {
        assert_eq!(
            validate_address(" Ada.Lovelace@NHS.net ").unwrap(),
            "Ada.Lovelace@nhs.net"
        );
        assert_eq!(
            validate_address("a+tag@sub.example.co.uk").unwrap(),
            "a+tag@sub.example.co.uk"
        );
        assert_eq!(
            validate_address("o'brien@xn--bcher-kva.example").unwrap(),
            "o'brien@xn--bcher-kva.example"
        );
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@localhost",
            "ada@@example.org",
            "ada..l@example.org",
            ".ada@example.org",
            "ada.@example.org",
            "\"ada l\"@example.org",
            "ada@[192.168.0.1]",
            "Ada <ada@example.org>",
            "ada@example.org\r\nBcc: x@example.org",
            "ada@-example.org",
            "ada@example-.org",
            "ada@exa_mple.org",
            "ada@1.2.3.4",
            "adä@example.org",
            "ada@bücher.example",
            "ada lovelace@example.org",
        ] {
            assert!(validate_address(bad).is_err(), "{bad:?} was accepted");
        }
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert!(validate_address(&long_local).is_err());
    }

    #[test]
    fn follows_split_watches_and_tags() {
        let (watches, tags) =
            parse_follows("lsc-ics; tag:lancashire ;tag:cumbria;lsc-ics").unwrap();
        assert_eq!(watches, ["lsc-ics"]);
        assert_eq!(tags, ["lancashire", "cumbria"]);
        assert!(parse_follows("no spaces allowed").is_err());
        assert!(parse_follows("tag:").is_err());
        assert_eq!(parse_follows("").unwrap(), (vec![], vec![]));
    }

    #[test]
    fn kinds_and_cadences_parse_and_print_back() {
        assert_eq!(
            parse_kinds("members, Boundary").unwrap(),
            [Kind::Boundary, Kind::Members]
        );
        assert!(
            parse_kinds("boundaries")
                .unwrap_err()
                .contains("boundary, members")
        );
        assert_eq!(parse_cadence("").unwrap(), Cadence::Immediate);
        assert_eq!(parse_cadence("Immediate").unwrap(), Cadence::Immediate);
        let weekly = parse_cadence("0  8 * * Mon").unwrap();
        assert_eq!(format_cadence(&weekly), "0 8 * * Mon@Europe/London");
        assert_eq!(parse_cadence(&format_cadence(&weekly)).unwrap(), weekly);
        assert!(parse_cadence("0 8 * * Mon@Mars/Olympus").is_err());
        assert!(parse_cadence("weekly").is_err());
    }

    #[test]
    fn csv_round_trips() {
        let text = "address,name,follows,kinds,cadence\n\
                    # a comment\n\
                    ada@Example.org,\"Lovelace, Ada\",tag:lancashire;lsc-ics,boundary;members,0 8 * * Mon@Europe/London\n\
                    \n\
                    bob@example.org\n";
        let rows = parse_csv(text).expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 3);
        assert_eq!(rows[0].address, "ada@example.org");
        assert_eq!(rows[0].name, "Lovelace, Ada");
        assert_eq!(rows[0].tags, ["lancashire"]);
        assert_eq!(rows[1].cadence, Cadence::Immediate);
        assert_eq!(rows[1].line, 5);

        let subscribers: Vec<Subscriber> = rows
            .iter()
            .map(|row| {
                let mut s = subscriber(&[], &[], &row.kinds, row.cadence.clone());
                s.address.clone_from(&row.address);
                s.name.clone_from(&row.name);
                s.watches.clone_from(&row.watches);
                s.tags.clone_from(&row.tags);
                s
            })
            .collect();
        let exported = to_csv(&subscribers);
        assert!(
            exported.starts_with(
                "address,name,follows,kinds,cadence,confirmed,consent_at,consent_source\n"
            ),
            "{exported}"
        );
        let again = parse_csv(&exported).expect("reads its own export");
        assert_eq!(
            again
                .iter()
                .map(|r| (&r.address, &r.name, &r.kinds, &r.cadence))
                .collect::<Vec<_>>(),
            rows.iter()
                .map(|r| (&r.address, &r.name, &r.kinds, &r.cadence))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn export_carries_consent_and_neutralises_formulas() {
        let mut s = subscriber(&["-x"], &[], &[], Cadence::Immediate);
        s.name = "=HYPERLINK(\"http://evil\")".to_owned();
        s.confirmed = false;
        s.consent_source = Some("web form".to_owned());
        let exported = to_csv(&[s]);
        let row = exported.lines().nth(1).expect("a row");
        assert!(
            row.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
            "{row}"
        );
        assert!(row.contains(",'-x,"), "{row}");
        assert!(row.contains(",false,"), "{row}");
        assert!(row.ends_with(",web form"), "{row}");
        for cell in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "'=already"] {
            assert!(neutralise(cell).starts_with('\''), "{cell:?}");
            assert_eq!(unneutralise(&neutralise(cell)), cell, "{cell:?}");
        }
        assert_eq!(neutralise("Ada"), "Ada");
        let rows = parse_csv(&exported).expect("reads its own export");
        assert_eq!(rows[0].name, "=HYPERLINK(\"http://evil\")");
        assert_eq!(rows[0].watches, ["-x"]);
        assert_eq!(rows[0].confirmed, Some(false));
        assert_eq!(rows[0].consent_source.as_deref(), Some("web form"));
    }

    #[test]
    fn unterminated_quotes_are_refused_with_their_line() {
        let text = "ada@example.org,\"Ada\nbob@example.org,\"Bob \"\"B\"\" Jones\"\ncy@example.org,O\"Brien\n";
        let errors = parse_csv(text).expect_err("unterminated");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, 1);
        assert!(errors[0].message.contains("not closed"), "{}", errors[0]);
    }

    #[test]
    fn csv_errors_name_every_bad_line() {
        let text = "ada@example.org,Ada\nnot-an-address,Bob\ncy@example.org,Cy,,sideways\nada@EXAMPLE.org\nd@example.org,D,,,,extra\n";
        let errors = parse_csv(text).expect_err("bad lines");
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert!(
            errors[1].to_string().starts_with("line 3: kinds:"),
            "{}",
            errors[1]
        );
        assert!(
            errors[2].message.contains("already on line 1"),
            "{}",
            errors[2]
        );
    }

    #[test]
    fn matching_follows_watches_tags_and_kinds() {
        let tags = vec!["lancashire".to_owned(), "ics".to_owned()];
        let boundary = [Kind::Boundary];
        let by_tag = subscriber(&[], &["lancashire"], &[], Cadence::Immediate);
        assert!(matches(&by_tag, "lsc-ics", &tags, &boundary));
        assert!(!matches(
            &by_tag,
            "cumbria",
            &["cumbria".to_owned()],
            &boundary
        ));
        let by_watch = subscriber(&["lsc-ics"], &[], &[Kind::Members], Cadence::Immediate);
        assert!(!matches(&by_watch, "lsc-ics", &tags, &boundary));
        assert!(matches(
            &by_watch,
            "lsc-ics",
            &tags,
            &[Kind::Narrative, Kind::Members]
        ));
        let everything = subscriber(&[], &[], &[], Cadence::Immediate);
        assert!(matches(&everything, "any", &[], &[Kind::Leaders]));
        assert!(
            why(&by_tag, "lsc-ics", &tags, &boundary)
                .unwrap()
                .contains("you follow lancashire")
        );
        assert!(why(&by_watch, "lsc-ics", &tags, &boundary).is_none());
    }

    #[test]
    fn minor_changes_only_reach_digests_that_ask() {
        let minor = [Kind::Minor];
        let immediate_all =
            subscriber(&[], &[], &[Kind::Minor, Kind::Boundary], Cadence::Immediate);
        assert!(!matches(&immediate_all, "w", &[], &minor));
        let digest_default = subscriber(&[], &[], &[], weekly());
        assert!(!matches(&digest_default, "w", &[], &minor));
        let digest_minor = subscriber(&[], &[], &[Kind::Minor], weekly());
        assert!(matches(&digest_minor, "w", &[], &minor));
        assert!(matches(
            &immediate_all,
            "w",
            &[],
            &[Kind::Minor, Kind::Boundary]
        ));
    }
}
