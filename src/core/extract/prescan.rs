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
//! **Attributes nobody reads.** When a watch has no CSS selectors of its
//! own, the extractor reads a handful of attributes (class, id, role, …;
//! see [`attribute_use`]) and html5ever's tree builder a few more. Every
//! other attribute (`href` targets, `d` paths, `data-*`, `width`, …) is
//! left out before the parse: html5ever tokenizes attribute names a
//! character at a time and builds each attribute as it goes, and on the
//! benchmark's pages those were a tenth of the parse. An `href` is kept only
//! as far as the extractor looks at it: whether it starts with `#`. The
//! scan stops leaving attributes out at anything where its reading of the
//! tags could part from html5ever's (see `attrs_exact` below), so what it
//! takes for an attribute is one.
//!
//! A page that needs none of this is passed on untouched, byte for byte.
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
/// its ancestor at that depth, the text of its style sheets left out, and
/// (with `strip_attributes`) the attributes nobody reads; the same text
/// when there is none of these.
#[cfg(test)]
pub(super) fn prepare(html: &str, max_depth: usize, strip_attributes: bool) -> Cow<'_, str> {
    match pieces(html, max_depth, strip_attributes).0.as_slice() {
        [whole] => Cow::Borrowed(whole),
        pieces => Cow::Owned(pieces.concat()),
    }
}

/// The same text as [`prepare`], as the pieces of `html` it keeps, in
/// order: the parser is fed them one after the other, so the page is
/// copied once (into the parser's buffers) rather than first into a
/// string without the left-out ranges. One piece, the whole page, when
/// nothing is left out. With them, how many `<` open markup in what is
/// kept (tags, comments and the like): about the number of nodes the
/// parse will make.
pub(super) fn pieces(html: &str, max_depth: usize, strip_attributes: bool) -> (Vec<&str>, usize) {
    let (drop, markup) = ranges_to_drop(html, max_depth, strip_attributes);
    let mut pieces = Vec::with_capacity(drop.len() + 1);
    let mut from = 0;
    for (start, end) in drop {
        pieces.push(&html[from..start]);
        from = end;
    }
    pieces.push(&html[from..]);
    (pieces, markup)
}

/// The byte ranges to leave out, in order: start and end tags over the
/// cap, the text of style sheets, and (with `strip_attributes`) unread
/// attributes.
fn ranges_to_drop(
    html: &str,
    max_depth: usize,
    strip_attributes: bool,
) -> (Vec<(usize, usize)>, usize) {
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
    // Whether this scan still takes for a tag exactly what html5ever takes
    // for one, so that what it leaves out of a tag is an attribute and not
    // a page's text. Only a few things can make them part (html5ever reading
    // text where the scan reads tags): a `<plaintext>`, a CDATA section, a
    // script that may run past its first end tag, and a raw-text element
    // that html5ever may not read as one (in foreign content, or after the
    // markup that ends `sheets_exact`) when its text holds a `<`. Where
    // the scan reads raw text that html5ever reads as markup, it merely
    // leaves those tags' attributes in.
    let mut attrs_exact = strip_attributes;
    let mut unread = Vec::new();
    let mut drop = Vec::new();
    let mut markup = 0;
    let mut i = 0;
    while let Some(offset) = memchr_lt(&bytes[i..]) {
        markup += 1;
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
            attrs_exact &= !rest.starts_with(b"<![CDATA[");
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
        unread.clear();
        let strip = attrs_exact && !closing;
        let (end, self_closing) = tag_end(html, name_end, strip.then_some(&mut unread));
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
        match lower.bytes() {
            // Formatting elements left open are reopened by the parser,
            // at most three alike: whether two are alike depends on all
            // their attributes (the "Noah's Ark" rule). `<a>` and `<nobr>`
            // close any open one of their kind first, so never reach it.
            b"b" | b"big" | b"code" | b"em" | b"font" | b"i" | b"s" | b"small" | b"strike"
            | b"strong" | b"tt" | b"u" => unread.clear(),
            // A second `<html>` or `<body>` adds the attributes the first
            // lacked: an `href` left out of the first would let the
            // second's be the one read.
            b"html" | b"body" => unread.retain(|&(start, _)| {
                html.as_bytes()[start..]
                    .get(..4)
                    .is_none_or(|name| !name.eq_ignore_ascii_case(b"href"))
            }),
            _ => {}
        }
        let context_exact = sheets_exact && foreign == 0;
        sheets_exact &= !parts_from_html5ever(&lower);
        attrs_exact &= lower.bytes() != b"plaintext";
        if is_void(&lower) || (self_closing && foreign > 0) {
            drop.extend_from_slice(&unread);
            continue;
        }
        if is_raw_text(&lower) {
            drop.extend_from_slice(&unread);
            // Skip to the end tag: nothing inside is markup.
            let close = raw_text_end(bytes, end, name);
            if !context_exact {
                let content = &bytes[end..close.unwrap_or(bytes.len())];
                attrs_exact &= memchr_lt(content).is_none();
            }
            if context_exact {
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
                    attrs_exact &= sheets_exact;
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
        drop.extend_from_slice(&unread);
        if matches!(lower.bytes(), b"svg" | b"math") {
            foreign += 1;
        }
        open.push((name, own_group));
    }
    (drop, markup)
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
///
/// With `unread`, also the byte ranges of the tag's attributes that nobody
/// reads (see [`attribute_use`]), in order, for the caller to leave out.
fn tag_end(
    html: &str,
    mut i: usize,
    mut unread: Option<&mut Vec<(usize, usize)>>,
) -> (usize, bool) {
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
    let bytes = html.as_bytes();
    let space = |b: u8| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let mut state = State::Between;
    // The attribute being read: where its name starts and ends, where its
    // value starts (after any quote) and ends (before any quote), and
    // whether it came straight after a `/`.
    let mut attr = Attr::default();
    let mut hrefs = 0u32;
    while i < bytes.len() {
        let b = bytes[i];
        let at = i;
        i += 1;
        let next = match (state, b) {
            (State::Slash, b'>') => State::Slash,
            (_, b'>') => State::Between,
            (State::BeforeValue, quote @ (b'"' | b'\'')) => {
                attr.value = at + 1;
                match memchr::memchr(quote, &bytes[i..]) {
                    Some(p) => i += p + 1,
                    None => return (bytes.len(), false),
                }
                attr.value_end = i - 1;
                attr.quoted = true;
                State::AfterQuoted
            }
            (State::Unquoted, b) if !space(b) => State::Unquoted,
            (State::BeforeValue, b) if space(b) => State::BeforeValue,
            (State::BeforeValue, _) => {
                attr.value = at;
                State::Unquoted
            }
            (State::Name | State::AfterName, b'=') => State::BeforeValue,
            (State::Name, b) if !space(b) && b != b'/' => State::Name,
            (State::Name | State::AfterName, b) if space(b) => State::AfterName,
            (_, b'/') => State::Slash,
            (_, b) if space(b) => State::Between,
            // A `=` where a name should start begins a name ("=").
            _ => State::Name,
        };
        // An attribute runs from its name's first byte until the tag ends
        // or the next attribute starts.
        if let Some(unread) = unread.as_deref_mut() {
            let active = |s: State| !matches!(s, State::Between | State::Slash);
            if state == State::Name && next != State::Name {
                attr.name_end = at;
            }
            if state == State::Unquoted && next != State::Unquoted {
                attr.value_end = at;
            }
            let starts = next == State::Name && state != State::Name;
            if active(state) && (!active(next) || starts || b == b'>') {
                attr.end = match state {
                    State::AfterName => attr.name_end,
                    State::AfterQuoted => attr.value_end + 1,
                    _ => at,
                };
                hrefs += u32::from(attr.is_href(html));
                attr.leave_out(html, unread);
            }
            if starts {
                attr = Attr {
                    name: at,
                    after_slash: state == State::Slash,
                    ..Attr::default()
                };
            }
        }
        if b == b'>' {
            if hrefs > 1
                && let Some(unread) = unread
            {
                unread.clear();
            }
            return (i, state == State::Slash);
        }
        // The bytes that cannot change the state are passed over at once:
        // the rest of a name or of an unquoted value.
        match next {
            State::Name => {
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'/' | b'>' | b'='
                    )
                {
                    i += 1;
                }
            }
            State::Unquoted => {
                while i < bytes.len()
                    && !matches!(bytes[i], b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'>')
                {
                    i += 1;
                }
            }
            _ => {}
        }
        state = next;
    }
    (bytes.len(), false)
}

/// One attribute as [`tag_end`] reads it, by byte offsets into the page.
#[derive(Default)]
struct Attr {
    name: usize,
    name_end: usize,
    /// Where the value starts and ends, inside any quotes.
    value: usize,
    value_end: usize,
    quoted: bool,
    /// One past the attribute's last byte (its closing quote, if any).
    end: usize,
    after_slash: bool,
}

impl Attr {
    fn is_href(&self, html: &str) -> bool {
        html.as_bytes()[self.name..self.name_end].eq_ignore_ascii_case(b"href")
    }

    /// Pushes this attribute's range if nobody reads it. An `href` is read
    /// only for whether it starts with `#`, so one that does not is left
    /// out like any other (the caller keeps every `href` of a tag that has
    /// two: leaving the first out would make the second the one read).
    fn leave_out(&self, html: &str, unread: &mut Vec<(usize, usize)>) {
        // `<g/x>` would become `<g/>`, which closes a foreign element.
        if self.after_slash {
            return;
        }
        match attribute_use(&html.as_bytes()[self.name..self.name_end]) {
            AttributeUse::Read => {}
            AttributeUse::Unread => unread.push((self.name, self.end)),
            AttributeUse::HashPrefix => {
                let value = html.get(self.value..self.value_end).unwrap_or_default();
                if !value.is_empty() && !value.starts_with('#') {
                    unread.push((self.name, self.end));
                }
            }
        }
    }
}

/// What a parse of a page with no CSS selectors of its own needs of an
/// attribute.
#[derive(Debug, PartialEq, Eq)]
enum AttributeUse {
    /// Read whole.
    Read,
    /// Only whether its value starts with `#`.
    HashPrefix,
    /// Not read: left out.
    Unread,
}

/// Which attributes are read, by name (ASCII case-insensitive, as the
/// tokenizer lower-cases them):
/// - by the extractor, `flatten::inspect_attrs`: `class`, `id`, `role`,
///   `aria-level`, `hidden`, `aria-hidden`, `style`, `aria-label`, and
///   whether an `href` starts with `#`;
/// - by html5ever's tree builder, which they steer: `type` (a hidden
///   `<input>`), `encoding` (MathML's `annotation-xml`), `color`, `face`
///   and `size` (a `<font>` in foreign content), `charset`, `http-equiv`
///   and `content` (`<meta>`), and `shadowroot…` (a `<template>`).
///
/// A new attribute read in `inspect_attrs` must be added here.
fn attribute_use(name: &[u8]) -> AttributeUse {
    // Lower-cased into a buffer once, then one `match` on the bytes; longer
    // names are only ever `shadowroot…`.
    let mut lower = [0u8; 11];
    let Some(buf) = lower.get_mut(..name.len()) else {
        let shadow = name[..10].eq_ignore_ascii_case(b"shadowroot");
        return if shadow {
            AttributeUse::Read
        } else {
            AttributeUse::Unread
        };
    };
    for (to, from) in buf.iter_mut().zip(name) {
        *to = from.to_ascii_lowercase();
    }
    match &*buf {
        b"href" => AttributeUse::HashPrefix,
        b"class" | b"id" | b"role" | b"aria-level" | b"hidden" | b"aria-hidden" | b"style"
        | b"aria-label" | b"type" | b"encoding" | b"color" | b"face" | b"size" | b"charset"
        | b"http-equiv" | b"content" | b"shadowroot" => AttributeUse::Read,
        _ => AttributeUse::Unread,
    }
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
        assert!(matches!(prepare(html, 8, false), Cow::Borrowed(_)));
    }

    #[test]
    fn deep_nesting_is_flattened_at_the_cap() {
        let n = 5_000;
        let html = format!("{}deep text{}", "<div>".repeat(n), "</div>".repeat(n));
        let capped = prepare(&html, 100, false);
        assert!(capped.contains("deep text"));
        assert!(depth_of(&capped) <= 100 + 4, "{}", depth_of(&capped));
    }

    #[test]
    fn unclosed_paragraphs_and_items_are_not_nesting() {
        let html = format!("<body>{}</body>", "<p>para".repeat(2_000));
        assert!(matches!(prepare(&html, 16, false), Cow::Borrowed(_)));
        let html = format!("<ul>{}</ul>", "<li>item".repeat(2_000));
        assert!(matches!(prepare(&html, 16, false), Cow::Borrowed(_)));
    }

    #[test]
    fn tags_in_comments_attributes_and_scripts_do_not_count() {
        let inner = "<div>".repeat(100);
        let html =
            format!("<!-- {inner} --><a title=\"{inner}\">x</a><script>{inner}</script><p>end");
        assert!(matches!(prepare(&html, 8, false), Cow::Borrowed(_)));
    }

    #[test]
    fn self_closing_divs_still_nest_but_svg_children_do_not() {
        let html = "<div/>".repeat(50);
        assert!(matches!(prepare(&html, 10, false), Cow::Owned(_)));
        let html = format!("<svg>{}</svg>", "<path d='M0'/>".repeat(50));
        assert!(matches!(prepare(&html, 10, false), Cow::Borrowed(_)));
    }

    /// What a parse gives the extractor, in document order: every element
    /// with its attributes (`read_only`: only those it reads, and an `href`
    /// only if it starts with `#`), every comment, and every text but a
    /// style sheet's.
    fn shape(html: &str, read_only: bool) -> Vec<String> {
        let document = scraper::Html::parse_document(html);
        let mut out = Vec::new();
        for node in document.tree.root().descendants() {
            match node.value() {
                scraper::Node::Element(element) => {
                    let mut attrs: Vec<String> = element
                        .attrs()
                        .filter_map(|(name, value)| match attribute_use(name.as_bytes()) {
                            _ if !read_only => Some(format!("{name}={value:?}")),
                            AttributeUse::Read => Some(format!("{name}={value:?}")),
                            // Read only for a leading `#`: absent or not
                            // are alike.
                            AttributeUse::HashPrefix => {
                                value.starts_with('#').then(|| format!("{name}#"))
                            }
                            AttributeUse::Unread => None,
                        })
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

    /// Checks that `prepare` changed nothing the extractor reads, with and
    /// without attributes left out.
    fn assert_same_shape(html: &str) {
        for strip in [false, true] {
            let prepared = prepare(html, 512, strip);
            assert_eq!(
                shape(html, strip),
                shape(&prepared, strip),
                "page: {html:?}\nprepared: {prepared:?}"
            );
        }
    }

    #[test]
    fn style_sheets_are_left_out_and_nothing_else_changes() {
        let html = "<html><head><style media=\"screen\">\n.a{color:red}\n.b > p {margin:0}\n\
                    </style><STYLE>x</STYLE ></head><body><p class=a>Text</p>\
                    <style>/* in the body */</style><p>More</p></body></html>";
        let prepared = prepare(html, 512, false);
        assert!(matches!(prepared, Cow::Owned(_)));
        assert!(!prepared.contains("color") && !prepared.contains("in the body"));
        assert!(!prepared.contains(">x<"));
        assert!(prepared.contains("<p class=a>Text</p>") && prepared.contains("<p>More</p>"));
        assert_same_shape(html);
        // Empty and unclosed sheets are left as they are.
        for html in ["<style></style><p>a", "<p>a<style>.x{}"] {
            assert!(
                matches!(prepare(html, 512, false), Cow::Borrowed(_)),
                "{html}"
            );
        }
    }

    #[test]
    fn unread_attributes_are_left_out_and_read_ones_kept() {
        let html = "<html lang=en><body><nav class=\"menu\" data-track='nav-1'>\
                    <a href=\"/about\" title=About>About</a><a href=\"#main\">Skip</a>\
                    <a href=/x/y>X</a></nav><svg viewBox=\"0 0 2 2\"><path d=\"M0 0h2\"/></svg>\
                    <div id=main role=main aria-hidden=false onclick=\"go()\">Text</div></body></html>";
        let prepared = prepare(html, 512, true);
        for gone in [
            "lang",
            "data-track",
            "title=",
            "/about",
            "viewBox",
            "M0 0",
            "onclick",
            "x/y",
        ] {
            assert!(!prepared.contains(gone), "{gone} in {prepared}");
        }
        for kept in [
            "class=\"menu\"",
            "<a  >About",
            "href=\"#main\"",
            "<a >X",
            "id=main",
            "role=main",
            "aria-hidden=false",
        ] {
            assert!(prepared.contains(kept), "{kept} not in {prepared}");
        }
        assert_same_shape(html);
        // Without stripping the page is passed on untouched.
        assert!(matches!(prepare(html, 512, false), Cow::Borrowed(_)));
    }

    #[test]
    fn attributes_stay_where_the_scan_could_misread_tags() {
        // After each of these, what looks like a tag may be text to
        // html5ever: every attribute after it is kept.
        for html in [
            "<plaintext><a title=x>",
            "<svg><![CDATA[ > <a title=x> ]]></svg>",
            "<script><!--<script></script><a title=x></script>",
            "<svg><style><p><textarea></style><a title=x></textarea>",
            "<select><title><a title=y></title><a title=x>",
        ] {
            let prepared = prepare(html, 512, true);
            assert!(prepared.contains("<a title=x>"), "{html} gave {prepared}");
            assert_same_shape(html);
        }
        // Of two `href`s the first is read: neither is left out.
        let html = "<a href=\"/a\" title=t HREF=\"#b\">x</a><a href=/c title=u>y</a>";
        let prepared = prepare(html, 512, true);
        assert!(
            prepared.starts_with("<a href=\"/a\" title=t HREF=\"#b\">"),
            "{prepared}"
        );
        assert!(prepared.ends_with("<a  >y</a>"), "{prepared}");
        assert_same_shape(html);
        // Formatting elements keep their attributes: with them, these four
        // are unlike and all four are reopened in the paragraph.
        let html = "<b data-n=1><b data-n=2><b data-n=3><b data-n=4><p>text";
        assert!(prepare(html, 512, true).contains("<b data-n=4>"));
        assert_same_shape(html);
        // A second `<html>` cannot lend its `href` to the first.
        let html = "<html lang=en HREF=/x><p>a<html href=\"#top\">";
        assert!(prepare(html, 512, true).contains("HREF=/x"));
        assert_same_shape(html);
        // A `/` before an unread attribute is not turned into `/>`.
        let html = "<svg><g/x><path/></g></svg>";
        assert!(prepare(html, 512, true).contains("<g/x>"));
        assert_same_shape(html);
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
            // Attributes, read and unread, in every way they can be written.
            "<a href=\"#top\" ",
            "<a HREF=/x ",
            "<a href='/é' href=\"#y\"",
            " href=#z",
            "<p data-x=\"1\"",
            " id=main",
            " class='c'",
            " title",
            " d=M0",
            "<input type=hidden ",
            "<font color=red face=x ",
            "<template shadowrootmode=open>",
            "<annotation-xml encoding=\"text/html\">",
            "<g/",
            "x=",
            " = ",
            "y",
            "<body onload=\"f()\" ",
            "<html lang=en ",
            "<meta charset=utf-8 ",
            "<b data-x=1>",
            "<b data-x=2>",
            "<b>",
            "<body HREF=/y ",
            "<i title=t>",
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
                for strip in [false, true] {
                    let prepared = prepare(&html, 512, strip);
                    prop_assert_eq!(
                        shape(&html, strip),
                        shape(&prepared, strip),
                        "page: {:?}\nprepared: {:?}",
                        html,
                        prepared
                    );
                }
                Ok(())
            })
            .unwrap();
    }
}
