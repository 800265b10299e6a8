//! `mailrules check`: load the configuration and the rules, and say what is wrong.

use std::path::Path;
use std::process::ExitCode;

use crate::rules::RuleSet;

pub fn check(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    match RuleSet::load_dir(&config.rules) {
        Ok(rules) => {
            let s = rules.summary();
            println!(
                "ok: {} rules, {} triggers, {} schedules in {} files",
                s.rules, s.triggers, s.schedules, s.files
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            println!("{errors}");
            Ok(ExitCode::from(1))
        }
    }
}
