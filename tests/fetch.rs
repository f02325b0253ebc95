//! Fetcher behaviour against a local wiremock server (loopback only).

use std::io::Write;
use std::time::{Duration, Instant};

use tidings::fetch::{FetchError, FetchOutcome, FetchSettings, Fetcher, Page, Validators};
use url::Url;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HTML: &str =
    "<!doctype html><html><head><title>t</title></head><body><p>Hello</p></body></html>";

/// Short limits so failures and retries are quick.
fn settings() -> FetchSettings {
    FetchSettings {
        user_agent: tidings::fetch::user_agent("tests@example.org"),
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        max_body_bytes: 64 * 1024,
        max_redirects: 3,
        retries: 2,
        retry_base: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(5),
    }
}

fn fetcher() -> Fetcher {
    Fetcher::new(settings()).expect("fetcher builds")
}

fn url(server: &MockServer, p: &str) -> Url {
    Url::parse(&format!("{}{p}", server.uri())).unwrap()
}

fn html(body: impl Into<Vec<u8>>, content_type: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.into(), content_type)
}

async fn fetch_page(fetcher: &Fetcher, url: &Url) -> Page {
    match fetcher.fetch(url, &Validators::default()).await {
        Ok(FetchOutcome::Page(page)) => page,
        other => panic!("expected a page, got {other:?}"),
    }
}

async fn fetch_err(fetcher: &Fetcher, url: &Url) -> FetchError {
    match fetcher.fetch(url, &Validators::default()).await {
        Err(e) => e,
        Ok(outcome) => panic!("expected an error, got {outcome:?}"),
    }
}

async fn request_count(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn conditional_get_round_trip() {
    let server = MockServer::start().await;
    let etag = "\"v1\"";
    let modified = "Wed, 21 Oct 2015 07:28:00 GMT";
    // Mounted first so it wins when both validators are present.
    Mock::given(method("GET"))
        .and(path("/page"))
        .and(header("if-none-match", etag))
        // Not `header(...)`: that matcher splits values on commas, and an
        // HTTP date contains one.
        .and(move |request: &wiremock::Request| {
            request
                .headers
                .get("if-modified-since")
                .is_some_and(|v| v == modified)
        })
        .respond_with(ResponseTemplate::new(304))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/page"))
        .respond_with(
            html(HTML, "text/html; charset=utf-8")
                .insert_header("etag", etag)
                .insert_header("last-modified", modified),
        )
        .mount(&server)
        .await;

    let fetcher = fetcher();
    let target = url(&server, "/page");
    let page = fetch_page(&fetcher, &target).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.html, HTML);
    assert_eq!(page.final_url, target);
    assert_eq!(
        page.validators,
        Validators {
            etag: Some(etag.to_owned()),
            last_modified: Some(modified.to_owned()),
        }
    );
    let first = &server.received_requests().await.unwrap()[0];
    assert!(first.headers.get("if-none-match").is_none());
    assert!(first.headers.get("if-modified-since").is_none());

    let outcome = fetcher.fetch(&target, &page.validators).await.unwrap();
    assert!(matches!(outcome, FetchOutcome::NotModified), "{outcome:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].headers["if-none-match"], etag);
    assert_eq!(requests[1].headers["if-modified-since"], modified);
}

#[tokio::test]
async fn page_without_validators_reports_none() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(html(HTML, "text/html"))
        .mount(&server)
        .await;
    let page = fetch_page(&fetcher(), &url(&server, "/")).await;
    assert_eq!(page.validators, Validators::default());
}

#[tokio::test]
async fn unexpected_304_without_validators_is_an_error() {
    // A 304 we did not ask for says nothing about the page.
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(304))
        .mount(&server)
        .await;
    let err = fetch_err(&fetcher(), &url(&server, "/")).await;
    assert!(
        matches!(err, FetchError::Status { status: 304, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn charset_from_header() {
    let server = MockServer::start().await;
    let mut body = b"<html><body>it".to_vec();
    body.extend_from_slice(&[0x92]);
    body.extend_from_slice(b"s ");
    body.extend_from_slice(&[0xA3]);
    body.extend_from_slice(b"5</body></html>");
    Mock::given(path("/"))
        .respond_with(html(body, "text/html; charset=windows-1252"))
        .mount(&server)
        .await;
    let page = fetch_page(&fetcher(), &url(&server, "/")).await;
    assert!(page.html.contains("it\u{2019}s \u{a3}5"), "{}", page.html);
}

#[tokio::test]
async fn charset_from_meta_tag() {
    let server = MockServer::start().await;
    let mut body = b"<html><head><meta charset=\"iso-8859-1\"></head><body>caf".to_vec();
    body.push(0xE9);
    body.extend_from_slice(b" ");
    body.push(0x92);
    body.extend_from_slice(b"</body></html>");
    Mock::given(path("/"))
        .respond_with(html(body, "text/html"))
        .mount(&server)
        .await;
    let page = fetch_page(&fetcher(), &url(&server, "/")).await;
    // iso-8859-1 is decoded as windows-1252, so 0x92 is a curly quote.
    assert!(page.html.contains("caf\u{e9} \u{2019}"), "{}", page.html);
}

#[tokio::test]
async fn charset_from_http_equiv_meta_tag() {
    let server = MockServer::start().await;
    let mut body = b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-2\"></head><body>".to_vec();
    body.push(0xB3); // ł in iso-8859-2
    body.extend_from_slice(b"</body></html>");
    Mock::given(path("/"))
        .respond_with(html(body, "text/html"))
        .mount(&server)
        .await;
    let page = fetch_page(&fetcher(), &url(&server, "/")).await;
    assert!(page.html.contains("<body>\u{142}</body>"), "{}", page.html);
}

#[tokio::test]
async fn undeclared_invalid_utf8_falls_back_to_windows_1252() {
    let server = MockServer::start().await;
    let mut body = b"<html><body>price ".to_vec();
    body.push(0xA3);
    body.extend_from_slice(b"10 ");
    body.push(0x93);
    body.extend_from_slice(b"quoted");
    body.push(0x94);
    body.extend_from_slice(b"</body></html>");
    Mock::given(path("/"))
        .respond_with(html(body, "text/html"))
        .mount(&server)
        .await;
    let page = fetch_page(&fetcher(), &url(&server, "/")).await;
    assert!(
        page.html.contains("price \u{a3}10 \u{201c}quoted\u{201d}"),
        "{}",
        page.html
    );
    assert!(!page.html.contains('\u{fffd}'));
}

#[tokio::test]
async fn undeclared_valid_utf8_stays_utf8() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(html("<html><body>café – ok</body></html>", "text/html"))
        .mount(&server)
        .await;
    let page = fetch_page(&fetcher(), &url(&server, "/")).await;
    assert!(page.html.contains("café – ok"), "{}", page.html);
}

#[tokio::test]
async fn utf8_bom_is_stripped() {
    let server = MockServer::start().await;
    let body = format!("\u{feff}{HTML}");
    Mock::given(path("/"))
        .respond_with(html(body, "text/html"))
        .mount(&server)
        .await;
    let page = fetch_page(&fetcher(), &url(&server, "/")).await;
    assert_eq!(page.html, HTML);
}

#[tokio::test]
async fn gzip_body_is_decompressed() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(
            html(gzip(HTML.as_bytes()), "text/html").insert_header("content-encoding", "gzip"),
        )
        .mount(&server)
        .await;
    let page = fetch_page(&fetcher(), &url(&server, "/")).await;
    assert_eq!(page.html, HTML);
    let request = &server.received_requests().await.unwrap()[0];
    let accept = request.headers["accept-encoding"].to_str().unwrap();
    assert!(accept.contains("gzip") && accept.contains("br"), "{accept}");
}

#[tokio::test]
async fn gzip_bodies_of_several_members_or_with_a_wrong_size_are_read_whole() {
    // Servers may send a page as several gzip members, and a trailer's size
    // is modulo 2^32: neither may cut a page short.
    let server = MockServer::start().await;
    let (head, tail) = HTML.split_at(HTML.len() / 2);
    let members = [gzip(head.as_bytes()), gzip(tail.as_bytes())].concat();
    let mut wrong_size = gzip(HTML.as_bytes());
    let at = wrong_size.len() - 4;
    wrong_size[at..].copy_from_slice(&3u32.to_le_bytes());
    Mock::given(path("/members"))
        .respond_with(html(members, "text/html").insert_header("content-encoding", "gzip"))
        .mount(&server)
        .await;
    Mock::given(path("/x-gzip"))
        .respond_with(
            html(gzip(HTML.as_bytes()), "text/html").insert_header("content-encoding", "x-gzip"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/wrong-size"))
        .respond_with(html(wrong_size, "text/html").insert_header("content-encoding", "gzip"))
        .mount(&server)
        .await;
    let fetcher = fetcher();
    assert_eq!(
        fetch_page(&fetcher, &url(&server, "/members")).await.html,
        HTML
    );
    assert_eq!(
        fetch_page(&fetcher, &url(&server, "/x-gzip")).await.html,
        HTML
    );
    // The trailer's size is checked with the data: a wrong one is bad gzip.
    let target = url(&server, "/wrong-size");
    let err = fetch_err(&fetcher, &target).await;
    assert!(matches!(err, FetchError::Decode { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("{target}: ")), "{err}");
}

#[tokio::test]
async fn brotli_body_is_decompressed() {
    let server = MockServer::start().await;
    let mut compressed = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut compressed, 4096, 5, 22);
        writer.write_all(HTML.as_bytes()).unwrap();
    }
    Mock::given(path("/"))
        .respond_with(html(compressed, "text/html").insert_header("content-encoding", "br"))
        .mount(&server)
        .await;
    assert_eq!(fetch_page(&fetcher(), &url(&server, "/")).await.html, HTML);
}

#[tokio::test]
async fn a_corrupt_gzip_body_is_an_error_not_a_page() {
    let server = MockServer::start().await;
    let mut corrupt = gzip(HTML.as_bytes());
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    corrupt.truncate(corrupt.len() - 2);
    Mock::given(path("/"))
        .respond_with(html(corrupt, "text/html").insert_header("content-encoding", "gzip"))
        .mount(&server)
        .await;
    let target = url(&server, "/");
    let err = fetch_err(&fetcher(), &target).await;
    assert!(matches!(err, FetchError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("bad gzip data"), "{err}");
    assert!(err.to_string().contains(target.as_str()), "{err}");
}

#[tokio::test]
async fn a_gzipped_robots_txt_is_read_and_obeyed() {
    let server = MockServer::start().await;
    Mock::given(path("/robots.txt"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(gzip(b"User-agent: *\nDisallow: /private\n"), "text/plain")
                .insert_header("content-encoding", "gzip"),
        )
        .mount(&server)
        .await;
    let fetcher = fetcher();
    let err = fetcher
        .check_robots(&url(&server, "/private/page"))
        .await
        .expect_err("disallowed");
    assert!(
        matches!(err, FetchError::RobotsDisallowed { .. }),
        "{err:?}"
    );
    assert!(fetcher.check_robots(&url(&server, "/public")).await.is_ok());
}

#[tokio::test]
async fn body_cap_applies_to_decompressed_size() {
    // Small on the wire, large once inflated: the cap must still bite.
    let server = MockServer::start().await;
    let mut big = HTML.as_bytes().to_vec();
    big.extend(std::iter::repeat_n(b' ', 200 * 1024));
    let compressed = gzip(&big);
    assert!(compressed.len() < settings().max_body_bytes);
    Mock::given(path("/"))
        .respond_with(html(compressed, "text/html").insert_header("content-encoding", "gzip"))
        .mount(&server)
        .await;
    let err = fetch_err(&fetcher(), &url(&server, "/")).await;
    assert!(
        matches!(err, FetchError::TooLarge { limit: 65536, .. }),
        "{err:?}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn body_over_cap_is_too_large() {
    let server = MockServer::start().await;
    let body = format!("<html><body>{}</body></html>", "x".repeat(100 * 1024));
    Mock::given(path("/big"))
        .respond_with(html(body, "text/html"))
        .mount(&server)
        .await;
    let target = url(&server, "/big");
    let err = fetch_err(&fetcher(), &target).await;
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{target}: page is larger than the 64 KiB limit")
    );
    // Not retried: it will not shrink in the next half second.
    assert_eq!(request_count(&server).await, 1);
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/"))
        .respond_with(html(HTML, "text/html"))
        .mount(&server)
        .await;
    let page = fetch_page(&fetcher(), &url(&server, "/")).await;
    assert_eq!(page.html, HTML);
    assert_eq!(request_count(&server).await, 2);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/"))
        .respond_with(html(HTML, "text/html"))
        .mount(&server)
        .await;
    let started = Instant::now();
    let page = fetch_page(&fetcher(), &url(&server, "/")).await;
    // The backoff alone would be ~10 ms; waiting a second shows the header won.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(page.html, HTML);
    assert_eq!(request_count(&server).await, 2);
}

#[tokio::test]
async fn retry_after_longer_than_allowed_gives_up_at_once() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .mount(&server)
        .await;
    let target = url(&server, "/");
    let started = Instant::now();
    let err = fetch_err(&fetcher(), &target).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        matches!(
            err,
            FetchError::Status {
                status: 429,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        format!(
            "{target}: server answered 429 Too Many Requests and asked to wait 3600 s, longer than allowed"
        )
    );
    assert_eq!(request_count(&server).await, 1);
}

#[tokio::test]
async fn persistent_503_fails_after_all_attempts() {
    let server = MockServer::start().await;
    Mock::given(path("/down"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let target = url(&server, "/down");
    let err = fetch_err(&fetcher(), &target).await;
    assert_eq!(request_count(&server).await, 3);
    assert!(
        matches!(
            err,
            FetchError::Status {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        format!("{target}: server answered 503 Service Unavailable after 3 attempts")
    );
}

#[tokio::test]
async fn not_found_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/gone"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let target = url(&server, "/gone");
    let err = fetch_err(&fetcher(), &target).await;
    assert_eq!(request_count(&server).await, 1);
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        format!("{target}: server answered 404 Not Found")
    );
}

#[tokio::test]
async fn non_html_content_types_are_refused() {
    let server = MockServer::start().await;
    Mock::given(path("/doc.pdf"))
        .respond_with(html(b"%PDF-1.7 ...".to_vec(), "application/pdf"))
        .mount(&server)
        .await;
    Mock::given(path("/api"))
        .respond_with(html(
            b"{\"a\": 1}".to_vec(),
            "application/json; charset=utf-8",
        ))
        .mount(&server)
        .await;
    let fetcher = fetcher();
    let pdf = url(&server, "/doc.pdf");
    let err = fetch_err(&fetcher, &pdf).await;
    assert!(
        matches!(&err, FetchError::NotHtml { content_type, .. } if content_type == "application/pdf"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("{pdf}: not an html page (content type application/pdf)")
    );
    let err = fetch_err(&fetcher, &url(&server, "/api")).await;
    assert!(
        matches!(&err, FetchError::NotHtml { content_type, .. } if content_type == "application/json"),
        "{err:?}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn xhtml_is_accepted() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(html(HTML, "application/xhtml+xml; charset=utf-8"))
        .mount(&server)
        .await;
    let page = fetch_page(&fetcher(), &url(&server, "/")).await;
    assert_eq!(page.html, HTML);
}

#[tokio::test]
async fn missing_content_type_is_sniffed() {
    let server = MockServer::start().await;
    Mock::given(path("/html"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(HTML))
        .mount(&server)
        .await;
    Mock::given(path("/text"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes("just some words"))
        .mount(&server)
        .await;
    let fetcher = fetcher();
    let page = fetch_page(&fetcher, &url(&server, "/html")).await;
    assert_eq!(page.html, HTML);
    let requests = server.received_requests().await.unwrap();
    assert!(requests.len() == 1);
    let err = fetch_err(&fetcher, &url(&server, "/text")).await;
    assert!(
        matches!(&err, FetchError::NotHtml { content_type, .. } if content_type == "none"),
        "{err:?}"
    );
}

#[tokio::test]
async fn empty_and_blank_bodies_are_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/empty"))
        .respond_with(html(Vec::new(), "text/html"))
        .mount(&server)
        .await;
    Mock::given(path("/blank"))
        .respond_with(html(" \r\n\t \n", "text/html; charset=utf-8"))
        .mount(&server)
        .await;
    let fetcher = fetcher();
    let empty = url(&server, "/empty");
    let err = fetch_err(&fetcher, &empty).await;
    assert!(matches!(err, FetchError::Empty { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{empty}: server sent an empty page")
    );
    let err = fetch_err(&fetcher, &url(&server, "/blank")).await;
    assert!(matches!(err, FetchError::Empty { .. }), "{err:?}");
}

#[tokio::test]
async fn redirect_within_limit_reports_final_url() {
    let server = MockServer::start().await;
    Mock::given(path("/old"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "/middle"))
        .mount(&server)
        .await;
    Mock::given(path("/middle"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/new"))
        .mount(&server)
        .await;
    Mock::given(path("/new"))
        .respond_with(html(HTML, "text/html"))
        .mount(&server)
        .await;
    let page = fetch_page(&fetcher(), &url(&server, "/old")).await;
    assert_eq!(page.final_url, url(&server, "/new"));
    assert_eq!(page.html, HTML);
}

#[tokio::test]
async fn too_many_redirects() {
    let server = MockServer::start().await;
    // /r0 -> /r1 -> ... -> /r9: longer than the limit of 3.
    for i in 0..10 {
        Mock::given(path(format!("/r{i}")))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("location", format!("/r{}", i + 1).as_str()),
            )
            .mount(&server)
            .await;
    }
    let target = url(&server, "/r0");
    let err = fetch_err(&fetcher(), &target).await;
    assert!(
        matches!(err, FetchError::TooManyRedirects { max: 3, .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), format!("{target}: more than 3 redirects"));
    assert!(!err.is_transient());
    // The limit stops the chain: the first request plus three followed.
    assert_eq!(request_count(&server).await, 4);
}

#[tokio::test]
async fn user_agent_names_the_contact() {
    let server = MockServer::start().await;
    let ua = tidings::fetch::user_agent("tests@example.org");
    Mock::given(path("/"))
        .and(header("user-agent", ua.as_str()))
        .respond_with(html(HTML, "text/html"))
        .expect(1)
        .mount(&server)
        .await;
    fetch_page(&fetcher(), &url(&server, "/")).await;
    let request = &server.received_requests().await.unwrap()[0];
    let sent = request.headers["user-agent"].to_str().unwrap();
    assert!(sent.starts_with("tidings/"), "{sent}");
    assert!(sent.contains("tests@example.org"), "{sent}");
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target = Url::parse(&format!("http://127.0.0.1:{port}/page")).unwrap();
    let err = fetch_err(&fetcher(), &target).await;
    assert!(
        matches!(err, FetchError::Connect { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "{target}: network error: could not connect after 3 attempts: "
        )),
        "{message}"
    );
    assert!(message.contains("refused"), "{message}");
}

#[tokio::test]
async fn slow_response_times_out() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(html(HTML, "text/html").set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let fetcher = Fetcher::new(FetchSettings {
        timeout: Duration::from_millis(300),
        retries: 0,
        ..settings()
    })
    .unwrap();
    let target = url(&server, "/slow");
    let started = Instant::now();
    let err = fetch_err(&fetcher, &target).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, FetchError::Timeout { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(
        err.to_string(),
        format!("{target}: no complete answer within 300 ms")
    );
}

#[tokio::test]
async fn only_http_and_https_are_fetched() {
    let fetcher = fetcher();
    for raw in ["ftp://example.org/file", "file:///etc/passwd"] {
        let target = Url::parse(raw).unwrap();
        let err = fetch_err(&fetcher, &target).await;
        assert!(
            matches!(err, FetchError::UnsupportedScheme { .. }),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(raw), "{err}");
    }
}

#[tokio::test]
async fn fetcher_is_shareable_across_tasks() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(html(HTML, "text/html"))
        .mount(&server)
        .await;
    let fetcher = fetcher();
    let target = url(&server, "/");
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let fetcher = fetcher.clone();
            let target = target.clone();
            tokio::spawn(async move { fetcher.fetch(&target, &Validators::default()).await })
        })
        .collect();
    for handle in handles {
        assert!(matches!(handle.await.unwrap(), Ok(FetchOutcome::Page(_))));
    }
    assert_eq!(request_count(&server).await, 3);
}

#[test]
fn bad_user_agent_is_a_setup_error() {
    let err = Fetcher::new(FetchSettings {
        user_agent: "tidings\n(evil)".to_owned(),
        ..settings()
    })
    .unwrap_err();
    assert!(matches!(err, FetchError::Setup { .. }), "{err:?}");
}

#[test]
fn defaults_are_sane() {
    let d = FetchSettings::default();
    assert_eq!(d.connect_timeout, Duration::from_secs(10));
    assert_eq!(d.timeout, Duration::from_secs(30));
    assert_eq!(d.max_body_bytes, 5 * 1024 * 1024);
    assert_eq!(d.max_redirects, 5);
    assert_eq!(d.retries, 2);
    assert_eq!(d.retry_base, Duration::from_millis(500));
    assert_eq!(d.max_retry_after, Duration::from_secs(60));
    assert!(d.user_agent.starts_with("tidings/"));
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}
