//! `tidings replay DIR`: numbered HTML files fed through the pipeline as
//! successive fetches of one watch, and (when present) the shared history
//! evaluation set.

mod common;

use std::path::{Path, PathBuf};

use common::{Run, page, run_in};

/// Says why a test did nothing. Written to stderr directly rather than with
/// `eprintln!`, which the test harness captures: a skip must show in the
/// `cargo test` output, not only when the test fails.
macro_rules! skip_notice {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Writes `pages` as `00.html`, `01.html`, … into `dir/name`.
fn history(dir: &Path, name: &str, pages: &[String]) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).expect("mkdir");
    for (i, html) in pages.iter().enumerate() {
        std::fs::write(folder.join(format!("{i:02}.html")), html).expect("write");
    }
    folder
}

/// The same page with different markup and the same text: attributes,
/// wrappers, whitespace, a comment and a script.
fn markup_only(html: &str) -> String {
    html.replace("<p>", "<p class=\"lead\" data-build=\"7f3a9c\">")
        // Every list, with or without attributes, gains a wrapper, so the
        // markup stays balanced: only the markup changes, not the tree's text.
        .replace("<ul", "<div class=\"places-wrapper\">\n  <ul")
        .replace("</ul>", "</ul>\n</div>")
        .replace("<li>", "\n    <li>")
        .replace(
            "</main>",
            "<!-- cache 2024-06-01T10:00:00Z --><script>var t = 'abc123';</script></main>",
        )
}

/// Three steps: the page, a real edit, then a markup-only rebuild.
fn three_steps() -> Vec<String> {
    let first = page("North Cumbria partnership", "Jane Smith");
    let second = page("North Cumbria partnership", "John Smith");
    let third = markup_only(&second);
    assert_ne!(second, third);
    vec![first, second, third]
}

fn replay(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["replay", dir.to_str().expect("utf-8")];
    all.extend(args);
    // Run somewhere harmless: never inside the folder being replayed.
    let cwd = tempfile::tempdir().expect("tempdir");
    run_in(cwd.path(), &all)
}

#[test]
fn replay_prints_new_changed_unchanged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = history(tmp.path(), "wnec", &three_steps());
    let run = replay(&dir, &[]);
    assert_eq!(run.code, 0, "{run}");
    let lines = run.lines();
    assert_eq!(lines.len(), 3, "{run}");
    assert_eq!(lines[0], "00.html: NEW (version 1)");
    assert!(lines[1].starts_with("01.html: CHANGED (version 2"), "{run}");
    assert!(lines[1].contains("+0 -0 ~1 blocks"), "{run}");
    assert_eq!(lines[2], "02.html: UNCHANGED", "markup-only change: {run}");
}

#[test]
fn replay_json_lines_parse() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = history(tmp.path(), "wnec", &three_steps());
    let run = replay(&dir, &["--json"]);
    assert_eq!(run.code, 0, "{run}");
    let values: Vec<serde_json::Value> = run
        .lines()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    assert_eq!(values.len(), 3);
    let steps: Vec<&str> = values.iter().filter_map(|v| v["step"].as_str()).collect();
    assert_eq!(steps, ["00.html", "01.html", "02.html"]);
    let outcomes: Vec<&str> = values
        .iter()
        .filter_map(|v| v["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["new", "changed", "unchanged"]);
    assert_eq!(values[0]["version"], 1);
    assert_eq!(values[1]["version"], 2);
    let edit = &values[1]["diff"]["changed_blocks"][0];
    assert_eq!(edit["section"], "Leadership", "{}", values[1]);
    assert!(
        edit["new"]
            .as_str()
            .is_some_and(|t| t.contains("John Smith"))
    );
}

#[test]
fn replay_orders_steps_numerically_and_skips_other_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let steps = three_steps();
    let dir = tmp.path().join("steps");
    std::fs::create_dir(&dir).expect("mkdir");
    // 2.html sorts after 10.html as text; numerically it is earlier.
    std::fs::write(dir.join("1.html"), &steps[0]).expect("write");
    std::fs::write(dir.join("2.html"), &steps[1]).expect("write");
    std::fs::write(dir.join("10.html"), &steps[2]).expect("write");
    std::fs::write(dir.join("notes.html"), "<p>not a step</p>").expect("write");
    std::fs::write(dir.join("03.ota-version.md"), "# not a step").expect("write");
    std::fs::write(dir.join("steps.tsv"), "step\tfrom\tto\n").expect("write");
    let run = replay(&dir, &[]);
    assert_eq!(run.code, 0, "{run}");
    let labels: Vec<&str> = run
        .lines()
        .iter()
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(labels, ["1.html", "2.html", "10.html"], "{run}");
    assert!(run.lines()[2].ends_with("UNCHANGED"), "{run}");
}

#[test]
fn replay_reports_an_empty_step_as_an_error_and_carries_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let steps = three_steps();
    let pages = vec![
        steps[0].clone(),
        "<html><body></body></html>".to_owned(),
        steps[0].clone(),
        steps[1].clone(),
    ];
    let dir = history(tmp.path(), "gap", &pages);
    let run = replay(&dir, &[]);
    assert_eq!(run.code, 0, "{run}");
    let lines = run.lines();
    assert_eq!(lines.len(), 4, "{run}");
    assert!(lines[1].starts_with("01.html: ERROR: "), "{run}");
    assert!(
        lines[1].contains("01.html"),
        "the error names the file: {run}"
    );
    assert_eq!(
        lines[2], "02.html: UNCHANGED",
        "an empty step is not a version: {run}"
    );
    assert!(lines[3].starts_with("03.html: CHANGED (version 2"), "{run}");
}

#[test]
fn replay_keeps_its_store_with_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = history(tmp.path(), "wnec", &three_steps());
    let state = tmp.path().join("state");
    let run = replay(&dir, &["--state", state.to_str().expect("utf-8")]);
    assert_eq!(run.code, 0, "{run}");
    let history = run_in(
        tmp.path(),
        &["history", "wnec", "--state", state.to_str().expect("utf-8")],
    );
    assert_eq!(history.code, 0, "{history}");
    assert_eq!(common::history_rows(&history.stdout).len(), 2, "{history}");
    let old = run_in(
        tmp.path(),
        &["show", "wnec@1", "--state", state.to_str().expect("utf-8")],
    );
    assert!(old.stdout.contains("Jane Smith"), "{old}");
}

#[test]
fn replay_of_a_folder_without_steps_fails() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let run = replay(&empty, &[]);
    assert_eq!(run.code, 2, "{run}");
    assert!(run.stderr.contains("empty"), "{run}");
    let missing = replay(&tmp.path().join("missing"), &[]);
    assert_eq!(missing.code, 2, "{missing}");
    assert!(missing.stderr.contains("missing"), "{missing}");
}

#[test]
fn replay_of_a_real_fixture_with_a_markup_change() {
    let Some(html) = common::fixture("lsc-ics.html") else {
        eprintln!("skipped: tests/fixtures/partnerships/lsc-ics.html is still a placeholder");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = history(tmp.path(), "lsc-ics", &[html.clone(), markup_only(&html)]);
    let run = replay(&dir, &[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        run.lines(),
        ["00.html: NEW (version 1)", "01.html: UNCHANGED"],
        "{run}"
    );
}

/// The shared histories: `TIDINGS_EVAL_HISTORIES`, else
/// `../shared/eval/histories` beside the repository. Read in place, never
/// copied.
fn eval_histories() -> Option<PathBuf> {
    let dir = std::env::var_os("TIDINGS_EVAL_HISTORIES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/eval/histories"));
    if dir.is_dir() {
        Some(dir)
    } else {
        skip_notice!(
            "skipped: history evaluation set not found at {} (set TIDINGS_EVAL_HISTORIES)",
            dir.display()
        );
        None
    }
}

fn numbered_html(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("read history")
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_suffix(".html")
                .is_some_and(|stem| !stem.is_empty() && stem.chars().all(|c| c.is_ascii_digit()))
        })
        .count()
}

#[test]
fn every_eval_history_replays() {
    let Some(root) = eval_histories() else { return };
    let mut histories: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("read histories")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && numbered_html(p) > 0)
        .collect();
    histories.sort();
    assert!(!histories.is_empty(), "no histories in {}", root.display());
    // Debug-build extraction of full pages is the slow part: share the
    // histories between a couple of threads.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let chunks: Vec<Vec<PathBuf>> = (0..workers)
        .map(|w| histories.iter().skip(w).step_by(workers).cloned().collect())
        .collect();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for dir in chunk {
                        let run = replay(dir, &[]);
                        let lines = run.lines();
                        let expected = numbered_html(dir);
                        let first_ok = lines
                            .first()
                            .is_some_and(|l| l.contains(": NEW (version 1)"));
                        if run.code != 0 || lines.len() != expected || !first_ok {
                            failures.push(format!(
                                "{}: expected exit 0 and {expected} lines starting with NEW\n{run}",
                                dir.display()
                            ));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
