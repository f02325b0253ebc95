//! The facts one version of a page states and the other does not, read
//! without reading the facts of the whole page.
//!
//! With C the blocks both versions share, A the blocks only the new one has
//! and R those only the old one has, the versions' facts are F(C) ∪ F(A) and
//! F(C) ∪ F(R), so exactly
//!
//! ```text
//! added   = F(A) − F(R) − F(C)
//! removed = F(R) − F(A) − F(C)
//! ```
//!
//! F(C), the facts of all that did not change, was most of the cost of a
//! changed page, yet it is needed only to ask whether a handful of candidate
//! facts are in it. Every fact has literals one of which the block stating
//! it must contain ([`needles`]), so of the shared blocks only those holding
//! a candidate's literal are read.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use memchr::memmem::Finder;

use super::{
    CUE_WORDS, Fact, FactRule, NUMBER_WORDS, POPULATION_READER, TENS, block_facts,
    gazetteer::gazetteer,
};
use crate::core::diff::TextIds;
use crate::core::model::{Block, BlockKind};

/// Facts only in the new version and facts only in the old.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactChanges {
    /// In the new version's facts and not the old's.
    pub added: BTreeSet<Fact>,
    /// In the old version's facts and not the new's.
    pub removed: BTreeSet<Fact>,
}

/// The facts of the blocks [`read_fact_changes`] read (every block only one
/// version has, and the shared blocks it had to look into), kept so that
/// the classifier, which wants the facts of the changed blocks again, does
/// not read them a second time.
#[derive(Debug, Default)]
pub struct ReadFacts<'a> {
    /// In [`block_order`], for a binary search.
    blocks: Vec<(&'a Block, BTreeSet<Fact>)>,
    /// Whether the watch's own rules took part in the reading.
    with_rules: bool,
}

impl ReadFacts<'_> {
    /// `block_facts(block, &[])`: the facts read already when the block was
    /// read, less what the watch's own rules added, or read now.
    pub fn without_rules(&self, block: &Block) -> BTreeSet<Fact> {
        let Ok(at) = self
            .blocks
            .binary_search_by(|(known, _)| block_order(known, block))
        else {
            return block_facts(block, &[]);
        };
        let facts = &self.blocks[at].1;
        // Rules only add `Custom` facts, and only to blocks that are not a
        // selector's named value (whose one fact is its own, rules or not).
        if !self.with_rules || block.kind == BlockKind::Named {
            return facts.clone();
        }
        facts
            .iter()
            .filter(|fact| !matches!(fact, Fact::Custom { .. }))
            .cloned()
            .collect()
    }
}

/// A total order on blocks that agrees with their equality (text, then
/// kind): sorting both versions' blocks in it partitions them into those
/// both share and those only one has, comparing texts rather than hashing
/// every byte of both pages.
fn block_order(a: &Block, b: &Block) -> Ordering {
    a.text
        .cmp(&b.text)
        .then_with(|| kind_rank(a.kind).cmp(&kind_rank(b.kind)))
}

fn kind_rank(kind: BlockKind) -> u16 {
    match kind {
        BlockKind::Heading { level } => u16::from(level),
        BlockKind::Paragraph => 256,
        BlockKind::ListItem => 257,
        BlockKind::TableRow => 258,
        BlockKind::Preformatted => 259,
        BlockKind::Named => 260,
    }
}

/// `page_facts(new) − page_facts(old)` and `page_facts(old) −
/// page_facts(new)`, reading the facts of only the blocks that changed and
/// of the unchanged blocks that could state one of those facts.
pub fn fact_changes(old: &[Block], new: &[Block], rules: &[FactRule]) -> FactChanges {
    read_fact_changes(old, new, rules).0
}

/// [`fact_changes`], and the facts of the blocks it read.
pub fn read_fact_changes<'a>(
    old: &'a [Block],
    new: &'a [Block],
    rules: &[FactRule],
) -> (FactChanges, ReadFacts<'a>) {
    let (shared, only) = partition(old, new);
    read_partitioned(&shared, &only, rules)
}

/// [`read_fact_changes`], given the numbers [`TextIds`] gives the blocks'
/// texts (the diff's), which sort the blocks without comparing their
/// texts again: the same blocks are read, in the same order.
pub fn read_fact_changes_by_text<'a>(
    old: &'a [Block],
    new: &'a [Block],
    ids: &TextIds,
    rules: &[FactRule],
) -> (FactChanges, ReadFacts<'a>) {
    match partition_by_text(old, new, ids) {
        Some((shared, only)) => read_partitioned(&shared, &only, rules),
        None => read_fact_changes(old, new, rules),
    }
}

/// The distinct blocks both versions have, and those only one has (with
/// `true` for the new version), each in block order.
type Partition<'a> = (Vec<&'a Block>, Vec<(&'a Block, bool)>);

fn partition<'a>(old: &'a [Block], new: &'a [Block]) -> Partition<'a> {
    // Every block of both versions, with the version it came from (false:
    // old), in block order: equal blocks end up side by side.
    let mut all: Vec<(&Block, bool)> = old
        .iter()
        .map(|block| (block, false))
        .chain(new.iter().map(|block| (block, true)))
        .collect();
    all.sort_unstable_by(|a, b| block_order(a.0, b.0));
    let (mut shared, mut only) = (Vec::new(), Vec::new());
    let mut rest = all.as_slice();
    while let Some(&(block, _)) = rest.first() {
        let same = rest
            .iter()
            .take_while(|(other, _)| block_order(other, block).is_eq())
            .count();
        let (group, after) = rest.split_at(same);
        rest = after;
        let in_old = group.iter().any(|(_, is_new)| !is_new);
        let in_new = group.iter().any(|(_, is_new)| *is_new);
        if in_old && in_new {
            shared.push(block);
        } else {
            only.push((block, in_new));
        }
    }
    (shared, only)
}

/// [`partition`] from the texts' numbers, which follow the texts' order:
/// one pass over the blocks. `None` when one text is in blocks of two
/// kinds (rare), which only the full block order tells apart.
fn partition_by_text<'a>(
    old: &'a [Block],
    new: &'a [Block],
    ids: &TextIds,
) -> Option<Partition<'a>> {
    if ids.old.len() != old.len() || ids.new.len() != new.len() {
        return None;
    }
    // Per text: the first block with it, and the versions it is in (1:
    // old, 2: new).
    let mut texts: Vec<Option<(&Block, u8)>> = vec![None; ids.texts];
    for (blocks, numbers, version) in [(old, &ids.old, 1u8), (new, &ids.new, 2u8)] {
        for (block, &number) in blocks.iter().zip(numbers) {
            match texts.get_mut(number)? {
                slot @ None => *slot = Some((block, version)),
                Some((first, versions)) => {
                    if first.kind != block.kind || first.text != block.text {
                        return None;
                    }
                    *versions |= version;
                }
            }
        }
    }
    let (mut shared, mut only) = (Vec::new(), Vec::new());
    for (block, versions) in texts.into_iter().flatten() {
        match versions {
            3 => shared.push(block),
            _ => only.push((block, versions == 2)),
        }
    }
    Some((shared, only))
}

/// The fact changes, given the versions' blocks partitioned.
fn read_partitioned<'a>(
    shared: &[&'a Block],
    only: &[(&'a Block, bool)],
    rules: &[FactRule],
) -> (FactChanges, ReadFacts<'a>) {
    let mut read = ReadFacts {
        blocks: Vec::new(),
        with_rules: !rules.is_empty(),
    };
    let (mut gone, mut come) = (BTreeSet::new(), BTreeSet::new());
    for &(block, in_new) in only {
        let facts = block_facts(block, rules);
        if in_new {
            come.extend(facts.iter().cloned());
        } else {
            gone.extend(facts.iter().cloned());
        }
        read.blocks.push((block, facts));
    }
    let mut changes = FactChanges {
        added: come.difference(&gone).cloned().collect(),
        removed: gone.difference(&come).cloned().collect(),
    };
    drop_shared(shared, rules, &mut changes, &mut read);
    // The shared blocks read were pushed after the changed ones.
    read.blocks.sort_unstable_by(|a, b| block_order(a.0, b.0));
    (changes, read)
}

/// Takes out of `changes` the facts that shared blocks state too.
fn drop_shared<'a>(
    shared: &[&'a Block],
    rules: &[FactRule],
    changes: &mut FactChanges,
    read: &mut ReadFacts<'a>,
) {
    let candidates: Vec<Fact> = changes
        .added
        .iter()
        .chain(&changes.removed)
        .cloned()
        .collect();
    if candidates.is_empty() {
        return;
    }
    // The shared blocks' texts in ASCII lower case, one after another, and
    // where each starts (and, last, where the last one ends). Each literal
    // is looked for once in all of them rather than once per block: a
    // thousand short searches per literal cost ten times one long one.
    let mut lower: Vec<u8> = Vec::with_capacity(shared.iter().map(|b| b.text.len()).sum());
    let mut starts: Vec<usize> = Vec::with_capacity(shared.len() + 1);
    for block in shared {
        starts.push(lower.len());
        lower.extend(block.text.bytes().map(|b| b.to_ascii_lowercase()));
    }
    starts.push(lower.len());
    // For each candidate, the shared blocks (ascending) whose text holds
    // one of its literals; `None`: no literal is known, so every block may
    // state it.
    let holders: Vec<Option<Vec<usize>>> = candidates
        .iter()
        .map(|fact| needles(fact).map(|literals| blocks_holding(&lower, &starts, &literals)))
        .collect();
    // The blocks any candidate may be stated in, in page order: the others
    // would be passed over below anyway.
    let to_visit: Vec<usize> = if holders.iter().any(Option::is_none) {
        (0..shared.len()).collect()
    } else {
        let mut all: Vec<usize> = holders.iter().flatten().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    // Candidates still open, by index. A block is read when one of them may
    // be stated in it, and closes those it states, as the blocks come.
    let mut open: Vec<usize> = (0..candidates.len()).collect();
    for at in to_visit {
        if open.is_empty() {
            break;
        }
        let may_state = |&c: &usize| {
            holders[c]
                .as_ref()
                .is_none_or(|blocks| blocks.binary_search(&at).is_ok())
        };
        if !open.iter().any(may_state) {
            continue;
        }
        let block = shared[at];
        let stated = block_facts(block, rules);
        open.retain(|&c| {
            let fact = &candidates[c];
            if !stated.contains(fact) {
                return true;
            }
            changes.added.remove(fact);
            changes.removed.remove(fact);
            false
        });
        read.blocks.push((block, stated));
    }
}

/// The blocks (indices into `starts`, ascending, once each) whose text holds
/// one of `literals`, given the blocks' texts one after another in `text`
/// and where each starts, with the end of the last as a final entry.
fn blocks_holding(text: &[u8], starts: &[usize], literals: &[String]) -> Vec<usize> {
    let mut blocks = Vec::new();
    for literal in literals {
        if literal.is_empty() {
            // In every block (`needles` gives no empty literal).
            return (0..starts.len().saturating_sub(1)).collect();
        }
        let finder = Finder::new(literal.as_bytes());
        let mut from = 0;
        while let Some(found) = finder.find(&text[from..]) {
            let at = from + found;
            // The last block starting at or before the match holds its
            // first byte (an empty block before it holds nothing).
            let block = starts.partition_point(|&start| start <= at) - 1;
            let end = starts[block + 1];
            if at + literal.len() <= end {
                blocks.push(block);
                // One match is enough for a block.
                from = end;
            } else {
                // The match runs into the next block: not a match in either.
                from = at + 1;
            }
        }
    }
    blocks.sort_unstable();
    blocks.dedup();
    blocks
}

/// Literals, in ASCII lower case, one of which (up to ASCII case) is in the
/// text of any block whose facts include `fact`; `None` when there is no
/// such literal. Each arm follows the reader that makes the fact, and must
/// change with it (the `needles_are_in_the_blocks_that_state_them` test
/// checks every fact of the fixtures).
fn needles(fact: &Fact) -> Option<Vec<String>> {
    let literals: Vec<String> = match fact {
        // A gazetteer match (the canonical name of whichever spelling was
        // found), a name as written, or a list item's whole text.
        Fact::Place { name, .. } | Fact::Organisation { name } => std::iter::once(name.as_str())
            .chain(gazetteer().spellings(name))
            .map(str::to_owned)
            .collect(),
        // The population reader runs only on a population cue word.
        Fact::Population { .. } => CUE_WORDS
            .iter()
            .filter(|(_, reader)| *reader == POPULATION_READER)
            .map(|(cue, _)| (*cue).to_owned())
            .collect(),
        // The count's digits (leading zeros aside), or its number word: the
        // word itself up to twenty, its tens word above (`number_value`
        // reads only those spellings).
        Fact::Count { value, .. } => {
            let mut literals = vec![value.to_string()];
            let word = usize::try_from(*value).ok().and_then(|v| match v {
                1..=20 => NUMBER_WORDS.get(v),
                21..=99 => TENS.get(v / 10),
                _ => None,
            });
            literals.extend(word.map(|w| (*w).to_owned()));
            literals
        }
        // The name's last word: the reader blanks out some articles before
        // matching, but only ever to spaces, so a word of the name is in the
        // text as it stands.
        Fact::Person { name, .. } => vec![name.split_whitespace().next_back()?.to_owned()],
        // "Royal Assent" stands for any spelling of it; other events are the
        // matched text.
        Fact::Event { what } if what == "Royal Assent" => vec!["royal".to_owned()],
        Fact::Event { what } => vec![what.clone()],
        Fact::Custom { value, .. } => vec![value.clone()],
    };
    if literals.iter().any(String::is_empty) {
        return None;
    }
    Some(
        literals
            .into_iter()
            .map(|literal| literal.to_ascii_lowercase())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::facts::page_facts;
    use crate::core::model::BlockKind;

    /// Texts that state facts of every kind, and some near misses.
    const TEXTS: [&str; 34] = [
        "The STP (which covers Carlisle, Allerdale, Copeland and Eden) is known as",
        "Cumbria County Council",
        "Cumbria Partnership NHS Foundation Trust",
        "NHS North Cumbria Clinical Commissioning Group",
        "NHS North Cumbria CCG",
        "NHS North East and North Cumbria Integrated Care Board",
        "North West Ambulance Service",
        "Healthwatch Cumbria",
        "Our Integrated health and Care System covers a population of 327,000:",
        "Our system covers a population of 274,000:",
        "Allerdale 96,471 residents",
        "Eden 52,630 residents.",
        "the 1.8 million people living in Lancashire and South Cumbria",
        "partnerships in 44 areas covering all of England",
        "partnerships in forty-four areas covering all of England",
        "there have previously been five place-based partnerships",
        "align to the FOUR local authority boundaries",
        "Kevin Lavery, chief executive of NHS Lancashire and South Cumbria Integrated Care Board, said:",
        "County Councillor Michael Green, cabinet member for health and wellbeing, said",
        "Chief Executive: Jane Smith",
        "Chief Executive: Amir Khan",
        "The Partnership Lead is Jane Smith.",
        "Amir Khan has been appointed as Chief Officer.",
        "The work is led by Peter Brown.",
        "statutory footing, which takes place from 1 July 2022.",
        "the Health and Care Bill received Royal Assent",
        "the bill got ROYAL   ASSENT today",
        "board meeting on 27 July",
        "Fylde Coast",
        "Morecambe Bay",
        "Blackburn with Darwen",
        "Members are Cumbria County Council and Lancashire County Council.",
        "London Borough of Enfield",
        "We run 12 clinics across 3 districts of Westmorland and Furness.",
    ];

    fn rules() -> Vec<FactRule> {
        vec![FactRule {
            name: "board meeting".into(),
            pattern: regex::Regex::new(r"board meeting on (\d+ \w+)").expect("regex"),
        }]
    }

    /// Every block the tests draw from: each text as a paragraph and as a
    /// list item (which read places differently), and a named value.
    fn pool() -> Vec<Block> {
        let mut blocks: Vec<Block> = TEXTS
            .iter()
            .flat_map(|text| {
                [
                    Block::new(BlockKind::Paragraph, *text),
                    Block::new(BlockKind::ListItem, *text),
                ]
            })
            .collect();
        blocks.push(Block::new(BlockKind::Named, "lead: Jane Smith"));
        blocks.push(Block::new(BlockKind::Named, ""));
        blocks
    }

    /// Pages extracted from the fixtures, for real blocks.
    fn fixture_blocks() -> Vec<Block> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/partnerships");
        let mut blocks = Vec::new();
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .expect("fixtures directory")
            .map(|entry| entry.expect("fixture").path())
            .filter(|path| path.extension().is_some_and(|e| e == "html"))
            .collect();
        paths.sort();
        for path in paths {
            let html = std::fs::read_to_string(&path).expect("fixture reads");
            let rules = crate::core::extract::Rules::default();
            if let Ok(extracted) = crate::core::extract::extract(&html, &rules) {
                blocks.extend(extracted.blocks);
            }
        }
        blocks
    }

    #[test]
    fn needles_are_in_the_blocks_that_state_them() {
        let rules = rules();
        let blocks: Vec<Block> = pool().into_iter().chain(fixture_blocks()).collect();
        let mut checked = 0;
        for block in &blocks {
            let lower = block.text.to_ascii_lowercase();
            for fact in block_facts(block, &rules) {
                if let Some(needles) = needles(&fact) {
                    assert!(
                        needles.iter().any(|n| lower.contains(n.as_str())),
                        "{fact:?} from {block:?}: none of {needles:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "only {checked} facts checked");
    }

    /// A small deterministic generator, so the property runs the same way
    /// every time and needs no seed handling.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(self.0 >> 33).expect("fits") % n.max(1)
        }
    }

    #[test]
    fn the_same_as_diffing_whole_page_facts() {
        let rules = rules();
        let mut blocks = pool();
        blocks.extend(fixture_blocks());
        let mut random = Lcg(14);
        let mut by_numbers = 0;
        for round in 0..400 {
            let len = 1 + random.below(40);
            let old: Vec<Block> = (0..len)
                .map(|_| blocks[random.below(blocks.len())].clone())
                .collect();
            // Edit the old page: drop, add, duplicate and move blocks.
            let mut new = Vec::new();
            for block in &old {
                match random.below(6) {
                    0 => {}
                    1 => new.push(blocks[random.below(blocks.len())].clone()),
                    2 => {
                        new.push(block.clone());
                        new.push(block.clone());
                    }
                    _ => new.push(block.clone()),
                }
            }
            if round % 3 == 0 && !new.is_empty() {
                let at = random.below(new.len());
                let moved = new.remove(at);
                new.insert(random.below(new.len() + 1), moved);
            }
            let rules: &[FactRule] = if round % 2 == 0 { &rules } else { &[] };
            let (before, after) = (page_facts(&old, rules), page_facts(&new, rules));
            let want = FactChanges {
                added: after.difference(&before).cloned().collect(),
                removed: before.difference(&after).cloned().collect(),
            };
            let (changes, read) = read_fact_changes(&old, &new, rules);
            assert_eq!(changes, want, "round {round}");
            // From the diff's numbers for the texts: the same partition,
            // so the same blocks read, in the same order.
            let ids = TextIds::of(&old, &new);
            if let Some(by_text) = partition_by_text(&old, &new, &ids) {
                assert_eq!(by_text, partition(&old, &new), "round {round}");
                by_numbers += 1;
            }
            let (by_text, read_by_text) = read_fact_changes_by_text(&old, &new, &ids, rules);
            assert_eq!(by_text, want, "round {round}");
            let blocks_read = |read: &ReadFacts<'_>| -> Vec<(Block, BTreeSet<Fact>)> {
                read.blocks
                    .iter()
                    .map(|(b, f)| ((*b).clone(), f.clone()))
                    .collect()
            };
            assert_eq!(
                blocks_read(&read_by_text),
                blocks_read(&read),
                "round {round}"
            );
            // What the classifier takes from the reading is what it would
            // read itself.
            for block in old.iter().chain(&new) {
                assert_eq!(
                    read.without_rules(block),
                    block_facts(block, &[]),
                    "round {round}: {block:?}"
                );
            }
        }
        assert!(
            by_numbers > 50,
            "only {by_numbers} pages partitioned by number"
        );
    }

    /// Every pair of consecutive versions in the evaluation histories, when
    /// `TIDINGS_EVAL_HISTORIES` names their directory (they are not in the
    /// repository).
    #[test]
    fn the_same_over_the_eval_histories() {
        let Some(dir) = std::env::var_os("TIDINGS_EVAL_HISTORIES") else {
            return;
        };
        let rules = crate::core::extract::Rules::default();
        let mut pairs = 0;
        for history in std::fs::read_dir(dir).expect("histories directory") {
            let history = history.expect("history").path();
            let mut pages: Vec<_> = std::fs::read_dir(&history)
                .expect("history directory")
                .map(|entry| entry.expect("page").path())
                .filter(|path| path.extension().is_some_and(|e| e == "html"))
                .collect();
            pages.sort();
            let versions: Vec<Vec<Block>> = pages
                .iter()
                .filter_map(|path| {
                    let html = std::fs::read_to_string(path).ok()?;
                    Some(crate::core::extract::extract(&html, &rules).ok()?.blocks)
                })
                .collect();
            for pair in versions.windows(2) {
                let (before, after) = (page_facts(&pair[0], &[]), page_facts(&pair[1], &[]));
                let want = FactChanges {
                    added: after.difference(&before).cloned().collect(),
                    removed: before.difference(&after).cloned().collect(),
                };
                assert_eq!(fact_changes(&pair[0], &pair[1], &[]), want, "{history:?}");
                let ids = TextIds::of(&pair[0], &pair[1]);
                let (by_text, _) = read_fact_changes_by_text(&pair[0], &pair[1], &ids, &[]);
                assert_eq!(by_text, want, "{history:?}");
                pairs += 1;
            }
        }
        assert!(pairs > 0, "no pairs of versions read");
    }

    #[test]
    fn literals_are_found_only_within_one_block() {
        let texts = [
            "",
            "cumbria",
            "",
            "north cumb",
            "ria",
            "eden and cumbria",
            "",
        ];
        let mut text = Vec::new();
        let mut starts = Vec::new();
        for t in texts {
            starts.push(text.len());
            text.extend_from_slice(t.as_bytes());
        }
        starts.push(text.len());
        let find = |literals: &[&str]| {
            let literals: Vec<String> = literals.iter().map(|l| (*l).to_owned()).collect();
            blocks_holding(&text, &starts, &literals)
        };
        assert_eq!(find(&["cumbria"]), vec![1, 5]);
        assert_eq!(find(&["cumbria", "eden", "ria"]), vec![1, 4, 5]);
        assert_eq!(find(&["bria"]), vec![1, 5]);
        assert_eq!(find(&["mbr"]), vec![1, 5]);
        assert_eq!(find(&["cumbriaeden"]), Vec::<usize>::new());
        assert_eq!(find(&[""]), (0..texts.len()).collect::<Vec<_>>());
        // Per block, as the search was before: the same blocks.
        for literal in ["a", "r", "ria", "cumb", "n", "nd c", "x"] {
            let per_block: Vec<usize> = (0..texts.len())
                .filter(|&i| texts[i].contains(literal))
                .collect();
            assert_eq!(find(&[literal]), per_block, "{literal:?}");
        }
    }

    #[test]
    fn a_fact_still_stated_elsewhere_has_not_moved() {
        let para = |text: &str| Block::new(BlockKind::Paragraph, text);
        let old = vec![
            para("Members include Cumbria County Council."),
            para("Cumbria County Council runs the service."),
        ];
        let new = vec![para("Cumbria County Council runs the service.")];
        assert_eq!(fact_changes(&old, &new, &[]), FactChanges::default());
        let new = vec![para("Members include Lancashire County Council.")];
        let changes = fact_changes(&old, &new, &[]);
        assert_eq!(
            changes.removed,
            BTreeSet::from([Fact::Organisation {
                name: "Cumbria County Council".into()
            }])
        );
        assert_eq!(
            changes.added,
            BTreeSet::from([Fact::Organisation {
                name: "Lancashire County Council".into()
            }])
        );
    }
}
