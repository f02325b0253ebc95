//! The SMTP client: lettre's SMTP session over sockets we open ourselves.
//!
//! lettre's `AsyncSmtpTransport` opens its own sockets and leaves Nagle's
//! algorithm on. Since it writes a message body and the closing `.` as two
//! writes, every message then waits for the server's delayed ACK: 40 ms a
//! message on Linux, which capped delivery at about 22 briefings a second
//! (measured with `benches/delivery.rs`). So tidings opens the TCP
//! connection itself with `TCP_NODELAY`, does implicit TLS itself when
//! configured (tokio-rustls, the same rustls and platform verifier lettre
//! uses), and hands the stream to lettre's `AsyncSmtpConnection`, which
//! still speaks the protocol: greeting, EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA.
//!
//! Connections are pooled: after a send the connection is kept (up to
//! `pool_size`) and reused; one idle for a while is checked with NOOP
//! first, and a reused connection that turns out to be dead is replaced
//! once, at once, rather than failing the briefing.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use super::{MailError, classify, read_password};
use crate::config::{SmtpSettings, SmtpTls};

/// A connection idle longer than this is checked with NOOP before reuse:
/// servers drop idle clients (Postfix after 300 s, some after 30 s).
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(15);

/// An SMTP server and a pool of open sessions with it.
pub(super) struct SmtpClient {
    settings: SmtpSettings,
    /// For STARTTLS (lettre upgrades the socket).
    starttls: Option<TlsParameters>,
    /// For implicit TLS (we wrap the socket before the greeting).
    implicit: Option<tokio_rustls::TlsConnector>,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl SmtpClient {
    /// Reads the password and builds the TLS settings; connects to nothing.
    pub(super) fn new(settings: &SmtpSettings, timeout: Duration) -> Result<Self, MailError> {
        let extra_roots = match &settings.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    MailError::Setup(format!("cannot read {}: {e}", path.display()))
                })?;
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<_, _>>()
                    .map_err(|e| MailError::Setup(format!("{}: {e}", path.display())))?;
                if certs.is_empty() {
                    return Err(MailError::Setup(format!(
                        "{}: no PEM certificate in it",
                        path.display()
                    )));
                }
                Some((pem, certs))
            }
            None => None,
        };
        let starttls = match settings.tls {
            SmtpTls::Starttls | SmtpTls::StarttlsOptional => {
                let mut builder = TlsParameters::builder(settings.host.clone());
                if let Some((pem, _)) = &extra_roots {
                    let certificate = Certificate::from_pem(pem)
                        .map_err(|e| MailError::Setup(format!("the CA file: {e}")))?;
                    builder = builder.add_root_certificate(certificate);
                }
                Some(
                    builder
                        .build()
                        .map_err(|e| MailError::Setup(format!("TLS setup: {e}")))?,
                )
            }
            _ => None,
        };
        let implicit = match settings.tls {
            SmtpTls::Implicit => Some(implicit_tls(
                extra_roots.map(|(_, certs)| certs).unwrap_or_default(),
            )?),
            _ => None,
        };
        let credentials = match (&settings.username, &settings.password) {
            (Some(username), Some(source)) => {
                let password = read_password(source)?;
                Some(Credentials::new(
                    username.clone(),
                    password.expose_secret().to_owned(),
                ))
            }
            _ => None,
        };
        Ok(Self {
            settings: settings.clone(),
            starttls,
            implicit,
            credentials,
            hello: ClientId::default(),
            timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends one message: on a pooled session if one is alive, else on a
    /// new one.
    pub(super) async fn send(&self, message: &Message) -> Result<(), MailError> {
        let envelope = message.envelope();
        let body = message.formatted();
        if let Some(mut connection) = self.reusable().await {
            match connection.send(envelope, &body).await {
                Ok(_) => {
                    self.keep(connection).await;
                    return Ok(());
                }
                // The server answered: that is the message's fate.
                Err(error) if error.status().is_some() => return Err(classify(&error)),
                // The session died under us (the server closed it while
                // idle): nothing was accepted, so try once on a new one.
                Err(error) => tracing::debug!(%error, "pooled SMTP session was dead"),
            }
        }
        let mut connection = self.connect().await?;
        match connection.send(envelope, &body).await {
            Ok(_) => {
                self.keep(connection).await;
                Ok(())
            }
            Err(error) => Err(classify(&error)),
        }
    }

    /// A pooled session that still answers, if any.
    async fn reusable(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut connection, since) = self.idle.lock().await.pop()?;
            if connection.has_broken() {
                continue;
            }
            if since.elapsed() < CHECK_IDLE_AFTER || connection.test_connected().await {
                return Some(connection);
            }
        }
    }

    async fn keep(&self, mut connection: AsyncSmtpConnection) {
        if connection.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().await;
        if idle.len() < self.settings.pool_size.max(1) as usize {
            idle.push((connection, Instant::now()));
        } else {
            drop(idle);
            let _ = connection.quit().await;
        }
    }

    /// Opens a session: TCP (no Nagle), TLS as configured, EHLO, AUTH.
    async fn connect(&self) -> Result<AsyncSmtpConnection, MailError> {
        let address = (self.settings.host.as_str(), self.settings.port);
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect(address))
            .await
            .map_err(|_| {
                MailError::Transient(format!(
                    "cannot connect to {}:{} within {}",
                    self.settings.host,
                    self.settings.port,
                    humantime::format_duration(self.timeout)
                ))
            })?
            .map_err(|e| {
                MailError::Transient(format!(
                    "cannot connect to {}:{}: {e}",
                    self.settings.host, self.settings.port
                ))
            })?;
        // The point of opening the socket ourselves; see the module docs.
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn AsyncTokioStream> = match &self.implicit {
            Some(connector) => {
                let name = ServerName::try_from(self.settings.host.clone()).map_err(|e| {
                    MailError::Setup(format!("{} is not a host name: {e}", self.settings.host))
                })?;
                let tls = connector.connect(name, tcp).await.map_err(|e| {
                    MailError::Auth(format!(
                        "TLS with {}:{} failed: {e}",
                        self.settings.host, self.settings.port
                    ))
                })?;
                Box::new(TlsSocket(tls))
            }
            None => Box::new(tcp),
        };
        let mut connection = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| classify(&e))?;
        if let Some(parameters) = &self.starttls {
            if connection.can_starttls() {
                connection
                    .starttls(parameters.clone(), &self.hello)
                    .await
                    .map_err(|e| classify(&e))?;
            } else if self.settings.tls == SmtpTls::Starttls {
                connection.abort().await;
                return Err(MailError::Auth(format!(
                    "{}:{} does not offer STARTTLS, and tls = \"starttls\" requires it",
                    self.settings.host, self.settings.port
                )));
            }
        }
        if let Some(credentials) = &self.credentials {
            if let Err(error) = connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
            {
                connection.abort().await;
                return Err(classify(&error));
            }
        }
        Ok(connection)
    }
}

/// The rustls client config for implicit TLS: the platform's trust store
/// (as lettre's STARTTLS uses), plus the configured CA.
fn implicit_tls(
    extra_roots: Vec<CertificateDer<'static>>,
) -> Result<tokio_rustls::TlsConnector, MailError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
            .map_err(|e| MailError::Setup(format!("TLS setup: {e}")))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MailError::Setup(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A TLS stream lettre can speak SMTP over.
#[derive(Debug)]
struct TlsSocket(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsSocket {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
