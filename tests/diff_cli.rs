//! `tidings diff` and `tidings extract`: local files, a loopback URL with
//! the store, and stored versions.

mod common;

use std::path::Path;

use common::{Run, Site, WatchDef, Workspace, command, finish, page, partnership_page, run_in};

/// A temporary folder with `old.html` and `new.html`.
fn files(old: &str, new: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("old.html"), old).expect("write");
    std::fs::write(dir.path().join("new.html"), new).expect("write");
    dir
}

fn diff_files(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["diff", "old.html", "new.html"];
    args.extend(extra);
    run_in(dir, &args)
}

/// The old page, and a new one with a place removed, one added and the
/// chair renamed.
fn edited_pair() -> (String, String) {
    let old = page("North Cumbria partnership", "Jane Smith");
    let new = partnership_page(
        "North Cumbria partnership",
        &[
            "Carlisle, with 108,387 residents",
            "Eden, with 52,630 residents",
            "Copeland joins the partnership from April next year",
        ],
        "John Smith",
    );
    (old, new)
}

#[test]
fn identical_texts_exit_0() {
    let html = page("North Cumbria partnership", "Jane Smith");
    // Markup and whitespace differ; the text does not.
    let reformatted = html
        .replace("<li>", "\n   <li class=\"place\">")
        .replace("<p>", "<p  class=\"lead\">");
    let dir = files(&html, &reformatted);
    let run = diff_files(dir.path(), &[]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.trim().is_empty(), "{run}");
}

#[test]
fn a_changed_word_exits_1_with_word_markers() {
    let old = page("North Cumbria partnership", "Jane Smith");
    let new = page("North Cumbria partnership", "John Smith");
    let dir = files(&old, &new);
    let run = diff_files(dir.path(), &[]);
    assert_eq!(run.code, 1, "{run}");
    assert!(run.stdout.contains("[-Jane-]{+John+}"), "{run}");
    assert!(
        run.stdout.contains("§ Leadership"),
        "changes sit under their section: {run}"
    );
    assert!(
        !run.stdout.contains('\u{1b}'),
        "no colour when stdout is not a terminal: {run}"
    );
    // Only the changed block is shown.
    assert!(!run.stdout.contains("Allerdale"), "{run}");
}

#[test]
fn word_format_shows_added_and_removed_blocks() {
    let (old, new) = edited_pair();
    let dir = files(&old, &new);
    let run = diff_files(dir.path(), &["--format", "word"]);
    assert_eq!(run.code, 1, "{run}");
    // The word diff proper starts at the first section; a summary may come
    // before it.
    let start = run.stdout.find("§ ").expect("a section line");
    insta::assert_snapshot!(&run.stdout[start..], @r"
    § Places
    - [-Allerdale, with 96,471 residents-]
    + {+Copeland joins the partnership from April next year+}

    § Leadership
    ~ The partnership board is chaired by [-Jane-]{+John+} Smith, who also chairs the integrated care board, and it meets monthly in public.
    ");
}

#[test]
fn unified_format_has_headers() {
    let (old, new) = edited_pair();
    let dir = files(&old, &new);
    let run = diff_files(dir.path(), &["--format", "unified"]);
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stdout.starts_with("--- old.html\n+++ new.html\n"),
        "{run}"
    );
    assert!(run.stdout.contains("\n@@ "), "{run}");
    assert!(
        run.stdout
            .contains("\n-- Allerdale, with 96,471 residents\n"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("\n+- Copeland joins the partnership from April next year\n"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("\n+The partnership board is chaired by John Smith"),
        "{run}"
    );
}

#[test]
fn json_format_lists_blocks_with_sections() {
    let (old, new) = edited_pair();
    let dir = files(&old, &new);
    let run = diff_files(dir.path(), &["--format", "json"]);
    assert_eq!(run.code, 1, "{run}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(json["changed"], true);
    assert_eq!(json["old"], "old.html");
    assert_eq!(json["new"], "new.html");
    assert_eq!(json["added"].as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json["added"][0]["section"], "Places");
    assert_eq!(json["added"][0]["type"], "list_item");
    assert_eq!(
        json["added"][0]["text"],
        "Copeland joins the partnership from April next year"
    );
    assert_eq!(json["removed"].as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json["removed"][0]["section"], "Places");
    assert_eq!(
        json["removed"][0]["text"],
        "Allerdale, with 96,471 residents"
    );
    assert_eq!(
        json["changed_blocks"].as_array().map(Vec::len),
        Some(1),
        "{json}"
    );
    let edit = &json["changed_blocks"][0];
    assert_eq!(edit["section"], "Leadership");
    assert!(
        edit["old"]
            .as_str()
            .is_some_and(|t| t.contains("Jane Smith"))
    );
    assert!(
        edit["new"]
            .as_str()
            .is_some_and(|t| t.contains("John Smith"))
    );
    let ops: Vec<(&str, &str)> = edit["words"]
        .as_array()
        .expect("words")
        .iter()
        .filter_map(|w| Some((w["op"].as_str()?, w["text"].as_str()?)))
        .filter(|(op, _)| *op != "equal")
        .collect();
    assert_eq!(ops, [("delete", "Jane"), ("insert", "John")]);
    assert!(
        json["changed_words"].as_u64().is_some_and(|n| n > 2),
        "{json}"
    );
}

#[test]
fn json_format_for_identical_texts_says_unchanged() {
    let html = page("North Cumbria partnership", "Jane Smith");
    let dir = files(&html, &html);
    let run = diff_files(dir.path(), &["--format", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(json["changed"], false);
    assert_eq!(json["added"], serde_json::json!([]));
}

#[test]
fn a_missing_file_exits_2_naming_it() {
    let html = page("North Cumbria partnership", "Jane Smith");
    let dir = files(&html, &html);
    let run = run_in(dir.path(), &["diff", "old.html", "missing-page.html"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("missing-page.html"), "{run}");
    assert!(run.stdout.is_empty(), "{run}");

    let run = run_in(dir.path(), &["extract", "missing-page.html"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("missing-page.html"), "{run}");
}

#[test]
fn no_color_wins_even_when_colour_is_forced() {
    let (old, new) = edited_pair();
    let dir = files(&old, &new);
    // Forcing colour shows it is there to be turned off...
    let forced = finish(
        command(dir.path())
            .args(["diff", "old.html", "new.html"])
            .env("CLICOLOR_FORCE", "1")
            .output()
            .expect("run"),
    );
    assert_eq!(forced.code, 1, "{forced}");
    assert!(
        forced.stdout.contains('\u{1b}'),
        "CLICOLOR_FORCE gives colour: {forced}"
    );
    assert!(
        !forced.stdout.contains("[-Jane-]"),
        "colour replaces the markers: {forced}"
    );
    // ...and NO_COLOR turns it off.
    let plain = finish(
        command(dir.path())
            .args(["diff", "old.html", "new.html"])
            .env("CLICOLOR_FORCE", "1")
            .env("NO_COLOR", "1")
            .output()
            .expect("run"),
    );
    assert_eq!(plain.code, 1, "{plain}");
    assert!(!plain.stdout.as_bytes().contains(&0x1b), "{plain}");
    assert!(!plain.stderr.as_bytes().contains(&0x1b), "{plain}");
    assert!(plain.stdout.contains("[-Jane-]{+John+}"), "{plain}");
}

/// The watch name in "stored as NAME@N" on stderr.
fn stored_as(run: &Run) -> Option<(String, u64)> {
    let line = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("stored as "))?;
    let (name, version) = line.trim().rsplit_once('@')?;
    Some((name.to_owned(), version.parse().ok()?))
}

#[test]
fn diff_url_compares_with_the_store_and_stores() {
    let site = Site::start();
    site.set_html(
        "/partnership",
        page("North Cumbria partnership", "Jane Smith"),
    );
    let ws = Workspace::new(&[]);
    let url = site.url("/partnership");

    let first = ws.run(&["diff", &url]);
    assert_eq!(first.code, 0, "nothing to compare with yet: {first}");
    let (name, version) = stored_as(&first).expect("first run stores");
    assert_eq!(version, 1);
    assert_eq!(ws.history_count(&name), 1);

    let same = ws.run(&["diff", &url]);
    assert_eq!(same.code, 0, "{same}");
    assert!(same.stdout.trim().is_empty(), "{same}");
    assert_eq!(
        ws.history_count(&name),
        1,
        "an unchanged page is not stored again"
    );

    site.set_html(
        "/partnership",
        page("North Cumbria partnership", "John Smith"),
    );
    let changed = ws.run(&["diff", &url]);
    assert_eq!(changed.code, 1, "{changed}");
    assert!(changed.stdout.contains("[-Jane-]{+John+}"), "{changed}");
    assert_eq!(stored_as(&changed), Some((name.clone(), 2)), "{changed}");
    assert_eq!(ws.history_count(&name), 2);

    // The run after a stored change is unchanged again.
    let after = ws.run(&["diff", &url]);
    assert_eq!(after.code, 0, "{after}");

    site.set_html(
        "/partnership",
        page("North Cumbria partnership", "Jo Bloggs"),
    );
    let peek = ws.run(&["diff", &url, "--no-store"]);
    assert_eq!(peek.code, 1, "{peek}");
    assert!(
        peek.stdout.contains("{+Jo Bloggs+}") || peek.stdout.contains("{+Jo+}"),
        "{peek}"
    );
    assert_eq!(stored_as(&peek), None, "{peek}");
    assert_eq!(ws.history_count(&name), 2, "--no-store stores nothing");
    // Still a change next time, since it was not stored.
    assert_eq!(ws.run(&["diff", &url, "--no-store"]).code, 1);

    // Stored versions against each other.
    let v1_v2 = ws.run(&["diff", &format!("{name}@1"), &format!("{name}@2")]);
    assert_eq!(v1_v2.code, 1, "{v1_v2}");
    assert!(v1_v2.stdout.contains("[-Jane-]{+John+}"), "{v1_v2}");
    let v2_latest = ws.run(&["diff", &format!("{name}@2"), &format!("{name}@latest")]);
    assert_eq!(v2_latest.code, 0, "{v2_latest}");
    let unified = ws.run(&[
        "diff",
        &format!("{name}@1"),
        &format!("{name}@2"),
        "--format",
        "unified",
    ]);
    assert!(
        unified
            .stdout
            .starts_with(&format!("--- {name}@1\n+++ {name}@2\n")),
        "{unified}"
    );
    // A stored version against the live page.
    let live = ws.run(&["diff", &format!("{name}@1"), &url]);
    assert_eq!(live.code, 1, "{live}");
    assert!(live.stdout.contains("[-Jane-]{+Jo+}"), "{live}");

    let missing = ws.run(&["diff", &format!("{name}@9"), &format!("{name}@1")]);
    assert_eq!(missing.code, 2, "{missing}");
    assert!(missing.stderr.contains("no version 9"), "{missing}");
}

#[test]
fn diff_by_watch_name_uses_the_configured_watch() {
    let site = Site::start();
    site.set_html(
        "/lsc",
        page("Lancashire and South Cumbria partnership", "Amir Khan"),
    );
    let ws = Workspace::new(&[WatchDef::new("lsc", site.url("/lsc"))]);
    assert_eq!(ws.check(&[]).label_of("lsc"), "NEW");

    site.set_html(
        "/lsc",
        page("Lancashire and South Cumbria partnership", "Beth Jones"),
    );
    // By name or by URL, the configured watch's history is used.
    let by_name = ws.run(&["diff", "lsc", "--no-store"]);
    assert_eq!(by_name.code, 1, "{by_name}");
    assert!(by_name.stdout.contains("[-Amir-]{+Beth+}"), "{by_name}");
    assert!(by_name.stdout.contains("§ Leadership"), "{by_name}");
    let by_url = ws.run(&["diff", &site.url("/lsc")]);
    assert_eq!(by_url.code, 1, "{by_url}");
    assert_eq!(stored_as(&by_url), Some(("lsc".to_owned(), 2)), "{by_url}");
    assert!(ws.show("lsc@2").contains("Beth Jones"));
    // The next check sees the stored page.
    assert_eq!(ws.check(&[]).label_of("lsc"), "UNCHANGED");
}

#[test]
fn diff_url_of_a_failing_site_exits_2_and_stores_nothing() {
    let site = Site::start();
    site.set_html("/p", page("North Cumbria partnership", "Jane Smith"));
    let ws = Workspace::new(&[WatchDef::new("p", site.url("/p"))]);
    assert_eq!(ws.run(&["diff", "p"]).code, 0);
    site.update("/p", |p| p.status = 503);
    let run = ws.run(&["diff", "p"]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains(&site.url("/p")), "{run}");
    assert_eq!(ws.history_count("p"), 1);
}

#[test]
fn extract_prints_blocks_with_markers_and_no_chrome() {
    let html = page("North Cumbria partnership", "Jane Smith");
    let dir = files(&html, &html);
    let run = run_in(dir.path(), &["extract", "old.html"]);
    assert_eq!(run.code, 0, "{run}");
    let text = &run.stdout;
    // Blocks are separated by exactly one blank line.
    let blocks: Vec<&str> = text.trim_end().split("\n\n").collect();
    assert!(
        blocks.iter().all(|b| !b.is_empty() && !b.contains('\n')),
        "{text:?}"
    );
    assert!(blocks.contains(&"## Places"), "{text}");
    assert!(blocks.contains(&"## Leadership"), "{text}");
    assert!(
        blocks.contains(&"- Allerdale, with 96,471 residents"),
        "{text}"
    );
    assert!(blocks.contains(&"- Eden, with 52,630 residents"), "{text}");
    assert!(
        blocks
            .iter()
            .any(|b| b.starts_with("The partnership brings together")),
        "{text}"
    );
    for chrome in [
        "cookies",
        "Accept",
        "Home",
        "About us",
        "Contact us",
        "Copyright",
        "Privacy policy",
    ] {
        assert!(!text.contains(chrome), "{chrome:?} leaked into {text}");
    }
}

#[test]
fn extract_with_a_real_fixture_if_present() {
    let Some(html) = common::fixture("wnec-stp.html") else {
        eprintln!("skipped: tests/fixtures/partnerships/wnec-stp.html is still a placeholder");
        return;
    };
    let dir = files(&html, &html);
    let run = run_in(dir.path(), &["extract", "old.html"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(!run.stdout.trim().is_empty(), "{run}");
    assert!(
        !run.stdout.to_lowercase().contains("accept all cookies"),
        "{run}"
    );
}

#[test]
fn extract_json_and_rules() {
    let html = page("North Cumbria partnership", "Jane Smith");
    let dir = files(&html, &html);
    let run = run_in(dir.path(), &["extract", "old.html", "--json"]);
    assert_eq!(run.code, 0, "{run}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(json["title"], "North Cumbria partnership");
    let blocks = json["blocks"].as_array().expect("blocks");
    assert!(
        blocks
            .iter()
            .any(|b| b["type"] == "heading" && b["level"] == 2 && b["text"] == "Places")
    );
    assert!(
        blocks
            .iter()
            .any(|b| b["type"] == "list_item" && b["text"] == "Eden, with 52,630 residents")
    );

    let selected = run_in(dir.path(), &["extract", "old.html", "--select", "ul"]);
    assert_eq!(selected.code, 0, "{selected}");
    assert!(selected.stdout.contains("- Carlisle"), "{selected}");
    assert!(!selected.stdout.contains("Leadership"), "{selected}");

    let ignored = run_in(
        dir.path(),
        &["extract", "old.html", "--ignore", r"\d{2,3},\d{3} "],
    );
    assert!(
        ignored.stdout.contains("- Eden, with residents"),
        "{ignored}"
    );

    let bad = run_in(dir.path(), &["extract", "old.html", "--select", "ul[["]);
    assert_eq!(bad.code, 2, "{bad}");
    assert!(bad.stderr.contains("ul[["), "{bad}");
}

#[test]
fn extract_url_fetches_the_page() {
    let site = Site::start();
    site.set_html("/p", page("North Cumbria partnership", "Jane Smith"));
    let dir = tempfile::tempdir().expect("tempdir");
    let run = run_in(dir.path(), &["extract", &site.url("/p")]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.stdout.contains("chaired by Jane Smith"), "{run}");
    // An ad-hoc extract needs no config and writes no store.
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
        "extract wrote files"
    );
}
