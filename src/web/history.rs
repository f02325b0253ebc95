//! A page's history on the web: `/watches/NAME` lists the stored versions
//! by date, and `/watches/NAME/compare?from=A&to=B` shows what changed
//! between any two of them. Read-only: GET forms, no script.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use minijinja::context;
use serde::Serialize;

use super::views::{self, BlockView};
use super::{Failure, Page, WebState, not_found};
use crate::core::brief::uk_time;
use crate::core::diff::{DiffOptions, diff};
use crate::store::VersionInfo;

/// One stored version, as the history lists it.
#[derive(Debug, Serialize)]
struct VersionRow {
    number: u64,
    seen: String,
    seen_iso: String,
    changed_words: Option<u64>,
    change_href: Option<String>,
}

/// One choice in the compare form's lists.
#[derive(Debug, Serialize)]
struct VersionOption {
    number: u64,
    label: String,
    from: bool,
    to: bool,
}

/// The compare form's lists, newest first, with `from` and `to` chosen.
fn options(versions: &[VersionInfo], from: u64, to: u64) -> Vec<VersionOption> {
    versions
        .iter()
        .rev()
        .map(|v| VersionOption {
            number: v.number,
            label: uk_time(v.seen_at),
            from: v.number == from,
            to: v.number == to,
        })
        .collect()
}

/// `/watches/NAME`: every stored version of a watched page, newest first.
pub(super) async fn history_page(State(state): State<WebState>, Path(name): Path<String>) -> Page {
    let current = state.current();
    let Some(watch) = current.config.watch(&name) else {
        return not_found(State(state.clone())).await;
    };
    let store = &state.inner.store;
    let versions = store.history(&name)?;
    let base = current.web.base_path();
    let mut rows = Vec::with_capacity(versions.len());
    for version in versions.iter().rev() {
        let change_href = store
            .change(&name, version.number)?
            .map(|_| format!("{base}{}", views::change_path(&name, version.number)));
        rows.push(VersionRow {
            number: version.number,
            seen: uk_time(version.seen_at),
            seen_iso: version.seen_at.to_rfc3339(),
            changed_words: version.changed_words,
            change_href,
        });
    }
    let newest = versions.last().map_or(0, |v| v.number);
    let before = versions
        .len()
        .checked_sub(2)
        .map_or(newest, |i| versions[i].number);
    let tags: Vec<&str> = watch
        .tags
        .iter()
        .map(|t| current.config.tag_title(t))
        .collect();
    state.page(
        StatusCode::OK,
        "history.html",
        &current.web,
        context! {
            title => watch.title(),
            watch => name,
            url => watch.url.to_string(),
            tags,
            rows,
            options => options(&versions, before, newest),
            feed => current.web.url(&views::watch_feed_path(&watch.name)),
        },
    )
}

/// `/watches/NAME/compare?from=A&to=B`: the differences between two stored
/// versions, the older one first whichever way round they were picked.
pub(super) async fn compare_page(
    State(state): State<WebState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Page {
    let current = state.current();
    let Some(watch) = current.config.watch(&name) else {
        return not_found(State(state.clone())).await;
    };
    let (mut from, mut to) = (None, None);
    for (key, value) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "from" => from = value.parse::<u64>().ok(),
            "to" => to = value.parse::<u64>().ok(),
            _ => {}
        }
    }
    let store = state.inner.store.clone();
    let (Some(a), Some(b)) = (from, to) else {
        return not_found(State(state.clone())).await;
    };
    let (from, to) = (a.min(b), a.max(b));
    let (Some(old), Some(new)) = (store.version(&name, from)?, store.version(&name, to)?) else {
        return not_found(State(state.clone())).await;
    };
    let versions = store.history(&name)?;
    let options_view = options(&versions, from, to);
    let timeout = current.config.limits.diff_timeout;
    let (old_info, new_info) = (old.clone(), new.clone());
    // The diff is bounded by its deadline, but it is CPU work: off the
    // async threads.
    let diffed = tokio::task::spawn_blocking(move || {
        let old_text = store.text(&old_info)?;
        let new_text = store.text(&new_info)?;
        let options = DiffOptions {
            timeout,
            ..DiffOptions::default()
        };
        Ok::<_, crate::store::StoreError>(diff(&old_text, &new_text, &options))
    })
    .await
    .map_err(|join| {
        Failure::Store(crate::store::StoreError::Corrupt {
            path: std::path::PathBuf::new(),
            what: "web",
            reason: format!("a compare task failed: {join}"),
        })
    })??;
    let timed_out = diffed.timed_out;
    let blocks: Vec<BlockView> = views::block_views(diffed);
    let (old_seen, new_seen) = (uk_time(old.seen_at), uk_time(new.seen_at));
    state.page(
        StatusCode::OK,
        "compare.html",
        &current.web,
        context! {
            title => format!("{}: {} and {}", watch.title(), old_seen, new_seen),
            page_title => watch.title(),
            watch => name,
            url => watch.url.to_string(),
            history => format!("{}{}", current.web.base_path(), views::history_path(&watch.name)),
            old_seen,
            new_seen,
            same => from == to,
            blocks,
            timed_out,
            options => options_view,
        },
    )
}
