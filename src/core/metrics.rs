//! Counters for `/metrics`, in the Prometheus text exposition format
//! (version 0.0.4).
//!
//! Plain atomics, no registry: the set of metrics is small and fixed, and a
//! hand-written renderer keeps the exposition exactly as documented in
//! `docs/web.md`. The pipeline and the delivery worker increment the
//! counters through one shared `Arc<Metrics>`; the web server renders them.
//! Counters start at zero with each process, as Prometheus expects of
//! `_total` counters (it handles resets).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::core::classify::Kind;

/// The process's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    checks: AtomicU64,
    check_failures: AtomicU64,
    /// Indexed like [`Kind::ALL`].
    changes: [AtomicU64; 5],
    sends: AtomicU64,
    send_failures: AtomicU64,
    subscribe_requests: AtomicU64,
    rate_limited: AtomicU64,
}

/// Relaxed ordering throughout: each counter is independent, and a scrape
/// seeing one a moment before another is harmless.
const ORDER: Ordering = Ordering::Relaxed;

impl Metrics {
    /// Counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// One check finished; `failed` when it was a failed check.
    pub fn record_check(&self, failed: bool) {
        self.checks.fetch_add(1, ORDER);
        if failed {
            self.check_failures.fetch_add(1, ORDER);
        }
    }

    /// One classified change of this kind was recorded. A change with
    /// several kinds is counted once per kind.
    pub fn record_change(&self, kind: Kind) {
        let index = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.changes[index].fetch_add(1, ORDER);
    }

    /// One briefing send was attempted; `failed` when it did not go.
    pub fn record_send(&self, failed: bool) {
        self.sends.fetch_add(1, ORDER);
        if failed {
            self.send_failures.fetch_add(1, ORDER);
        }
    }

    /// A subscribe form was accepted (whatever the address's state).
    pub fn record_subscribe_request(&self) {
        self.subscribe_requests.fetch_add(1, ORDER);
    }

    /// A request was refused by a rate limit.
    pub fn record_rate_limited(&self) {
        self.rate_limited.fetch_add(1, ORDER);
    }

    /// Checks so far.
    pub fn checks(&self) -> u64 {
        self.checks.load(ORDER)
    }

    /// Changes of one kind so far.
    pub fn changes(&self, kind: Kind) -> u64 {
        let index = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        self.changes[index].load(ORDER)
    }

    /// The counters and the outbox depth (briefings waiting to be sent,
    /// read from the store by the caller) as a Prometheus text exposition.
    pub fn render_prometheus(&self, outbox_depth: u64) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "tidings_checks_total",
            "counter",
            "Checks of watched pages finished since start.",
            &[("", self.checks.load(ORDER))],
        );
        metric(
            "tidings_check_failures_total",
            "counter",
            "Checks that failed (fetch errors, bad pages) since start.",
            &[("", self.check_failures.load(ORDER))],
        );
        let labels: Vec<String> = Kind::ALL
            .iter()
            .map(|kind| format!("{{kind=\"{}\"}}", kind.as_str()))
            .collect();
        let by_kind: Vec<(&str, u64)> = labels
            .iter()
            .zip(&self.changes)
            .map(|(label, count)| (label.as_str(), count.load(ORDER)))
            .collect();
        metric(
            "tidings_changes_total",
            "counter",
            "Classified changes recorded since start, by kind.",
            &by_kind,
        );
        metric(
            "tidings_sends_total",
            "counter",
            "Briefing sends attempted since start.",
            &[("", self.sends.load(ORDER))],
        );
        metric(
            "tidings_send_failures_total",
            "counter",
            "Briefing sends that failed since start.",
            &[("", self.send_failures.load(ORDER))],
        );
        metric(
            "tidings_outbox_depth",
            "gauge",
            "Briefings waiting in the outbox.",
            &[("", outbox_depth)],
        );
        metric(
            "tidings_subscribe_requests_total",
            "counter",
            "Subscribe forms accepted since start.",
            &[("", self.subscribe_requests.load(ORDER))],
        );
        metric(
            "tidings_rate_limited_total",
            "counter",
            "Web requests refused by a rate limit since start.",
            &[("", self.rate_limited.load(ORDER))],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_help_type_and_samples() {
        let metrics = Metrics::new();
        metrics.record_check(false);
        metrics.record_check(true);
        metrics.record_change(Kind::Boundary);
        metrics.record_change(Kind::Boundary);
        metrics.record_change(Kind::Minor);
        metrics.record_send(true);
        let text = metrics.render_prometheus(7);
        assert!(text.contains("# TYPE tidings_checks_total counter\ntidings_checks_total 2\n"));
        assert!(text.contains("tidings_check_failures_total 1\n"));
        assert!(text.contains("tidings_changes_total{kind=\"boundary\"} 2\n"));
        assert!(text.contains("tidings_changes_total{kind=\"members\"} 0\n"));
        assert!(text.contains("tidings_changes_total{kind=\"minor\"} 1\n"));
        assert!(text.contains("tidings_sends_total 1\n"));
        assert!(text.contains("tidings_send_failures_total 1\n"));
        assert!(text.contains("# TYPE tidings_outbox_depth gauge\ntidings_outbox_depth 7\n"));
        assert_eq!(metrics.changes(Kind::Boundary), 2);
        // Every sample line is `name{labels} value`, every other line a
        // HELP or TYPE comment.
        for line in text.lines() {
            if !line.starts_with('#') {
                let (name, value) = line.rsplit_once(' ').expect("sample");
                assert!(name.starts_with("tidings_"), "{line}");
                value.parse::<u64>().expect("integer value");
            }
        }
    }
}
