//! The config file as serde reads it, before validation: every field optional
//! and `Spanned`, so that errors can name the line. `deny_unknown_fields`
//! everywhere, so a misspelt key is an error, not a silent default.

use serde::Deserialize;
use toml::Spanned;

/// A string or a list of strings: `select = "main"` or `select = ["a", "b"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub(super) state_dir: Option<Spanned<String>>,
    pub(super) contact: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) defaults: RawDefaults,
    #[serde(default)]
    pub(super) daemon: RawDaemonSettings,
    #[serde(default)]
    pub(super) include: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) watch: Vec<RawWatch>,
    pub(super) mail: Option<RawMail>,
    pub(super) web: Option<RawWeb>,
    #[serde(default)]
    pub(super) store: super::store::RawStore,
    /// `[tags.NAME]`: what people call a tag.
    #[serde(default)]
    pub(super) tags: std::collections::BTreeMap<String, RawTag>,
}

/// `[tags.NAME]`: a tag's human title.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTag {
    pub(super) title: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) concurrency: Option<Spanned<i64>>,
    pub(super) per_host: Option<Spanned<i64>>,
    pub(super) connect_timeout: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) max_body_bytes: Option<Spanned<i64>>,
    pub(super) max_redirects: Option<Spanned<i64>>,
    pub(super) retries: Option<Spanned<i64>>,
    pub(super) diff_timeout: Option<Spanned<String>>,
    pub(super) per_host_interval: Option<Spanned<String>>,
    pub(super) confirm_after: Option<Spanned<i64>>,
    pub(super) max_depth: Option<Spanned<i64>>,
    pub(super) max_blocks: Option<Spanned<i64>>,
    pub(super) max_diff_changes: Option<Spanned<i64>>,
    pub(super) page_deadline: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemonSettings {
    pub(super) shutdown_deadline: Option<Spanned<String>>,
    pub(super) alert_after_failures: Option<Spanned<i64>>,
    pub(super) max_jitter: Option<Spanned<String>>,
    pub(super) backoff_base: Option<Spanned<String>>,
    pub(super) backoff_max: Option<Spanned<String>>,
    pub(super) admin_email: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub(super) schedule: Option<Spanned<String>>,
    pub(super) timezone: Option<Spanned<String>>,
    pub(super) main_content: Option<bool>,
    pub(super) robots: Option<bool>,
    pub(super) exclude: Option<Spanned<OneOrMany>>,
    pub(super) ignore: Option<Spanned<OneOrMany>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatchFile {
    #[serde(default)]
    pub(super) watch: Vec<RawWatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatch {
    pub(super) name: Spanned<String>,
    pub(super) title: Option<Spanned<String>>,
    pub(super) url: Spanned<String>,
    pub(super) schedule: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) tags: Vec<String>,
    pub(super) select: Option<Spanned<OneOrMany>>,
    pub(super) exclude: Option<Spanned<OneOrMany>>,
    pub(super) ignore: Option<Spanned<OneOrMany>>,
    pub(super) main_content: Option<bool>,
    pub(super) robots: Option<bool>,
    #[serde(default)]
    pub(super) fact: Vec<RawFactRule>,
    #[serde(default)]
    pub(super) allow_redirects_to: Vec<Spanned<String>>,
}

/// `[[watch.fact]]`: a named regex whose first group (or whole match) is a
/// fact worth tracking on this page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFactRule {
    pub(super) name: Spanned<String>,
    pub(super) regex: Option<Spanned<String>>,
    pub(super) select: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMail {
    pub(super) from: Option<Spanned<String>>,
    pub(super) list_id: Option<Spanned<String>>,
    pub(super) unsubscribe_url: Option<Spanned<String>>,
    pub(super) transport: Option<Spanned<String>>,
    pub(super) dir: Option<Spanned<String>>,
    pub(super) host: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<i64>>,
    pub(super) tls: Option<Spanned<String>>,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password_file: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) pool_size: Option<Spanned<i64>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) templates: Option<Spanned<String>>,
    pub(super) max_per_second: Option<Spanned<i64>>,
    pub(super) retry_base: Option<Spanned<String>>,
    pub(super) retry_max: Option<Spanned<String>>,
    pub(super) give_up_after: Option<Spanned<String>>,
    pub(super) keep_finished: Option<Spanned<String>>,
    pub(super) replies_handled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) enabled: Option<Spanned<bool>>,
    pub(super) listen: Option<Spanned<String>>,
    pub(super) base_url: Option<Spanned<String>>,
    pub(super) secret_file: Option<Spanned<String>>,
    pub(super) trust_forwarded: Option<bool>,
    pub(super) subscribe_per_ip: Option<Spanned<i64>>,
    pub(super) subscribe_per_address: Option<Spanned<i64>>,
    pub(super) operator: Option<RawOperator>,
    pub(super) privacy_url: Option<Spanned<String>>,
    pub(super) privacy_text: Option<Spanned<String>>,
}

/// `[web.operator]`: who runs this service and how to reach them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperator {
    pub(super) name: Option<Spanned<String>>,
    pub(super) contact: Option<Spanned<String>>,
}
