//! Config files: every shipped config validates, bad configs are refused
//! with exit 78 and errors naming `file:line` and the field, and the shape
//! of `tidings validate` output.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{Run, Workspace, run_in};

const EXIT_BAD_CONFIG: i32 = 78;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `config/**/*.toml` in the repository.
fn shipped_configs() -> Vec<PathBuf> {
    let pattern = repo().join("config/**/*.toml");
    let files: Vec<PathBuf> = glob::glob(pattern.to_str().expect("utf-8"))
        .expect("glob")
        .filter_map(Result::ok)
        .collect();
    assert!(
        !files.is_empty(),
        "no config files found under {}",
        repo().join("config").display()
    );
    files
}

fn validate(config: &Path) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    run_in(
        dir.path(),
        &["validate", "--config", config.to_str().expect("utf-8")],
    )
}

/// The watch names a config file defines itself and through its includes.
fn watch_names(config: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(config).expect("read config");
    let value: toml::Table = toml::from_str(&text).expect("config is TOML");
    let mut names = BTreeSet::new();
    let mut add = |table: &toml::Table| {
        for watch in table
            .get("watch")
            .and_then(|w| w.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(name) = watch.get("name").and_then(|n| n.as_str()) {
                names.insert(name.to_owned());
            }
        }
    };
    add(&value);
    let base = config.parent().expect("parent");
    for pattern in value
        .get("include")
        .and_then(|i| i.as_array())
        .into_iter()
        .flatten()
    {
        let pattern = base.join(pattern.as_str().expect("include is a string"));
        for included in glob::glob(pattern.to_str().expect("utf-8"))
            .expect("glob")
            .flatten()
        {
            let text = std::fs::read_to_string(&included).expect("read include");
            add(&toml::from_str(&text).expect("include is TOML"));
        }
    }
    names
}

/// The `next:` runs listed for `watch` in `tidings validate` output.
fn next_runs<'a>(stdout: &'a str, watch: &str) -> Vec<&'a str> {
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.starts_with(&format!("{watch}  ")));
    assert!(
        lines.next().is_some(),
        "{watch} is not listed in:\n{stdout}"
    );
    let schedule = lines
        .take_while(|l| !l.is_empty())
        .find(|l| l.trim_start().starts_with("schedule:"))
        .unwrap_or_else(|| panic!("no schedule line for {watch} in:\n{stdout}"));
    let (_, next) = schedule.split_once("; next: ").expect("next runs");
    next.split(", ").collect()
}

#[test]
fn every_shipped_config_validates() {
    for config in shipped_configs() {
        let run = validate(&config);
        assert_eq!(run.code, 0, "{} does not validate: {run}", config.display());
        assert!(run.stdout.contains(": valid, "), "{run}");
    }
}

#[test]
fn the_main_config_lists_every_watch_with_three_runs() {
    let config = repo().join("config/tidings.toml");
    let names = watch_names(&config);
    assert!(!names.is_empty(), "config/tidings.toml watches nothing");
    let run = validate(&config);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout
            .contains(&format!("valid, {} watch(es)", names.len())),
        "expected {} watches: {run}",
        names.len()
    );
    for name in &names {
        let runs = next_runs(&run.stdout, name);
        assert_eq!(runs.len(), 3, "{name}: {runs:?}");
    }
    assert!(
        !run.stdout.contains("warning: no `contact`"),
        "the shipped config sets a contact: {run}"
    );
}

const VALID: &str = r#"state_dir = "."

[defaults]
timezone = "Europe/London"
schedule = "0 7 * * *"

[[watch]]
name = "weekly"
url = "https://www.england.nhs.uk/stps/"
tags = ["national", "stp"]
schedule = "30 8 * * Mon"

[[watch]]
name = "daily"
url = "https://www.healthierlsc.co.uk/ics"

[[watch]]
name = "seconds"
url = "https://example.org/"
schedule = "0 15 9 * * Mon-Fri"
"#;

#[test]
fn next_runs_follow_the_schedule() {
    let ws = Workspace::with_config(VALID);
    let run = ws.run(&["validate"]);
    assert_eq!(run.code, 0, "{run}");
    let dates: Vec<chrono::NaiveDate> = next_runs(&run.stdout, "weekly")
        .iter()
        .map(|run| {
            // "Mon 2025-12-01 08:30 GMT"
            let parts: Vec<&str> = run.split(' ').collect();
            assert_eq!(parts[0], "Mon", "{run}");
            assert_eq!(parts[2], "08:30", "{run}");
            assert!(matches!(parts[3], "GMT" | "BST"), "{run}");
            chrono::NaiveDate::parse_from_str(parts[1], "%Y-%m-%d").expect("date")
        })
        .collect();
    assert_eq!(dates.len(), 3);
    assert!(dates[0] >= chrono::Utc::now().date_naive() - chrono::Days::new(1));
    assert_eq!((dates[1] - dates[0]).num_days(), 7);
    assert_eq!((dates[2] - dates[1]).num_days(), 7);
    for run in next_runs(&run.stdout, "seconds") {
        assert!(run.contains(" 09:15 "), "{run}");
        assert!(!run.starts_with("Sat") && !run.starts_with("Sun"), "{run}");
    }
}

#[test]
fn validate_output_shape() {
    let ws = Workspace::with_config(VALID);
    let run = ws.run(&["validate"]);
    assert_eq!(run.code, 0, "{run}");
    let dates = regex::Regex::new(
        r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d{2}-\d{2} (\d{2}:\d{2}) (GMT|BST)",
    )
    .expect("regex");
    let text = run
        .stdout
        .replace(ws.config.to_str().expect("utf-8"), "[CONFIG]");
    let text = dates.replace_all(&text, "[DAY] [DATE] $2 [ZONE]");
    insta::assert_snapshot!(text, @r"
    [CONFIG]: valid, 3 watch(es)
    warning: no `contact` is set; site owners will not know whom to ask about tidings' requests

    weekly  https://www.england.nhs.uk/stps/
      tags: national, stp
      schedule: 30 8 * * Mon (Europe/London); next: [DAY] [DATE] 08:30 [ZONE], [DAY] [DATE] 08:30 [ZONE], [DAY] [DATE] 08:30 [ZONE]

    daily  https://www.healthierlsc.co.uk/ics
      schedule: 0 7 * * * (Europe/London); next: [DAY] [DATE] 07:00 [ZONE], [DAY] [DATE] 07:00 [ZONE], [DAY] [DATE] 07:00 [ZONE]

    seconds  https://example.org/
      schedule: 0 15 9 * * Mon-Fri (Europe/London); next: [DAY] [DATE] 09:15 [ZONE], [DAY] [DATE] 09:15 [ZONE], [DAY] [DATE] 09:15 [ZONE]
    ");
}

/// Writes `text` as `tidings.toml`, validates it, and checks exit 78 and
/// an error line naming `tidings.toml:LINE` and `field`.
fn assert_refused(text: &str, line: usize, field: &str) -> Run {
    let ws = Workspace::with_config(text);
    let run = ws.run(&["validate"]);
    assert_eq!(run.code, EXIT_BAD_CONFIG, "{run}");
    let location = format!("{}:{line}:", ws.config.display());
    let found = run
        .stderr
        .lines()
        .any(|l| l.starts_with("error: ") && l.contains(&location) && l.contains(field));
    assert!(
        found,
        "expected an error at {location} naming {field:?}:\n{run}"
    );
    assert!(
        run.stdout.is_empty(),
        "nothing listed for a bad config: {run}"
    );
    run
}

#[test]
fn a_bad_url_is_refused() {
    assert_refused(
        "state_dir = \".\"\n\n[[watch]]\nname = \"a\"\nurl = \"not a url\"\n",
        5,
        "watch `a`: url",
    );
    assert_refused(
        "[[watch]]\nname = \"a\"\nurl = \"ftp://example.org/file\"\n",
        3,
        "watch `a`: url",
    );
}

#[test]
fn a_bad_cron_is_refused() {
    let run = assert_refused(
        "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\nschedule = \"every day\"\n",
        4,
        "watch `a`: schedule",
    );
    assert!(run.stderr.contains("every day"), "{run}");
    assert_refused(
        "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\nschedule = \"61 * * * *\"\n",
        4,
        "watch `a`: schedule",
    );
    assert_refused(
        "[defaults]\nschedule = \"0 7 * *\"\n\n[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\n",
        2,
        "defaults.schedule",
    );
}

#[test]
fn an_unknown_field_is_refused() {
    assert_refused(
        "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\nselector = \"main\"\n",
        4,
        "selector",
    );
    assert_refused("state_dir = \".\"\n[limits]\nretry = 3\n", 3, "retry");
    assert_refused("contact = \"a@b.c\"\nstatedir = \".\"\n", 2, "statedir");
}

#[test]
fn a_bad_css_selector_is_refused() {
    let run = assert_refused(
        "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\n\nselect = \"div[[\"\n",
        5,
        "watch `a`: select",
    );
    assert!(run.stderr.contains("div[["), "{run}");
    assert_refused(
        "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\nexclude = [\"nav\", \"..bad\"]\n",
        4,
        "watch `a`: exclude",
    );
}

#[test]
fn a_bad_regex_is_refused() {
    let run = assert_refused(
        "[[watch]]\nname = \"a\"\nurl = \"https://example.org\"\nignore = '(unclosed'\n",
        4,
        "watch `a`: ignore",
    );
    assert!(run.stderr.contains("(unclosed"), "{run}");
}

#[test]
fn a_duplicate_name_is_refused() {
    assert_refused(
        "[[watch]]\nname = \"a\"\nurl = \"https://example.org/1\"\n\n[[watch]]\nname = \"a\"\nurl = \"https://example.org/2\"\n",
        6,
        "watch name `a`",
    );
}

#[test]
fn a_duplicate_name_across_an_include_is_refused() {
    let ws = Workspace::with_config(
        "include = [\"watches/*.toml\"]\n\n[[watch]]\nname = \"a\"\nurl = \"https://example.org/1\"\n",
    );
    std::fs::create_dir(ws.path().join("watches")).expect("mkdir");
    let included = ws.path().join("watches/more.toml");
    std::fs::write(
        &included,
        "[[watch]]\nname = \"a\"\nurl = \"https://example.org/2\"\n",
    )
    .expect("write");
    let run = ws.run(&["validate"]);
    assert_eq!(run.code, EXIT_BAD_CONFIG, "{run}");
    assert!(
        run.stderr
            .contains(&format!("{}:2: watch name `a`", included.display())),
        "{run}"
    );
}

#[test]
fn an_error_in_an_included_file_names_that_file() {
    let ws = Workspace::with_config("state_dir = \".\"\ninclude = [\"watches/*.toml\"]\n");
    std::fs::create_dir(ws.path().join("watches")).expect("mkdir");
    let included = ws.path().join("watches/partnerships.toml");
    std::fs::write(
        &included,
        "# partnerships\n[[watch]]\nname = \"ok\"\nurl = \"https://example.org/ok\"\n\n[[watch]]\nname = \"bad\"\nurl = \"https://example.org/bad\"\nschedule = \"whenever\"\n",
    )
    .expect("write");
    let run = ws.run(&["validate"]);
    assert_eq!(run.code, EXIT_BAD_CONFIG, "{run}");
    assert!(
        run.stderr
            .contains(&format!("{}:9: watch `bad`: schedule", included.display())),
        "{run}"
    );
    // An include file is only watches: a daemon setting there is refused.
    std::fs::write(&included, "state_dir = \"/tmp\"\n").expect("write");
    let run = ws.run(&["validate"]);
    assert_eq!(run.code, EXIT_BAD_CONFIG, "{run}");
    assert!(
        run.stderr.contains(&format!("{}:1:", included.display())),
        "{run}"
    );
}

#[test]
fn an_include_matching_nothing_is_refused() {
    let run = assert_refused(
        "state_dir = \".\"\ninclude = [\"watches/*.toml\", \"nowhere/*.toml\"]\n",
        2,
        "include",
    );
    assert!(run.stderr.contains("nowhere/*.toml"), "{run}");
}

#[test]
fn bad_limits_are_refused() {
    assert_refused("[limits]\nretries = 99\n", 2, "limits.retries");
    assert_refused("[limits]\n\ntimeout = \"soon\"\n", 3, "limits.timeout");
    assert_refused(
        "[defaults]\ntimezone = \"Mars/Olympus\"\n",
        2,
        "defaults.timezone",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let ws = Workspace::with_config(
        "[[watch]]\nname = \"a\"\nurl = \"nope\"\n\n[[watch]]\nname = \"b\"\nurl = \"https://example.org\"\nschedule = \"often\"\nignore = \"[\"\n",
    );
    let run = ws.run(&["validate"]);
    assert_eq!(run.code, EXIT_BAD_CONFIG, "{run}");
    let path = ws.config.display().to_string();
    for expected in [
        format!("{path}:3: watch `a`: url"),
        format!("{path}:8: watch `b`: schedule"),
        format!("{path}:9: watch `b`: ignore"),
    ] {
        assert!(
            run.stderr.contains(&expected),
            "missing {expected:?}: {run}"
        );
    }
    assert!(run.stderr.contains("3 problem(s)"), "{run}");
}

#[test]
fn other_commands_refuse_a_bad_config_with_78() {
    let ws = Workspace::with_config("[[watch]]\nname = \"a\"\nurl = \"nope\"\n");
    for args in [&["check"][..], &["history", "a"], &["diff", "a"]] {
        let run = ws.run(args);
        assert_eq!(run.code, EXIT_BAD_CONFIG, "{args:?}: {run}");
        assert!(run.stderr.contains(":3: watch `a`: url"), "{args:?}: {run}");
    }
}

#[test]
fn a_missing_config_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = run_in(dir.path(), &["validate", "--config", "absent.toml"]);
    assert_ne!(run.code, 0, "{run}");
    assert!(run.stderr.contains("absent.toml"), "{run}");
}
