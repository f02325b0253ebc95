//! A throwaway PostgreSQL for the tests that run against both stores.
//!
//! `.ci/run` starts one cluster and names it in `TIDINGS_TEST_PG_URL` (an
//! admin URL without a password) and `TIDINGS_TEST_PG_PASSWORD_FILE`.
//! Without them, the first test that asks starts a cluster of its own:
//! `initdb` into a temporary directory as the `postgres` user when run as
//! root, then `postgres` on a free loopback port, with password (SCRAM)
//! logins over TCP so that the password file path is exercised. That
//! server is told to stop when this test process ends (Linux's parent-death
//! signal, from a thread that lives as long as the process).
//!
//! Each test gets a database of its own. Without PostgreSQL's binaries the
//! tests that need it print why they skip, and fail instead when
//! `TIDINGS_REQUIRE_POSTGRES` is set (CI installs them). The binaries are
//! looked for in `/usr/lib/postgresql/*/bin`, or only in the directory
//! `TIDINGS_TEST_PG_BINARIES` names (a machine with PostgreSQL elsewhere;
//! `/nonexistent` plays a machine without it).
//!
//! The skip line goes to the process's stderr itself, not through
//! `eprintln!`: the test harness keeps a passing test's `eprintln!` output
//! to itself, and a skip must show in a plain `cargo test`.
//!
//! Scenarios that run on both stores take a [`Backend`]; the
//! [`on_both_backends!`] macro declares their twin tests.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tidings::config::{PasswordSource, PostgresSettings};

/// The password of the test clusters' admin role: the clusters listen on
/// loopback only and live for one test run.
const PASSWORD: &str = "tidings-test-only";

/// A database made for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// Its URL, without a password.
    pub url: String,
    /// A file holding the password.
    pub password_file: PathBuf,
}

impl TestDb {
    /// The settings a store opens it with.
    pub fn settings(&self) -> PostgresSettings {
        PostgresSettings {
            url: self.url.clone(),
            password: Some(PasswordSource::File(self.password_file.clone())),
            lease: std::time::Duration::from_secs(300),
        }
    }

    /// The `[store]` section of a config that uses it.
    pub fn store_toml(&self) -> String {
        format!(
            "[store]\nbackend = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\n",
            self.url,
            self.password_file.display()
        )
    }

    /// A client on it, for tests that look at the tables themselves.
    pub fn client(&self) -> postgres::Client {
        let password = std::fs::read_to_string(&self.password_file).expect("password file");
        let mut config: postgres::Config = self.url.parse().expect("url");
        config.password(password.trim_end());
        config.connect(postgres::NoTls).expect("connect")
    }
}

struct Cluster {
    /// Admin URL without a password, ending in `/postgres`.
    admin_url: String,
    password_file: PathBuf,
}

/// The environment variable naming the one directory to take `initdb`
/// and `postgres` from.
pub const BINARIES_VAR: &str = "TIDINGS_TEST_PG_BINARIES";

fn has_binaries(bin: &Path) -> bool {
    bin.join("initdb").is_file() && bin.join("postgres").is_file()
}

/// The directory holding PostgreSQL's server binaries, or why there is none.
pub fn binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(BINARIES_VAR) {
        let dir = PathBuf::from(dir);
        return if has_binaries(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "PostgreSQL's binaries (initdb, postgres) are not in {BINARIES_VAR}={}",
                dir.display()
            ))
        };
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|bin| has_binaries(bin))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().ok_or_else(|| {
        "PostgreSQL's binaries (initdb, postgres) are not installed in /usr/lib/postgresql/*/bin \
         (install Debian's postgresql, or name a server in TIDINGS_TEST_PG_URL)"
            .to_owned()
    })
}

fn cluster() -> Result<&'static Cluster, String> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            if let (Ok(url), Ok(file)) = (
                std::env::var("TIDINGS_TEST_PG_URL"),
                std::env::var("TIDINGS_TEST_PG_PASSWORD_FILE"),
            ) {
                return Ok(Cluster {
                    admin_url: url,
                    password_file: PathBuf::from(file),
                });
            }
            start_cluster()
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_cluster() -> Result<Cluster, String> {
    let bin = binaries()?;
    // Kept for the whole process: the server's files live here.
    let dir = Box::leak(Box::new(tempfile::tempdir().map_err(|e| e.to_string())?));
    let root = unsafe { libc::geteuid() } == 0;
    let owner = if root {
        let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
        if pw.is_null() {
            return Err("running as root and there is no `postgres` user to run the server".into());
        }
        Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
    } else {
        None
    };
    let data = dir.path().join("data");
    let pwfile = dir.path().join("password");
    std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
    }
    let as_owner = move |command: &mut Command| {
        if let Some((uid, gid)) = owner {
            command.uid(uid).gid(gid);
        }
    };
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "tidings",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["-E", "UTF8", "--no-sync"]);
    as_owner(&mut initdb);
    let out = initdb.output().map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = free_port();
    let (sender, receiver) = std::sync::mpsc::channel();
    let postgres = bin.join("postgres");
    let socket_dir = dir.path().to_path_buf();
    // The server is the child of a thread that never ends, so that the
    // parent-death signal fires when the process does, not when a test's
    // thread finishes.
    std::thread::spawn(move || {
        let mut command = Command::new(postgres);
        command
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1"])
            .arg("-k")
            .arg(&socket_dir)
            .args(["-c", "fsync=off", "-c", "max_connections=300"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        as_owner(&mut command);
        unsafe {
            command.pre_exec(|| {
                // SIGQUIT: stop at once, no checkpoint; the data is thrown away.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                Ok(())
            });
        }
        let child = command.spawn();
        let _ = sender.send(child.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        if let Ok(mut child) = child {
            let _ = child.wait();
        }
        loop {
            std::thread::park();
        }
    });
    receiver
        .recv()
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("postgres: {e}"))?;
    let cluster = Cluster {
        admin_url: format!("postgresql://tidings@127.0.0.1:{port}/postgres"),
        password_file: pwfile,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match admin(&cluster) {
            Ok(_) => return Ok(cluster),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("the test server did not start: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn admin(cluster: &Cluster) -> Result<postgres::Client, postgres::Error> {
    let password = std::fs::read_to_string(&cluster.password_file).unwrap_or_default();
    let mut config: postgres::Config = cluster.admin_url.parse()?;
    config.password(password.trim_end());
    config.connect_timeout(Duration::from_secs(5));
    config.connect(postgres::NoTls)
}

/// A new, empty database for the test `name`, or `None` (with a printed
/// reason) when there is no PostgreSQL to run it on.
pub fn database(name: &str) -> Option<TestDb> {
    // On a thread of its own: the sync client refuses to block inside an
    // async test's runtime.
    std::thread::scope(|scope| match scope.spawn(|| make_database(name)).join() {
        Ok(db) => db,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn make_database(name: &str) -> Option<TestDb> {
    let cluster = match cluster() {
        Ok(cluster) => cluster,
        Err(reason) => {
            if std::env::var_os("TIDINGS_REQUIRE_POSTGRES").is_some() {
                panic!("TIDINGS_REQUIRE_POSTGRES is set but {reason}");
            }
            // Past the harness's capture: see the module's comment.
            let line = format!("skipped on PostgreSQL: `{name}`: {reason}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            return None;
        }
    };
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let db = format!("t_{clean}_{}_{n}", std::process::id());
    let mut client = admin(cluster).unwrap_or_else(|e| panic!("test server: {e}"));
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap_or_else(|e| panic!("create database {db}: {e}"));
    let base = cluster
        .admin_url
        .strip_suffix("/postgres")
        .expect("admin url ends in /postgres");
    Some(TestDb {
        url: format!("{base}/{db}"),
        password_file: cluster.password_file.clone(),
    })
}

/// Where a test's PostgreSQL password lives, for configs that name it.
pub fn password_file(db: &TestDb) -> &Path {
    &db.password_file
}

/// The `[store] lease` of the daemons in scenarios on PostgreSQL: a daemon
/// killed with -9 leaves its checks and briefings claimed, and its
/// successor (a new node) takes them over once the lease runs out, so it
/// must be short enough to wait out (2 s is the least the config takes).
pub const TEST_LEASE: &str = "3s";

/// The store a scenario runs on. A scenario is written once, as a function
/// of its backend, and [`on_both_backends!`] declares a test for each.
#[derive(Debug)]
pub enum Backend {
    /// sled, the embedded default, in the test's state directory.
    Sled,
    /// A fresh PostgreSQL database of its own.
    Postgres(TestDb),
}

impl Backend {
    /// PostgreSQL, or `None` (having printed why) when there is none. The
    /// database is migrated, as `tidings store migrate` leaves it at set-up:
    /// commands other than `run` refuse a database without the schema.
    pub fn postgres(name: &str) -> Option<Self> {
        let db = database(name)?;
        // On a thread of its own, as in `database`: async tests call this.
        std::thread::scope(|scope| {
            scope
                .spawn(|| tidings::store::Store::migrate_postgres(&db.settings()))
                .join()
        })
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        .unwrap_or_else(|e| panic!("migrate {}: {e}", db.url));
        Some(Self::Postgres(db))
    }

    /// The `[store]` section a config needs for this backend: nothing for
    /// sled, the database and a short lease for PostgreSQL.
    pub fn store_toml(&self) -> String {
        match self {
            Self::Sled => String::new(),
            Self::Postgres(db) => format!("{}lease = \"{TEST_LEASE}\"\n", db.store_toml()),
        }
    }

    /// A store of its own for an in-process scenario: a temporary sled
    /// store, or the database with its schema made.
    pub fn open(&self) -> tidings::store::Store {
        match self {
            Self::Sled => tidings::store::Store::temporary().expect("sled store"),
            Self::Postgres(db) => {
                let store = tidings::store::Store::open_postgres(&db.settings(), true)
                    .expect("postgres store");
                assert!(store.is_shared());
                store
            }
        }
    }
}

/// Declares the twin tests of scenarios written as `fn NAME(&Backend)`:
/// `NAME::sled` and `NAME::postgres`, the second skipped (saying why, on
/// stderr) without PostgreSQL. `async` before the names declares tokio
/// tests of `async fn NAME(&Backend)`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    (async $($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sled() {
                    super::$scenario(&$crate::pg::Backend::Sled).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let name = concat!(stringify!($scenario), "::postgres");
                    if let Some(backend) = $crate::pg::Backend::postgres(name) {
                        super::$scenario(&backend).await;
                    }
                }
            }
        )+
    };
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[test]
                fn sled() {
                    super::$scenario(&$crate::pg::Backend::Sled);
                }

                #[test]
                fn postgres() {
                    let name = concat!(stringify!($scenario), "::postgres");
                    if let Some(backend) = $crate::pg::Backend::postgres(name) {
                        super::$scenario(&backend);
                    }
                }
            }
        )+
    };
}
