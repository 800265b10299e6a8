//! `mailrules schedules`: what each schedule is, when it last ran and what it did; and
//! `mailrules schedules run`: run them once (for cron users and for tests).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::table::Table;
use crate::automation::{ScheduleFiring, Which};
use crate::pipeline::Pipeline;
use crate::store::FiringOutcome;

/// How many recent firings `schedules --json` shows per schedule.
const RECENT: usize = 20;

pub fn list(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let rules = super::load_rules(&config)?;
    let store = super::open_store(&config)?;
    let statuses = store.schedule_statuses()?;
    let mut out = Vec::new();
    let mut table = Table::new(&["SCHEDULE", "EVERY", "LAST RUN", "LAST RUN DID", "FIRED"]);
    for schedule in rules.schedules() {
        let status = statuses.iter().find(|s| s.schedule == schedule.name);
        let recent = store.schedule_runs(&schedule.name, RECENT)?;
        let did = match status {
            None => "never ran".to_string(),
            Some(s) => {
                let last: Vec<String> = recent
                    .iter()
                    .filter(|r| r.fired_at == s.last_run_at)
                    .map(|r| match &r.error {
                        Some(e) => format!("#{}: failed: {e}", r.task),
                        None => format!("#{}: {}", r.task, r.summary),
                    })
                    .collect();
                if last.is_empty() {
                    "nothing to do".to_string()
                } else {
                    last.join("; ")
                }
            }
        };
        table.row(vec![
            schedule.name.clone(),
            every_text(schedule.every),
            status.map_or("-".into(), |s| s.last_run_at.clone()),
            did.clone(),
            status.map_or(0, |s| s.fired_total).to_string(),
        ]);
        out.push(json!({
            "name": schedule.name,
            "every": every_text(schedule.every),
            "last_run": status.map(|s| s.last_run_at.clone()),
            "last_run_did": did,
            "last_fired": status.map_or(0, |s| s.last_fired),
            "last_failed": status.map_or(0, |s| s.last_failed),
            "fired_total": status.map_or(0, |s| s.fired_total),
            "recent": recent,
        }));
    }
    if json {
        super::print_json(&out)?;
    } else if table.is_empty() {
        println!("no schedules in {}", config.rules.display());
    } else {
        print!("{}", table.render());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(
    config_path: &Path,
    all: bool,
    at: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let now: DateTime<Utc> = match at {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .with_context(|| {
                format!(
                    "--at {} is not an RFC 3339 time (e.g. 2026-11-23T12:00:00Z)",
                    crate::text::quoted(text)
                )
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let config = Arc::new(super::load_config(config_path)?);
    let rules = Arc::new(super::load_rules(&config)?);
    let store = super::open_store(&config)?;
    let mut pipeline = Pipeline::new(config, rules, store);
    let firings = if all {
        pipeline.run_schedules(now, Which::All)?
    } else {
        pipeline.run_schedules(now, Which::Due)?
    };
    let failed = firings
        .iter()
        .filter(|f| matches!(f.outcome, FiringOutcome::Failed(_)))
        .count();
    let fired = firings.len() - failed;
    if json {
        super::print_json(&json!({ "fired": fired, "failed": failed, "firings": firings }))?;
    } else {
        for f in &firings {
            println!("{}", firing_line(f));
        }
        println!("fired {fired}, failed {failed}");
    }
    Ok(ExitCode::SUCCESS)
}

fn firing_line(f: &ScheduleFiring) -> String {
    match &f.outcome {
        FiringOutcome::Failed(error) => {
            format!("{}: task #{}: failed: {error}", f.schedule, f.task)
        }
        _ => format!("{}: task #{}: {}", f.schedule, f.task, f.summary),
    }
}

/// `90s`, `5m`, `2h`, `1d`, `1h30m`: the way `every` is written.
fn every_text(every: Duration) -> String {
    let mut left = every.as_secs();
    if left == 0 {
        return format!("{}ms", every.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if left >= size {
            out.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::every_text;
    use std::time::Duration;

    #[test]
    fn durations_are_shown_as_written() {
        assert_eq!(every_text(Duration::from_secs(90)), "1m30s");
        assert_eq!(every_text(Duration::from_secs(300)), "5m");
        assert_eq!(every_text(Duration::from_secs(5400)), "1h30m");
        assert_eq!(every_text(Duration::from_secs(86_400)), "1d");
    }
}
