//! Kill -9 durability against a real process.
//!
//! `tidings check` prints a watch's line only after the store has been
//! flushed, so a line that reached stdout promises that what it reports is
//! on disk. This test runs `check` against a slow loopback site with many
//! pages, SIGKILLs it at different points of the pass (changing some pages
//! between passes), and checks the promise: the store still opens, and every
//! `NEW:`/`CHANGED:` reported before the kill is stored with the text that
//! was served. A final uninterrupted pass must then finish cleanly.
//!
//! On sled (`NAME::sled`) and on a PostgreSQL database of its own
//! (`NAME::postgres`, skipped with a printed reason without PostgreSQL),
//! where a kill mid-transaction must leave nothing half-committed either.

mod common;
#[macro_use]
#[path = "common/pg.rs"]
mod pg;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{CheckLine, Site, WatchDef, Workspace, command, partnership_page};
use pg::Backend;
use tidings::store::Store;

on_both_backends!(reported_checks_survive_kill_9);

const PAGES: usize = 60;

fn name(i: usize) -> String {
    format!("p{i:02}")
}

fn path(i: usize) -> String {
    format!("/p/{i:02}")
}

/// The words that identify page `i` at revision `rev` in its text.
fn marker(i: usize, rev: u32) -> String {
    format!("chair of page {i:02} at revision {rev}")
}

fn html(i: usize, rev: u32) -> String {
    partnership_page(
        &format!("Partnership number {i:02}"),
        common::PLACES,
        &format!("the {}", marker(i, rev)),
    )
}

/// What the store holds for one watch.
#[derive(Debug, Clone, Default)]
struct Stored {
    versions: usize,
    latest_text: Option<String>,
}

/// Opens the store (as a crashed daemon's successor would) and reads every
/// watch's history and latest text.
fn read_store(backend: &Backend, dir: &std::path::Path) -> HashMap<String, Stored> {
    let store = match backend {
        Backend::Sled => Store::open(dir),
        Backend::Postgres(db) => Store::open_postgres(&db.settings(), false),
    }
    .unwrap_or_else(|e| panic!("the store does not open after a kill: {e}"));
    let mut all = HashMap::new();
    for i in 0..PAGES {
        let watch = name(i);
        let history = store.history(&watch).expect("history reads");
        let numbers: Vec<u64> = history.iter().map(|v| v.number).collect();
        let expected: Vec<u64> = (1..=history.len() as u64).collect();
        assert_eq!(
            numbers, expected,
            "{watch}: versions are numbered 1..n with no gaps"
        );
        let latest = store.latest(&watch).expect("latest reads");
        match &latest {
            Some((info, _)) => assert_eq!(
                info.number,
                history.len() as u64,
                "{watch}: the watch's latest version is its last stored one"
            ),
            None => assert!(history.is_empty(), "{watch}: versions stored but no latest"),
        }
        all.insert(
            watch,
            Stored {
                versions: history.len(),
                latest_text: latest.map(|(_, blocks)| tidings::core::model::render_blocks(&blocks)),
            },
        );
    }
    all
}

/// Runs `tidings check`, reads lines as they arrive and SIGKILLs it after
/// `kill_after` lines. Returns every complete line it printed, including
/// those still in the pipe when it died, and whether it was killed.
fn check_and_kill(ws: &Workspace, kill_after: usize) -> (Vec<String>, bool) {
    let stderr = std::fs::File::create(ws.path().join("stderr.log")).expect("stderr log");
    let mut child = command(ws.path())
        .args(["check", "--config", ws.config.to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn tidings check");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    let mut killed = false;
    let mut buffer = String::new();
    loop {
        buffer.clear();
        let read = reader.read_line(&mut buffer).expect("read stdout");
        if read == 0 {
            break;
        }
        // A line cut short by the kill promises nothing.
        if buffer.ends_with('\n') {
            lines.push(buffer.trim_end().to_owned());
        }
        if !killed && lines.len() >= kill_after {
            child.kill().expect("SIGKILL");
            killed = true;
        }
    }
    let status = child.wait().expect("wait");
    if !killed {
        assert!(status.success(), "an unkilled pass failed: {status}");
    }
    (lines, killed)
}

fn reported_checks_survive_kill_9(backend: &Backend) {
    let site = Site::start();
    // Enough latency that a pass takes a while, so kills land mid-pass.
    site.set_delay(Duration::from_millis(30));
    let mut revisions = vec![0u32; PAGES];
    for i in 0..PAGES {
        site.set_html(&path(i), html(i, 0));
    }
    let watches: Vec<WatchDef> = (0..PAGES)
        .map(|i| WatchDef::new(&name(i), site.url(&path(i))))
        .collect();
    let text = common::config_text(&watches)
        .replace("[limits]\n", "[limits]\nper_host = 4\nconcurrency = 8\n");
    let ws = Workspace::with_config_on(&backend.store_toml(), &text);

    let mut before: HashMap<String, Stored> =
        (0..PAGES).map(|i| (name(i), Stored::default())).collect();
    let mut interrupted = 0;
    for (round, kill_after) in [1usize, 6, 14, 27, 41].into_iter().enumerate() {
        if round > 0 {
            for i in (0..PAGES).filter(|i| (i + round) % 6 == 0) {
                revisions[i] += 1;
                site.set_html(&path(i), html(i, revisions[i]));
            }
        }
        let (lines, killed) = check_and_kill(&ws, kill_after);
        if killed && matches!(backend, Backend::Postgres(_)) {
            // On a shared store a command-line check holds a lease on each
            // watch it checks, and a SIGKILLed one cannot give them back:
            // the next pass would skip those watches (exit 3) until the
            // leases run out, so wait them out.
            let lease = humantime::parse_duration(pg::TEST_LEASE).expect("lease");
            std::thread::sleep(lease + Duration::from_millis(500));
        }
        interrupted += usize::from(killed && lines.len() < PAGES);
        eprintln!(
            "round {round}: killed after {kill_after} line(s); {} line(s) printed",
            lines.len()
        );
        let reported: HashMap<String, CheckLine> = lines
            .iter()
            .filter_map(|l| CheckLine::parse(l))
            .map(|l| (l.name.clone(), l))
            .collect();
        assert_eq!(reported.len(), lines.len(), "unexpected output: {lines:?}");
        assert!(
            lines.len() >= kill_after.min(PAGES),
            "round {round}: {lines:?}"
        );

        // The store opens, and `tidings history` works, for a reported watch.
        let (sample, _) = reported
            .iter()
            .find(|(_, l)| l.label != "ERROR")
            .expect("a reported watch");
        let history = ws.run(&["history", sample]);
        assert_eq!(
            history.code, 0,
            "round {round}: history {sample} after kill: {history}"
        );
        let shown_versions = common::history_rows(&history.stdout).len();

        let after = read_store(backend, ws.path());
        assert_eq!(after[sample.as_str()].versions, shown_versions);
        for (i, &revision) in revisions.iter().enumerate() {
            let watch = name(i);
            let (old, new) = (&before[&watch], &after[&watch]);
            let current = marker(i, revision);
            let has_current = new
                .latest_text
                .as_deref()
                .is_some_and(|t| t.contains(&current));
            let context =
                format!("round {round}, kill after {kill_after}: {watch} ({old:?} → {new:?})");
            match reported.get(&watch).map(|l| l.label.as_str()) {
                Some("NEW") => {
                    assert_eq!(
                        (old.versions, new.versions),
                        (0, 1),
                        "reported NEW: {context}"
                    );
                    assert!(
                        has_current,
                        "reported NEW but not the served text: {context}"
                    );
                }
                Some("CHANGED") => {
                    assert_eq!(
                        new.versions,
                        old.versions + 1,
                        "reported CHANGED: {context}"
                    );
                    assert!(
                        has_current,
                        "reported CHANGED but not the served text: {context}"
                    );
                }
                Some("UNCHANGED") => {
                    assert_eq!(new.versions, old.versions, "reported UNCHANGED: {context}");
                    assert!(
                        has_current,
                        "reported UNCHANGED but the store differs: {context}"
                    );
                }
                Some(other) => panic!("{other} reported: {context}: {:?}", reported[&watch]),
                None => {
                    // Not reported: it may or may not have been committed,
                    // but never half-way.
                    assert!(
                        new.versions == old.versions || new.versions == old.versions + 1,
                        "unreported: {context}"
                    );
                    if new.versions > old.versions {
                        assert!(
                            has_current,
                            "unreported commit of the wrong text: {context}"
                        );
                    } else {
                        assert_eq!(new.latest_text, old.latest_text, "unreported: {context}");
                    }
                }
            }
        }
        before = after;
    }
    if interrupted == 0 {
        eprintln!("note: every pass finished before its kill; the kill points were not mid-pass");
    }

    // An uninterrupted pass picks up where the killed ones left off.
    let last = ws.check(&[]);
    assert_eq!(last.code, 0, "{last}");
    let lines = last.check_lines();
    assert_eq!(lines.len(), PAGES, "{last}");
    assert!(lines.iter().all(|l| l.label != "ERROR"), "{last}");
    let after = read_store(backend, ws.path());
    for (i, &revision) in revisions.iter().enumerate() {
        let watch = name(i);
        let stored = &after[&watch];
        assert!(
            stored
                .latest_text
                .as_deref()
                .is_some_and(|t| t.contains(&marker(i, revision))),
            "{watch} does not hold its current text after a full pass: {stored:?}"
        );
        let label = last.label_of(&watch);
        let grew = stored.versions - before[&watch].versions;
        match label.as_str() {
            "NEW" | "CHANGED" => assert_eq!(grew, 1, "{watch}: {label}"),
            _ => assert_eq!(grew, 0, "{watch}: {label}"),
        }
        // Each revision is stored at most once: no duplicate versions from
        // re-checking after a kill.
        assert!(
            stored.versions <= revision as usize + 1,
            "{watch}: {stored:?}"
        );
    }
    let final_pass = ws.check(&[]);
    assert_eq!(final_pass.code, 0, "{final_pass}");
    assert!(
        final_pass
            .check_lines()
            .iter()
            .all(|l| l.label == "UNCHANGED"),
        "{final_pass}"
    );
}
