//! The store's on-disk records: store-private types, each with a format
//! version (`"v"`), and their conversions to and from the domain types. A
//! record newer than this build is refused with a clear error, never
//! misread.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::*;
use crate::core::model::{Block, BlockKind};

pub(super) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // Serialising these plain records cannot fail: no maps with non-string
    // keys, no custom serialisers.
    serde_json::to_vec(record).unwrap_or_default()
}

/// The first bytes of a zstd frame. A record that starts with them is a
/// compressed JSON record; a plain one starts with `{`, so both read back
/// through [`decode`] and records written before compression still read.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// A record as zstd-compressed JSON: for the large ones (a change's diff and
/// assessment, a version's facts), which are JSON full of repeated keys and
/// quoted page text and shrink four- to eightfold.
pub(super) fn encode_compressed<T: Serialize>(record: &T) -> Vec<u8> {
    let json = encode(record);
    commit::compress(&json).unwrap_or(json)
}

pub(super) fn decode<T: for<'de> Deserialize<'de> + Versioned>(bytes: &[u8]) -> Result<T, String> {
    #[derive(Deserialize)]
    struct Header {
        v: u32,
    }
    let inflated;
    let bytes = if bytes.starts_with(&ZSTD_MAGIC) {
        inflated = zstd::stream::decode_all(bytes).map_err(|e| e.to_string())?;
        inflated.as_slice()
    } else {
        bytes
    };
    let header: Header = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if header.v > T::LATEST {
        return Err(format!(
            "record version {} is newer than this tidings reads ({})",
            header.v,
            T::LATEST
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// A persisted record type and the newest version of it this build writes.
pub(super) trait Versioned {
    const LATEST: u32;
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WatchRecord {
    pub(super) v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_check: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_success: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_change: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_error: Option<String>,
    #[serde(default)]
    pub(super) consecutive_failures: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) failure_alerted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) latest_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) suspect: Option<SuspectRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SuspectRecord {
    pub(super) hash: String,
    pub(super) reason: String,
    pub(super) since: DateTime<Utc>,
    /// Added without a version bump: a record without it was seen once.
    #[serde(default = "once")]
    pub(super) seen: u32,
}

fn once() -> u32 {
    1
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct FactsRecord {
    pub(super) v: u32,
    pub(super) facts_version: u32,
    pub(super) facts: serde_json::Value,
}

/// Version 2 is version 1 written zstd-compressed ([`encode_compressed`]).
impl Versioned for FactsRecord {
    const LATEST: u32 = 2;
}

impl Versioned for WatchRecord {
    const LATEST: u32 = 1;
}

impl From<&WatchState> for WatchRecord {
    fn from(state: &WatchState) -> Self {
        Self {
            v: 1,
            etag: state.etag.clone(),
            last_modified: state.last_modified.clone(),
            last_check: state.last_check,
            last_success: state.last_success,
            last_change: state.last_change,
            last_error: state.last_error.clone(),
            consecutive_failures: state.consecutive_failures,
            failure_alerted: state.failure_alerted,
            latest_version: state.latest_version,
            suspect: state.suspect.as_ref().map(|s| SuspectRecord {
                hash: s.hash.clone(),
                reason: s.reason.clone(),
                since: s.since,
                seen: s.seen,
            }),
        }
    }
}

impl From<WatchRecord> for WatchState {
    fn from(record: WatchRecord) -> Self {
        Self {
            etag: record.etag,
            last_modified: record.last_modified,
            last_check: record.last_check,
            last_success: record.last_success,
            last_change: record.last_change,
            last_error: record.last_error,
            consecutive_failures: record.consecutive_failures,
            failure_alerted: record.failure_alerted,
            latest_version: record.latest_version,
            suspect: record.suspect.map(|s| Suspect {
                hash: s.hash,
                reason: s.reason,
                since: s.since,
                seen: s.seen,
            }),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct VersionRecord {
    pub(super) v: u32,
    pub(super) seen_at: DateTime<Utc>,
    pub(super) hash: String,
    pub(super) text_bytes: u64,
    pub(super) blocks: u64,
    pub(super) extractor_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) changed_words: Option<u64>,
}

impl Versioned for VersionRecord {
    const LATEST: u32 = 1;
}

impl VersionRecord {
    pub(super) fn into_info(self, number: u64) -> VersionInfo {
        VersionInfo {
            number,
            seen_at: self.seen_at,
            hash: self.hash,
            text_bytes: self.text_bytes,
            blocks: self.blocks,
            extractor_version: self.extractor_version,
            changed_words: self.changed_words,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ChangeRecordV1 {
    pub(super) v: u32,
    pub(super) from_version: u64,
    pub(super) to_version: u64,
    pub(super) detected_at: DateTime<Utc>,
    pub(super) changed_words: u64,
    pub(super) detail: serde_json::Value,
}

/// Version 2 is version 1 written zstd-compressed ([`encode_compressed`]).
impl Versioned for ChangeRecordV1 {
    const LATEST: u32 = 2;
}

impl From<ChangeRecordV1> for ChangeRecord {
    fn from(record: ChangeRecordV1) -> Self {
        Self {
            from_version: record.from_version,
            to_version: record.to_version,
            detected_at: record.detected_at,
            changed_words: record.changed_words,
            detail: record.detail,
        }
    }
}

/// The blocks of a text record written by [`write_text_record`], read
/// without serde: `None` for anything else (another layout, a version
/// other than 1, bytes serde_json would refuse), which the caller reads
/// with serde_json as before, so what this returns is what that gives.
/// serde_json reads every byte of a string through its escape table and
/// was half the cost of reading an old text back; here each text is found
/// with a vectorised search for its closing quote, checked for control
/// characters and UTF-8 the same way, and copied whole. A text with an
/// escape in it is handed to serde_json alone.
pub(super) fn text_record_blocks(json: &[u8]) -> Option<Vec<Block>> {
    let mut rest = json.strip_prefix(br#"{"v":1,"blocks":["#)?;
    let mut blocks = Vec::new();
    if rest == b"]}" {
        return Some(blocks);
    }
    loop {
        rest = rest.strip_prefix(br#"{"k":"#)?;
        let (kind, after) = json_string(rest)?;
        let kind = block_kind(&kind).ok()?;
        rest = after.strip_prefix(br#","t":"#)?;
        let (text, after) = json_string(rest)?;
        blocks.push(Block::new(kind, text));
        rest = after.strip_prefix(b"}")?;
        match rest.strip_prefix(b",") {
            Some(after) => rest = after,
            None => return (rest == b"]}").then_some(blocks),
        }
    }
}

/// The JSON string at the start of `json` (from its opening quote), and
/// what follows it; `None` if serde_json would not read it either.
fn json_string(json: &[u8]) -> Option<(String, &[u8])> {
    let body = json.strip_prefix(b"\"")?;
    // The first quote, backslash or control character (which JSON must
    // escape), looked for 32 bytes at a time with a test the compiler
    // vectorises, as `write_json_str` does; a byte-at-a-time search cost
    // more than serde_json's.
    let special = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
    let mut at = 0;
    let first = loop {
        let chunk = body.get(at..(at + 32).min(body.len()))?;
        if chunk.is_empty() {
            return None;
        }
        if chunk.iter().fold(false, |seen, &b| seen | special(b)) {
            break at + chunk.iter().position(|&b| special(b))?;
        }
        at += chunk.len();
    };
    match body[first] {
        b'"' => {
            let text = std::str::from_utf8(&body[..first]).ok()?;
            Some((text.to_owned(), &body[first + 1..]))
        }
        b'\\' => {
            // An escape: find the closing quote past every escaped byte (`\"`
            // does not close the string; the hex digits of `\u` hold neither
            // a quote nor a backslash) and let serde_json read the string.
            let mut at = first;
            let close = loop {
                let found = at + memchr::memchr2(b'"', b'\\', &body[at..])?;
                if body[found] == b'"' {
                    break found;
                }
                at = found + 2;
                if at > body.len() {
                    return None;
                }
            };
            let text = serde_json::from_slice::<String>(&json[..close + 2]).ok()?;
            Some((text, &body[close + 1..]))
        }
        // A control character written as it is: serde_json refuses it.
        _ => None,
    }
}

/// A block kind as a text record names it.
fn kind_code(kind: BlockKind) -> std::borrow::Cow<'static, str> {
    const HEADINGS: [&str; 6] = ["h1", "h2", "h3", "h4", "h5", "h6"];
    match kind {
        BlockKind::Heading { level } => match HEADINGS.get(usize::from(level).wrapping_sub(1)) {
            Some(code) => (*code).into(),
            None => format!("h{level}").into(),
        },
        BlockKind::Paragraph => "p".into(),
        BlockKind::ListItem => "li".into(),
        BlockKind::TableRow => "tr".into(),
        BlockKind::Preformatted => "pre".into(),
        BlockKind::Named => "n".into(),
    }
}

/// A snapshot text as stored: compact field names, since there is one per
/// block of every distinct version. [`write_text_record`] writes it (the
/// same bytes, faster); serde writes it in tests, to check that.
#[cfg(test)]
#[derive(Debug, Serialize)]
pub(super) struct TextRecordRef<'a> {
    v: u32,
    blocks: Vec<BlockRecordRef<'a>>,
}

#[cfg(test)]
#[derive(Debug, Serialize)]
struct BlockRecordRef<'a> {
    /// `h1`..`h6`, `p`, `li`, `tr`, `pre` or `n`.
    k: std::borrow::Cow<'static, str>,
    t: &'a str,
}

#[cfg(test)]
impl<'a> TextRecordRef<'a> {
    pub(super) fn from_blocks(blocks: &'a [Block]) -> Self {
        Self {
            v: 1,
            blocks: blocks
                .iter()
                .map(|block| BlockRecordRef {
                    k: kind_code(block.kind),
                    t: &block.text,
                })
                .collect(),
        }
    }
}

/// Writes the JSON of `blocks` as a [`TextRecordRef`]: the same bytes as
/// `serde_json` writes for it (every stored text's hash is of those bytes),
/// written without it. serde_json reads every byte of a string through
/// its escape table; a block's text almost never holds a byte that needs
/// escaping, so each text is checked for one in blocks the compiler
/// vectorises and, when it holds none, copied whole. A text that does is
/// written by serde_json itself.
pub(super) fn write_text_record(
    out: &mut impl std::io::Write,
    blocks: &[Block],
) -> std::io::Result<()> {
    out.write_all(br#"{"v":1,"blocks":["#)?;
    for (i, block) in blocks.iter().enumerate() {
        out.write_all(if i == 0 { br#"{"k":"# } else { br#",{"k":"# })?;
        write_json_str(out, &kind_code(block.kind))?;
        out.write_all(br#","t":"#)?;
        write_json_str(out, &block.text)?;
        out.write_all(b"}")?;
    }
    out.write_all(b"]}")
}

/// `text` as a JSON string, exactly as serde_json writes it.
fn write_json_str(out: &mut impl std::io::Write, text: &str) -> std::io::Result<()> {
    let plain = text.as_bytes().chunks(32).all(|block| {
        !block.iter().fold(false, |seen, &b| {
            seen | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    });
    if plain {
        out.write_all(b"\"")?;
        out.write_all(text.as_bytes())?;
        out.write_all(b"\"")
    } else {
        serde_json::to_writer(out, text).map_err(std::io::Error::other)
    }
}

/// A stored text as read back: the kinds borrowed from the JSON (one
/// allocation fewer per block of every old text a check compares with).
#[derive(Debug, Deserialize)]
pub(super) struct TextRecordIn<'a> {
    v: u32,
    #[serde(borrow)]
    blocks: Vec<BlockRecordIn<'a>>,
}

#[derive(Debug, Deserialize)]
struct BlockRecordIn<'a> {
    #[serde(borrow)]
    k: std::borrow::Cow<'a, str>,
    t: String,
}

impl TextRecordIn<'_> {
    pub(super) fn into_blocks(self) -> Result<Vec<Block>, String> {
        if self.v > 1 {
            return Err(format!("text record version {} is too new", self.v));
        }
        self.blocks
            .into_iter()
            .map(|record| Ok(Block::new(block_kind(&record.k)?, record.t)))
            .collect()
    }
}

/// A block kind as a text record names it.
fn block_kind(k: &str) -> Result<BlockKind, String> {
    Ok(match k {
        "p" => BlockKind::Paragraph,
        "li" => BlockKind::ListItem,
        "tr" => BlockKind::TableRow,
        "pre" => BlockKind::Preformatted,
        "n" => BlockKind::Named,
        other => match other.strip_prefix('h').and_then(|l| l.parse::<u8>().ok()) {
            Some(level) => BlockKind::Heading { level },
            None => return Err(format!("unknown block kind `{other}`")),
        },
    })
}
