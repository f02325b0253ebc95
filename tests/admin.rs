//! Issue 15: what admins expect of a finished tool, through the real binary.
//! On a running daemon: check a watch now, pause and resume it (the pause
//! lasts across a restart and shows in status), back the store up, wipe it
//! and restore it. Without one: `--follow` names are checked against the
//! config, `outbox send` carries the daemon's links, waiting digests are
//! listed, logs can be JSON, and the demo says how to keep its mail.

//!
//! The scenarios that touch the store run on sled and on a PostgreSQL
//! database of their own (`NAME::sled`, `NAME::postgres`; the PostgreSQL
//! twin is skipped with a printed reason without PostgreSQL). Left on sled
//! only: the backup and restore round trip (`tidings backup` is the
//! embedded store's; PostgreSQL is backed up with pg_dump), log formats
//! and the demo (they do not depend on the store; the demo always uses an
//! embedded one).

mod common;
#[path = "common/daemon.rs"]
mod harness;
#[macro_use]
#[path = "common/pg.rs"]
mod pg;

use common::{Site, WatchDef, Workspace, partnership_page};
use harness::{Daemon, daemon_config, daemon_status, find, write};
use pg::Backend;

on_both_backends!(
    follows_are_checked_against_the_config_unless_forced,
    outbox_send_carries_the_daemons_links_and_digests_are_listed,
    a_pause_without_a_daemon_is_stored_and_check_skips_the_watch,
);

const PLACES: &[&str] = &["Allerdale", "Carlisle", "Eden"];
const FEWER: &[&str] = &["Allerdale", "Carlisle"];
/// Once a year: after its first check a watch runs only when asked.
const YEARLY: &str = "schedule = \"0 0 1 1 *\"";

fn site_and_workspace(backend: &Backend, extra: &str) -> (Site, Workspace, Vec<WatchDef>) {
    let site = Site::start();
    site.set_html(
        "/ncumbria",
        partnership_page("North Cumbria partnership", PLACES, "Jane Smith"),
    );
    let watches = vec![
        WatchDef::new("ncumbria", site.url("/ncumbria"))
            .with("title = \"North Cumbria: our partnership\"")
            .with("tags = [\"nc\"]")
            .with(YEARLY),
    ];
    let ws = Workspace::with_config_on(&backend.store_toml(), &common::config_text(&watches));
    write(
        &ws,
        &format!(
            "{}\n[tags.nc]\ntitle = \"North Cumbria\"\n{extra}",
            daemon_config(&watches, "")
        ),
    );
    (site, ws, watches)
}

/// Twins by hand: on sled the scenario goes on with a backup round trip
/// (back up through the running daemon, wipe, restore), which is the
/// embedded store's.
mod check_now_pause_resume_and_a_backup_round_trip_on_a_running_daemon {
    use super::{Backend, backup_round_trip, check_now_pause_and_resume};

    #[test]
    fn sled() {
        let (_site, ws, daemon) = check_now_pause_and_resume(&Backend::Sled);
        backup_round_trip(&ws, daemon);
    }

    /// Without the backup round trip.
    #[test]
    fn postgres() {
        let Some(backend) = Backend::postgres(
            "check_now_pause_resume_and_a_backup_round_trip_on_a_running_daemon::postgres",
        ) else {
            return;
        };
        let (_site, _ws, mut daemon) = check_now_pause_and_resume(&backend);
        daemon.signal("-TERM");
        assert!(daemon.wait_exit().success(), "{}", daemon.log());
    }
}

/// check-now, pause (kept across a restart) and resume on a running
/// daemon; returns the daemon still running, the watch at version 2.
fn check_now_pause_and_resume(backend: &Backend) -> (Site, Workspace, Daemon) {
    let (site, ws, _) = site_and_workspace(backend, "");
    let add = ws.run(&[
        "subscribers",
        "add",
        "ada@example.org",
        "--follow",
        "tag:nc",
    ]);
    assert_eq!(add.code, 0, "{add}");
    let mut daemon = Daemon::start(&ws);
    daemon.wait_for_watch(&ws.config, "ncumbria", "a first version", |w| {
        w.latest_version == Some(1)
    });

    // check-now: the yearly watch is checked at once.
    site.set_html(
        "/ncumbria",
        partnership_page("North Cumbria partnership", FEWER, "Jane Smith"),
    );
    let run = ws.run(&["check-now", "ncumbria"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("checking ncumbria now"), "{run}");
    daemon.wait_for_watch(&ws.config, "ncumbria", "the change checked now", |w| {
        w.latest_version == Some(2)
    });
    let unknown = ws.run(&["check-now", "nosuch"]);
    assert_eq!(unknown.code, 2, "{unknown}");
    assert!(
        unknown.stderr.contains("no watch named `nosuch`"),
        "{unknown}"
    );

    // pause: stored, shown, refused by check-now, and kept across a restart.
    let run = ws.run(&["pause", "ncumbria"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("paused ncumbria"), "{run}");
    let refused = ws.run(&["check-now", "ncumbria"]);
    assert_eq!(refused.code, 1, "{refused}");
    assert!(refused.stderr.contains("is paused"), "{refused}");
    let status = ws.run(&["status"]);
    assert!(status.stdout.contains("PAUSED"), "{status}");
    daemon.signal("-TERM");
    assert!(daemon.wait_exit().success());
    let offline = ws.run(&["status", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&offline.stdout).expect("json");
    assert!(
        report["watches"][0]["paused_since"].is_string(),
        "{offline}"
    );
    let mut daemon = Daemon::start(&ws);
    let watch = find(&daemon_status(&ws.config).expect("status"), "ncumbria").expect("watch");
    assert!(watch.paused_since.is_some(), "{watch:?}");
    assert_eq!(watch.next_run, None, "a paused watch has no next run");
    let run = ws.run(&["resume", "ncumbria"]);
    assert_eq!(run.code, 0, "{run}");
    let again = ws.run(&["resume", "ncumbria"]);
    assert_eq!(again.code, 1, "{again}");
    // On PostgreSQL the resume is written to the database, and each node
    // reads the pauses again within a heartbeat.
    daemon.wait_for_watch(&ws.config, "ncumbria", "resumed and planned", |w| {
        w.paused_since.is_none() && w.next_run.is_some()
    });
    (site, ws, daemon)
}

/// On sled, with the daemon of [`check_now_pause_and_resume`] running.
fn backup_round_trip(ws: &Workspace, mut daemon: Daemon) {
    // backup through the running daemon; restore refuses while it runs.
    let backup = ws.path().join("tidings.backup");
    let run = ws.run(&["backup", backup.to_str().expect("utf-8")]);
    assert_eq!(run.code, 0, "{run}\n{}", daemon.log());
    assert!(run.stdout.contains("from the running daemon"), "{run}");
    let refused = ws.run(&["restore", backup.to_str().expect("utf-8")]);
    assert_eq!(refused.code, 2, "{refused}");
    assert!(refused.stderr.contains("stop it first"), "{refused}");
    daemon.signal("-TERM");
    assert!(daemon.wait_exit().success());

    // wipe the store, restore it, and the daemon carries on from it.
    std::fs::remove_dir_all(ws.path().join("store.sled")).expect("wipe");
    assert_eq!(ws.history_count("ncumbria"), 0, "wiped");
    std::fs::remove_dir_all(ws.path().join("store.sled")).expect("wipe again");
    let run = ws.run(&["restore", backup.to_str().expect("utf-8")]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(ws.history_count("ncumbria"), 2, "both versions are back");
    let list = ws.run(&["subscribers", "list"]);
    assert!(list.stdout.contains("ada@example.org"), "{list}");
    let mut daemon = Daemon::start(ws);
    let watch = daemon.wait_for_watch(&ws.config, "ncumbria", "the restored state", |w| {
        w.latest_version == Some(2)
    });
    assert!(watch.last_change.is_some(), "{watch:?}");
    daemon.signal("-TERM");
    assert!(daemon.wait_exit().success());

    // Without a daemon, check-now says what to use instead.
    let run = ws.run(&["check-now", "ncumbria"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("tidings check"), "{run}");
}

fn follows_are_checked_against_the_config_unless_forced(backend: &Backend) {
    let (_site, ws, _) = site_and_workspace(backend, "");
    for follow in ["nosuchwatch", "tag:nosuchtag"] {
        let run = ws.run(&["subscribers", "add", "ada@example.org", "--follow", follow]);
        assert_eq!(run.code, 2, "{follow}: {run}");
        assert!(run.stderr.contains("--follow"), "{run}");
        assert!(run.stderr.contains("--force"), "{run}");
    }
    let list = ws.run(&["subscribers", "list"]);
    assert!(!list.stdout.contains("ada@example.org"), "{list}");
    let forced = ws.run(&[
        "subscribers",
        "add",
        "ada@example.org",
        "--follow",
        "tag:nosuchtag",
        "--force",
    ]);
    assert_eq!(forced.code, 0, "{forced}");
    assert!(forced.stderr.contains("warning"), "{forced}");
    for follow in ["ncumbria", "tag:nc"] {
        let run = ws.run(&["subscribers", "add", "bo@example.org", "--follow", follow]);
        assert_eq!(run.code, 0, "{follow}: {run}");
    }
}

fn outbox_send_carries_the_daemons_links_and_digests_are_listed(backend: &Backend) {
    let web = "\n[web]\nenabled = true\nbase_url = \"https://briefings.example.org\"\nsecret_file = \"web.secret\"\nprivacy_url = \"https://example.org/privacy\"\n[web.operator]\nname = \"Cumbria Healthwatch\"\ncontact = \"data@example.org\"\n";
    let (site, ws, _) = site_and_workspace(backend, web);
    std::fs::write(
        ws.path().join("web.secret"),
        "a test secret of at least thirty-two bytes",
    )
    .expect("secret");
    for (address, cadence) in [
        ("now@example.org", "immediate"),
        ("weekly@example.org", "0 8 * * Mon@Europe/London"),
    ] {
        let run = ws.run(&[
            "subscribers",
            "add",
            address,
            "--follow",
            "tag:nc",
            "--cadence",
            cadence,
        ]);
        assert_eq!(run.code, 0, "{run}");
    }
    assert_eq!(ws.check(&[]).code, 0);
    site.set_html(
        "/ncumbria",
        partnership_page("North Cumbria partnership", FEWER, "Jane Smith"),
    );
    let run = ws.check(&[]);
    assert_eq!(run.code, 0, "{run}");

    let list = ws.run(&["outbox", "list", "--all"]);
    assert_eq!(list.code, 0, "{list}");
    assert!(list.stdout.contains("waiting for digests (1)"), "{list}");
    assert!(list.stdout.contains("weekly@example.org"), "{list}");
    assert!(list.stdout.contains("ncumbria@2"), "{list}");

    let send = ws.run(&["outbox", "send"]);
    assert_eq!(send.code, 0, "{send}");
    let mail_dir = ws.path().join("mail");
    let mails: Vec<String> = std::fs::read_dir(&mail_dir)
        .expect("mail dir")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("read"))
        .collect();
    assert_eq!(mails.len(), 1, "{send}");
    // Quoted-printable soft breaks aside, the links are there.
    let mail = mails[0].replace("=\r\n", "").replace("=\n", "");
    assert!(
        mail.contains("https://briefings.example.org/changes/ncumbria~2"),
        "{mail}"
    );
    assert!(
        mail.contains("https://briefings.example.org/preferences/"),
        "{mail}"
    );
    assert!(
        mail.contains("https://briefings.example.org/unsubscribe/"),
        "{mail}"
    );
    assert!(mail.contains("List-Unsubscribe-Post"), "{mail}");
    assert!(mail.contains("Cumbria Healthwatch"), "{mail}");
    assert!(
        mail.contains("North Cumbria: our partnership"),
        "the page's title: {mail}"
    );
    assert!(!mail.contains("reply to this address"), "{mail}");
    let subject = mail
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .expect("subject");
    assert!(subject.contains("North Cumbria"), "{subject}");
}

#[test]
fn logs_can_be_json_or_quiet() {
    let (_site, ws, _) = site_and_workspace(&Backend::Sled, "");
    let run = ws.run(&["--log-format", "json", "-vv", "check"]);
    assert_eq!(run.code, 0, "{run}");
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "{run}");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{line}"
        );
    }
    let quiet = ws.run(&["--quiet", "check"]);
    assert_eq!(quiet.code, 0, "{quiet}");
    assert!(quiet.stderr.trim().is_empty(), "{quiet}");
}

#[test]
fn the_demo_says_how_to_keep_its_mail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = common::run_in(dir.path(), &["demo"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("tidings demo --state DIR"), "{run}");
    assert!(run.stdout.contains("deleted"), "{run}");
    // Titles, not names, in the briefing.
    assert!(
        run.stdout
            .contains("[tidings] West, North and East Cumbria: Boundary"),
        "{run}"
    );
}

fn a_pause_without_a_daemon_is_stored_and_check_skips_the_watch(backend: &Backend) {
    let (_site, ws, _) = site_and_workspace(backend, "");
    let run = ws.run(&["pause", "ncumbria"]);
    assert_eq!(run.code, 0, "{run}");
    let unknown = ws.run(&["pause", "nosuch"]);
    assert_eq!(unknown.code, 2, "{unknown}");
    let pass = ws.check(&[]);
    assert_eq!(pass.code, 0, "{pass}");
    assert!(pass.stderr.contains("PAUSED: ncumbria"), "{pass}");
    assert!(!pass.stdout.contains("NEW: ncumbria"), "{pass}");
    let named = ws.check(&["ncumbria"]);
    assert!(
        named.stdout.contains("NEW: ncumbria"),
        "named, it is checked: {named}"
    );
    let status = ws.run(&["status"]);
    assert!(status.stdout.contains("PAUSED"), "{status}");
    assert_eq!(ws.run(&["resume", "ncumbria"]).code, 0);
    assert!(!ws.check(&[]).stderr.contains("PAUSED"));
}
