//! The outbox end to end in one process: a change committed through the
//! pipeline queues briefings in the same transaction, and the delivery
//! worker hands them to a real SMTP conversation on loopback, through
//! every failure the issue lists (server down then up, 451 then OK, 550
//! for one recipient, 535, a server that never answers).
//!
//! Every scenario runs on a temporary sled store (`NAME::sled`) and on a
//! PostgreSQL database of its own (`NAME::postgres`, skipped with a printed
//! reason without PostgreSQL).

mod common;
#[macro_use]
#[path = "common/pg.rs"]
mod pg;
#[path = "common/smtp.rs"]
mod smtp;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pg::Backend;
use smtp::{Script, SmtpServer, closed_port};
use tidings::config::{MailSettings, MailTransport, PasswordSource, SmtpSettings, SmtpTls};
use tidings::core::brief::Templates;
use tidings::core::classify::Kind;
use tidings::core::diff::DiffOptions;
use tidings::core::extract::Rules;
use tidings::fetch::Validators;
use tidings::mail::{Mailer, message_id};
use tidings::service::delivery::{Deliverer, Links, OutboxCommand, outbox_command};
use tidings::service::pipeline::{Audience, FetchedPage, Outcome, apply_page};
use tidings::store::{Cadence, DeliveryState, Store, Subscriber, Suppression, change_key};
use tokio_util::sync::CancellationToken;

on_both_backends!(
    async
    a_change_reaches_each_matching_subscriber_exactly_once,
    a_digest_gathers_changes_into_one_mail_when_its_schedule_fires,
    a_server_that_is_down_then_up_gets_everything_exactly_once,
    a_451_is_retried_and_then_delivered,
    a_550_fails_one_recipient_and_not_the_others,
    a_535_pauses_the_queue_until_the_settings_are_fixed,
    a_server_that_never_answers_is_a_temporary_failure,
    leaving_cancels_what_waits_and_forget_erases_it,
    an_admin_can_cancel_a_briefing_before_it_goes,
);

const PLACES: &[&str] = &["Allerdale", "Carlisle", "Eden"];
const MORE_PLACES: &[&str] = &["Allerdale", "Carlisle", "Eden", "Copeland"];

fn tags() -> Vec<String> {
    vec!["North Cumbria".to_owned()]
}

/// One fetch of a partnership page through the pipeline, as the daemon
/// does it: subscribers are told.
fn fetch(store: &Store, watch: &str, places: &[&str], chair: &str) -> Outcome {
    let html = common::partnership_page("North Cumbria partnership", places, chair);
    let tags = tags();
    let url = format!("https://example.org/{watch}");
    let page = FetchedPage {
        html: &html,
        fetched_at: Utc::now(),
        validators: Validators::default(),
        audience: Some(Audience {
            url: &url,
            tags: &tags,
        }),
    };
    apply_page(
        store,
        watch,
        &Rules::default(),
        &[],
        &page,
        &DiffOptions::default(),
    )
    .expect("apply")
}

/// A first version, then a boundary change (a place added).
fn boundary_change(store: &Store, watch: &str) -> u64 {
    fetch(store, watch, PLACES, "Jane Smith");
    match fetch(store, watch, MORE_PLACES, "Jane Smith") {
        Outcome::Changed {
            version,
            assessment,
            ..
        } => {
            assert!(
                assessment.kinds().contains(&Kind::Boundary),
                "{assessment:?}"
            );
            version
        }
        other => panic!("expected a change, got {other:?}"),
    }
}

fn subscriber(address: &str, cadence: Cadence) -> Subscriber {
    Subscriber {
        address: address.to_owned(),
        name: "Ada Lovelace".to_owned(),
        watches: Vec::new(),
        tags: Vec::new(),
        kinds: Vec::new(),
        cadence,
        confirmed: true,
        consent_at: Some(Utc::now()),
        consent_source: Some("test".to_owned()),
        created: Utc::now(),
    }
}

fn settings(port: u16) -> MailSettings {
    MailSettings {
        from_address: "briefings@example.org".to_owned(),
        list_id: "briefings.example.org".to_owned(),
        timeout: Duration::from_secs(2),
        transport: MailTransport::Smtp(SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            pool_size: 2,
            ca_file: None,
        }),
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        max_per_second: 1000,
        ..MailSettings::default()
    }
}

/// A pass goes on while rows are due, and a retried row falls due again
/// after its first retry wait (80 to 100 % of `retry_base`). For tests that
/// count one pass's attempts, a wait long enough that one pass tries each
/// row once even on a slow store (a loaded machine, PostgreSQL).
fn one_try_per_pass(mut mail: MailSettings) -> MailSettings {
    mail.retry_base = Duration::from_millis(500);
    mail.retry_max = Duration::from_secs(1);
    mail
}

fn deliverer(store: &Store, settings: &MailSettings) -> Deliverer {
    let mailer = Mailer::new(settings, store.path()).expect("mailer");
    Deliverer::new(
        store.clone(),
        Arc::new(mailer),
        settings.clone(),
        Arc::new(Templates::embedded()),
        Links {
            base_url: Some("https://tidings.example.org/".parse().expect("url")),
            unsubscribe_token: None,
            preferences_token: Some(Arc::new(|address: &str| format!("pref-{address}"))),
            ..Links::default()
        },
    )
}

async fn pass(deliverer: &mut Deliverer) -> tidings::service::delivery::Round {
    deliverer
        .deliver_due(&CancellationToken::new())
        .await
        .expect("pass")
}

/// Passes until nothing is pending (retries fall due within `retry_max`).
async fn drain(deliverer: &mut Deliverer, store: &Store) {
    for _ in 0..100 {
        pass(deliverer).await;
        if store.outbox_depth().expect("depth") == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    panic!("the outbox did not drain: {:?}", store.deliveries());
}

fn state_of(store: &Store, address: &str) -> DeliveryState {
    store
        .deliveries()
        .expect("rows")
        .into_iter()
        .find(|d| d.address == address)
        .map(|d| d.state)
        .unwrap_or_else(|| panic!("no row for {address}"))
}

async fn a_change_reaches_each_matching_subscriber_exactly_once(backend: &Backend) {
    let store = backend.open();
    let everyone = subscriber("ada@example.org", Cadence::Immediate);
    let mut leaders_only = subscriber("lee@example.org", Cadence::Immediate);
    leaders_only.kinds = vec![Kind::Leaders];
    let mut other_page = subscriber("olu@example.org", Cadence::Immediate);
    other_page.watches = vec!["somewhere-else".to_owned()];
    let mut unconfirmed = subscriber("una@example.org", Cadence::Immediate);
    unconfirmed.confirmed = false;
    let suppressed = subscriber("sue@example.org", Cadence::Immediate);
    let mut by_tag = subscriber("tag@example.org", Cadence::Immediate);
    by_tag.tags = tags();
    for s in [
        &everyone,
        &leaders_only,
        &other_page,
        &unconfirmed,
        &suppressed,
        &by_tag,
    ] {
        store.put_subscriber(s).expect("put");
    }
    store
        .suppress(&Suppression {
            address: "sue@example.org".to_owned(),
            reason: "bounced".to_owned(),
            at: Utc::now(),
            requested: false,
        })
        .expect("suppress");

    let version = boundary_change(&store, "ncumbria");
    // Queued with the snapshot: two rows, before any worker ran.
    let rows = store.deliveries().expect("rows");
    let mut queued: Vec<&str> = rows.iter().map(|d| d.address.as_str()).collect();
    queued.sort_unstable();
    assert_eq!(queued, ["ada@example.org", "tag@example.org"]);

    let server = SmtpServer::start(Script::default());
    let mut worker = deliverer(&store, &settings(server.port()));
    let round = pass(&mut worker).await;
    assert_eq!(round.sent, 2, "{round:?}");
    let received = server.received();
    assert_eq!(received.len(), 2);
    let to_ada = received
        .iter()
        .find(|m| m.rcpt.iter().any(|r| r.contains("ada@example.org")))
        .expect("ada's briefing");
    assert_eq!(
        to_ada.header("Message-ID").as_deref(),
        Some(
            message_id(
                &change_key("ncumbria", version, "ada@example.org"),
                "example.org"
            )
            .as_str()
        )
    );
    assert!(to_ada.header("In-Reply-To").is_some(), "threaded");
    let subject = to_ada.header("Subject").expect("subject");
    assert!(subject.contains("North Cumbria"), "{subject}");
    assert!(to_ada.data.contains("Copeland"), "the added place is shown");
    assert!(
        to_ada.data.contains(&format!(
            "https://tidings.example.org/changes/ncumbria~{version}"
        )),
        "links to the change page"
    );
    // Quoted-printable may fold long lines; unfold before looking.
    let unfolded = to_ada.data.replace("=\r\n", "");
    assert!(
        unfolded.contains("https://tidings.example.org/preferences/pref-ada@example.org"),
        "links to the preferences page:\n{unfolded}"
    );

    // Nothing is sent twice.
    let again = pass(&mut worker).await;
    assert_eq!(again.sent, 0);
    assert_eq!(server.received().len(), 2);
    assert_eq!(state_of(&store, "ada@example.org"), DeliveryState::Sent);
}

async fn a_digest_gathers_changes_into_one_mail_when_its_schedule_fires(backend: &Backend) {
    let store = backend.open();
    // Every second: the schedule has always just fired.
    let digest = Cadence::Digest {
        cron: "* * * * * *".to_owned(),
        timezone: chrono_tz::Europe::London,
    };
    store
        .put_subscriber(&subscriber("dee@example.org", digest))
        .expect("put");
    boundary_change(&store, "ncumbria");
    fetch(&store, "ncumbria", MORE_PLACES, "John Brown");
    assert!(store.deliveries().expect("rows").is_empty(), "digests wait");
    assert_eq!(store.digest_entries("dee@example.org").expect("e").len(), 2);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let server = SmtpServer::start(Script::default());
    let mut worker = deliverer(&store, &settings(server.port()));
    let round = pass(&mut worker).await;
    assert_eq!((round.digests, round.sent), (1, 1), "{round:?}");
    let mail = &server.received()[0];
    let subject = mail.header("Subject").expect("subject");
    assert!(subject.contains("Digest: 2 changes"), "{subject}");
    assert!(
        mail.header("In-Reply-To").is_none(),
        "digests do not thread"
    );
    assert!(
        store
            .digest_entries("dee@example.org")
            .expect("e")
            .is_empty()
    );
    assert_eq!(pass(&mut worker).await.sent, 0);
}

async fn a_server_that_is_down_then_up_gets_everything_exactly_once(backend: &Backend) {
    let store = backend.open();
    for address in ["a@example.org", "b@example.org", "c@example.org"] {
        store
            .put_subscriber(&subscriber(address, Cadence::Immediate))
            .expect("put");
    }
    boundary_change(&store, "ncumbria");
    let port = closed_port();
    let mut worker = deliverer(&store, &one_try_per_pass(settings(port)));
    let round = pass(&mut worker).await;
    assert_eq!((round.sent, round.retried), (0, 3), "{round:?}");
    for row in store.deliveries().expect("rows") {
        assert_eq!(row.state, DeliveryState::Pending);
        assert_eq!(row.attempts, 1);
        assert!(row.last_error.is_some());
    }
    // Still down at the first retry.
    tokio::time::sleep(Duration::from_millis(600)).await;
    pass(&mut worker).await;

    let server = SmtpServer::start_on(port, Script::default());
    drain(&mut worker, &store).await;
    let received = server.received();
    assert_eq!(received.len(), 3);
    let mut ids: Vec<String> = received
        .iter()
        .map(|m| m.header("Message-ID").expect("id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct briefings");
}

async fn a_451_is_retried_and_then_delivered(backend: &Backend) {
    let store = backend.open();
    store
        .put_subscriber(&subscriber("a@example.org", Cadence::Immediate))
        .expect("put");
    boundary_change(&store, "ncumbria");
    let server = SmtpServer::start(Script {
        rcpt_first: vec!["451 4.7.1 try again later".to_owned()],
        ..Script::default()
    });
    let mut worker = deliverer(&store, &one_try_per_pass(settings(server.port())));
    let first = pass(&mut worker).await;
    assert_eq!((first.sent, first.retried), (0, 1), "{first:?}");
    let row = &store.deliveries().expect("rows")[0];
    assert!(
        row.last_error.as_deref().unwrap_or("").contains("451"),
        "{row:?}"
    );
    drain(&mut worker, &store).await;
    assert_eq!(server.received().len(), 1);
    let row = &store.deliveries().expect("rows")[0];
    assert_eq!((row.state, row.attempts), (DeliveryState::Sent, 2));
}

async fn a_550_fails_one_recipient_and_not_the_others(backend: &Backend) {
    let store = backend.open();
    for address in ["good@example.org", "gone@example.org"] {
        store
            .put_subscriber(&subscriber(address, Cadence::Immediate))
            .expect("put");
    }
    boundary_change(&store, "ncumbria");
    let server = SmtpServer::start(Script {
        refuse: vec![(
            "gone@example.org".to_owned(),
            "550 5.1.1 no such user".to_owned(),
        )],
        ..Script::default()
    });
    let mut worker = deliverer(&store, &settings(server.port()));
    let round = pass(&mut worker).await;
    assert_eq!((round.sent, round.failed), (1, 1), "{round:?}");
    assert_eq!(state_of(&store, "gone@example.org"), DeliveryState::Failed);
    assert_eq!(state_of(&store, "good@example.org"), DeliveryState::Sent);
    // A failed row is not retried by itself...
    assert_eq!(pass(&mut worker).await.sent, 0);
    // ...but an admin can queue it again.
    let reply = outbox_command(
        &store,
        &OutboxCommand::Retry {
            ids: Vec::new(),
            failed: true,
        },
        "example.org",
        Utc::now(),
    )
    .expect("retry");
    assert_eq!(reply.rows.len(), 1);
    assert_eq!(state_of(&store, "gone@example.org"), DeliveryState::Pending);
}

async fn a_535_pauses_the_queue_until_the_settings_are_fixed(backend: &Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = backend.open();
    for address in ["a@example.org", "b@example.org"] {
        store
            .put_subscriber(&subscriber(address, Cadence::Immediate))
            .expect("put");
    }
    boundary_change(&store, "ncumbria");
    let server = SmtpServer::start(Script {
        auth: "535 5.7.8 authentication credentials invalid".to_owned(),
        ..Script::default()
    });
    let password = dir.path().join("password");
    std::fs::write(&password, "wrong\n").expect("write");
    let mut mail = settings(server.port());
    if let MailTransport::Smtp(smtp) = &mut mail.transport {
        smtp.username = Some("tidings".to_owned());
        smtp.password = Some(PasswordSource::File(password.clone()));
    }
    let mut worker = deliverer(&store, &mail);
    let round = pass(&mut worker).await;
    let reason = round.paused.expect("paused");
    assert!(reason.contains("535"), "{reason}");
    assert!(!reason.contains("wrong"), "the password is never shown");
    assert_eq!(round.sent + round.failed, 0);
    // The queue stops at the first refusal: one attempt in all, none
    // counted against the rows.
    for row in store.deliveries().expect("rows") {
        assert_eq!((row.state, row.attempts), (DeliveryState::Pending, 0));
    }
    let again = pass(&mut worker).await;
    assert!(again.paused.is_some(), "still paused");

    // The admin fixes the password and reloads: a new worker.
    std::fs::write(&password, "right\n").expect("write");
    server.set_script(|s| s.auth = "235 2.7.0 OK".to_owned());
    let mut fixed = deliverer(&store, &mail);
    let round = pass(&mut fixed).await;
    assert_eq!(round.sent, 2, "{round:?}");
}

async fn a_server_that_never_answers_is_a_temporary_failure(backend: &Backend) {
    let store = backend.open();
    store
        .put_subscriber(&subscriber("a@example.org", Cadence::Immediate))
        .expect("put");
    boundary_change(&store, "ncumbria");
    let server = SmtpServer::start(Script {
        silent: true,
        ..Script::default()
    });
    let mut mail = one_try_per_pass(settings(server.port()));
    mail.timeout = Duration::from_millis(500);
    let mut worker = deliverer(&store, &mail);
    let started = std::time::Instant::now();
    let round = pass(&mut worker).await;
    assert_eq!(round.retried, 1, "{round:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the send was bounded"
    );
    let row = &store.deliveries().expect("rows")[0];
    assert_eq!(row.state, DeliveryState::Pending);
}

async fn leaving_cancels_what_waits_and_forget_erases_it(backend: &Backend) {
    let store = backend.open();
    for address in ["stay@example.org", "leave@example.org", "erase@example.org"] {
        store
            .put_subscriber(&subscriber(address, Cadence::Immediate))
            .expect("put");
    }
    boundary_change(&store, "ncumbria");
    store
        .remove_subscriber("leave@example.org")
        .expect("remove");
    let forgotten = store.forget("erase@example.org").expect("forget");
    assert_eq!(forgotten.deliveries, 1);
    let server = SmtpServer::start(Script::default());
    let mut worker = deliverer(&store, &settings(server.port()));
    let round = pass(&mut worker).await;
    assert_eq!((round.sent, round.cancelled), (1, 1), "{round:?}");
    assert_eq!(
        state_of(&store, "leave@example.org"),
        DeliveryState::Cancelled
    );
    assert!(
        store
            .deliveries()
            .expect("rows")
            .iter()
            .all(|d| d.address != "erase@example.org")
    );
}

async fn an_admin_can_cancel_a_briefing_before_it_goes(backend: &Backend) {
    let store = backend.open();
    store
        .put_subscriber(&subscriber("a@example.org", Cadence::Immediate))
        .expect("put");
    boundary_change(&store, "ncumbria");
    let id = store.deliveries().expect("rows")[0].id;
    let reply = outbox_command(
        &store,
        &OutboxCommand::Cancel { ids: vec![id, 999] },
        "example.org",
        Utc::now(),
    )
    .expect("cancel");
    assert_eq!(reply.rows.len(), 1);
    assert_eq!(reply.skipped, [999]);
    let server = SmtpServer::start(Script::default());
    let mut worker = deliverer(&store, &settings(server.port()));
    assert_eq!(pass(&mut worker).await.sent, 0);
    assert!(server.received().is_empty());
}
