//! The store behaves the same on sled and on PostgreSQL: each scenario
//! runs on a temporary sled store (`NAME::sled`) and on a fresh PostgreSQL
//! database (`NAME::postgres`; without PostgreSQL it is skipped, saying
//! so, and a test here runs that skip for real).

#[macro_use]
#[path = "common/pg.rs"]
mod pg;

use std::sync::Arc;

use chrono::Utc;
use pg::Backend;
use tidings::core::classify::Kind;
use tidings::core::model::{Block, BlockKind};
use tidings::store::{
    Cadence, DeliveryState, NewChange, NewVersion, Notify, Recipient, Store, StoreError,
    Subscriber, Suppression, WatchState, digest_delivery_key,
};

on_both_backends!(
    versions_texts_facts_and_changes_round_trip,
    the_outbox_queues_rolls_up_updates_prunes_and_purges,
    subscribers_suppressions_pauses_and_forget,
    concurrent_commits_of_one_watch_number_every_version_once,
    nodes_agree_on_a_value_and_a_different_one_is_returned,
);

fn blocks(texts: &[&str]) -> Vec<Block> {
    texts
        .iter()
        .map(|t| Block::new(BlockKind::ListItem, *t))
        .collect()
}

fn commit(store: &Store, watch: &str, text: &[Block], notify: Option<Notify>) -> u64 {
    let change = store
        .watch_state(watch)
        .expect("state")
        .latest_version
        .map(|_| NewChange {
            changed_words: 1,
            detail: serde_json::value::to_raw_value(&serde_json::json!({"removed": ["Eden"]}))
                .expect("json"),
        });
    let version = NewVersion {
        seen_at: Utc::now(),
        blocks: text,
        extractor_version: 1,
        change,
        facts: Some((1, serde_json::json!(["fact"]))),
        notify,
    };
    store
        .commit_version(watch, &version, &WatchState::default())
        .expect("commit")
}

fn notify(recipients: &[(&str, bool)]) -> Notify {
    Notify {
        url: "https://example.org/".to_owned(),
        tags: vec!["lsc".to_owned()],
        recipients: recipients
            .iter()
            .map(|(address, digest)| Recipient {
                address: (*address).to_owned(),
                digest: *digest,
            })
            .collect(),
    }
}

fn versions_texts_facts_and_changes_round_trip(backend: &Backend) {
    let store = &backend.open();
    let first = blocks(&["Allerdale", "Eden"]);
    let second = vec![
        Block::new(BlockKind::Heading { level: 2 }, "Places"),
        Block::new(BlockKind::ListItem, "Allerdale"),
    ];
    assert_eq!(commit(store, "wnec", &first, None), 1);
    assert_eq!(commit(store, "wnec", &second, None), 2);
    // A watch whose name prefixes another keeps its own history.
    commit(store, "wnec-ics", &first, None);
    let history = store.history("wnec").expect("history");
    assert_eq!(history.iter().map(|v| v.number).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(store.text(&history[0]).expect("text"), first);
    assert_eq!(
        store.facts(&history[0]).expect("facts"),
        Some((1, serde_json::json!(["fact"])))
    );
    let (latest, text) = store.latest("wnec").expect("latest").expect("some");
    assert_eq!((latest.number, text), (2, second));
    let change = store.change("wnec", 2).expect("change").expect("some");
    assert_eq!(change.from_version, 1);
    assert_eq!(change.detail["removed"][0], "Eden");
    assert!(store.change("wnec", 1).expect("change").is_none());
    assert_eq!(store.watch_names().expect("names"), ["wnec", "wnec-ics"]);
    // Identical texts are stored once.
    let stats = store.stats().expect("stats");
    assert_eq!((stats.versions, stats.texts, stats.watches), (3, 2, 2));
    assert!(stats.disk_bytes > 0);
    let newest = store.latest_changes("wnec", 5, |_| true).expect("changes");
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].to_version, 2);
}

fn the_outbox_queues_rolls_up_updates_prunes_and_purges(backend: &Backend) {
    let store = &backend.open();
    commit(
        store,
        "w",
        &blocks(&["one"]),
        Some(notify(&[("a@example.org", false)])),
    );
    assert!(
        store.deliveries().expect("rows").is_empty(),
        "a first version is no change"
    );
    commit(
        store,
        "w",
        &blocks(&["two"]),
        Some(notify(&[("a@example.org", false), ("b@example.org", true)])),
    );
    commit(
        store,
        "w",
        &blocks(&["three"]),
        Some(notify(&[("b@example.org", true)])),
    );
    let rows = store.deliveries().expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].key, "change:w:2:a@example.org");
    assert_eq!(store.outbox_depth().expect("depth"), 1);
    assert_eq!(store.due_deliveries(Utc::now(), 10).expect("due").len(), 1);
    assert_eq!(
        store.digest_addresses().expect("addresses"),
        ["b@example.org"]
    );

    let entries = store.digest_entries("b@example.org").expect("entries");
    assert_eq!(entries.len(), 2);
    let now = Utc::now();
    let key = digest_delivery_key("b@example.org", now);
    let id = store
        .roll_up_digest("b@example.org", &entries, &key, now)
        .expect("roll up")
        .expect("a row");
    assert_eq!(
        store.delivery(id).expect("get").expect("row").items.len(),
        2
    );
    assert_eq!(
        store
            .roll_up_digest("b@example.org", &entries, &key, now)
            .expect("again"),
        None,
        "entries are rolled up once"
    );

    let mut row = store.delivery(rows[0].id).expect("get").expect("row");
    row.state = DeliveryState::Sent;
    row.finished_at = Some(now - chrono::Duration::days(30));
    assert!(store.update_delivery(&row).expect("update"));
    assert_eq!(store.outbox_depth().expect("depth"), 1);
    assert_eq!(
        store
            .prune_deliveries(now - chrono::Duration::days(7))
            .expect("prune"),
        1
    );
    assert!(
        !store.update_delivery(&row).expect("gone"),
        "a pruned row stays gone"
    );
    let purged = store.purge_address("B@Example.org").expect("purge");
    assert_eq!(purged.deliveries, 1);
    assert!(store.deliveries().expect("rows").is_empty());
}

fn subscribers_suppressions_pauses_and_forget(backend: &Backend) {
    let store = &backend.open();
    let ada = Subscriber {
        address: " ada@EXAMPLE.org".to_owned(),
        name: "Ada".to_owned(),
        watches: vec!["w".to_owned()],
        tags: Vec::new(),
        kinds: vec![Kind::Boundary],
        cadence: Cadence::Immediate,
        confirmed: true,
        consent_at: None,
        consent_source: None,
        created: Utc::now(),
    };
    assert!(store.put_subscriber(&ada).expect("put"));
    assert!(!store.put_subscriber(&ada).expect("put again"));
    assert_eq!(
        store
            .subscriber("ada@example.org")
            .expect("get")
            .expect("some")
            .kinds,
        [Kind::Boundary]
    );
    store
        .suppress(&Suppression {
            address: "Ada@example.org".to_owned(),
            reason: "asked by phone".to_owned(),
            at: Utc::now(),
            requested: true,
        })
        .expect("suppress");
    let forgotten = store.forget("ada@example.org").expect("forget");
    assert!(forgotten.subscriber && forgotten.suppression_kept);
    assert!(store.subscribers().expect("all").is_empty());
    assert_eq!(store.suppressed().expect("all").len(), 1);
    assert!(store.unsuppress("ada@example.org").expect("lift"));

    let at = Utc::now();
    assert!(store.pause_watch("w", at).expect("pause"));
    assert!(!store.pause_watch("w", at).expect("again"));
    assert_eq!(store.paused().expect("paused").len(), 1);
    assert!(store.resume_watch("w").expect("resume"));
    assert!(store.paused_since("w").expect("read").is_none());
}

fn concurrent_commits_of_one_watch_number_every_version_once(backend: &Backend) {
    // Eight writers commit to one watch at once: every version number is
    // taken exactly once, and each change queues its briefing with it.
    let store = &backend.open();
    let store = Arc::new(store.clone());
    commit(&store, "w", &blocks(&["zero"]), None);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for j in 0..5 {
                    let text = blocks(&[&format!("text {i} {j}")]);
                    commit(
                        &store,
                        "w",
                        &text,
                        Some(notify(&[("a@example.org", false)])),
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer");
    }
    let numbers: Vec<u64> = store
        .history("w")
        .expect("history")
        .iter()
        .map(|v| v.number)
        .collect();
    assert_eq!(numbers, (1..=41).collect::<Vec<u64>>());
    assert_eq!(store.deliveries().expect("rows").len(), 40);
}

#[test]
fn the_postgres_store_works_inside_a_tokio_runtime() {
    // The daemon calls the store from its runtime's threads; the sync
    // client must not try to block inside that runtime.
    let Some(db) = pg::database("the_postgres_store_works_inside_a_tokio_runtime") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = Store::open_postgres(&db.settings(), true).expect("store");
        assert_eq!(commit(&store, "w", &blocks(&["one"]), None), 1);
        let store2 = store.clone();
        let n = tokio::task::spawn_blocking(move || commit(&store2, "w", &blocks(&["two"]), None))
            .await
            .expect("blocking");
        assert_eq!(n, 2);
    });
}

#[test]
fn an_old_schema_is_refused_until_migrated_and_a_wrong_password_is_named() {
    let Some(db) =
        pg::database("an_old_schema_is_refused_until_migrated_and_a_wrong_password_is_named")
    else {
        return;
    };
    let err = Store::open_postgres(&db.settings(), false).expect_err("no schema yet");
    assert!(
        matches!(err, StoreError::SchemaBehind { found: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("tidings store migrate"), "{err}");
    Store::open_postgres(&db.settings(), true).expect("migrated");
    Store::open_postgres(&db.settings(), false).expect("opens without migrating now");

    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password").expect("write");
    let mut settings = db.settings();
    settings.password = Some(tidings::config::PasswordSource::File(wrong));
    let err = Store::open_postgres(&settings, false).expect_err("wrong password");
    let text = err.to_string();
    assert!(
        text.contains("password") && text.contains(&db.url),
        "{text}"
    );
    assert!(
        !text.contains("not-the-password"),
        "the password is shown: {text}"
    );

    let mut settings = db.settings();
    settings.url = "postgresql://tidings@127.0.0.1:1/nowhere".to_owned();
    let err = Store::open_postgres(&settings, false).expect_err("unreachable");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

fn nodes_agree_on_a_value_and_a_different_one_is_returned(backend: &Backend) {
    // How nodes check that they share the [web] secret (by fingerprint).
    let store = &backend.open();
    assert_eq!(store.agree("web-secret", "abc").expect("first"), None);
    assert_eq!(store.agree("web-secret", "abc").expect("same"), None);
    assert_eq!(
        store.agree("web-secret", "xyz").expect("different"),
        Some("abc".to_owned())
    );
}

#[test]
fn a_check_lease_goes_to_one_node_and_to_another_once_it_expires() {
    let Some(db) = pg::database("a_check_lease_goes_to_one_node_and_to_another_once_it_expires")
    else {
        return;
    };
    let node = |lease_ms: u64| {
        Store::open_postgres(&db.settings(), true)
            .expect("store")
            .with_node(tidings::store::Node::new(std::time::Duration::from_millis(
                lease_ms,
            )))
    };
    let (a, b) = (node(1_500), node(1_500));
    let due = Utc::now();
    assert_eq!(
        a.claim_check("w", due).expect("a"),
        tidings::store::CheckClaim::Granted
    );
    assert!(matches!(
        b.claim_check("w", due).expect("b"),
        tidings::store::CheckClaim::Held(_)
    ));
    let holding = a.nodes().expect("nodes");
    assert!(holding.is_empty(), "not registered yet: {holding:?}");
    a.register_node().expect("register");
    assert_eq!(a.nodes().expect("nodes")[0].holding, ["w"]);
    // a dies without finishing: after the lease, b gets it.
    std::thread::sleep(std::time::Duration::from_millis(1_700));
    assert_eq!(
        b.claim_check("w", due).expect("b"),
        tidings::store::CheckClaim::Granted
    );
    b.finish_check("w", due).expect("finish");
    assert_eq!(
        a.claim_check("w", due).expect("a"),
        tidings::store::CheckClaim::Done
    );
    // The next due time is open again.
    let next = due + chrono::Duration::seconds(60);
    assert_eq!(
        a.claim_check("w", next).expect("a"),
        tidings::store::CheckClaim::Granted
    );
}

#[test]
fn a_live_node_keeps_its_lease_through_a_check_longer_than_the_lease() {
    let Some(db) =
        pg::database("a_live_node_keeps_its_lease_through_a_check_longer_than_the_lease")
    else {
        return;
    };
    let node = || {
        Store::open_postgres(&db.settings(), true)
            .expect("store")
            .with_node(tidings::store::Node::new(std::time::Duration::from_millis(
                1_000,
            )))
    };
    let (a, b) = (node(), node());
    a.register_node().expect("register a");
    let due = Utc::now();
    assert_eq!(
        a.claim_check("w", due).expect("a"),
        tidings::store::CheckClaim::Granted
    );
    // a's check runs for three leases, and a beats twice a lease.
    for _ in 0..6 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        a.heartbeat().expect("heartbeat");
        assert!(
            matches!(
                b.claim_check("w", due).expect("b"),
                tidings::store::CheckClaim::Held(_)
            ),
            "b took a check that a, alive, still holds"
        );
    }
    // a stops beating (dies): its lease lapses one lease after the last beat.
    std::thread::sleep(std::time::Duration::from_millis(1_300));
    assert_eq!(
        b.claim_check("w", due).expect("b"),
        tidings::store::CheckClaim::Granted
    );
}

/// The skip path, for real: this test binary runs one PostgreSQL twin again
/// as a child, with PostgreSQL's binaries hidden (`TIDINGS_TEST_PG_BINARIES`
/// names a directory without them) and no server named. The twin passes
/// and says on stderr, past the harness's capture, why it skipped; with
/// `TIDINGS_REQUIRE_POSTGRES` set, as in CI, the same run fails instead.
#[test]
fn without_postgresql_the_postgres_twin_skips_and_says_why() {
    let twin = "versions_texts_facts_and_changes_round_trip::postgres";
    let run = |require: bool| {
        let mut command = std::process::Command::new(std::env::current_exe().expect("this test"));
        command
            .args([twin, "--exact", "--test-threads=1"])
            .env(pg::BINARIES_VAR, "/nonexistent")
            .env_remove("TIDINGS_TEST_PG_URL")
            .env_remove("TIDINGS_TEST_PG_PASSWORD_FILE")
            .env_remove("TIDINGS_REQUIRE_POSTGRES");
        if require {
            command.env("TIDINGS_REQUIRE_POSTGRES", "1");
        }
        let output = command.output().expect("run this test binary");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status, stdout, stderr)
    };
    let reason =
        "PostgreSQL's binaries (initdb, postgres) are not in TIDINGS_TEST_PG_BINARIES=/nonexistent";

    let (status, stdout, stderr) = run(false);
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed") && stdout.contains(twin),
        "the twin ran and passed:\n{stdout}"
    );
    let said = format!("skipped on PostgreSQL: `{twin}`: {reason}");
    assert!(stderr.contains(&said), "expected {said:?} in\n{stderr}");

    let (status, stdout, stderr) = run(true);
    assert!(
        !status.success(),
        "required, it must fail:\n{stdout}\n{stderr}"
    );
    let said = format!("TIDINGS_REQUIRE_POSTGRES is set but {reason}");
    assert!(
        stdout.contains(&said) || stderr.contains(&said),
        "expected {said:?} in\n{stdout}\n{stderr}"
    );
}
