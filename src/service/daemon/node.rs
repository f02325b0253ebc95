//! The daemon as one node of several on a shared (PostgreSQL) store: it
//! registers, beats a heartbeat, and claims each due check before starting
//! it, so that exactly one node runs a watch's check for a due time. On an
//! embedded store every claim is granted and none of this reaches a
//! database.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::Daemon;
use crate::config::Watch;
use crate::config::{Config, StoreBackend};
use crate::store::{CheckClaim, Node, Store};

/// Checks this node claimed, by watch: the due time each claim was for.
pub(super) type Leased = HashMap<String, DateTime<Utc>>;

/// Leases of finished checks not yet given back: the due time each check
/// ran for, or none when it did not run to the end.
pub(super) type Finished = Vec<(String, Option<DateTime<Utc>>)>;

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

impl Daemon {
    /// Claims the checks of a turn's due watches for this node, all in one
    /// round trip, and returns those this node runs. The others have their
    /// plan moved on: to their next run when another node checked them for
    /// this due time, to the end of the holder's lease when another node
    /// holds them (by then it has run the check, or it has died and this
    /// node runs it).
    pub(super) fn claim_due(&mut self, due: Vec<Watch>, now: DateTime<Utc>) -> Vec<Watch> {
        if self.store.node().is_none() || due.is_empty() {
            return due;
        }
        let wanted: Vec<(String, DateTime<Utc>)> = due
            .iter()
            .filter_map(|watch| {
                self.plan
                    .get(&watch.name)
                    .map(|planned| (watch.name.clone(), planned.due))
            })
            .collect();
        // Short blocking calls on the loop, a few per turn however many
        // watches are due: the claims, then the planning inputs of those
        // granted or done, then the leases given back.
        let claims = match tokio::task::block_in_place(|| self.store.claim_checks(&wanted)) {
            Ok(claims) => claims,
            Err(error) => {
                tracing::warn!(%error, watches = wanted.len(), "cannot claim due checks; trying again shortly");
                for (name, _) in &wanted {
                    self.plan.set_due(name, now + chrono::Duration::seconds(5));
                }
                return Vec::new();
            }
        };
        let claims: HashMap<String, CheckClaim> = claims.into_iter().collect();
        tracing::debug!(watches = claims.len(), ?claims, "claims");
        // Planned from the store as it was: another node may have checked
        // these since (a watch never checked is due at each node's own
        // "now"), so those granted are planned again under the claim, and
        // those another node checked for this due time are planned on.
        let replan: Vec<&str> = claims
            .iter()
            .filter(|(_, claim)| matches!(claim, CheckClaim::Granted | CheckClaim::Done))
            .map(|(name, _)| name.as_str())
            .collect();
        let fresh = if replan.is_empty() {
            Ok(Default::default())
        } else {
            tokio::task::block_in_place(|| self.store.plan_inputs(&replan))
        };
        let (states, paused) = match fresh {
            Ok(found) => found,
            Err(error) => {
                // Without a fresh plan a granted check might repeat one
                // another node just ran: give every lease back and retry.
                tracing::warn!(%error, "cannot read the claimed watches' state; trying again shortly");
                let back: Vec<(String, Option<DateTime<Utc>>)> = claims
                    .iter()
                    .filter(|(_, claim)| matches!(claim, CheckClaim::Granted))
                    .map(|(name, _)| (name.clone(), None))
                    .collect();
                let _ = tokio::task::block_in_place(|| self.store.finish_checks(&back));
                for (name, _) in &wanted {
                    self.plan.set_due(name, now + chrono::Duration::seconds(5));
                }
                return Vec::new();
            }
        };
        let wanted: HashMap<String, DateTime<Utc>> = wanted.into_iter().collect();
        let mut run = Vec::new();
        let mut give_back = Vec::new();
        for watch in due {
            let (Some(claim), Some(&due_at)) = (claims.get(&watch.name), wanted.get(&watch.name))
            else {
                continue;
            };
            // A check an admin asked for now (`check-now`) is due whatever
            // the schedule and the stored state say: its due time, the
            // moment it was asked, is claimed like any other, so one node
            // runs it.
            let asked = self.asked_now.remove(&watch.name);
            let next = match claim {
                CheckClaim::Granted if asked => now,
                CheckClaim::Granted | CheckClaim::Done => {
                    let inputs = super::plan::Inputs::stored(
                        states.get(&watch.name),
                        paused.contains(&watch.name),
                    );
                    self.remember(&watch.name, inputs);
                    self.due_from(&watch, inputs, now)
                }
                CheckClaim::Held(until) => *until,
            };
            if matches!(claim, CheckClaim::Granted) {
                if next <= now {
                    self.leased.insert(watch.name.clone(), due_at);
                    run.push(watch);
                    continue;
                }
                // A node that checked and let go meanwhile (or died after
                // storing its check) has moved the watch's next run on.
                give_back.push((watch.name.clone(), Some(due_at)));
            }
            // Never the same due time again: that would ask once per loop.
            self.plan.set_due(
                &watch.name,
                next.max(now + chrono::Duration::milliseconds(200)),
            );
        }
        if let Err(error) = tokio::task::block_in_place(|| self.store.finish_checks(&give_back)) {
            tracing::warn!(%error, "cannot give back claimed checks; their leases run out instead");
        }
        run
    }

    /// Plans again the watches whose pause changed in the shared store:
    /// `tidings pause` and `resume` write the database from any machine, and
    /// no node is asked, so each node looks every heartbeat. (A watch
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
        let stale: Vec<String> = self
            .plan
            .values()
            .filter(|p| p.inputs.paused != paused.contains_key(&p.watch.name))
            .map(|p| p.watch.name.clone())
            .collect();
        let now = Utc::now();
        for name in stale {
            let Some(due) = tokio::task::block_in_place(|| self.replan_stored(&name, now)) else {
                continue;
            };
            tracing::debug!(watch = %name, %due, "pause changed in the shared store");
            self.asked_now.remove(&name);
            self.plan.set_due(&name, due);
        }
    }

    /// Notes that this node is done with the check it claimed of `watch`
    /// (ran it to the end when `ran`); the leases are given back together
    /// by [`Self::give_back_leases`].
    pub(super) fn release(&mut self, watch: &str, ran: bool) {
        if let Some(due) = self.leased.remove(watch) {
            self.finished_leases
                .push((watch.to_owned(), ran.then_some(due)));
        }
    }

    /// Gives back, in one round trip, the leases of the checks that
    /// finished since the last call: a check that ran is recorded as done
    /// for its due time, so no node runs it again for that time.
    pub(super) fn give_back_leases(&mut self) {
        if self.finished_leases.is_empty() {
            return;
        }
        let finished = std::mem::take(&mut self.finished_leases);
        let store = &self.store;
        if let Err(error) = tokio::task::block_in_place(|| store.finish_checks(&finished)) {
            tracing::warn!(%error, checks = finished.len(), "cannot record checks as done; their leases run out instead");
        }
    }
}
