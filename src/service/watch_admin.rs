//! `tidings pause` and `tidings resume` as values: watch names in, an
//! [`Output`] out. Run by the daemon for the CLI over the control socket,
//! or by the CLI on the store when no daemon runs; either way the pause is
//! stored and lasts across restarts.

use chrono::{DateTime, Utc};

use crate::service::admin::{EXIT_ERROR, Output};
use crate::store::Store;
use std::path::Path;

/// The names `known` does not know, as an error output naming the config
/// (`source`) they were looked for in. The daemon asks its plan, the CLI
/// its config.
pub fn unknown_watches(
    source: &Path,
    names: &[String],
    known: impl Fn(&str) -> bool,
) -> Option<Output> {
    let unknown: Vec<&str> = names
        .iter()
        .filter(|name| !known(name))
        .map(String::as_str)
        .collect();
    if names.is_empty() {
        return Some(error("name at least one watch".to_owned()));
    }
    (!unknown.is_empty()).then(|| {
        error(format!(
            "no watch named {} in {}; `tidings validate` lists them",
            unknown
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            source.display()
        ))
    })
}

fn error(message: String) -> Output {
    Output {
        stderr: format!("error: {message}\n"),
        code: EXIT_ERROR,
        ..Output::default()
    }
}

/// Pauses watches; says which were paused already.
pub fn pause(
    store: &Store,
    source: &Path,
    known: impl Fn(&str) -> bool,
    names: &[String],
    now: DateTime<Utc>,
) -> Output {
    if let Some(unknown) = unknown_watches(source, names, known) {
        return unknown;
    }
    let mut out = Output::default();
    for name in names {
        match store.pause_watch(name, now) {
            Ok(true) => out.stdout.push_str(&format!("paused {name}\n")),
            Ok(false) => out.stdout.push_str(&format!("{name} was paused already\n")),
            Err(e) => return error(e.to_string()),
        }
    }
    finish(store, out)
}

/// Resumes watches; a watch that was not paused is reported with exit 1.
pub fn resume(
    store: &Store,
    source: &Path,
    known: impl Fn(&str) -> bool,
    names: &[String],
) -> Output {
    if let Some(unknown) = unknown_watches(source, names, known) {
        return unknown;
    }
    let mut out = Output::default();
    for name in names {
        match store.resume_watch(name) {
            Ok(true) => out.stdout.push_str(&format!("resumed {name}\n")),
            Ok(false) => {
                out.stderr.push_str(&format!("{name} is not paused\n"));
                out.code = 1;
            }
            Err(e) => return error(e.to_string()),
        }
    }
    finish(store, out)
}

fn finish(store: &Store, out: Output) -> Output {
    match store.flush() {
        Ok(()) => out,
        Err(e) => error(e.to_string()),
    }
}
