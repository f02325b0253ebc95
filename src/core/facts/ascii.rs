//! A pattern with a second, ASCII-only build for texts without a byte
//! outside ASCII.
//!
//! Why: the fact readers' patterns are written with Unicode classes (`\w`,
//! `\b`, `\s`, `(?i)`), and over those the regex engine's lazy DFA builds
//! states slowly: each state is a set of states of the Unicode classes'
//! UTF-8 automata. The organisation pattern's reverse search (which finds
//! where a name starts once its ending is found) built some 7,000 such
//! states in a changed cycle, about 8 % of its instructions, and compiling
//! the pattern cost as much again as its ASCII build. On a text that is all
//! ASCII the two builds match exactly the same spans: every class, word
//! boundary and case fold then only ever meets ASCII characters, where the
//! Unicode and ASCII definitions agree (the ASCII build leaves out the
//! pattern's own non-ASCII characters, such as `’`, which such a text cannot
//! hold). So an ASCII text is searched with the ASCII build and any other
//! text with the Unicode one, each compiled the first time it is needed.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

use regex::Regex;

/// A pattern, from a function that writes it: `pattern(true)` for the ASCII
/// build, `pattern(false)` for the Unicode one.
pub(crate) struct AsciiOr {
    pattern: fn(ascii: bool) -> String,
    ascii: OnceLock<regex::bytes::Regex>,
    unicode: OnceLock<Regex>,
}

impl AsciiOr {
    pub(crate) const fn new(pattern: fn(ascii: bool) -> String) -> Self {
        Self {
            pattern,
            ascii: OnceLock::new(),
            unicode: OnceLock::new(),
        }
    }

    fn ascii(&self) -> &regex::bytes::Regex {
        self.ascii.get_or_init(|| {
            regex::bytes::RegexBuilder::new(&(self.pattern)(true))
                .unicode(false)
                .build()
                .expect("ASCII pattern compiles")
        })
    }

    fn unicode(&self) -> &Regex {
        self.unicode
            .get_or_init(|| super::compact_regex(&(self.pattern)(false)).expect("pattern compiles"))
    }

    /// Whether the pattern matches somewhere in `text`.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        if text.is_ascii() {
            self.ascii().is_match(text.as_bytes())
        } else {
            self.unicode().is_match(text)
        }
    }

    /// The byte range of the first match in `text`.
    pub(crate) fn find(&self, text: &str) -> Option<Range<usize>> {
        if text.is_ascii() {
            self.ascii().find(text.as_bytes()).map(|m| m.range())
        } else {
            self.unicode().find(text).map(|m| m.range())
        }
    }

    /// The byte ranges of the matches in `text`, left to right.
    pub(crate) fn find_ranges<'t>(
        &'t self,
        text: &'t str,
    ) -> Box<dyn Iterator<Item = Range<usize>> + 't> {
        if text.is_ascii() {
            Box::new(self.ascii().find_iter(text.as_bytes()).map(|m| m.range()))
        } else {
            Box::new(self.unicode().find_iter(text).map(|m| m.range()))
        }
    }
}

impl AsciiOr {
    /// Each match's groups in `text`, left to right.
    pub(crate) fn captures_iter<'t>(
        &'t self,
        text: &'t str,
    ) -> Box<dyn Iterator<Item = Groups<'t>> + 't> {
        if text.is_ascii() {
            Box::new(
                self.ascii()
                    .captures_iter(text.as_bytes())
                    .map(move |spans| Groups {
                        text,
                        spans: Spans::Ascii(spans),
                    }),
            )
        } else {
            Box::new(self.unicode().captures_iter(text).map(move |spans| Groups {
                text,
                spans: Spans::Unicode(spans),
            }))
        }
    }
}

impl AsciiOr {
    /// `text` with every match replaced by `with`, taken literally (no `$`
    /// expansion); borrowed when nothing matched, as `Regex::replace_all`.
    /// The patterns given to it never match an empty span.
    pub(crate) fn replace_all<'t>(&'t self, text: &'t str, with: &str) -> Cow<'t, str> {
        let mut matches = self.find_ranges(text).peekable();
        if matches.peek().is_none() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for range in matches {
            out.push_str(&text[last..range.start]);
            out.push_str(with);
            last = range.end;
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }

    /// `text` with every match replaced by what `with` makes of its groups.
    pub(crate) fn replace_all_with<'t>(
        &'t self,
        text: &'t str,
        mut with: impl FnMut(&Groups<'t>) -> String,
    ) -> Cow<'t, str> {
        let mut matches = self.captures_iter(text).peekable();
        if matches.peek().is_none() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for groups in matches {
            let whole = groups.get(0).expect("group 0 is the whole match");
            out.push_str(&text[last..whole.start]);
            out.push_str(&with(&groups));
            last = whole.end;
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }

    /// `text` without its first match.
    pub(crate) fn remove_first<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match self.find(text) {
            Some(range) => Cow::Owned(format!("{}{}", &text[..range.start], &text[range.end..])),
            None => Cow::Borrowed(text),
        }
    }
}

/// One match's groups, from whichever build searched the text.
pub(crate) struct Groups<'t> {
    text: &'t str,
    spans: Spans<'t>,
}

enum Spans<'t> {
    Ascii(regex::bytes::Captures<'t>),
    Unicode(regex::Captures<'t>),
}

impl<'t> Groups<'t> {
    /// The byte range of group `i`, if it took part in the match.
    pub(crate) fn get(&self, i: usize) -> Option<Range<usize>> {
        match &self.spans {
            Spans::Ascii(spans) => spans.get(i).map(|m| m.range()),
            Spans::Unicode(spans) => spans.get(i).map(|m| m.range()),
        }
    }

    /// The text of group `i`, if it took part in the match.
    pub(crate) fn str(&self, i: usize) -> Option<&'t str> {
        self.get(i).map(|range| &self.text[range])
    }

    /// The text of the group named `name`, if it took part in the match.
    pub(crate) fn name(&self, name: &str) -> Option<&'t str> {
        let range = match &self.spans {
            Spans::Ascii(spans) => spans.name(name).map(|m| m.range()),
            Spans::Unicode(spans) => spans.name(name).map(|m| m.range()),
        };
        range.map(|range| &self.text[range])
    }
}

/// Group `i`'s text; panics if it took no part, as indexing
/// [`regex::Captures`] does.
impl std::ops::Index<usize> for Groups<'_> {
    type Output = str;

    fn index(&self, i: usize) -> &str {
        self.str(i)
            .unwrap_or_else(|| panic!("no group {i} in this match"))
    }
}

/// For tests of the patterns built on [`AsciiOr`]: the two builds must find
/// the same matches, with the same groups, in any ASCII text.
#[cfg(test)]
impl AsciiOr {
    pub(crate) fn assert_builds_agree(&self, texts: &[&str]) {
        for text in texts {
            assert!(text.is_ascii(), "not an ASCII text: {text}");
            let ascii: Vec<Vec<Option<Range<usize>>>> = self
                .ascii()
                .captures_iter(text.as_bytes())
                .map(|c| c.iter().map(|g| g.map(|m| m.range())).collect())
                .collect();
            let unicode: Vec<Vec<Option<Range<usize>>>> = self
                .unicode()
                .captures_iter(text)
                .map(|c| c.iter().map(|g| g.map(|m| m.range())).collect())
                .collect();
            assert_eq!(ascii, unicode, "the builds differ on {text:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_builds_agree_on_ascii_texts() {
        let pattern = AsciiOr::new(|ascii| {
            let quote = if ascii { "'" } else { "'’" };
            format!(r"(?i)\b[a-z][\w{quote}-]*\s+council\b")
        });
        for text in [
            "Barrow-in-Furness Council and St Helen's council, x_y COUNCIL",
            "no match here",
            "éire Council; Hatfield’s Council",
        ] {
            let ours: Vec<_> = pattern.find_ranges(text).collect();
            let unicode: Vec<_> = pattern
                .unicode()
                .find_iter(text)
                .map(|m| m.range())
                .collect();
            assert_eq!(ours, unicode, "{text}");
        }
        // The non-ASCII text went to the Unicode build, which knows `’`.
        let text = "éire Council; Hatfield’s Council";
        let ours: Vec<_> = pattern.find_ranges(text).map(|r| &text[r]).collect();
        assert!(ours.contains(&"Hatfield’s Council"), "{ours:?}");
    }
}
