//! The one thread that commits the pipeline's new versions, in batches.
//!
//! A page's worker prepares its version ([`Store::prepare_version`]: the
//! text's JSON, hash and compression) and goes on to the next page; the
//! check waits here for the commit. The committer takes whatever versions
//! have queued up, waiting a little for more while other checks are still
//! under way, and commits them with [`Store::commit_batch`]: one pack
//! append, one `fdatasync` and one transaction for the batch instead of
//! one each (sled 0.34 writes its log, and asks the kernel to write it
//! back, at every transaction's commit). A check learns its version's
//! number, or the batch's error, only once the transaction has committed;
//! `check_all` still flushes before it prints.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::store::{NewVersion, PreparedVersion, Store, StoreError, WatchState};

/// How long the committer waits for more versions after the first of a
/// batch, while other checks are under way. When pages arrive no faster
/// than a server sends them, versions come a few milliseconds apart: a
/// window of 20 ms, counting only pages being read, made batches of one or
/// two (599 transactions, pack syncs and log write-backs for 1,000 new
/// pages). Half the flush window of `check_all` (100 ms), which a check's
/// line waits for anyway.
const GATHER: Duration = Duration::from_millis(50);
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
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    // `Sender` is `Sync`: checks on any thread send without a lock. Boxed:
    // a prepared version is large, and so would be every slot.
    queue: Sender<Box<Job>>,
    /// Checks under way now (fetching or reading a page): while there are
    /// some, more versions may be coming and a batch waits for them (up to
    /// [`GATHER`]). The committer's thread holds this count only: holding
    /// the sender too would keep its own queue open after the pipeline is
    /// dropped.
    under_way: Arc<AtomicUsize>,
    /// The committer's thread, unparked when the last check under way ends.
    thread: Option<Thread>,
}

impl Committer {
    pub(super) fn new() -> Self {
        let (queue, jobs) = std::sync::mpsc::channel::<Box<Job>>();
        let under_way = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&under_way);
        // Without the thread, `commit` reports every version as failed.
        let thread = std::thread::Builder::new()
            .name("tidings-commit".to_owned())
            .spawn(move || run(&jobs, &seen))
            .ok()
            .map(|handle| handle.thread().clone());
        let shared = Arc::new(Shared {
            queue,
            under_way,
            thread,
        });
        Self { shared }
    }

    /// Counts a check as under way until the guard is dropped.
    pub(super) fn under_way(&self) -> UnderWay {
        self.shared.under_way.fetch_add(1, Ordering::SeqCst);
        UnderWay(Arc::clone(&self.shared))
    }

    /// Commits `version` with the next batch; its number once committed.
    /// The check stops counting as under way once its version is queued,
    /// so the batch being gathered takes it.
    pub(super) async fn commit(
        &self,
        store: Store,
        version: PreparedVersion,
        under_way: UnderWay,
    ) -> Result<u64, String> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let sent = self.shared.queue.send(Box::new(Job {
            store,
            version,
            done,
        }));
        drop(under_way);
        if sent.is_err() {
            return Err("internal error: the committer is not running".to_owned());
        }
        answer
            .await
            .unwrap_or_else(|_| Err("internal error: the committer stopped".to_owned()))
    }
}

/// A check under way (see [`Committer::under_way`]).
pub(super) struct UnderWay(Arc<Shared>);

impl Drop for UnderWay {
    fn drop(&mut self) {
        if self.0.under_way.fetch_sub(1, Ordering::SeqCst) == 1
            && let Some(thread) = &self.0.thread
        {
            // A batch gathering for more versions can stop now, instead of
            // waiting out its window.
            thread.unpark();
        }
    }
}

fn run(jobs: &Receiver<Box<Job>>, under_way: &AtomicUsize) {
    // Ends when the pipeline, and with it the sender, is dropped.
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![*first];
        let until = Instant::now() + GATHER;
        loop {
            while batch.len() < MAX_BATCH
                && let Ok(job) = jobs.try_recv()
            {
                batch.push(*job);
            }
            // Wait only while another check is under way and may bring a
            // version soon; the last one to end unparks this thread.
            // Parked rather than blocked on the queue, so that each version
            // queued meanwhile costs its check no wake-up of this thread.
            let now = Instant::now();
            if batch.len() >= MAX_BATCH || under_way.load(Ordering::SeqCst) == 0 || now >= until {
                break;
            }
            std::thread::park_timeout(until - now);
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
