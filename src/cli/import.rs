//! `tidings import URLS`: write a config with one watch per URL.

use std::path::Path;

use anyhow::Context;

use crate::cli::common::{slug, slug_text};

pub(crate) fn import_command(urls: &Path, out: &Path, contact: &str) -> anyhow::Result<u8> {
    let list =
        std::fs::read_to_string(urls).with_context(|| format!("cannot read {}", urls.display()))?;
    let mut names = std::collections::HashSet::new();
    let mut text = String::new();
    text.push_str("# Written by `tidings import`.\n");
    text.push_str(&format!(
        "contact = {}\nstate_dir = \".\"\n\n",
        toml_string(contact)
    ));
    let mut watches = String::new();
    let mut all_loopback = true;
    for (index, line) in list.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let url = url::Url::parse(line)
            .with_context(|| format!("{}:{}: `{line}` is not a URL", urls.display(), index + 1))?;
        // Name a watch after the last two path segments ("page-17"), which
        // reads better in reports than the whole URL; fall back to the
        // host-and-path slug when that collides.
        let segments: Vec<&str> = url
            .path_segments()
            .map(Iterator::collect)
            .unwrap_or_default();
        let tail = segments
            .iter()
            .rev()
            .take(2)
            .rev()
            .copied()
            .collect::<Vec<_>>()
            .join("-");
        let mut name = slug_text(&tail).trim_matches('-').to_owned();
        if name.is_empty() || names.contains(&name) {
            name = slug(&url);
        }
        let mut unique = name.clone();
        let mut n = 2;
        while !names.insert(unique.clone()) {
            unique = format!("{name}-{n}");
            n += 1;
        }
        all_loopback &= is_loopback(&url);
        watches.push_str(&format!(
            "\n[[watch]]\nname = {}\nurl = {}\n",
            toml_string(&unique),
            toml_string(url.as_str())
        ));
    }
    text.push_str("[limits]\nper_host = 8\n");
    if all_loopback {
        // Pages on this machine (a benchmark or a test) need no spacing out;
        // real sites keep the default pause between requests.
        text.push_str("per_host_interval = \"0s\"\n");
    }
    text.push_str(&watches);
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {} watch(es) to {}", names.len(), out.display());
    Ok(0)
}

pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

pub(crate) fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

// ---------------------------------------------------------------------------
// eval-extract
