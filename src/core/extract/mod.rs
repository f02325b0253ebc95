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

mod choose;
mod emit;
mod flatten;
mod prescan;
mod tags;

use std::time::{Duration, Instant};

use scraper::Html;

use crate::core::model::{Block, BlockKind, Extracted};
use choose::*;
use emit::*;
use flatten::*;
use tags::*;

/// Bumped whenever a change here can change the text extracted from the same
/// HTML. Stored snapshots record it, so text from an older extractor can be
/// re-baselined silently rather than reported as a change.
pub const EXTRACTOR_VERSION: u32 = 4;

/// A watch's extraction rules, compiled. Build with [`Rules::new`].
#[derive(Debug, Clone)]
pub struct Rules {
    select: Vec<(String, scraper::Selector)>,
    exclude: Vec<(String, scraper::Selector)>,
    ignore: Vec<regex::Regex>,
    main_content: bool,
    named: Vec<(String, scraper::Selector)>,
    budget: Budget,
}

/// How much work one page may cost, whatever it holds: from `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Elements nested deeper than this are flattened into their ancestor
    /// at this depth before parsing (`limits.max_depth`).
    pub max_depth: usize,
    /// A page cut into more blocks than this is refused
    /// (`limits.max_blocks`).
    pub max_blocks: usize,
    /// Time allowed to parse and read one page (`limits.page_deadline`).
    pub deadline: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_depth: 512,
            max_blocks: 20_000,
            deadline: Duration::from_secs(20),
        }
    }
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
    /// The page cuts into more blocks than the budget allows: a flood, not
    /// a page anyone reads.
    #[error("the page has more than {limit} blocks of text (limits.max_blocks)")]
    TooManyBlocks {
        /// The limit.
        limit: usize,
    },
    /// Reading the page took longer than the budget allows.
    #[error(
        "reading the page took longer than {} (limits.page_deadline)",
        humantime::format_duration(*.limit)
    )]
    OutOfTime {
        /// The time allowed.
        limit: Duration,
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
            budget: Budget::default(),
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
            budget: Budget::default(),
        })
    }

    /// Sets the work budget for each page read with these rules.
    #[must_use]
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// The work budget for each page.
    pub fn budget(&self) -> Budget {
        self.budget
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
    let budget = rules.budget;
    let deadline = Instant::now() + budget.deadline;
    let out_of_time = || ExtractError::OutOfTime {
        limit: budget.deadline,
    };
    // A watch's own selectors may match on any attribute; without them the
    // parse needs only the few the extractor and html5ever read.
    let strip_attributes =
        rules.select.is_empty() && rules.exclude.is_empty() && rules.named.is_empty();
    let (pieces, markup) = prescan::pieces(html, budget.max_depth, strip_attributes);
    let document = parse(&pieces, markup, deadline).ok_or_else(out_of_time)?;
    let mut flat = Flat::build(&document, rules, deadline)?;
    if rules.finds_main_content() {
        flat.settle_class_junk();
    }
    let mut emitter = Emitter::new(&flat, &rules.ignore);
    emitter.max_blocks = budget.max_blocks;
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
            second.max_blocks = budget.max_blocks;
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
    if emitter.over_budget {
        return Err(ExtractError::TooManyBlocks {
            limit: budget.max_blocks,
        });
    }
    if Instant::now() > deadline {
        return Err(out_of_time());
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

/// Parses the page's `pieces` (the markup that `prescan` keeps) in slices,
/// looking at the clock between them, so a page that is slow to parse
/// fails the check instead of holding a worker. `None` when the deadline
/// passed. Each slice is copied into the parser's own buffer; html5ever
/// reads input split anywhere as it reads it whole, but each piece fed
/// costs a buffer of its own and a restart of the tokenizer, so a page
/// cut into many pieces (one per attribute left out) is joined first.
/// `markup` is how many `<` open markup in them: about one node each.
fn parse(pieces: &[&str], markup: usize, deadline: Instant) -> Option<Html> {
    if pieces.len() > 8 {
        return parse(&[&pieces.concat()], markup, deadline);
    }
    use html5ever::tendril::TendrilSink;
    const SLICE: usize = 64 * 1024;
    // About one node per `<` (a tag, or the text after it): the tree's node
    // vector made that size up front is not copied at every doubling as it
    // grows, and does not end with up to twice the room it needs (with two
    // pages parsed at once, that was a pass's peak memory). The scan before
    // the parse counted them as it went.
    let mut document = Html::new_document();
    let nodes = markup + 16;
    document.tree = ego_tree::Tree::with_capacity(scraper::Node::Document, nodes.min(1 << 16));
    let mut parser = html5ever::driver::parse_document(
        scraper::HtmlTreeSink::new(document),
        html5ever::ParseOpts::default(),
    );
    for piece in pieces {
        let mut rest = *piece;
        while !rest.is_empty() {
            let mut cut = rest.len().min(SLICE);
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            let (slice, tail) = rest.split_at(cut);
            parser.process(slice.into());
            rest = tail;
            if Instant::now() > deadline {
                return None;
            }
        }
    }
    Some(parser.finish())
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
            "By Jane Smith, Health Editor",
            "Advertisement",
            "ADVERTISEMENT",
            "Read more\u{2026}",
            "Share this page:",
            "Don\u{2019}t miss",
            // Digits outside ASCII are digits to the pattern too.
            "\u{664} March 2021",
        ] {
            assert!(is_noise_line(line), "{line}");
        }
        for line in [
            "Allerdale 96,471 residents",
            "By 2024 we will open two new hubs.",
            "Eden 52,630 residents.",
            "On 7 July 2022 the cabinet agreed the plan.",
            "Posted on a Friday in March",
            "by Jane Smith",
            "Bypass works start soon",
            "Read more about the plan",
            "Advertisements",
        ] {
            assert!(!is_noise_line(line), "{line}");
        }
    }

    #[test]
    fn control_characters_never_reach_the_text() {
        let html = "<html><head><title>T\u{1b}[2J</title></head><body><main>\
                    <p>Red \u{1b}[31malert\u{7}\u{0} and\ttab</p><pre>a\u{1b}\nb</pre></main></body></html>";
        let extracted = extract(html, &Rules::default()).expect("extracts");
        let text = extracted.render();
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{text:?}"
        );
        assert!(text.contains("Red [31malert and tab"), "{text:?}");
        assert_eq!(extracted.title.as_deref(), Some("T[2J"));
    }

    #[test]
    fn a_flood_of_blocks_is_refused_and_deep_nesting_is_read() {
        let rules = Rules::default().with_budget(Budget {
            max_blocks: 100,
            ..Budget::default()
        });
        let flood = format!("<body>{}</body>", "<p>word</p>".repeat(1_000));
        assert!(matches!(
            extract(&flood, &rules),
            Err(ExtractError::TooManyBlocks { limit: 100 })
        ));
        let n = 20_000;
        let deep = format!(
            "<body>{}<p>deep down</p>{}</body>",
            "<div>".repeat(n),
            "</div>".repeat(n)
        );
        let extracted = extract(&deep, &Rules::default()).expect("extracts");
        assert_eq!(extracted.render().trim(), "deep down");
    }

    #[test]
    fn a_page_over_its_deadline_fails() {
        let rules = Rules::default().with_budget(Budget {
            deadline: std::time::Duration::ZERO,
            ..Budget::default()
        });
        let page = format!("<body>{}</body>", "<p>word</p>".repeat(20_000));
        assert!(matches!(
            extract(&page, &rules),
            Err(ExtractError::OutOfTime { .. })
        ));
    }

    #[test]
    fn rules_are_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Rules>();
    }

    #[test]
    fn selectors_on_any_attribute_still_match() {
        // Without selectors of its own a watch's pages are parsed without
        // the attributes nobody reads; with them, every attribute is there.
        let html = "<html><body><main><h1>Board</h1>\
                    <ul data-list=\"members\"><li>Alice Smith</li><li>Bob Jones</li></ul>\
                    <p data-ad>Buy now</p><p>Meets monthly.</p>\
                    <span itemprop=\"population\">274,000</span></main></body></html>";
        let texts = |rules: &Rules| -> Vec<String> {
            let extracted = extract(html, rules).expect("extracts");
            extracted.blocks.iter().map(|b| b.text.clone()).collect()
        };
        let select = Rules::new(&["[data-list=members] li".into()], &[], &[], true).unwrap();
        assert_eq!(texts(&select), ["Alice Smith", "Bob Jones"]);
        let exclude = Rules::new(&[], &["[data-ad]".into()], &[], false).unwrap();
        let kept = texts(&exclude);
        assert!(!kept.iter().any(|t| t.contains("Buy now")), "{kept:?}");
        assert!(kept.iter().any(|t| t.contains("Meets monthly")), "{kept:?}");
        let named = Rules::new(&[], &[], &[], true)
            .unwrap()
            .with_named(&[("population".into(), "[itemprop=population]".into())])
            .unwrap();
        assert!(texts(&named).contains(&"population: 274,000".to_owned()));
        // And without any, the same page reads the same as with them all kept.
        let plain = Rules::new(&[], &[], &[], true).unwrap();
        assert!(texts(&plain).iter().any(|t| t.contains("Buy now")));
    }
}
