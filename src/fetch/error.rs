//! Why a fetch produced no page, in words that name the URL and say what
//! happened: the status, the network error, the limit that was hit.

use std::time::Duration;

use url::Url;

use super::{StatusCode, is_retryable_status};

/// Why a fetch produced no page. Every variant except [`FetchError::Setup`]
/// names the URL that was asked for (not where a redirect led), because that
/// is the address the user configured and will recognise.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The settings could not make an HTTP client (e.g. a User-Agent with a
    /// newline in it).
    #[error("cannot set up the http client: {detail}")]
    Setup {
        /// What was wrong.
        detail: String,
    },
    /// The URL is not http or https.
    #[error("{url}: only http and https addresses can be fetched")]
    UnsupportedScheme {
        /// The URL asked for.
        url: Url,
    },
    /// The server answered with a non-success status (other than an expected
    /// 304).
    #[error(
        "{url}: server answered {}{}{}",
        status_line(*.status),
        attempts_suffix(*.attempts),
        refused_wait_suffix(*.refused_wait)
    )]
    Status {
        /// The URL asked for.
        url: Url,
        /// The last status received.
        status: u16,
        /// How many requests were made.
        attempts: u32,
        /// A `Retry-After` longer than we were willing to wait, if that is why
        /// we stopped retrying.
        refused_wait: Option<Duration>,
    },
    /// The whole request (connect, headers and body) took longer than allowed.
    #[error(
        "{url}: no complete answer within {}{}",
        human_duration(*.limit),
        attempts_suffix(*.attempts)
    )]
    Timeout {
        /// The URL asked for.
        url: Url,
        /// The time allowed for one request.
        limit: Duration,
        /// How many requests were made.
        attempts: u32,
    },
    /// No connection could be made (refused, DNS failure, TLS failure,
    /// connect timeout).
    #[error(
        "{url}: network error: could not connect{}: {}",
        attempts_suffix(*.attempts),
        network_detail(detail)
    )]
    Connect {
        /// The URL asked for.
        url: Url,
        /// The underlying reason, e.g. "connection refused (os error 111)".
        detail: String,
        /// How many requests were made.
        attempts: u32,
    },
    /// The connection broke or the server spoke bad HTTP after connecting.
    #[error("{url}: transfer failed{}: {detail}", attempts_suffix(*.attempts))]
    Transport {
        /// The URL asked for.
        url: Url,
        /// The underlying reason.
        detail: String,
        /// How many requests were made.
        attempts: u32,
    },
    /// The compressed body could not be decompressed.
    #[error("{url}: could not decode the response body: {detail}")]
    Decode {
        /// The URL asked for.
        url: Url,
        /// The underlying reason.
        detail: String,
    },
    /// More redirects than allowed (or a redirect loop).
    #[error("{url}: more than {max} redirects")]
    TooManyRedirects {
        /// The URL asked for.
        url: Url,
        /// The redirect limit.
        max: usize,
    },
    /// The body (after decompression) is larger than the cap.
    #[error("{url}: page is larger than the {} limit", human_bytes(*.limit))]
    TooLarge {
        /// The URL asked for.
        url: Url,
        /// The cap, in bytes.
        limit: usize,
    },
    /// The response is not HTML, e.g. a PDF or JSON.
    #[error("{url}: not an html page (content type {content_type})")]
    NotHtml {
        /// The URL asked for.
        url: Url,
        /// The content type the server declared, or "none" if it declared
        /// none and the body did not look like HTML.
        content_type: String,
    },
    /// The server sent a success status with an empty or whitespace-only body.
    #[error("{url}: server sent an empty page")]
    Empty {
        /// The URL asked for.
        url: Url,
    },
    /// The body is not plausible text in its charset: binary data or bytes
    /// served as HTML (a high share of control or undecodable characters).
    #[error("{url}: not a page: {detail}")]
    NotText {
        /// The URL asked for.
        url: Url,
        /// What was wrong with the bytes.
        detail: String,
    },
    /// The site's robots.txt disallows this URL for tidings.
    #[error(
        "{url}: the site's robots.txt disallows it for tidings (set `robots = false` on the watch to override)"
    )]
    RobotsDisallowed {
        /// The URL asked for.
        url: Url,
    },
    /// robots.txt could not be read (a server error or a network failure):
    /// RFC 9309 says to assume the whole site is disallowed until it can be.
    #[error(
        "{url}: robots.txt could not be read ({detail}), so the site is treated as disallowed for now"
    )]
    RobotsUnreachable {
        /// The URL asked for.
        url: Url,
        /// What went wrong.
        detail: String,
    },
}

impl FetchError {
    /// True when trying again later may well succeed: rate limiting, server
    /// errors and network trouble. Callers use this to tell "the site is having
    /// a bad day" from "this watch is misconfigured".
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => is_retryable_status(*status),
            Self::Timeout { .. }
            | Self::Connect { .. }
            | Self::Transport { .. }
            | Self::RobotsUnreachable { .. } => true,
            Self::Setup { .. }
            | Self::UnsupportedScheme { .. }
            | Self::Decode { .. }
            | Self::TooManyRedirects { .. }
            | Self::TooLarge { .. }
            | Self::NotHtml { .. }
            | Self::Empty { .. }
            | Self::NotText { .. }
            | Self::RobotsDisallowed { .. } => false,
        }
    }

    /// The URL the failed fetch asked for, if the error is about one.
    pub fn url(&self) -> Option<&Url> {
        match self {
            Self::Setup { .. } => None,
            Self::UnsupportedScheme { url }
            | Self::Status { url, .. }
            | Self::Timeout { url, .. }
            | Self::Connect { url, .. }
            | Self::Transport { url, .. }
            | Self::Decode { url, .. }
            | Self::TooManyRedirects { url, .. }
            | Self::TooLarge { url, .. }
            | Self::NotHtml { url, .. }
            | Self::Empty { url }
            | Self::NotText { url, .. }
            | Self::RobotsDisallowed { url }
            | Self::RobotsUnreachable { url, .. } => Some(url),
        }
    }
}

/// The most specific message in an error's source chain, first letter
/// lowercased. reqwest's own top-level message ("error sending request for
/// url ...") repeats the URL and says nothing about the cause.
pub(super) fn innermost_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    lowercase_first(&current.to_string())
}

pub(super) fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub(super) fn status_line(status: u16) -> String {
    match StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

pub(super) fn attempts_suffix(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

pub(super) fn refused_wait_suffix(wait: Option<Duration>) -> String {
    match wait {
        Some(wait) => format!(
            " and asked to wait {}, longer than allowed",
            human_duration(wait)
        ),
        None => String::new(),
    }
}

pub(super) fn human_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

pub(super) fn human_bytes(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes % KIB == 0 {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// A connection failure's detail, with a failed name lookup said plainly:
/// resolvers word it many ways ("failed to lookup address information",
/// "dns error", "Name or service not known").
fn network_detail(detail: &str) -> String {
    let lower = detail.to_lowercase();
    if lower.contains("lookup address")
        || lower.contains("dns error")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
        || lower.contains("temporary failure in name resolution")
    {
        format!("the host name could not be resolved (DNS: {detail})")
    } else {
        detail.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_name_lookup_is_named_as_one() {
        let url = Url::parse("https://nosuch.example.org/page").expect("url");
        let error = FetchError::Connect {
            url,
            detail: "dns error: failed to lookup address information: Name or service not known"
                .to_owned(),
            attempts: 1,
        };
        let message = error.to_string();
        assert!(
            message.starts_with("https://nosuch.example.org/page: network error: could not connect: the host name could not be resolved (DNS: "),
            "{message}"
        );
        assert!(!message.contains("robots"), "{message}");
    }
}
