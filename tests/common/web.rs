//! The web server in-process on loopback, for tests/web.rs and
//! tests/browser.rs: a config file with a `[web]` section and `.eml` mail in
//! a temporary directory, a store, and `web::serve` on 127.0.0.1:0 (so the
//! base URL is known before the config is written).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tidings::config::{self, Config};
use tidings::core::diff::DiffOptions;
use tidings::core::metrics::Metrics;
use tidings::core::token::TokenKey;
use tidings::fetch::Validators;
use tidings::mail::Mailer;
use tidings::service::pipeline::{self, FetchedPage, Outcome};
use tidings::store::Store;
use tidings::web::{self, WebError, WebState};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The secret the harness signs with.
pub const SECRET: &str = "test secret, not random, at least thirty-two bytes long";

/// A running server and everything around it.
pub struct Harness {
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub store: Store,
    pub state: WebState,
    pub config: Arc<Config>,
    pub key: TokenKey,
    pub metrics: Arc<Metrics>,
    pub mailer: Arc<Mailer>,
    /// Where confirmation mails land as `.eml` files.
    pub mail_dir: PathBuf,
    shutdown: CancellationToken,
    server: Option<JoinHandle<Result<(), WebError>>>,
}

/// A config with `[web]` at `base`, `.eml` mail in `mail/`, and `rest`
/// (watches, extra `[web]` keys go in `web_extra`).
pub fn config_text(base: &str, web_extra: &str, rest: &str) -> String {
    format!(
        "state_dir = \"state\"\ncontact = \"tests@example.org\"\n\n\
         [limits]\nretries = 0\nper_host_interval = \"0s\"\nconnect_timeout = \"2s\"\ntimeout = \"10s\"\n\n\
         [mail]\nfrom = \"Briefings <briefings@example.org>\"\ntransport = \"file\"\ndir = \"mail\"\n\n\
         [web]\nenabled = true\nbase_url = \"{base}\"\nsecret_file = \"web.secret\"\n{web_extra}\n\n{rest}"
    )
}

/// `[[watch]]` tables for (name, url, tags).
pub fn watches_toml(watches: &[(&str, &str, &[&str])]) -> String {
    watches
        .iter()
        .map(|(name, url, tags)| {
            let tags: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
            format!(
                "[[watch]]\nname = {name:?}\nurl = {url:?}\ntags = [{}]\n\n",
                tags.join(", ")
            )
        })
        .collect()
}

impl Harness {
    /// Starts a server with these watches and extra `[web]` lines.
    pub async fn start(watches: &str, web_extra: &str) -> Self {
        Self::start_on(watches, web_extra, "").await
    }

    /// Starts a server whose config also has `store_toml` (a `[store]`
    /// section: several servers can share one PostgreSQL store).
    pub async fn start_on(watches: &str, web_extra: &str, store_toml: &str) -> Self {
        let watches = format!("{store_toml}\n{watches}");
        let watches = watches.as_str();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let path = dir.path().join("tidings.toml");
        std::fs::write(&path, config_text(&base, web_extra, watches)).expect("config");
        std::fs::write(dir.path().join("web.secret"), SECRET).expect("secret");
        let config = Arc::new(config::load(&path).unwrap_or_else(|e| panic!("config: {e}")));
        let web_settings = config.web.clone().expect("web enabled");
        std::fs::create_dir_all(&config.state_dir).expect("state dir");
        let store = Store::open_configured(&config, true).expect("store");
        let key = TokenKey::from_file(&web_settings.secret_file).expect("key");
        let mailer = Arc::new(Mailer::new(&config.mail, &config.state_dir).expect("mailer"));
        let metrics = Arc::new(Metrics::new());
        let state = WebState::new(
            store.clone(),
            Arc::clone(&config),
            Arc::clone(&mailer),
            key.clone(),
            Arc::clone(&metrics),
        )
        .expect("state");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(web::serve(state.clone(), listener, shutdown.clone()));
        Self {
            mail_dir: dir.path().join("mail"),
            dir,
            base,
            store,
            state,
            config,
            key,
            metrics,
            mailer,
            shutdown,
            server: Some(server),
        }
    }

    /// The absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Applies a page's HTML to a watch, as a check that fetched it would.
    pub fn apply(&self, watch: &str, html: &str) -> Outcome {
        let watch = self.config.watch(watch).expect("watch in config");
        let page = FetchedPage {
            html,
            fetched_at: Utc::now(),
            validators: Validators::default(),
            audience: None,
        };
        pipeline::apply_page(
            &self.store,
            &watch.name,
            &watch.rules,
            &watch.facts,
            &page,
            &DiffOptions::default(),
        )
        .expect("apply")
    }

    /// The `.eml` files written so far, oldest first.
    pub fn mails(&self) -> Vec<String> {
        eml_files(&self.mail_dir)
    }

    /// Waits until at least `count` mails are written.
    pub async fn wait_for_mails(&self, count: usize) -> Vec<String> {
        wait_for_eml(&self.mail_dir, count).await
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("server stops within 10 s")
                .expect("server task");
            result.expect("server ran cleanly");
        }
    }
}

/// The `.eml` files in a directory, oldest first.
pub fn eml_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| {
            let at = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (at, p)
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|(_, p)| std::fs::read_to_string(p).expect("eml"))
        .collect()
}

/// Waits (at most 10 s) for `count` `.eml` files in `dir`.
pub async fn wait_for_eml(dir: &Path, count: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mails = eml_files(dir);
        if mails.len() >= count || tokio::time::Instant::now() >= deadline {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A message's text with quoted-printable soft line breaks and `=3D`
/// undone, and base64 parts decoded, so links can be searched for.
pub fn readable(eml: &str) -> String {
    use base64::Engine as _;
    let mut out = eml.replace("=\r\n", "").replace("=3D", "=");
    // Base64 parts: decode each run of base64 lines after a blank line.
    for part in eml.split("Content-Transfer-Encoding: base64") {
        if let Some((_, body)) = part.split_once("\r\n\r\n") {
            let encoded: String = body
                .lines()
                .take_while(|l| !l.is_empty() && !l.starts_with("--"))
                .collect();
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded.trim())
                && let Ok(text) = String::from_utf8(bytes)
            {
                out.push('\n');
                out.push_str(&text);
            }
        }
    }
    out
}

/// The first link in a message whose path starts with `prefix` (e.g.
/// `/confirm/`).
pub fn link(eml: &str, prefix: &str) -> Option<String> {
    let text = readable(eml);
    let pattern = format!(
        r#"https?://[^\s"<>]+{}[A-Za-z0-9_~.-]+"#,
        regex::escape(prefix)
    );
    regex::Regex::new(&pattern)
        .expect("regex")
        .find(&text)
        .map(|m| m.as_str().to_owned())
}
