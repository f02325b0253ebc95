//! Element classification: which tags, roles, classes and ids are page chrome,
//! which never hold text, and which hint at content.

use std::sync::LazyLock;

use regex::Regex;

use crate::core::model::BlockKind;

/// What an element (or text node) is, as far as extraction cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tag {
    Text,
    /// Anything that does not break the flow of text: span, strong, em...
    Inline,
    A,
    Br,
    Img,
    /// Video, iframe remnants, object: counted like readability's embeds.
    Embed,
    Input,
    P,
    /// A generic block container: div, section, figure...
    Block,
    Heading(u8),
    Li,
    Dt,
    Dd,
    List,
    Table,
    Tr,
    Cell,
    Pre,
    Quote,
    Form,
    Main,
    Article,
    Body,
}

impl Tag {
    pub(super) fn of(name: &str) -> Self {
        match name {
            "a" => Tag::A,
            "br" | "wbr" => Tag::Br,
            "img" | "picture" => Tag::Img,
            "video" | "audio" | "object" | "embed" | "canvas" => Tag::Embed,
            "input" | "textarea" => Tag::Input,
            "p" => Tag::P,
            "h1" => Tag::Heading(1),
            "h2" => Tag::Heading(2),
            "h3" => Tag::Heading(3),
            "h4" => Tag::Heading(4),
            "h5" => Tag::Heading(5),
            "h6" => Tag::Heading(6),
            "li" => Tag::Li,
            "dt" => Tag::Dt,
            "dd" => Tag::Dd,
            "ul" | "ol" | "dl" | "menu" | "dir" => Tag::List,
            "table" => Tag::Table,
            "tr" => Tag::Tr,
            "td" | "th" => Tag::Cell,
            "pre" | "listing" | "xmp" | "plaintext" => Tag::Pre,
            "blockquote" => Tag::Quote,
            "form" => Tag::Form,
            "main" => Tag::Main,
            "article" => Tag::Article,
            "body" => Tag::Body,
            "div" | "section" | "address" | "aside" | "center" | "details" | "dialog"
            | "fieldset" | "figcaption" | "figure" | "footer" | "header" | "hgroup" | "hr"
            | "legend" | "nav" | "summary" | "caption" | "thead" | "tbody" | "tfoot" | "html"
            | "option" | "noscript" | "frameset" | "frame" => Tag::Block,
            _ => Tag::Inline,
        }
    }

    /// Whether the element starts a new block of text.
    pub(super) fn is_block(self) -> bool {
        !matches!(
            self,
            Tag::Text | Tag::Inline | Tag::A | Tag::Br | Tag::Img | Tag::Embed | Tag::Input
        )
    }

    /// The kind of block that loose text directly inside this element makes.
    pub(super) fn block_kind(self) -> BlockKind {
        match self {
            Tag::Heading(level) => BlockKind::Heading { level },
            Tag::Li | Tag::Dt => BlockKind::ListItem,
            Tag::Tr => BlockKind::TableRow,
            Tag::Pre => BlockKind::Preformatted,
            _ => BlockKind::Paragraph,
        }
    }
}

/// Elements whose content is never page text, in any mode.
pub(super) fn never_text(name: &str) -> bool {
    matches!(
        name,
        "script" | "style" | "noscript" | "template" | "head" | "meta" | "link" | "title"
    )
}

/// Elements that are page chrome when looking for the main content.
pub(super) fn chrome_tag(name: &str) -> bool {
    matches!(
        name,
        "nav"
            | "header"
            | "footer"
            | "aside"
            | "button"
            | "select"
            | "svg"
            | "math"
            | "iframe"
            | "dialog"
            | "input"
            | "textarea"
            | "label"
            | "option"
            | "object"
            | "embed"
            | "canvas"
            | "video"
            | "audio"
            | "map"
            | "figcaption"
    )
}

/// ARIA roles that mark chrome.
pub(super) fn chrome_role(role: &str) -> bool {
    matches!(
        role.trim().to_ascii_lowercase().as_str(),
        "navigation"
            | "banner"
            | "contentinfo"
            | "complementary"
            | "search"
            | "dialog"
            | "alertdialog"
            | "menu"
            | "menubar"
            | "toolbar"
            | "tablist"
    )
}

/// Class, id or aria-label words that mark chrome whatever else they say.
pub(super) static CHROME_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)cookie|consent|gdpr|cc-banner|breadcrumb|skip-?link|skip-?to|skipnav|share|sharing|social-?(media|links|icons|buttons|bar|follow)|newsletter|subscribe|signup|sign-up|sr-only|visually-?hidden|screen-?reader|a11y|accessibility|accessibilty|reciteme|browsealoud|back-?to-?top|print-?(button|link|page)|pagination|pager|related|recommend|read-?more|more-?stories|outbrain|taboola|advert|sponsor|paywall|promo|popup|modal|overlay|newsletter|site-?search|search-?(form|box|bar)|login|masthead|site-?header|site-?footer|global-?(header|footer|nav)|page-?footer|author-?(bio|info|box)|byline|dateline|timestamp|post-?meta|entry-?meta|article-?meta|tag-?(list|cloud)|^tags|\btags\b|comment|caption|credit|\bad-|-ad\b|last-?updated|review-?date|page-?updated|date-?modified",
    )
    .expect("static regex compiles")
});

/// Class or id words that make chrome likely, unless [`MAYBE_CONTENT`] also
/// matches (readability's "unlikely candidates").
pub(super) static UNLIKELY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)-ad-|\bads?\b|ad-?(slot|unit|container|wrapper)|banner|combx|community|cover-wrap|disqus|extra|footer|header|legends|menu|\bnav|navbar|navigation|remark|replies|rss|shoutbox|sidebar|skyscraper|social|supplemental|agegate|yom-remote|widget|toolbar",
    )
    .expect("static regex compiles")
});

/// Class or id words that rescue an element [`UNLIKELY`] matched.
pub(super) static MAYBE_CONTENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)and|article|body|column|content|main|shadow|story|entry|post")
        .expect("static regex compiles")
});

pub(super) static POSITIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)article|body|content|entry|hentry|h-entry|main|page|post|text|blog|story|prose|rich-?text",
    )
    .expect("static regex compiles")
});

pub(super) static NEGATIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)-ad-|hidden|\bhid\b|banner|combx|comment|com-|contact|footer|gdpr|masthead|media|meta|outbrain|promo|related|scroll|share|shoutbox|sidebar|skyscraper|sponsor|shopping|tags|widget|caption|credit|byline|author",
    )
    .expect("static regex compiles")
});

pub(super) static TITLE: LazyLock<scraper::Selector> =
    LazyLock::new(|| scraper::Selector::parse("title").expect("static selector parses"));

/// Text of links that only move around the page ("Skip to main content").
pub(super) fn is_skip_text(text: &str) -> bool {
    let lower = text.trim().to_ascii_lowercase();
    [
        "skip to",
        "skip navigation",
        "jump to",
        "return to",
        "back to top",
    ]
    .iter()
    .any(|prefix| lower.starts_with(prefix))
}

/// Whether an inline style hides the element.
pub(super) fn style_hides(style: &str) -> bool {
    let compact: String = style
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    compact.contains("display:none") || compact.contains("visibility:hidden")
}
