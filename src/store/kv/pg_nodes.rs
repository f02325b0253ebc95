//! Coordination between nodes on one PostgreSQL store: who is alive
//! (`tidings_nodes`), which node runs each watch's due check
//! (`tidings_leases`), and which node sends each outbox row
//! (`tidings_claims`). Times are the server's `now()`, so the nodes' clocks
//! never need to agree.

use chrono::{DateTime, SubsecRound, Utc};

use super::PgKv;
use crate::store::StoreError;

/// A node as the database knows it; also how `tidings status` reports it
/// (as JSON, the id is `node`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeRow {
    /// The node's id (host, pid and a random part).
    #[serde(rename = "node")]
    pub node_id: String,
    /// Its host name.
    pub hostname: String,
    /// Its process id.
    pub pid: i64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
    /// Whether it stopped cleanly.
    pub stopped: bool,
    /// The watches whose checks it holds now.
    pub holding: Vec<String>,
}

/// What a node's claim on a watch's due check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckClaim {
    /// This node runs the check.
    Granted,
    /// Another node ran the check for this due time already.
    Done,
    /// Another node holds it until this time (it runs it now, or died).
    Held(DateTime<Utc>),
}

impl PgKv {
    pub(crate) fn register_node(
        &self,
        node_id: &str,
        hostname: &str,
        pid: i64,
    ) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            conn.client.execute(
                "INSERT INTO tidings_nodes (node_id, hostname, pid, started_at, heartbeat_at, stopped)
                 VALUES ($1, $2, $3, now(), now(), FALSE)
                 ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now(), stopped = FALSE",
                &[&node_id, &hostname, &pid],
            )?;
            Ok(())
        })
    }

    /// Says the node is alive and renews what it holds: a check or a
    /// delivery that outlasts one lease (a slow site, a queue behind the
    /// concurrency limit) keeps its lease while its node beats, so no other
    /// node starts the same work; a dead node's leases lapse `ttl` after
    /// its last beat.
    pub(crate) fn heartbeat(&self, node_id: &str, ttl: f64) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            let mut tx = conn.client.transaction()?;
            tx.execute(
                "UPDATE tidings_nodes SET heartbeat_at = now() WHERE node_id = $1",
                &[&node_id],
            )?;
            tx.execute(
                "UPDATE tidings_leases SET expires_at = now() + $2::float8 * interval '1 second'
                 WHERE node_id = $1 AND expires_at > now()",
                &[&node_id, &ttl],
            )?;
            tx.execute(
                "UPDATE tidings_claims SET expires_at = now() + $2::float8 * interval '1 second'
                 WHERE node_id = $1 AND expires_at > now()",
                &[&node_id, &ttl],
            )?;
            tx.commit()
        })
    }

    /// Marks a node stopped and lets go of what it holds, so that other
    /// nodes need not wait for its leases to expire.
    pub(crate) fn node_stopped(&self, node_id: &str) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            let mut tx = conn.client.transaction()?;
            tx.execute(
                "UPDATE tidings_nodes SET stopped = TRUE, heartbeat_at = now() WHERE node_id = $1",
                &[&node_id],
            )?;
            tx.execute(
                "UPDATE tidings_leases SET expires_at = now() WHERE node_id = $1 AND expires_at > now()",
                &[&node_id],
            )?;
            tx.execute("DELETE FROM tidings_claims WHERE node_id = $1", &[&node_id])?;
            tx.commit()
        })
    }

    pub(crate) fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        self.with_conn(|conn| {
            let holding = conn.client.query(
                "SELECT node_id, watch FROM tidings_leases
                 WHERE expires_at > now() AND (done_due_at IS NULL OR done_due_at < due_at)
                 ORDER BY watch",
                &[],
            )?;
            let rows = conn.client.query(
                "SELECT node_id, hostname, pid, started_at, heartbeat_at, stopped
                 FROM tidings_nodes ORDER BY started_at, node_id",
                &[],
            )?;
            Ok(rows
                .into_iter()
                .map(|row| {
                    let node_id: String = row.get(0);
                    let holding = holding
                        .iter()
                        .filter(|h| h.get::<_, &str>(0) == node_id)
                        .map(|h| h.get::<_, String>(1))
                        .collect();
                    NodeRow {
                        hostname: row.get(1),
                        pid: row.get(2),
                        started_at: row.get(3),
                        heartbeat_at: row.get(4),
                        stopped: row.get(5),
                        holding,
                        node_id,
                    }
                })
                .collect())
        })
    }

    /// Claims the check of `watch` due at `due` for `node_id`, for `ttl`
    /// seconds. One transaction, the lease row locked: two nodes asking at
    /// once get one `Granted` between them.
    pub(crate) fn claim_check(
        &self,
        watch: &str,
        due: DateTime<Utc>,
        node_id: &str,
        ttl: f64,
    ) -> Result<CheckClaim, StoreError> {
        // PostgreSQL keeps microseconds: compared with what it gives back,
        // a due time with nanoseconds would never be "done".
        let due = due.trunc_subsecs(6);
        self.with_conn(|conn| {
            let mut attempt = 0;
            loop {
                let result = (|| {
                    let mut tx = conn.client.transaction()?;
                    tx.execute(
                        "INSERT INTO tidings_leases (watch, node_id, expires_at, due_at, done_due_at)
                         VALUES ($1, '', now(), $2, NULL) ON CONFLICT (watch) DO NOTHING",
                        &[&watch, &due],
                    )?;
                    let Some(row) = tx.query_opt(
                        "SELECT node_id, expires_at, done_due_at, expires_at > now()
                         FROM tidings_leases WHERE watch = $1 FOR UPDATE SKIP LOCKED",
                        &[&watch],
                    )?
                    else {
                        // Another node is deciding about it this instant.
                        tx.commit()?;
                        return Ok(CheckClaim::Held(Utc::now() + chrono::Duration::seconds(1)));
                    };
                    let holder: String = row.get(0);
                    let expires: DateTime<Utc> = row.get(1);
                    let done: Option<DateTime<Utc>> = row.get(2);
                    let live: bool = row.get(3);
                    if done.is_some_and(|done| done >= due) {
                        tx.commit()?;
                        return Ok(CheckClaim::Done);
                    }
                    if live && holder != node_id {
                        tx.commit()?;
                        return Ok(CheckClaim::Held(expires));
                    }
                    tx.execute(
                        "UPDATE tidings_leases
                         SET node_id = $2, due_at = $3, expires_at = now() + $4::float8 * interval '1 second'
                         WHERE watch = $1",
                        &[&watch, &node_id, &due, &ttl],
                    )?;
                    tx.commit()?;
                    Ok(CheckClaim::Granted)
                })();
                match result {
                    Err(e) if super::pg::retryable(&e) && attempt < 10 => attempt += 1,
                    other => return other,
                }
            }
        })
    }

    /// Records that the check due at `due` ran, and lets go of the lease.
    pub(crate) fn finish_check(
        &self,
        watch: &str,
        due: DateTime<Utc>,
        node_id: &str,
    ) -> Result<(), StoreError> {
        let due = due.trunc_subsecs(6);
        self.with_conn(|conn| {
            conn.client.execute(
                "UPDATE tidings_leases SET done_due_at = $2, expires_at = now()
                 WHERE watch = $1 AND node_id = $3",
                &[&watch, &due, &node_id],
            )?;
            Ok(())
        })
    }

    /// Claims outbox rows for sending: a row is granted when nobody holds
    /// it, its holder's claim expired, or this node holds it already.
    /// Returns the granted ids.
    pub(crate) fn claim_rows(
        &self,
        ids: &[u64],
        node_id: &str,
        ttl: f64,
    ) -> Result<Vec<u64>, StoreError> {
        self.with_conn(|conn| {
            let mut granted = Vec::with_capacity(ids.len());
            for &id in ids {
                let row_id = i64::try_from(id).unwrap_or(i64::MAX);
                let n = conn.client.execute(
                    "INSERT INTO tidings_claims (row_id, node_id, expires_at)
                     VALUES ($1, $2, now() + $3::float8 * interval '1 second')
                     ON CONFLICT (row_id) DO UPDATE
                     SET node_id = excluded.node_id, expires_at = excluded.expires_at
                     WHERE tidings_claims.expires_at < now()
                        OR tidings_claims.node_id = excluded.node_id",
                    &[&row_id, &node_id, &ttl],
                )?;
                if n == 1 {
                    granted.push(id);
                }
            }
            Ok(granted)
        })
    }

    /// When other nodes' claims on these rows run out (rows with no live
    /// claim by another node are left out).
    pub(crate) fn claimed_until(
        &self,
        ids: &[u64],
        node_id: &str,
    ) -> Result<Vec<(u64, DateTime<Utc>)>, StoreError> {
        let ids: Vec<i64> = ids
            .iter()
            .map(|&id| i64::try_from(id).unwrap_or(i64::MAX))
            .collect();
        self.with_conn(|conn| {
            Ok(conn
                .client
                .query(
                    "SELECT row_id, expires_at FROM tidings_claims
                     WHERE row_id = ANY($1) AND node_id <> $2 AND expires_at > now()",
                    &[&ids, &node_id],
                )?
                .into_iter()
                .map(|row| (u64::try_from(row.get::<_, i64>(0)).unwrap_or(0), row.get(1)))
                .collect())
        })
    }

    /// Drops claims on rows that no longer exist (sent and moved, pruned).
    pub(crate) fn prune_claims(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            conn.client.execute(
                "DELETE FROM tidings_claims WHERE expires_at < now() - interval '1 day'",
                &[],
            )
        })
    }
}
