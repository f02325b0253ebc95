//! Partnership scenarios: real partnership pages (the fixtures, built around
//! the seed texts with their site chrome) edited the way such pages really
//! change, run through the whole pipeline, with the kind and the summary of
//! each change asserted.

use chrono::Utc;
use regex::Regex;
use tidings::core::classify::Kind;
use tidings::core::diff::DiffOptions;
use tidings::core::extract::Rules;
use tidings::fetch::Validators;
use tidings::service::pipeline::{FetchedPage, Outcome, apply_page};
use tidings::store::Store;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/partnerships/{name}.html",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// One fetch of `html` as watch `watch`, through the whole pipeline.
fn fetch(store: &Store, watch: &str, html: &str) -> Outcome {
    let page = FetchedPage {
        html,
        fetched_at: Utc::now(),
        validators: Validators::default(),
        audience: None,
    };
    apply_page(
        store,
        watch,
        &Rules::default(),
        &[],
        &page,
        &DiffOptions::default(),
    )
    .expect("apply")
}

/// Applies `before` then `after` as two fetches of one watch and returns the
/// outcome of the second.
fn run(before: &str, after: &str) -> Outcome {
    let store = Store::temporary().expect("store");
    assert!(matches!(
        fetch(&store, "scenario", before),
        Outcome::New { .. }
    ));
    fetch(&store, "scenario", after)
}

/// Replaces text in a page, failing loudly if the fixture no longer has it.
fn edit(html: &str, from: &str, to: &str) -> String {
    assert!(
        html.contains(from),
        "the fixture no longer contains {from:?}"
    );
    html.replace(from, to)
}

/// The kinds and the one-line summary of a change that must alert.
fn alerting(outcome: &Outcome) -> (Vec<Kind>, String) {
    match outcome {
        Outcome::Changed { assessment, .. } => {
            assert!(
                assessment.alerts(),
                "expected an alert: {}",
                assessment.one_line()
            );
            (assessment.kinds(), assessment.one_line())
        }
        other => panic!("expected a change, got {other:?}"),
    }
}

/// Asserts a step raises no alert: unchanged, held, or only minor changes.
fn silent(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Unchanged { .. } => "unchanged".to_owned(),
        Outcome::Held { reason } => format!("held: {reason}"),
        Outcome::Changed { assessment, .. } => {
            assert!(
                !assessment.alerts(),
                "expected no alert: {}",
                assessment.one_line()
            );
            assert_eq!(assessment.kinds(), [Kind::Minor]);
            assessment.one_line()
        }
        other => panic!("expected no alert, got {other:?}"),
    }
}

#[test]
fn boundary_realignment_from_five_places_to_four() {
    let before = fixture("lsc-place-review");
    let five = Regex::new(
        r"(?s)<li><a[^>]*>Central Lancashire</a></li>.*?<li><a[^>]*>West Lancashire</a></li>",
    )
    .expect("regex");
    assert!(
        five.is_match(&before),
        "the fixture no longer lists the five places"
    );
    let four = r#"<li><a href="/blackburn">Blackburn with Darwen</a></li>
            <li><a href="/blackpool">Blackpool</a></li>
            <li><a href="/lancashire">Lancashire</a></li>
            <li><a href="/south-cumbria">South Cumbria</a></li>"#;
    let after = edit(
        &five.replace(&before, four),
        "there have previously been five place-based partnerships:",
        "there are now four place-based partnerships:",
    );
    let (kinds, summary) = alerting(&run(&before, &after));
    assert_eq!(kinds[0], Kind::Boundary, "{summary}");
    for part in [
        "+Blackburn with Darwen",
        "+Blackpool",
        "−Fylde Coast",
        "−Morecambe Bay",
        "place-based partnerships 5 → 4",
    ] {
        assert!(summary.contains(part), "{part:?} missing from {summary}");
    }
}

#[test]
fn a_district_dropped_from_the_population_list() {
    let before = fixture("wnec-stp");
    let after = edit(&before, "<li>Eden 52,630 residents.&nbsp;</li>", "");
    let (kinds, summary) = alerting(&run(&before, &after));
    assert_eq!(kinds, [Kind::Boundary]);
    assert_eq!(summary, "Boundary: −Eden population 52,630");
}

#[test]
fn forty_four_areas_become_forty_two() {
    let before = fixture("stp-44-areas");
    let after = before.replace("44 areas", "42 areas");
    let (kinds, summary) = alerting(&run(&before, &after));
    assert_eq!(kinds, [Kind::Boundary]);
    assert_eq!(summary, "Boundary: areas 44 → 42");
}

#[test]
fn a_ccg_replaced_by_an_icb() {
    let before = fixture("wnec-stp");
    let after = edit(
        &before,
        "<li>NHS North Cumbria Clinical Commissioning Group</li>",
        "<li>NHS North East and North Cumbria Integrated Care Board</li>",
    );
    let (kinds, summary) = alerting(&run(&before, &after));
    assert_eq!(kinds, [Kind::Members]);
    assert_eq!(
        summary,
        "Members: NHS North Cumbria CCG → NHS North East and North Cumbria Integrated Care Board"
    );
}

#[test]
fn a_new_chief_executive() {
    let before = fixture("lsc-landmark-partnership");
    let after = edit(
        &before,
        "Kevin Lavery, chief executive",
        "Samantha Nicol, chief executive",
    );
    let (kinds, summary) = alerting(&run(&before, &after));
    assert_eq!(kinds, [Kind::Leaders]);
    assert_eq!(
        summary,
        "Leaders: chief executive of NHS Lancashire and South Cumbria Integrated Care Board: Kevin Lavery → Samantha Nicol"
    );
}

#[test]
fn a_narrative_rewrite_of_the_aims() {
    let before = fixture("wnec-stp");
    let after = edit(
        &edit(
            &before,
            "Prevent illness and empower people to support their own health and well-being.",
            "Close the gap in healthy life expectancy between our most and least deprived communities.",
        ),
        "Strengthen and invest in local primary care, social care and community care.",
        "Make every contact count, so that people get help before problems grow.",
    );
    let (kinds, summary) = alerting(&run(&before, &after));
    assert_eq!(kinds, [Kind::Narrative]);
    // Rewritten, not reworded: too little is shared to pair old and new,
    // so the summary quotes the new aims.
    assert!(
        summary.starts_with("Narrative: +Close the gap in healthy life expectancy"),
        "{summary}"
    );
    assert!(summary.contains("+Make every contact count"), "{summary}");
}

#[test]
fn a_typo_fix_is_minor() {
    // The real page has the typo; the fix is the change.
    let typo = fixture("wnec-stp");
    let fixed = edit(
        &typo,
        "We are inegrating our services",
        "We are integrating our services",
    );
    let summary = silent(&run(&typo, &fixed));
    assert!(summary.starts_with("Minor:"), "{summary}");
}

#[test]
fn a_last_updated_date_change_raises_nothing() {
    let before = fixture("wnec-stp");
    let after = edit(
        &before,
        "Page last updated 12 March 2021",
        "Page last updated 3 April 2022",
    );
    silent(&run(&before, &after));
}

#[test]
fn a_cookie_banner_change_raises_nothing() {
    let before = fixture("lsc-ics");
    let after = edit(
        &before,
        "We use some essential cookies to make this website work.",
        "This site uses a few essential cookies so that it works.",
    );
    assert_eq!(silent(&run(&before, &after)), "unchanged");
}

#[test]
fn an_error_page_served_with_200_is_held_until_confirmed() {
    let store = Store::temporary().expect("store");
    let apply = |html: &str| fetch(&store, "wnec", html);
    let page = fixture("wnec-stp");
    let error_page = "<html><head><title>Error</title></head><body><main><h1>Sorry, something went wrong</h1>\
                      <p>Please try again later.</p></main></body></html>";
    assert!(matches!(apply(&page), Outcome::New { .. }));
    let held = apply(error_page);
    assert!(
        matches!(&held, Outcome::Held { reason } if reason.contains("lost")),
        "{held:?}"
    );
    // The site recovers: nothing was ever reported.
    assert!(matches!(apply(&page), Outcome::Unchanged { .. }));
    // Served `confirm_after` (3) times in a row, the loss is confirmed and
    // reported.
    assert!(matches!(apply(error_page), Outcome::Held { .. }));
    assert!(matches!(apply(error_page), Outcome::Held { .. }));
    assert!(matches!(apply(error_page), Outcome::Changed { .. }));
}

#[test]
fn a_loading_placeholder_is_held_until_it_lasts() {
    let store = Store::temporary().expect("store");
    let apply = |html: &str| fetch(&store, "lsc", html);
    let page = fixture("lsc-ics");
    // A placeholder served with status 200, in the page's language or
    // another.
    let placeholder = regex::Regex::new(r"(?s)<main.*</main>")
        .expect("regex")
        .replace(
            &page,
            "<main><h1>Integrated care</h1><p>Chargement… veuillez patienter.</p></main>",
        )
        .into_owned();
    assert!(matches!(apply(&page), Outcome::New { .. }));
    let held = apply(&placeholder);
    assert!(matches!(&held, Outcome::Held { .. }), "{held:?}");
    assert!(matches!(apply(&placeholder), Outcome::Held { .. }));
    // The normal text returns: silent.
    assert!(matches!(apply(&page), Outcome::Unchanged { .. }));
}

#[test]
fn a_page_flipping_between_two_versions_alerts_once() {
    let store = Store::temporary().expect("store");
    let apply = |html: &str| fetch(&store, "ics", html);
    let a = fixture("lsc-ics");
    let b = edit(
        &a,
        "Our agreed partnership vision",
        "Our shared partnership vision",
    );
    apply(&a);
    assert!(
        matches!(apply(&b), Outcome::Changed { .. }),
        "the first switch is news"
    );
    // Back and forth: the return to A is held for confirmation, and B is
    // what is stored, so neither raises anything again.
    for _ in 0..3 {
        assert!(matches!(apply(&a), Outcome::Held { .. }));
        assert!(matches!(apply(&b), Outcome::Unchanged { .. }));
    }
}

#[test]
fn a_reordered_members_list_is_not_a_change() {
    let before = fixture("wnec-stp");
    let after = edit(
        &edit(&before, "<li>Cumbria County Council</li>\n", ""),
        "<li>North West Ambulance Service</li>",
        "<li>North West Ambulance Service</li>\n      <li>Cumbria County Council</li>",
    );
    assert_eq!(silent(&run(&before, &after)), "unchanged");
}

#[test]
fn text_from_an_older_extractor_is_rebaselined_silently() {
    use tidings::core::extract::EXTRACTOR_VERSION;
    use tidings::core::model::{Block, BlockKind};
    use tidings::store::{NewVersion, WatchState};

    let store = Store::temporary().expect("store");
    // What an older extractor made of the page: the same words, cut up
    // differently, as an upgrade would.
    let old_text = vec![Block::new(
        BlockKind::Paragraph,
        "West, North and East Cumbria Health and Care Partnership Cumbria County Council",
    )];
    let old = NewVersion {
        seen_at: Utc::now(),
        blocks: &old_text,
        extractor_version: EXTRACTOR_VERSION - 1,
        change: None,
        facts: None,
        notify: None,
    };
    store
        .commit_version("wnec", &old, &WatchState::default())
        .expect("commit");
    let outcome = fetch(&store, "wnec", &fixture("wnec-stp"));
    assert!(
        matches!(outcome, Outcome::Rebaselined { version: 2 }),
        "{outcome:?}"
    );
    assert!(
        store.change("wnec", 2).expect("change").is_none(),
        "no change record"
    );
    // From then on, the page is compared with the new baseline.
    assert!(matches!(
        fetch(&store, "wnec", &fixture("wnec-stp")),
        Outcome::Unchanged { .. }
    ));
}

#[test]
fn a_named_selector_rule_tracks_its_value_as_a_fact() {
    // `[[watch.fact]] name = "lead", select = "p.lead-name"`: the page's
    // own markup says where the partnership lead is named.
    let rules = Rules::default()
        .with_named(&[("lead".to_owned(), "p.lead-name".to_owned())])
        .expect("rules");
    let page = |lead: &str| {
        fixture("wnec-stp").replace("<h1>", &format!("<p class=\"lead-name\">{lead}</p><h1>"))
    };
    let store = Store::temporary().expect("store");
    let apply = |html: &str| {
        let fetched = FetchedPage {
            html,
            fetched_at: Utc::now(),
            validators: Validators::default(),
            audience: None,
        };
        apply_page(
            &store,
            "wnec",
            &rules,
            &[],
            &fetched,
            &DiffOptions::default(),
        )
        .expect("apply")
    };
    assert!(matches!(apply(&page("Stephen Eames")), Outcome::New { .. }));
    let (kinds, summary) = alerting(&apply(&page("Jane Doe")));
    assert_eq!(kinds, [Kind::Narrative], "{summary}");
    assert!(summary.contains("+lead: Jane Doe"), "{summary}");
    assert!(summary.contains("−lead: Stephen Eames"), "{summary}");
}
