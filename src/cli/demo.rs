//! `tidings demo`: the whole pipeline on embedded pages, with no network and
//! no setup. Bundled partnership pages are served from a loopback HTTP
//! server inside the process (with ETags, so conditional GET is exercised),
//! checked, changed by a scripted boundary edit, and checked again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::{self, Limits, Watch};
use crate::core::extract::Rules;
use crate::core::render;
use crate::service::pipeline::{Outcome, Pipeline};
use crate::store::Store;

/// The bundled pages: real partnership texts in the kind of site chrome
/// such pages have (cookie banners, mega menus, footers).
pub const PAGES: [(&str, &str); 5] = [
    (
        "wnec-stp",
        include_str!("../../tests/fixtures/partnerships/wnec-stp.html"),
    ),
    (
        "stp-44-areas",
        include_str!("../../tests/fixtures/partnerships/stp-44-areas.html"),
    ),
    (
        "lsc-place-review",
        include_str!("../../tests/fixtures/partnerships/lsc-place-review.html"),
    ),
    (
        "lsc-landmark-partnership",
        include_str!("../../tests/fixtures/partnerships/lsc-landmark-partnership.html"),
    ),
    (
        "lsc-ics",
        include_str!("../../tests/fixtures/partnerships/lsc-ics.html"),
    ),
];

/// What readers call the bundled pages, and the partnership (tag, tag
/// title) each belongs to: the names stay the stable keys.
const TITLES: [(&str, &str, &str, &str); 5] = [
    (
        "wnec-stp",
        "About the West, North and East Cumbria partnership",
        "wnec",
        "West, North and East Cumbria",
    ),
    (
        "stp-44-areas",
        "The 44 sustainability and transformation partnership areas",
        "nhs-england",
        "NHS England",
    ),
    (
        "lsc-place-review",
        "Review of place-based partnerships",
        "lsc",
        "Lancashire and South Cumbria",
    ),
    (
        "lsc-landmark-partnership",
        "A landmark partnership for Lancashire and South Cumbria",
        "lsc",
        "Lancashire and South Cumbria",
    ),
    (
        "lsc-ics",
        "Lancashire and South Cumbria integrated care system",
        "lsc",
        "Lancashire and South Cumbria",
    ),
];

/// The title and tag of a bundled page.
fn title_of(name: &str) -> (&'static str, &'static str) {
    TITLES
        .iter()
        .find(|(page, ..)| *page == name)
        .map_or(("", "demo"), |(_, title, tag, _)| (title, tag))
}

/// The demo's titles, as a config's `title`s and `[tags.…]` give them.
fn demo_titles() -> crate::core::titles::Titles {
    crate::core::titles::Titles::new(
        TITLES
            .iter()
            .map(|(name, title, ..)| ((*name).to_owned(), (*title).to_owned())),
        TITLES
            .iter()
            .map(|(_, _, tag, title)| ((*tag).to_owned(), (*title).to_owned())),
    )
}

type Pages = Arc<RwLock<HashMap<String, String>>>;

/// Applies the demo's scripted boundary change to the West, North and East
/// Cumbria page: Eden leaves the population list and the population falls.
pub fn boundary_change(html: &str) -> anyhow::Result<String> {
    let eden = regex::Regex::new(r"(?s)<li[^>]*>[^<]*Eden\s+52,630[^<]*</li>\s*")
        .context("the demo's edit pattern is valid")?;
    if !eden.is_match(html) || !html.contains("327,000") {
        anyhow::bail!("the bundled page no longer has the text the demo edits");
    }
    Ok(eden.replace(html, "").replace("327,000", "274,000"))
}

async fn serve_page(
    State(pages): State<Pages>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let Some(html) = pages
        .read()
        .ok()
        .and_then(|pages| pages.get(&name).cloned())
    else {
        return (StatusCode::NOT_FOUND, "no such page").into_response();
    };
    let etag = format!("\"{}\"", &blake3::hash(html.as_bytes()).to_hex()[..16]);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let etag_header = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"x\""));
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::ETAG, etag_header),
        ],
        html,
    )
        .into_response()
}

/// Runs the demo, keeping its store in `state` or a temporary directory.
pub async fn run(state: Option<&Path>) -> anyhow::Result<u8> {
    let pages: Pages = Arc::new(RwLock::new(
        PAGES
            .iter()
            .map(|(name, html)| ((*name).to_owned(), (*html).to_owned()))
            .collect(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot open a loopback port for the demo's page server")?;
    let address = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/{name}", axum::routing::get(serve_page))
        .with_state(Arc::clone(&pages));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let temporary = tempfile::tempdir().context("cannot create a temporary store")?;
    let state_dir = state.unwrap_or(temporary.path());
    std::fs::create_dir_all(state_dir)?;
    let store = Store::open(state_dir)?;
    // One stakeholder follows every page, so the change below queues a
    // briefing in the outbox, as it would for real subscribers.
    store.put_subscriber(&demo_subscriber(chrono::Utc::now()))?;
    let schedule = config::Schedule::parse(config::DEFAULT_SCHEDULE, config::DEFAULT_TIMEZONE)
        .map_err(anyhow::Error::msg)?;
    let watches: Vec<Watch> = PAGES
        .iter()
        .map(|(name, _)| {
            Ok(Watch {
                name: (*name).to_owned(),
                title: Some(title_of(name).0.to_owned()).filter(|t| !t.is_empty()),
                url: url::Url::parse(&format!("http://{address}/{name}"))?,
                schedule: schedule.clone(),
                tags: vec![title_of(name).1.to_owned()],
                rules: Rules::default(),
                facts: Vec::new(),
                robots: true,
                allow_redirects_to: Vec::new(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let pipeline = Arc::new(Pipeline::new(
        store.clone(),
        // One loopback server: no need to space requests out.
        Limits {
            per_host_interval: std::time::Duration::ZERO,
            ..Limits::default()
        },
        Some("demo@localhost"),
    )?);

    println!(
        "tidings demo: {} bundled partnership pages served on http://{address}/ (loopback only)",
        PAGES.len()
    );
    println!("store: {}\n", state_dir.display());

    println!("1. First check: every page is new");
    crate::cli::check::run_checks(&pipeline, &watches, true).await;

    println!("\n2. Second check: nothing changed, so each page costs one 304 and no parse");
    let second = crate::cli::check::run_checks(&pipeline, &watches, true).await;
    let not_modified = second
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Unchanged { not_modified: true }))
        .count();
    println!(
        "   ({not_modified} of {} answered 304 Not Modified)",
        second.len()
    );

    println!(
        "\n3. The West, North and East Cumbria page changes: Eden leaves the population list and the population falls"
    );
    {
        let mut pages = pages
            .write()
            .map_err(|_| anyhow::anyhow!("page table poisoned"))?;
        let page = pages
            .get_mut("wnec-stp")
            .context("the wnec-stp page is bundled")?;
        *page = boundary_change(page)?;
    }
    let third = crate::cli::check::run_checks(&pipeline, &watches, true).await;

    for report in &third {
        if let Outcome::Changed {
            version,
            diff,
            assessment,
        } = &report.outcome
        {
            println!(
                "\nWhat changed on {} (version {} → {version}):",
                report.watch,
                version - 1
            );
            let colour =
                anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never;
            anstream::println!("{}", render::assessment_header(assessment, colour));
            anstream::print!("{}", render::word(diff, colour));
        }
    }
    deliver(&store, state_dir).await?;
    if state.is_some() {
        println!(
            "\nThe store and the mail are kept. Try: tidings history wnec-stp --state {0}\n     and: tidings diff wnec-stp@1 wnec-stp@2 --state {0}\n     and: ls {0}/mail",
            state_dir.display()
        );
    } else {
        println!(
            "\nThe store and the mail folder are temporary and are deleted now that the demo ends.\nTo keep them, run: tidings demo --state DIR"
        );
    }
    store.flush()?;
    let _ = stop.send(());
    server.await.context("the demo's page server panicked")??;
    let changed = third
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Changed { .. }))
        .count();
    anyhow::ensure!(
        changed == 1,
        "the demo expected exactly one changed page, saw {changed}"
    );
    Ok(0)
}

/// Sends the queued briefing through the outbox with the embedded
/// default transport: an `.eml` file in STATE/mail, no mail server needed.
async fn deliver(store: &Store, state_dir: &Path) -> anyhow::Result<()> {
    let settings = crate::config::MailSettings::default();
    let mailer = crate::mail::Mailer::new(&settings, state_dir)?;
    let mut deliverer = crate::service::delivery::Deliverer::new(
        store.clone(),
        Arc::new(mailer),
        settings,
        Arc::new(crate::core::brief::Templates::embedded()),
        crate::service::delivery::Links {
            titles: demo_titles(),
            ..crate::service::delivery::Links::default()
        },
    );
    for row in store.due_deliveries(chrono::Utc::now(), 10)? {
        if let Some(briefing) = deliverer.preview(&row)? {
            println!(
                "\nThe briefing {} gets (text part; the HTML part has the same content):",
                row.address
            );
            println!("Subject: {}\n", briefing.subject);
            print!("{}", briefing.text);
        }
    }
    let round = deliverer
        .deliver_due(&tokio_util::sync::CancellationToken::new())
        .await?;
    println!(
        "\n4. The outbox (queued with the change, in the same transaction) sent {} briefing(s) via {}",
        round.sent,
        deliverer.transport()
    );
    for row in store.deliveries()? {
        println!(
            "   {} to {}: {} (Message-ID {})",
            row.state.as_str(),
            row.address,
            row.items
                .iter()
                .map(|item| format!("{}@{}", item.watch, item.version))
                .collect::<Vec<_>>()
                .join(", "),
            crate::mail::message_id(&row.key, settings_domain())
        );
    }
    anyhow::ensure!(round.sent == 1, "the demo expected to send one briefing");
    Ok(())
}

fn settings_domain() -> &'static str {
    crate::config::DEFAULT_FROM
        .rsplit_once('@')
        .map_or("localhost", |(_, domain)| domain)
}

/// The demo's one stakeholder: follows every page, wants every kind but
/// minor, at once.
fn demo_subscriber(now: chrono::DateTime<chrono::Utc>) -> crate::store::Subscriber {
    crate::store::Subscriber {
        address: "councillor@example.org".to_owned(),
        name: "Sam".to_owned(),
        watches: Vec::new(),
        tags: Vec::new(),
        kinds: Vec::new(),
        cadence: crate::store::Cadence::Immediate,
        confirmed: true,
        consent_at: Some(now),
        consent_source: Some("demo".to_owned()),
        created: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripted_change_applies_to_the_bundled_page() {
        let html = PAGES[0].1;
        let changed = boundary_change(html).expect("applies");
        assert!(!changed.contains("52,630"));
        assert!(changed.contains("274,000"));
    }
}
