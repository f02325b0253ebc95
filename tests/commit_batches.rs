//! The pipeline commits the new versions of several checks in one batch
//! (one pack append, one sync, one transaction). A batch that fails must
//! fail every check in it: no line may say NEW for a version that is not
//! stored, and no version of the batch may be half there. Once the store
//! can be written again, the next pass stores every page.

mod common;

use std::sync::Arc;

use common::{PLACES, Site, WatchDef, Workspace, partnership_page};
use tidings::service::pipeline::{Outcome, Pipeline};
use tidings::store::Store;

const PAGES: usize = 12;

#[test]
fn a_batch_that_cannot_be_committed_fails_every_check_in_it_and_stores_nothing() {
    let site = Site::start();
    let mut watches = Vec::new();
    for i in 0..PAGES {
        let path = format!("/p/{i:02}");
        let chair = format!("the chair of page {i:02}");
        site.set_html(
            &path,
            partnership_page(&format!("Partnership {i:02}"), PLACES, &chair),
        );
        watches.push(WatchDef::new(&format!("p{i:02}"), site.url(&path)));
    }
    let ws = Workspace::new(&watches);
    let config = tidings::config::load(&ws.config).expect("config");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = Store::open(&config.state_dir).expect("store");
        // Where the packs go is taken by a file: every batch fails at its
        // pack append, before its transaction.
        let packs = config.state_dir.join("store.sled").join("texts");
        std::fs::write(&packs, b"in the way").expect("write");
        let pipeline =
            Arc::new(Pipeline::new(store.clone(), config.limits.clone(), None).expect("pipeline"));
        let mut printed = Vec::new();
        let reports = pipeline
            .check_all(&config.watches, |report| printed.push(report.line()))
            .await;
        assert_eq!(reports.len(), PAGES);
        for report in &reports {
            match &report.outcome {
                Outcome::Failed { error } => assert!(
                    error.contains("store text file") && error.contains("texts"),
                    "{}: {error}",
                    report.watch
                ),
                other => panic!("{}: {other:?}", report.watch),
            }
        }
        assert!(
            printed.iter().all(|line| line.starts_with("ERROR: ")),
            "{printed:?}"
        );
        for watch in &config.watches {
            assert_eq!(store.history(&watch.name).expect("history"), []);
            assert_eq!(
                store
                    .watch_state(&watch.name)
                    .expect("state")
                    .latest_version,
                None
            );
        }

        std::fs::remove_file(&packs).expect("remove");
        let reports = pipeline.check_all(&config.watches, |_| {}).await;
        for report in &reports {
            assert!(
                matches!(report.outcome, Outcome::New { version: 1 }),
                "{}: {:?}",
                report.watch,
                report.outcome
            );
            let (info, text) = store
                .latest(&report.watch)
                .expect("latest")
                .expect("stored");
            assert_eq!(info.number, 1);
            let chair = format!("the chair of page {}", &report.watch[1..]);
            assert!(
                text.iter().any(|block| block.text.contains(&chair)),
                "{}: {text:?}",
                report.watch
            );
        }
    });
}
