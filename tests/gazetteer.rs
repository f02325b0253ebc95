//! Coverage of the shipped gazetteer against the reference lists in
//! `../shared/data` (ONS and mySociety). The lists stay outside the repo:
//! the path comes from `TIDINGS_DATA_DIR`, and the test skips with a message
//! when they are absent.

use std::path::PathBuf;

use tidings::core::facts::gazetteer::gazetteer;

/// Says why a test did nothing. Written to stderr directly rather than with
/// `eprintln!`, which the test harness captures: a skip must show in the
/// `cargo test` output, not only when the test fails.
macro_rules! skip_notice {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TIDINGS_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join("la-england-past-current.csv").is_file() {
        Some(dir)
    } else {
        skip_notice!(
            "skipped: reference lists not found at {} (set TIDINGS_DATA_DIR)",
            dir.display()
        );
        None
    }
}

/// Rows of a simple CSV file, split on commas outside double quotes.
fn rows(path: &PathBuf) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let mut fields = Vec::new();
            let mut field = String::new();
            let mut quoted = false;
            for c in line.chars() {
                match c {
                    '"' => quoted = !quoted,
                    ',' if !quoted => fields.push(std::mem::take(&mut field)),
                    c => field.push(c),
                }
            }
            fields.push(field);
            fields
        })
        .collect()
}

fn column(rows: &[Vec<String>], name: &str) -> usize {
    rows[0]
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn every_english_local_authority_since_2019_is_known() {
    let Some(dir) = data_dir() else { return };
    let mut missing = Vec::new();
    let mut checked = 0;
    for year in 2019..=2024 {
        let table = rows(&dir.join(format!("ons-lad-{year}.csv")));
        let name = column(&table, "LADNM");
        let upper = column(&table, "UTLANM");
        for row in &table[1..] {
            for field in [&row[name], &row[upper]] {
                // ONS writes "Bristol, City of"; prose writes "Bristol".
                let prose = field.split(", ").next().unwrap_or(field);
                checked += 1;
                if gazetteer().lookup(prose).is_none() {
                    missing.push(format!("{year}: {field}"));
                }
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "{} of {checked} names missing: {missing:?}",
        missing.len()
    );
}

#[test]
fn every_council_past_and_present_is_known_by_its_names() {
    let Some(dir) = data_dir() else { return };
    let table = rows(&dir.join("la-england-past-current.csv"));
    let nice = column(&table, "nice-name");
    let official = column(&table, "official-name");
    let kind = column(&table, "local-authority-type");
    let mut missing = Vec::new();
    for row in &table[1..] {
        if !matches!(row[kind].as_str(), "CTY" | "UA" | "NMD" | "MD" | "LBO") {
            continue;
        }
        if gazetteer().lookup(&row[nice]).is_none() {
            missing.push(row[nice].clone());
        }
        if row[official].ends_with("Council") && gazetteer().lookup(&row[official]).is_none() {
            missing.push(row[official].clone());
        }
    }
    assert!(missing.is_empty(), "missing: {missing:?}");
}

#[test]
fn all_42_icbs_and_every_stp_are_known() {
    let Some(dir) = data_dir() else { return };
    let icbs = rows(&dir.join("icb-2024-summary.csv"));
    let icb_name = column(&icbs, "ICB24NM");
    assert_eq!(icbs.len() - 1, 42);
    for row in &icbs[1..] {
        let entry = gazetteer()
            .lookup(&row[icb_name])
            .unwrap_or_else(|| panic!("{} missing", row[icb_name]));
        assert!(entry.kind.is_organisation(), "{}", row[icb_name]);
    }
    let stps = rows(&dir.join("stp-names-2017-2021.csv"));
    let stp_name = column(&stps, "STPNM");
    for row in &stps[1..] {
        assert!(
            gazetteer().lookup(&row[stp_name]).is_some(),
            "{} missing",
            row[stp_name]
        );
    }
}
