//! Committing new versions: one at a time ([`Store::commit_version`]), or
//! a batch of them in one pack append, one sync and one transaction
//! ([`Store::commit_batch`]).
//!
//! Why batches: sled 0.34 seals and writes its log at every transaction's
//! commit, and each commit's pack entries cost an `fdatasync`. On a first
//! pass over a thousand pages that was a log write, a `sync_file_range`
//! and a pack sync per page, about a fifth of the pass's CPU with the
//! compression. The pipeline prepares each version on the thread that read
//! the page ([`Store::prepare_version`]: the text's JSON, its hash, the
//! compression, the records) and hands it to one committer, which commits
//! whatever has queued up together.
//!
//! The crash rules are the single commit's, for the whole batch: every
//! text and change record of the batch is appended to the pack and synced
//! before the one transaction that refers to them runs, so a kill between
//! the two leaves only unreferenced entries (dead bytes); the transaction
//! writes every version of the batch or none.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::kv::{self, Tree, TxError};
use super::records::*;
use super::{
    COMMIT_ATTEMPTS, NewVersion, Notify, Store, StoreError, WatchState, ZSTD_LEVEL, outbox,
    text_json, version_key,
};

/// A new version made ready to commit: everything that costs CPU (the
/// text's JSON and hash, the compression, the records) done, so that the
/// commit itself is the pack append and the transaction. Made by
/// [`Store::prepare_version`], committed by [`Store::commit_batch`].
#[derive(Debug)]
pub struct PreparedVersion {
    watch: String,
    /// The latest version when it was prepared: the new one is the next.
    previous: Option<u64>,
    hash: blake3::Hash,
    /// The zstd-compressed text record.
    text: Vec<u8>,
    facts: Option<Vec<u8>>,
    /// The encoded `VersionRecord` (it does not depend on the number).
    version: Vec<u8>,
    /// The compressed change record, if the version came with a change,
    /// numbered after `previous`. Written only when there is a previous
    /// version (a watch's first version has no change record).
    change: Option<Vec<u8>>,
    seen_at: DateTime<Utc>,
    notify: Option<Notify>,
    /// Outbox row ids, one per recipient.
    ids: Vec<u64>,
    /// The watch's new state, `latest_version` set at commit.
    state: WatchState,
}

impl PreparedVersion {
    /// The number the version will have, unless another writer commits a
    /// version of the same watch first (then it takes the next one).
    pub fn number(&self) -> u64 {
        self.previous.map_or(1, |n| n + 1)
    }

    /// The watch it is a version of.
    pub fn watch(&self) -> &str {
        &self.watch
    }

    /// Makes it the version after `found`, the latest version another
    /// writer committed meanwhile: the change record names the versions it
    /// leads from and to, so it is written again.
    fn rebase(&mut self, found: Option<u64>, path: &std::path::Path) -> Result<(), StoreError> {
        self.previous = found;
        let Some(change) = &self.change else {
            return Ok(());
        };
        let mut record: ChangeRecordV1 = decode(change).map_err(|reason| StoreError::Corrupt {
            path: path.to_path_buf(),
            what: "change",
            reason,
        })?;
        record.from_version = found.unwrap_or(0);
        record.to_version = record.from_version + 1;
        self.change = Some(encode_compressed(&record));
        Ok(())
    }

    /// The change record to write, if any.
    fn change_record(&self) -> Option<&[u8]> {
        self.previous.and(self.change.as_deref())
    }
}

/// What a version's transaction writes for its text and its change
/// record: pack references on sled, the values themselves on PostgreSQL.
pub(super) type StagedValues = (Vec<u8>, Option<Vec<u8>>);

/// A change record as written, borrowing its detail (the change's diff
/// and assessment, the largest part) rather than copying it.
#[derive(Serialize)]
struct ChangeRecordRef<'a> {
    v: u32,
    from_version: u64,
    to_version: u64,
    detected_at: DateTime<Utc>,
    changed_words: u64,
    detail: &'a serde_json::value::RawValue,
}

/// The shortest match zstd looks for: level 1 takes 6 for inputs of a
/// page text's size. Texts and records are JSON of prose, where 7 costs
/// fewer sequences to find and encode and compresses as well: on the
/// benchmark's 1,000 first-cycle texts (60 KB each) −6 % of zstd's
/// instructions, 0.1 % fewer bytes.
const ZSTD_MIN_MATCH: u32 = 7;
/// The match finder's hash table, 2^14 entries (64 KB): level 1 takes 2^13
/// for a page text's size. Fewer collisions, a little less work and a
/// little smaller output; it is made once per thread, not per call.
const ZSTD_HASH_LOG: u32 = 14;

thread_local! {
    /// One compression context per thread that compresses (the pipeline's
    /// CPU threads, the committer): made per call, a context allocated and
    /// cleared its tables every time, about 4 % of zstd's instructions.
    /// It holds well under a megabyte, and the threads that compress are
    /// few and fixed.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn compressor() -> std::io::Result<zstd::bulk::Compressor<'static>> {
    use zstd::zstd_safe::CParameter;
    let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
    compressor.set_parameter(CParameter::MinMatch(ZSTD_MIN_MATCH))?;
    compressor.set_parameter(CParameter::HashLog(ZSTD_HASH_LOG))?;
    Ok(compressor)
}

/// `bytes` compressed at [`ZSTD_LEVEL`], with [`ZSTD_MIN_MATCH`] and
/// [`ZSTD_HASH_LOG`], as one zstd frame that records its size. Only the
/// compressed bytes depend on these settings: any zstd reader, this
/// build's or an older one, reads back the same bytes.
pub(super) fn compress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(compressor) => compressor,
            None => slot.insert(compressor()?),
        };
        compressor.compress(bytes)
    })
}

impl Store {
    /// Commits a new version, its change record and the watch's new state in
    /// one transaction, and returns the version number. `state.latest_version`
    /// is set here; the caller's value is ignored.
    pub fn commit_version(
        &self,
        watch: &str,
        version: &NewVersion<'_>,
        state: &WatchState,
    ) -> Result<u64, StoreError> {
        let prepared = self.prepare_version(watch, version, state)?;
        let numbers = self.commit_batch(vec![prepared])?;
        numbers.first().copied().ok_or_else(|| {
            self.corrupt(
                "watch",
                format!("`{watch}`: the commit returned no version"),
            )
        })
    }

    /// Does the CPU work of committing `version` (see [`PreparedVersion`])
    /// without writing anything but outbox row ids. The version is numbered
    /// after the watch's latest one as the store holds it now.
    pub fn prepare_version(
        &self,
        watch: &str,
        version: &NewVersion<'_>,
        state: &WatchState,
    ) -> Result<PreparedVersion, StoreError> {
        let text_json = text_json(version.blocks);
        let hash = blake3::hash(&text_json);
        let facts = version.facts.as_ref().map(|(facts_version, facts)| {
            encode_compressed(&FactsRecord {
                v: 2,
                facts_version: *facts_version,
                facts: facts.clone(),
            })
        });
        let text = compress(&text_json)
            .map_err(|e| self.corrupt("text", format!("compression failed: {e}")))?;
        drop(text_json);
        let text_bytes: u64 = version
            .blocks
            .iter()
            .map(|block| block.rendered_len() as u64 + 2)
            .sum();
        let record = VersionRecord {
            v: 1,
            seen_at: version.seen_at,
            hash: hash.to_hex().to_string(),
            text_bytes,
            blocks: version.blocks.len() as u64,
            extractor_version: version.extractor_version,
            changed_words: version.change.as_ref().map(|c| c.changed_words),
        };

        // Row ids come from the store's counter outside the transaction: a
        // retried transaction reuses them, and a crash merely skips some.
        let notify = version.change.as_ref().and(version.notify.as_ref());
        let ids = match notify {
            Some(notify) => notify
                .recipients
                .iter()
                .map(|_| self.kv.generate_id())
                .collect::<Result<Vec<u64>, _>>()?,
            None => Vec::new(),
        };

        // The change record names the version it leads to, and on sled it
        // is written to a pack before the transaction, so the number is
        // read here and checked inside: if another writer got in between
        // (it cannot on sled, where one process holds the store), the
        // staged entries are left as dead bytes and staged again.
        let previous = self.watch_state(watch)?.latest_version;
        let change = version.change.as_ref().map(|change| {
            let from_version = previous.unwrap_or(0);
            // Version 2: version 1 compressed.
            encode_compressed(&ChangeRecordRef {
                v: 2,
                from_version,
                to_version: from_version + 1,
                detected_at: version.seen_at,
                changed_words: change.changed_words,
                detail: &change.detail,
            })
        });
        Ok(PreparedVersion {
            watch: watch.to_owned(),
            previous,
            hash,
            text,
            facts,
            version: encode(&record),
            change,
            seen_at: version.seen_at,
            notify: notify.cloned(),
            ids,
            state: state.clone(),
        })
    }

    /// Commits prepared versions together and returns their numbers, in
    /// order. On sled: one pack append and sync for all their texts and
    /// change records, then one transaction writing every version, change
    /// record, outbox row and watch state, so the batch is committed whole
    /// or not at all. A version whose watch moved on meanwhile (another
    /// writer) is left out of that transaction and committed after it as
    /// the next version. On PostgreSQL each version is its own
    /// transaction, as before batches: nodes share the database, and a
    /// serialization failure retries one version rather than a batch.
    pub fn commit_batch(&self, mut batch: Vec<PreparedVersion>) -> Result<Vec<u64>, StoreError> {
        if self.is_shared() && batch.len() > 1 {
            let mut numbers = Vec::with_capacity(batch.len());
            for prepared in batch {
                numbers.extend(self.commit_batch(vec![prepared])?);
            }
            return Ok(numbers);
        }
        let mut numbers: Vec<Option<u64>> = vec![None; batch.len()];
        for _ in 0..COMMIT_ATTEMPTS {
            let pending: Vec<usize> = (0..batch.len()).filter(|&i| numbers[i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            let values = self.stage_batch(&batch, &pending)?;
            let outcome = self.commit_staged(&batch, &pending, &values)?;
            for (&i, result) in pending.iter().zip(outcome) {
                match result {
                    Ok(number) => numbers[i] = Some(number),
                    Err(found) => batch[i].rebase(found, &self.path)?,
                }
            }
        }
        numbers
            .into_iter()
            .zip(&batch)
            .map(|(number, prepared)| {
                number.ok_or_else(|| {
                    self.corrupt(
                        "watch",
                        format!(
                            "`{}` kept changing while a new version was committed",
                            prepared.watch
                        ),
                    )
                })
            })
            .collect()
    }

    /// The first half of a batch's commit: its texts and change records
    /// appended to a pack and synced (on sled; on PostgreSQL the values
    /// themselves). Returns, per pending item, the values to write for its
    /// text and its change record.
    pub(super) fn stage_batch(
        &self,
        batch: &[PreparedVersion],
        pending: &[usize],
    ) -> Result<Vec<StagedValues>, StoreError> {
        let keys: Vec<Vec<u8>> = pending
            .iter()
            .map(|&i| version_key(&batch[i].watch, batch[i].number()))
            .collect();
        // Two pages of one batch with the same text: it is written once.
        let mut first_of: HashMap<&[u8; 32], usize> = HashMap::new();
        let mut staged = Vec::with_capacity(pending.len() * 2);
        // Per pending item: where its text's and change's values are.
        let mut slots = Vec::with_capacity(pending.len());
        for (&i, key) in pending.iter().zip(&keys) {
            let prepared = &batch[i];
            let text_slot = match first_of.get(prepared.hash.as_bytes()) {
                Some(&slot) => slot,
                None => {
                    staged.push(kv::Staged {
                        tree: Tree::Texts,
                        key: prepared.hash.as_bytes(),
                        value: &prepared.text,
                    });
                    first_of.insert(prepared.hash.as_bytes(), staged.len() - 1);
                    staged.len() - 1
                }
            };
            let change_slot = prepared.change_record().map(|record| {
                staged.push(kv::Staged {
                    tree: Tree::Changes,
                    key,
                    value: record,
                });
                staged.len() - 1
            });
            slots.push((text_slot, change_slot));
        }
        // On sled the texts and change records are written to a pack and
        // synced here, before the transaction that refers to them (which
        // may run more than once).
        let values = self.kv.stage(&staged)?;
        Ok(slots
            .into_iter()
            .map(|(text, change)| {
                (
                    values.get(text).cloned().unwrap_or_default(),
                    change.map(|slot| values.get(slot).cloned().unwrap_or_default()),
                )
            })
            .collect())
    }

    /// The second half: one transaction over every pending item whose
    /// watch is still at the version it was prepared after. Returns, per
    /// pending item, its number or the latest version found instead.
    pub(super) fn commit_staged(
        &self,
        batch: &[PreparedVersion],
        pending: &[usize],
        values: &[StagedValues],
    ) -> Result<Vec<Result<u64, Option<u64>>>, StoreError> {
        let _gate = self.transaction_gate();
        self.kv.transaction("watch", |tx| {
            let mut results = Vec::with_capacity(pending.len());
            for (&i, (text_value, change_value)) in pending.iter().zip(values) {
                let prepared = &batch[i];
                let watch = prepared.watch.as_bytes();
                let found = match tx.get(Tree::Watches, watch)? {
                    Some(bytes) => {
                        decode::<WatchRecord>(&bytes)
                            .map_err(TxError::Abort)?
                            .latest_version
                    }
                    None => None,
                };
                if found != prepared.previous {
                    results.push(Err(found));
                    continue;
                }
                let number = prepared.number();
                let key = version_key(&prepared.watch, number);
                let hash = prepared.hash.as_bytes();
                if tx.get(Tree::Texts, hash)?.is_none() {
                    tx.insert(Tree::Texts, hash, text_value)?;
                }
                if let Some(facts) = &prepared.facts {
                    tx.insert(Tree::Facts, hash, facts)?;
                }
                tx.insert(Tree::Versions, &key, &prepared.version)?;
                if let Some(change_value) = change_value {
                    tx.insert(Tree::Changes, &key, change_value)?;
                    if let Some(notify) = &prepared.notify {
                        outbox::queue(
                            tx,
                            &prepared.watch,
                            number,
                            prepared.seen_at,
                            notify,
                            &prepared.ids,
                        )?;
                    }
                }
                let mut record = WatchRecord::from(&prepared.state);
                record.latest_version = Some(number);
                tx.insert(Tree::Watches, watch, &encode(&record))?;
                results.push(Ok(number));
            }
            Ok(results)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{Block, BlockKind};
    use crate::store::NewChange;
    use crate::store::tests::blocks;
    use std::path::Path;

    fn version(text: &[Block], change: Option<NewChange>) -> NewVersion<'_> {
        NewVersion {
            seen_at: Utc::now(),
            blocks: text,
            extractor_version: 1,
            change,
            facts: None,
            notify: None,
        }
    }

    /// The thread's one context, reused from text to text with its tables
    /// left from the last one, gives frames that read back to the very
    /// bytes through both of the store's readers, each recording its size;
    /// and the output is the same as a fresh context's with the same
    /// settings, so nothing depends on what the thread compressed before.
    #[test]
    fn a_reused_context_writes_frames_that_read_back_the_same() {
        let texts: Vec<Vec<u8>> = (0..40u32)
            .map(|i| {
                let words = ["Glenborough", "council", "report", "2,659", "people"];
                let mut text = String::from(r#"{"v":1,"blocks":["#);
                for j in 0..(i * 37 % 500 + 1) {
                    text.push_str(r#"{"k":"p","t":""#);
                    for k in 0..(j % 11 + i % 5) {
                        text.push_str(words[((i + j + k) % 5) as usize]);
                        text.push(' ');
                    }
                    text.push_str(r#""},"#);
                }
                text.push_str("]}");
                text.into_bytes()
            })
            .chain([Vec::new(), b"{}".to_vec()])
            .collect();
        for text in &texts {
            let frame = compress(text).expect("compress");
            assert_eq!(
                zstd::zstd_safe::get_frame_content_size(&frame).ok(),
                Some(Some(text.len() as u64))
            );
            assert_eq!(&super::super::decompress(&frame).expect("bulk"), text);
            assert_eq!(&zstd::stream::decode_all(&frame[..]).expect("stream"), text);
            let fresh = compressor()
                .expect("context")
                .compress(text)
                .expect("fresh");
            assert_eq!(frame, fresh);
        }
    }

    fn change(words: &str) -> Option<NewChange> {
        Some(NewChange {
            changed_words: 1,
            detail: serde_json::value::to_raw_value(&serde_json::json!({ "added": [words] }))
                .expect("json"),
        })
    }

    fn prepare(
        store: &Store,
        watch: &str,
        text: &[Block],
        change: Option<NewChange>,
    ) -> PreparedVersion {
        store
            .prepare_version(watch, &version(text, change), &WatchState::default())
            .expect("prepare")
    }

    fn latest_text(store: &Store, watch: &str) -> Option<Vec<Block>> {
        store.latest(watch).expect("latest").map(|(_, text)| text)
    }

    #[test]
    fn the_text_record_is_written_as_its_serialised_record() {
        // The JSON's hash is the text's address: the bytes must be the
        // record's, whatever the blocks hold.
        let text = vec![
            Block::new(BlockKind::Heading { level: 1 }, "Cumbria \"ICS\""),
            Block::new(BlockKind::Heading { level: 6 }, "back\\slash\ttab\nline"),
            Block::new(BlockKind::Heading { level: 0 }, "level zero"),
            Block::new(BlockKind::Heading { level: 9 }, "level nine"),
            Block::new(BlockKind::Paragraph, "Caf\u{e9} \u{2014} \u{1f600} \u{7f}"),
            Block::new(BlockKind::ListItem, ""),
            Block::new(BlockKind::TableRow, "a | b"),
            Block::new(BlockKind::Preformatted, "  code\n  more"),
            Block::new(BlockKind::Named, "chair: Jo Bloggs </script>"),
            // Bytes to escape at either end of the 32-byte blocks the
            // writer checks, and every control character.
            Block::new(
                BlockKind::Paragraph,
                format!("{}\"{}\\{}", "a".repeat(31), "b".repeat(31), "c".repeat(33)),
            ),
            Block::new(
                BlockKind::Paragraph,
                (0u8..0x20).map(char::from).collect::<String>(),
            ),
            Block::new(BlockKind::Paragraph, format!("{}\u{1f}", "x".repeat(64))),
            Block::new(BlockKind::Paragraph, "\u{2028}\u{2029}\u{fffd}\u{80}"),
        ];
        for blocks in [&text[..], &[][..]] {
            let expected = serde_json::to_vec(&TextRecordRef::from_blocks(blocks)).expect("json");
            assert_eq!(
                String::from_utf8(text_json(blocks)).expect("utf-8"),
                String::from_utf8(expected).expect("utf-8")
            );
        }
        for block in &text {
            assert_eq!(block.rendered_len(), block.render().len(), "{block:?}");
        }
    }

    #[test]
    fn a_batch_commits_every_version_and_each_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let first = blocks(&["Carlisle"]);
        assert_eq!(
            store
                .commit_version("c", &version(&first, None), &WatchState::default())
                .expect("commit"),
            1
        );
        let shared = blocks(&["Eden", "Allerdale"]);
        let changed = blocks(&["Penrith"]);
        let batch = vec![
            prepare(&store, "a", &shared, None),
            prepare(&store, "b", &shared, None),
            prepare(&store, "c", &changed, change("Penrith")),
        ];
        assert_eq!(store.commit_batch(batch).expect("batch"), [1, 1, 2]);
        assert_eq!(latest_text(&store, "a"), Some(shared.clone()));
        assert_eq!(latest_text(&store, "b"), Some(shared));
        assert_eq!(latest_text(&store, "c"), Some(changed));
        let record = store.change("c", 2).expect("read").expect("a change");
        assert_eq!((record.from_version, record.to_version), (1, 2));
        assert_eq!(record.detail["added"][0], "Penrith");
        // The shared text is stored once; three texts in all.
        assert_eq!(store.stats().expect("stats").texts, 3);
        assert_eq!(
            store.watch_state("c").expect("state").latest_version,
            Some(2)
        );
    }

    #[test]
    fn a_version_whose_watch_moved_on_is_committed_as_the_next_one() {
        let store = Store::temporary().expect("store");
        let one = blocks(&["one"]);
        store
            .commit_version("w", &version(&one, None), &WatchState::default())
            .expect("commit");
        // Prepared after version 1...
        let three = blocks(&["three"]);
        let late = prepare(&store, "w", &three, change("three"));
        assert_eq!(late.number(), 2);
        // ...but another writer stores version 2 before the batch commits.
        let two = blocks(&["two"]);
        store
            .commit_version("w", &version(&two, change("two")), &WatchState::default())
            .expect("commit");
        let other = prepare(&store, "x", &one, None);
        assert_eq!(
            store.commit_batch(vec![late, other]).expect("batch"),
            [3, 1]
        );
        let record = store.change("w", 3).expect("read").expect("a change");
        assert_eq!((record.from_version, record.to_version), (2, 3));
        assert_eq!(record.detail["added"][0], "three");
        assert_eq!(
            store.change("w", 2).expect("read").expect("some").detail["added"][0],
            "two"
        );
        assert_eq!(latest_text(&store, "w"), Some(three));
        assert_eq!(latest_text(&store, "x"), Some(one));
    }

    /// The pack files of a store in `dir`, and their total size.
    fn pack_bytes(dir: &Path) -> u64 {
        match std::fs::read_dir(dir.join("store.sled").join("texts")) {
            Ok(entries) => entries
                .map(|e| e.expect("entry").metadata().expect("metadata").len())
                .sum(),
            Err(_) => 0,
        }
    }

    #[test]
    fn a_batch_killed_between_its_pack_append_and_its_transaction_leaves_nothing_visible() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kept = blocks(&["Kept from before"]);
        let texts = [
            blocks(&["Carlisle"]),
            blocks(&["Eden"]),
            blocks(&["Penrith"]),
        ];
        {
            let store = Store::open(dir.path()).expect("open");
            store
                .commit_version("c", &version(&kept, None), &WatchState::default())
                .expect("commit");
            store.flush().expect("flush");
            let before = pack_bytes(dir.path());
            let batch = vec![
                prepare(&store, "a", &texts[0], None),
                prepare(&store, "b", &texts[1], None),
                prepare(&store, "c", &texts[2], change("Penrith")),
            ];
            // The first half of the batch's commit: its texts and change
            // record appended to the pack and synced. The process dies
            // before the transaction.
            let values = store.stage_batch(&batch, &[0, 1, 2]).expect("stage");
            assert_eq!(values.len(), 3);
            assert!(pack_bytes(dir.path()) > before, "the entries were appended");
            store.flush().expect("flush");
        }
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.history("a").expect("history"), []);
        assert_eq!(store.history("b").expect("history"), []);
        assert_eq!(store.history("c").expect("history").len(), 1);
        assert_eq!(latest_text(&store, "c"), Some(kept));
        assert!(store.change("c", 2).expect("read").is_none());
        assert_eq!(store.stats().expect("stats").texts, 1);
        // The same batch, prepared again, commits after the dead bytes.
        let batch = vec![
            prepare(&store, "a", &texts[0], None),
            prepare(&store, "b", &texts[1], None),
            prepare(&store, "c", &texts[2], change("Penrith")),
        ];
        assert_eq!(store.commit_batch(batch).expect("batch"), [1, 1, 2]);
        assert_eq!(latest_text(&store, "b"), Some(texts[1].clone()));
        assert_eq!(
            store
                .change("c", 2)
                .expect("read")
                .expect("some")
                .from_version,
            1
        );
    }

    #[test]
    fn a_batch_that_cannot_be_written_commits_none_of_its_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let state = WatchState {
            last_error: Some("timed out".to_owned()),
            ..WatchState::default()
        };
        store.record_check("c", &state).expect("record");
        // Where the packs go is taken by a file: no entry can be appended.
        let packs = dir.path().join("store.sled").join("texts");
        std::fs::write(&packs, b"in the way").expect("write");
        let texts = [blocks(&["Carlisle"]), blocks(&["Eden"])];
        let batch = vec![
            prepare(&store, "a", &texts[0], None),
            prepare(&store, "c", &texts[1], None),
        ];
        let error = store.commit_batch(batch).expect_err("no pack to append to");
        assert!(matches!(error, StoreError::TextFile { .. }), "{error}");
        assert_eq!(store.history("a").expect("history"), []);
        assert_eq!(store.history("c").expect("history"), []);
        assert_eq!(
            store.watch_state("a").expect("state"),
            WatchState::default()
        );
        assert_eq!(store.watch_state("c").expect("state"), state);
        assert_eq!(store.kv.len(Tree::Texts).expect("count"), 0);
        // Once the packs can be written, the same versions commit.
        std::fs::remove_file(&packs).expect("remove");
        let batch = vec![
            prepare(&store, "a", &texts[0], None),
            prepare(&store, "c", &texts[1], None),
        ];
        assert_eq!(store.commit_batch(batch).expect("batch"), [1, 1]);
        assert_eq!(latest_text(&store, "c"), Some(texts[1].clone()));
    }
}
