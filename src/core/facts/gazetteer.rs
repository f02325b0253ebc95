//! The gazetteer: English local authorities (current and abolished since
//! 2019), STP, ICS and ICB footprints, and the councils, CCGs and ICBs as
//! organisations, with their ONS or ODS codes.
//!
//! The list ships inside the binary (`gazetteer.tsv`, built by
//! `.ci/build-gazetteer.py`). Matching is one Aho-Corasick pass over a block,
//! leftmost-longest, so "North East and North Cumbria" wins over "Cumbria".

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

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
    matcher: AhoCorasick,
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
        let matcher = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .expect("gazetteer patterns build an automaton");
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
        self.matcher
            .find_iter(text)
            .filter(|m| {
                let before_ok = m.start() == 0 || !is_word_byte(bytes[m.start() - 1]);
                let after_ok = m.end() == bytes.len() || !is_word_byte(bytes[m.end()]);
                let capital = bytes[m.start()].is_ascii_uppercase();
                before_ok && after_ok && capital
            })
            .map(|m| Found {
                entry: &self.entries[self.pattern_entry[m.pattern().as_usize()]],
                start: m.start(),
                end: m.end(),
            })
            .collect()
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
    fn lower_case_words_are_not_places() {
        assert!(gazetteer().find("the garden of eden").is_empty());
    }
}
