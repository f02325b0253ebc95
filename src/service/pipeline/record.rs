//! The pipeline's small store writes outside a commit (a failure, a 304),
//! and when `check_all` flushes before it reports.

use chrono::{DateTime, Utc};

use super::{CheckReport, Outcome};
use crate::store::{Store, StoreError, WatchState};

/// Records a failed check: the error and the failure count, nothing else.
pub(super) fn record_failure(
    store: &Store,
    watch: &str,
    at: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    let mut state = store.watch_state(watch)?;
    state.last_check = Some(at);
    state.last_error = Some(error.to_owned());
    state.consecutive_failures = state.consecutive_failures.saturating_add(1);
    store.record_check(watch, &state)
}

/// Records a 304: the page is as it was. `state` is the one read before the
/// fetch (a watch has one check at a time, so nothing else wrote it since):
/// reading it again would double the store work of an unchanged pass.
pub(super) fn record_not_modified(
    store: &Store,
    watch: &str,
    mut state: WatchState,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    state.last_check = Some(at);
    state.last_success = Some(at);
    state.last_error = None;
    state.consecutive_failures = 0;
    store.record_check(watch, &state)
}

/// Whether a batch of finished checks must be flushed before its lines are
/// printed. A 304 stores nothing the line reports (only when the page was
/// asked for), so a batch of nothing else needs no flush of its own: a kill
/// that loses its writes leaves the store saying what the line said, the
/// page as stored. The next flush, or the one at the end of the pass, takes
/// them to disk; on a pass of unchanged pages that is most of its system
/// time.
pub(super) fn needs_flush(batch: &[Result<CheckReport, tokio::task::JoinError>]) -> bool {
    batch.iter().any(|joined| {
        !matches!(joined, Ok(report)
            if matches!(report.outcome, Outcome::Unchanged { not_modified: true }))
    })
}

/// Runs sync work (sled, parsing) on the blocking pool, turning a panic or
/// an error into a message.
pub(super) async fn run_blocking<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, String>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(join_error) => Err(format!("internal error: {join_error}")),
    }
}
