//! Emitting blocks: walk the chosen subtrees, skip link farms, and cut the
//! text into blocks at block-level element boundaries.

use std::sync::LazyLock;

use regex::Regex;

use super::*;
use crate::core::model::{Block, BlockKind};

/// Turns subtrees of the flat tree into blocks.
pub(super) struct Emitter<'f, 'a> {
    pub(super) flat: &'f Flat<'a>,
    pub(super) ignore: &'f [Regex],
    pub(super) blocks: Vec<Block>,
    pub(super) buffer: String,
    pub(super) pending_space: bool,
    /// Total characters emitted, to judge whether a fallback is needed.
    pub(super) text_len: usize,
    /// Whether class-based boilerplate guesses are ignored.
    pub(super) lenient: bool,
    /// Whether lines that are only ad or widget labels are dropped.
    pub(super) drop_noise: bool,
    /// The most blocks emitted; past it the emitter stops and says so.
    pub(super) max_blocks: usize,
    /// Whether the page had more blocks than `max_blocks`.
    pub(super) over_budget: bool,
}

impl<'f, 'a> Emitter<'f, 'a> {
    pub(super) fn new(flat: &'f Flat<'a>, ignore: &'f [Regex]) -> Self {
        Self {
            flat,
            ignore,
            blocks: Vec::new(),
            buffer: String::new(),
            pending_space: false,
            text_len: 0,
            lenient: false,
            drop_noise: false,
            max_blocks: usize::MAX,
            over_budget: false,
        }
    }

    /// Emits the blocks of the subtree at `root`.
    pub(super) fn emit(&mut self, root: u32, cleaning: &Cleaning<'_>) {
        let flat = self.flat;
        let root = root as usize;
        let end = flat.nodes[root].end as usize;
        // Open block contexts: (end index, kind of loose text inside).
        let mut contexts: Vec<(usize, BlockKind)> = Vec::new();
        let mut in_pre = 0usize; // end index of the innermost <pre>, or 0
        contexts.push((end, flat.nodes[root].tag.block_kind()));
        let mut i = root;
        while i < end && !self.over_budget {
            while let Some(&(context_end, kind)) = contexts.last() {
                if context_end <= i {
                    self.flush(kind);
                    contexts.pop();
                } else {
                    break;
                }
            }
            if in_pre != 0 && in_pre <= i {
                in_pre = 0;
            }
            let node = &flat.nodes[i];
            if i != root && self.skipped(i, cleaning) {
                i = node.end as usize;
                continue;
            }
            match node.tag {
                Tag::Text => {
                    if in_pre != 0 {
                        self.push_pre(node.text);
                    } else {
                        self.push_text(node.text);
                    }
                }
                Tag::Br => {
                    if in_pre != 0 {
                        self.buffer.push('\n');
                    } else {
                        self.pending_space = true;
                    }
                }
                Tag::Tr if self.is_simple_row(i) => {
                    let kind = contexts.last().map_or(BlockKind::Paragraph, |c| c.1);
                    self.flush(kind);
                    self.emit_row(i, cleaning);
                    i = node.end as usize;
                    continue;
                }
                tag if tag.is_block() => {
                    let kind = contexts.last().map_or(BlockKind::Paragraph, |c| c.1);
                    self.flush(kind);
                    if tag == Tag::Pre && in_pre == 0 {
                        in_pre = node.end as usize;
                    }
                    contexts.push((node.end as usize, tag.block_kind()));
                }
                _ => {}
            }
            i += 1;
        }
        while let Some((_, kind)) = contexts.pop() {
            self.flush(kind);
        }
    }

    /// Whether the emitter leaves out the subtree at `i`.
    pub(super) fn skipped(&self, i: usize, cleaning: &Cleaning<'_>) -> bool {
        match cleaning {
            Cleaning::None => false,
            Cleaning::Conditional(stats) => {
                self.flat.is_junk(i, self.lenient) || is_link_farm(self.flat, stats, i)
            }
        }
    }

    /// A table row whose cells hold only inline content: one block. Rows of
    /// layout tables (cells holding paragraphs, lists, tables) are walked as
    /// ordinary containers instead, or a whole page would become one row.
    pub(super) fn is_simple_row(&self, i: usize) -> bool {
        let end = self.flat.nodes[i].end as usize;
        self.flat.nodes[i + 1..end]
            .iter()
            .all(|n| !n.tag.is_block() || n.tag == Tag::Cell)
    }

    /// Emits a simple row, its non-empty cells joined by ` | `.
    pub(super) fn emit_row(&mut self, row: usize, cleaning: &Cleaning<'_>) {
        let flat = self.flat;
        let mut cells: Vec<String> = Vec::new();
        for cell in flat.children(row) {
            if self.skipped(cell, cleaning) {
                continue;
            }
            let end = flat.nodes[cell].end as usize;
            let mut j = cell;
            while j < end {
                let node = &flat.nodes[j];
                if j != cell && self.skipped(j, cleaning) {
                    j = node.end as usize;
                    continue;
                }
                match node.tag {
                    Tag::Text => self.push_text(node.text),
                    Tag::Br => self.pending_space = true,
                    _ => {}
                }
                j += 1;
            }
            self.pending_space = false;
            let raw = self.take_buffer();
            let text = self.cut_ignored(raw);
            if !text.is_empty() {
                cells.push(text);
            }
        }
        if !cells.is_empty() {
            let text = cells.join(" | ");
            self.text_len += text.len();
            self.push_block(Block::new(BlockKind::TableRow, text));
        }
    }

    /// Appends text, collapsing whitespace runs to one space.
    pub(super) fn push_text(&mut self, text: &str) {
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            // A run of printable ASCII (never whitespace, never invisible)
            // is copied whole: most of a page's text, at memcpy speed. Single
            // spaces between printable characters belong to the run: they
            // are what the collapsing below would write anyway.
            let run = ascii_run(rest.as_bytes());
            if run > 0 {
                if self.pending_space && !self.buffer.is_empty() {
                    self.buffer.push(' ');
                }
                self.pending_space = false;
                self.buffer.push_str(&rest[..run]);
                rest = &rest[run..];
                continue;
            }
            // Runs of ASCII whitespace (the indentation between tags) are
            // skipped whole: they only ask for a space.
            let blank = rest
                .bytes()
                .take_while(|b| matches!(b, b' ' | b'\t'..=b'\r'))
                .count();
            if blank > 0 {
                self.pending_space = true;
                rest = &rest[blank..];
                continue;
            }
            rest = &rest[c.len_utf8()..];
            if c.is_whitespace() {
                self.pending_space = true;
            } else if is_invisible(c) {
                continue;
            } else {
                if self.pending_space && !self.buffer.is_empty() {
                    self.buffer.push(' ');
                }
                self.pending_space = false;
                self.buffer.push(c);
            }
        }
    }

    /// Takes the text gathered so far, leaving the buffer empty but with its
    /// room: blocks are built in one buffer that grows once per page, and
    /// each block's text is allocated once at its own size.
    fn take_buffer(&mut self) -> String {
        let text = self.buffer.as_str().to_owned();
        self.buffer.clear();
        text
    }

    /// Appends preformatted text, keeping its line breaks.
    pub(super) fn push_pre(&mut self, text: &str) {
        for c in text.chars() {
            if c == '\u{a0}' {
                self.buffer.push(' ');
            } else if !is_invisible(c) && c != '\r' {
                self.buffer.push(c);
            }
        }
    }

    /// Ends the current block: cuts ignored text and keeps it if non-empty.
    pub(super) fn flush(&mut self, kind: BlockKind) {
        self.pending_space = false;
        if self.buffer.is_empty() {
            return;
        }
        let raw = self.take_buffer();
        let text = if kind == BlockKind::Preformatted {
            let lines: Vec<&str> = raw.lines().map(str::trim_end).collect();
            let first = lines.iter().position(|l| !l.trim().is_empty());
            let last = lines.iter().rposition(|l| !l.trim().is_empty());
            match (first, last) {
                (Some(first), Some(last)) => lines[first..=last].join("\n"),
                _ => String::new(),
            }
        } else {
            raw
        };
        let text = self.cut_ignored(text);
        if !(text.is_empty() || self.drop_noise && is_noise_line(&text)) {
            self.text_len += text.len();
            self.push_block(Block::new(kind, text));
        }
    }

    /// Keeps a block, unless the page is already over its block budget.
    fn push_block(&mut self, block: Block) {
        if self.blocks.len() >= self.max_blocks {
            self.over_budget = true;
            return;
        }
        self.blocks.push(block);
    }

    /// Cuts every `ignore` match and re-normalises the whitespace left behind.
    pub(super) fn cut_ignored(&self, text: String) -> String {
        if self.ignore.iter().all(|re| !re.is_match(&text)) {
            return text;
        }
        let mut text = text;
        for re in self.ignore {
            if let std::borrow::Cow::Owned(cut) = re.replace_all(&text, "") {
                text = cut;
            }
        }
        normalise(&text)
    }
}

/// The length of the leading run of `bytes` that is printable ASCII with
/// at most single spaces inside it: it starts and ends on a printable byte.
///
/// Most of a page's text is such a run, so it is read 16 bytes at a time
/// where it can be: a block is taken whole when it and the byte after it
/// are printable ASCII with no two spaces in a row (the compiler turns the
/// test into a few vector instructions). The byte-at-a-time reading then
/// goes on from the first block it cannot take whole; it would have
/// reached the same place, as a space in a block so taken is followed by
/// a printable byte.
fn ascii_run(bytes: &[u8]) -> usize {
    const BLOCK: usize = 16;
    if !bytes.first().is_some_and(u8::is_ascii_graphic) {
        return 0;
    }
    let mut run = 0;
    while let Some(window) = bytes
        .get(run..run + BLOCK + 1)
        .and_then(|w| <&[u8; BLOCK + 1]>::try_from(w).ok())
    {
        let printable = window
            .iter()
            .fold(true, |all, &b| all & (b' '..=b'~').contains(&b));
        // Each byte against the next, as two 16-byte arrays and without a
        // short-circuit, so that this too is a few vector instructions.
        let (this, next) = (&window[..BLOCK], &window[1..]);
        let (this, next): (&[u8; BLOCK], &[u8; BLOCK]) = match (this.try_into(), next.try_into()) {
            (Ok(this), Ok(next)) => (this, next),
            _ => break,
        };
        let double_space = this
            .iter()
            .zip(next)
            .fold(false, |seen, (&a, &b)| seen | ((a == b' ') & (b == b' ')));
        if !printable || double_space {
            break;
        }
        run += BLOCK;
    }
    ascii_run_bytewise(bytes, run)
}

/// [`ascii_run`] read one byte at a time from `run`, a point inside the
/// run that is not just after a space.
fn ascii_run_bytewise(bytes: &[u8], mut run: usize) -> usize {
    while run < bytes.len() {
        if bytes[run].is_ascii_graphic() {
            run += 1;
        } else if bytes[run] == b' '
            && run > 0
            && bytes.get(run + 1).is_some_and(u8::is_ascii_graphic)
        {
            run += 2;
        } else {
            break;
        }
    }
    run
}

/// A whole block that carries no content: a label left by an ad slot or a
/// widget, a byline, or a bare date stamp ("Page last updated 12 March
/// 2021"). Dates matter most: a page's "updated" line changes far more often
/// than its text, and would otherwise raise an alert on every edit.
pub(super) fn is_noise_line(text: &str) -> bool {
    if text.len() > 90 {
        return false;
    }
    let trimmed = text.trim_end_matches([':', '.', '\u{2026}', '|', ' ']);
    // Every date the pattern knows holds a digit and every byline starts
    // "By": a line without them is not looked at (nor, on a page with no
    // byline, the byline pattern compiled: once per process, but that is a
    // share of a changed cycle's hundred pages). The lower-cased line is
    // made only for the date pattern or for text beyond ASCII: an ASCII
    // line is compared with the labels ignoring case, which is the same
    // test without a string made for every short block of every page.
    let may_be_date = !trimmed.is_ascii() || trimmed.bytes().any(|b| b.is_ascii_digit());
    let lower = may_be_date.then(|| trimmed.to_lowercase());
    let label = match &lower {
        Some(lower) => NOISE_LABELS.contains(&lower.as_str()),
        None => NOISE_LABELS
            .iter()
            .any(|label| label.eq_ignore_ascii_case(trimmed)),
    };
    let may_be_byline = text.starts_with("By") || text.starts_with("BY");
    label
        || lower
            .as_deref()
            .is_some_and(|lower| DATE_LINE.is_match(lower))
        || (may_be_byline && BYLINE.is_match(text))
}

/// Whole lines, lower-cased, that are only an ad's or a widget's label.
const NOISE_LABELS: &[&str] = &[
    "advertisement",
    "advertising",
    "advert",
    "sponsored",
    "sponsored content",
    "story continues below",
    "story continues below advertisement",
    "continue reading below",
    "article continues below",
    "scroll to continue with content",
    "you may also like",
    "related articles",
    "related stories",
    "related content",
    "read more",
    "see more",
    "don't miss",
    "don\u{2019}t miss",
    "share this article",
    "share this page",
    "share this",
    "share",
    "print",
    "close",
    "caption",
    "comments",
    "loading",
    "bookmark and share",
    "this slideshow requires javascript",
    "breaking news",
];

/// A line that is only a date stamp, perhaps with a time and a label.
pub(super) static DATE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    let month = r"(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|oct(ober)?|nov(ember)?|dec(ember)?)\.?";
    let day = r"((mon|tues?|wed(nes)?|thu(rs)?|fri|sat(ur)?|sun)(day)?\.?,?)";
    let date = format!(
        r"(\d{{1,2}}(st|nd|rd|th)?\s+{month},?\s+\d{{4}}|{month}\s+\d{{1,2}}(st|nd|rd|th)?,?\s+\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}})"
    );
    let time =
        r"(,?\s*(at\s*)?\d{1,2}[:.]\d{2}\s*(am|pm|a\.m\.|p\.m\.)?\s*(gmt|bst|utc|[ecmp][sd]t)?)";
    let label = r"((page\s+)?(last\s+)?(posted|published|updated|modified|reviewed|edited)(\s+on)?:?\s*|date:?\s*)";
    Regex::new(&format!(
        r"^({label}?({day}\s*)?({time}\s*,?\s*)?{date}{time}?\s*[|,]?\s*)+$"
    ))
    .expect("static regex compiles")
});

/// "By Jane Smith" or "By STAFF WRITER": a short credit line.
pub(super) static BYLINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(By|BY)\s+\p{Lu}[\p{L}'\u{2019}.-]*(\s+(and\s+)?\p{Lu}[\p{L}'\u{2019}.-]*){0,4}(\s*[,|-]\s*[^.!?]{0,40})?$")
        .expect("static regex compiles")
});

/// Characters that render as nothing and would only make spurious diffs,
/// and control characters other than tab and newline: they are never text,
/// and an escape code from a page must not reach a terminal or a mail.
pub(super) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}'
    ) || (c.is_control() && c != '\t' && c != '\n')
}

/// Collapses whitespace runs (NBSP included) to one space and trims.
pub(super) fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace()) {
        let word: String = word.chars().filter(|&c| !is_invisible(c)).collect();
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `push_text` one character at a time, as it was before runs of ASCII
    /// were copied whole.
    fn push_text_slowly(buffer: &mut String, pending_space: &mut bool, text: &str) {
        for c in text.chars() {
            if c.is_whitespace() {
                *pending_space = true;
            } else if is_invisible(c) {
                continue;
            } else {
                if *pending_space && !buffer.is_empty() {
                    buffer.push(' ');
                }
                *pending_space = false;
                buffer.push(c);
            }
        }
    }

    #[test]
    fn ascii_runs_read_by_blocks_end_where_byte_by_byte_ones_do() {
        let alphabet = [
            b'a', b'Z', b',', b' ', b' ', b'\n', b'\t', 0x7f, 0xc3, 0xa9, b'~', b'!',
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..120 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Mostly letters, so long runs occur.
                        if state % 8 < 6 {
                            b'a' + (state >> 8) as u8 % 26
                        } else {
                            alphabet[(state >> 8) as usize % alphabet.len()]
                        }
                    })
                    .collect();
                assert_eq!(
                    ascii_run(&bytes),
                    ascii_run_bytewise(&bytes, 0),
                    "{:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }

    #[test]
    fn ascii_runs_give_the_same_text_as_one_char_at_a_time() {
        let flat = Flat::empty();
        let pieces = [
            "plain words here",
            "  leading and trailing  ",
            "a b  c\td\ne",
            " x ",
            "tabs\tand\u{a0}nbsp \u{200b}zero width",
            "ctrl\u{1b}[1m x\u{7f}y",
            "Caf\u{e9} \u{2014} na\u{ef}ve",
            "",
            " ",
            "end.",
            "\n\t\t  \x0b\x0c\r\n",
            "\u{1c}\u{1f} \u{85}x\u{3000}y \n",
        ];
        let mut emitter = Emitter::new(&flat, &[]);
        let (mut slow, mut pending) = (String::new(), false);
        for piece in pieces {
            emitter.push_text(piece);
            push_text_slowly(&mut slow, &mut pending, piece);
            assert_eq!(emitter.buffer, slow, "after {piece:?}");
            assert_eq!(emitter.pending_space, pending, "after {piece:?}");
        }
    }
}
