//! `mailrules test [PATH…] [--bless]`: runs the rule tests and prints one line per test, the
//! differences of each failure and a closing `N passed, M failed` line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::rule_tests::{self, Verdict};

pub fn test(config_path: &Path, paths: &[PathBuf], bless: bool) -> anyhow::Result<ExitCode> {
    let config = Arc::new(super::load_config(config_path)?);
    let rules = Arc::new(super::load_rules(&config)?);
    let default = config.rules.join("tests");
    let folders = rule_tests::discover(paths, &default)?;
    if folders.iter().all(|f| f.cases.is_empty()) {
        let looked: Vec<String> = if folders.is_empty() {
            vec![default.display().to_string()]
        } else {
            folders
                .iter()
                .map(|f| f.dir.display().to_string())
                .collect()
        };
        anyhow::bail!(
            "no rule tests found in {} (a test is a NAME.eml message with its NAME.toml \
             expectation; `mailrules test --bless` writes the .toml of each .eml)",
            looked.join(", ")
        );
    }
    // With several folders, a name alone could be any folder's.
    let prefixed = folders.len() > 1;
    let (mut passed, mut failed, mut written, mut unchanged) = (0, 0, 0, 0);
    for folder in &folders {
        let results = rule_tests::run_folder(folder, config.clone(), rules.clone(), bless)?;
        for result in results {
            let name = if prefixed {
                folder.dir.join(&result.name).display().to_string()
            } else {
                result.name
            };
            match result.verdict {
                Verdict::Passed => {
                    passed += 1;
                    println!("ok   {name}");
                }
                Verdict::Failed(why) => {
                    failed += 1;
                    println!("FAIL {name}");
                    for line in why {
                        println!("     {line}");
                    }
                }
                Verdict::Blessed { path, changed } => {
                    if changed {
                        written += 1;
                        println!("wrote {}", path.display());
                    } else {
                        unchanged += 1;
                    }
                }
            }
        }
    }
    if bless {
        println!("{written} written, {unchanged} unchanged, {failed} failed");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
