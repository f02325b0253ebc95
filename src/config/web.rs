//! `[web]`: the optional HTTP endpoint: where it listens, the public base URL
//! used in every emailed link, the signing key's file, rate limits.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::mail::MailSettings;
use super::mail::is_loopback_host;
use super::raw::RawWeb;
use super::{ConfigError, SourceFile};

/// The HTTP server's settings, from `[web]` with `enabled = true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSettings {
    /// Where to listen. Loopback by default: the server is meant to sit
    /// behind a reverse proxy that terminates TLS.
    pub listen: std::net::SocketAddr,
    /// The public address of the server, used for every link in emails and
    /// pages. https, or http only for a loopback host.
    pub base_url: url::Url,
    /// The file holding the secret that signs links and form tokens.
    pub secret_file: PathBuf,
    /// Whether the client address is taken from `X-Forwarded-For` (set by
    /// the reverse proxy) rather than the connection. Only safe when every
    /// request comes through that proxy.
    pub trust_forwarded: bool,
    /// Subscribe requests allowed per client address per hour.
    pub subscribe_per_ip: u32,
    /// Subscribe requests allowed per email address per hour, which also
    /// bounds the confirmation mails anyone can make tidings send to one
    /// person.
    pub subscribe_per_address: u32,
    /// Who runs this service and how to reach them, from `[web.operator]`:
    /// shown on `/subscribe` and at the foot of every briefing.
    pub operator: Option<Operator>,
    /// Where the privacy notice is: a page of the operator's own, or the
    /// text `[web] privacy_text` served at `/privacy`.
    pub privacy: Option<Privacy>,
}

/// The controller of the subscribers' personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The organisation's (or person's) name.
    pub name: String,
    /// An address (email or URL) for questions about the service and the
    /// data it holds.
    pub contact: Option<String>,
}

/// The privacy notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privacy {
    /// The operator's own page.
    Url(url::Url),
    /// Text served at `/privacy`; blank lines separate paragraphs.
    Text(String),
}

impl WebSettings {
    /// The privacy notice's address: the operator's page, or `/privacy`.
    pub fn privacy_href(&self) -> Option<String> {
        match self.privacy.as_ref()? {
            Privacy::Url(url) => Some(url.to_string()),
            Privacy::Text(_) => Some(self.url("/privacy")),
        }
    }
}

/// Where the server listens when `[web] listen` is not given.
pub const DEFAULT_WEB_LISTEN: std::net::SocketAddr = std::net::SocketAddr::V4(
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 8080),
);

impl WebSettings {
    /// Settings for a server at `base_url`, with the defaults for the rest.
    pub fn new(base_url: url::Url, secret_file: PathBuf) -> Self {
        Self {
            listen: DEFAULT_WEB_LISTEN,
            base_url,
            secret_file,
            trust_forwarded: false,
            subscribe_per_ip: 20,
            subscribe_per_address: 3,
            operator: None,
            privacy: None,
        }
    }

    /// The absolute URL of one of the server's paths (`/changes/x~2`),
    /// under the base URL, which may have a path of its own.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.as_str().trim_end_matches('/'))
    }

    /// The base URL's path without its trailing slash (empty at the root):
    /// the prefix of the server's own links, when a proxy serves it under a
    /// sub-path.
    pub fn base_path(&self) -> &str {
        self.base_url.path().trim_end_matches('/')
    }
}

/// Validates `[web]`. Fields are checked even when the server is disabled,
/// so a typo is found before someone turns it on; `None` unless enabled.
pub(super) fn validate_web(
    file: &SourceFile,
    base: &Path,
    raw: &RawWeb,
    errors: &mut Vec<ConfigError>,
) -> Option<WebSettings> {
    let mut error = |span: Option<Range<usize>>, field: &str, message: String| {
        errors.push(file.error(span.as_ref(), format!("web.{field}"), message));
    };
    let enabled = raw.enabled.as_ref().is_some_and(|e| *e.get_ref());
    let enabled_span = raw.enabled.as_ref().map(Spanned::span);
    let mut ok = true;

    let mut listen = DEFAULT_WEB_LISTEN;
    if let Some(value) = &raw.listen {
        match value.get_ref().trim().parse::<std::net::SocketAddr>() {
            Ok(address) => listen = address,
            Err(_) => {
                error(
                    Some(value.span()),
                    "listen",
                    format!(
                        "`{}` is not an address and port; write e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"",
                        value.get_ref()
                    ),
                );
                ok = false;
            }
        }
    }

    let base_url = match &raw.base_url {
        Some(value) => {
            let text = value.get_ref().trim();
            match url::Url::parse(text) {
                Ok(url) if url.query().is_some() || url.fragment().is_some() => {
                    error(
                        Some(value.span()),
                        "base_url",
                        format!("`{text}` must not have a query or fragment"),
                    );
                    None
                }
                Ok(url)
                    if url.scheme() == "https"
                        || (url.scheme() == "http"
                            && url.host_str().is_some_and(is_loopback_host)) =>
                {
                    Some(url)
                }
                Ok(_) => {
                    error(
                        Some(value.span()),
                        "base_url",
                        format!(
                            "`{text}` must be an https URL (http is allowed only for localhost): \
                             links in emails carry unsubscribe and confirmation tokens"
                        ),
                    );
                    None
                }
                Err(e) => {
                    error(
                        Some(value.span()),
                        "base_url",
                        format!(
                            "`{text}` is not a URL ({e}); write e.g. \"https://briefings.example.org\""
                        ),
                    );
                    None
                }
            }
        }
        None => {
            if enabled {
                error(
                    enabled_span.clone(),
                    "base_url",
                    "is required with enabled = true: the public address emails link to, \
                     e.g. \"https://briefings.example.org\""
                        .to_owned(),
                );
            }
            None
        }
    };

    let secret_file = match &raw.secret_file {
        Some(value) if !value.get_ref().trim().is_empty() => {
            Some(base.join(value.get_ref().trim()))
        }
        Some(value) => {
            error(
                Some(value.span()),
                "secret_file",
                "must name a file holding at least 32 random bytes".to_owned(),
            );
            None
        }
        None => {
            if enabled {
                error(
                    enabled_span.clone(),
                    "secret_file",
                    "is required with enabled = true: a file of at least 32 random bytes that \
                     signs links (make one with `head -c 32 /dev/urandom > web.secret`)"
                        .to_owned(),
                );
            }
            None
        }
    };

    let mut per_hour = |value: &Option<Spanned<i64>>, field: &str, default: u32| -> u32 {
        match value {
            Some(value) => match u32::try_from(*value.get_ref()) {
                Ok(n) if (1..=100_000).contains(&n) => n,
                _ => {
                    error(
                        Some(value.span()),
                        field,
                        "must be a whole number of requests per hour, from 1 to 100000".to_owned(),
                    );
                    ok = false;
                    default
                }
            },
            None => default,
        }
    };
    let subscribe_per_ip = per_hour(&raw.subscribe_per_ip, "subscribe_per_ip", 20);
    let subscribe_per_address = per_hour(&raw.subscribe_per_address, "subscribe_per_address", 3);

    // A name and contact are one line each: they go into mail footers.
    let mut line = |value: Option<&Spanned<String>>, field: &str| -> Result<Option<String>, ()> {
        let Some(value) = value else { return Ok(None) };
        let text = value.get_ref().trim();
        if text.is_empty() || text.contains(['\r', '\n']) {
            error(
                Some(value.span()),
                field,
                "must be one line of text".to_owned(),
            );
            Err(())
        } else {
            Ok(Some(text.to_owned()))
        }
    };
    let operator = match &raw.operator {
        None => None,
        Some(raw) => match (
            line(raw.name.as_ref(), "operator.name"),
            line(raw.contact.as_ref(), "operator.contact"),
        ) {
            (Ok(Some(name)), Ok(contact)) => Some(Operator { name, contact }),
            _ => {
                ok = false;
                None
            }
        },
    };
    if let Some(raw) = raw.operator.as_ref().filter(|o| o.name.is_none()) {
        error(
            raw.contact
                .as_ref()
                .map(Spanned::span)
                .or(enabled_span.clone()),
            "operator.name",
            "is required in [web.operator]: who runs this service, e.g. \"Cumbria Healthwatch\""
                .to_owned(),
        );
    }
    let privacy = match (&raw.privacy_url, &raw.privacy_text) {
        (Some(url), Some(_)) => {
            error(
                Some(url.span()),
                "privacy_url",
                "give privacy_url or privacy_text, not both".to_owned(),
            );
            ok = false;
            None
        }
        (Some(value), None) => match url::Url::parse(value.get_ref().trim()) {
            Ok(url) if matches!(url.scheme(), "https" | "http") => Some(Privacy::Url(url)),
            _ => {
                error(
                    Some(value.span()),
                    "privacy_url",
                    format!(
                        "`{}` is not a web address; write e.g. \"https://example.org/privacy\"",
                        value.get_ref()
                    ),
                );
                ok = false;
                None
            }
        },
        (None, Some(text)) if !text.get_ref().trim().is_empty() => {
            Some(Privacy::Text(text.get_ref().trim().to_owned()))
        }
        (None, Some(text)) => {
            error(
                Some(text.span()),
                "privacy_text",
                "is empty; write the privacy notice, or give privacy_url".to_owned(),
            );
            ok = false;
            None
        }
        (None, None) => None,
    };

    match (enabled && ok, base_url, secret_file) {
        (true, Some(base_url), Some(secret_file)) => Some(WebSettings {
            listen,
            base_url,
            secret_file,
            trust_forwarded: raw.trust_forwarded.unwrap_or(false),
            subscribe_per_ip,
            subscribe_per_address,
            operator,
            privacy,
        }),
        _ => None,
    }
}

/// With the web server on and no `[mail] unsubscribe_url` of its own,
/// briefings link to the server's unsubscribe page. An http base URL (only
/// allowed on localhost) gets the link too, in the footer and the
/// `List-Unsubscribe` header, but no RFC 8058 one-click, which needs https.
pub(super) fn derive_unsubscribe_url(mail: &mut MailSettings, web: &WebSettings) {
    if mail.unsubscribe_url.is_none() {
        mail.unsubscribe_url = url::Url::parse(&web.url("/unsubscribe/{token}")).ok();
    }
}

#[cfg(test)]
mod web_tests {
    use super::*;
    use crate::config::load_text;

    #[test]
    fn no_web_section_or_disabled_means_no_server() {
        assert!(load_text("").expect("valid").web.is_none());
        let config = load_text("[web]\nenabled = false\nlisten = \"0.0.0.0:80\"\n").expect("valid");
        assert!(config.web.is_none());
    }

    #[test]
    fn an_enabled_server_is_read_and_links_unsubscribes_to_it() {
        let config = load_text(
            "[web]\nenabled = true\nbase_url = \"https://example.org/tidings/\"\nsecret_file = \"web.secret\"\ntrust_forwarded = true\nsubscribe_per_address = 5\n",
        )
        .expect("valid");
        let web = config.web.expect("enabled");
        assert_eq!(web.listen, DEFAULT_WEB_LISTEN);
        assert!(web.trust_forwarded);
        assert_eq!((web.subscribe_per_ip, web.subscribe_per_address), (20, 5));
        assert!(web.secret_file.ends_with("web.secret"));
        assert_eq!(
            web.url("/changes/a~2"),
            "https://example.org/tidings/changes/a~2"
        );
        assert_eq!(web.base_path(), "/tidings");
        let unsubscribe = config.mail.unsubscribe_url.expect("derived").to_string();
        assert_eq!(
            unsubscribe.replace("%7Btoken%7D", "{token}"),
            "https://example.org/tidings/unsubscribe/{token}"
        );
    }

    #[test]
    fn operator_and_privacy_are_read_and_their_absence_warned_about() {
        let config = load_text(
            "[web]\nenabled = true\nbase_url = \"https://example.org\"\nsecret_file = \"s\"\nprivacy_url = \"https://example.org/privacy\"\n[web.operator]\nname = \"Cumbria Healthwatch\"\ncontact = \"data@example.org\"\n",
        )
        .expect("valid");
        let web = config.web.as_ref().expect("on");
        assert_eq!(
            web.operator,
            Some(Operator {
                name: "Cumbria Healthwatch".to_owned(),
                contact: Some("data@example.org".to_owned())
            })
        );
        assert_eq!(
            web.privacy_href().as_deref(),
            Some("https://example.org/privacy")
        );
        assert!(!config.warnings().iter().any(|w| w.contains("[web]")));

        let config = load_text(
            "[web]\nenabled = true\nbase_url = \"https://example.org/t\"\nsecret_file = \"s\"\nprivacy_text = \"We keep your address.\"\n",
        )
        .expect("valid");
        let web = config.web.as_ref().expect("on");
        assert_eq!(
            web.privacy_href().as_deref(),
            Some("https://example.org/t/privacy")
        );
        let warnings = config.warnings().join("\n");
        assert!(warnings.contains("without [web.operator]"), "{warnings}");
        assert!(!warnings.contains("privacy_url"), "{warnings}");

        let errors = load_text(
            "[web]\nenabled = true\nbase_url = \"https://example.org\"\nsecret_file = \"s\"\nprivacy_url = \"nope\"\n[web.operator]\ncontact = \"x@example.org\"\n",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        assert!(text.contains(":5: web.privacy_url"), "{text}");
        assert!(text.contains("web.operator.name: is required"), "{text}");
    }

    #[test]
    fn an_own_unsubscribe_url_is_kept() {
        let config = load_text(
            "[mail]\nunsubscribe_url = \"https://lists.example.org/u/{token}\"\n[web]\nenabled = true\nbase_url = \"https://example.org\"\nsecret_file = \"s\"\n",
        )
        .expect("valid");
        assert!(
            config
                .mail
                .unsubscribe_url
                .expect("kept")
                .as_str()
                .starts_with("https://lists.example.org/")
        );
    }

    #[test]
    fn web_errors_name_line_and_field() {
        let errors = load_text("[web]\nenabled = true\n").expect_err("incomplete");
        let text = errors.to_string();
        assert!(text.contains(":2: web.base_url: is required"), "{text}");
        assert!(text.contains(":2: web.secret_file: is required"), "{text}");
        let errors = load_text(
            "[web]\nenabled = true\nlisten = \"localhost\"\nbase_url = \"http://example.org\"\nsecret_file = \"s\"\nsubscribe_per_ip = 0\n",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        assert!(text.contains(":3: web.listen"), "{text}");
        assert!(
            text.contains(":4: web.base_url: `http://example.org` must be an https URL"),
            "{text}"
        );
        assert!(text.contains(":6: web.subscribe_per_ip"), "{text}");
        let config = load_text(
            "[web]\nenabled = true\nbase_url = \"http://127.0.0.1:8080\"\nsecret_file = \"s\"\n",
        )
        .expect("http on loopback is allowed");
        let unsubscribe = config.mail.unsubscribe_url.expect("derived over http too");
        assert!(
            unsubscribe
                .as_str()
                .starts_with("http://127.0.0.1:8080/unsubscribe/"),
            "{unsubscribe}"
        );
        let errors = load_text("[web]\nenabeld = true\n").expect_err("typo");
        assert!(errors.to_string().contains("enabeld"), "{errors}");
    }
}
