//! Briefings: the email a subscriber receives, composed from changes.
//!
//! Pure: values in, a [`Briefing`] (subject, text part, HTML part) out. No
//! I/O except [`Templates::with_overrides`], which reads an admin's template
//! directory once at start-up.
//!
//! A briefing is grouped by partnership (a watch's first tag), then by page.
//! Each change shows its kind and one-line summary, the changed words marked
//! (`{+added+}` and `[-removed-]` in text; a green underline and a red
//! strike-through in HTML), the page link, when it was seen in UK time, and
//! why this subscriber gets it.
//!
//! Templates are minijinja, embedded from `src/brief/templates/`. The HTML
//! template is rendered with autoescape on (minijinja turns it on for
//! `.html` names), so page text can never inject markup; styles are inline
//! because Outlook and Gmail ignore `<style>` blocks. Subjects are built in
//! code, not templates, so that the CR/LF stripping and the length bound
//! cannot be undone by an override.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use minijinja::Environment;
use serde::Serialize;

use crate::core::classify::Kind;
use crate::core::diff::{BlockChange, ChangeKind, WordOp};
use crate::core::subscriptions::{Cadence, Subscriber};

/// The text template's name, in the binary and in an override directory.
pub const TEXT_TEMPLATE: &str = "briefing.txt";
/// The HTML template's name.
pub const HTML_TEMPLATE: &str = "briefing.html";
/// The longest subject, in characters. Long subjects are cut by mail
/// clients anyway; a bound keeps a page's long heading from making a
/// header line that some servers fold badly.
pub const MAX_SUBJECT_CHARS: usize = 120;
/// Words of unchanged text kept on each side of a change in the evidence.
const CONTEXT_WORDS: usize = 12;
/// The zone briefings show times in.
const UK: chrono_tz::Tz = chrono_tz::Europe::London;

const EMBEDDED_TEXT: &str = include_str!("brief/templates/briefing.txt");
const EMBEDDED_HTML: &str = include_str!("brief/templates/briefing.html");

/// A template could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum BriefError {
    /// An override file could not be read.
    #[error("cannot read template {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A template has a syntax error or failed to render.
    #[error("template {name}: {message}")]
    Template {
        /// The template's name (or file).
        name: String,
        /// minijinja's message, with the line.
        message: String,
    },
}

/// One change as a briefing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BriefChange {
    /// The watch's name.
    pub watch: String,
    /// What readers call the page (its `title`, else its name).
    pub title: String,
    /// The page's URL.
    pub url: String,
    /// The titles of the watch's tags; the first is its partnership.
    pub tags: Vec<String>,
    /// When the change was seen.
    pub seen_at: DateTime<Utc>,
    /// The kind of change.
    pub kind: Kind,
    /// The one-line summary from `classify`.
    pub summary: String,
    /// The changed blocks that show it.
    pub evidence: Vec<BlockChange>,
    /// Why this subscriber gets it (see `subscriptions::why`).
    pub why: String,
    /// The change's own page on the web endpoint (`/changes/{id}`), when
    /// one is configured.
    pub change_url: Option<String>,
}

/// A composed email, ready for `mail` to wrap in headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Briefing {
    /// One line, at most [`MAX_SUBJECT_CHARS`] characters.
    pub subject: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part.
    pub html: String,
}

/// The loaded templates: the embedded ones, or an admin's overrides.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::embedded()
    }
}

impl Templates {
    /// The templates built into the binary.
    pub fn embedded() -> Self {
        let mut env = environment();
        // The embedded templates are tested; they always compile.
        env.add_template(TEXT_TEMPLATE, EMBEDDED_TEXT)
            .expect("embedded text template compiles");
        env.add_template(HTML_TEMPLATE, EMBEDDED_HTML)
            .expect("embedded HTML template compiles");
        Self { env }
    }

    /// The embedded templates, with `briefing.txt` and/or `briefing.html`
    /// from `dir` in their place when present. A missing directory is not
    /// an error (it means no overrides); a template that does not compile
    /// is, so a typo is found at start-up rather than at the first send.
    pub fn with_overrides(dir: &Path) -> Result<Self, BriefError> {
        let mut templates = Self::embedded();
        for name in [TEXT_TEMPLATE, HTML_TEMPLATE] {
            let path = dir.join(name);
            let source = match std::fs::read_to_string(&path) {
                Ok(source) => source,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(BriefError::Read { path, source }),
            };
            templates
                .env
                .add_template_owned(name, source)
                .map_err(|e| BriefError::Template {
                    name: path.display().to_string(),
                    message: describe(&e),
                })?;
        }
        Ok(templates)
    }

    /// Composes one briefing for a subscriber from the changes they are to
    /// get, or `None` when there are none: no change, no mail.
    /// `unsubscribe_url` goes in the footer when given.
    pub fn compose(
        &self,
        subscriber: &Subscriber,
        changes: &[BriefChange],
        unsubscribe_url: Option<&str>,
    ) -> Result<Option<Briefing>, BriefError> {
        let footer = Footer {
            unsubscribe_url,
            ..Footer::default()
        };
        self.compose_with(subscriber, changes, &footer)
    }

    /// [`Templates::compose`] with every footer link.
    pub fn compose_with(
        &self,
        subscriber: &Subscriber,
        changes: &[BriefChange],
        footer: &Footer<'_>,
    ) -> Result<Option<Briefing>, BriefError> {
        if changes.is_empty() {
            return Ok(None);
        }
        let digest = matches!(subscriber.cadence, Cadence::Digest { .. });
        let subject = subject(changes, digest);
        let context = Context {
            subject: &subject,
            name: subscriber.name.trim(),
            digest,
            minor_only: changes.iter().all(|c| c.kind == Kind::Minor),
            count: changes.len(),
            partnerships: group(changes),
            unsubscribe_url: footer.unsubscribe_url,
            preferences_url: footer.preferences_url,
            operator: footer.operator,
            operator_contact: footer.operator_contact,
            privacy_url: footer.privacy_url,
            replies_handled: footer.replies_handled,
        };
        let render = |name: &str| {
            self.env
                .get_template(name)
                .and_then(|template| template.render(&context))
                .map_err(|e| BriefError::Template {
                    name: name.to_owned(),
                    message: describe(&e),
                })
        };
        Ok(Some(Briefing {
            text: tidy_text(&render(TEXT_TEMPLATE)?),
            html: render(HTML_TEMPLATE)?,
            subject,
        }))
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // Autoescape is minijinja's default for .html names; said explicitly so
    // that no later change to the names can turn it off unnoticed.
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env
}

fn describe(error: &minijinja::Error) -> String {
    match error.line() {
        Some(line) => format!(
            "line {line}: {}",
            error.detail().unwrap_or(&error.to_string())
        ),
        None => error.to_string(),
    }
}

/// Collapses runs of blank lines the template's loops leave behind.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_start_matches('\n').to_owned()
}

/// The subject line: what happened, where, in one sanitised line.
pub fn subject(changes: &[BriefChange], digest: bool) -> String {
    let mut partnerships: Vec<&str> = Vec::new();
    for change in changes {
        let name = partnership(change);
        if !partnerships.contains(&name) {
            partnerships.push(name);
        }
    }
    let n = changes.len();
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    let text = if digest {
        if changes.iter().all(|c| c.kind == Kind::Minor) {
            format!(
                "Digest: minor changes only ({}) – {}",
                plural(n, "change"),
                partnerships.join(", ")
            )
        } else {
            format!(
                "Digest: {} across {}",
                plural(n, "change"),
                plural(partnerships.len(), "partnership")
            )
        }
    } else {
        // The most important change leads.
        let lead = changes.iter().min_by_key(|c| c.kind).unwrap_or(&changes[0]);
        let more = if n > 1 {
            format!(" (+{} more)", n - 1)
        } else {
            String::new()
        };
        format!("{}: {}{more}", partnership(lead), lead.summary)
    };
    sanitise_subject(&format!("[tidings] {text}"))
}

/// One line, no control characters, runs of whitespace collapsed, at most
/// [`MAX_SUBJECT_CHARS`] characters (cut on a word where possible, with an
/// ellipsis). Page text reaches subjects through summaries, so a CR/LF in a
/// page can never become a header.
pub fn sanitise_subject(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = one_line.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.chars().count() <= MAX_SUBJECT_CHARS {
        return joined;
    }
    let cut: String = joined.chars().take(MAX_SUBJECT_CHARS - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(space) if space > MAX_SUBJECT_CHARS / 2 => &cut[..space],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end())
}

fn partnership(change: &BriefChange) -> &str {
    change.tags.first().map_or("Other pages", String::as_str)
}

/// Changes for a sample briefing (`tidings send-test`): a boundary and a
/// members change on a made-up partnership page, built as the pipeline
/// builds them, by diffing and classifying two block lists.
pub fn sample_changes(seen_at: DateTime<Utc>) -> Vec<BriefChange> {
    use crate::core::model::{Block, BlockKind};
    let heading = Block::new(BlockKind::Heading { level: 1 }, "About our partnership");
    let old = vec![
        heading.clone(),
        Block::new(
            BlockKind::Paragraph,
            "Our integrated care system covers Blackburn with Darwen, Blackpool, Lancashire and Westmorland and Furness.",
        ),
        Block::new(BlockKind::ListItem, "Lancashire County Council"),
    ];
    let new = vec![
        heading,
        Block::new(
            BlockKind::Paragraph,
            "Our integrated care system covers Blackburn with Darwen, Blackpool and Lancashire.",
        ),
        Block::new(BlockKind::ListItem, "Lancashire County Council"),
        Block::new(BlockKind::ListItem, "Blackpool Council"),
    ];
    let text_diff = crate::core::diff::diff(&old, &new, &crate::core::diff::DiffOptions::default());
    let fact_changes = crate::core::facts::fact_changes(&old, &new, &[]);
    crate::core::classify::classify_changes(&text_diff, &fact_changes)
        .changes
        .into_iter()
        .map(|change| BriefChange {
            watch: "sample-page".to_owned(),
            title: "About the sample partnership".to_owned(),
            url: "https://example.org/about-us".to_owned(),
            tags: vec!["Sample partnership".to_owned()],
            seen_at,
            kind: change.kind,
            summary: change.summary,
            evidence: change.evidence,
            why: "You get this because you asked for a test briefing.".to_owned(),
            change_url: None,
        })
        .collect()
}

#[derive(Serialize)]
struct Context<'a> {
    subject: &'a str,
    name: &'a str,
    digest: bool,
    minor_only: bool,
    count: usize,
    partnerships: Vec<PartnershipContext>,
    unsubscribe_url: Option<&'a str>,
    preferences_url: Option<&'a str>,
    operator: Option<&'a str>,
    operator_contact: Option<&'a str>,
    privacy_url: Option<&'a str>,
    replies_handled: bool,
}

/// The foot of a briefing: links and who sends it, each shown when known.
#[derive(Debug, Clone, Copy, Default)]
pub struct Footer<'a> {
    /// Where to unsubscribe.
    pub unsubscribe_url: Option<&'a str>,
    /// Where to change what one gets.
    pub preferences_url: Option<&'a str>,
    /// Who runs the service (`[web.operator] name`).
    pub operator: Option<&'a str>,
    /// How to reach them (`[web.operator] contact`).
    pub operator_contact: Option<&'a str>,
    /// The privacy notice.
    pub privacy_url: Option<&'a str>,
    /// Whether replies are read and acted on (`[mail] replies_handled`):
    /// only then does the footer invite a reply to stop.
    pub replies_handled: bool,
}

#[derive(Serialize)]
struct PartnershipContext {
    name: String,
    pages: Vec<PageContext>,
}

#[derive(Serialize)]
struct PageContext {
    watch: String,
    title: String,
    url: String,
    changes: Vec<ChangeContext>,
}

#[derive(Serialize)]
struct ChangeContext {
    kind: &'static str,
    colour: &'static str,
    summary: String,
    seen_at: String,
    why: String,
    change_url: Option<String>,
    evidence: Vec<EvidenceContext>,
}

#[derive(Serialize)]
struct EvidenceContext {
    section: Option<String>,
    change: &'static str,
    spans: Vec<SpanContext>,
}

#[derive(Serialize)]
struct SpanContext {
    op: &'static str,
    text: String,
}

/// Partnerships in title order (with untagged pages last), pages in title
/// order, changes by time and then importance.
fn group(changes: &[BriefChange]) -> Vec<PartnershipContext> {
    // Partnership (untagged last, then title) → page (title, name) → changes.
    type Pages<'a> = BTreeMap<(&'a str, &'a str), Vec<&'a BriefChange>>;
    let mut by_partnership: BTreeMap<(bool, &str), Pages<'_>> = BTreeMap::new();
    for change in changes {
        by_partnership
            .entry((change.tags.is_empty(), partnership(change)))
            .or_default()
            .entry((change.title.as_str(), change.watch.as_str()))
            .or_default()
            .push(change);
    }
    by_partnership
        .into_iter()
        .map(|((_, name), pages)| PartnershipContext {
            name: name.to_owned(),
            pages: pages
                .into_values()
                .map(|mut changes| {
                    changes.sort_by_key(|c| (c.seen_at, c.kind));
                    PageContext {
                        watch: changes[0].watch.clone(),
                        title: changes[0].title.clone(),
                        url: changes[0].url.clone(),
                        changes: changes.into_iter().map(change_context).collect(),
                    }
                })
                .collect(),
        })
        .collect()
}

fn change_context(change: &BriefChange) -> ChangeContext {
    ChangeContext {
        kind: change.kind.as_str(),
        colour: match change.kind {
            Kind::Boundary => "#d4351c",
            Kind::Members => "#005eb8",
            Kind::Leaders => "#4c2c92",
            Kind::Narrative => "#00703c",
            Kind::Minor => "#505a5f",
        },
        summary: without_kind(&one_line(&change.summary), change.kind),
        seen_at: uk_time(change.seen_at),
        why: one_line(&change.why),
        change_url: change.change_url.clone(),
        evidence: change.evidence.iter().map(evidence_context).collect(),
    }
}

/// A time as UK readers expect it: "Mon 3 Mar 2025, 09:15 GMT" (or BST).
pub fn uk_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&UK)
        .format("%a %-d %b %Y, %H:%M %Z")
        .to_string()
}

/// A summary without the "Boundary: " that `classify` starts it with: the
/// templates show the kind on its own.
fn without_kind(summary: &str, kind: Kind) -> String {
    let name = kind.as_str();
    let mut prefix = name[..1].to_ascii_uppercase();
    prefix.push_str(&name[1..]);
    prefix.push_str(": ");
    summary.strip_prefix(&prefix).unwrap_or(summary).to_owned()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn evidence_context(block: &BlockChange) -> EvidenceContext {
    let last = block.words.len().saturating_sub(1);
    let spans = block
        .words
        .iter()
        .enumerate()
        .map(|(i, span)| SpanContext {
            op: match span.op {
                WordOp::Equal => "equal",
                WordOp::Insert => "insert",
                WordOp::Delete => "delete",
            },
            text: match span.op {
                WordOp::Equal => trim_context(&span.text, i > 0, i < last),
                _ => span.text.clone(),
            },
        })
        .collect();
    EvidenceContext {
        section: block
            .section
            .as_deref()
            .map(crate::core::titles::section_label)
            .filter(|label| !label.is_empty()),
        change: match block.kind {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        },
        spans,
    }
}

/// Shortens unchanged text to the words near a change: the start of a span
/// that follows a change and the end of one that precedes a change are kept,
/// the middle is elided. Whitespace at the edges is kept so the marked
/// words stay separated from their neighbours.
fn trim_context(text: &str, after_change: bool, before_change: bool) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let keep = match (after_change, before_change) {
        (true, true) => 2 * CONTEXT_WORDS,
        _ => CONTEXT_WORDS,
    };
    if words.len() <= keep + 2 {
        return text.to_owned();
    }
    let lead = if text.starts_with(char::is_whitespace) {
        " "
    } else {
        ""
    };
    let tail = if text.ends_with(char::is_whitespace) {
        " "
    } else {
        ""
    };
    let head = words[..CONTEXT_WORDS].join(" ");
    let end = words[words.len() - CONTEXT_WORDS..].join(" ");
    match (after_change, before_change) {
        (true, true) => format!("{lead}{head} … {end}{tail}"),
        (true, false) => format!("{lead}{head} …"),
        (false, true) => format!("… {end}{tail}"),
        (false, false) => format!("{head} …"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::diff::{DiffOptions, diff};
    use crate::core::model::{Block, BlockKind};
    use crate::core::{classify, facts};
    use chrono::TimeZone;

    fn subscriber(cadence: Cadence) -> Subscriber {
        Subscriber {
            address: "ada@example.org".to_owned(),
            name: "Ada Lovelace".to_owned(),
            watches: vec![],
            tags: vec!["Lancashire and South Cumbria".to_owned()],
            kinds: vec![],
            cadence,
            confirmed: true,
            consent_at: None,
            consent_source: None,
            created: Utc::now(),
        }
    }

    fn weekly() -> Cadence {
        Cadence::Digest {
            cron: "0 8 * * Mon".to_owned(),
            timezone: UK,
        }
    }

    /// A realistic partnership change, built the way the pipeline builds
    /// one: two block lists, diffed, classified with their facts.
    fn realistic_changes() -> Vec<BriefChange> {
        let old = vec![
            Block::new(BlockKind::Heading { level: 1 }, "About our partnership"),
            Block::new(
                BlockKind::Paragraph,
                "Lancashire and South Cumbria Integrated Care Board covers Blackburn with Darwen, Blackpool, Lancashire and Westmorland and Furness.",
            ),
            Block::new(BlockKind::Heading { level: 2 }, "Our members"),
            Block::new(BlockKind::ListItem, "Lancashire County Council"),
            Block::new(BlockKind::ListItem, "Blackpool Council"),
        ];
        let new = vec![
            Block::new(BlockKind::Heading { level: 1 }, "About our partnership"),
            Block::new(
                BlockKind::Paragraph,
                "Lancashire and South Cumbria Integrated Care Board covers Blackburn with Darwen, Blackpool and Lancashire <script>alert('x')</script>.",
            ),
            Block::new(BlockKind::Heading { level: 2 }, "Our members"),
            Block::new(BlockKind::ListItem, "Lancashire County Council"),
            Block::new(BlockKind::ListItem, "Blackpool Council"),
            Block::new(BlockKind::ListItem, "Blackburn with Darwen Borough Council"),
        ];
        let text_diff = diff(&old, &new, &DiffOptions::default());
        let assessment =
            classify::classify_changes(&text_diff, &facts::fact_changes(&old, &new, &[]));
        assert!(!assessment.changes.is_empty());
        let seen_at = Utc.with_ymd_and_hms(2025, 7, 14, 7, 5, 0).unwrap();
        assessment
            .changes
            .into_iter()
            .map(|c| BriefChange {
                watch: "lsc-about".to_owned(),
                title: "About Lancashire and South Cumbria ICB".to_owned(),
                url: "https://www.lancashireandsouthcumbria.icb.nhs.uk/about-us".to_owned(),
                tags: vec!["Lancashire and South Cumbria".to_owned(), "icb".to_owned()],
                seen_at,
                kind: c.kind,
                summary: c.summary,
                evidence: c.evidence,
                why: "You get this because you follow Lancashire and South Cumbria and asked for all but minor changes.".to_owned(),
                change_url: None,
            })
            .collect()
    }

    #[test]
    fn immediate_briefing_text_and_html() {
        let changes = realistic_changes();
        let briefing = Templates::embedded()
            .compose(
                &subscriber(Cadence::Immediate),
                &changes,
                Some("https://tidings.example.org/u/abc?x=1&y=2"),
            )
            .expect("renders")
            .expect("some");
        insta::assert_snapshot!("immediate_subject", briefing.subject);
        insta::assert_snapshot!("immediate_text", briefing.text);
        insta::assert_snapshot!("immediate_html", briefing.html);
        assert!(!briefing.html.contains("<script>"));
        assert!(briefing.html.contains("&lt;script&gt;"));
        assert!(briefing.text.contains("<script>"), "text is not escaped");
        assert!(briefing.text.contains("BST"), "UK summer time");
    }

    #[test]
    fn the_footer_names_the_operator_and_invites_replies_only_when_handled() {
        let changes = realistic_changes();
        let mut footer = Footer {
            unsubscribe_url: Some("https://tidings.example.org/u/abc"),
            operator: Some("Cumbria Healthwatch"),
            operator_contact: Some("data@healthwatch.example.org"),
            privacy_url: Some("https://healthwatch.example.org/privacy"),
            ..Footer::default()
        };
        let templates = Templates::embedded();
        let briefing = templates
            .compose_with(&subscriber(Cadence::Immediate), &changes, &footer)
            .expect("renders")
            .expect("some");
        for part in [&briefing.text, &briefing.html] {
            assert!(
                part.contains("Sent by Cumbria Healthwatch (data@healthwatch.example.org)"),
                "{part}"
            );
            assert!(
                part.contains("https://healthwatch.example.org/privacy")
                    || part.contains("https:&#x2f;&#x2f;healthwatch.example.org&#x2f;privacy"),
                "{part}"
            );
            assert!(!part.contains("reply to this address"), "{part}");
            assert!(part.contains("use the unsubscribe link"), "{part}");
        }
        footer.replies_handled = true;
        let briefing = templates
            .compose_with(&subscriber(Cadence::Immediate), &changes, &footer)
            .expect("renders")
            .expect("some");
        assert!(briefing.text.contains("reply to this address to stop"));
        assert!(briefing.html.contains("reply to this address to stop"));
    }

    #[test]
    fn no_change_no_mail() {
        let none = Templates::embedded()
            .compose(&subscriber(Cadence::Immediate), &[], None)
            .expect("renders");
        assert!(none.is_none());
    }

    #[test]
    fn a_digest_of_minor_changes_says_so() {
        let mut change = realistic_changes().remove(0);
        change.kind = Kind::Minor;
        change.summary = "Last updated date changed".to_owned();
        let briefing = Templates::embedded()
            .compose(&subscriber(weekly()), &[change.clone(), change], None)
            .expect("renders")
            .expect("some");
        assert!(
            briefing.subject.contains("minor changes only"),
            "{}",
            briefing.subject
        );
        assert!(
            briefing.text.contains("Only minor changes"),
            "{}",
            briefing.text
        );
    }

    #[test]
    fn subjects_are_one_bounded_line() {
        let mut change = realistic_changes().remove(0);
        change.summary = format!("Evil\r\nBcc: victim@example.org\t{}", "long ".repeat(60));
        let subject = subject(&[change], false);
        assert!(!subject.contains(['\r', '\n', '\t']), "{subject}");
        assert!(subject.chars().count() <= MAX_SUBJECT_CHARS, "{subject}");
        assert!(subject.ends_with('…'));
    }

    #[test]
    fn long_unchanged_text_is_elided_near_changes() {
        let text = (1..=40)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let trimmed = trim_context(&format!("{text} "), false, true);
        assert!(trimmed.starts_with("… w29"), "{trimmed}");
        assert!(trimmed.ends_with("w40 "), "{trimmed}");
        assert_eq!(trim_context("short text", true, true), "short text");
    }

    #[test]
    fn overrides_replace_templates_and_report_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(TEXT_TEMPLATE), "{{ count }} for {{ name }}").unwrap();
        let templates = Templates::with_overrides(dir.path()).expect("loads");
        let briefing = templates
            .compose(
                &subscriber(Cadence::Immediate),
                &realistic_changes()[..1],
                None,
            )
            .unwrap()
            .unwrap();
        assert_eq!(briefing.text, "1 for Ada Lovelace\n");
        assert!(
            briefing.html.contains("<!DOCTYPE html>"),
            "HTML stays embedded"
        );

        std::fs::write(dir.path().join(HTML_TEMPLATE), "{% if %}").unwrap();
        let err = Templates::with_overrides(dir.path()).expect_err("bad template");
        assert!(err.to_string().contains("briefing.html"), "{err}");
        assert!(Templates::with_overrides(&dir.path().join("missing")).is_ok());
    }

    #[test]
    fn the_shipped_example_overrides_compile_and_match_the_embedded_output() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [TEXT_TEMPLATE, HTML_TEMPLATE] {
            let example = examples.join(format!("{name}.example"));
            std::fs::copy(&example, dir.path().join(name)).expect("copy example");
        }
        let changes = realistic_changes();
        let subscriber = subscriber(Cadence::Immediate);
        let overridden = Templates::with_overrides(dir.path())
            .expect("examples compile")
            .compose(&subscriber, &changes, None)
            .expect("renders");
        let embedded = Templates::embedded()
            .compose(&subscriber, &changes, None)
            .expect("renders");
        assert_eq!(
            overridden, embedded,
            "the examples are copies of the embedded templates"
        );
    }

    #[test]
    fn uk_times_follow_summer_time() {
        let winter = Utc.with_ymd_and_hms(2025, 1, 6, 9, 0, 0).unwrap();
        assert_eq!(uk_time(winter), "Mon 6 Jan 2025, 09:00 GMT");
        let summer = Utc.with_ymd_and_hms(2025, 7, 14, 7, 5, 0).unwrap();
        assert_eq!(uk_time(summer), "Mon 14 Jul 2025, 08:05 BST");
    }
}
