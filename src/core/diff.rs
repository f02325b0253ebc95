//! Block-aligned, word-level diffs of extracted text.
//!
//! Pure: no I/O, no clock except the deadline that bounds the work. The diff
//! runs in two stages. Blocks are aligned first (a block that only moved is
//! not a change), then changed blocks are diffed word by word so a reader sees
//! the words that changed, not the whole paragraph twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use similar::{Algorithm, ChangeTag, DiffOp, TextDiffConfig};

use crate::core::model::{Block, BlockKind};

/// How hard the diff may work.
#[derive(Debug, Clone, Copy)]
pub struct DiffOptions {
    /// Wall-clock budget for one diff. Past it, `similar` falls back to a
    /// coarser (still correct) diff, so a pathological pair of pages cannot
    /// stall a check.
    pub timeout: Duration,
    /// Two blocks at the same place count as one edited block, rather than a
    /// removal and an addition, when at least this share of their words agree.
    pub pair_threshold: f32,
    /// How many fetches in a row a suspect text (a large loss, a
    /// placeholder or error page, a flip back) must last before the
    /// pipeline compares it as the page's new text.
    pub confirm_after: u32,
    /// The most changed blocks described in full. Past it the diff is
    /// summarised coarsely: the rest are only counted (`omitted`,
    /// `omitted_words`), so a page rewritten into a flood of blocks cannot
    /// make the change record, the classification or the mail unbounded.
    pub max_changes: usize,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(500),
            pair_threshold: 0.5,
            confirm_after: 3,
            max_changes: 2_000,
        }
    }
}

/// Whether a word span was kept, removed or added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOp {
    /// In both versions.
    Equal,
    /// Only in the old version.
    Delete,
    /// Only in the new version.
    Insert,
}

/// A run of words (with their spacing) that share one [`WordOp`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordSpan {
    /// What happened to these words.
    pub op: WordOp,
    /// The words, with the whitespace between them.
    pub text: String,
}

/// What happened to one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A block that is only in the new version.
    Added,
    /// A block that is only in the old version.
    Removed,
    /// A block edited in place.
    Changed,
}

/// One changed block, with the heading of the section it sits in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockChange {
    /// Added, removed or edited.
    pub kind: ChangeKind,
    /// The text of the nearest heading above the block (in the new version,
    /// or the old one for a removal), if there is one.
    pub section: Option<String>,
    /// The block as it was, for removals and edits.
    pub old: Option<Block>,
    /// The block as it is, for additions and edits.
    pub new: Option<Block>,
    /// The word-level diff: for an edit, the interleaved spans; for an
    /// addition or removal, one span holding the whole block.
    pub words: Vec<WordSpan>,
}

impl BlockChange {
    /// Words added and removed in this block.
    pub fn word_counts(&self) -> (usize, usize) {
        let count = |op| {
            self.words
                .iter()
                .filter(|span| span.op == op)
                .map(|span| span.text.split_whitespace().count())
                .sum()
        };
        (count(WordOp::Insert), count(WordOp::Delete))
    }
}

/// The difference between two versions of a page's text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextDiff {
    /// Changed blocks in the order of the new version.
    pub changes: Vec<BlockChange>,
    /// Whether the time budget ran out, so the alignment may be coarser than
    /// the minimal one.
    pub timed_out: bool,
    /// Changed blocks past `DiffOptions::max_changes`, counted but not
    /// described.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted: usize,
    /// Words added and removed in the omitted blocks (edits counted whole).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_words: usize,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl TextDiff {
    /// Whether the two versions carry the same text (moves aside).
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.omitted == 0
    }

    /// Total words added and removed: the "change size" shown in history.
    pub fn changed_words(&self) -> usize {
        self.changes
            .iter()
            .map(|change| {
                let (added, removed) = change.word_counts();
                added + removed
            })
            .sum::<usize>()
            + self.omitted_words
    }

    /// Counts of added, removed and edited blocks.
    pub fn block_counts(&self) -> (usize, usize, usize) {
        let count = |kind| self.changes.iter().filter(|c| c.kind == kind).count();
        (
            count(ChangeKind::Added),
            count(ChangeKind::Removed),
            count(ChangeKind::Changed),
        )
    }
}

/// Diffs two versions of a page's blocks.
pub fn diff(old: &[Block], new: &[Block], options: &DiffOptions) -> TextDiff {
    diff_with_ids(old, new, &TextIds::of(old, new), options)
}

/// [`diff`], given the blocks' [`TextIds`] (which the caller keeps for
/// [`crate::core::facts::read_fact_changes_by_text`]).
pub fn diff_with_ids(
    old: &[Block],
    new: &[Block],
    ids: &TextIds,
    options: &DiffOptions,
) -> TextDiff {
    let started = Instant::now();
    let deadline = started + options.timeout;
    let (old_keys, new_keys, texts) = (&ids.old, &ids.new, ids.texts);
    let ops = similar::capture_diff_slices_deadline(
        Algorithm::Patience,
        old_keys,
        new_keys,
        Some(deadline),
    );

    // Each hunk of deletions and insertions between two equal runs is a region:
    // edits are only paired within a region, so an edited block is matched
    // with its counterpart at the same place in the page.
    let mut regions: Vec<Region> = Vec::new();
    for op in &ops {
        let (old_range, new_range) = match *op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Delete {
                old_index, old_len, ..
            } => (old_index..old_index + old_len, 0..0),
            DiffOp::Insert {
                new_index, new_len, ..
            } => (0..0, new_index..new_index + new_len),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (
                old_index..old_index + old_len,
                new_index..new_index + new_len,
            ),
        };
        regions.push(Region {
            removed: old_range.collect(),
            added: new_range.collect(),
        });
    }
    cancel_moves(&mut regions, old_keys, new_keys, texts);

    let old_sections = sections(old);
    let new_sections = sections(new);
    let mut changes = Vec::new();
    let (mut omitted, mut omitted_words) = (0usize, 0usize);
    let words = |block: &Block| block.text.split_whitespace().count();
    for region in &regions {
        let pairs = pair_edits(region, old, new, options.pair_threshold);
        let mut paired_old = vec![false; region.removed.len()];
        let mut paired_new = vec![None; region.added.len()];
        for &(r, a) in &pairs {
            paired_old[r] = true;
            paired_new[a] = Some(r);
        }
        // Removals come before the additions and edits of the same region,
        // which is how a reader scans "was … now …".
        for (r, &old_index) in region.removed.iter().enumerate() {
            if !paired_old[r] && changes.len() >= options.max_changes {
                omitted += 1;
                omitted_words += words(&old[old_index]);
            } else if !paired_old[r] {
                changes.push(BlockChange {
                    kind: ChangeKind::Removed,
                    section: old_sections[old_index].map(|i| old[i].text.clone()),
                    old: Some(old[old_index].clone()),
                    new: None,
                    words: vec![WordSpan {
                        op: WordOp::Delete,
                        text: old[old_index].text.clone(),
                    }],
                });
            }
        }
        for (a, &new_index) in region.added.iter().enumerate() {
            if changes.len() >= options.max_changes {
                omitted += 1;
                omitted_words += words(&new[new_index])
                    + paired_new[a].map_or(0, |r| words(&old[region.removed[r]]));
                continue;
            }
            let section = new_sections[new_index].map(|i| new[i].text.clone());
            let change = match paired_new[a] {
                Some(r) => {
                    let old_block = &old[region.removed[r]];
                    BlockChange {
                        kind: ChangeKind::Changed,
                        section,
                        old: Some(old_block.clone()),
                        new: Some(new[new_index].clone()),
                        words: word_diff(&old_block.text, &new[new_index].text, deadline),
                    }
                }
                None => BlockChange {
                    kind: ChangeKind::Added,
                    section,
                    old: None,
                    new: Some(new[new_index].clone()),
                    words: vec![WordSpan {
                        op: WordOp::Insert,
                        text: new[new_index].text.clone(),
                    }],
                },
            };
            changes.push(change);
        }
    }
    TextDiff {
        changes,
        timed_out: Instant::now() > deadline,
        omitted,
        omitted_words,
    }
}

/// Indices of removed (old) and added (new) blocks in one hunk.
#[derive(Debug)]
struct Region {
    removed: Vec<usize>,
    added: Vec<usize>,
}

/// A number for each block's text, the same for the same text, and how
/// many distinct texts there are: the alignment hashes and compares these
/// rather than every byte of both pages, and gives the same answer, since
/// it only asks which blocks are equal. The numbers follow the texts'
/// order, so the fact reader can take them for a sort of the blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextIds {
    /// The old blocks' numbers, in page order.
    pub old: Vec<usize>,
    /// The new blocks' numbers, in page order.
    pub new: Vec<usize>,
    /// How many distinct texts: every number is below it.
    pub texts: usize,
}

impl TextIds {
    /// The numbers of two versions' blocks.
    pub fn of(old: &[Block], new: &[Block]) -> Self {
        let (old, new, texts) = text_ids(old, new);
        Self { old, new, texts }
    }
}

fn text_ids(old: &[Block], new: &[Block]) -> (Vec<usize>, Vec<usize>, usize) {
    let mut all: Vec<(&str, usize)> = old
        .iter()
        .chain(new)
        .map(|block| block.text.as_str())
        .enumerate()
        .map(|(at, text)| (text, at))
        .collect();
    all.sort_unstable();
    let mut ids = vec![0; all.len()];
    let mut texts = 0;
    let mut previous = None;
    for (text, at) in all {
        if previous != Some(text) {
            texts += 1;
            previous = Some(text);
        }
        ids[at] = texts - 1;
    }
    let new_ids = ids.split_off(old.len());
    (ids, new_ids, texts)
}

/// Drops every removed block whose exact text was added elsewhere, and that
/// addition with it: the block moved, and a move is not a change. Texts are
/// their [`text_ids`], `texts` of them.
fn cancel_moves(regions: &mut [Region], old_keys: &[usize], new_keys: &[usize], texts: usize) {
    let mut added_by_text = vec![0usize; texts];
    for region in regions.iter() {
        for &index in &region.added {
            added_by_text[new_keys[index]] += 1;
        }
    }
    let mut moved = vec![0usize; texts];
    for region in regions.iter_mut() {
        region.removed.retain(|&index| {
            let text = old_keys[index];
            if added_by_text[text] > 0 {
                added_by_text[text] -= 1;
                moved[text] += 1;
                false
            } else {
                true
            }
        });
    }
    for region in regions.iter_mut() {
        region.added.retain(|&index| {
            let text = new_keys[index];
            if moved[text] > 0 {
                moved[text] -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// Pairs removed and added blocks of one region that are edits of each other,
/// in order, as `(removed position, added position)`.
fn pair_edits(
    region: &Region,
    old: &[Block],
    new: &[Block],
    threshold: f32,
) -> Vec<(usize, usize)> {
    // Regions are usually a handful of blocks; a huge one (a rewritten page)
    // is reported as removals and additions rather than paying for n×m
    // comparisons.
    const MAX_COMPARISONS: usize = 4_096;
    if region.removed.is_empty()
        || region.added.is_empty()
        || region.removed.len() * region.added.len() > MAX_COMPARISONS
    {
        return Vec::new();
    }
    let mut pairs = Vec::new();
    let mut next_added = 0;
    for (r, &old_index) in region.removed.iter().enumerate() {
        let old_block = &old[old_index];
        let best = (next_added..region.added.len())
            .map(|a| (a, similarity(old_block, &new[region.added[a]])))
            .filter(|&(_, score)| score >= threshold)
            .max_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((a, _)) = best {
            pairs.push((r, a));
            next_added = a + 1;
        }
    }
    pairs
}

/// Share of words two blocks have in common (Dice coefficient over word
/// multisets), 0.0 to 1.0. Headings only pair with headings.
fn similarity(old: &Block, new: &Block) -> f32 {
    if old.is_heading() != new.is_heading() {
        return 0.0;
    }
    let mut counts: HashMap<&str, i32> = HashMap::new();
    let mut old_total = 0usize;
    for word in old.text.split_whitespace() {
        *counts.entry(word).or_default() += 1;
        old_total += 1;
    }
    let mut common = 0usize;
    let mut new_total = 0usize;
    for word in new.text.split_whitespace() {
        new_total += 1;
        if let Some(left) = counts.get_mut(word)
            && *left > 0
        {
            *left -= 1;
            common += 1;
        }
    }
    if old_total + new_total == 0 {
        return 1.0;
    }
    #[expect(clippy::cast_precision_loss, reason = "word counts are far below 2^23")]
    let score = (2 * common) as f32 / (old_total + new_total) as f32;
    score
}

/// Word-level diff of one edited block, merged into runs.
fn word_diff(old: &str, new: &str, deadline: Instant) -> Vec<WordSpan> {
    let diff = TextDiffConfig::default()
        .algorithm(Algorithm::Patience)
        .deadline(deadline)
        .diff_words(old, new);
    let mut spans: Vec<WordSpan> = Vec::new();
    for change in diff.iter_all_changes() {
        let op = match change.tag() {
            ChangeTag::Equal => WordOp::Equal,
            ChangeTag::Delete => WordOp::Delete,
            ChangeTag::Insert => WordOp::Insert,
        };
        let text = change.value();
        match spans.last_mut() {
            Some(last) if last.op == op => last.text.push_str(text),
            // A lone space between two changed runs reads better folded into
            // them than as an "unchanged" span of its own.
            _ => spans.push(WordSpan {
                op,
                text: text.to_owned(),
            }),
        }
    }
    spans
}

/// For each block, the index of the nearest heading at or above it; a
/// heading that is an image's label (a logo's alt text) names no section.
fn sections(blocks: &[Block]) -> Vec<Option<usize>> {
    let mut current = None;
    blocks
        .iter()
        .enumerate()
        .map(|(index, block)| {
            let section = current;
            if matches!(block.kind, BlockKind::Heading { .. })
                && !crate::core::titles::is_image_label(&block.text)
            {
                current = Some(index);
            }
            // A heading's own section is the one above it.
            section
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_changes_is_summarised_but_counted() {
        let old = vec![para("one two")];
        let new: Vec<Block> = (0..500).map(|i| para(&format!("new block {i}"))).collect();
        let options = DiffOptions {
            max_changes: 10,
            ..DiffOptions::default()
        };
        let capped = diff(&old, &new, &options);
        let full = diff(&old, &new, &DiffOptions::default());
        assert_eq!(capped.changes.len(), 10);
        assert_eq!(capped.changes.len() + capped.omitted, full.changes.len());
        assert_eq!(capped.changed_words(), full.changed_words());
        assert!(!capped.is_empty());
        let json = serde_json::to_value(&capped).expect("json");
        assert_eq!(json["omitted"], 491);
        assert!(
            serde_json::to_value(&full)
                .expect("json")
                .get("omitted")
                .is_none()
        );
    }

    fn para(text: &str) -> Block {
        Block::new(BlockKind::Paragraph, text)
    }

    fn heading(text: &str) -> Block {
        Block::new(BlockKind::Heading { level: 2 }, text)
    }

    fn item(text: &str) -> Block {
        Block::new(BlockKind::ListItem, text)
    }

    #[test]
    fn identical_texts_have_no_changes() {
        let blocks = vec![heading("Members"), item("Cumbria County Council")];
        assert!(diff(&blocks, &blocks, &DiffOptions::default()).is_empty());
    }

    #[test]
    fn a_moved_block_is_not_a_change() {
        let old = vec![
            item("Allerdale"),
            item("Copeland"),
            item("Carlisle"),
            item("Eden"),
        ];
        let new = vec![
            item("Eden"),
            item("Allerdale"),
            item("Copeland"),
            item("Carlisle"),
        ];
        let result = diff(&old, &new, &DiffOptions::default());
        assert!(result.is_empty(), "{result:?}");
    }

    #[test]
    fn an_edited_paragraph_is_paired_and_word_diffed() {
        let old = vec![
            heading("Population"),
            para("Our system covers a population of 327,000 people."),
        ];
        let new = vec![
            heading("Population"),
            para("Our system covers a population of 274,000 people."),
        ];
        let result = diff(&old, &new, &DiffOptions::default());
        assert_eq!(result.changes.len(), 1);
        let change = &result.changes[0];
        assert_eq!(change.kind, ChangeKind::Changed);
        assert_eq!(change.section.as_deref(), Some("Population"));
        let deleted: Vec<&str> = change
            .words
            .iter()
            .filter(|s| s.op == WordOp::Delete)
            .map(|s| s.text.as_str())
            .collect();
        let inserted: Vec<&str> = change
            .words
            .iter()
            .filter(|s| s.op == WordOp::Insert)
            .map(|s| s.text.as_str())
            .collect();
        assert_eq!(deleted, ["327,000"]);
        assert_eq!(inserted, ["274,000"]);
        assert_eq!(result.changed_words(), 2);
    }

    #[test]
    fn dropped_list_item_is_a_removal_under_its_heading() {
        let old = vec![
            heading("Places"),
            item("Allerdale"),
            item("Eden"),
            para("End"),
        ];
        let new = vec![heading("Places"), item("Allerdale"), para("End")];
        let result = diff(&old, &new, &DiffOptions::default());
        assert_eq!(result.block_counts(), (0, 1, 0));
        assert_eq!(result.changes[0].section.as_deref(), Some("Places"));
        assert_eq!(
            result.changes[0].old.as_ref().map(|b| b.text.as_str()),
            Some("Eden")
        );
    }

    #[test]
    fn unrelated_replacement_is_removal_plus_addition() {
        let old = vec![para("The board meets monthly in Preston.")];
        let new = vec![para("Contact us by email for further details.")];
        let result = diff(&old, &new, &DiffOptions::default());
        assert_eq!(result.block_counts(), (1, 1, 0));
    }

    #[test]
    fn a_zero_budget_still_gives_a_correct_diff() {
        let old: Vec<Block> = (0..2_000).map(|i| para(&format!("line {i}"))).collect();
        let mut new = old.clone();
        new[1_000] = para("line one thousand");
        let options = DiffOptions {
            timeout: Duration::ZERO,
            ..DiffOptions::default()
        };
        let result = diff(&old, &new, &options);
        assert!(!result.is_empty());
        // Applying the diff must still account for every changed block.
        let (added, removed, changed) = result.block_counts();
        assert!(added + changed >= 1 && removed + changed >= 1);
    }
}
