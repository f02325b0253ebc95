//! What stakeholders read on the web: titles instead of internal names,
//! the operator and privacy notice where addresses are collected, a page's
//! history by date and a comparison of any two of its versions, and change
//! pages worded for readers (issue 15).

#[path = "common/web.rs"]
mod harness;

use harness::Harness;
use reqwest::StatusCode;
use tidings::service::pipeline::Outcome;

const WATCHES: &str = r#"
[tags.lsc]
title = "Lancashire and South Cumbria"
[tags.north-cumbria]
title = "North Cumbria"

[[watch]]
name = "lsc-ics"
title = "Our integrated care system"
url = "https://example.org/lsc"
tags = ["lsc"]

[[watch]]
name = "wnec"
title = "West, North and East Cumbria partnership"
url = "https://example.org/wnec"
tags = ["north-cumbria", "stp"]
"#;

const OPERATOR: &str = "privacy_text = \"We keep your address only to send briefings.\\n\\nAsk us to delete it at any time.\"\n\
     [web.operator]\nname = \"Cumbria Healthwatch\"\ncontact = \"data@healthwatch.example.org\"\n";

fn page(places: &[&str]) -> String {
    let items: String = places.iter().map(|p| format!("<li>{p}</li>")).collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><title>Partnership</title></head><body><main>\
         <h1>“About the partnership”</h1>\
         <p>The partnership brings together the NHS, councils and the voluntary sector to plan health and care for local people.</p>\
         <h2>Places</h2><ul>{items}</ul></main></body></html>"
    )
}

async fn get(url: &str) -> (StatusCode, String) {
    let response = reqwest::get(url).await.expect("request");
    let status = response.status();
    let body = response.text().await.expect("body");
    (status, body.replace("&#x2f;", "/"))
}

#[tokio::test]
async fn subscribe_names_the_operator_and_links_the_privacy_notice() {
    let server = Harness::start(WATCHES, OPERATOR).await;
    let (status, body) = get(&server.url("/subscribe")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("run by <strong>Cumbria Healthwatch</strong>"),
        "{body}"
    );
    assert!(
        body.contains("href=\"mailto:data@healthwatch.example.org\""),
        "{body}"
    );
    assert!(body.contains("Read the privacy notice"), "{body}");
    assert!(
        body.contains(&format!("href=\"{}\"", server.url("/privacy"))),
        "{body}"
    );
    // Titles, not internal names, label the choices; names stay the values.
    assert!(
        body.contains("Lancashire and South Cumbria</strong>: all its pages"),
        "{body}"
    );
    assert!(
        body.contains(">Our integrated care system</label>"),
        "{body}"
    );
    assert!(body.contains("value=\"lsc-ics\""), "{body}");
    assert!(!body.contains(">lsc-ics</label>"), "{body}");
    assert!(!body.contains("<strong>lsc</strong>"), "{body}");

    let (status, privacy) = get(&server.url("/privacy")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        privacy.contains("<p>We keep your address only to send briefings.</p>"),
        "{privacy}"
    );
    assert!(
        privacy.contains("<p>Ask us to delete it at any time.</p>"),
        "{privacy}"
    );

    // Every page's footer names the operator too.
    let (_, watches) = get(&server.url("/watches")).await;
    assert!(watches.contains("Run by Cumbria Healthwatch"), "{watches}");
    assert!(
        watches.contains("West, North and East Cumbria partnership"),
        "{watches}"
    );
    assert!(watches.contains("<h2>North Cumbria"), "{watches}");
    assert!(!watches.contains(">wnec<"), "{watches}");
    server.stop().await;
}

#[tokio::test]
async fn without_a_privacy_text_there_is_no_privacy_page() {
    let server = Harness::start(WATCHES, "").await;
    let (status, _) = get(&server.url("/privacy")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = get(&server.url("/subscribe")).await;
    assert!(!body.contains("privacy notice"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn the_history_lists_versions_by_date_and_compares_any_two() {
    let server = Harness::start(WATCHES, OPERATOR).await;
    assert!(matches!(
        server.apply(
            "wnec",
            &page(&["Allerdale", "Carlisle", "Copeland", "Eden"])
        ),
        Outcome::New { .. }
    ));
    assert!(matches!(
        server.apply("wnec", &page(&["Allerdale", "Carlisle", "Copeland"])),
        Outcome::Changed { .. }
    ));
    let third = server.apply("wnec", &page(&["Allerdale", "Carlisle"]));
    let Outcome::Changed { version, .. } = third else {
        panic!("expected a change, got {third:?}");
    };
    assert_eq!(version, 3);

    // The change page: the title, dates rather than version numbers, one
    // level of quotes, "What changed".
    let (status, change) = get(&server.url(&tidings::web::change_path("wnec", 3))).await;
    assert_eq!(status, StatusCode::OK, "{change}");
    assert!(
        change.contains("West, North and East Cumbria partnership</h1>"),
        "{change}"
    );
    assert!(change.contains("<h2>What changed</h2>"), "{change}");
    assert!(!change.contains("What the page says now"), "{change}");
    assert!(
        change.contains("Compared with</dt><dd>the page as it was on "),
        "{change}"
    );
    assert!(!change.contains("2 → 3"), "{change}");
    assert!(change.contains("North Cumbria, stp"), "{change}");
    assert!(change.contains("href=\"/watches/wnec\""), "{change}");

    // The history: three versions, newest first, each by date; the two
    // changes link to their pages.
    let (status, history) = get(&server.url("/watches/wnec")).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert!(
        history.contains("<h1>West, North and East Cumbria partnership</h1>"),
        "{history}"
    );
    assert_eq!(history.matches("<time datetime=").count(), 3, "{history}");
    assert_eq!(history.matches(">What changed</a>").count(), 2, "{history}");
    assert!(history.contains("first seen"), "{history}");
    assert!(
        history.contains("action=\"/watches/wnec/compare\""),
        "{history}"
    );
    assert!(
        history.contains("<option value=\"2\" selected>"),
        "the version before the newest: {history}"
    );
    assert!(
        history.contains("<option value=\"3\" selected>"),
        "the newest: {history}"
    );

    // Any two versions, whichever way round: the first and the last.
    for query in ["from=1&to=3", "from=3&to=1"] {
        let (status, compare) = get(&server.url(&format!("/watches/wnec/compare?{query}"))).await;
        assert_eq!(status, StatusCode::OK, "{compare}");
        assert!(compare.contains("<h2>What changed</h2>"), "{compare}");
        assert!(compare.contains("<del>Eden</del>"), "{compare}");
        assert!(compare.contains("<del>Copeland</del>"), "{compare}");
        assert!(compare.contains("In &ldquo;Places&rdquo;"), "{compare}");
        assert!(
            !compare.contains("&ldquo;“"),
            "one level of quotes: {compare}"
        );
    }
    let (_, same) = get(&server.url("/watches/wnec/compare?from=2&to=2")).await;
    assert!(same.contains("These are the same version"), "{same}");
    for missing in [
        "/watches/nope",
        "/watches/wnec/compare?from=1&to=9",
        "/watches/wnec/compare?from=x&to=1",
        "/watches/wnec/compare",
    ] {
        let (status, _) = get(&server.url(missing)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }

    // Feeds carry titles too.
    let (_, feed) = get(&server.url("/watches/wnec/feed.atom")).await;
    assert!(
        feed.contains("<title>tidings: West, North and East Cumbria partnership</title>"),
        "{feed}"
    );
    let (_, feed) = get(&server.url("/tags/north-cumbria/feed.atom")).await;
    assert!(
        feed.contains("<title>tidings: North Cumbria</title>"),
        "{feed}"
    );
    server.stop().await;
}
