//! The daemon's long-lived companions: the delivery worker and the web
//! endpoint, each a tracked task with a handle the daemon keeps.

use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::core::metrics::Metrics;
use crate::core::token::TokenKey;
use crate::service::delivery::{self, Deliverer, OutboxStatus, WorkerEvent, WorkerMessage};
use crate::store::Store;

/// The daemon's side of the delivery worker.
pub(super) struct OutboxHandle {
    pub(super) messages: tokio::sync::mpsc::UnboundedSender<WorkerMessage>,
    pub(super) events: tokio::sync::mpsc::UnboundedReceiver<WorkerEvent>,
    pub(super) status: tokio::sync::watch::Receiver<OutboxStatus>,
    pub(super) stop: tokio_util::sync::CancellationToken,
    pub(super) task: Option<tokio::task::JoinHandle<()>>,
    /// Why there is no worker (mail could not be set up), if so.
    pub(super) broken: Option<String>,
}

impl OutboxHandle {
    /// Starts the worker; when mail cannot be set up, keeps the queue (the
    /// rows wait, nothing is lost) and says why.
    pub(super) fn start(config: &Config, store: &Store, metrics: &Arc<Metrics>) -> Self {
        let (messages, inbox) = tokio::sync::mpsc::unbounded_channel();
        let (event_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let (status_tx, status) = tokio::sync::watch::channel(OutboxStatus::default());
        let stop = tokio_util::sync::CancellationToken::new();
        let (task, broken) = match deliverer(config, store, metrics) {
            Ok(deliverer) => {
                tracing::info!(transport = deliverer.transport(), "delivery worker started");
                let stop = stop.clone();
                (
                    Some(tokio::spawn(
                        deliverer.run(inbox, event_tx, status_tx, stop),
                    )),
                    None,
                )
            }
            Err(error) => {
                let reason = format!("{error:#}");
                tracing::error!(%reason, "mail is not set up; briefings stay queued until it is");
                (None, Some(reason))
            }
        };
        Self {
            messages,
            events,
            status,
            stop,
            task,
            broken,
        }
    }

    pub(super) fn wake(&self) {
        let _ = self.messages.send(WorkerMessage::Wake);
    }

    pub(super) fn report(&self, store: &Store) -> OutboxStatus {
        let mut report = self.status.borrow().clone();
        if let Some(reason) = &self.broken {
            report.paused = Some(reason.clone());
            report.depth = store.outbox_depth().unwrap_or(report.depth);
        }
        report
    }
}

/// Builds the delivery worker from the config: the mailer, the templates
/// (overrides checked now, not at the first send), the links into the web
/// endpoint when it is on, and the metrics it counts into.
pub(super) fn deliverer(
    config: &Config,
    store: &Store,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Deliverer> {
    let mailer = crate::mail::Mailer::new(&config.mail, &config.state_dir)
        .context("cannot set up [mail]")?;
    let templates = crate::core::brief::Templates::with_overrides(&config.mail.templates)?;
    let links = delivery::Links::from_config(config)?;
    Ok(Deliverer::new(
        store.clone(),
        Arc::new(mailer),
        config.mail.clone(),
        Arc::new(templates),
        links,
    )
    .with_metrics(Arc::clone(metrics)))
}

/// The web endpoint, when `[web]` is enabled.
pub(super) struct WebHandle {
    pub(super) state: crate::web::WebState,
    pub(super) stop: tokio_util::sync::CancellationToken,
    pub(super) task: tokio::task::JoinHandle<Result<(), crate::web::WebError>>,
}

impl WebHandle {
    /// Reads the secret, binds the listener and starts serving.
    pub(super) async fn start(
        config: &Config,
        store: &Store,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<Option<Self>> {
        let Some(web) = &config.web else {
            return Ok(None);
        };
        let key = TokenKey::from_file(&web.secret_file)?;
        if store.is_shared() {
            // Any node must accept the links and forms another node made.
            let (agreeing, fingerprint) = (store.clone(), key.fingerprint());
            if let Some(other) =
                tokio::task::spawn_blocking(move || agreeing.agree("web-secret", &fingerprint))
                    .await??
            {
                anyhow::bail!(
                    "{} is not the secret the other nodes on this store use (fingerprint {other}): copy the same [web] secret file to every node",
                    web.secret_file.display()
                );
            }
        }
        let mailer = crate::mail::Mailer::new(&config.mail, &config.state_dir)
            .context("cannot set up [mail] for confirmation mails")?;
        let state = crate::web::WebState::new(
            store.clone(),
            Arc::new(config.clone()),
            Arc::new(mailer),
            key,
            Arc::clone(metrics),
        )?;
        let listener = tokio::net::TcpListener::bind(web.listen)
            .await
            .with_context(|| format!("cannot listen on {} ([web] listen)", web.listen))?;
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(crate::web::serve(state.clone(), listener, stop.clone()));
        Ok(Some(Self { state, stop, task }))
    }
}
