//! Fetching over HTTPS from a server on loopback whose certificate comes
//! from a throwaway CA: refused while the CA is not trusted, fetched once
//! it is (the platform trust store honours `SSL_CERT_FILE`). The trust
//! store is read at the first handshake, not when the client is built, so
//! these tests also show that the late read still checks every certificate.

#[path = "common/certs.rs"]
mod certs;

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tidings::fetch::{FetchSettings, Fetcher, Validators};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

const PAGE: &str = "<!doctype html><html><head><title>Secure page</title></head>\
<body><main><h1>Our partnership</h1><p>The partnership covers Eden, Carlisle and Allerdale, \
serving a population of 327,000 people across the county.</p></main></body></html>";

/// An HTTPS server on 127.0.0.1 answering every request with [`PAGE`].
/// Returns its port; it runs until the test's runtime ends.
async fn https_server(pems: &certs::LocalhostCertificates) -> u16 {
    let chain = vec![CertificateDer::from_pem_slice(pems.certificate.as_bytes()).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(pems.key.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn settings() -> FetchSettings {
    FetchSettings {
        user_agent: tidings::fetch::user_agent("tests@example.org"),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        max_body_bytes: 64 * 1024,
        max_redirects: 3,
        retries: 0,
        retry_base: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(1),
    }
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_refused_and_the_error_says_so() {
    let pems = certs::localhost_certificates();
    let port = https_server(&pems).await;
    let url = Url::parse(&format!("https://localhost:{port}/board")).expect("url");
    let fetcher = Fetcher::new(settings()).expect("fetcher builds");
    let error = fetcher
        .fetch(&url, &Validators::default())
        .await
        .expect_err("an untrusted certificate must not be accepted");
    let message = error.to_string();
    assert!(
        message.contains(&format!("localhost:{port}/board")),
        "the error names the URL: {message}"
    );
    assert!(
        message.to_lowercase().contains("certificate"),
        "the error says the certificate is at fault: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_a_trusted_ca_is_accepted() {
    let pems = certs::localhost_certificates();
    let port = https_server(&pems).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pems.ca).expect("write CA");
    // A child process, so that `SSL_CERT_FILE` (read by the platform trust
    // store) applies to it alone.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args(["extract", &format!("https://localhost:{port}/board")])
            .env("SSL_CERT_FILE", &ca_file)
            .env_remove("SSL_CERT_DIR")
            .output()
            .expect("run tidings")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tidings extract failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("# Our partnership") && stdout.contains("population of 327,000"),
        "the page's text is printed: {stdout}"
    );
}
