//! Whether a new text is noise to hold until a later fetch confirms it:
//! most of the page lost, a placeholder or error page served with 200, or
//! a recent version flipping back.

use crate::core::model::Block;
use crate::store::{self, Store, StoreError};

/// A version this many times shorter than the last (in words) is held as
/// suspect: an interstitial, an error page served with 200, a body lost.
const SUSPECT_LOSS_RATIO: usize = 4;
/// Pages shorter than this many words are too small to judge losses on.
const SUSPECT_MIN_WORDS: usize = 40;
/// A shorter text of at most this many words is held when it reads like
/// a loading placeholder, a rate limit or an error page.
const PLACEHOLDER_MAX_WORDS: usize = 80;
/// What placeholders and error pages served with status 200 say, in the
/// languages of the pages watched so far (lower case).
const PLACEHOLDER_WORDS: [&str; 27] = [
    "loading",
    "please wait",
    "too many requests",
    "rate limit",
    "temporarily unavailable",
    "service unavailable",
    "captcha",
    "are you a robot",
    "access denied",
    "just a moment",
    "something went wrong",
    "try again later",
    "enable javascript",
    "chargement",
    "veuillez patienter",
    "trop de requêtes",
    "temporairement indisponible",
    "réessayer plus tard",
    "cargando",
    "demasiadas solicitudes",
    "no disponible temporalmente",
    "wird geladen",
    "zu viele anfragen",
    "vorübergehend nicht verfügbar",
    "caricamento",
    "troppe richieste",
    "llwytho",
];
/// How many earlier versions a returning text is compared with, to catch
/// A/B rotation and placeholders that flip back and forth.
const FLIP_FLOP_WINDOW: usize = 5;

/// Why a new text should be held until a later fetch confirms it, if it
/// should: it lost most of the text, or it is a recent version coming back.
/// `hash` is the text's [`store::text_hash`] once it was needed.
pub(super) fn suspicion(
    store: &Store,
    watch: &str,
    previous: &[Block],
    blocks: &[Block],
    hash: &mut Option<String>,
) -> Result<Option<String>, StoreError> {
    if let Some((before, after)) = word_counts_if_shorter(previous, blocks) {
        if let Some(reason) = shorter(blocks, before, after) {
            return Ok(Some(reason));
        }
    }
    let history = store.history(watch)?;
    let earlier = history.iter().rev().skip(1).take(FLIP_FLOP_WINDOW);
    for version in earlier {
        if version.hash == *hash.get_or_insert_with(|| store::text_hash(blocks)) {
            return Ok(Some(format!(
                "the page flipped back to version {} from {}; held until later fetches confirm it",
                version.number,
                version.seen_at.format("%Y-%m-%d %H:%M UTC")
            )));
        }
    }
    Ok(None)
}

/// The words of the old and the new text, unless the new text is too long
/// for [`shorter`] to hold it whatever the old one's count: more than
/// [`PLACEHOLDER_MAX_WORDS`] words, and at least a [`SUSPECT_LOSS_RATIO`]th
/// of the most words the old text could have (one per two bytes, a word
/// and a space). Counting stops as soon as that is known: on a changed page
/// that is most of the new text and none of the old, which were 2 % of a
/// changed cycle counted in full.
fn word_counts_if_shorter(previous: &[Block], blocks: &[Block]) -> Option<(usize, usize)> {
    let most_before: usize = previous.iter().map(|b| b.text.len().div_ceil(2)).sum();
    let mut after = 0;
    for block in blocks {
        after += word_count(&block.text);
        if after > PLACEHOLDER_MAX_WORDS && after * SUSPECT_LOSS_RATIO >= most_before {
            return None;
        }
    }
    let before = previous.iter().map(|b| word_count(&b.text)).sum();
    Some((before, after))
}

/// Why a new text of `after` words, the old one having had `before`, is
/// held: it lost most of the text, or it reads like a placeholder.
fn shorter(blocks: &[Block], before: usize, after: usize) -> Option<String> {
    if before >= SUSPECT_MIN_WORDS && after * SUSPECT_LOSS_RATIO < before {
        let lost = 100 - after * 100 / before.max(1);
        return Some(format!(
            "the page lost {lost}% of its text ({before} → {after} words); held until later fetches confirm it"
        ));
    }
    if after < before && after <= PLACEHOLDER_MAX_WORDS {
        let text = blocks
            .iter()
            .map(|b| b.text.to_lowercase())
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(word) = PLACEHOLDER_WORDS.iter().find(|w| text.contains(*w)) {
            return Some(format!(
                "the page reads like a placeholder or an error page (“{word}”, {after} words); held until later fetches confirm it"
            ));
        }
    }
    None
}

/// `text.split_whitespace().count()`, counted as the places where a word
/// starts: this runs over both versions of every changed page, and the
/// iterator over the words themselves was a few percent of a changed cycle.
pub(super) fn word_count(text: &str) -> usize {
    // A letter outside ASCII (a curly quote, a dash, an accent) is one run
    // of bytes that are not ASCII spaces, so the byte count below is exact
    // for it; only a space outside ASCII (a no-break or em space) needs the
    // characters read. Reading every character of every block that held a
    // curly quote was 2 % of a changed cycle.
    if !text.is_ascii() && has_unicode_space(text) {
        let mut words = 0;
        let mut after_space = true;
        for c in text.chars() {
            let space = c.is_whitespace();
            words += usize::from(after_space && !space);
            after_space = space;
        }
        return words;
    }
    // ASCII whitespace as `char::is_whitespace` knows it: tab to carriage
    // return, and space. Pairs of bytes, with no state carried from one to
    // the next, counted in a byte per 64 pairs: a narrow counter is what
    // lets the compiler vectorise the loop (a `usize` sum over the pairs
    // did not vectorise, and ran four times slower).
    let space = |b: u8| matches!(b, b' ' | b'\t'..=b'\r');
    let bytes = text.as_bytes();
    let Some(&head) = bytes.first() else {
        return 0;
    };
    let (before, at) = (&bytes[..bytes.len() - 1], &bytes[1..]);
    let starts: usize = before
        .chunks(64)
        .zip(at.chunks(64))
        .map(|(before, at)| {
            let mut starts = 0u8;
            for (&b, &a) in before.iter().zip(at) {
                starts += u8::from(space(b) & !space(a));
            }
            usize::from(starts)
        })
        .sum();
    starts + usize::from(!space(head))
}

/// Whether `text` holds a space outside ASCII (`char::is_whitespace`:
/// U+0085, U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F,
/// U+3000). Each of those starts with one of the bytes looked for here,
/// which only ever start a character, so every hit is a character to read.
fn has_unicode_space(text: &str) -> bool {
    let bytes = text.as_bytes();
    let space_at = |at: usize| text[at..].chars().next().is_some_and(char::is_whitespace);
    memchr::memchr3_iter(0xC2, 0xE1, 0xE2, bytes).any(space_at)
        || memchr::memchr_iter(0xE3, bytes).any(space_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::BlockKind;

    /// The loss and placeholder checks as they were before counting could
    /// stop early: both texts counted in full.
    fn shorter_counting_everything(previous: &[Block], blocks: &[Block]) -> Option<String> {
        let words =
            |blocks: &[Block]| -> usize { blocks.iter().map(|b| word_count(&b.text)).sum() };
        shorter(blocks, words(previous), words(blocks))
    }

    #[test]
    fn counting_stops_only_when_no_check_could_hold() {
        let para = |text: String| Block::new(BlockKind::Paragraph, text);
        let page = |words: usize, word: &str, space: &str| -> Vec<Block> {
            (0..words.div_ceil(10))
                .map(|block| {
                    let n = (words - block * 10).min(10);
                    para(vec![word; n].join(space))
                })
                .collect()
        };
        let mut pages = vec![Vec::new(), vec![para("Loading, please wait".into())]];
        for words in [
            0, 1, 9, 10, 39, 40, 41, 79, 80, 81, 82, 100, 160, 161, 320, 324, 330, 400, 1000,
        ] {
            for (word, space) in [
                ("a", " "),
                ("word", " "),
                ("a", "   "),
                ("x", "\u{a0}"),
                ("loading", " "),
            ] {
                pages.push(page(words, word, space));
            }
        }
        for previous in &pages {
            for blocks in &pages {
                let early = word_counts_if_shorter(previous, blocks)
                    .and_then(|(before, after)| shorter(blocks, before, after));
                assert_eq!(early, shorter_counting_everything(previous, blocks));
            }
        }
    }
}
