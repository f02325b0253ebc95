//! Noise and recall on real page histories: replays each history through the
//! whole pipeline, as successive fetches of one watch in a fresh temporary
//! store, and compares the alerts raised with the reference labels in its
//! `steps.tsv`.
//!
//! A change held for confirmation (a sudden loss of text, or a flip back to
//! a recent version) and confirmed by the next fetch is credited to the step
//! where it appeared, and the confirming step counts as silent.
//!
//! A step is *expected silent* when its raw-HTML change left the visible
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
use crate::core::extract::Rules;
use crate::fetch::{Validators, decode_html};
use crate::service::pipeline::{ApplyError, FetchedPage, Outcome, apply_page};
use crate::store::{Store, StoreError};

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
        writeln!(
            f,
            "| page | steps | alerts | silent steps alerted | alert steps alerted |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|")?;
        for (page, steps) in &pages {
            let alerts = steps.iter().filter(|s| s.alerted).count();
            let count = |e: Expectation| {
                let of: Vec<_> = steps.iter().filter(|s| s.expected == e).collect();
                format!("{}/{}", of.iter().filter(|s| s.alerted).count(), of.len())
            };
            writeln!(
                f,
                "| {page} | {} | {alerts} | {} | {} |",
                steps.len(),
                count(Expectation::Silent),
                count(Expectation::Alert)
            )?;
        }
        let silent = self.tally(Expectation::Silent);
        let alert = self.tally(Expectation::Alert);
        let unscored = self.tally(Expectation::Unscored);
        let show =
            |value: Option<f64>| value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}"));
        writeln!(f)?;
        writeln!(
            f,
            "expected silent: {} steps, {} alerted (target 0)",
            silent.steps, silent.alerted
        )?;
        writeln!(
            f,
            "expected to alert: {} steps, {} alerted",
            alert.steps, alert.alerted
        )?;
        writeln!(
            f,
            "unscored: {} steps, {} alerted",
            unscored.steps, unscored.alerted
        )?;
        writeln!(
            f,
            "precision {} · recall {}",
            show(self.precision()),
            show(self.recall())
        )?;
        for miss in self.misses() {
            writeln!(
                f,
                "miss: {} {} ({}, {}): {} {}",
                miss.page, miss.step, miss.auto_kind, miss.label, miss.outcome, miss.summary
            )?;
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
    let store = Store::temporary()?;
    let rules = Rules::default();
    let options = DiffOptions::default();
    let read_page = |name: &str| -> Result<String, HistoryEvalError> {
        let path = dir.join(name);
        std::fs::read(&path)
            .map(|bytes| decode_html(&bytes, None))
            .map_err(|source| HistoryEvalError::Read { path, source })
    };
    let apply = |html: &str| -> Result<Outcome, HistoryEvalError> {
        let fetched = FetchedPage {
            html,
            fetched_at: Utc::now(),
            validators: Validators::default(),
            audience: None,
        };
        match apply_page(&store, "history", &rules, &[], &fetched, &options) {
            Ok(outcome) => Ok(outcome),
            Err(ApplyError::Store(e)) => Err(e.into()),
            Err(other) => Ok(Outcome::Failed {
                error: other.to_string(),
            }),
        }
    };

    let mut results = Vec::new();
    let mut baseline_done = false;
    for line in steps.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [step, from, to, _, _, auto_kind, _, _, label, ..] = fields.as_slice() else {
            continue;
        };
        if !baseline_done {
            apply(&read_page(from)?)?;
            baseline_done = true;
        }
        let outcome = apply(&read_page(to)?)?;
        let mut expected = expectation(auto_kind, label);
        if *label == "ota:record" && ota_formatting_only(dir, from, to) {
            // Open Terms Archive recorded a version whose text differs from
            // the last only in Markdown layout: an artefact of its own
            // extraction, not a change on the page. Not scored.
            expected = Expectation::Unscored;
        }
        let confirms_previous = matches!(outcome, Outcome::Changed { .. })
            && results
                .last()
                .is_some_and(|r: &StepResult| r.outcome == "HELD");
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
        };
        if confirms_previous && let Some(held) = results.last_mut() {
            // A change held for confirmation and confirmed by this fetch is
            // the change that appeared at the held step: the alert is
            // credited there, and this step raised nothing new.
            held.alerted = result.alerted;
            held.kinds = std::mem::take(&mut result.kinds);
            held.summary = format!("confirmed one fetch later: {}", result.summary);
            held.outcome = "CHANGED".to_owned();
            result.outcome = "CONFIRMED".to_owned();
            result.alerted = false;
            result.summary = "confirms the change held at the previous step".to_owned();
        }
        results.push(result);
    }
    Ok(results)
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
}
