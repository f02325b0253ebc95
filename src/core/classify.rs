//! What kind of change a text diff is, in terms a stakeholder cares about:
//! `boundary`, `members`, `leaders`, `narrative`, or `minor` noise.
//!
//! Pure: it reads a [`TextDiff`] and the facts of both versions, and returns
//! classified changes, each with the facts added and removed, a one-line
//! summary, and the changed blocks as evidence.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::core::diff::{BlockChange, ChangeKind, TextDiff, WordOp};
use crate::core::facts::ascii::AsciiOr;
use crate::core::facts::{self, Fact, FactGroup};
use crate::core::gist::{self, Point, Rank};
use crate::core::model::BlockKind;

/// The kinds of change, most important first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Places covered, population figures, counts of areas or partnerships.
    Boundary,
    /// Organisations.
    Members,
    /// People and roles, contacts.
    Leaders,
    /// Prose.
    Narrative,
    /// Whitespace, punctuation, spelling, "last updated" dates, copyright
    /// years, dynamic tokens. Never alerts on its own.
    Minor,
}

impl Kind {
    /// Every kind, most important first.
    pub const ALL: [Kind; 5] = [
        Self::Boundary,
        Self::Members,
        Self::Leaders,
        Self::Narrative,
        Self::Minor,
    ];

    /// The kind's name as used in config and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boundary => "boundary",
            Self::Members => "members",
            Self::Leaders => "leaders",
            Self::Narrative => "narrative",
            Self::Minor => "minor",
        }
    }

    /// Parses a kind's name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    fn from_group(group: FactGroup) -> Self {
        match group {
            FactGroup::Boundary => Self::Boundary,
            FactGroup::Members => Self::Members,
            FactGroup::Leaders => Self::Leaders,
            FactGroup::Narrative => Self::Narrative,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fact whose value changed: "population 327,000 → 274,000".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueChange {
    /// The fact before.
    pub from: Fact,
    /// The fact after.
    pub to: Fact,
}

/// One classified change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classified {
    /// What kind of change.
    pub kind: Kind,
    /// One line a stakeholder can read.
    pub summary: String,
    /// Facts only in the new version.
    pub added: Vec<Fact>,
    /// Facts only in the old version.
    pub removed: Vec<Fact>,
    /// Facts whose value changed (populations, counts, who holds a role) or
    /// organisations renamed.
    pub changed: Vec<ValueChange>,
    /// The changed blocks that show it.
    pub evidence: Vec<BlockChange>,
    /// What the summary says, point by point, most telling first: the
    /// one-line summary of the whole assessment is fitted from these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<String>,
}

/// The assessment of one diff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// Classified changes, most important kind first.
    pub changes: Vec<Classified>,
}

impl Assessment {
    /// The kinds present, most important first.
    pub fn kinds(&self) -> Vec<Kind> {
        self.changes.iter().map(|c| c.kind).collect()
    }

    /// Whether this deserves an alert: anything but minor changes.
    pub fn alerts(&self) -> bool {
        self.changes.iter().any(|c| c.kind != Kind::Minor)
    }

    /// The most important kind, if any.
    pub fn headline_kind(&self) -> Option<Kind> {
        self.changes.first().map(|c| c.kind)
    }

    /// One line for the whole assessment, most important kind first, at
    /// most [`MAX_SUMMARY_CHARS`] characters ("(+N more)" for what does not
    /// fit). Minor edits are named only when nothing else changed.
    pub fn one_line(&self) -> String {
        let alerting: Vec<&Classified> = self
            .changes
            .iter()
            .filter(|c| c.kind != Kind::Minor)
            .collect();
        if alerting.is_empty() {
            return self
                .changes
                .iter()
                .map(|c| c.summary.as_str())
                .collect::<Vec<_>>()
                .join(" | ");
        }
        let kinds: Vec<(Kind, Vec<String>)> = alerting
            .iter()
            .map(|c| {
                let points = if c.points.is_empty() {
                    // Records stored before points existed.
                    vec![without_kind(&c.summary, c.kind).to_owned()]
                } else {
                    c.points.clone()
                };
                (c.kind, points)
            })
            .collect();
        fit(&kinds)
    }
}

/// The longest one-line summary, in characters.
pub const MAX_SUMMARY_CHARS: usize = 200;

/// "Boundary", as summaries start.
fn title(kind: Kind) -> String {
    let name = kind.as_str();
    format!("{}{}", name[..1].to_ascii_uppercase(), &name[1..])
}

fn without_kind(summary: &str, kind: Kind) -> &str {
    summary
        .strip_prefix(&format!("{}: ", title(kind)))
        .unwrap_or(summary)
}

/// Fits kinds' points into one line of at most [`MAX_SUMMARY_CHARS`]
/// characters: "Kind: a; b | Kind: c (+N more)".
fn fit(kinds: &[(Kind, Vec<String>)]) -> String {
    let titled: Vec<(String, Vec<String>)> = kinds
        .iter()
        .map(|(kind, points)| (title(*kind), points.clone()))
        .collect();
    crate::core::order::fit(&titled, MAX_SUMMARY_CHARS)
}

/// Classifies a diff, given the facts of the old and the new version.
pub fn classify(
    diff: &TextDiff,
    old_facts: &BTreeSet<Fact>,
    new_facts: &BTreeSet<Fact>,
) -> Assessment {
    classify_changes(
        diff,
        &facts::FactChanges {
            added: new_facts.difference(old_facts).cloned().collect(),
            removed: old_facts.difference(new_facts).cloned().collect(),
        },
    )
}

/// Classifies a diff, given the facts only the new version states and
/// those only the old one states ([`facts::fact_changes`]): all that is
/// read of the versions' facts.
pub fn classify_changes(diff: &TextDiff, fact_changes: &facts::FactChanges) -> Assessment {
    classify_with(diff, fact_changes, |block| facts::block_facts(block, &[]))
}

/// [`classify_changes`], taking the changed blocks' facts from those
/// [`facts::read_fact_changes`] read already.
pub fn classify_read(
    diff: &TextDiff,
    fact_changes: &facts::FactChanges,
    read: &facts::ReadFacts<'_>,
) -> Assessment {
    classify_with(diff, fact_changes, |block| read.without_rules(block))
}

/// The classifier, given how to read a block's facts (without the watch's
/// own rules).
fn classify_with(
    diff: &TextDiff,
    fact_changes: &facts::FactChanges,
    block_facts: impl Fn(&crate::core::model::Block) -> BTreeSet<Fact>,
) -> Assessment {
    let added: Vec<Fact> = fact_changes.added.iter().cloned().collect();
    let removed: Vec<Fact> = fact_changes.removed.iter().cloned().collect();
    // Each changed block's own facts, read once: the evidence and the
    // renames below both need them.
    let block_facts: Vec<(BTreeSet<Fact>, BTreeSet<Fact>)> = diff
        .changes
        .iter()
        .map(|change| {
            let read = |block: Option<&crate::core::model::Block>| {
                block.map(&block_facts).unwrap_or_default()
            };
            (read(change.old.as_ref()), read(change.new.as_ref()))
        })
        .collect();
    // Organisation names are compared pairwise, removed against added, so
    // each name's distinctive words are read once here rather than per pair
    // (that was a third of the classifier's cost on a changed cycle).
    let mut names = NameWords::default();
    let (mut changed, mut added, removed) = pair_value_changes(added, removed, &mut names);
    rename_in_place(diff, &block_facts, &mut changed, &mut added, &mut names);

    // Tie each block change to the page-level fact changes it shows.
    let moving: BTreeSet<&Fact> = added
        .iter()
        .chain(&removed)
        .chain(changed.iter().flat_map(|c| [&c.from, &c.to]))
        .collect();
    let mut evidence_by_kind: Vec<(Kind, BlockChange)> = Vec::new();
    for (block_change, (before, after)) in diff.changes.iter().zip(&block_facts) {
        let mut kinds: BTreeSet<Kind> = before
            .symmetric_difference(after)
            .filter(|fact| moving.contains(fact))
            .map(|fact| Kind::from_group(fact.group()))
            .collect();
        if kinds.is_empty() {
            // A list item that names a place or an organisation still named
            // elsewhere on the page is a change to that list, not prose.
            let listed = block_change
                .new
                .as_ref()
                .or(block_change.old.as_ref())
                .is_some_and(|b| b.kind == BlockKind::ListItem);
            let named = before
                .union(after)
                .map(|f| Kind::from_group(f.group()))
                .filter(|k| *k != Kind::Narrative)
                .min();
            let minor = is_minor(block_change);
            kinds.insert(match named {
                Some(kind) if listed && !minor => kind,
                _ if minor => Kind::Minor,
                _ => Kind::Narrative,
            });
        }
        for kind in kinds {
            evidence_by_kind.push((kind, block_change.clone()));
        }
    }

    let mut changes = Vec::new();
    for kind in Kind::ALL {
        let of_kind = |fact: &&Fact| kind != Kind::Minor && Kind::from_group(fact.group()) == kind;
        let kind_added: Vec<Fact> = added.iter().filter(of_kind).cloned().collect();
        let kind_removed: Vec<Fact> = removed.iter().filter(of_kind).cloned().collect();
        let kind_changed: Vec<ValueChange> = changed
            .iter()
            .filter(|c| kind != Kind::Minor && Kind::from_group(c.to.group()) == kind)
            .cloned()
            .collect();
        let evidence: Vec<BlockChange> = evidence_by_kind
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, change)| change.clone())
            .collect();
        if kind_added.is_empty()
            && kind_removed.is_empty()
            && kind_changed.is_empty()
            && evidence.is_empty()
        {
            continue;
        }
        let mut points = summarise(kind, &kind_added, &kind_removed, &kind_changed, &evidence);
        if kind == Kind::Narrative {
            // A date that moved inside a sentence ("rules changed on 29
            // March" → "17 May") is no alert on its own, but said last when
            // the prose changed anyway.
            points.extend(moved_dates(&evidence_by_kind));
        }
        let summary = if kind == Kind::Minor {
            points.join("; ")
        } else {
            fit(&[(kind, points.clone())])
        };
        changes.push(Classified {
            kind,
            summary,
            added: kind_added,
            removed: kind_removed,
            changed: kind_changed,
            evidence,
            points: if kind == Kind::Minor {
                Vec::new()
            } else {
                points
            },
        });
    }
    Assessment { changes }
}

/// An organisation added where a removed block named a close one is a
/// rename, even when the old name still appears elsewhere on the page (in a
/// contact line, say): "NHS North Cumbria CCG → NHS North East and North
/// Cumbria ICB".
fn rename_in_place(
    diff: &TextDiff,
    block_facts: &[(BTreeSet<Fact>, BTreeSet<Fact>)],
    changed: &mut Vec<ValueChange>,
    added: &mut Vec<Fact>,
    names: &mut NameWords,
) {
    let removed_names: Vec<&Fact> = diff
        .changes
        .iter()
        .zip(block_facts)
        .filter(|(c, _)| c.kind != ChangeKind::Added && c.old.is_some())
        .flat_map(|(_, (before, _))| before)
        .filter(|f| matches!(f, Fact::Organisation { .. }))
        .collect();
    let mut i = 0;
    while i < added.len() {
        let partner = match &added[i] {
            Fact::Organisation { name } => removed_names.iter().copied().find(|old| match old {
                Fact::Organisation { name: old_name } => {
                    old_name != name && names.are_close(old_name, name)
                }
                _ => false,
            }),
            _ => None,
        };
        match partner {
            Some(old) if !changed.iter().any(|c| &c.from == old) => {
                changed.push(ValueChange {
                    from: old.clone(),
                    to: added.remove(i),
                });
            }
            _ => i += 1,
        }
    }
}

/// Pairs removed and added facts that are one fact with a new value: the
/// population of the same place, a count of the same thing, the holder of
/// the same role, or an organisation renamed.
fn pair_value_changes(
    mut added: Vec<Fact>,
    mut removed: Vec<Fact>,
    names: &mut NameWords,
) -> (Vec<ValueChange>, Vec<Fact>, Vec<Fact>) {
    let mut changed = Vec::new();
    let mut r = 0;
    while r < removed.len() {
        let partner = added
            .iter()
            .position(|a| same_subject(&removed[r], a, names));
        match partner {
            Some(a) => {
                changed.push(ValueChange {
                    from: removed.remove(r),
                    to: added.remove(a),
                });
            }
            None => r += 1,
        }
    }
    (changed, added, removed)
}

fn same_subject(old: &Fact, new: &Fact, names: &mut NameWords) -> bool {
    match (old, new) {
        (Fact::Population { place: a, .. }, Fact::Population { place: b, .. }) => a == b,
        (Fact::Count { noun: a, .. }, Fact::Count { noun: b, .. }) => a == b,
        (Fact::Person { role: a, name: x }, Fact::Person { role: b, name: y }) => {
            (a == b && x != y) || (x == y && a != b)
        }
        (Fact::Organisation { name: a }, Fact::Organisation { name: b }) => names.are_close(a, b),
        _ => false,
    }
}

/// Words that say what kind of body an organisation is, not which one.
const GENERIC_WORDS: [&str; 16] = [
    "nhs",
    "and",
    "of",
    "the",
    "trust",
    "foundation",
    "ccg",
    "icb",
    "clinical",
    "commissioning",
    "group",
    "integrated",
    "care",
    "board",
    "council",
    "&",
];

/// Each organisation name's distinctive words (lower case, generic words
/// left out), sorted and without repeats, read once per name.
#[derive(Default)]
struct NameWords(std::collections::HashMap<String, Vec<String>>);

impl NameWords {
    /// Whether two organisation names are close enough to be a rename: they
    /// share at least half of their distinctive words.
    fn are_close(&mut self, a: &str, b: &str) -> bool {
        for name in [a, b] {
            if !self.0.contains_key(name) {
                let mut words: Vec<String> = name
                    .split_whitespace()
                    .map(str::to_lowercase)
                    .filter(|w| !GENERIC_WORDS.contains(&w.as_str()))
                    .collect();
                words.sort_unstable();
                words.dedup();
                self.0.insert(name.to_owned(), words);
            }
        }
        let (a, b) = (&self.0[a], &self.0[b]);
        // Both sorted: count the words they share in one merge.
        let (mut i, mut j, mut shared) = (0, 0, 0);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        let smaller = a.len().min(b.len());
        smaller > 0 && shared * 2 >= smaller
    }
}

fn value_label(fact: &Fact) -> String {
    match fact {
        Fact::Population { figure, .. } => facts::thousands(*figure),
        Fact::Count { value, .. } => value.to_string(),
        Fact::Person { name, .. } => name.clone(),
        other => other.label(),
    }
}

/// The points of one kind's summary, most telling first.
fn summarise(
    kind: Kind,
    added: &[Fact],
    removed: &[Fact],
    changed: &[ValueChange],
    evidence: &[BlockChange],
) -> Vec<String> {
    if kind == Kind::Minor {
        let (plus, minus, edited) = count_kinds(evidence);
        return vec![format!(
            "Minor: {} small edit(s) (dates, punctuation, spelling or boilerplate)",
            plus + minus + edited
        )];
    }
    let mut points: Vec<Point> = Vec::new();
    let mut used_blocks: BTreeSet<String> = BTreeSet::new();
    // A fact added or removed with the short block that states it is shown
    // as that block: "+City of Lincoln Council, 20 April 2022".
    let with_context = |sign: char, fact: &Fact, used: &mut BTreeSet<String>| -> String {
        let label = fact.label();
        let wanted = if sign == '+' {
            ChangeKind::Added
        } else {
            ChangeKind::Removed
        };
        let block = evidence
            .iter()
            .filter(|c| c.kind == wanted)
            .filter_map(|c| c.new.as_ref().or(c.old.as_ref()))
            .find(|b| {
                matches!(b.kind, BlockKind::TableRow | BlockKind::ListItem)
                    && b.text.contains(&label)
                    && b.text.chars().count() <= 100
            });
        match block {
            Some(block) if !matches!(fact, Fact::Population { .. } | Fact::Count { .. }) => {
                used.insert(block.text.clone());
                let text = block
                    .text
                    .split(" | ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty() && *c != "-")
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{sign}{text}")
            }
            _ => format!("{sign}{label}"),
        }
    };
    let fact_rank = |fact: &Fact| match fact {
        Fact::Event { .. } => Rank::Date,
        _ => Rank::Fact,
    };
    match kind {
        Kind::Boundary => {
            let is_place = |f: &&Fact| matches!(f, Fact::Place { .. });
            let place_changes: Vec<String> = added
                .iter()
                .filter(is_place)
                .map(|f| format!("+{}", f.label()))
                .chain(
                    removed
                        .iter()
                        .filter(is_place)
                        .map(|f| format!("−{}", f.label())),
                )
                .collect();
            if !place_changes.is_empty() {
                points.push(Point::new(
                    Rank::Figure,
                    format!("Places covered: {}", place_changes.join(", ")),
                ));
            }
            for fact in added.iter().filter(|f| !is_place(f)) {
                points.push(Point::new(Rank::Fact, format!("+{}", fact.label())));
            }
            for fact in removed.iter().filter(|f| !is_place(f)) {
                points.push(Point::new(Rank::Fact, format!("−{}", fact.label())));
            }
        }
        _ => {
            for fact in added {
                points.push(Point::new(
                    fact_rank(fact),
                    with_context('+', fact, &mut used_blocks),
                ));
            }
            for fact in removed {
                points.push(Point::new(
                    fact_rank(fact),
                    with_context('−', fact, &mut used_blocks),
                ));
            }
        }
    }
    for change in changed {
        let text = match (&change.from, &change.to) {
            (Fact::Person { name: a, role: r1 }, Fact::Person { name: b, role: r2 })
                if r1 == r2 =>
            {
                format!("{r1}: {a} → {b}")
            }
            (Fact::Person { name, role: r1 }, Fact::Person { role: r2, .. }) => {
                format!("{name}: {r1} → {r2}")
            }
            (from @ (Fact::Population { .. } | Fact::Count { .. }), to) => {
                let subject = match to {
                    Fact::Population {
                        place: Some(place), ..
                    } => format!("{place} population"),
                    Fact::Population { place: None, .. } => "population".to_owned(),
                    Fact::Count { noun, .. } => noun.clone(),
                    other => other.label(),
                };
                format!("{subject} {} → {}", value_label(from), value_label(to))
            }
            (from, to) => format!("{} → {}", from.label(), to.label()),
        };
        points.push(Point::new(Rank::Figure, text));
    }
    // The blocks' own gist: for prose always, for the other kinds when no
    // fact says what changed.
    if kind == Kind::Narrative || points.is_empty() {
        points.extend(loose_figures(evidence, &mut used_blocks));
        for change in evidence {
            let text = change.new.as_ref().or(change.old.as_ref()).map(|b| &b.text);
            if text.is_some_and(|t| used_blocks.contains(t)) || is_minor(change) {
                continue;
            }
            let mut gist = gist::points(change);
            if matches!(change.kind, ChangeKind::Added | ChangeKind::Removed) {
                for point in gist.iter_mut().filter(|p| p.rank == Rank::Heading) {
                    point.weight = crate::core::order::section_weight(change, evidence);
                }
            }
            points.extend(gist);
        }
    }
    if points.is_empty() {
        let (plus, minus, edited) = count_kinds(evidence);
        points.push(Point::new(
            Rank::Passage,
            format!("{} passage(s) changed", plus + minus + edited),
        ));
    }
    // Most telling first, page order within a rank; each said once.
    crate::core::order::order(points)
}

/// The dates that moved inside sentences of minor changes, not in date
/// stamps or boilerplate lines.
fn moved_dates(evidence: &[(Kind, BlockChange)]) -> Vec<String> {
    evidence
        .iter()
        .filter(|(kind, change)| {
            *kind == Kind::Minor
                && change.kind == ChangeKind::Changed
                && change.new.as_ref().is_some_and(|b| {
                    b.text.split_whitespace().count() > 6 && !BOILERPLATE.is_match(&b.text)
                })
        })
        .flat_map(|(_, change)| gist::points(change))
        .filter(|p| p.rank == Rank::Date)
        .map(|p| p.text)
        .collect()
}

/// A removed and an added passage that state the same figures anew, as
/// figure points; both blocks are marked used.
fn loose_figures(evidence: &[BlockChange], used: &mut BTreeSet<String>) -> Vec<Point> {
    const MAX_COMPARISONS: usize = 4_096;
    let side = |kind: ChangeKind| -> Vec<&crate::core::model::Block> {
        evidence
            .iter()
            .filter(|c| c.kind == kind)
            .filter_map(|c| c.new.as_ref().or(c.old.as_ref()))
            .filter(|b| b.text.bytes().any(|c| c.is_ascii_digit()))
            .collect()
    };
    let (removed, added) = (side(ChangeKind::Removed), side(ChangeKind::Added));
    if removed.len() * added.len() > MAX_COMPARISONS {
        return Vec::new();
    }
    let mut points = Vec::new();
    for new in added {
        for old in &removed {
            if used.contains(&old.text) {
                continue;
            }
            let found = gist::paired_figures(old, new);
            if !found.is_empty() {
                used.insert(old.text.clone());
                used.insert(new.text.clone());
                points.extend(found);
                break;
            }
        }
    }
    points
}

fn count_kinds(evidence: &[BlockChange]) -> (usize, usize, usize) {
    let count = |kind| evidence.iter().filter(|c| c.kind == kind).count();
    (
        count(ChangeKind::Added),
        count(ChangeKind::Removed),
        count(ChangeKind::Changed),
    )
}

static DATE_LIKE: AsciiOr = AsciiOr::new(|_| {
    let month = "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?";
    let weekday = "mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:rs(?:day)?)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?";
    format!(
        r"(?i)\b(?:(?:{weekday}),?\s+)?(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{month})\.?(?:\s+\d{{4}})?|(?:{month})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?(?:\s+\d{{4}})?|(?:{month})\s+\d{{4}}|\d{{1,4}}[/.-]\d{{1,2}}[/.-]\d{{1,4}}|\d{{1,2}}:\d{{2}}(?::\d{{2}})?\s*(?:am|pm)?|\d{{1,2}}\s*(?:am|pm)|(?:19|20)\d{{2}})\b"
    )
});

/// The byte ranges of dates and times in a text.
pub(crate) fn date_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    DATE_LIKE.find_ranges(text).collect()
}

/// Tokens that change on every render: hashes, session ids, long base64.
static DYNAMIC_TOKEN: AsciiOr = AsciiOr::new(|_| {
    r"\b(?:[0-9a-fA-F]{8,}|[A-Za-z0-9_-]*\d[A-Za-z0-9_-]*[A-Za-z][A-Za-z0-9_-]{14,}|[A-Za-z0-9+/]{24,}={0,2})\b".to_owned()
});

/// The sign of a figure ("-1%", "+1%"): not punctuation, since a growth
/// rate turning from falling to rising is news.
/// (An ASCII text holds no `−`.)
static SIGN: AsciiOr = AsciiOr::new(|ascii| {
    let signs = if ascii { "-+" } else { "-−+" };
    format!(r"(?:^|\s)([{signs}])(\d)")
});

/// Lines that are site furniture even when they survive extraction.
/// (An ASCII text holds no `©`.)
static BOILERPLATE: AsciiOr = AsciiOr::new(|ascii| {
    let mark = if ascii { "" } else { "|©" };
    format!(
        r"(?i)^(?:page\s+)?(?:last\s+)?(?:updated|reviewed|modified|published|printed|accessed)\b|copyright{mark}|all rights reserved|^share\s+this|cookies?\b.*\b(?:accept|settings|consent)"
    )
});

/// Counters a page shows of itself: "Viewed 1,234 times", "12,345 views".
static COUNTER: AsciiOr = AsciiOr::new(|_| {
    r"(?i)\b(?:viewed|read|downloaded|shared)\s+[\d,.]+k?\s+times\b|\b[\d,.]+k?\s+(?:views|page\s*views|visits|visitors|reads|downloads|likes|shares|comments|responses)\b".to_owned()
});

/// A word every match of [`COUNTER`] contains, in lower case.
const COUNTER_WORDS: [&str; 8] = [
    "view", "read", "download", "share", "visit", "like", "comment", "response",
];

/// Whether `text` has a run of 8 or more of the bytes [`DYNAMIC_TOKEN`]'s
/// tokens are made of: each of its tokens is such a run.
fn has_token_run(text: &str) -> bool {
    let token = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'/');
    let mut run = 0;
    text.bytes().any(|b| {
        run = if token(b) { run + 1 } else { 0 };
        run >= 8
    })
}

/// The text with dates, times, dynamic tokens, case, punctuation and
/// spacing taken out: what is left is what a reader would call the words.
fn skeleton(text: &str) -> String {
    // Each pattern runs only on a text that has what every match of it
    // needs (a digit, a counter's word, a long token): most changed blocks
    // have none of some, and a pattern never run is never compiled, which
    // on a cycle of a hundred changed pages is most of what it would cost.
    // Outside ASCII, `\d` and case-insensitive letters match more than
    // ASCII does, so such a text is always searched.
    let may_count = |t: &str| {
        !t.is_ascii() || {
            let lower = t.to_ascii_lowercase();
            COUNTER_WORDS.iter().any(|word| lower.contains(word))
        }
    };
    let may_date = |t: &str| !t.is_ascii() || t.bytes().any(|b| b.is_ascii_digit());
    let text = if may_count(text) {
        COUNTER.replace_all(text, " counter ")
    } else {
        Cow::Borrowed(text)
    };
    let text = if may_date(&text) {
        DATE_LIKE.replace_all(&text, " ")
    } else {
        Cow::Borrowed(&*text)
    };
    let text = if has_token_run(&text) {
        DYNAMIC_TOKEN.replace_all(&text, " ")
    } else {
        Cow::Borrowed(&*text)
    };
    let text = if may_date(&text) {
        SIGN.replace_all_with(&text, |c| {
            let sign = if &c[1] == "+" { "plus" } else { "minus" };
            format!(" {sign}{}", &c[2])
        })
    } else {
        Cow::Borrowed(&*text)
    };
    text.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a block change is noise: only dates, punctuation, spacing, a
/// spelling fix, dynamic tokens, or boilerplate lines.
pub fn is_minor(change: &BlockChange) -> bool {
    match (change.kind, &change.old, &change.new) {
        (ChangeKind::Changed, Some(old), Some(new)) => {
            if skeleton(&old.text) == skeleton(&new.text) {
                return true;
            }
            is_spelling_fix(change)
        }
        (ChangeKind::Added, _, Some(block)) | (ChangeKind::Removed, Some(block), _) => {
            skeleton(&block.text).is_empty() || BOILERPLATE.is_match(&block.text)
        }
        _ => false,
    }
}

/// At most two words changed, each to a word within two letters of it.
fn is_spelling_fix(change: &BlockChange) -> bool {
    let deleted: Vec<&str> = change
        .words
        .iter()
        .filter(|s| s.op == WordOp::Delete)
        .flat_map(|s| s.text.split_whitespace())
        .collect();
    let inserted: Vec<&str> = change
        .words
        .iter()
        .filter(|s| s.op == WordOp::Insert)
        .flat_map(|s| s.text.split_whitespace())
        .collect();
    if deleted.is_empty() || deleted.len() != inserted.len() || deleted.len() > 2 {
        return false;
    }
    deleted.iter().zip(&inserted).all(|(a, b)| {
        // Numbers are never typos: 327,000 → 274,000 is news.
        let has_digit = |w: &str| w.chars().any(|c| c.is_ascii_digit());
        !has_digit(a) && !has_digit(b) && edit_distance(a, b) <= 2 && a.len().min(b.len()) >= 3
    })
}

/// Levenshtein distance between two short words.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            current[j + 1] = (previous[j] + cost)
                .min(previous[j + 1] + 1)
                .min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::diff::{DiffOptions, diff};
    use crate::core::facts::page_facts;
    use crate::core::model::{Block, BlockKind};

    fn para(text: &str) -> Block {
        Block::new(BlockKind::Paragraph, text)
    }

    /// `skeleton` as it was before its patterns were skipped on texts they
    /// cannot match: every pattern run on every text.
    fn skeleton_running_every_pattern(text: &str) -> String {
        let text = COUNTER.replace_all(text, " counter ");
        let text = DATE_LIKE.replace_all(&text, " ");
        let text = DYNAMIC_TOKEN.replace_all(&text, " ");
        let text = SIGN.replace_all_with(&text, |c| {
            let sign = if &c[1] == "+" { "plus" } else { "minus" };
            format!(" {sign}{}", &c[2])
        });
        text.chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// ASCII texts that hold what the noise and figure patterns look for,
    /// and near misses: dates, times, counters, tokens, signs, boilerplate,
    /// figures, organisation endings and titles.
    pub(crate) const ASCII_SAMPLES: [&str; 16] = [
        "",
        "The board meets on Tuesday, 4 March 2025 at 10:30am; next on 1st Apr. 2026 or Sept 9th, 2024.",
        "Updated 12/03/2024 and 2024-03-12 and 9 pm; 1999 was long ago; 3099 is not a year",
        "VIEWED 12 TIMES, 5 Comments, 9 page views, 4 Responses, 2 visitors, read 1.2k times",
        "session 3f9a2b7c1d and token abcDEF0123456789ghijkl and aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=",
        "rates went -1% then +2% and -3.5% to +1.25 %; -x and 4-5",
        "Page last updated: 3 June 2024. Copyright 2024 NHS. All rights reserved.",
        "Share this page. We use cookies: accept all or change settings for consent",
        "A population of 327,000 rose to 274,000 people; isolation 14 days to 10 days; $5 million",
        "1,234 to 2,345 and 12 and 13 per cent; 7 percent; 3 per day; 40 km; 9 miles; 2 billion",
        "Cumbria County Council, Eden District Council and North Cumbria Integrated Care Board",
        "Morecambe Bay CCG; Bay Health NHS Foundation Trust; St Mary's Hospice; Hospitals",
        "Dr Jane Smith, Prof. Alan Jones, Cllr Mary Brown and County Councillor Sam Hill",
        "Mr Mrs Ms Miss Sir Dame Professor Drake; DrX; Cllr.  Lee",
        "under_score_words and x_1 with tabs\tand\nnew lines, 08:00, 23:59:59 and 7am",
        "COVID-19 H5N1 VOC-20DEC-01 ABC123def456ghi789jkl",
    ];

    #[test]
    fn the_ascii_builds_of_the_noise_patterns_agree_with_the_unicode_ones() {
        for pattern in [&DATE_LIKE, &DYNAMIC_TOKEN, &SIGN, &BOILERPLATE, &COUNTER] {
            pattern.assert_builds_agree(&ASCII_SAMPLES);
        }
        // Per line too, for the patterns anchored at the start.
        let lines: Vec<&str> = ASCII_SAMPLES
            .iter()
            .flat_map(|text| text.split(['.', ';', ',']))
            .map(str::trim)
            .collect();
        for pattern in [&BOILERPLATE, &SIGN] {
            pattern.assert_builds_agree(&lines);
        }
    }

    /// `NameWords::are_close` as it was before names' words were kept: two
    /// sets built on every call.
    fn names_are_close_by_sets(a: &str, b: &str) -> bool {
        let words = |name: &str| -> BTreeSet<String> {
            name.split_whitespace()
                .map(str::to_lowercase)
                .filter(|w| !GENERIC_WORDS.contains(&w.as_str()))
                .collect()
        };
        let (a, b) = (words(a), words(b));
        let shared = a.intersection(&b).count();
        let smaller = a.len().min(b.len());
        smaller > 0 && shared * 2 >= smaller
    }

    #[test]
    fn kept_name_words_agree_with_sets_built_per_pair() {
        let names = [
            "",
            "NHS",
            "NHS North Cumbria CCG",
            "NHS North East and North Cumbria ICB",
            "North Cumbria Integrated Care NHS Foundation Trust",
            "Cumbria County Council",
            "Cumbria  cumbria COUNTY council",
            "Eden District Council",
            "The Board of the Trust",
            "Lancashire & South Cumbria ICB",
            "Société Générale de Cumbria",
            "SOCIÉTÉ générale",
        ];
        let mut kept = NameWords::default();
        for a in names {
            for b in names {
                assert_eq!(
                    kept.are_close(a, b),
                    names_are_close_by_sets(a, b),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }

    #[test]
    fn skeleton_skips_only_patterns_that_cannot_match() {
        let texts = [
            "",
            "Viewed 1,234 times. Shared 12 times, 3.4k views and 7 likes",
            "VIEWED 12 TIMES, 5 Comments, 9 page views, 4 Responses, 2 visitors",
            "a, visits and . likes but no digit",
            "The board meets on Tuesday, 4 March 2025 at 10:30am",
            "Updated 12/03/2024 and 2024-03-12 and 9 pm; 1999 was long ago",
            "session 3f9a2b7c1d and token abcDEF0123456789ghijkl and aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=",
            "deadbeef cafebabe feedface1 and short abc123",
            "rates went -1% then +2% and \u{2212}3%",
            "Nine councils and four trusts, with no figure at all",
            "Café Société: \u{661}\u{662} \u{2212}\u{663} and 1\u{212a} views, \u{17f}hared 3 times",
            "Likes Kelvin \u{212a}ikes and the long \u{17f}: 5 li\u{212a}es",
        ];
        for text in texts {
            assert_eq!(
                skeleton(text),
                skeleton_running_every_pattern(text),
                "{text:?}"
            );
        }
    }

    fn item(text: &str) -> Block {
        Block::new(BlockKind::ListItem, text)
    }

    fn assess(old: &[Block], new: &[Block]) -> Assessment {
        let result = diff(old, new, &DiffOptions::default());
        classify(&result, &page_facts(old, &[]), &page_facts(new, &[]))
    }

    #[test]
    fn a_dropped_district_and_a_falling_population_are_a_boundary_change() {
        let old = vec![
            para("Our system covers a population of 327,000:"),
            item("Allerdale 96,471 residents"),
            item("Eden 52,630 residents."),
        ];
        let new = vec![
            para("Our system covers a population of 274,000:"),
            item("Allerdale 96,471 residents"),
        ];
        let assessment = assess(&old, &new);
        assert_eq!(assessment.kinds(), [Kind::Boundary]);
        let summary = &assessment.changes[0].summary;
        assert!(summary.contains("Places covered: −Eden"), "{summary}");
        assert!(
            summary.contains("population 327,000 → 274,000"),
            "{summary}"
        );
        assert!(assessment.alerts());
    }

    #[test]
    fn a_ccg_replaced_by_an_icb_is_a_rename() {
        let old = vec![item("NHS North Cumbria Clinical Commissioning Group")];
        let new = vec![item(
            "NHS North East and North Cumbria Integrated Care Board",
        )];
        let assessment = assess(&old, &new);
        assert_eq!(assessment.headline_kind(), Some(Kind::Members));
        let summary = &assessment.changes[0].summary;
        assert!(
            summary.contains(
                "NHS North Cumbria CCG → NHS North East and North Cumbria Integrated Care Board"
            ),
            "{summary}"
        );
    }

    #[test]
    fn a_new_chief_executive_is_a_leaders_change() {
        let old = vec![para("Chief Executive: Jane Smith")];
        let new = vec![para("Chief Executive: Amir Khan")];
        let assessment = assess(&old, &new);
        assert_eq!(assessment.kinds(), [Kind::Leaders]);
        assert_eq!(
            assessment.changes[0].summary,
            "Leaders: chief executive: Jane Smith → Amir Khan"
        );
    }

    #[test]
    fn dates_typos_and_punctuation_are_minor() {
        for (old, new) in [
            (
                "Page last updated: 12 March 2021",
                "Page last updated: 3 April 2022",
            ),
            (
                "We aim to recieve feedback from residents.",
                "We aim to receive feedback from residents.",
            ),
            (
                "Joining up care, is nothing new",
                "Joining up care is nothing new.",
            ),
            ("© 2021 Healthier Lancashire", "© 2022 Healthier Lancashire"),
        ] {
            let assessment = assess(&[para(old)], &[para(new)]);
            assert_eq!(assessment.kinds(), [Kind::Minor], "{old} → {new}");
            assert!(!assessment.alerts());
        }
    }

    #[test]
    fn a_figure_changing_sign_is_news() {
        let assessment = assess(
            &[para(
                "Latest growth rate range for England -3% to -1% per day",
            )],
            &[para(
                "Latest growth rate range for England -3% to +1% per day",
            )],
        );
        assert!(assessment.alerts(), "{assessment:?}");
        assert!(
            assessment.one_line().contains("-3% to +1%"),
            "{}",
            assessment.one_line()
        );
    }

    #[test]
    fn counters_and_view_counts_are_minor() {
        for (old, new) in [
            ("Viewed 1,234 times", "Viewed 1,301 times"),
            ("Our plan: 12,345 views", "Our plan: 12,502 views"),
        ] {
            let assessment = assess(&[para(old)], &[para(new)]);
            assert_eq!(assessment.kinds(), [Kind::Minor], "{old} → {new}");
        }
        // A count that is no counter is news.
        let assessment = assess(
            &[para("We run 12 clinics across the county.")],
            &[para("We run 15 clinics across the county.")],
        );
        assert!(assessment.alerts());
    }

    #[test]
    fn a_reversal_names_both_sides() {
        // An ICB going back to a CCG reads as the rename undone: the new
        // name and the old both show, not only the removal.
        let old = vec![item(
            "NHS North East and North Cumbria Integrated Care Board",
        )];
        let new = vec![item("NHS North Cumbria Clinical Commissioning Group")];
        let assessment = assess(&old, &new);
        assert_eq!(assessment.headline_kind(), Some(Kind::Members));
        let summary = assessment.one_line();
        assert!(
            summary.contains("Integrated Care Board") || summary.contains("ICB"),
            "{summary}"
        );
        assert!(summary.contains("North Cumbria CCG"), "{summary}");
        let forward = assess(&new, &old).one_line();
        assert!(forward.contains("→"), "{forward}");
        assert!(summary.contains("→"), "{summary}");
    }

    #[test]
    fn a_rewritten_aim_is_narrative() {
        let old = vec![para(
            "Our aim is to prevent illness and empower people to support their own health.",
        )];
        let new = vec![para(
            "Our aim is to tackle health inequalities across every neighbourhood we serve.",
        )];
        let assessment = assess(&old, &new);
        assert_eq!(assessment.kinds(), [Kind::Narrative]);
        assert!(assessment.alerts());
    }

    #[test]
    fn counts_change_as_values() {
        let old = vec![para(
            "The NHS and local councils have formed partnerships in 44 areas.",
        )];
        let new = vec![para(
            "The NHS and local councils have formed partnerships in 42 areas.",
        )];
        let assessment = assess(&old, &new);
        assert_eq!(assessment.kinds(), [Kind::Boundary]);
        assert!(
            assessment.changes[0].summary.contains("areas 44 → 42"),
            "{}",
            assessment.changes[0].summary
        );
    }
}
