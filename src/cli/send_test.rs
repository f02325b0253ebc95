//! `tidings send-test ADDRESS`: send one sample briefing through the configured mail transport.

use anyhow::bail;
use chrono::Utc;

use crate::cli::args::Location;
use crate::cli::common::{load_config, runtime};

pub(crate) fn send_test_command(address: &str, location: &Location) -> anyhow::Result<u8> {
    let address =
        crate::core::subscriptions::validate_address(address).map_err(|e| anyhow::anyhow!(e))?;
    let config = load_config(location, false)?;
    let templates = crate::core::brief::Templates::with_overrides(&config.mail.templates)?;
    let now = Utc::now();
    let subscriber = crate::store::Subscriber {
        address: address.clone(),
        name: String::new(),
        watches: Vec::new(),
        tags: Vec::new(),
        kinds: Vec::new(),
        cadence: crate::store::Cadence::Immediate,
        confirmed: true,
        consent_at: None,
        consent_source: None,
        created: now,
    };
    let changes = crate::core::brief::sample_changes(now);
    let Some(mut briefing) = templates.compose(&subscriber, &changes, None)? else {
        bail!("the sample briefing is empty");
    };
    briefing.subject = format!(
        "[tidings test] {}",
        briefing.subject.trim_start_matches("[tidings] ")
    );
    let key = format!(
        "send-test:{address}:{}",
        now.timestamp_nanos_opt().unwrap_or_default()
    );
    let outgoing = crate::mail::Outgoing {
        to: &address,
        to_name: "",
        briefing: &briefing,
        delivery_key: &key,
        thread_key: None,
        unsubscribe_token: None,
    };
    let message = crate::mail::build_message(&config.mail, &outgoing)?;
    // lettre's SMTP pool spawns a tokio task when it is made and another
    // when it is dropped: the mailer lives inside the runtime's context.
    let runtime = runtime()?;
    let _context = runtime.enter();
    let mailer = crate::mail::Mailer::new(&config.mail, &config.state_dir)?;
    let sent = runtime.block_on(mailer.send(&message))?;
    match sent {
        crate::mail::Sent::File(path) => {
            println!("wrote a test briefing for {address} to {}", path.display())
        }
        crate::mail::Sent::Smtp => println!(
            "sent a test briefing to {address} via {}",
            mailer.describe()
        ),
    }
    Ok(0)
}
