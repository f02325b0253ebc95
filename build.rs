//! Links the `tidings` binary with the functions a check runs placed
//! together at the start of its code.
//!
//! Why: Linux maps a program's code into its resident memory a whole
//! page-cache folio at a time (64 KiB and often more on recent kernels),
//! not page by page. A check runs about 3 MB of the binary's 15 MB of code,
//! but in the linker's default order those functions are spread over nearly
//! every folio, so a `tidings check` counted almost all of its code as
//! resident: about 14 MB of its 44 MB peak on a changed cycle. With the
//! functions it runs laid out first, the folios it maps hold little else.
//!
//! The list is `build/hot-functions.txt`, one symbol a line, hottest first,
//! written by `benches/hot-functions.sh` (callgrind on a first, a changed
//! and an unchanged cycle of the benchmark). Names that no longer exist
//! after code changes are skipped without a warning, so a stale list costs
//! memory, never a build; regenerate it when the figures in
//! docs/benchmarks.md drift.
//!
//! Only where the linker is LLD, which reads the list: x86_64 Linux with
//! rustc 1.90 or later (its default linker there). Any other target or
//! toolchain links in the default order. `TIDINGS_DEFAULT_LAYOUT=1` does the
//! same on purpose (to measure the difference).

use std::path::Path;
use std::process::Command;

const LIST: &str = "build/hot-functions.txt";

fn main() {
    println!("cargo:rerun-if-changed={LIST}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TIDINGS_DEFAULT_LAYOUT");
    if std::env::var_os("TIDINGS_DEFAULT_LAYOUT").is_some_and(|v| v == "1") {
        return;
    }
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" || !rustc_links_with_lld() {
        return;
    }
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let list = Path::new(&manifest).join(LIST);
    if !list.is_file() {
        return;
    }
    // The linker is handed a copy in OUT_DIR, not the list in the source
    // tree: cargo keeps this script's output while the list is unchanged,
    // and a checkout that moved (or a target directory shared by two
    // checkouts) would otherwise point the linker at a path that is gone.
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        return;
    };
    let copy = Path::new(&out_dir).join("hot-functions.txt");
    if std::fs::copy(&list, &copy).is_err() {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        copy.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// Whether this rustc links x86_64 Linux programs with its own LLD by
/// default, which it does from 1.90 on; GNU ld would refuse the options.
fn rustc_links_with_lld() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let Ok(out) = Command::new(rustc).arg("-V").output() else {
        return false;
    };
    let version = String::from_utf8_lossy(&out.stdout);
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let mut numbers = version
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    major > 1 || (major == 1 && minor >= 90)
}
