//! A person working a task by hand (`task set|comment|close|reply`): a small batch of its own,
//! so that a person's change takes the same write lock as the daemon's batches (never lands
//! inside one half-applied), runs the same actions and fires the same triggers as mail does,
//! and is recorded in the task's history with the person as its author.

use chrono::Utc;
use rusqlite::{params, Connection};

use super::actions::{Failure, MessageApply};
use super::batch::Batch;
use super::history::{self, Author, Event, Kind};
use super::outbox::{self, NewOutgoing};
use super::{tasks, ApplyOptions, MessageRecord, Store, StoreError};
use crate::context::{SenderKind, ThreadMatch};
use crate::message::Address;
use crate::outgoing::{new_message_id, reply_subject, thread_references};
use crate::plan::{Plan, PlannedAction};

/// A person's change: the actions (checked against the rules beforehand, see
/// `RuleSet::plan_change`) on one task.
#[derive(Debug, Clone)]
pub struct Change {
    pub task: i64,
    pub actions: Vec<PlannedAction>,
}

/// Why a person's change was not made. Nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no task #{0}")]
    UnknownTask(i64),
    /// The change cannot be made (a trigger it fired failed, the task has no requester to
    /// answer): the reason in words.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A person's answer to the task's requester (`task reply`).
#[derive(Debug, Clone)]
pub struct Answer {
    pub task: i64,
    pub text: String,
    /// Bare addresses that get a copy.
    pub cc: Vec<String>,
}

impl Store {
    /// Makes a person's change in a transaction of its own (waiting, like a batch, for the
    /// daemon's batch in progress to commit), with the triggers it fires.
    pub fn apply_change(
        &mut self,
        change: Change,
        person: &str,
        opts: &ApplyOptions,
    ) -> Result<(), ChangeError> {
        // Timed for issue 14's goal (a change commits in under 10 ms while the daemon is
        // idle): `bench/team.py` reads this line at debug level.
        let started = std::time::Instant::now();
        let task = change.task;
        let mut batch = self.begin_batch(opts)?;
        let locked = started.elapsed();
        batch.apply_change(change, person)?;
        let applied = started.elapsed();
        batch.commit(None)?;
        let committed = started.elapsed();
        tracing::debug!(
            task,
            lock_ms = locked.as_secs_f64() * 1e3,
            change_ms = (applied - locked).as_secs_f64() * 1e3,
            commit_ms = (committed - applied).as_secs_f64() * 1e3,
            total_ms = committed.as_secs_f64() * 1e3,
            "a person's change is committed"
        );
        Ok(())
    }

    /// Queues a person's answer to the task's requester; returns the outbox row's id.
    pub fn queue_answer(
        &mut self,
        answer: Answer,
        person: &str,
        opts: &ApplyOptions,
    ) -> Result<i64, ChangeError> {
        let mut batch = self.begin_batch(opts)?;
        let id = batch.queue_answer(answer, person)?;
        batch.commit(None)?;
        Ok(id)
    }
}

impl Batch<'_> {
    /// A person's change inside this batch, all or nothing.
    pub fn apply_change(&mut self, change: Change, person: &str) -> Result<(), ChangeError> {
        if !tasks::exists(&self.tx, change.task)? {
            return Err(ChangeError::UnknownTask(change.task));
        }
        let record = manual_record(person, change.task);
        let plan = Plan {
            rule: None,
            sender: Address {
                name: None,
                email: person.to_string(),
            },
            sender_kind: SenderKind::Staff,
            thread: ThreadMatch {
                task: Some(change.task),
                via: None,
            },
            actions: change.actions,
        };
        let (opts, now, stamp) = (self.opts, self.now, self.stamp.clone());
        let ran = self.isolated(|conn| {
            MessageApply::new(conn, &plan, &record, opts, now, &stamp)
                .by(Author::Person(person.to_string()))
                .run()
        })?;
        ran.map(drop).map_err(ChangeError::Refused)
    }

    /// Queues a person's answer inside this batch; the outbox row's id.
    pub fn queue_answer(&mut self, answer: Answer, person: &str) -> Result<i64, ChangeError> {
        let task = answer.task;
        let Some(state) = tasks::state(&self.tx, task)? else {
            return Err(ChangeError::UnknownTask(task));
        };
        let Some(recipient) = state.requester.clone() else {
            return Err(ChangeError::Refused(format!(
                "task #{task} has no requester to answer"
            )));
        };
        let record = manual_record(person, task);
        let (opts, stamp, now) = (self.opts, self.stamp.clone(), self.now);
        let queued = self.isolated(|conn| {
            let thread = task_message_ids(conn, task)?;
            let latest = thread.last().map(String::as_str);
            let references = thread_references(thread.iter().map(String::as_str), latest);
            let our_id = new_message_id(now, &record.key, task, &opts.outgoing_domain);
            let row = NewOutgoing {
                kind: outbox::ANSWER,
                task: Some(task),
                message_key: &record.key,
                rule: person,
                recipient: &recipient,
                cc: &answer.cc,
                subject: &reply_subject(&format!("Re: {}", state.title), task),
                body: &answer.text,
                in_reply_to: latest,
                references: &references,
                our_message_id: &our_id,
                suppressed: None,
            };
            let id = outbox::insert(conn, &row, &stamp)?;
            // The customer's answer names our Message-ID: it threads back to this task.
            tasks::link_message_id(conn, &our_id, task)?;
            let event = Event {
                task,
                by: person,
                kind: Kind::Reply,
                name: None,
                from: None,
                to: Some(&recipient),
            };
            // The answer is the task's last mail (ours): written with `updated_at`, one
            // update of the row.
            history::write_event(conn, &event, &stamp)?;
            tasks::touch_with_last_mail(conn, task, &stamp, true)?;
            Ok::<_, Failure>(id)
        })?;
        queued.map_err(ChangeError::Refused)
    }
}

/// What stands for the message behind a person's change (its key tells the change's rows
/// and Message-IDs apart from every other's).
fn manual_record(person: &str, task: i64) -> MessageRecord {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    MessageRecord {
        key: format!("manual:{person}:{task}:{nanos}:{}", std::process::id()),
        mailbox: "manual".into(),
        source: format!("by hand, {person}"),
        ..MessageRecord::default()
    }
}

/// The Message-IDs of mail about `task` (incoming and ours), oldest first.
fn task_message_ids(conn: &Connection, task: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT message_id FROM task_messages WHERE task_id = ?1 ORDER BY rowid")?;
    let ids = stmt.query_map(params![task], |r| r.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}
