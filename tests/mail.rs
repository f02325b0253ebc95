//! `mail` against a real SMTP conversation on loopback.
//!
//! The server is a small scripted responder on a `std::net::TcpListener`
//! bound to 127.0.0.1:0, in this file. The mailin-embedded crate was the
//! first choice, but it pulls rustls with its default aws-lc-rs provider
//! (compiling aws-lc, and switching the provider feature on for every dev
//! build of the crate), and it cannot be told to answer 451, 550 or 535,
//! which these tests need. The responder speaks just enough ESMTP for
//! lettre: EHLO, AUTH, MAIL, RCPT, DATA, RSET, NOOP, QUIT.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use tidings::brief::{BriefChange, Briefing, Templates};
use tidings::classify::Kind;
use tidings::config::{MailSettings, MailTransport, PasswordSource, SmtpSettings, SmtpTls};
use tidings::diff::{DiffOptions, diff};
use tidings::mail::{MailError, Mailer, Outgoing, Sent, build_message, message_id};
use tidings::model::{Block, BlockKind};
use tidings::store::{Cadence, Subscriber};

/// What the server answers to each command.
#[derive(Clone)]
struct Script {
    auth: &'static str,
    mail: &'static str,
    rcpt: &'static str,
    data: &'static str,
    /// Accept connections and never say a word.
    silent: bool,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            auth: "235 2.7.0 Authentication successful",
            mail: "250 2.1.0 OK",
            rcpt: "250 2.1.5 OK",
            data: "250 2.0.0 queued",
            silent: false,
        }
    }
}

/// One message the server accepted.
#[derive(Debug, Clone)]
struct Received {
    rcpt: Vec<String>,
    data: String,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

fn serve(script: Script) -> (u16, Inbox) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let inbox: Inbox = Arc::default();
    let shared = Arc::clone(&inbox);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let script = script.clone();
            let inbox = Arc::clone(&shared);
            std::thread::spawn(move || {
                if script.silent {
                    std::thread::sleep(Duration::from_secs(30));
                    drop(stream);
                } else {
                    let _ = session(stream, &script, &inbox);
                }
            });
        }
    });
    (port, inbox)
}

fn session(stream: TcpStream, script: &Script, inbox: &Inbox) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut reply = |line: &str| out.write_all(format!("{line}\r\n").as_bytes());
    reply("220 test.local ESMTP ready")?;
    let mut rcpt = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let verb = command.split([' ', ':']).next().unwrap_or("");
        match verb {
            "EHLO" | "HELO" => reply("250-test.local\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME")?,
            "AUTH" => reply(script.auth)?,
            "MAIL" => {
                rcpt.clear();
                reply(script.mail)?;
            }
            "RCPT" => {
                rcpt.push(line.trim_end()[8..].trim().to_owned());
                reply(script.rcpt)?;
            }
            "DATA" => {
                reply("354 go ahead")?;
                let mut data = String::new();
                loop {
                    let mut body_line = String::new();
                    if reader.read_line(&mut body_line)? == 0 {
                        return Ok(());
                    }
                    if body_line == ".\r\n" {
                        break;
                    }
                    // Undo dot-stuffing.
                    let body_line = body_line
                        .strip_prefix('.')
                        .filter(|l| l.starts_with('.'))
                        .unwrap_or(&body_line);
                    data.push_str(body_line);
                }
                if script.data.starts_with('2') {
                    inbox.lock().expect("inbox").push(Received {
                        rcpt: rcpt.clone(),
                        data,
                    });
                }
                reply(script.data)?;
            }
            "RSET" | "NOOP" => reply("250 OK")?,
            "QUIT" => {
                reply("221 bye")?;
                return Ok(());
            }
            _ => reply("502 5.5.2 not implemented")?,
        }
    }
}

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

fn header(data: &str, name: &str) -> Option<String> {
    // Unfold continuation lines first.
    let unfolded = data.replace("\r\n ", " ").replace("\r\n\t", " ");
    let head = unfolded.split("\r\n\r\n").next().unwrap_or("").to_owned();
    let prefix = format!("{}:", name.to_ascii_lowercase());
    head.lines()
        .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
        .map(|line| line[prefix.len()..].trim().to_owned())
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
    let (port, inbox) = serve(Script::default());
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

    let inbox = inbox.lock().expect("inbox").clone();
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
    let (port, _inbox) = serve(script);
    let mut settings = settings(port);
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
            rcpt: "451 4.3.0 try again later",
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
            rcpt: "550 5.1.1 no such user",
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
            auth: "535 5.7.8 authentication credentials invalid",
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
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let error = send(&settings(port), "k").await.expect_err("refused");
    assert!(matches!(error, MailError::Transient(_)), "{error:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let (port, _inbox) = serve(Script {
        silent: true,
        ..Script::default()
    });
    let mut settings = settings(port);
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
