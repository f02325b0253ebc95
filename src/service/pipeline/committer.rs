//! The one thread that commits the pipeline's new versions, in batches.
//!
//! A page's worker prepares its version ([`Store::prepare_version`]: the
//! text's JSON, hash and compression) and goes on to the next page; the
//! check waits here for the commit. The committer takes whatever versions
//! have queued up, waiting a little for more while other pages are still
//! being read, and commits them with [`Store::commit_batch`]: one pack
//! append, one `fdatasync` and one transaction for the batch instead of
//! one each (sled 0.34 writes its log at every transaction's commit). A
//! check learns its version's number, or the batch's error, only once the
//! transaction has committed; `check_all` still flushes before it prints.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::{NewVersion, PreparedVersion, Store, StoreError, WatchState};

/// How long the committer waits for more versions after the first of a
/// batch, while pages are still being read. Much shorter than the flush
/// window of `check_all` (100 ms), which a check's line waits for anyway.
const GATHER: Duration = Duration::from_millis(20);
/// The most versions one transaction commits: a bound on what one
/// failure fails together, and on the transaction's size.
const MAX_BATCH: usize = 64;

/// How a check's new version is committed.
pub(super) enum Commit {
    /// At once, in a transaction of its own (`diff`, `replay`, evaluations).
    Now,
    /// Prepared on the worker and left for the pipeline's committer, which
    /// commits the versions of several checks in one transaction.
    Later(Option<Box<PreparedVersion>>),
}

impl Commit {
    pub(super) fn commit(
        &mut self,
        store: &Store,
        watch: &str,
        version: &NewVersion<'_>,
        state: &WatchState,
    ) -> Result<u64, StoreError> {
        match self {
            Commit::Now => store.commit_version(watch, version, state),
            Commit::Later(slot) => {
                let prepared = store.prepare_version(watch, version, state)?;
                let number = prepared.number();
                *slot = Some(Box::new(prepared));
                Ok(number)
            }
        }
    }
}

/// One version to commit, and where its check waits for the answer.
struct Job {
    store: Store,
    version: PreparedVersion,
    done: tokio::sync::oneshot::Sender<Result<u64, String>>,
}

/// The committer's queue.
#[derive(Debug)]
pub(super) struct Committer {
    jobs: Mutex<Sender<Job>>,
    /// Pages being read by the workers now: while there are some, more
    /// versions are coming and a batch waits for them (up to [`GATHER`]).
    reading: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("watch", &self.version.watch())
            .finish_non_exhaustive()
    }
}

impl Committer {
    pub(super) fn new() -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let reading = Arc::new(AtomicUsize::new(0));
        let busy = Arc::clone(&reading);
        // Without the thread, `commit` reports every version as failed.
        let _ = std::thread::Builder::new()
            .name("tidings-commit".to_owned())
            .spawn(move || run(&queue, &busy));
        Self {
            jobs: Mutex::new(jobs),
            reading,
        }
    }

    /// Counts a page as being read until the guard is dropped.
    pub(super) fn reading(&self) -> Reading {
        self.reading.fetch_add(1, Ordering::SeqCst);
        Reading(Arc::clone(&self.reading))
    }

    /// Commits `version` with the next batch; its number once committed.
    pub(super) async fn commit(
        &self,
        store: Store,
        version: PreparedVersion,
    ) -> Result<u64, String> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let sent = self
            .jobs
            .lock()
            .map_err(|_| "internal error: the committer is poisoned".to_owned())?
            .send(Job {
                store,
                version,
                done,
            });
        if sent.is_err() {
            return Err("internal error: the committer is not running".to_owned());
        }
        answer
            .await
            .unwrap_or_else(|_| Err("internal error: the committer stopped".to_owned()))
    }
}

/// A page being read (see [`Committer::reading`]).
pub(super) struct Reading(Arc<AtomicUsize>);

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn run(queue: &Receiver<Job>, reading: &AtomicUsize) {
    // Ends when the pipeline, and with it the sender, is dropped.
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        let until = Instant::now() + GATHER;
        while batch.len() < MAX_BATCH {
            if let Ok(job) = queue.try_recv() {
                batch.push(job);
                continue;
            }
            // Nothing queued: wait only while a worker is reading a page
            // that will bring another version soon.
            let now = Instant::now();
            if reading.load(Ordering::SeqCst) == 0 || now >= until {
                break;
            }
            match queue.recv_timeout((until - now).min(Duration::from_millis(2))) {
                Ok(job) => batch.push(job),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        commit(batch);
    }
}

/// Commits one batch and answers each of its checks. Every job carries
/// the pipeline's one store (the thread holds none between batches, so a
/// dropped pipeline leaves no store open behind it).
fn commit(batch: Vec<Job>) {
    let Some(store) = batch.first().map(|job| job.store.clone()) else {
        return;
    };
    let (versions, answers): (Vec<PreparedVersion>, Vec<_>) =
        batch.into_iter().map(|job| (job.version, job.done)).unzip();
    let count = versions.len();
    let committed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.commit_batch(versions)
    }));
    drop(store);
    tracing::debug!(
        versions = count,
        ok = matches!(committed, Ok(Ok(_))),
        "a batch commit"
    );
    let results: Vec<Result<u64, String>> = match committed {
        Ok(Ok(numbers)) if numbers.len() == count => numbers.into_iter().map(Ok).collect(),
        Ok(Ok(_)) => vec![Err("internal error: a commit lost a version".to_owned()); count],
        Ok(Err(error)) => vec![Err(error.to_string()); count],
        Err(_) => vec![Err("internal error: a commit panicked".to_owned()); count],
    };
    for (done, result) in answers.into_iter().zip(results) {
        let _ = done.send(result);
    }
}
