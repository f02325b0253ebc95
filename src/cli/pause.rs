//! `tidings pause WATCH…` and `tidings resume WATCH…`: through the running
//! daemon, or on the store when none runs. The pause is stored either way.

use chrono::Utc;

use crate::cli::args::Location;
use crate::cli::check_now::print;
use crate::cli::common::{load_config, through_daemon};
use crate::service::status::Request;
use crate::service::watch_admin;

pub(crate) fn pause_command(watches: Vec<String>, location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    let request = Request::Pause {
        watches: watches.clone(),
    };
    let output = through_daemon(&config, &request, |store| {
        let known = |name: &str| config.watch(name).is_some();
        Ok(watch_admin::pause(
            store,
            &config.source,
            known,
            &watches,
            Utc::now(),
        ))
    })?;
    print(&output)
}

pub(crate) fn resume_command(watches: Vec<String>, location: &Location) -> anyhow::Result<u8> {
    let config = load_config(location, false)?;
    let request = Request::Resume {
        watches: watches.clone(),
    };
    let output = through_daemon(&config, &request, |store| {
        let known = |name: &str| config.watch(name).is_some();
        Ok(watch_admin::resume(store, &config.source, known, &watches))
    })?;
    print(&output)
}
