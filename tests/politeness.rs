//! Politeness towards the sites tidings watches, against loopback sites:
//! robots.txt is honoured (and can be overridden per watch), requests to one
//! host are spaced by `per_host_interval`, and a redirect to another site is
//! breakage, not content.

mod common;

use std::time::Duration;

use common::{Page, Site, WatchDef, Workspace, config_text, page};

fn robots(body: &str) -> Page {
    Page {
        content_type: "text/plain".to_owned(),
        conditional: false,
        ..Page::html(body)
    }
}

/// A site whose robots.txt keeps tidings out of `/private`.
fn site_with_private_area() -> Site {
    let site = Site::start();
    site.set_page(
        "/robots.txt",
        robots("User-agent: tidings\nDisallow: /private\n\nUser-agent: *\nDisallow:\n"),
    );
    site.set_html("/private/page", page("Private partnership", "Jane Smith"));
    site.set_html("/public/page", page("Public partnership", "Amir Khan"));
    site
}

#[test]
fn robots_txt_disallow_is_honoured_unless_the_watch_overrides_it() {
    let site = site_with_private_area();
    let ws = Workspace::new(&[
        WatchDef::new("blocked", site.url("/private/page")),
        WatchDef::new("override", site.url("/private/page")).with("robots = false"),
        WatchDef::new("public", site.url("/public/page")),
    ]);

    let run = ws.check(&["blocked"]);
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.label_of("blocked"), "ERROR", "{run}");
    let line = &run.check_lines()[0];
    assert!(line.rest.contains("robots.txt disallows"), "{run}");
    assert!(line.rest.contains("/private/page"), "{run}");
    assert_eq!(site.requests_for("/robots.txt").len(), 1);
    assert!(
        site.requests_for("/private/page").is_empty(),
        "a disallowed page must never be requested"
    );
    assert_eq!(ws.history_count("blocked"), 0);

    // Allowed paths on the same site are fetched.
    let run = ws.check(&["public"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.label_of("public"), "NEW", "{run}");

    // `robots = false` fetches the page without asking robots.txt.
    let robots_reads = site.requests_for("/robots.txt").len();
    let run = ws.check(&["override"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.label_of("override"), "NEW", "{run}");
    assert_eq!(site.requests_for("/private/page").len(), 1);
    assert_eq!(site.requests_for("/robots.txt").len(), robots_reads);
}

#[test]
fn robots_txt_is_read_once_per_site_in_a_pass() {
    let site = site_with_private_area();
    site.set_html("/public/other", page("Another partnership", "Amir Khan"));
    // With a per-host interval (the default is 1s) the checks of one site
    // take turns, and the first one's read of robots.txt serves the rest.
    let ws = Workspace::with_config(
        &config_text(&[
            WatchDef::new("one", site.url("/public/page")),
            WatchDef::new("two", site.url("/public/other")),
            WatchDef::new("blocked", site.url("/private/page")),
        ])
        .replace(
            "per_host_interval = \"0s\"",
            "per_host_interval = \"100ms\"",
        ),
    );
    let run = ws.check(&[]);
    assert_eq!(run.label_of("one"), "NEW", "{run}");
    assert_eq!(run.label_of("two"), "NEW", "{run}");
    assert_eq!(run.label_of("blocked"), "ERROR", "{run}");
    assert_eq!(site.requests_for("/robots.txt").len(), 1, "{run}");
}

#[test]
fn a_missing_robots_txt_allows_everything() {
    let site = Site::start();
    site.set_html("/private/page", page("Private partnership", "Jane Smith"));
    let ws = Workspace::new(&[WatchDef::new("page", site.url("/private/page"))]);

    let run = ws.check(&[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.label_of("page"), "NEW", "{run}");
    assert_eq!(
        site.requests_for("/robots.txt").len(),
        1,
        "robots.txt is asked for"
    );
    assert_eq!(site.requests_for("/private/page").len(), 1);
}

/// Issue 15: a site that cannot be reached at all is a network error, not
/// "robots.txt could not be read … treated as disallowed".
#[test]
fn an_unreachable_site_is_a_network_error_not_a_robots_one() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let ws = Workspace::new(&[WatchDef::new(
        "page",
        format!("http://127.0.0.1:{port}/page"),
    )]);
    let run = ws.check(&[]);
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.label_of("page"), "ERROR", "{run}");
    let line = &run.check_lines()[0];
    assert!(
        line.rest.contains("network error: could not connect"),
        "{run}"
    );
    assert!(!line.rest.contains("robots.txt"), "{run}");
}

#[test]
fn an_unreadable_robots_txt_fails_the_check_without_fetching_the_page() {
    let site = Site::start();
    site.set_page(
        "/robots.txt",
        Page {
            status: 503,
            ..robots("Service unavailable")
        },
    );
    site.set_html("/page", page("A partnership", "Jane Smith"));
    let ws = Workspace::new(&[WatchDef::new("page", site.url("/page"))]);

    let run = ws.check(&[]);
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.label_of("page"), "ERROR", "{run}");
    let line = &run.check_lines()[0];
    assert!(line.rest.contains("robots.txt could not be read"), "{run}");
    assert!(line.rest.contains("503"), "{run}");
    assert!(site.requests_for("/page").is_empty(), "{run}");
    assert_eq!(ws.history_count("page"), 0);

    // Once robots.txt is back, the page is fetched.
    site.remove("/robots.txt");
    let run = ws.check(&[]);
    assert_eq!(run.label_of("page"), "NEW", "{run}");
}

#[test]
fn an_unreadable_robots_txt_is_a_transient_error() {
    use tidings::fetch::{FetchError, FetchSettings, Fetcher};

    let site = Site::start();
    site.set_page(
        "/robots.txt",
        Page {
            status: 503,
            ..robots("Service unavailable")
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fetcher = Fetcher::new(FetchSettings::default()).expect("fetcher");
    let url = url::Url::parse(&site.url("/page")).expect("url");
    let error = runtime
        .block_on(fetcher.check_robots(&url))
        .expect_err("a 503 robots.txt disallows for now");
    assert!(
        matches!(error, FetchError::RobotsUnreachable { .. }),
        "{error}"
    );
    assert!(error.is_transient(), "{error}");

    // A disallow is not transient: trying again will not help.
    let site = site_with_private_area();
    let allowed = url::Url::parse(&site.url("/public/page")).expect("url");
    let first = runtime.block_on(fetcher.check_robots(&allowed));
    assert!(matches!(first, Ok(true)), "read from the site: {first:?}");
    let again = runtime.block_on(fetcher.check_robots(&allowed));
    assert!(matches!(again, Ok(false)), "then from the cache: {again:?}");
    let url = url::Url::parse(&site.url("/private/page")).expect("url");
    let error = runtime
        .block_on(fetcher.check_robots(&url))
        .expect_err("disallowed");
    assert!(
        matches!(error, FetchError::RobotsDisallowed { .. }),
        "{error}"
    );
    assert!(!error.is_transient(), "{error}");
}

#[test]
fn requests_to_one_host_are_spaced_by_the_per_host_interval() {
    let site = Site::start();
    let paths: Vec<String> = (0..4).map(|i| format!("/p/{i}")).collect();
    let watches: Vec<WatchDef> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            site.set_html(path, page(&format!("Partnership {i}"), "Jane Smith"));
            WatchDef::new(&format!("p{i}"), site.url(path))
        })
        .collect();
    let text = config_text(&watches).replace(
        "per_host_interval = \"0s\"",
        "per_host_interval = \"300ms\"",
    );
    let ws = Workspace::with_config(&text);

    let run = ws.check(&[]);
    assert_eq!(run.code, 0, "{run}");
    let arrivals = site.arrivals();
    let pages = arrivals.iter().filter(|(p, _)| paths.contains(p)).count();
    assert_eq!(pages, 4, "{arrivals:?}");
    // Every request to the host, robots.txt included, waits its turn. The
    // times are arrivals at the server, so one request that is slow to
    // arrive (the first opens the connection; a loaded machine may be slow
    // to run the server's thread) shortens the gap after it: each gap is
    // held to half the interval, and the five requests together to four
    // intervals less that slack. Without the spacing they would arrive
    // within a few milliseconds of each other.
    let gaps: Vec<Duration> = arrivals
        .windows(2)
        .map(|pair| pair[1].1.duration_since(pair[0].1))
        .collect();
    assert!(
        gaps.iter().all(|gap| *gap >= Duration::from_millis(150)),
        "requests closer than the interval: {gaps:?} ({arrivals:?})"
    );
    let span = arrivals[arrivals.len() - 1].1.duration_since(arrivals[0].1);
    assert!(
        span >= Duration::from_millis(4 * 300 - 150),
        "five requests spaced by 300 ms took only {span:?} ({arrivals:?})"
    );
}

#[test]
fn a_redirect_to_another_site_is_an_error_and_nothing_is_stored() {
    let other = Site::start();
    other.set_html("/landing", page("Somebody else's page", "Nobody"));
    let site = Site::start();
    // 127.0.0.1 and localhost are different hosts.
    let elsewhere = format!("http://localhost:{}/landing", other.port());
    site.set_redirect("/moved", elsewhere.as_str());
    site.set_html("/kept", page("A partnership", "Jane Smith"));
    site.set_redirect("/renamed", site.url("/kept"));
    let ws = Workspace::new(&[
        WatchDef::new("moved", site.url("/moved")),
        WatchDef::new("renamed", site.url("/renamed")),
    ]);

    let run = ws.check(&[]);
    assert_eq!(run.code, 1, "{run}");
    assert_eq!(run.label_of("moved"), "ERROR", "{run}");
    let line = run
        .check_lines()
        .into_iter()
        .find(|l| l.name == "moved")
        .expect("line");
    assert!(line.rest.contains("redirected to another site"), "{run}");
    assert!(line.rest.contains(&elsewhere), "{run}");
    assert_eq!(ws.history_count("moved"), 0);
    // A redirect within the site is followed as usual.
    assert_eq!(run.label_of("renamed"), "NEW", "{run}");
    assert_eq!(ws.history_count("renamed"), 1);
}
