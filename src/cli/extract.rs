//! `tidings extract SOURCE`: the main text of a page, as tidings stores it.

use crate::cli::args::{Location, RuleArgs};
use crate::cli::common::{
    Side, extract_or_explain, fetch_html, fetch_only, load_config, parse_side, read_html_file,
    rules_for, rules_from,
};
use anyhow::bail;
use std::io::Write;

pub(crate) async fn extract_command(
    source: &str,
    json: bool,
    location: &Location,
    args: &RuleArgs,
) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    let (html, rules, label) = match parse_side(source)? {
        Side::Url(url) => {
            let pipeline = fetch_only(&config)?;
            let (html, _) = fetch_html(&pipeline, &url).await?;
            let rules = rules_for(&config, Some(&url), args)?;
            (html, rules, url.to_string())
        }
        Side::File(path) => (
            read_html_file(&path)?,
            rules_from(args)?,
            path.display().to_string(),
        ),
        Side::Stored { .. } => bail!("`{source}` is not a URL or an existing HTML file"),
    };
    let extracted = extract_or_explain(&html, &rules, &label)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&extracted)?)?;
    } else {
        write!(out, "{}", extracted.render())?;
    }
    out.flush()?;
    Ok(0)
}

// ---------------------------------------------------------------------------
// check
