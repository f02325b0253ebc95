//! Leases on the PostgreSQL store: due checks claimed a batch at a time go
//! to one node each, and `tidings check` from the command line takes the
//! same leases: it skips (exit 3) a watch a node is checking, a node finds
//! a watch the command is checking held, and the command gives its leases
//! back and leaves the node list when it ends. Skipped (saying so) without
//! PostgreSQL.

mod common;
#[path = "common/pg.rs"]
mod pg;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Site, WatchDef, Workspace, command, config_text, finish};
use tidings::store::{CheckClaim, Node, Store};

fn node(db: &pg::TestDb, lease: Duration) -> Store {
    Store::open_postgres(&db.settings(), true)
        .expect("store")
        .with_node(Node::new(lease))
}

#[test]
fn batched_claims_from_racing_nodes_grant_each_due_check_once() {
    let Some(db) = pg::database("batch_claims") else {
        return;
    };
    let nodes: Vec<Store> = (0..3).map(|_| node(&db, Duration::from_secs(60))).collect();
    let due = Utc::now();
    for round in 0..5 {
        // Overlapping batches, each node asking in its own order.
        let names: Vec<String> = (0..40).map(|i| format!("r{round}-w{i:02}")).collect();
        let granted: Vec<Vec<String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = nodes
                .iter()
                .enumerate()
                .map(|(n, store)| {
                    let mut mine: Vec<(String, chrono::DateTime<Utc>)> = names
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| (i + n) % 4 != 0)
                        .map(|(_, name)| (name.clone(), due))
                        .collect();
                    if n % 2 == 1 {
                        mine.reverse();
                    }
                    scope.spawn(move || {
                        store
                            .claim_checks(&mine)
                            .expect("claim")
                            .into_iter()
                            .filter(|(_, claim)| *claim == CheckClaim::Granted)
                            .map(|(name, _)| name)
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        for name in &names {
            let holders = granted.iter().filter(|g| g.contains(name)).count();
            assert_eq!(holders, 1, "{name} granted to {holders} nodes: {granted:?}");
        }
        // Finished in a batch: asked again for the same due time, every
        // check is done; for a later one, granted again.
        for (store, mine) in nodes.iter().zip(&granted) {
            let finished: Vec<_> = mine.iter().map(|n| (n.clone(), Some(due))).collect();
            store.finish_checks(&finished).expect("finish");
        }
        let again: Vec<(String, chrono::DateTime<Utc>)> =
            names.iter().map(|n| (n.clone(), due)).collect();
        let claims = nodes[0].claim_checks(&again).expect("claim again");
        assert_eq!(claims.len(), names.len());
        assert!(
            claims.iter().all(|(_, claim)| *claim == CheckClaim::Done),
            "{claims:?}"
        );
        let later = due + chrono::Duration::seconds(60);
        let next: Vec<(String, chrono::DateTime<Utc>)> =
            names.iter().map(|n| (n.clone(), later)).collect();
        let claims = nodes[1].claim_checks(&next).expect("claim later");
        assert!(
            claims
                .iter()
                .all(|(_, claim)| *claim == CheckClaim::Granted),
            "{claims:?}"
        );
    }
}

/// `(node_id, expires_at > now())` of a watch's lease row.
fn lease_of(db: &pg::TestDb, watch: &str) -> Option<(String, bool)> {
    db.client()
        .query_opt(
            "SELECT node_id, expires_at > now() FROM tidings_leases WHERE watch = $1",
            &[&watch],
        )
        .expect("query")
        .map(|row| (row.get(0), row.get(1)))
}

fn command_nodes(db: &pg::TestDb) -> i64 {
    db.client()
        .query_one(
            "SELECT count(*) FROM tidings_nodes WHERE node_id LIKE 'check@%'",
            &[],
        )
        .expect("query")
        .get(0)
}

#[test]
fn a_command_line_check_skips_what_a_node_holds_and_gives_its_leases_back() {
    let Some(db) = pg::database("cli_leases") else {
        return;
    };
    let site = Site::start();
    site.set_html("/a", "<main><h1>A</h1><p>Allerdale and Eden.</p></main>");
    site.set_html("/b", "<main><h1>B</h1><p>Barrow and Copeland.</p></main>");
    let ws = Workspace::with_config(&format!(
        "{}\n{}",
        config_text(&[
            WatchDef::new("a", site.url("/a")),
            WatchDef::new("b", site.url("/b")),
        ]),
        db.store_toml()
    ));
    assert_eq!(ws.run(&["store", "migrate"]).code, 0);

    // A node is checking `a`.
    let daemon = node(&db, Duration::from_secs(300));
    daemon.register_node().expect("register");
    assert_eq!(
        daemon.claim_check("a", Utc::now()).expect("claim"),
        CheckClaim::Granted
    );
    let node_id = daemon.node().expect("node").id.clone();

    let run = ws.check(&[]);
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stderr.contains("HELD: a:") && run.stderr.contains(&node_id),
        "{run}"
    );
    assert_eq!(run.label_of("b"), "NEW", "{run}");
    assert!(run.check_lines().iter().all(|l| l.name != "a"), "{run}");
    assert_eq!(site.hits("/a"), 0, "the held watch was fetched");
    // The node still holds `a`; the command let go of `b` and left.
    assert_eq!(lease_of(&db, "a"), Some((node_id.clone(), true)));
    let (holder, live) = lease_of(&db, "b").expect("b's lease");
    assert!(holder.starts_with("check@"), "{holder}");
    assert!(!live, "the command kept its lease on b");
    assert_eq!(command_nodes(&db), 0);

    // Once the node is done, the command checks `a` too.
    daemon.finish_check("a", Utc::now()).expect("finish");
    let run = ws.check(&["a"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.label_of("a"), "NEW", "{run}");
    assert_eq!(command_nodes(&db), 0);
}

#[test]
fn a_node_finds_a_watch_held_while_a_command_line_check_runs_it() {
    let Some(db) = pg::database("cli_holds") else {
        return;
    };
    let site = Site::start();
    site.set_html(
        "/slow",
        "<main><h1>Slow</h1><p>Kendal and Penrith.</p></main>",
    );
    let ws = Workspace::with_config(&format!(
        "{}\n{}",
        config_text(&[WatchDef::new("slow", site.url("/slow"))]),
        db.store_toml()
    ));
    assert_eq!(ws.run(&["store", "migrate"]).code, 0);
    site.set_delay(Duration::from_secs(3));
    let child = command(ws.path())
        .args(["check", "--config", ws.config.to_str().expect("utf-8")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn check");

    // Wait for the command to take the lease (it then fetches slowly).
    let started = Instant::now();
    let holder = loop {
        if let Some((holder, true)) = lease_of(&db, "slow") {
            break holder;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the command never took the lease"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(holder.starts_with("check@"), "{holder}");
    assert_eq!(command_nodes(&db), 1, "the command is listed as a node");
    let daemon = node(&db, Duration::from_secs(300));
    let claim = daemon.claim_check("slow", Utc::now()).expect("claim");
    let run = finish(child.wait_with_output().expect("wait"));
    assert!(matches!(claim, CheckClaim::Held(_)), "{claim:?}\n{run}");
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.label_of("slow"), "NEW", "{run}");
    // Given back on exit: the node gets it now, without waiting a lease.
    assert_eq!(command_nodes(&db), 0);
    assert_eq!(
        daemon.claim_check("slow", Utc::now()).expect("claim"),
        CheckClaim::Granted
    );
}

#[test]
fn each_live_node_claims_its_share_of_a_batch() {
    let Some(db) = pg::database("claim_share") else {
        return;
    };
    let nodes: Vec<Store> = (0..3).map(|_| node(&db, Duration::from_secs(60))).collect();
    for store in &nodes {
        store.register_node().expect("register");
    }
    // A command-line check is a node too, but runs no due checks: it takes
    // no share.
    let command = Store::open_postgres(&db.settings(), true)
        .expect("store")
        .with_node(Node::for_command_check(Duration::from_secs(60)));
    command.register_node().expect("register the command");
    let due = Utc::now();
    let batch: Vec<(String, chrono::DateTime<Utc>)> =
        (0..12).map(|i| (format!("w{i}"), due)).collect();
    let granted = |store: &Store| -> Vec<String> {
        store
            .claim_checks(&batch)
            .expect("claim")
            .into_iter()
            .filter(|(_, claim)| *claim == CheckClaim::Granted)
            .map(|(name, _)| name)
            .collect()
    };
    // Three live nodes: the first to ask takes a third, not the batch.
    let first = granted(&nodes[0]);
    assert_eq!(first.len(), 4, "{first:?}");
    // Once the others have stopped, the one left takes the rest.
    nodes[1].node_stopped().expect("stop");
    nodes[2].node_stopped().expect("stop");
    let rest = granted(&nodes[0]);
    assert_eq!(
        rest.len(),
        12,
        "its own four again and the other eight: {rest:?}"
    );
}
