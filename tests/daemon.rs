//! `tidings run` as a real process: checks on schedule, SIGHUP reloads (good
//! and bad), SIGTERM drains and exits 0, kill -9 leaves a store that opens,
//! a bad config exits 78, failing watches back off and alert once, and a
//! missed run is caught up once after downtime; `tidings status` sums up
//! and lists the watches only when asked; a reload to a new default
//! schedule plans every watch from the daemon's memory (last check,
//! backoff, pause), not from the store.
//!
//! The daemon holds the sled store's lock, so while it runs the tests watch
//! it through `tidings status --json`, which asks it over its Unix socket.
//! Every wait is a bounded poll for a condition; nothing asserts on timing
//! beyond "a handful of requests in a second".
//!
//! Every scenario runs twice, on sled (`NAME::sled`) and on a PostgreSQL
//! database of its own (`NAME::postgres`, skipped with a printed reason
//! without PostgreSQL). On PostgreSQL the daemon is a node: it claims each
//! check, and after a kill -9 its successor waits out the short test lease.

mod common;
#[path = "common/daemon.rs"]
mod harness;
#[macro_use]
#[path = "common/pg.rs"]
mod pg;

use std::time::Duration;

use common::{Site, WatchDef, Workspace, page};
use harness::{Daemon, daemon_config, daemon_status, find, names, write};
use pg::Backend;
use tidings::service::status::{StatusReport, WatchStatus};

on_both_backends!(
    pages_change_and_the_changes_are_recorded,
    sighup_adds_a_watch,
    sighup_with_an_invalid_config_keeps_the_old_one,
    sigterm_drains_flushes_and_exits_zero,
    kill_9_mid_run_leaves_a_store_that_opens_and_a_daemon_that_restarts,
    a_bad_config_at_start_exits_78_and_says_why,
    a_failing_watch_backs_off_and_the_admin_is_told_once,
    a_missed_run_runs_once_after_downtime,
    status_summarises_and_lists_every_watch_only_when_asked,
    a_new_default_schedule_is_planned_from_what_the_daemon_holds,
);

/// Two served pages, `a` and `b`, watched every second.
fn two_pages(backend: &Backend) -> (Site, Workspace, Vec<WatchDef>) {
    let site = Site::start();
    site.set_html("/a", page("Partnership A", "Jane Smith"));
    site.set_html("/b", page("Partnership B", "Amir Khan"));
    let watches = vec![
        WatchDef::new("a", site.url("/a")),
        WatchDef::new("b", site.url("/b")),
    ];
    let ws = Workspace::with_config_on(&backend.store_toml(), &daemon_config(&watches, ""));
    (site, ws, watches)
}

fn at_version(n: u64) -> impl Fn(&WatchStatus) -> bool {
    move |w| w.latest_version == Some(n)
}

fn pages_change_and_the_changes_are_recorded(backend: &Backend) {
    let (site, ws, _) = two_pages(backend);
    let mut daemon = Daemon::start(&ws);
    daemon.wait_for_watch(&ws.config, "a", "version 1", at_version(1));
    daemon.wait_for_watch(&ws.config, "b", "version 1", at_version(1));

    site.set_html("/a", page("Partnership A", "Beth Jones"));
    let a = daemon.wait_for_watch(&ws.config, "a", "version 2", at_version(2));
    assert!(a.last_change.is_some(), "{a:?}");
    assert_eq!(a.consecutive_failures, 0, "{a:?}");

    // `b` was checked again meanwhile, and found unchanged.
    let b = daemon.wait_for_watch(&ws.config, "b", "a check after a's change", |b| {
        b.last_check > a.last_check
    });
    assert_eq!(b.latest_version, Some(1), "{b:?}");
    assert_eq!(b.last_change, None, "{b:?}");
    let report = daemon_status(&ws.config).expect("status");
    assert!(report.checks >= 3, "{report:?}");
    assert!(report.changes >= 1, "{report:?}");
}

fn sighup_adds_a_watch(backend: &Backend) {
    let (site, ws, mut watches) = two_pages(backend);
    let mut daemon = Daemon::start(&ws);
    daemon.wait_for_watch(&ws.config, "a", "version 1", at_version(1));

    site.set_html("/c", page("Partnership C", "Chris Doe"));
    watches.push(WatchDef::new("c", site.url("/c")));
    write(&ws, &daemon_config(&watches, ""));
    daemon.signal("-HUP");

    daemon.wait_for_watch(&ws.config, "c", "version 1", at_version(1));
    let report = daemon_status(&ws.config).expect("status");
    assert_eq!(names(&report), ["a", "b", "c"], "{report:?}");
    assert_eq!(
        report.pid,
        Some(daemon.child.id()),
        "the same daemon answers"
    );
    assert!(
        daemon.log().contains("configuration reloaded"),
        "{}",
        daemon.log()
    );
}

fn sighup_with_an_invalid_config_keeps_the_old_one(backend: &Backend) {
    let (_site, ws, watches) = two_pages(backend);
    let mut daemon = Daemon::start(&ws);
    daemon.wait_for_watch(&ws.config, "a", "version 1", at_version(1));
    daemon.wait_for_watch(&ws.config, "b", "version 1", at_version(1));

    // `tidings status --config` must read a valid config to find the state
    // directory, so once the daemon's file is broken, status is asked with a
    // valid copy naming the same state directory.
    let status_config = ws.path().join("status.toml");
    ws.write_file(&status_config, &daemon_config(&watches, ""));

    let mut broken = daemon_config(&watches, "");
    broken.push_str("\n[[watch]]\nname = \"c\"\nurl = \"not a url\"\n");
    let line = broken.lines().count();
    write(&ws, &broken);
    daemon.signal("-HUP");

    daemon.wait_for("the reload to be rejected", |d| {
        d.log().contains("new configuration rejected").then_some(())
    });
    let log = daemon.log();
    let located = format!("{}:{line}", ws.config.display());
    assert!(log.contains(&located), "expected {located} in\n{log}");
    assert!(log.contains("url"), "{log}");

    // Still the old daemon with the old watches, still checking.
    let before = daemon_status(&status_config).expect("status");
    assert_eq!(before.pid, Some(daemon.child.id()));
    assert_eq!(names(&before), ["a", "b"], "{before:?}");
    let checks = before.checks;
    daemon.wait_for("more checks after the rejected reload", |_| {
        daemon_status(&status_config).filter(|s| s.checks >= checks + 2)
    });
    assert!(daemon.exited().is_none());
}

fn sigterm_drains_flushes_and_exits_zero(backend: &Backend) {
    let (site, ws, _) = two_pages(backend);
    let mut daemon = Daemon::start(&ws);
    daemon.wait_for_watch(&ws.config, "a", "version 1", at_version(1));
    daemon.wait_for_watch(&ws.config, "b", "version 1", at_version(1));

    // Slow answers, and a change: TERM arrives while the check that will
    // see the change waits for its answer. Draining lets it finish and
    // record the new version before the daemon exits.
    site.set_delay(Duration::from_millis(1_500));
    site.set_html("/a", page("Partnership A", "Beth Jones"));
    let asked = site.hits("/a");
    daemon.wait_for("a request for the changed page", |_| {
        (site.hits("/a") > asked).then_some(())
    });
    daemon.signal("-TERM");
    let status = daemon.wait_exit();
    let log = daemon.log();
    assert_eq!(status.code(), Some(0), "{status}\n--- log\n{log}");
    assert!(log.contains("letting in-flight checks finish"), "{log}");
    assert!(!log.contains("aborting"), "{log}");
    assert!(log.contains("store flushed"), "{log}");
    assert!(
        !ws.path().join("tidings.sock").exists(),
        "the status socket is removed on exit"
    );

    // The store is unlocked and holds what status reported.
    assert_eq!(ws.history_count("a"), 2);
    assert_eq!(ws.history_count("b"), 1);
    assert!(ws.show("a@1").contains("Jane Smith"));
    assert!(ws.show("a@2").contains("Beth Jones"));
    // With no daemon, status reads the store.
    let offline = ws.run(&["status", "--json"]);
    assert_eq!(offline.code, 0, "{offline}");
    let report: StatusReport = serde_json::from_str(&offline.stdout).expect("json");
    assert!(!report.daemon_running);
    assert_eq!(find(&report, "a").and_then(|a| a.latest_version), Some(2));
}

/// The chair of page `i`: names the page, so a mixed-up text would show.
fn chair(i: usize, who: &str) -> String {
    format!("{who} of partnership {i}")
}

fn kill_9_mid_run_leaves_a_store_that_opens_and_a_daemon_that_restarts(backend: &Backend) {
    const WATCHES: usize = 6;
    let site = Site::start();
    let path = |i: usize| format!("/p/{i}");
    let watches: Vec<WatchDef> = (0..WATCHES)
        .map(|i| {
            site.set_html(
                &path(i),
                page(&format!("Partnership {i}"), &chair(i, "Jane Smith")),
            );
            WatchDef::new(&format!("p{i}"), site.url(&path(i)))
        })
        .collect();
    site.set_delay(Duration::from_millis(300));
    let ws = Workspace::with_config_on(&backend.store_toml(), &daemon_config(&watches, ""));

    let mut daemon = Daemon::start(&ws);
    for i in 0..WATCHES {
        daemon.wait_for_watch(&ws.config, &format!("p{i}"), "version 1", at_version(1));
    }
    // Change half the pages, and kill the daemon while checks are running.
    for i in (0..WATCHES).step_by(2) {
        site.set_html(
            &path(i),
            page(&format!("Partnership {i}"), &chair(i, "Beth Jones")),
        );
    }
    daemon.wait_for("checks in flight", |_| {
        daemon_status(&ws.config).filter(|s| s.in_flight > 0 && s.changes > 0)
    });
    daemon.signal("-KILL");
    let status = daemon.wait_exit();
    assert_eq!(status.code(), None, "killed by a signal: {status}");

    // The store opens, and every version it lists reads back.
    for i in 0..WATCHES {
        let name = format!("p{i}");
        let history = ws.run(&["history", &name]);
        assert_eq!(history.code, 0, "{history}");
        let rows = common::history_rows(&history.stdout);
        assert!(!rows.is_empty(), "{history}");
        for row in &rows {
            let text = ws.show(&format!("{name}@{}", row[0]));
            let intact = ["Jane Smith", "Beth Jones"]
                .iter()
                .any(|who| text.contains(&format!("chaired by {}, who", chair(i, who))));
            assert!(intact, "{name}@{}: {text}", row[0]);
        }
    }

    // A new daemon on the same state picks up where the old one stopped.
    let changed = "p1";
    let before = ws.history_count(changed) as u64;
    let mut daemon = Daemon::start(&ws);
    site.set_html(&path(1), page("Partnership 1", &chair(1, "Chris Doe")));
    daemon.wait_for_watch(&ws.config, changed, "a new version", at_version(before + 1));
    daemon.signal("-TERM");
    let status = daemon.wait_exit();
    assert_eq!(
        status.code(),
        Some(0),
        "{status}\n--- log\n{}",
        daemon.log()
    );
    assert!(ws.show(&format!("{changed}@latest")).contains("Chris Doe"));
}

fn a_bad_config_at_start_exits_78_and_says_why(backend: &Backend) {
    let site = Site::start();
    let mut text = daemon_config(&[WatchDef::new("a", site.url("/a"))], "");
    text.push_str(
        "\n[[watch]]\nname = \"b\"\nurl = \"https://example.org/b\"\nschedule = \"every day\"\n",
    );
    let line = text.lines().count();
    let ws = Workspace::with_config_on(&backend.store_toml(), &text);

    let mut daemon = Daemon::spawn(&ws);
    let status = daemon.wait_exit();
    let log = daemon.log();
    assert_eq!(status.code(), Some(78), "{status}\n--- log\n{log}");
    let located = format!("{}:{line}", ws.config.display());
    assert!(log.contains(&located), "expected {located} in\n{log}");
    assert!(log.contains("schedule"), "{log}");
    assert!(site.requests().is_empty(), "nothing is checked");
}

fn a_failing_watch_backs_off_and_the_admin_is_told_once(backend: &Backend) {
    let site = Site::start();
    site.set_html("/ok", page("Partnership OK", "Jane Smith"));
    site.set_page(
        "/flaky",
        common::Page {
            status: 500,
            ..common::Page::html("<html><body><p>Internal error</p></body></html>")
        },
    );
    let watches = [
        WatchDef::new("ok", site.url("/ok")),
        WatchDef::new("flaky", site.url("/flaky")),
    ];
    let ws = Workspace::with_config_on(
        &backend.store_toml(),
        &daemon_config(
            &watches,
            "alert_after_failures = 2\nbackoff_base = \"1s\"\nbackoff_max = \"2s\"\nadmin_email = \"ops@example.org\"\n",
        ),
    );
    let mut daemon = Daemon::start(&ws);

    let alerts = |log: &str| {
        log.lines()
            .filter(|l| l.contains("keeps failing") && l.contains("flaky"))
            .count()
    };
    daemon.wait_for_watch(&ws.config, "flaky", "2 failures", |w| {
        w.consecutive_failures >= 2
    });
    // Failures go on; the alert is not repeated.
    let flaky = daemon.wait_for_watch(&ws.config, "flaky", "4 failures", |w| {
        w.consecutive_failures >= 4
    });
    assert!(
        flaky.last_error.as_deref().unwrap_or("").contains("500"),
        "{flaky:?}"
    );
    assert_eq!(flaky.latest_version, None);
    let log = daemon.log();
    assert_eq!(alerts(&log), 1, "{log}");
    assert!(!log.contains("has recovered"), "{log}");
    // Backing off: far fewer requests than one a second.
    let hits = site.hits("/flaky");
    assert!(hits <= 6, "{hits} requests for a backing-off watch\n{log}");
    // The healthy watch is not held back by its neighbour.
    assert_eq!(
        daemon_status(&ws.config)
            .and_then(|s| find(&s, "ok"))
            .map(|w| w.consecutive_failures),
        Some(0)
    );

    site.update("/flaky", |page| page.status = 200);
    daemon.wait_for("the recovery notice", |d| {
        d.log().contains("has recovered").then_some(())
    });
    let flaky = daemon.wait_for_watch(&ws.config, "flaky", "no failures", |w| {
        w.consecutive_failures == 0
    });
    assert_eq!(flaky.latest_version, Some(1), "{flaky:?}");
    assert_eq!(flaky.last_error, None);
    let log = daemon.log();
    assert_eq!(alerts(&log), 1, "{log}");
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("has recovered") && l.contains("flaky"))
            .count(),
        1,
        "{log}"
    );
    // With no SMTP server configured, the admin's two mails are .eml files
    // in the state directory: one "keeps failing", one "has recovered".
    let mail_dir = ws.config.parent().expect("config dir").join("mail");
    let mails = daemon.wait_for("the admin's two mails", |_| {
        let texts: Vec<String> = std::fs::read_dir(&mail_dir)
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        (texts.len() == 2).then_some(texts)
    });
    assert!(
        mails.iter().all(|m| m.contains("To: ops@example.org")),
        "{mails:?}"
    );
    assert_eq!(
        mails.iter().filter(|m| m.contains("keeps failing")).count(),
        1,
        "{mails:?}"
    );
    assert_eq!(
        mails.iter().filter(|m| m.contains("has recovered")).count(),
        1,
        "{mails:?}"
    );
}

fn a_missed_run_runs_once_after_downtime(backend: &Backend) {
    let site = Site::start();
    site.set_html("/a", page("Partnership A", "Jane Smith"));
    let ws = Workspace::with_config_on(
        &backend.store_toml(),
        &daemon_config(&[WatchDef::new("a", site.url("/a"))], ""),
    );

    let mut daemon = Daemon::start(&ws);
    daemon.wait_for_watch(&ws.config, "a", "version 1", at_version(1));
    daemon.signal("-TERM");
    assert_eq!(daemon.wait_exit().code(), Some(0), "{}", daemon.log());
    drop(daemon);

    // Down for a couple of fire times.
    std::thread::sleep(Duration::from_millis(2_500));
    let before = site.hits("/a");
    let mut daemon = Daemon::spawn(&ws);
    daemon.wait_for("the catch-up check", |_| {
        (site.hits("/a") > before).then_some(())
    });
    // One catch-up check, then the normal every-second rhythm: a second
    // later a few requests at most, not one per missed fire on top.
    std::thread::sleep(Duration::from_secs(1));
    let grown = site.hits("/a") - before;
    assert!(
        (1..=3).contains(&grown),
        "{grown} requests in the first second after a restart\n--- log\n{}",
        daemon.log()
    );
    daemon.signal("-TERM");
    assert_eq!(daemon.wait_exit().code(), Some(0), "{}", daemon.log());
}

/// `tidings status`'s stdout and exit status.
fn status_output(ws: &Workspace, args: &[&str]) -> (String, Option<i32>) {
    let dir = ws.config.parent().expect("config dir");
    let output = common::command(dir)
        .arg("status")
        .args(args)
        .args(["--config", ws.config.to_str().expect("utf-8 path")])
        .output()
        .expect("run tidings status");
    (
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
        output.status.code(),
    )
}

/// The watch names a table lists, in order.
fn listed(table: &str) -> Vec<String> {
    table
        .lines()
        .skip_while(|line| !line.starts_with("WATCH "))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn status_summarises_and_lists_every_watch_only_when_asked(backend: &Backend) {
    let site = Site::start();
    site.set_html("/a", page("Partnership A", "Jane Smith"));
    site.set_html("/b", page("Partnership B", "Amir Khan"));
    site.set_page(
        "/broken",
        common::Page {
            status: 500,
            ..common::Page::html("<html><body><p>Internal error</p></body></html>")
        },
    );
    let watches = [
        WatchDef::new("a", site.url("/a")),
        WatchDef::new("b", site.url("/b")),
        WatchDef::new("broken", site.url("/broken")),
    ];
    let ws = Workspace::with_config_on(&backend.store_toml(), &daemon_config(&watches, ""));
    let mut daemon = Daemon::start(&ws);
    daemon.wait_for_watch(&ws.config, "a", "version 1", at_version(1));
    daemon.wait_for_watch(&ws.config, "b", "version 1", at_version(1));
    daemon.wait_for_watch(&ws.config, "broken", "a failure", |w| {
        w.consecutive_failures > 0
    });

    // By default: counts, and only the failing watch by name.
    let (summary, code) = status_output(&ws, &[]);
    assert_eq!(code, Some(0), "{summary}");
    assert!(
        summary.contains("watches 3: 2 ok, 1 failing, 0 never checked, 0 paused"),
        "{summary}"
    );
    assert_eq!(listed(&summary), ["broken"], "{summary}");
    assert!(summary.contains("next due: "), "{summary}");
    assert!(summary.contains("oldest check: "), "{summary}");

    // `--all`: every watch, in name order.
    let (table, code) = status_output(&ws, &["--all"]);
    assert_eq!(code, Some(0), "{table}");
    assert_eq!(listed(&table), ["a", "b", "broken"], "{table}");

    // `--watch`: those named; an unknown name is an error naming it.
    let (one, code) = status_output(&ws, &["--watch", "b"]);
    assert_eq!(code, Some(0), "{one}");
    assert_eq!(listed(&one), ["b"], "{one}");
    let (unknown, code) = status_output(&ws, &["--watch", "nope"]);
    assert_ne!(code, Some(0), "{unknown}");
    assert!(unknown.contains("`nope`"), "{unknown}");

    // `--json` is the full report still, the summary in it.
    let report = daemon_status(&ws.config).expect("status");
    assert_eq!(names(&report), ["a", "b", "broken"], "{report:?}");
    let summary = report.summary.expect("summary in the full report");
    assert_eq!((summary.ok, summary.failing), (2, 1), "{summary:?}");

    // A SIGHUP with the file as it was has nothing to read.
    daemon.signal("-HUP");
    daemon.wait_for("the reload", |d| {
        d.log().contains("unchanged=true").then_some(())
    });
}

/// The watches take `[defaults]`: `schedule` in UTC, and a backoff of an
/// hour, so a failed check is not tried again during the test.
fn on_default_schedule(watches: &[WatchDef], schedule: &str) -> String {
    format!(
        "{}\n[defaults]\nschedule = \"{schedule}\"\ntimezone = \"UTC\"\n\n[daemon]\nmax_jitter = \"0s\"\nshutdown_deadline = \"10s\"\nbackoff_base = \"1h\"\nbackoff_max = \"2h\"\n",
        common::config_text(watches)
    )
}

fn a_new_default_schedule_is_planned_from_what_the_daemon_holds(backend: &Backend) {
    let site = Site::start();
    site.set_html("/ok", page("Partnership OK", "Jane Smith"));
    site.set_html("/held", page("Partnership Held", "Amir Khan"));
    site.set_page(
        "/flaky",
        common::Page {
            status: 500,
            ..common::Page::html("<html><body><p>Internal error</p></body></html>")
        },
    );
    let mut watches = vec![
        WatchDef::new("ok", site.url("/ok")),
        WatchDef::new("flaky", site.url("/flaky")),
        WatchDef::new("held", site.url("/held")),
    ];
    // Once a year: each watch is checked once, at start-up (never checked
    // before), and not again.
    let ws = Workspace::with_config_on(
        &backend.store_toml(),
        &on_default_schedule(&watches, "0 3 1 1 *"),
    );
    let mut daemon = Daemon::start(&ws);
    daemon.wait_for_watch(&ws.config, "ok", "version 1", at_version(1));
    daemon.wait_for_watch(&ws.config, "held", "version 1", at_version(1));
    let flaky = daemon.wait_for_watch(&ws.config, "flaky", "1 failure", |w| {
        w.consecutive_failures == 1
    });
    let paused = ws.run(&["pause", "held"]);
    assert_eq!(paused.code, 0, "{paused:?}");
    // At once, on both stores: with PostgreSQL the pause reaches the
    // daemon's plan only at its next heartbeat, but the status reads the
    // stored pauses and never shows a paused watch as due.
    let held = find(&daemon_status(&ws.config).expect("status"), "held").expect("held");
    assert!(
        held.paused_since.is_some() && held.next_run.is_none(),
        "{held:?}"
    );
    // (If the reload below comes before that heartbeat, it plans the watch
    // from what the daemon holds; the claim reads the pause again and skips
    // the check, and the status still shows no next run.)
    let hits = |site: &Site| ["/ok", "/flaky", "/held"].map(|p| site.hits(p));
    let before = hits(&site);

    // Every day at 04:00 UTC, and one watch more.
    site.set_html("/late", page("Partnership Late", "Chris Doe"));
    watches.push(WatchDef::new("late", site.url("/late")));
    write(&ws, &on_default_schedule(&watches, "0 4 * * *"));
    daemon.signal("-HUP");
    daemon.wait_for_watch(&ws.config, "late", "the added watch's check", at_version(1));
    let log = daemon.log();
    let reloaded = log
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .unwrap_or_else(|| panic!("no reload in\n{log}"));
    // Only the added watch's stored state was read.
    assert!(
        reloaded.contains("stored_reads=1") && reloaded.contains("added=1"),
        "{reloaded}"
    );
    let report = daemon_status(&ws.config).expect("status");
    let now = chrono::Utc::now();
    // Checked since the last 04:00: due at the next one, not now.
    let ok = find(&report, "ok").expect("ok");
    let next = ok.next_run.expect("ok is planned");
    assert!(
        next > now && next - now <= chrono::Duration::days(1),
        "{ok:?}"
    );
    assert_eq!(
        (next.format("%H:%M:%S").to_string(), ok.latest_version),
        ("04:00:00".to_owned(), Some(1)),
        "{ok:?}"
    );
    // Failing: still backing off an hour from its failed check.
    let failing = find(&report, "flaky").expect("flaky");
    assert_eq!(failing.consecutive_failures, 1, "{failing:?}");
    assert_eq!(failing.last_check, flaky.last_check, "not checked again");
    assert_eq!(
        failing.next_run,
        flaky.last_check.map(|at| at + chrono::Duration::hours(1)),
        "{failing:?}"
    );
    // Paused: not planned at all.
    let held = find(&report, "held").expect("held");
    assert!(
        held.paused_since.is_some() && held.next_run.is_none(),
        "{held:?}"
    );
    assert_eq!(hits(&site), before, "no check of the three was started");
    daemon.signal("-TERM");
    assert_eq!(daemon.wait_exit().code(), Some(0), "{}", daemon.log());
}
