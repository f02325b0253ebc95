//! The subscriber's pages: subscribe, confirm, unsubscribe, preferences.
//!
//! Confirming and unsubscribing happen only on POST (mail scanners open
//! every link with GET); every form carries a form token, except the
//! RFC 8058 one-click POST, whose signed link is its credential.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use minijinja::{Value, context};
use serde::Serialize;

use super::{
    CONSENT_SOURCE, Current, DAILY, Link, Page, UNSUBSCRIBE_REASON, WEEKLY, WebState, client_key,
    forms, security, views, with_cookie,
};
use crate::config::{Config, DEFAULT_TIMEZONE, WebSettings};
use crate::core::brief::Briefing;
use crate::core::classify::Kind;
use crate::core::subscriptions;
use crate::core::token::{self, Purpose};
use crate::mail::{MailError, Outgoing};
use crate::store::{Cadence, Subscriber, Suppression};

// ---------------------------------------------------------------------------
// Subscribe and preferences

/// What a subscriber chose in a form.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Choice {
    name: String,
    watches: Vec<String>,
    tags: Vec<String>,
    kinds: Vec<Kind>,
    cadence: Cadence,
}

impl Default for Choice {
    fn default() -> Self {
        Self {
            name: String::new(),
            watches: Vec::new(),
            tags: Vec::new(),
            kinds: Vec::new(),
            cadence: Cadence::Immediate,
        }
    }
}

fn digest(cron: &str) -> Cadence {
    Cadence::Digest {
        cron: cron.to_owned(),
        timezone: DEFAULT_TIMEZONE,
    }
}

/// The form's name for a cadence: `immediate`, `daily`, `weekly`, or
/// `keep` for a schedule an admin set that the form does not offer.
fn cadence_value(cadence: &Cadence) -> &'static str {
    match cadence {
        Cadence::Immediate => "immediate",
        c if *c == digest(DAILY) => "daily",
        c if *c == digest(WEEKLY) => "weekly",
        Cadence::Digest { .. } => "keep",
    }
}

fn describe_cadence(cadence: &Cadence) -> String {
    match cadence_value(cadence) {
        "immediate" => "as soon as a change is seen".to_owned(),
        "daily" => "a daily digest at 08:00 UK time".to_owned(),
        "weekly" => "a weekly digest on Mondays at 08:00 UK time".to_owned(),
        _ => format!(
            "a digest on the schedule {}",
            subscriptions::format_cadence(cadence)
        ),
    }
}

/// Reads the choices from a posted form, refusing anything the form never
/// offers: a page or tag not watched, an unknown kind or cadence.
fn read_choice(
    form: &forms::Form,
    config: &Config,
    current: Option<&Cadence>,
) -> Result<Choice, String> {
    let mut choice = Choice::default();
    for value in form.all("follow") {
        if let Some(tag) = value.strip_prefix("tag:") {
            if !config
                .watches
                .iter()
                .any(|w| w.tags.iter().any(|t| t == tag))
            {
                return Err(format!(
                    "“{tag}” is no longer a partnership we watch. Reload the page and choose again."
                ));
            }
            if !choice.tags.iter().any(|t| t == tag) {
                choice.tags.push(tag.to_owned());
            }
        } else if config.watch(value).is_some() {
            if !choice.watches.iter().any(|w| w == value) {
                choice.watches.push(value.to_owned());
            }
        } else {
            return Err(format!(
                "“{value}” is no longer a page we watch. Reload the page and choose again."
            ));
        }
    }
    for value in form.all("kind") {
        let kind =
            Kind::parse(value).ok_or_else(|| format!("“{value}” is not a kind of change."))?;
        if !choice.kinds.contains(&kind) {
            choice.kinds.push(kind);
        }
    }
    choice.kinds.sort();
    choice.cadence = match form.get("cadence").unwrap_or("immediate") {
        "immediate" => Cadence::Immediate,
        "daily" => digest(DAILY),
        "weekly" => digest(WEEKLY),
        "keep" if current.is_some() => current.cloned().unwrap_or(Cadence::Immediate),
        _ => return Err("Choose how often you want briefings.".to_owned()),
    };
    let name: String = form
        .get("name")
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.chars().count() > 100 {
        return Err("Your name is too long: use at most 100 characters.".to_owned());
    }
    choice.name = name;
    Ok(choice)
}

/// The form's groups, with this choice ticked.
fn groups(config: &Config, choice: &Choice) -> Vec<views::GroupContext> {
    views::follow_groups(config, &choice.tags, &choice.watches)
}

#[derive(Debug, Serialize)]
struct KindContext {
    name: &'static str,
    label: &'static str,
    help: &'static str,
    checked: bool,
}

#[derive(Debug, Serialize)]
struct CadenceContext {
    value: &'static str,
    label: String,
    checked: bool,
}

fn form_context(config: &Config, choice: &Choice, allow_keep: bool) -> Value {
    let kinds: Vec<KindContext> = views::KIND_HELP
        .iter()
        .map(|(kind, label, help)| KindContext {
            name: kind.as_str(),
            label,
            help,
            checked: choice.kinds.contains(kind),
        })
        .collect();
    let chosen = cadence_value(&choice.cadence);
    let mut cadences = vec![
        CadenceContext {
            value: "immediate",
            label: "As soon as a change is seen".to_owned(),
            checked: chosen == "immediate",
        },
        CadenceContext {
            value: "daily",
            label: "Daily digest, at 08:00 UK time".to_owned(),
            checked: chosen == "daily",
        },
        CadenceContext {
            value: "weekly",
            label: "Weekly digest, on Mondays at 08:00 UK time".to_owned(),
            checked: chosen == "weekly",
        },
    ];
    if allow_keep && chosen == "keep" {
        cadences.push(CadenceContext {
            value: "keep",
            label: format!(
                "Keep my current schedule ({})",
                describe_cadence(&choice.cadence)
            ),
            checked: true,
        });
    }
    context! {
        groups => groups(config, choice),
        kinds,
        cadences,
    }
}

/// The subscribe page, blank or with what was posted and an error.
fn subscribe_page(
    state: &WebState,
    current: &Current,
    headers: &HeaderMap,
    status: StatusCode,
    choice: &Choice,
    address: &str,
    error: Option<(&str, String)>,
) -> Page {
    let token = security::form_token(&state.inner.key, &current.web, headers);
    let (error_field, error) = error.map_or((None, None), |(f, e)| (Some(f), Some(e)));
    let ctx = context! {
        title => "Get briefings by email",
        intro => "Choose what you want to hear about. We email you when a page you follow changes, saying what kind of change it was.",
        csrf => token.field,
        preferences => false,
        form => context! { address, name => choice.name },
        error,
        error_field,
        button => "Subscribe",
        ..form_context(&current.config, choice, false)
    };
    let response = state.page(status, "subscribe.html", &current.web, ctx)?;
    Ok(with_cookie(response, token.set_cookie))
}

pub(super) async fn subscribe_form(State(state): State<WebState>, headers: HeaderMap) -> Page {
    let current = state.current();
    subscribe_page(
        &state,
        &current,
        &headers,
        StatusCode::OK,
        &Choice::default(),
        "",
        None,
    )
}

pub(super) async fn subscribe(
    State(state): State<WebState>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let current = state.current();
    let web = &current.web;
    let Some(form) = forms::parse(&headers, &body) else {
        return state.message(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            web,
            "This form could not be read",
            &["Send the form from the subscribe page."],
            &[Link::new(web, "/subscribe", "Subscribe")],
        );
    };
    if security::check_form(
        &state.inner.key,
        web,
        &headers,
        form.get(security::CSRF_FIELD),
    )
    .is_err()
    {
        return state.forbidden_form(web);
    }
    let ip = client_key(web, &headers, peer.as_deref());
    if !state.allow(&state.inner.per_ip, &ip, web.subscribe_per_ip) {
        tracing::info!(client = %ip, "subscribe rate limit reached for a client address");
        return state.too_many(web, web.subscribe_per_ip);
    }
    let typed = form.get("address").unwrap_or("").trim().to_owned();
    let choice = match read_choice(&form, &current.config, None) {
        Ok(choice) => choice,
        Err(message) => {
            return subscribe_page(
                &state,
                &current,
                &headers,
                StatusCode::BAD_REQUEST,
                &Choice::default(),
                &typed,
                Some(("choice", message)),
            );
        }
    };
    let address = match subscriptions::validate_address(&typed) {
        Ok(address) => address,
        Err(reason) => {
            let message = if typed.is_empty() {
                "Enter your email address.".to_owned()
            } else {
                format!(
                    "Enter an email address in the form name@example.org. We cannot send to this one: {reason}."
                )
            };
            return subscribe_page(
                &state,
                &current,
                &headers,
                StatusCode::BAD_REQUEST,
                &choice,
                &typed,
                Some(("address", message)),
            );
        }
    };
    if !state.allow(
        &state.inner.per_address,
        &address.to_lowercase(),
        web.subscribe_per_address,
    ) {
        tracing::info!("subscribe rate limit reached for one email address");
        return state.too_many(web, web.subscribe_per_address);
    }
    state.inner.metrics.record_subscribe_request();

    // From here on the answer is the same whatever the address's state, and
    // so is the work: the same reads, one write, a confirmation composed
    // and handed to the mail task, which drops it when it is not to go out.
    // Only then can the reply's timing not tell who is subscribed.
    let now = Utc::now();
    let suppressed = state.inner.store.suppression(&address)?.is_some();
    let existing = state.inner.store.subscriber(&address)?;
    let send = !(suppressed || existing.as_ref().is_some_and(|s| s.confirmed));
    if !send {
        tracing::debug!("subscribe request for a suppressed or confirmed address; nothing sent");
    }
    {
        let pending = Subscriber {
            address: address.clone(),
            name: choice.name.clone(),
            watches: choice.watches.clone(),
            tags: choice.tags.clone(),
            kinds: choice.kinds.clone(),
            cadence: choice.cadence.clone(),
            confirmed: false,
            consent_at: None,
            consent_source: Some(CONSENT_SOURCE.to_owned()),
            created: existing.as_ref().map_or(now, |s| s.created),
        };
        match (&existing, send) {
            (_, true) => {
                state.inner.store.put_subscriber(&pending)?;
            }
            // The same write, of the record as it is: nothing changes.
            (Some(record), false) => {
                state.inner.store.put_subscriber(record)?;
            }
            // A suppressed address with no record is not given one.
            (None, false) => {}
        }
        send_confirmation(&state, &current, pending, now, send);
    }
    state.message(
        StatusCode::OK,
        web,
        "Check your email",
        &[
            "If we can send briefings to that address, we have sent it a link to confirm. Open the link and press the button to start your briefings; it works for 48 hours.",
            "If you already get briefings, nothing changes: use the preferences link at the bottom of any briefing to change what you get.",
        ],
        &[Link::new(web, "/watches", "See the watched pages")],
    )
}

/// Composes the confirmation mail and sends it in the background, so the
/// reply (and its timing) is the same whether or not a mail goes out.
fn send_confirmation(
    state: &WebState,
    current: &Current,
    subscriber: Subscriber,
    now: DateTime<Utc>,
    send: bool,
) {
    let web = &current.web;
    let link = web.url(&format!(
        "/confirm/{}",
        token::confirm_token(&state.inner.key, &subscriber.address, now)
    ));
    let follows = if subscriber.watches.is_empty() && subscriber.tags.is_empty() {
        "every page".to_owned()
    } else {
        subscriber
            .tags
            .iter()
            .map(|t| format!("all of {t}"))
            .chain(subscriber.watches.iter().cloned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let kinds = if subscriber.kinds.is_empty() {
        "every kind but minor".to_owned()
    } else {
        subscriptions::format_kinds(&subscriber.kinds).replace(';', ", ")
    };
    let ctx = context! {
        name => subscriber.name,
        address => subscriber.address,
        link,
        follows,
        kinds,
        cadence => describe_cadence(&subscriber.cadence),
    };
    let render = |name: &str| {
        state
            .inner
            .templates
            .get_template(name)
            .and_then(|t| t.render(&ctx))
    };
    let briefing = match (render("confirm_mail.txt"), render("confirm_mail.html")) {
        (Ok(text), Ok(html)) => Briefing {
            subject: "Confirm your tidings briefings".to_owned(),
            text,
            html,
        },
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(%error, "confirmation mail failed to render");
            return;
        }
    };
    let settings = current.config.mail.clone();
    let mailer = Arc::clone(&state.inner.mailer);
    let unsubscribe = token::unsubscribe_token(&state.inner.key, &subscriber.address);
    let address = subscriber.address;
    let to_name = subscriber.name;
    // Unique per request: a second confirmation is a new message, not a
    // re-send of the first.
    let key = format!(
        "confirm:{address}:{}",
        now.timestamp_nanos_opt().unwrap_or_default()
    );
    let store = state.inner.store.clone();
    state.inner.mails.spawn(async move {
        if !send {
            return;
        }
        let outgoing = Outgoing {
            to: &address,
            to_name: &to_name,
            briefing: &briefing,
            delivery_key: &key,
            thread_key: None,
            unsubscribe_token: Some(&unsubscribe),
        };
        let result = match crate::mail::build_message(&settings, &outgoing) {
            Ok(message) => mailer.send(&message).await.map(|_| ()),
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => tracing::info!("confirmation mail sent"),
            // Sent at once when the server answers (the person is waiting
            // for it); when it cannot be sent now, it goes into the durable
            // outbox and the delivery worker retries it like a briefing,
            // with the same Message-ID.
            Err(error @ (MailError::Transient(_) | MailError::Auth(_))) => {
                let prepared = crate::store::Prepared {
                    subject: briefing.subject.clone(),
                    text: briefing.text.clone(),
                    html: briefing.html.clone(),
                };
                let queued = tokio::task::spawn_blocking(move || {
                    store
                        .queue_prepared(&key, &address, prepared, Utc::now())
                        .and_then(|_| store.flush())
                })
                .await;
                match queued {
                    Ok(Ok(())) => {
                        tracing::warn!(%error, "confirmation mail not sent now; queued in the outbox");
                    }
                    Ok(Err(store_error)) => {
                        tracing::error!(%error, %store_error, "confirmation mail neither sent nor queued");
                    }
                    Err(join) => tracing::error!(%error, %join, "confirmation mail not queued"),
                }
            }
            Err(error) => tracing::warn!(%error, "confirmation mail not sent"),
        }
    });
}

// ---------------------------------------------------------------------------
// Confirm

pub(super) async fn confirm_page(
    State(state): State<WebState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Page {
    let current = state.current();
    let web = &current.web;
    if let Err(error) = token::verify(&state.inner.key, Purpose::Confirm, &token, Utc::now()) {
        return state.link_problem(web, error);
    }
    let form = security::form_token(&state.inner.key, web, &headers);
    let response = state.page(
        StatusCode::OK,
        "button.html",
        web,
        context! {
            title => "Confirm your briefings",
            paragraphs => ["Press the button to start getting tidings briefings at this address."],
            button => "Confirm my briefings",
            csrf => form.field,
            noindex => true,
        },
    )?;
    Ok(with_cookie(response, form.set_cookie))
}

pub(super) async fn confirm(
    State(state): State<WebState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let current = state.current();
    let web = &current.web;
    let now = Utc::now();
    let address = match token::verify(&state.inner.key, Purpose::Confirm, &token, now) {
        Ok(address) => address,
        Err(error) => return state.link_problem(web, error),
    };
    let field = forms::parse(&headers, &body);
    let field = field.as_ref().and_then(|f| f.get(security::CSRF_FIELD));
    if security::check_form(&state.inner.key, web, &headers, field).is_err() {
        return state.forbidden_form(web);
    }
    let store = &state.inner.store;
    if store.suppression(&address)?.is_some() {
        return state.message(
            StatusCode::OK,
            web,
            "This address is not mailed",
            &["This address asked not to get briefings, so none will be sent. Contact the people who run this service to start again."],
            &[],
        );
    }
    let Some(mut subscriber) = store.subscriber(&address)? else {
        return state.message(
            StatusCode::OK,
            web,
            "This request is no longer open",
            &["It was removed after it was made. Fill in the form again to subscribe."],
            &[Link::new(web, "/subscribe", "Subscribe")],
        );
    };
    if !subscriber.confirmed {
        subscriber.confirmed = true;
        subscriber.consent_at = Some(now);
        subscriber.consent_source = Some(CONSENT_SOURCE.to_owned());
        store.put_subscriber(&subscriber)?;
        store.flush()?;
        tracing::info!("web subscription confirmed");
    }
    let preferences = format!(
        "/preferences/{}",
        token::preferences_token(&state.inner.key, &address)
    );
    state.message(
        StatusCode::OK,
        web,
        "Your briefings are confirmed",
        &[&format!(
            "Briefings will go to {address} ({}).",
            describe_cadence(&subscriber.cadence)
        )],
        &[Link::new(web, &preferences, "Change what you get")],
    )
}

// ---------------------------------------------------------------------------
// Unsubscribe

pub(super) async fn unsubscribe_page(
    State(state): State<WebState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Page {
    let current = state.current();
    let web = &current.web;
    let address = match token::verify(&state.inner.key, Purpose::Unsubscribe, &token, Utc::now()) {
        Ok(address) => address,
        Err(error) => return state.link_problem(web, error),
    };
    let form = security::form_token(&state.inner.key, web, &headers);
    let preferences = format!(
        "/preferences/{}",
        token::preferences_token(&state.inner.key, &address)
    );
    let response = state.page(
        StatusCode::OK,
        "button.html",
        web,
        context! {
            title => "Unsubscribe",
            paragraphs => [format!("Press the button to stop all briefings to {address}. It takes effect at once.")],
            button => "Unsubscribe",
            warning => true,
            csrf => form.field,
            links => [Link::new(web, &preferences, "Change what you get instead")],
            noindex => true,
        },
    )?;
    Ok(with_cookie(response, form.set_cookie))
}

pub(super) async fn unsubscribe(
    State(state): State<WebState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let current = state.current();
    let web = &current.web;
    let address = match token::verify(&state.inner.key, Purpose::Unsubscribe, &token, Utc::now()) {
        Ok(address) => address,
        Err(error) => return state.link_problem(web, error),
    };
    // RFC 8058: a mail provider's one-click POST carries no form token;
    // the signed link is the credential. The button on our own page does.
    let one_click = forms::is_one_click(&headers, &body);
    if !one_click {
        let form = forms::parse(&headers, &body);
        let field = form.as_ref().and_then(|f| f.get(security::CSRF_FIELD));
        if security::check_form(&state.inner.key, web, &headers, field).is_err() {
            return state.forbidden_form(web);
        }
    }
    let store = &state.inner.store;
    store.remove_subscriber(&address)?;
    // Kept separately from the subscriber, so no later import adds the
    // address back.
    store.suppress(&Suppression {
        address: address.clone(),
        reason: UNSUBSCRIBE_REASON.to_owned(),
        at: Utc::now(),
        requested: true,
    })?;
    store.flush()?;
    tracing::info!(one_click, "unsubscribed through the web");
    state.message(
        StatusCode::OK,
        web,
        "You are unsubscribed",
        &[&format!("No more briefings will be sent to {address}.")],
        &[Link::new(web, "/watches", "Watched pages")],
    )
}

// ---------------------------------------------------------------------------
// Preferences

fn preferences_page(
    state: &WebState,
    current: &Current,
    headers: &HeaderMap,
    subscriber: &Subscriber,
    status: StatusCode,
    notice: Option<String>,
) -> Page {
    let web = &current.web;
    let form = security::form_token(&state.inner.key, web, headers);
    let choice = Choice {
        name: subscriber.name.clone(),
        watches: subscriber.watches.clone(),
        tags: subscriber.tags.clone(),
        kinds: subscriber.kinds.clone(),
        cadence: subscriber.cadence.clone(),
    };
    let unsubscribe = format!(
        "/unsubscribe/{}",
        token::unsubscribe_token(&state.inner.key, &subscriber.address)
    );
    let ctx = context! {
        title => "Your briefings",
        intro => notice,
        csrf => form.field,
        preferences => true,
        address => subscriber.address,
        form => context! { name => choice.name },
        button => "Save my choices",
        links => [Link::new(web, &unsubscribe, "Unsubscribe from everything")],
        noindex => true,
        ..form_context(&current.config, &choice, true)
    };
    let response = state.page(status, "subscribe.html", web, ctx)?;
    Ok(with_cookie(response, form.set_cookie))
}

pub(super) async fn preferences_form(
    State(state): State<WebState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Page {
    let current = state.current();
    let web = &current.web;
    let address = match token::verify(&state.inner.key, Purpose::Preferences, &token, Utc::now()) {
        Ok(address) => address,
        Err(error) => return state.link_problem(web, error),
    };
    match state.inner.store.subscriber(&address)? {
        Some(subscriber) if subscriber.confirmed => preferences_page(
            &state,
            &current,
            &headers,
            &subscriber,
            StatusCode::OK,
            None,
        ),
        _ => not_subscribed(&state, web, &address),
    }
}

fn not_subscribed(state: &WebState, web: &WebSettings, address: &str) -> Page {
    state.message(
        StatusCode::OK,
        web,
        "No briefings go to this address",
        &[&format!(
            "{address} is not subscribed, so there is nothing to change."
        )],
        &[Link::new(web, "/subscribe", "Subscribe")],
    )
}

pub(super) async fn preferences(
    State(state): State<WebState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Page {
    let current = state.current();
    let web = &current.web;
    let address = match token::verify(&state.inner.key, Purpose::Preferences, &token, Utc::now()) {
        Ok(address) => address,
        Err(error) => return state.link_problem(web, error),
    };
    let Some(form) = forms::parse(&headers, &body) else {
        return state.forbidden_form(web);
    };
    if security::check_form(
        &state.inner.key,
        web,
        &headers,
        form.get(security::CSRF_FIELD),
    )
    .is_err()
    {
        return state.forbidden_form(web);
    }
    let store = &state.inner.store;
    let Some(mut subscriber) = store.subscriber(&address)?.filter(|s| s.confirmed) else {
        return not_subscribed(&state, web, &address);
    };
    match read_choice(&form, &current.config, Some(&subscriber.cadence)) {
        Ok(choice) => {
            subscriber.name = choice.name;
            subscriber.watches = choice.watches;
            subscriber.tags = choice.tags;
            subscriber.kinds = choice.kinds;
            subscriber.cadence = choice.cadence;
            store.put_subscriber(&subscriber)?;
            store.flush()?;
            tracing::info!("subscriber preferences changed through the web");
            preferences_page(
                &state,
                &current,
                &headers,
                &subscriber,
                StatusCode::OK,
                Some("Your choices are saved.".to_owned()),
            )
        }
        Err(message) => preferences_page(
            &state,
            &current,
            &headers,
            &subscriber,
            StatusCode::BAD_REQUEST,
            Some(message),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tidings.toml");
        std::fs::write(
            &path,
            "[[watch]]\nname = \"lsc-ics\"\nurl = \"https://example.org/a\"\ntags = [\"Lancashire\"]\n\
             [[watch]]\nname = \"wnec\"\nurl = \"https://example.org/b\"\n",
        )
        .expect("write");
        crate::config::load(&path).expect("valid")
    }

    fn form(pairs: &str) -> forms::Form {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().expect("header"),
        );
        forms::parse(&headers, pairs.as_bytes()).expect("form")
    }

    #[test]
    fn choices_are_read_and_anything_not_offered_is_refused() {
        let config = config();
        let choice = read_choice(
            &form("follow=tag%3ALancashire&follow=wnec&follow=wnec&kind=members&kind=boundary&cadence=daily&name=+Ada%0D%0A+L+"),
            &config,
            None,
        )
        .expect("valid");
        assert_eq!(choice.tags, ["Lancashire"]);
        assert_eq!(choice.watches, ["wnec"]);
        assert_eq!(choice.kinds, [Kind::Boundary, Kind::Members]);
        assert_eq!(choice.cadence, digest(DAILY));
        assert_eq!(
            choice.name, "Ada L",
            "control characters and runs of spaces go"
        );
        for bad in [
            "follow=gone",
            "follow=tag%3ANowhere",
            "kind=everything",
            "cadence=hourly",
            "cadence=keep",
        ] {
            assert!(read_choice(&form(bad), &config, None).is_err(), "{bad}");
        }
        let custom = Cadence::Digest {
            cron: "30 7 * * Fri".to_owned(),
            timezone: DEFAULT_TIMEZONE,
        };
        let kept = read_choice(&form("cadence=keep"), &config, Some(&custom)).expect("keep");
        assert_eq!(kept.cadence, custom);
        assert_eq!(cadence_value(&custom), "keep");
        assert_eq!(cadence_value(&digest(WEEKLY)), "weekly");
        assert_eq!(cadence_value(&Cadence::Immediate), "immediate");
    }

    #[test]
    fn the_form_groups_pages_by_partnership_with_untagged_last() {
        let config = config();
        let choice = Choice {
            watches: vec!["wnec".to_owned()],
            ..Choice::default()
        };
        let groups = groups(&config, &choice);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].tag.as_deref(), Some("Lancashire"));
        assert_eq!(groups[1].name, "Other pages");
        assert!(groups[1].open && groups[1].pages[0].checked);
    }
}
