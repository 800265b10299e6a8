//! Reloading the rules: when a file in the rules directory changes, or on request (SIGHUP).
//! The new rules replace the old only if they load without error.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tracing::{error, info, warn};

use super::shutdown::{Reload, Shutdown};
use super::sink::{SinkGone, SinkHandle};

/// Requests a reload whenever the rules directory's files change.
pub(crate) async fn watch_rules_dir(
    dir: PathBuf,
    every: Duration,
    reload: Reload,
    shutdown: Shutdown,
) {
    let mut seen = fingerprint(&dir);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait() => return,
        }
        let now = fingerprint(&dir);
        if now != seen {
            seen = now;
            reload.request();
        }
    }
}

/// Performs the reloads that were requested, one at a time.
pub(crate) async fn serve_reloads(
    sink: SinkHandle,
    reload: Reload,
    shutdown: Shutdown,
) -> Result<(), SinkGone> {
    loop {
        tokio::select! {
            _ = reload.requested() => {}
            _ = shutdown.wait() => return Ok(()),
        }
        match sink.reload_rules().await? {
            Ok(summary) => info!("rules reloaded: {summary}"),
            Err(problems) => {
                for problem in &problems {
                    error!("{problem}");
                }
                warn!(
                    "the rules have {} error(s); still using the rules loaded before",
                    problems.len()
                );
            }
        }
    }
}

/// Name, size and modification time of every file under `dir` (two levels deep at most), sorted.
/// The rule tests' folder (`tests/`, read by `mailrules test` only) is left out: writing an
/// expectation with `--bless` changes no rule, so it must not reload them.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut files = Vec::new();
    collect(dir, 2, &mut files);
    let tests = dir.join("tests");
    files.retain(|(path, _, _)| !path.starts_with(&tests));
    files.sort();
    files
}

fn collect(dir: &Path, depth: u32, files: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if depth > 0 {
                collect(&path, depth - 1, files);
            }
        } else {
            files.push((path, meta.len(), meta.modified().ok()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_changes_with_content_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let empty = fingerprint(dir.path());
        std::fs::write(dir.path().join("a.toml"), "x").unwrap();
        let one = fingerprint(dir.path());
        assert_ne!(empty, one);
        std::fs::write(dir.path().join("a.toml"), "xy").unwrap();
        assert_ne!(one, fingerprint(dir.path()));
        assert_eq!(fingerprint(dir.path()), fingerprint(dir.path()));
    }

    #[test]
    fn the_rule_tests_beside_the_rules_do_not_change_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "x").unwrap();
        let rules = fingerprint(dir.path());
        std::fs::create_dir(dir.path().join("tests")).unwrap();
        std::fs::write(dir.path().join("tests/01-request.toml"), "rule = \"a\"").unwrap();
        assert_eq!(rules, fingerprint(dir.path()));
    }
}
