//! The PostgreSQL backend: every tree in one table, `tidings_kv(tree, key,
//! value)`, keyed by `(tree, key)` so that a prefix scan is an index range
//! scan in the same byte order sled uses.
//!
//! The SQL is plain on purpose (no extensions, no advisory locks, no
//! `LISTEN`, no `SKIP LOCKED`), so that engines speaking PostgreSQL's
//! protocol with a distributed storage layer can run it too; what was
//! checked (by reading only) is in `docs/postgres.md`.
//!
//! The store's API is synchronous and is called from async tasks, from
//! blocking threads and from tests. The `postgres` client runs its own
//! small runtime and refuses to block inside another runtime's async
//! context; see [`off_runtime`] for where each call runs.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, IsolationLevel, Statement};
use secrecy::{ExposeSecret, SecretString};

use super::{Tree, Tx, TxError, Visit, prefix_end};
use crate::store::StoreError;

/// The schema this build writes. `tidings store migrate` (and `run` at
/// start) brings an older one up to it; a newer one is refused.
pub(crate) const SCHEMA_VERSION: i32 = 2;

/// Each step from one schema version to the next, in order.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE IF NOT EXISTS tidings_kv (
             tree TEXT NOT NULL,
             key BYTEA NOT NULL,
             value BYTEA NOT NULL,
             PRIMARY KEY (tree, key)
         );
         CREATE SEQUENCE IF NOT EXISTS tidings_ids",
    ),
    (
        2,
        "CREATE TABLE IF NOT EXISTS tidings_nodes (
             node_id TEXT PRIMARY KEY,
             hostname TEXT NOT NULL,
             pid BIGINT NOT NULL,
             started_at TIMESTAMPTZ NOT NULL,
             heartbeat_at TIMESTAMPTZ NOT NULL,
             stopped BOOLEAN NOT NULL DEFAULT FALSE
         );
         CREATE TABLE IF NOT EXISTS tidings_leases (
             watch TEXT PRIMARY KEY,
             node_id TEXT NOT NULL,
             expires_at TIMESTAMPTZ NOT NULL,
             due_at TIMESTAMPTZ NOT NULL,
             done_due_at TIMESTAMPTZ
         );
         CREATE TABLE IF NOT EXISTS tidings_claims (
             row_id BIGINT PRIMARY KEY,
             node_id TEXT NOT NULL,
             expires_at TIMESTAMPTZ NOT NULL
         )",
    ),
];

/// How many connections one process opens at most. Checks run a few at a
/// time and each holds a connection for a handful of short statements.
const POOL_SIZE: usize = 8;
/// How long a caller waits for a free connection before giving up.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Server-side limit on any one statement, so that a stuck query fails
/// rather than holding a check forever.
const STATEMENT_TIMEOUT: &str = "SET statement_timeout = '30s'";
/// How many times a transaction is retried after a serialization failure.
const RETRIES: u32 = 30;
/// Rows read per query in a scan.
const PAGE: i64 = 256;

/// Where the database is and how to log in.
#[derive(Clone)]
pub(crate) struct PgSettings {
    /// The connection URL, without a password.
    pub(crate) url: String,
    /// The password, from `password_file` or `password_env`.
    pub(crate) password: Option<SecretString>,
}

/// The statements every connection prepares once.
pub(crate) struct Stmts {
    get: Statement,
    upsert: Statement,
    insert_new: Statement,
    remove: Statement,
    scan_fwd: Statement,
    scan_fwd_open: Statement,
    scan_rev: Statement,
    scan_rev_open: Statement,
}

pub(crate) struct Conn {
    pub(crate) client: Client,
    /// Prepared on first use: a connection that migrates the schema
    /// exists before the tables do.
    stmts: Option<Stmts>,
}

impl Conn {
    /// The client and the prepared statements, preparing them if needed.
    fn parts(&mut self) -> Result<(&mut Client, &Stmts), postgres::Error> {
        let stmts = match self.stmts.take() {
            Some(stmts) => stmts,
            None => prepare(&mut self.client)?,
        };
        Ok((&mut self.client, self.stmts.insert(stmts)))
    }
}

struct Pool {
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// The URL without its password, for messages.
    label: String,
    idle: Mutex<(Vec<Conn>, usize)>,
    freed: Condvar,
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing a client blocks on its own runtime too.
        let idle = std::mem::take(
            &mut self
                .idle
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0,
        );
        off_runtime(move || drop(idle));
    }
}

/// A pool of connections to one database.
#[derive(Clone)]
pub(crate) struct PgKv {
    pool: Arc<Pool>,
}

impl std::fmt::Debug for PgKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgKv")
            .field("url", &self.pool.label)
            .finish_non_exhaustive()
    }
}

/// The URL with any password in it replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn db_error(label: &str, error: &postgres::Error) -> StoreError {
    // The server's own message says most (a missing role, a refused
    // password); the client's says what failed on the way (connect, TLS).
    let detail = match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text = format!("{text}: {cause_text}");
                }
                source = cause.source();
            }
            text
        }
    };
    StoreError::Database {
        url: label.to_owned(),
        detail,
    }
}

pub(super) fn retryable(error: &postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::UNIQUE_VIOLATION
    )
}

/// Runs `f` where the sync client may block.
///
/// - No runtime current (a plain thread): in place.
/// - A multi-threaded runtime (every runtime tidings builds, see
///   `cli::common::runtime`): through `block_in_place`. On a worker thread
///   it hands the worker's queue to another thread and leaves the runtime
///   context, so the client's own `block_on` is allowed; on a blocking-pool
///   thread (`spawn_blocking`, where the pipeline commits) it is a plain
///   call. Either way no thread is created per call, which a spawned
///   helper thread did: its cost showed in every database call.
/// - A current-thread runtime (`#[tokio::test]`): `block_in_place` panics
///   there, and nothing public tells its async context from one of its
///   blocking threads, so the call runs on a scoped helper thread as
///   before. Only tests run such a runtime.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match tokio::runtime::Handle::try_current() {
        Err(_) => f(),
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        Ok(_) => std::thread::scope(|scope| match scope.spawn(f).join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    }
}

impl PgKv {
    /// Connects and brings the schema up to date, and nothing else.
    pub(crate) fn migrate_only(settings: &PgSettings) -> Result<(i32, i32), StoreError> {
        Self::connect_only(settings)?.migrate()
    }

    /// A pool for the database; no connection is made yet.
    fn connect_only(settings: &PgSettings) -> Result<Self, StoreError> {
        let label = redact(&settings.url);
        let mut config: postgres::Config =
            settings.url.parse().map_err(|e| StoreError::Database {
                url: label.clone(),
                detail: format!("not a PostgreSQL URL: {e}"),
            })?;
        if let Some(password) = &settings.password {
            config.password(password.expose_secret().as_bytes());
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("tidings");
        let tls = match config.get_ssl_mode() {
            postgres::config::SslMode::Disable => None,
            _ => Some(tls_connector().map_err(|detail| StoreError::Database {
                url: label.clone(),
                detail,
            })?),
        };
        Ok(Self {
            pool: Arc::new(Pool {
                config,
                tls,
                label,
                idle: Mutex::new((Vec::new(), 0)),
                freed: Condvar::new(),
            }),
        })
    }

    /// Connects, and checks that the schema is the one this build writes.
    /// With `migrate`, brings an older schema up to date first.
    pub(crate) fn open(settings: &PgSettings, migrate: bool) -> Result<Self, StoreError> {
        let kv = Self::connect_only(settings)?;
        if migrate {
            kv.migrate()?;
        }
        let found = kv.schema_version()?;
        if found < SCHEMA_VERSION {
            return Err(StoreError::SchemaBehind {
                url: kv.pool.label.clone(),
                found,
                wanted: SCHEMA_VERSION,
            });
        }
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                url: kv.pool.label.clone(),
                found,
                wanted: SCHEMA_VERSION,
            });
        }
        Ok(kv)
    }

    /// The URL without its password.
    pub(crate) fn label(&self) -> &str {
        &self.pool.label
    }

    /// The schema version in the database; 0 when it has none.
    pub(crate) fn schema_version(&self) -> Result<i32, StoreError> {
        self.with_conn(|conn| {
            let exists = conn
                .client
                // information_schema rather than `to_regclass`: every
                // engine that speaks PostgreSQL's protocol has it.
                .query_one(
                    "SELECT count(*) > 0 FROM information_schema.tables
                     WHERE table_schema = current_schema() AND table_name = 'tidings_schema'",
                    &[],
                )?
                .get::<_, bool>(0);
            if !exists {
                return Ok(0);
            }
            Ok(conn
                .client
                .query_opt("SELECT version FROM tidings_schema WHERE id = 1", &[])?
                .map_or(0, |row| row.get::<_, i32>(0)))
        })
    }

    /// Brings the schema up to [`SCHEMA_VERSION`]. Safe to run from several
    /// nodes at once: the version row is locked while a step runs. Returns
    /// the versions before and after.
    pub(crate) fn migrate(&self) -> Result<(i32, i32), StoreError> {
        self.with_conn(|conn| {
            let client = &mut conn.client;
            let mut attempt = 0;
            loop {
                let result = (|| {
                    client.batch_execute(
                        "CREATE TABLE IF NOT EXISTS tidings_schema (
                             id INTEGER PRIMARY KEY,
                             version INTEGER NOT NULL
                         );
                         INSERT INTO tidings_schema (id, version) VALUES (1, 0)
                             ON CONFLICT (id) DO NOTHING",
                    )?;
                    let mut tx = client.transaction()?;
                    let before: i32 = tx
                        .query_one(
                            "SELECT version FROM tidings_schema WHERE id = 1 FOR UPDATE",
                            &[],
                        )?
                        .get(0);
                    // Every step's DDL first, then one write of the
                    // version: CockroachDB refuses a schema change after a
                    // write in the same transaction.
                    let mut reached = before;
                    for (version, sql) in MIGRATIONS {
                        if *version > before {
                            tx.batch_execute(sql)?;
                            reached = *version;
                        }
                    }
                    if reached > before {
                        tx.execute(
                            "UPDATE tidings_schema SET version = $1 WHERE id = 1",
                            &[&reached],
                        )?;
                    }
                    tx.commit()?;
                    Ok((before, before.max(SCHEMA_VERSION)))
                })();
                match result {
                    // Two nodes creating the same table at once: one wins,
                    // the other retries and finds it.
                    Err(e) if retryable(&e) && attempt < RETRIES => attempt += 1,
                    other => return other,
                }
            }
        })
    }

    fn connect(&self) -> Result<Conn, postgres::Error> {
        let mut client = match &self.pool.tls {
            Some(tls) => self.pool.config.connect(tls.clone())?,
            None => self.pool.config.connect(postgres::NoTls)?,
        };
        client.batch_execute(STATEMENT_TIMEOUT)?;
        Ok(Conn {
            client,
            stmts: None,
        })
    }

    /// Runs `f` with a pooled connection. A connection that broke is
    /// dropped, and the next caller opens a new one.
    pub(crate) fn with_conn<T: Send>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, StoreError> {
        off_runtime(|| {
            let mut conn = self.take()?;
            let result = f(&mut conn);
            self.give_back(conn);
            result.map_err(|e| db_error(&self.pool.label, &e))
        })
    }

    fn take(&self) -> Result<Conn, StoreError> {
        let deadline = std::time::Instant::now() + POOL_WAIT;
        let mut guard = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if let Some(conn) = guard.0.pop() {
                return Ok(conn);
            }
            if guard.1 < POOL_SIZE {
                guard.1 += 1;
                drop(guard);
                return self.connect().map_err(|e| {
                    let mut guard = self
                        .pool
                        .idle
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    guard.1 -= 1;
                    db_error(&self.pool.label, &e)
                });
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(StoreError::Database {
                    url: self.pool.label.clone(),
                    detail: format!("no free connection after {}s", POOL_WAIT.as_secs()),
                });
            }
            guard = self
                .pool
                .freed
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    fn give_back(&self, conn: Conn) {
        let mut guard = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if conn.client.is_closed() {
            guard.1 -= 1;
        } else {
            guard.0.push(conn);
        }
        drop(guard);
        self.pool.freed.notify_one();
    }

    pub(crate) fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_conn(|conn| {
            let (client, stmts) = conn.parts()?;
            Ok(client
                .query_opt(&stmts.get, &[&tree.name(), &key])?
                .map(|row| row.get(0)))
        })
    }

    pub(crate) fn get_many(
        &self,
        tree: Tree,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut found: std::collections::HashMap<Vec<u8>, Vec<u8>> = self.with_conn(|conn| {
            Ok(conn
                .client
                .query(
                    "SELECT key, value FROM tidings_kv WHERE tree = $1 AND key = ANY($2)",
                    &[&tree.name(), &keys],
                )?
                .into_iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect())
        })?;
        Ok(keys.iter().map(|key| found.remove(*key)).collect())
    }

    pub(crate) fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        // Whether the key was new, read and written in one transaction.
        self.transaction("record", |tx| {
            let existed = tx.get(tree, key)?.is_some();
            tx.insert(tree, key, value)?;
            Ok(!existed)
        })
    }

    pub(crate) fn insert_new(
        &self,
        tree: Tree,
        key: &[u8],
        value: &[u8],
    ) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            let (client, stmts) = conn.parts()?;
            Ok(client.execute(&stmts.insert_new, &[&tree.name(), &key, &value])? == 1)
        })
    }

    pub(crate) fn remove(&self, tree: Tree, key: &[u8]) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            let (client, stmts) = conn.parts()?;
            Ok(client.execute(&stmts.remove, &[&tree.name(), &key])? == 1)
        })
    }

    pub(crate) fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        // Read a page at a time, each page a query of its own that starts
        // after the last key seen: a long scan never holds a transaction
        // open, and the visitor (which may stop early) runs between pages.
        self.scan_range(tree, prefix.to_vec(), prefix_end(prefix), reverse, visit)
    }

    pub(crate) fn scan_range(
        &self,
        tree: Tree,
        mut low: Vec<u8>,
        mut high: Option<Vec<u8>>,
        reverse: bool,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        loop {
            let page: Vec<super::Entry> = self.with_conn(|conn| {
                let (client, s) = conn.parts()?;
                let name = tree.name();
                let rows = match (reverse, &high) {
                    (false, Some(high)) => {
                        client.query(&s.scan_fwd, &[&name, &low, &high, &PAGE])?
                    }
                    (false, None) => client.query(&s.scan_fwd_open, &[&name, &low, &PAGE])?,
                    (true, Some(high)) => {
                        client.query(&s.scan_rev, &[&name, &low, &high, &PAGE])?
                    }
                    (true, None) => client.query(&s.scan_rev_open, &[&name, &low, &PAGE])?,
                };
                Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
            })?;
            let full = page.len() as i64 == PAGE;
            for (key, value) in &page {
                if visit(key, value)?.is_break() {
                    return Ok(());
                }
            }
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            if !full {
                return Ok(());
            }
            if reverse {
                high = Some(last.clone());
            } else {
                // The smallest key after `last`.
                low = last.clone();
                low.push(0);
            }
        }
    }

    pub(crate) fn len(&self, tree: Tree) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            let n: i64 = conn
                .client
                .query_one(
                    "SELECT count(*) FROM tidings_kv WHERE tree = $1",
                    &[&tree.name()],
                )?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    pub(crate) fn generate_id(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            let n: i64 = conn
                .client
                .query_one("SELECT nextval('tidings_ids')", &[])?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    pub(crate) fn advance_ids(&self, id: u64) -> Result<(), StoreError> {
        let id = i64::try_from(id).unwrap_or(i64::MAX - 1);
        self.with_conn(|conn| {
            let current: i64 = conn
                .client
                .query_one("SELECT nextval('tidings_ids')", &[])?
                .get(0);
            if current <= id {
                conn.client
                    .execute("SELECT setval('tidings_ids', $1)", &[&(id + 1)])?;
            }
            Ok(())
        })
    }

    pub(crate) fn transaction<T: Send>(
        &self,
        what: &'static str,
        f: impl Fn(&mut Tx<'_, '_>) -> Result<T, TxError> + Sync,
    ) -> Result<T, StoreError> {
        let label = self.pool.label.clone();
        let outcome = self.with_conn(|conn| {
            let (client, stmts) = conn.parts()?;
            let mut attempt = 0;
            loop {
                let mut tx = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::Serializable)
                    .start()?;
                let ran = {
                    let mut view = Tx::Pg(&mut tx, stmts);
                    f(&mut view)
                };
                let result = match ran {
                    Ok(value) => tx.commit().map(|()| Ok(value)).map_err(TxError::Pg),
                    Err(TxError::Abort(reason)) => Ok(Err(reason)),
                    Err(other) => Err(other),
                };
                match result {
                    Ok(done) => return Ok(done),
                    Err(TxError::Pg(e)) if retryable(&e) && attempt < RETRIES => {
                        attempt += 1;
                        // Back off a little, with jitter, so that two
                        // nodes that collided do not collide again.
                        std::thread::sleep(Duration::from_millis(
                            2 * u64::from(attempt) + fastrand::u64(0..5),
                        ));
                    }
                    Err(TxError::Pg(e)) => return Err(e),
                    Err(other) => return Ok(Err(format!("{other:?}"))),
                }
            }
        })?;
        outcome.map_err(|reason| StoreError::Corrupt {
            path: label.into(),
            what,
            reason,
        })
    }

    pub(crate) fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            let n: i64 = conn
                .client
                .query_one("SELECT pg_total_relation_size('tidings_kv')", &[])?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}

fn prepare(client: &mut Client) -> Result<Stmts, postgres::Error> {
    Ok(Stmts {
        get: client.prepare("SELECT value FROM tidings_kv WHERE tree = $1 AND key = $2")?,
        upsert: client.prepare(
            "INSERT INTO tidings_kv (tree, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (tree, key) DO UPDATE SET value = excluded.value",
        )?,
        insert_new: client.prepare(
            "INSERT INTO tidings_kv (tree, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (tree, key) DO NOTHING",
        )?,
        remove: client.prepare("DELETE FROM tidings_kv WHERE tree = $1 AND key = $2")?,
        scan_fwd: client.prepare(
            "SELECT key, value FROM tidings_kv WHERE tree = $1 AND key >= $2 AND key < $3
             ORDER BY key LIMIT $4",
        )?,
        scan_fwd_open: client.prepare(
            "SELECT key, value FROM tidings_kv WHERE tree = $1 AND key >= $2
             ORDER BY key LIMIT $3",
        )?,
        scan_rev: client.prepare(
            "SELECT key, value FROM tidings_kv WHERE tree = $1 AND key >= $2 AND key < $3
             ORDER BY key DESC LIMIT $4",
        )?,
        scan_rev_open: client.prepare(
            "SELECT key, value FROM tidings_kv WHERE tree = $1 AND key >= $2
             ORDER BY key DESC LIMIT $3",
        )?,
    })
}

pub(super) fn tx_get(
    tx: &mut postgres::Transaction<'_>,
    stmts: &Stmts,
    tree: Tree,
    key: &[u8],
) -> Result<Option<Vec<u8>>, postgres::Error> {
    Ok(tx
        .query_opt(&stmts.get, &[&tree.name(), &key])?
        .map(|row| row.get(0)))
}

pub(super) fn tx_insert(
    tx: &mut postgres::Transaction<'_>,
    stmts: &Stmts,
    tree: Tree,
    key: &[u8],
    value: &[u8],
) -> Result<(), postgres::Error> {
    tx.execute(&stmts.upsert, &[&tree.name(), &key, &value])?;
    Ok(())
}

pub(super) fn tx_remove(
    tx: &mut postgres::Transaction<'_>,
    stmts: &Stmts,
    tree: Tree,
    key: &[u8],
) -> Result<bool, postgres::Error> {
    Ok(tx.execute(&stmts.remove, &[&tree.name(), &key])? == 1)
}

/// TLS for `sslmode=prefer` or `require`: the platform's trust store, as
/// mail and fetches use. A private CA belongs in the system's store.
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
