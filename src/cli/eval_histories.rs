//! `tidings eval-histories DIR`: score alerts against judged page histories.

use std::io::Write;
use std::path::Path;

pub(crate) fn eval_histories_command(dir: &Path, json: bool) -> anyhow::Result<u8> {
    let report = crate::eval::histories::evaluate(dir)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{report}")?;
    }
    out.flush()?;
    Ok(0)
}

// ---------------------------------------------------------------------------
// The outbox
