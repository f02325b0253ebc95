//! The web server's handlers, in-process: `web::serve` on a loopback port,
//! driven with reqwest, confirmation mail caught as `.eml` files.
//!
//! What must hold: GET never confirms or unsubscribes (mail scanners open
//! every link); POST does; RFC 8058 one-click works without a form token;
//! forms without a matching token are refused; rate limits answer 429; the
//! reply to a subscribe request is the same whatever the address's state;
//! every response carries the security headers; page text is escaped.
//!
//! Every scenario with a server runs on sled (`NAME::sled`) and on a
//! PostgreSQL database of its own (`NAME::postgres`, skipped with a printed
//! reason without PostgreSQL).

#[path = "common/web.rs"]
mod harness;
#[macro_use]
#[path = "common/pg.rs"]
mod pg;

use harness::{Harness, link, watches_toml};
use pg::Backend;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use tidings::core::token;
use tidings::service::pipeline::Outcome;
use tidings::store::{Cadence, Subscriber, Suppression};

/// A client that keeps the one cookie the server sets, as a browser would.
struct Client {
    http: reqwest::Client,
    cookie: Option<String>,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Client {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookie: None,
        }
    }

    async fn reply(&mut self, request: reqwest::RequestBuilder) -> Reply {
        let request = match &self.cookie {
            Some(cookie) => request.header(header::COOKIE, cookie),
            None => request,
        };
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(set) = headers.get(header::SET_COOKIE) {
            let pair = set
                .to_str()
                .expect("ascii")
                .split(';')
                .next()
                .expect("pair");
            self.cookie = Some(pair.to_owned());
        }
        Reply {
            status,
            headers,
            body: response.text().await.expect("body"),
        }
    }

    async fn get(&mut self, url: &str) -> Reply {
        let request = self.http.get(url);
        self.reply(request).await
    }

    async fn post(&mut self, url: &str, fields: &[(&str, &str)]) -> Reply {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        self.reply(request).await
    }

    /// GETs a form page and POSTs `fields` to it with its form token.
    async fn submit(&mut self, url: &str, fields: &[(&str, &str)]) -> Reply {
        let page = self.get(url).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let csrf = csrf_in(&page.body);
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(url, &all).await
    }
}

fn csrf_in(html: &str) -> String {
    regex::Regex::new(r#"name="csrf" value="([0-9a-f]+)""#)
        .expect("regex")
        .captures(html)
        .unwrap_or_else(|| panic!("no form token in {html}"))[1]
        .to_owned()
}

/// minijinja's HTML escaping writes `/` as `&#x2f;`; browsers read both
/// the same.
fn unescape_slashes(html: &str) -> String {
    html.replace("&#x2f;", "/")
}

on_both_backends!(
    async
    subscribing_sends_a_link_that_only_a_post_confirms,
    get_never_unsubscribes_and_the_button_does,
    one_click_unsubscribe_needs_no_form_token,
    forms_without_a_matching_token_are_refused,
    subscribe_is_rate_limited_per_client_and_per_address,
    the_reply_is_the_same_whatever_the_address_state,
    bad_addresses_are_refused_with_a_clear_message,
    every_response_carries_the_security_headers_and_bodies_are_capped,
    the_change_page_shows_facts_and_an_escaped_diff,
    feeds_are_atom_with_the_right_entries,
    metrics_and_health,
    preferences_are_prefilled_and_saved,
    broken_and_expired_links_explain_themselves,
    a_confirmation_that_cannot_be_sent_now_waits_in_the_outbox,
);

const LANCS: &str = "Lancashire and South Cumbria";

fn two_watches() -> String {
    watches_toml(&[
        ("lsc-ics", "https://example.org/lsc", &[LANCS]),
        ("wnec", "https://example.org/wnec", &["North Cumbria"]),
    ])
}

/// A server watching [`two_watches`] on `backend`, with these `[web]` lines.
async fn start(backend: &Backend, web_extra: &str) -> Harness {
    Harness::start_on(&two_watches(), web_extra, &backend.store_toml()).await
}

fn confirmed(address: &str) -> Subscriber {
    Subscriber {
        address: address.to_owned(),
        name: "Ada".to_owned(),
        watches: Vec::new(),
        tags: Vec::new(),
        kinds: Vec::new(),
        cadence: Cadence::Immediate,
        confirmed: true,
        consent_at: Some(chrono::Utc::now()),
        consent_source: Some("admin-cli".to_owned()),
        created: chrono::Utc::now(),
    }
}

fn page(places: &[&str], extra: &str) -> String {
    let items: String = places.iter().map(|p| format!("<li>{p}</li>")).collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><title>Partnership</title></head><body><main>\
         <h1>About the partnership</h1>\
         <p>The partnership brings together the NHS, councils and the voluntary sector to plan health and care for local people.</p>\
         <h2>Places</h2><ul>{items}</ul>{extra}</main></body></html>"
    )
}

async fn subscribing_sends_a_link_that_only_a_post_confirms(backend: &Backend) {
    let server = start(backend, "").await;
    let mut client = Client::new();
    let reply = client
        .submit(
            &server.url("/subscribe"),
            &[
                ("address", "Ada.Lovelace@Example.ORG"),
                ("name", "Ada"),
                ("follow", &format!("tag:{LANCS}")),
                ("follow", "wnec"),
                ("kind", "boundary"),
                ("kind", "members"),
                ("cadence", "weekly"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("Check your email"), "{}", reply.body);

    let stored = server
        .store
        .subscriber("Ada.Lovelace@example.org")
        .expect("store")
        .expect("stored unconfirmed");
    assert!(!stored.confirmed);
    assert_eq!(stored.consent_at, None);
    assert_eq!(stored.tags, [LANCS]);
    assert_eq!(stored.watches, ["wnec"]);
    assert_eq!(stored.kinds.len(), 2);
    assert!(matches!(&stored.cadence, Cadence::Digest { cron, .. } if cron == "0 8 * * Mon"));

    let mails = server.wait_for_mails(1).await;
    assert_eq!(mails.len(), 1, "one confirmation mail");
    assert!(
        mails[0].contains("To: Ada <Ada.Lovelace@example.org>"),
        "{}",
        mails[0]
    );
    let confirm = link(&mails[0], "/confirm/").expect("confirm link");
    assert!(confirm.starts_with(&server.base), "{confirm}");

    // A link scanner's GET shows a page and changes nothing.
    for _ in 0..2 {
        let scanned = Client::new().get(&confirm).await;
        assert_eq!(scanned.status, StatusCode::OK);
        assert!(
            scanned.body.contains("Confirm my briefings"),
            "{}",
            scanned.body
        );
    }
    let after_get = server
        .store
        .subscriber("Ada.Lovelace@example.org")
        .expect("store");
    assert!(
        !after_get.expect("still there").confirmed,
        "GET must not confirm"
    );

    // Pressing the button does.
    let done = client.submit(&confirm, &[]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("confirmed"), "{}", done.body);
    let stored = server
        .store
        .subscriber("Ada.Lovelace@example.org")
        .expect("store")
        .expect("stored");
    assert!(stored.confirmed);
    assert!(stored.consent_at.is_some());
    assert_eq!(stored.consent_source.as_deref(), Some("web form"));
    server.stop().await;
}

async fn get_never_unsubscribes_and_the_button_does(backend: &Backend) {
    let server = start(backend, "").await;
    server
        .store
        .put_subscriber(&confirmed("bob@example.org"))
        .expect("put");
    let url = server.url(&format!(
        "/unsubscribe/{}",
        token::unsubscribe_token(&server.key, "bob@example.org")
    ));
    let mut client = Client::new();
    let page = client.get(&url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Unsubscribe"), "{}", page.body);
    assert!(
        server
            .store
            .subscriber("bob@example.org")
            .expect("store")
            .is_some()
    );
    assert!(
        server
            .store
            .suppression("bob@example.org")
            .expect("store")
            .is_none()
    );

    let done = client.post(&url, &[("csrf", &csrf_in(&page.body))]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("You are unsubscribed"), "{}", done.body);
    assert!(
        server
            .store
            .subscriber("bob@example.org")
            .expect("store")
            .is_none()
    );
    let suppression = server
        .store
        .suppression("bob@example.org")
        .expect("store")
        .expect("suppressed");
    assert!(suppression.requested);
    server.stop().await;
}

async fn one_click_unsubscribe_needs_no_form_token(backend: &Backend) {
    let server = start(backend, "").await;
    let http = reqwest::Client::new();
    for (address, content_type, body) in [
        (
            "carol@example.org",
            "application/x-www-form-urlencoded".to_owned(),
            "List-Unsubscribe=One-Click".to_owned(),
        ),
        (
            "dan@example.org",
            "multipart/form-data; boundary=b0undary".to_owned(),
            "--b0undary\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b0undary--\r\n".to_owned(),
        ),
    ] {
        server.store.put_subscriber(&confirmed(address)).expect("put");
        let url = server.url(&format!(
            "/unsubscribe/{}",
            token::unsubscribe_token(&server.key, address)
        ));
        let response = http
            .post(&url)
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::OK, "{address}");
        assert!(server.store.subscriber(address).expect("store").is_none(), "{address}");
        assert!(
            server.store.suppression(address).expect("store").expect("suppressed").requested,
            "{address}"
        );
    }

    // A forged or wrong-purpose token does nothing, even as one-click.
    server
        .store
        .put_subscriber(&confirmed("erin@example.org"))
        .expect("put");
    for bad in [
        "not-a-token".to_owned(),
        token::preferences_token(&server.key, "erin@example.org"),
    ] {
        let response = http
            .post(server.url(&format!("/unsubscribe/{bad}")))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    assert!(
        server
            .store
            .subscriber("erin@example.org")
            .expect("store")
            .is_some()
    );
    server.stop().await;
}

async fn forms_without_a_matching_token_are_refused(backend: &Backend) {
    let server = start(backend, "").await;
    let subscribe = server.url("/subscribe");
    let fields = [("address", "mallory@example.org"), ("cadence", "immediate")];

    // No cookie, no field.
    let reply = Client::new().post(&subscribe, &fields).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);

    // A field from another browser's page, with this browser's cookie.
    let mut other = Client::new();
    let other_csrf = csrf_in(&other.get(&subscribe).await.body);
    let mut client = Client::new();
    client.get(&subscribe).await;
    let mut forged = vec![("csrf", other_csrf.as_str())];
    forged.extend_from_slice(&fields);
    let reply = client.post(&subscribe, &forged).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    // The right token, sent from another site.
    let csrf = csrf_in(&client.get(&subscribe).await.body);
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("csrf", csrf.as_str()), ("address", "mallory@example.org")])
        .finish();
    let response = client
        .http
        .post(&subscribe)
        .header(header::COOKIE, client.cookie.clone().expect("cookie"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "https://evil.example")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    assert!(
        server
            .store
            .subscriber("mallory@example.org")
            .expect("store")
            .is_none()
    );

    // The unsubscribe button without its token (and not a one-click body).
    server
        .store
        .put_subscriber(&confirmed("frank@example.org"))
        .expect("put");
    let url = server.url(&format!(
        "/unsubscribe/{}",
        token::unsubscribe_token(&server.key, "frank@example.org")
    ));
    let reply = Client::new().post(&url, &[("csrf", "00")]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        server
            .store
            .subscriber("frank@example.org")
            .expect("store")
            .is_some()
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(server.mails().is_empty(), "no mail for refused forms");
    server.stop().await;
}

async fn subscribe_is_rate_limited_per_client_and_per_address(backend: &Backend) {
    let server = start(
        backend,
        "trust_forwarded = true\nsubscribe_per_ip = 3\nsubscribe_per_address = 1",
    )
    .await;
    let subscribe = server.url("/subscribe");
    let mut client = Client::new();
    let csrf = csrf_in(&client.get(&subscribe).await.body);
    let post = |client: &mut Client, address: &str, from: &str| {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("csrf", csrf.as_str()), ("address", address)])
            .finish();
        let request = client
            .http
            .post(&subscribe)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-forwarded-for", format!("198.51.100.7, {from}"))
            .body(body);
        let cookie = client.cookie.clone();
        async move {
            let response = request
                .header(header::COOKIE, cookie.expect("cookie"))
                .send()
                .await
                .expect("post");
            let status = response.status();
            let retry = response.headers().get(header::RETRY_AFTER).cloned();
            (status, retry)
        }
    };
    assert_eq!(
        post(&mut client, "a@example.org", "203.0.113.1").await.0,
        StatusCode::OK
    );
    let (status, retry) = post(&mut client, "a@example.org", "203.0.113.1").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "second request for one address"
    );
    assert_eq!(retry.expect("Retry-After").to_str().expect("ascii"), "3600");
    assert_eq!(
        post(&mut client, "b@example.org", "203.0.113.1").await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(&mut client, "c@example.org", "203.0.113.1").await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "fourth request from one client"
    );
    // Another client behind the same proxy has its own allowance: the
    // client is the proxy's last entry, not the first (client-written) one.
    assert_eq!(
        post(&mut client, "c@example.org", "203.0.113.2").await.0,
        StatusCode::OK
    );
    let metrics = Client::new().get(&server.url("/metrics")).await.body;
    assert!(
        metrics.contains("tidings_rate_limited_total 2\n"),
        "{metrics}"
    );
    server.stop().await;
}

async fn the_reply_is_the_same_whatever_the_address_state(backend: &Backend) {
    let server = start(backend, "").await;
    server
        .store
        .put_subscriber(&confirmed("known@example.org"))
        .expect("put");
    let mut pending = confirmed("pending@example.org");
    pending.confirmed = false;
    server.store.put_subscriber(&pending).expect("put");
    server
        .store
        .suppress(&Suppression {
            address: "gone@example.org".to_owned(),
            reason: "unsubscribed".to_owned(),
            at: chrono::Utc::now(),
            requested: true,
        })
        .expect("suppress");

    let mut replies = Vec::new();
    for address in [
        "new@example.org",
        "pending@example.org",
        "known@example.org",
        "gone@example.org",
    ] {
        let mut client = Client::new();
        let reply = client
            .submit(
                &server.url("/subscribe"),
                &[("address", address), ("cadence", "immediate")],
            )
            .await;
        replies.push((address, reply.status, reply.body));
    }
    for (address, status, body) in &replies[1..] {
        assert_eq!(*status, replies[0].1, "{address}");
        assert_eq!(*body, replies[0].2, "{address}: the page differs");
    }
    // Only the new and the pending address were mailed.
    let mails = server.wait_for_mails(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mails = if mails.len() == 2 {
        server.mails()
    } else {
        mails
    };
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().any(|m| m.contains("To: new@example.org")));
    assert!(mails.iter().any(|m| m.contains("To: pending@example.org")));
    let known = server
        .store
        .subscriber("known@example.org")
        .expect("store")
        .expect("kept");
    assert!(known.confirmed, "a confirmed subscriber is left alone");
    assert!(
        server
            .store
            .subscriber("gone@example.org")
            .expect("store")
            .is_none()
    );
    server.stop().await;
}

async fn bad_addresses_are_refused_with_a_clear_message(backend: &Backend) {
    let server = start(backend, "").await;
    for bad in [
        "not-an-address",
        "ada@localhost",
        "<script>x</script>@example.org",
        "",
    ] {
        let mut client = Client::new();
        let reply = client
            .submit(
                &server.url("/subscribe"),
                &[("address", bad), ("cadence", "immediate")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            reply.body.contains("There is a problem"),
            "{bad}: {}",
            reply.body
        );
        assert!(
            reply.body.contains("Enter an email address")
                || reply.body.contains("Enter your email address"),
            "{bad}: {}",
            reply.body
        );
        assert!(!reply.body.contains("<script>x"), "{bad}: echoed unescaped");
        assert!(reply.body.contains("aria-invalid=\"true\""), "{bad}");
    }
    // A page that is not watched is refused too.
    let reply = Client::new()
        .submit(
            &server.url("/subscribe"),
            &[("address", "ok@example.org"), ("follow", "no-such-page")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(server.store.subscribers().expect("store").is_empty());
    server.stop().await;
}

async fn every_response_carries_the_security_headers_and_bodies_are_capped(backend: &Backend) {
    let server = start(backend, "").await;
    let http = reqwest::Client::new();
    let mut responses = Vec::new();
    for path in [
        "/",
        "/subscribe",
        "/watches",
        "/feed.atom",
        "/metrics",
        "/healthz",
        "/nope",
    ] {
        responses.push((path, http.get(server.url(path)).send().await.expect("get")));
    }
    let big = "a".repeat(20 * 1024);
    let too_big = http
        .post(server.url("/subscribe"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("address={big}"))
        .send()
        .await
        .expect("post");
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    responses.push(("413", too_big));
    for (path, response) in &responses {
        let headers = response.headers();
        let csp = headers
            .get(header::CONTENT_SECURITY_POLICY)
            .unwrap_or_else(|| panic!("{path}: no CSP"))
            .to_str()
            .expect("ascii");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("form-action 'self'"), "{path}: {csp}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{path}");
    }
    assert_eq!(responses[6].1.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

async fn the_change_page_shows_facts_and_an_escaped_diff(backend: &Backend) {
    let server = start(backend, "").await;
    // Text that reads as markup: the extractor drops real <script>
    // elements, so the page spells the tag out in its text.
    let script = "<p>Notice: &lt;script&gt;alert('x')&lt;/script&gt; read the plan &amp; more.</p>";
    assert!(matches!(
        server.apply("wnec", &page(&["Allerdale", "Carlisle", "Eden"], script)),
        Outcome::New { .. }
    ));
    let changed = server.apply(
        "wnec",
        &page(
            &["Allerdale", "Carlisle"],
            "<p>Notice: &lt;script&gt;alert('y')&lt;/script&gt; read the plan &amp; more.</p>",
        ),
    );
    let Outcome::Changed { version, .. } = changed else {
        panic!("expected a change, got {changed:?}");
    };
    let path = tidings::web::change_path("wnec", version);
    assert_eq!(path, format!("/changes/wnec~{version}"));
    let reply = Client::new().get(&server.url(&path)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let body = &unescape_slashes(&reply.body);
    assert!(body.contains("boundary"), "{body}");
    assert!(body.contains("Removed"), "{body}");
    assert!(
        body.contains("<li>Eden</li>"),
        "the removed place is listed: {body}"
    );
    assert!(body.contains("<del>"), "{body}");
    assert!(
        !body.contains("<script>"),
        "page text must be escaped: {body}"
    );
    assert!(body.contains("&lt;script&gt;alert("), "{body}");
    assert!(body.contains("https://example.org/wnec"), "{body}");

    for missing in ["/changes/wnec~99", "/changes/nope", "/changes/wnec~1"] {
        let reply = Client::new().get(&server.url(missing)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{missing}");
    }
    server.stop().await;
}

async fn feeds_are_atom_with_the_right_entries(backend: &Backend) {
    let server = start(backend, "").await;
    server.apply("wnec", &page(&["Allerdale", "Carlisle", "Eden"], ""));
    server.apply("wnec", &page(&["Allerdale", "Carlisle"], ""));
    server.apply("lsc-ics", &page(&["Blackpool", "Fylde"], ""));
    server.apply("lsc-ics", &page(&["Blackpool", "Fylde", "Wyre"], ""));

    let http = reqwest::Client::new();
    let fetch = |path: String| {
        let http = http.clone();
        let url = server.url(&path);
        async move {
            let response = http.get(url).send().await.expect("get");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(
                response.headers()[header::CONTENT_TYPE]
                    .to_str()
                    .expect("ascii")
                    .starts_with("application/atom+xml"),
                "{path}"
            );
            response.text().await.expect("body")
        }
    };
    let entries = |xml: &str| -> Vec<(String, String)> {
        let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML: {e}\n{xml}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "feed");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2005/Atom")
        );
        for required in ["id", "title", "updated"] {
            assert!(
                root.children().any(|c| c.tag_name().name() == required),
                "feed has no {required}"
            );
        }
        assert!(
            root.children()
                .any(|c| c.tag_name().name() == "link" && c.attribute("rel") == Some("self"))
        );
        root.children()
            .filter(|c| c.tag_name().name() == "entry")
            .map(|entry| {
                let text = |name: &str| {
                    entry
                        .children()
                        .find(|c| c.tag_name().name() == name)
                        .and_then(|c| c.text())
                        .unwrap_or_else(|| panic!("entry has no {name}"))
                        .to_owned()
                };
                text("updated");
                (text("id"), text("title"))
            })
            .collect()
    };

    let all = entries(&fetch("/feed.atom".to_owned()).await);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[0].0.ends_with("/changes/lsc-ics~2"),
        "newest first: {all:?}"
    );
    assert!(all[1].0.ends_with("/changes/wnec~2"), "{all:?}");
    assert!(all[0].0.starts_with(&server.base));

    let tag = entries(&fetch(format!("/tags/{}/feed.atom", LANCS.replace(' ', "%20"))).await);
    assert_eq!(tag.len(), 1, "{tag:?}");
    assert!(tag[0].1.starts_with("lsc-ics: "), "{tag:?}");

    let watch = entries(&fetch("/watches/wnec/feed.atom".to_owned()).await);
    assert_eq!(watch.len(), 1);
    assert!(watch[0].1.contains("Eden"), "{watch:?}");

    let unknown = http
        .get(server.url("/watches/nope/feed.atom"))
        .send()
        .await
        .expect("get");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // The watch list shows both pages with their last change linked.
    let list = unescape_slashes(&Client::new().get(&server.url("/watches")).await.body);
    assert!(list.contains("lsc-ics") && list.contains("wnec"), "{list}");
    assert!(list.contains("/changes/wnec~2"), "{list}");
    server.stop().await;
}

async fn metrics_and_health(backend: &Backend) {
    let server = start(backend, "").await;
    server.metrics.record_check(true);
    server
        .metrics
        .record_change(tidings::core::classify::Kind::Leaders);
    let reply = Client::new().get(&server.url("/metrics")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    for name in [
        "tidings_checks_total 1",
        "tidings_check_failures_total 1",
        "tidings_changes_total{kind=\"leaders\"} 1",
        "tidings_changes_total{kind=\"boundary\"} 0",
        "tidings_sends_total 0",
        "tidings_send_failures_total 0",
        "tidings_outbox_depth 0",
    ] {
        assert!(reply.body.contains(name), "{name} missing:\n{}", reply.body);
    }
    let health = Client::new().get(&server.url("/healthz")).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok\n")
    );
    server.stop().await;
}

async fn preferences_are_prefilled_and_saved(backend: &Backend) {
    let server = start(backend, "").await;
    let mut ada = confirmed("ada@example.org");
    ada.watches = vec!["wnec".to_owned()];
    ada.cadence = Cadence::Digest {
        cron: "30 7 * * Fri".to_owned(),
        timezone: chrono_tz::Europe::London,
    };
    server.store.put_subscriber(&ada).expect("put");
    let url = server.url(&format!(
        "/preferences/{}",
        token::preferences_token(&server.key, "ada@example.org")
    ));
    let mut client = Client::new();
    let form = client.get(&url).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("value=\"wnec\" checked"),
        "{}",
        form.body
    );
    assert!(
        form.body.contains("value=\"keep\" checked"),
        "an admin's schedule is kept: {}",
        form.body
    );
    let saved = client
        .post(
            &url,
            &[
                ("csrf", &csrf_in(&form.body)),
                ("name", "Ada L"),
                ("follow", &format!("tag:{LANCS}")),
                ("kind", "leaders"),
                ("cadence", "keep"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert!(saved.body.contains("Your choices are saved"));
    let stored = server
        .store
        .subscriber("ada@example.org")
        .expect("store")
        .expect("kept");
    assert_eq!(stored.name, "Ada L");
    assert_eq!(stored.tags, [LANCS]);
    assert!(stored.watches.is_empty());
    assert_eq!(stored.kinds, [tidings::core::classify::Kind::Leaders]);
    assert_eq!(stored.cadence, ada.cadence);

    // A preferences link for someone not subscribed says so.
    let stranger = server.url(&format!(
        "/preferences/{}",
        token::preferences_token(&server.key, "stranger@example.org")
    ));
    let reply = Client::new().get(&stranger).await;
    assert!(reply.body.contains("not subscribed"), "{}", reply.body);
    server.stop().await;
}

async fn broken_and_expired_links_explain_themselves(backend: &Backend) {
    let server = start(backend, "").await;
    let expired = token::confirm_token(
        &server.key,
        "ada@example.org",
        chrono::Utc::now() - chrono::Duration::hours(49),
    );
    let reply = Client::new()
        .get(&server.url(&format!("/confirm/{expired}")))
        .await;
    assert_eq!(reply.status, StatusCode::GONE);
    assert!(reply.body.contains("expired"), "{}", reply.body);
    let reply = Client::new().get(&server.url("/confirm/abc")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("does not work"), "{}", reply.body);
    // An unsubscribe token is not a confirmation.
    let wrong = token::unsubscribe_token(&server.key, "ada@example.org");
    let reply = Client::new()
        .get(&server.url(&format!("/confirm/{wrong}")))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    server.stop().await;
}

/// The commented `[web]` example in the shipped config is valid once
/// uncommented. (No server and no store: one test, not a twin.)
#[test]
fn the_shipped_web_example_validates() {
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tidings.toml"),
    )
    .expect("config/tidings.toml");
    let start = shipped.find("# [web]").expect("a commented [web] example");
    let example: String = shipped[start..]
        .lines()
        .take_while(|line| line.starts_with('#'))
        .filter(|line| !line.starts_with("# #"))
        .map(|line| format!("{}\n", line.trim_start_matches("# ")))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tidings.toml");
    std::fs::write(&path, &example).expect("write");
    let config = tidings::config::load(&path).unwrap_or_else(|e| panic!("{e}\n{example}"));
    let web = config.web.expect("enabled");
    assert_eq!(web.listen.to_string(), "127.0.0.1:8080");
    assert!(
        config
            .mail
            .unsubscribe_url
            .expect("derived")
            .as_str()
            .starts_with("https://briefings.example.org/unsubscribe/")
    );
}

async fn a_confirmation_that_cannot_be_sent_now_waits_in_the_outbox(backend: &Backend) {
    use std::sync::Arc;
    use tidings::core::brief::Templates;
    use tidings::service::delivery::{Deliverer, Links};
    use tidings::store::DeliveryState;

    let server = start(backend, "").await;
    // The mail directory cannot be made (a file is in its way): every send
    // fails as a temporary error, as with an SMTP server that is down.
    std::fs::write(&server.mail_dir, "in the way").expect("block the mail dir");
    let mut client = Client::new();
    let reply = client
        .submit(
            &server.url("/subscribe"),
            &[("address", "grace@example.org"), ("cadence", "immediate")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    // The background send fails and queues the mail instead.
    let mut queued = Vec::new();
    for _ in 0..100 {
        queued = server.store.deliveries().expect("rows");
        if !queued.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(queued.len(), 1, "the confirmation waits in the outbox");
    let row = &queued[0];
    assert_eq!(row.state, DeliveryState::Pending);
    let prepared = row.prepared.as_ref().expect("the composed mail is kept");
    assert!(prepared.text.contains("/confirm/"), "{}", prepared.text);

    // The mail server is back: the delivery worker sends it as it was.
    std::fs::remove_file(&server.mail_dir).expect("unblock");
    let mut worker = Deliverer::new(
        server.store.clone(),
        Arc::clone(&server.mailer),
        server.config.mail.clone(),
        Arc::new(Templates::embedded()),
        Links::default(),
    );
    let round = worker
        .deliver_due(&tokio_util::sync::CancellationToken::new())
        .await
        .expect("pass");
    assert_eq!(round.sent, 1, "{round:?}");
    let mails = server.wait_for_mails(1).await;
    let confirm = link(&mails[0], "/confirm/").expect("the confirm link survived");
    assert!(confirm.starts_with(&server.base), "{confirm}");
    server.stop().await;
}
