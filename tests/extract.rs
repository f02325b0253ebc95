//! Extraction: snapshots of the partnership fixtures, focused behaviour
//! tests, and (when the shared data is present) the extraction benchmarks.

use std::path::PathBuf;

use tidings::eval;

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
        eprintln!(
            "skipping: extraction eval data not found at {} (set TIDINGS_EVAL_DIR)",
            dir.display()
        );
        None
    }
}

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
        let Some(id) = name.strip_suffix(".html") else { continue };
        let bytes = std::fs::read(&path).expect("page reads");
        let html = String::from_utf8_lossy(&bytes);
        let extracted = tidings::extract::extract(&html, &Default::default()).expect("extracts");
        std::fs::write(out.join(format!("{id}.txt")), extracted.render()).expect("write");
    }
}

#[test]
#[ignore = "temp"]
fn tmp_ancestors() {
    let html = std::fs::read_to_string(std::env::var("TMP_PAGE").unwrap()).unwrap();
    let doc = scraper::Html::parse_document(&html);
    for node in doc.tree.root().descendants() {
        if let Some(t) = node.value().as_text() {
            if t.contains(std::env::var("TMP_TEXT").unwrap().as_str()) {
                let mut a = node.parent();
                while let Some(n) = a {
                    if let Some(e) = n.value().as_element() {
                        println!("{:?}", e);
                    }
                    a = n.parent();
                }
                break;
            }
        }
    }
}
