//! The one scan of the markup before it is parsed: the nesting cap, and
//! style sheets left out.
//!
//! **The nesting cap.** html5ever looks down its stack of open elements for
//! every start tag ("is there a `<p>` in button scope?"), so a page of n
//! nested elements costs O(n²) to parse: 100,000 nested `<div>`s took 24 s.
//! The cap has to act before the parser sees the tags. One linear scan
//! follows the nesting as the tags open and close; start tags that would
//! open an element deeper than the cap are left out, with their end tags,
//! so deeper content is flattened into the element at the cap, as browsers
//! do (Chromium's parser stops nesting at 512).
//!
//! **Style sheets.** The text of a `<style>` element is never page text
//! (see `tags::never_text`), yet html5ever tokenizes it line by line and
//! copies it into the tree: on the benchmark's pages, an eighth of the
//! bytes. The scan already knows where each raw-text element ends, so a
//! style sheet's text is left out and html5ever sees `<style></style>`.
//! The tree differs from the page's only in that text. The scan leaves
//! style sheets in once the page holds anything where its reading of the
//! markup could part from html5ever's (foreign content, `<select>`,
//! `<frameset>`, `<plaintext>`, a `<![CDATA[`, a script holding `<!--`).
//!
//! A page that needs neither is passed on untouched, byte for byte.
//!
//! The scan is a tokenizer of the markup's shape only: tags and their
//! attributes, comments, doctypes and raw-text elements (`<script>`,
//! `<style>`, …), each ending where the HTML tokenizer ends it. It does not
//! build a tree, so it is linear in the page's length whatever the page
//! holds.

#[cfg(test)]
use std::borrow::Cow;
use std::collections::HashMap;

/// A tag name lower-cased into a small buffer, once per tag, for the name
/// tests below: they run for every tag of every page, so they compare
/// bytes in one `match` rather than strings one by one. Empty for names
/// longer than any they look for.
struct Lowered {
    buf: [u8; 12],
    len: usize,
}

impl Lowered {
    fn new(name: &str) -> Self {
        let bytes = name.as_bytes();
        let mut buf = [0u8; 12];
        if bytes.len() > buf.len() {
            return Self { buf, len: 0 };
        }
        for (to, from) in buf.iter_mut().zip(bytes) {
            *to = from.to_ascii_lowercase();
        }
        Self {
            buf,
            len: bytes.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Elements that never have content or an end tag.
fn is_void(name: &Lowered) -> bool {
    matches!(
        name.bytes(),
        b"area"
            | b"base"
            | b"br"
            | b"col"
            | b"embed"
            | b"hr"
            | b"img"
            | b"input"
            | b"link"
            | b"meta"
            | b"source"
            | b"track"
            | b"wbr"
            | b"param"
            | b"keygen"
            | b"frame"
    )
}

/// Elements whose text is raw: no tags inside until their own end tag.
fn is_raw_text(name: &Lowered) -> bool {
    matches!(
        name.bytes(),
        b"script"
            | b"style"
            | b"textarea"
            | b"title"
            | b"xmp"
            | b"iframe"
            | b"noembed"
            | b"noframes"
            | b"noscript"
    )
}

/// Elements whose end tag is optional: a start tag of the same group
/// closes an open one, so they must not be counted as nesting.
fn group(name: &Lowered) -> Option<u8> {
    match name.bytes() {
        b"p" => Some(1),
        b"li" => Some(2),
        b"dt" | b"dd" => Some(3),
        b"option" => Some(4),
        b"optgroup" => Some(5),
        b"tr" => Some(6),
        b"td" | b"th" => Some(7),
        b"thead" | b"tbody" | b"tfoot" => Some(8),
        b"rb" | b"rt" | b"rp" | b"rtc" => Some(9),
        _ => None,
    }
}

/// How far down the stack an implicitly closed element is looked for: far
/// enough for real pages, short enough to keep the scan linear.
const IMPLIED_CLOSE_REACH: usize = 32;

/// `html` with every element nested deeper than `max_depth` flattened into
/// its ancestor at that depth, and the text of its style sheets left out;
/// the same text when there is neither.
#[cfg(test)]
pub(super) fn prepare(html: &str, max_depth: usize) -> Cow<'_, str> {
    match pieces(html, max_depth).as_slice() {
        [whole] => Cow::Borrowed(whole),
        pieces => Cow::Owned(pieces.concat()),
    }
}

/// The same text as [`prepare`], as the pieces of `html` it keeps, in
/// order: the parser is fed them one after the other, so the page is
/// copied once (into the parser's buffers) rather than first into a
/// string without the left-out ranges. One piece, the whole page, when
/// nothing is left out.
pub(super) fn pieces(html: &str, max_depth: usize) -> Vec<&str> {
    let drop = ranges_to_drop(html, max_depth);
    let mut pieces = Vec::with_capacity(drop.len() + 1);
    let mut from = 0;
    for (start, end) in drop {
        pieces.push(&html[from..start]);
        from = end;
    }
    pieces.push(&html[from..]);
    pieces
}

/// The byte ranges to leave out, in order: start and end tags over the
/// cap, and the text of style sheets.
fn ranges_to_drop(html: &str, max_depth: usize) -> Vec<(usize, usize)> {
    let bytes = html.as_bytes();
    // Open elements, by name as written, with their group (read once per
    // element: the implied-close search below looks at up to 32 of them for
    // every `<p>`, `<li>` or `<td>`).
    let mut open: Vec<(&str, Option<u8>)> = Vec::new();
    // Start tags left out and not yet closed, by lower-cased name.
    let mut dropped: HashMap<String, usize> = HashMap::new();
    let mut foreign = 0usize; // <svg>/<math> open: `/>` closes there
    // Whether this scan still reads the markup exactly as html5ever does,
    // so that what it takes for a style sheet's text is that and nothing
    // else. The cap needs no such care: its misreadings only move where a
    // hostile page is flattened.
    let mut sheets_exact = true;
    let mut drop = Vec::new();
    let mut i = 0;
    while let Some(offset) = memchr_lt(&bytes[i..]) {
        let start = i + offset;
        let rest = &bytes[start..];
        if rest.starts_with(b"<!--") {
            i = comment_end(bytes, start + 4);
            continue;
        }
        if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            // In foreign content `<![CDATA[` runs to `]]>`, and where the
            // foreign content ends is beyond this scan.
            sheets_exact &= !rest.starts_with(b"<![CDATA[");
            i = find(bytes, start + 2, b">").map_or(bytes.len(), |e| e + 1);
            continue;
        }
        let closing = rest.get(1) == Some(&b'/');
        let name_start = start + if closing { 2 } else { 1 };
        match bytes.get(name_start) {
            Some(b) if b.is_ascii_alphabetic() => {}
            // `</>` is nothing at all; `</` before anything else but a
            // letter opens a bogus comment that the next `>` closes.
            Some(b'>') if closing => {
                i = name_start + 1;
                continue;
            }
            Some(_) if closing => {
                i = find(bytes, name_start, b">").map_or(bytes.len(), |e| e + 1);
                continue;
            }
            _ => {
                i = start + 1;
                continue;
            }
        }
        let name_end = bytes[name_start..]
            .iter()
            .position(|&b| b.is_ascii_whitespace() || b == b'/' || b == b'>')
            .map_or(bytes.len(), |p| name_start + p);
        let name = &html[name_start..name_end];
        let (end, self_closing) = tag_end(bytes, name_end);
        i = end;
        if closing {
            // Nothing was left out on almost every page: no name to look up.
            let left_out = if dropped.is_empty() {
                None
            } else {
                dropped
                    .get_mut(&name.to_ascii_lowercase())
                    .filter(|c| **c > 0)
            };
            if let Some(count) = left_out {
                *count -= 1;
                drop.push((start, end));
            } else if let Some(at) = open.iter().rposition(|(o, _)| o.eq_ignore_ascii_case(name)) {
                for (closed, _) in open.drain(at..) {
                    if is_foreign(closed) {
                        foreign = foreign.saturating_sub(1);
                    }
                }
            }
            continue;
        }
        let lower = Lowered::new(name);
        sheets_exact &= !parts_from_html5ever(&lower);
        if is_void(&lower) || (self_closing && foreign > 0) {
            continue;
        }
        if is_raw_text(&lower) {
            // Skip to the end tag: nothing inside is markup.
            let close = raw_text_end(bytes, end, name);
            if sheets_exact && foreign == 0 {
                let content = &bytes[end..close.unwrap_or(bytes.len())];
                if lower.bytes() == b"style" {
                    // An unclosed sheet runs to the end of the page: left
                    // in, as there is no end tag to keep.
                    if close.is_some() && !content.is_empty() {
                        drop.push((end, end + content.len()));
                    }
                } else if lower.bytes() == b"script" {
                    // `<!--` in a script may start an escape in which its
                    // first `</script>` does not end it.
                    sheets_exact = memchr::memmem::find(content, b"<!--").is_none();
                }
            }
            i = close.unwrap_or(bytes.len());
            continue;
        }
        let own_group = group(&lower);
        if let Some(g) = own_group {
            let reach = open.len().saturating_sub(IMPLIED_CLOSE_REACH);
            if let Some(at) = open[reach..]
                .iter()
                .rposition(|(_, o)| *o == Some(g))
                .map(|p| reach + p)
            {
                open.truncate(at);
            }
        }
        if open.len() >= max_depth {
            *dropped.entry(name.to_ascii_lowercase()).or_default() += 1;
            drop.push((start, end));
            continue;
        }
        if matches!(lower.bytes(), b"svg" | b"math") {
            foreign += 1;
        }
        open.push((name, own_group));
    }
    drop
}

fn is_foreign(name: &str) -> bool {
    name.eq_ignore_ascii_case("svg") || name.eq_ignore_ascii_case("math")
}

/// Start tags after which html5ever may read later markup otherwise than
/// this scan: foreign content; a `<select>`, a frameset or a template
/// (where a `<col>` makes a column group), in which a `<style>` start tag
/// may be ignored and its text read as markup; and `<plaintext>` (the rest
/// of the page is text).
fn parts_from_html5ever(name: &Lowered) -> bool {
    matches!(
        name.bytes(),
        b"svg" | b"math" | b"select" | b"frameset" | b"template" | b"plaintext"
    )
}

fn memchr_lt(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'<', bytes)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(bytes.get(from..)?, needle).map(|p| from + p)
}

/// One past the end of a comment whose `<!--` ends just before `i`. As the
/// HTML tokenizer reads it: `<!-->` and `<!--->` are whole comments, and
/// both `-->` and `--!>` close one.
fn comment_end(bytes: &[u8], i: usize) -> usize {
    let rest = &bytes[i.min(bytes.len())..];
    if rest.starts_with(b">") {
        return i + 1;
    }
    if rest.starts_with(b"->") {
        return i + 2;
    }
    let mut from = i;
    while let Some(dashes) = find(bytes, from, b"--") {
        match bytes.get(dashes + 2) {
            Some(b'>') => return dashes + 3,
            Some(b'!') if bytes.get(dashes + 3) == Some(&b'>') => return dashes + 4,
            _ => from = dashes + 1,
        }
    }
    bytes.len()
}

/// The end of a tag whose name ends at `i` (one past its `>`), and whether
/// it was written `/>`: the HTML tokenizer's attribute states, so that a
/// `>` in a quoted value does not end the tag and one anywhere else does.
fn tag_end(bytes: &[u8], mut i: usize) -> (usize, bool) {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        /// Between attributes (also just after the tag name).
        Between,
        /// In an attribute's name.
        Name,
        /// After a name, before `=` or the next attribute.
        AfterName,
        /// After `=`, before the value.
        BeforeValue,
        /// After a quoted value's closing quote.
        AfterQuoted,
        /// In an unquoted value.
        Unquoted,
        /// Just after a `/`.
        Slash,
    }
    let space = |b: u8| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let mut state = State::Between;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        state = match (state, b) {
            (State::Slash, b'>') => return (i, true),
            (_, b'>') => return (i, false),
            (State::BeforeValue, quote @ (b'"' | b'\'')) => {
                match memchr::memchr(quote, &bytes[i..]) {
                    Some(p) => i += p + 1,
                    None => return (bytes.len(), false),
                }
                State::AfterQuoted
            }
            (State::Unquoted, b) if !space(b) => State::Unquoted,
            (State::BeforeValue, b) if space(b) => State::BeforeValue,
            (State::BeforeValue, _) => State::Unquoted,
            (State::Name | State::AfterName, b'=') => State::BeforeValue,
            (State::Name, b) if !space(b) && b != b'/' => State::Name,
            (State::Name | State::AfterName, b) if space(b) => State::AfterName,
            (_, b'/') => State::Slash,
            (_, b) if space(b) => State::Between,
            // A `=` where a name should start begins a name ("=").
            _ => State::Name,
        };
    }
    (bytes.len(), false)
}

/// Where the raw text of element `name` ends: just before its end tag.
fn raw_text_end(bytes: &[u8], from: usize, name: &str) -> Option<usize> {
    let mut i = from;
    while let Some(p) = find(bytes, i, b"</") {
        let name_at = p + 2;
        let candidate = bytes.get(name_at..name_at + name.len())?;
        let after = bytes.get(name_at + name.len()).copied();
        if candidate.eq_ignore_ascii_case(name.as_bytes())
            && after.is_none_or(|b| b.is_ascii_whitespace() || b == b'>' || b == b'/')
        {
            return Some(p);
        }
        i = p + 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_of(html: &str) -> usize {
        let document = scraper::Html::parse_document(html);
        document
            .tree
            .nodes()
            .map(|node| node.ancestors().count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn name_tests_ignore_case_and_know_every_listed_name() {
        let is_void = |name: &str| is_void(&Lowered::new(name));
        let is_raw_text = |name: &str| is_raw_text(&Lowered::new(name));
        let group = |name: &str| group(&Lowered::new(name));
        for name in ["br", "BR", "Img", "keygen", "frame"] {
            assert!(is_void(name), "{name}");
        }
        for name in ["script", "STYLE", "NoScript", "noframes", "xmp"] {
            assert!(is_raw_text(name), "{name}");
        }
        assert_eq!(group("P"), Some(1));
        assert_eq!(group("dd"), group("DT"));
        assert_eq!(group("TFoot"), Some(8));
        assert_eq!(group("optgroup"), Some(5));
        for name in [
            "div",
            "frameset",
            "brr",
            "scripts",
            "",
            "optgroups",
            "p2",
            "scriptscripts",
        ] {
            assert!(
                !is_void(name) && !is_raw_text(name) && group(name).is_none(),
                "{name}"
            );
        }
        assert!(parts_from_html5ever(&Lowered::new("SVG")));
        assert!(!parts_from_html5ever(&Lowered::new("templates")));
    }

    #[test]
    fn shallow_pages_pass_untouched() {
        let html = "<html><body><div><p>One<p>Two<ul><li>a<li>b</ul></div>\
                    <script>if (a<b) { x = '<div>'; }</script></body></html>";
        assert!(matches!(prepare(html, 8), Cow::Borrowed(_)));
    }

    #[test]
    fn deep_nesting_is_flattened_at_the_cap() {
        let n = 5_000;
        let html = format!("{}deep text{}", "<div>".repeat(n), "</div>".repeat(n));
        let capped = prepare(&html, 100);
        assert!(capped.contains("deep text"));
        assert!(depth_of(&capped) <= 100 + 4, "{}", depth_of(&capped));
    }

    #[test]
    fn unclosed_paragraphs_and_items_are_not_nesting() {
        let html = format!("<body>{}</body>", "<p>para".repeat(2_000));
        assert!(matches!(prepare(&html, 16), Cow::Borrowed(_)));
        let html = format!("<ul>{}</ul>", "<li>item".repeat(2_000));
        assert!(matches!(prepare(&html, 16), Cow::Borrowed(_)));
    }

    #[test]
    fn tags_in_comments_attributes_and_scripts_do_not_count() {
        let inner = "<div>".repeat(100);
        let html =
            format!("<!-- {inner} --><a title=\"{inner}\">x</a><script>{inner}</script><p>end");
        assert!(matches!(prepare(&html, 8), Cow::Borrowed(_)));
    }

    #[test]
    fn self_closing_divs_still_nest_but_svg_children_do_not() {
        let html = "<div/>".repeat(50);
        assert!(matches!(prepare(&html, 10), Cow::Owned(_)));
        let html = format!("<svg>{}</svg>", "<path d='M0'/>".repeat(50));
        assert!(matches!(prepare(&html, 10), Cow::Borrowed(_)));
    }

    /// What a parse gives the extractor, in document order: every element
    /// with its attributes, every comment, and every text but a style
    /// sheet's.
    fn shape(html: &str) -> Vec<String> {
        let document = scraper::Html::parse_document(html);
        let mut out = Vec::new();
        for node in document.tree.root().descendants() {
            match node.value() {
                scraper::Node::Element(element) => {
                    let mut attrs: Vec<String> = element
                        .attrs()
                        .map(|(name, value)| format!("{name}={value:?}"))
                        .collect();
                    attrs.sort();
                    out.push(format!(
                        "<{:?}:{} {}>",
                        element.name.ns,
                        element.name(),
                        attrs.join(" ")
                    ));
                }
                scraper::Node::Text(text) => {
                    let in_sheet = node
                        .parent()
                        .and_then(|p| p.value().as_element().map(|e| e.name() == "style"))
                        .unwrap_or(false);
                    if !in_sheet {
                        out.push(format!("{:?}", &**text));
                    }
                }
                scraper::Node::Comment(comment) => out.push(format!("<!--{:?}", &**comment)),
                _ => {}
            }
        }
        out
    }

    /// Checks that `prepare` changed nothing the extractor reads.
    fn assert_same_shape(html: &str) {
        let prepared = prepare(html, 512);
        assert_eq!(
            shape(html),
            shape(&prepared),
            "page: {html:?}\nprepared: {prepared:?}"
        );
    }

    #[test]
    fn style_sheets_are_left_out_and_nothing_else_changes() {
        let html = "<html><head><style media=\"screen\">\n.a{color:red}\n.b > p {margin:0}\n\
                    </style><STYLE>x</STYLE ></head><body><p class=a>Text</p>\
                    <style>/* in the body */</style><p>More</p></body></html>";
        let prepared = prepare(html, 512);
        assert!(matches!(prepared, Cow::Owned(_)));
        assert!(!prepared.contains("color") && !prepared.contains("in the body"));
        assert!(!prepared.contains(">x<"));
        assert!(prepared.contains("<p class=a>Text</p>") && prepared.contains("<p>More</p>"));
        assert_same_shape(html);
        // Empty and unclosed sheets are left as they are.
        for html in ["<style></style><p>a", "<p>a<style>.x{}"] {
            assert!(matches!(prepare(html, 512), Cow::Borrowed(_)), "{html}");
        }
    }

    #[test]
    fn markup_that_hides_or_fakes_a_sheet_is_read_as_html5ever_reads_it() {
        let pages = [
            // Tags in comments, bogus comments, attribute values, raw text.
            "<!--><style>a</style>--><p>one",
            "<!---><style>a</style><p>two",
            "<!-- --!><style>a</style><p>three",
            "<!-- -- ><style>a</style> --><p>four",
            "</ <style>a</style><p>five",
            "</><style>a</style><p>six",
            "<?php <style> ?>a</style><p>seven",
            "<a title=\"<style>\">x</a><style>b</style><p>eight",
            "<a =\">\"><style>c</style><p>nine",
            "<a b==\"><style>d</style><p>\">ten",
            "<a b=c\"<style>e</style><p>eleven",
            "<a b/c='<style>'>f</a><style>g</style>",
            "<textarea><style>a</style></textarea><p>twelve",
            "<title><style>a</style></title><style>b</style>",
            "<script>var s = '<style>';</script><style>c</style><p>thirteen",
            "<noscript><style>a</style></noscript><p>fourteen",
            // Where html5ever's reading may part from the scan's.
            "<template><col><style><!--</style><p>a</p>--></template>",
            "<script><!--<script></script><style></script><p>hidden</p></style>",
            "<plaintext><style>a</style><p>fifteen",
            "<svg><style><p>breaks out</p></style></svg><style>a</style>",
            "<math><![CDATA[ </math> ]]><style>a<p>b</style>",
            "<select><style>a</style><option>b</select><style>c</style>",
            "<frameset><style>a</style><frame></frameset>",
            "<table><style>a</style><tr><td>b<style>c</style></table>",
            "<template><col><style>a</style></template><p>sixteen",
            "<style>a</style\n>b<style>c</styles>d</style\r>e",
        ];
        for html in pages {
            assert_same_shape(html);
        }
    }

    #[test]
    fn random_markup_parses_to_the_same_shape() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        const PIECES: &[&str] = &[
            "<style>",
            "</style>",
            "<STYLE type=x>",
            "</style ",
            "<script>",
            "</script>",
            "<!--",
            "-->",
            "--!>",
            "<!-->",
            "<!",
            ">",
            "</",
            "<",
            "/>",
            "=",
            "\"",
            "'",
            " ",
            "\n",
            "\r",
            "a",
            "p{}",
            "<p>",
            "</p>",
            "<div class=\"",
            "<a href=",
            "<textarea>",
            "</textarea>",
            "<title>",
            "<svg>",
            "</svg>",
            "<math>",
            "<select>",
            "</select>",
            "<option>",
            "<plaintext>",
            "<![CDATA[",
            "]]>",
            "<table>",
            "<td>",
            "<template>",
            "</template>",
            "<noscript>",
            "</noscript>",
            "<col>",
            "<frameset>",
            "<br/>",
            "<?",
            "&lt;",
        ];
        // More cases by hand: `TIDINGS_FUZZ_CASES=100000 cargo test --release --lib prescan`.
        let cases = std::env::var("TIDINGS_FUZZ_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(2_000);
        let config = Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        };
        let seed: u8 = std::env::var("TIDINGS_FUZZ_SEED")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(14);
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let page = proptest::collection::vec(proptest::sample::select(PIECES), 0..40)
            .prop_map(|pieces| pieces.concat());
        runner
            .run(&page, |html| {
                let prepared = prepare(&html, 512);
                prop_assert_eq!(shape(&html), shape(&prepared), "page: {:?}", html);
                Ok(())
            })
            .unwrap();
    }
}
