//! Sending briefings: the only module that knows lettre.
//!
//! [`build_message`] wraps a [`Briefing`] in the headers a well-behaved
//! automated sender uses: a Message-ID on our own domain derived from the
//! delivery key (so a re-sent delivery keeps its id and receivers can
//! de-duplicate it), In-Reply-To/References for threading, List-Id,
//! List-Unsubscribe (one-click https when configured, with a mailto
//! fallback), and the headers that keep out-of-office replies away.
//!
//! [`Mailer`] sends a message through the configured transport: `.eml` files
//! in a directory (the default with no SMTP server), or SMTP with STARTTLS,
//! implicit TLS, or clear text for a relay on this machine. Every send runs
//! under one overall timeout (lettre's own covers only each socket
//! operation), and every failure is classified by [`MailError`] so that the
//! outbox knows whether to retry, give up on a recipient, or stop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use secrecy::SecretString;

use crate::core::brief::Briefing;

mod smtp;
use crate::config::{MailSettings, MailTransport, PasswordSource, SmtpTls};

/// A send that failed, classified by what the sender should do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Try again later: a 4xx reply, a refused or dropped connection, a
    /// timeout, a full disk.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Do not retry this recipient: a 5xx reply.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// Stop sending and tell the admin: the server refused our credentials
    /// (535) or TLS could not be set up (a bad certificate, no STARTTLS).
    /// Every retry would fail the same way until the config is fixed.
    #[error("authentication or TLS failure: {0}")]
    Auth(String),
    /// The settings or the message are wrong (an unreadable password file,
    /// an address lettre refuses); nothing was sent.
    #[error("cannot send: {0}")]
    Setup(String),
}

/// One email to build.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The recipient's address.
    pub to: &'a str,
    /// The recipient's name; may be empty.
    pub to_name: &'a str,
    /// What to say.
    pub briefing: &'a Briefing,
    /// What makes this delivery unique, e.g. `change:WATCH:N:ADDRESS`. The
    /// same key always gives the same Message-ID.
    pub delivery_key: &'a str,
    /// Mails with the same thread key (e.g. `ADDRESS:WATCH`) thread
    /// together in the recipient's client.
    pub thread_key: Option<&'a str>,
    /// Replaces `{token}` in the configured unsubscribe URL.
    pub unsubscribe_token: Option<&'a str>,
}

/// The Message-ID for a delivery key, on `domain`: `<HASH@domain>`, with
/// the hash the first 128 bits of the key's BLAKE3 in hex. Stable across
/// restarts, so a briefing re-sent after a crash has the same id.
pub fn message_id(delivery_key: &str, domain: &str) -> String {
    let hash = blake3::hash(delivery_key.as_bytes()).to_hex();
    format!("<{}.briefing@{domain}>", &hash[..32])
}

/// The id every mail of a thread refers to. It is never itself sent: mail
/// clients (Thunderbird, Apple Mail, Gmail with a matching subject) thread
/// on a shared References root, so no message has to be "first".
pub fn thread_id(thread_key: &str, domain: &str) -> String {
    let hash = blake3::hash(thread_key.as_bytes()).to_hex();
    format!("<{}.thread@{domain}>", &hash[..32])
}

/// Builds the message: multipart/alternative with the text part first and
/// the HTML part last (clients show the last part they can render).
pub fn build_message(settings: &MailSettings, mail: &Outgoing<'_>) -> Result<Message, MailError> {
    let from = Mailbox::new(
        settings.from_name.clone(),
        settings.from_address.parse().map_err(|e| {
            MailError::Setup(format!("from address {}: {e}", settings.from_address))
        })?,
    );
    let to_name = mail.to_name.trim();
    let to = Mailbox::new(
        (!to_name.is_empty()).then(|| to_name.replace(['\r', '\n'], " ")),
        mail.to
            .parse()
            .map_err(|e| MailError::Permanent(format!("recipient {}: {e}", mail.to)))?,
    );
    let domain = settings.domain();
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(crate::core::brief::sanitise_subject(&mail.briefing.subject))
        .message_id(Some(message_id(mail.delivery_key, domain)))
        .raw_header(header(
            "List-Id",
            format!("tidings briefings <{}>", settings.list_id),
        ))
        .raw_header(header("Auto-Submitted", "auto-generated".to_owned()))
        .raw_header(header(
            "X-Auto-Response-Suppress",
            "OOF, AutoReply".to_owned(),
        ));
    if let Some(thread_key) = mail.thread_key {
        let root = thread_id(thread_key, domain);
        builder = builder.in_reply_to(root.clone()).references(root);
    }
    let https = unsubscribe_link(settings, mail.unsubscribe_token);
    let mailto = format!("mailto:{}?subject=unsubscribe", settings.from_address);
    let unsubscribe = match &https {
        Some(url) => format!("<{url}>, <{mailto}>"),
        None => format!("<{mailto}>"),
    };
    builder = builder.raw_header(header("List-Unsubscribe", unsubscribe));
    if https
        .as_deref()
        .is_some_and(|url| url.starts_with("https:"))
    {
        // RFC 8058: one-click only with an https URI to POST to. An http
        // link (a server on localhost) is still listed, without one-click.
        builder = builder.raw_header(header(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_owned(),
        ));
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain(mail.briefing.text.clone()))
                .singlepart(SinglePart::html(mail.briefing.html.clone())),
        )
        .map_err(|e| MailError::Setup(format!("cannot build the message: {e}")))
}

/// The https unsubscribe link for a recipient's token, when the web
/// endpoint is configured: `{token}` in `[mail] unsubscribe_url` replaced.
pub fn unsubscribe_link(settings: &MailSettings, token: Option<&str>) -> Option<String> {
    settings.unsubscribe_url.as_ref().map(|url| {
        let token = token.unwrap_or("");
        url.as_str()
            .replace("{token}", token)
            .replace("%7Btoken%7D", token)
    })
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// Where a sent message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Written to this file.
    File(PathBuf),
    /// Accepted by the SMTP server.
    Smtp,
}

/// The configured transport, ready to send.
pub struct Mailer {
    transport: Transport,
    timeout: Duration,
    description: String,
}

enum Transport {
    File(PathBuf),
    Smtp(Box<smtp::SmtpClient>),
}

impl std::fmt::Debug for Mailer {
    // By hand: the SMTP transport holds the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.description)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Mailer {
    /// Sets up the transport in `settings`; `state_dir` holds the default
    /// `.eml` directory. Reads the SMTP password now, so a missing file or
    /// variable is found at start-up. Connects to nothing yet.
    pub fn new(settings: &MailSettings, state_dir: &Path) -> Result<Self, MailError> {
        let (transport, description) = match &settings.transport {
            MailTransport::File { dir } => {
                let dir = dir.clone().unwrap_or_else(|| state_dir.join("mail"));
                let description = format!("files in {}", dir.display());
                (Transport::File(dir), description)
            }
            MailTransport::Smtp(smtp) => {
                let description = format!(
                    "smtp://{}:{} ({})",
                    smtp.host,
                    smtp.port,
                    match smtp.tls {
                        SmtpTls::Starttls => "STARTTLS",
                        SmtpTls::StarttlsOptional => "STARTTLS if offered",
                        SmtpTls::Implicit => "TLS",
                        SmtpTls::None => "no TLS",
                    }
                );
                (
                    Transport::Smtp(Box::new(smtp::SmtpClient::new(smtp, settings.timeout)?)),
                    description,
                )
            }
        };
        Ok(Self {
            transport,
            timeout: settings.timeout,
            description,
        })
    }

    /// Where mail goes, for messages to the admin (no secrets).
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Sends one message, within the configured timeout.
    pub async fn send(&self, message: &Message) -> Result<Sent, MailError> {
        let work = async {
            match &self.transport {
                Transport::File(dir) => write_eml(dir, message).await.map(Sent::File),
                Transport::Smtp(smtp) => smtp.send(message).await.map(|()| Sent::Smtp),
            }
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(MailError::Transient(format!(
                "no answer within {}",
                humantime::format_duration(self.timeout)
            ))),
        }
    }
}

/// Reads the SMTP password from its file or variable. The error names the
/// source, never the value.
pub fn read_password(source: &PasswordSource) -> Result<SecretString, MailError> {
    let value = match source {
        PasswordSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
            MailError::Setup(format!(
                "cannot read the SMTP password file {}: {e}",
                path.display()
            ))
        })?,
        PasswordSource::Env(name) => std::env::var(name).map_err(|_| {
            MailError::Setup(format!("the SMTP password variable {name} is not set"))
        })?,
    };
    let value = value.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        return Err(MailError::Setup("the SMTP password is empty".to_owned()));
    }
    Ok(SecretString::from(value.to_owned()))
}

/// Classifies an SMTP failure: what the server said if it said anything,
/// else what went wrong on the way.
fn classify(error: &lettre::transport::smtp::Error) -> MailError {
    let detail = error.to_string();
    if let Some(code) = error.status() {
        let code = code.to_string();
        return match code.as_str() {
            // 530 authentication required, 534 mechanism too weak, 535
            // credentials invalid, 538 encryption required for AUTH.
            "530" | "534" | "535" | "538" => MailError::Auth(detail),
            _ if code.starts_with('4') => MailError::Transient(detail),
            _ => MailError::Permanent(detail),
        };
    }
    if error.is_tls() {
        return MailError::Auth(detail);
    }
    if error.is_client() {
        // lettre's own refusals (no AUTH mechanism in common, no STARTTLS
        // offered when it is required) are configuration problems that
        // retrying cannot fix.
        return MailError::Auth(detail);
    }
    MailError::Transient(detail)
}

/// Writes a message as `DIR/HASH.eml`, named after its Message-ID so that
/// re-sending a delivery replaces its file instead of adding a second one.
/// The file is written beside its final name and renamed into place, so a
/// reader never sees half a message.
async fn write_eml(dir: &Path, message: &Message) -> Result<PathBuf, MailError> {
    let io =
        |path: &Path, e: std::io::Error| MailError::Transient(format!("{}: {e}", path.display()));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io(dir, e))?;
    let id = message
        .headers()
        .get_raw("Message-ID")
        .unwrap_or_default()
        .to_owned();
    let name = blake3::hash(id.as_bytes()).to_hex()[..32].to_owned();
    let path = dir.join(format!("{name}.eml"));
    let partial = dir.join(format!(".{name}.eml.partial"));
    tokio::fs::write(&partial, message.formatted())
        .await
        .map_err(|e| io(&partial, e))?;
    tokio::fs::rename(&partial, &path)
        .await
        .map_err(|e| io(&path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn briefing() -> Briefing {
        Briefing {
            subject: "[tidings] Lancashire: boundary change".to_owned(),
            text: "plain".to_owned(),
            html: "<p>html</p>".to_owned(),
        }
    }

    fn settings() -> MailSettings {
        MailSettings {
            from_address: "briefings@example.org".to_owned(),
            list_id: "briefings.example.org".to_owned(),
            ..MailSettings::default()
        }
    }

    fn outgoing<'a>(briefing: &'a Briefing, key: &'a str) -> Outgoing<'a> {
        Outgoing {
            to: "ada@example.org",
            to_name: "Ada\r\nBcc: evil@example.org",
            briefing,
            delivery_key: key,
            thread_key: Some("ada@example.org:lsc"),
            unsubscribe_token: Some("tok"),
        }
    }

    #[test]
    fn message_ids_are_stable_per_key() {
        assert_eq!(
            message_id("k", "example.org"),
            message_id("k", "example.org")
        );
        assert_ne!(
            message_id("k", "example.org"),
            message_id("k2", "example.org")
        );
        assert!(message_id("k", "example.org").ends_with("@example.org>"));
    }

    #[test]
    fn headers_are_set() {
        let briefing = briefing();
        let message = build_message(&settings(), &outgoing(&briefing, "key")).expect("builds");
        let text = String::from_utf8(message.formatted()).expect("utf-8");
        assert!(
            text.contains(&format!("Message-ID: {}", message_id("key", "example.org"))),
            "{text}"
        );
        assert!(text.contains("Auto-Submitted: auto-generated"));
        assert!(text.contains("X-Auto-Response-Suppress: OOF, AutoReply"));
        assert!(text.contains("List-Id: tidings briefings <briefings.example.org>"));
        assert!(
            text.contains("List-Unsubscribe: <mailto:briefings@example.org?subject=unsubscribe>")
        );
        assert!(
            !text.contains("List-Unsubscribe-Post"),
            "no one-click without https"
        );
        assert!(text.contains("In-Reply-To: <"));
        assert!(!text.contains("\r\nBcc:"), "{text}");
    }

    #[test]
    fn one_click_unsubscribe_with_an_https_url() {
        let mut settings = settings();
        settings.unsubscribe_url = Some("https://example.org/u/{token}".parse().unwrap());
        let briefing = briefing();
        let message = build_message(&settings, &outgoing(&briefing, "key")).expect("builds");
        // Unfold: lettre folds long header lines.
        let text = String::from_utf8(message.formatted())
            .expect("utf-8")
            .replace("\r\n ", " ");
        assert!(
            text.contains("List-Unsubscribe: <https://example.org/u/tok>, <mailto:briefings@example.org?subject=unsubscribe>"),
            "{text}"
        );
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    }

    #[test]
    fn passwords_come_from_files_and_variables() {
        use secrecy::ExposeSecret as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let secret = read_password(&PasswordSource::File(file)).expect("reads");
        assert_eq!(secret.expose_secret(), "s3cret");
        let err = read_password(&PasswordSource::Env(
            "TIDINGS_TEST_UNSET_PASSWORD".to_owned(),
        ))
        .expect_err("unset");
        assert!(matches!(err, MailError::Setup(_)));
    }
}
