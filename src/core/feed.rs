//! Atom 1.0 feeds (RFC 4287), written by hand.
//!
//! Pure: values in, an XML document out. A feed here is a handful of
//! elements, so a writer of its own is shorter than the types a feed crate
//! asks for, and it owns the one thing that matters for safety: every
//! piece of text goes through [`escape`], which escapes markup and drops
//! the characters XML 1.0 forbids (most control characters can appear in
//! scraped page text, and one of them makes the whole feed unparseable in
//! every reader). Tests parse the output with a strict XML parser.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};

/// A feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// The feed's permanent id (its own URL).
    pub id: String,
    /// Its title.
    pub title: String,
    /// Where it is served (`rel="self"`).
    pub self_url: String,
    /// A page showing the same content (`rel="alternate"`), if any.
    pub alternate_url: Option<String>,
    /// When anything in it last changed.
    pub updated: DateTime<Utc>,
    /// The entries, newest first.
    pub entries: Vec<Entry>,
}

/// One entry: one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its permanent id (the change page's URL).
    pub id: String,
    /// Its title.
    pub title: String,
    /// When the change was seen.
    pub updated: DateTime<Utc>,
    /// The change page (`rel="alternate"`).
    pub link: String,
    /// The watched page (`rel="related"`), if known.
    pub related: Option<String>,
    /// A plain-text summary.
    pub summary: String,
    /// Category terms (the change's kinds).
    pub categories: Vec<String>,
}

/// The feed as an Atom document.
pub fn render(feed: &Feed) -> String {
    let mut out = String::with_capacity(1024 + feed.entries.len() * 512);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <id>{}</id>\n<title>{}</title>\n<updated>{}</updated>\n\
         <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n",
        escape(&feed.id),
        escape(&feed.title),
        date(feed.updated),
        escape(&feed.self_url),
    );
    if let Some(alternate) = &feed.alternate_url {
        let _ = writeln!(
            out,
            "<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
            escape(alternate)
        );
    }
    // RFC 4287 4.1.1: a feed needs an author unless every entry has one.
    out.push_str("<author><name>tidings</name></author>\n<generator>tidings</generator>\n");
    for entry in &feed.entries {
        let _ = write!(
            out,
            "<entry>\n<id>{}</id>\n<title>{}</title>\n<updated>{}</updated>\n\
             <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
            escape(&entry.id),
            escape(&entry.title),
            date(entry.updated),
            escape(&entry.link),
        );
        if let Some(related) = &entry.related {
            let _ = writeln!(out, "<link rel=\"related\" href=\"{}\"/>", escape(related));
        }
        for term in &entry.categories {
            let _ = writeln!(out, "<category term=\"{}\"/>", escape(term));
        }
        let _ = write!(
            out,
            "<summary type=\"text\">{}</summary>\n</entry>\n",
            escape(&entry.summary)
        );
    }
    out.push_str("</feed>\n");
    out
}

/// RFC 3339 in UTC, whole seconds: what Atom's date constructs require.
fn date(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Text made safe for XML element content and attribute values: markup
/// characters escaped, and characters outside XML 1.0's `Char` production
/// (control characters other than tab, LF and CR, and U+FFFE/U+FFFF)
/// dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_forbidden_characters_dropped() {
        assert_eq!(
            escape("<b>\"A\" & 'B'</b>\u{1}\u{FFFF}\tok"),
            "&lt;b&gt;&quot;A&quot; &amp; &apos;B&apos;&lt;/b&gt;\tok"
        );
    }

    #[test]
    fn a_feed_has_the_required_elements() {
        let at = DateTime::parse_from_rfc3339("2026-11-25T14:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        let feed = Feed {
            id: "https://example.org/feed.atom".to_owned(),
            title: "All changes".to_owned(),
            self_url: "https://example.org/feed.atom".to_owned(),
            alternate_url: None,
            updated: at,
            entries: vec![Entry {
                id: "https://example.org/changes/a~2".to_owned(),
                title: "a: Boundary: −Eden".to_owned(),
                updated: at,
                link: "https://example.org/changes/a~2".to_owned(),
                related: Some("https://example.org/page?x=1&y=2".to_owned()),
                summary: "<script>alert(1)</script>".to_owned(),
                categories: vec!["boundary".to_owned()],
            }],
        };
        let xml = render(&feed);
        assert!(
            xml.contains("<updated>2026-11-25T14:00:00Z</updated>"),
            "{xml}"
        );
        assert!(xml.contains("rel=\"self\""), "{xml}");
        assert!(
            xml.contains("href=\"https://example.org/page?x=1&amp;y=2\""),
            "{xml}"
        );
        assert!(xml.contains("&lt;script&gt;"), "{xml}");
        assert!(!xml.contains("<script>"), "{xml}");
    }
}
