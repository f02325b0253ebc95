//! Cuts a config's text into its `[[watch]]` blocks and the rest, so that
//! each block is parsed on its own: the parse of a 100,000-watch file never
//! holds the whole document as a TOML tree (about 200 MB), and a reload
//! can skip every block whose text it has validated before.
//!
//! The cut is made by a small scanner that knows just enough TOML to find
//! table headers: strings (basic, literal, multi-line), comments, and the
//! brackets of values that span lines. Anything it is not sure of (a quoted
//! or dotted `watch` header outside a block, a single `[watch]` table) makes
//! it give up, and the file is parsed whole as before.

use std::ops::Range;

/// A config's text cut in two: the blocks, and the rest with each block's
/// text replaced by its newlines only, so that line numbers stay true.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Split {
    /// Everything but the `[[watch]]` blocks, line for line.
    pub(super) rest: String,
    /// Each `[[watch]]` block (its header, keys and `[[watch.…]]`
    /// sub-tables), as a byte range of the text, in order.
    pub(super) blocks: Vec<Range<usize>>,
    /// The hash of what the text outside the blocks means: its lines
    /// without the blocks, blank lines and comment lines. Adding or
    /// removing a watch (with a blank line or a comment) leaves it as it
    /// was, so a reload still takes every other block as validated before.
    pub(super) rest_hash: blake3::Hash,
}

/// Where one line's header leads.
enum Header {
    /// `[[watch]]`: a new block starts.
    Watch,
    /// `[watch.…]` or `[[watch.…]]`: part of the block before it.
    WatchPart,
    /// Any other table.
    Other,
}

/// Reads a header line (`[name]` or `[[name]]`, with an optional comment);
/// `None` when it is one the scanner does not trust itself to place.
fn header(line: &str) -> Option<Header> {
    let line = line.split('#').next().unwrap_or("").trim();
    let (inner, array) = if let Some(inner) = line.strip_prefix("[[") {
        (inner.strip_suffix("]]")?, true)
    } else {
        (line.strip_prefix('[')?.strip_suffix(']')?, false)
    };
    if inner.contains(['"', '\'', '[', ']']) {
        return None;
    }
    let mut parts = inner.split('.').map(str::trim);
    match (parts.next(), parts.next()) {
        (Some("watch"), None) if array => Some(Header::Watch),
        (Some("watch"), None) => None,
        (Some("watch"), Some(_)) => Some(Header::WatchPart),
        _ => Some(Header::Other),
    }
}

/// Cuts `text`, or `None` when the scanner is not sure of the cut.
pub(super) fn split(text: &str) -> Option<Split> {
    let bytes = text.as_bytes();
    let mut blocks: Vec<Range<usize>> = Vec::new();
    let mut hasher = blake3::Hasher::new();
    let mut open: Option<usize> = None;
    let mut depth: usize = 0;
    let mut i = 0;
    while i < bytes.len() {
        // At the start of a line, outside any value: perhaps a header.
        let line_end = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n);
        let line = &text[i..line_end];
        if depth == 0 && line.trim_start().starts_with('[') {
            match header(line)? {
                Header::Watch => {
                    if let Some(start) = open.take() {
                        blocks.push(start..i);
                    }
                    open = Some(i);
                }
                Header::WatchPart if open.is_some() => {}
                Header::WatchPart => return None,
                Header::Other => {
                    if let Some(start) = open.take() {
                        blocks.push(start..i);
                    }
                    hasher.update(line.trim().as_bytes());
                    hasher.update(b"\n");
                }
            }
            i = line_end + 1;
            continue;
        }
        // Otherwise walk the line's value, which may run over lines. What
        // is outside the blocks is hashed without blank and comment lines:
        // they mean nothing, and a watch added with a blank line before
        // it must not make a reload read every other block again.
        let start = i;
        i = walk(bytes, i, &mut depth)?;
        let trimmed = line.trim();
        if open.is_none() && !trimmed.is_empty() && !trimmed.starts_with('#') {
            hasher.update(&bytes[start..i]);
        }
    }
    if let Some(start) = open.take() {
        blocks.push(start..bytes.len());
    }
    let mut rest = String::with_capacity(text.len() / 8);
    let mut at = 0;
    for block in &blocks {
        rest.push_str(&text[at..block.start]);
        for _ in text[block.clone()].bytes().filter(|&b| b == b'\n') {
            rest.push('\n');
        }
        at = block.end;
    }
    rest.push_str(&text[at..]);
    Some(Split {
        rest,
        blocks,
        rest_hash: hasher.finalize(),
    })
}

/// Walks from `i` to just past the end of its line, or of the last line of
/// a string or bracketed value that starts on it; tracks the bracket depth.
/// `None` for text that does not close (the whole-file parse reports it).
fn walk(bytes: &[u8], mut i: usize, depth: &mut usize) -> Option<usize> {
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                i += 1;
                if *depth == 0 {
                    return Some(i);
                }
                continue;
            }
            b'#' => {
                i = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i = close(bytes, i + 3, b"\"\"\"", true)?;
                // A multi-line basic string may end with up to two more quotes.
                while i < bytes.len() && bytes[i] == b'"' {
                    i += 1;
                }
                continue;
            }
            b'\'' if bytes[i..].starts_with(b"'''") => {
                i = close(bytes, i + 3, b"'''", false)?;
                while i < bytes.len() && bytes[i] == b'\'' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i = close(bytes, i + 1, b"\"", true)?;
                continue;
            }
            b'\'' => {
                i = close(bytes, i + 1, b"'", false)?;
                continue;
            }
            b'[' | b'{' => *depth += 1,
            b']' | b'}' => *depth = depth.checked_sub(1)?,
            _ => {}
        }
        i += 1;
    }
    Some(i)
}

/// The index just past the `end` that closes a string whose text starts at
/// `i`; backslash escapes count in basic strings only.
fn close(bytes: &[u8], mut i: usize, end: &[u8], escapes: bool) -> Option<usize> {
    while i < bytes.len() {
        if escapes && bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i..].starts_with(end) {
            return Some(i + end.len());
        }
        if end.len() == 1 && bytes[i] == b'\n' {
            // A one-line string that does not close on its line.
            return None;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(text: &str) -> Vec<&str> {
        let split = split(text).expect("split");
        assert_eq!(
            split.rest.lines().count() + usize::from(text.ends_with('\n')),
            text.lines().count() + usize::from(text.ends_with('\n')),
            "line for line"
        );
        split.blocks.iter().map(|b| &text[b.clone()]).collect()
    }

    #[test]
    fn blocks_run_from_their_header_to_the_next_table_and_keep_their_sub_tables() {
        let text = "contact = \"a@b\"\n[limits]\nper_host = 8\n\n[[watch]]\nname = \"a\"\n[[watch.fact]]\nname = \"x\"\n[[watch]]\nname = \"b\"\n\n[defaults]\nschedule = \"0 9 * * *\"\n";
        assert_eq!(
            blocks(text),
            [
                "[[watch]]\nname = \"a\"\n[[watch.fact]]\nname = \"x\"\n",
                "[[watch]]\nname = \"b\"\n\n"
            ]
        );
        let split = split(text).expect("split");
        assert!(split.rest.contains("[defaults]") && split.rest.contains("[limits]"));
        assert!(!split.rest.contains("name"), "{}", split.rest);
    }

    #[test]
    fn headers_inside_strings_arrays_and_comments_are_not_headers() {
        let text = "[[watch]]\nname = \"a\"\nselect = [\n  \"main\",\n]\nnote = \"\"\"\n[[watch]]\n[defaults]\n\"\"\"\nlit = '''\n[x]\n'''\n# [defaults]\nq = \"[y] \\\" ]\"\n[[watch]]\nname = \"b\"\n";
        let found = blocks(text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("lit = '''\n[x]\n'''"), "{found:?}");
        assert_eq!(found[1], "[[watch]]\nname = \"b\"\n");
    }

    #[test]
    fn a_header_it_cannot_place_gives_up() {
        assert_eq!(split("[watch]\nname = \"a\"\n"), None);
        assert_eq!(split("[\"watch\"]\nname = \"a\"\n"), None);
        assert_eq!(split("[watch.fact]\nname = \"a\"\n"), None);
        assert_eq!(split("[[watch]]\nname = \"a\n"), None, "an open string");
    }

    #[test]
    fn the_rest_hash_ignores_blocks_blank_lines_and_comments_but_not_values() {
        let hash = |text: &str| split(text).expect("split").rest_hash;
        let base = "[limits]\nper_host = 4\n\n[[watch]]\nname = \"a\"\n\n[defaults]\nschedule = \"0 9 * * *\"\n";
        let added = base.replace(
            "[defaults]",
            "# a new one\n\n[[watch]]\nname = \"b\"\n\n[defaults]",
        );
        assert_eq!(hash(base), hash(&added));
        assert_eq!(hash(base), hash(&format!("{base}\n# reload\n\n")));
        assert_ne!(hash(base), hash(&base.replace("0 9", "0 10")));
        // Blank lines inside a multi-line string are part of its value.
        let text = "[mail]\nfooter = \"\"\"\nx\n\"\"\"\n";
        assert_ne!(hash(text), hash(&text.replace("x\n", "x\n\n")));
    }

    /// The cut must not change what a config means: the shipped example,
    /// with its watches written into the main file between other tables,
    /// and a file of awkward but valid blocks, load the same whether cut or
    /// parsed whole. A quoted header (same TOML meaning) makes the scanner
    /// give up, which is how the whole-file parse is reached here.
    #[test]
    fn a_cut_file_loads_the_same_config_as_the_whole_file() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let shipped = std::fs::read_to_string(repo.join("config/tidings.toml")).expect("config");
        let watches = std::fs::read_to_string(repo.join("config/watches/partnerships.toml"))
            .expect("watches");
        let shipped = shipped
            .replace("include = [\"watches/*.toml\"]", "")
            .replace("[defaults]", &format!("{watches}\n[defaults]"));
        let awkward = "[limits]\nper_host = 2\n\n[[watch]]\nname = \"a\"\nurl = \"https://example.org/a\"\nignore = [\n  \"\\\\[\\\\[watch\\\\]\\\\]\",\n  '[defaults]',\n]\ntitle = \"\"\"A [[watch]]\n[defaults] title\"\"\"\n# [[watch]] in a comment\n\n[[watch.fact]]\nname = \"beds\"\nregex = '(\\d+) beds'\n\n[[watch]]\nname = \"b\"\nurl = \"https://example.org/b\"\ntags = [\"x\"]\n\n[tags.x]\ntitle = \"X\"\n";
        for text in [shipped.as_str(), awkward] {
            let cut = split(text).expect("the scanner places every header here");
            assert!(!cut.blocks.is_empty());
            let whole = text.replacen("[limits]", "[\"limits\"]", 1);
            assert_eq!(split(&whole), None, "a quoted header must make it give up");
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("tidings.toml");
            let load = |text: &str| {
                std::fs::write(&path, text).expect("write");
                format!("{:?}", crate::config::load(&path).expect("valid config"))
            };
            assert_eq!(load(text), load(&whole));
        }
    }
}
