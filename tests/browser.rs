//! End to end in a real browser: Debian's headless Chromium, driven through
//! chromedriver with fantoccini, against the web server, a page site
//! (wiremock), the pipeline and the delivery worker, all in this process on
//! loopback.
//!
//! 1. subscribe through the form;
//! 2. confirm through the link in the confirmation mail (an `.eml` file);
//! 3. change the page, check it, and let the delivery worker send the
//!    briefing;
//! 4. follow the briefing's link to the change page;
//! 5. unsubscribe through the briefing's one-click link (GET shows a
//!    button; the button POSTs).
//!
//! Screenshots of the subscribe page, the change page and the briefing's
//! HTML part are written to the test's temporary directory, or to
//! `docs/screenshots/` with `TIDINGS_UPDATE_SCREENSHOTS=1` (they carry the
//! time of the run, so writing them on every run would churn the repo).
//!
//! Without chromium and chromedriver the test prints a skip notice and
//! passes. .ci/run installs both and sets `TIDINGS_REQUIRE_BROWSER=1`, under
//! which a missing browser fails instead.

#[path = "common/web.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use harness::{Harness, link, watches_toml};
use tidings::core::brief::Templates;
use tidings::service::delivery::{Deliverer, Links};
use tidings::service::pipeline::{Outcome, Pipeline};
use tokio_util::sync::CancellationToken;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

/// Says why a test did nothing, on stderr directly so that the skip shows
/// in `cargo test` output (the harness captures `eprintln!`).
macro_rules! skip_notice {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The flags Chromium needs here: no sandbox (root in a container), and no
/// background traffic to Google's hosts, which this machine cannot reach.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=900,1300",
];

fn find(candidates: &[&str]) -> Option<PathBuf> {
    for candidate in candidates {
        let path = Path::new(candidate);
        if path.is_absolute() {
            if path.is_file() {
                return Some(path.to_path_buf());
            }
            continue;
        }
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(candidate))
                .find(|p| p.is_file())
        });
        if found.is_some() {
            return found;
        }
    }
    None
}

/// chromedriver, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(binary: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let http = reqwest::Client::new();
        while http.get(format!("{url}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A page that tests can change between checks.
#[derive(Clone)]
struct PageResponder(Arc<Mutex<String>>);

impl Respond for PageResponder {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let body = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        ResponseTemplate::new(200).set_body_raw(body, "text/html; charset=utf-8")
    }
}

const PARTNERSHIP: &str = "West, North and East Cumbria";

fn partnership_page(places: &[&str], population: &str) -> String {
    let items: String = places.iter().map(|p| format!("<li>{p}</li>")).collect();
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Our partnership</title></head><body>
<nav><a href="/">Home</a> <a href="/about">About</a></nav>
<main><h1>West, North and East Cumbria Health and Care Partnership</h1>
<p>Our integrated health and care system covers a population of {population} people across the north of the county, working with councils, the NHS and the voluntary sector.</p>
<h2>Places</h2><ul>{items}</ul>
<h2>Leadership</h2><p>The partnership board is chaired by Jane Smith and meets in public every month.</p>
</main><footer>Copyright 2026</footer></body></html>"#
    )
}

/// Where screenshots go: the repository's docs with
/// `TIDINGS_UPDATE_SCREENSHOTS=1`, else the test's own directory.
fn screenshot_dir(scratch: &Path) -> PathBuf {
    if std::env::var_os("TIDINGS_UPDATE_SCREENSHOTS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
    } else {
        scratch.join("screenshots")
    }
}

async fn screenshot(browser: &Client, dir: &Path, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
    std::fs::create_dir_all(dir).expect("screenshot dir");
    std::fs::write(dir.join(name), png).expect("write screenshot");
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

/// Waits (at most 10 s) for the page's `h1` to read `expected`: a click
/// that submits a form returns before the next page has loaded.
async fn wait_for_heading(browser: &Client, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(element) = browser.find(Locator::Css("h1")).await
            && let Ok(text) = element.text().await
        {
            if text == expected {
                return;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page's heading is {last:?}, not {expected:?}");
}

/// Waits for an element to appear, as after a form's submission.
async fn wait_for_element(browser: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if browser.find(Locator::Css(css)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no `{css}` on the page after 10 s");
}

/// The decoded body of a message's part of this content type.
fn part(eml: &str, content_type: &str) -> String {
    use base64::Engine as _;
    let start = eml
        .find(&format!("Content-Type: {content_type}"))
        .unwrap_or_else(|| panic!("no {content_type} part"));
    let rest = &eml[start..];
    let (head, body) = rest.split_once("\r\n\r\n").expect("part body");
    let body = body.split("\r\n--").next().expect("part end");
    if head.contains("Content-Transfer-Encoding: base64") {
        let joined: String = body.lines().collect();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(joined.trim())
                .expect("base64"),
        )
        .expect("utf-8")
    } else if head.contains("Content-Transfer-Encoding: quoted-printable") {
        let mut bytes = Vec::new();
        let joined = body.replace("=\r\n", "");
        let mut chars = joined.as_bytes().iter().copied();
        while let Some(b) = chars.next() {
            if b == b'=' {
                let hex = [chars.next().unwrap_or(b'0'), chars.next().unwrap_or(b'0')];
                let hex = std::str::from_utf8(&hex).expect("hex");
                bytes.push(u8::from_str_radix(hex, 16).expect("hex digit"));
            } else {
                bytes.push(b);
            }
        }
        String::from_utf8(bytes).expect("utf-8")
    } else {
        body.to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_confirm_brief_follow_and_unsubscribe_in_chromium() {
    let (Some(chromium), Some(chromedriver)) = (
        find(&["/usr/bin/chromium", "chromium", "chromium-browser"]),
        find(&["/usr/bin/chromedriver", "chromedriver"]),
    ) else {
        assert!(
            std::env::var_os("TIDINGS_REQUIRE_BROWSER").is_none(),
            "TIDINGS_REQUIRE_BROWSER is set but chromium or chromedriver is missing \
             (apt-get install chromium chromium-driver)"
        );
        skip_notice!(
            "skipped: browser end-to-end test: chromium or chromedriver not found \
             (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let started = Instant::now();

    // The watched page, on wiremock.
    let page = Arc::new(Mutex::new(partnership_page(
        &["Allerdale", "Carlisle", "Copeland", "Eden"],
        "327,000",
    )));
    let site = MockServer::start().await;
    Mock::given(matchers::path("/about-us"))
        .respond_with(PageResponder(Arc::clone(&page)))
        .mount(&site)
        .await;
    let page_url = format!("{}/about-us", site.uri());
    // Titles for the watches and tags; an operator and a privacy notice.
    let watches = watches_toml(&[
        ("wnec-stp", &page_url, &[PARTNERSHIP]),
        ("lsc-ics", "https://example.org/lsc", &["lsc"]),
    ])
    .replacen(
        "name = \"wnec-stp\"\n",
        "name = \"wnec-stp\"\ntitle = \"About the West, North and East Cumbria partnership\"\n",
        1,
    )
    .replacen(
        "name = \"lsc-ics\"\n",
        "name = \"lsc-ics\"\ntitle = \"Our integrated care system\"\n",
        1,
    );
    let server = Harness::start(
        &format!(
            "[defaults]\nrobots = false\n\n[tags.lsc]\ntitle = \"Lancashire and South Cumbria\"\n\n{watches}"
        ),
        "privacy_text = \"Cumbria Healthwatch keeps your email address only to send the briefings you ask for.\"\n\
         [web.operator]\nname = \"Cumbria Healthwatch\"\ncontact = \"data@healthwatch.example.org\"\n",
    )
    .await;
    let watch = server.config.watch("wnec-stp").expect("watch").clone();
    let pipeline = Pipeline::new(
        server.store.clone(),
        server.config.limits.clone(),
        server.config.contact.as_deref(),
    )
    .expect("pipeline");
    let first = pipeline.check(&watch).await;
    assert!(matches!(first.outcome, Outcome::New { .. }), "{first:?}");

    // The browser.
    let driver = Driver::start(&chromedriver).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({ "binary": chromium, "args": args }),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a chromium session");
    let shots = screenshot_dir(server.dir.path());

    // 1. Subscribe through the form.
    browser
        .goto(&server.url("/subscribe"))
        .await
        .expect("subscribe page");
    let address = "councillor@example.org";
    browser
        .find(Locator::Css("#address"))
        .await
        .expect("address field")
        .send_keys(address)
        .await
        .expect("type address");
    browser
        .find(Locator::Css("#name"))
        .await
        .expect("name field")
        .send_keys("Sam Patel")
        .await
        .expect("type name");
    browser
        .find(Locator::Css(&format!("input[value='tag:{PARTNERSHIP}']")))
        .await
        .expect("partnership box")
        .click()
        .await
        .expect("tick partnership");
    for kind in ["boundary", "members", "leaders"] {
        browser
            .find(Locator::Css(&format!("#k-{kind}")))
            .await
            .expect("kind box")
            .click()
            .await
            .expect("tick kind");
    }
    browser
        .find(Locator::Css("#c-immediate"))
        .await
        .expect("cadence")
        .click()
        .await
        .expect("choose immediate");
    let notice = text_of(&browser, "#operator").await;
    assert!(notice.contains("run by Cumbria Healthwatch"), "{notice}");
    assert!(notice.contains("data@healthwatch.example.org"), "{notice}");
    assert!(notice.contains("privacy notice"), "{notice}");
    let form = text_of(&browser, "form").await;
    assert!(form.contains("Lancashire and South Cumbria"), "{form}");
    // Page labels sit in closed <details>: read them from the source.
    let source = browser.source().await.expect("source");
    assert!(
        source.contains(">Our integrated care system</label>"),
        "titles, not names: {source}"
    );
    assert!(!source.contains(">lsc-ics</label>"), "{source}");
    screenshot(&browser, &shots, "subscribe.png").await;
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("submit");
    wait_for_heading(&browser, "Check your email").await;
    let pending = server
        .store
        .subscriber(address)
        .expect("store")
        .expect("stored");
    assert!(!pending.confirmed);

    // 2. Confirm through the emailed link.
    let mails = server.wait_for_mails(1).await;
    assert_eq!(mails.len(), 1, "one confirmation mail");
    let confirm = link(&mails[0], "/confirm/").expect("confirm link");
    browser.goto(&confirm).await.expect("confirm page");
    assert!(
        !server
            .store
            .subscriber(address)
            .expect("store")
            .expect("s")
            .confirmed,
        "opening the link must not confirm"
    );
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("confirm button")
        .click()
        .await
        .expect("confirm");
    wait_for_heading(&browser, "Your briefings are confirmed").await;
    let subscriber = server
        .store
        .subscriber(address)
        .expect("store")
        .expect("stored");
    assert!(subscriber.confirmed);
    assert_eq!(subscriber.consent_source.as_deref(), Some("web form"));

    // 3. The page changes: Eden leaves and the population falls.
    *page.lock().unwrap_or_else(PoisonError::into_inner) =
        partnership_page(&["Allerdale", "Carlisle", "Copeland"], "274,000");
    let second = pipeline.check(&watch).await;
    let Outcome::Changed { version, .. } = second.outcome else {
        panic!("expected a change: {second:?}");
    };
    server.store.flush().expect("flush");
    // The briefing, sent by the delivery worker as the daemon would, with
    // the web server's links.
    // The config links unsubscribes to the (http, loopback) server too.
    let mail_settings = server.config.mail.clone();
    assert!(mail_settings.unsubscribe_url.is_some());
    let mut deliverer = Deliverer::new(
        server.store.clone(),
        Arc::clone(&server.mailer),
        mail_settings,
        Arc::new(Templates::embedded()),
        Links::from_config(&server.config).expect("links"),
    );
    let round = deliverer
        .deliver_due(&CancellationToken::new())
        .await
        .expect("deliver");
    assert_eq!(round.sent, 1, "{round:?}");
    let mails = server.wait_for_mails(2).await;
    let briefing = mails
        .iter()
        .find(|m| m.contains("/changes/"))
        .expect("the briefing mail");

    // 4. Follow the briefing's link to the change page.
    let change = link(briefing, "/changes/").expect("change link");
    assert!(
        change.ends_with(&format!("/changes/wnec-stp~{version}")),
        "{change}"
    );
    browser.goto(&change).await.expect("change page");
    let heading = text_of(&browser, "h1").await;
    assert!(heading.to_lowercase().contains("boundary"), "{heading}");
    let lead = text_of(&browser, ".lead").await;
    assert!(lead.contains("Eden"), "{lead}");
    assert!(lead.contains("274,000"), "{lead}");
    let removed = text_of(&browser, ".facts.removed").await;
    assert!(removed.contains("Eden"), "{removed}");
    assert!(
        heading.contains("About the West, North and East Cumbria partnership"),
        "{heading}"
    );
    let body = text_of(&browser, "main").await;
    assert!(body.contains("What changed"), "{body}");
    assert!(!body.contains("What the page says now"), "{body}");
    assert!(
        !body.contains("1 → 2"),
        "dates, not version numbers: {body}"
    );
    let footer = text_of(&browser, "footer").await;
    assert!(footer.contains("Run by Cumbria Healthwatch"), "{footer}");
    screenshot(&browser, &shots, "change.png").await;

    // The page's history, and a comparison of two of its versions.
    browser
        .find(Locator::LinkText("Every version of this page"))
        .await
        .expect("history link")
        .click()
        .await
        .expect("open history");
    wait_for_heading(
        &browser,
        "About the West, North and East Cumbria partnership",
    )
    .await;
    let rows = browser
        .find_all(Locator::Css("tbody tr"))
        .await
        .expect("version rows");
    assert_eq!(rows.len(), 2, "two versions");
    screenshot(&browser, &shots, "history.png").await;
    browser
        .find(Locator::Css("form.compare button"))
        .await
        .expect("compare button")
        .click()
        .await
        .expect("compare");
    // The click submits a form and returns before the new page is there;
    // the history page has no `.lead`, so its arrival marks the comparison.
    wait_for_element(&browser, ".lead").await;
    let lead = text_of(&browser, ".lead").await;
    assert!(lead.starts_with("What changed between"), "{lead}");
    let removed = text_of(&browser, ".diff").await;
    assert!(removed.contains("Eden"), "{removed}");
    assert!(removed.contains("274,000"), "{removed}");
    screenshot(&browser, &shots, "compare.png").await;

    // The briefing's HTML part, as a mail client would show it.
    let html = part(briefing, "text/html");
    let file = server.dir.path().join("briefing.html");
    std::fs::write(&file, &html).expect("write briefing");
    browser
        .goto(&format!("file://{}", file.display()))
        .await
        .expect("briefing file");
    let shown = text_of(&browser, "body").await;
    assert!(shown.contains("Eden"), "{shown}");
    screenshot(&browser, &shots, "briefing.png").await;

    // 5. Unsubscribe through the briefing's one-click link.
    let unsubscribe = link(briefing, "/unsubscribe/").expect("unsubscribe link");
    browser.goto(&unsubscribe).await.expect("unsubscribe page");
    assert_eq!(text_of(&browser, "h1").await, "Unsubscribe");
    assert!(
        server.store.subscriber(address).expect("store").is_some(),
        "opening the link must not unsubscribe"
    );
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("unsubscribe button")
        .click()
        .await
        .expect("unsubscribe");
    wait_for_heading(&browser, "You are unsubscribed").await;
    assert!(server.store.subscriber(address).expect("store").is_none());
    let suppression = server
        .store
        .suppression(address)
        .expect("store")
        .expect("suppressed");
    assert!(suppression.requested);

    browser.close().await.expect("close the browser");
    drop(driver);
    server.stop().await;
    skip_notice!(
        "browser end-to-end test ran in {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );
}
