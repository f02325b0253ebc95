//! Scores [`crate::core::extract`] against published extraction benchmarks.
//!
//! The data lives outside the repository (`../shared/eval/extraction/`, see
//! its README): this module only reads it from a directory it is given and
//! never bundles or copies it. Everything here is synchronous and, apart from
//! reading the files, pure: the `tidings eval-extract` subcommand and the
//! tests call it, nothing in the watch pipeline does.
//!
//! Three sets are understood:
//! - `aeb/` (Zyte's article-extraction-benchmark): `<id>.html` and the
//!   human-labelled body `<id>.txt`, scored with that benchmark's shingle F1
//!   ([`shingle_match`]).
//! - `readability/` (Mozilla Readability's test pages): the same F1 against
//!   `<id>.txt`, Readability's accepted output; a regression oracle only.
//! - `trafilatura/`: `<id>.with.txt` snippets that must appear and
//!   `<id>.without.txt` snippets that must not.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::core::extract::{self, ExtractError, Rules};

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The directory does not exist or is not a directory.
    #[error("evaluation directory {} not found (point it at the shared eval data, e.g. ../shared/eval/extraction/aeb)", path.display())]
    MissingDir {
        /// The directory asked for.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The directory holds no page with its expected output.
    #[error("no scorable pages in {}", path.display())]
    NoPages {
        /// The directory asked for.
        path: PathBuf,
    },
    /// Extraction failed on a page (only possible with `select` rules).
    #[error("extraction failed on {}: {source}", path.display())]
    Extract {
        /// The page at fault.
        path: PathBuf,
        /// What the extractor said.
        source: ExtractError,
    },
}

/// One page's shingle scores.
#[derive(Clone, Debug, Serialize)]
pub struct PageScore {
    /// The page id (file stem).
    pub id: String,
    /// Share of extracted shingles that are in the expected text.
    pub precision: f64,
    /// Share of expected shingles that were extracted.
    pub recall: f64,
}

/// Shingle F1 over a set of pages, the way the article-extraction-benchmark
/// computes it: precision and recall averaged over pages, F1 from the averages.
#[derive(Clone, Debug, Serialize)]
pub struct AebReport {
    /// Which set was scored (`aeb`, `readability`).
    pub set: String,
    /// Pages scored.
    pub pages: usize,
    /// Mean per-page precision.
    pub precision: f64,
    /// Mean per-page recall.
    pub recall: f64,
    /// Harmonic mean of `precision` and `recall`.
    pub f1: f64,
    /// Bytes of HTML extracted.
    pub html_bytes: u64,
    /// Time spent in [`extract::extract`], reading files excluded.
    pub extract_seconds: f64,
    /// Per-page scores, worst F1 first, for debugging.
    pub per_page: Vec<PageScore>,
}

/// One page's snippet misses, for debugging.
#[derive(Clone, Debug, Serialize)]
pub struct SnippetMisses {
    /// The page id (file stem).
    pub id: String,
    /// Snippets that should have appeared and did not.
    pub missing: Vec<String>,
    /// Snippets that should not have appeared and did.
    pub leaked: Vec<String>,
}

/// Snippet checks over the trafilatura set.
#[derive(Clone, Debug, Serialize)]
pub struct SnippetReport {
    /// Pages scored.
    pub pages: usize,
    /// "With" snippets found.
    pub with_found: usize,
    /// "With" snippets in total.
    pub with_total: usize,
    /// "Without" snippets correctly absent.
    pub without_absent: usize,
    /// "Without" snippets in total.
    pub without_total: usize,
    /// `with_found / with_total`.
    pub recall: f64,
    /// trafilatura's precision: true positives over true plus false
    /// positives, where a leaked "without" snippet is a false positive.
    pub precision: f64,
    /// `without_absent / without_total`.
    pub rejection: f64,
    /// Harmonic mean of `precision` and `recall`.
    pub f1: f64,
    /// Pages with at least one miss.
    pub misses: Vec<SnippetMisses>,
}

/// Extraction speed against the floor of parsing alone.
#[derive(Clone, Debug, Serialize)]
pub struct ThroughputReport {
    /// Pages processed.
    pub pages: usize,
    /// Bytes of HTML.
    pub html_bytes: u64,
    /// Seconds for [`extract::extract`] over all pages.
    pub extract_seconds: f64,
    /// Seconds for a bare `scraper::Html::parse_document` over all pages.
    pub parse_seconds: f64,
}

impl ThroughputReport {
    /// Extraction throughput in MB/s (10^6 bytes).
    pub fn extract_mb_per_s(&self) -> f64 {
        mb_per_s(self.html_bytes, self.extract_seconds)
    }

    /// Parse-only throughput in MB/s.
    pub fn parse_mb_per_s(&self) -> f64 {
        mb_per_s(self.html_bytes, self.parse_seconds)
    }
}

fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / 1e6 / seconds
    } else {
        0.0
    }
}

/// Scores the `aeb/` set (`<id>.html` + `<id>.txt`) with default rules.
pub fn score_aeb(dir: &Path) -> Result<AebReport, EvalError> {
    score_shingles(dir, "aeb")
}

/// Scores the `readability/` set against Readability's accepted output.
/// A regression oracle, not a human label: it keeps captions and some
/// in-article boilerplate that tidings drops.
pub fn score_readability(dir: &Path) -> Result<AebReport, EvalError> {
    score_shingles(dir, "readability")
}

fn score_shingles(dir: &Path, set: &str) -> Result<AebReport, EvalError> {
    let rules = Rules::default();
    let pages = list_pages(dir)?;
    let mut scores = Vec::new();
    let mut html_bytes = 0u64;
    let mut elapsed = Duration::ZERO;
    for (id, html_path) in pages {
        let expected_path = dir.join(format!("{id}.txt"));
        if !expected_path.is_file() {
            continue;
        }
        let html = read_html(&html_path)?;
        let expected = read_text(&expected_path)?;
        html_bytes += html.len() as u64;
        let start = Instant::now();
        let extracted = extract::extract(&html, &rules).map_err(|source| EvalError::Extract {
            path: html_path.clone(),
            source,
        })?;
        elapsed += start.elapsed();
        let predicted = join_blocks(&extracted);
        scores.push((id, shingle_match(&expected, &predicted)));
    }
    if scores.is_empty() {
        return Err(EvalError::NoPages {
            path: dir.to_path_buf(),
        });
    }
    let (precision, recall) = mean_precision_recall(scores.iter().map(|(_, m)| *m));
    let mut per_page: Vec<PageScore> = scores
        .into_iter()
        .map(|(id, m)| PageScore {
            id,
            precision: m.precision(),
            recall: m.recall(),
        })
        .collect();
    per_page.sort_by(|a, b| f1(a.precision, a.recall).total_cmp(&f1(b.precision, b.recall)));
    Ok(AebReport {
        set: set.to_owned(),
        pages: per_page.len(),
        precision,
        recall,
        f1: f1(precision, recall),
        html_bytes,
        extract_seconds: elapsed.as_secs_f64(),
        per_page,
    })
}

/// Scores the `trafilatura/` set's snippet checks with default rules.
///
/// Snippets and extracted text are compared after whitespace normalisation,
/// case-sensitively, as trafilatura's own evaluation does (`snippet in text`).
pub fn score_trafilatura(dir: &Path) -> Result<SnippetReport, EvalError> {
    let rules = Rules::default();
    let pages = list_pages(dir)?;
    let mut report = SnippetReport {
        pages: 0,
        with_found: 0,
        with_total: 0,
        without_absent: 0,
        without_total: 0,
        recall: 0.0,
        precision: 0.0,
        rejection: 0.0,
        f1: 0.0,
        misses: Vec::new(),
    };
    for (id, html_path) in pages {
        let with_path = dir.join(format!("{id}.with.txt"));
        let without_path = dir.join(format!("{id}.without.txt"));
        if !with_path.is_file() && !without_path.is_file() {
            continue;
        }
        let with = read_snippets(&with_path)?;
        let without = read_snippets(&without_path)?;
        let html = read_html(&html_path)?;
        let extracted = extract::extract(&html, &rules).map_err(|source| EvalError::Extract {
            path: html_path.clone(),
            source,
        })?;
        let text = normalise_ws(&join_blocks(&extracted));
        let missing: Vec<String> = with
            .iter()
            .filter(|s| !text.contains(s.as_str()))
            .cloned()
            .collect();
        let leaked: Vec<String> = without
            .iter()
            .filter(|s| text.contains(s.as_str()))
            .cloned()
            .collect();
        report.pages += 1;
        report.with_total += with.len();
        report.with_found += with.len() - missing.len();
        report.without_total += without.len();
        report.without_absent += without.len() - leaked.len();
        if !missing.is_empty() || !leaked.is_empty() {
            report.misses.push(SnippetMisses {
                id,
                missing,
                leaked,
            });
        }
    }
    if report.pages == 0 {
        return Err(EvalError::NoPages {
            path: dir.to_path_buf(),
        });
    }
    let leaked = report.without_total - report.without_absent;
    report.recall = ratio(report.with_found, report.with_total);
    report.precision = ratio(report.with_found, report.with_found + leaked);
    report.rejection = ratio(report.without_absent, report.without_total);
    report.f1 = f1(report.precision, report.recall);
    Ok(report)
}

/// Times extraction and a bare parse over every `*.html` page in `dir`.
pub fn throughput(dir: &Path) -> Result<ThroughputReport, EvalError> {
    let rules = Rules::default();
    let pages = list_pages(dir)?;
    let mut htmls = Vec::with_capacity(pages.len());
    for (_, path) in &pages {
        htmls.push(read_html(path)?);
    }
    let html_bytes = htmls.iter().map(|h| h.len() as u64).sum();
    let start = Instant::now();
    for html in &htmls {
        std::hint::black_box(scraper::Html::parse_document(html));
    }
    let parse_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for html in &htmls {
        // Errors only come from `select` rules, which defaults do not have.
        let _ = std::hint::black_box(extract::extract(html, &rules));
    }
    let extract_seconds = start.elapsed().as_secs_f64();
    Ok(ThroughputReport {
        pages: htmls.len(),
        html_bytes,
        extract_seconds,
        parse_seconds,
    })
}

/// A page's shingle counts, normalised to sum to 1 so that long pages do not
/// outweigh short ones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShingleMatch {
    /// Shingles both expected and extracted.
    pub tp: f64,
    /// Shingles extracted but not expected.
    pub fp: f64,
    /// Shingles expected but not extracted.
    pub fn_: f64,
}

impl ShingleMatch {
    /// The benchmark's per-page precision (1 for two empty texts).
    pub fn precision(&self) -> f64 {
        if self.fp == 0.0 && self.fn_ == 0.0 {
            1.0
        } else if self.tp == 0.0 && self.fp == 0.0 {
            0.0
        } else {
            self.tp / (self.tp + self.fp)
        }
    }

    /// The benchmark's per-page recall (1 for two empty texts).
    pub fn recall(&self) -> f64 {
        if self.fp == 0.0 && self.fn_ == 0.0 {
            1.0
        } else if self.tp == 0.0 && self.fn_ == 0.0 {
            0.0
        } else {
            self.tp / (self.tp + self.fn_)
        }
    }
}

/// Compares two texts the way the article-extraction-benchmark does: tokens
/// are `\w+` runs, shingles are token 4-grams counted as a multiset (the
/// benchmark's `Counter`), and a text of fewer than 4 tokens is one shingle
/// of all its tokens. Multiset rather than set because that is what its
/// `evaluate.py` does; it reproduces the published figures' scale.
pub fn shingle_match(expected: &str, predicted: &str) -> ShingleMatch {
    let expected = shingles(expected);
    let predicted = shingles(predicted);
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for (key, &want) in &expected {
        let got = predicted.get(key).copied().unwrap_or(0);
        tp += f64::from(want.min(got));
        fn_ += f64::from(want.saturating_sub(got));
    }
    for (key, &got) in &predicted {
        let want = expected.get(key).copied().unwrap_or(0);
        fp += f64::from(got.saturating_sub(want));
    }
    let sum = tp + fp + fn_;
    if sum > 0.0 {
        ShingleMatch {
            tp: tp / sum,
            fp: fp / sum,
            fn_: fn_ / sum,
        }
    } else {
        ShingleMatch { tp, fp, fn_ }
    }
}

fn shingles(text: &str) -> HashMap<Vec<&str>, u32> {
    let tokens = tokens(text);
    let mut out = HashMap::new();
    if tokens.is_empty() {
        return out;
    }
    let n = 4.min(tokens.len());
    for window in tokens.windows(n) {
        *out.entry(window.to_vec()).or_insert(0) += 1;
    }
    out
}

/// `\w+` runs, Unicode-aware like Python's `re` on `str`.
fn tokens(text: &str) -> Vec<&str> {
    static WORD: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\w+").expect("static regex compiles"));
    WORD.find_iter(text).map(|m| m.as_str()).collect()
}

/// Mean precision over pages that extracted something, mean recall over
/// pages that expected something, as the benchmark averages them.
fn mean_precision_recall(matches: impl Iterator<Item = ShingleMatch>) -> (f64, f64) {
    let (mut p_sum, mut p_n, mut r_sum, mut r_n) = (0.0, 0usize, 0.0, 0usize);
    for m in matches {
        if m.tp + m.fp > 0.0 {
            p_sum += m.precision();
            p_n += 1;
        }
        if m.tp + m.fn_ > 0.0 {
            r_sum += m.recall();
            r_n += 1;
        }
    }
    (ratio_f(p_sum, p_n), ratio_f(r_sum, r_n))
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn ratio_f(sum: f64, n: usize) -> f64 {
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

/// The extracted blocks' text, one block a line.
fn join_blocks(extracted: &crate::core::model::Extracted) -> String {
    let mut out = String::new();
    for block in &extracted.blocks {
        out.push_str(&block.text);
        out.push('\n');
    }
    out
}

fn normalise_ws(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `(id, path)` of every `<id>.html` in `dir` that is a source page (not
/// readability's `<id>.expected.html`), sorted by id.
fn list_pages(dir: &Path) -> Result<Vec<(String, PathBuf)>, EvalError> {
    if !dir.is_dir() {
        return Err(EvalError::MissingDir {
            path: dir.to_path_buf(),
        });
    }
    let entries = std::fs::read_dir(dir).map_err(|source| EvalError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut pages = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| EvalError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(id) = name.strip_suffix(".html")
            && !id.ends_with(".expected")
        {
            pages.push((id.to_owned(), path));
        }
    }
    pages.sort();
    Ok(pages)
}

/// Reads a page as text: UTF-8 if it is, else windows-1252, which is what
/// browsers assume for undeclared legacy pages.
fn read_html(path: &Path) -> Result<String, EvalError> {
    let bytes = std::fs::read(path).map_err(|source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(err.as_bytes());
            text.into_owned()
        }
    })
}

fn read_text(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Non-empty, whitespace-normalised lines; a missing file has none.
fn read_snippets(path: &Path) -> Result<Vec<String>, EvalError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(read_text(path)?
        .lines()
        .map(normalise_ws)
        .filter(|line| !line.is_empty())
        .collect())
}

impl fmt::Display for AebReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| set | pages | precision | recall | F1 | MB/s |")?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
        writeln!(
            f,
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            self.set,
            self.pages,
            self.precision,
            self.recall,
            self.f1,
            mb_per_s(self.html_bytes, self.extract_seconds)
        )
    }
}

impl fmt::Display for SnippetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| set | pages | with found | without absent | precision | recall | F1 |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|")?;
        writeln!(
            f,
            "| trafilatura | {} | {}/{} | {}/{} | {:.3} | {:.3} | {:.3} |",
            self.pages,
            self.with_found,
            self.with_total,
            self.without_absent,
            self.without_total,
            self.precision,
            self.recall,
            self.f1
        )
    }
}

impl fmt::Display for ThroughputReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| pages | MB | extract MB/s | parse-only MB/s | extract/parse time |"
        )?;
        writeln!(f, "|---:|---:|---:|---:|---:|")?;
        writeln!(
            f,
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            self.pages,
            self.html_bytes as f64 / 1e6,
            self.extract_mb_per_s(),
            self.parse_mb_per_s(),
            if self.parse_seconds > 0.0 {
                self.extract_seconds / self.parse_seconds
            } else {
                0.0
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_texts_score_one() {
        let m = shingle_match("one two three four five", "one two three four five");
        assert_eq!((m.precision(), m.recall()), (1.0, 1.0));
    }

    #[test]
    fn extra_text_lowers_precision_not_recall() {
        let m = shingle_match("a b c d", "a b c d e f g h");
        assert_eq!(m.recall(), 1.0);
        assert!(m.precision() < 0.5, "{m:?}");
    }

    #[test]
    fn short_texts_are_one_shingle() {
        let m = shingle_match("hello world", "hello world");
        assert_eq!(m.precision(), 1.0);
        let m = shingle_match("hello world", "hello there");
        assert_eq!(m.recall(), 0.0);
    }

    #[test]
    fn missing_dir_names_it() {
        let err = score_aeb(Path::new("/nonexistent/eval")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/eval"), "{err}");
    }
}
