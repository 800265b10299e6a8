//! Schedules in the store: the tasks a schedule may act on (with since when each has been in
//! its status and had its fields), each firing applied at most once per task per entry into a
//! state, and what every schedule did (`mailrules schedules`).
//!
//! Firings are not messages: they are recorded in `schedule_runs`, never in `messages`, so
//! they do not show in `mailrules failed` or in ingest counts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::actions::MessageApply;
use super::batch::Batch;
use super::contacts::PRIMARY_ADDRESS;
use super::history::Author;
use super::tasks::TaskState;
use super::{ApplyOptions, MessageRecord, Store, StoreError};
use crate::context::{SenderKind, ThreadMatch};
use crate::message::Address;
use crate::plan::{Plan, PlannedAction};

/// When a task entered its status, or a field got its value: the history row (0 when the
/// store has none, e.g. a field never set) and its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entered {
    pub id: i64,
    pub at: DateTime<Utc>,
}

/// A task a schedule may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleCandidate {
    pub task: i64,
    pub state: TaskState,
    pub created_at: DateTime<Utc>,
    pub status_since: Entered,
    /// Since when each field has had its value, cleared fields included. A field that was
    /// never set is absent: it has been empty since the task was created.
    pub field_since: BTreeMap<String, Entered>,
}

impl ScheduleCandidate {
    /// Since when field `name` has had its current value (empty included).
    pub fn field_entered(&self, name: &str) -> Entered {
        self.field_since.get(name).copied().unwrap_or(Entered {
            id: 0,
            at: self.created_at,
        })
    }
}

/// One firing to apply: a schedule's actions on one task, for one entry into its state.
#[derive(Debug, Clone)]
pub struct FiringRequest {
    pub task: i64,
    /// Tells the entries into the state apart (see `schedule_runs.entry`).
    pub entry: String,
    /// What the actions do, in a few words, for `mailrules schedules`.
    pub summary: String,
    /// The planned actions, or why they could not be planned.
    pub actions: Result<Vec<PlannedAction>, String>,
}

/// What became of one firing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "error", rename_all = "snake_case")]
pub enum FiringOutcome {
    Applied,
    /// Fired before for this entry: nothing done.
    AlreadyFired,
    /// Nothing applied; tried again at the schedule's next run.
    Failed(String),
}

/// One recorded firing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleRun {
    pub schedule: String,
    pub task: i64,
    pub entry: String,
    /// `applied` or `failed`.
    pub status: String,
    pub summary: String,
    pub error: Option<String>,
    pub attempts: i64,
    pub fired_at: String,
}

/// When a schedule last ran and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleStatus {
    pub schedule: String,
    /// RFC 3339.
    pub last_run_at: String,
    /// Firings applied / failed at the last run.
    pub last_fired: i64,
    pub last_failed: i64,
    /// Firings applied since the store was created.
    pub fired_total: i64,
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::BadData(format!("timestamp {}: {e}", crate::text::quoted(text))))
}

impl Store {
    /// Tasks a schedule may act on: those in `status`, or every task. Three queries
    /// whatever the number of tasks: schedules look at all of them every few minutes.
    pub fn schedule_candidates(
        &self,
        status: Option<&str>,
    ) -> Result<Vec<ScheduleCandidate>, StoreError> {
        const WANTED: &str = "SELECT id FROM tasks WHERE ?1 IS NULL OR status = ?1";
        let mut fields: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT task_id, name, value FROM task_fields WHERE task_id IN ({WANTED}) \
             ORDER BY task_id, name"
        ))?;
        let rows = stmt.query_map([status], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            let (task, name, value): (i64, String, String) = row?;
            fields.entry(task).or_default().push((name, value));
        }
        let mut since: BTreeMap<i64, BTreeMap<String, Entered>> = BTreeMap::new();
        // SQLite: with MAX(), the bare column `at` comes from the row holding the maximum.
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT task_id, name, MAX(id), at FROM task_field_history \
             WHERE task_id IN ({WANTED}) GROUP BY task_id, name"
        ))?;
        let rows = stmt.query_map([status], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        for row in rows {
            let (task, name, id, at): (i64, String, i64, String) = row?;
            let entered = Entered {
                id,
                at: parse_time(&at)?,
            };
            since.entry(task).or_default().insert(name, entered);
        }
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT t.id, t.created_at, h.id, h.at, t.title, t.status, t.assignee, \
             {PRIMARY_ADDRESS} FROM tasks t JOIN task_events h ON h.id = \
             (SELECT MAX(id) FROM task_events WHERE task_id = t.id AND kind = 'status') \
             LEFT JOIN contacts c ON c.id = t.requester_contact_id \
             WHERE ?1 IS NULL OR t.status = ?1 ORDER BY t.id"
        ))?;
        let rows = stmt.query_map([status], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                TaskState {
                    title: r.get(4)?,
                    status: r.get(5)?,
                    assignee: r.get(6)?,
                    requester: r.get(7)?,
                    fields: Vec::new(),
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (task, created_at, history, entered_at, mut state) = row?;
            state.fields = fields.remove(&task).unwrap_or_default();
            out.push(ScheduleCandidate {
                task,
                state,
                created_at: parse_time(&created_at)?,
                status_since: Entered {
                    id: history,
                    at: parse_time(&entered_at)?,
                },
                field_since: since.remove(&task).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Applies the firings of one run of `schedule` in one transaction (a savepoint each,
    /// with the triggers they fire) and records the run. An entry already applied is skipped;
    /// a failed one is tried again.
    pub fn apply_schedule_run(
        &mut self,
        schedule: &str,
        firings: Vec<FiringRequest>,
        opts: &ApplyOptions,
    ) -> Result<Vec<FiringOutcome>, StoreError> {
        let mut batch = self.begin_batch(opts)?;
        let ran_at = batch.ran_at();
        let mut outcomes = Vec::with_capacity(firings.len());
        for firing in firings {
            outcomes.push(batch.fire(schedule, firing, &ran_at)?);
        }
        batch.record_schedule_run(schedule, &outcomes, &ran_at)?;
        batch.commit(None)?;
        Ok(outcomes)
    }

    /// When each schedule that ever ran last ran, and what it did.
    pub fn schedule_statuses(&self) -> Result<Vec<ScheduleStatus>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.schedule, s.last_run_at, s.fired, s.failed, (SELECT COUNT(*) FROM \
             schedule_runs r WHERE r.schedule = s.schedule AND r.status = 'applied') \
             FROM schedule_state s ORDER BY s.schedule",
        )?;
        let rows: Vec<(String, String, i64, i64, i64)> = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows
            .into_iter()
            .map(
                |(schedule, at, last_fired, last_failed, fired_total)| ScheduleStatus {
                    schedule,
                    last_run_at: at,
                    last_fired,
                    last_failed,
                    fired_total,
                },
            )
            .collect())
    }

    /// The latest firings of `schedule`, newest first.
    pub fn schedule_runs(
        &self,
        schedule: &str,
        limit: usize,
    ) -> Result<Vec<ScheduleRun>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT schedule, task_id, entry, status, summary, error, attempts, fired_at \
             FROM schedule_runs WHERE schedule = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![schedule, limit as i64], |r| {
            Ok(ScheduleRun {
                schedule: r.get(0)?,
                task: r.get(1)?,
                entry: r.get(2)?,
                status: r.get(3)?,
                summary: r.get(4)?,
                error: r.get(5)?,
                attempts: r.get(6)?,
                fired_at: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Batch<'_> {
    /// Applies one firing in a savepoint of its own (with the triggers it fires) and records
    /// it; an entry already applied is skipped, a failed one is tried again.
    fn fire(
        &mut self,
        schedule: &str,
        firing: FiringRequest,
        ran_at: &str,
    ) -> Result<FiringOutcome, StoreError> {
        let previous: Option<String> = self
            .tx
            .prepare_cached(
                "SELECT status FROM schedule_runs WHERE schedule = ?1 AND task_id = ?2 AND entry = ?3",
            )?
            .query_row(params![schedule, firing.task, firing.entry], |r| r.get(0))
            .optional()?;
        if previous.as_deref() == Some("applied") {
            return Ok(FiringOutcome::AlreadyFired);
        }
        let outcome = match firing.actions {
            Err(error) => FiringOutcome::Failed(error),
            Ok(actions) => {
                let record = MessageRecord {
                    key: format!("schedule:{schedule}:{}:{}", firing.task, firing.entry),
                    mailbox: "schedule".into(),
                    source: format!("schedule {schedule}"),
                    ..MessageRecord::default()
                };
                let plan = Plan {
                    rule: Some(schedule.to_string()),
                    sender: Address::default(),
                    sender_kind: SenderKind::Staff,
                    thread: ThreadMatch {
                        task: Some(firing.task),
                        via: None,
                    },
                    actions,
                };
                let (opts, now, stamp) = (self.opts, self.now, self.stamp.clone());
                let ran = self.isolated(|conn| {
                    MessageApply::new(conn, &plan, &record, opts, now, &stamp)
                        .by(Author::Schedule(schedule.to_string()))
                        .run()
                })?;
                match ran {
                    Ok(_) => FiringOutcome::Applied,
                    Err(error) => FiringOutcome::Failed(error),
                }
            }
        };
        let (status, error) = match &outcome {
            FiringOutcome::Failed(e) => ("failed", Some(e.as_str())),
            _ => ("applied", None),
        };
        self.tx
            .prepare_cached(
                "INSERT INTO schedule_runs (schedule, task_id, entry, status, summary, error, \
                 fired_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (schedule, task_id, \
                 entry) DO UPDATE SET status = excluded.status, summary = excluded.summary, \
                 error = excluded.error, attempts = attempts + 1, fired_at = excluded.fired_at",
            )?
            .execute(params![
                schedule,
                firing.task,
                firing.entry,
                status,
                firing.summary,
                error,
                ran_at
            ])?;
        Ok(outcome)
    }

    /// When a schedule run is recorded as having run (its firings and the run itself, which
    /// `mailrules schedules` pairs by this time): the batch's time, but never later than the
    /// real time. A run as of a later time (`schedules run --at` in the future, to try a
    /// schedule out) recorded in the future would keep the schedule from being due again
    /// until that time had come.
    fn ran_at(&self) -> String {
        super::timestamp(self.now.min(Utc::now()))
    }

    /// Records that `schedule` ran (see [`Batch::ran_at`]), with how many firings applied and
    /// failed.
    fn record_schedule_run(
        &mut self,
        schedule: &str,
        outcomes: &[FiringOutcome],
        ran_at: &str,
    ) -> Result<(), StoreError> {
        let count = |applied: bool| {
            outcomes
                .iter()
                .filter(|o| match o {
                    FiringOutcome::Applied => applied,
                    FiringOutcome::Failed(_) => !applied,
                    FiringOutcome::AlreadyFired => false,
                })
                .count() as i64
        };
        self.tx
            .prepare_cached(
                "INSERT INTO schedule_state (schedule, last_run_at, fired, failed) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (schedule) DO UPDATE SET \
                 last_run_at = excluded.last_run_at, fired = excluded.fired, \
                 failed = excluded.failed",
            )?
            .execute(params![schedule, ran_at, count(true), count(false)])?;
        Ok(())
    }
}
