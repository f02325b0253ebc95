//! The daemon as one node of several on a shared (PostgreSQL) store: it
//! registers, beats a heartbeat, and claims each due check before starting
//! it, so that exactly one node runs a watch's check for a due time. On an
//! embedded store every claim is granted and none of this reaches a
//! database.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::Daemon;
use crate::config::Watch;
use crate::config::{Config, StoreBackend};
use crate::store::{CheckClaim, Node, Store};

/// Checks this node claimed, by watch: the due time each claim was for.
pub(super) type Leased = HashMap<String, DateTime<Utc>>;

/// Gives a shared store this process's node identity and records it.
pub(super) async fn join(store: Store, config: &Config) -> anyhow::Result<Store> {
    let StoreBackend::Postgres(settings) = &config.store else {
        return Ok(store);
    };
    let store = store.with_node(Node::new(settings.lease));
    let registering = store.clone();
    tokio::task::spawn_blocking(move || registering.register_node()).await??;
    if let Some(node) = store.node() {
        tracing::info!(node = %node.id, lease = %humantime::format_duration(node.lease), "joined the shared store as a node");
    }
    Ok(store)
}

/// The heartbeat task: a beat every sixth of a lease (at most every 10 s),
/// so that `tidings status` shows a dead node as silent well before its
/// claims run out.
pub(super) struct Heartbeat {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    store: Store,
}

/// How often a node beats, and reads the shared pauses again: a sixth of
/// a lease, between half a second and 10 s. `None` off a shared store.
pub(super) fn beat_every(store: &Store) -> Option<Duration> {
    store
        .node()
        .map(|node| (node.lease / 6).clamp(Duration::from_millis(500), Duration::from_secs(10)))
}

impl Heartbeat {
    pub(super) fn start(store: &Store) -> Self {
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
    /// at once rather than after the lease.
    pub(super) async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
            let store = self.store.clone();
            match tokio::task::spawn_blocking(move || store.node_stopped()).await {
                Ok(Ok(())) => tracing::info!("left the shared store"),
                Ok(Err(error)) => tracing::warn!(%error, "could not record this node's stop"),
                Err(error) => tracing::warn!(%error, "could not record this node's stop"),
            }
        }
    }
}

impl Daemon {
    /// Claims a due watch's check for this node. False when another node
    /// holds it or has run it; its plan is moved on accordingly.
    pub(super) fn claim(&mut self, watch: &Watch, now: DateTime<Utc>) -> bool {
        if self.store.node().is_none() {
            return true;
        }
        let Some(due) = self.plan.get(&watch.name).map(|p| p.due) else {
            return false;
        };
        // A check an admin asked for now is due whatever the schedule and
        // the stored state say; its due time (the moment it was asked) is
        // claimed like any other, so one node runs it.
        let asked = self.asked_now.remove(&watch.name);
        // Planned from the store as it was; another node may have checked
        // since (a watch never checked is due at each node's own "now").
        let fresh = if asked {
            now
        } else {
            tokio::task::block_in_place(|| self.plan_next(watch, now))
        };
        if fresh > now {
            self.plan.set_due(&watch.name, fresh);
            return false;
        }
        // A short blocking call on the loop: one indexed row, one round trip.
        let claim = tokio::task::block_in_place(|| self.store.claim_check(&watch.name, due));
        tracing::debug!(watch = %watch.name, %due, ?claim, "claim");
        let next = match claim {
            Ok(CheckClaim::Granted) if asked => {
                self.leased.insert(watch.name.clone(), due);
                return true;
            }
            Ok(CheckClaim::Granted) => {
                // Planned again under the claim: a node that checked and
                // let go meanwhile (or died after storing its check) has
                // moved the watch's next run on.
                let fresh = tokio::task::block_in_place(|| self.plan_next(watch, now));
                tracing::debug!(watch = %watch.name, %fresh, "granted; fresh plan");
                if fresh <= now {
                    self.leased.insert(watch.name.clone(), due);
                    return true;
                }
                let _ = tokio::task::block_in_place(|| self.store.finish_check(&watch.name, due));
                fresh
            }
            Ok(CheckClaim::Done) => self.plan_next(watch, now),
            // Looked at again when the holder's claim runs out: by then it
            // has run the check (and this node moves on) or it has died
            // (and this node runs it).
            Ok(CheckClaim::Held(until)) => until,
            Err(error) => {
                if asked {
                    self.asked_now.insert(watch.name.clone());
                }
                tracing::warn!(watch = %watch.name, %error, "cannot claim the check; trying again shortly");
                now + chrono::Duration::seconds(5)
            }
        };
        // Never the same due time again: that would ask once per loop.
        self.plan.set_due(
            &watch.name,
            next.max(now + chrono::Duration::milliseconds(200)),
        );
        false
    }

    /// Plans again the watches whose pause changed in the shared store:
    /// `tidings pause` and `resume` write the database from any machine, and
    /// no node is asked, so each node looks every [`beat_every`]. (A watch
    /// paused elsewhere would be skipped at its claim anyway; a resumed one
    /// would otherwise stay unplanned until a restart.)
    pub(super) fn sync_pauses(&mut self) {
        let paused = match tokio::task::block_in_place(|| self.store.paused()) {
            Ok(paused) => paused,
            Err(error) => {
                tracing::warn!(%error, "cannot read the pauses of the shared store");
                return;
            }
        };
        let stale: Vec<Watch> = self
            .plan
            .values()
            .filter(|p| (p.due == DateTime::<Utc>::MAX_UTC) != paused.contains_key(&p.watch.name))
            .map(|p| p.watch.clone())
            .collect();
        let now = Utc::now();
        for watch in stale {
            let due = tokio::task::block_in_place(|| self.plan_next(&watch, now));
            tracing::debug!(watch = %watch.name, %due, "pause changed in the shared store");
            self.asked_now.remove(&watch.name);
            self.plan.set_due(&watch.name, due);
        }
    }

    /// Records that this node ran the check it claimed.
    pub(super) fn release(&mut self, watch: &str) {
        if let Some(due) = self.leased.remove(watch) {
            let store = &self.store;
            if let Err(error) = tokio::task::block_in_place(|| store.finish_check(watch, due)) {
                tracing::warn!(%watch, %error, "cannot record the check as done; its lease runs out instead");
            }
        }
    }
}
