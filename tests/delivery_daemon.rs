//! Briefings from the real daemon process: a page change on the loopback
//! site becomes a briefing at the loopback SMTP server; the outbox answers
//! admin commands while the daemon holds the store; and a kill -9 in the
//! middle of a delivery run loses nothing and re-sends at most the one
//! briefing in flight, with the same Message-ID.
//!
//! Every scenario runs on sled (`NAME::sled`) and on a PostgreSQL database
//! of its own (`NAME::postgres`, skipped with a printed reason without
//! PostgreSQL). On PostgreSQL the restarted daemon is a new node: it sends
//! what the killed one had claimed once the short test lease runs out.

mod common;
#[path = "common/daemon.rs"]
mod harness;
#[macro_use]
#[path = "common/pg.rs"]
mod pg;
#[path = "common/smtp.rs"]
mod smtp;

use std::collections::HashMap;
use std::time::Duration;

use common::{Site, WatchDef, Workspace, partnership_page};
use harness::{Daemon, daemon_config, write};
use pg::Backend;
use smtp::{Script, SmtpServer};

on_both_backends!(
    a_page_change_becomes_a_briefing_and_the_outbox_answers_while_running,
    kill_9_during_delivery_loses_nothing_and_duplicates_no_message_id,
    with_the_web_endpoint_briefings_link_to_the_change_and_unsubscribe_in_one_click,
);

const PLACES: &[&str] = &["Allerdale", "Carlisle", "Eden"];
const MORE_PLACES: &[&str] = &["Allerdale", "Carlisle", "Eden", "Copeland"];

/// A workspace watching one page every second, mailing through `smtp`.
fn setup(backend: &Backend, smtp: &SmtpServer) -> (Site, Workspace) {
    setup_with(backend, smtp, "")
}

/// [`setup`] with more config appended.
fn setup_with(backend: &Backend, smtp: &SmtpServer, extra: &str) -> (Site, Workspace) {
    let site = Site::start();
    site.set_html(
        "/ncumbria",
        partnership_page("North Cumbria partnership", PLACES, "Jane Smith"),
    );
    let watches =
        [WatchDef::new("ncumbria", site.url("/ncumbria")).with("tags = [\"North Cumbria\"]")];
    let ws = Workspace::with_config_on(&backend.store_toml(), &common::config_text(&watches));
    let mail = format!(
        "\n[mail]\nfrom = \"Briefings <briefings@example.org>\"\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout = \"5s\"\nretry_base = \"200ms\"\nretry_max = \"1s\"\n",
        smtp.port()
    );
    write(
        &ws,
        &format!("{}{mail}{extra}", daemon_config(&watches, "")),
    );
    (site, ws)
}

fn add_subscribers(ws: &Workspace, count: usize) -> Vec<String> {
    let csv: String = (0..count)
        .map(|i| format!("reader{i}@example.org,Reader {i},,,immediate\n"))
        .collect();
    let file = ws.path().join("subscribers.csv");
    std::fs::write(&file, csv).expect("write csv");
    let run = ws.run(&[
        "subscribers",
        "import",
        "--confirmed",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 0, "import failed: {}", run.stderr);
    (0..count)
        .map(|i| format!("reader{i}@example.org"))
        .collect()
}

/// Message-IDs received per recipient.
fn ids_by_recipient(server: &SmtpServer) -> HashMap<String, Vec<String>> {
    let mut by: HashMap<String, Vec<String>> = HashMap::new();
    for message in server.received() {
        let id = message.header("Message-ID").expect("a Message-ID");
        for rcpt in &message.rcpt {
            let address = rcpt.trim_matches(['<', '>']).to_owned();
            by.entry(address).or_default().push(id.clone());
        }
    }
    by
}

fn a_page_change_becomes_a_briefing_and_the_outbox_answers_while_running(backend: &Backend) {
    let server = SmtpServer::start(Script::default());
    let (site, ws) = setup(backend, &server);
    add_subscribers(&ws, 2);
    let mut daemon = Daemon::start(&ws);
    daemon.wait_for_watch(&ws.config, "ncumbria", "a first version", |w| {
        w.latest_version == Some(1)
    });
    site.set_html(
        "/ncumbria",
        partnership_page("North Cumbria partnership", MORE_PLACES, "Jane Smith"),
    );
    let received = server.wait_for(2, Duration::from_secs(20));
    assert_eq!(received.len(), 2, "log:\n{}", daemon.log());
    let message = &received[0];
    let subject = message.header("Subject").expect("subject");
    assert!(subject.contains("North Cumbria"), "{subject}");
    assert!(message.data.contains("Copeland"));
    assert_eq!(
        message.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );

    // The daemon holds the store: the CLI asks it over the socket.
    let run = ws.run(&["outbox", "list", "--all", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(rows.len(), 2, "{}", run.stdout);
    assert!(rows.iter().all(|row| row["state"] == "sent"), "{rows:?}");
    let ids: Vec<String> = received
        .iter()
        .map(|m| m.header("Message-ID").expect("id"))
        .collect();
    for row in &rows {
        assert!(
            ids.contains(&row["message_id"].as_str().unwrap_or("").to_owned()),
            "the listed Message-ID is the one sent: {row}"
        );
    }
    // Subscriber commands go through the daemon too.
    let add = ws.run(&["subscribers", "add", "late@example.org", "--name", "Late"]);
    assert_eq!(add.code, 0, "{}", add.stderr);
    assert!(
        add.stdout.contains("added late@example.org"),
        "{}",
        add.stdout
    );
    let list = ws.run(&["subscribers", "list"]);
    assert!(
        list.stdout.contains("late@example.org (Late)"),
        "{}",
        list.stdout
    );
    let bad = ws.run(&["subscribers", "add", "not-an-address"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("not-an-address"), "{}", bad.stderr);
    let status = ws.run(&["status"]);
    assert!(
        status.stdout.contains("outbox: 0 pending, 2 sent"),
        "{}",
        status.stdout
    );
    daemon.signal("-TERM");
    assert!(daemon.wait_exit().success());
}

fn kill_9_during_delivery_loses_nothing_and_duplicates_no_message_id(backend: &Backend) {
    const READERS: usize = 40;
    // Slow enough that the kill lands mid-run: 40 × 60 ms.
    let server = SmtpServer::start(Script {
        data_delay: Duration::from_millis(60),
        ..Script::default()
    });
    let (site, ws) = setup(backend, &server);
    let readers = add_subscribers(&ws, READERS);
    let mut daemon = Daemon::start(&ws);
    daemon.wait_for_watch(&ws.config, "ncumbria", "a first version", |w| {
        w.latest_version == Some(1)
    });
    site.set_html(
        "/ncumbria",
        partnership_page("North Cumbria partnership", MORE_PLACES, "Jane Smith"),
    );
    let before_kill = server.wait_for(8, Duration::from_secs(20)).len();
    assert!(before_kill >= 8, "log:\n{}", daemon.log());
    daemon.signal("-KILL");
    daemon.wait_exit();
    let at_kill = server.received().len();
    assert!(
        at_kill < READERS,
        "the kill landed after the run finished ({at_kill}); nothing was tested"
    );

    let mut restarted = Daemon::start(&ws);
    let received = server.wait_for(READERS, Duration::from_secs(30));
    // Allow the one in flight to arrive twice, and no more.
    std::thread::sleep(Duration::from_millis(500));
    let by = ids_by_recipient(&server);
    for reader in &readers {
        let ids = by
            .get(reader)
            .unwrap_or_else(|| panic!("{reader} got nothing; log:\n{}", restarted.log()));
        let mut distinct = ids.clone();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            1,
            "{reader} got different briefings: {ids:?}"
        );
    }
    let total = server.received().len();
    assert!(
        total <= READERS + 1,
        "more than the one in-flight briefing was re-sent: {total} for {READERS} readers"
    );
    assert!(received.len() >= READERS);
    restarted.signal("-TERM");
    assert!(restarted.wait_exit().success());
}

/// Blocking HTTP for a plain #[test]: one request on a throwaway runtime.
fn http(method: reqwest::Method, url: &str, body: Option<&str>) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // reqwest is built without a bundled crypto provider (see fetch.rs).
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut request = client.request(method, url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    })
}

fn with_the_web_endpoint_briefings_link_to_the_change_and_unsubscribe_in_one_click(
    backend: &Backend,
) {
    let server = SmtpServer::start(Script::default());
    let port = smtp::closed_port();
    let web = format!(
        "\n[web]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\nbase_url = \"https://briefings.example.org\"\nsecret_file = \"web.secret\"\n"
    );
    let (site, ws) = setup_with(backend, &server, &web);
    std::fs::write(ws.path().join("web.secret"), [7u8; 48]).expect("secret");
    add_subscribers(&ws, 1);
    let mut daemon = Daemon::start(&ws);
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        http(reqwest::Method::GET, &format!("{base}/healthz"), None).0,
        200
    );
    daemon.wait_for_watch(&ws.config, "ncumbria", "a first version", |w| {
        w.latest_version == Some(1)
    });
    site.set_html(
        "/ncumbria",
        partnership_page("North Cumbria partnership", MORE_PLACES, "Jane Smith"),
    );
    let received = server.wait_for(1, Duration::from_secs(20));
    assert_eq!(received.len(), 1, "log:\n{}", daemon.log());
    let message = &received[0];

    // The briefing links to the change's own page, which the daemon serves.
    assert!(
        message
            .data
            .contains("https://briefings.example.org/changes/ncumbria~2"),
        "no change link in:\n{}",
        message.data
    );
    let (status, page) = http(
        reqwest::Method::GET,
        &format!("{base}/changes/ncumbria~2"),
        None,
    );
    assert_eq!(status, 200);
    assert!(page.contains("Copeland"), "{page}");

    // One-click unsubscribe (RFC 8058) with the token from List-Unsubscribe.
    let list_unsubscribe = message.header("List-Unsubscribe").expect("header");
    assert_eq!(
        message.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let https = list_unsubscribe
        .split(',')
        .map(|part| part.trim().trim_matches(['<', '>']))
        .find(|part| part.starts_with("https://"))
        .expect("an https unsubscribe link");
    let path = https.trim_start_matches("https://briefings.example.org");
    let (status, _) = http(
        reqwest::Method::POST,
        &format!("{base}{path}"),
        Some("List-Unsubscribe=One-Click"),
    );
    assert!(status < 400, "one-click unsubscribe answered {status}");

    // Counted in /metrics.
    let (_, metrics) = http(reqwest::Method::GET, &format!("{base}/metrics"), None);
    assert!(metrics.contains("tidings_sends_total 1"), "{metrics}");

    daemon.signal("-TERM");
    assert!(daemon.wait_exit().success());
    let list = ws.run(&["subscribers", "list"]);
    assert!(
        !list.stdout.contains("reader0@example.org"),
        "still subscribed:\n{}",
        list.stdout
    );
}
