//! `tidings subscribers …` as values: a command in, its output out.
//!
//! The CLI runs these against the store itself when no daemon is running.
//! While the daemon runs it holds the store (sled allows one process), so
//! the CLI sends the command over the control socket and the daemon runs
//! the same function on its own handle: an admin never has to stop the
//! service to add a subscriber. Files (a CSV to import) are read by the
//! CLI and sent as text; the daemon never opens paths for a client.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::subscriptions as subs;

use crate::store::{Store, StoreError, Subscriber, Suppression, normalise_address};

/// Exit status for an error, following diff(1). The CLI uses the same
/// value, so a command answers alike through the daemon or on the store.
pub const EXIT_ERROR: u8 = 2;

/// One subscriber command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum SubscriberCommand {
    /// Add or update a subscriber (confirmed; consent source `admin-cli`).
    Add {
        /// The address.
        address: String,
        /// Their name.
        name: Option<String>,
        /// Watch names and `tag:TAG`s.
        follow: Vec<String>,
        /// Kinds, comma- or semicolon-separated.
        kinds: Option<String>,
        /// `immediate` or `CRON@ZONE`.
        cadence: Option<String>,
    },
    /// Remove a subscriber.
    Remove {
        /// The address.
        address: String,
    },
    /// List subscribers and suppressions.
    List {
        /// As JSON.
        json: bool,
    },
    /// Import a CSV.
    Import {
        /// Where the text came from, for error messages.
        source: String,
        /// The CSV text.
        text: String,
        /// The admin says the people added have consented: they are
        /// stored confirmed, consent source `admin-import --confirmed`.
        /// Without it they are stored unconfirmed.
        #[serde(default)]
        confirmed: bool,
    },
    /// Export every subscriber as CSV.
    Export,
    /// Erase a person's data.
    Forget {
        /// The address.
        address: String,
    },
    /// Suppress an address.
    Suppress {
        /// The address.
        address: String,
        /// Why.
        reason: Option<String>,
        /// Whether the person asked.
        requested: bool,
    },
    /// Lift a suppression.
    Unsuppress {
        /// The address.
        address: String,
    },
}

impl SubscriberCommand {
    /// The command's name, for logs (never its arguments: they hold
    /// people's addresses).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Add { .. } => "add",
            Self::Remove { .. } => "remove",
            Self::List { .. } => "list",
            Self::Import { .. } => "import",
            Self::Export => "export",
            Self::Forget { .. } => "forget",
            Self::Suppress { .. } => "suppress",
            Self::Unsuppress { .. } => "unsuppress",
        }
    }
}

/// What a command printed, and its exit status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// For standard output.
    pub stdout: String,
    /// For standard error.
    pub stderr: String,
    /// The exit status: 0, 1 (nothing to do, e.g. no such subscriber), or
    /// 2 (an error).
    pub code: u8,
}

impl Output {
    fn ok(stdout: String) -> Self {
        Self {
            stdout,
            ..Self::default()
        }
    }

    fn not_found(stderr: String) -> Self {
        Self {
            stderr,
            code: 1,
            ..Self::default()
        }
    }

    fn error(message: impl std::fmt::Display) -> Self {
        Self {
            stderr: format!("error: {message}\n"),
            code: EXIT_ERROR,
            ..Self::default()
        }
    }
}

/// Runs a command on the store. Store failures become an error output, so
/// a daemon running this for a client never fails itself.
pub fn run(store: &Store, command: &SubscriberCommand, now: DateTime<Utc>) -> Output {
    let result = match command {
        SubscriberCommand::Add {
            address,
            name,
            follow,
            kinds,
            cadence,
        } => add(
            store,
            address,
            name.as_deref(),
            follow,
            kinds.as_deref(),
            cadence.as_deref(),
            now,
        ),
        SubscriberCommand::Remove { address } => {
            let address = normalise_address(address);
            store.remove_subscriber(&address).map(|removed| {
                if removed {
                    Output::ok(format!("removed {address}\n"))
                } else {
                    Output::not_found(format!("no subscriber {address}\n"))
                }
            })
        }
        SubscriberCommand::List { json } => list(store, *json),
        SubscriberCommand::Import {
            source,
            text,
            confirmed,
        } => import(store, source, text, *confirmed, now),
        SubscriberCommand::Export => store
            .subscribers()
            .map(|subscribers| Output::ok(subs::to_csv(&subscribers))),
        SubscriberCommand::Forget { address } => forget(store, address),
        SubscriberCommand::Suppress {
            address,
            reason,
            requested,
        } => match subs::validate_address(address) {
            Err(e) => Ok(Output::error(e)),
            Ok(address) => store
                .suppress(&Suppression {
                    address: address.clone(),
                    reason: reason.clone().unwrap_or_default(),
                    at: now,
                    requested: *requested,
                })
                .map(|()| Output::ok(format!("suppressed {address}\n"))),
        },
        SubscriberCommand::Unsuppress { address } => store.unsuppress(address).map(|lifted| {
            if lifted {
                Output::ok(format!("unsuppressed {}\n", address.trim()))
            } else {
                Output::not_found(format!("{} is not suppressed\n", address.trim()))
            }
        }),
    };
    let output = result.unwrap_or_else(Output::error);
    match store.flush() {
        Ok(()) => output,
        Err(error) => Output::error(error),
    }
}

fn add(
    store: &Store,
    address: &str,
    name: Option<&str>,
    follow: &[String],
    kinds: Option<&str>,
    cadence: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Output, StoreError> {
    let address = match subs::validate_address(address) {
        Ok(address) => address,
        Err(e) => return Ok(Output::error(e)),
    };
    let (watches, tags) = match subs::parse_follows(&follow.join(";")) {
        Ok(follows) => follows,
        Err(e) => return Ok(Output::error(format!("--follow: {e}"))),
    };
    let kinds = match subs::parse_kinds(kinds.unwrap_or("")) {
        Ok(kinds) => kinds,
        Err(e) => return Ok(Output::error(format!("--kinds: {e}"))),
    };
    let cadence = match subs::parse_cadence(cadence.unwrap_or("")) {
        Ok(cadence) => cadence,
        Err(e) => return Ok(Output::error(format!("--cadence: {e}"))),
    };
    if name.is_some_and(|name| name.chars().any(char::is_control)) {
        return Ok(Output::error("--name: the name has control characters"));
    }
    if let Some(suppression) = store.suppression(&address)? {
        return Ok(Output::error(format!(
            "{address} is suppressed ({}); run `tidings subscribers unsuppress {address}` first",
            if suppression.reason.is_empty() {
                "no reason given"
            } else {
                &suppression.reason
            }
        )));
    }
    let existing = store.subscriber(&address)?;
    let subscriber = Subscriber {
        address: address.clone(),
        name: name
            .map(str::to_owned)
            .or_else(|| existing.as_ref().map(|s| s.name.clone()))
            .unwrap_or_default(),
        watches,
        tags,
        kinds,
        cadence,
        confirmed: true,
        consent_at: Some(now),
        consent_source: Some("admin-cli".to_owned()),
        created: existing.as_ref().map_or(now, |s| s.created),
    };
    let new = store.put_subscriber(&subscriber)?;
    Ok(Output::ok(format!(
        "{} {address}\n",
        if new { "added" } else { "updated" }
    )))
}

fn forget(store: &Store, address: &str) -> Result<Output, StoreError> {
    let address = normalise_address(address);
    let forgotten = store.forget(&address)?;
    let mut out = String::new();
    match (forgotten.subscriber, forgotten.suppression_kept) {
        (false, false) if !forgotten.suppression_erased => {
            let _ = writeln!(out, "nothing held about {address}");
        }
        (_, true) => {
            let _ = writeln!(
                out,
                "erased {address}; kept a bare suppression entry because they asked not to be mailed"
            );
        }
        _ => {
            let _ = writeln!(out, "erased {address}");
        }
    }
    if forgotten.deliveries > 0 {
        let _ = writeln!(
            out,
            "erased {} queued or sent briefing(s) addressed to them",
            forgotten.deliveries
        );
    }
    Ok(Output::ok(out))
}

fn list(store: &Store, json: bool) -> Result<Output, StoreError> {
    let subscribers = store.subscribers()?;
    let suppressed = store.suppressed()?;
    let is_suppressed = |address: &str| {
        let lower = address.to_lowercase();
        suppressed.iter().any(|s| s.address == lower)
    };
    let mut out = String::new();
    if json {
        let list: Vec<serde_json::Value> = subscribers
            .iter()
            .map(|s| {
                serde_json::json!({
                    "address": s.address,
                    "name": s.name,
                    "watches": s.watches,
                    "tags": s.tags,
                    "kinds": s.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                    "cadence": subs::format_cadence(&s.cadence),
                    "confirmed": s.confirmed,
                    "consent_at": s.consent_at,
                    "consent_source": s.consent_source,
                    "created": s.created,
                    "suppressed": is_suppressed(&s.address),
                })
            })
            .collect();
        let suppressions: Vec<serde_json::Value> = suppressed
            .iter()
            .map(|s| {
                serde_json::json!({
                    "address": s.address, "reason": s.reason, "at": s.at, "requested": s.requested,
                })
            })
            .collect();
        let document = serde_json::json!({"subscribers": list, "suppressed": suppressions});
        out.push_str(&serde_json::to_string_pretty(&document).unwrap_or_default());
        out.push('\n');
        return Ok(Output::ok(out));
    }
    if subscribers.is_empty() {
        out.push_str("no subscribers\n");
    }
    for s in &subscribers {
        let follows = subs::format_follows(s);
        let kinds = subs::format_kinds(&s.kinds);
        let _ = writeln!(
            out,
            "{}{}  {}  follows {}  kinds {}  {}{}",
            s.address,
            if s.name.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.name)
            },
            if s.confirmed {
                "confirmed"
            } else {
                "unconfirmed"
            },
            if follows.is_empty() {
                "everything"
            } else {
                &follows
            },
            if kinds.is_empty() {
                "all but minor"
            } else {
                &kinds
            },
            subs::format_cadence(&s.cadence),
            if is_suppressed(&s.address) {
                "  SUPPRESSED"
            } else {
                ""
            },
        );
    }
    if !suppressed.is_empty() {
        let _ = writeln!(out, "{} suppressed address(es)", suppressed.len());
    }
    Ok(Output::ok(out))
}

/// The consent source recorded when the admin confirms an import.
pub const CONFIRMED_IMPORT: &str = "admin-import --confirmed";

fn import(
    store: &Store,
    source: &str,
    text: &str,
    admin_confirms: bool,
    now: DateTime<Utc>,
) -> Result<Output, StoreError> {
    let rows = match subs::parse_csv(text) {
        Ok(rows) => rows,
        Err(errors) => {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("{source}:{}: {}", e.line, e.message))
                .collect();
            return Ok(Output::error(format!(
                "{} bad line(s); nothing was imported\n{}",
                errors.len(),
                lines.join("\n")
            )));
        }
    };
    let (mut added, mut updated, mut pending) = (0, 0, 0);
    let mut skipped = Vec::new();
    for row in rows {
        if store.suppression(&row.address)?.is_some() {
            skipped.push(format!("{} (line {})", row.address, row.line));
            continue;
        }
        let existing = store.subscriber(&row.address)?;
        // Consent is never read from a file. Someone already here keeps
        // their state; someone new is confirmed only when the admin says
        // so, and never when the file records them as not confirmed (a
        // pending web sign-up).
        let (confirmed, consent_at, consent_source) = match &existing {
            Some(s) => (s.confirmed, s.consent_at, s.consent_source.clone()),
            None if admin_confirms && row.confirmed != Some(false) => (
                true,
                Some(now),
                Some(match &row.consent_source {
                    Some(was) => format!("{CONFIRMED_IMPORT} (was: {was})"),
                    None => CONFIRMED_IMPORT.to_owned(),
                }),
            ),
            None => (
                false,
                row.consent_at,
                Some(
                    row.consent_source
                        .clone()
                        .unwrap_or_else(|| "admin-csv-import".to_owned()),
                ),
            ),
        };
        if !confirmed {
            pending += 1;
        }
        let subscriber = Subscriber {
            address: row.address,
            name: row.name,
            watches: row.watches,
            tags: row.tags,
            kinds: row.kinds,
            cadence: row.cadence,
            confirmed,
            // A re-import changes what someone follows, not when or how they
            // consented.
            consent_at,
            consent_source,
            created: existing.as_ref().map_or(now, |s| s.created),
        };
        if store.put_subscriber(&subscriber)? {
            added += 1;
        } else {
            updated += 1;
        }
    }
    let mut out = format!(
        "imported {source}: {added} added, {updated} updated, {} skipped as suppressed\n",
        skipped.len()
    );
    for line in &skipped {
        let _ = writeln!(out, "skipped {line}: suppressed");
    }
    if pending > 0 {
        let _ = writeln!(
            out,
            "{pending} subscriber(s) unconfirmed: they get no briefings until they confirm{}",
            if admin_confirms {
                ""
            } else {
                " (import with --confirmed if they have consented)"
            }
        );
    }
    Ok(Output::ok(out))
}
