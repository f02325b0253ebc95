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
                }
            }
            i = line_end + 1;
            continue;
        }
        // Otherwise walk the line's value, which may run over lines.
        i = walk(bytes, i, &mut depth)?;
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
    Some(Split { rest, blocks })
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
    /// A reload after a change outside the blocks (a limit, a default, the
    /// time zone) takes the watches from the last load, with the changed
    /// defaults applied, and must give exactly the config, and the
    /// fingerprint, that loading the changed file afresh gives. Each step
    /// reuses the one before, as a run of SIGHUPs does; the count of
    /// watches taken over says which steps read blocks again.
    #[test]
    fn a_reload_after_a_default_changes_loads_the_same_config_as_a_fresh_load() {
        use crate::config::{Reuse, load_fingerprinted, load_reusing};
        let base = "contact = \"a@b\"\n[limits]\nper_host = 2\n\n[[watch]]\nname = \"plain\"\nurl = \"https://example.org/a\"\n\n[[watch]]\nname = \"own\"\nurl = \"https://example.org/b\"\nschedule = \"15 8 * * Mon\"\nrobots = false\nmain_content = false\nselect = \"main\"\nignore = ['x\\d+']\n\n[[watch.fact]]\nname = \"beds\"\nregex = '(\\d+) beds'\n\n[[watch]]\nname = \"tagged\"\nurl = \"https://example.org/c\"\ntags = [\"t\"]\nmain_content = true\n\n[defaults]\nschedule = \"0 9 * * *\"\ntimezone = \"Europe/London\"\nrobots = true\nmain_content = true\n\n[daemon]\nmax_jitter = \"1m\"\n";
        // (what is replaced, by what, watches taken over of 3)
        let steps = [
            ("per_host = 2", "per_host = 3\nmax_depth = 64", 3),
            ("max_jitter = \"1m\"", "max_jitter = \"2m\"", 3),
            ("0 9 * * *", "30 10 * * 1-5", 3),
            ("Europe/London", "America/New_York", 3),
            ("robots = true", "robots = false", 3),
            (
                "main_content = true\n\n[daemon]",
                "main_content = false\n\n[daemon]",
                2,
            ),
            ("[defaults]\n", "[defaults]\nexclude = [\".ads\"]\n", 0),
            ("exclude = [\".ads\"]\n", "", 0),
            ("[defaults]\n", "[defaults]\nignore = ['^Updated']\n", 0),
            ("America/New_York", "Europe/London", 3),
            (
                "\n[daemon]",
                "\n# a comment\n[tags.t]\ntitle = \"T\"\n\n[daemon]",
                3,
            ),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tidings.toml");
        std::fs::write(&path, base).expect("write");
        let (mut config, mut print) = load_fingerprinted(&path).expect("valid config");
        let mut text = base.to_owned();
        for (from, to, taken_over) in steps {
            assert!(text.contains(from), "{from}");
            text = text.replacen(from, to, 1);
            std::fs::write(&path, &text).expect("write");
            let (fresh, fresh_print) = load_fingerprinted(&path).expect("valid config");
            let asked = std::cell::Cell::new(0);
            let lookup = |name: &str| {
                asked.set(asked.get() + 1);
                config.watch(name).cloned()
            };
            let reuse = Reuse {
                fingerprint: &print,
                watch: &lookup,
            };
            let (reloaded, reloaded_print) =
                load_reusing(&path, Some(&reuse)).expect("valid config");
            assert_eq!(asked.get(), taken_over, "after {to:?}");
            assert_eq!(
                format!("{reloaded:?}"),
                format!("{fresh:?}"),
                "after {to:?}"
            );
            assert_eq!(reloaded_print, fresh_print, "after {to:?}");
            (config, print) = (reloaded, reloaded_print);
        }
        assert_eq!(config.watches[0].schedule.expression, "30 10 * * 1-5");
        assert!(!config.watches[0].robots && !config.watches[2].robots);
        assert_eq!(config.limits.max_depth, 64);
    }
}
