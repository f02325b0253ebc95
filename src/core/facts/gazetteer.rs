//! The gazetteer: English local authorities (current and abolished since
//! 2019), STP, ICS and ICB footprints, and the councils, CCGs and ICBs as
//! organisations, with their ONS or ODS codes.
//!
//! The list ships inside the binary (`gazetteer.tsv`, built by
//! `.ci/build-gazetteer.py`). Matching is leftmost-longest, so "North East
//! and North Cumbria" wins over "Cumbria", over a trie of the names (see
//! [`Names`]).

use std::sync::LazyLock;

const DATA: &str = include_str!("gazetteer.tsv");

/// What a gazetteer entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// A county (upper tier).
    County,
    /// A unitary authority.
    Unitary,
    /// A shire district.
    District,
    /// A metropolitan district.
    Metropolitan,
    /// A London borough or the City of London.
    London,
    /// A combined authority.
    Combined,
    /// A sustainability and transformation partnership footprint.
    Stp,
    /// An integrated care system (2019 designations).
    Ics,
    /// An integrated care board footprint.
    Icb,
    /// A council, as an organisation.
    Council,
    /// A clinical commissioning group.
    Ccg,
    /// An integrated care board, as an organisation.
    IcbOrg,
}

impl EntryKind {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "county" => Self::County,
            "unitary" => Self::Unitary,
            "district" => Self::District,
            "metropolitan" => Self::Metropolitan,
            "london" => Self::London,
            "combined" => Self::Combined,
            "stp" => Self::Stp,
            "ics" => Self::Ics,
            "icb" => Self::Icb,
            "council" => Self::Council,
            "ccg" => Self::Ccg,
            "icb-org" => Self::IcbOrg,
            _ => return None,
        })
    }

    /// Whether the entry is an organisation rather than a place.
    pub fn is_organisation(self) -> bool {
        matches!(self, Self::Council | Self::Ccg | Self::IcbOrg)
    }

    /// A short label for explanations.
    pub fn label(self) -> &'static str {
        match self {
            Self::County => "county",
            Self::Unitary => "unitary authority",
            Self::District => "district",
            Self::Metropolitan => "metropolitan borough",
            Self::London => "London borough",
            Self::Combined => "combined authority",
            Self::Stp => "STP footprint",
            Self::Ics => "ICS",
            Self::Icb => "ICB footprint",
            Self::Council => "council",
            Self::Ccg => "CCG",
            Self::IcbOrg => "ICB",
        }
    }
}

/// One named thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What it is.
    pub kind: EntryKind,
    /// Its canonical name.
    pub name: String,
    /// Its ONS (GSS) or ODS code.
    pub code: String,
    /// Whether it has been abolished or replaced.
    pub abolished: bool,
}

/// A gazetteer name found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'g> {
    /// The entry.
    pub entry: &'g Entry,
    /// Byte range in the text.
    pub start: usize,
    /// Byte range end.
    pub end: usize,
}

/// The loaded gazetteer.
#[derive(Debug)]
pub struct Gazetteer {
    entries: Vec<Entry>,
    /// For each pattern, the entry it names.
    pattern_entry: Vec<usize>,
    /// The patterns, for [`Gazetteer::spellings`].
    patterns: Vec<String>,
    /// Pattern indices in the order of their entries' names (pattern order
    /// within a name), so the spellings of a name are one binary search
    /// away rather than a scan of every pattern.
    by_name: Vec<usize>,
    matcher: Names,
}

static GAZETTEER: LazyLock<Gazetteer> = LazyLock::new(|| Gazetteer::parse(DATA));

/// The gazetteer shipped in the binary.
pub fn gazetteer() -> &'static Gazetteer {
    &GAZETTEER
}

impl Gazetteer {
    fn parse(data: &str) -> Self {
        let mut entries = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_entry = Vec::new();
        for line in data.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut fields = line.split('\t');
            let (Some(kind), Some(name), Some(code), Some(status)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Some(kind) = EntryKind::parse(kind) else {
                continue;
            };
            let aliases = fields.next().unwrap_or("");
            let index = entries.len();
            entries.push(Entry {
                kind,
                name: name.to_owned(),
                code: code.to_owned(),
                abolished: status != "current",
            });
            for pattern in std::iter::once(name).chain(aliases.split('|').filter(|a| !a.is_empty()))
            {
                patterns.push(pattern.to_owned());
                pattern_entry.push(index);
            }
        }
        let matcher = Names::new(&patterns);
        let mut by_name: Vec<usize> = (0..patterns.len()).collect();
        by_name.sort_by(|a, b| {
            entries[pattern_entry[*a]]
                .name
                .cmp(&entries[pattern_entry[*b]].name)
        });
        Self {
            entries,
            pattern_entry,
            patterns,
            by_name,
            matcher,
        }
    }

    /// Every entry.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Finds gazetteer names in `text`: whole words only, starting with a
    /// capital letter (so "the eden project" in lower case is not Eden).
    pub fn find<'g>(&'g self, text: &str) -> Vec<Found<'g>> {
        let bytes = text.as_bytes();
        let mut found = Vec::new();
        self.matcher.each_match(bytes, |start, end, pattern| {
            let before_ok = start == 0 || !is_word_byte(bytes[start - 1]);
            let after_ok = end == bytes.len() || !is_word_byte(bytes[end]);
            let capital = bytes[start].is_ascii_uppercase();
            if before_ok && after_ok && capital {
                found.push(Found {
                    entry: &self.entries[self.pattern_entry[pattern]],
                    start,
                    end,
                });
            }
        });
        found
    }

    /// Every spelling that [`Gazetteer::find`] reads as an entry with this
    /// canonical name: a text in which it finds one contains one of these,
    /// up to ASCII case.
    pub fn spellings<'g>(&'g self, name: &'g str) -> impl Iterator<Item = &'g str> {
        let named = |pattern: &usize| self.entries[self.pattern_entry[*pattern]].name.as_str();
        let from = self.by_name.partition_point(|p| named(p) < name);
        let to = from + self.by_name[from..].partition_point(|p| named(p) == name);
        self.by_name[from..to]
            .iter()
            .map(|pattern| self.patterns[*pattern].as_str())
    }

    /// The entry a name refers to, if it is in the gazetteer (whole name,
    /// any case).
    pub fn lookup(&self, name: &str) -> Option<&Entry> {
        self.find(name)
            .into_iter()
            .find(|found| found.start == 0 && found.end == name.len())
            .map(|found| found.entry)
    }
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte >= 0x80
}

/// The names as a trie over their bytes in ASCII lower case, searched the
/// way a leftmost-longest Aho-Corasick automaton (ASCII case-insensitive)
/// reports matches: at each position from the left, the longest name that
/// starts there (the lowest pattern number among names equal up to ASCII
/// case); after a match, on from its end; else on from the next byte.
///
/// Why not that automaton itself: building it (its failure transitions over
/// some 26,500 states, each letter in both cases) cost about 25 ms, paid
/// once per process and spread over only the hundred pages of a changed
/// cycle, while this trie builds in about a millisecond. A search walks
/// from every byte rather than following failure links, but most walks
/// end within two or three bytes, the second a table look-up.
#[derive(Debug)]
struct Names {
    /// The node that each first byte (either case) leads to, or [`NONE`].
    root: Box<[u32; 256]>,
    /// For the root's children (nodes `1..=k`, laid out first), the node
    /// that each (lower-case) second byte leads to, 256 entries a child: a
    /// walk from a letter nearly always takes this step and most end after
    /// it, so it is a table look-up rather than a search of the children.
    second: Vec<u32>,
    /// Per node: its first child in `nodes`, how many children it has (they
    /// are contiguous and sorted by byte), and the pattern that ends there
    /// or [`NONE`].
    nodes: Vec<Node>,
    /// Per node: the (lower-case) byte that leads to it.
    bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    first_child: u32,
    children: u32,
    pattern: u32,
}

const NONE: u32 = u32::MAX;

impl Names {
    fn new(patterns: &[String]) -> Self {
        // Sorted lower-case spellings: each node's names are a contiguous
        // run, so its children are the runs that share its next byte, and
        // a breadth-first walk lays each node's children out side by side.
        let mut sorted: Vec<(Vec<u8>, u32)> = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let id = u32::try_from(i).expect("fewer than 2^32 patterns");
                (p.as_bytes().to_ascii_lowercase(), id)
            })
            .collect();
        sorted.sort_unstable();
        let mut nodes = vec![Node {
            first_child: 0,
            children: 0,
            pattern: NONE,
        }];
        let mut bytes = vec![0];
        // (node, the run of `sorted` below it, its depth)
        let mut queue = std::collections::VecDeque::from([(0usize, 0..sorted.len(), 0usize)]);
        while let Some((node, run, depth)) = queue.pop_front() {
            let mut i = run.start;
            // Names that end here come first in the run (a prefix sorts
            // before its extensions), the lowest pattern number first.
            if i < run.end && sorted[i].0.len() == depth {
                nodes[node].pattern = sorted[i].1;
                while i < run.end && sorted[i].0.len() == depth {
                    i += 1;
                }
            }
            let first = nodes.len();
            while i < run.end {
                let byte = sorted[i].0[depth];
                let from = i;
                while i < run.end && sorted[i].0[depth] == byte {
                    i += 1;
                }
                queue.push_back((nodes.len(), from..i, depth + 1));
                nodes.push(Node {
                    first_child: 0,
                    children: 0,
                    pattern: NONE,
                });
                bytes.push(byte);
            }
            nodes[node].first_child = u32::try_from(first).expect("fewer than 2^32 nodes");
            nodes[node].children = u32::try_from(nodes.len() - first).expect("fewer than 2^32");
        }
        let mut root = Box::new([NONE; 256]);
        let top = nodes[0];
        for child in top.first_child..top.first_child + top.children {
            let byte = bytes[child as usize];
            root[usize::from(byte)] = child;
            root[usize::from(byte.to_ascii_uppercase())] = child;
        }
        debug_assert_eq!(top.first_child, 1, "the root's children come first");
        let mut second = vec![NONE; 256 * top.children as usize];
        for (row, child) in (top.first_child..top.first_child + top.children).enumerate() {
            let Node {
                first_child,
                children,
                ..
            } = nodes[child as usize];
            for grandchild in first_child..first_child + children {
                second[row * 256 + usize::from(bytes[grandchild as usize])] = grandchild;
            }
        }
        Self {
            root,
            second,
            nodes,
            bytes,
        }
    }

    /// The child of `node` along `byte` (already lower case), or [`NONE`].
    fn child(&self, node: u32, byte: u8) -> u32 {
        // Never the root (node 0): a walk starts from `root`'s entry.
        let row = node as usize - 1;
        if row < self.second.len() / 256 {
            return self.second[row * 256 + usize::from(byte)];
        }
        let Node {
            first_child,
            children,
            ..
        } = self.nodes[node as usize];
        let range = first_child as usize..(first_child + children) as usize;
        match self.bytes[range].binary_search(&byte) {
            Ok(i) => first_child + u32::try_from(i).expect("fewer than 2^32"),
            Err(_) => NONE,
        }
    }

    /// Calls `found(start, end, pattern)` for each match, left to right.
    fn each_match(&self, text: &[u8], mut found: impl FnMut(usize, usize, usize)) {
        let mut at = 0;
        while at < text.len() {
            let mut node = self.root[usize::from(text[at])];
            let mut longest = None;
            let mut end = at + 1;
            while node != NONE {
                let pattern = self.nodes[node as usize].pattern;
                if pattern != NONE {
                    longest = Some((end, pattern));
                }
                let Some(&byte) = text.get(end) else { break };
                node = self.child(node, byte.to_ascii_lowercase());
                end += 1;
            }
            match longest {
                Some((end, pattern)) => {
                    found(at, end, pattern as usize);
                    at = end;
                }
                None => at += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abolished_cumbrian_districts_are_known() {
        for name in [
            "Allerdale",
            "Copeland",
            "Eden",
            "Carlisle",
            "Barrow-in-Furness",
            "South Lakeland",
        ] {
            let entry = gazetteer()
                .lookup(name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(entry.kind, EntryKind::District, "{name}");
            assert!(entry.abolished, "{name}");
        }
        assert!(
            !gazetteer()
                .lookup("Cumberland")
                .expect("Cumberland")
                .abolished
        );
    }

    #[test]
    fn there_are_42_icbs() {
        let icbs = gazetteer()
            .entries()
            .iter()
            .filter(|e| e.kind == EntryKind::IcbOrg)
            .count();
        assert_eq!(icbs, 42);
    }

    #[test]
    fn longest_name_wins_and_words_must_be_whole() {
        let found =
            gazetteer().find("NHS North East and North Cumbria ICB covers Edenbridge and Eden.");
        let names: Vec<&str> = found.iter().map(|f| f.entry.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "NHS North East and North Cumbria Integrated Care Board",
                "Eden"
            ]
        );
    }

    #[test]
    fn spellings_are_every_pattern_of_the_name() {
        let g = gazetteer();
        for name in [
            "Cumbria",
            "Eden",
            "NHS North East and North Cumbria Integrated Care Board",
            "Nowhere",
        ] {
            let want: Vec<&str> = g
                .pattern_entry
                .iter()
                .zip(&g.patterns)
                .filter(|(entry, _)| g.entries[**entry].name == name)
                .map(|(_, pattern)| pattern.as_str())
                .collect();
            assert_eq!(g.spellings(name).collect::<Vec<_>>(), want, "{name}");
        }
        assert!(g.spellings("Eden").count() >= 1);
    }

    #[test]
    fn names_match_as_a_leftmost_longest_automaton_would() {
        let g = gazetteer();
        let automaton = aho_corasick::AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(&g.patterns)
            .expect("automaton");
        // Every name in both cases, inside words, across words and next to
        // another name, so that overlapping and nested matches compete.
        let mut text = String::new();
        for (i, name) in g.patterns.iter().enumerate() {
            let other = &g.patterns[(i * 7) % g.patterns.len()];
            text.push_str(&format!(
                "x{} {other}y {} {name}-{other} ",
                name.to_lowercase(),
                name.to_uppercase()
            ));
        }
        text.push_str("NHS North East and North Cumbria ICB covers Edenbridge and Eden.");
        let want: Vec<_> = automaton
            .find_iter(&text)
            .map(|m| (m.start(), m.end(), m.pattern().as_usize()))
            .collect();
        let mut got = Vec::new();
        g.matcher
            .each_match(text.as_bytes(), |start, end, pattern| {
                got.push((start, end, pattern));
            });
        assert!(want.len() > 4 * g.patterns.len());
        assert_eq!(got, want);
    }

    #[test]
    fn lower_case_words_are_not_places() {
        assert!(gazetteer().find("the garden of eden").is_empty());
    }
}
