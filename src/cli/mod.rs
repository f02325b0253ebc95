//! The commands behind the CLI. This is the top of the program: the only
//! place that uses `anyhow`, prints to stdout, and turns outcomes into exit
//! statuses.

pub mod args;
mod backup;
mod check;
mod check_now;
mod common;
mod completions;
pub mod demo;
mod diff;
mod eval_extract;
mod eval_histories;
mod extract;
mod history;
mod import;
mod man;
mod outbox;
mod pause;
mod replay;
mod restore;
mod run;
mod send_test;
mod show;
mod status;
mod store;
mod subscribers;
mod validate;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::args::{Cli, Command};
use crate::config::ConfigErrors;
use common::runtime;

/// Exit status for a bad configuration (EX_CONFIG from sysexits.h), so
/// systemd can be told not to restart into the same mistake.
pub const EXIT_BAD_CONFIG: u8 = 78;
/// Exit status for an error, following diff(1).
pub use crate::service::admin::EXIT_ERROR;

/// glibc gives every thread that allocates its own arena and keeps freed
/// memory in each; with a blocking pool of worker threads that roughly
/// doubled resident memory for no speed. Two arenas are enough for two
/// cores' worth of page work.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator tuning; it is called once,
        // first thing in main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing(verbose: u8, quiet: bool, format: crate::cli::args::LogFormat) {
    let default = match (quiet, verbose) {
        (true, _) => "tidings=error",
        (false, 0) => "tidings=warn",
        (false, 1) => "tidings=info",
        (false, _) => "tidings=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    if format == crate::cli::args::LogFormat::Json {
        // One object per line for log shippers: always with a timestamp,
        // never with colour.
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_current_span(true)
            .try_init();
        return;
    }
    let terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal && std::env::var_os("NO_COLOR").is_none());
    // Under systemd, stderr goes to the journal, which stamps every line
    // itself: a second timestamp and colour codes would only be noise.
    let _ = if terminal {
        builder.try_init()
    } else {
        builder.without_time().with_target(false).try_init()
    };
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Demo { state } => runtime()?.block_on(crate::cli::demo::run(state.as_deref())),
        Command::Diff {
            old,
            new,
            format,
            no_store,
            location,
            rules,
        } => runtime()?.block_on(diff::diff_command(
            &old,
            new.as_deref(),
            format,
            no_store,
            &location,
            &rules,
        )),
        Command::Extract {
            source,
            json,
            location,
            rules,
        } => runtime()?.block_on(extract::extract_command(&source, json, &location, &rules)),
        Command::Check {
            watches,
            json,
            location,
        } => runtime()?.block_on(check::check_command(&watches, json, &location)),
        Command::History { watch, location } => history::history_command(&watch, &location),
        Command::Show { version, location } => show::show_command(&version, &location),
        Command::Validate { location } => validate::validate_command(&location),
        Command::Replay {
            dir,
            state,
            json,
            rules,
        } => replay::replay_command(&dir, state.as_deref(), json, &rules),
        Command::Import { urls, out, contact } => import::import_command(&urls, &out, &contact),
        Command::EvalExtract { dir, json } => eval_extract::eval_extract_command(&dir, json),
        Command::EvalHistories { dir, json } => eval_histories::eval_histories_command(&dir, json),
        Command::Run { location } => run::run_command(&location),
        Command::Status {
            json,
            all,
            watch,
            location,
        } => status::status_command(status::Show::from_flags(json, all, watch), &location),
        Command::Subscribers { command } => subscribers::subscribers_command(command),
        Command::SendTest { address, location } => {
            send_test::send_test_command(&address, &location)
        }
        Command::Outbox { command } => outbox::outbox_command(command),
        Command::CheckNow { watches, location } => check_now::check_now_command(watches, &location),
        Command::Pause { watches, location } => pause::pause_command(watches, &location),
        Command::Resume { watches, location } => pause::resume_command(watches, &location),
        Command::Backup { file, location } => backup::backup_command(&file, &location),
        Command::Restore { file, location } => restore::restore_command(&file, &location),
        Command::Store { command } => store::store_command(command),
        Command::Completions { shell } => completions::completions_command(shell),
        Command::Man { dir } => man::man_command(dir.as_deref()),
    }
}

// ---------------------------------------------------------------------------
// Config and store resolution

/// Parses the command line, runs the command and returns its exit status.
pub fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    // The service logs its lifecycle by default; one-shot commands only warn.
    let service = matches!(cli.command, Command::Run { .. });
    init_tracing(
        cli.verbose + u8::from(service && !cli.quiet),
        cli.quiet,
        cli.log_format,
    );
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            if is_broken_pipe(&error) {
                // `tidings history w | head` is not an error.
                return ExitCode::SUCCESS;
            }
            if let Some(errors) = error.downcast_ref::<ConfigErrors>() {
                for line in &errors.0 {
                    eprintln!("error: {line}");
                }
                eprintln!(
                    "error: the configuration is not valid ({} problem(s))",
                    errors.0.len()
                );
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
