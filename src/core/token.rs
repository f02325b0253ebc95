//! Signed tokens for the links in emails: confirm a subscription,
//! unsubscribe, change preferences.
//!
//! Pure: no I/O except [`TokenKey::from_file`], and the clock is an
//! argument. A token is `base64url(payload ‖ tag)` without padding, where
//! the payload is a format byte, the purpose, the expiry (Unix seconds, 0
//! for none) and the address, and the tag is HMAC-SHA256 over the payload
//! (ring's, the implementation the TLS stack already uses), under a key
//! derived from the secret file.
//!
//! The address travels in the token, readable by anyone who has the link.
//! That is deliberate: the link goes to that address anyway, the web pages
//! send `Referrer-Policy: no-referrer` so it does not leak onward, and a
//! stateless token needs no table of issued tokens that could be lost or
//! grow without bound.
//!
//! Why some tokens never expire: a confirmation link is a one-off, so it
//! expires ([`CONFIRM_TTL`]) and an old one found in a mailbox cannot
//! resurrect a subscription someone walked away from. Unsubscribe and
//! preferences links sit in every briefing ever sent; a person who finds a
//! two-year-old briefing must still be able to leave in one click (RFC 8058
//! and the ICO's guidance on marketing both expect that), so those carry no
//! expiry. Rotating the secret file invalidates every token at once.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};

/// How long a confirmation link works.
pub const CONFIRM_TTL: Duration = Duration::hours(48);
/// The fewest bytes a secret file may hold.
pub const MIN_SECRET_BYTES: usize = 32;

/// The first payload byte: lets a later format be told apart.
const FORMAT: u8 = 1;
/// Bytes of the MAC tag: the whole HMAC-SHA256 output.
const TAG_BYTES: usize = 32;
/// Format byte, purpose byte and the 8-byte expiry.
const HEADER_BYTES: usize = 10;
/// Tokens longer than this are refused before decoding: no real address
/// makes one (254 bytes at most), and it bounds the work an attacker can ask
/// for.
const MAX_TOKEN_CHARS: usize = 512;

/// Domain-separation contexts for BLAKE3's key derivation. Changing one
/// invalidates everything signed under it.
const KEY_CONTEXT: &str = "tidings 2026-11 web secret -> master key";
const TOKEN_CONTEXT: &str = "tidings 2026-11 email link tokens";
const CSRF_CONTEXT: &str = "tidings 2026-11 csrf form tokens";

/// The secret every token is signed with, read from a file.
///
/// Two keys are derived from the file, one for email links and one for
/// form (CSRF) tokens, so that a value signed for one use can never pass as
/// the other.
#[derive(Clone)]
pub struct TokenKey {
    links: [u8; 32],
    forms: [u8; 32],
}

impl fmt::Debug for TokenKey {
    // By hand: the key must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(<secret>)")
    }
}

/// The secret file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// It could not be read.
    #[error("cannot read the web secret file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It holds too little.
    #[error(
        "the web secret file {path} holds {found} bytes; it needs at least {MIN_SECRET_BYTES} \
         random bytes (e.g. `head -c 32 /dev/urandom > {path}`)"
    )]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Bytes found (after trimming a trailing newline).
        found: usize,
    },
}

impl TokenKey {
    /// Reads the secret from `path`: at least [`MIN_SECRET_BYTES`] bytes of
    /// anything (raw random bytes, or text such as a long hex string); a
    /// trailing newline is ignored. The bytes are hashed down to the key, so
    /// any length above the minimum works.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        warn_if_readable_by_others(path);
        let trimmed = trim_newline(&bytes);
        Self::from_secret(trimmed).ok_or_else(|| KeyError::TooShort {
            path: path.to_path_buf(),
            found: trimmed.len(),
        })
    }

    /// A key from secret bytes, or `None` when there are fewer than
    /// [`MIN_SECRET_BYTES`].
    pub fn from_secret(secret: &[u8]) -> Option<Self> {
        if secret.len() < MIN_SECRET_BYTES {
            return None;
        }
        let master = blake3::derive_key(KEY_CONTEXT, secret);
        Some(Self {
            links: blake3::derive_key(TOKEN_CONTEXT, &master),
            forms: blake3::derive_key(CSRF_CONTEXT, &master),
        })
    }

    /// A fingerprint of the key that reveals nothing of it: nodes sharing a
    /// store compare fingerprints, so that a node with a different secret
    /// file (whose links every other node would refuse) does not start.
    pub fn fingerprint(&self) -> String {
        let hash = blake3::keyed_hash(&self.links, b"tidings key fingerprint");
        hash.to_hex()[..16].to_owned()
    }

    /// The HMAC-SHA256 key for email links.
    fn links_hmac(&self) -> ring::hmac::Key {
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.links)
    }

    /// The MAC of `data` under the form (CSRF) key. Used by the web server's
    /// double-submit check.
    pub fn form_mac(&self, data: &[u8]) -> blake3::Hash {
        blake3::keyed_hash(&self.forms, data)
    }
}

fn trim_newline(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(
            file = %path.display(),
            "the web secret file is readable by every user; anyone who reads it can forge \
             unsubscribe and confirmation links (chmod 600 it)"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// What a token may be used for. A token signed for one purpose is refused
/// for every other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirm a subscription (double opt-in). Expires.
    Confirm,
    /// Unsubscribe at once. Never expires.
    Unsubscribe,
    /// Change what one follows. Never expires.
    Preferences,
}

impl Purpose {
    fn byte(self) -> u8 {
        match self {
            Self::Confirm => b'c',
            Self::Unsubscribe => b'u',
            Self::Preferences => b'p',
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            b'c' => Some(Self::Confirm),
            b'u' => Some(Self::Unsubscribe),
            b'p' => Some(Self::Preferences),
            _ => None,
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token at all: bad base64, too short, unknown format.
    #[error("the link is incomplete or damaged")]
    Malformed,
    /// The tag does not match: forged, altered, or signed with another
    /// secret.
    #[error("the link's signature does not match")]
    BadSignature,
    /// Genuine, but made for something else.
    #[error("the link is for something else")]
    WrongPurpose,
    /// Genuine, but too old.
    #[error("the link has expired")]
    Expired,
}

/// Signs a token for `address`. `expires: None` makes a token that never
/// expires (see the module notes for which purposes should).
pub fn sign(
    key: &TokenKey,
    purpose: Purpose,
    address: &str,
    expires: Option<DateTime<Utc>>,
) -> String {
    // A time before 1970 cannot be meant; it is clamped to the earliest
    // representable expiry rather than turned into "never".
    let expiry = expires.map_or(0, |at| u64::try_from(at.timestamp().max(1)).unwrap_or(1));
    let mut payload = Vec::with_capacity(HEADER_BYTES + address.len() + TAG_BYTES);
    payload.push(FORMAT);
    payload.push(purpose.byte());
    payload.extend_from_slice(&expiry.to_be_bytes());
    payload.extend_from_slice(address.as_bytes());
    let tag = ring::hmac::sign(&key.links_hmac(), &payload);
    payload.extend_from_slice(tag.as_ref());
    URL_SAFE_NO_PAD.encode(payload)
}

/// Checks a token and returns the address it was signed for. The signature
/// is checked first (in constant time), so nothing about a forged token's
/// contents is acted on.
pub fn verify(
    key: &TokenKey,
    purpose: Purpose,
    token: &str,
    now: DateTime<Utc>,
) -> Result<String, TokenError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| TokenError::Malformed)?;
    if bytes.len() <= HEADER_BYTES + TAG_BYTES || bytes[0] != FORMAT {
        return Err(TokenError::Malformed);
    }
    let (payload, tag) = bytes.split_at(bytes.len() - TAG_BYTES);
    // ring compares in constant time.
    if ring::hmac::verify(&key.links_hmac(), payload, tag).is_err() {
        return Err(TokenError::BadSignature);
    }
    let found = Purpose::from_byte(payload[1]).ok_or(TokenError::Malformed)?;
    if found != purpose {
        return Err(TokenError::WrongPurpose);
    }
    let expiry_bytes: [u8; 8] = payload[2..HEADER_BYTES]
        .try_into()
        .map_err(|_| TokenError::Malformed)?;
    let expiry = u64::from_be_bytes(expiry_bytes);
    if expiry != 0 && now.timestamp() >= i64::try_from(expiry).unwrap_or(i64::MAX) {
        return Err(TokenError::Expired);
    }
    String::from_utf8(payload[HEADER_BYTES..].to_vec()).map_err(|_| TokenError::Malformed)
}

/// The token for an unsubscribe link: never expires. The delivery worker
/// puts it into `[mail] unsubscribe_url`'s `{token}`.
pub fn unsubscribe_token(key: &TokenKey, address: &str) -> String {
    sign(key, Purpose::Unsubscribe, address, None)
}

/// The token for a preferences link: never expires.
pub fn preferences_token(key: &TokenKey, address: &str) -> String {
    sign(key, Purpose::Preferences, address, None)
}

/// The token for a confirmation link, valid for [`CONFIRM_TTL`] from `now`.
pub fn confirm_token(key: &TokenKey, address: &str, now: DateTime<Utc>) -> String {
    sign(key, Purpose::Confirm, address, Some(now + CONFIRM_TTL))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::from_secret(b"0123456789abcdef0123456789abcdef").expect("long enough")
    }

    #[test]
    fn a_signed_token_verifies_for_its_purpose() {
        let now = Utc::now();
        for purpose in [Purpose::Confirm, Purpose::Unsubscribe, Purpose::Preferences] {
            let token = sign(&key(), purpose, "ada@example.org", None);
            assert_eq!(
                verify(&key(), purpose, &token, now),
                Ok("ada@example.org".to_owned())
            );
            assert!(
                token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{token}"
            );
        }
    }

    #[test]
    fn another_purpose_is_refused() {
        let token = unsubscribe_token(&key(), "ada@example.org");
        assert_eq!(
            verify(&key(), Purpose::Confirm, &token, Utc::now()),
            Err(TokenError::WrongPurpose)
        );
        assert_eq!(
            verify(&key(), Purpose::Preferences, &token, Utc::now()),
            Err(TokenError::WrongPurpose)
        );
    }

    #[test]
    fn confirm_tokens_expire_and_the_others_do_not() {
        let now = Utc::now();
        let token = confirm_token(&key(), "ada@example.org", now);
        assert!(verify(&key(), Purpose::Confirm, &token, now + Duration::hours(47)).is_ok());
        assert_eq!(
            verify(&key(), Purpose::Confirm, &token, now + Duration::hours(48)),
            Err(TokenError::Expired)
        );
        let forever = unsubscribe_token(&key(), "ada@example.org");
        let later = now + Duration::days(365 * 20);
        assert!(verify(&key(), Purpose::Unsubscribe, &forever, later).is_ok());
        let prefs = preferences_token(&key(), "ada@example.org");
        assert!(verify(&key(), Purpose::Preferences, &prefs, later).is_ok());
    }

    #[test]
    fn altered_or_foreign_tokens_are_refused() {
        let now = Utc::now();
        let token = unsubscribe_token(&key(), "ada@example.org");
        let other = TokenKey::from_secret(&[7u8; 40]).expect("key");
        assert_eq!(
            verify(&other, Purpose::Unsubscribe, &token, now),
            Err(TokenError::BadSignature)
        );
        // Swap in another address, keeping the tag.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        bytes[HEADER_BYTES] = b'b';
        let altered = URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(
            verify(&key(), Purpose::Unsubscribe, &altered, now),
            Err(TokenError::BadSignature)
        );
        // Remove the expiry of a confirmation token.
        let confirm = confirm_token(&key(), "ada@example.org", now);
        let mut bytes = URL_SAFE_NO_PAD.decode(&confirm).expect("base64");
        bytes[2..HEADER_BYTES].fill(0);
        let altered = URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(
            verify(&key(), Purpose::Confirm, &altered, now),
            Err(TokenError::BadSignature)
        );
        for junk in [
            "",
            "!!!",
            "abc",
            &"A".repeat(600),
            &token[..token.len() - 3],
        ] {
            let result = verify(&key(), Purpose::Unsubscribe, junk, now);
            assert!(
                matches!(
                    result,
                    Err(TokenError::Malformed | TokenError::BadSignature)
                ),
                "{junk:?}: {result:?}"
            );
        }
    }

    #[test]
    fn keys_come_from_files_of_at_least_32_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let short = dir.path().join("short");
        std::fs::write(&short, "too short\n").expect("write");
        let err = TokenKey::from_file(&short).expect_err("too short");
        assert!(err.to_string().contains("short"), "{err}");
        assert!(err.to_string().contains("at least 32"), "{err}");
        let missing = dir.path().join("missing");
        let err = TokenKey::from_file(&missing).expect_err("missing");
        assert!(err.to_string().contains("missing"), "{err}");

        let good = dir.path().join("good");
        std::fs::write(&good, format!("{}\n", "f".repeat(64))).expect("write");
        let from_file = TokenKey::from_file(&good).expect("key");
        let direct = TokenKey::from_secret("f".repeat(64).as_bytes()).expect("key");
        let token = unsubscribe_token(&from_file, "ada@example.org");
        assert!(verify(&direct, Purpose::Unsubscribe, &token, Utc::now()).is_ok());
        assert_eq!(format!("{from_file:?}"), "TokenKey(<secret>)");
    }

    #[test]
    fn link_and_form_keys_differ() {
        let key = key();
        assert_ne!(key.links, key.forms);
    }
}
