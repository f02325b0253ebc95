//! Text renderings of a diff for people and scripts: word-level, unified,
//! and JSON. Pure: callers decide where the text goes and whether the
//! terminal shows colour.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Effects, Style};
use serde::Serialize;

use crate::core::classify::Assessment;
use crate::core::diff::{BlockChange, ChangeKind, TextDiff, WordOp};
use crate::core::model::{Block, BlockKind, render_blocks};

const REMOVED: Style = AnsiColor::Red.on_default().effects(Effects::STRIKETHROUGH);
const ADDED: Style = AnsiColor::Green.on_default().effects(Effects::UNDERLINE);
const SECTION: Style = Style::new().bold();

/// Renders the word-level diff: each changed block under its section
/// heading, with removed and added words marked. With `colour`, words are
/// struck through in red or underlined in green; without, they are wrapped
/// as `[-removed-]` and `{+added+}` so the change survives a pipe.
pub fn word(diff: &TextDiff, colour: bool) -> String {
    let mut out = String::new();
    let mut last_section: Option<&str> = None;
    for change in &diff.changes {
        let section = change.section.as_deref();
        if section != last_section || out.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            let title = section.unwrap_or("(top of page)");
            if colour {
                let _ = writeln!(out, "{SECTION}§ {title}{SECTION:#}");
            } else {
                let _ = writeln!(out, "§ {title}");
            }
            last_section = section;
        }
        let marker = match change.kind {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Changed => '~',
        };
        out.push(marker);
        out.push(' ');
        out.push_str(prefix(change));
        for span in &change.words {
            match (span.op, colour) {
                (WordOp::Equal, _) => out.push_str(&span.text),
                (WordOp::Delete, true) => {
                    let _ = write!(out, "{REMOVED}{}{REMOVED:#}", span.text);
                }
                (WordOp::Insert, true) => {
                    let _ = write!(out, "{ADDED}{}{ADDED:#}", span.text);
                }
                (WordOp::Delete, false) => {
                    let _ = write!(out, "[-{}-]", span.text);
                }
                (WordOp::Insert, false) => {
                    let _ = write!(out, "{{+{}+}}", span.text);
                }
            }
        }
        out.push('\n');
    }
    out
}

/// Headings keep the `#` that `tidings extract` gives them, so a renamed
/// section reads as one. (List items get no `- `: it would read as a second
/// removal marker.)
fn prefix(change: &BlockChange) -> &'static str {
    let block = change.new.as_ref().or(change.old.as_ref());
    match block.map(|b| b.kind) {
        Some(BlockKind::Heading { .. }) => "# ",
        _ => "",
    }
}

/// Renders a unified diff of the two texts as `tidings extract` prints them.
pub fn unified(old: &[Block], new: &[Block], old_label: &str, new_label: &str) -> String {
    let old_text = render_blocks(old);
    let new_text = render_blocks(new);
    similar::TextDiff::from_lines(&old_text, &new_text)
        .unified_diff()
        .context_radius(2)
        .header(old_label, new_label)
        .to_string()
}

/// The classified changes, one line each, most important first:
/// `boundary  Boundary: Places covered: −Eden; population 327,000 → 274,000`.
pub fn assessment_header(assessment: &Assessment, colour: bool) -> String {
    let mut out = String::new();
    for change in &assessment.changes {
        let kind = change.kind.as_str();
        if colour {
            let _ = writeln!(out, "{SECTION}{kind:<10}{SECTION:#}{}", change.summary);
        } else {
            let _ = writeln!(out, "{kind:<10}{}", change.summary);
        }
    }
    out
}

/// The classified changes as JSON, without repeating the evidence blocks
/// that the diff part already lists.
pub fn json_assessment(assessment: &Assessment) -> Vec<serde_json::Value> {
    assessment
        .changes
        .iter()
        .map(|change| {
            serde_json::json!({
                "kind": change.kind,
                "summary": change.summary,
                "points": change.points,
                "added": change.added,
                "removed": change.removed,
                "changed": change.changed,
                "evidence_blocks": change.evidence.len(),
            })
        })
        .collect()
}

/// The JSON shape of a diff: added, removed and changed blocks, each with
/// its section heading.
#[derive(Debug, Serialize)]
pub struct JsonDiff<'a> {
    /// Whether anything changed.
    pub changed: bool,
    /// Words added plus removed.
    pub changed_words: usize,
    /// Blocks only in the new version.
    pub added: Vec<JsonBlock<'a>>,
    /// Blocks only in the old version.
    pub removed: Vec<JsonBlock<'a>>,
    /// Blocks edited in place.
    pub changed_blocks: Vec<JsonEdit<'a>>,
}

/// An added or removed block.
#[derive(Debug, Serialize)]
pub struct JsonBlock<'a> {
    /// The nearest heading above it.
    pub section: Option<&'a str>,
    /// What the block is.
    #[serde(flatten)]
    pub block: &'a Block,
}

/// An edited block.
#[derive(Debug, Serialize)]
pub struct JsonEdit<'a> {
    /// The nearest heading above it.
    pub section: Option<&'a str>,
    /// The text before.
    pub old: &'a str,
    /// The text after.
    pub new: &'a str,
    /// The word-level spans.
    pub words: &'a [crate::core::diff::WordSpan],
}

impl<'a> JsonDiff<'a> {
    /// The JSON view of a diff.
    pub fn new(diff: &'a TextDiff) -> Self {
        let mut json = Self {
            changed: !diff.is_empty(),
            changed_words: diff.changed_words(),
            added: Vec::new(),
            removed: Vec::new(),
            changed_blocks: Vec::new(),
        };
        for change in &diff.changes {
            let section = change.section.as_deref();
            match (change.kind, &change.old, &change.new) {
                (ChangeKind::Added, _, Some(block)) => {
                    json.added.push(JsonBlock { section, block })
                }
                (ChangeKind::Removed, Some(block), _) => {
                    json.removed.push(JsonBlock { section, block })
                }
                (ChangeKind::Changed, Some(old), Some(new)) => json.changed_blocks.push(JsonEdit {
                    section,
                    old: &old.text,
                    new: &new.text,
                    words: &change.words,
                }),
                _ => {}
            }
        }
        json
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::diff::{DiffOptions, diff};

    fn sample() -> (Vec<Block>, Vec<Block>) {
        let old = vec![
            Block::new(BlockKind::Heading { level: 2 }, "Places"),
            Block::new(BlockKind::ListItem, "Allerdale 96,471 residents"),
            Block::new(BlockKind::ListItem, "Eden 52,630 residents"),
        ];
        let new = vec![
            Block::new(BlockKind::Heading { level: 2 }, "Places"),
            Block::new(BlockKind::ListItem, "Allerdale 97,000 residents"),
        ];
        (old, new)
    }

    #[test]
    fn word_output_marks_changes_without_colour() {
        let (old, new) = sample();
        let text = word(&diff(&old, &new, &DiffOptions::default()), false);
        insta::assert_snapshot!(text, @r"
        § Places
        - [-Eden 52,630 residents-]
        ~ Allerdale [-96,471-]{+97,000+} residents
        ");
    }

    #[test]
    fn word_output_uses_ansi_only_when_asked() {
        let (old, new) = sample();
        let result = diff(&old, &new, &DiffOptions::default());
        assert!(word(&result, true).contains("\u{1b}["));
        assert!(!word(&result, false).contains("\u{1b}["));
    }

    #[test]
    fn json_lists_blocks_with_sections() {
        let (old, new) = sample();
        let result = diff(&old, &new, &DiffOptions::default());
        let json = serde_json::to_value(JsonDiff::new(&result)).expect("json");
        assert_eq!(json["removed"][0]["text"], "Eden 52,630 residents");
        assert_eq!(json["removed"][0]["section"], "Places");
        assert_eq!(json["removed"][0]["type"], "list_item");
        assert_eq!(
            json["changed_blocks"][0]["new"],
            "Allerdale 97,000 residents"
        );
    }

    #[test]
    fn unified_output_has_headers_and_hunks() {
        let (old, new) = sample();
        let text = unified(&old, &new, "a", "b");
        assert!(text.starts_with("--- a\n+++ b\n"), "{text}");
        assert!(text.contains("-- Eden 52,630 residents"), "{text}");
    }
}
