//! One check of one watch: fetch → extract → diff → store.
//!
//! This is the orchestration layer for a single pass. It owns the
//! concurrency bounds (a global limit and a per-host limit) and decides what
//! a check's outcome means for the store. CPU-bound work (extraction, diffing)
//! and sled calls run on the blocking pool through [`apply_page`], which is
//! synchronous: a parsed page never lives across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::config::{Limits, Watch};
use crate::core::classify::{self, Assessment};
use crate::core::diff::{self, DiffOptions, TextDiff};
use crate::core::extract::{self, EXTRACTOR_VERSION};
use crate::core::facts::{self, FactRule};
use crate::core::model::Block;
use crate::fetch::{FetchOutcome, FetchSettings, Fetcher, Validators};
use crate::store::{self, NewChange, NewVersion, PreparedVersion, Store, StoreError, Suspect};

mod committer;
mod pool;
mod record;
mod suspicion;
use committer::{Commit, Committer, UnderWay};
use pool::CpuPool;
use record::{record_failure, record_not_modified, run_blocking};
use suspicion::suspicion;

/// What one check found.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The first version of the page was stored.
    New {
        /// The stored version's number.
        version: u64,
    },
    /// The text changed; a new version and its change record were stored.
    Changed {
        /// The stored version's number.
        version: u64,
        /// What changed.
        diff: TextDiff,
        /// What kind of change it is.
        assessment: Assessment,
    },
    /// The text changed in a way that must be confirmed by a later fetch
    /// before it counts (most of the text vanished, or the page flipped back
    /// to a recent version). Nothing was stored but the suspicion.
    Held {
        /// Why it was held.
        reason: String,
    },
    /// The text is as it was (or the server said 304 Not Modified).
    Unchanged {
        /// Whether the server answered 304, so nothing was parsed.
        not_modified: bool,
    },
    /// The stored text came from an older extractor and differed only for
    /// that reason: the new text was stored silently as the new baseline.
    Rebaselined {
        /// The stored version's number.
        version: u64,
    },
    /// The check failed; nothing about the page's content was recorded.
    Failed {
        /// Why, naming the URL.
        error: String,
    },
}

impl Outcome {
    /// The one-word label used in `tidings check` output.
    pub fn label(&self) -> &'static str {
        match self {
            Self::New { .. } => "NEW",
            Self::Changed { .. } => "CHANGED",
            Self::Unchanged { .. } | Self::Rebaselined { .. } | Self::Held { .. } => "UNCHANGED",
            Self::Failed { .. } => "ERROR",
        }
    }
}

impl Outcome {
    /// The same outcome for version `number`: the committer numbered the
    /// version after one another writer stored meanwhile.
    fn renumbered(mut self, number: u64) -> Self {
        if let Self::New { version }
        | Self::Changed { version, .. }
        | Self::Rebaselined { version } = &mut self
        {
            *version = number;
        }
        self
    }
}

/// What a check's fetch and reading came to: done, or a new version for
/// the committer (the outcome says what it will be once committed).
enum Checked {
    Done(Outcome),
    Commit(Box<(Outcome, PreparedVersion)>),
}

/// The result of checking one watch.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The watch's name.
    pub watch: String,
    /// The watch's URL.
    pub url: String,
    /// When the check finished.
    pub checked_at: DateTime<Utc>,
    /// What it found.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl CheckReport {
    /// The one-line form: `CHANGED: name`, `ERROR: name: reason`, ….
    pub fn line(&self) -> String {
        match &self.outcome {
            Outcome::Failed { error } => format!("ERROR: {}: {error}", self.watch),
            Outcome::Rebaselined { .. } => format!(
                "UNCHANGED: {} (re-baselined after an extractor upgrade)",
                self.watch
            ),
            Outcome::Held { reason } => format!("UNCHANGED: {} ({reason})", self.watch),
            Outcome::Changed { assessment, .. } => {
                format!("CHANGED: {}: {}", self.watch, assessment.one_line())
            }
            outcome => format!("{}: {}", outcome.label(), self.watch),
        }
    }
}

/// Why a page could not be applied to the store.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The page's text could not be extracted.
    #[error(transparent)]
    Extract(#[from] extract::ExtractError),
    /// The page had no text at all: treated as a failed check, never as
    /// "the page was emptied".
    #[error("the page has no text")]
    NoText,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The fetched page and what is known about the fetch, for [`apply_page`].
#[derive(Debug)]
pub struct FetchedPage<'a> {
    /// The HTML.
    pub html: &'a str,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
    /// The validators to remember.
    pub validators: Validators,
    /// Who may be told about a change: the watch's subscribers. `None` for
    /// ad-hoc work (`diff`, `replay`, evaluations), which tells nobody.
    pub audience: Option<Audience<'a>>,
}

/// The page's identity as briefings need it.
#[derive(Debug, Clone, Copy)]
pub struct Audience<'a> {
    /// The page's URL.
    pub url: &'a str,
    /// The watch's tags.
    pub tags: &'a [String],
}

/// Extracts, diffs against the latest stored version, classifies, and
/// stores: the synchronous heart of a check, shared by `check`, `diff` and
/// `replay`.
pub fn apply_page(
    store: &Store,
    watch: &str,
    rules: &extract::Rules,
    fact_rules: &[FactRule],
    page: &FetchedPage<'_>,
    diff_options: &DiffOptions,
) -> Result<Outcome, ApplyError> {
    let extracted = extract::extract(page.html, rules)?;
    apply_extracted(
        store,
        watch,
        &extracted.blocks,
        fact_rules,
        page,
        diff_options,
    )
}

/// [`apply_page`] for text already extracted.
pub fn apply_extracted(
    store: &Store,
    watch: &str,
    blocks: &[Block],
    fact_rules: &[FactRule],
    page: &FetchedPage<'_>,
    diff_options: &DiffOptions,
) -> Result<Outcome, ApplyError> {
    let now = &mut Commit::Now;
    apply_with(store, watch, blocks, fact_rules, page, diff_options, now)
}

/// [`apply_extracted`], committing a new version as `commit` says.
fn apply_with(
    store: &Store,
    watch: &str,
    blocks: &[Block],
    fact_rules: &[FactRule],
    page: &FetchedPage<'_>,
    diff_options: &DiffOptions,
    commit: &mut Commit,
) -> Result<Outcome, ApplyError> {
    if blocks.is_empty() {
        return Err(ApplyError::NoText);
    }
    let mut state = store.watch_state(watch)?;
    // A held fetch's validators must not be remembered: a 304 to them would
    // skip the fetch that is to confirm (or clear) the held text.
    let stored_validators = (state.etag.take(), state.last_modified.take());
    state.etag = page.validators.etag.clone();
    state.last_modified = page.validators.last_modified.clone();
    state.last_check = Some(page.fetched_at);
    state.last_success = Some(page.fetched_at);
    state.last_error = None;
    state.consecutive_failures = 0;

    let Some((previous_info, previous_blocks)) = store.latest_of(watch, state.latest_version)?
    else {
        state.suspect = None;
        // Facts are read when a change needs them, not for every baseline:
        // on a first pass over a thousand pages that is a third of the work.
        let version = new_version(page, blocks, None);
        let number = commit.commit(store, watch, &version, &state)?;
        return Ok(Outcome::New { version: number });
    };
    // The blocks' texts numbered once, for the diff and the fact reader.
    let ids = diff::TextIds::of(&previous_blocks, blocks);
    let text_diff = diff::diff_with_ids(&previous_blocks, blocks, &ids, diff_options);
    if text_diff.is_empty() {
        state.suspect = None;
        store.record_check(watch, &state)?;
        return Ok(Outcome::Unchanged {
            not_modified: false,
        });
    }
    if previous_info.extractor_version != EXTRACTOR_VERSION {
        // The same page read by a newer extractor is not news: store it as
        // the new baseline, with no change record.
        state.suspect = None;
        let version = new_version(page, blocks, None);
        let number = commit.commit(store, watch, &version, &state)?;
        return Ok(Outcome::Rebaselined { version: number });
    }

    // Noise that must be seen twice before it counts. The text's hash is
    // made only when something is compared with it: a watch with no earlier
    // version than the latest and no suspicion needs none, and the commit
    // hashes the text again anyway.
    let mut hash = None;
    if let Some(reason) = suspicion(store, watch, &previous_blocks, blocks, &mut hash)? {
        let hash = hash.unwrap_or_else(|| store::text_hash(blocks));
        // Held until the same text has come back `confirm_after` fetches in
        // a row; any other text starts the count again, and the old text
        // returning ends the hold silently (the diff is empty above).
        let (seen, since) = match &state.suspect {
            Some(s) if s.hash == hash => (s.seen.saturating_add(1), s.since),
            _ => (1, page.fetched_at),
        };
        if seen < diff_options.confirm_after.max(1) {
            state.suspect = Some(Suspect {
                hash,
                reason: reason.clone(),
                since,
                seen,
            });
            (state.etag, state.last_modified) = stored_validators;
            store.record_check(watch, &state)?;
            return Ok(Outcome::Held { reason });
        }
    }
    state.suspect = None;

    // The old text's facts are read again with today's rules, so a rule
    // added to the config compares like with like. Only the facts that one
    // version states and the other does not are read: the blocks that
    // changed, and of the rest only those that could state one of them.
    let (fact_changes, read) =
        facts::read_fact_changes_by_text(&previous_blocks, blocks, &ids, fact_rules);
    let assessment = classify::classify_read(&text_diff, &fact_changes, &read);
    state.last_change = Some(page.fetched_at);
    let detail = ChangeDetail {
        alert: assessment.alerts(),
        assessment: &assessment,
        diff: &text_diff,
        kinds: assessment.kinds(),
        summary: assessment.one_line(),
    };
    let change = NewChange {
        changed_words: text_diff.changed_words() as u64,
        // Serialising these types cannot fail (no maps with keys that are
        // not strings); `json!`, which this replaces, did the same.
        detail: serde_json::value::to_raw_value(&detail).unwrap_or_default(),
    };
    // The facts themselves are not stored: the change record keeps the ones
    // that were added, removed or changed, and an old text's facts are read
    // again with today's rules when it is next compared (above), so a stored
    // copy would only be read by nobody at about 2 KB a version.
    let mut version = new_version(page, blocks, Some(change));
    if let Some(audience) = &page.audience {
        version.notify = recipients(store, watch, audience, &assessment.kinds())?;
    }
    let number = commit.commit(store, watch, &version, &state)?;
    Ok(Outcome::Changed {
        version: number,
        diff: text_diff,
        assessment,
    })
}

/// A change record's detail. Written straight from the pipeline's types
/// rather than through a `serde_json::Value` (built, serialised and freed:
/// 4 % of a changed cycle); readers read it as a `Value`, so the order of
/// its keys is of no account (the top level keeps the sorted order the
/// `Value` gave it).
#[derive(Serialize)]
struct ChangeDetail<'a> {
    alert: bool,
    assessment: &'a Assessment,
    diff: &'a TextDiff,
    kinds: Vec<classify::Kind>,
    summary: String,
}

/// The subscribers to tell about a change of these kinds, with how (now
/// or in their digest). Unconfirmed and suppressed addresses are left out
/// here; the send worker checks again at send time, since either can change
/// while a briefing waits.
fn recipients(
    store: &Store,
    watch: &str,
    audience: &Audience<'_>,
    kinds: &[classify::Kind],
) -> Result<Option<store::Notify>, StoreError> {
    let mut recipients = Vec::new();
    for subscriber in store.subscribers()? {
        if !subscriber.confirmed
            || !crate::core::subscriptions::matches(&subscriber, watch, audience.tags, kinds)
            || store.suppression(&subscriber.address)?.is_some()
        {
            continue;
        }
        recipients.push(store::Recipient {
            digest: matches!(subscriber.cadence, store::Cadence::Digest { .. }),
            address: subscriber.address,
        });
    }
    Ok((!recipients.is_empty()).then(|| store::Notify {
        url: audience.url.to_owned(),
        tags: audience.tags.to_vec(),
        recipients,
    }))
}

fn new_version<'a>(
    page: &FetchedPage<'_>,
    blocks: &'a [Block],
    change: Option<NewChange>,
) -> NewVersion<'a> {
    NewVersion {
        seen_at: page.fetched_at,
        blocks,
        extractor_version: EXTRACTOR_VERSION,
        change,
        facts: None,
        notify: None,
    }
}

/// Fetches and checks watches, within the configured concurrency bounds.
#[derive(Debug)]
pub struct Pipeline {
    fetcher: Fetcher,
    store: Store,
    limits: Limits,
    global: Arc<Semaphore>,
    per_host: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// When each host may next be asked for a page.
    next_turn: Mutex<HashMap<String, tokio::time::Instant>>,
    /// Pages being extracted, diffed and stored at once: no more than there
    /// are cores. More only adds parsed pages (and per-thread regex caches)
    /// in memory at the same time, without finishing any sooner.
    cpu: Arc<Semaphore>,
    /// The threads that read pages (extract, facts, diff, store), as many
    /// as `cpu` allows at once.
    workers: CpuPool,
    /// Commits the new versions the workers prepare, several at a time.
    committer: Committer,
}

impl Pipeline {
    /// A pipeline over this store, fetching with these limits.
    pub fn new(
        store: Store,
        limits: Limits,
        contact: Option<&str>,
    ) -> Result<Self, crate::fetch::FetchError> {
        let settings = FetchSettings {
            user_agent: crate::fetch::user_agent(contact.unwrap_or("not configured")),
            connect_timeout: limits.connect_timeout,
            timeout: limits.timeout,
            max_body_bytes: limits.max_body_bytes,
            max_redirects: limits.max_redirects,
            retries: limits.retries,
            ..FetchSettings::default()
        };
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Ok(Self {
            fetcher: Fetcher::new(settings)?,
            store,
            global: Arc::new(Semaphore::new(limits.concurrency)),
            cpu: Arc::new(Semaphore::new(cores)),
            workers: CpuPool::new(cores),
            committer: Committer::new(),
            limits,
            per_host: Mutex::new(HashMap::new()),
            next_turn: Mutex::new(HashMap::new()),
        })
    }

    /// The store this pipeline writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The fetcher, for ad-hoc fetches by the CLI.
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    fn diff_options(&self) -> DiffOptions {
        DiffOptions {
            timeout: self.limits.diff_timeout,
            confirm_after: self.limits.confirm_after,
            max_changes: self.limits.max_diff_changes,
            ..DiffOptions::default()
        }
    }

    fn host_limit(&self, url: &url::Url) -> Arc<Semaphore> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let mut hosts = self
            .per_host
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hosts
            .entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(self.limits.per_host)))
            .clone()
    }

    /// robots.txt first (when the watch honours it), then the page.
    async fn fetch_politely(
        &self,
        watch: &Watch,
        validators: &Validators,
    ) -> Result<FetchOutcome, crate::fetch::FetchError> {
        if watch.robots && self.fetcher.check_robots(&watch.url).await? {
            // robots.txt was just read from the host: that request used this
            // check's turn, so the page waits for the next one.
            self.wait_for_host_turn(&watch.url).await;
        }
        self.fetcher.fetch(&watch.url, validators).await
    }

    /// Waits until this host's last request is at least
    /// `limits.per_host_interval` ago, reserving the next slot first so
    /// concurrent checks of one host queue up rather than all firing.
    async fn wait_for_host_turn(&self, url: &url::Url) {
        let interval = self.limits.per_host_interval;
        if interval.is_zero() {
            return;
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let turn = {
            let mut turns = self
                .next_turn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = tokio::time::Instant::now();
            let turn = turns.get(&host).copied().unwrap_or(now).max(now);
            turns.insert(host, turn + interval);
            turn
        };
        tokio::time::sleep_until(turn).await;
    }

    /// Checks one watch. Never fails: a failure is an [`Outcome::Failed`].
    pub async fn check(&self, watch: &Watch) -> CheckReport {
        let span = tracing::info_span!("check", watch = %watch.name, url = %watch.url);
        let (checked, under_way) = {
            // The host permit is taken first, so a task waiting on a busy
            // host does not hold one of the global slots that other hosts
            // could use.
            let host = self.host_limit(&watch.url);
            let _host_permit = host.acquire().await;
            let _global_permit = self.global.acquire().await;
            // Counted from here, so that the committer gathers the versions
            // of pages still being fetched into one batch with this one.
            let under_way = self.committer.under_way();
            self.wait_for_host_turn(&watch.url).await;
            let checked = self.check_inner(watch).instrument(span.clone()).await;
            (checked, under_way)
        };
        // The permits are given back before the commit: a check waiting for
        // its batch to commit keeps no other page from being fetched.
        let outcome = match checked {
            Checked::Done(outcome) => {
                drop(under_way);
                outcome
            }
            // Boxed: a thousand checks are spawned at once, and each task
            // is as large as its future's largest state.
            Checked::Commit(pending) => {
                Box::pin(self.commit(*pending, under_way).instrument(span)).await
            }
        };
        if let Outcome::Failed { error } = &outcome {
            tracing::warn!(watch = %watch.name, url = %watch.url, %error, "check failed");
        }
        CheckReport {
            watch: watch.name.clone(),
            url: watch.url.to_string(),
            checked_at: Utc::now(),
            outcome,
        }
    }

    /// Waits for the committer to commit a check's new version.
    async fn commit(
        &self,
        (outcome, version): (Outcome, PreparedVersion),
        under_way: UnderWay,
    ) -> Outcome {
        let expected = version.number();
        match self
            .committer
            .commit(self.store.clone(), version, under_way)
            .await
        {
            Ok(number) if number == expected => outcome,
            Ok(number) => outcome.renumbered(number),
            Err(error) => Outcome::Failed { error },
        }
    }

    /// Runs one small store call (a watch's state read or written): in
    /// place on sled, where that is one record in memory and never waits on
    /// a network (a thread hand-off per call cost more than the call on a
    /// pass of 304s), and on the blocking pool for PostgreSQL.
    async fn on_store<T, E>(
        &self,
        work: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> Result<T, String>
    where
        T: Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        if self.store.is_shared() {
            run_blocking(work).await
        } else {
            work().map_err(|error| error.to_string())
        }
    }

    async fn check_inner(&self, watch: &Watch) -> Checked {
        let store = self.store.clone();
        let name = watch.name.clone();
        let state = match self.on_store(move || store.watch_state(&name)).await {
            Ok(state) => state,
            Err(error) => return Checked::Done(Outcome::Failed { error }),
        };
        // Validators are only worth sending when there is a stored version to
        // fall back on, and never while a text is held: the confirming fetch
        // must be a full one, or a server answering 304 would keep the held
        // change from ever being confirmed.
        let validators = if state.latest_version.is_some() && state.suspect.is_none() {
            Validators {
                etag: state.etag.clone(),
                last_modified: state.last_modified.clone(),
            }
        } else {
            Validators::default()
        };
        let fetched = self.fetch_politely(watch, &validators).await;
        let now = Utc::now();
        let store = self.store.clone();
        let name = watch.name.clone();
        Checked::Done(match fetched {
            Ok(FetchOutcome::NotModified) => {
                match self
                    .on_store(move || record_not_modified(&store, &name, state, now))
                    .await
                {
                    Ok(()) => Outcome::Unchanged { not_modified: true },
                    Err(error) => Outcome::Failed { error },
                }
            }
            Ok(FetchOutcome::Page(page))
                if !same_site(&watch.url, &page.final_url, &watch.allow_redirects_to) =>
            {
                // A page that now redirects to another site has moved or gone:
                // breakage, not content.
                let error = format!(
                    "{}: redirected to another site, {}",
                    watch.url, page.final_url
                );
                let message = error.clone();
                match run_blocking(move || record_failure(&store, &name, now, &message)).await {
                    Ok(()) => Outcome::Failed { error },
                    Err(store_error) => Outcome::Failed {
                        error: format!("{error} (and recording it failed: {store_error})"),
                    },
                }
            }
            Ok(FetchOutcome::Page(page)) => {
                let rules = watch.rules.clone();
                let fact_rules = watch.facts.clone();
                let diff_options = self.diff_options();
                let url = watch.url.to_string();
                let tags = watch.tags.clone();
                let _cpu_permit = self.cpu.acquire().await;
                let result = self
                    .workers
                    .run(move || {
                        let fetched = FetchedPage {
                            html: &page.html,
                            fetched_at: now,
                            validators: page.validators.clone(),
                            audience: Some(Audience {
                                url: &url,
                                tags: &tags,
                            }),
                        };
                        // The new version, if any, is prepared here and
                        // committed by the committer with others.
                        let mut commit = Commit::Later(None);
                        let applied = extract::extract(&page.html, &rules)
                            .map_err(ApplyError::from)
                            .and_then(|extracted| {
                                let blocks = &extracted.blocks;
                                let options = &diff_options;
                                let (rules, commit) = (&fact_rules, &mut commit);
                                apply_with(&store, &name, blocks, rules, &fetched, options, commit)
                            });
                        match (applied, commit) {
                            (Ok(outcome), Commit::Later(Some(version))) => {
                                Ok(Checked::Commit(Box::new((outcome, *version))))
                            }
                            (Ok(outcome), _) => Ok(Checked::Done(outcome)),
                            (Err(ApplyError::Store(e)), _) => Err(e),
                            (Err(other), _) => {
                                let error = format!("{}: {other}", page.final_url);
                                record_failure(&store, &name, now, &error)?;
                                Ok(Checked::Done(Outcome::Failed { error }))
                            }
                        }
                    })
                    .await;
                return result.unwrap_or_else(|error| Checked::Done(Outcome::Failed { error }));
            }
            Err(fetch_error) => {
                let error = fetch_error.to_string();
                let message = error.clone();
                match run_blocking(move || record_failure(&store, &name, now, &message)).await {
                    Ok(()) => Outcome::Failed { error },
                    Err(store_error) => Outcome::Failed {
                        error: format!("{error} (and recording it failed: {store_error})"),
                    },
                }
            }
        })
    }

    /// Checks every watch concurrently within the limits. `on_done` is called
    /// once the store is flushed after each check, so a check reported done
    /// survives a crash; checks that finish within FLUSH_WINDOW share a flush,
    /// and a batch of nothing but 304s needs none of its own (it changed
    /// nothing the report depends on).
    pub async fn check_all(
        self: &Arc<Self>,
        watches: &[Watch],
        mut on_done: impl FnMut(&CheckReport),
    ) -> Vec<CheckReport> {
        let mut tasks = JoinSet::new();
        for watch in watches {
            let watch = watch.clone();
            let pipeline = Arc::clone(self);
            tasks.spawn(async move { pipeline.check(&watch).await });
        }
        let mut reports = Vec::with_capacity(watches.len());
        while let Some(joined) = tasks.join_next().await {
            let mut batch = vec![joined];
            let window = tokio::time::sleep(FLUSH_WINDOW);
            tokio::pin!(window);
            while let Some(Some(more)) = tokio::select! {
                more = tasks.join_next() => Some(more),
                () = &mut window => None,
            } {
                batch.push(more);
            }
            let flushed = if record::needs_flush(&batch) {
                let store = self.store.clone();
                run_blocking(move || store.flush()).await
            } else {
                Ok(())
            };
            for joined in batch {
                let mut report = match joined {
                    Ok(report) => report,
                    Err(join_error) => CheckReport {
                        watch: "<unknown>".into(),
                        url: String::new(),
                        checked_at: Utc::now(),
                        outcome: Outcome::Failed {
                            error: format!("check task failed: {join_error}"),
                        },
                    },
                };
                if let Err(error) = &flushed {
                    report.outcome = Outcome::Failed {
                        error: format!("store flush failed: {error}"),
                    };
                }
                on_done(&report);
                reports.push(report);
            }
        }
        // Report in config order, whatever order the checks finished in.
        let order: HashMap<&str, usize> = watches
            .iter()
            .enumerate()
            .map(|(i, w)| (w.name.as_str(), i))
            .collect();
        reports.sort_by_key(|r| order.get(r.watch.as_str()).copied().unwrap_or(usize::MAX));
        reports
    }
}

/// How long `check_all` gathers finished checks for one flush (not one each).
const FLUSH_WINDOW: std::time::Duration = std::time::Duration::from_millis(100);

/// Whether a redirect stayed on the same site: the same scheme, host (with
/// or without `www.`) and port, or an upgrade from http to https on the
/// default ports, or an origin the watch allows (`allow_redirects_to`).
/// Another port on one host is another server, often another owner's.
fn same_site(asked: &url::Url, landed: &url::Url, allowed: &[String]) -> bool {
    let bare = |url: &url::Url| {
        url.host_str()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .trim_start_matches("www.")
            .to_owned()
    };
    let same_server = asked.scheme() == landed.scheme()
        && asked.port_or_known_default() == landed.port_or_known_default();
    let upgrade = asked.scheme() == "http"
        && landed.scheme() == "https"
        && asked.port().is_none()
        && landed.port().is_none();
    (bare(asked) == bare(landed) && (same_server || upgrade))
        || allowed
            .iter()
            .any(|origin| *origin == landed.origin().ascii_serialization())
}

/// The JSON report of `tidings check --json`.
#[derive(Debug, serde::Serialize)]
pub struct CheckSummary<'a> {
    new: Vec<&'a str>,
    changed: Vec<&'a str>,
    unchanged: Vec<&'a str>,
    error: Vec<&'a str>,
    watches: &'a [CheckReport],
}

impl<'a> CheckSummary<'a> {
    /// Gathers the reports of one pass.
    pub fn new(reports: &'a [CheckReport]) -> Self {
        let names = |label: &str| {
            reports
                .iter()
                .filter(|r| r.outcome.label() == label)
                .map(|r| r.watch.as_str())
                .collect()
        };
        Self {
            new: names("NEW"),
            changed: names("CHANGED"),
            unchanged: names("UNCHANGED"),
            error: names("ERROR"),
            watches: reports,
        }
    }
}

// ---------------------------------------------------------------------------
// history, show

#[cfg(test)]
mod tests {
    use super::suspicion::word_count;
    use super::*;

    #[test]
    fn word_count_matches_split_whitespace() {
        for text in [
            "",
            "   ",
            "one",
            " one  two\tthree\nfour\r\x0bfive\x0c ",
            "a,b c",
            "Caf\u{e9}\u{a0}au lait \u{2003} ok",
            "\u{2003}lead \u{85}x\u{3000}",
            "It\u{2019}s \u{201c}one\u{201d} \u{2013} two",
            "It\u{2019}s\u{2009}thin\u{202f}narrow\u{205f}math\u{1680}ogham\u{2028}\u{2029}end",
            "\u{e9}t\u{e9} \u{e0} l\u{2019}\u{e9}cole",
            "\u{3042}\u{3044} \u{3046}\u{3000}\u{3048}",
            "x",
            " x",
            "x ",
        ] {
            assert_eq!(
                word_count(text),
                text.split_whitespace().count(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn word_count_knows_every_space_outside_ascii() {
        // Every space `char::is_whitespace` knows, between words with and
        // without letters outside ASCII, and beside characters that share
        // its first byte but are not spaces.
        let spaces = (0..=0x3000_u32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace());
        for space in spaces {
            for text in [
                format!("one{space}two"),
                format!("{space}caf\u{e9}{space}{space}au\u{2019}lait{space}"),
                format!("\u{2019}{space}\u{2013}\u{a9}\u{1681}{space}\u{3001}x"),
            ] {
                assert_eq!(
                    word_count(&text),
                    text.split_whitespace().count(),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn a_change_detail_reads_back_as_the_value_it_was_built_as() {
        use crate::core::model::BlockKind;
        let para = |text: &str| Block::new(BlockKind::Paragraph, text);
        let old = vec![
            Block::new(BlockKind::Heading { level: 2 }, "Members"),
            para("Our system covers a population of 327,000 \"people\"."),
            Block::new(BlockKind::ListItem, "NHS North Cumbria CCG"),
            para("Chief Executive: Jane Smith"),
        ];
        let new = vec![
            Block::new(BlockKind::Heading { level: 2 }, "Members"),
            para("Our system covers a population of 274,000 \"people\"."),
            Block::new(BlockKind::ListItem, "NHS North East and North Cumbria ICB"),
            para("Chief Executive: Amir Khan"),
            para("Updated 12 May 2024"),
        ];
        for (old, new) in [(&old, &new), (&new, &old), (&old, &old[..1].to_vec())] {
            let text_diff = diff::diff(old, new, &DiffOptions::default());
            let (changes, read) = facts::read_fact_changes(old, new, &[]);
            let assessment = classify::classify_read(&text_diff, &changes, &read);
            // The detail as it was built before: a `Value`.
            let before = serde_json::json!({
                "kinds": assessment.kinds(),
                "alert": assessment.alerts(),
                "summary": assessment.one_line(),
                "assessment": assessment,
                "diff": text_diff,
            });
            let detail = ChangeDetail {
                alert: assessment.alerts(),
                assessment: &assessment,
                diff: &text_diff,
                kinds: assessment.kinds(),
                summary: assessment.one_line(),
            };
            let raw = serde_json::value::to_raw_value(&detail).expect("json");
            let read_back: serde_json::Value = serde_json::from_str(raw.get()).expect("reads");
            assert_eq!(read_back, before);
            assert!(!assessment.changes.is_empty());
        }
    }

    #[tokio::test]
    async fn the_cpu_pool_runs_work_and_reports_failures() {
        let pool = CpuPool::new(2);
        let name = pool
            .run(|| Ok::<_, String>(std::thread::current().name().unwrap_or_default().to_owned()))
            .await;
        assert!(
            name.as_deref().is_ok_and(|n| n.starts_with("tidings-cpu-")),
            "{name:?}"
        );
        let failed = pool.run(|| Err::<(), _>("no text")).await;
        assert_eq!(failed, Err("no text".to_owned()));
        let panicked = pool
            .run(|| -> Result<(), String> { panic!("a bad page") })
            .await;
        assert!(panicked.is_err());
        // The pool survives a panicking job.
        assert_eq!(pool.run(|| Ok::<_, String>(7)).await, Ok(7));
    }
}
