//! The web server's defences: form (CSRF) tokens, rate limits, the client
//! address, and the headers every response carries.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::WebSettings;
use crate::core::token::TokenKey;

/// The Content-Security-Policy of every response. Pages load only their
/// own stylesheet; there is no script at all, forms post only to this
/// server, and no site may frame a page (clickjacking a one-click
/// unsubscribe button).
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to a response's headers.
pub(crate) fn add_security_headers(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Tokens are in the paths of the email links: no other site may see
    // them in a Referer.
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        headers,
        header::HeaderName::from_static("permissions-policy"),
        "interest-cohort=(), camera=(), microphone=(), geolocation=()",
    );
}

// ---------------------------------------------------------------------------
// CSRF: a signed double-submit token

/// The form field that carries the token.
pub(crate) const CSRF_FIELD: &str = "csrf";
/// The cookie's name over https at the root of a site: the `__Host-` prefix
/// makes browsers refuse the cookie unless it was set by this very host,
/// over https, for the whole site, which stops a sibling subdomain from
/// planting a cookie of its choosing.
const HOST_COOKIE: &str = "__Host-tidings_csrf";
/// The cookie's name otherwise (plain http on loopback, or a sub-path).
const PLAIN_COOKIE: &str = "tidings_csrf";

/// Why a form was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CsrfError {
    /// The cookie or the field is missing (cookies blocked, or the form
    /// came from elsewhere).
    Missing,
    /// They do not match.
    Mismatch,
    /// The browser says the form was sent from another site.
    CrossOrigin,
}

fn cookie_name(web: &WebSettings) -> &'static str {
    if web.base_url.scheme() == "https" && web.base_path().is_empty() {
        HOST_COOKIE
    } else {
        PLAIN_COOKIE
    }
}

/// A value from the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// Whether a cookie value has the shape of our nonces (so a reused cookie
/// cannot smuggle anything odd into a page).
fn nonce_shape(value: &str) -> bool {
    value.len() == 22
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A fresh nonce: 128 bits of a keyed hash over the time, a counter and
/// random bits. Keyed with the secret, so it cannot be predicted even
/// though `fastrand` alone is not a cryptographic generator.
fn fresh_nonce(key: &TokenKey) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut seed = Vec::with_capacity(48);
    seed.extend_from_slice(b"nonce");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    seed.extend_from_slice(&now.as_nanos().to_be_bytes());
    seed.extend_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    seed.extend_from_slice(&fastrand::u64(..).to_be_bytes());
    seed.extend_from_slice(&fastrand::u64(..).to_be_bytes());
    let hash = key.form_mac(&seed);
    URL_SAFE_NO_PAD.encode(&hash.as_bytes()[..16])
}

/// The form field's value for a nonce: its MAC under the form key.
fn field_for(key: &TokenKey, nonce: &str) -> blake3::Hash {
    let mut data = Vec::with_capacity(8 + nonce.len());
    data.extend_from_slice(b"csrf\0");
    data.extend_from_slice(nonce.as_bytes());
    key.form_mac(&data)
}

/// What a page with a form needs: the hidden field's value, and a
/// `Set-Cookie` header when the browser had no cookie yet.
pub(crate) struct FormToken {
    pub(crate) field: String,
    pub(crate) set_cookie: Option<HeaderValue>,
}

/// The token for a page with a form. A browser that already has a cookie
/// keeps it, so several open tabs all work.
pub(crate) fn form_token(key: &TokenKey, web: &WebSettings, headers: &HeaderMap) -> FormToken {
    let name = cookie_name(web);
    let (nonce, set_cookie) = match cookie(headers, name).filter(|v| nonce_shape(v)) {
        Some(existing) => (existing.to_owned(), None),
        None => {
            let nonce = fresh_nonce(key);
            let secure = if web.base_url.scheme() == "https" {
                "; Secure"
            } else {
                ""
            };
            let path = if web.base_path().is_empty() {
                "/"
            } else {
                web.base_path()
            };
            // A session cookie: it goes when the browser closes, and the
            // form it protects needs nothing longer.
            let value = format!("{name}={nonce}; Path={path}; HttpOnly; SameSite=Strict{secure}");
            (nonce, HeaderValue::from_str(&value).ok())
        }
    };
    FormToken {
        field: field_for(key, &nonce).to_hex().to_string(),
        set_cookie,
    }
}

/// Checks a posted form: the `Origin` (when the browser sends one) must be
/// this server's, and the field must be the MAC of the cookie's nonce.
/// The comparison is constant-time.
pub(crate) fn check_form(
    key: &TokenKey,
    web: &WebSettings,
    headers: &HeaderMap,
    field: Option<&str>,
) -> Result<(), CsrfError> {
    // `Origin: null` is what browsers send for our own forms under
    // `Referrer-Policy: no-referrer`, so it counts as no answer; a
    // cross-site form is still caught by `Sec-Fetch-Site` below and, in
    // browsers without it, by the token.
    if let Some(origin) = headers
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null")
    {
        let ours = web.base_url.origin().ascii_serialization();
        if origin.to_str().ok() != Some(ours.as_str()) {
            return Err(CsrfError::CrossOrigin);
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(CsrfError::CrossOrigin);
    }
    let nonce = cookie(headers, cookie_name(web))
        .filter(|v| nonce_shape(v))
        .ok_or(CsrfError::Missing)?;
    let field = field.ok_or(CsrfError::Missing)?;
    let given = blake3::Hash::from_hex(field.trim()).map_err(|_| CsrfError::Mismatch)?;
    if given == field_for(key, nonce) {
        Ok(())
    } else {
        Err(CsrfError::Mismatch)
    }
}

// ---------------------------------------------------------------------------
// Rate limits: token buckets in memory

/// Keys kept before idle buckets are dropped. Each is under 100 bytes, so
/// the limiter cannot be made to use more than a few MB by a flood of
/// addresses.
const MAX_KEYS: usize = 50_000;

/// Token buckets by key, each holding up to `per_hour` tokens and refilled
/// at `per_hour` an hour. Hand-written rather than a crate: it is a few
/// lines, its memory is bounded here, and the rate can change on reload.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Buckets {
    /// Takes a token for `key`; false when its bucket is empty.
    pub(crate) fn allow(&mut self, key: &str, per_hour: u32, now: Instant) -> bool {
        let capacity = f64::from(per_hour.max(1));
        let per_second = capacity / 3600.0;
        if self.buckets.len() >= MAX_KEYS && !self.buckets.contains_key(key) {
            self.prune(capacity, per_second, now);
        }
        let bucket = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops buckets that have refilled (they hold no information); if that
    /// is not enough, drops everything, trading a brief burst for a bound
    /// on memory.
    fn prune(&mut self, capacity: f64, per_second: f64, now: Instant) {
        self.buckets.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.tokens + elapsed * per_second < capacity
        });
        if self.buckets.len() >= MAX_KEYS {
            tracing::warn!("rate-limit table full; starting afresh");
            self.buckets.clear();
        }
    }
}

/// The client's address: the connection's peer, or with `trust_forwarded`
/// the last address in `X-Forwarded-For`. The last, because a proxy
/// appends the address it saw; everything before it came from the client
/// and can say anything.
pub(crate) fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded: bool,
) -> Option<IpAddr> {
    if trust_forwarded {
        // Only the very last entry: an unreadable one falls back to the
        // peer rather than to an earlier, client-written entry.
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|part| parse_ip(part.trim()));
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|addr| addr.ip())
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// The rate-limit key of a client: an IPv4 address, or an IPv6 address's
/// /64, since one household or phone usually has a whole /64 to pick from.
pub(crate) fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// How long a client refused by a limit is told to wait: the time one
/// token takes to come back.
pub(crate) fn retry_after(per_hour: u32) -> Duration {
    Duration::from_secs(3600 / u64::from(per_hour.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> WebSettings {
        WebSettings::new("https://example.org".parse().expect("url"), "secret".into())
    }

    fn key() -> TokenKey {
        TokenKey::from_secret(&[9u8; 32]).expect("key")
    }

    #[test]
    fn a_form_token_round_trips_through_cookie_and_field() {
        let token = form_token(&key(), &web(), &HeaderMap::new());
        let cookie = token.set_cookie.expect("new cookie");
        let cookie = cookie.to_str().expect("ascii");
        assert!(cookie.starts_with("__Host-tidings_csrf="), "{cookie}");
        assert!(cookie.contains("SameSite=Strict") && cookie.contains("Secure"));
        let pair = cookie.split(';').next().expect("pair");
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, pair.parse().expect("header"));
        assert_eq!(
            check_form(&key(), &web(), &headers, Some(&token.field)),
            Ok(())
        );
        // The same browser gets the same cookie back and no new one.
        let again = form_token(&key(), &web(), &headers);
        assert!(again.set_cookie.is_none());
        assert_eq!(again.field, token.field);

        assert_eq!(
            check_form(&key(), &web(), &headers, None),
            Err(CsrfError::Missing)
        );
        assert_eq!(
            check_form(&key(), &web(), &HeaderMap::new(), Some(&token.field)),
            Err(CsrfError::Missing)
        );
        let other = form_token(&key(), &web(), &HeaderMap::new());
        assert_eq!(
            check_form(&key(), &web(), &headers, Some(&other.field)),
            Err(CsrfError::Mismatch)
        );
        headers.insert(header::ORIGIN, "https://evil.example".parse().expect("h"));
        assert_eq!(
            check_form(&key(), &web(), &headers, Some(&token.field)),
            Err(CsrfError::CrossOrigin)
        );
        headers.insert(header::ORIGIN, "https://example.org".parse().expect("h"));
        assert_eq!(
            check_form(&key(), &web(), &headers, Some(&token.field)),
            Ok(())
        );
    }

    #[test]
    fn buckets_refill_over_the_hour() {
        let mut buckets = Buckets::default();
        let start = Instant::now();
        assert!(buckets.allow("a", 2, start));
        assert!(buckets.allow("a", 2, start));
        assert!(!buckets.allow("a", 2, start));
        assert!(buckets.allow("b", 2, start), "keys are separate");
        assert!(!buckets.allow("a", 2, start + Duration::from_secs(1700)));
        assert!(buckets.allow("a", 2, start + Duration::from_secs(1801)));
    }

    #[test]
    fn the_client_address_comes_from_the_proxy_only_when_trusted() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().expect("addr");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "1.1.1.1, 203.0.113.9".parse().expect("h"),
        );
        assert_eq!(
            client_ip(&headers, Some(peer), false),
            Some(peer.ip()),
            "untrusted header ignored"
        );
        assert_eq!(
            client_ip(&headers, Some(peer), true),
            Some("203.0.113.9".parse().expect("ip"))
        );
        assert_eq!(
            ip_key("2001:db8:1:2:3:4:5:6".parse().expect("ip")),
            "2001:db8:1:2::/64"
        );
    }
}
