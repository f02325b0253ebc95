//! The web endpoint on several nodes of one PostgreSQL store: a
//! subscription started on one node is confirmed on another (links are
//! signed with the secret every node shares, and the subscriber is in the
//! shared store), and unsubscribing on a third node takes effect for all.
//! Skipped (saying so) without PostgreSQL.

#[path = "common/web.rs"]
mod harness;
#[path = "common/pg.rs"]
mod pg;

use harness::{Harness, link, watches_toml};
use reqwest::header;

/// GETs a form and POSTs it back with its token and cookie, as a browser.
async fn submit(url: &str, fields: &[(&str, &str)]) -> (reqwest::StatusCode, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = http.get(url).send().await.expect("get");
    let cookie = page
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let html = page.text().await.expect("body");
    let csrf = regex::Regex::new(r#"name="csrf" value="([0-9a-f]+)""#)
        .expect("regex")
        .captures(&html)
        .unwrap_or_else(|| panic!("no form token in {html}"))[1]
        .to_owned();
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&all)
        .finish();
    let mut request = http
        .post(url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let reply = request.send().await.expect("post");
    (reply.status(), reply.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_started_on_one_node_is_confirmed_on_another() {
    let Some(db) = pg::database("a_subscription_started_on_one_node_is_confirmed_on_another")
    else {
        return;
    };
    let watches = watches_toml(&[("wnec", "https://example.org/wnec", &["North Cumbria"])]);
    let a = Harness::start_on(&watches, "", &db.store_toml()).await;
    let b = Harness::start_on(&watches, "", &db.store_toml()).await;

    let (status, body) = submit(
        &a.url("/subscribe"),
        &[
            ("address", "ada@example.org"),
            ("name", "Ada"),
            ("follow", "wnec"),
        ],
    )
    .await;
    assert!(status.is_success(), "{body}");
    assert!(
        !b.store
            .subscriber("ada@example.org")
            .expect("read on b")
            .expect("b sees the subscriber a stored")
            .confirmed
    );
    let mails = a.wait_for_mails(1).await;
    let confirm = link(&mails[0], "/confirm/").expect("confirm link");
    let path = &confirm[a.base.len()..];

    // The link, followed on the other node.
    let (status, body) = submit(&b.url(path), &[]).await;
    assert!(status.is_success(), "{body}");
    assert!(body.contains("confirmed"), "{body}");
    let stored = a
        .store
        .subscriber("ada@example.org")
        .expect("read on a")
        .expect("stored");
    assert!(stored.confirmed, "confirmed on b, seen on a");
    a.stop().await;
    b.stop().await;
}
