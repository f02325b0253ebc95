//! HTTP fetching: the only module that knows reqwest.
//!
//! One shared client with timeouts, a body cap, decompression (gzip, brotli),
//! a redirect limit, an honest User-Agent, conditional GET and retries with
//! backoff. Anything that is not a usable HTML page is a [`FetchError`], never
//! content: a site outage must not read as "the page was emptied".
//!
//! Bodies are decoded to UTF-8 here, so the rest of the program only ever sees
//! text. The charset comes from, in order: a byte-order mark, the
//! `Content-Type` header, a `<meta>` declaration near the top of the page, and
//! finally UTF-8 — falling back to windows-1252 when an undeclared body is not
//! valid UTF-8, because that is what many older (often public-sector) sites
//! really serve. The BOM wins over the header as in the WHATWG encoding
//! standard that browsers follow: a BOM is never there by accident.

mod decode;
mod error;
mod gunzip;
mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use tracing::debug;
use url::Url;

pub use decode::decode_html;
use decode::*;
pub use error::FetchError;
use error::*;

/// What we ask servers for: HTML first, but we still take whatever they have
/// so that a wrong content type is reported by us, not hidden behind a 406.
const ACCEPT: &str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1";

/// The encodings we take: gzip, inflated here once the body has arrived
/// (`gunzip`), and brotli, which the client decodes as it streams.
const ACCEPT_ENCODING: &str = "gzip, br";

/// How the fetcher behaves. Built from the config's `[limits]`.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// The full User-Agent header, including a contact address.
    pub user_agent: String,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one whole request, body included.
    pub timeout: Duration,
    /// Bodies larger than this (after decompression) are refused.
    pub max_body_bytes: usize,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
    /// Extra attempts after a retryable failure (429, 5xx, connection error).
    pub retries: u32,
    /// First backoff delay; doubles each attempt, with jitter.
    pub retry_base: Duration,
    /// Longest Retry-After the fetcher will wait; longer is a failure.
    pub max_retry_after: Duration,
}

impl Default for FetchSettings {
    /// Conservative values for a polite monitor. The contact address is a
    /// placeholder: real runs should set one so site owners can reach us.
    fn default() -> Self {
        Self {
            user_agent: user_agent("not configured"),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body_bytes: 5 * 1024 * 1024,
            max_redirects: 5,
            retries: 2,
            retry_base: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// The User-Agent tidings sends: names the program, its version, what it is
/// for and who to contact, so a site owner who sees it in their logs can tell
/// what is polling them and ask us to stop.
pub fn user_agent(contact: &str) -> String {
    format!(
        "tidings/{} (+change monitor; contact: {contact})",
        env!("CARGO_PKG_VERSION")
    )
}

/// Validators remembered from the last good fetch, for conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` header.
    pub etag: Option<String>,
    /// The `Last-Modified` header, verbatim.
    pub last_modified: Option<String>,
}

impl Validators {
    /// True when there is nothing to send, so a 304 cannot be expected.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// A fetched HTML page.
#[derive(Debug, Clone)]
pub struct Page {
    /// Where the page was finally served from, after redirects.
    pub final_url: url::Url,
    /// The HTTP status (always 2xx here).
    pub status: u16,
    /// The body decoded to UTF-8 (from the BOM, header or `<meta>` charset).
    pub html: String,
    /// Validators to send next time.
    pub validators: Validators,
}

/// What a fetch produced.
#[derive(Debug)]
pub enum FetchOutcome {
    /// The server answered 304: the page is as it was.
    NotModified,
    /// A new HTML page.
    Page(Page),
}

/// Fetches pages. Cheap to clone: clones share one connection pool, so one
/// `Fetcher` should serve the whole process.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    settings: Arc<FetchSettings>,
    robots: Arc<Mutex<HashMap<String, RobotsEntry>>>,
    robots_gates: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// A site's robots.txt as last read: `None` allows everything (no file, or
/// a 4xx, which RFC 9309 treats as "no rules").
#[derive(Debug, Clone)]
struct RobotsEntry {
    read_at: Instant,
    robot: Option<Arc<texting_robots::Robot>>,
}

/// How long a site's robots.txt is trusted before it is read again.
const ROBOTS_TTL: Duration = Duration::from_secs(24 * 3600);
/// RFC 9309 asks crawlers to parse at least 500 KiB of robots.txt; more is
/// not read.
const ROBOTS_MAX_BYTES: usize = 512 * 1024;
/// The product token tidings matches in robots.txt `User-agent` lines.
pub const ROBOTS_AGENT: &str = "tidings";

/// One failed attempt, with the server's `Retry-After` if it sent one.
struct AttemptFailure {
    error: FetchError,
    retry_after: Option<Duration>,
}

impl From<FetchError> for AttemptFailure {
    fn from(error: FetchError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

impl Fetcher {
    /// Builds the shared HTTP client from `settings`.
    pub fn new(settings: FetchSettings) -> Result<Self, FetchError> {
        install_crypto_provider();
        let user_agent =
            HeaderValue::from_str(&settings.user_agent).map_err(|_| FetchError::Setup {
                detail: "the user agent is not a valid http header value".to_owned(),
            })?;
        let mut default_headers = HeaderMap::new();
        default_headers.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
        default_headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static(ACCEPT_ENCODING),
        );
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .default_headers(default_headers)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::limited(settings.max_redirects))
            .brotli(true)
            .tls_backend_preconfigured(tls::client_config()?)
            .build()
            .map_err(|e| FetchError::Setup {
                detail: innermost_message(&e),
            })?;
        Ok(Self {
            client,
            settings: Arc::new(settings),
            robots: Arc::new(Mutex::new(HashMap::new())),
            robots_gates: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Checks that the site's robots.txt lets tidings fetch `url`. The file is
    /// read once per site and trusted for a day.
    ///
    /// Returns whether robots.txt was requested from the site just now
    /// (rather than found in the cache), so a caller spacing its requests to
    /// a host can count that request too.
    pub async fn check_robots(&self, url: &Url) -> Result<bool, FetchError> {
        let origin = url.origin().ascii_serialization();
        // One reader per site at a time: concurrent checks of one site wait
        // for the first to read robots.txt, then share what it read.
        let gate = Arc::clone(
            self.robots_gates
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(origin.clone())
                .or_default(),
        );
        let _reading = gate.lock().await;
        let cached = self
            .robots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&origin)
            .filter(|entry| entry.read_at.elapsed() < ROBOTS_TTL)
            .cloned();
        let (entry, requested) = match cached {
            Some(entry) => (entry, false),
            None => {
                let entry = self.read_robots(url).await?;
                self.robots
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(origin, entry.clone());
                (entry, true)
            }
        };
        match entry.robot {
            Some(robot) if !robot.allowed(url.as_str()) => {
                Err(FetchError::RobotsDisallowed { url: url.clone() })
            }
            _ => Ok(requested),
        }
    }

    async fn read_robots(&self, url: &Url) -> Result<RobotsEntry, FetchError> {
        let unreachable = |detail: String| FetchError::RobotsUnreachable {
            url: url.clone(),
            detail,
        };
        let robots_url = url
            .join("/robots.txt")
            .map_err(|e| unreachable(e.to_string()))?;
        // A network failure (no DNS answer, a refused connection, a
        // timeout) is named as one, for the page's own URL: the site is
        // unreachable, which says more than "robots.txt could not be read".
        let mut response = self.client.get(robots_url).send().await.map_err(|e| {
            if e.is_connect() || e.is_timeout() {
                self.classify(url, &e, 1).error
            } else {
                unreachable(innermost_message(&e))
            }
        })?;
        let status = response.status();
        if status.is_client_error() {
            return Ok(RobotsEntry {
                read_at: Instant::now(),
                robot: None,
            });
        }
        if !status.is_success() {
            return Err(unreachable(format!("server answered {status}")));
        }
        let gzipped = is_gzip(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unreachable(innermost_message(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() >= ROBOTS_MAX_BYTES {
                body.truncate(ROBOTS_MAX_BYTES);
                break;
            }
        }
        if gzipped && !body.is_empty() {
            body = gunzip::gunzip_prefix(&body, ROBOTS_MAX_BYTES)
                .map_err(|detail| unreachable(format!("bad gzip data: {detail}")))?;
        }
        // A file the parser cannot read is treated as having no rules, as
        // browsers and major crawlers do with garbage.
        let robot = texting_robots::Robot::new(ROBOTS_AGENT, &body)
            .ok()
            .map(Arc::new);
        Ok(RobotsEntry {
            read_at: Instant::now(),
            robot,
        })
    }

    /// The settings this fetcher was built with.
    pub fn settings(&self) -> &FetchSettings {
        &self.settings
    }

    /// Fetches `url`, sending `previous` as conditional-GET validators, and
    /// retrying transient failures as the settings allow.
    ///
    /// Returns [`FetchOutcome::NotModified`] only when validators were sent and
    /// the server answered 304; any other outcome that is not a usable HTML
    /// page is an error.
    pub async fn fetch(
        &self,
        url: &Url,
        previous: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::UnsupportedScheme { url: url.clone() });
        }
        let max_attempts = self.settings.retries.saturating_add(1);
        let mut attempt: u32 = 1;
        loop {
            debug!(%url, attempt, max_attempts, "fetching");
            let failure = match self.attempt(url, previous, attempt).await {
                Ok(outcome) => return Ok(outcome),
                Err(failure) => failure,
            };
            let AttemptFailure { error, retry_after } = failure;
            if !error.is_transient() || attempt >= max_attempts {
                return Err(error);
            }
            let delay = match retry_after {
                // A server asking for a long pause is better left alone than
                // hammered; the next scheduled run will try again.
                Some(wait) if wait > self.settings.max_retry_after => {
                    debug!(%url, attempt, wait_secs = wait.as_secs(), "retry-after too long, giving up");
                    return Err(with_refused_wait(error, wait));
                }
                Some(wait) => wait,
                None => self.backoff(attempt),
            };
            debug!(%url, attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Exponential backoff with jitter for the retry after `attempt`: jitter
    /// keeps many watches on one host from retrying in lockstep.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(16);
        let base = self.settings.retry_base.saturating_mul(1u32 << exp);
        let jittered = base.mul_f64(0.5 + fastrand::f64());
        jittered.min(self.settings.max_retry_after)
    }

    /// One request, start to finish.
    async fn attempt(
        &self,
        url: &Url,
        previous: &Validators,
        attempt: u32,
    ) -> Result<FetchOutcome, AttemptFailure> {
        let mut request = self.client.get(url.clone());
        let mut sent_validators = false;
        // A stored validator that is not a legal header value (corrupt store)
        // is skipped rather than failing the fetch: we just lose the 304.
        if let Some(value) = previous.etag.as_deref().and_then(header_value) {
            request = request.header(header::IF_NONE_MATCH, value);
            sent_validators = true;
        }
        if let Some(value) = previous.last_modified.as_deref().and_then(header_value) {
            request = request.header(header::IF_MODIFIED_SINCE, value);
            sent_validators = true;
        }

        let mut response = request
            .send()
            .await
            .map_err(|e| self.classify(url, &e, attempt))?;
        let status = response.status();
        debug!(%url, attempt, status = status.as_u16(), "response");

        if status == StatusCode::NOT_MODIFIED && sent_validators {
            return Ok(FetchOutcome::NotModified);
        }
        if !status.is_success() {
            return Err(AttemptFailure {
                retry_after: retry_after(response.headers()),
                error: FetchError::Status {
                    url: url.clone(),
                    status: status.as_u16(),
                    attempts: attempt,
                    refused_wait: None,
                },
            });
        }

        // Refuse a declared non-HTML type before reading a possibly large body.
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(ct) = &content_type {
            if !is_html_type(ct) {
                return Err(FetchError::NotHtml {
                    url: url.clone(),
                    content_type: mime_essence(ct),
                }
                .into());
            }
        }

        let limit = self.settings.max_body_bytes;
        let too_large = || FetchError::TooLarge {
            url: url.clone(),
            limit,
        };
        // A gzip body arrives as sent and is inflated once whole; the cap
        // applies to what it inflates to, so it also stops compression
        // bombs. Content-Length is the size on the wire: checked against
        // the cap only for a body that is not gzip (brotli is decoded as
        // it streams, and reqwest drops its length).
        let gzipped = is_gzip(response.headers());
        if !gzipped
            && response
                .content_length()
                .is_some_and(|len| len > limit as u64)
        {
            return Err(too_large().into());
        }
        // The chunks are kept until the last one and copied once into a
        // body of the right size: appended to a growing buffer, a page was
        // copied again at every doubling. Gzip inflates pages a few times
        // over, so compressed bytes past the cap are already too many.
        let mut chunks = Vec::new();
        let mut len = 0usize;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.classify(url, &e, attempt))?
        {
            if len + chunk.len() > limit {
                return Err(too_large().into());
            }
            len += chunk.len();
            chunks.push(chunk);
        }
        let mut body = Vec::with_capacity(len);
        for chunk in chunks {
            body.extend_from_slice(&chunk);
        }
        // An empty body is an empty page (reported as such), not bad gzip.
        if gzipped && !body.is_empty() {
            body = gunzip::gunzip(&body, limit).map_err(|error| match error {
                gunzip::GunzipError::TooLarge => too_large(),
                gunzip::GunzipError::Corrupt(detail) => FetchError::Decode {
                    url: url.clone(),
                    detail: format!("bad gzip data: {detail}"),
                },
            })?;
        }

        let validators = Validators {
            etag: header_string(response.headers(), header::ETAG),
            last_modified: header_string(response.headers(), header::LAST_MODIFIED),
        };
        let html = decode_body_owned(body, content_type.as_deref());
        if html.trim().is_empty() {
            return Err(FetchError::Empty { url: url.clone() }.into());
        }
        if let Some(detail) = implausible(&html) {
            return Err(FetchError::NotText {
                url: url.clone(),
                detail,
            }
            .into());
        }
        if content_type.is_none() && !looks_like_html(&html) {
            return Err(FetchError::NotHtml {
                url: url.clone(),
                content_type: "none".to_owned(),
            }
            .into());
        }
        Ok(FetchOutcome::Page(Page {
            final_url: response.url().clone(),
            status: status.as_u16(),
            html,
            validators,
        }))
    }

    /// Turns a reqwest error into our own, so no reqwest type leaks out.
    fn classify(&self, url: &Url, error: &reqwest::Error, attempt: u32) -> AttemptFailure {
        let url = url.clone();
        let error = if error.is_redirect() {
            FetchError::TooManyRedirects {
                url,
                max: self.settings.max_redirects,
            }
        } else if error.is_connect() {
            // Checked before is_timeout so that a connect timeout reads as a
            // connection problem, with its own (shorter) limit in the detail.
            FetchError::Connect {
                url,
                detail: innermost_message(error),
                attempts: attempt,
            }
        } else if error.is_timeout() {
            FetchError::Timeout {
                url,
                limit: self.settings.timeout,
                attempts: attempt,
            }
        } else if error.is_decode() {
            FetchError::Decode {
                url,
                detail: innermost_message(error),
            }
        } else {
            FetchError::Transport {
                url,
                detail: innermost_message(error),
                attempts: attempt,
            }
        };
        error.into()
    }
}

/// reqwest built without a bundled crypto provider needs one installed before
/// the first client is built. Installing is first-come-first-served for the
/// process, so an error only means someone (another Fetcher, a test) already
/// did it — which is fine.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Records that we stopped because the server asked us to wait too long.
fn with_refused_wait(error: FetchError, wait: Duration) -> FetchError {
    match error {
        FetchError::Status {
            url,
            status,
            attempts,
            ..
        } => FetchError::Status {
            url,
            status,
            attempts,
            refused_wait: Some(wait),
        },
        other => other,
    }
}

/// 429 and 5xx are worth retrying; other statuses will not change by asking
/// again a second later.
fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// Parses `Retry-After` as delta-seconds or an HTTP-date. A date in the past
/// means "now".
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn header_value(value: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(value).ok()
}

/// Whether a response's body is gzip data: sent as it is, since only brotli
/// is decoded by the client (see [`ACCEPT_ENCODING`]).
fn is_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip"))
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::{UTF_8, WINDOWS_1252};

    #[test]
    fn meta_charset_finds_both_forms() {
        let short = b"<html><head><meta charset=\"windows-1251\"></head>";
        assert_eq!(meta_charset(short), Some(encoding_rs::WINDOWS_1251));
        let long = b"<META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=ISO-8859-2\">";
        assert_eq!(meta_charset(long), Some(encoding_rs::ISO_8859_2));
        let unquoted = b"<meta charset=shift_jis>";
        assert_eq!(meta_charset(unquoted), Some(encoding_rs::SHIFT_JIS));
    }

    #[test]
    fn meta_charset_ignores_other_tags_and_late_declarations() {
        assert_eq!(meta_charset(b"<p>charset=koi8-r</p>"), None);
        let mut late = vec![b' '; META_PRESCAN_BYTES];
        late.extend_from_slice(b"<meta charset=koi8-r>");
        assert_eq!(meta_charset(&late), None);
    }

    #[test]
    fn random_bytes_are_not_a_page_but_real_text_is() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        for content_type in [None, Some("text/html"), Some("text/html; charset=utf-8")] {
            let text = decode_body(&noise, content_type);
            assert!(implausible(&text).is_some(), "{content_type:?}");
        }
        let page = "<html><body><p>Caf\u{e9} \u{2014} Allerdale, Eden</p>\n\t</body></html>";
        assert_eq!(implausible(&decode_body(page.as_bytes(), None)), None);
        let latin1 = b"<html><body><p>Caf\xe9 na\xefve</p></body></html>";
        assert_eq!(implausible(&decode_body(latin1, None)), None);
    }

    #[test]
    fn the_byte_count_of_junk_matches_the_char_reading() {
        let slow = |text: &str| {
            let total = text.chars().count();
            let junk = text
                .chars()
                .filter(|&c| {
                    c == '\u{fffd}'
                        || (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
                })
                .count();
            (total, junk)
        };
        for text in [
            "",
            "plain <p>text</p>\n\t\r\u{c}",
            "\u{0}\u{1b}[2J\u{7f}",
            "Caf\u{e9} \u{80}\u{9f}\u{a0}\u{85} \u{2014}",
            "\u{fffd}\u{fffe}\u{ffef}\u{efbf}\u{bfbd}",
            "东京、大阪，名古屋 \u{1f600}",
        ] {
            assert_eq!(decode::junk_count(text), slow(text), "{text:?}");
        }
        // The 64-byte blocks of the clean-page test: junk at either end of
        // a block, or past the last whole block, is still found.
        let filler = "a".repeat(200);
        for at in [0, 63, 64, 127, 128, 190, 199] {
            for junk in ["\u{1}", "\u{85}", "\u{fffd}", "\u{7f}"] {
                // Five junk characters in up to 225: above the 2 % line.
                let text = format!("{}{}{}", &filler[..at], junk.repeat(5), &filler[..20]);
                let (total, bad) = slow(&text);
                let expected = bad * 1000 > total * 20;
                assert!(expected, "{at} {junk:?}");
                assert!(implausible(&text).is_some(), "{at} {junk:?}");
                assert_eq!(decode::junk_count(&text), (total, bad), "{at} {junk:?}");
            }
        }
        assert_eq!(implausible(&filler), None);
    }

    #[test]
    fn an_impossible_header_charset_gives_way_to_the_meta_one() {
        let page =
            "<html><head><meta charset=\"utf-8\"></head><body><p>Caf\u{e9}</p></body></html>";
        let text = decode_body(page.as_bytes(), Some("text/html; charset=utf-16"));
        assert!(text.contains("Caf\u{e9}"), "{text}");
        let no_meta = "<html><body><p>Caf\u{e9}</p></body></html>";
        let text = decode_body(no_meta.as_bytes(), Some("text/html; charset=utf-16le"));
        assert!(text.contains("Caf\u{e9}"), "{text}");
        // A header that leaves undecodable bytes where the meta decodes cleanly.
        let win = b"<html><head><meta charset=windows-1252></head><body>Caf\xe9</body></html>";
        let text = decode_body(win, Some("text/html; charset=utf-8"));
        assert!(text.contains("Caf\u{e9}"), "{text}");
    }

    #[test]
    fn an_owned_body_decodes_as_a_borrowed_one() {
        let bodies: [&[u8]; 8] = [
            "<p>Caf\u{e9} \u{2014} plain UTF-8</p>".as_bytes(),
            b"<meta charset=utf-8><p>Caf\xe9 broken</p>",
            b"<p>Caf\xe9 undeclared windows-1252</p>",
            b"<meta charset=windows-1252><p>Caf\xe9</p>",
            b"<meta charset=koi8-r><p>\xf0\xd2\xc9</p>",
            "\u{feff}<p>UTF-8 with a BOM</p>".as_bytes(),
            b"\xff\xfe<\0p\0>\0",
            b"",
        ];
        for body in bodies {
            for content_type in [
                None,
                Some("text/html"),
                Some("text/html; charset=utf-8"),
                Some("text/html; charset=windows-1252"),
                Some("text/html; charset=utf-16"),
            ] {
                assert_eq!(
                    decode_body_owned(body.to_vec(), content_type),
                    decode_body(body, content_type),
                    "{body:?} {content_type:?}"
                );
            }
        }
    }

    #[test]
    fn meta_declaring_utf16_means_utf8() {
        assert_eq!(meta_charset(b"<meta charset=utf-16>"), Some(UTF_8));
    }

    #[test]
    fn header_charset_parses_parameters() {
        assert_eq!(
            header_charset("text/html; Charset=\"Windows-1252\""),
            Some(WINDOWS_1252)
        );
        assert_eq!(header_charset("text/html"), None);
        assert_eq!(header_charset("text/html; charset=bogus"), None);
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_str(&future).unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let fetcher = Fetcher::new(FetchSettings {
            retry_base: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(1),
            ..FetchSettings::default()
        })
        .unwrap();
        let first = fetcher.backoff(1);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(150));
        let third = fetcher.backoff(3);
        assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(600));
        assert!(fetcher.backoff(30) <= Duration::from_secs(1));
    }

    #[test]
    fn messages_are_lowercase_and_name_the_url() {
        let url = Url::parse("https://x.example/y").unwrap();
        let error = FetchError::Status {
            url: url.clone(),
            status: 503,
            attempts: 3,
            refused_wait: None,
        };
        assert_eq!(
            error.to_string(),
            "https://x.example/y: server answered 503 Service Unavailable after 3 attempts"
        );
        let error = FetchError::TooLarge {
            url,
            limit: 5 * 1024 * 1024,
        };
        assert_eq!(
            error.to_string(),
            "https://x.example/y: page is larger than the 5 MiB limit"
        );
    }

    #[test]
    fn user_agent_is_honest() {
        let ua = user_agent("ops@example.org");
        assert!(ua.starts_with("tidings/"));
        assert!(ua.contains("contact: ops@example.org"));
    }
}
