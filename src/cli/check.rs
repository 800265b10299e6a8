//! `mailrules check`: load the configuration and the rules, and say what is wrong, including
//! what can be checked without the network: the store's folder is writable, every password
//! and secret can be read (webhook headers' variables too), `[smtp]` exists when something
//! replies or notifies, and every webhook action names a configured `[[webhook]]`.

use std::path::Path;
use std::process::ExitCode;

use super::output::say;
use crate::config::Config;
use crate::rules::{Action, ActionSpec, RuleSet};

pub fn check(config_path: &Path, online: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let rules_ok = match RuleSet::load_dir(&config.rules) {
        Ok(rules) => {
            // A webhook action naming no [[webhook]] is a mistake in a rule file: a finding
            // at its FILE:LINE:COL, like the loader's.
            let names: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
            let unknown = rules.check_webhooks(&names);
            for error in &unknown {
                say!("{error}")?;
            }
            let problems = local_problems(&config, &rules);
            for problem in &problems {
                eprintln!("error: {problem}");
            }
            if problems.is_empty() && unknown.is_empty() {
                let s = rules.summary();
                say!(
                    "ok: {} rules, {} triggers, {} schedules in {} files",
                    s.rules,
                    s.triggers,
                    s.schedules,
                    s.files
                )?;
            }
            problems.is_empty() && unknown.is_empty()
        }
        Err(errors) => {
            // Mistakes in rule files are check's findings (stdout, FILE:LINE:COL); a folder or
            // file that cannot be read is a diagnostic like any other.
            for error in errors.iter() {
                if error.is_unreadable() {
                    eprintln!("error: {error}");
                } else {
                    say!("{error}")?;
                }
            }
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

/// What would fail at run time although config and rules load: each as one sentence that
/// says what to do.
fn local_problems(config: &Config, rules: &RuleSet) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(problem) = store_problem(&config.store) {
        problems.push(problem);
    }
    for mailbox in &config.mailboxes {
        let what = format!("mailbox {}", mailbox.name);
        if let Err(e) = mailbox.password.read(&what) {
            problems.push(e.to_string());
        }
        if let Some(oauth2) = &mailbox.oauth2 {
            let account = format!("mailbox \"{}\"", mailbox.name);
            let command = crate::oauth2::reauth_command(&mailbox.name);
            for e in crate::oauth2::unreadable_secrets(&account, &command, oauth2) {
                problems.push(e.to_string());
            }
        }
    }
    for webhook in &config.webhooks {
        problems.extend(
            webhook
                .environment_problems()
                .iter()
                .map(ToString::to_string),
        );
    }
    match &config.smtp {
        Some(smtp) => {
            if let Err(e) = smtp.password.read("[smtp]") {
                problems.push(e.to_string());
            }
            if let Some(oauth2) = &smtp.oauth2 {
                let command = "mailrules auth --smtp";
                for e in crate::oauth2::unreadable_secrets("[smtp]", command, oauth2) {
                    problems.push(e.to_string());
                }
            }
        }
        None => {
            if let Some(sender) = first_sender(rules) {
                problems.push(format!(
                    "{sender} sends mail, but the configuration has no [smtp] section: the mail \
                     would be queued and never sent (add [smtp], see config.example.toml)"
                ));
            }
        }
    }
    problems
}

/// Why the store cannot be written, if it cannot: its folder must exist and take new files
/// (SQLite writes a journal beside the store), and an existing store must be writable.
fn store_problem(store: &Path) -> Option<String> {
    let folder = match store.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if !folder.is_dir() {
        return Some(format!(
            "the store's folder {} does not exist (store = {})",
            folder.display(),
            store.display()
        ));
    }
    let probe = folder.join(format!(".mailrules-check-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => {
            return Some(format!(
                "cannot create files in the store's folder {}: {e}",
                folder.display()
            ))
        }
    }
    if store.exists() {
        if let Err(e) = std::fs::OpenOptions::new().append(true).open(store) {
            return Some(format!(
                "the store {} cannot be written: {e}",
                store.display()
            ));
        }
    }
    None
}

/// The first rule, trigger or schedule that replies or notifies, as `rule "NAME"`.
fn first_sender(rules: &RuleSet) -> Option<String> {
    let sends = |actions: &[Action]| {
        actions
            .iter()
            .any(|a| matches!(a.kind, ActionSpec::Reply { .. } | ActionSpec::Notify { .. }))
    };
    let rule = rules.rules().iter().find(|r| sends(&r.actions));
    let trigger = rules.triggers().iter().find(|t| sends(&t.actions));
    let schedule = rules.schedules().iter().find(|s| sends(&s.actions));
    rule.map(|r| format!("rule \"{}\"", r.name))
        .or_else(|| trigger.map(|t| format!("trigger \"{}\"", t.name)))
        .or_else(|| schedule.map(|s| format!("schedule \"{}\"", s.name)))
}
