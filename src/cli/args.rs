//! The command line, as clap derive types. No logic lives here: `app` runs
//! the commands. Doc comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Watches web pages and tells people when they change, in terms they care
/// about.
#[derive(Debug, Parser)]
#[command(name = "tidings", version, about, max_term_width = 100)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors in the log (the service logs its lifecycle otherwise);
    /// RUST_LOG overrides.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// How log lines are written to stderr: `text` for people and the
    /// journal, `json` (one object per line) for log shippers.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the configuration and the store are.
#[derive(Debug, Clone, Args)]
pub struct Location {
    /// The daemon config file [default: $TIDINGS_CONFIG, else
    /// STATE/tidings.toml when --state has one, else config/tidings.toml,
    /// else /etc/tidings/tidings.toml].
    #[arg(long, short = 'c', env = "TIDINGS_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The state directory holding the store; overrides the config's
    /// `state_dir`.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

/// Per-run extraction rules, as in a watch's config.
#[derive(Debug, Clone, Args)]
pub struct RuleArgs {
    /// Keep only elements matching this CSS selector (repeatable).
    #[arg(long, value_name = "CSS")]
    pub select: Vec<String>,
    /// Drop elements matching this CSS selector (repeatable).
    #[arg(long, value_name = "CSS")]
    pub exclude: Vec<String>,
    /// Cut text matching this regex (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub ignore: Vec<String>,
    /// Take the whole page, not only its main content.
    #[arg(long)]
    pub whole_page: bool,
}

impl RuleArgs {
    /// Whether any rule was given on the command line.
    pub fn is_set(&self) -> bool {
        !self.select.is_empty()
            || !self.exclude.is_empty()
            || !self.ignore.is_empty()
            || self.whole_page
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Plain lines; no timestamps or colour when stderr is not a terminal
    /// (journald stamps each line itself).
    #[default]
    Text,
    /// One JSON object per line, with a timestamp, level, target and fields.
    Json,
}

/// A shell that `tidings completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
    /// Elvish.
    Elvish,
    /// PowerShell.
    Powershell,
}

/// How `tidings diff` prints a change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Changed blocks under their section headings, changed words marked.
    #[default]
    Word,
    /// A unified diff of the extracted text.
    Unified,
    /// Added, removed and changed blocks as JSON.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show tidings at work with no network and no setup: serve bundled
    /// partnership pages on loopback, check them, change one, check again.
    Demo {
        /// Keep the demo's store in this directory, not a temporary one.
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
    },
    /// Compare two versions of a page's text. Each side is a URL, an HTML
    /// file, or a stored version WATCH@N (WATCH@latest works). With one side,
    /// compare the page now with its latest stored version and store it.
    /// Exits 0 if unchanged, 1 if changed, 2 on error.
    Diff {
        /// The older side, or the only side.
        old: String,
        /// The newer side.
        new: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: DiffFormat,
        /// With one side: compare, but do not store the new version.
        #[arg(long)]
        no_store: bool,
        #[command(flatten)]
        location: Location,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Print the text tidings sees in a page (URL or HTML file): blocks
    /// separated by blank lines, headings marked with #, list items with -.
    Extract {
        /// A URL or an HTML file.
        source: String,
        /// Print the blocks as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Check every watch (or the named ones) once, record changes, and exit.
    /// Exits 0 when every check ran, 1 if any watch failed, 2 on an error
    /// (such as the daemon holding the store: use `tidings check-now`
    /// then), 78 on a bad config.
    Check {
        /// Only these watches.
        watches: Vec<String>,
        /// Print one JSON report instead of a line per watch.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// List a watch's stored versions: number, time, size, change size.
    History {
        /// The watch.
        watch: String,
        #[command(flatten)]
        location: Location,
    },
    /// Print the text of a stored version, WATCH or WATCH@N.
    Show {
        /// The watch, optionally with @N or @latest.
        version: String,
        #[command(flatten)]
        location: Location,
    },
    /// Check the config and every watch in it, and show each watch's next
    /// runs. Exits 0 if valid, 78 if not.
    Validate {
        #[command(flatten)]
        location: Location,
    },
    /// Feed DIR/00.html, 01.html, … through the pipeline as successive
    /// fetches of one watch, and print what each step changed.
    Replay {
        /// The folder of numbered HTML files.
        dir: PathBuf,
        /// Keep the store here instead of a fresh temporary one.
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// One JSON object per step.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Write a config file watching every URL in a list (one per line).
    Import {
        /// The list of URLs; `#` starts a comment.
        #[arg(long, value_name = "FILE")]
        urls: PathBuf,
        /// The config file to write.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
        /// The contact address for the User-Agent.
        #[arg(long, default_value = "admin@localhost")]
        contact: String,
    },
    /// Score extraction against a main-text evaluation set (a folder with
    /// `aeb/` and/or `trafilatura/` subfolders).
    EvalExtract {
        /// The folder, e.g. ../shared/eval/extraction.
        dir: PathBuf,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replay real page histories (folders of 00.html, 01.html, … with a
    /// steps.tsv of reference labels) and score the alerts raised against
    /// the labels: no alert on noise, an alert on every real change.
    EvalHistories {
        /// The folder of histories, e.g. ../shared/eval/histories.
        dir: PathBuf,
        /// Print every step as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run as a service: check each watch on its schedule until SIGTERM.
    /// SIGHUP reloads the config. Exits 0 on a clean stop, 78 on a bad
    /// config, 1 on any other failure.
    Run {
        #[command(flatten)]
        location: Location,
    },
    /// Show a summary (watches by state, the failing ones first, the next
    /// due, the oldest check, store size, outbox) from the running daemon,
    /// or from the store when none runs; `--all` or `--watch` for the
    /// per-watch table of last check, next run, last change, failures and
    /// last error.
    Status {
        /// Print the full report, every watch included, as JSON (with
        /// `--watch`, only those watches' rows).
        #[arg(long)]
        json: bool,
        /// List every watch, one line each, streamed as the daemon reads them.
        #[arg(long, conflicts_with = "watch")]
        all: bool,
        /// List this watch (repeat for more).
        #[arg(long, value_name = "NAME")]
        watch: Vec<String>,
        #[command(flatten)]
        location: Location,
    },
    /// Manage the people who receive briefings, and the suppression list.
    Subscribers {
        /// What to do.
        #[command(subcommand)]
        command: SubscribersCommand,
    },
    /// Look at and act on the briefings waiting to be sent (through the
    /// running daemon when there is one).
    Outbox {
        /// What to do.
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Send a sample briefing to ADDRESS through the configured transport
    /// ([mail] in the config; .eml files in STATE/mail without one).
    SendTest {
        /// Who gets it.
        address: String,
        #[command(flatten)]
        location: Location,
    },
    /// Ask the running daemon to check these watches now, whatever their
    /// schedule; `tidings status` shows the result. Exits 0, 1 if a watch
    /// is paused, 2 if no daemon runs (use `tidings check` then) or a name
    /// is unknown.
    CheckNow {
        /// The watches.
        #[arg(required = true)]
        watches: Vec<String>,
        #[command(flatten)]
        location: Location,
    },
    /// Pause watches: no check starts until `tidings resume`. The pause is
    /// stored, so it lasts across restarts, and shows in `tidings status`.
    /// Through the running daemon, or on the store when none runs.
    Pause {
        /// The watches.
        #[arg(required = true)]
        watches: Vec<String>,
        #[command(flatten)]
        location: Location,
    },
    /// Lift a pause: the watches run on their schedule again (at once if a
    /// run was missed). Exits 1 if one was not paused.
    Resume {
        /// The watches.
        #[arg(required = true)]
        watches: Vec<String>,
        #[command(flatten)]
        location: Location,
    },
    /// Write a consistent backup of the whole store (watches, versions,
    /// changes, subscribers, outbox) to FILE, through the running daemon
    /// when there is one. Keep it with the config and `web.secret`.
    Backup {
        /// The backup file to write (replaced if it exists).
        file: PathBuf,
        #[command(flatten)]
        location: Location,
    },
    /// Restore the store from a backup made by `tidings backup`. Refuses
    /// while the daemon runs; the store it replaces is moved aside to
    /// STATE/store.sled.before-restore-TIME, not deleted.
    Restore {
        /// The backup file.
        file: PathBuf,
        #[command(flatten)]
        location: Location,
    },
    /// Manage the store: bring the PostgreSQL schema up to date, or move an
    /// embedded store into PostgreSQL.
    Store {
        /// What to do.
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Print a completion script for SHELL, e.g.
    /// `tidings completions bash > /usr/share/bash-completion/completions/tidings`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write man pages (tidings.1 and one per command) into DIR, or print
    /// tidings(1) when no DIR is given.
    Man {
        /// Where to write the pages.
        dir: Option<PathBuf>,
    },
}

/// `tidings store …`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create or update the PostgreSQL schema that [store] names. Safe on a
    /// current schema and from several machines at once; `run` does it at
    /// start too.
    Migrate {
        #[command(flatten)]
        location: Location,
    },
    /// Copy an embedded (sled) store into the empty PostgreSQL store that
    /// [store] names: every version, text, change, subscriber, suppression,
    /// pause and queued briefing, checked by counting both sides. Stop the
    /// daemon that uses DIR first.
    Copy {
        /// The state directory of the sled store.
        #[arg(long, value_name = "DIR", required = true)]
        from_sled: PathBuf,
        #[command(flatten)]
        location: Location,
    },
}

/// `tidings outbox …`
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List pending and failed briefings (with --all, sent and cancelled
    /// ones too).
    List {
        /// Include sent and cancelled briefings.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Make briefings due now: the given ids, or every failed one with
    /// --failed. Failed and cancelled briefings are queued again.
    Retry {
        /// Row ids, as `outbox list` shows them.
        ids: Vec<u64>,
        /// Every failed briefing.
        #[arg(long)]
        failed: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Cancel pending or failed briefings: they are never sent.
    Cancel {
        /// Row ids, as `outbox list` shows them.
        #[arg(required = true)]
        ids: Vec<u64>,
        #[command(flatten)]
        location: Location,
    },
    /// Send what is due now, without the daemon (digests whose schedule has
    /// fired included), then exit. For running tidings from cron.
    Send {
        #[command(flatten)]
        location: Location,
    },
}

/// `tidings subscribers …`
#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Add a subscriber, or update one already there. Admin-added
    /// subscribers count as confirmed (consent source `admin-cli`).
    Add {
        /// The email address.
        address: String,
        /// Their name, for the greeting.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// A watch name, or tag:TAG for every page with that tag
        /// (repeatable; none means every watch).
        #[arg(long, value_name = "WATCH|tag:TAG")]
        follow: Vec<String>,
        /// Kinds of change wanted, e.g. boundary,members (default: all but
        /// minor).
        #[arg(long, value_name = "KINDS")]
        kinds: Option<String>,
        /// `immediate`, or a digest schedule such as "0 8 * * Mon@Europe/London".
        #[arg(long, value_name = "immediate|CRON@ZONE")]
        cadence: Option<String>,
        /// Accept --follow names that no watch or tag in the config has
        /// (with a warning), e.g. for a watch about to be added.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Remove a subscriber (a suppression stays in force).
    Remove {
        /// The email address.
        address: String,
        #[command(flatten)]
        location: Location,
    },
    /// List subscribers.
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Add or update subscribers from a CSV file
    /// (address,name,follows,kinds,cadence). Suppressed addresses are
    /// skipped and reported.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// The people added have consented: store them confirmed (consent
        /// source `admin-import --confirmed`). Without it they are stored
        /// unconfirmed and get no briefings. Rows whose `confirmed` column
        /// says false, and people already stored, are never confirmed.
        #[arg(long)]
        confirmed: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Print every subscriber as CSV, in the form `import` reads.
    Export {
        #[command(flatten)]
        location: Location,
    },
    /// Erase everything held about ADDRESS. A suppression the person asked
    /// for is kept (without its reason) so that no later import mails them.
    Forget {
        /// The email address.
        address: String,
        #[command(flatten)]
        location: Location,
    },
    /// Never mail ADDRESS again, whatever an import says.
    Suppress {
        /// The email address.
        address: String,
        /// Why, for the record.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// The person asked for it (kept even by `forget`).
        #[arg(long)]
        requested: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Lift a suppression.
    Unsuppress {
        /// The email address.
        address: String,
        #[command(flatten)]
        location: Location,
    },
}
