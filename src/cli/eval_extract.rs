//! `tidings eval-extract DIR`: score extraction against hand-labelled main text.

use std::io::Write;
use std::path::Path;

use anyhow::bail;

pub(crate) fn eval_extract_command(dir: &Path, json: bool) -> anyhow::Result<u8> {
    let aeb_dir = dir.join("aeb");
    let trafilatura_dir = dir.join("trafilatura");
    let readability_dir = dir.join("readability");
    if !aeb_dir.is_dir() && !trafilatura_dir.is_dir() && !readability_dir.is_dir() {
        bail!(
            "{} has no aeb/, trafilatura/ or readability/ folder",
            dir.display()
        );
    }
    let aeb = aeb_dir
        .is_dir()
        .then(|| crate::eval::extraction::score_aeb(&aeb_dir))
        .transpose()?;
    let trafilatura = trafilatura_dir
        .is_dir()
        .then(|| crate::eval::extraction::score_trafilatura(&trafilatura_dir))
        .transpose()?;
    let readability = readability_dir
        .is_dir()
        .then(|| crate::eval::extraction::score_readability(&readability_dir))
        .transpose()?;
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({ "aeb": aeb, "trafilatura": trafilatura, "readability": readability });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        if let Some(report) = &aeb {
            writeln!(out, "## aeb ({})\n\n{report}", aeb_dir.display())?;
        }
        if let Some(report) = &trafilatura {
            writeln!(
                out,
                "## trafilatura ({})\n\n{report}",
                trafilatura_dir.display()
            )?;
        }
        if let Some(report) = &readability {
            writeln!(
                out,
                "## readability ({})\n\n{report}",
                readability_dir.display()
            )?;
        }
    }
    out.flush()?;
    Ok(0)
}
