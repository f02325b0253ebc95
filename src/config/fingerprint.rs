//! A configuration's fingerprint: what a SIGHUP compares to tell that no
//! file changed.

use std::path::{Path, PathBuf};

/// What a configuration was read from: every file's bytes, hashed, and
/// the include patterns. A reload whose files hash the same (and whose
/// patterns match the same files) has nothing new to read, and skips
/// parsing and validating 100,000 watches again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// The main file first, then each included file in the order read.
    pub(super) files: Vec<(PathBuf, blake3::Hash)>,
    /// The include patterns, resolved against the main file's folder.
    pub(super) patterns: Vec<PathBuf>,
    /// What the watches read from `[defaults]` in that load.
    pub(super) defaults: Option<super::validate::DefaultsKey>,
    /// Each `[[watch]]` block's text (see `split.rs`), hashed, and the
    /// watch it holds, with the defaults that watch takes.
    pub(super) blocks: Blocks,
}

/// The blocks of [`Fingerprint`], keyed by their text's hash.
pub(super) type Blocks = std::collections::HashMap<
    blake3::Hash,
    (String, super::validate::Inherits),
    std::hash::BuildHasherDefault<Prefix>,
>;

/// Hashes a blake3 hash by its first eight bytes: they are as random as
/// any hash of them, and SipHash over all 32 bytes, twice per block, showed
/// in the profile of a 100,000-watch reload.
#[derive(Default)]
pub(super) struct Prefix(u64);

impl std::hash::Hasher for Prefix {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(17) ^ u64::from_le_bytes(word);
    }
}

impl Fingerprint {
    /// Whether the files on disk now are the ones this was taken of. Any
    /// file that cannot be read counts as a change, so that the full load
    /// reports it.
    pub fn unchanged(&self) -> bool {
        let hash = |path: &Path| std::fs::read(path).ok().map(|b| blake3::hash(&b));
        let Some((main, main_hash)) = self.files.first() else {
            return false;
        };
        if hash(main) != Some(*main_hash) {
            return false;
        }
        let mut included = self.files[1..].iter();
        for pattern in &self.patterns {
            let Some(paths) = pattern.to_str().and_then(|p| glob::glob(p).ok()) else {
                return false;
            };
            for entry in paths {
                let Ok(path) = entry else { return false };
                match included.next() {
                    Some((seen, seen_hash)) if *seen == path && hash(&path) == Some(*seen_hash) => {
                    }
                    _ => return false,
                }
            }
        }
        included.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(path: &Path) -> Fingerprint {
        crate::config::load_fingerprinted(path)
            .map(|(_, fingerprint)| fingerprint)
            .expect("valid config")
    }

    #[test]
    fn an_edit_to_the_file_or_an_included_one_or_a_new_include_is_a_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = dir.path().join("tidings.toml");
        let watch = |name: &str| {
            format!("[[watch]]\nname = \"{name}\"\nurl = \"http://127.0.0.1/{name}\"\n")
        };
        std::fs::create_dir(dir.path().join("more")).expect("mkdir");
        std::fs::write(
            &main,
            format!("include = [\"more/*.toml\"]\n{}", watch("a")),
        )
        .expect("write");
        std::fs::write(dir.path().join("more/b.toml"), watch("b")).expect("write");

        let taken = fingerprint(&main);
        assert!(taken.unchanged(), "nothing was touched");
        assert_eq!(fingerprint(&main), taken, "the same files, the same print");

        // Rewriting the same bytes is no change; a comment is one.
        std::fs::write(dir.path().join("more/b.toml"), watch("b")).expect("write");
        assert!(taken.unchanged());
        std::fs::write(dir.path().join("more/b.toml"), watch("b") + "# edited\n").expect("write");
        assert!(!taken.unchanged(), "an included file changed");

        let taken = fingerprint(&main);
        std::fs::write(dir.path().join("more/c.toml"), watch("c")).expect("write");
        assert!(!taken.unchanged(), "the pattern matches a new file");

        let taken = fingerprint(&main);
        std::fs::remove_file(dir.path().join("more/c.toml")).expect("rm");
        assert!(!taken.unchanged(), "an included file went away");

        let taken = fingerprint(&main);
        let text = std::fs::read_to_string(&main).expect("read") + "\n";
        std::fs::write(&main, text).expect("write");
        assert!(!taken.unchanged(), "the main file changed");

        let taken = fingerprint(&main);
        std::fs::remove_file(&main).expect("rm");
        assert!(!taken.unchanged(), "a file that cannot be read is a change");
    }

    #[test]
    fn a_reload_takes_unchanged_blocks_as_they_were_and_reads_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = dir.path().join("tidings.toml");
        let text = |b_url: &str, schedule: &str| {
            format!(
                "[limits]\nper_host = 4\n\n[[watch]]\nname = \"a\"\nurl = \"http://127.0.0.1/a\"\n\n[[watch]]\nname = \"b\"\nurl = \"{b_url}\"\n\n[[watch]]\nname = \"c\"\nurl = \"http://127.0.0.1/c\"\n\n[defaults]\nschedule = \"{schedule}\"\n"
            )
        };
        std::fs::write(&main, text("http://127.0.0.1/b", "0 9 * * *")).expect("write");
        let (before, taken) = crate::config::load_fingerprinted(&main).expect("valid");
        let asked = std::cell::RefCell::new(Vec::new());
        let lookup = |name: &str| {
            asked.borrow_mut().push(name.to_owned());
            before.watch(name).cloned()
        };
        let reuse = crate::config::Reuse {
            fingerprint: &taken,
            watch: &lookup,
        };

        // One block edited: only it is read again.
        std::fs::write(&main, text("http://127.0.0.1/b2", "0 9 * * *")).expect("write");
        let (after, _) = crate::config::load_reusing(&main, Some(&reuse)).expect("valid");
        assert_eq!(*asked.borrow(), ["a", "c"]);
        let names: Vec<&str> = after.watches.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"], "file order kept");
        assert_eq!(
            after.watch("b").expect("b").url.as_str(),
            "http://127.0.0.1/b2"
        );

        // A watch added (lines shift): the others are still taken.
        asked.borrow_mut().clear();
        let added = text("http://127.0.0.1/b2", "0 9 * * *").replace(
            "[defaults]",
            "[[watch]]\nname = \"d\"\nurl = \"http://127.0.0.1/d\"\n\n[defaults]",
        );
        std::fs::write(&main, added).expect("write");
        let (after, _) = crate::config::load_reusing(&main, Some(&reuse)).expect("valid");
        assert_eq!(*asked.borrow(), ["a", "c"]);
        assert_eq!(after.watches.len(), 4);

        // A default changed: the blocks are still taken, with the new
        // default applied (see config::split's tests for the whole list);
        // `b` is back to the text it had in the first load.
        asked.borrow_mut().clear();
        std::fs::write(&main, text("http://127.0.0.1/b", "0 10 * * *")).expect("write");
        let (after, _) = crate::config::load_reusing(&main, Some(&reuse)).expect("valid");
        assert_eq!(*asked.borrow(), ["a", "b", "c"]);
        assert_eq!(
            after.watch("a").expect("a").schedule.expression,
            "0 10 * * *"
        );

        // A block copied: the second is a duplicate, with its line.
        let doubled = text("http://127.0.0.1/b", "0 9 * * *").replace(
            "[defaults]",
            "[[watch]]\nname = \"a\"\nurl = \"http://127.0.0.1/a\"\n\n[defaults]",
        );
        std::fs::write(&main, doubled).expect("write");
        let errors = crate::config::load_reusing(&main, Some(&reuse))
            .map(|_| ())
            .expect_err("a duplicate name");
        let message = errors.to_string();
        assert!(
            message.contains(":16:") && message.contains("`a`"),
            "{message}"
        );
    }
}
