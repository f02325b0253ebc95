//! Noise and recall on real page histories: replays each history through the
//! whole pipeline, as successive fetches of one watch in a fresh temporary
//! store, and compares the alerts raised with the reference labels in its
//! `judged.tsv` (written by hand: should the step alert, its kind, and the
//! phrases a good one-line summary contains), or, for a history without
//! one, with the reference labels in its `steps.tsv`.
//!
//! A change held for confirmation (a sudden loss of text, a placeholder or
//! error page, or a flip back to a recent version) and confirmed by later
//! fetches of the same text is credited to the step where it appeared, and
//! the confirming steps count as silent. An alert raised later for another
//! text does not rescue the held step: an alert counts for the step whose
//! content it reports.
//!
//! With `judged.tsv`, a step is expected to alert when `should_alert` is
//! `yes` and silent otherwise; the kind is right when the judged kind is
//! among the alert's kinds (counted on alerts of steps that should alert);
//! a `must_mention` phrase counts when it appears, ignoring case, in the
//! one-line summary of an alert at that step.
//!
//! Without it, a step is *expected silent* when its raw-HTML change left the visible
//! text alone or only moved dates (`auto_kind` markup-only or
//! dates/times-only), or when a labeller called it noise
//! (`ota:no-extracted-text-change`, `ota:extraction-upgrade`,
//! `edgi:false-positive`). It is *expected to alert* when a labeller
//! recorded a real change (`edgi:true-positive`, `ota:record`). Other steps
//! (gov.uk change notes on text edits, unlabelled edits) are reported but not
//! scored: a gov.uk change note describes the whole publication, not always
//! this page.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::Utc;
use serde::Serialize;

use crate::core::diff::DiffOptions;
use crate::core::extract::{self, Rules};
use crate::fetch::{Validators, decode_html};
use crate::service::pipeline::{ApplyError, FetchedPage, Outcome, apply_extracted};
use crate::store::{Store, StoreError, text_hash};

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum HistoryEvalError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path at fault.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The folder holds no histories.
    #[error("{0} holds no page histories (folders with 00.html, 01.html, … and steps.tsv)")]
    Empty(PathBuf),
    /// The temporary store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the reference says a step should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    /// No alert should be raised.
    Silent,
    /// An alert should be raised.
    Alert,
    /// Not scored.
    Unscored,
}

/// One step of one history.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// The history's folder name.
    pub page: String,
    /// `NN-1->NN`.
    pub step: String,
    /// The crude visible-text hint from steps.tsv.
    pub auto_kind: String,
    /// The reference label, if any.
    pub label: String,
    /// What the reference expects.
    pub expected: Expectation,
    /// What tidings did: `CHANGED`, `UNCHANGED`, `ERROR`….
    pub outcome: String,
    /// Whether tidings raised an alert (a change of a kind other than minor).
    pub alerted: bool,
    /// The change kinds, most important first.
    pub kinds: Vec<String>,
    /// The one-line summary, or the reason nothing was raised.
    pub summary: String,
    /// The judged kind, from `judged.tsv`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judged_kind: Option<String>,
    /// Phrases a good summary of this step contains, from `judged.tsv`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub must_mention: Vec<String>,
    /// The judge's note on the step.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Every summary point of the alert, before fitting into one line: where
    /// a missing phrase was, to tell ranking from reading.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<String>,
    /// The changed blocks' text, old and new, lower-cased.
    #[serde(skip)]
    pub changed_text: String,
}

impl StepResult {
    /// Whether the kind is right: the judged kind is among the alert's
    /// kinds. `None` unless the step alerted and should have.
    pub fn kind_right(&self) -> Option<bool> {
        let judged = self.judged_kind.as_deref()?;
        (self.alerted && self.expected == Expectation::Alert)
            .then(|| self.kinds.iter().any(|k| k == judged))
    }

    /// Where a phrase missing from the summary was: in which of the
    /// alert's points, only in the changed blocks, or nowhere in the change.
    pub fn whereabouts(&self, phrase: &str) -> String {
        let wanted = normalise(phrase);
        let at = self.points.iter().enumerate().find_map(|(i, p)| {
            normalise(p)
                .find(&wanted)
                .map(|offset| (i, p.chars().count(), offset))
        });
        match at {
            Some((i, len, offset)) => format!(
                "point {} of {}, {len} characters, at {offset}",
                i + 1,
                self.points.len()
            ),
            None if self.changed_text.contains(&wanted) => "in the changed blocks".to_owned(),
            None => "not in the change".to_owned(),
        }
    }

    /// The `must_mention` phrases found in the summary of this step's alert
    /// (none when it raised no alert).
    pub fn mentioned(&self) -> Vec<&str> {
        if !self.alerted {
            return Vec::new();
        }
        let summary = normalise(&self.summary);
        self.must_mention
            .iter()
            .filter(|phrase| summary.contains(&normalise(phrase)))
            .map(String::as_str)
            .collect()
    }
}

/// Lower case, single spaces and straight quotes: how phrases are compared.
fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .replace(['’', '‘'], "'")
        .replace(['“', '”'], "\"")
}

/// Totals over every history.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HistoryReport {
    /// Every step.
    pub steps: Vec<StepResult>,
}

/// Counts for one expectation.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Tally {
    /// Steps with this expectation.
    pub steps: usize,
    /// Of those, how many raised an alert.
    pub alerted: usize,
}

impl HistoryReport {
    /// Steps and alerts per expectation.
    pub fn tally(&self, expected: Expectation) -> Tally {
        let steps: Vec<&StepResult> = self
            .steps
            .iter()
            .filter(|s| s.expected == expected)
            .collect();
        Tally {
            steps: steps.len(),
            alerted: steps.iter().filter(|s| s.alerted).count(),
        }
    }

    /// Precision of alerts over scored steps: alerts on steps that should
    /// alert, over all alerts on scored steps.
    pub fn precision(&self) -> Option<f64> {
        let true_alerts = self.tally(Expectation::Alert).alerted;
        let false_alerts = self.tally(Expectation::Silent).alerted;
        ratio(true_alerts, true_alerts + false_alerts)
    }

    /// Recall: steps that should alert and did.
    pub fn recall(&self) -> Option<f64> {
        let alert = self.tally(Expectation::Alert);
        ratio(alert.alerted, alert.steps)
    }

    /// Steps that broke a target: alerts on silent steps, silence on
    /// alerting steps.
    pub fn misses(&self) -> Vec<&StepResult> {
        self.steps
            .iter()
            .filter(|s| match s.expected {
                Expectation::Silent => s.alerted,
                Expectation::Alert => !s.alerted,
                Expectation::Unscored => false,
            })
            .collect()
    }

    /// The scores of these steps (one page's, or all).
    pub fn scores(&self) -> Scores {
        scores(self.steps.iter())
    }
}

/// The figures of a set of steps.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Scores {
    /// Alerts on steps that should alert.
    pub true_alerts: usize,
    /// Alerts on steps that should be silent.
    pub false_alerts: usize,
    /// Steps that should alert.
    pub should_alert: usize,
    /// Judged alerts (alerted, should alert, judged kind known).
    pub judged_alerts: usize,
    /// Of those, how many have the judged kind among their kinds.
    pub kinds_right: usize,
    /// `must_mention` phrases of steps that should alert.
    pub phrases: usize,
    /// Of those, how many the step's summary contains.
    pub phrases_found: usize,
}

impl Scores {
    /// Alert precision.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.true_alerts, self.true_alerts + self.false_alerts)
    }

    /// Alert recall.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.true_alerts, self.should_alert)
    }

    /// Kind accuracy on judged alerts.
    pub fn kind_accuracy(&self) -> Option<f64> {
        ratio(self.kinds_right, self.judged_alerts)
    }

    /// The share of `must_mention` phrases found in summaries.
    pub fn phrase_share(&self) -> Option<f64> {
        ratio(self.phrases_found, self.phrases)
    }
}

fn scores<'a>(steps: impl Iterator<Item = &'a StepResult>) -> Scores {
    let mut scores = Scores::default();
    for step in steps {
        match step.expected {
            Expectation::Alert => {
                scores.should_alert += 1;
                scores.true_alerts += usize::from(step.alerted);
                scores.phrases += step.must_mention.len();
                scores.phrases_found += step.mentioned().len();
            }
            Expectation::Silent => scores.false_alerts += usize::from(step.alerted),
            Expectation::Unscored => {}
        }
        if let Some(right) = step.kind_right() {
            scores.judged_alerts += 1;
            scores.kinds_right += usize::from(right);
        }
    }
    scores
}

fn ratio(numerator: usize, denominator: usize) -> Option<f64> {
    #[expect(clippy::cast_precision_loss, reason = "step counts are small")]
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

impl fmt::Display for HistoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut pages: BTreeMap<&str, Vec<&StepResult>> = BTreeMap::new();
        for step in &self.steps {
            pages.entry(step.page.as_str()).or_default().push(step);
        }
        let show =
            |value: Option<f64>| value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}"));
        let share = |value: Option<f64>| {
            value.map_or_else(|| "n/a".to_owned(), |v| format!("{:.0} %", v * 100.0))
        };
        writeln!(
            f,
            "| page | steps | alerts | precision | recall | kinds right | phrases found |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|")?;
        for (page, steps) in &pages {
            let s = scores(steps.iter().copied());
            writeln!(
                f,
                "| {page} | {} | {} | {} | {} | {} | {}/{} |",
                steps.len(),
                steps.iter().filter(|s| s.alerted).count(),
                show(s.precision()),
                show(s.recall()),
                show(s.kind_accuracy()),
                s.phrases_found,
                s.phrases,
            )?;
        }
        let total = self.scores();
        let unscored = self.tally(Expectation::Unscored);
        writeln!(f)?;
        writeln!(
            f,
            "expected silent: {} steps, {} alerted (target 0)",
            self.tally(Expectation::Silent).steps,
            total.false_alerts
        )?;
        writeln!(
            f,
            "expected to alert: {} steps, {} alerted",
            total.should_alert, total.true_alerts
        )?;
        if unscored.steps > 0 {
            writeln!(
                f,
                "unscored: {} steps, {} alerted",
                unscored.steps, unscored.alerted
            )?;
        }
        writeln!(
            f,
            "precision {} · recall {} · kinds right {} ({}/{}) · phrases found {} ({}/{})",
            show(total.precision()),
            show(total.recall()),
            share(total.kind_accuracy()),
            total.kinds_right,
            total.judged_alerts,
            share(total.phrase_share()),
            total.phrases_found,
            total.phrases,
        )?;
        for miss in self.misses() {
            let what = if miss.alerted {
                "false alert"
            } else {
                "missed alert"
            };
            writeln!(
                f,
                "{what}: {} {} ({}): {} {}",
                miss.page,
                miss.step,
                if miss.label.is_empty() {
                    &miss.auto_kind
                } else {
                    &miss.label
                },
                miss.outcome,
                miss.summary
            )?;
        }
        for step in &self.steps {
            if step.kind_right() == Some(false) {
                writeln!(
                    f,
                    "wrong kind: {} {} (judged {}): {}",
                    step.page,
                    step.step,
                    step.judged_kind.as_deref().unwrap_or(""),
                    step.summary
                )?;
            }
        }
        for step in &self.steps {
            if step.expected != Expectation::Alert || !step.alerted {
                continue;
            }
            let found = step.mentioned();
            let missing: Vec<String> = step
                .must_mention
                .iter()
                .filter(|p| !found.contains(&p.as_str()))
                .map(|p| format!("{p} ({})", step.whereabouts(p)))
                .collect();
            if !missing.is_empty() {
                writeln!(
                    f,
                    "phrases missing: {} {} [{}]: {}",
                    step.page,
                    step.step,
                    missing.join("; "),
                    step.summary
                )?;
            }
        }
        Ok(())
    }
}

/// Whether Open Terms Archive's own texts for two snapshots differ only in
/// Markdown layout (list markers, emphasis, spacing).
fn ota_formatting_only(dir: &Path, from: &str, to: &str) -> bool {
    let text = |html: &str| -> Option<String> {
        let stem = html.strip_suffix(".html")?;
        let raw = std::fs::read_to_string(dir.join(format!("{stem}.ota-version.md"))).ok()?;
        Some(
            raw.chars()
                .filter(|c| !matches!(c, '*' | '_' | '#' | '=' | '`' | '>' | '|' | '-'))
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        )
    };
    match (text(from), text(to)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn expectation(auto_kind: &str, label: &str) -> Expectation {
    match label {
        "edgi:true-positive" | "ota:record" => Expectation::Alert,
        "edgi:false-positive" | "ota:no-extracted-text-change" | "ota:extraction-upgrade" => {
            Expectation::Silent
        }
        _ if matches!(auto_kind, "markup-only" | "dates/times-only") => Expectation::Silent,
        _ => Expectation::Unscored,
    }
}

/// Evaluates every history folder under `dir`.
pub fn evaluate(dir: &Path) -> Result<HistoryReport, HistoryEvalError> {
    let read_dir = |path: &Path| {
        std::fs::read_dir(path).map_err(|source| HistoryEvalError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let mut pages: Vec<PathBuf> = read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("steps.tsv").is_file())
        .collect();
    pages.sort();
    if pages.is_empty() {
        return Err(HistoryEvalError::Empty(dir.to_path_buf()));
    }
    let mut report = HistoryReport::default();
    for page in pages {
        report.steps.extend(evaluate_page(&page)?);
    }
    Ok(report)
}

/// One row of `judged.tsv`.
#[derive(Debug, Clone)]
struct Judged {
    should_alert: bool,
    kind: String,
    must_mention: Vec<String>,
    note: String,
}

/// Reads `judged.tsv` into rows by step, if the history has one.
fn read_judged(dir: &Path) -> Result<Option<BTreeMap<String, Judged>>, HistoryEvalError> {
    let path = dir.join("judged.tsv");
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).map_err(|source| HistoryEvalError::Read { path, source })?;
    let mut rows = BTreeMap::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [step, should_alert, kind, rest @ ..] = fields.as_slice() else {
            continue;
        };
        rows.insert(
            (*step).to_owned(),
            Judged {
                should_alert: *should_alert == "yes",
                kind: (*kind).to_owned(),
                must_mention: rest
                    .first()
                    .map(|m| {
                        m.split(';')
                            .map(str::trim)
                            .filter(|p| !p.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                note: rest.get(1).map(|n| (*n).to_owned()).unwrap_or_default(),
            },
        );
    }
    Ok(Some(rows))
}

/// Replays one history and scores its steps.
pub fn evaluate_page(dir: &Path) -> Result<Vec<StepResult>, HistoryEvalError> {
    let page = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("page")
        .to_owned();
    let steps_path = dir.join("steps.tsv");
    let steps = std::fs::read_to_string(&steps_path).map_err(|source| HistoryEvalError::Read {
        path: steps_path.clone(),
        source,
    })?;
    let judged = read_judged(dir)?;
    let store = Store::temporary()?;
    let rules = Rules::default();
    let options = DiffOptions::default();
    let read_page = |name: &str| -> Result<String, HistoryEvalError> {
        let path = dir.join(name);
        std::fs::read(&path)
            .map(|bytes| decode_html(&bytes, None))
            .map_err(|source| HistoryEvalError::Read { path, source })
    };
    // Each step's text is extracted here and its hash kept, so that a
    // change confirmed after a hold can be tied to the step where that very
    // text first appeared.
    let apply = |html: &str| -> Result<(Outcome, Option<String>), HistoryEvalError> {
        let fetched = FetchedPage {
            html,
            fetched_at: Utc::now(),
            validators: Validators::default(),
            audience: None,
        };
        let blocks = match extract::extract(html, &rules) {
            Ok(extracted) => extracted.blocks,
            Err(e) => {
                return Ok((
                    Outcome::Failed {
                        error: e.to_string(),
                    },
                    None,
                ));
            }
        };
        let hash = text_hash(&blocks);
        match apply_extracted(&store, "history", &blocks, &[], &fetched, &options) {
            Ok(outcome) => Ok((outcome, Some(hash))),
            Err(ApplyError::Store(e)) => Err(e.into()),
            Err(other) => Ok((
                Outcome::Failed {
                    error: other.to_string(),
                },
                Some(hash),
            )),
        }
    };

    let mut results: Vec<StepResult> = Vec::new();
    let mut baseline_done = false;
    // The first step of the current hold and the held text's hash.
    let mut hold: Option<(usize, String)> = None;
    for line in steps.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [step, from, to, _, _, auto_kind, _, _, label, ..] = fields.as_slice() else {
            continue;
        };
        if !baseline_done {
            apply(&read_page(from)?)?;
            baseline_done = true;
        }
        let (outcome, hash) = apply(&read_page(to)?)?;
        let judgement = judged.as_ref().and_then(|rows| rows.get(*step));
        let expected = match judgement {
            Some(j) if j.should_alert => Expectation::Alert,
            Some(_) => Expectation::Silent,
            None if judged.is_some() => Expectation::Unscored,
            None if *label == "ota:record" && ota_formatting_only(dir, from, to) => {
                // Open Terms Archive recorded a version whose text differs
                // from the last only in Markdown layout: an artefact of its
                // own extraction, not a change on the page. Not scored.
                Expectation::Unscored
            }
            None => expectation(auto_kind, label),
        };
        let (points, changed_text) = match &outcome {
            Outcome::Changed { assessment, .. } => (
                assessment
                    .changes
                    .iter()
                    .filter(|c| c.kind != crate::core::classify::Kind::Minor)
                    .flat_map(|c| c.points.iter().cloned())
                    .collect(),
                normalise(
                    &assessment
                        .changes
                        .iter()
                        .flat_map(|c| &c.evidence)
                        .flat_map(|e| e.old.iter().chain(&e.new))
                        .map(|b| b.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            ),
            _ => (Vec::new(), String::new()),
        };
        let (alerted, kinds, summary) = match &outcome {
            Outcome::Changed { assessment, .. } => (
                assessment.alerts(),
                assessment
                    .kinds()
                    .iter()
                    .map(|k| k.as_str().to_owned())
                    .collect(),
                assessment.one_line(),
            ),
            Outcome::Held { reason } => (false, Vec::new(), reason.clone()),
            Outcome::Failed { error } => (false, Vec::new(), error.clone()),
            _ => (false, Vec::new(), String::new()),
        };
        let mut result = StepResult {
            page: page.clone(),
            step: (*step).to_owned(),
            auto_kind: (*auto_kind).to_owned(),
            label: (*label).to_owned(),
            expected,
            outcome: match &outcome {
                Outcome::Held { .. } => "HELD".to_owned(),
                other => other.label().to_owned(),
            },
            alerted,
            kinds,
            summary,
            judged_kind: judgement.map(|j| j.kind.clone()),
            must_mention: judgement
                .map(|j| j.must_mention.clone())
                .unwrap_or_default(),
            note: judgement.map(|j| j.note.clone()).unwrap_or_default(),
            points,
            changed_text,
        };
        let seen = match &outcome {
            Outcome::Held { .. } => Seen::Held,
            Outcome::Changed { .. } => Seen::Changed,
            Outcome::Failed { .. } => Seen::Failed,
            _ => Seen::Other,
        };
        settle_hold(&mut hold, &mut results, &mut result, seen, hash);
        results.push(result);
    }
    Ok(results)
}

/// What a step's outcome was, as far as a held change is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Held,
    Changed,
    Failed,
    Other,
}

/// Credits a confirmed hold to the step where its text first appeared.
///
/// A held step starts (or continues) a hold on its text's hash. When a later
/// step alerts on that same text, the alert is the held step's: it gets the
/// kinds and summary, and the confirming step raises nothing new. An alert on
/// any other text ends the hold without crediting it, since it reports
/// something else; so does an unchanged step. A failed fetch leaves the hold
/// as it is.
fn settle_hold(
    hold: &mut Option<(usize, String)>,
    results: &mut [StepResult],
    result: &mut StepResult,
    seen: Seen,
    hash: Option<String>,
) {
    match (seen, hash) {
        (Seen::Held, Some(hash)) => {
            if hold.as_ref().is_none_or(|(_, held)| *held != hash) {
                *hold = Some((results.len(), hash));
            }
        }
        (Seen::Changed, Some(hash)) => {
            if let Some((first, held)) = hold.take()
                && held == hash
                && let Some(held_step) = results.get_mut(first)
            {
                held_step.alerted = result.alerted;
                held_step.kinds = std::mem::take(&mut result.kinds);
                held_step.summary = format!("confirmed later: {}", result.summary);
                held_step.outcome = "CHANGED".to_owned();
                result.outcome = "CONFIRMED".to_owned();
                result.alerted = false;
                result.summary = format!("confirms the change held at {}", held_step.step);
            }
        }
        (Seen::Failed, _) => {}
        _ => *hold = None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_decide_before_hints() {
        assert_eq!(expectation("markup-only", "ota:record"), Expectation::Alert);
        assert_eq!(
            expectation("text-edit", "edgi:false-positive"),
            Expectation::Silent
        );
        assert_eq!(
            expectation("dates/times-only", "govuk-change-note"),
            Expectation::Silent
        );
        assert_eq!(
            expectation("text-edit", "govuk-change-note"),
            Expectation::Unscored
        );
    }

    #[test]
    fn a_missing_folder_is_named() {
        let err = evaluate(Path::new("/no/such/histories")).expect_err("missing");
        assert!(err.to_string().contains("/no/such/histories"), "{err}");
    }

    fn step(expected: Expectation, alerted: bool, kinds: &[&str], summary: &str) -> StepResult {
        StepResult {
            page: "p".into(),
            step: "00->01".into(),
            auto_kind: String::new(),
            label: String::new(),
            expected,
            outcome: "CHANGED".into(),
            alerted,
            kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
            summary: summary.into(),
            judged_kind: Some("boundary".into()),
            must_mention: vec!["Crewe".into(), "121".into(), "King’s Lynn".into()],
            note: String::new(),
            points: Vec::new(),
            changed_text: String::new(),
        }
    }

    /// Runs steps through [`settle_hold`] as `evaluate_page` does: each
    /// step's outcome and text hash, in order.
    fn replay(steps: &[(Seen, &str)]) -> Vec<StepResult> {
        let mut hold = None;
        let mut results: Vec<StepResult> = Vec::new();
        for (i, (seen, hash)) in steps.iter().enumerate() {
            let alerted = *seen == Seen::Changed;
            let mut result = step(
                Expectation::Alert,
                alerted,
                if alerted { &["narrative"] } else { &[] },
                &format!("step {i} on text {hash}"),
            );
            result.step = format!("{i:02}");
            if *seen == Seen::Held {
                result.outcome = "HELD".into();
            }
            settle_hold(
                &mut hold,
                &mut results,
                &mut result,
                *seen,
                Some((*hash).to_owned()),
            );
            results.push(result);
        }
        results
    }

    #[test]
    fn a_confirmed_hold_is_credited_to_the_step_that_showed_its_text() {
        let results = replay(&[(Seen::Held, "b"), (Seen::Held, "b"), (Seen::Changed, "b")]);
        assert!(results[0].alerted, "{:?}", results[0]);
        assert_eq!(results[0].summary, "confirmed later: step 2 on text b");
        assert_eq!(results[0].kinds, ["narrative"]);
        assert!(!results[1].alerted);
        assert!(
            !results[2].alerted,
            "the confirming step raises nothing new"
        );
        assert_eq!(results[2].outcome, "CONFIRMED");
    }

    #[test]
    fn an_alert_on_other_text_does_not_rescue_a_held_step() {
        // Held on text b, then the page moved on to c and alerted for that:
        // the held step's text never reached anyone.
        let results = replay(&[(Seen::Held, "b"), (Seen::Changed, "c")]);
        assert!(!results[0].alerted, "{:?}", results[0]);
        assert_eq!(results[0].outcome, "HELD");
        assert!(results[1].alerted);
        // A hold ended by an unchanged step is not credited by a later
        // alert on the same text either: that alert is a new change.
        let results = replay(&[(Seen::Held, "b"), (Seen::Other, "a"), (Seen::Changed, "b")]);
        assert!(!results[0].alerted, "{:?}", results[0]);
        assert!(results[2].alerted);
        // A failed fetch in between leaves the hold standing.
        let results = replay(&[(Seen::Held, "b"), (Seen::Failed, "-"), (Seen::Changed, "b")]);
        assert!(results[0].alerted, "{:?}", results[0]);
        assert!(!results[2].alerted);
    }

    #[test]
    fn judged_steps_score_alerts_kinds_and_phrases() {
        let hit = step(
            Expectation::Alert,
            true,
            &["boundary", "narrative"],
            "Boundary: +crewe; cases 120 → 121; King's Lynn",
        );
        assert_eq!(hit.kind_right(), Some(true));
        assert_eq!(hit.mentioned(), ["Crewe", "121", "King’s Lynn"]);
        let silent = step(Expectation::Alert, false, &[], "Crewe 121");
        assert_eq!(silent.kind_right(), None);
        assert!(silent.mentioned().is_empty(), "no alert, no phrases");
        let wrong = step(Expectation::Silent, true, &["narrative"], "");
        let report = HistoryReport {
            steps: vec![hit, silent, wrong],
        };
        let scores = report.scores();
        assert_eq!(scores.precision(), Some(0.5));
        assert_eq!(scores.recall(), Some(0.5));
        assert_eq!(scores.kind_accuracy(), Some(1.0));
        assert_eq!((scores.phrases_found, scores.phrases), (3, 6));
    }
}
