//! The pipeline's CPU cost against the html5ever floor, page by page.
//!
//! ```text
//! TIDINGS_BENCH_PAGES=DIR cargo bench --bench pipeline
//! ```
//!
//! `DIR` holds the HTML pages to measure (every `*.html` / `*.htm` file, or
//! every regular file if there are none with those names). `benches/peers.sh`
//! fills it with the 1,000 synthetic pages of `../shared/bench/pageserver.py`.
//! Without `TIDINGS_BENCH_PAGES` (or with a missing directory) the bench
//! prints why and exits 0, so `cargo bench` on a machine without the pages
//! still passes.
//!
//! Each stage is one single-threaded pass over every page, repeated
//! `TIDINGS_BENCH_REPS` times (default 3); the median pass is reported.
//!
//! | stage | what one page costs |
//! | --- | --- |
//! | `parse` | `scraper::Html::parse_document`: the bare html5ever parse, the floor |
//! | `extract` | `tidings::core::extract::extract` with the default rules (parse included) |
//! | `extract+facts` | extract, then `tidings::core::facts::page_facts` (places, organisations, counts, …) |
//! | `extract+diff` | extract, then `tidings::core::diff::diff` against a slightly edited copy of the text |
//! | `extract+commit` | extract, then `Store::commit_version` into a temporary sled store |
//! | `apply (changed)` | `tidings::service::pipeline::apply_page` on a store whose latest version is the edited copy: the changed-cycle work minus HTTP |
//! | `apply (same)` | `apply_page` when the stored text equals the page: a 200 whose text did not change |
//!
//! CPU is the process's user+sys time from `/proc/self/stat` (all threads,
//! so sled's background flusher is counted); wall is `Instant`. The work is
//! synchronous, so the two agree except where sled's threads add CPU.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use tidings::core::diff::{DiffOptions, diff};
use tidings::core::extract::{EXTRACTOR_VERSION, Rules, extract};
use tidings::core::facts::page_facts;
use tidings::core::model::{Block, BlockKind};
use tidings::fetch::Validators;
use tidings::service::pipeline::{FetchedPage, Outcome, apply_page};
use tidings::store::{NewVersion, Store, WatchState};

fn main() {
    let Some(dir) = std::env::var_os("TIDINGS_BENCH_PAGES").map(PathBuf::from) else {
        println!(
            "pipeline bench skipped: set TIDINGS_BENCH_PAGES to a directory of HTML pages \
             (benches/peers.sh fetches the 1,000 pages of ../shared/bench/pageserver.py into one)"
        );
        return;
    };
    if !dir.is_dir() {
        println!(
            "pipeline bench skipped: TIDINGS_BENCH_PAGES={} is not a directory",
            dir.display()
        );
        return;
    }
    let reps: usize = std::env::var("TIDINGS_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let pages = load_pages(&dir);
    if pages.is_empty() {
        println!("pipeline bench skipped: no pages in {}", dir.display());
        return;
    }
    let total_bytes: usize = pages.iter().map(String::len).sum();
    println!(
        "pages: {} from {}, {:.1} MB of HTML (mean {:.1} KB), {} pass(es) per stage, median reported",
        pages.len(),
        dir.display(),
        total_bytes as f64 / 1e6,
        total_bytes as f64 / pages.len() as f64 / 1e3,
        reps
    );

    let rules = Rules::default();
    let options = DiffOptions::default();
    // The stored text the diff stages compare against: the page's own text,
    // slightly edited, as a bump of the page server edits a page.
    let edited: Vec<Vec<Block>> = pages
        .iter()
        .map(|html| edit(&extract(html, &rules).map(|e| e.blocks).unwrap_or_default()))
        .collect();

    // Warm caches and lazily built statics outside the timed passes.
    for html in pages.iter().take(20) {
        black_box(extract(html, &rules).ok());
    }

    let mut results: Vec<(&str, Measured)> = Vec::new();

    results.push((
        "parse (html5ever floor)",
        measure(reps, || {
            for html in &pages {
                black_box(scraper::Html::parse_document(html));
            }
        }),
    ));

    results.push((
        "extract",
        measure(reps, || {
            for html in &pages {
                black_box(extract(html, &rules).ok());
            }
        }),
    ));

    let mut facts_found = 0usize;
    results.push((
        "extract+facts",
        measure(reps, || {
            facts_found = 0;
            for html in &pages {
                let blocks = extract(html, &rules).map(|e| e.blocks).unwrap_or_default();
                facts_found += black_box(page_facts(&blocks, &[])).len();
            }
        }),
    ));

    let mut changed_blocks = 0usize;
    results.push((
        "extract+diff",
        measure(reps, || {
            changed_blocks = 0;
            for (html, old) in pages.iter().zip(&edited) {
                let new = extract(html, &rules).map(|e| e.blocks).unwrap_or_default();
                let d = diff(old, &new, &options);
                changed_blocks += d.changes.len();
                black_box(d);
            }
        }),
    ));

    results.push((
        "extract+commit",
        measure(reps, || {
            let store = Store::temporary().expect("temporary store");
            let now = Utc::now();
            for (i, html) in pages.iter().enumerate() {
                let blocks = extract(html, &rules).map(|e| e.blocks).unwrap_or_default();
                let version = NewVersion {
                    seen_at: now,
                    blocks: &blocks,
                    extractor_version: EXTRACTOR_VERSION,
                    change: None,
                    facts: None,
                    notify: None,
                };
                store
                    .commit_version(&format!("page-{i}"), &version, &WatchState::default())
                    .expect("commit");
            }
            store.flush().expect("flush");
        }),
    ));

    let mut outcomes = (0usize, 0usize, 0usize);
    results.push((
        "apply (changed)",
        measure_with_setup(
            reps,
            || seeded_store(&edited),
            |store| {
                outcomes = apply_all(&store, &pages, &rules, &options);
                store.flush().expect("flush");
            },
        ),
    ));
    let changed_outcomes = outcomes;

    let original: Vec<Vec<Block>> = pages
        .iter()
        .map(|html| extract(html, &rules).map(|e| e.blocks).unwrap_or_default())
        .collect();
    results.push((
        "apply (same text)",
        measure_with_setup(
            reps,
            || seeded_store(&original),
            |store| {
                outcomes = apply_all(&store, &pages, &rules, &options);
                store.flush().expect("flush");
            },
        ),
    ));
    let same_outcomes = outcomes;

    store_growth(&pages, &edited, &rules);

    let floor = results[0].1;
    let n = pages.len() as f64;
    println!();
    println!("| stage | CPU s (all pages) | wall s | CPU ms / page | MB/s (CPU) | × floor |");
    println!("|---|---|---|---|---|---|");
    for (name, m) in &results {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.1} | {:.2} |",
            m.cpu.as_secs_f64(),
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64() * 1e3 / n,
            total_bytes as f64 / 1e6 / m.cpu.as_secs_f64().max(1e-9),
            m.cpu.as_secs_f64() / floor.cpu.as_secs_f64().max(1e-9)
        );
    }
    println!();
    println!(
        "extract+facts found {facts_found} facts; extract+diff found {changed_blocks} changed blocks; apply (changed) gave {} changed / {} unchanged / {} other; \
         apply (same text) gave {} changed / {} unchanged / {} other",
        changed_outcomes.0,
        changed_outcomes.1,
        changed_outcomes.2,
        same_outcomes.0,
        same_outcomes.1,
        same_outcomes.2
    );
}

/// CPU and wall time of the median pass.
#[derive(Clone, Copy, Debug)]
struct Measured {
    cpu: Duration,
    wall: Duration,
}

fn measure(reps: usize, mut pass: impl FnMut()) -> Measured {
    measure_with_setup(reps, || (), |()| pass())
}

/// Runs `setup` untimed and `pass` timed, `reps` times; returns the pass with
/// the median CPU time.
fn measure_with_setup<S>(
    reps: usize,
    mut setup: impl FnMut() -> S,
    mut pass: impl FnMut(S),
) -> Measured {
    let mut runs: Vec<Measured> = (0..reps)
        .map(|_| {
            let state = setup();
            let cpu0 = process_cpu();
            let wall0 = Instant::now();
            pass(state);
            Measured {
                wall: wall0.elapsed(),
                cpu: process_cpu().saturating_sub(cpu0),
            }
        })
        .collect();
    runs.sort_by_key(|m| m.cpu);
    runs[runs.len() / 2]
}

/// User + system CPU time of the whole process (every thread, living or
/// ended), from `/proc/self/stat`, in clock ticks of 1/100 s.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // fields[0] is field 3 (state), so utime (14) is fields[11] and stime (15) fields[12].
    let total = ticks(11) + ticks(12);
    // CLK_TCK is 100 on every Linux this runs on.
    Duration::from_millis(total * 10)
}

fn load_pages(dir: &Path) -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    let is_html = |p: &PathBuf| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
    };
    if paths.iter().any(is_html) {
        paths.retain(is_html);
    }
    // Natural order, so page-2 comes before page-10.
    paths.sort_by_key(|p| {
        let name = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let digits: String = name.chars().filter(char::is_ascii_digit).collect();
        (digits.parse::<u64>().unwrap_or(u64::MAX), name)
    });
    paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .collect()
}

/// A slightly edited copy of a page's text: one paragraph a third of the way
/// in gets its words reversed, and a list item is added two thirds of the
/// way in. Much like a bump of the page server.
fn edit(blocks: &[Block]) -> Vec<Block> {
    let mut out = blocks.to_vec();
    if out.is_empty() {
        return out;
    }
    let at = out.len() / 3;
    let reversed: Vec<&str> = out[at].text.split_whitespace().rev().collect();
    out[at].text = reversed.join(" ");
    let insert_at = (2 * out.len() / 3).min(out.len());
    out.insert(
        insert_at,
        Block::new(
            BlockKind::ListItem,
            "Northfield and District Community Health Trust",
        ),
    );
    out
}

/// A temporary store whose watch `page-<i>` has `texts[i]` as its only version.
fn seeded_store(texts: &[Vec<Block>]) -> Store {
    let store = Store::temporary().expect("temporary store");
    let now = Utc::now();
    for (i, blocks) in texts.iter().enumerate() {
        if blocks.is_empty() {
            continue;
        }
        let version = NewVersion {
            seen_at: now,
            blocks,
            extractor_version: EXTRACTOR_VERSION,
            change: None,
            facts: None,
            notify: None,
        };
        store
            .commit_version(&format!("page-{i}"), &version, &WatchState::default())
            .expect("seed");
    }
    store.flush().expect("flush");
    store
}

/// `apply_page` (no per-watch fact rules) for every page; returns
/// (changed, unchanged, other) counts.
fn apply_all(
    store: &Store,
    pages: &[String],
    rules: &Rules,
    options: &DiffOptions,
) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    let now = Utc::now();
    for (i, html) in pages.iter().enumerate() {
        let page = FetchedPage {
            html,
            fetched_at: now,
            validators: Validators {
                etag: Some(format!("\"{i}\"")),
                last_modified: None,
            },
            audience: None,
        };
        match apply_page(store, &format!("page-{i}"), rules, &[], &page, options) {
            Ok(Outcome::Changed { .. }) => counts.0 += 1,
            Ok(Outcome::Unchanged { .. }) => counts.1 += 1,
            _ => counts.2 += 1,
        }
    }
    counts
}

/// Bytes on disk per stored version, against the bytes the versions carry:
/// every page committed once into a fresh on-disk store, then an edited
/// version of every tenth page (a "changed" cycle).
fn store_growth(pages: &[String], edited: &[Vec<Block>], rules: &Rules) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("store");
    let now = Utc::now();
    let mut payload = 0usize;
    let commit = |store: &Store, name: String, blocks: &[Block], payload: &mut usize| {
        let json = serde_json::to_vec(blocks).expect("json");
        *payload += zstd::bulk::compress(&json, 3).expect("zstd").len();
        let version = NewVersion {
            seen_at: now,
            blocks,
            extractor_version: EXTRACTOR_VERSION,
            change: None,
            facts: None,
            notify: None,
        };
        store
            .commit_version(&name, &version, &WatchState::default())
            .expect("commit");
    };
    for (i, html) in pages.iter().enumerate() {
        let blocks = extract(html, rules).map(|e| e.blocks).unwrap_or_default();
        commit(&store, format!("page-{i}"), &blocks, &mut payload);
    }
    store.flush().expect("flush");
    let first = store.stats().expect("stats");
    let first_payload = payload;
    for (i, blocks) in edited.iter().enumerate().step_by(10) {
        commit(&store, format!("page-{i}"), blocks, &mut payload);
    }
    store.flush().expect("flush");
    let second = store.stats().expect("stats");
    let on_disk = |path: &Path| -> u64 {
        fn walk(path: &Path) -> u64 {
            std::fs::read_dir(path).map_or(0, |entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| {
                        let p = e.path();
                        if p.is_dir() {
                            walk(&p)
                        } else {
                            p.metadata().map_or(0, |m| m.len())
                        }
                    })
                    .sum()
            })
        }
        walk(path)
    };
    let files = on_disk(dir.path());
    println!(
        "store growth: {} versions after one commit per page: sled size_on_disk {} B = {} B/version; \
         zstd-3 JSON of the blocks {} B = {} B/version",
        first.versions,
        first.disk_bytes,
        first.disk_bytes / first.versions.max(1),
        first_payload,
        first_payload as u64 / first.versions.max(1)
    );
    let added = second.versions - first.versions;
    println!(
        "store growth: +{added} edited versions: sled +{} B = {} B per added version \
         (payload +{} B = {} B/version); files in the store dir now {} B = {} B/version over {} versions",
        second.disk_bytes.saturating_sub(first.disk_bytes),
        second.disk_bytes.saturating_sub(first.disk_bytes) / added.max(1),
        payload - first_payload,
        (payload - first_payload) as u64 / added.max(1),
        files,
        files / second.versions.max(1),
        second.versions
    );
}
