//! SIGHUP: the config read again and put in place. Added, removed and
//! changed watches take effect at once; an invalid config is logged and
//! the running one kept; a config whose files did not change is not read
//! again (see [`crate::config::Fingerprint`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::tasks::*;
use super::{Daemon, load, notify};
use crate::config::Config;
use crate::service::delivery::WorkerMessage;
use crate::service::pipeline::Pipeline;

impl Daemon {
    /// Re-reads the config. Keeps the old one when the new one is invalid.
    pub(super) fn reload(&mut self) {
        notify(&[sd_notify::NotifyState::Reloading]);
        let started = Instant::now();
        // Nothing to read when no file changed: parsing and validating a
        // 100,000-watch config again costs about a second and 200 MB. A
        // paused outbox is the exception: a reload is how an admin says
        // "the mail settings are fixed" (a password file, say), so the
        // mail side is rebuilt all the same.
        if self.outbox.broken.is_none() && self.fingerprint.unchanged() {
            tracing::info!(
                unchanged = true,
                watches = self.plan.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "configuration reloaded"
            );
            notify(&[sd_notify::NotifyState::Ready]);
            self.publish_status();
            return;
        }
        // Watches whose block of the file is as it was are taken from the
        // plan as they are, not parsed and validated again.
        let plan = &self.plan;
        let lookup = |name: &str| plan.get(name).map(|planned| planned.watch.clone());
        let reuse = crate::config::Reuse {
            fingerprint: &self.fingerprint,
            watch: &lookup,
        };
        let loaded = load(&self.options, Some(&reuse));
        match loaded {
            Err(errors) => {
                for error in &errors.0 {
                    tracing::error!("{error}");
                }
                tracing::error!("new configuration rejected; the running one is kept");
            }
            Ok((config, fingerprint)) => {
                let loaded = started.elapsed();
                if self.apply(config, loaded) {
                    self.fingerprint = fingerprint;
                }
            }
        }
        // A reload parses the whole file again (about 200 MB at its peak
        // for 100,000 watches) and frees the old config; with checks always
        // in flight on a large config the idle-time trim may never come.
        self.last_trim = None;
        self.give_back_memory();
        notify(&[sd_notify::NotifyState::Ready]);
        self.publish_status();
    }

    /// Puts a new config in place; `false` when it was rejected and the
    /// running one kept. `loaded` is how long reading it took, for the log.
    fn apply(&mut self, mut config: Config, loaded: Duration) -> bool {
        let started = Instant::now();
        if config.state_dir != self.config.state_dir {
            tracing::warn!(
                "state_dir changed to {}; this takes effect only after a restart",
                config.state_dir.display()
            );
        }
        if config.limits != self.config.limits || config.contact != self.config.contact {
            match Pipeline::new(
                self.store.clone(),
                config.limits.clone(),
                config.contact.as_deref(),
            ) {
                // Checks in flight keep the old pipeline until they finish.
                Ok(pipeline) => self.pipeline = Arc::new(pipeline),
                Err(error) => {
                    tracing::error!(%error, "new limits rejected; the running configuration is kept");
                    return false;
                }
            }
        }
        if let Some(web) = &self.web {
            if config.web.as_ref().map(|w| w.listen) != self.config.web.as_ref().map(|w| w.listen) {
                tracing::warn!(
                    "[web] listen or enabled changed; this takes effect only after a restart"
                );
            }
            web.state.set_config(Arc::new(config.clone()));
        } else if config.web.is_some() {
            tracing::warn!("[web] was enabled; the web endpoint starts only after a restart");
        }
        if config.mail != self.config.mail
            || config.web != self.config.web
            || self.outbox.broken.is_some()
        {
            match deliverer(&config, &self.store, &self.metrics) {
                Ok(next) if self.outbox.task.is_some() => {
                    let _ = self
                        .outbox
                        .messages
                        .send(WorkerMessage::Reconfigure(Box::new(next)));
                    tracing::info!("mail settings reloaded");
                }
                Ok(_) => self.outbox = OutboxHandle::start(&config, &self.store, &self.metrics),
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), "new [mail] settings rejected; the running ones are kept");
                }
            }
        }
        let now = Utc::now();
        let names: HashSet<&str> = config.watches.iter().map(|w| w.name.as_str()).collect();
        let removed: Vec<String> = self
            .plan
            .keys()
            .filter(|n| !names.contains(n.as_str()))
            .cloned()
            .collect();
        drop(names);
        for name in &removed {
            self.plan.remove(name);
            self.asked_now.remove(name);
            self.failing.remove(name);
        }
        let (mut added, mut changed) = (0, 0);
        let daemon_settings_changed = config.daemon != self.config.daemon;
        // The watches move into the plan, as at start-up: no copy of
        // 100,000 of them is made, and none kept in the config.
        let watches = std::mem::take(&mut config.watches);
        let total = watches.len();
        self.config = config;
        let schedule_changed = |old: &crate::config::Watch, new: &crate::config::Watch| {
            old.schedule.expression != new.schedule.expression
                || old.schedule.timezone != new.schedule.timezone
        };
        // A watch whose schedule and timing are as they were takes its
        // place in the plan with its due time, in one look-up. One whose
        // schedule or timing changed is planned again from the inputs its
        // entry holds (last check, failures in a row, pause), which the
        // daemon keeps current after every check, pause and resume: a new
        // default schedule re-plans 100,000 watches without reading one
        // stored state.
        //
        // On a shared (PostgreSQL) store another node may have checked a
        // watch since this node last looked, so those inputs can be stale.
        // That loses and doubles nothing: no check starts from this plan
        // alone, since `claim_due` plans every granted check again from the
        // store as it is under the claim and gives the claim back when the
        // fresh due time is still ahead (so a plan that is early costs one
        // claim, never a second check); and a due time this node plans late
        // (a backoff that another node's success has since ended) was
        // planned from the same inputs before the reload, while the node
        // that ran that check plans it from what it stored. Pauses made
        // elsewhere reach every node's plan each heartbeat (`sync_pauses`).
        let mut batch = super::plan::Batch::new(now, self.timing());
        let asked_now = &self.asked_now;
        let mut anew = Vec::new();
        for watch in watches {
            let added_watch = self.plan.replace(
                watch,
                |old, new| {
                    let rescheduled = schedule_changed(old, new);
                    if rescheduled || old.url != new.url || old.tags != new.tags {
                        changed += 1;
                    }
                    !rescheduled && !daemon_settings_changed
                },
                // A check an admin asked for stays due now.
                |watch, inputs| {
                    if asked_now.contains(&watch.name) {
                        now
                    } else {
                        batch.due(watch, inputs)
                    }
                },
            );
            anew.extend(added_watch);
        }
        // Watches new to the plan are planned from their stored state (a
        // watch removed once and added back has one): read for just those
        // when they are few (one round trip), in one pass over the tree
        // when many, keeping only theirs.
        let stored_reads = anew.len();
        let inputs: Vec<super::plan::Inputs> = if anew.is_empty() {
            Vec::new()
        } else if anew.len() <= total / 10 {
            let names: Vec<&str> = anew.iter().map(|w| w.name.as_str()).collect();
            let (states, paused) = self.store.plan_inputs(&names).unwrap_or_default();
            anew.iter()
                .map(|w| super::plan::Inputs::stored(states.get(&w.name), paused.contains(&w.name)))
                .collect()
        } else {
            let wanted: HashSet<&str> = anew.iter().map(|w| w.name.as_str()).collect();
            let paused = self.store.paused().unwrap_or_default();
            let known = self.known_inputs(|name| wanted.contains(name), &paused);
            anew.iter()
                .map(|w| {
                    known.get(&w.name).copied().unwrap_or(super::plan::Inputs {
                        paused: paused.contains_key(&w.name),
                        ..Default::default()
                    })
                })
                .collect()
        };
        for (watch, inputs) in anew.into_iter().zip(inputs) {
            added += 1;
            let due = batch.due(&watch, inputs);
            let name = watch.name.clone();
            self.plan.insert(watch, inputs, due);
            self.remember(&name, inputs);
        }
        tracing::info!(
            added,
            removed = removed.len(),
            changed,
            stored_reads,
            watches = self.plan.len(),
            load_ms = loaded.as_millis() as u64,
            apply_ms = started.elapsed().as_millis() as u64,
            "configuration reloaded"
        );
        true
    }
}
