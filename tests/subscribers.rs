//! `tidings subscribers …` and `tidings send-test`, run as the real binary
//! with `--state` in a temporary directory (and that directory as the
//! working directory, so no `config/tidings.toml` is picked up). The state
//! directory holds a small `tidings.toml` with the one watch these tests
//! follow; it is found before `/etc/tidings/tidings.toml`, so a machine
//! where the package is installed runs the same tests.

use std::path::Path;
use std::process::{Command, Output};

fn tidings(dir: &Path, args: &[&str]) -> Output {
    let state = dir.join("state");
    let config = state.join("tidings.toml");
    if !config.exists() {
        std::fs::create_dir_all(&state).expect("state dir");
        std::fs::write(
            &config,
            "[[watch]]\nname = \"lsc-ics\"\nurl = \"http://127.0.0.1:9/\"\ntags = [\"lancashire\"]\n",
        )
        .expect("config");
    }
    Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .arg("--state")
        .arg(&state)
        .current_dir(dir)
        .env_remove("TIDINGS_CONFIG")
        .output()
        .expect("runs tidings")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let output = tidings(dir, args);
    assert!(
        output.status.success(),
        "tidings {args:?} failed: {}",
        stderr(&output)
    );
    stdout(&output)
}

#[test]
fn add_list_update_remove() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let added = ok(
        dir,
        &[
            "subscribers",
            "add",
            " Ada@Example.ORG ",
            "--name",
            "Ada Lovelace",
            "--follow",
            "tag:lancashire",
            "--follow",
            "lsc-ics",
            "--kinds",
            "boundary,members",
            "--cadence",
            "0 8 * * Mon@Europe/London",
        ],
    );
    assert_eq!(added.trim(), "added Ada@example.org");

    let json: serde_json::Value =
        serde_json::from_str(&ok(dir, &["subscribers", "list", "--json"])).expect("json");
    let ada = &json["subscribers"][0];
    assert_eq!(ada["address"], "Ada@example.org");
    assert_eq!(ada["tags"][0], "lancashire");
    assert_eq!(ada["watches"][0], "lsc-ics");
    assert_eq!(ada["kinds"], serde_json::json!(["boundary", "members"]));
    assert_eq!(ada["cadence"], "0 8 * * Mon@Europe/London");
    assert_eq!(ada["confirmed"], true);
    assert_eq!(ada["consent_source"], "admin-cli");

    // The domain's case does not matter; the local part's is kept (RFC 5321).
    let updated = ok(dir, &["subscribers", "add", "Ada@EXAMPLE.org"]);
    assert_eq!(updated.trim(), "updated Ada@example.org");
    let list = ok(dir, &["subscribers", "list"]);
    assert!(list.contains("Ada Lovelace"), "the name is kept: {list}");
    assert!(list.contains("follows everything"), "{list}");

    assert_eq!(
        ok(dir, &["subscribers", "remove", "Ada@EXAMPLE.org"]).trim(),
        "removed Ada@example.org"
    );
    let missing = tidings(dir, &["subscribers", "remove", "Ada@example.org"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    for (args, expected) in [
        (
            vec!["subscribers", "add", "not-an-address"],
            "not an email address",
        ),
        (
            vec!["subscribers", "add", "a@example.org", "--kinds", "gossip"],
            "--kinds",
        ),
        (
            vec!["subscribers", "add", "a@example.org", "--cadence", "weekly"],
            "--cadence",
        ),
        (
            vec![
                "subscribers",
                "add",
                "a@example.org",
                "--follow",
                "two words",
            ],
            "--follow",
        ),
    ] {
        let output = tidings(dir, &args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn import_skips_suppressed_addresses_and_reimport_updates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    ok(
        dir,
        &[
            "subscribers",
            "suppress",
            "Cy@example.org",
            "--reason",
            "hard bounce",
        ],
    );
    let csv = dir.join("people.csv");
    std::fs::write(
        &csv,
        "address,name,follows,kinds,cadence\n\
         ada@example.org,\"Lovelace, Ada\",tag:lancashire,boundary,immediate\n\
         bob@example.org,Bob,,,0 8 * * Mon\n\
         cy@example.org,Cy,,,\n",
    )
    .expect("write csv");
    let report = ok(dir, &["subscribers", "import", "--confirmed", "people.csv"]);
    assert!(report.contains("2 added, 0 updated, 1 skipped"), "{report}");
    assert!(
        report.contains("skipped cy@example.org (line 4): suppressed"),
        "{report}"
    );

    std::fs::write(
        &csv,
        "ada@example.org,Ada,lsc-ics,members,\ncy@example.org\n",
    )
    .expect("write");
    let report = ok(dir, &["subscribers", "import", "people.csv"]);
    assert!(report.contains("0 added, 1 updated, 1 skipped"), "{report}");

    let exported = ok(dir, &["subscribers", "export"]);
    let lines: Vec<&str> = exported.lines().collect();
    assert_eq!(
        lines[0],
        "address,name,follows,kinds,cadence,confirmed,consent_at,consent_source"
    );
    assert!(
        lines[1].starts_with("ada@example.org,Ada,lsc-ics,members,immediate,true,"),
        "{exported}"
    );
    assert!(
        lines[2].starts_with("bob@example.org,Bob,,,0 8 * * Mon@Europe/London,true,"),
        "{exported}"
    );
    assert!(
        lines[1].ends_with(",admin-import --confirmed"),
        "{exported}"
    );
    assert_eq!(lines.len(), 3, "{exported}");
    // An export imports back unchanged.
    std::fs::write(&csv, &exported).expect("write");
    let report = ok(dir, &["subscribers", "import", "people.csv"]);
    assert!(report.contains("0 added, 2 updated, 0 skipped"), "{report}");
    assert_eq!(ok(dir, &["subscribers", "export"]), exported);

    ok(dir, &["subscribers", "unsuppress", "cy@example.org"]);
    std::fs::write(&csv, "cy@example.org\n").expect("write");
    let report = ok(dir, &["subscribers", "import", "people.csv"]);
    assert!(report.contains("1 added"), "{report}");
    assert!(report.contains("1 subscriber(s) unconfirmed"), "{report}");
}

/// Issue 12: an export and re-import never confirms anyone who had not.
#[test]
fn consent_survives_an_export_and_reimport() {
    let from = tempfile::tempdir().expect("tempdir");
    let to = tempfile::tempdir().expect("tempdir");
    // A pending web sign-up, and a confirmed admin-added subscriber.
    std::fs::write(
        from.path().join("in.csv"),
        "address,name,follows,kinds,cadence,confirmed,consent_at,consent_source\n\
         pending@example.org,=cmd|' /C calc'!A0,,,,false,,web form\n",
    )
    .expect("write");
    ok(
        from.path(),
        &["subscribers", "import", "--confirmed", "in.csv"],
    );
    ok(from.path(), &["subscribers", "add", "ada@example.org"]);
    let exported = ok(from.path(), &["subscribers", "export"]);
    assert!(
        exported.contains(",'=cmd|' /C calc'!A0,"),
        "formula neutralised: {exported}"
    );
    assert!(exported.contains(",false,,web form"), "{exported}");
    std::fs::write(to.path().join("people.csv"), &exported).expect("write");

    // Without --confirmed nobody is confirmed; with it, only those who were.
    ok(to.path(), &["subscribers", "import", "people.csv"]);
    let list = ok(to.path(), &["subscribers", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&list).expect("json");
    for subscriber in json["subscribers"].as_array().expect("list") {
        assert_eq!(subscriber["confirmed"], false, "{subscriber}");
    }
    let again = tempfile::tempdir().expect("tempdir");
    std::fs::write(again.path().join("people.csv"), &exported).expect("write");
    ok(
        again.path(),
        &["subscribers", "import", "--confirmed", "people.csv"],
    );
    let list = ok(again.path(), &["subscribers", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&list).expect("json");
    let by = |address: &str| {
        json["subscribers"]
            .as_array()
            .expect("list")
            .iter()
            .find(|s| s["address"] == address)
            .cloned()
            .expect("subscriber")
    };
    assert_eq!(by("pending@example.org")["confirmed"], false);
    assert_eq!(by("pending@example.org")["name"], "=cmd|' /C calc'!A0");
    assert_eq!(by("ada@example.org")["confirmed"], true);
    assert_eq!(
        by("ada@example.org")["consent_source"],
        "admin-import --confirmed (was: admin-cli)"
    );
}

#[test]
fn import_errors_name_the_lines_and_import_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    std::fs::write(
        dir.join("bad.csv"),
        "address,name\nada@example.org,Ada\nbob@,Bob\ncy@example.org,Cy,,sometimes\n",
    )
    .expect("write");
    let output = tidings(dir, &["subscribers", "import", "bad.csv"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("bad.csv:3:"), "{message}");
    assert!(message.contains("bad.csv:4: kinds:"), "{message}");
    assert!(!message.contains("bad.csv:2:"), "{message}");
    assert!(
        ok(dir, &["subscribers", "export"]).lines().count() == 1,
        "nothing imported"
    );
}

#[test]
fn forget_erases_but_keeps_a_requested_suppression() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    ok(
        dir,
        &["subscribers", "add", "ada@example.org", "--name", "Ada"],
    );
    ok(
        dir,
        &["subscribers", "add", "bob@example.org", "--name", "Bob"],
    );
    ok(
        dir,
        &[
            "subscribers",
            "suppress",
            "ada@example.org",
            "--requested",
            "--reason",
            "Ada rang",
        ],
    );
    ok(
        dir,
        &[
            "subscribers",
            "suppress",
            "bob@example.org",
            "--reason",
            "bounced",
        ],
    );

    let forgot = ok(dir, &["subscribers", "forget", "ada@example.org"]);
    assert!(forgot.contains("kept a bare suppression"), "{forgot}");
    ok(dir, &["subscribers", "forget", "bob@example.org"]);

    let json: serde_json::Value =
        serde_json::from_str(&ok(dir, &["subscribers", "list", "--json"])).expect("json");
    assert_eq!(json["subscribers"], serde_json::json!([]));
    let suppressed = json["suppressed"].as_array().expect("array");
    assert_eq!(suppressed.len(), 1, "{suppressed:?}");
    assert_eq!(suppressed[0]["address"], "ada@example.org");
    assert!(
        !suppressed[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("Ada")
    );

    let refused = tidings(dir, &["subscribers", "add", "ada@example.org"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("suppressed"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn send_test_writes_an_eml_without_smtp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let said = ok(dir, &["send-test", "ada@example.org"]);
    assert!(
        said.contains("wrote a test briefing for ada@example.org"),
        "{said}"
    );
    let files: Vec<_> = std::fs::read_dir(dir.join("state/mail"))
        .expect("mail dir")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(&files[0]).expect("eml");
    assert!(eml.contains("Subject: [tidings test]"), "{eml}");
    assert!(eml.contains("Auto-Submitted: auto-generated"));
    assert!(eml.contains("multipart/alternative"));
}
