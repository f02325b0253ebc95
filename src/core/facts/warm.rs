//! A fact pattern whose lazy DFA is built once for every thread that reads
//! facts, rather than once per thread.
//!
//! `regex::Regex` keeps a cache of lazily built DFA states per thread that
//! uses it (its owner's, and one per other thread at once). The states are
//! built from the NFA as the text needs them, and the organisation pattern
//! is large and Unicode-aware, so on a changed cycle, which reads facts of
//! only about a hundred pages, building its states was about 3 % of the
//! cycle's CPU, and each of the pool's worker threads built the same states
//! again. Here the threads share one cache; a thread that finds it in use
//! does not wait but searches with the pattern's own per-thread caches.

use std::ops::Range;
use std::sync::{Mutex, TryLockError};

use regex_automata::util::iter::Searcher;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, meta};

/// A pattern with one lazy-DFA cache shared by the threads that search
/// with it. Its matches are those of `regex::Regex::new(pattern)`: it is
/// the same engine with the configuration that constructor gives it.
pub(crate) struct SharedRegex {
    regex: meta::Regex,
    cache: Mutex<meta::Cache>,
}

impl std::fmt::Debug for SharedRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRegex").finish_non_exhaustive()
    }
}

impl SharedRegex {
    /// Compiles `pattern` as `regex::Regex::new` would.
    pub(crate) fn new(pattern: &str) -> Result<Self, Box<meta::BuildError>> {
        // regex 1.x's defaults for a `Regex` over `&str`: a 10 MiB NFA
        // limit, a 2 MiB lazy-DFA cache, leftmost-first, UTF-8 throughout.
        let config = meta::Config::new()
            .nfa_size_limit(Some(10 * (1 << 20)))
            .hybrid_cache_capacity(2 * (1 << 20))
            .match_kind(MatchKind::LeftmostFirst)
            .utf8_empty(true);
        let regex = meta::Builder::new()
            .configure(config)
            .syntax(syntax::Config::new().utf8(true))
            .build(pattern)
            .map_err(Box::new)?;
        let cache = Mutex::new(regex.create_cache());
        Ok(Self { regex, cache })
    }

    /// The byte ranges of the pattern's successive non-overlapping matches
    /// in `text`, as `regex::Regex::find_iter` gives them.
    pub(crate) fn find_ranges(&self, text: &str) -> Vec<Range<usize>> {
        let mut shared = match self.cache.try_lock() {
            Ok(cache) => cache,
            // A panic while searching leaves a cache that is still valid:
            // the search only adds states to it.
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return self.regex.find_iter(text).map(|m| m.range()).collect();
            }
        };
        let cache = &mut *shared;
        let mut searcher = Searcher::new(Input::new(text));
        let mut found = Vec::new();
        while let Some(m) = searcher.advance(|input| Ok(self.regex.search_with(cache, input))) {
            found.push(m.range());
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_are_those_of_the_regex_crate() {
        let patterns = [
            r"\b[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*\s+(?:Council|Trust)\b",
            r"",
            r"x*",
            r"(?i)é|ß",
        ];
        let texts = [
            "",
            "Eden District Council and the North Cumbria Integrated Care NHS Foundation Trust.",
            "Café Société Council, Ærø Trust; x xx ",
            "\u{e9}\u{2019}S\u{2019}a Council ß SS é É",
        ];
        for pattern in patterns {
            let shared = SharedRegex::new(pattern).expect("compiles");
            let plain = regex::Regex::new(pattern).expect("compiles");
            for text in texts {
                let expected: Vec<Range<usize>> =
                    plain.find_iter(text).map(|m| m.range()).collect();
                assert_eq!(
                    shared.find_ranges(text),
                    expected,
                    "{pattern:?} in {text:?}"
                );
                // The pattern's own caches, used when the shared one is busy.
                let busy = shared.cache.lock().expect("not poisoned");
                assert_eq!(
                    shared.find_ranges(text),
                    expected,
                    "{pattern:?} in {text:?}"
                );
                drop(busy);
            }
        }
    }
}
