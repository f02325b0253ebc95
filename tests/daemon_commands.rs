//! Every command that reads or checks the store works while `tidings run`
//! holds it (sled allows one process per store): `history`, `show`,
//! `diff WATCH@N` and `check` ask the daemon over its control socket, and
//! their output and exit statuses are those of the same commands run on
//! the store once the daemon has stopped.
//!
//! Sled only: the daemon answers these commands because sled lets one
//! process hold the store. On PostgreSQL every command opens the database
//! itself while nodes run (`tests/store_postgres_cli.rs`, and the
//! PostgreSQL twins of `tests/delivery_daemon.rs` and `tests/admin.rs`).

mod common;
#[path = "common/daemon.rs"]
mod harness;

use common::{Site, WatchDef, Workspace, history_rows, partnership_page, refused_url};
use harness::{Daemon, daemon_config, write};

/// Fires once a year. A watch never checked is due at start-up, so the
/// test checks both watches once before the daemon starts; after that the
/// daemon leaves them alone (the failing one until its backoff ends), and
/// every later version comes from a `check` the test asks for.
const YEARLY: &str = "schedule = \"0 0 1 1 *\"";

fn setup() -> (Site, Workspace) {
    let site = Site::start();
    site.set_html(
        "/ncumbria",
        partnership_page(
            "North Cumbria partnership",
            &["Allerdale", "Carlisle", "Eden"],
            "Jane Smith",
        ),
    );
    let watches = [
        WatchDef::new("ncumbria", site.url("/ncumbria")).with(YEARLY),
        WatchDef::new("gone", refused_url("/gone")).with(YEARLY),
    ];
    let ws = Workspace::new(&watches);
    write(&ws, &daemon_config(&watches, ""));
    (site, ws)
}

#[test]
fn reads_and_checks_go_through_the_running_daemon() {
    let (site, ws) = setup();
    let baseline = ws.check(&[]);
    assert_eq!(baseline.label_of("ncumbria"), "NEW", "{baseline}");
    assert_eq!(baseline.label_of("gone"), "ERROR", "{baseline}");
    let mut daemon = Daemon::start(&ws);

    // check: the daemon runs it and reports each watch once it is stored.
    let first = ws.check(&["ncumbria"]);
    assert_eq!(first.code, 0, "{first}");
    assert_eq!(first.label_of("ncumbria"), "UNCHANGED", "{first}");
    site.set_html(
        "/ncumbria",
        partnership_page(
            "North Cumbria partnership",
            &["Allerdale", "Carlisle"],
            "Jane Smith",
        ),
    );
    let second = ws.check(&["ncumbria"]);
    assert_eq!(second.code, 0, "{second}");
    assert_eq!(second.label_of("ncumbria"), "CHANGED", "{second}");
    assert!(
        second.stdout.contains("Eden"),
        "the change names the place: {second}"
    );

    // A failing watch fails the command as it would without the daemon.
    let failing = ws.check(&[]);
    assert_eq!(failing.code, 1, "{failing}");
    assert_eq!(failing.label_of("gone"), "ERROR", "{failing}");
    assert_eq!(failing.label_of("ncumbria"), "UNCHANGED", "{failing}");

    // --json gives the same document as without a daemon.
    let json = ws.run(&["check", "--json", "ncumbria"]);
    assert_eq!(json.code, 0, "{json}");
    let summary: serde_json::Value = serde_json::from_str(&json.stdout).expect("check --json");
    assert_eq!(
        summary["unchanged"],
        serde_json::json!(["ncumbria"]),
        "{json}"
    );
    assert_eq!(summary["watches"][0]["watch"], "ncumbria", "{json}");

    // An unknown watch is refused before the daemon is asked.
    let unknown = ws.check(&["nosuch"]);
    assert_eq!(unknown.code, 2, "{unknown}");
    assert!(
        unknown.stderr.contains("no watch named `nosuch`"),
        "{unknown}"
    );

    // Reads, while the daemon runs.
    let reads: Vec<(Vec<&str>, common::Run)> = [
        vec!["history", "ncumbria"],
        vec!["history", "gone"],
        vec!["show", "ncumbria@1"],
        vec!["show", "ncumbria@latest"],
        vec!["show", "ncumbria@9"],
        vec!["diff", "ncumbria@1", "ncumbria@latest"],
        vec!["diff", "--format", "json", "ncumbria@1", "ncumbria@2"],
        vec!["diff", "ncumbria@2", "ncumbria@latest"],
    ]
    .into_iter()
    .map(|args| {
        let run = ws.run(&args);
        (args, run)
    })
    .collect();
    let history = &reads[0].1;
    assert_eq!(history.code, 0, "{history}");
    assert_eq!(history_rows(&history.stdout).len(), 2, "{history}");
    assert_eq!(reads[1].1.code, 2, "{}", reads[1].1);
    assert!(
        reads[1].1.stderr.contains("no stored versions"),
        "{}",
        reads[1].1
    );
    assert!(reads[2].1.stdout.contains("Eden"), "{}", reads[2].1);
    assert!(!reads[3].1.stdout.contains("Eden"), "{}", reads[3].1);
    assert_eq!(reads[4].1.code, 2, "{}", reads[4].1);
    assert!(
        reads[4].1.stderr.contains("has no version 9"),
        "{}",
        reads[4].1
    );
    assert_eq!(reads[5].1.code, 1, "a difference exits 1: {}", reads[5].1);
    assert!(reads[5].1.stdout.contains("Eden"), "{}", reads[5].1);
    assert_eq!(reads[7].1.code, 0, "no difference exits 0: {}", reads[7].1);

    // The daemon kept running through all of it, and stops cleanly.
    assert!(daemon.exited().is_none(), "{}", daemon.log());
    daemon.signal("-TERM");
    assert!(daemon.wait_exit().success(), "{}", daemon.log());

    // The same commands on the store itself say exactly the same.
    for (args, through_daemon) in &reads {
        let direct = ws.run(args);
        assert_eq!(
            (direct.code, &direct.stdout, &direct.stderr),
            (
                through_daemon.code,
                &through_daemon.stdout,
                &through_daemon.stderr
            ),
            "`tidings {}` differs with and without the daemon",
            args.join(" ")
        );
    }
    // And the daemon's checks were stored once each: two versions.
    assert_eq!(ws.history_count("ncumbria"), 2);
}

#[test]
fn storing_a_one_sided_diff_still_needs_the_store_to_itself() {
    let (site, ws) = setup();
    let daemon = Daemon::start(&ws);
    let stored = ws.check(&["ncumbria"]);
    assert_eq!(stored.code, 0, "{stored}");
    site.set_html(
        "/ncumbria",
        partnership_page(
            "North Cumbria partnership",
            &["Allerdale", "Carlisle", "Eden", "Copeland"],
            "Jane Smith",
        ),
    );
    // Comparing alone reads the stored version through the daemon.
    let compare = ws.run(&["diff", "--no-store", "ncumbria"]);
    assert_eq!(compare.code, 1, "{compare}");
    assert!(compare.stdout.contains("Copeland"), "{compare}");
    // Storing would make a second writer: refused, and the message says
    // which commands do work.
    let store = ws.run(&["diff", "ncumbria"]);
    assert_eq!(store.code, 2, "{store}");
    assert!(store.stderr.contains("holds the store"), "{store}");
    assert!(store.stderr.contains("`history`"), "{store}");
    drop(daemon);
}

#[test]
fn subscribers_export_streams_and_outbox_lists_through_the_running_daemon() {
    let (_site, ws) = setup();
    // More subscribers than one page of the export (500), so that the
    // stream has several frames of rows.
    let mut csv = String::from("address,name\n");
    for i in 0..1_234 {
        csv.push_str(&format!("person{i:04}@example.org,Person {i}\n"));
    }
    let file = ws.path().join("people.csv");
    std::fs::write(&file, csv).expect("write csv");
    let mut daemon = Daemon::start(&ws);
    let run = ws.run(&[
        "subscribers",
        "import",
        file.to_str().expect("utf-8"),
        "--confirmed",
    ]);
    assert_eq!(run.code, 0, "{run}");

    let through_daemon = ws.run(&["subscribers", "export"]);
    assert_eq!(through_daemon.code, 0, "{through_daemon}");
    let lines = through_daemon.lines();
    assert_eq!(lines.len(), 1 + 1_234, "header and every row once");
    assert!(lines[0].starts_with("address,"), "{}", lines[0]);
    let mut sorted = lines[1..].to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 1_234, "no row twice across pages");
    let outbox = ws.run(&["outbox", "list"]);
    assert_eq!(outbox.code, 0, "{outbox}");

    daemon.signal("-TERM");
    assert!(daemon.wait_exit().success());
    let from_store = ws.run(&["subscribers", "export"]);
    assert_eq!(from_store.code, 0, "{from_store}");
    assert_eq!(
        from_store.stdout, through_daemon.stdout,
        "same output without a daemon"
    );
    let outbox_after = ws.run(&["outbox", "list"]);
    assert_eq!(outbox_after.stdout, outbox.stdout);
}
