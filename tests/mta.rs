//! `tidings send-test` through a real MTA: exim4, run by the harness in
//! `common/exim.rs` on loopback with its own CA, over STARTTLS and over
//! implicit TLS, both with AUTH, and the delivered Maildir files checked
//! header by header. tests/mail.rs covers the SMTP replies a scripted
//! server can fake; this covers what only a real server shows: that
//! lettre's TLS (rustls, with `ca_file` as an extra root) and AUTH work
//! against an independent implementation, and that what arrives is the
//! message tidings built, unchanged by the trip.
//!
//! When exim is not installed every test prints a skip notice and passes.
//! .ci/run installs exim4-daemon-light and sets `TIDINGS_REQUIRE_MTA=1`,
//! under which a missing exim fails instead, so a broken install step
//! cannot turn into a quietly skipped test.

#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "common/exim.rs"]
mod exim;

use std::path::Path;
use std::time::Duration;

use common::{Run, Workspace};
use exim::{Delivered, Exim, Security};

/// Says why a test did nothing. Written to stderr directly rather than with
/// `eprintln!`, which the test harness captures: a skip must show in the
/// `cargo test` output, not only when the test fails.
macro_rules! skip_notice {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const FROM: &str = "Partnership briefings <briefings@example.org>";
const RECIPIENT: &str = "ada@example.org";
/// The variable the implicit-TLS config reads its password from. Set only
/// on the child process, never in this test process's environment.
const PASSWORD_VARIABLE: &str = "TIDINGS_TEST_SMTP_PASSWORD";
/// How long a delivery may take to reach the Maildir.
const DELIVERY_WAIT: Duration = Duration::from_secs(20);

/// The MTA, or `None` with a skip notice when exim is not installed.
fn start_exim(test: &str) -> Option<Exim> {
    let Some(binary) = exim::binary() else {
        assert!(
            std::env::var_os("TIDINGS_REQUIRE_MTA").is_none(),
            "TIDINGS_REQUIRE_MTA is set but exim is not installed \
             (apt-get install exim4-daemon-light)"
        );
        skip_notice!(
            "skipped: {test}: exim4 not found, no real-MTA test \
             (apt-get install exim4-daemon-light)"
        );
        return None;
    };
    Some(Exim::start(&binary))
}

/// Where the SMTP password comes from.
enum Password<'a> {
    /// `password_file`, holding this text.
    File(&'a str),
    /// `password_env`, the child's variable set to this text.
    Env(&'a str),
}

/// How tidings reaches exim.
struct Route<'a> {
    security: Security,
    password: Password<'a>,
}

/// A TOML literal string: no escapes inside, which a temporary path
/// never needs.
fn literal(path: &Path) -> String {
    let text = path.to_str().expect("utf-8 path");
    assert!(!text.contains('\''), "{text}");
    format!("'{text}'")
}

/// Runs `tidings send-test RECIPIENT` with a config that sends to `exim`
/// by `route`.
fn send_test(exim: &Exim, route: &Route<'_>) -> Run {
    let ws = Workspace::with_config("");
    let password = match route.password {
        Password::File(text) => {
            let file = ws.path().join("smtp-password");
            // A trailing newline, as `echo secret > file` leaves; tidings
            // must not send it.
            std::fs::write(&file, format!("{text}\n")).expect("write password file");
            format!("password_file = {}", literal(&file))
        }
        Password::Env(_) => format!("password_env = \"{PASSWORD_VARIABLE}\""),
    };
    let config = format!(
        "state_dir = \"state\"\n\n{}",
        exim.mail_section(route.security, FROM, &password)
    );
    std::fs::write(&ws.config, config).expect("write config");

    let config = ws.config.to_str().expect("utf-8 path");
    let mut command = common::command(ws.path());
    command.args(["send-test", RECIPIENT, "--config", config]);
    if let Password::Env(text) = route.password {
        command.env(PASSWORD_VARIABLE, text);
    } else {
        command.env_remove(PASSWORD_VARIABLE);
    }
    common::finish(command.output().expect("run tidings"))
}

/// Sends the sample briefing by `route` and returns it as delivered.
fn deliver(exim: &Exim, route: &Route<'_>) -> Delivered {
    let run = send_test(exim, route);
    assert_eq!(run.code, 0, "send-test failed: {run}\n{}", exim.log());
    assert!(
        run.stdout.contains(&format!(
            "sent a test briefing to {RECIPIENT} via smtp://localhost:{}",
            exim.port(route.security)
        )),
        "{run}"
    );
    let mut messages = exim.wait_for_messages(1, DELIVERY_WAIT);
    assert_eq!(messages.len(), 1, "one send, one delivery");
    messages.remove(0)
}

/// Everything tidings put in the message arrived as built.
fn assert_briefing(message: &Delivered) {
    let one = |name: &str| {
        let values = message.header_all(name);
        assert_eq!(values.len(), 1, "{name}: {values:?}\n{}", message.raw);
        values.into_iter().next().expect("one value")
    };
    assert_eq!(
        one("From"),
        "\"Partnership briefings\" <briefings@example.org>"
    );
    assert_eq!(one("To"), RECIPIENT);
    let subject = one("Subject");
    assert!(
        subject.starts_with("[tidings test] Sample partnership: "),
        "{subject}"
    );
    // The sample's summary has a U+2212 minus, sent as an RFC 2047 word.
    assert!(
        subject.contains("\u{2212}Westmorland and Furness"),
        "{subject}"
    );

    // Exactly one Message-ID, ours, on the sender's domain:
    // `<32 hex digits.briefing@example.org>`.
    let id = one("Message-ID");
    let local = id
        .strip_prefix('<')
        .and_then(|id| id.strip_suffix(".briefing@example.org>"))
        .unwrap_or_else(|| panic!("Message-ID {id} is not on example.org"));
    assert!(
        local.len() == 32 && local.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(one("List-Id"), "tidings briefings <briefings.example.org>");
    assert_eq!(
        one("List-Unsubscribe"),
        "<mailto:briefings@example.org?subject=unsubscribe>"
    );
    assert!(
        message.header("List-Unsubscribe-Post").is_none(),
        "no one-click without an https unsubscribe URL"
    );
    assert_eq!(one("Auto-Submitted"), "auto-generated");
    assert_eq!(one("X-Auto-Response-Suppress"), "OOF, AutoReply");

    // What exim itself recorded about the envelope.
    assert_eq!(one("Envelope-to"), RECIPIENT);
    assert_eq!(one("Return-path"), "<briefings@example.org>");

    assert!(
        one("Content-Type").starts_with("multipart/alternative;"),
        "{}",
        message.raw
    );
    let parts = message.parts();
    let types: Vec<String> = parts.iter().map(exim::Part::media_type).collect();
    assert_eq!(
        types,
        ["text/plain", "text/html"],
        "text first, HTML last (clients show the last part they can render)"
    );
    let (text, html) = (&parts[0].text, &parts[1].text);
    for line in [
        "tidings saw 2 changes on pages you follow.",
        "* MEMBERS: +Blackpool Council",
        "* BOUNDARY: Places covered: \u{2212}Westmorland and Furness",
        "  You get this because you asked for a test briefing.",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("Blackpool Council"), "{html}");
    assert!(html.trim_end().ends_with("</html>"), "{html}");
}

/// Exim's own record shows the message came in on the port for `security`
/// over TLS 1.3 and authenticated as the test user: the `Received:` header
/// it added says `esmtpsa` (ESMTP + TLS + AUTH), and its log line for the
/// message names the interface and port, the TLS version and the
/// authenticator.
fn assert_received_with_tls_and_auth(exim: &Exim, message: &Delivered, security: Security) {
    let port = exim.port(security);
    let received = message.header_all("Received");
    assert_eq!(received.len(), 1, "{received:?}");
    // exim pads the field with two spaces; compare words.
    let received = received[0].split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        received.contains(&format!("by {} with esmtpsa (TLS1.3)", exim::HOSTNAME)),
        "{received}"
    );
    // The arrival line ends with `id=` and the Message-ID. (exim's own
    // queue id starts the line only in its log file, not on stderr, where
    // it logs when it runs without root.)
    let message_id = message.header("Message-ID").expect("Message-ID");
    let arrival = format!(" id={}", message_id.trim_matches(['<', '>']));
    let log = exim.log();
    let line = log
        .lines()
        .find(|line| line.contains(" <= ") && line.ends_with(&arrival))
        .unwrap_or_else(|| panic!("no arrival of {message_id} in the log:\n{log}"));
    for expected in [
        format!("I=[127.0.0.1]:{port} "),
        "P=esmtpsa ".to_owned(),
        "X=TLS1.3:".to_owned(),
        format!("A=plain:{} ", exim::USER),
    ] {
        assert!(line.contains(&expected), "no {expected:?} in {line}");
    }
}

#[test]
fn starttls_with_a_password_file_delivers_the_briefing() {
    let Some(exim) = start_exim("starttls_with_a_password_file_delivers_the_briefing") else {
        return;
    };
    let route = Route {
        security: Security::Starttls,
        password: Password::File(exim::PASSWORD),
    };
    let message = deliver(&exim, &route);
    assert_briefing(&message);
    assert_received_with_tls_and_auth(&exim, &message, route.security);
}

#[test]
fn implicit_tls_with_a_password_variable_delivers_the_briefing() {
    let Some(exim) = start_exim("implicit_tls_with_a_password_variable_delivers_the_briefing")
    else {
        return;
    };
    let route = Route {
        security: Security::Implicit,
        password: Password::Env(exim::PASSWORD),
    };
    let message = deliver(&exim, &route);
    assert_briefing(&message);
    assert_received_with_tls_and_auth(&exim, &message, route.security);
}

#[test]
fn a_wrong_password_or_clear_text_fails_with_an_authentication_error() {
    let Some(exim) =
        start_exim("a_wrong_password_or_clear_text_fails_with_an_authentication_error")
    else {
        return;
    };
    let wrong = "not-the-password";
    let attempts = [
        Route {
            security: Security::Starttls,
            password: Password::File(wrong),
        },
        Route {
            security: Security::Implicit,
            password: Password::Env(wrong),
        },
        // The right password, but exim offers AUTH only after TLS, so a
        // client that never starts TLS has no mechanism to use. tidings
        // allows `tls = "none"` with a password only on loopback, for a
        // relay on the same machine; this checks it still fails closed.
        Route {
            security: Security::Clear,
            password: Password::File(exim::PASSWORD),
        },
    ];
    for route in &attempts {
        let run = send_test(&exim, route);
        assert_eq!(
            i32::from(tidings::cli::EXIT_ERROR),
            run.code,
            "tls = {}: {run}",
            route.security.tls()
        );
        assert!(
            run.stderr
                .contains("error: authentication or TLS failure: "),
            "tls = {}: {run}",
            route.security.tls()
        );
        assert!(
            !run.stderr.contains(wrong) && !run.stderr.contains(exim::PASSWORD),
            "the error names no password: {run}"
        );
        if route.security == Security::Clear {
            // lettre's words for "the server offered no AUTH we can use".
            assert!(
                run.stderr
                    .contains("No compatible authentication mechanism"),
                "{run}"
            );
        } else {
            assert!(
                run.stderr.contains("(535): Incorrect authentication data"),
                "the server's refusal is shown: {run}"
            );
        }
    }
    let log = exim.log();
    assert_eq!(
        log.matches("authenticator failed").count(),
        2,
        "exim saw both wrong passwords:\n{log}"
    );
    assert!(exim.messages().is_empty(), "nothing was delivered");
    assert!(!log.contains(" <= "), "nothing was accepted:\n{log}");
}
