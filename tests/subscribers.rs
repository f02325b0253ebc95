//! `tidings subscribers …` and `tidings send-test`, run as the real binary
//! with `--state` in a temporary directory (and that directory as the
//! working directory, so no `config/tidings.toml` is picked up).

use std::path::Path;
use std::process::{Command, Output};

fn tidings(dir: &Path, args: &[&str]) -> Output {
    let state = dir.join("state");
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
    let report = ok(dir, &["subscribers", "import", "people.csv"]);
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
    assert_eq!(
        exported,
        "address,name,follows,kinds,cadence\n\
         ada@example.org,Ada,lsc-ics,members,immediate\n\
         bob@example.org,Bob,,,0 8 * * Mon@Europe/London\n"
    );
    // An export imports back unchanged.
    std::fs::write(&csv, &exported).expect("write");
    let report = ok(dir, &["subscribers", "import", "people.csv"]);
    assert!(report.contains("0 added, 2 updated, 0 skipped"), "{report}");
    assert_eq!(ok(dir, &["subscribers", "export"]), exported);

    ok(dir, &["subscribers", "unsuppress", "cy@example.org"]);
    std::fs::write(&csv, "cy@example.org\n").expect("write");
    let report = ok(dir, &["subscribers", "import", "people.csv"]);
    assert!(report.contains("1 added"), "{report}");
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
