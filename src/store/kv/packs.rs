//! The embedded store's version texts and change records, kept in
//! append-only pack files beside sled's trees rather than inside them.
//!
//! Why: a compressed text is about 11 KB. In sled's `texts` tree, leaves
//! hold up to 16 of them and are rewritten whole, a segment is cleaned only
//! once half of it is dead, and what is written stays in sled's cache
//! whatever its capacity: texts in the tree cost about twice their size on
//! disk and some 30 MB of memory on a cycle of 1,000 pages. In a pack a text
//! costs its own bytes and a 40-byte header, and is read only when asked
//! for. A change record (about 2 KB compressed, one per changed version)
//! costs the same twice-over in the tree, so it is packed too (format 3).
//!
//! Layout: `store.sled/texts/pack-NNNNNNNN` (numbered from 1). Each entry
//! is a header (the 4 bytes `TPK1`, the 32-byte key of the `texts` tree,
//! the text's length as u32 big-endian) and then the compressed text. The
//! `texts` tree maps each key to a [`PackRef`] (a versioned JSON record:
//! pack, offset of the text, length) instead of the text itself. A value
//! that is a zstd frame is a text stored inline by an older tidings, and is
//! read as it is: stores written before packs open unchanged.
//!
//! A change record's entry has the same header, with the BLAKE3 hash of its
//! `changes` key (watch and version number, longer than 32 bytes) in place
//! of the key; the `changes` tree maps the key to a [`PackRef`]. A record
//! stored inline (a zstd frame, or plain JSON from before compression) has
//! no `pack` field and is read as it is.
//!
//! Crash rules:
//! - an entry is written and `fdatasync`ed before its reference is handed
//!   out, so before any transaction that refers to it can commit: after a
//!   power cut, a committed reference never points past what is durable;
//! - a transaction that is retried, fails or is never committed leaves at
//!   most an unreferenced entry (dead bytes, never read): texts are
//!   content-addressed, and a change record's reference is written only by
//!   the transaction that staged it (one per new version), so nothing else
//!   can point at them;
//! - an append torn by a kill is never referenced, and the next write goes
//!   after it;
//! - a referenced entry that is missing, cut short or whose header does not
//!   match its key is an error naming the pack file, never a wrong text
//!   or record.
//!
//! Nothing deletes versions, so nothing deletes texts or change records:
//! packs only grow, and there is no garbage to collect beyond the dead
//! entries above.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::store::StoreError;

/// The first bytes of every entry.
const MAGIC: &[u8; 4] = b"TPK1";
/// Magic, key, length.
const HEADER: usize = 4 + 32 + 4;
/// A pack is closed for writing past this size, so that no file grows
/// without bound (a copy or a backup tool handles many moderate files
/// better than one huge one).
const PACK_LIMIT: u64 = 256 * 1024 * 1024;
/// The newest [`PackRef`] version this build writes and reads.
const REF_VERSION: u32 = 1;

/// What a pack entry holds, which decides the key in its header and how a
/// tree's value is told apart from an inline one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Packed {
    /// A compressed text, under its 32-byte content hash.
    Text,
    /// A compressed change record, under its `changes` key.
    Change,
}

impl Packed {
    /// The 32 bytes of an entry's header that tie it to its key.
    fn header_key(self, key: &[u8]) -> [u8; 32] {
        match self {
            Packed::Text => key_bytes(key),
            // A change key (watch name, version number) can be longer than
            // 32 bytes, and cutting it would lose the number.
            Packed::Change => *blake3::hash(key).as_bytes(),
        }
    }
}

/// Where an entry is in the packs: the value of the `texts` tree, and of
/// the `changes` tree for a record written since format 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PackRef {
    v: u32,
    /// The pack's number.
    pack: u32,
    /// Where the text starts (after its header).
    at: u64,
    /// The text's length.
    len: u32,
}

impl PackRef {
    fn encode(&self) -> Vec<u8> {
        // A struct of numbers always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The pack being appended to.
#[derive(Debug)]
struct Writer {
    number: u32,
    file: Option<Arc<File>>,
    /// Bytes written to it.
    len: u64,
}

/// Which bytes of the current pack are known durable, for group commits.
#[derive(Debug, Default)]
struct Synced {
    number: u32,
    len: u64,
}

/// The pack files of one store.
#[derive(Debug)]
pub(crate) struct Packs {
    dir: PathBuf,
    writer: Mutex<Writer>,
    /// Held while one thread syncs; others wait and usually find their
    /// bytes synced by it (a group commit: a first pass over many pages
    /// pays for far fewer syncs than texts).
    synced: Mutex<Synced>,
    readers: Mutex<HashMap<u32, Arc<File>>>,
    /// A temporary store's directory, removed with it.
    _temporary: Option<tempfile::TempDir>,
}

impl Packs {
    /// The packs in `dir` (created on the first write).
    pub(crate) fn open(dir: PathBuf) -> Result<Self, StoreError> {
        let mut number = 0;
        let mut len = 0;
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|e| file_error(&dir, e))?;
                    let found = entry
                        .file_name()
                        .to_str()
                        .and_then(pack_number)
                        .unwrap_or(0);
                    if found > number {
                        number = found;
                        len = entry
                            .metadata()
                            .map_err(|e| file_error(&entry.path(), e))?
                            .len();
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_error(&dir, e)),
        }
        Ok(Self {
            dir,
            writer: Mutex::new(Writer {
                number,
                file: None,
                len,
            }),
            synced: Mutex::new(Synced::default()),
            readers: Mutex::new(HashMap::new()),
            _temporary: None,
        })
    }

    /// Packs in a temporary directory, removed when they are dropped.
    pub(crate) fn temporary() -> Result<Self, StoreError> {
        let temp = tempfile::Builder::new()
            .prefix("tidings-texts.")
            .tempdir()
            .map_err(|e| file_error(&std::env::temp_dir(), e))?;
        let mut packs = Self::open(temp.path().to_path_buf())?;
        packs._temporary = Some(temp);
        Ok(packs)
    }

    fn pack_path(&self, number: u32) -> PathBuf {
        self.dir.join(format!("pack-{number:08}"))
    }

    /// Appends `text` under `key` and returns the reference to store in the
    /// `texts` tree. With `durable`, the bytes are synced to disk first (a
    /// restore passes false and calls [`Packs::sync`] once at the end).
    #[cfg(test)]
    pub(crate) fn write(
        &self,
        key: &[u8],
        text: &[u8],
        durable: bool,
    ) -> Result<Vec<u8>, StoreError> {
        let mut refs = self.write_all(&[(Packed::Text, key, text)], durable)?;
        Ok(refs.pop().unwrap_or_default())
    }

    /// Appends several entries in one write (and, with `durable`, one
    /// sync), and returns their references in order: a commit's text and
    /// change record cost one append and at most one `fdatasync` together.
    pub(crate) fn write_all(
        &self,
        entries: &[(Packed, &[u8], &[u8])],
        durable: bool,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let total: usize = entries
            .iter()
            .map(|(_, _, bytes)| HEADER + bytes.len())
            .sum();
        let mut buffer = Vec::with_capacity(total);
        let mut placed = Vec::with_capacity(entries.len());
        for (kind, key, bytes) in entries {
            let len = u32::try_from(bytes.len()).map_err(|_| StoreError::TextFile {
                path: self.dir.clone(),
                detail: format!("an entry of {} bytes is too large", bytes.len()),
            })?;
            buffer.extend_from_slice(MAGIC);
            buffer.extend_from_slice(&kind.header_key(key));
            buffer.extend_from_slice(&len.to_be_bytes());
            placed.push((buffer.len() as u64, len));
            buffer.extend_from_slice(bytes);
        }
        if buffer.is_empty() {
            return Ok(Vec::new());
        }

        let (file, number, at, end) = {
            let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            if writer.file.is_none() || writer.len >= PACK_LIMIT {
                self.roll(&mut writer)?;
            }
            let Some(file) = writer.file.clone() else {
                unreachable!("roll opens a pack");
            };
            let at = writer.len;
            file.write_all_at(&buffer, at)
                .map_err(|e| file_error(&self.pack_path(writer.number), e))?;
            writer.len += buffer.len() as u64;
            (file, writer.number, at, writer.len)
        };
        if durable {
            self.sync_through(&file, number, end)?;
        }
        Ok(placed
            .into_iter()
            .map(|(offset, len)| {
                PackRef {
                    v: REF_VERSION,
                    pack: number,
                    at: at + offset,
                    len,
                }
                .encode()
            })
            .collect())
    }

    /// Opens the pack to append to: the newest one if it has room (its
    /// length is the file's, so a torn last entry is simply skipped), or a
    /// new one.
    fn roll(&self, writer: &mut Writer) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| file_error(&self.dir, e))?;
        let reuse = writer.number > 0 && writer.file.is_none() && writer.len < PACK_LIMIT;
        if !reuse {
            writer.number += 1;
            writer.len = 0;
        }
        let path = self.pack_path(writer.number);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| file_error(&path, e))?;
        if !reuse {
            // The new file's name must survive a power cut too, or its
            // synced entries would be unreachable.
            File::open(&self.dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| file_error(&self.dir, e))?;
        }
        writer.file = Some(Arc::new(file));
        Ok(())
    }

    /// Makes the current pack durable at least up to `end`, or finds that
    /// another thread already has.
    fn sync_through(&self, file: &File, number: u32, end: u64) -> Result<(), StoreError> {
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        if synced.number == number && synced.len >= end {
            return Ok(());
        }
        // Everything written so far to this pack is covered by this sync.
        let upto = {
            let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            if writer.number == number {
                writer.len
            } else {
                end
            }
        };
        file.sync_data()
            .map_err(|e| file_error(&self.pack_path(number), e))?;
        if synced.number != number || synced.len < upto {
            *synced = Synced { number, len: upto };
        }
        Ok(())
    }

    /// Syncs the pack being written (after writes that were not durable).
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        let (file, number) = {
            let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            (writer.file.clone(), writer.number)
        };
        match file {
            Some(file) => file
                .sync_all()
                .map_err(|e| file_error(&self.pack_path(number), e)),
            None => Ok(()),
        }
    }

    /// The text that a `texts` value stands for: read from its pack when the
    /// value is a reference, or the value itself when it is a text stored
    /// inline (the layout before packs).
    #[cfg(test)]
    pub(crate) fn resolve(&self, key: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.resolve_as(Packed::Text, key, value)
    }

    /// What a value of the tree holding `kind` stands for: the entry it
    /// refers to, or the value itself when it is stored inline.
    pub(crate) fn resolve_as(
        &self,
        kind: Packed,
        key: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        if !value.starts_with(b"{") {
            return Ok(value.to_vec());
        }
        let reference: PackRef = match (kind, serde_json::from_slice(value)) {
            (_, Ok(reference)) => reference,
            // An inline change record from before compression is JSON
            // too, but it has no `pack` field.
            (Packed::Change, Err(_)) => return Ok(value.to_vec()),
            (Packed::Text, Err(e)) => {
                return Err(StoreError::TextFile {
                    path: self.dir.clone(),
                    detail: format!("unreadable text reference: {e}"),
                });
            }
        };
        if reference.v > REF_VERSION {
            return Err(StoreError::TextFile {
                path: self.dir.clone(),
                detail: format!(
                    "pack reference version {} is newer than this tidings reads ({REF_VERSION})",
                    reference.v
                ),
            });
        }
        let path = self.pack_path(reference.pack);
        let file = self.reader(reference.pack, &path)?;
        let start =
            reference
                .at
                .checked_sub(HEADER as u64)
                .ok_or_else(|| StoreError::TextFile {
                    path: path.clone(),
                    detail: format!(
                        "a text reference to offset {} is inside no entry",
                        reference.at
                    ),
                })?;
        let mut entry = vec![0; HEADER + reference.len as usize];
        file.read_exact_at(&mut entry, start).map_err(|e| StoreError::TextFile {
            path: path.clone(),
            detail: if e.kind() == std::io::ErrorKind::UnexpectedEof {
                format!(
                    "the entry at offset {} ({} bytes) is cut short: the file is damaged; restore from a backup",
                    reference.at, reference.len
                )
            } else {
                e.to_string()
            },
        })?;
        let header_ok = entry.starts_with(MAGIC)
            && entry[4..36] == kind.header_key(key)
            && entry[36..40] == reference.len.to_be_bytes();
        if !header_ok {
            return Err(StoreError::TextFile {
                path,
                detail: format!(
                    "the entry at offset {start} is not the {} it should be: the file is damaged; restore from a backup",
                    match kind {
                        Packed::Text => "text",
                        Packed::Change => "change record",
                    }
                ),
            });
        }
        entry.drain(..HEADER);
        Ok(entry)
    }

    /// An open handle on a pack, kept for later reads.
    fn reader(&self, number: u32, path: &Path) -> Result<Arc<File>, StoreError> {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = readers.get(&number) {
            return Ok(file.clone());
        }
        let file = File::open(path).map_err(|e| StoreError::TextFile {
            path: path.to_path_buf(),
            detail: if e.kind() == std::io::ErrorKind::NotFound {
                "missing: a stored version refers to an entry in it; restore the store from a backup"
                    .to_owned()
            } else {
                e.to_string()
            },
        })?;
        let file = Arc::new(file);
        readers.insert(number, file.clone());
        Ok(file)
    }

    /// Bytes in every pack.
    pub(crate) fn size_on_disk(&self) -> Result<u64, StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(file_error(&self.dir, e)),
        };
        let mut total = 0;
        for entry in entries.flatten() {
            if entry.file_name().to_str().and_then(pack_number).is_some() {
                total += entry.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        Ok(total)
    }
}

/// The number in a pack's file name.
fn pack_number(name: &str) -> Option<u32> {
    name.strip_prefix("pack-")?.parse().ok()
}

/// A key as the header's 32 bytes (the `texts` tree's keys are BLAKE3
/// hashes; anything else is cut or padded, and still compared exactly).
fn key_bytes(key: &[u8]) -> [u8; 32] {
    let mut bytes = [0; 32];
    let n = key.len().min(32);
    bytes[..n].copy_from_slice(&key[..n]);
    bytes
}

fn file_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::TextFile {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_across_reopen_and_inline_values_read_as_they_are() {
        let dir = tempfile::tempdir().expect("tempdir");
        let packs = Packs::open(dir.path().join("texts")).expect("open");
        let a = packs.write(&[1; 32], b"first text", true).expect("write");
        let b = packs.write(&[2; 32], b"second", true).expect("write");
        assert_eq!(packs.resolve(&[2; 32], &b).expect("read"), b"second");
        drop(packs);
        let packs = Packs::open(dir.path().join("texts")).expect("reopen");
        let c = packs.write(&[3; 32], b"third", true).expect("write");
        assert_eq!(packs.resolve(&[1; 32], &a).expect("read"), b"first text");
        assert_eq!(packs.resolve(&[3; 32], &c).expect("read"), b"third");
        // The reopened packs append to the same file, after what is there.
        assert_eq!(
            std::fs::read_dir(dir.path().join("texts"))
                .expect("dir")
                .count(),
            1
        );
        let inline = [0x28, 0xB5, 0x2F, 0xFD, 7];
        assert_eq!(packs.resolve(&[4; 32], &inline).expect("inline"), inline);
    }

    #[test]
    fn a_reference_under_the_wrong_key_or_to_a_missing_pack_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let packs = Packs::open(dir.path().join("texts")).expect("open");
        let a = packs.write(&[1; 32], b"text", true).expect("write");
        let wrong = packs.resolve(&[9; 32], &a).expect_err("wrong key");
        assert!(wrong.to_string().contains("pack-00000001"), "{wrong}");
        std::fs::remove_file(dir.path().join("texts/pack-00000001")).expect("remove");
        let packs = Packs::open(dir.path().join("texts")).expect("reopen");
        let missing = packs.resolve(&[1; 32], &a).expect_err("missing");
        let message = missing.to_string();
        assert!(
            message.contains("pack-00000001") && message.contains("missing"),
            "{message}"
        );
    }

    #[test]
    fn a_torn_append_is_skipped_by_the_next_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("texts");
        let packs = Packs::open(path.clone()).expect("open");
        let a = packs.write(&[1; 32], b"kept", true).expect("write");
        drop(packs);
        // Half an entry, as a kill during a write leaves it.
        let pack = path.join("pack-00000001");
        let mut bytes = std::fs::read(&pack).expect("read");
        bytes.extend_from_slice(&MAGIC[..]);
        bytes.extend_from_slice(&[5; 10]);
        std::fs::write(&pack, &bytes).expect("write");
        let packs = Packs::open(path).expect("reopen");
        let b = packs.write(&[2; 32], b"after", true).expect("write");
        assert_eq!(packs.resolve(&[1; 32], &a).expect("read"), b"kept");
        assert_eq!(packs.resolve(&[2; 32], &b).expect("read"), b"after");
    }
}
