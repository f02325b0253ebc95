//! The PostgreSQL store from the command line: `validate` names what is
//! wrong with `[store]`, `store migrate` brings the schema up to date,
//! `check` and `history` work on it, `run` brings a fresh database's
//! schema up at start, and `store copy --from-sled` moves an embedded store
//! into it with every record. Skipped (saying so) without PostgreSQL.

mod common;
#[path = "common/daemon.rs"]
mod harness;
#[path = "common/pg.rs"]
mod pg;

use chrono::Utc;
use common::{Site, WatchDef, Workspace, config_text};
use tidings::core::model::{Block, BlockKind};
use tidings::store::{
    Cadence, NewChange, NewVersion, Notify, Recipient, Store, Subscriber, WatchState,
};

fn pg_workspace(db: &pg::TestDb, watches: &[WatchDef]) -> Workspace {
    Workspace::with_config(&format!("{}\n{}", config_text(watches), db.store_toml()))
}

#[test]
fn validate_names_each_store_problem_and_migrate_fixes_the_schema() {
    let Some(db) = pg::database("validate_names_each_store_problem_and_migrate_fixes_the_schema")
    else {
        return;
    };
    let ws = pg_workspace(&db, &[]);
    let run = ws.run(&["validate"]);
    assert_eq!(run.code, 78, "{run}");
    assert!(
        run.stderr.contains("tidings store migrate") && run.stderr.contains(&db.url),
        "{run}"
    );

    let run = ws.run(&["store", "migrate"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("from version 0 to 2"), "{run}");
    let run = ws.run(&["store", "migrate"]);
    assert!(run.stdout.contains("current"), "{run}");
    let run = ws.run(&["validate"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("schema current"), "{run}");

    // A password file that is not there is named.
    let missing = ws.path().join("no-such-password");
    let text = format!(
        "{}\n[store]\nbackend = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\n",
        config_text(&[]),
        db.url,
        missing.display()
    );
    let ws2 = Workspace::with_config(&text);
    let run = ws2.run(&["validate"]);
    assert_eq!(run.code, 78, "{run}");
    assert!(run.stderr.contains("no-such-password"), "{run}");

    // A server that does not answer is named by its address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let text = format!(
        "{}\n[store]\nbackend = \"postgres\"\nurl = \"postgresql://tidings@127.0.0.1:{port}/x\"\n",
        config_text(&[])
    );
    let ws3 = Workspace::with_config(&text);
    let run = ws3.run(&["validate"]);
    assert_eq!(run.code, 78, "{run}");
    assert!(run.stderr.contains(&format!("127.0.0.1:{port}")), "{run}");
}

#[test]
fn check_and_history_run_on_the_database() {
    let Some(db) = pg::database("check_and_history_run_on_the_database") else {
        return;
    };
    let site = Site::start();
    site.set_html(
        "/a",
        "<main><h1>Partners</h1><p>Allerdale and Eden.</p></main>",
    );
    let ws = pg_workspace(&db, &[WatchDef::new("a", site.url("/a"))]);
    assert_eq!(ws.run(&["store", "migrate"]).code, 0);
    let run = ws.check(&[]);
    assert_eq!(run.code, 0, "{run}");
    site.set_html("/a", "<main><h1>Partners</h1><p>Allerdale only.</p></main>");
    let run = ws.check(&[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(ws.history_count("a"), 2);
    assert!(ws.show("a@1").contains("Eden"));
    // Nothing was written beside the config: the database holds it all.
    assert!(!ws.path().join("store.sled").exists());
}

/// The scenarios on both stores start from a migrated database, as
/// `store migrate` leaves it; `run` must also do it itself.
#[test]
fn run_migrates_a_fresh_database_at_start() {
    let Some(db) = pg::database("run_migrates_a_fresh_database_at_start") else {
        return;
    };
    let site = Site::start();
    site.set_html(
        "/a",
        "<main><h1>Partners</h1><p>Allerdale and Eden.</p></main>",
    );
    let ws = Workspace::with_config_on(
        &db.store_toml(),
        &harness::daemon_config(&[WatchDef::new("a", site.url("/a"))], ""),
    );
    let run = ws.run(&["validate"]);
    assert_eq!(run.code, 78, "no schema yet: {run}");
    let mut daemon = harness::Daemon::start(&ws);
    daemon.wait_for_watch(&ws.config, "a", "a first version", |w| {
        w.latest_version == Some(1)
    });
    daemon.signal("-TERM");
    assert!(daemon.wait_exit().success(), "{}", daemon.log());
    let run = ws.run(&["validate"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("schema current"), "{run}");
}

fn blocks(text: &str) -> Vec<Block> {
    vec![Block::new(BlockKind::Paragraph, text)]
}

#[test]
fn copy_from_sled_moves_every_record_and_ids_continue() {
    let Some(db) = pg::database("copy_from_sled_moves_every_record_and_ids_continue") else {
        return;
    };
    let ws = pg_workspace(&db, &[]);
    let sled_dir = ws.path().join("old-state");
    std::fs::create_dir_all(&sled_dir).expect("dir");
    let (history, pending) = {
        let store = Store::open(&sled_dir).expect("sled");
        for watch in ["a", "b"] {
            for (i, text) in ["one", "two", "three"].iter().enumerate() {
                let version = NewVersion {
                    seen_at: Utc::now(),
                    blocks: &blocks(&format!("{watch} {text}")),
                    extractor_version: 1,
                    change: (i > 0).then(|| NewChange {
                        changed_words: 2,
                        detail: serde_json::value::to_raw_value(&serde_json::json!({"n": i}))
                            .expect("json"),
                    }),
                    facts: None,
                    notify: Some(Notify {
                        url: "https://example.org/".to_owned(),
                        tags: Vec::new(),
                        recipients: vec![
                            Recipient {
                                address: "ada@example.org".to_owned(),
                                digest: false,
                            },
                            Recipient {
                                address: "bo@example.org".to_owned(),
                                digest: true,
                            },
                        ],
                    }),
                };
                store
                    .commit_version(watch, &version, &WatchState::default())
                    .expect("commit");
            }
        }
        store
            .put_subscriber(&Subscriber {
                address: "ada@example.org".to_owned(),
                name: "Ada".to_owned(),
                watches: Vec::new(),
                tags: Vec::new(),
                kinds: Vec::new(),
                cadence: Cadence::Immediate,
                confirmed: true,
                consent_at: None,
                consent_source: None,
                created: Utc::now(),
            })
            .expect("subscriber");
        store.flush().expect("flush");
        (
            store.history("a").expect("history"),
            store.deliveries().expect("rows"),
        )
    };
    assert_eq!(pending.len(), 4);
    // The sled store keeps its texts in packs; the copy reads them there.
    assert!(sled_dir.join("store.sled/texts/pack-00000001").exists());

    let run = ws.run(&[
        "store",
        "copy",
        "--from-sled",
        sled_dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("counts match"), "{run}");

    let store = Store::open_postgres(&db.settings(), false).expect("postgres");
    assert_eq!(store.history("a").expect("history"), history);
    assert_eq!(store.text(&history[2]).expect("text"), blocks("a three"));
    assert_eq!(store.deliveries().expect("rows"), pending);
    assert_eq!(
        store
            .digest_entries("bo@example.org")
            .expect("digest")
            .len(),
        4
    );
    assert_eq!(store.subscribers().expect("subscribers").len(), 1);
    // New rows queue after the copied ones.
    let id = store
        .queue_delivery("test:1", "ada@example.org", false, Vec::new(), Utc::now())
        .expect("queue");
    assert!(
        pending.iter().all(|row| row.id < id),
        "id {id} reuses a copied one"
    );

    // A second copy into the now full database is refused.
    let run = ws.run(&[
        "store",
        "copy",
        "--from-sled",
        sled_dir.to_str().expect("utf-8"),
    ]);
    assert_ne!(run.code, 0, "{run}");
    assert!(run.stderr.contains("empty database"), "{run}");
}
