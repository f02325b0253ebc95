//! Extraction: snapshots of the partnership fixtures, focused behaviour
//! tests, and (when the shared data is present) the extraction benchmarks.

use std::path::PathBuf;

use tidings::core::extract::{ExtractError, Rules, extract};
use tidings::core::model::{BlockKind, Extracted};
use tidings::eval::extraction as eval;

const FIXTURES: [&str; 5] = [
    "wnec-stp",
    "stp-44-areas",
    "lsc-place-review",
    "lsc-landmark-partnership",
    "lsc-ics",
];

/// Says why a test did nothing. Written to stderr directly rather than with
/// `eprintln!`, which the test harness captures: a skip must show in the
/// `cargo test` output, not only when the test fails.
macro_rules! skip_notice {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/partnerships")
        .join(format!("{name}.html"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn default_extract(html: &str) -> Extracted {
    extract(html, &Rules::default()).expect("default rules never fail")
}

fn rules(select: &[&str], exclude: &[&str], ignore: &[&str], main_content: bool) -> Rules {
    let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Rules::new(
        &owned(select),
        &owned(exclude),
        &owned(ignore),
        main_content,
    )
    .expect("rules compile")
}

fn texts(extracted: &Extracted) -> Vec<&str> {
    extracted.blocks.iter().map(|b| b.text.as_str()).collect()
}

// ---------------------------------------------------------------------------
// Snapshots of the partnership fixtures

#[test]
fn snapshot_fixtures() {
    for name in FIXTURES {
        let extracted = default_extract(&fixture(name));
        let rendered = format!(
            "title: {}\n\n{}",
            extracted.title.as_deref().unwrap_or("-"),
            extracted.render()
        );
        insta::assert_snapshot!(name, rendered);
    }
}

/// Chrome every fixture carries, none of which may survive extraction.
const CHROME: [&str; 12] = [
    "cookie",
    "Cookie",
    "Skip to",
    "Accessibility tools",
    "Return to header",
    "Page last updated",
    "Homepage",
    "Privacy",
    "Copyright",
    "\u{a9}",
    "Search",
    "Contact us",
];

#[test]
fn fixtures_lose_their_chrome() {
    for name in FIXTURES {
        let text = default_extract(&fixture(name)).render();
        for chrome in CHROME {
            assert!(
                !text.contains(chrome),
                "{name}: `{chrome}` survived:\n{text}"
            );
        }
    }
}

#[test]
fn fixtures_keep_lists_of_places_and_organisations() {
    let wnec = default_extract(&fixture("wnec-stp"));
    let items: Vec<&str> = wnec
        .blocks
        .iter()
        .filter(|b| b.kind == BlockKind::ListItem)
        .map(|b| b.text.as_str())
        .collect();
    for expected in [
        "Cumbria County Council",
        "Cumbria Partnership NHS Foundation Trust",
        "Healthwatch Cumbria",
        "NHS North Cumbria Clinical Commissioning Group",
        "North Cumbria University Hospitals NHS Trust",
        "North West Ambulance Service",
        "Allerdale 96,471 residents",
        "Carlisle 108,022 residents.",
        "Eden 52,630 residents.",
    ] {
        assert!(items.contains(&expected), "missing {expected}: {items:?}");
    }
    // The linked list of places is kept although it is all links.
    let review = default_extract(&fixture("lsc-place-review"));
    for place in [
        "Central Lancashire",
        "Fylde Coast",
        "Morecambe Bay",
        "Pennine Lancashire",
        "West Lancashire",
    ] {
        let hits = review.blocks.iter().filter(|b| b.text == place).count();
        assert_eq!(
            hits, 1,
            "{place} should appear once (not from the sidebar too)"
        );
    }
}

#[test]
fn footer_partner_links_are_dropped() {
    let text = default_extract(&fixture("lsc-ics")).render();
    assert!(!text.contains("Partner organisations"), "{text}");
    assert!(!text.contains("East Lancashire Hospitals\n"), "{text}");
    assert!(
        text.contains("- East Lancashire Hospitals NHS Trust"),
        "{text}"
    );
}

#[test]
fn main_content_false_keeps_the_chrome() {
    let html = fixture("wnec-stp");
    let whole = extract(&html, &rules(&[], &[], &[], false)).unwrap();
    let main = default_extract(&html);
    assert!(whole.word_count() > main.word_count() + 100);
    let text = whole.render();
    assert!(text.contains("Page last updated 12 March 2021"), "{text}");
    assert!(text.contains("We use cookies"), "{text}");
    assert!(!text.contains("_gaq"), "scripts never count: {text}");
    assert!(
        !text.contains("display: none"),
        "styles never count: {text}"
    );
}

// ---------------------------------------------------------------------------
// Focused behaviour

#[test]
fn title_comes_from_the_title_element() {
    let e = default_extract(
        "<html><head><title> A  &amp; B </title></head><body><p>Text here.</p></body></html>",
    );
    assert_eq!(e.title.as_deref(), Some("A & B"));
}

#[test]
fn whitespace_is_normalised() {
    let e = extract(
        "<body><p>  one\u{a0}\u{a0}two\n\t three&nbsp;&nbsp;four <br> five </p></body>",
        &rules(&[], &[], &[], false),
    )
    .unwrap();
    assert_eq!(texts(&e), ["one two three four five"]);
}

#[test]
fn inline_elements_do_not_split_blocks() {
    let e = extract(
        "<body><p>An <a href='/x'>NHS</a> <strong>trust</strong> and <em>a</em><span>council</span>.</p></body>",
        &rules(&[], &[], &[], false),
    )
    .unwrap();
    assert_eq!(texts(&e), ["An NHS trust and acouncil."]);
}

#[test]
fn loose_text_in_a_div_becomes_its_own_paragraph() {
    let e = extract(
        "<body><div>Before the heading<h2>Members</h2>Loose text after<p>A paragraph</p>tail</div></body>",
        &rules(&[], &[], &[], false),
    )
    .unwrap();
    let blocks: Vec<(BlockKind, &str)> =
        e.blocks.iter().map(|b| (b.kind, b.text.as_str())).collect();
    assert_eq!(
        blocks,
        [
            (BlockKind::Paragraph, "Before the heading"),
            (BlockKind::Heading { level: 2 }, "Members"),
            (BlockKind::Paragraph, "Loose text after"),
            (BlockKind::Paragraph, "A paragraph"),
            (BlockKind::Paragraph, "tail"),
        ]
    );
}

#[test]
fn table_rows_join_cells_with_bars() {
    let e = extract(
        "<body><table><tr><th>Place</th><th>Population</th></tr>\
         <tr><td>Allerdale</td><td> 96,471 </td></tr><tr><td>Eden</td><td></td></tr></table></body>",
        &rules(&[], &[], &[], false),
    )
    .unwrap();
    assert!(e.blocks.iter().all(|b| b.kind == BlockKind::TableRow));
    assert_eq!(
        texts(&e),
        ["Place | Population", "Allerdale | 96,471", "Eden"]
    );
    let landmark = default_extract(&fixture("lsc-landmark-partnership"));
    assert!(landmark.blocks.iter().any(|b| b.kind == BlockKind::TableRow
        && b.text == "Blackburn with Darwen Borough Council | Unitary authority"));
}

#[test]
fn nested_lists_do_not_repeat_text() {
    let e = extract(
        "<body><ul><li>Councils<ul><li>Carlisle</li><li>Eden</li></ul></li><li>Trusts</li></ul></body>",
        &rules(&[], &[], &[], false),
    )
    .unwrap();
    assert!(e.blocks.iter().all(|b| b.kind == BlockKind::ListItem));
    assert_eq!(texts(&e), ["Councils", "Carlisle", "Eden", "Trusts"]);
}

#[test]
fn role_heading_is_a_heading_of_its_aria_level() {
    let e = extract(
        "<body><div role='heading' aria-level='3'>Members</div><div role='heading'>Places</div></body>",
        &rules(&[], &[], &[], false),
    )
    .unwrap();
    let kinds: Vec<BlockKind> = e.blocks.iter().map(|b| b.kind).collect();
    assert_eq!(
        kinds,
        [
            BlockKind::Heading { level: 3 },
            BlockKind::Heading { level: 2 }
        ]
    );
}

#[test]
fn pre_keeps_line_breaks() {
    let e = extract(
        "<body><pre>\nline one\n  line two  \n\n</pre></body>",
        &rules(&[], &[], &[], false),
    )
    .unwrap();
    assert_eq!(e.blocks[0].kind, BlockKind::Preformatted);
    assert_eq!(e.blocks[0].text, "line one\n  line two");
}

const SELECT_PAGE: &str = "<html><body><nav><p>Nav text</p></nav>\
    <div class='members'><p>Members</p><ul><li>Carlisle</li><li class='note'>Eden</li></ul></div>\
    <script>var x = 1;</script><div class='other'><p>Other text</p></div></body></html>";

#[test]
fn select_keeps_only_matches_in_document_order_without_duplicates() {
    let e = extract(
        SELECT_PAGE,
        &rules(&[".other", ".members", "li"], &[], &[], true),
    )
    .unwrap();
    assert_eq!(texts(&e), ["Members", "Carlisle", "Eden", "Other text"]);
}

#[test]
fn select_skips_chrome_removal_but_not_scripts() {
    let e = extract(SELECT_PAGE, &rules(&["nav", "body"], &[], &[], true)).unwrap();
    let text = e.render();
    assert!(text.contains("Nav text"), "{text}");
    assert!(!text.contains("var x"), "{text}");
}

#[test]
fn a_selector_matching_nothing_is_an_error() {
    let err = extract(
        SELECT_PAGE,
        &rules(&[".members", "#missing"], &[], &[], true),
    )
    .unwrap_err();
    match &err {
        ExtractError::SelectorMatchedNothing { selector } => assert_eq!(selector, "#missing"),
        other => panic!("wrong error: {other}"),
    }
    assert_eq!(
        err.to_string(),
        "selector `#missing` matched nothing on the page"
    );
}

#[test]
fn exclude_removes_subtrees_before_anything_else() {
    let e = extract(SELECT_PAGE, &rules(&[".members"], &[".note"], &[], true)).unwrap();
    assert_eq!(texts(&e), ["Members", "Carlisle"]);
    // A select that only matches excluded elements matched nothing.
    let err = extract(SELECT_PAGE, &rules(&[".note"], &["ul"], &[], true));
    assert!(err.is_err());
    let wnec = extract(&fixture("wnec-stp"), &rules(&[], &["ol"], &[], true)).unwrap();
    assert!(!wnec.render().contains("Prevent illness"));
}

#[test]
fn ignore_cuts_matches_and_drops_emptied_blocks() {
    let e = extract(
        "<body><p>Updated 12 March 2021</p><p>Eden   52,630 residents (updated 2020)</p></body>",
        &rules(&[], &[], &[r"(?i)\(?updated [^)]*\)?"], false),
    )
    .unwrap();
    assert_eq!(texts(&e), ["Eden 52,630 residents"]);
}

#[test]
fn hidden_elements_and_banners_are_dropped() {
    let html = "<html><body>\
        <div id='cookie-banner'><p>We use cookies on this site to improve it.</p></div>\
        <div hidden><p>Hidden by attribute.</p></div>\
        <div style='display: none'><p>Hidden by style.</p></div>\
        <div aria-hidden='true'><p>Hidden from readers.</p></div>\
        <a href='#main'>Skip to main content</a>\
        <main id='main'><h1>Members</h1><p>The partnership has six members, listed below, and covers four districts.</p>\
        <ul><li>Cumbria County Council</li><li>Healthwatch Cumbria</li></ul></main></body></html>";
    let text = default_extract(html).render();
    assert_eq!(
        text,
        "# Members\n\nThe partnership has six members, listed below, and covers four districts.\n\n- Cumbria County Council\n\n- Healthwatch Cumbria\n"
    );
}

#[test]
fn empty_and_odd_documents_do_not_panic() {
    for html in [
        "",
        "<html></html>",
        "text only",
        "<body><p></p></body>",
        "<table><tr><td>x",
    ] {
        let _ = default_extract(html);
        let _ = extract(html, &rules(&[], &[], &[], false)).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Benchmarks against the shared data (skipped when it is absent)

/// The shared evaluation data: `TIDINGS_EVAL_DIR`, else `../shared/eval/extraction`.
fn eval_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TIDINGS_EVAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/eval/extraction")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        skip_notice!(
            "skipping: extraction eval data not found at {} (set TIDINGS_EVAL_DIR)",
            dir.display()
        );
        None
    }
}

/// The aeb benchmark's F1 must stay above trafilatura's published 0.958.
#[test]
fn aeb_f1_beats_trafilatura() {
    let Some(dir) = eval_dir() else { return };
    let report = eval::score_aeb(&dir.join("aeb")).expect("aeb scores");
    eprintln!("{report}");
    assert!(report.f1 > 0.958, "{report}");
    assert!(report.precision > 0.93 && report.recall > 0.95, "{report}");
}

/// Prints every benchmark's figures and throughput:
/// `cargo test --release --test extract eval_report -- --ignored --nocapture`.
#[test]
#[ignore = "slow in debug builds; run with --release -- --ignored"]
fn eval_report() {
    let Some(dir) = eval_dir() else { return };
    let aeb = eval::score_aeb(&dir.join("aeb")).expect("aeb scores");
    println!("{aeb}");
    if std::env::var_os("EVAL_VERBOSE").is_some() {
        for page in aeb.per_page.iter().take(25) {
            println!("{} p={:.3} r={:.3}", page.id, page.precision, page.recall);
        }
    }
    let traf = eval::score_trafilatura(&dir.join("trafilatura")).expect("trafilatura scores");
    println!("{traf}");
    if std::env::var_os("EVAL_VERBOSE").is_some() {
        for miss in &traf.misses {
            println!(
                "{}: missing {:?} leaked {:?}",
                miss.id, miss.missing, miss.leaked
            );
        }
    }
    let rd = eval::score_readability(&dir.join("readability")).expect("readability scores");
    println!("{rd}");
    let tp = eval::throughput(&dir.join("aeb")).expect("throughput");
    println!("{tp}");
}

/// Writes every page's extraction of a set to a directory for offline
/// inspection: `EVAL_SET=aeb EVAL_DUMP_DIR=/tmp/out`.
#[test]
#[ignore = "debugging aid"]
fn eval_dump() {
    let Some(dir) = eval_dir() else { return };
    let (Some(set), Some(out)) = (
        std::env::var_os("EVAL_SET"),
        std::env::var_os("EVAL_DUMP_DIR"),
    ) else {
        return;
    };
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out).expect("dump dir");
    for entry in std::fs::read_dir(dir.join(set)).expect("set dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".html") else {
            continue;
        };
        let bytes = std::fs::read(&path).expect("page reads");
        let html = String::from_utf8_lossy(&bytes);
        let extracted =
            tidings::core::extract::extract(&html, &Default::default()).expect("extracts");
        std::fs::write(out.join(format!("{id}.txt")), extracted.render()).expect("write");
    }
}

/// A collection page: a short lead, then the body is lists of links to
/// documents under headings, then a change history longer than the lead.
fn collection_page(history_items: usize) -> String {
    let documents: String = (1..=6)
        .map(|i| {
            format!(
                r#"<li><a href="/doc-{i}">Vaccination guidance document number {i} for practitioners</a>
                   <ul><li><time>1 March 2021</time></li><li>Guidance</li></ul></li>"#
            )
        })
        .collect();
    let history: String = (1..=history_items)
        .map(|i| {
            format!(
                "<li><time>{i} February 2021</time><p>Added the revised consent form, the leaflet and update number {i} to the training slides.</p></li>"
            )
        })
        .collect();
    format!(
        r#"<html><body><header><a href="/">Home</a></header><main role="main">
        <h1>Vaccination programme</h1>
        <p>Documents relating to the vaccination programme, for staff and the public.</p>
        <h3>Guidance</h3><div><ul class="document-list">{documents}</ul></div>
        <div class="history"><ol>{history}</ol></div>
        </main><footer>Crown copyright</footer></body></html>"#
    )
}

#[test]
fn a_body_of_links_is_kept_beside_a_short_change_history() {
    for items in [1, 2, 3] {
        let page = collection_page(items);
        let extracted = default_extract(&page);
        let text = texts(&extracted).join("\n");
        assert!(
            text.contains("Vaccination guidance document number 4 for practitioners"),
            "{items} history items: links dropped:\n{text}"
        );
        assert!(
            text.contains("Documents relating to the vaccination programme"),
            "{items} history items: lead dropped:\n{text}"
        );
        assert!(!text.contains("Crown copyright"), "{text}");
    }
}

#[test]
fn the_chosen_content_is_stable_from_version_to_version() {
    // One more history note must not swap the body for the history:
    // everything the older version showed of its body is still shown.
    let older = default_extract(&collection_page(2));
    let newer = default_extract(&collection_page(3));
    let newer_texts = texts(&newer);
    for text in texts(&older) {
        assert!(
            newer_texts.contains(&text),
            "“{text}” vanished:\n{}",
            newer_texts.join("\n")
        );
    }
}

#[test]
fn a_list_of_links_under_a_heading_is_its_section_body() {
    // Translated resources listed under subheadings: each item is the
    // title of another page, but the heading makes the list the section's
    // content, and a new item in it is news.
    let item = |title: &str| format!(r#"<li><a href="/{}">{title}</a></li>"#, title.len());
    let list = |titles: &[&str]| -> String { titles.iter().map(|t| item(t)).collect() };
    let page = format!(
        r#"<html><body><nav><ul>{nav}</ul></nav><main>
        <h1>Health guide for arriving families</h1>
        <p>Advice for people arriving in the country, and for the clinicians who see them in the first weeks after they arrive.</p>
        <h2>Translated advice</h2>
        <p>The following resources are available in several languages.</p>
        <h3>Testing</h3>
        <ul>{testing}</ul>
        <h3>Prevention and other information</h3>
        <ul>{prevention}</ul>
        </main><footer>Crown copyright</footer></body></html>"#,
        nav = list(&["Home", "Health and social care", "Public health"]),
        testing = list(&[
            "rapid lateral flow test kit instructions for the first kit",
            "rapid lateral flow test kit instructions for the second kit",
        ]),
        prevention = list(&[
            "how to stay safe and help prevent the spread of infection",
            "arranging or attending a funeral or commemorative event",
            "long-term effects of the infection and where to get help",
        ]),
    );
    let extracted = default_extract(&page);
    let text = texts(&extracted).join("\n");
    assert!(
        text.contains("arranging or attending a funeral or commemorative event"),
        "{text}"
    );
    assert!(
        text.contains("rapid lateral flow test kit instructions for the second kit"),
        "{text}"
    );
    assert!(!text.contains("Public health"), "{text}");
}

#[test]
fn news_teasers_are_a_listing_s_content() {
    // A front page's news listing: each item a headline link over its own
    // summary sentence. Dropping them as links loses the news they carry.
    let teaser = |slug: &str, title: &str, summary: &str| {
        format!(
            r#"<div class="item"><a href="/articles/{slug}" class="title-link">{title}</a>
            <div class="summary">{summary}</div><div class="date">September 29, 2017</div>
            <a href="/articles/{slug}" class="view-more">Read more</a></div>"#
        )
    };
    let page = format!(
        r#"<html><body><nav><a href="/">Home</a><a href="/about">About us</a></nav><main>
        <h1>Department of Power</h1>
        <p>The department works on energy security, science and the clean-up of old sites across the whole country.</p>
        <h2>Energy News</h2><div class="listing">{a}{b}</div>
        </main><footer>Contact us</footer></body></html>"#,
        a = teaser(
            "backs-new-plant",
            "Secretary announces support for the continued construction of a nuclear plant",
            "The project is the first new nuclear power plant to be licensed and begin construction in three decades.",
        ),
        b = teaser(
            "grid-resilience",
            "Secretary urges the regulator to act swiftly on threats to grid resilience",
            "The proposal would make sure that the grid keeps enough fuel on site to ride out a long cold spell.",
        ),
    );
    let extracted = default_extract(&page);
    let text = texts(&extracted).join("\n");
    assert!(text.contains("threats to grid resilience"), "{text}");
    assert!(text.contains("first new nuclear power plant"), "{text}");
    assert!(!text.contains("About us"), "{text}");
}
