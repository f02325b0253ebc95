//! `tidings check` against a loopback site: new, unchanged and changed
//! pages, conditional GET, outages and other failures that must never be
//! stored as content, and the JSON report.

mod common;

use common::{Page, Site, WatchDef, Workspace, page, partnership_page, refused_url};

/// Two watches on one site, both pages served.
fn two_watches() -> (Site, Workspace) {
    let site = Site::start();
    site.set_html("/wnec", page("North Cumbria partnership", "Jane Smith"));
    site.set_html(
        "/lsc",
        page("Lancashire and South Cumbria partnership", "Amir Khan"),
    );
    let ws = Workspace::new(&[
        WatchDef::new("wnec", site.url("/wnec")),
        WatchDef::new("lsc", site.url("/lsc")),
    ]);
    (site, ws)
}

#[test]
fn new_then_unchanged_then_changed_with_history_and_show() {
    let (site, ws) = two_watches();

    let first = ws.check(&[]);
    assert_eq!(first.code, 0, "{first}");
    assert_eq!(first.label_of("wnec"), "NEW", "{first}");
    assert_eq!(first.label_of("lsc"), "NEW", "{first}");
    assert_eq!(first.check_lines().len(), 2, "{first}");

    let second = ws.check(&[]);
    assert_eq!(second.code, 0, "{second}");
    assert_eq!(second.label_of("wnec"), "UNCHANGED", "{second}");
    assert_eq!(second.label_of("lsc"), "UNCHANGED", "{second}");

    site.set_html(
        "/lsc",
        page("Lancashire and South Cumbria partnership", "Beth Jones"),
    );
    let third = ws.check(&[]);
    assert_eq!(third.code, 0, "{third}");
    assert_eq!(third.label_of("wnec"), "UNCHANGED", "{third}");
    assert_eq!(third.label_of("lsc"), "CHANGED", "{third}");

    assert_eq!(ws.history_count("lsc"), 2);
    assert_eq!(ws.history_count("wnec"), 1);
    let history = ws.run(&["history", "lsc"]);
    let rows = common::history_rows(&history.stdout);
    assert_eq!(rows[0][0], "1");
    assert_eq!(rows[1][0], "2");
    assert_eq!(
        rows[0].last().map(String::as_str),
        Some("-"),
        "first version has no change size: {history}"
    );
    assert_eq!(
        rows[1].last().map(String::as_str),
        Some("4w"),
        "two words out, two in: {history}"
    );

    let old = ws.show("lsc@1");
    let new = ws.show("lsc@2");
    assert!(old.contains("chaired by Amir Khan"), "{old}");
    assert!(!old.contains("Beth Jones"), "{old}");
    assert!(new.contains("chaired by Beth Jones"), "{new}");
    assert_eq!(ws.show("lsc@latest"), new);
    assert_eq!(ws.show("lsc"), new);
    // The stored text is the extracted text: no banner, no navigation.
    assert!(
        old.contains("\n## Places\n\n- Allerdale, with 96,471 residents\n"),
        "{old}"
    );
    assert!(!old.contains("cookies"), "{old}");
    assert!(!old.contains("Contact us"), "{old}");
}

#[test]
fn named_watches_only_check_those() {
    let (site, ws) = two_watches();
    let run = ws.check(&["lsc"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.check_lines().len(), 1, "{run}");
    assert_eq!(run.label_of("lsc"), "NEW");
    assert!(site.requests_for("/wnec").is_empty());
    assert_eq!(ws.history_count("wnec"), 0);
}

#[test]
fn second_pass_sends_validators_and_a_304_is_unchanged() {
    let (site, ws) = two_watches();
    let first = ws.check(&[]);
    assert_eq!(first.code, 0, "{first}");
    let requests = site.requests_for("/wnec");
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].headers.get("if-none-match").is_none(),
        "a first fetch has nothing to validate against"
    );

    let second = ws.run(&["check", "--json"]);
    assert_eq!(second.code, 0, "{second}");
    let requests = site.requests_for("/wnec");
    assert_eq!(requests.len(), 2);
    let expected = Page::html(page("North Cumbria partnership", "Jane Smith"));
    let sent = |name: &str| {
        requests[1]
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(sent("if-none-match"), Some(expected.etag()));
    assert_eq!(sent("if-modified-since"), Some(expected.last_modified()));

    let json: serde_json::Value = serde_json::from_str(&second.stdout).expect("json report");
    assert_eq!(
        json["unchanged"],
        serde_json::json!(["wnec", "lsc"]),
        "{second}"
    );
    for watch in json["watches"].as_array().expect("watches") {
        assert_eq!(watch["outcome"], "unchanged", "{watch}");
        assert_eq!(
            watch["not_modified"], true,
            "the server answered 304: {watch}"
        );
    }
    assert_eq!(ws.history_count("wnec"), 1);
}

#[test]
fn a_page_without_validators_is_compared_by_text() {
    let site = Site::start();
    let mut plain = Page::html(page("North Cumbria partnership", "Jane Smith"));
    plain.conditional = false;
    site.set_page("/wnec", plain);
    let ws = Workspace::new(&[WatchDef::new("wnec", site.url("/wnec"))]);
    assert_eq!(ws.check(&[]).label_of("wnec"), "NEW");

    let second = ws.run(&["check", "--json"]);
    assert_eq!(second.code, 0, "{second}");
    let json: serde_json::Value = serde_json::from_str(&second.stdout).expect("json");
    assert_eq!(json["watches"][0]["outcome"], "unchanged");
    assert_eq!(json["watches"][0]["not_modified"], false, "{json}");
    let requests = site.requests_for("/wnec");
    assert!(requests[1].headers.get("if-none-match").is_none());
    assert!(requests[1].headers.get("if-modified-since").is_none());
}

#[test]
fn an_outage_is_an_error_naming_the_url_and_stores_nothing() {
    let (site, ws) = two_watches();
    assert_eq!(ws.check(&[]).code, 0);

    site.update("/wnec", |p| {
        p.status = 500;
        p.body = b"<html><body><h1>Service unavailable</h1></body></html>".to_vec();
    });
    let run = ws.check(&[]);
    assert_eq!(run.code, 1, "{run}");
    let line = run
        .check_lines()
        .into_iter()
        .find(|l| l.name == "wnec")
        .expect("a line for wnec");
    assert_eq!(line.label, "ERROR", "{run}");
    assert!(
        line.rest.contains(&site.url("/wnec")),
        "the error names the URL: {run}"
    );
    assert!(line.rest.contains("500"), "{run}");
    // One failing watch does not stop the others.
    assert_eq!(run.label_of("lsc"), "UNCHANGED", "{run}");
    // retries = 0: one request, not a retry storm.
    assert_eq!(site.requests_for("/wnec").len(), 2);

    assert_eq!(ws.history_count("wnec"), 1);
    let latest = ws.show("wnec@latest");
    assert!(latest.contains("chaired by Jane Smith"), "{latest}");
    assert!(!latest.contains("Service unavailable"), "{latest}");

    // When the site is back with the same page, nothing changed.
    site.update("/wnec", |p| {
        p.status = 200;
        p.body = page("North Cumbria partnership", "Jane Smith").into_bytes();
    });
    let back = ws.check(&[]);
    assert_eq!(back.code, 0, "{back}");
    assert_eq!(back.label_of("wnec"), "UNCHANGED", "{back}");
    assert_eq!(ws.history_count("wnec"), 1);
}

#[test]
fn connection_refused_is_an_error_naming_the_url() {
    let url = refused_url("/gone");
    let ws = Workspace::new(&[WatchDef::new("gone", url.clone())]);
    let run = ws.check(&[]);
    assert_eq!(run.code, 1, "{run}");
    let lines = run.check_lines();
    assert_eq!(lines.len(), 1, "{run}");
    assert_eq!(lines[0].label, "ERROR");
    assert!(lines[0].rest.contains(&url), "{run}");
    assert_eq!(ws.history_count("gone"), 0);
}

/// Serves `bad` in place of a stored page and checks that it is reported as
/// an error containing `expect`, and that nothing new is stored.
fn assert_refused_as_content(bad: Page, expect: &str) {
    let (site, ws) = two_watches();
    assert_eq!(ws.check(&[]).code, 0);
    site.set_page("/wnec", bad);
    let run = ws.check(&[]);
    assert_eq!(run.code, 1, "{run}");
    let line = run
        .check_lines()
        .into_iter()
        .find(|l| l.name == "wnec")
        .expect("a line for wnec");
    assert_eq!(line.label, "ERROR", "{run}");
    assert!(line.rest.contains(expect), "expected {expect:?}: {run}");
    assert!(
        line.rest.contains(&site.url("/wnec")),
        "the error names the URL: {run}"
    );
    assert_eq!(ws.history_count("wnec"), 1, "nothing stored for a bad page");
    assert!(ws.show("wnec@latest").contains("Jane Smith"));
}

#[test]
fn an_empty_200_is_an_error_not_an_emptied_page() {
    assert_refused_as_content(Page::html(""), "empty");
}

#[test]
fn a_whitespace_only_200_is_an_error() {
    assert_refused_as_content(Page::html("  \n\r\n\t "), "empty");
}

#[test]
fn a_page_with_no_text_is_an_error() {
    assert_refused_as_content(
        Page::html(
            "<!doctype html><html><head><title>x</title></head><body><div></div></body></html>",
        ),
        "no text",
    );
}

#[test]
fn a_pdf_is_an_error_not_content() {
    let mut pdf = Page::html("");
    pdf.body = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n".to_vec();
    pdf.content_type = "application/pdf".to_owned();
    assert_refused_as_content(pdf, "application/pdf");
}

#[test]
fn a_moved_block_is_not_a_change() {
    let site = Site::start();
    site.set_html(
        "/wnec",
        partnership_page("North Cumbria partnership", common::PLACES, "Jane Smith"),
    );
    let ws = Workspace::new(&[WatchDef::new("wnec", site.url("/wnec"))]);
    assert_eq!(ws.check(&[]).label_of("wnec"), "NEW");

    let mut reordered: Vec<&str> = common::PLACES.to_vec();
    reordered.reverse();
    site.set_html(
        "/wnec",
        partnership_page("North Cumbria partnership", &reordered, "Jane Smith"),
    );
    let run = ws.check(&[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.label_of("wnec"), "UNCHANGED", "{run}");
    // The server sent the new page (its ETag changed), so the text was compared.
    assert_eq!(site.requests_for("/wnec").len(), 2);
    assert_eq!(ws.history_count("wnec"), 1);
}

#[test]
fn json_report_sorts_watches_into_new_changed_unchanged_and_error() {
    let site = Site::start();
    site.set_html("/a", page("Partnership A", "Ann"));
    site.set_html("/b", page("Partnership B", "Bob"));
    let watches = [
        WatchDef::new("a", site.url("/a")),
        WatchDef::new("b", site.url("/b")),
        WatchDef::new("down", site.url("/down")),
        WatchDef::new("late", site.url("/late")),
    ];
    let ws = Workspace::new(&watches);
    let first = ws.run(&["check", "--json"]);
    assert_eq!(first.code, 1, "{first}");
    let json: serde_json::Value = serde_json::from_str(&first.stdout).expect("one JSON document");
    assert_eq!(json["new"], serde_json::json!(["a", "b"]));
    assert_eq!(json["error"], serde_json::json!(["down", "late"]));

    site.set_html("/a", page("Partnership A", "Ann Other"));
    site.set_html("/late", page("Partnership L", "Lee"));
    let second = ws.run(&["check", "--json"]);
    assert_eq!(second.code, 1, "{second}");
    let json: serde_json::Value = serde_json::from_str(&second.stdout).expect("one JSON document");
    assert_eq!(json["new"], serde_json::json!(["late"]), "{json}");
    assert_eq!(json["changed"], serde_json::json!(["a"]), "{json}");
    assert_eq!(json["unchanged"], serde_json::json!(["b"]), "{json}");
    assert_eq!(json["error"], serde_json::json!(["down"]), "{json}");
    let reports = json["watches"].as_array().expect("watches");
    assert_eq!(reports.len(), 4);
    let names: Vec<&str> = reports.iter().filter_map(|r| r["watch"].as_str()).collect();
    assert_eq!(names, ["a", "b", "down", "late"], "reports in config order");
    let down = &reports[2];
    assert_eq!(down["outcome"], "failed");
    assert!(
        down["error"].as_str().is_some_and(|e| e.contains("404")),
        "{down}"
    );
    let changed = &reports[0];
    assert_eq!(changed["version"], 2, "{changed}");
    // No per-watch lines mixed into the JSON.
    assert!(!second.stdout.contains("CHANGED: a"));
}

#[test]
fn an_unknown_watch_name_exits_2_naming_it() {
    let (site, ws) = two_watches();
    let run = ws.check(&["wnec", "no-such-watch"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("no-such-watch"), "{run}");
    assert!(run.stdout.is_empty(), "nothing is checked: {run}");
    assert!(site.requests().is_empty(), "nothing is fetched");
}

#[test]
fn a_select_matching_nothing_is_an_error_naming_the_selector() {
    let site = Site::start();
    site.set_html("/news", page("Landmark partnership", "Jane Smith"));
    let ws = Workspace::new(&[
        WatchDef::new("news", site.url("/news")).with("select = \"article.news-body\"")
    ]);
    let run = ws.check(&[]);
    assert_eq!(run.code, 1, "{run}");
    let lines = run.check_lines();
    assert_eq!(lines[0].label, "ERROR", "{run}");
    assert!(lines[0].rest.contains("article.news-body"), "{run}");
    assert_eq!(ws.history_count("news"), 0);
}

#[test]
fn a_select_rule_narrows_what_is_stored() {
    let site = Site::start();
    let html = page("Landmark partnership", "Jane Smith").replace(
        "<h2>Leadership</h2>",
        "<article class=\"news-body\"><p>Councils and the NHS agree a landmark partnership for Lancashire.</p></article><h2>Leadership</h2>",
    );
    site.set_html("/news", html);
    let ws = Workspace::new(&[
        WatchDef::new("news", site.url("/news")).with("select = \"article.news-body\"")
    ]);
    let run = ws.check(&[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        ws.show("news"),
        "Councils and the NHS agree a landmark partnership for Lancashire.\n"
    );
}

#[test]
fn a_bad_config_exits_78() {
    let ws = Workspace::with_config("[[watch]]\nname = \"x\"\nurl = \"not a url\"\n");
    let run = ws.check(&[]);
    assert_eq!(run.code, 78, "{run}");
    assert!(run.stderr.contains("tidings.toml:3"), "{run}");
}

#[test]
fn history_and_show_name_a_watch_without_versions() {
    let (_site, ws) = two_watches();
    assert_eq!(ws.check(&["wnec"]).code, 0);
    let history = ws.run(&["history", "lsc"]);
    assert_eq!(history.code, 2, "{history}");
    assert!(history.stderr.contains("`lsc`"), "{history}");
    let show = ws.run(&["show", "lsc@latest"]);
    assert_eq!(show.code, 2, "{show}");
    assert!(show.stderr.contains("`lsc`"), "{show}");
    let beyond = ws.run(&["show", "wnec@2"]);
    assert_eq!(beyond.code, 2, "{beyond}");
    assert!(beyond.stderr.contains("no version 2"), "{beyond}");
    let bad = ws.run(&["show", "wnec@two"]);
    assert_eq!(bad.code, 2, "{bad}");
    assert!(bad.stderr.contains("wnec@two"), "{bad}");
}

#[test]
fn the_partnership_fixtures_check_cleanly() {
    let names = [
        "wnec-stp",
        "stp-44-areas",
        "lsc-place-review",
        "lsc-landmark-partnership",
        "lsc-ics",
    ];
    let pages: Vec<(&str, String)> = names
        .iter()
        .filter_map(|name| Some((*name, common::fixture(&format!("{name}.html"))?)))
        .collect();
    if pages.len() < names.len() {
        eprintln!("skipped: tests/fixtures/partnerships/*.html are still placeholders");
        return;
    }
    let site = Site::start();
    let mut watches = Vec::new();
    for (name, html) in &pages {
        let path = format!("/{name}");
        site.set_html(&path, html.clone());
        let watch = WatchDef::new(name, site.url(&path));
        // As in config/watches/partnerships.toml.
        watches.push(if *name == "lsc-landmark-partnership" {
            watch.with("exclude = [\".related-news\", \".share\"]")
        } else {
            watch
        });
    }
    let ws = Workspace::new(&watches);
    let first = ws.check(&[]);
    assert_eq!(first.code, 0, "{first}");
    for name in names {
        assert_eq!(first.label_of(name), "NEW", "{first}");
        let text = ws.show(name);
        assert!(
            text.split("\n\n").count() >= 3,
            "{name} has little text:\n{text}"
        );
        assert!(
            !text.to_lowercase().contains("accept all cookies"),
            "{name}:\n{text}"
        );
    }
    // The same pages again, served without validators so the text is
    // compared: nothing changed.
    for (name, html) in &pages {
        let mut page = Page::html(html.clone());
        page.conditional = false;
        site.set_page(&format!("/{name}"), page);
    }
    let second = ws.check(&[]);
    assert_eq!(second.code, 0, "{second}");
    for name in names {
        assert_eq!(second.label_of(name), "UNCHANGED", "{second}");
    }
}
