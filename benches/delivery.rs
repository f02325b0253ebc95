//! Delivery at scale, and delivery through kills.
//!
//! ```text
//! cargo bench --bench delivery                 # both parts
//! cargo bench --bench delivery -- throughput   # 5,000 subscribers
//! cargo bench --bench delivery -- kills        # 20 random kill -9s
//! ```
//!
//! **throughput**: a store on disk with `TIDINGS_BENCH_SUBSCRIBERS`
//! (default 5,000) confirmed subscribers of one page; one boundary change
//! is committed through `pipeline::apply_page` (which writes one outbox row
//! per subscriber in the snapshot's transaction), then the delivery worker
//! hands every briefing to a loopback SMTP server (the scripted server the
//! tests use, in this process). Reported: the commit, the time to hand over
//! every briefing (with the default `max_per_second`, and unpaced), and
//! briefings per second. Each send is composed from the stored change,
//! sent, marked sent and flushed before the next.
//!
//! **kills**: the real daemon (`tidings run`) with `TIDINGS_BENCH_KILL_SUBSCRIBERS`
//! (default 500) subscribers, a page change, and 20 kill -9s at random
//! moments of the delivery run, each followed by a restart. Afterwards
//! every subscriber must hold exactly one distinct Message-ID; re-sends of
//! the same Message-ID (the briefing in flight at a kill) are counted.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/smtp.rs"]
mod smtp;

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Site, WatchDef, Workspace, command, partnership_page};
use smtp::{Script, SmtpServer};
use tidings::config::{MailSettings, MailTransport, SmtpSettings, SmtpTls};
use tidings::core::brief::Templates;
use tidings::core::diff::DiffOptions;
use tidings::core::extract::Rules;
use tidings::fetch::Validators;
use tidings::mail::Mailer;
use tidings::service::delivery::{Deliverer, Links};
use tidings::service::pipeline::{Audience, FetchedPage, Outcome, apply_page};
use tidings::store::{Cadence, Store, Subscriber};
use tokio_util::sync::CancellationToken;

const PLACES: &[&str] = &["Allerdale", "Carlisle", "Eden"];
const MORE_PLACES: &[&str] = &["Allerdale", "Carlisle", "Eden", "Copeland"];

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if wants("throughput") {
        throughput();
    }
    if wants("kills") {
        kills();
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn smtp_settings(port: u16, max_per_second: u32) -> MailSettings {
    MailSettings {
        from_address: "briefings@example.org".to_owned(),
        list_id: "briefings.example.org".to_owned(),
        timeout: Duration::from_secs(10),
        transport: MailTransport::Smtp(SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            pool_size: 2,
            ca_file: None,
        }),
        max_per_second,
        ..MailSettings::default()
    }
}

/// Fetches the page (as the daemon would, subscribers told) and returns
/// how long the commit took.
fn apply(store: &Store, places: &[&str]) -> (Duration, Outcome) {
    let html = partnership_page("North Cumbria partnership", places, "Jane Smith");
    let tags = vec!["North Cumbria".to_owned()];
    let page = FetchedPage {
        html: &html,
        fetched_at: Utc::now(),
        validators: Validators::default(),
        audience: Some(Audience {
            url: "https://example.org/ncumbria",
            tags: &tags,
        }),
    };
    let started = Instant::now();
    let outcome = apply_page(
        store,
        "ncumbria",
        &Rules::default(),
        &[],
        &page,
        &DiffOptions::default(),
    )
    .expect("apply");
    store.flush().expect("flush");
    (started.elapsed(), outcome)
}

fn throughput() {
    let subscribers = env_count("TIDINGS_BENCH_SUBSCRIBERS", 5000);
    let default_rate = MailSettings::default().max_per_second;
    for (label, rate) in [("default pacing", default_rate), ("unpaced", 1_000_000)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let now = Utc::now();
        for i in 0..subscribers {
            store
                .put_subscriber(&Subscriber {
                    address: format!("reader{i}@example.org"),
                    name: format!("Reader {i}"),
                    watches: Vec::new(),
                    tags: Vec::new(),
                    kinds: Vec::new(),
                    cadence: Cadence::Immediate,
                    confirmed: true,
                    consent_at: Some(now),
                    consent_source: Some("bench".to_owned()),
                    created: now,
                })
                .expect("subscriber");
        }
        apply(&store, PLACES);
        let (commit, outcome) = apply(&store, MORE_PLACES);
        assert!(matches!(outcome, Outcome::Changed { .. }), "{outcome:?}");
        assert_eq!(store.outbox_depth().expect("depth"), subscribers as u64);

        let server = SmtpServer::start(Script::default());
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _context = runtime.enter();
        let settings = smtp_settings(server.port(), rate);
        let mailer = Mailer::new(&settings, dir.path()).expect("mailer");
        let mut deliverer = Deliverer::new(
            store.clone(),
            Arc::new(mailer),
            settings,
            Arc::new(Templates::embedded()),
            Links::default(),
        );
        let started = Instant::now();
        let round = runtime
            .block_on(deliverer.deliver_due(&CancellationToken::new()))
            .expect("deliver");
        let elapsed = started.elapsed();
        let received = server.wait_for(subscribers, Duration::from_secs(5)).len();
        assert_eq!(round.sent, subscribers, "{round:?}");
        assert_eq!(received, subscribers, "every briefing reached the server");
        println!(
            "throughput ({label}, max_per_second = {rate}): {subscribers} subscribers; \
             commit with {subscribers} outbox rows {:.0} ms; all handed to SMTP in {:.1} s \
             ({:.0} briefings/s, {:.2} ms each); store {:.1} MB",
            commit.as_secs_f64() * 1000.0,
            elapsed.as_secs_f64(),
            subscribers as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0 / subscribers as f64,
            store.stats().expect("stats").disk_bytes as f64 / 1e6,
        );
    }
}

/// A daemon process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(ws: &Workspace) -> Running {
    Running(
        command(ws.path())
            .args(["run", "--config", ws.config.to_str().expect("utf-8")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tidings run"),
    )
}

fn kills() {
    let subscribers = env_count("TIDINGS_BENCH_KILL_SUBSCRIBERS", 500);
    const KILLS: usize = 20;
    // A few milliseconds per message keeps the run long enough for twenty
    // kills to land inside it.
    let server = SmtpServer::start(Script {
        data_delay: Duration::from_millis(4),
        ..Script::default()
    });
    let site = Site::start();
    site.set_html(
        "/ncumbria",
        partnership_page("North Cumbria partnership", PLACES, "Jane Smith"),
    );
    let watch = WatchDef::new("ncumbria", site.url("/ncumbria"))
        .with("tags = [\"North Cumbria\"]")
        .with("schedule = \"*/1 * * * * *\"");
    let ws = Workspace::new(&[watch]);
    let config = std::fs::read_to_string(&ws.config).expect("config");
    std::fs::write(
        &ws.config,
        format!(
            "{config}\n[daemon]\nmax_jitter = \"0s\"\n\n[mail]\nfrom = \"briefings@example.org\"\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nretry_base = \"200ms\"\nretry_max = \"1s\"\n",
            server.port()
        ),
    )
    .expect("config");
    let csv: String = (0..subscribers)
        .map(|i| format!("reader{i}@example.org,,,,immediate\n"))
        .collect();
    let file = ws.path().join("subscribers.csv");
    std::fs::write(&file, csv).expect("csv");
    assert_eq!(
        ws.run(&["subscribers", "import", file.to_str().expect("utf-8")])
            .code,
        0
    );

    // A first version, then the change.
    let mut daemon = start(&ws);
    std::thread::sleep(Duration::from_secs(3));
    site.set_html(
        "/ncumbria",
        partnership_page("North Cumbria partnership", MORE_PLACES, "Jane Smith"),
    );
    let started = Instant::now();
    let mut landed = 0;
    for _ in 0..KILLS {
        let wait = Duration::from_millis(150 + fastrand::u64(0..450));
        std::thread::sleep(wait);
        let before = server.received().len();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &daemon.0.id().to_string()])
            .status();
        let _ = daemon.0.wait();
        if before > 0 && before < subscribers {
            landed += 1;
        }
        daemon = start(&ws);
    }
    let received = server.wait_for(subscribers, Duration::from_secs(120));
    // Let a straggler (a re-send after the last restart) arrive.
    std::thread::sleep(Duration::from_secs(1));
    drop(daemon);
    let elapsed = started.elapsed();

    let mut by: HashMap<String, Vec<String>> = HashMap::new();
    for message in server.received() {
        let id = message.header("Message-ID").expect("id");
        for rcpt in &message.rcpt {
            by.entry(rcpt.clone()).or_default().push(id.clone());
        }
    }
    let missing = subscribers - by.len();
    let different = by
        .values()
        .filter(|ids| {
            let mut distinct = (*ids).clone();
            distinct.sort();
            distinct.dedup();
            distinct.len() > 1
        })
        .count();
    let resent: usize = by.values().map(|ids| ids.len() - 1).sum();
    println!(
        "kills: {subscribers} subscribers, {KILLS} kill -9s ({landed} landed mid-delivery), \
         {} messages received in {:.1} s; missing {missing}, recipients with two different \
         Message-IDs {different}, same-Message-ID re-sends {resent}",
        received.len().max(server.received().len()),
        elapsed.as_secs_f64(),
    );
    assert_eq!(missing, 0, "a briefing was lost");
    assert_eq!(
        different, 0,
        "a briefing was duplicated under a new Message-ID"
    );
    assert!(resent <= KILLS, "more re-sends than kills");
}
