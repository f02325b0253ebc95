//! The optional HTTP server: self-service subscriptions, a page per change,
//! the list of watched pages, Atom feeds, `/healthz` and `/metrics`.
//!
//! Server-rendered HTML (minijinja, autoescaped, one layout, no script),
//! meant to sit on loopback behind a reverse proxy that terminates TLS. It
//! reads the store, and writes only subscriber and suppression records.
//! There is no admin action over HTTP: those stay in the CLI.
//!
//! # Wiring it into the daemon
//!
//! ```ignore
//! if let Some(web_settings) = &config.web {
//!     let key = tidings::core::token::TokenKey::from_file(&web_settings.secret_file)?;
//!     let state = tidings::web::WebState::new(
//!         store.clone(),            // Store is a cheap Clone
//!         Arc::new(config.clone()), // the whole validated Config
//!         Arc::clone(&mailer),      // for confirmation mails
//!         key.clone(),              // the delivery worker signs unsubscribe links with it too
//!         Arc::clone(&metrics),     // the same Metrics the pipeline and worker count into
//!     )?;
//!     let listener = tokio::net::TcpListener::bind(web_settings.listen).await?;
//!     let shutdown = tokio_util::sync::CancellationToken::new();
//!     let server = tokio::spawn(tidings::web::serve(state.clone(), listener, shutdown.clone()));
//!     // SIGHUP with a valid config: state.set_config(Arc::new(new_config));
//!     //   (a changed `listen` needs a restart; everything else applies at once)
//!     // SIGTERM: shutdown.cancel(); then await `server` within the drain deadline.
//! }
//! ```
//!
//! Briefings link to a change with `web_settings.url(&web::change_path(watch, version))`,
//! and to one-click unsubscribe through `[mail] unsubscribe_url` (derived from
//! `base_url` by the config) with `token::unsubscribe_token(&key, address)`.
//!
//! # Security
//!
//! - Confirming and unsubscribing happen only on POST: mail scanners (NHSmail,
//!   Outlook) open every link with GET. GET shows a button.
//! - Every form carries a signed double-submit token (cookie + hidden field,
//!   `SameSite=Strict`), and a form whose `Origin` is another site is refused.
//!   RFC 8058 one-click POSTs need no form token: the signed link is the
//!   credential.
//! - `/subscribe` is rate-limited per client address and per email address;
//!   the reply is the same whatever the address's state, and the
//!   confirmation mail is sent in the background so timing does not tell
//!   either.
//! - Security headers on every response (see [`security::CSP`]), a 16 KiB
//!   body limit, and strict address validation.

mod forms;
mod history;
mod security;
mod subscribers;
mod views;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use minijinja::{Environment, Value, context};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, WebSettings};
use crate::core::metrics::Metrics;
use crate::core::token::{TokenError, TokenKey};
use crate::mail::Mailer;
use crate::store::{Store, StoreError};

pub use views::change_path;

/// The largest request body accepted. The biggest form (preferences with
/// every page ticked) is a few KiB even with a thousand watches' names.
pub const BODY_LIMIT: usize = 16 * 1024;
/// What subscribers created on the web record as their consent source.
pub const CONSENT_SOURCE: &str = "web form";
/// The reason recorded with a suppression made by an unsubscribe.
pub const UNSUBSCRIBE_REASON: &str = "unsubscribed through the web link";
/// Unconfirmed web subscriptions older than this are removed.
const UNCONFIRMED_TTL: chrono::Duration = chrono::Duration::days(7);
/// How long `serve` waits for confirmation mails still being sent when it
/// stops.
const MAIL_DRAIN: Duration = Duration::from_secs(10);
/// The digest schedules the forms offer, UK time.
const DAILY: &str = "0 8 * * *";
const WEEKLY: &str = "0 8 * * Mon";

/// The server could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The config has no enabled `[web]` section.
    #[error(
        "the web server is not enabled: set [web] enabled = true with base_url and secret_file"
    )]
    NotEnabled,
    /// A template did not compile (a bug: they are embedded and tested).
    #[error("web template {name}: {message}")]
    Template {
        /// The template.
        name: &'static str,
        /// minijinja's message.
        message: String,
    },
    /// The listener failed.
    #[error("web server: {0}")]
    Serve(#[from] std::io::Error),
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("base_url", &self.current().web.base_url.as_str())
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Store,
    current: RwLock<Current>,
    mailer: Arc<Mailer>,
    key: TokenKey,
    metrics: Arc<Metrics>,
    templates: Environment<'static>,
    per_ip: Mutex<security::Buckets>,
    per_address: Mutex<security::Buckets>,
    /// Confirmation mails being sent.
    mails: TaskTracker,
}

/// The config in force, swapped whole on reload.
#[derive(Clone)]
struct Current {
    config: Arc<Config>,
    web: WebSettings,
}

impl WebState {
    /// The server's state. Fails when `config.web` is `None`.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        mailer: Arc<Mailer>,
        key: TokenKey,
        metrics: Arc<Metrics>,
    ) -> Result<Self, WebError> {
        let web = config.web.clone().ok_or(WebError::NotEnabled)?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                current: RwLock::new(Current { config, web }),
                mailer,
                key,
                metrics,
                templates: templates()?,
                per_ip: Mutex::default(),
                per_address: Mutex::default(),
                mails: TaskTracker::new(),
            }),
        })
    }

    /// Swaps in a reloaded config: new watches, tags, base URL and limits
    /// apply to the next request. A config without `[web]` keeps the old
    /// web settings (stopping the server is the daemon's decision), and a
    /// changed `listen` needs a restart.
    pub fn set_config(&self, config: Arc<Config>) {
        let mut current = self
            .inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(web) = &config.web {
            current.web = web.clone();
        }
        current.config = config;
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.current().config)
    }

    fn current(&self) -> Current {
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The routes, with the body limit and security headers, for serving
    /// or for calling in-process.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(index))
            .route("/style.css", get(stylesheet))
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .route(
                "/subscribe",
                get(subscribers::subscribe_form).post(subscribers::subscribe),
            )
            .route(
                "/confirm/{token}",
                get(subscribers::confirm_page).post(subscribers::confirm),
            )
            .route(
                "/unsubscribe/{token}",
                get(subscribers::unsubscribe_page).post(subscribers::unsubscribe),
            )
            .route(
                "/preferences/{token}",
                get(subscribers::preferences_form).post(subscribers::preferences),
            )
            .route("/privacy", get(privacy_page))
            .route("/changes/{id}", get(change_page))
            .route("/watches", get(watches_page))
            .route("/watches/{name}", get(history::history_page))
            .route("/watches/{name}/compare", get(history::compare_page))
            .route("/feed.atom", get(feed_all))
            .route("/tags/{tag}/feed.atom", get(feed_tag))
            .route("/watches/{name}/feed.atom", get(feed_watch))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(axum::middleware::map_response(
                |mut response: Response| async move {
                    security::add_security_headers(response.headers_mut());
                    response
                },
            ))
            .with_state(self.clone())
    }

    /// Renders a page with the layout's common values.
    fn render(&self, name: &str, web: &WebSettings, ctx: Value) -> Result<String, Failure> {
        let template = self.inner.templates.get_template(name)?;
        let operator = web.operator.as_ref();
        let contact = operator.and_then(|o| o.contact.as_deref());
        Ok(template.render(context! {
            base => web.base_path(),
            operator => operator.map(|o| o.name.as_str()),
            operator_contact => contact,
            operator_contact_href => contact.map(contact_href),
            privacy_href => web.privacy_href(),
            ..ctx
        })?)
    }

    fn page(
        &self,
        status: StatusCode,
        name: &str,
        web: &WebSettings,
        ctx: Value,
    ) -> Result<Response, Failure> {
        let body = self.render(name, web, ctx)?;
        Ok(html(status, body))
    }

    fn message(
        &self,
        status: StatusCode,
        web: &WebSettings,
        title: &str,
        paragraphs: &[&str],
        links: &[Link],
    ) -> Result<Response, Failure> {
        let mut response = self.page(
            status,
            "message.html",
            web,
            context! { title, paragraphs, links, noindex => true },
        )?;
        no_store(&mut response);
        Ok(response)
    }

    /// The page for a link that does not work.
    fn link_problem(&self, web: &WebSettings, error: TokenError) -> Result<Response, Failure> {
        let subscribe = Link::new(web, "/subscribe", "Subscribe again");
        match error {
            TokenError::Expired => self.message(
                StatusCode::GONE,
                web,
                "This link has expired",
                &[
                    "Confirmation links work for 48 hours. Fill in the form again and we will send a new one.",
                ],
                &[subscribe],
            ),
            _ => self.message(
                StatusCode::BAD_REQUEST,
                web,
                "This link does not work",
                &[
                    "It may have been cut short when it was copied. Copy the whole link from the email and try again.",
                ],
                &[subscribe],
            ),
        }
    }

    fn forbidden_form(&self, web: &WebSettings) -> Result<Response, Failure> {
        self.message(
            StatusCode::FORBIDDEN,
            web,
            "This form has expired",
            &[
                "The form was open too long, cookies are blocked, or it was sent from another site. Go back, reload the page and try again.",
            ],
            &[],
        )
    }

    fn too_many(&self, web: &WebSettings, per_hour: u32) -> Result<Response, Failure> {
        self.inner.metrics.record_rate_limited();
        let mut response = self.message(
            StatusCode::TOO_MANY_REQUESTS,
            web,
            "Too many requests",
            &["Please wait a while and try again."],
            &[],
        )?;
        let wait = security::retry_after(per_hour).as_secs().to_string();
        if let Ok(value) = HeaderValue::from_str(&wait) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        Ok(response)
    }

    fn allow(&self, buckets: &Mutex<security::Buckets>, key: &str, per_hour: u32) -> bool {
        buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .allow(key, per_hour, Instant::now())
    }
}

/// Serves until `shutdown` is cancelled, then lets requests in flight
/// finish and waits (at most 10 s) for confirmation mails being sent.
/// Requests in flight are not bounded here; the daemon's drain deadline
/// bounds the whole call.
pub async fn serve(
    state: WebState,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), WebError> {
    let address = listener.local_addr().ok();
    tracing::info!(
        listen = ?address,
        base_url = %state.current().web.base_url,
        "web server listening"
    );
    let app = state
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    let pruning = {
        let state = state.clone();
        let shutdown = shutdown.clone();
        state.inner.mails.clone().spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = every.tick() => prune_unconfirmed(&state.inner.store, Utc::now()),
                }
            }
        })
    };
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    shutdown.cancel();
    let _ = pruning.await;
    state.inner.mails.close();
    if tokio::time::timeout(MAIL_DRAIN, state.inner.mails.wait())
        .await
        .is_err()
    {
        tracing::warn!("confirmation mails still being sent at shutdown were abandoned");
    }
    tracing::info!("web server stopped");
    result.map_err(WebError::Serve)
}

/// Removes web subscriptions that were never confirmed, once their link
/// has long expired: they are personal data with no consent behind them.
fn prune_unconfirmed(store: &Store, now: DateTime<Utc>) {
    let subscribers = match store.subscribers() {
        Ok(subscribers) => subscribers,
        Err(error) => {
            tracing::warn!(%error, "cannot list subscribers to prune unconfirmed ones");
            return;
        }
    };
    let mut removed = 0;
    for subscriber in subscribers {
        if !subscriber.confirmed
            && subscriber.consent_source.as_deref() == Some(CONSENT_SOURCE)
            && subscriber.created + UNCONFIRMED_TTL < now
            && store.remove_subscriber(&subscriber.address).is_ok()
        {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed unconfirmed web subscriptions");
    }
}

fn templates() -> Result<Environment<'static>, WebError> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    // HTML escaping for every .html template, said explicitly so that a
    // renamed template cannot lose it unnoticed.
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    let sources: [(&'static str, &'static str); 13] = [
        ("base.html", include_str!("templates/base.html")),
        ("index.html", include_str!("templates/index.html")),
        ("message.html", include_str!("templates/message.html")),
        ("button.html", include_str!("templates/button.html")),
        ("subscribe.html", include_str!("templates/subscribe.html")),
        ("change.html", include_str!("templates/change.html")),
        ("watches.html", include_str!("templates/watches.html")),
        ("privacy.html", include_str!("templates/privacy.html")),
        ("history.html", include_str!("templates/history.html")),
        ("compare.html", include_str!("templates/compare.html")),
        (
            "compare_form.html",
            include_str!("templates/compare_form.html"),
        ),
        (
            "confirm_mail.txt",
            include_str!("templates/confirm_mail.txt"),
        ),
        (
            "confirm_mail.html",
            include_str!("templates/confirm_mail.html"),
        ),
    ];
    for (name, source) in sources {
        env.add_template(name, source)
            .map_err(|e| WebError::Template {
                name,
                message: e.to_string(),
            })?;
    }
    Ok(env)
}

const STYLESHEET: &str = include_str!("templates/style.css");

// ---------------------------------------------------------------------------
// Responses

/// A failure inside a handler: logged, and answered with a plain 500 that
/// says nothing about the cause.
#[derive(Debug)]
enum Failure {
    Store(StoreError),
    Template(minijinja::Error),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<minijinja::Error> for Failure {
    fn from(error: minijinja::Error) -> Self {
        Self::Template(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match &self {
            Self::Store(error) => tracing::error!(%error, "web request failed"),
            Self::Template(error) => tracing::error!(%error, "web page failed to render"),
        }
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Something went wrong on our side. Please try again later.\n",
        )
            .into_response()
    }
}

type Page = Result<Response, Failure>;

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Pages reached with a token or carrying a form token must not be kept by
/// caches or shown again from history.
fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::HeaderName::from_static("x-robots-tag"),
        HeaderValue::from_static("noindex, nofollow"),
    );
}

fn with_cookie(mut response: Response, set_cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = set_cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    no_store(&mut response);
    response
}

#[derive(Debug, Serialize)]
struct Link {
    href: String,
    text: &'static str,
}

impl Link {
    fn new(web: &WebSettings, path: &str, text: &'static str) -> Self {
        Self {
            href: format!("{}{path}", web.base_path()),
            text,
        }
    }
}

/// A link to a contact: a web address as it is, an email address as a
/// `mailto:` link.
fn contact_href(contact: &str) -> String {
    if contact.starts_with("https://") || contact.starts_with("http://") {
        contact.to_owned()
    } else {
        format!("mailto:{contact}")
    }
}

/// The rate-limit key of the client: its address (or IPv6 /64).
fn client_key(
    web: &WebSettings,
    headers: &HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
) -> String {
    security::client_ip(headers, peer.map(|c| c.0), web.trust_forwarded)
        .map_or_else(|| "unknown".to_owned(), security::ip_key)
}

// ---------------------------------------------------------------------------
// Simple pages

async fn index(State(state): State<WebState>) -> Page {
    let current = state.current();
    let watches = current.config.watches.len();
    state.page(
        StatusCode::OK,
        "index.html",
        &current.web,
        context! { title => "tidings", watches },
    )
}

/// The privacy notice, when `[web] privacy_text` gives one.
async fn privacy_page(State(state): State<WebState>) -> Page {
    let web = state.current().web;
    let Some(crate::config::Privacy::Text(text)) = &web.privacy else {
        return not_found(State(state.clone())).await;
    };
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    state.page(
        StatusCode::OK,
        "privacy.html",
        &web,
        context! { title => "Privacy notice", paragraphs },
    )
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn healthz() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        "ok\n",
    )
        .into_response()
}

async fn metrics(State(state): State<WebState>) -> Page {
    // A store that cannot be read fails the scrape, which is itself the
    // signal an operator wants.
    let outbox_depth = state.inner.store.outbox_depth()?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        state.inner.metrics.render_prometheus(outbox_depth),
    )
        .into_response())
}

async fn not_found(State(state): State<WebState>) -> Page {
    let web = state.current().web;
    state.message(
        StatusCode::NOT_FOUND,
        &web,
        "Page not found",
        &["There is no page at this address."],
        &[
            Link::new(&web, "/watches", "Watched pages"),
            Link::new(&web, "/subscribe", "Subscribe"),
        ],
    )
}

// ---------------------------------------------------------------------------
// Changes, watches, feeds

async fn change_page(State(state): State<WebState>, Path(id): Path<String>) -> Page {
    let current = state.current();
    let web = &current.web;
    let Some((watch, number)) = views::parse_change_id(&id) else {
        return not_found(State(state.clone())).await;
    };
    let Some(record) = state.inner.store.change(watch, number)? else {
        return not_found(State(state.clone())).await;
    };
    let previous_seen = state
        .inner
        .store
        .version(watch, record.from_version)?
        .map(|v| v.seen_at);
    let view = views::change_view(web, &current.config, watch, &record, previous_seen);
    let title = format!("{}: change seen {}", view.page_title, view.seen);
    state.page(
        StatusCode::OK,
        "change.html",
        web,
        context! { title, ..Value::from_serialize(&view) },
    )
}

async fn watches_page(State(state): State<WebState>) -> Page {
    let current = state.current();
    let (groups, count) = views::watch_groups(&state.inner.store, &current.config, &current.web)?;
    state.page(
        StatusCode::OK,
        "watches.html",
        &current.web,
        context! { title => "Watched pages", groups, count },
    )
}

fn atom(state: &WebState, scope: &views::FeedScope<'_>) -> Page {
    let current = state.current();
    let feed = views::feed(&state.inner.store, &current.config, &current.web, scope)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/atom+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        crate::core::feed::render(&feed),
    )
        .into_response())
}

async fn feed_all(State(state): State<WebState>) -> Page {
    atom(&state, &views::FeedScope::All)
}

async fn feed_tag(State(state): State<WebState>, Path(tag): Path<String>) -> Page {
    let known = state
        .current()
        .config
        .watches
        .iter()
        .any(|w| w.tags.contains(&tag));
    if !known {
        return not_found(State(state)).await;
    }
    atom(&state, &views::FeedScope::Tag(&tag))
}

async fn feed_watch(State(state): State<WebState>, Path(name): Path<String>) -> Page {
    if state.current().config.watch(&name).is_none() {
        return not_found(State(state)).await;
    }
    atom(&state, &views::FeedScope::Watch(&name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Cadence, Subscriber};

    fn subscriber(address: &str, confirmed: bool, source: &str, age_days: i64) -> Subscriber {
        Subscriber {
            address: address.to_owned(),
            name: String::new(),
            watches: Vec::new(),
            tags: Vec::new(),
            kinds: Vec::new(),
            cadence: Cadence::Immediate,
            confirmed,
            consent_at: None,
            consent_source: Some(source.to_owned()),
            created: Utc::now() - chrono::Duration::days(age_days),
        }
    }

    #[test]
    fn only_stale_unconfirmed_web_subscriptions_are_pruned() {
        let store = Store::temporary().expect("store");
        for s in [
            subscriber("old@example.org", false, CONSENT_SOURCE, 8),
            subscriber("new@example.org", false, CONSENT_SOURCE, 1),
            subscriber("done@example.org", true, CONSENT_SOURCE, 30),
            subscriber("admin@example.org", false, "csv-import", 30),
        ] {
            store.put_subscriber(&s).expect("put");
        }
        prune_unconfirmed(&store, Utc::now());
        let left: Vec<String> = store
            .subscribers()
            .expect("list")
            .into_iter()
            .map(|s| s.address)
            .collect();
        assert_eq!(
            left,
            ["admin@example.org", "done@example.org", "new@example.org"]
        );
    }

    #[test]
    fn the_embedded_templates_compile() {
        templates().expect("templates compile");
    }
}
