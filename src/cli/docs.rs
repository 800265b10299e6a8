//! `mailrules completions SHELL` and `mailrules man`: shell completions and the man page,
//! generated from the same clap definitions as the command line itself.

use std::process::ExitCode;

use clap::CommandFactory;

use super::Cli;

pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "mailrules", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

pub fn man_page() -> anyhow::Result<ExitCode> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(ExitCode::SUCCESS)
}
