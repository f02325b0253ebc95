//! `tidings completions SHELL`: a shell completion script on stdout.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::args::{Cli, Shell};

pub(crate) fn completions_command(shell: Shell) -> anyhow::Result<u8> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::Elvish => clap_complete::Shell::Elvish,
        Shell::Powershell => clap_complete::Shell::PowerShell,
    };
    // Made in memory and written at once, so that a closed pipe is an
    // ordinary error (and a success for `| head`), not a panic.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tidings", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(0)
}
