//! Schedules: which tasks have been in a schedule's state long enough, the firings on them
//! (each at most once per task per entry into the state, remembered by the store), and the
//! daemon's loop that runs the due schedules.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::plan::{ActionKind, PlannedAction};
use crate::rules::{holds, EventValues, RuleSet, Schedule};
use crate::store::{
    ApplyOptions, FiringOutcome, FiringRequest, ScheduleCandidate, Store, StoreError,
};

/// How often the daemon looks for due schedules (each still runs only every `every`); a look
/// with nothing due is one small query.
pub const SCHEDULE_TICK: Duration = Duration::from_secs(5);

/// Which schedules to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Those whose `every` has passed since they last ran (or that never ran).
    Due,
    /// All of them, now (`mailrules schedules run --now`).
    All,
}

/// One schedule acting on one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleFiring {
    pub schedule: String,
    pub task: i64,
    /// Tells the entries into the schedule's state apart.
    pub entry: String,
    /// What the actions do, e.g. `notify lead@acme.example`.
    pub summary: String,
    #[serde(flatten)]
    pub outcome: FiringOutcome,
}

/// Runs schedules on `store`: for each schedule to run, every task whose state it matches
/// gets the schedule's actions, once per entry into that state. Firings already applied are
/// not reported; failed ones are reported and tried again at the next run.
pub fn run_with(
    store: &mut Store,
    rules: &RuleSet,
    opts: &ApplyOptions,
    now: DateTime<Utc>,
    which: Which,
) -> Result<Vec<ScheduleFiring>, StoreError> {
    if rules.schedules().is_empty() {
        return Ok(Vec::new());
    }
    let last_runs = store.schedule_statuses()?;
    let due: Vec<&Schedule> = rules
        .schedules()
        .iter()
        .filter(|s| match which {
            Which::All => true,
            Which::Due => last_runs
                .iter()
                .find(|r| r.schedule == s.name)
                .and_then(|r| DateTime::parse_from_rfc3339(&r.last_run_at).ok())
                .is_none_or(|last| {
                    let every =
                        chrono::Duration::from_std(s.every).unwrap_or(chrono::Duration::MAX);
                    last.with_timezone(&Utc) + every <= now
                }),
        })
        .collect();
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let candidates = store.schedule_candidates(None)?;
    let opts = ApplyOptions {
        now: Some(now),
        ..opts.clone()
    };
    let mut out = Vec::new();
    for schedule in due {
        let requests: Vec<FiringRequest> = candidates
            .iter()
            .filter_map(|c| entry_if_matching(schedule, c, now).map(|entry| (c, entry)))
            .map(|(c, entry)| firing(rules, schedule, c, entry))
            .collect();
        let shown: Vec<(i64, String, String)> = requests
            .iter()
            .map(|r| (r.task, r.entry.clone(), r.summary.clone()))
            .collect();
        let outcomes = store.apply_schedule_run(&schedule.name, requests, &opts)?;
        for ((task, entry, summary), outcome) in shown.into_iter().zip(outcomes) {
            if outcome == FiringOutcome::AlreadyFired {
                continue;
            }
            out.push(ScheduleFiring {
                schedule: schedule.name.clone(),
                task,
                entry,
                summary,
                outcome,
            });
        }
    }
    Ok(out)
}

/// The values a schedule's `when` tests on a task: its fields and `status`.
fn task_values(c: &ScheduleCandidate) -> EventValues {
    let mut values = EventValues::default();
    values.conditions.extend(c.state.values());
    values.vars.extend(c.state.values());
    values.vars.insert("title".into(), c.state.title.clone());
    if let Some(a) = &c.state.assignee {
        values.vars.insert("assignee".into(), a.clone());
    }
    if let Some(r) = &c.state.requester {
        values.vars.insert("requester".into(), r.clone());
    }
    values.vars.remove("task");
    values
}

/// When the schedule's conditions hold for the task at `now`, the key of the task's entry
/// into that state: the status entry (when the schedule looks at the status) and the
/// value entry of every field it looks at. Leaving the state and entering it again changes
/// the key, so the schedule acts again; staying in it does not.
pub fn entry_if_matching(
    schedule: &Schedule,
    c: &ScheduleCandidate,
    now: DateTime<Utc>,
) -> Option<String> {
    if !holds(&schedule.when, &task_values(c).conditions) {
        return None;
    }
    let older_than = |since: DateTime<Utc>, age: Duration| {
        chrono::Duration::from_std(age).is_ok_and(|age| since + age <= now)
    };
    if let Some(age) = schedule.in_status_for {
        if !older_than(c.status_since.at, age) {
            return None;
        }
    }
    for (field, age) in &schedule.field_older_than {
        if !older_than(c.field_entered(field).at, *age) {
            return None;
        }
    }
    let mut names = schedule.when.names();
    names.extend(schedule.field_older_than.iter().map(|(f, _)| f.clone()));
    let mut parts: Vec<String> = Vec::new();
    if schedule.in_status_for.is_some() || names.iter().any(|n| n == "status") {
        parts.push(format!("status#{}", c.status_since.id));
    }
    names.retain(|n| n != "status");
    names.sort();
    names.dedup();
    for name in names {
        parts.push(format!("{name}#{}", c.field_entered(&name).id));
    }
    if parts.is_empty() {
        // Nothing the schedule looks at can change: once per task.
        parts.push("task".into());
    }
    Some(parts.join(";"))
}

fn firing(
    rules: &RuleSet,
    schedule: &Schedule,
    c: &ScheduleCandidate,
    entry: String,
) -> FiringRequest {
    let actions = rules
        .schedule_actions(schedule, c.task, &task_values(c))
        .map_err(|e| format!("schedule \"{}\": {}", e.rule, e.message));
    let summary = match &actions {
        Ok(actions) => summarize(actions, c.task),
        Err(_) => "(could not plan)".into(),
    };
    FiringRequest {
        task: c.task,
        entry,
        summary,
        actions,
    }
}

/// A few words per action, for `mailrules schedules`.
fn summarize(actions: &[PlannedAction], task: i64) -> String {
    let words: Vec<String> = actions
        .iter()
        .map(|a| match &a.kind {
            ActionKind::CreateTask { title, .. } => {
                format!("create task \"{}\"", title.render(Some(task)))
            }
            ActionKind::Comment { .. } => "comment".into(),
            ActionKind::Set { status, fields } => {
                let mut parts = Vec::new();
                if let Some(s) = status {
                    parts.push(format!("status \"{}\"", s.render(Some(task))));
                }
                for f in fields {
                    parts.push(format!("\"{}\"", f.name));
                }
                format!("set {}", parts.join(", "))
            }
            ActionKind::Analytics { table, .. } => format!("analytics row in \"{table}\""),
            ActionKind::Reply { .. } => "reply".into(),
            ActionKind::Notify { to, .. } => format!("notify {}", to.render(Some(task))),
            ActionKind::Webhook { to, .. } => format!("webhook \"{to}\""),
            ActionKind::Assign { assignee } => {
                format!("assign {}", assignee.as_deref().unwrap_or("nobody"))
            }
            ActionKind::Ignore => "ignore".into(),
        })
        .collect();
    words.join("; ")
}

/// The daemon's schedule runner: calls `run` with the current time at once and then every
/// `tick`, until `stop` resolves (the daemon's `shutdown.wait()`, or for a watch channel
/// `async move { let _ = rx.wait_for(|s| *s).await; }`). `run` is where the store is written;
/// in the daemon it asks the processing thread (the only store writer) to run them. Failures are logged and tried again at the next tick: a
/// schedule never stops the daemon.
pub async fn run_schedules<F, Fut>(tick: Duration, mut run: F, stop: impl Future<Output = ()>)
where
    F: FnMut(DateTime<Utc>) -> Fut,
    Fut: Future<Output = Result<Vec<ScheduleFiring>, String>>,
{
    tokio::pin!(stop);
    loop {
        let firings = tokio::select! {
            // Stopping wins over a run that has not started its transaction yet.
            biased;
            _ = &mut stop => return,
            firings = run(Utc::now()) => firings,
        };
        match firings {
            Ok(firings) => {
                for f in &firings {
                    match &f.outcome {
                        FiringOutcome::Failed(error) => warn!(
                            "schedule \"{}\" on task #{}: {error} (tried again at its next run)",
                            f.schedule, f.task
                        ),
                        _ => info!(
                            "schedule \"{}\" on task #{}: {}",
                            f.schedule, f.task, f.summary
                        ),
                    }
                }
            }
            Err(e) => warn!(
                "schedules could not run: {e}; trying again in {}",
                crate::text::duration(tick)
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = &mut stop => return,
        }
    }
}
