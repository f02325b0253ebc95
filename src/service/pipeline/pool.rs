//! The pipeline's own worker threads for the CPU-bound work of a check.

use std::sync::{Arc, Mutex};

/// A fixed set of threads for the CPU-bound work of a check.
///
/// Why not tokio's blocking pool: it hands each job to whichever of its
/// many threads is free (store reads and flushes run there too), and the
/// `regex` crate keeps a lazy-DFA cache per thread that uses a pattern. A
/// changed pass spread its fact reading over four or more threads, each
/// warming its own caches of the large fact patterns from cold: CPU spent
/// again per thread, and megabytes of caches per thread. A pool of as many
/// threads as pages may be read at once bounds both.
#[derive(Debug)]
pub(super) struct CpuPool {
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

impl CpuPool {
    pub(super) fn new(threads: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            // A thread that cannot start leaves the others to do the work;
            // with none at all, `run` reports every job as failed.
            let _ = std::thread::Builder::new()
                .name(format!("tidings-cpu-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take one job.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            // The pipeline is gone.
                            Err(_) => return,
                        }
                    }
                });
        }
        Self {
            jobs: Mutex::new(jobs),
        }
    }

    /// Runs `work` on one of the pool's threads, turning a panic or an
    /// error into a message, as `run_blocking` does.
    pub(super) async fn run<T, E>(
        &self,
        work: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> Result<T, String>
    where
        T: Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = done.send(match outcome {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("internal error: a page's check panicked".to_owned()),
            });
        });
        let sent = self
            .jobs
            .lock()
            .map_err(|_| "internal error: the worker pool is poisoned".to_owned())?
            .send(job);
        if sent.is_err() {
            return Err("internal error: no worker thread is running".to_owned());
        }
        result
            .await
            .unwrap_or_else(|_| Err("internal error: no worker thread is running".to_owned()))
    }
}
