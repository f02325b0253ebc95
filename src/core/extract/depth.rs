//! The nesting cap, applied to the markup before it is parsed.
//!
//! html5ever looks down its stack of open elements for every start tag
//! ("is there a `<p>` in button scope?"), so a page of n nested elements
//! costs O(n²) to parse: 100,000 nested `<div>`s took 24 s. The cap has to
//! act before the parser sees the tags. One linear scan follows the nesting
//! as the tags open and close; start tags that would open an element deeper
//! than the cap are left out, with their end tags, so deeper content is
//! flattened into the element at the cap, as browsers do (Chromium's parser
//! stops nesting at 512). A page that never nests that deep is passed on
//! untouched, byte for byte.
//!
//! The scan is a tokenizer of the markup's shape only: tags, comments,
//! doctypes, quoted attribute values and raw-text elements (`<script>`,
//! `<style>`, …). It does not build a tree, so it is linear in the page's
//! length whatever the page holds.

use std::borrow::Cow;
use std::collections::HashMap;

/// A tag name lower-cased into a small buffer, for the name tests below:
/// they run for every tag of every page, so they compare bytes in one
/// `match` rather than strings one by one. `None` for names longer than any
/// they look for.
fn lowered(name: &str) -> Option<([u8; 8], usize)> {
    let bytes = name.as_bytes();
    if bytes.len() > 8 {
        return None;
    }
    let mut buf = [0u8; 8];
    for (to, from) in buf.iter_mut().zip(bytes) {
        *to = from.to_ascii_lowercase();
    }
    Some((buf, bytes.len()))
}

/// Elements that never have content or an end tag.
fn is_void(name: &str) -> bool {
    let Some((buf, len)) = lowered(name) else {
        return false;
    };
    matches!(
        &buf[..len],
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
fn is_raw_text(name: &str) -> bool {
    let Some((buf, len)) = lowered(name) else {
        return false;
    };
    matches!(
        &buf[..len],
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
fn group(name: &str) -> Option<u8> {
    let (buf, len) = lowered(name)?;
    match &buf[..len] {
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
/// its ancestor at that depth; the same text when nothing is that deep.
pub(super) fn cap_depth(html: &str, max_depth: usize) -> Cow<'_, str> {
    let drop = tags_to_drop(html, max_depth);
    if drop.is_empty() {
        return Cow::Borrowed(html);
    }
    let mut out = String::with_capacity(html.len());
    let mut from = 0;
    for (start, end) in drop {
        out.push_str(&html[from..start]);
        from = end;
    }
    out.push_str(&html[from..]);
    Cow::Owned(out)
}

/// The byte ranges of the start and end tags to leave out, in order.
fn tags_to_drop(html: &str, max_depth: usize) -> Vec<(usize, usize)> {
    let bytes = html.as_bytes();
    // Open elements, by name as written, with their group (read once per
    // element: the implied-close search below looks at up to 32 of them for
    // every `<p>`, `<li>` or `<td>`).
    let mut open: Vec<(&str, Option<u8>)> = Vec::new();
    // Start tags left out and not yet closed, by lower-cased name.
    let mut dropped: HashMap<String, usize> = HashMap::new();
    let mut foreign = 0usize; // <svg>/<math> open: `/>` closes there
    let mut drop = Vec::new();
    let mut i = 0;
    while let Some(offset) = memchr_lt(&bytes[i..]) {
        let start = i + offset;
        let rest = &bytes[start..];
        if rest.starts_with(b"<!--") {
            i = find(bytes, start + 4, b"-->").map_or(bytes.len(), |e| e + 3);
            continue;
        }
        if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            i = find(bytes, start + 2, b">").map_or(bytes.len(), |e| e + 1);
            continue;
        }
        let closing = rest.get(1) == Some(&b'/');
        let name_start = start + if closing { 2 } else { 1 };
        if !bytes.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
            i = start + 1;
            continue;
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
        if is_void(name) || (self_closing && foreign > 0) {
            continue;
        }
        if is_raw_text(name) {
            // Skip to the end tag: nothing inside is markup.
            i = raw_text_end(bytes, end, name).unwrap_or(bytes.len());
            continue;
        }
        let own_group = group(name);
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
        if is_foreign(name) {
            foreign += 1;
        }
        open.push((name, own_group));
    }
    drop
}

fn is_foreign(name: &str) -> bool {
    name.eq_ignore_ascii_case("svg") || name.eq_ignore_ascii_case("math")
}

fn memchr_lt(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'<', bytes)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(bytes.get(from..)?, needle).map(|p| from + p)
}

/// The end of a tag whose name ends at `i` (one past its `>`), and whether
/// it was written `/>`. Quoted attribute values may hold `>`.
fn tag_end(bytes: &[u8], mut i: usize) -> (usize, bool) {
    let mut last = 0u8;
    while i < bytes.len() {
        match bytes[i] {
            b'>' => return (i + 1, last == b'/'),
            quote @ (b'"' | b'\'') if last == b'=' => {
                i = memchr::memchr(quote, &bytes[i + 1..]).map_or(bytes.len(), |p| i + 1 + p);
                last = quote;
            }
            b if b.is_ascii_whitespace() => {}
            b => last = b,
        }
        i += 1;
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
        for name in ["div", "frameset", "brr", "scripts", "", "optgroups", "p2"] {
            assert!(
                !is_void(name) && !is_raw_text(name) && group(name).is_none(),
                "{name}"
            );
        }
    }

    #[test]
    fn shallow_pages_pass_untouched() {
        let html = "<html><body><div><p>One<p>Two<ul><li>a<li>b</ul></div>\
                    <script>if (a<b) { x = '<div>'; }</script></body></html>";
        assert!(matches!(cap_depth(html, 8), Cow::Borrowed(_)));
    }

    #[test]
    fn deep_nesting_is_flattened_at_the_cap() {
        let n = 5_000;
        let html = format!("{}deep text{}", "<div>".repeat(n), "</div>".repeat(n));
        let capped = cap_depth(&html, 100);
        assert!(capped.contains("deep text"));
        assert!(depth_of(&capped) <= 100 + 4, "{}", depth_of(&capped));
    }

    #[test]
    fn unclosed_paragraphs_and_items_are_not_nesting() {
        let html = format!("<body>{}</body>", "<p>para".repeat(2_000));
        assert!(matches!(cap_depth(&html, 16), Cow::Borrowed(_)));
        let html = format!("<ul>{}</ul>", "<li>item".repeat(2_000));
        assert!(matches!(cap_depth(&html, 16), Cow::Borrowed(_)));
    }

    #[test]
    fn tags_in_comments_attributes_and_scripts_do_not_count() {
        let inner = "<div>".repeat(100);
        let html =
            format!("<!-- {inner} --><a title=\"{inner}\">x</a><script>{inner}</script><p>end");
        assert!(matches!(cap_depth(&html, 8), Cow::Borrowed(_)));
    }

    #[test]
    fn self_closing_divs_still_nest_but_svg_children_do_not() {
        let html = "<div/>".repeat(50);
        assert!(matches!(cap_depth(&html, 10), Cow::Owned(_)));
        let html = format!("<svg>{}</svg>", "<path d='M0'/>".repeat(50));
        assert!(matches!(cap_depth(&html, 10), Cow::Borrowed(_)));
    }
}
