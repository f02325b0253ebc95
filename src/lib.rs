//! tidings watches web pages and tells people when they change, in terms
//! they care about. `ARCHITECTURE.md` is the map of the code. The folders
//! are its layers, each depending only on those listed before it:
//!
//! ```text
//! core     pure: extract, diff, facts, classify, render, brief, feed, …
//! config   the TOML file → validated settings
//! fetch    edge: the network (reqwest)
//! store    edge: the store (sled embedded, or PostgreSQL shared by nodes)
//! mail     edge: outgoing mail (lettre)
//! web      edge: the optional HTTP endpoint (axum)
//! service  orchestration: one check (pipeline), the daemon, delivery
//! eval     scoring against ../shared/eval
//! cli      the command line: one file per command
//! ```
//!
//! Invariants:
//! - only `store` knows sled and PostgreSQL; only `fetch` knows reqwest; only `mail` knows
//!   lettre; only `web` knows axum;
//! - `core` does no network or store I/O and never awaits;
//! - a failed fetch or an empty page is recorded as a failed check, never
//!   diffed as content;
//! - a snapshot and its change record are committed in one transaction;
//! - only `cli` (the top) uses `anyhow` and decides exit statuses.

// Data from outside (pages, stores, files, requests) must never panic the
// program: no `unwrap` outside tests.
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cli;
pub mod config;
pub mod core;
pub mod eval;
pub mod fetch;
pub mod mail;
pub mod service;
pub mod store;
pub mod web;
