//! `tidings diff OLD [NEW]`: compare two versions of a page, from URLs, files or the store.

use crate::cli::args::{DiffFormat, Location, RuleArgs};
use crate::cli::common::{
    Side, StoreAccess, extract_or_explain, fetch_html, fetch_only, latest_text, load_config,
    open_store, open_store_or_daemon, parse_side, pipeline_for, read_html_file, read_text,
    rules_for, rules_from, slug,
};
use crate::config::{self, Config, Watch};
use crate::core::classify;
use crate::core::diff::{self, DiffOptions, TextDiff};
use crate::core::extract::Rules;
use crate::core::facts;
use crate::core::model::Block;
use crate::core::render;
use crate::service::pipeline::{self, FetchedPage, Outcome};
use anyhow::Context;
use chrono::Utc;
use std::io::Write;

/// The text of one side, and a label for it.
pub(crate) async fn side_text(
    side: &Side,
    config: &Config,
    store: &mut Option<StoreAccess>,
    args: &RuleArgs,
) -> anyhow::Result<(Vec<Block>, String)> {
    match side {
        Side::Url(url) => {
            let pipeline = fetch_only(config)?;
            let (html, _) = fetch_html(&pipeline, url).await?;
            let rules = rules_for(config, Some(url), args)?;
            Ok((
                extract_or_explain(&html, &rules, url.as_str())?.blocks,
                url.to_string(),
            ))
        }
        Side::File(path) => {
            let html = read_html_file(path)?;
            let rules = rules_for(config, None, args)?;
            let label = path.display().to_string();
            Ok((extract_or_explain(&html, &rules, &label)?.blocks, label))
        }
        Side::Stored { watch, version } => {
            if store.is_none() {
                *store = Some(open_store_or_daemon(config)?);
            }
            let access = store.as_ref().context("store is open")?;
            let (number, blocks) = read_text(access, watch, *version)?;
            Ok((blocks, format!("{watch}@{number}")))
        }
    }
}

pub(crate) fn print_diff(
    diff: &TextDiff,
    old: &[Block],
    new: &[Block],
    labels: (&str, &str),
    format: DiffFormat,
) -> anyhow::Result<()> {
    let mut out = anstream::stdout();
    let assessment = classify::classify(
        diff,
        &facts::page_facts(old, &[]),
        &facts::page_facts(new, &[]),
    );
    match format {
        DiffFormat::Word => {
            let colour =
                anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never;
            if !assessment.changes.is_empty() {
                writeln!(out, "{}", render::assessment_header(&assessment, colour))?;
            }
            write!(out, "{}", render::word(diff, colour))?;
        }
        DiffFormat::Unified => write!(out, "{}", render::unified(old, new, labels.0, labels.1))?,
        DiffFormat::Json => {
            let mut json = serde_json::to_value(render::JsonDiff::new(diff))?;
            json["old"] = labels.0.into();
            json["new"] = labels.1.into();
            json["alert"] = assessment.alerts().into();
            json["kinds"] = serde_json::to_value(assessment.kinds())?;
            json["changes"] = serde_json::to_value(render::json_assessment(&assessment))?;
            writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        }
    }
    out.flush()?;
    Ok(())
}

pub(crate) async fn diff_command(
    old: &str,
    new: Option<&str>,
    format: DiffFormat,
    no_store: bool,
    location: &Location,
    args: &RuleArgs,
) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    let options = DiffOptions {
        timeout: config.limits.diff_timeout,
        max_changes: config.limits.max_diff_changes,
        ..DiffOptions::default()
    };
    let Some(new) = new else {
        return diff_against_stored(old, format, no_store, &config, args, &options).await;
    };
    let mut store = None;
    let (old_blocks, old_label) = side_text(&parse_side(old)?, &config, &mut store, args).await?;
    let (new_blocks, new_label) = side_text(&parse_side(new)?, &config, &mut store, args).await?;
    let result = diff::diff(&old_blocks, &new_blocks, &options);
    print_diff(
        &result,
        &old_blocks,
        &new_blocks,
        (&old_label, &new_label),
        format,
    )?;
    Ok(u8::from(!result.is_empty()))
}

/// `tidings diff URL|WATCH`: the page now against its latest stored version.
pub(crate) async fn diff_against_stored(
    target: &str,
    format: DiffFormat,
    no_store: bool,
    config: &Config,
    args: &RuleArgs,
    options: &DiffOptions,
) -> anyhow::Result<u8> {
    let watch = match config.watch(target) {
        Some(watch) => watch.clone(),
        None => {
            let url = url::Url::parse(target)
                .with_context(|| format!("`{target}` is neither a configured watch nor a URL"))?;
            match config.watches.iter().find(|w| w.url == url) {
                Some(watch) => watch.clone(),
                None => ad_hoc_watch(&url)?,
            }
        }
    };
    let rules = if args.is_set() {
        rules_from(args)?
    } else {
        watch.rules.clone()
    };
    // Only storing the new version needs the store to itself; a comparison
    // alone can read through the running daemon.
    let access = if no_store {
        open_store_or_daemon(config)?
    } else {
        StoreAccess::Local(open_store(config)?)
    };
    let pipeline = match &access {
        StoreAccess::Local(store) => pipeline_for(config, store.clone())?,
        StoreAccess::Daemon(_) => fetch_only(config)?,
    };
    let (html, validators) = fetch_html(&pipeline, &watch.url).await?;
    let fetched_at = Utc::now();
    let extracted = extract_or_explain(&html, &rules, watch.url.as_str())?;
    let previous = latest_text(&access, &watch.name)?;
    let exit = match &previous {
        Some((number, old_blocks)) => {
            let result = diff::diff(old_blocks, &extracted.blocks, options);
            let old_label = format!("{}@{number}", watch.name);
            print_diff(
                &result,
                old_blocks,
                &extracted.blocks,
                (&old_label, watch.url.as_str()),
                format,
            )?;
            u8::from(!result.is_empty())
        }
        None => {
            eprintln!(
                "{}: no stored version yet; nothing to compare with",
                watch.name
            );
            if format == DiffFormat::Json {
                // Scripts asking for JSON get JSON, even with nothing to
                // compare: an empty diff against no earlier version.
                let json = serde_json::json!({
                    "old": null,
                    "new": watch.url.as_str(),
                    "changed": false,
                    "changed_words": 0,
                    "added": [],
                    "removed": [],
                    "changed_blocks": [],
                    "alert": false,
                    "kinds": [],
                    "changes": [],
                });
                println!("{}", serde_json::to_string_pretty(&json)?);
            }
            0
        }
    };
    if let (false, StoreAccess::Local(store)) = (no_store, &access) {
        let page = FetchedPage {
            html: &html,
            fetched_at,
            validators,
            audience: None,
        };
        let outcome =
            pipeline::apply_page(store, &watch.name, &rules, &watch.facts, &page, options)?;
        store.flush()?;
        if let Outcome::New { version }
        | Outcome::Changed { version, .. }
        | Outcome::Rebaselined { version } = outcome
        {
            eprintln!("stored as {}@{version}", watch.name);
        }
    }
    Ok(exit)
}

/// A watch for a URL that is not in the config, named after the URL, so
/// that repeated `tidings diff URL` runs share a history.
pub(crate) fn ad_hoc_watch(url: &url::Url) -> anyhow::Result<Watch> {
    Ok(Watch {
        name: slug(url),
        title: None,
        url: url.clone(),
        schedule: config::Schedule::parse(config::DEFAULT_SCHEDULE, config::DEFAULT_TIMEZONE)
            .map_err(anyhow::Error::msg)?,
        tags: Vec::new(),
        rules: Rules::default(),
        facts: Vec::new(),
        robots: true,
        allow_redirects_to: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::common::slug;

    #[test]
    fn sides_are_told_apart() {
        assert!(matches!(
            parse_side("https://example.org/a").expect("url"),
            Side::Url(_)
        ));
        assert_eq!(
            parse_side("lsc@3").expect("stored"),
            Side::Stored {
                watch: "lsc".into(),
                version: Some(3)
            }
        );
        assert_eq!(
            parse_side("lsc@latest").expect("stored"),
            Side::Stored {
                watch: "lsc".into(),
                version: None
            }
        );
        assert!(parse_side("lsc@three").is_err());
        assert!(parse_side("no-such-file.html").is_err());
    }

    #[test]
    fn slugs_are_valid_watch_names() {
        let url = url::Url::parse("https://www.example.org/about-us/stp/?x=1").expect("url");
        assert_eq!(slug(&url), "www.example.org-about-us-stp");
    }
}
