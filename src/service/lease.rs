//! Leases on a shared (PostgreSQL) store held by a process: the heartbeat
//! that keeps them, and the leases `tidings check` takes from the command
//! line so that it never checks a watch while a node does. On an embedded
//! store there is one process by construction and nothing here reaches a
//! database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::{StoreBackend, Watch};
use crate::store::{Node, Store, StoreError};

/// The heartbeat task: a beat every sixth of a lease (at most every 10 s),
/// so that `tidings status` shows a dead node as silent well before its
/// claims run out. Each beat renews what the node holds.
pub struct Heartbeat {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    store: Store,
}

/// How often a node beats (and the daemon reads the shared pauses again):
/// a sixth of a lease, between half a second and 10 s, so a dead node
/// shows as silent well before its leases run out. `None` off a shared
/// store.
pub fn beat_every(store: &Store) -> Option<Duration> {
    store
        .node()
        .map(|node| (node.lease / 6).clamp(Duration::from_millis(500), Duration::from_secs(10)))
}

impl Heartbeat {
    /// Starts beating for the store's node (nothing without one).
    pub fn start(store: &Store) -> Self {
        let stop = CancellationToken::new();
        let task = beat_every(store).map(|every| {
            let store = store.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(every) => {}
                    }
                    let beating = store.clone();
                    match tokio::task::spawn_blocking(move || beating.heartbeat()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => tracing::warn!(%error, "heartbeat failed"),
                        Err(error) => tracing::warn!(%error, "heartbeat task failed"),
                    }
                }
            })
        });
        Self {
            stop,
            task,
            store: store.clone(),
        }
    }

    /// Stops beating and lets go of every claim, so other nodes take over
    /// at once rather than after the lease. A node that `forget`s is also
    /// removed from the node list (a command-line check); a daemon stays
    /// listed as stopped.
    pub async fn stop(mut self, forget: bool) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
            let store = self.store.clone();
            let left = tokio::task::spawn_blocking(move || {
                if forget {
                    store.node_left()
                } else {
                    store.node_stopped()
                }
            })
            .await;
            match left {
                Ok(Ok(())) => tracing::info!("left the shared store"),
                Ok(Err(error)) => tracing::warn!(%error, "could not record this node's stop"),
                Err(error) => tracing::warn!(%error, "could not record this node's stop"),
            }
        }
    }
}

/// A watch `tidings check` skipped because a node holds its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldElsewhere {
    /// The watch.
    pub watch: String,
    /// The node running its check.
    pub node: String,
    /// When that node's lease runs out unless it renews it.
    pub until: DateTime<Utc>,
}

/// The leases of a command-line check, held (and renewed) until
/// [`CommandLeases::release`].
pub struct CommandLeases {
    heartbeat: Heartbeat,
}

impl CommandLeases {
    /// On a shared store, joins it as a node of its own (`check@…`) for as
    /// long as the command runs, and takes the lease of every watch in
    /// `watches` that no node holds. Returns the leases, the watches this
    /// process may check (in the order given) and those held elsewhere.
    /// On an embedded store every watch is granted and nothing is held.
    pub fn take(
        store: Store,
        backend: &StoreBackend,
        watches: Vec<Watch>,
    ) -> Result<(Self, Vec<Watch>, Vec<HeldElsewhere>), StoreError> {
        let StoreBackend::Postgres(settings) = backend else {
            return Ok((
                Self {
                    heartbeat: Heartbeat::start(&store),
                },
                watches,
                Vec::new(),
            ));
        };
        let store = store.with_node(Node::for_command_check(settings.lease));
        let names: Vec<String> = watches.iter().map(|watch| watch.name.clone()).collect();
        // Two short calls: the store runs them off the async threads.
        store.register_node()?;
        let held = store.claim_now(&names)?;
        // Started before anything is checked: a check that outlasts one
        // lease keeps it.
        let heartbeat = Heartbeat::start(&store);
        let held: Vec<HeldElsewhere> = held
            .into_iter()
            .map(|(watch, node, until)| HeldElsewhere { watch, node, until })
            .collect();
        let granted = watches
            .into_iter()
            .filter(|watch| !held.iter().any(|h| h.watch == watch.name))
            .collect();
        Ok((Self { heartbeat }, granted, held))
    }

    /// Lets go of every lease and leaves the node list.
    pub async fn release(self) {
        self.heartbeat.stop(true).await;
    }
}
