//! Orchestration: the layer that owns concurrency, schedules and shutdown.
//! `pipeline` runs one check (fetch → extract → diff → classify → commit),
//! `daemon` runs checks on their schedules, `delivery` sends what the
//! pipeline queued, and `admin` and `status` answer the commands the CLI
//! sends over the daemon's control socket.

pub mod admin;
pub mod daemon;
pub mod delivery;
pub mod lease;
pub mod outbox;
pub mod pipeline;
pub mod status;
pub mod watch_admin;
