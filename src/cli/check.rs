//! `mailrules check`: load the configuration and the rules, and say what is wrong.

use std::path::Path;
use std::process::ExitCode;

use super::output::say;
use crate::rules::RuleSet;

pub fn check(config_path: &Path, online: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let rules_ok = match RuleSet::load_dir(&config.rules) {
        Ok(rules) => {
            let s = rules.summary();
            say!(
                "ok: {} rules, {} triggers, {} schedules in {} files",
                s.rules,
                s.triggers,
                s.schedules,
                s.files
            )?;
            true
        }
        Err(errors) => {
            say!("{errors}")?;
            false
        }
    };
    let online_ok = !online || super::check_online::check_online(&config)?;
    Ok(if rules_ok && online_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
