//! Plain data passed between the pipeline's stages.
//!
//! Nothing here does I/O. Persisted forms of these types live in `store`,
//! which owns their versioning; the types here may change freely.

use serde::Serialize;

/// What a block of extracted text was in the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum BlockKind {
    /// `<h1>`..`<h6>`, or an element with `role="heading"`.
    Heading {
        /// 1 for `<h1>` .. 6 for `<h6>`.
        level: u8,
    },
    /// Prose: `<p>`, a `<div>` of loose text, a `<blockquote>`, a `<dd>`.
    Paragraph,
    /// One `<li>` (or `<dt>`): on partnership pages these carry the places and organisations.
    ListItem,
    /// One table row, its cells joined by ` | `.
    TableRow,
    /// `<pre>` text, whose line breaks are kept.
    Preformatted,
    /// A value picked out by a watch's own `[[watch.fact]] select` rule,
    /// written `rule: value`, kept after the page's text so that it is
    /// stored, diffed and classified with it.
    Named,
}

/// One unit of extracted text, with whitespace already normalised.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Block {
    /// What the block was in the page.
    #[serde(flatten)]
    pub kind: BlockKind,
    /// The text, whitespace collapsed to single spaces and trimmed.
    pub text: String,
}

impl Block {
    /// A block of the given kind.
    pub fn new(kind: BlockKind, text: impl Into<String>) -> Self {
        Self {
            kind,
            text: text.into(),
        }
    }

    /// Whether this block is a heading.
    pub fn is_heading(&self) -> bool {
        matches!(self.kind, BlockKind::Heading { .. })
    }

    /// The block as one line of the plain-text rendering that `tidings extract`
    /// prints: headings marked with `#`, list items with `- `.
    pub fn render(&self) -> String {
        match self.kind {
            BlockKind::Heading { level } => {
                format!(
                    "{} {}",
                    "#".repeat(usize::from(level.clamp(1, 6))),
                    self.text
                )
            }
            BlockKind::ListItem => format!("- {}", self.text),
            BlockKind::Named => format!("@ {}", self.text),
            BlockKind::Paragraph | BlockKind::TableRow | BlockKind::Preformatted => {
                self.text.clone()
            }
        }
    }

    /// `self.render().len()`, counted without rendering: the store records
    /// every version's rendered size.
    pub fn rendered_len(&self) -> usize {
        let mark = match self.kind {
            BlockKind::Heading { level } => usize::from(level.clamp(1, 6)) + 1,
            BlockKind::ListItem | BlockKind::Named => 2,
            BlockKind::Paragraph | BlockKind::TableRow | BlockKind::Preformatted => 0,
        };
        mark + self.text.len()
    }
}

/// The text tidings sees in one page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Extracted {
    /// The page's `<title>`, if it had one.
    pub title: Option<String>,
    /// The blocks, in document order.
    pub blocks: Vec<Block>,
}

impl Extracted {
    /// The blocks rendered one per paragraph, separated by blank lines.
    pub fn render(&self) -> String {
        render_blocks(&self.blocks)
    }

    /// The number of words in all blocks.
    pub fn word_count(&self) -> usize {
        self.blocks
            .iter()
            .map(|block| block.text.split_whitespace().count())
            .sum()
    }
}

/// Renders blocks one per paragraph, separated by blank lines, ending in a newline.
pub fn render_blocks(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&block.render());
        out.push('\n');
    }
    out
}
