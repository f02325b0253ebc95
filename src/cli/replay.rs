//! `tidings replay DIR`: run a folder of saved versions through the pipeline, in order.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::Utc;

use crate::cli::args::RuleArgs;
use crate::cli::common::{read_html_file, rules_from, slug_text, truncate};
use crate::core::diff::DiffOptions;
use crate::core::render;
use crate::fetch::Validators;
use crate::service::pipeline::{self, FetchedPage, Outcome};
use crate::store::Store;

/// The numbered HTML files of a replay folder, in order.
pub(crate) fn replay_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read replay folder {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "html")
                && path
                    .file_stem()
                    .and_then(|stem| stem.to_str())
                    .is_some_and(|stem| {
                        !stem.is_empty() && stem.chars().all(|c| c.is_ascii_digit())
                    })
        })
        .collect();
    files.sort_by_key(|path| {
        path.file_stem()
            .and_then(|stem| stem.to_str())
            .and_then(|stem| stem.parse::<u64>().ok())
    });
    if files.is_empty() {
        bail!(
            "{} holds no numbered HTML files (00.html, 01.html, …)",
            dir.display()
        );
    }
    Ok(files)
}

pub(crate) fn replay_command(
    dir: &Path,
    state: Option<&Path>,
    json: bool,
    args: &RuleArgs,
) -> anyhow::Result<u8> {
    let files = replay_files(dir)?;
    let rules = rules_from(args)?;
    let (store, _temporary) = match state {
        Some(state) => {
            std::fs::create_dir_all(state)
                .with_context(|| format!("cannot create state directory {}", state.display()))?;
            (Store::open(state)?, None)
        }
        None => {
            let temporary = tempfile::tempdir().context("cannot create a temporary store")?;
            (Store::open(temporary.path())?, Some(temporary))
        }
    };
    let watch = dir
        .file_name()
        .and_then(|n| n.to_str())
        .map_or_else(|| "replay".to_owned(), slug_text);
    let options = DiffOptions::default();
    let mut out = std::io::stdout().lock();
    for file in &files {
        let step = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        let html = read_html_file(file)?;
        let page = FetchedPage {
            html: &html,
            fetched_at: Utc::now(),
            validators: Validators::default(),
            audience: None,
        };
        let outcome = match pipeline::apply_page(&store, &watch, &rules, &[], &page, &options) {
            Ok(outcome) => outcome,
            Err(pipeline::ApplyError::Store(e)) => return Err(e.into()),
            Err(other) => Outcome::Failed {
                error: format!("{}: {other}", file.display()),
            },
        };
        if json {
            let mut value = serde_json::to_value(&outcome)?;
            value["step"] = step.clone().into();
            if let Outcome::Changed { diff, .. } = &outcome {
                value["diff"] = serde_json::to_value(render::JsonDiff::new(diff))?;
            }
            writeln!(out, "{}", serde_json::to_string(&value)?)?;
        } else {
            writeln!(out, "{step}: {}", describe(&outcome))?;
        }
    }
    store.flush()?;
    out.flush()?;
    Ok(0)
}

/// One line about an outcome, for replay.
pub(crate) fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::New { version } => format!("NEW (version {version})"),
        Outcome::Unchanged { .. } => "UNCHANGED".to_owned(),
        Outcome::Rebaselined { version } => {
            format!("UNCHANGED (re-baselined as version {version})")
        }
        Outcome::Failed { error } => format!("ERROR: {error}"),
        Outcome::Held { reason } => format!("UNCHANGED ({reason})"),
        Outcome::Changed {
            version,
            diff,
            assessment,
        } => {
            let (added, removed, changed) = diff.block_counts();
            let alert = if assessment.alerts() {
                "alert"
            } else {
                "no alert"
            };
            format!(
                "CHANGED (version {version}, {alert}): +{added} -{removed} ~{changed} blocks, {} words; {}",
                diff.changed_words(),
                truncate(&assessment.one_line(), 160)
            )
        }
    }
}
