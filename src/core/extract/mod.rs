//! HTML to text blocks: the text tidings sees in a page.
//!
//! This module owns everything between raw HTML and [`Extracted`]: parsing,
//! dropping page chrome (cookie banners, navigation, footers, skip links,
//! accessibility toolbars, breadcrumbs), finding the main content, splitting
//! it into blocks and normalising their whitespace. It must not do I/O,
//! decide what counts as a change, or know about watches beyond [`Rules`].
//!
//! Pure and synchronous: `scraper` types never leave this module, and nothing
//! here awaits, so a parsed page can never be held across an `.await`.
//!
//! # How it works
//!
//! One parse, then a handful of linear passes over a flattened copy of the
//! tree (pre-order, so a node's subtree is the index range `i..end`):
//!
//! 1. **Flatten**: walk the DOM once, dropping what never counts (script,
//!    style, `exclude` matches) and flagging boilerplate (chrome tags, hidden
//!    elements, cookie/share/breadcrumb classes) without dropping it yet, so a
//!    fallback can reconsider class-based guesses without parsing again.
//! 2. **Measure**: one bottom-up pass sums text length, link text length,
//!    commas and element counts per node, so every later question about a
//!    subtree is O(1). This is what keeps the scoring linear.
//! 3. **Choose**: `<main>` / `[role=main]` / a dominant `<article>` narrows the
//!    scope; inside it a readability-like score (text length and commas of
//!    paragraphs, credited to their ancestors, discounted by link density)
//!    picks the content container and the siblings that belong with it.
//! 4. **Emit**: walk the chosen subtrees, skipping link farms, and cut the
//!    text into blocks at block-level element boundaries. In main-content
//!    mode a block that is only a date stamp ("Page last updated 12 March
//!    2021"), a byline or an ad label is dropped: such lines change far more
//!    often than the text and would otherwise alert on every edit.

use std::sync::LazyLock;

use regex::Regex;
use scraper::{ElementRef, Html, Node};

use crate::core::model::{Block, BlockKind, Extracted};

/// Bumped whenever a change here can change the text extracted from the same
/// HTML. Stored snapshots record it, so text from an older extractor can be
/// re-baselined silently rather than reported as a change.
pub const EXTRACTOR_VERSION: u32 = 2;

/// A watch's extraction rules, compiled. Build with [`Rules::new`].
#[derive(Debug, Clone)]
pub struct Rules {
    select: Vec<(String, scraper::Selector)>,
    exclude: Vec<(String, scraper::Selector)>,
    ignore: Vec<regex::Regex>,
    main_content: bool,
    named: Vec<(String, scraper::Selector)>,
}

/// A rule that does not compile.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A CSS selector that does not parse.
    #[error("invalid CSS selector `{selector}`: {reason}")]
    Selector {
        /// The selector as written.
        selector: String,
        /// What the parser said.
        reason: String,
    },
    /// A regular expression that does not parse.
    #[error("invalid regex `{pattern}`: {reason}")]
    Regex {
        /// The pattern as written.
        pattern: String,
        /// What the regex compiler said.
        reason: String,
    },
}

/// Why a page gave no text.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// A `select` rule matched nothing: loud, because an empty result would
    /// otherwise read as "the page was emptied".
    #[error("selector `{selector}` matched nothing on the page")]
    SelectorMatchedNothing {
        /// The selector as written in the config.
        selector: String,
    },
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            select: Vec::new(),
            exclude: Vec::new(),
            ignore: Vec::new(),
            main_content: true,
            named: Vec::new(),
        }
    }
}

impl Rules {
    /// Compiles a watch's rules. `select` and `exclude` are CSS selectors,
    /// `ignore` are regexes whose matches are cut from the text.
    /// `main_content` turns on boilerplate removal and main-content detection;
    /// it has no effect when `select` is non-empty, because the selectors
    /// already say where the content is.
    pub fn new(
        select: &[String],
        exclude: &[String],
        ignore: &[String],
        main_content: bool,
    ) -> Result<Self, RuleError> {
        let compile_css = |selector: &String| {
            scraper::Selector::parse(selector)
                .map(|compiled| (selector.clone(), compiled))
                .map_err(|err| RuleError::Selector {
                    selector: selector.clone(),
                    reason: err.to_string(),
                })
        };
        Ok(Self {
            select: select.iter().map(compile_css).collect::<Result<_, _>>()?,
            exclude: exclude.iter().map(compile_css).collect::<Result<_, _>>()?,
            ignore: ignore
                .iter()
                .map(|pattern| {
                    regex::Regex::new(pattern).map_err(|err| RuleError::Regex {
                        pattern: pattern.clone(),
                        reason: err.to_string(),
                    })
                })
                .collect::<Result<_, _>>()?,
            main_content,
            named: Vec::new(),
        })
    }

    /// Adds a watch's named selector rules, `(name, CSS)`: the text of every
    /// element a rule matches becomes a [`BlockKind::Named`] block
    /// `name: text` after the page's own blocks.
    pub fn with_named(mut self, named: &[(String, String)]) -> Result<Self, RuleError> {
        for (name, selector) in named {
            let compiled =
                scraper::Selector::parse(selector).map_err(|err| RuleError::Selector {
                    selector: selector.clone(),
                    reason: err.to_string(),
                })?;
            self.named.push((name.clone(), compiled));
        }
        Ok(self)
    }

    /// Whether chrome removal and main-content detection apply.
    fn finds_main_content(&self) -> bool {
        self.main_content && self.select.is_empty()
    }
}

/// Checks that a CSS selector parses, for config validation, without
/// letting a `scraper` type out of this module.
pub fn check_selector(selector: &str) -> Result<(), RuleError> {
    scraper::Selector::parse(selector)
        .map(|_| ())
        .map_err(|err| RuleError::Selector {
            selector: selector.to_owned(),
            reason: err.to_string(),
        })
}

/// Extracts the text blocks of `html` under `rules`.
///
/// The result's blocks are in document order with whitespace normalised; the
/// title comes from `<title>`. Fails only when a `select` selector matches
/// nothing, so that a broken selector is never mistaken for an emptied page.
pub fn extract(html: &str, rules: &Rules) -> Result<Extracted, ExtractError> {
    let document = Html::parse_document(html);
    let mut flat = Flat::build(&document, rules)?;
    if rules.finds_main_content() {
        flat.settle_class_junk();
    }
    let mut emitter = Emitter::new(&flat, &rules.ignore);
    if !rules.select.is_empty() {
        for root in flat.selected_roots() {
            emitter.emit(root, &Cleaning::None);
        }
    } else if rules.main_content {
        let stats = flat.measure(false);
        let chosen = choose_content(&flat, &stats);
        emitter.drop_noise = true;
        for &root in &chosen.roots {
            emitter.emit(root, &Cleaning::Conditional(&stats));
        }
        // Class names are only a guess: when trusting them leaves next to
        // nothing of a page that has text, measure again without them.
        let body_text = stats[flat.body as usize].text;
        if emitter.text_len < 250 && body_text > 1_000 {
            let lenient = flat.measure(true);
            let retry = choose_content(&flat, &lenient);
            let mut second = Emitter::new(&flat, &rules.ignore);
            second.lenient = true;
            second.drop_noise = true;
            for &root in &retry.roots {
                second.emit(root, &Cleaning::Conditional(&lenient));
            }
            if second.text_len > emitter.text_len * 2 {
                emitter = second;
            }
        }
    } else {
        emitter.emit(flat.body, &Cleaning::None);
    }
    let mut blocks = emitter.blocks;
    for (name, selector) in &rules.named {
        let mut seen = std::collections::HashSet::new();
        for element in document.select(selector) {
            let value = normalise(&element.text().collect::<String>());
            if !value.is_empty() && seen.insert(value.clone()) {
                blocks.push(Block::new(BlockKind::Named, format!("{name}: {value}")));
            }
        }
    }
    Ok(Extracted {
        title: flat.title.clone(),
        blocks,
    })
}

// ---------------------------------------------------------------------------
// Element classification

/// What an element (or text node) is, as far as extraction cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
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
    fn of(name: &str) -> Self {
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
    fn is_block(self) -> bool {
        !matches!(
            self,
            Tag::Text | Tag::Inline | Tag::A | Tag::Br | Tag::Img | Tag::Embed | Tag::Input
        )
    }

    /// The kind of block that loose text directly inside this element makes.
    fn block_kind(self) -> BlockKind {
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
fn never_text(name: &str) -> bool {
    matches!(
        name,
        "script" | "style" | "noscript" | "template" | "head" | "meta" | "link" | "title"
    )
}

/// Elements that are page chrome when looking for the main content.
fn chrome_tag(name: &str) -> bool {
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
fn chrome_role(role: &str) -> bool {
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
static CHROME_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)cookie|consent|gdpr|cc-banner|breadcrumb|skip-?link|skip-?to|skipnav|share|sharing|social-?(media|links|icons|buttons|bar|follow)|newsletter|subscribe|signup|sign-up|sr-only|visually-?hidden|screen-?reader|a11y|accessibility|accessibilty|reciteme|browsealoud|back-?to-?top|print-?(button|link|page)|pagination|pager|related|recommend|read-?more|more-?stories|outbrain|taboola|advert|sponsor|paywall|promo|popup|modal|overlay|newsletter|site-?search|search-?(form|box|bar)|login|masthead|site-?header|site-?footer|global-?(header|footer|nav)|page-?footer|author-?(bio|info|box)|byline|dateline|timestamp|post-?meta|entry-?meta|article-?meta|tag-?(list|cloud)|^tags|\btags\b|comment|caption|credit|\bad-|-ad\b|last-?updated|review-?date|page-?updated|date-?modified",
    )
    .expect("static regex compiles")
});

/// Class or id words that make chrome likely, unless [`MAYBE_CONTENT`] also
/// matches (readability's "unlikely candidates").
static UNLIKELY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)-ad-|\bads?\b|ad-?(slot|unit|container|wrapper)|banner|combx|community|cover-wrap|disqus|extra|footer|header|legends|menu|\bnav|navbar|navigation|remark|replies|rss|shoutbox|sidebar|skyscraper|social|supplemental|agegate|yom-remote|widget|toolbar",
    )
    .expect("static regex compiles")
});

/// Class or id words that rescue an element [`UNLIKELY`] matched.
static MAYBE_CONTENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)and|article|body|column|content|main|shadow|story|entry|post")
        .expect("static regex compiles")
});

static POSITIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)article|body|content|entry|hentry|h-entry|main|page|post|text|blog|story|prose|rich-?text",
    )
    .expect("static regex compiles")
});

static NEGATIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)-ad-|hidden|\bhid\b|banner|combx|comment|com-|contact|footer|gdpr|masthead|media|meta|outbrain|promo|related|scroll|share|shoutbox|sidebar|skyscraper|sponsor|shopping|tags|widget|caption|credit|byline|author",
    )
    .expect("static regex compiles")
});

static TITLE: LazyLock<scraper::Selector> =
    LazyLock::new(|| scraper::Selector::parse("title").expect("static selector parses"));

/// Text of links that only move around the page ("Skip to main content").
fn is_skip_text(text: &str) -> bool {
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
fn style_hides(style: &str) -> bool {
    let compact: String = style
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    compact.contains("display:none") || compact.contains("visibility:hidden")
}

// ---------------------------------------------------------------------------
// Flattening

/// Boilerplate flags on a node.
const JUNK_HARD: u8 = 1; // chrome by tag, role, hidden: never content
const JUNK_CLASS: u8 = 2; // chrome by class or id: a guess the fallback may overrule
const IN_LINK: u8 = 4;
const SELECTED: u8 = 8;
const MAIN_ROLE: u8 = 16;
const CLASS_OWN: u8 = 32; // JUNK_CLASS because of this element's own names

/// One node of the flattened tree.
#[derive(Debug)]
struct FlatNode<'a> {
    tag: Tag,
    /// The text of a text node; empty for elements.
    text: &'a str,
    parent: u32,
    /// One past the last node of this node's subtree.
    end: u32,
    flags: u8,
    /// Readability-style class weight: -25, 0 or +25 (or their sum).
    weight: i8,
    /// Hash of the class attribute, to find siblings styled like the content.
    class_hash: u32,
}

/// The page as a pre-ordered array, with per-node facts gathered on the way.
struct Flat<'a> {
    nodes: Vec<FlatNode<'a>>,
    body: u32,
    title: Option<String>,
}

impl<'a> Flat<'a> {
    fn build(document: &'a Html, rules: &Rules) -> Result<Self, ExtractError> {
        let chrome = rules.finds_main_content();
        let mut nodes: Vec<FlatNode<'a>> = Vec::with_capacity(4096);
        // The first <title> in document order is the page's: html5ever puts
        // it in <head>, ahead of any <title> inside inline SVG.
        let title = document
            .select(&TITLE)
            .next()
            .map(|element| normalise(&element.text().collect::<String>()))
            .filter(|text| !text.is_empty());
        let mut select_hits = vec![0usize; rules.select.len()];
        // Open elements: (flat index, inherited flags).
        let mut open: Vec<(u32, u8)> = Vec::with_capacity(64);
        let mut body = None;

        let root = document.tree.root();
        let mut cur = match root.first_child() {
            Some(child) => child,
            None => {
                return Ok(Self::empty());
            }
        };
        loop {
            let mut descend = false;
            let parent = open.last().map_or(u32::MAX, |&(idx, _)| idx);
            let inherited = open.last().map_or(0, |&(_, flags)| flags);
            match cur.value() {
                // Text outside any element (before <html>) is not page text.
                Node::Text(text) if parent != u32::MAX => {
                    nodes.push(FlatNode {
                        tag: Tag::Text,
                        text: &text.text,
                        parent,
                        end: nodes.len() as u32 + 1,
                        flags: inherited & (JUNK_HARD | JUNK_CLASS | IN_LINK),
                        weight: 0,
                        class_hash: 0,
                    });
                }
                Node::Element(element) => {
                    let name = element.name();
                    let element_ref = ElementRef::wrap(cur).expect("element node");
                    let excluded = never_text(name)
                        || rules
                            .exclude
                            .iter()
                            .any(|(_, selector)| selector.matches(&element_ref));
                    if !excluded {
                        let mut tag = Tag::of(name);
                        let mut flags = inherited & (JUNK_HARD | JUNK_CLASS | IN_LINK);
                        if tag == Tag::A {
                            flags |= IN_LINK;
                        }
                        for (hit, (_, selector)) in select_hits.iter_mut().zip(&rules.select) {
                            if selector.matches(&element_ref) {
                                *hit += 1;
                                flags |= SELECTED;
                            }
                        }
                        let (weight, class_hash, own) =
                            inspect_attrs(element, &mut tag, chrome, || first_text(&element_ref));
                        flags |= own;
                        if chrome && chrome_tag(name) && tag != Tag::Main {
                            flags |= JUNK_HARD;
                        }
                        // Figures are pictures and their captions, but
                        // sometimes a big table: a guess the page can overrule.
                        if chrome && name == "figure" {
                            flags |= JUNK_CLASS | CLASS_OWN;
                        }
                        let idx = nodes.len() as u32;
                        if tag == Tag::Body && body.is_none() {
                            body = Some(idx);
                        }
                        nodes.push(FlatNode {
                            tag,
                            text: "",
                            parent,
                            end: idx + 1,
                            flags,
                            weight,
                            class_hash,
                        });
                        // Only boilerplate and link flags pass to the subtree.
                        open.push((idx, flags & (JUNK_HARD | JUNK_CLASS | IN_LINK)));
                        descend = true;
                    }
                }
                _ => {}
            }
            if descend && let Some(child) = cur.first_child() {
                cur = child;
                continue;
            }
            if descend {
                close(&mut open, &mut nodes);
            }
            // Climb until a next sibling exists.
            loop {
                if let Some(next) = cur.next_sibling() {
                    cur = next;
                    break;
                }
                match cur.parent() {
                    Some(up) if up.id() != root.id() => {
                        cur = up;
                        // Only opened elements have children that were visited,
                        // so climbing out of one closes the innermost open element.
                        close(&mut open, &mut nodes);
                    }
                    _ => {
                        while !open.is_empty() {
                            close(&mut open, &mut nodes);
                        }
                        let body = body.unwrap_or(0);
                        for (hits, (selector, _)) in select_hits.iter().zip(&rules.select) {
                            if *hits == 0 {
                                return Err(ExtractError::SelectorMatchedNothing {
                                    selector: selector.clone(),
                                });
                            }
                        }
                        if nodes.is_empty() {
                            return Ok(Self {
                                title,
                                ..Self::empty()
                            });
                        }
                        return Ok(Self { nodes, body, title });
                    }
                }
            }
        }

        /// Closes the innermost open element: its subtree ends here.
        fn close(open: &mut Vec<(u32, u8)>, nodes: &mut [FlatNode<'_>]) {
            if let Some((idx, _)) = open.pop() {
                let end = nodes.len() as u32;
                nodes[idx as usize].end = end;
            }
        }
    }

    fn empty() -> Self {
        Self {
            nodes: vec![FlatNode {
                tag: Tag::Body,
                text: "",
                parent: u32::MAX,
                end: 1,
                flags: 0,
                weight: 0,
                class_hash: 0,
            }],
            body: 0,
            title: None,
        }
    }

    /// Overrules class-based boilerplate guesses on wrappers that hold much
    /// of the page or its `<main>` / `<article>`: a `class="has-sidebar"` on a
    /// page wrapper must not wipe the page.
    fn settle_class_junk(&mut self) {
        if !self.nodes.iter().any(|n| n.flags & CLASS_OWN != 0) {
            return;
        }
        let all = self.measure(true);
        let body_text = all[self.body as usize].text;
        for (node, s) in self.nodes.iter_mut().zip(&all) {
            if node.flags & CLASS_OWN != 0 && (s.text * 10 > body_text * 4 || s.semantic > 0) {
                node.flags &= !CLASS_OWN;
            }
        }
        for i in 0..self.nodes.len() {
            let parent = self.nodes[i].parent;
            let inherited = if parent == u32::MAX {
                false
            } else {
                self.nodes[parent as usize].flags & JUNK_CLASS != 0
            };
            let node = &mut self.nodes[i];
            if inherited || node.flags & CLASS_OWN != 0 {
                node.flags |= JUNK_CLASS;
            } else {
                node.flags &= !JUNK_CLASS;
            }
        }
    }

    /// The outermost nodes matched by a `select` selector, in document order.
    fn selected_roots(&self) -> Vec<u32> {
        let mut roots = Vec::new();
        let mut i = 0;
        while i < self.nodes.len() {
            if self.nodes[i].flags & SELECTED != 0 {
                roots.push(i as u32);
                i = self.nodes[i].end as usize;
            } else {
                i += 1;
            }
        }
        roots
    }

    /// Whether node `i` is boilerplate.
    fn is_junk(&self, i: usize, lenient: bool) -> bool {
        let flags = self.nodes[i].flags;
        flags & JUNK_HARD != 0 || (!lenient && flags & JUNK_CLASS != 0)
    }

    /// Sums per-subtree statistics bottom-up, leaving boilerplate out.
    fn measure(&self, lenient: bool) -> Vec<Stats> {
        let mut stats = vec![Stats::default(); self.nodes.len()];
        for i in (0..self.nodes.len()).rev() {
            let node = &self.nodes[i];
            if self.is_junk(i, lenient) {
                continue;
            }
            match node.tag {
                Tag::Text => {
                    let mut chars = 0u32;
                    let mut commas = 0u32;
                    for c in node.text.chars() {
                        if !c.is_whitespace() {
                            chars += 1;
                            if c == ',' || c == '\u{3001}' || c == '\u{ff0c}' {
                                commas += 1;
                            }
                        }
                    }
                    let s = &mut stats[i];
                    s.text = chars;
                    s.commas = commas;
                    if node.flags & IN_LINK != 0 {
                        s.link = chars;
                    }
                }
                Tag::P => stats[i].p += 1,
                Tag::Li => stats[i].li += 1,
                Tag::Img => stats[i].img += 1,
                Tag::Embed => stats[i].embed += 1,
                Tag::Input => stats[i].input += 1,
                Tag::Heading(_) => stats[i].headings += 1,
                Tag::Main | Tag::Article => stats[i].semantic += 1,
                _ => {}
            }
            if node.tag.is_block() {
                stats[i].blocks += 1;
            }
            if node.parent != u32::MAX {
                let s = stats[i];
                let p = &mut stats[node.parent as usize];
                p.text += s.text;
                p.link += s.link;
                p.commas += s.commas;
                p.p += s.p;
                p.li += s.li;
                p.img += s.img;
                p.embed += s.embed;
                p.input += s.input;
                p.headings += s.headings;
                p.semantic += s.semantic;
                p.blocks += s.blocks;
                if matches!(node.tag, Tag::Heading(_)) {
                    p.heading_text += s.text;
                } else {
                    p.heading_text += s.heading_text;
                }
            }
        }
        stats
    }

    /// The last non-whitespace character of node `i`'s text.
    fn last_char(&self, i: usize) -> Option<char> {
        let end = self.nodes[i].end as usize;
        self.nodes[i..end]
            .iter()
            .rev()
            .filter(|n| n.tag == Tag::Text)
            .find_map(|n| n.text.trim_end().chars().last())
    }

    /// Element children of node `i`.
    fn children(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let end = self.nodes[i].end as usize;
        let mut next = i + 1;
        std::iter::from_fn(move || {
            while next < end {
                let child = next;
                next = self.nodes[child].end as usize;
                if self.nodes[child].tag != Tag::Text {
                    return Some(child);
                }
            }
            None
        })
    }
}

/// The first bit of text inside an element, to recognise skip links.
fn first_text(element: &ElementRef<'_>) -> String {
    let mut out = String::new();
    for piece in element.text() {
        out.push_str(piece);
        if out.len() > 40 {
            break;
        }
    }
    out
}

/// Reads an element's attributes once: class weight, class hash, and flags
/// for hidden or chrome-like elements. Turns `role="heading"` elements into
/// headings of their `aria-level` (2 when absent, as ARIA says).
fn inspect_attrs(
    element: &scraper::node::Element,
    tag: &mut Tag,
    chrome: bool,
    text: impl FnOnce() -> String,
) -> (i8, u32, u8) {
    let mut heading_role = false;
    let mut level = 2u8;
    let mut class = "";
    let mut id = "";
    let mut flags = 0u8;
    let mut label = "";
    let mut href = "";
    for (name, value) in element.attrs() {
        match name {
            "class" => class = value,
            "id" => id = value,
            "role" => {
                if value.eq_ignore_ascii_case("main") {
                    flags |= MAIN_ROLE;
                } else if chrome && chrome_role(value) {
                    flags |= JUNK_HARD;
                } else if value.trim().eq_ignore_ascii_case("heading") {
                    heading_role = true;
                }
            }
            "aria-level" => {
                level = value.trim().parse::<u8>().map_or(2, |l| l.clamp(1, 6));
            }
            "hidden" if chrome => flags |= JUNK_HARD,
            "aria-hidden" if chrome && value.trim().eq_ignore_ascii_case("true") => {
                flags |= JUNK_HARD;
            }
            "style" if chrome && style_hides(value) => flags |= JUNK_HARD,
            "aria-label" => label = value,
            "href" => href = value,
            _ => {}
        }
    }
    if heading_role {
        *tag = Tag::Heading(level);
    }
    let tag = *tag;
    if class.is_empty() && id.is_empty() && label.is_empty() && tag != Tag::A {
        return (0, 0, flags);
    }
    let mut weight = 0i8;
    let mut class_hash = 0u32;
    if !class.is_empty() {
        class_hash = class.bytes().fold(2_166_136_261u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(16_777_619)
        });
    }
    if chrome {
        let protected = matches!(tag, Tag::Body | Tag::Main | Tag::Article)
            || element.name() == "html"
            || flags & MAIN_ROLE != 0;
        for name in [class, id] {
            if name.is_empty() {
                continue;
            }
            if POSITIVE.is_match(name) {
                weight = weight.saturating_add(25);
            }
            if NEGATIVE.is_match(name) {
                weight = weight.saturating_sub(25);
            }
            if !protected
                && (CHROME_NAME.is_match(name)
                    || (UNLIKELY.is_match(name) && !MAYBE_CONTENT.is_match(name)))
            {
                flags |= JUNK_CLASS | CLASS_OWN;
            }
        }
        if !protected && !label.is_empty() && CHROME_NAME.is_match(label) {
            flags |= JUNK_HARD;
        }
        if tag == Tag::A && href.starts_with('#') && is_skip_text(&text()) {
            flags |= JUNK_HARD;
        }
    }
    (weight, class_hash, flags)
}

/// Per-subtree sums, boilerplate left out.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    /// Non-whitespace characters of text.
    text: u32,
    /// Of which inside links.
    link: u32,
    /// Of which inside headings.
    heading_text: u32,
    commas: u32,
    p: u32,
    li: u32,
    img: u32,
    embed: u32,
    input: u32,
    headings: u32,
    /// `<main>` and `<article>` elements.
    semantic: u32,
    /// Block-level elements, this one included.
    blocks: u32,
}

impl Stats {
    fn link_density(&self) -> f32 {
        if self.text == 0 {
            0.0
        } else {
            self.link as f32 / self.text as f32
        }
    }
}

// ---------------------------------------------------------------------------
// Choosing the main content

/// The subtrees that hold the main content, in document order.
struct Chosen {
    roots: Vec<u32>,
}

/// Finds the main content: a semantic scope first, then a readability-like
/// score inside it.
fn choose_content(flat: &Flat<'_>, stats: &[Stats]) -> Chosen {
    let body = flat.body as usize;
    let scope = semantic_scope(flat, stats).unwrap_or(body);
    let scope_end = flat.nodes[scope].end as usize;

    // Score: every paragraph-like node credits its ancestors.
    let mut score = vec![f32::NAN; flat.nodes.len()];
    let mut scored = Vec::new();
    for (node, s) in flat.nodes[..scope_end].iter().zip(stats).skip(scope) {
        let paragraph_like = match node.tag {
            Tag::P | Tag::Pre | Tag::Quote | Tag::Dd => true,
            Tag::Cell | Tag::Block | Tag::Li => s.blocks == 1,
            _ => false,
        };
        // Boilerplate has no text in `stats`, so it never scores.
        if !paragraph_like || s.text < 25 {
            continue;
        }
        let credit = 1.0 + s.commas as f32 + (s.text as f32 / 100.0).floor().min(3.0);
        let mut ancestor = node.parent;
        let mut level = 0u32;
        while ancestor != u32::MAX && level < 5 {
            let a = ancestor as usize;
            if a < scope {
                break;
            }
            if score[a].is_nan() {
                score[a] = initial_score(&flat.nodes[a]);
                scored.push(a);
            }
            let divider = match level {
                0 => 1.0,
                1 => 2.0,
                _ => level as f32 * 3.0,
            };
            score[a] += credit / divider;
            ancestor = flat.nodes[a].parent;
            level += 1;
        }
    }
    for &c in &scored {
        score[c] *= 1.0 - stats[c].link_density();
    }
    scored.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let Some(&best) = scored.first() else {
        return Chosen {
            roots: vec![scope as u32],
        };
    };
    let mut top = best;

    // Several strong candidates sharing an ancestor: the ancestor is the content.
    let strong: Vec<usize> = scored
        .iter()
        .skip(1)
        .take(4)
        .copied()
        .filter(|&c| score[c] >= score[best] * 0.75)
        .collect();
    if strong.len() >= 2 {
        let mut ancestor = flat.nodes[top].parent;
        while ancestor != u32::MAX && ancestor as usize >= scope {
            let a = ancestor as usize;
            let end = flat.nodes[a].end as usize;
            let inside = strong.iter().filter(|&&c| c > a && c < end).count();
            if inside >= 2 {
                top = a;
                break;
            }
            if a == scope {
                break;
            }
            ancestor = flat.nodes[a].parent;
        }
    }

    // Climb while the parent scores about as well: the content is split
    // across sibling containers.
    let mut last = score[top];
    let threshold = last / 3.0;
    let mut parent = flat.nodes[top].parent;
    while parent != u32::MAX && parent as usize >= scope && parent as usize != body {
        let p = parent as usize;
        if score[p].is_nan() {
            parent = flat.nodes[p].parent;
            continue;
        }
        if score[p] < threshold {
            break;
        }
        if score[p] > last {
            top = p;
            break;
        }
        last = score[p];
        parent = flat.nodes[p].parent;
    }

    // An only child says nothing its parent does not.
    while top > scope {
        let p = flat.nodes[top].parent as usize;
        let live = flat
            .children(p)
            .filter(|&c| !flat.is_junk(c, false) && stats[c].text > 0)
            .count();
        if live == 1 && p != body {
            top = p;
        } else {
            break;
        }
    }

    if top == scope {
        return Chosen {
            roots: vec![top as u32],
        };
    }

    // Siblings that look like more of the same.
    let top_score = if score[top].is_nan() { 0.0 } else { score[top] };
    let threshold = (top_score * 0.2).max(10.0);
    let parent = flat.nodes[top].parent as usize;
    let live: Vec<usize> = flat
        .children(parent)
        .filter(|&c| c == top || (!flat.is_junk(c, false) && stats[c].text > 0))
        .collect();
    // The page's own heading usually sits just before the content container,
    // perhaps with a dateline between: keep headings in that lead-in.
    let top_at = live.iter().position(|&c| c == top).unwrap_or(0);
    let lead_in = live[..top_at]
        .iter()
        .rev()
        .take_while(|&&c| matches!(flat.nodes[c].tag, Tag::Heading(_)) || stats[c].text < 80)
        .count();
    let lead_in = &live[top_at - lead_in..top_at];
    let mut roots = Vec::new();
    for &sibling in &live {
        if sibling == top
            || (lead_in.contains(&sibling) && matches!(flat.nodes[sibling].tag, Tag::Heading(_)))
        {
            roots.push(sibling as u32);
            continue;
        }
        let node = &flat.nodes[sibling];
        let bonus = if node.class_hash != 0 && node.class_hash == flat.nodes[top].class_hash {
            top_score * 0.2
        } else {
            0.0
        };
        let s = &stats[sibling];
        let own = if score[sibling].is_nan() {
            0.0
        } else {
            score[sibling]
        };
        let include = if own + bonus >= threshold {
            true
        } else if matches!(node.tag, Tag::P | Tag::List | Tag::Heading(_)) {
            let density = s.link_density();
            (s.text > 80 && density < 0.25)
                || (s.text > 0
                    && density == 0.0
                    && matches!(flat.last_char(sibling), Some('.' | ':' | '!' | '?')))
        } else {
            false
        };
        if include {
            roots.push(sibling as u32);
        }
    }
    Chosen { roots }
}

/// `<main>`, `[role=main]` or a dominant `<article>`, when it holds enough
/// text to be the page rather than a fragment of it.
fn semantic_scope(flat: &Flat<'_>, stats: &[Stats]) -> Option<usize> {
    let body = flat.body as usize;
    let total = stats[body].text.max(1);
    let mut best_main: Option<usize> = None;
    let mut articles: Vec<usize> = Vec::new();
    let mut i = body;
    let end = flat.nodes[body].end as usize;
    while i < end {
        let node = &flat.nodes[i];
        if flat.is_junk(i, false) {
            i = node.end as usize;
            continue;
        }
        if node.tag == Tag::Main || node.flags & MAIN_ROLE != 0 {
            if best_main.is_none_or(|m| stats[i].text > stats[m].text) {
                best_main = Some(i);
            }
        } else if node.tag == Tag::Article {
            articles.push(i);
            // Nested articles (comments) belong to this one.
            i = node.end as usize;
            continue;
        }
        i += 1;
    }
    if let Some(m) = best_main
        && stats[m].text >= 200
        && stats[m].text * 5 >= total
    {
        return Some(m);
    }
    let article_total: u32 = articles.iter().map(|&a| stats[a].text).sum();
    let best = articles.iter().copied().max_by_key(|&a| stats[a].text)?;
    if stats[best].text >= 300 && stats[best].text * 10 >= article_total * 6 {
        Some(best)
    } else {
        None
    }
}

/// A candidate's starting score from what it is (readability's weights).
fn initial_score(node: &FlatNode<'_>) -> f32 {
    let base = match node.tag {
        Tag::Block | Tag::Main | Tag::Article => 5.0,
        Tag::Pre | Tag::Cell | Tag::Quote => 3.0,
        Tag::List | Tag::Li | Tag::Dd | Tag::Dt | Tag::Form => -3.0,
        Tag::Heading(_) => -5.0,
        _ => 0.0,
    };
    base + f32::from(node.weight)
}

/// How the emitter prunes inside a chosen subtree.
enum Cleaning<'s> {
    /// Keep everything (no main-content mode, or explicit `select`).
    None,
    /// Drop boilerplate and link farms, judged on these statistics.
    Conditional(&'s [Stats]),
}

/// Whether a container inside the main content is a link farm or other
/// non-content (readability's "clean conditionally", tuned to keep lists of
/// organisations and places).
fn is_link_farm(flat: &Flat<'_>, stats: &[Stats], i: usize) -> bool {
    let node = &flat.nodes[i];
    let s = &stats[i];
    let weight = i32::from(node.weight);
    match node.tag {
        Tag::Form => return true,
        Tag::List => {
            let density = s.link_density();
            if s.text == 0 {
                return false;
            }
            if weight < 0 && density > 0.3 {
                return true;
            }
            if density <= 0.5 {
                return false;
            }
            // A mostly-linked list: keep it when the page introduces it
            // ("Members include:") or its items are short names rather than
            // headlines of other pages.
            if introduced(flat, i) {
                return false;
            }
            let items = s.li.max(1);
            let per_item = s.text / items;
            return per_item > 45 || s.li < 2;
        }
        Tag::Block | Tag::Table => {}
        _ => return false,
    }
    // A wrapper around a single list is judged as that list: a rebuild that
    // wraps "Members include:" lists in new divs must not drop them.
    let mut live = flat.children(i).filter(|&c| stats[c].text > 0);
    if let (Some(only), None) = (live.next(), live.next())
        && flat.nodes[only].tag == Tag::List
    {
        return is_link_farm(flat, stats, only);
    }
    if s.commas >= 10 {
        return false;
    }
    if s.text == 0 {
        return false;
    }
    // A lone link in a box of its own ("View this dataset", "Download the
    // plan") is part of the content it sits in: its disappearing is news.
    if s.blocks == 1 && s.li == 0 && s.text <= 40 && s.link == s.text && s.img == 0 {
        return false;
    }
    let density = s.link_density();
    let p = s.p;
    if s.img > 1 && (p as f32) / (s.img as f32) < 0.5 && s.text < 200 {
        return true;
    }
    if s.input > p / 3 + 1 {
        return true;
    }
    if s.embed > 1 && s.text < 75 {
        return true;
    }
    if weight < 25 && density > 0.33 && s.text < 1_000 {
        return true;
    }
    if weight >= 25 && density > 0.5 {
        return true;
    }
    false
}

/// Whether the text just before list `i` introduces it ("... include:").
fn introduced(flat: &Flat<'_>, i: usize) -> bool {
    let parent = flat.nodes[i].parent;
    if parent == u32::MAX {
        return false;
    }
    let mut previous = None;
    for child in flat.children(parent as usize) {
        if child == i {
            break;
        }
        previous = Some(child);
    }
    // Loose text right before the list counts too: check the nodes between.
    let start = previous.map_or(parent as usize + 1, |p| p);
    let last = flat.nodes[start..i]
        .iter()
        .rev()
        .filter(|n| n.tag == Tag::Text)
        .find_map(|n| n.text.trim_end().chars().last());
    matches!(last, Some(':'))
}

// ---------------------------------------------------------------------------
// Emitting blocks

/// Turns subtrees of the flat tree into blocks.
struct Emitter<'f, 'a> {
    flat: &'f Flat<'a>,
    ignore: &'f [Regex],
    blocks: Vec<Block>,
    buffer: String,
    pending_space: bool,
    /// Total characters emitted, to judge whether a fallback is needed.
    text_len: usize,
    /// Whether class-based boilerplate guesses are ignored.
    lenient: bool,
    /// Whether lines that are only ad or widget labels are dropped.
    drop_noise: bool,
}

impl<'f, 'a> Emitter<'f, 'a> {
    fn new(flat: &'f Flat<'a>, ignore: &'f [Regex]) -> Self {
        Self {
            flat,
            ignore,
            blocks: Vec::new(),
            buffer: String::new(),
            pending_space: false,
            text_len: 0,
            lenient: false,
            drop_noise: false,
        }
    }

    /// Emits the blocks of the subtree at `root`.
    fn emit(&mut self, root: u32, cleaning: &Cleaning<'_>) {
        let flat = self.flat;
        let root = root as usize;
        let end = flat.nodes[root].end as usize;
        // Open block contexts: (end index, kind of loose text inside).
        let mut contexts: Vec<(usize, BlockKind)> = Vec::new();
        let mut in_pre = 0usize; // end index of the innermost <pre>, or 0
        contexts.push((end, flat.nodes[root].tag.block_kind()));
        let mut i = root;
        while i < end {
            while let Some(&(context_end, kind)) = contexts.last() {
                if context_end <= i {
                    self.flush(kind);
                    contexts.pop();
                } else {
                    break;
                }
            }
            if in_pre != 0 && in_pre <= i {
                in_pre = 0;
            }
            let node = &flat.nodes[i];
            if i != root && self.skipped(i, cleaning) {
                i = node.end as usize;
                continue;
            }
            match node.tag {
                Tag::Text => {
                    if in_pre != 0 {
                        self.push_pre(node.text);
                    } else {
                        self.push_text(node.text);
                    }
                }
                Tag::Br => {
                    if in_pre != 0 {
                        self.buffer.push('\n');
                    } else {
                        self.pending_space = true;
                    }
                }
                Tag::Tr if self.is_simple_row(i) => {
                    let kind = contexts.last().map_or(BlockKind::Paragraph, |c| c.1);
                    self.flush(kind);
                    self.emit_row(i, cleaning);
                    i = node.end as usize;
                    continue;
                }
                tag if tag.is_block() => {
                    let kind = contexts.last().map_or(BlockKind::Paragraph, |c| c.1);
                    self.flush(kind);
                    if tag == Tag::Pre && in_pre == 0 {
                        in_pre = node.end as usize;
                    }
                    contexts.push((node.end as usize, tag.block_kind()));
                }
                _ => {}
            }
            i += 1;
        }
        while let Some((_, kind)) = contexts.pop() {
            self.flush(kind);
        }
    }

    /// Whether the emitter leaves out the subtree at `i`.
    fn skipped(&self, i: usize, cleaning: &Cleaning<'_>) -> bool {
        match cleaning {
            Cleaning::None => false,
            Cleaning::Conditional(stats) => {
                self.flat.is_junk(i, self.lenient) || is_link_farm(self.flat, stats, i)
            }
        }
    }

    /// A table row whose cells hold only inline content: one block. Rows of
    /// layout tables (cells holding paragraphs, lists, tables) are walked as
    /// ordinary containers instead, or a whole page would become one row.
    fn is_simple_row(&self, i: usize) -> bool {
        let end = self.flat.nodes[i].end as usize;
        self.flat.nodes[i + 1..end]
            .iter()
            .all(|n| !n.tag.is_block() || n.tag == Tag::Cell)
    }

    /// Emits a simple row, its non-empty cells joined by ` | `.
    fn emit_row(&mut self, row: usize, cleaning: &Cleaning<'_>) {
        let flat = self.flat;
        let mut cells: Vec<String> = Vec::new();
        for cell in flat.children(row) {
            if self.skipped(cell, cleaning) {
                continue;
            }
            let end = flat.nodes[cell].end as usize;
            let mut j = cell;
            while j < end {
                let node = &flat.nodes[j];
                if j != cell && self.skipped(j, cleaning) {
                    j = node.end as usize;
                    continue;
                }
                match node.tag {
                    Tag::Text => self.push_text(node.text),
                    Tag::Br => self.pending_space = true,
                    _ => {}
                }
                j += 1;
            }
            self.pending_space = false;
            let raw = std::mem::take(&mut self.buffer);
            let text = self.cut_ignored(raw);
            if !text.is_empty() {
                cells.push(text);
            }
        }
        if !cells.is_empty() {
            let text = cells.join(" | ");
            self.text_len += text.len();
            self.blocks.push(Block::new(BlockKind::TableRow, text));
        }
    }

    /// Appends text, collapsing whitespace runs to one space.
    fn push_text(&mut self, text: &str) {
        for c in text.chars() {
            if c.is_whitespace() {
                self.pending_space = true;
            } else if is_invisible(c) {
                continue;
            } else {
                if self.pending_space && !self.buffer.is_empty() {
                    self.buffer.push(' ');
                }
                self.pending_space = false;
                self.buffer.push(c);
            }
        }
    }

    /// Appends preformatted text, keeping its line breaks.
    fn push_pre(&mut self, text: &str) {
        for c in text.chars() {
            if c == '\u{a0}' {
                self.buffer.push(' ');
            } else if !is_invisible(c) && c != '\r' {
                self.buffer.push(c);
            }
        }
    }

    /// Ends the current block: cuts ignored text and keeps it if non-empty.
    fn flush(&mut self, kind: BlockKind) {
        self.pending_space = false;
        if self.buffer.is_empty() {
            return;
        }
        let raw = std::mem::take(&mut self.buffer);
        let text = if kind == BlockKind::Preformatted {
            let lines: Vec<&str> = raw.lines().map(str::trim_end).collect();
            let first = lines.iter().position(|l| !l.trim().is_empty());
            let last = lines.iter().rposition(|l| !l.trim().is_empty());
            match (first, last) {
                (Some(first), Some(last)) => lines[first..=last].join("\n"),
                _ => String::new(),
            }
        } else {
            raw
        };
        let text = self.cut_ignored(text);
        if !(text.is_empty() || self.drop_noise && is_noise_line(&text)) {
            self.text_len += text.len();
            self.blocks.push(Block::new(kind, text));
        }
    }

    /// Cuts every `ignore` match and re-normalises the whitespace left behind.
    fn cut_ignored(&self, text: String) -> String {
        if self.ignore.iter().all(|re| !re.is_match(&text)) {
            return text;
        }
        let mut text = text;
        for re in self.ignore {
            if let std::borrow::Cow::Owned(cut) = re.replace_all(&text, "") {
                text = cut;
            }
        }
        normalise(&text)
    }
}

/// A whole block that carries no content: a label left by an ad slot or a
/// widget, a byline, or a bare date stamp ("Page last updated 12 March
/// 2021"). Dates matter most: a page's "updated" line changes far more often
/// than its text, and would otherwise raise an alert on every edit.
fn is_noise_line(text: &str) -> bool {
    if text.len() > 90 {
        return false;
    }
    let lower = text
        .trim_end_matches([':', '.', '\u{2026}', '|', ' '])
        .to_lowercase();
    let label = matches!(
        lower.as_str(),
        "advertisement"
            | "advertising"
            | "advert"
            | "sponsored"
            | "sponsored content"
            | "story continues below"
            | "story continues below advertisement"
            | "continue reading below"
            | "article continues below"
            | "scroll to continue with content"
            | "you may also like"
            | "related articles"
            | "related stories"
            | "related content"
            | "read more"
            | "see more"
            | "don't miss"
            | "don\u{2019}t miss"
            | "share this article"
            | "share this page"
            | "share this"
            | "share"
            | "print"
            | "close"
            | "caption"
            | "comments"
            | "loading"
            | "bookmark and share"
            | "this slideshow requires javascript"
            | "breaking news"
    );
    label || DATE_LINE.is_match(&lower) || BYLINE.is_match(text)
}

/// A line that is only a date stamp, perhaps with a time and a label.
static DATE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    let month = r"(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|oct(ober)?|nov(ember)?|dec(ember)?)\.?";
    let day = r"((mon|tues?|wed(nes)?|thu(rs)?|fri|sat(ur)?|sun)(day)?\.?,?)";
    let date = format!(
        r"(\d{{1,2}}(st|nd|rd|th)?\s+{month},?\s+\d{{4}}|{month}\s+\d{{1,2}}(st|nd|rd|th)?,?\s+\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}})"
    );
    let time =
        r"(,?\s*(at\s*)?\d{1,2}[:.]\d{2}\s*(am|pm|a\.m\.|p\.m\.)?\s*(gmt|bst|utc|[ecmp][sd]t)?)";
    let label = r"((page\s+)?(last\s+)?(posted|published|updated|modified|reviewed|edited)(\s+on)?:?\s*|date:?\s*)";
    Regex::new(&format!(
        r"^({label}?({day}\s*)?({time}\s*,?\s*)?{date}{time}?\s*[|,]?\s*)+$"
    ))
    .expect("static regex compiles")
});

/// "By Jane Smith" or "By STAFF WRITER": a short credit line.
static BYLINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(By|BY)\s+\p{Lu}[\p{L}'\u{2019}.-]*(\s+(and\s+)?\p{Lu}[\p{L}'\u{2019}.-]*){0,4}(\s*[,|-]\s*[^.!?]{0,40})?$")
        .expect("static regex compiles")
});

/// Characters that render as nothing and would only make spurious diffs.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}'
    )
}

/// Collapses whitespace runs (NBSP included) to one space and trims.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace()) {
        let word: String = word.chars().filter(|&c| !is_invisible(c)).collect();
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_collapses_nbsp_and_trims() {
        assert_eq!(normalise("  a\u{a0}\u{a0}b\n\tc  "), "a b c");
    }

    #[test]
    fn date_stamps_and_bylines_are_noise() {
        for line in [
            "Page last updated 12 March 2021",
            "Last updated: 3 May 2022",
            "October 12, 2017",
            "Posted: Fri 6:45 PM, Feb 16, 2018 |",
            "Updated: Sat 8:31 PM, Feb 17, 2018",
            "NOVEMBER 20, 2019 10:43",
            "By JERUSALEM POST STAFF",
            "Advertisement",
        ] {
            assert!(is_noise_line(line), "{line}");
        }
        for line in [
            "Allerdale 96,471 residents",
            "By 2024 we will open two new hubs.",
            "Eden 52,630 residents.",
            "On 7 July 2022 the cabinet agreed the plan.",
        ] {
            assert!(!is_noise_line(line), "{line}");
        }
    }

    #[test]
    fn rules_are_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Rules>();
    }
}
