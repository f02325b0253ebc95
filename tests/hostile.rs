//! Hostile pages and servers, through the real `tidings check` binary on
//! loopback (issue 12): a flood of blocks and deep nesting cost bounded
//! memory (the child's peak RSS, `VmHWM` in `/proc/<pid>/status`), random
//! bytes are not a page and store nothing, and a held change survives a
//! server that answers 304 the way `python3 -m http.server` does.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::{Page, Site, WatchDef, Workspace, command, page, partnership_page};

/// Peak RSS allowed for one check of one hostile page. The body cap is
/// 5 MiB; the issue asks for a small multiple of it whatever the page
/// (release builds measure far less: see docs/benchmarks.md). Kept generous
/// because tests run the debug build.
const MAX_PEAK_RSS_KB: u64 = 400 * 1024;

/// Runs `tidings check` in `ws` as a child, sampling its `VmHWM` until it
/// exits. Returns the run and the peak RSS in KiB.
fn check_with_peak(ws: &Workspace) -> (common::Run, u64) {
    let config = ws.config.to_str().expect("utf-8 path").to_owned();
    let mut child = command(ws.path())
        .args(["check", "--config", &config])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidings");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(kb) = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        {
            peak = peak.max(kb);
        }
        if child.try_wait().expect("wait").is_some() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().expect("output");
    (common::finish(output), peak)
}

fn one_watch(site: &Site, path: &str) -> Workspace {
    Workspace::new(&[WatchDef::new("hostile", site.url(path))])
}

fn baseline(site: &Site, ws: &Workspace, path: &str) {
    site.set_html(
        path,
        partnership_page(
            "North Cumbria partnership",
            &["Allerdale", "Carlisle", "Copeland", "Eden"],
            "Jane Smith",
        ),
    );
    let first = ws.check(&[]);
    assert_eq!(first.label_of("hostile"), "NEW", "{first}");
}

#[test]
fn a_flood_of_short_paragraphs_costs_bounded_memory_and_is_refused() {
    let site = Site::start();
    let ws = one_watch(&site, "/flood");
    baseline(&site, &ws, "/flood");
    // The page: about 4 MB of 300,000 short paragraphs.
    let flood: String = (0..300_000).map(|i| format!("<p>w{i}</p>")).collect();
    site.set_html(
        "/flood",
        format!("<html><body><main>{flood}</main></body></html>"),
    );
    let (run, peak) = check_with_peak(&ws);
    eprintln!("flood: peak RSS {} MiB", peak / 1024);
    assert_eq!(run.label_of("hostile"), "ERROR", "{run}");
    // Over the block budget, or (a slow debug build on a busy machine)
    // over the page deadline: either way a failed check naming the limit.
    assert!(
        run.stdout.contains("limits.max_blocks") || run.stdout.contains("limits.page_deadline"),
        "{run}"
    );
    assert!(peak > 0, "VmHWM was read");
    assert!(peak < MAX_PEAK_RSS_KB, "peak RSS {peak} kB");
    assert_eq!(ws.history_count("hostile"), 1, "nothing stored");
}

#[test]
fn deep_nesting_is_read_in_bounded_memory() {
    let site = Site::start();
    let ws = one_watch(&site, "/deep");
    let n = 100_000;
    let html = format!(
        "<html><body>{}<p>The partnership covers Allerdale and Eden.</p>{}</body></html>",
        "<div>".repeat(n),
        "</div>".repeat(n)
    );
    site.set_html("/deep", html);
    let (run, peak) = check_with_peak(&ws);
    eprintln!("deep: peak RSS {} MiB", peak / 1024);
    assert_eq!(run.label_of("hostile"), "NEW", "{run}");
    assert!(peak < MAX_PEAK_RSS_KB, "peak RSS {peak} kB");
    let text = ws.show("hostile");
    assert!(text.contains("covers Allerdale and Eden"), "{text}");
}

#[test]
fn random_bytes_served_as_html_are_not_a_page() {
    let site = Site::start();
    let ws = one_watch(&site, "/noise");
    baseline(&site, &ws, "/noise");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect();
    for content_type in ["text/html", "text/html; charset=utf-8"] {
        site.set_page(
            "/noise",
            Page {
                body: noise.clone(),
                content_type: content_type.to_owned(),
                ..Page::html("")
            },
        );
        let (run, _) = check_with_peak(&ws);
        assert_eq!(run.label_of("hostile"), "ERROR", "{content_type}: {run}");
        assert!(run.stdout.contains("not a page"), "{run}");
        assert_eq!(ws.history_count("hostile"), 1, "no version stored");
    }
    let text = ws.show("hostile");
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{text:?}"
    );
}

// ---------------------------------------------------------------------------
// A server that answers 304 as `python3 -m http.server` does.

/// One version of the page: its body and modification time.
#[derive(Clone)]
struct Served {
    body: String,
    modified: u64,
}

/// Serves one page with `ETag` and `Last-Modified`, and answers 304 when
/// `If-None-Match` names the current ETag, or when `If-Modified-Since` is
/// not before the page's time (python's http.server compares only times:
/// a file restored with its old time is "not modified" since a later one).
struct ConditionalServer {
    port: u16,
    page: Arc<Mutex<Served>>,
    answers: Arc<Mutex<Vec<u16>>>,
}

impl ConditionalServer {
    fn start(body: String, modified: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let page = Arc::new(Mutex::new(Served { body, modified }));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let (shared, log) = (Arc::clone(&page), Arc::clone(&answers));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let served = shared
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let status = answer(stream, &served);
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(status);
            }
        });
        Self {
            port,
            page,
            answers,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/page.html", self.port)
    }

    fn serve(&self, body: String, modified: u64) {
        *self.page.lock().unwrap_or_else(PoisonError::into_inner) = Served { body, modified };
    }

    fn last_answer(&self) -> u16 {
        *self
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .expect("an answer")
    }
}

fn answer(stream: TcpStream, served: &Served) -> u16 {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    let _ = reader.read_line(&mut request_line);
    let (mut inm, mut ims) = (None, None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "if-none-match" => inm = Some(value.trim().to_owned()),
                "if-modified-since" => ims = httpdate::parse_http_date(value.trim()).ok(),
                _ => {}
            }
        }
    }
    let etag = format!("\"{:x}-{}\"", served.body.len(), served.modified);
    let modified = std::time::UNIX_EPOCH + Duration::from_secs(served.modified);
    let not_modified = request_line.starts_with("GET /page.html")
        && (inm.as_deref() == Some(etag.as_str()) || ims.is_some_and(|since| modified <= since));
    let mut stream = stream;
    let head = |status: &str, length: usize| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {length}\r\nETag: {etag}\r\nLast-Modified: {}\r\nConnection: close\r\n\r\n",
            httpdate::fmt_http_date(modified)
        )
    };
    if !request_line.starts_with("GET /page.html") {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return 404;
    }
    if not_modified {
        let _ = stream.write_all(head("304 Not Modified", 0).as_bytes());
        304
    } else {
        let _ = stream.write_all(head("200 OK", served.body.len()).as_bytes());
        let _ = stream.write_all(served.body.as_bytes());
        200
    }
}

fn conditional_workspace(server: &ConditionalServer) -> Workspace {
    Workspace::new(&[WatchDef::new("held", server.url()).with("robots = false")])
}

fn full_page() -> String {
    partnership_page(
        "North Cumbria partnership",
        &["Allerdale", "Carlisle", "Copeland", "Eden"],
        "Jane Smith",
    )
}

#[test]
fn a_held_error_page_is_confirmed_even_when_the_server_answers_304() {
    let server = ConditionalServer::start(full_page(), 1_700_000_000);
    let ws = conditional_workspace(&server);
    assert_eq!(ws.check(&[]).label_of("held"), "NEW");
    assert_eq!(ws.check(&[]).label_of("held"), "UNCHANGED");
    assert_eq!(server.last_answer(), 304, "validators are used normally");

    // The page is replaced by an error page: held, not stored.
    server.serve(
        "<html><body><main><h1>Error</h1><p>Something went wrong.</p></main></body></html>"
            .to_owned(),
        1_700_000_600,
    );
    let held = ws.check(&[]);
    assert_eq!(held.label_of("held"), "UNCHANGED", "{held}");
    assert!(held.stdout.contains("held until"), "{held}");
    assert_eq!(ws.history_count("held"), 1);

    // The confirming fetches must be full ones: the server would answer 304
    // to the held fetch's validators, and the change would never be seen.
    // The default `confirm_after = 3` holds it on the second as well.
    let again = ws.check(&[]);
    assert_eq!(server.last_answer(), 200, "{again}");
    assert!(again.stdout.contains("held until"), "{again}");
    assert_eq!(ws.history_count("held"), 1);
    let confirmed = ws.check(&[]);
    assert_eq!(server.last_answer(), 200, "{confirmed}");
    assert_eq!(confirmed.label_of("held"), "CHANGED", "{confirmed}");
    assert_eq!(ws.history_count("held"), 2);
    // And once confirmed, 304s are welcome again.
    assert_eq!(ws.check(&[]).label_of("held"), "UNCHANGED");
    assert_eq!(server.last_answer(), 304);
}

#[test]
fn a_flip_back_is_confirmed_even_when_the_server_answers_304() {
    let first = full_page();
    let server = ConditionalServer::start(first.clone(), 1_700_000_000);
    let ws = conditional_workspace(&server);
    assert_eq!(ws.check(&[]).label_of("held"), "NEW");
    server.serve(
        partnership_page(
            "North Cumbria partnership",
            &["Allerdale", "Carlisle", "Copeland", "Eden"],
            "Beth Jones",
        ),
        1_700_000_600,
    );
    assert_eq!(ws.check(&[]).label_of("held"), "CHANGED");

    // The old text comes back (a file copied back into place): held as a
    // flip-back, and the held fetch's validators would now get 304s.
    server.serve(first, 1_700_001_200);
    let held = ws.check(&[]);
    assert!(held.stdout.contains("flipped back"), "{held}");
    assert_eq!(ws.history_count("held"), 2);
    let again = ws.check(&[]);
    assert_eq!(server.last_answer(), 200, "{again}");
    assert!(again.stdout.contains("flipped back"), "{again}");
    let confirmed = ws.check(&[]);
    assert_eq!(server.last_answer(), 200, "{confirmed}");
    assert_eq!(confirmed.label_of("held"), "CHANGED", "{confirmed}");
    assert_eq!(ws.history_count("held"), 3);
}

/// Sled only: a damaged `store.sled` file is the embedded store's failure;
/// PostgreSQL keeps its own files.
#[test]
fn a_damaged_store_says_so_and_exits_2() {
    let site = Site::start();
    site.set_html("/p", page("North Cumbria partnership", "Jane Smith"));
    let ws = one_watch(&site, "/p");
    assert_eq!(ws.check(&[]).label_of("hostile"), "NEW");
    let db = ws.path().join("store.sled").join("db");
    let mut bytes = std::fs::read(&db).expect("read db");
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte ^= (i as u8).wrapping_mul(31) | 1;
    }
    std::fs::write(&db, bytes).expect("damage db");
    for args in [&["history", "hostile"][..], &["check"][..]] {
        let run = ws.run(args);
        assert_eq!(run.code, 2, "{args:?}: {run}");
        assert!(run.stderr.contains("store damaged"), "{run}");
        assert!(
            run.stderr.contains("restore from backup or move it aside"),
            "{run}"
        );
        assert!(!run.stderr.contains("panicked"), "{run}");
    }
}

#[test]
fn a_redirect_to_another_port_is_another_site_unless_allowed() {
    let other = Site::start();
    other.set_html("/landing", page("Somebody else's page", "Nobody"));
    let site = Site::start();
    // Same host, 127.0.0.1, on another port.
    site.set_redirect("/moved", other.url("/landing"));
    let ws = one_watch(&site, "/moved");
    let run = ws.check(&[]);
    assert_eq!(run.label_of("hostile"), "ERROR", "{run}");
    assert!(run.stdout.contains("redirected to another site"), "{run}");
    assert_eq!(ws.history_count("hostile"), 0);

    let allowed = Workspace::new(
        &[WatchDef::new("hostile", site.url("/moved")).with(&format!(
            "allow_redirects_to = [\"http://127.0.0.1:{}\"]",
            other.port()
        ))],
    );
    assert_eq!(allowed.check(&[]).label_of("hostile"), "NEW");
}
