//! Bytes → text: which content types are pages, and the charset of a body
//! (BOM, then the `Content-Type` header, then a `<meta>` declaration in the
//! first 1024 bytes, then UTF-8 with a windows-1252 fallback).

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// How far into the body to look for a `<meta>` charset declaration. The HTML
/// standard's prescan uses the same 1024 bytes.
pub(super) const META_PRESCAN_BYTES: usize = 1024;

/// The `type/subtype` part of a content type, lowercased.
pub(super) fn mime_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

pub(super) fn is_html_type(content_type: &str) -> bool {
    matches!(
        mime_essence(content_type).as_str(),
        "text/html" | "application/xhtml+xml"
    )
}

/// For servers that send no content type at all: accept the body only if it
/// plainly starts out as HTML.
pub(super) fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .trim_start()
        .chars()
        .take(META_PRESCAN_BYTES)
        .collect::<String>()
        .to_ascii_lowercase();
    head.starts_with("<!doctype html")
        || ["<html", "<head", "<body"]
            .iter()
            .any(|tag| head.contains(tag))
}

/// The `charset` parameter of a content type, if it names an encoding
/// encoding_rs knows.
pub(super) fn header_charset(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        Encoding::for_label(value.trim().trim_matches(['"', '\'']).as_bytes())
    })
}

/// A simplified version of the HTML standard's prescan: the first `charset=`
/// inside a `<meta ...>` tag near the top of the page. This covers both
/// `<meta charset="x">` and `<meta http-equiv="Content-Type"
/// content="text/html; charset=x">`.
pub(super) fn meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(META_PRESCAN_BYTES)];
    let lower: Vec<u8> = head.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = find(&lower[from..], b"<meta") {
        let start = from + pos + b"<meta".len();
        let end = find(&lower[start..], b">").map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        if let Some(encoding) = charset_in_tag(tag) {
            // A page that can be read as ASCII to find this tag cannot be
            // UTF-16, so the standard says such a declaration means UTF-8.
            return Some(
                if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
                    UTF_8
                } else {
                    encoding
                },
            );
        }
        from = end;
    }
    None
}

pub(super) fn charset_in_tag(tag: &[u8]) -> Option<&'static Encoding> {
    let mut from = 0;
    while let Some(pos) = find(&tag[from..], b"charset") {
        let mut i = from + pos + b"charset".len();
        from = i;
        while tag.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if tag.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while tag
            .get(i)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b'"' || *b == b'\'')
        {
            i += 1;
        }
        let label_end = tag[i..]
            .iter()
            .position(|b| matches!(b, b'"' | b'\'' | b';' | b'/' | b'>') || b.is_ascii_whitespace())
            .map_or(tag.len(), |e| i + e);
        if let Some(encoding) = Encoding::for_label(&tag[i..label_end]) {
            return Some(encoding);
        }
    }
    None
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The share of control or undecodable characters above which a body is
/// not text: real pages have next to none, random bytes read as
/// windows-1252 have about 13 %, read as UTF-8 far more.
const MAX_JUNK_PER_MILLE: usize = 20;

/// Why decoded text cannot be a page, if it cannot: too many control
/// characters (other than tab, line breaks and form feed) or U+FFFD
/// replacement characters.
pub(super) fn implausible(text: &str) -> Option<String> {
    // A page holds no byte that can start a junk character (the usual
    // case): nothing to count. Read eight bytes at a time: a word with no
    // byte below 0x20 and none from 0x7f up (most of a page) holds none;
    // only the others are looked at byte by byte. A test per byte,
    // branch-free or not, stayed about four instructions a byte.
    let bytes = text.as_bytes();
    let mut words = bytes.chunks_exact(8);
    let clean = words.by_ref().all(|word| {
        let word = u64::from_le_bytes(word.try_into().expect("chunks of 8"));
        !may_hold_junk(word) || !word.to_le_bytes().into_iter().any(may_start_junk)
    }) && !words.remainder().iter().copied().any(may_start_junk);
    if clean {
        return None;
    }
    let (total, junk) = junk_count(text);
    (total > 0 && junk * 1000 > total * MAX_JUNK_PER_MILLE).then(|| {
        format!(
            "{}% of its characters are control characters or bytes its charset cannot decode",
            junk * 100 / total
        )
    })
}

/// Whether a byte can be the first of a junk character: an ASCII control
/// other than tab, line feed, form feed and carriage return, DEL, or the
/// lead byte of a C1 control or of U+FFFD.
fn may_start_junk(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)) || b == 0x7f || b == 0xc2 || b == 0xef
}

/// Whether any of the eight bytes of `word` is below 0x20 or from 0x7f up:
/// only such a byte can start a junk character. The usual word tests
/// (exact for "any"): a byte below 0x20 borrows into its top bit when 0x20
/// is taken from it, and a byte from 0x7f up has its top bit set itself or
/// once 1 is added.
fn may_hold_junk(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & TOPS;
    let from_del = (word.wrapping_add(ONES) | word) & TOPS;
    below_space | from_del != 0
}

/// Characters and junk characters in `text`, read from its UTF-8 bytes
/// rather than decoded char by char: this runs over every fetched body.
/// A character is counted at its lead byte (every byte that is not a
/// continuation byte); the junk is the ASCII controls, the C1 controls
/// (U+0080..U+009F, encoded `C2 80`..`C2 9F`) and U+FFFD (`EF BF BD`),
/// which is what `char::is_control` and the replacement character cover.
pub(super) fn junk_count(text: &str) -> (usize, usize) {
    let bytes = text.as_bytes();
    let (mut total, mut junk) = (0usize, 0usize);
    for (i, &b) in bytes.iter().enumerate() {
        if b & 0xc0 == 0x80 {
            continue;
        }
        total += 1;
        let bad = match b {
            b'\t' | b'\n' | b'\r' | 0x0c => false,
            0x00..=0x1f | 0x7f => true,
            0xc2 => bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)),
            0xef => bytes.get(i + 1..i + 3) == Some(&[0xbf, 0xbd][..]),
            _ => false,
        };
        junk += usize::from(bad);
    }
    (total, junk)
}

/// Whether a body declared as UTF-16 (without a BOM) plainly is not: the
/// ASCII of its markup would have NUL bytes between its letters.
fn not_utf16(body: &[u8]) -> bool {
    let head = &body[..body.len().min(META_PRESCAN_BYTES)];
    !head.contains(&0)
}

/// [`decode_body`] of a body that is no longer needed: a UTF-8 page (by its
/// declaration or, undeclared, by its bytes) that is valid UTF-8 becomes
/// the text without being copied. Anything else is decoded as
/// `decode_body` decodes it, which for such a page gives these same bytes.
pub(super) fn decode_body_owned(body: Vec<u8>, content_type: Option<&str>) -> String {
    let header = content_type.and_then(header_charset);
    let utf8_or_none = |encoding: Option<&'static Encoding>| encoding.is_none_or(|e| e == UTF_8);
    if Encoding::for_bom(&body).is_none()
        && utf8_or_none(header)
        && utf8_or_none(meta_charset(&body))
    {
        return match String::from_utf8(body) {
            Ok(text) => text,
            Err(not_utf8) => decode_body(not_utf8.as_bytes(), content_type),
        };
    }
    decode_body(&body, content_type)
}

/// Decodes a body to text. See the module docs for the order of evidence.
/// A header charset that cannot be right (UTF-16 on a body of ASCII
/// markup, or one that leaves undecodable bytes where the `<meta>` charset
/// decodes cleanly) gives way to the `<meta>` one.
pub(super) fn decode_body(body: &[u8], content_type: Option<&str>) -> String {
    if let Some((encoding, bom_len)) = Encoding::for_bom(body) {
        let (text, _) = encoding.decode_without_bom_handling(&body[bom_len..]);
        return text.into_owned();
    }
    let header = content_type.and_then(header_charset).filter(|encoding| {
        !((*encoding == encoding_rs::UTF_16LE || *encoding == encoding_rs::UTF_16BE)
            && not_utf16(body))
    });
    let meta = meta_charset(body);
    if let (Some(header), Some(meta)) = (header, meta)
        && header != meta
    {
        let (text, _, header_failed) = header.decode(body);
        if !header_failed {
            return text.into_owned();
        }
        if let Some(text) = meta.decode_without_bom_handling_and_without_replacement(body) {
            return text.into_owned();
        }
        return text.into_owned();
    }
    let declared = header.or(meta);
    if let Some(encoding) = declared {
        // Declared: trust it, and let malformed bytes become U+FFFD rather
        // than second-guessing the site.
        let (text, _) = encoding.decode_without_bom_handling(body);
        return text.into_owned();
    }
    match UTF_8.decode_without_bom_handling_and_without_replacement(body) {
        Some(Cow::Borrowed(text)) => text.to_owned(),
        Some(Cow::Owned(text)) => text,
        None => {
            // Undeclared and not UTF-8: almost always legacy Western text.
            // windows-1252 maps every byte, so this never fails.
            let (text, _) = WINDOWS_1252.decode_without_bom_handling(body);
            text.into_owned()
        }
    }
}

/// Decodes HTML read from a file (or any body) as a fetched page would be:
/// BOM, then the declared charset, then UTF-8 with a windows-1252 fallback.
pub fn decode_html(body: &[u8], content_type: Option<&str>) -> String {
    decode_body(body, content_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_test_misses_no_byte_that_may_start_junk() {
        // Every byte value, at every place in a word of plain letters and
        // next to every other value: the word test flags exactly the words
        // holding a byte below 0x20 or from 0x7f up, a superset of the
        // bytes that may start junk.
        for place in 0..8 {
            for b in 0..=255u8 {
                for neighbour in [b'a', b' ', 0x00, 0x1f, 0x7f, 0x80, 0xff] {
                    let mut bytes = [b'a'; 8];
                    bytes[place] = b;
                    bytes[(place + 1) % 8] = neighbour;
                    let word = u64::from_le_bytes(bytes);
                    let expected = bytes.iter().any(|&x| !(0x20..0x7f).contains(&x));
                    assert_eq!(may_hold_junk(word), expected, "{bytes:?}");
                    if bytes.iter().copied().any(may_start_junk) {
                        assert!(may_hold_junk(word), "{bytes:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn junk_anywhere_in_a_page_is_seen() {
        let page = "<p>plain text of a page</p>\n".repeat(40);
        assert_eq!(implausible(&page), None);
        // Enough control characters to pass the threshold, at every offset
        // modulo the word size and in the tail that is not a whole word.
        for offset in 0..9 {
            let mut junk = String::from(&page[..offset]);
            junk.push_str(&"\u{1}".repeat(page.len() / 10));
            assert!(implausible(&junk).is_some(), "{offset}");
        }
        // In a whole word, and in the tail after the last one.
        assert!(implausible("abcdefg\u{1}").is_some());
        assert!(implausible("abcdefgh\u{1}").is_some());
        assert!(implausible("abcdefgh\u{ef}\u{bf}\u{bd}").is_none());
        assert!(implausible("abcdefgh\u{fffd}").is_some());
    }
}
