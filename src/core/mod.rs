//! The pure core: values in, values out. Nothing here touches the network
//! or the store, spawns a task or awaits; `.ci/run` checks that no module
//! here imports tokio, reqwest, sled, lettre or axum.

pub mod brief;
pub mod classify;
pub mod diff;
pub mod extract;
pub mod facts;
pub mod feed;
pub mod gist;
pub mod metrics;
pub mod model;
pub mod order;
pub mod render;
pub mod schedule;
pub mod subscriptions;
pub mod titles;
pub mod token;
