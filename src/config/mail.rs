//! `[mail]`: how briefings are sent: the sender, list headers, the `.eml`
//! file transport or SMTP (TLS mode, credentials, pool), pacing and retries.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::raw::RawMail;
use super::{ConfigError, DAY, HOUR, MINUTE, MS, SECOND, SourceFile, bounded_duration};

/// How briefings leave tidings, from `[mail]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// The sender's address (also the domain of every Message-ID).
    pub from_address: String,
    /// The sender's display name, if any.
    pub from_name: Option<String>,
    /// The List-Id, a dot-atom such as `briefings.example.org`.
    pub list_id: String,
    /// The one-click unsubscribe endpoint (https), if the web endpoint is
    /// set up; `{token}` in it is replaced by the subscriber's token.
    pub unsubscribe_url: Option<url::Url>,
    /// Where mail goes.
    pub transport: MailTransport,
    /// The most one send may take, connection included.
    pub timeout: Duration,
    /// The directory of template overrides (it need not exist).
    pub templates: PathBuf,
    /// The most briefings sent per second, so a change with thousands of
    /// subscribers does not trip a relay's limits.
    pub max_per_second: u32,
    /// The wait before the first retry of a temporary failure; it doubles
    /// with each further failure (with jitter), up to `retry_max`.
    pub retry_base: Duration,
    /// The longest wait between retries.
    pub retry_max: Duration,
    /// How long a briefing is retried before it is marked failed (it can
    /// still be retried by hand with `tidings outbox retry`).
    pub give_up_after: Duration,
    /// How long sent, failed and cancelled briefings stay listed.
    pub keep_finished: Duration,
    /// Whether someone reads replies to briefings and acts on "stop": only
    /// then does the footer invite people to reply to unsubscribe.
    pub replies_handled: bool,
}

/// Where mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// `.eml` files in a directory: the default when no SMTP server is
    /// configured. `None` means `STATE/mail`.
    File {
        /// The directory.
        dir: Option<PathBuf>,
    },
    /// An SMTP server.
    Smtp(SmtpSettings),
}

/// An SMTP server and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// The server's host name (checked against its certificate).
    pub host: String,
    /// The port: by default 587 for STARTTLS, 465 for implicit TLS, 25 for
    /// none.
    pub port: u16,
    /// How the connection is protected.
    pub tls: SmtpTls,
    /// The AUTH user, if the server needs one.
    pub username: Option<String>,
    /// Where the AUTH password is read from. Never the config itself or the
    /// command line, which other users can read in `ps`.
    pub password: Option<PasswordSource>,
    /// Most connections kept open to the server.
    pub pool_size: u32,
    /// An extra CA certificate (PEM) to trust, for a private relay.
    pub ca_file: Option<PathBuf>,
}

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required: no mail is sent in clear.
    Starttls,
    /// STARTTLS if the server offers it, else clear text.
    StarttlsOptional,
    /// TLS from the first byte (port 465).
    Implicit,
    /// Clear text: only for a relay on this machine.
    None,
}

/// Where an SMTP password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// A file holding the password (trailing newline ignored).
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

/// The sender used when `[mail]` gives none.
pub const DEFAULT_FROM: &str = "tidings@localhost";

impl Default for MailSettings {
    fn default() -> Self {
        Self::defaults_for(Path::new("config"))
    }
}

impl MailSettings {
    /// The settings with no `[mail]` section: `.eml` files in `STATE/mail`,
    /// templates from `templates/` beside the config file.
    pub fn defaults_for(config_dir: &Path) -> Self {
        Self {
            from_address: DEFAULT_FROM.to_owned(),
            from_name: Some("tidings".to_owned()),
            list_id: "briefings.tidings.localhost".to_owned(),
            unsubscribe_url: None,
            transport: MailTransport::File { dir: None },
            timeout: Duration::from_secs(60),
            templates: config_dir.join("templates"),
            max_per_second: 200,
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(3 * 24 * 3600),
            keep_finished: Duration::from_secs(14 * 24 * 3600),
            replies_handled: false,
        }
    }

    /// The domain of the sender's address: Message-IDs are made on it.
    pub fn domain(&self) -> &str {
        self.from_address
            .rsplit_once('@')
            .map_or("localhost", |(_, domain)| domain)
    }
}

/// Splits `Name <address>` or a bare address.
pub(super) fn parse_mailbox(text: &str) -> Result<(Option<String>, String), String> {
    let text = text.trim();
    let (name, address) = match (text.find('<'), text.strip_suffix('>')) {
        (Some(open), Some(inner)) => {
            let name = text[..open].trim().trim_matches('"').trim();
            (
                (!name.is_empty()).then(|| name.to_owned()),
                inner[open + 1..].trim(),
            )
        }
        _ => (None, text),
    };
    if name
        .as_deref()
        .is_some_and(|n| n.chars().any(char::is_control))
    {
        return Err("the name has control characters".to_owned());
    }
    let options = email_address::Options::default()
        .without_display_text()
        .without_domain_literal();
    email_address::EmailAddress::parse_with_options(address, options)
        .map_err(|e| format!("`{address}` is not an email address: {e}"))?;
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    Ok((name, format!("{local}@{}", domain.to_ascii_lowercase())))
}

pub(super) fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn validate_mail(
    file: &SourceFile,
    base: &Path,
    raw: &RawMail,
    errors: &mut Vec<ConfigError>,
) -> MailSettings {
    let mut mail = MailSettings::defaults_for(base);
    let mut error = |span: Option<Range<usize>>, field: &str, message: String| {
        errors.push(file.error(span.as_ref(), format!("mail.{field}"), message));
    };
    let mut from_given = false;
    if let Some(from) = &raw.from {
        match parse_mailbox(from.get_ref()) {
            Ok((name, address)) => {
                mail.from_name = name;
                mail.from_address = address;
                from_given = true;
            }
            Err(e) => error(
                Some(from.span()),
                "from",
                format!("{e}; write e.g. \"Briefings <briefings@example.org>\""),
            ),
        }
    }
    mail.list_id = format!("briefings.{}", mail.domain());
    if let Some(list_id) = &raw.list_id {
        let value = list_id
            .get_ref()
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        let atom = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if value.contains('.')
            && value.chars().all(atom)
            && !value.starts_with('.')
            && !value.ends_with('.')
        {
            mail.list_id = value.to_owned();
        } else {
            error(
                Some(list_id.span()),
                "list_id",
                format!("`{value}` is not a list id; write e.g. \"briefings.example.org\""),
            );
        }
    }
    if let Some(value) = &raw.unsubscribe_url {
        match url::Url::parse(value.get_ref().trim()) {
            Ok(url) if url.scheme() == "https" => mail.unsubscribe_url = Some(url),
            _ => error(
                Some(value.span()),
                "unsubscribe_url",
                "must be an https URL (one-click unsubscribe requires https)".to_owned(),
            ),
        }
    }
    for (field, value, (min, max), target) in [
        ("timeout", &raw.timeout, (MS * 100, HOUR), &mut mail.timeout),
        (
            "retry_base",
            &raw.retry_base,
            (MS * 10, DAY),
            &mut mail.retry_base,
        ),
        (
            "retry_max",
            &raw.retry_max,
            (MS * 10, DAY * 30),
            &mut mail.retry_max,
        ),
        (
            "give_up_after",
            &raw.give_up_after,
            (SECOND, DAY * 365),
            &mut mail.give_up_after,
        ),
        (
            "keep_finished",
            &raw.keep_finished,
            (MINUTE, DAY * 3650),
            &mut mail.keep_finished,
        ),
    ] {
        let Some(value) = value else { continue };
        match bounded_duration(value.get_ref(), min, max) {
            Ok(d) => *target = d,
            Err(message) => error(Some(value.span()), field, message),
        }
    }
    if let Some(handled) = raw.replies_handled {
        mail.replies_handled = handled;
    }
    if let Some(value) = &raw.max_per_second {
        match u32::try_from(*value.get_ref()) {
            Ok(n) if n > 0 => mail.max_per_second = n,
            _ => error(
                Some(value.span()),
                "max_per_second",
                "must be a whole number of briefings per second, at least 1".to_owned(),
            ),
        }
    }
    if let Some(value) = &raw.templates {
        mail.templates = base.join(value.get_ref());
    }

    let smtp_only: [(&str, Option<Range<usize>>); 8] = [
        ("host", raw.host.as_ref().map(Spanned::span)),
        ("port", raw.port.as_ref().map(Spanned::span)),
        ("tls", raw.tls.as_ref().map(Spanned::span)),
        ("username", raw.username.as_ref().map(Spanned::span)),
        (
            "password_file",
            raw.password_file.as_ref().map(Spanned::span),
        ),
        ("password_env", raw.password_env.as_ref().map(Spanned::span)),
        ("pool_size", raw.pool_size.as_ref().map(Spanned::span)),
        ("ca_file", raw.ca_file.as_ref().map(Spanned::span)),
    ];
    let transport = raw
        .transport
        .as_ref()
        .map(|t| (t.get_ref().as_str(), t.span()));
    match transport {
        None | Some(("file", _)) => {
            for (field, span) in smtp_only.iter().filter(|(_, span)| span.is_some()) {
                error(
                    span.clone(),
                    field,
                    "applies only to transport = \"smtp\"".to_owned(),
                );
            }
            mail.transport = MailTransport::File {
                dir: raw.dir.as_ref().map(|dir| base.join(dir.get_ref())),
            };
        }
        Some(("smtp", span)) => {
            if let Some(dir) = &raw.dir {
                error(
                    Some(dir.span()),
                    "dir",
                    "applies only to transport = \"file\"".to_owned(),
                );
            }
            let host = match &raw.host {
                Some(host) if !host.get_ref().trim().is_empty() => host.get_ref().trim().to_owned(),
                _ => {
                    error(
                        Some(span),
                        "host",
                        "transport = \"smtp\" needs host = \"smtp.example.org\"".to_owned(),
                    );
                    String::new()
                }
            };
            let tls = match raw.tls.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
                None | Some(("starttls", _)) => SmtpTls::Starttls,
                Some(("starttls-optional", _)) => SmtpTls::StarttlsOptional,
                Some(("implicit", _)) => SmtpTls::Implicit,
                Some(("none", _)) => SmtpTls::None,
                Some((other, span)) => {
                    error(
                        Some(span),
                        "tls",
                        format!(
                            "`{other}` is not one of \"starttls\", \"starttls-optional\", \"implicit\", \"none\""
                        ),
                    );
                    SmtpTls::Starttls
                }
            };
            let mut port = match tls {
                SmtpTls::Starttls | SmtpTls::StarttlsOptional => 587,
                SmtpTls::Implicit => 465,
                SmtpTls::None => 25,
            };
            if let Some(value) = &raw.port {
                match u16::try_from(*value.get_ref()) {
                    Ok(p) if p > 0 => port = p,
                    _ => error(
                        Some(value.span()),
                        "port",
                        "must be a port number from 1 to 65535".to_owned(),
                    ),
                }
            }
            let username = raw.username.as_ref().map(|u| u.get_ref().clone());
            let password = match (&raw.password_file, &raw.password_env) {
                (Some(file), None) => Some(PasswordSource::File(base.join(file.get_ref()))),
                (None, Some(env)) => Some(PasswordSource::Env(env.get_ref().clone())),
                (None, None) => None,
                (Some(_), Some(env)) => {
                    error(
                        Some(env.span()),
                        "password_env",
                        "give password_file or password_env, not both".to_owned(),
                    );
                    None
                }
            };
            if username.is_some() != password.is_some() {
                let span = raw.username.as_ref().map(Spanned::span).or_else(|| {
                    raw.password_file
                        .as_ref()
                        .or(raw.password_env.as_ref())
                        .map(Spanned::span)
                });
                error(
                    span,
                    "username",
                    "username needs password_file or password_env, and they need username"
                        .to_owned(),
                );
            }
            if tls == SmtpTls::None
                && username.is_some()
                && !host.is_empty()
                && !is_loopback_host(&host)
            {
                error(raw.tls.as_ref().map(Spanned::span), "tls", "tls = \"none\" would send the password in clear; it is allowed only for a server on this machine".to_owned());
            }
            let mut pool_size = 4;
            if let Some(value) = &raw.pool_size {
                match u32::try_from(*value.get_ref()) {
                    Ok(n) if (1..=64).contains(&n) => pool_size = n,
                    _ => error(
                        Some(value.span()),
                        "pool_size",
                        "must be a whole number from 1 to 64".to_owned(),
                    ),
                }
            }
            mail.transport = MailTransport::Smtp(SmtpSettings {
                host,
                port,
                tls,
                username,
                password,
                pool_size,
                ca_file: raw.ca_file.as_ref().map(|f| base.join(f.get_ref())),
            });
        }
        Some((other, span)) => error(
            Some(span),
            "transport",
            format!("`{other}` is not \"file\" or \"smtp\""),
        ),
    }
    if !from_given && matches!(mail.transport, MailTransport::Smtp(_)) {
        error(
            None,
            "from",
            "transport = \"smtp\" needs from = \"Briefings <briefings@example.org>\"".to_owned(),
        );
    }
    mail
}

#[cfg(test)]
mod mail_tests {
    use super::*;
    use crate::config::load_text;

    #[test]
    fn no_mail_section_means_eml_files() {
        let config = load_text("").expect("valid");
        assert_eq!(config.mail.transport, MailTransport::File { dir: None });
        assert_eq!(config.mail.from_address, DEFAULT_FROM);
    }

    #[test]
    fn an_smtp_section_is_read() {
        let config = load_text(
            "[mail]\nfrom = \"Briefings <Briefings@Example.ORG>\"\ntransport = \"smtp\"\nhost = \"smtp.example.org\"\n\
             tls = \"implicit\"\nusername = \"tidings\"\npassword_env = \"SMTP_PASSWORD\"\n\
             unsubscribe_url = \"https://example.org/u/{token}\"\n",
        )
        .expect("valid");
        let mail = &config.mail;
        assert_eq!(mail.from_address, "Briefings@example.org");
        assert_eq!(mail.from_name.as_deref(), Some("Briefings"));
        assert_eq!(mail.list_id, "briefings.example.org");
        let MailTransport::Smtp(smtp) = &mail.transport else {
            panic!("smtp expected")
        };
        assert_eq!((smtp.port, smtp.tls), (465, SmtpTls::Implicit));
        assert_eq!(
            smtp.password,
            Some(PasswordSource::Env("SMTP_PASSWORD".to_owned()))
        );
    }

    #[test]
    fn mail_errors_name_line_and_field() {
        let errors = load_text(
            "[mail]\nfrom = \"not an address\"\ntransport = \"smtp\"\nhost = \"mail.example.org\"\n\
             tls = \"none\"\nusername = \"u\"\npassword_file = \"pw\"\nunsubscribe_url = \"http://x.org\"\n",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        assert!(text.contains(":2: mail.from"), "{text}");
        assert!(text.contains(":5: mail.tls"), "{text}");
        assert!(text.contains(":8: mail.unsubscribe_url"), "{text}");
        let errors = load_text("[mail]\nhost = \"x\"\npasword = 1\n").expect_err("unknown field");
        assert!(errors.to_string().contains("pasword"), "{errors}");
    }
    #[test]
    fn delivery_pacing_and_retries_are_read_and_checked() {
        let config = load_text(
            "[mail]\nmax_per_second = 20\nretry_base = \"30s\"\nretry_max = \"2h\"\n\
             give_up_after = \"1day\"\nkeep_finished = \"7days\"\n",
        )
        .expect("valid");
        assert_eq!(config.mail.max_per_second, 20);
        assert_eq!(config.mail.retry_base, Duration::from_secs(30));
        assert_eq!(config.mail.retry_max, Duration::from_secs(7200));
        assert_eq!(config.mail.give_up_after, Duration::from_secs(86_400));
        assert_eq!(config.mail.keep_finished, Duration::from_secs(7 * 86_400));
        let errors =
            load_text("[mail]\nmax_per_second = 0\nretry_base = \"soon\"\n").expect_err("invalid");
        let text = errors.to_string();
        assert!(text.contains(":2: mail.max_per_second"), "{text}");
        assert!(text.contains(":3: mail.retry_base"), "{text}");
    }
}
