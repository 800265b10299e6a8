//! `mailrules run`: the daemon, on a tokio runtime.

use std::path::Path;
use std::process::ExitCode;

pub fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let _ = config_path;
    anyhow::bail!("the daemon is being merged; use `mailrules ingest` for now")
}
