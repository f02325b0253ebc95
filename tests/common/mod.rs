//! Helpers shared by the CLI integration tests: a loopback web site whose
//! pages can be changed between runs, config files in a temporary
//! directory, and a runner for the real `tidings` binary.
//!
//! The site is a wiremock `MockServer`. Its HTTP server runs on a thread of
//! its own; the tokio runtime kept in [`Site`] is only needed to start it and
//! to read back the requests it received, so tests can be plain `#[test]`s
//! that run the binary as a blocking child process.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

/// How one path of the site answers.
#[derive(Debug, Clone)]
pub struct Page {
    /// HTTP status of a normal (not 304) answer.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// The `Content-Type` header.
    pub content_type: String,
    /// Whether to send `ETag`/`Last-Modified` and answer 304 to a matching
    /// `If-None-Match`.
    pub conditional: bool,
    /// Bumped on every change; goes into `Last-Modified`.
    pub revision: u32,
}

impl Page {
    /// A 200 HTML page with validators.
    pub fn html(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            body: body.into().into_bytes(),
            content_type: "text/html; charset=utf-8".to_owned(),
            conditional: true,
            revision: 0,
        }
    }

    /// The `ETag` this page is served with: a hash of its status and body.
    pub fn etag(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.status.hash(&mut hasher);
        self.body.hash(&mut hasher);
        self.content_type.hash(&mut hasher);
        format!("\"{:016x}\"", hasher.finish())
    }

    /// The `Last-Modified` this page is served with.
    pub fn last_modified(&self) -> String {
        let at = std::time::UNIX_EPOCH
            + Duration::from_secs(1_700_000_000 + u64::from(self.revision) * 60);
        httpdate::fmt_http_date(at)
    }
}

#[derive(Default)]
struct SiteState {
    pages: HashMap<String, Page>,
    /// Paths answered with a redirect: (status, `Location`).
    redirects: HashMap<String, (u16, String)>,
    delay: Duration,
    /// Every request's path and the moment it reached the responder.
    arrivals: Vec<(String, Instant)>,
}

struct SiteResponder(Arc<Mutex<SiteState>>);

impl Respond for SiteResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .arrivals
            .push((request.url.path().to_owned(), Instant::now()));
        let delay = state.delay;
        if let Some((status, location)) = state.redirects.get(request.url.path()) {
            return ResponseTemplate::new(*status)
                .insert_header("location", location.as_str())
                .set_delay(delay);
        }
        let Some(page) = state.pages.get(request.url.path()) else {
            return ResponseTemplate::new(404)
                .set_body_raw("<html><body><p>Not found</p></body></html>", "text/html")
                .set_delay(delay);
        };
        let mut template = if page.conditional
            && page.status == 200
            && request
                .headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == page.etag())
        {
            ResponseTemplate::new(304)
        } else {
            ResponseTemplate::new(page.status).set_body_raw(page.body.clone(), &page.content_type)
        };
        if page.conditional {
            template = template
                .insert_header("etag", page.etag().as_str())
                .insert_header("last-modified", page.last_modified().as_str());
        }
        template.set_delay(delay)
    }
}

/// A loopback web site serving pages that tests can change at any time.
pub struct Site {
    runtime: tokio::runtime::Runtime,
    server: MockServer,
    state: Arc<Mutex<SiteState>>,
}

impl Site {
    /// Starts an empty site: every path is a 404 until set.
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let state = Arc::new(Mutex::new(SiteState::default()));
        let server = runtime.block_on(async {
            let server = MockServer::start().await;
            Mock::given(matchers::any())
                .respond_with(SiteResponder(Arc::clone(&state)))
                .mount(&server)
                .await;
            server
        });
        Self {
            runtime,
            server,
            state,
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut SiteState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The absolute URL of a path on this site.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.uri())
    }

    /// Serves `html` at `path` (a 200 with `ETag` and `Last-Modified`).
    pub fn set_html(&self, path: &str, html: impl Into<String>) {
        self.set_page(path, Page::html(html));
    }

    /// Serves `page` at `path`; the revision counts up from the old page's.
    pub fn set_page(&self, path: &str, mut page: Page) {
        self.with_state(|state| {
            let revision = state.pages.get(path).map_or(0, |old| old.revision + 1);
            page.revision = page.revision.max(revision);
            state.pages.insert(path.to_owned(), page);
        });
    }

    /// Changes how `path` answers, keeping the rest of its page.
    pub fn update(&self, path: &str, f: impl FnOnce(&mut Page)) {
        self.with_state(|state| {
            let page = state.pages.get_mut(path).expect("page exists");
            f(page);
            page.revision += 1;
        });
    }

    /// Makes `path` a 404 again.
    pub fn remove(&self, path: &str) {
        self.with_state(|state| {
            state.pages.remove(path);
            state.redirects.remove(path);
        });
    }

    /// Answers `path` with a 302 to `to` (an absolute URL), ahead of any page.
    pub fn set_redirect(&self, path: &str, to: impl Into<String>) {
        self.with_state(|state| state.redirects.insert(path.to_owned(), (302, to.into())));
    }

    /// The port the site listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.server.address().port()
    }

    /// Every request's path and arrival time, oldest first. Unlike
    /// [`Site::requests`], this says *when* each request came.
    pub fn arrivals(&self) -> Vec<(String, Instant)> {
        self.with_state(|state| state.arrivals.clone())
    }

    /// How many requests for `path` arrived so far.
    pub fn hits(&self, path: &str) -> usize {
        self.with_state(|state| state.arrivals.iter().filter(|(p, _)| p == path).count())
    }

    /// Delays every answer by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.with_state(|state| state.delay = delay);
    }

    /// The requests received so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.runtime
            .block_on(self.server.received_requests())
            .unwrap_or_default()
    }

    /// The requests received so far for one path.
    pub fn requests_for(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.url.path() == path)
            .collect()
    }
}

/// A URL on loopback where nothing listens: connecting is refused.
pub fn refused_url(path: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}{path}")
}

/// One `[[watch]]` table.
#[derive(Debug, Clone)]
pub struct WatchDef {
    pub name: String,
    pub url: String,
    /// Extra TOML lines for the table, e.g. `select = "article"`.
    pub extra: String,
}

impl WatchDef {
    pub fn new(name: &str, url: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            url: url.into(),
            extra: String::new(),
        }
    }

    pub fn with(mut self, extra: &str) -> Self {
        self.extra.push_str(extra);
        self.extra.push('\n');
        self
    }
}

/// A config file text with the store beside it, no retries and short
/// timeouts, so tests stay fast.
pub fn config_text(watches: &[WatchDef]) -> String {
    let mut text = String::from(
        "state_dir = \".\"\ncontact = \"tests@example.org\"\n\n[limits]\nretries = 0\nper_host_interval = \"0s\"\nconnect_timeout = \"2s\"\ntimeout = \"10s\"\n",
    );
    for watch in watches {
        text.push_str(&format!(
            "\n[[watch]]\nname = {}\nurl = {}\n{}",
            toml_str(&watch.name),
            toml_str(&watch.url),
            watch.extra
        ));
    }
    text
}

fn toml_str(text: &str) -> String {
    format!("{text:?}")
}

/// A temporary directory holding `tidings.toml` and, on sled, the store.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The `[store]` section every config written here ends with (empty:
    /// sled in the directory), so a scenario runs on either backend.
    pub store: String,
}

impl Workspace {
    /// A workspace whose config watches `watches`.
    pub fn new(watches: &[WatchDef]) -> Self {
        Self::with_config(&config_text(watches))
    }

    /// A workspace with this config text.
    pub fn with_config(text: &str) -> Self {
        Self::with_config_on("", text)
    }

    /// A workspace whose configs (this text, and any written later with
    /// [`Workspace::write_text`]) end with the `[store]` section `store`.
    pub fn with_config_on(store: &str, text: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("tidings.toml");
        let ws = Self {
            dir,
            config,
            store: store.to_owned(),
        };
        ws.write_text(text);
        ws
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Rewrites the config.
    pub fn write_config(&self, watches: &[WatchDef]) {
        self.write_text(&config_text(watches));
    }

    /// Rewrites the config with this text and the workspace's `[store]`
    /// section after it (last, so that line numbers in the text hold).
    pub fn write_text(&self, text: &str) {
        self.write_file(&self.config, text);
    }

    /// Writes another config file, with the workspace's `[store]` section.
    pub fn write_file(&self, path: &Path, text: &str) {
        let text = if self.store.is_empty() {
            text.to_owned()
        } else {
            format!("{text}\n{}", self.store)
        };
        std::fs::write(path, text).expect("write config");
    }

    /// Runs `tidings ARGS --config CONFIG` in the workspace.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        let config = self.config.to_str().expect("utf-8 path");
        all.extend(["--config", config]);
        run_in(self.path(), &all)
    }

    /// Runs `tidings check [WATCHES]`.
    pub fn check(&self, watches: &[&str]) -> Run {
        let mut args = vec!["check"];
        args.extend(watches);
        self.run(&args)
    }

    /// The number of stored versions of `watch`, from `tidings history`
    /// (0 when it has none).
    pub fn history_count(&self, watch: &str) -> usize {
        let run = self.run(&["history", watch]);
        if run.code != 0 {
            assert!(
                run.stderr.contains("no stored versions"),
                "history {watch} failed: {run}"
            );
            return 0;
        }
        history_rows(&run.stdout).len()
    }

    /// The text of `version` (`NAME@N`, `NAME@latest`) from `tidings show`.
    pub fn show(&self, version: &str) -> String {
        let run = self.run(&["show", version]);
        assert_eq!(run.code, 0, "show {version}: {run}");
        run.stdout
    }
}

/// The rows of `tidings history` output, header skipped, split on
/// whitespace: version, date, time, blocks, bytes, change.
pub fn history_rows(stdout: &str) -> Vec<Vec<String>> {
    let mut lines = stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.contains("VERSION"),
        "no history header in {stdout:?}"
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// The finished process.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The `LABEL: name…` lines of `tidings check`, as (label, name, rest).
    pub fn check_lines(&self) -> Vec<CheckLine> {
        self.stdout.lines().filter_map(CheckLine::parse).collect()
    }

    /// The label printed for `watch`, panicking if there is not exactly one.
    pub fn label_of(&self, watch: &str) -> String {
        let found: Vec<CheckLine> = self
            .check_lines()
            .into_iter()
            .filter(|l| l.name == watch)
            .collect();
        assert_eq!(found.len(), 1, "expected one line for {watch}: {self}");
        found[0].label.clone()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// One line of `tidings check` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub label: String,
    pub name: String,
    /// What follows the name: the error of an `ERROR:` line.
    pub rest: String,
}

impl CheckLine {
    pub fn parse(line: &str) -> Option<Self> {
        let (label, tail) = line.split_once(": ")?;
        if !matches!(label, "NEW" | "CHANGED" | "UNCHANGED" | "ERROR") {
            return None;
        }
        // Watch names hold only letters, digits, `.`, `_` and `-`: the name
        // ends at the first `:` (`ERROR: name: why`, `CHANGED: name: what`)
        // or space (`UNCHANGED: name (why)`).
        let end = tail.find([':', ' ']).unwrap_or(tail.len());
        let (name, rest) = tail.split_at(end);
        let rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
        Some(Self {
            label: label.to_owned(),
            name: name.to_owned(),
            rest: rest.to_owned(),
        })
    }
}

/// A `tidings` command with a clean environment, run in `dir` so that no
/// `config/tidings.toml` of the repository is picked up by accident.
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidings"));
    cmd.current_dir(dir)
        .env_remove("TIDINGS_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .env_remove("NO_COLOR");
    cmd
}

/// Runs `tidings ARGS` in `dir` and waits for it.
pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    finish(command(dir).args(args).output().expect("run tidings"))
}

pub fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A partnership page in the shape of the real ones: a cookie banner and
/// navigation around a main column with a heading, prose, a list of places
/// and a leadership section.
pub fn partnership_page(title: &str, places: &[&str], chair: &str) -> String {
    let items: String = places.iter().map(|p| format!("<li>{p}</li>")).collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<div class="cookie-banner" id="cookie-consent"><p>We use cookies to make this website work and to understand how you use it. Accept all cookies?</p><button>Accept</button></div>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li><li><a href="/contact">Contact us</a></li></ul></nav></header>
<main>
<h1>{title}</h1>
<p>The partnership brings together the NHS, the county council and the voluntary sector to plan health and care services for local people, working closely with communities.</p>
<h2>Places</h2>
<ul>{items}</ul>
<h2>Leadership</h2>
<p>The partnership board is chaired by {chair}, who also chairs the integrated care board, and it meets monthly in public.</p>
</main>
<footer><p>Copyright 2024 NHS partnership. Privacy policy. Accessibility statement.</p></footer>
</body></html>
"#
    )
}

/// The default places for [`partnership_page`].
pub const PLACES: &[&str] = &[
    "Allerdale, with 96,471 residents",
    "Carlisle, with 108,387 residents",
    "Eden, with 52,630 residents",
];

/// A partnership page with the default places.
pub fn page(title: &str, chair: &str) -> String {
    partnership_page(title, PLACES, chair)
}

/// A fixture from `tests/fixtures/partnerships`, if it is a real page rather
/// than a placeholder.
pub fn fixture(name: &str) -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/partnerships")
        .join(name);
    let text = std::fs::read_to_string(path).ok()?;
    (!text.trim_start().starts_with("<!-- placeholder") && text.len() > 500).then_some(text)
}
