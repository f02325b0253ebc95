//! Several nodes on one shared (PostgreSQL) store: each daemon is a node
//! with an id; it claims each due check and each outbox row before acting,
//! so that exactly one node acts, and a node that dies loses its claims
//! when they expire. On an embedded store there is one node by
//! construction, and every claim is granted.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::kv::Kv;
pub use super::kv::{CheckClaim, NodeRow};
use super::{Store, StoreError};

/// This process as a node of a shared store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Unique among the nodes: host, pid and a random part.
    pub id: String,
    /// How long a claim lasts: longer than the slowest check or send, and
    /// how long a dead node's work waits before another node takes it.
    pub lease: Duration,
}

impl Node {
    /// An id for this process.
    pub fn new(lease: Duration) -> Self {
        let host = hostname();
        Self {
            id: format!("{host}-{}-{:04x}", std::process::id(), fastrand::u16(..)),
            lease,
        }
    }

    /// An id for `tidings check` run from the command line: a node only
    /// while it runs, shown as `check@HOST-PID-…` in `tidings status`.
    pub fn for_command_check(lease: Duration) -> Self {
        let node = Self::new(lease);
        Self {
            id: format!("check@{}", node.id),
            ..node
        }
    }
}

/// This machine's name, for telling nodes apart in `tidings status`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl Store {
    /// This store, acting as `node`: claims are taken in its name.
    #[must_use]
    pub fn with_node(mut self, node: Node) -> Self {
        self.node = Some(Arc::new(node));
        self
    }

    /// The node this store acts as, if it was given one.
    pub fn node(&self) -> Option<&Node> {
        self.node.as_deref()
    }

    fn shared_node(&self) -> Option<(&super::kv::PgKv, &Node)> {
        match (&self.kv, self.node.as_deref()) {
            (Kv::Pg(pg), Some(node)) => Some((pg, node)),
            _ => None,
        }
    }

    /// Records this node as started (a no-op on an embedded store).
    pub fn register_node(&self) -> Result<(), StoreError> {
        match self.shared_node() {
            Some((pg, node)) => {
                pg.register_node(&node.id, &hostname(), i64::from(std::process::id()))
            }
            None => Ok(()),
        }
    }

    /// Says this node is alive.
    pub fn heartbeat(&self) -> Result<(), StoreError> {
        match self.shared_node() {
            Some((pg, node)) => pg.heartbeat(&node.id, node.lease.as_secs_f64()),
            None => Ok(()),
        }
    }

    /// Records a clean stop and lets go of every claim at once.
    pub fn node_stopped(&self) -> Result<(), StoreError> {
        match self.shared_node() {
            Some((pg, node)) => pg.node_stopped(&node.id),
            None => Ok(()),
        }
    }

    /// Every node that ever used this store, with what each holds now
    /// (empty on an embedded store).
    pub fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        match &self.kv {
            Kv::Pg(pg) => pg.nodes(),
            Kv::Sled(_) => Ok(Vec::new()),
        }
    }

    /// Claims the check of `watch` due at `due`.
    pub fn claim_check(&self, watch: &str, due: DateTime<Utc>) -> Result<CheckClaim, StoreError> {
        Ok(self
            .claim_checks(&[(watch.to_owned(), due)])?
            .into_iter()
            .next()
            .map_or(CheckClaim::Granted, |(_, claim)| claim))
    }

    /// Claims the checks of several due watches in one round trip: what
    /// each claim found, once per distinct watch (all granted on an
    /// embedded store, or without a node).
    pub fn claim_checks(
        &self,
        wanted: &[(String, DateTime<Utc>)],
    ) -> Result<Vec<(String, CheckClaim)>, StoreError> {
        match self.shared_node() {
            Some((pg, node)) => Ok(pg
                .claim_checks(wanted, &node.id, node.lease.as_secs_f64(), false)?
                .into_iter()
                .map(|(watch, claim, _)| (watch, claim))
                .collect()),
            None => Ok(wanted
                .iter()
                .map(|(watch, _)| (watch.clone(), CheckClaim::Granted))
                .collect()),
        }
    }

    /// Takes the leases of `watches` for a check run now, whatever their
    /// schedule (`tidings check` from the command line): granted unless
    /// another node holds the lease, for then it is running that check.
    /// Returns the watches held elsewhere: the node and until when.
    pub fn claim_now(
        &self,
        watches: &[String],
    ) -> Result<Vec<(String, String, DateTime<Utc>)>, StoreError> {
        let Some((pg, node)) = self.shared_node() else {
            return Ok(Vec::new());
        };
        let now = Utc::now();
        let wanted: Vec<(String, DateTime<Utc>)> =
            watches.iter().map(|watch| (watch.clone(), now)).collect();
        Ok(pg
            .claim_checks(&wanted, &node.id, node.lease.as_secs_f64(), true)?
            .into_iter()
            .filter_map(|(watch, claim, holder)| match claim {
                CheckClaim::Granted => None,
                CheckClaim::Held(until) => Some((watch, holder.unwrap_or_default(), until)),
                // Not asked for: an on-demand claim ignores the marker.
                CheckClaim::Done => Some((watch, String::new(), now)),
            })
            .collect())
    }

    /// Records that this node ran the check due at `due`.
    pub fn finish_check(&self, watch: &str, due: DateTime<Utc>) -> Result<(), StoreError> {
        self.finish_checks(&[(watch.to_owned(), Some(due))])
    }

    /// Lets go of several leases in one round trip: a watch with a due
    /// time is recorded as checked for it, one without is only let go.
    pub fn finish_checks(
        &self,
        finished: &[(String, Option<DateTime<Utc>>)],
    ) -> Result<(), StoreError> {
        match self.shared_node() {
            Some((pg, node)) if !finished.is_empty() => pg.finish_checks(finished, &node.id),
            _ => Ok(()),
        }
    }

    /// Lets go of everything this node holds and removes it from the
    /// nodes `tidings status` lists: for a command-line check, which is a
    /// node only while it runs.
    pub fn node_left(&self) -> Result<(), StoreError> {
        match self.shared_node() {
            Some((pg, node)) => pg.node_left(&node.id),
            None => Ok(()),
        }
    }

    /// Keeps the rows this node may send (all of them on an embedded
    /// store, or without a node).
    pub(super) fn claim_rows(&self, ids: Vec<u64>) -> Result<Vec<u64>, StoreError> {
        match self.shared_node() {
            Some((pg, node)) if !ids.is_empty() => {
                pg.claim_rows(&ids, &node.id, node.lease.as_secs_f64())
            }
            _ => Ok(ids),
        }
    }

    /// When other nodes' claims on these rows end.
    pub(super) fn claimed_until(
        &self,
        ids: &[u64],
    ) -> Result<Vec<(u64, DateTime<Utc>)>, StoreError> {
        match self.shared_node() {
            Some((pg, node)) if !ids.is_empty() => pg.claimed_until(ids, &node.id),
            _ => Ok(Vec::new()),
        }
    }

    /// Records `value` under `name` for every node to agree on, or returns
    /// the different value another node recorded first.
    pub fn agree(&self, name: &str, value: &str) -> Result<Option<String>, StoreError> {
        let key = format!("agree:{name}");
        if self
            .kv
            .insert_new(super::kv::Tree::Meta, key.as_bytes(), value.as_bytes())?
        {
            return Ok(None);
        }
        let found = self
            .kv
            .get(super::kv::Tree::Meta, key.as_bytes())?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        Ok((found != value).then_some(found))
    }

    /// Forgets old claims.
    pub fn prune_claims(&self) -> Result<u64, StoreError> {
        match self.shared_node() {
            Some((pg, _)) => pg.prune_claims(),
            None => Ok(0),
        }
    }
}
