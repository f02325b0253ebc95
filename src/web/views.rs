//! What the read-only pages and feeds show, built from the store and the
//! config: the change page, the list of watches, and the Atom feeds.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::config::{Config, Watch, WebSettings};
use crate::core::classify::{Assessment, Kind};
use crate::core::diff::{ChangeKind, TextDiff, WordOp};
use crate::core::feed::{Entry, Feed};
use crate::store::{ChangeRecord, Store, StoreError};

/// Entries in a feed: enough for a reader polling daily to miss nothing on
/// a busy week, small enough to serve quickly.
pub(crate) const FEED_ENTRIES: usize = 50;

/// The path of a change's page, `/changes/WATCH~N`. `~` never occurs in a
/// watch name (letters, digits, `.`, `_` and `-`), and it is one of the
/// characters a URL never needs to escape.
pub fn change_path(watch: &str, version: u64) -> String {
    format!("/changes/{watch}~{version}")
}

/// Splits a change id `WATCH~N`.
pub(crate) fn parse_change_id(id: &str) -> Option<(&str, u64)> {
    let (watch, number) = id.rsplit_once('~')?;
    let valid = !watch.is_empty()
        && watch
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let number = number.parse::<u64>().ok().filter(|n| *n > 0)?;
    valid.then_some((watch, number))
}

/// The change's kinds, as recorded.
fn kinds(record: &ChangeRecord) -> Vec<String> {
    record
        .detail
        .get("kinds")
        .and_then(|v| v.as_array())
        .map(|kinds| {
            kinds
                .iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn assessment(record: &ChangeRecord) -> Option<Assessment> {
    serde_json::from_value(record.detail.get("assessment")?.clone()).ok()
}

fn summary(record: &ChangeRecord) -> String {
    let text = record
        .detail
        .get("summary")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .or_else(|| assessment(record).map(|a| a.one_line()))
        .unwrap_or_else(|| format!("{} words changed", record.changed_words));
    one_line(&text)
}

/// Whether a change alerts (anything but minor). Old records without the
/// flag count as alerting: better a feed entry too many than a change
/// missing.
pub(crate) fn alerts(record: &ChangeRecord) -> bool {
    record
        .detail
        .get("alert")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(true)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A summary without the "Boundary: " that `classify` starts it with,
/// where the page shows the kind beside it already.
fn without_kind(summary: &str, kind: Kind) -> String {
    let name = kind.as_str();
    let prefix = format!("{}{}: ", name[..1].to_ascii_uppercase(), &name[1..]);
    summary.strip_prefix(&prefix).unwrap_or(summary).to_owned()
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, Serialize)]
pub(crate) struct ChangeView {
    watch: String,
    pub(crate) page_title: String,
    url: Option<String>,
    tags: Vec<String>,
    headline: String,
    summary: String,
    pub(crate) seen: String,
    seen_iso: String,
    previous_seen: Option<String>,
    history: String,
    changed_words: u64,
    classified: Vec<ClassifiedView>,
    blocks: Vec<BlockView>,
    timed_out: bool,
    feed: String,
}

#[derive(Debug, Serialize)]
struct ClassifiedView {
    kind: &'static str,
    summary: String,
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<ValueView>,
}

#[derive(Debug, Serialize)]
struct ValueView {
    from: String,
    to: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct BlockView {
    section: Option<String>,
    change: &'static str,
    spans: Vec<SpanView>,
}

#[derive(Debug, Serialize)]
struct SpanView {
    op: &'static str,
    text: String,
}

/// The changed blocks of a diff as the pages show them: each under the
/// heading of its section (one level of quotes, never an empty label).
pub(crate) fn block_views(diff: TextDiff) -> Vec<BlockView> {
    diff.changes
        .into_iter()
        .map(|block| BlockView {
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
            spans: block
                .words
                .into_iter()
                .map(|span| SpanView {
                    op: match span.op {
                        WordOp::Equal => "equal",
                        WordOp::Delete => "delete",
                        WordOp::Insert => "insert",
                    },
                    text: span.text,
                })
                .collect(),
        })
        .collect()
}

/// The change page's content. `previous_seen` is when the version before
/// the change was fetched.
pub(crate) fn change_view(
    web: &WebSettings,
    config: &Config,
    watch_name: &str,
    record: &ChangeRecord,
    previous_seen: Option<DateTime<Utc>>,
) -> ChangeView {
    let watch = config.watch(watch_name);
    let assessment = assessment(record);
    let diff: Option<TextDiff> = record
        .detail
        .get("diff")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let headline = assessment
        .as_ref()
        .and_then(Assessment::headline_kind)
        .map(|k| k.as_str().to_owned())
        .or_else(|| kinds(record).into_iter().next())
        .unwrap_or_else(|| "change".to_owned());
    let classified = assessment
        .map(|a| {
            a.changes
                .into_iter()
                .map(|c| ClassifiedView {
                    kind: c.kind.as_str(),
                    summary: without_kind(&one_line(&c.summary), c.kind),
                    added: c
                        .added
                        .iter()
                        .map(crate::core::facts::Fact::label)
                        .collect(),
                    removed: c
                        .removed
                        .iter()
                        .map(crate::core::facts::Fact::label)
                        .collect(),
                    changed: c
                        .changed
                        .iter()
                        .map(|v| ValueView {
                            from: v.from.label(),
                            to: v.to.label(),
                        })
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    let (blocks, timed_out) = diff.map_or_else(
        || (Vec::new(), false),
        |diff| {
            let timed_out = diff.timed_out;
            (block_views(diff), timed_out)
        },
    );
    ChangeView {
        watch: watch_name.to_owned(),
        page_title: watch.map_or(watch_name, Watch::title).to_owned(),
        url: watch.map(|w| w.url.to_string()),
        tags: watch
            .map(|w| {
                w.tags
                    .iter()
                    .map(|t| config.tag_title(t).to_owned())
                    .collect()
            })
            .unwrap_or_default(),
        headline,
        summary: summary(record),
        seen: crate::core::brief::uk_time(record.detected_at),
        seen_iso: iso(record.detected_at),
        previous_seen: previous_seen.map(crate::core::brief::uk_time),
        history: format!("{}{}", web.base_path(), history_path(watch_name)),
        changed_words: record.changed_words,
        classified,
        blocks,
        timed_out,
        feed: web.url(&watch_feed_path(watch_name)),
    }
}

/// `/watches/NAME`: the page's stored versions.
pub(crate) fn history_path(watch: &str) -> String {
    format!("/watches/{watch}")
}

/// `/watches/NAME/feed.atom`.
pub(crate) fn watch_feed_path(watch: &str) -> String {
    format!("/watches/{watch}/feed.atom")
}

/// `/tags/TAG/feed.atom`, with the tag percent-encoded as one path
/// segment: everything but RFC 3986's unreserved characters is escaped, so
/// a tag with spaces, slashes or `&` stays one segment.
pub(crate) fn tag_feed_path(tag: &str) -> String {
    let mut path = String::from("/tags/");
    for byte in tag.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            path.push(char::from(byte));
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path.push_str("/feed.atom");
    path
}

#[derive(Debug, Serialize)]
pub(crate) struct WatchRow {
    name: String,
    title: String,
    history: String,
    url: String,
    tags: Vec<String>,
    last_check: Option<String>,
    failing: bool,
    last_change: Option<String>,
    change_href: Option<String>,
    feed: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct WatchGroup {
    name: String,
    feed: Option<String>,
    rows: Vec<WatchRow>,
}

/// The watch list, grouped by partnership (first tag), untagged last.
pub(crate) fn watch_groups(
    store: &Store,
    config: &Config,
    web: &WebSettings,
) -> Result<(Vec<WatchGroup>, usize), StoreError> {
    let mut groups: BTreeMap<(bool, String, String), Vec<WatchRow>> = BTreeMap::new();
    let base = web.base_path();
    for watch in &config.watches {
        let state = store.watch_state(&watch.name)?;
        let change_href = match state.last_change {
            Some(_) => store
                .latest_changes(&watch.name, 1, |_| true)?
                .first()
                .map(|c| format!("{base}{}", change_path(&watch.name, c.to_version))),
            None => None,
        };
        let row = WatchRow {
            name: watch.name.clone(),
            title: watch.title().to_owned(),
            history: format!("{base}{}", history_path(&watch.name)),
            url: watch.url.to_string(),
            tags: watch
                .tags
                .iter()
                .map(|t| config.tag_title(t).to_owned())
                .collect(),
            last_check: state.last_check.map(crate::core::brief::uk_time),
            failing: state.consecutive_failures > 0,
            last_change: state.last_change.map(crate::core::brief::uk_time),
            change_href,
            feed: format!("{base}{}", watch_feed_path(&watch.name)),
        };
        let key = match watch.tags.first() {
            Some(tag) => (false, config.tag_title(tag).to_owned(), tag.clone()),
            None => (true, "Other pages".to_owned(), String::new()),
        };
        groups.entry(key).or_default().push(row);
    }
    let count = config.watches.len();
    let groups = groups
        .into_iter()
        .map(|((untagged, name, tag), mut rows)| {
            rows.sort_by(|a, b| a.title.cmp(&b.title).then_with(|| a.name.cmp(&b.name)));
            WatchGroup {
                feed: (!untagged).then(|| format!("{base}{}", tag_feed_path(&tag))),
                name,
                rows,
            }
        })
        .collect();
    Ok((groups, count))
}

/// Which watches a feed covers.
pub(crate) enum FeedScope<'a> {
    /// Every watch.
    All,
    /// Watches with this tag.
    Tag(&'a str),
    /// One watch.
    Watch(&'a str),
}

/// The newest alerting changes of the watches in scope, newest first.
///
/// Watches are visited in order of their last change, so only as many are
/// read as it takes to fill the feed: once it is full and the next watch's
/// last change is older than the oldest entry, no later watch can add one.
pub(crate) fn recent_changes<'a>(
    store: &Store,
    watches: &[&'a Watch],
    limit: usize,
) -> Result<Vec<(&'a Watch, ChangeRecord)>, StoreError> {
    let mut by_recency: Vec<(DateTime<Utc>, &Watch)> = Vec::new();
    for watch in watches {
        if let Some(at) = store.watch_state(&watch.name)?.last_change {
            by_recency.push((at, watch));
        }
    }
    by_recency.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
    let mut found: Vec<(&Watch, ChangeRecord)> = Vec::new();
    for (last_change, watch) in by_recency {
        if found.len() >= limit
            && found
                .last()
                .is_some_and(|(_, oldest)| last_change < oldest.detected_at)
        {
            break;
        }
        for record in store.latest_changes(&watch.name, limit, alerts)? {
            found.push((watch, record));
        }
        found.sort_by_key(|(_, record)| std::cmp::Reverse(record.detected_at));
        found.truncate(limit);
    }
    Ok(found)
}

/// An Atom feed of the watches in scope.
pub(crate) fn feed(
    store: &Store,
    config: &Config,
    web: &WebSettings,
    scope: &FeedScope<'_>,
) -> Result<Feed, StoreError> {
    let watches: Vec<&Watch> = config
        .watches
        .iter()
        .filter(|w| match scope {
            FeedScope::All => true,
            FeedScope::Tag(tag) => w.tags.iter().any(|t| t == tag),
            FeedScope::Watch(name) => w.name == *name,
        })
        .collect();
    let (title, path, alternate) = match scope {
        FeedScope::All => (
            "tidings: every change".to_owned(),
            "/feed.atom".to_owned(),
            web.url("/watches"),
        ),
        FeedScope::Tag(tag) => (
            format!("tidings: {}", config.tag_title(tag)),
            tag_feed_path(tag),
            web.url("/watches"),
        ),
        FeedScope::Watch(name) => (
            format!("tidings: {}", watches.first().map_or(*name, |w| w.title())),
            watch_feed_path(name),
            watches
                .first()
                .map_or_else(|| web.url("/watches"), |w| w.url.to_string()),
        ),
    };
    let changes = recent_changes(store, &watches, FEED_ENTRIES)?;
    let updated = changes
        .first()
        .map_or(DateTime::<Utc>::UNIX_EPOCH, |(_, c)| c.detected_at);
    let entries = changes
        .into_iter()
        .map(|(watch, record)| {
            let url = web.url(&change_path(&watch.name, record.to_version));
            let summary = summary(&record);
            Entry {
                id: url.clone(),
                title: format!("{}: {summary}", watch.title()),
                updated: record.detected_at,
                link: url,
                related: Some(watch.url.to_string()),
                summary,
                categories: kinds(&record),
            }
        })
        .collect();
    let self_url = web.url(&path);
    Ok(Feed {
        id: self_url.clone(),
        title,
        self_url,
        alternate_url: Some(alternate),
        updated,
        entries,
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct GroupContext {
    pub(crate) tag: Option<String>,
    pub(crate) name: String,
    pub(crate) checked: bool,
    pub(crate) open: bool,
    pub(crate) pages: Vec<PageContext>,
}

#[derive(Debug, Serialize)]
pub(crate) struct PageContext {
    pub(crate) name: String,
    pub(crate) title: String,
    pub(crate) url: String,
    pub(crate) host: String,
    pub(crate) checked: bool,
}

/// The subscribe and preferences forms' groups: one per partnership (a
/// watch's first tag), by title, untagged pages last; pages by title.
pub(crate) fn follow_groups(
    config: &Config,
    followed_tags: &[String],
    followed_watches: &[String],
) -> Vec<GroupContext> {
    let mut by_tag: BTreeMap<(bool, String, String), Vec<PageContext>> = BTreeMap::new();
    for watch in &config.watches {
        let key = watch.tags.first().map_or_else(
            || (true, String::new(), String::new()),
            |tag| (false, config.tag_title(tag).to_owned(), tag.clone()),
        );
        by_tag.entry(key).or_default().push(PageContext {
            name: watch.name.clone(),
            title: watch.title().to_owned(),
            url: watch.url.to_string(),
            host: watch.url.host_str().unwrap_or_default().to_owned(),
            checked: followed_watches.contains(&watch.name),
        });
    }
    by_tag
        .into_iter()
        .map(|((untagged, title, tag), mut pages)| {
            pages.sort_by(|a, b| a.title.cmp(&b.title).then_with(|| a.name.cmp(&b.name)));
            GroupContext {
                checked: !untagged && followed_tags.contains(&tag),
                open: pages.iter().any(|p| p.checked),
                name: if untagged {
                    "Other pages".to_owned()
                } else {
                    title
                },
                tag: (!untagged).then_some(tag),
                pages,
            }
        })
        .collect()
}

/// The kinds a form offers, with the help text shown beside each.
pub(crate) const KIND_HELP: [(Kind, &str, &str); 5] = [
    (
        Kind::Boundary,
        "Boundary",
        "places covered, population, the number of areas",
    ),
    (
        Kind::Members,
        "Members",
        "the trusts, councils and boards taking part",
    ),
    (
        Kind::Leaders,
        "Leaders",
        "chairs, chief executives and other named leads",
    ),
    (
        Kind::Narrative,
        "Narrative",
        "aims, plans and other wording",
    ),
    (
        Kind::Minor,
        "Minor",
        "spelling, dates and punctuation (sent only in digests)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_ids_round_trip() {
        assert_eq!(change_path("wnec-stp", 2), "/changes/wnec-stp~2");
        assert_eq!(parse_change_id("wnec-stp~2"), Some(("wnec-stp", 2)));
        assert_eq!(parse_change_id("a.b_c~10"), Some(("a.b_c", 10)));
        for bad in ["wnec", "~2", "a~0", "a~x", "a b~2", "a/b~2", "a~-1"] {
            assert_eq!(parse_change_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn tag_feed_paths_are_escaped() {
        assert_eq!(
            tag_feed_path("Lancashire & South Cumbria"),
            "/tags/Lancashire%20%26%20South%20Cumbria/feed.atom"
        );
        assert_eq!(tag_feed_path("a/b"), "/tags/a%2Fb/feed.atom");
    }
}
