//! `mail` against a real SMTP conversation on loopback, with the scripted
//! server of `tests/common/smtp.rs` (which can answer 451, 550 and 535, or
//! nothing at all).

#[path = "common/smtp.rs"]
mod smtp;

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use smtp::{Script, SmtpServer, closed_port, header};
use tidings::config::{MailSettings, MailTransport, PasswordSource, SmtpSettings, SmtpTls};
use tidings::core::brief::{BriefChange, Briefing, Templates};
use tidings::core::classify::Kind;
use tidings::core::diff::{DiffOptions, diff};
use tidings::core::model::{Block, BlockKind};
use tidings::mail::{MailError, Mailer, Outgoing, Sent, build_message, message_id};
use tidings::store::{Cadence, Subscriber};

fn settings(port: u16) -> MailSettings {
    MailSettings {
        from_name: Some("Briefings".to_owned()),
        from_address: "briefings@example.org".to_owned(),
        list_id: "briefings.example.org".to_owned(),
        unsubscribe_url: Some(
            "https://example.org/unsubscribe/{token}"
                .parse()
                .expect("url"),
        ),
        timeout: Duration::from_secs(5),
        transport: MailTransport::Smtp(SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            pool_size: 2,
            ca_file: None,
        }),
        ..MailSettings::default()
    }
}

/// A briefing whose page text carries a script tag, built from a real diff.
fn briefing() -> Briefing {
    let old = vec![
        Block::new(BlockKind::Heading { level: 2 }, "Our members"),
        Block::new(BlockKind::ListItem, "Lancashire County Council"),
    ];
    let new = vec![
        Block::new(BlockKind::Heading { level: 2 }, "Our members"),
        Block::new(BlockKind::ListItem, "Lancashire County Council"),
        Block::new(
            BlockKind::ListItem,
            "Blackpool Council <script>alert(1)</script>",
        ),
    ];
    let evidence = diff(&old, &new, &DiffOptions::default()).changes;
    let change = BriefChange {
        watch: "lsc-members".to_owned(),
        title: "Our members".to_owned(),
        url: "https://example.org/members".to_owned(),
        tags: vec!["Lancashire and South Cumbria".to_owned()],
        seen_at: Utc.with_ymd_and_hms(2025, 3, 3, 9, 15, 0).unwrap(),
        kind: Kind::Members,
        summary: "Members: +Blackpool Council".to_owned(),
        evidence,
        why: "You get this because you follow Lancashire and South Cumbria.".to_owned(),
        change_url: None,
    };
    let subscriber = Subscriber {
        address: "ada@example.org".to_owned(),
        name: "Ada".to_owned(),
        watches: vec![],
        tags: vec![],
        kinds: vec![],
        cadence: Cadence::Immediate,
        confirmed: true,
        consent_at: None,
        consent_source: None,
        created: Utc::now(),
    };
    Templates::embedded()
        .compose(&subscriber, &[change], None)
        .expect("renders")
        .expect("a briefing")
}

fn outgoing<'a>(briefing: &'a Briefing, key: &'a str) -> Outgoing<'a> {
    Outgoing {
        to: "ada@example.org",
        to_name: "Ada",
        briefing,
        delivery_key: key,
        thread_key: Some("ada@example.org:lsc-members"),
        unsubscribe_token: Some("t0k3n"),
    }
}

/// The decoded body of the MIME part with this content type.
fn part_body(data: &str, content_type: &str) -> String {
    let start = data
        .find(&format!("Content-Type: {content_type}"))
        .expect("part");
    let part = &data[start..];
    let (head, body) = part.split_once("\r\n\r\n").expect("part body");
    let body = &body[..body.find("\r\n--").unwrap_or(body.len())];
    if head.contains("quoted-printable") {
        decode_quoted_printable(body)
    } else {
        assert!(!head.contains("base64"), "unexpected base64 part");
        body.to_owned()
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
            out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8")
}

async fn send(settings: &MailSettings, key: &str) -> Result<Sent, MailError> {
    let briefing = briefing();
    let message = build_message(settings, &outgoing(&briefing, key)).expect("builds");
    let mailer = Mailer::new(settings, Path::new("unused")).expect("mailer");
    mailer.send(&message).await
}

#[tokio::test]
async fn smtp_delivers_a_multipart_briefing_with_list_headers() {
    let server = SmtpServer::start(Script::default());
    let port = server.port();
    let settings = settings(port);
    assert_eq!(
        send(&settings, "change:lsc-members:2:ada").await,
        Ok(Sent::Smtp)
    );
    assert_eq!(
        send(&settings, "change:lsc-members:2:ada").await,
        Ok(Sent::Smtp)
    );
    assert_eq!(
        send(&settings, "change:lsc-members:3:ada").await,
        Ok(Sent::Smtp)
    );

    let inbox = server.received();
    assert_eq!(inbox.len(), 3);
    assert_eq!(inbox[0].rcpt, ["<ada@example.org>"]);
    let data = &inbox[0].data;
    let id = header(data, "Message-ID").expect("Message-ID");
    assert_eq!(id, message_id("change:lsc-members:2:ada", "example.org"));
    assert_eq!(
        header(&inbox[1].data, "Message-ID").as_ref(),
        Some(&id),
        "same key, same id"
    );
    assert_ne!(header(&inbox[2].data, "Message-ID").as_ref(), Some(&id));
    assert_eq!(
        header(&inbox[0].data, "References"),
        header(&inbox[2].data, "References"),
        "mails about one page thread together"
    );
    assert_eq!(
        header(data, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        header(data, "X-Auto-Response-Suppress").as_deref(),
        Some("OOF, AutoReply")
    );
    assert_eq!(
        header(data, "List-Id").as_deref(),
        Some("tidings briefings <briefings.example.org>")
    );
    assert_eq!(
        header(data, "List-Unsubscribe").as_deref(),
        Some(
            "<https://example.org/unsubscribe/t0k3n>, <mailto:briefings@example.org?subject=unsubscribe>"
        )
    );
    assert_eq!(
        header(data, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let subject = header(data, "Subject").expect("Subject");
    assert!(
        subject.starts_with("[tidings] Lancashire and South Cumbria"),
        "{subject}"
    );

    assert!(
        header(data, "Content-Type")
            .expect("type")
            .starts_with("multipart/alternative")
    );
    let text_at = data.find("Content-Type: text/plain").expect("text part");
    let html_at = data.find("Content-Type: text/html").expect("html part");
    assert!(text_at < html_at, "text part first, HTML last");
    let html = part_body(data, "text/html");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "page text is escaped in HTML");
    let text = part_body(data, "text/plain");
    assert!(
        text.contains("{+Blackpool Council <script>alert(1)</script>+}"),
        "{text}"
    );
}

async fn failure(script: Script, auth: bool) -> MailError {
    let server = SmtpServer::start(script);
    let mut settings = settings(server.port());
    if auth {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("password");
        std::fs::write(&file, "wrong\n").expect("write");
        if let MailTransport::Smtp(smtp) = &mut settings.transport {
            smtp.username = Some("tidings".to_owned());
            smtp.password = Some(PasswordSource::File(file));
        }
        // The password is read when the mailer is made, so the file may go.
        return send(&settings, "k").await.expect_err("fails");
    }
    send(&settings, "k").await.expect_err("fails")
}

#[tokio::test]
async fn a_451_is_transient() {
    let error = failure(
        Script {
            rcpt: "451 4.3.0 try again later".to_owned(),
            ..Script::default()
        },
        false,
    )
    .await;
    assert!(matches!(error, MailError::Transient(_)), "{error:?}");
}

#[tokio::test]
async fn a_550_for_the_recipient_is_permanent() {
    let error = failure(
        Script {
            rcpt: "550 5.1.1 no such user".to_owned(),
            ..Script::default()
        },
        false,
    )
    .await;
    assert!(matches!(error, MailError::Permanent(_)), "{error:?}");
}

#[tokio::test]
async fn a_535_is_an_auth_failure_that_names_no_password() {
    let error = failure(
        Script {
            auth: "535 5.7.8 authentication credentials invalid".to_owned(),
            ..Script::default()
        },
        true,
    )
    .await;
    assert!(matches!(error, MailError::Auth(_)), "{error:?}");
    assert!(!error.to_string().contains("wrong"), "{error}");
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let error = send(&settings(closed_port()), "k")
        .await
        .expect_err("refused");
    assert!(matches!(error, MailError::Transient(_)), "{error:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = SmtpServer::start(Script {
        silent: true,
        ..Script::default()
    });
    let mut settings = settings(server.port());
    settings.timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let error = send(&settings, "k").await.expect_err("times out");
    assert!(matches!(error, MailError::Transient(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn the_file_transport_writes_one_eml_per_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(0);
    settings.transport = MailTransport::File { dir: None };
    let briefing = briefing();
    let mailer = Mailer::new(&settings, dir.path()).expect("mailer");
    let mut paths = Vec::new();
    for key in ["a", "a", "b"] {
        let message = build_message(&settings, &outgoing(&briefing, key)).expect("builds");
        match mailer.send(&message).await.expect("sent") {
            Sent::File(path) => paths.push(path),
            Sent::Smtp => panic!("file transport expected"),
        }
    }
    assert_eq!(paths[0], paths[1], "a re-sent delivery replaces its file");
    assert_ne!(paths[0], paths[2]);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
        .expect("mail dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let eml = std::fs::read_to_string(&paths[0]).expect("eml");
    assert_eq!(
        header(&eml, "Message-ID"),
        Some(message_id("a", "example.org"))
    );
    assert!(eml.contains("Content-Type: text/html"));
}
