//! tidings watches web pages and tells people when they change, in terms
//! they care about. `ARCHITECTURE.md` is the map of the code; in short:
//!
//! ```text
//! fetch ──▶ extract ──▶ diff ──▶ store          (pipeline: one check)
//!  edge       pure       pure     edge
//! ```
//!
//! Invariants:
//! - only `store` knows sled; only `fetch` knows reqwest;
//! - `extract`, `diff` and `render` do no I/O and never await;
//! - a failed fetch or an empty page is recorded as a failed check, never
//!   diffed as content;
//! - a snapshot and its change record are committed in one transaction;
//! - only `app` (the top) uses `anyhow` and decides exit statuses.

pub mod admin;
pub mod app;
pub mod brief;
pub mod classify;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod demo;
pub mod diff;
pub mod eval;
pub mod eval_histories;
pub mod extract;
pub mod facts;
pub mod feed;
pub mod fetch;
pub mod gist;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod render;
pub mod schedule;
pub mod status;
pub mod store;
pub mod subscriptions;
pub mod token;
pub mod web;
