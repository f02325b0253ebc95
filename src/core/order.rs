//! The order of a summary's points and the room each gets in the one line:
//! most telling first, the same figures said once, items of one list
//! joined, and long points given what short ones leave over.
//!
//! Pure: points in, strings out. `classify` calls it for each kind.

use std::collections::BTreeSet;

use crate::core::diff::{BlockChange, ChangeKind};
use crate::core::gist::{Point, Rank, trim_to};
use crate::core::model::BlockKind;

/// Sorts points most telling first (by rank, then weight, then page order)
/// and says each once. A figure whose subject could not be read (weight
/// below zero) goes with the passages: "5 → 7" alone tells little. A figure
/// whose values repeat an earlier figure's ("R range: 0.9 to 1.1 → …",
/// "R value between: 0.9 and 1.1 → …") is left out, and added list items
/// that share a lead-in ("Test kit instructions: ACON", "Test kit
/// instructions: Orient Gene") are joined into one point.
pub fn order(mut points: Vec<Point>) -> Vec<String> {
    let key = |p: &Point| {
        let rank = match p.rank {
            Rank::Figure if p.weight < 0 => Rank::Passage,
            rank => rank,
        };
        (rank, -p.weight)
    };
    points.sort_by_key(key);
    // One new rule with the date it starts ("From 15 December, you must…")
    // is the news of a long rewrite, before its list of new sections.
    let strongest = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.rank == Rank::Passage && p.weight >= 5)
        .max_by_key(|(i, p)| (p.weight, std::cmp::Reverse(*i)))
        .map(|(i, _)| i);
    let first_heading = points.iter().position(|p| p.rank == Rank::Heading);
    if let (Some(from), Some(to)) = (strongest, first_heading)
        && to < from
    {
        let point = points.remove(from);
        points.insert(to, point);
    }
    let mut seen = BTreeSet::new();
    let mut figures: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut out: Vec<Point> = Vec::new();
    let mut said: Vec<BTreeSet<String>> = Vec::new();
    for point in points {
        if !seen.insert(point.text.to_lowercase()) {
            continue;
        }
        // Items of one list go together, wherever the first of them went.
        if let Some((at, rest)) = out
            .iter()
            .enumerate()
            .rev()
            .find_map(|(at, earlier)| joinable(&point, Some(earlier)).map(|rest| (at, rest)))
        {
            // An item that only repeats a tail already said adds nothing.
            if !out[at].text.contains(rest) {
                out[at].text.push_str(", ");
                out[at].text.push_str(rest);
            }
            continue;
        }
        let words = content_words(&point.text);
        // A passage that says again what a point before it said (a link
        // and the change note "Added 'that link'") takes room for nothing.
        if point.rank != Rank::Figure
            && words.len() >= 3
            && said
                .iter()
                .any(|s| words.iter().filter(|w| s.contains(*w)).count() * 5 >= words.len() * 4)
        {
            continue;
        }
        said.push(words);
        if point.rank == Rank::Figure {
            let values = numbers(&point.text);
            if values.len() >= 2 && !figures.insert(values) {
                continue;
            }
        }
        out.push(point);
    }
    out.into_iter().map(|p| p.text).collect()
}

/// The lower-cased words and numbers of a point, without its marks.
fn content_words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// How much a new (or dropped) section tells, by the words added (or
/// removed) under it: a heading over pages of new guidance tells more than
/// one over a single line, and a heading with nothing new under it (a
/// section moved or renamed elsewhere) tells least.
pub fn section_weight(heading: &BlockChange, evidence: &[BlockChange]) -> i32 {
    let level = |c: &BlockChange| match c.new.as_ref().or(c.old.as_ref()).map(|b| b.kind) {
        Some(BlockKind::Heading { level }) => Some(level),
        _ => None,
    };
    let (Some(title), Some(top)) = (
        heading.new.as_ref().or(heading.old.as_ref()),
        level(heading),
    ) else {
        return 0;
    };
    let Some(at) = evidence.iter().position(|c| std::ptr::eq(c, heading)) else {
        return 0;
    };
    // The section runs to the next heading of its level or above; new
    // subsections inside it count as its own text.
    let mut owned = vec![title.text.as_str()];
    let mut words = 0;
    for change in &evidence[at + 1..] {
        let inside = change
            .section
            .as_deref()
            .is_some_and(|s| owned.contains(&s));
        match level(change) {
            Some(l) if l <= top => break,
            Some(_) if inside && change.kind == heading.kind => {
                if let Some(block) = change.new.as_ref().or(change.old.as_ref()) {
                    owned.push(block.text.as_str());
                }
            }
            _ if inside && change.kind == heading.kind => {
                let (added, removed) = change.word_counts();
                words += added + removed;
            }
            _ => {}
        }
    }
    let weight = match words {
        0 => -1,
        1..30 => 1,
        30..150 => 2,
        _ => 3,
    };
    if heading.kind == ChangeKind::Removed {
        weight - 1
    } else {
        weight
    }
}

/// The runs of digits in a text, in order.
fn numbers(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|n| n.trim_matches('.'))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The part of an added passage to append to the previous point, when both
/// are added items with the same lead-in before a colon.
fn joinable<'p>(point: &'p Point, previous: Option<&Point>) -> Option<&'p str> {
    let previous = previous?;
    if point.rank != Rank::Passage || previous.rank != Rank::Passage {
        return None;
    }
    let lead = |text: &'p str| -> Option<(&'p str, &'p str)> {
        let text = text.strip_prefix('+')?;
        let (lead, rest) = text.split_once(": ")?;
        (lead.split_whitespace().count() >= 2 && !rest.is_empty()).then_some((lead, rest))
    };
    let (lead_now, rest) = lead(&point.text)?;
    let before = previous.text.strip_prefix('+')?;
    before.starts_with(&format!("{lead_now}: ")).then_some(rest)
}

/// How a point fared in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Whole,
    Cut,
    Left,
}

/// Fits titled groups of points into one line of at most `max`
/// characters: "Title: a; b | Title: c (+N more)". Points that do not fit
/// are counted; a later, shorter one may still fit. Room left over once the
/// line is settled goes to the points that were cut, first first, so a
/// phrase late in a long sentence is not lost to an empty end of line.
pub fn fit(groups: &[(String, Vec<String>)], max: usize) -> String {
    let all: Vec<&str> = groups
        .iter()
        .flat_map(|(_, p)| p.iter().map(String::as_str))
        .collect();
    let total = all.len();
    // One long point never takes the whole line from the others: a quoted
    // passage gets its share, more when the others are short, and a list
    // of places a little more.
    let room = max
        .saturating_sub(12 * groups.len())
        .saturating_sub(2 * total.saturating_sub(1));
    let mut caps = caps(&all, room, (max / total.max(1)).clamp(90, 150), max);
    for (cap, point) in caps.iter_mut().zip(&all) {
        if point.starts_with("Places covered") {
            *cap = (*cap).max(150);
        }
    }
    let (mut line, mut shown) = fit_with(groups, &caps, max);
    let mut tried = vec![false; total];
    while let Some(i) = (0..total).find(|&i| shown[i] == Shown::Cut && !tried[i]) {
        tried[i] = true;
        let slack = max.saturating_sub(line.chars().count());
        if slack < 4 {
            break;
        }
        let mut wider = caps.clone();
        wider[i] = (caps[i] + slack).min(all[i].chars().count());
        let (longer, now) = fit_with(groups, &wider, max);
        let same = now
            .iter()
            .zip(&shown)
            .all(|(a, b)| (*a == Shown::Left) == (*b == Shown::Left));
        if same && longer.chars().count() <= max {
            (line, shown, caps) = (longer, now, wider);
        }
    }
    line
}

/// One attempt at [`fit`] with the given caps: the line, and how each
/// point fared.
fn fit_with(groups: &[(String, Vec<String>)], caps: &[usize], max: usize) -> (String, Vec<Shown>) {
    const RESERVE: usize = " (+999 more)".len();
    let total: usize = groups.iter().map(|(_, p)| p.len()).sum();
    let mut out = String::new();
    let mut used = 0usize;
    let mut more = 0usize;
    let mut placed = 0usize;
    let mut shown = Vec::with_capacity(total);
    let closed = |cut: String| {
        if cut.contains('“') && !cut.ends_with('”') {
            format!("{cut}”")
        } else {
            cut
        }
    };
    for (title, points) in groups {
        let mut opened = false;
        for point in points {
            let text = if total > 1 {
                closed(trim_to(point, caps[placed]))
            } else {
                point.clone()
            };
            let mut fared = if text == *point {
                Shown::Whole
            } else {
                Shown::Cut
            };
            let piece = if opened {
                format!("; {text}")
            } else if out.is_empty() {
                format!("{title}: {text}")
            } else {
                format!(" | {title}: {text}")
            };
            let len = piece.chars().count();
            // The last point may use the reserve, unless an earlier one was
            // left out and "(+N more)" still has to follow.
            let budget = if placed + 1 == total && more == 0 {
                max
            } else {
                max - RESERVE
            };
            if used + len <= budget {
                out.push_str(&piece);
                used += len;
                opened = true;
            } else if out.is_empty() || budget.saturating_sub(used) >= 50 {
                // The first point always shows, and a long one shows in
                // part where enough room is left.
                let cut = closed(trim_to(&piece, budget - used));
                used += cut.chars().count();
                out.push_str(&cut);
                opened = true;
                fared = Shown::Cut;
            } else {
                more += 1;
                fared = Shown::Left;
            }
            shown.push(fared);
            placed += 1;
        }
    }
    if more > 0 {
        out.push_str(&format!(" (+{more} more)"));
    }
    (out, shown)
}

/// How many characters each point may take in a line of `room`
/// characters: short points keep their length and long ones share what is
/// left, never less than `floor` nor more than `ceiling`.
pub fn caps(points: &[&str], room: usize, floor: usize, ceiling: usize) -> Vec<usize> {
    let lengths: Vec<usize> = points.iter().map(|p| p.chars().count()).collect();
    let mut by_length: Vec<usize> = (0..points.len()).collect();
    by_length.sort_by_key(|&i| lengths[i]);
    let mut caps = vec![0; points.len()];
    let mut left = room;
    for (done, &i) in by_length.iter().enumerate() {
        let share = left / (points.len() - done);
        let cap = lengths[i].min(share.max(floor)).min(ceiling);
        caps[i] = cap.max(floor.min(lengths[i]));
        left = left.saturating_sub(lengths[i].min(share));
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headline_figures_first_and_repeated_values_once() {
        let points = vec![
            Point::new(Rank::Passage, "+A new rule from 1 May"),
            Point::new(Rank::Figure, "measure would: 3 → 4"),
            Point::new(Rank::Figure, "R range: 0.9 to 1.1 → 1.0 to 1.1"),
            Point::new(Rank::Figure, "R value between: 0.9 and 1.1 → 1.0 and 1.1"),
        ];
        let mut weak = points;
        weak[1].weight = -2;
        assert_eq!(
            order(weak),
            [
                "R range: 0.9 to 1.1 → 1.0 to 1.1",
                "+A new rule from 1 May",
                "measure would: 3 → 4"
            ]
        );
    }

    #[test]
    fn items_of_one_list_are_joined() {
        let points = vec![
            Point::new(Rank::Passage, "+Test kit instructions: ACON Flowflex"),
            Point::new(Rank::Passage, "+Test kit instructions: Orient Gene"),
            Point::new(Rank::Passage, "+Shielding: letters"),
            Point::new(Rank::Passage, "+Test kit instructions: SureScreen"),
            Point::new(Rank::Passage, "+Test kit instructions: ACON"),
        ];
        assert_eq!(
            order(points),
            [
                "+Test kit instructions: ACON Flowflex, Orient Gene, SureScreen",
                "+Shielding: letters"
            ]
        );
    }

    #[test]
    fn a_passage_said_again_is_dropped() {
        let points = vec![
            Point::new(Rank::Passage, "+Use of the vaccine: JCVI statement, 7 May"),
            Point::new(
                Rank::Passage,
                "+Added 'Use of the vaccine: JCVI statement, 7 May'.",
            ),
            Point::new(Rank::Passage, "+Moderna protocol published"),
        ];
        assert_eq!(
            order(points),
            [
                "+Use of the vaccine: JCVI statement, 7 May",
                "+Moderna protocol published"
            ]
        );
    }

    #[test]
    fn sections_with_more_new_text_come_first() {
        use crate::core::classify::classify;
        use crate::core::diff::{DiffOptions, diff};
        use crate::core::facts::page_facts;
        use crate::core::model::{Block, BlockKind};
        let heading = |t: &str| Block::new(BlockKind::Heading { level: 2 }, t);
        let para = |t: &str| Block::new(BlockKind::Paragraph, t);
        let old = vec![para("Intro to the guidance for councils.")];
        let mut new = old.clone();
        new.push(heading("Contacts"));
        new.push(para("Write to the team."));
        new.push(heading("Rematching"));
        for i in 0..4 {
            new.push(para(&format!(
                "Rematching step {i} asks councils to find another host and record the move on the portal."
            )));
        }
        let d = diff(&old, &new, &DiffOptions::default());
        let assessment = classify(&d, &page_facts(&old, &[]), &page_facts(&new, &[]));
        let points = &assessment.changes[0].points;
        let at = |p: &str| points.iter().position(|x| x == p).expect(p);
        assert!(at("+§ Rematching") < at("+§ Contacts"), "{points:?}");
    }

    /// One-line summaries of representative diffs, as a reader sees them.
    #[test]
    fn summaries_of_representative_diffs() {
        use crate::core::classify::classify;
        use crate::core::diff::{DiffOptions, diff};
        use crate::core::facts::page_facts;
        use crate::core::model::{Block, BlockKind};
        let para = |t: &str| Block::new(BlockKind::Paragraph, t);
        let item = |t: &str| Block::new(BlockKind::ListItem, t);
        let heading = |t: &str| Block::new(BlockKind::Heading { level: 2 }, t);
        let summary = |old: &[Block], new: &[Block]| {
            let d = diff(old, new, &DiffOptions::default());
            classify(&d, &page_facts(old, &[]), &page_facts(new, &[])).one_line()
        };
        let cases: Vec<(&str, Vec<Block>, Vec<Block>)> = vec![
            (
                "figures",
                vec![
                    para("As of 9am 20 April, 501,379 tests have concluded."),
                    para("386,044 people have been tested, of whom 124,743 have tested positive."),
                    para(
                        "As of 5pm on 19 April, of those hospitalised who tested positive, 16,509 have died.",
                    ),
                ],
                vec![
                    para("As of 9am 21 April, 535,342 tests have concluded."),
                    para("397,670 people have been tested, of which 129,044 tested positive."),
                    para(
                        "As of 5pm on 20 April, of those who tested positive in all settings, 17,337 have died.",
                    ),
                ],
            ),
            (
                "passages",
                vec![para("Intro to the pass.")],
                vec![
                    para("Intro to the pass."),
                    para("Read more about the pass on the NHS website."),
                    para("From 15 December, you will need to show a pass at nightclubs."),
                ],
            ),
            (
                "headings",
                vec![heading("Eligibility"), para("Who can get a pass.")],
                vec![
                    heading("Eligibility"),
                    para("Who can get a pass."),
                    heading("Medical exemptions"),
                ],
            ),
            (
                "leaders",
                vec![para("Chief Executive: Jane Smith")],
                vec![para("Chief Executive: Amir Khan")],
            ),
            (
                "places",
                vec![
                    para("Our system covers a population of 327,000:"),
                    item("Allerdale"),
                    item("Eden"),
                ],
                vec![
                    para("Our system covers a population of 274,000:"),
                    item("Allerdale"),
                ],
            ),
            (
                "reversal",
                vec![item(
                    "NHS North East and North Cumbria Integrated Care Board",
                )],
                vec![item("NHS North Cumbria Clinical Commissioning Group")],
            ),
        ];
        let text: String = cases
            .iter()
            .map(|(name, old, new)| format!("{name}: {}\n", summary(old, new)))
            .collect();
        insta::assert_snapshot!("summaries", text);
    }

    #[test]
    fn room_left_at_the_end_goes_to_a_cut_point() {
        let first = "+Businesses can continue to accept people who self-declare that they are medically exempt until mid December 2021, from which point they need a pass";
        let second = "+There are a small number of exemptions for individuals who have a medical reason which means they should not be vaccinated or tested";
        let groups = vec![(
            "Narrative".to_owned(),
            vec![
                "+§ If you are unable to get vaccinated for medical reasons".to_owned(),
                first.to_owned(),
                second.to_owned(),
                second.replace("small", "large"),
            ],
        )];
        let line = fit(&groups, 200);
        assert!(line.contains("mid December"), "{line}");
        assert!(line.ends_with("(+2 more)"), "{line}");
        assert!(line.chars().count() <= 200, "{line}");
    }

    #[test]
    fn a_line_never_passes_its_length() {
        let points: Vec<String> = (0..150)
            .map(|i| format!("+§ Section number {i} of the guidance"))
            .collect();
        let groups = vec![
            ("Boundary".to_owned(), vec!["+2 councils".to_owned()]),
            ("Narrative".to_owned(), points),
        ];
        let line = fit(&groups, 200);
        assert!(line.chars().count() <= 200, "{line}");
        assert!(line.ends_with("more)"), "{line}");
    }

    #[test]
    fn short_points_leave_room_to_long_ones() {
        let long = "x".repeat(170);
        assert_eq!(caps(&[&long, "short one"], 190, 90, 180), [170, 9]);
        assert_eq!(caps(&[&long, &long], 190, 90, 180), [95, 95]);
        assert_eq!(caps(&[&long, &long, &long, &long], 190, 90, 180), [90; 4]);
    }
}
