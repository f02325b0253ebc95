//! Structured facts read from a page's text blocks: the places it covers, the
//! organisations it names, population figures, counts, people with roles,
//! and dated events.
//!
//! Pure: no I/O. Facts are sets, so a reordered list yields the same facts,
//! and the change layer (`classify`) diffs them as sets.

pub(crate) mod ascii;
pub mod delta;
pub mod gazetteer;

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::core::model::{Block, BlockKind};
pub use delta::{
    FactChanges, ReadFacts, fact_changes, read_fact_changes, read_fact_changes_by_text,
};
use gazetteer::{EntryKind, gazetteer};

/// Bumped whenever the same text can yield different facts, so stored facts
/// from an older version are recomputed rather than compared.
pub const FACTS_VERSION: u32 = 2;

/// One fact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Fact {
    /// A place or partnership footprint the page names.
    Place {
        /// Canonical name.
        name: String,
        /// What kind of place ("district", "ICB footprint", …).
        kind: String,
        /// ONS code.
        code: String,
    },
    /// An organisation the page names.
    Organisation {
        /// The name as written (or canonical, when in the gazetteer).
        name: String,
    },
    /// A population or resident figure.
    Population {
        /// The place it counts, when the text says.
        place: Option<String>,
        /// The figure.
        figure: u64,
    },
    /// A count of things: "44 areas", "five place-based partnerships".
    Count {
        /// What is counted, as written ("place-based partnerships").
        noun: String,
        /// How many.
        value: u64,
    },
    /// A person with a role.
    Person {
        /// The person's name.
        name: String,
        /// The role, as written, in lower case.
        role: String,
    },
    /// A dated event: "from 1 July 2022", "received Royal Assent".
    Event {
        /// What happened or happens.
        what: String,
    },
    /// A match of a watch's own fact rule.
    Custom {
        /// The rule's name.
        rule: String,
        /// The matched text.
        value: String,
    },
}

/// The change kind a fact belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactGroup {
    /// Places, populations and counts.
    Boundary,
    /// Organisations.
    Members,
    /// People and roles.
    Leaders,
    /// Events and custom rules: part of the story.
    Narrative,
}

impl Fact {
    /// Which change kind this fact belongs to.
    pub fn group(&self) -> FactGroup {
        match self {
            Self::Place { .. } | Self::Population { .. } | Self::Count { .. } => {
                FactGroup::Boundary
            }
            Self::Organisation { .. } => FactGroup::Members,
            Self::Person { .. } => FactGroup::Leaders,
            Self::Event { .. } | Self::Custom { .. } => FactGroup::Narrative,
        }
    }

    /// The fact as a reader would say it.
    pub fn label(&self) -> String {
        match self {
            Self::Place { name, .. } | Self::Organisation { name } => name.clone(),
            Self::Population {
                place: Some(place),
                figure,
            } => {
                format!("{place} population {}", thousands(*figure))
            }
            Self::Population {
                place: None,
                figure,
            } => format!("population {}", thousands(*figure)),
            Self::Count { noun, value } => format!("{value} {noun}"),
            Self::Person { name, role } => format!("{name} ({role})"),
            Self::Event { what } => what.clone(),
            Self::Custom { rule, value } => format!("{rule}: {value}"),
        }
    }

    /// Text to look for in a block to tie this fact to its evidence.
    pub fn needle(&self) -> Option<&str> {
        match self {
            Self::Place { name, .. } | Self::Organisation { name } | Self::Person { name, .. } => {
                Some(name)
            }
            Self::Event { what } => Some(what),
            Self::Custom { value, .. } => Some(value),
            Self::Population { .. } | Self::Count { .. } => None,
        }
    }
}

/// Compiles one of the fact readers' patterns. One place, so that the
/// engine's limits for these large Unicode patterns are set together.
/// (Shrinking the lazy-DFA cache below its default saved memory but tripled
/// the CPU of a changed pass, as the engine fell back to slower paths.)
pub(crate) fn compact_regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern).build()
}

/// Formats a number with thousands separators: 327000 → "327,000".
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A watch's own named fact rule: a regex whose first capture group (or
/// whole match) is the fact's value.
#[derive(Debug, Clone)]
pub struct FactRule {
    /// The rule's name, shown in summaries.
    pub name: String,
    /// The pattern.
    pub pattern: Regex,
}

/// Facts in all blocks of a page.
pub fn page_facts(blocks: &[Block], rules: &[FactRule]) -> BTreeSet<Fact> {
    blocks
        .iter()
        .flat_map(|block| block_facts(block, rules))
        .collect()
}

/// Facts in one block.
pub fn block_facts(block: &Block, rules: &[FactRule]) -> BTreeSet<Fact> {
    if block.kind == BlockKind::Named {
        // A watch's own selector rule picked this value: it is the fact.
        let (rule, value) = block
            .text
            .split_once(": ")
            .unwrap_or(("fact", block.text.as_str()));
        return BTreeSet::from([Fact::Custom {
            rule: rule.to_owned(),
            value: value.to_owned(),
        }]);
    }
    if block.kind == BlockKind::ListItem
        && let Some(place) = list_item_place(&block.text)
    {
        let mut facts = text_facts(&block.text, rules);
        // The whole item names the place: "Fylde Coast", not "Fylde".
        facts.retain(|fact| !matches!(fact, Fact::Place { .. }));
        facts.insert(place);
        return facts;
    }
    text_facts(&block.text, rules)
}

/// A list item that is nothing but a short proper name, such as "Fylde
/// Coast" or "Morecambe Bay" in a list of places: the lists of places on
/// partnership pages often name areas that are not councils.
fn list_item_place(text: &str) -> Option<Fact> {
    let text = text.trim_end_matches(['.', ';', ',']).trim();
    if let Some(entry) = gazetteer().lookup(text) {
        return (!entry.kind.is_organisation()).then(|| Fact::Place {
            name: entry.name.clone(),
            kind: entry.kind.label().to_owned(),
            code: entry.code.clone(),
        });
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let joiners = ["and", "of", "the", "with", "upon", "on", "in", "&"];
    let capitalised = |w: &&str| {
        w.chars().next().is_some_and(char::is_uppercase)
            && w.chars().all(|c| c.is_alphabetic() || "'’-".contains(c))
    };
    let proper = !words.is_empty()
        && words.len() <= 5
        && capitalised(&words[0])
        && words.iter().all(|w| joiners.contains(w) || capitalised(w));
    let names_a_place = gazetteer()
        .find(text)
        .iter()
        .any(|f| !f.entry.kind.is_organisation())
        || words.last().is_some_and(|w| PLACE_WORDS.contains(w));
    (proper && names_a_place && organisations(text).is_empty()).then(|| Fact::Place {
        name: text.to_owned(),
        kind: "area".to_owned(),
        code: String::new(),
    })
}

/// Last words that make a short proper name an area.
const PLACE_WORDS: [&str; 8] = [
    "Bay",
    "Coast",
    "Valley",
    "Dales",
    "Moors",
    "Fells",
    "Peninsula",
    "Vale",
];

/// Facts in a text.
fn text_facts(text: &str, rules: &[FactRule]) -> BTreeSet<Fact> {
    let mut facts = BTreeSet::new();
    let cues = Cues::of(text);
    let organisations = if cues.organisation {
        organisations(text)
    } else {
        Vec::new()
    };
    for found in gazetteer().find(text) {
        let inside_organisation = organisations
            .iter()
            .any(|(start, end, _)| found.start >= *start && found.end <= *end);
        if found.entry.kind.is_organisation() {
            facts.insert(Fact::Organisation {
                name: found.entry.name.clone(),
            });
        } else if !inside_organisation && !part_of_a_name(text, found.start, found.end) {
            facts.insert(Fact::Place {
                name: found.entry.name.clone(),
                kind: found.entry.kind.label().to_owned(),
                code: found.entry.code.clone(),
            });
        }
    }
    for (_, _, name) in organisations {
        // A gazetteer organisation found above keeps its canonical name; a
        // pattern match adds the name as written only when it is not a
        // spelling of one already found.
        let canonical = gazetteer()
            .lookup(&name)
            .filter(|entry| entry.kind.is_organisation())
            .map_or(name, |entry| entry.name.clone());
        facts.insert(Fact::Organisation { name: canonical });
    }
    if cues.population {
        populations(text, &mut facts);
    }
    if cues.number {
        counts(text, &mut facts);
    }
    if cues.role {
        people(text, &mut facts);
    }
    if cues.event {
        events(text, &mut facts);
    }
    for rule in rules {
        for captures in rule.pattern.captures_iter(text) {
            if let Some(value) = captures.get(1).or_else(|| captures.get(0)) {
                facts.insert(Fact::Custom {
                    rule: rule.name.clone(),
                    value: value.as_str().trim().to_owned(),
                });
            }
        }
    }
    facts
}

/// Whether a place name found at `start..end` is only part of something
/// else: a longer proper name ("Bury St Edmunds", "Cambridge Water"), or a
/// label in square brackets ("[Kent]").
fn part_of_a_name(text: &str, start: usize, end: usize) -> bool {
    let after = &text[end..];
    let next = after.strip_prefix(' ').map(|rest| {
        rest.split(|c: char| c.is_whitespace() || ",.;:()".contains(c))
            .next()
            .unwrap_or("")
    });
    let continues = next.is_some_and(|word| {
        word.chars().next().is_some_and(char::is_uppercase)
            && !matches!(word, "And" | "The" | "In" | "On" | "Is" | "I")
            && gazetteer().find(word).is_empty()
    });
    let open = text[..start].rfind('[');
    let bracketed = open.is_some_and(|i| !text[i..start].contains(']')) && after.contains(']');
    continues || bracketed
}

/// Which fact readers a text can possibly feed, found in one cheap pass so
/// that the regexes run only where they can match. Most blocks of a page
/// name no organisation, population, role or date.
#[derive(Debug, Default)]
struct Cues {
    organisation: bool,
    population: bool,
    number: bool,
    role: bool,
    event: bool,
}

/// The tag of the cue words that wake the population reader.
const POPULATION_READER: u8 = 1;

/// Cue words, each tagged with the reader it wakes.
const CUE_WORDS: [(&str, u8); 45] = [
    ("Trust", 0),
    ("Group", 0),
    ("CCG", 0),
    ("Board", 0),
    ("ICB", 0),
    ("Council", 0),
    ("Service", 0),
    ("Hospice", 0),
    ("Hospital", 0),
    ("CVS", 0),
    ("University", 0),
    ("College", 0),
    ("Unit", 0),
    ("Healthcare", 0),
    ("Healthwatch", 0),
    ("Age UK", 0),
    ("Borough of", 0),
    ("opulation", 1),
    ("resident", 1),
    ("people", 1),
    ("inhabitant", 1),
    ("hief executive", 3),
    ("hair", 3),
    ("irector", 3),
    ("fficer", 3),
    ("lead", 3),
    ("Lead", 3),
    ("abinet member", 3),
    ("led by", 3),
    ("appointed", 3),
    ("eader", 3),
    ("January", 4),
    ("February", 4),
    ("March", 4),
    ("April", 4),
    ("May", 4),
    ("June", 4),
    ("July", 4),
    ("August", 4),
    ("September", 4),
    ("October", 4),
    ("November", 4),
    ("December", 4),
    ("Royal Assent", 4),
    ("royal assent", 4),
];

static CUES: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .build(CUE_WORDS.iter().map(|(word, _)| word))
        .expect("cue words build an automaton")
});

impl Cues {
    fn of(text: &str) -> Self {
        let mut cues = Self {
            number: text.bytes().any(|b| b.is_ascii_digit()) || has_number_word(text),
            ..Self::default()
        };
        for found in CUES.find_overlapping_iter(text) {
            match CUE_WORDS[found.pattern().as_usize()].1 {
                0 => cues.organisation = true,
                POPULATION_READER => cues.population = true,
                3 => cues.role = true,
                _ => cues.event = true,
            }
        }
        cues
    }
}

fn has_number_word(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphabetic())
        .any(|word| word.len() >= 3 && number_value(word).is_some())
}

/// Words that end an organisation's name.
const ORGANISATION_ENDINGS: &str = r"NHS Foundation Trust|NHS Trust|Foundation Trust|Clinical Commissioning Group|CCG|Integrated Care Board|ICB|Metropolitan Borough Council|County Council|City Council|Borough Council|District Council|Council|Ambulance Service(?: NHS Trust)?|Hospice|Hospitals?|CVS|Council for Voluntary Service|University|College|Partnership NHS Trust|Commissioning Support Unit|Healthcare";

static ORGANISATION: ascii::AsciiOr = ascii::AsciiOr::new(|ascii| {
    // A run of capitalised words (with "and", "of", "&", "for", "the" allowed
    // inside) ending in an organisation word; or Healthwatch / University of /
    // Age UK followed by capitalised words. (An ASCII text holds no `’`.)
    let quotes = if ascii { "'" } else { "'’" };
    let word = format!(r"(?:NHS|[A-Z][\w{quotes}.-]*)");
    let joiner = r"(?:\s+(?:and|of|for|the|&)\s+|\s+)";
    format!(
        r"\b(?:{word}(?:{joiner}{word})*\s+(?:{ORGANISATION_ENDINGS})\b|(?:Healthwatch|University of|Age UK|(?:London|Royal) Borough of)(?:\s+[A-Z][\w{quotes}-]+)+)"
    )
});

/// Organisation names in a text, with their byte ranges.
fn organisations(text: &str) -> Vec<(usize, usize, String)> {
    ORGANISATION
        .find_ranges(text)
        .filter_map(|m| {
            let mut name = &text[m.clone()];
            let mut start = m.start;
            // Sentence starts and articles are not part of a name.
            for prefix in [
                "The ", "the ", "Our ", "Members ", "Member ", "Both ", "All ",
            ] {
                if let Some(rest) = name.strip_prefix(prefix) {
                    name = rest;
                    start += prefix.len();
                }
            }
            // A bare ending ("Council", "Hospice") is not a name.
            let words = name.split_whitespace().count();
            (words >= 2).then(|| (start, m.end, name.to_owned()))
        })
        .flat_map(|(start, end, name)| split_list(start, end, &name))
        .collect()
}

static ENDS_A_NAME: ascii::AsciiOr =
    ascii::AsciiOr::new(|_| format!(r"(?:{ORGANISATION_ENDINGS})$"));

/// "X Council and Y Council", "A Trust, B Trust and C CCG": one name per
/// organisation, split where a part already ends as a name ends.
fn split_list(start: usize, end: usize, name: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    let mut search = 0;
    while let Some(found) = name[search..]
        .find(" and ")
        .map(|i| (search + i, 5))
        .into_iter()
        .chain(name[search..].find(", ").map(|i| (search + i, 2)))
        .min_by_key(|(i, _)| *i)
    {
        let (at, len) = found;
        let part = &name[from..at];
        if ENDS_A_NAME.is_match(part) && part.split_whitespace().count() >= 2 {
            out.push((start + from, start + at, part.to_owned()));
            from = at + len;
        }
        search = at + len;
    }
    let rest = &name[from..];
    if rest.split_whitespace().count() >= 2 {
        out.push((start + from, end, rest.to_owned()));
    }
    out
}

static NUMBER: &str = r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?";

static POPULATION_OF: ascii::AsciiOr = ascii::AsciiOr::new(|_| {
    format!(
        r"(?i)\bpopulation of (?:around |about |approximately |approx\.? |over |more than |some |nearly |almost )?({NUMBER})(\s*(?:million|m\b))?"
    )
});

static RESIDENTS: ascii::AsciiOr = ascii::AsciiOr::new(|ascii| {
    let quotes = if ascii { "'" } else { "'’" };
    format!(
        r"(?:\b([A-Z][\w{quotes}-]*(?:[ -](?:and |upon |on |in |with )?[A-Z][\w{quotes}-]*)*)\s+)?({NUMBER})(\s*million)?\s+(?:residents|population|inhabitants|people(?:\s+(?:living|who\s+live|live|across|resident)\b))"
    )
});

fn parse_figure(number: &str, million: bool) -> Option<u64> {
    let plain: String = number.chars().filter(|c| *c != ',').collect();
    let value: f64 = plain.parse().ok()?;
    let value = if million { value * 1_000_000.0 } else { value };
    if (0.0..1e12).contains(&value) {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "range checked above"
        )]
        Some(value.round() as u64)
    } else {
        None
    }
}

fn populations(text: &str, facts: &mut BTreeSet<Fact>) {
    for captures in POPULATION_OF.captures_iter(text) {
        if let Some(figure) = parse_figure(&captures[1], captures.get(2).is_some()) {
            facts.insert(Fact::Population {
                place: None,
                figure,
            });
        }
    }
    for captures in RESIDENTS.captures_iter(text) {
        let Some(figure) = parse_figure(&captures[2], captures.get(3).is_some()) else {
            continue;
        };
        // Small numbers of "people" are rarely populations ("10 people
        // attended"); a place's residents are counted in hundreds at least.
        if figure < 1_000 {
            continue;
        }
        let place = captures.str(1).and_then(|name| {
            gazetteer()
                .find(name)
                .last()
                .filter(|found| !found.entry.kind.is_organisation())
                .map(|found| found.entry.name.clone())
        });
        facts.insert(Fact::Population { place, figure });
    }
}

const NUMBER_WORDS: [&str; 21] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// Reads "44", "four", "forty-four" or "forty two" as a number.
fn number_value(word: &str) -> Option<u64> {
    if let Ok(n) = word.parse::<u64>() {
        return Some(n);
    }
    // Compared without lower-casing a copy: this runs on every word of
    // every block that has no digit (`has_number_word`).
    if let Some(n) = NUMBER_WORDS
        .iter()
        .position(|w| w.eq_ignore_ascii_case(word))
    {
        return Some(n as u64);
    }
    let (tens, units) = word.split_once(['-', ' ']).unwrap_or((word, ""));
    let tens = TENS
        .iter()
        .position(|w| !w.is_empty() && w.eq_ignore_ascii_case(tens))? as u64
        * 10;
    let units = if units.is_empty() {
        0
    } else {
        NUMBER_WORDS[1..10]
            .iter()
            .position(|w| w.eq_ignore_ascii_case(units))? as u64
            + 1
    };
    Some(tens + units)
}

static COUNT: ascii::AsciiOr = ascii::AsciiOr::new(|ascii| {
    let quotes = if ascii { "'" } else { "'’" };
    let words = format!(
        "{}|(?:{})(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?",
        NUMBER_WORDS[1..].join("|"),
        TENS[2..].join("|")
    );
    format!(
        r"(?i)\b(\d{{1,3}}|{words})\s+((?:[a-z{quotes}-]+\s+){{0,3}}?(?:areas|partnerships|local authorities|authorities|boundaries|places|systems|ICSs|ICBs|STPs|CCGs|footprints|councils|trusts|districts|boroughs|localities|neighbourhoods|communities|organisations|members|practices|hospitals|hospices|universities|boards|providers|collaboratives|regions|counties))\b"
    )
});

fn counts(text: &str, facts: &mut BTreeSet<Fact>) {
    for captures in COUNT.captures_iter(text) {
        let Some(value) = number_value(&captures[1]) else {
            continue;
        };
        if !stands_alone(text, captures.get(1).map_or(0, |m| m.start)) {
            continue;
        }
        let noun = captures[2].to_lowercase();
        // "2 areas" inside a date or a population figure is not a count of
        // areas; a year is never one either. "1 health boards" is a
        // fragment of a label, not a count.
        if value > 500 || (value == 1 && captures[2].ends_with('s')) {
            continue;
        }
        let noun = noun
            .trim_start_matches("of ")
            .trim_start_matches("the ")
            .trim_start_matches("our ")
            .to_owned();
        facts.insert(Fact::Count { noun, value });
    }
}

/// Whether a number starting at `start` is a number in its own right: not
/// the digits of a name or code ("COVID-19", "VOC-20DEC-01"), the tail of
/// an amount ("£10,500", "1.5"), or a section, paragraph or page number.
fn stands_alone(text: &str, start: usize) -> bool {
    let before = &text[..start];
    if before
        .chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric() || "-–/,.£$€#".contains(c))
    {
        return false;
    }
    let previous = before
        .split_whitespace()
        .next_back()
        .unwrap_or("")
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    !matches!(
        previous.as_str(),
        "section"
            | "sections"
            | "paragraph"
            | "paragraphs"
            | "part"
            | "chapter"
            | "page"
            | "regulation"
            | "schedule"
            | "article"
            | "clause"
            | "annex"
            | "appendix"
            | "step"
            | "phase"
            | "level"
            | "tier"
            | "version"
            | "no"
    )
}

static PERSON_ROLE: ascii::AsciiOr = ascii::AsciiOr::new(|ascii| {
    // An ASCII text holds no `’` and no en or em dash.
    let (quotes, dashes) = if ascii { ("'", "") } else { ("'’", "–—") };
    let name = format!(
        r"(?:(?:Dr|Prof|Professor|Sir|Dame|Cllr|Councillor|County Councillor|Mr|Mrs|Ms|Miss)\.?\s+)?[A-Z][a-z{quotes}-]+(?:\s+[A-Z][a-z{quotes}-]+){{1,2}}"
    );
    let role = r"(?i:chief executive(?: officer)?|chair(?:man|woman|person)?|vice[- ]chair|deputy chief executive|managing director|medical director|director of [a-z ,&]+|accountable officer|chief (?:officer|operating officer|finance officer|nurse|medical officer)|(?:partnership|programme|clinical|place|executive|system) lead|lead|leader|cabinet member for [a-z ,&]+|senior responsible officer|programme director|partnership director|place director)";
    let of = format!(r"[A-Z][\w{quotes}&-]*(?:\s+(?:and\s+|of\s+|&\s+)?[A-Z][\w{quotes}&-]*)*");
    let name_then_role = format!(
        r"(?P<name1>{name}),?\s+(?:(?:is|was|has\s+been|will\s+be)\s+(?:appointed\s+|named\s+)?(?:as\s+)?(?:the\s+)?(?:new\s+|interim\s+|acting\s+)?|as\s+(?:the\s+)?)?(?P<role1>{role})\b(?:\s+(?:of|for|at)\s+(?:the\s+)?(?P<of1>{of}))?"
    );
    let role_then_name = format!(
        r"(?P<role2>{role})\b(?:\s+(?:of|for|at)\s+{of})?\s*(?:[:,{dashes}-]|\s+is|\s+will\s+be|\s+has\s+been)\s+(?P<name2>{name})"
    );
    let led_by = format!(r"(?i:led\s+by)\s+(?P<name3>{name})");
    format!("{name_then_role}|{role_then_name}|{led_by}")
});

static TITLE: ascii::AsciiOr = ascii::AsciiOr::new(|_| {
    r"^(?:(?:Dr|Prof|Professor|Sir|Dame|Cllr|Councillor|County Councillor|Mr|Mrs|Ms|Miss)\.?\s+)+"
        .to_owned()
});

/// Words a capitalised run can start with that are not names.
const NOT_NAMES: [&str; 12] = [
    "The",
    "Our",
    "This",
    "Their",
    "Commenting",
    "Meanwhile",
    "Health",
    "Care",
    "County",
    "Lancashire",
    "Cumbria",
    "Integrated",
];

/// Words in a capitalised run that make it a body, not a person.
const BODY_WORDS: [&str; 22] = [
    "Health",
    "NHS",
    "Council",
    "Trust",
    "Wales",
    "England",
    "Scotland",
    "Service",
    "Services",
    "Partnership",
    "Board",
    "Care",
    "Group",
    "Public",
    "Government",
    "Team",
    "Agency",
    "Department",
    "Office",
    "Authority",
    "Network",
    "Committee",
];

fn people(text: &str, facts: &mut BTreeSet<Fact>) {
    // "The Partnership Lead is …": an article is never the start of a name,
    // and would otherwise take "The Partnership" for one.
    let text = text.replace("The ", "    ").replace("Our ", "    ");
    for captures in PERSON_ROLE.captures_iter(&text) {
        let (name, role) = if let (Some(name), Some(role)) =
            (captures.name("name1"), captures.name("role1"))
        {
            let mut role = role.to_lowercase();
            if let Some(of) = captures.name("of1") {
                role = format!("{role} of {}", of.trim_start_matches("the "));
            }
            (name, role)
        } else if let (Some(name), Some(role)) = (captures.name("name2"), captures.name("role2")) {
            (name, role.to_lowercase())
        } else if let Some(name) = captures.name("name3") {
            (name, "lead".to_owned())
        } else {
            continue;
        };
        let bare = TITLE.remove_first(name);
        let first = bare.split_whitespace().next().unwrap_or("");
        // "led by Public Health Wales" names a body, not a person.
        let a_body = bare.split_whitespace().any(|w| BODY_WORDS.contains(&w));
        if NOT_NAMES.contains(&first) || a_body || gazetteer().lookup(&bare).is_some() {
            continue;
        }
        // A free-text role ("cabinet member for health and wellbeing, said")
        // ends at the first comma.
        let role = role.split(',').next().unwrap_or("").trim().to_owned();
        facts.insert(Fact::Person {
            name: name.to_owned(),
            role,
        });
    }
}

static EVENT: ascii::AsciiOr = ascii::AsciiOr::new(|_| {
    let month =
        "January|February|March|April|May|June|July|August|September|October|November|December";
    format!(
        r"(?i)\b(?:(?:from|since|on|by|until|before|after|effective|with effect from)\s+(\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{month})\s+\d{{4}})|(received\s+royal\s+assent|royal\s+assent))"
    )
});

fn events(text: &str, facts: &mut BTreeSet<Fact>) {
    for captures in EVENT.captures_iter(text) {
        let what = match (captures.get(1), captures.get(2)) {
            (Some(_), _) => captures[0].to_owned(),
            (None, Some(_)) => "Royal Assent".to_owned(),
            (None, None) => continue,
        };
        facts.insert(Fact::Event { what });
    }
}

/// Whether a fact names a current or abolished entry kind: used in
/// explanations ("Allerdale (district, abolished 2023)").
pub fn entry_kind(name: &str) -> Option<EntryKind> {
    gazetteer().lookup(name).map(|entry| entry.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_builds_of_the_name_patterns_agree_with_the_unicode_ones() {
        let samples = crate::core::classify::tests::ASCII_SAMPLES;
        let parts: Vec<&str> = samples
            .iter()
            .flat_map(|text| text.split([',', ';', '.']))
            .map(str::trim)
            .collect();
        for pattern in [&ENDS_A_NAME, &TITLE] {
            pattern.assert_builds_agree(&samples);
            pattern.assert_builds_agree(&parts);
        }
    }

    fn facts(text: &str) -> Vec<String> {
        text_facts(text, &[])
            .iter()
            .map(|f| format!("{:?}:{}", f.group(), f.label()))
            .collect()
    }

    #[test]
    fn places_in_a_covers_clause() {
        let found =
            facts("The STP (which covers Carlisle, Allerdale, Copeland and Eden) is known as");
        for place in ["Carlisle", "Allerdale", "Copeland", "Eden"] {
            assert!(
                found.contains(&format!("Boundary:{place}")),
                "{place} in {found:?}"
            );
        }
    }

    #[test]
    fn organisations_from_a_members_list() {
        for (text, name) in [
            ("Cumbria County Council", "Cumbria County Council"),
            (
                "Cumbria Partnership NHS Foundation Trust",
                "Cumbria Partnership NHS Foundation Trust",
            ),
            (
                "NHS North Cumbria Clinical Commissioning Group",
                "NHS North Cumbria CCG",
            ),
            (
                "North Cumbria University Hospitals NHS Trust",
                "North Cumbria University Hospitals NHS Trust",
            ),
            (
                "North West Ambulance Service",
                "North West Ambulance Service",
            ),
            ("Healthwatch Cumbria", "Healthwatch Cumbria"),
        ] {
            let found = facts(text);
            assert!(
                found.contains(&format!("Members:{name}")),
                "{name} in {found:?}"
            );
            assert!(
                !found.iter().any(|f| f == "Boundary:Cumbria"),
                "{text}: {found:?}"
            );
        }
    }

    #[test]
    fn population_figures_with_their_places() {
        let found = facts("Our Integrated health and Care System covers a population of 327,000:");
        assert!(
            found.contains(&"Boundary:population 327,000".to_owned()),
            "{found:?}"
        );
        let found = facts("Allerdale 96,471 residents");
        assert!(
            found.contains(&"Boundary:Allerdale population 96,471".to_owned()),
            "{found:?}"
        );
        let found = facts("the 1.8 million people living in Lancashire and South Cumbria");
        assert!(
            found.contains(&"Boundary:population 1,800,000".to_owned()),
            "{found:?}"
        );
    }

    #[test]
    fn counts_in_words_and_digits() {
        let found = facts("partnerships in 44 areas covering all of England");
        assert!(found.contains(&"Boundary:44 areas".to_owned()), "{found:?}");
        let found = facts("there have previously been five place-based partnerships");
        assert!(
            found.contains(&"Boundary:5 place-based partnerships".to_owned()),
            "{found:?}"
        );
        let found = facts("align to the four local authority boundaries");
        assert!(
            found.contains(&"Boundary:4 local authority boundaries".to_owned()),
            "{found:?}"
        );
        assert_eq!(number_value("forty-four"), Some(44));
        assert_eq!(number_value("thirteen"), Some(13));
    }

    #[test]
    fn people_with_roles() {
        let found = facts(
            "Kevin Lavery, chief executive of NHS Lancashire and South Cumbria Integrated Care Board, said:",
        );
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("Leaders:Kevin Lavery (chief executive")),
            "{found:?}"
        );
        let found =
            facts("County Councillor Michael Green, cabinet member for health and wellbeing, said");
        assert!(
            found
                .iter()
                .any(|f| f.contains("Michael Green (cabinet member for health and wellbeing")),
            "{found:?}"
        );
        let found = facts("Chief Executive: Jane Smith");
        assert!(
            found.contains(&"Leaders:Jane Smith (chief executive)".to_owned()),
            "{found:?}"
        );
    }

    #[test]
    fn dated_events() {
        let found = facts("statutory footing, which takes place from 1 July 2022.");
        assert!(
            found.contains(&"Narrative:from 1 July 2022".to_owned()),
            "{found:?}"
        );
        let found = facts("the Health and Care Bill received Royal Assent");
        assert!(
            found.contains(&"Narrative:Royal Assent".to_owned()),
            "{found:?}"
        );
    }

    #[test]
    fn custom_rules_capture_their_group() {
        let rule = FactRule {
            name: "board meeting".into(),
            pattern: Regex::new(r"board meeting on (\d+ \w+)").expect("regex"),
        };
        let found = text_facts("a paper presented at the board meeting on 27 July", &[rule]);
        assert!(found.contains(&Fact::Custom {
            rule: "board meeting".into(),
            value: "27 July".into()
        }));
    }

    #[test]
    fn list_items_naming_areas_are_places() {
        let item = |text: &str| block_facts(&Block::new(BlockKind::ListItem, text), &[]);
        let names = |facts: BTreeSet<Fact>| -> Vec<String> {
            facts
                .into_iter()
                .filter(|f| matches!(f, Fact::Place { .. }))
                .map(|f| f.label())
                .collect()
        };
        assert_eq!(names(item("Fylde Coast")), ["Fylde Coast"]);
        assert_eq!(names(item("Morecambe Bay")), ["Morecambe Bay"]);
        assert_eq!(names(item("Pennine Lancashire")), ["Pennine Lancashire"]);
        assert_eq!(
            names(item("Blackburn with Darwen")),
            ["Blackburn with Darwen"]
        );
        assert!(names(item("Improve the health and wellbeing of the population.")).is_empty());
        assert!(names(item("Cumbria County Council")).is_empty());
    }

    #[test]
    fn numbers_in_names_codes_money_and_sections_are_not_counts() {
        for text in [
            "COVID-19 guidance for providers",
            "COVID-19 status at places",
            "the £10,500 tariff payments for local authorities",
            "as set out in section 3 areas of work",
            "variant VOC-20DEC-01 areas",
        ] {
            let found = facts(text);
            assert!(
                !found.iter().any(|f| f.starts_with("Boundary:")),
                "{text}: {found:?}"
            );
        }
        let found = facts("386,044 people have been tested");
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn places_inside_names_and_labels_are_not_covered() {
        for text in [
            "a premises near Bury St Edmunds, West Suffolk",
            "supplied by Cambridge Water",
            "[Kent] Guidance for schools",
        ] {
            let found = facts(text);
            for bad in ["Boundary:Bury", "Boundary:Cambridge", "Boundary:Kent"] {
                assert!(!found.contains(&bad.to_owned()), "{text}: {found:?}");
            }
        }
        let found = facts("London Borough of Enfield");
        assert!(!found.iter().any(|f| f == "Boundary:Enfield"), "{found:?}");
    }

    #[test]
    fn lists_of_organisations_are_split() {
        let found = facts("Members are Cumbria County Council and Lancashire County Council.");
        assert!(
            found.contains(&"Members:Cumbria County Council".to_owned()),
            "{found:?}"
        );
        assert!(
            found.contains(&"Members:Lancashire County Council".to_owned()),
            "{found:?}"
        );
    }

    #[test]
    fn leaders_in_common_phrasings() {
        for (text, want) in [
            (
                "The Partnership Lead is Jane Smith.",
                "Leaders:Jane Smith (partnership lead)",
            ),
            (
                "Amir Khan has been appointed as Chief Officer.",
                "Leaders:Amir Khan (chief officer)",
            ),
            ("Chair: Sarah Jones", "Leaders:Sarah Jones (chair)"),
            (
                "The work is led by Peter Brown.",
                "Leaders:Peter Brown (lead)",
            ),
        ] {
            let found = facts(text);
            assert!(found.contains(&want.to_owned()), "{text}: {found:?}");
        }
        let found = facts("The statement is led by Public Health Wales.");
        assert!(
            !found.iter().any(|f| f.starts_with("Leaders:")),
            "{found:?}"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(327_000), "327,000");
        assert_eq!(thousands(1_800_000), "1,800,000");
        assert_eq!(thousands(42), "42");
    }
}
