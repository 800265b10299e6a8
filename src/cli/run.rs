//! `mailrules run`: the daemon, on a tokio runtime.

use std::path::Path;
use std::process::ExitCode;

pub fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(crate::daemon::run(config_path))?;
    Ok(ExitCode::SUCCESS)
}
