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

    /// Claims the checks of `wanted` (a watch and the due time its check
    /// is for) for `node_id`, for `ttl` seconds, in one statement: each
    /// lease row is inserted, or taken over when it has lapsed or is this
    /// node's already, and only while its "done for this due time" marker
    /// is older than the due time asked for. `on_demand` (`tidings check`
    /// from the command line) ignores that marker: its check is for no due
    /// time, and it only needs nobody else to be running the watch.
    ///
    /// `INSERT … ON CONFLICT DO UPDATE … WHERE` decides on the latest
    /// committed row and locks it, so two nodes asking at once get one
    /// grant between them. Rows are taken in name order, so two nodes
    /// claiming overlapping batches never wait on each other in a cycle.
    ///
    /// A node asks for its share of a batch only: the batch divided by the
    /// nodes whose heartbeat is younger than a lease (itself included, at
    /// least one; `tidings check` from the command line not counted), the watches chosen by a hash of the watch and the node's
    /// id, so each node prefers different ones. Otherwise the node whose
    /// statement came first would take every due check each turn, and the
    /// others would idle. What is left out comes back `Held` for a second:
    /// by then another node has taken it, or this node asks again.
    ///
    /// Returns, for each distinct watch asked for, what its claim found and
    /// the node holding it when that is another node.
    pub(crate) fn claim_checks(
        &self,
        wanted: &[(String, DateTime<Utc>)],
        node_id: &str,
        ttl: f64,
        on_demand: bool,
    ) -> Result<Vec<(String, CheckClaim, Option<String>)>, StoreError> {
        // Sorted and distinct: one row may be affected once per statement.
        let mut wanted: Vec<(&str, DateTime<Utc>)> = wanted
            .iter()
            // PostgreSQL keeps microseconds: compared with what it gives
            // back, a due time with nanoseconds would never be "done".
            .map(|(watch, due)| (watch.as_str(), due.trunc_subsecs(6)))
            .collect();
        wanted.sort_unstable();
        wanted.dedup_by(|a, b| a.0 == b.0);
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let watches: Vec<&str> = wanted.iter().map(|(watch, _)| *watch).collect();
        let dues: Vec<DateTime<Utc>> = wanted.iter().map(|(_, due)| *due).collect();
        self.with_conn(|conn| {
            let mut attempt = 0;
            loop {
                let result = conn.client.query(
                    "WITH wanted AS (
                         SELECT w.watch, w.due_at
                         FROM unnest($1::text[], $2::timestamptz[]) AS w (watch, due_at)
                     ),
                     live AS (
                         SELECT greatest(count(*), 1) AS nodes FROM tidings_nodes
                         WHERE NOT stopped
                           AND heartbeat_at > now() - $4::float8 * interval '1 second'
                           -- A command-line check runs no due checks.
                           AND node_id NOT LIKE 'check@%'
                     ),
                     chosen AS (
                         SELECT watch, due_at FROM wanted
                         ORDER BY md5(watch || $3)
                         LIMIT (SELECT CASE WHEN $5 THEN count(*)
                                       ELSE ceil(count(*)::float8 / (SELECT nodes FROM live))::bigint
                                       END
                                FROM wanted)
                     ),
                     granted AS (
                         INSERT INTO tidings_leases AS l (watch, node_id, expires_at, due_at, done_due_at)
                         SELECT watch, $3, now() + $4::float8 * interval '1 second', due_at, NULL
                         FROM chosen ORDER BY watch
                         ON CONFLICT (watch) DO UPDATE
                         SET node_id = excluded.node_id, due_at = excluded.due_at,
                             expires_at = excluded.expires_at
                         WHERE (l.expires_at <= now() OR l.node_id = excluded.node_id)
                           AND ($5 OR l.done_due_at IS NULL OR l.done_due_at < excluded.due_at)
                         RETURNING l.watch
                     )
                     SELECT w.watch, w.due_at, g.watch IS NOT NULL, c.watch IS NOT NULL,
                            l.node_id, l.expires_at, l.done_due_at, l.expires_at > now()
                     FROM wanted w
                     LEFT JOIN chosen c ON c.watch = w.watch
                     LEFT JOIN granted g ON g.watch = w.watch
                     LEFT JOIN tidings_leases l ON l.watch = w.watch",
                    &[&watches, &dues, &node_id, &ttl, &on_demand],
                );
                match result {
                    Err(e) if super::pg::retryable(&e) && attempt < 10 => attempt += 1,
                    Err(e) => return Err(e),
                    Ok(rows) => {
                        return Ok(rows
                            .iter()
                            .map(|row| {
                                let watch: String = row.get(0);
                                let due: DateTime<Utc> = row.get(1);
                                if row.get::<_, bool>(2) {
                                    return (watch, CheckClaim::Granted, None);
                                }
                                let soon = Utc::now() + chrono::Duration::seconds(1);
                                if !row.get::<_, bool>(3) {
                                    // Left to the other live nodes' share;
                                    // asked for again in a second if none
                                    // of them took it.
                                    return (watch, CheckClaim::Held(soon), None);
                                }
                                // The row as it was when the statement
                                // began, which may predate what refused the
                                // claim (another node's claim committed
                                // meanwhile): then ask again in a second.
                                let holder: Option<String> = row.get(4);
                                let expires: Option<DateTime<Utc>> = row.get(5);
                                let done: Option<DateTime<Utc>> = row.get(6);
                                let live: Option<bool> = row.get(7);
                                let claim = if !on_demand && done.is_some_and(|done| done >= due)
                                {
                                    CheckClaim::Done
                                } else if live == Some(true)
                                    && holder.as_deref() != Some(node_id)
                                {
                                    CheckClaim::Held(expires.unwrap_or(soon))
                                } else {
                                    CheckClaim::Held(soon)
                                };
                                let holder = holder.filter(|holder| holder != node_id);
                                (watch, claim, holder)
                            })
                            .collect());
                    }
                }
            }
        })
    }

    /// Lets go of leases this node holds, in one statement. A watch given
    /// a due time is recorded as checked for it (never moved back); one
    /// given none (a check that did not run to the end, or one run from
    /// the command line) is only let go.
    pub(crate) fn finish_checks(
        &self,
        finished: &[(String, Option<DateTime<Utc>>)],
        node_id: &str,
    ) -> Result<(), StoreError> {
        if finished.is_empty() {
            return Ok(());
        }
        let watches: Vec<&str> = finished.iter().map(|(watch, _)| watch.as_str()).collect();
        let dues: Vec<Option<DateTime<Utc>>> = finished
            .iter()
            .map(|(_, due)| due.map(|due| due.trunc_subsecs(6)))
            .collect();
        self.with_conn(|conn| {
            conn.client.execute(
                "UPDATE tidings_leases AS l
                 SET expires_at = now(),
                     done_due_at = CASE
                         WHEN f.due_at IS NULL THEN l.done_due_at
                         WHEN l.done_due_at IS NOT NULL AND l.done_due_at >= f.due_at
                             THEN l.done_due_at
                         ELSE f.due_at
                     END
                 FROM unnest($1::text[], $2::timestamptz[]) AS f (watch, due_at)
                 WHERE l.watch = f.watch AND l.node_id = $3",
                &[&watches, &dues, &node_id],
            )?;
            Ok(())
        })
    }

    /// Lets go of everything a node holds and forgets it: for `tidings
    /// check` from the command line, a node only while it runs.
    pub(crate) fn node_left(&self, node_id: &str) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            let mut tx = conn.client.transaction()?;
            tx.execute(
                "UPDATE tidings_leases SET expires_at = now() WHERE node_id = $1 AND expires_at > now()",
                &[&node_id],
            )?;
            tx.execute("DELETE FROM tidings_claims WHERE node_id = $1", &[&node_id])?;
            tx.execute("DELETE FROM tidings_nodes WHERE node_id = $1", &[&node_id])?;
            tx.commit()
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
