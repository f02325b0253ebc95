//! The gist of one block change, as short points a one-line summary is
//! built from: a figure that changed with its subject and both values
//! ("tested positive: 124,743 → 129,044"), a passage added or removed by its
//! most informative clause, a new heading, a changed title, and last, dates
//! that moved.
//!
//! Pure: it reads a [`BlockChange`] and returns [`Point`]s. `classify`
//! orders them by [`Rank`] and fits them into one line.

use std::ops::Range;

use crate::core::diff::{BlockChange, ChangeKind, WordOp};
use crate::core::facts::ascii::AsciiOr;
use crate::core::model::{Block, BlockKind};

/// How early a point goes in a summary: lower first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rank {
    /// The page's title changed.
    Title,
    /// A figure in prose changed.
    Figure,
    /// A fact changed (places, organisations, people): set by `classify`.
    Fact,
    /// A heading was added or removed.
    Heading,
    /// A passage was added or reworded.
    Passage,
    /// A passage was removed.
    Removal,
    /// A figure in a table row changed: tables of figures change many
    /// cells at once, so their rows come after the prose.
    TableFigure,
    /// Only a date moved: never leads when anything else changed.
    Date,
}

/// One thing a summary can say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Where it goes.
    pub rank: Rank,
    /// What it says, on one line.
    pub text: String,
    /// How much it tells within its rank: higher first.
    pub weight: i32,
}

impl Point {
    /// A point of ordinary weight.
    pub fn new(rank: Rank, text: impl Into<String>) -> Self {
        Self {
            rank,
            text: text.into(),
            weight: 0,
        }
    }

    fn weighted(mut self, weight: i32) -> Self {
        self.weight = weight;
        self
    }
}

/// The longest clause quoted from a passage, in characters: the summary
/// cuts it further when it has more to say.
const CLAUSE_CHARS: usize = 180;

/// A figure: an amount, a percentage, a range ("0.9 to 1.1", "-2% to
/// +1%"), with its unit when it has one ("14 days").
/// (An ASCII text holds no `−`, `£` or `€`.)
static VALUE: AsciiOr = AsciiOr::new(|ascii| {
    let (signs, currencies) = if ascii {
        ("-+", "$")
    } else {
        ("-+−", "£$€")
    };
    let number = format!(r"[{signs}]?[{currencies}]?\d(?:[\d,]*\d)?(?:\.\d+)?(?:\s?%)?");
    format!(
        r"{number}(?:\s+(?:to|and)\s+{number}(?:\s?%)?)?(?:\s+(?:days?|weeks?|months?|hours?|years?|per cent|percent|per day|km|miles?|million|billion))?"
    )
});

/// Words that carry no subject on their own.
const STOP_WORDS: [&str; 27] = [
    "a", "an", "the", "of", "to", "on", "in", "at", "by", "for", "with", "and", "or", "whom",
    "which", "who", "have", "has", "had", "been", "were", "was", "are", "is", "be", "will",
    "there",
];

/// The points of one block change.
pub fn points(change: &BlockChange) -> Vec<Point> {
    match (change.kind, &change.old, &change.new) {
        (ChangeKind::Added, _, Some(block)) => added(block, '+').into_iter().collect(),
        (ChangeKind::Removed, Some(block), _) => removed(block).into_iter().collect(),
        (ChangeKind::Changed, Some(old), Some(new)) => changed(change, old, new),
        _ => Vec::new(),
    }
}

fn added(block: &Block, sign: char) -> Option<Point> {
    let text = rendered(block);
    // A lone figure added or removed (a table cell split off as a block)
    // says nothing without its row.
    if !text
        .split_whitespace()
        .any(|w| w.chars().any(char::is_alphabetic))
    {
        return None;
    }
    Some(match block.kind {
        // A heading that is mostly a date ("29 April notes", "Daily
        // (reported 29 April)") moves with the date, as a date does.
        BlockKind::Heading { .. } if mostly_dated(&text) => {
            Point::new(Rank::Date, format!("{sign}§ {}", trim(&text)))
        }
        BlockKind::Heading { .. } => Point::new(Rank::Heading, format!("{sign}§ {}", trim(&text))),
        _ => {
            let clause = clause(&text);
            let weight = informativeness(&clause);
            Point::new(
                if sign == '+' {
                    Rank::Passage
                } else {
                    Rank::Removal
                },
                format!("{sign}{clause}"),
            )
            .weighted(weight)
        }
    })
}

/// Whether dates, numbers and brackets make up most of a short text.
fn mostly_dated(text: &str) -> bool {
    let dates: usize = crate::core::classify::date_spans(text)
        .iter()
        .map(|d| text[d.clone()].split_whitespace().count())
        .sum();
    let words = text.split_whitespace().count();
    dates > 0 && words <= 6 && dates * 2 >= words.saturating_sub(1)
}

/// Words that state a rule or a change of one.
static RULE: AsciiOr = AsciiOr::new(|_| {
    r"(?i)\b(?:must|no longer|will need|need to|needs to|required|requirement|mandatory|should|paused|suspended|exempt(?:ion)?s?|eligib\w+|can now|cannot|will be able|will not|offline|unavailable|maintenance|from \d{1,2}(?:st|nd|rd|th)? \w+|until|deadline|new|changed?|replaced?|ended|withdrawn|closed|open(?:ed|s)?)\b".to_owned()
});

/// Openings of lines that point elsewhere rather than say something.
static POINTER: AsciiOr = AsciiOr::new(|_| {
    r"(?i)^(?:read|see|find out|for more|more information|further information|visit|you can (?:find|read|also)|check|download|view|click|contact|this (?:guidance|page|document)|the above|there is different|this means|follow)\b".to_owned()
});

/// How much a passage tells, roughly: a rule, a date it starts on, a
/// figure and a name tell more than a pointer to another page or a
/// fragment of a sentence.
fn informativeness(text: &str) -> i32 {
    let mut weight = 0;
    if RULE.is_match(text) {
        weight += 2;
    }
    if !crate::core::classify::date_spans(text).is_empty() {
        weight += 1;
    }
    if VALUE
        .find_ranges(text)
        .any(|m| text[m].bytes().filter(u8::is_ascii_digit).count() >= 2)
    {
        weight += 1;
    }
    // A name inside the sentence, not its first word.
    if text
        .split_whitespace()
        .skip(1)
        .any(|w| w.chars().next().is_some_and(char::is_uppercase) && w.len() > 2)
    {
        weight += 1;
    }
    if POINTER.is_match(text.trim_start_matches(['+', '−', '“'])) {
        weight -= 3;
    }
    if text.split_whitespace().count() < 5 {
        weight -= 2;
    }
    weight
}

fn removed(block: &Block) -> Option<Point> {
    added(block, '−')
}

/// A block's text as a summary shows it: table cells joined with commas.
fn rendered(block: &Block) -> String {
    match block.kind {
        BlockKind::TableRow => block
            .text
            .split(" | ")
            .map(str::trim)
            .filter(|cell| !cell.is_empty() && *cell != "-")
            .collect::<Vec<_>>()
            .join(", "),
        _ => block.text.trim().to_owned(),
    }
}

/// The most informative clause of a passage: its first sentence that says
/// something (more than three words), trimmed. (Picking the sentence with
/// the most rule words, dates and names instead quotes fewer of the
/// phrases a reader names: a passage's first sentence is its news.)
fn clause(text: &str) -> String {
    let sentences = sentences(text);
    let chosen = sentences
        .iter()
        .find(|s| s.split_whitespace().count() > 3)
        .or(sentences.first())
        .map_or(text, |s| s.as_str());
    trim(&without_preamble(chosen))
}

/// Long sentences that open on circumstance ("Following successful
/// completion of disease control activities within the zones, …") before
/// their news.
static PREAMBLE: AsciiOr = AsciiOr::new(|_| {
    r"^(?:Following|After|In addition to|As part of|In line with|Further to|In response to|Currently|However|To help|To support)\b[^,;:.]{0,160}?, ".to_owned()
});

/// A long sentence without its opening circumstance, when that holds no
/// figure or date and what follows still says something: a one-line
/// summary has room for the news, not its background.
fn without_preamble(sentence: &str) -> String {
    const LONG: usize = 100;
    if sentence.chars().count() <= LONG {
        return sentence.to_owned();
    }
    let Some(found) = PREAMBLE.find(sentence) else {
        return sentence.to_owned();
    };
    let (opening, rest) = sentence.split_at(found.end);
    if opening.bytes().any(|b| b.is_ascii_digit()) || rest.split_whitespace().count() < 5 {
        return sentence.to_owned();
    }
    let mut chars = rest.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let ends = matches!(c, '.' | '!' | '?' | ';')
            && bytes.get(i + 1).is_none_or(|b| *b == b' ')
            // "e.g." and "No. 5" are not the end of a sentence.
            && text[start..i]
                .rsplit(' ')
                .next()
                .is_none_or(|w| w.len() > 2 || w.chars().all(|c| c.is_lowercase()));
        if ends {
            let sentence = text[start..=i].trim();
            if !sentence.is_empty() {
                out.push(sentence.to_owned());
            }
            start = i + c.len_utf8();
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// Cuts a text to [`CLAUSE_CHARS`] on a word, with an ellipsis.
pub fn trim(text: &str) -> String {
    trim_to(text, CLAUSE_CHARS)
}

/// Cuts a text to `max` characters on a word, with an ellipsis.
pub fn trim_to(text: &str, max: usize) -> String {
    let text = text.trim().trim_end_matches([':', ',']).trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    let cut = match cut.rfind(' ') {
        Some(space) if space > max / 2 => &cut[..space],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end_matches([' ', ',', ';', ':']))
}

/// The old and new texts of a changed block, with the byte ranges of each
/// run of changed words on both sides.
struct Edits {
    old: String,
    new: String,
    regions: Vec<(Range<usize>, Range<usize>)>,
}

fn edits(change: &BlockChange) -> Edits {
    let mut edits = Edits {
        old: String::new(),
        new: String::new(),
        regions: Vec::new(),
    };
    let mut open: Option<(usize, usize)> = None;
    for (i, span) in change.words.iter().enumerate() {
        match span.op {
            WordOp::Equal => {
                // Two or fewer unchanged words between changes ("52, rue de
                // la Verrerie" → "33 rue du Louvre") belong to one edit.
                let short = span.text.split_whitespace().count() <= 2
                    && !span.text.contains(['.', ';', '|'])
                    && i + 1 < change.words.len();
                if !short && let Some((o, n)) = open.take() {
                    edits.regions.push((o..edits.old.len(), n..edits.new.len()));
                }
                edits.old.push_str(&span.text);
                edits.new.push_str(&span.text);
            }
            WordOp::Delete | WordOp::Insert => {
                if open.is_none() {
                    open = Some((edits.old.len(), edits.new.len()));
                }
                if span.op == WordOp::Delete {
                    edits.old.push_str(&span.text);
                } else {
                    edits.new.push_str(&span.text);
                }
            }
        }
    }
    if let Some((o, n)) = open {
        edits.regions.push((o..edits.old.len(), n..edits.new.len()));
    }
    edits
}

/// Figures in a text that overlap a range, with their byte ranges: not
/// digits inside names and codes (COVID-19, H5N1, VOC-20DEC-01).
fn values_in(text: &str, range: &Range<usize>) -> Vec<Range<usize>> {
    VALUE
        .find_ranges(text)
        .filter(|m| m.start < range.end.max(range.start + 1) && m.end > range.start)
        .filter(|m| {
            let before = text[..m.start].chars().next_back();
            let after = text[m.end..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '/')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '/')
        })
        .collect()
}

fn is_date(text: &str, range: &Range<usize>) -> bool {
    crate::core::classify::date_spans(text)
        .iter()
        .any(|d| d.start <= range.start && d.end >= range.end)
        || crate::core::classify::date_spans(&text[range.clone()])
            .iter()
            .any(|d| d.len() * 2 >= range.len())
}

/// The whole date around a figure: "20 April", not "20".
fn date_around(text: &str, range: &Range<usize>) -> String {
    crate::core::classify::date_spans(text)
        .into_iter()
        .find(|d| d.start <= range.start && d.end >= range.end)
        .map_or_else(|| text[range.clone()].to_owned(), |d| text[d].to_owned())
}

/// Whether two sides of an edit differ, beside their figures, only in a
/// few small words ("of whom … have" → "of which"), not in a name.
fn same_subject_words(old: &str, new: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        VALUE
            .replace_all(s, " ")
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned())
            .filter(|w| w.chars().any(char::is_alphabetic))
            .collect()
    };
    let (old, new) = (words(old), words(new));
    let only_old: Vec<&String> = old.iter().filter(|w| !new.contains(w)).collect();
    let only_new: Vec<&String> = new.iter().filter(|w| !old.contains(w)).collect();
    only_old.len() <= 2
        && only_new.len() <= 2
        && only_old
            .iter()
            .chain(&only_new)
            .all(|w| !w.chars().next().is_some_and(char::is_uppercase))
}

/// Letters-only words in a text that are not part of a figure.
fn words_beside_values(text: &str) -> usize {
    VALUE
        .replace_all(text, " ")
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count()
}

fn changed(change: &BlockChange, old: &Block, new: &Block) -> Vec<Point> {
    if old.is_heading() && new.is_heading() {
        let rank = if matches!(new.kind, BlockKind::Heading { level: 1 }) {
            Rank::Title
        } else {
            Rank::Heading
        };
        let label = if rank == Rank::Title {
            "title"
        } else {
            "heading"
        };
        return vec![Point::new(
            rank,
            format!("{label} “{}” → “{}”", trim(&old.text), trim(&new.text)),
        )];
    }
    let edits = edits(change);
    let table = new.kind == BlockKind::TableRow;
    let mut figures: Vec<(String, i32)> = Vec::new();
    let mut dates: Vec<String> = Vec::new();
    let mut wording: Vec<&(Range<usize>, Range<usize>)> = Vec::new();
    let mut seen_new: Vec<Range<usize>> = Vec::new();
    for region in &edits.regions {
        let (old_range, new_range) = region;
        let old_side = &edits.old[old_range.clone()];
        let new_side = &edits.new[new_range.clone()];
        let has_digits = |s: &str| s.bytes().any(|b| b.is_ascii_digit());
        if !(has_digits(old_side) || has_digits(new_side)) {
            wording.push(region);
            continue;
        }
        let old_values = values_in(&edits.old, old_range);
        let new_values = values_in(&edits.new, new_range);
        if words_beside_values(old_side) > 1 || words_beside_values(new_side) > 1 {
            // Reworded around its figures ("tested, of whom 177,454 have"
            // → "tested of which 182,260"): the figures still changed when
            // each side has as many.
            wording.push(region);
            if old_values.len() != new_values.len()
                || old_values.is_empty()
                || !same_subject_words(old_side, new_side)
            {
                continue;
            }
        }
        for (o, n) in old_values.iter().zip(&new_values) {
            if seen_new.contains(n) {
                continue;
            }
            seen_new.push(n.clone());
            let (from, to) = (&edits.old[o.clone()], &edits.new[n.clone()]);
            if from == to {
                continue;
            }
            if is_date(&edits.new, n) || is_date(&edits.old, o) {
                let (from, to) = (date_around(&edits.old, o), date_around(&edits.new, n));
                let point = format!("{from} → {to}");
                if from != to && !dates.contains(&point) {
                    dates.push(point);
                }
                continue;
            }
            let subject = if table {
                String::new()
            } else {
                subject(&edits.new, n)
            };
            let weight = figure_weight(&subject);
            figures.push((
                if subject.is_empty() {
                    format!("{from} → {to}")
                } else {
                    format!("{subject}: {from} → {to}")
                },
                weight,
            ));
        }
        if (old_values.is_empty() || new_values.is_empty())
            && !wording.last().is_some_and(|r| std::ptr::eq(*r, region))
        {
            wording.push(region);
        }
    }
    let mut points = Vec::new();
    if !figures.is_empty() {
        if table {
            let first = rendered(new);
            let head = first.split(", ").next().unwrap_or("");
            let head = if head.bytes().any(|b| b.is_ascii_digit()) {
                String::new()
            } else {
                format!("{}: ", trim_to(head, 40))
            };
            // A row's first two changed cells say enough.
            let shown: Vec<&str> = figures.iter().take(2).map(|f| f.0.as_str()).collect();
            let more = if figures.len() > 2 { ", …" } else { "" };
            points.push(Point::new(
                Rank::TableFigure,
                format!("{head}{}{more}", shown.join(", ")),
            ));
        } else {
            points.extend(
                figures
                    .into_iter()
                    .map(|(f, weight)| Point::new(Rank::Figure, f).weighted(weight)),
            );
        }
    }
    if let Some(mut point) = reworded(&edits, &wording) {
        // Words cut from inside a paragraph say little on their own: the
        // section they were in says what the cut was about.
        if point.text.starts_with('−')
            && let Some(section) = change.section.as_deref()
            && !point.text.to_lowercase().contains(&section.to_lowercase())
        {
            point.text = format!("{}: {}", trim_to(section, 40), point.text);
        }
        points.push(point);
    }
    if !dates.is_empty() {
        points.push(Point::new(Rank::Date, dates.join(", ")));
    }
    points
}

/// Nouns a reader of a figures page looks for first.
static HEADLINE_NOUN: AsciiOr = AsciiOr::new(|_| {
    r"(?i)\b(?:died|deaths?|dead|cases?|positive|infections?|infected|admi(?:ssions?|tted)|hospitali[sz]ed|patients?|vaccin\w*|doses?|tests?|tested|R|growth|rate|population|people|residents|beds|outbreaks?|premises|zones?)\b".to_owned()
});

/// The gravest of them: deaths and cases lead a figures page.
static GRAVE_NOUN: AsciiOr = AsciiOr::new(|_| {
    r"(?i)\b(?:died|deaths?|dead|cases?|positive|infections?|outbreaks?)\b".to_owned()
});

/// Words that show a subject was read from the middle of a clause
/// ("measure would", "yesterday for tests").
static CLAUSE_FRAGMENT: AsciiOr = AsciiOr::new(|_| {
    r"(?i)\b(?:would|could|should|may|might|yesterday|today|up|than|between|whom|which)\b"
        .to_owned()
});

/// How much a changed figure tells, by its subject: a count of deaths,
/// cases or tests before a figure with no subject or a half-clause one.
fn figure_weight(subject: &str) -> i32 {
    let mut weight = 0;
    if subject.is_empty() {
        weight -= 2;
    }
    if GRAVE_NOUN.is_match(subject) {
        weight += 3;
    } else if HEADLINE_NOUN.is_match(subject) {
        weight += 2;
    }
    if CLAUSE_FRAGMENT.is_match(subject) {
        weight -= 2;
    }
    weight
}

/// The figures of a removed passage and an added one that say the same
/// thing with new figures ("…, 21,678 have died." → "…, 26,097 have
/// died."): as many figures on each side, and most of the other words
/// shared. Empty when they are not such a pair.
pub fn paired_figures(old: &Block, new: &Block) -> Vec<Point> {
    if old.is_heading() || new.is_heading() {
        return Vec::new();
    }
    let figures = |text: &str| -> Vec<Range<usize>> {
        values_in(text, &(0..text.len()))
            .into_iter()
            .filter(|r| !is_date(text, r))
            .collect()
    };
    let (from, to) = (figures(&old.text), figures(&new.text));
    if from.is_empty() || from.len() != to.len() || from.len() > 4 {
        return Vec::new();
    }
    let words = |text: &str| -> Vec<String> {
        text.split_whitespace()
            .filter(|w| !w.bytes().any(|b| b.is_ascii_digit()))
            .map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            })
            .filter(|w| !w.is_empty())
            .collect()
    };
    let (a, b) = (words(&old.text), words(&new.text));
    let mut left = a.clone();
    let shared = b
        .iter()
        .filter(|w| match left.iter().position(|x| x == *w) {
            Some(i) => {
                left.swap_remove(i);
                true
            }
            None => false,
        })
        .count();
    if a.len() + b.len() < 6 || shared * 10 < (a.len() + b.len()) * 3 {
        return Vec::new();
    }
    from.iter()
        .zip(&to)
        .filter(|(o, n)| old.text[(*o).clone()] != new.text[(*n).clone()])
        .map(|(o, n)| {
            let subject = subject(&new.text, n);
            let weight = figure_weight(&subject);
            let (f, t) = (&old.text[o.clone()], &new.text[n.clone()]);
            let text = if subject.is_empty() {
                format!("{f} → {t}")
            } else {
                format!("{subject}: {f} → {t}")
            };
            Point::new(Rank::Figure, text).weighted(weight)
        })
        .collect()
}

/// The subject of a figure: the words before it in its clause, or after it
/// when it opens the clause ("535,342 tests have concluded" → "tests
/// concluded").
fn subject(text: &str, value: &Range<usize>) -> String {
    let is_break = |c: char| matches!(c, '.' | ',' | ';' | ':' | '(' | ')' | '|' | '–' | '—');
    let before: Vec<&str> = text[..value.start]
        .rsplit(|c: char| is_break(c) || c.is_ascii_digit())
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let keep = |words: &[&str]| -> Vec<String> {
        let mut kept: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        while kept
            .first()
            .is_some_and(|w| STOP_WORDS.contains(&w.to_lowercase().as_str()))
        {
            kept.remove(0);
        }
        while kept
            .last()
            .is_some_and(|w| STOP_WORDS.contains(&w.to_lowercase().as_str()))
        {
            kept.pop();
        }
        kept
    };
    let before = keep(&before[before.len().saturating_sub(4)..]);
    if !before.is_empty() {
        return before.join(" ");
    }
    let after: Vec<&str> = text[value.end..]
        .split(|c: char| is_break(c) || c.is_ascii_digit())
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter(|w| !STOP_WORDS.contains(&w.to_lowercase().as_str()))
        .take(3)
        .collect();
    keep(&after).join(" ")
}

/// A reworded passage: the new clause around the largest insertion, or the
/// words replaced when they are few, or the words removed.
fn reworded(edits: &Edits, regions: &[&(Range<usize>, Range<usize>)]) -> Option<Point> {
    let inserted: usize = regions.iter().map(|(_, n)| n.len()).sum();
    let deleted: usize = regions.iter().map(|(o, _)| o.len()).sum();
    if inserted == 0 && deleted == 0 {
        return None;
    }
    let largest = regions.iter().max_by_key(|(o, n)| n.len().max(o.len()))?;
    let (old_range, new_range) = largest;
    let old_side = edits.old[old_range.clone()].trim();
    let new_side = edits.new[new_range.clone()].trim();
    let letters = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    if regions.len() == 1 && letters(old_side) == letters(new_side) {
        // Only case, punctuation or spacing.
        return None;
    }
    let words = |s: &str| s.split_whitespace().count();
    if new_side.is_empty() {
        return Some(Point::new(
            Rank::Passage,
            format!("−“{}”", trim_to(&around(&edits.old, old_range, 60), 70)),
        ));
    }
    if !old_side.is_empty() && words(old_side) <= 6 && words(new_side) <= 6 {
        // A few words swapped: worth less than a new statement unless they
        // carry a figure, a date or a name.
        let weight = informativeness(new_side).min(1) - 1;
        return Some(
            Point::new(Rank::Passage, format!("“{old_side}” → “{new_side}”")).weighted(weight),
        );
    }
    let quoted = around(&edits.new, new_range, CLAUSE_CHARS);
    let weight = informativeness(&quoted);
    Some(Point::new(Rank::Passage, format!("“{quoted}”")).weighted(weight))
}

/// The sentence of `text` holding `range`, cut to about `max` characters
/// around it.
fn around(text: &str, range: &Range<usize>, max: usize) -> String {
    let start = text[..range.start]
        .rfind(['.', ';', '!', '?'])
        .map_or(0, |i| i + 1);
    let end = text[range.end..]
        .find(['.', ';', '!', '?'])
        .map_or(text.len(), |i| range.end + i + 1);
    let sentence = text[start..end].trim();
    if sentence.chars().count() <= max {
        return sentence.to_owned();
    }
    // Keep the changed words, with what fits of their context.
    let changed = text[range.clone()].trim();
    if changed.chars().count() >= max {
        return trim_to(changed, max);
    }
    let room = (max - changed.chars().count()) / 2;
    let before: String = {
        let b = &text[start..range.start];
        let chars: Vec<char> = b.chars().collect();
        let tail: String = chars[chars.len().saturating_sub(room)..].iter().collect();
        match tail.find(' ') {
            Some(i) if tail.len() < b.len() => format!("…{}", &tail[i + 1..]),
            _ => tail,
        }
    };
    let after: String = {
        let a = &text[range.end..end];
        let head: String = a.chars().take(room).collect();
        match head.rfind(' ') {
            Some(i) if head.len() < a.len() => format!("{}…", &head[..i]),
            _ => head,
        }
    };
    format!("{before}{}{after}", &text[range.clone()])
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_build_of_the_figure_pattern_agrees_with_the_unicode_one() {
        VALUE.assert_builds_agree(&crate::core::classify::tests::ASCII_SAMPLES);
    }
    use crate::core::diff::{DiffOptions, diff};

    fn para(text: &str) -> Block {
        Block::new(BlockKind::Paragraph, text)
    }

    fn gist(old: &[Block], new: &[Block]) -> Vec<String> {
        diff(old, new, &DiffOptions::default())
            .changes
            .iter()
            .flat_map(points)
            .map(|p| p.text)
            .collect()
    }

    #[test]
    fn figures_with_their_subjects() {
        let found = gist(
            &[para(
                "386,044 people have been tested, of whom 124,743 have tested positive.",
            )],
            &[para(
                "397,670 people have been tested, of whom 129,044 have tested positive.",
            )],
        );
        assert_eq!(
            found,
            [
                "people tested: 386,044 → 397,670",
                "tested positive: 124,743 → 129,044"
            ]
        );
        let found = gist(
            &[para("The isolation period is 14 days for contacts.")],
            &[para("The isolation period is 10 days for contacts.")],
        );
        assert_eq!(found, ["isolation period: 14 days → 10 days"]);
        let found = gist(
            &[para("Latest R range for England 0.9 to 1.1")],
            &[para("Latest R range for England 1.0 to 1.1")],
        );
        assert_eq!(found, ["R range for England: 0.9 to 1.1 → 1.0 to 1.1"]);
    }

    #[test]
    fn dates_come_last_and_codes_are_not_figures() {
        let found = gist(
            &[para("As of 9am 20 April, 501,379 tests have concluded.")],
            &[para("As of 9am 21 April, 535,342 tests have concluded.")],
        );
        assert_eq!(
            found,
            ["tests concluded: 501,379 → 535,342", "20 April → 21 April"]
        );
    }

    #[test]
    fn added_passages_by_their_first_clause() {
        let found = gist(
            &[para("Intro.")],
            &[
                para("Intro."),
                Block::new(BlockKind::Heading { level: 2 }, "Medical exemptions"),
                para(
                    "Due to planned maintenance, the service will be offline from 10pm. It returns by 6am.",
                ),
            ],
        );
        assert_eq!(
            found,
            [
                "+§ Medical exemptions",
                "+Due to planned maintenance, the service will be offline from 10pm."
            ]
        );
    }

    #[test]
    fn a_long_sentence_loses_its_background_not_its_news() {
        let found = gist(
            &[para("Intro.")],
            &[
                para("Intro."),
                para(
                    "Following successful completion of disease control activities and surveillance within the zones, the 3km Protection Zone has ended.",
                ),
                para("After 1 May, the service will close for good to new applicants."),
            ],
        );
        assert_eq!(
            found,
            [
                "+The 3km Protection Zone has ended.",
                "+After 1 May, the service will close for good to new applicants."
            ]
        );
    }

    #[test]
    fn words_cut_from_a_paragraph_are_named_by_their_section() {
        let heading = Block::new(BlockKind::Heading { level: 2 }, "Welfare checks");
        let found = gist(
            &[
                heading.clone(),
                para(
                    "Councils visit the home once the guest has arrived. Where councils find the sponsor unsuitable, they should help the guest to find another home.",
                ),
            ],
            &[
                heading,
                para("Councils visit the home once the guest has arrived."),
            ],
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("Welfare checks: −“Where councils find the sponsor"),
            "{found:?}"
        );
    }

    #[test]
    fn a_changed_address_names_both() {
        let found = gist(
            &[para("Write to us at 52, rue de la Verrerie, 75004 Paris.")],
            &[para("Write to us at 33 rue du Louvre, 75002 Paris.")],
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("rue de la Verrerie"), "{found:?}");
        assert!(found[0].contains("33 rue du Louvre"), "{found:?}");
    }
}
