//! The batch: one write transaction that a writer drives message by message. The pipeline
//! begins one (per IMAP fetch, per 1,000 ingested messages), admits each message (a key
//! already applied is a duplicate), plans it against the batch (its reads see the batch's
//! earlier writes, so a reply threads onto a task created moments before), applies the plan,
//! and commits with the mailbox cursor. Schedule runs use the same handle. Each message is
//! all-or-nothing inside its batch; see [`Isolation`] for how messages are kept apart.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::actions::{Failure, MessageApply};
use super::messages::{self, RecordedOutcome};
use super::{
    timestamp, ApplyItem, ApplyOptions, ApplyResult, ConnectionDirectory, MailboxCursor,
    MessageRecord, MessageStatus, ResultStatus, Store, StoreError, TaskDirectory,
};
use crate::plan::{NoPlan, Plan};

/// A message the batch has not applied before: the only thing [`Batch::apply`] takes, so
/// that nothing is applied without the duplicate check.
#[derive(Debug)]
pub struct Admitted {
    record: MessageRecord,
}

impl Admitted {
    pub fn record(&self) -> &MessageRecord {
        &self.record
    }
}

/// What [`Batch::admit`] found.
#[derive(Debug)]
pub enum Admission {
    /// Applied before: nothing changes, this is its recorded outcome.
    Duplicate(ApplyResult),
    /// New, or failed before: to plan and apply.
    New(Admitted),
}

/// An open batch. Dropping it uncommitted rolls everything back.
pub struct Batch<'s> {
    pub(super) tx: BatchTransaction<'s>,
    path: &'s Path,
    pub(super) opts: &'s ApplyOptions,
    pub(super) now: DateTime<Utc>,
    pub(super) stamp: String,
    /// Until a message fails half-way, messages run without a savepoint and are logged here;
    /// see [`Isolation`].
    log: Option<Vec<Logged>>,
}

impl Store {
    /// Begins a batch (takes the store's write lock). All writes of a batch commit together
    /// in [`Batch::commit`].
    pub fn begin_batch<'s>(&'s mut self, opts: &'s ApplyOptions) -> Result<Batch<'s>, StoreError> {
        let now = opts.now.unwrap_or_else(Utc::now);
        let tx = BatchTransaction::begin(&self.conn).map_err(|e| self.located(e.into()))?;
        Ok(Batch {
            tx,
            path: &self.path,
            opts,
            now,
            stamp: timestamp(now),
            log: Some(Vec::new()),
        })
    }

    /// Applies messages planned beforehand in one batch, committing `cursor` with them.
    ///
    /// A key already processed (applied or ignored) is reported as Duplicate and changes
    /// nothing but its count of re-deliveries; a key recorded as failed is run again. A
    /// message whose plan cannot be applied (no task with `if_missing = "fail"`, a parent that
    /// does not exist, ...) leaves no trace but its failed record (error and original bytes),
    /// and the batch goes on. `Err` (disk full,
    /// read-only, locked) means nothing was committed.
    pub fn apply_batch(
        &mut self,
        items: Vec<ApplyItem>,
        cursor: Option<&MailboxCursor>,
        opts: &ApplyOptions,
    ) -> Result<Vec<ApplyResult>, StoreError> {
        let mut batch = self.begin_batch(opts)?;
        let mut results = Vec::with_capacity(items.len());
        for ApplyItem { record, plan } in items {
            results.push(match batch.admit(record)? {
                Admission::Duplicate(result) => result,
                Admission::New(admitted) => batch.apply(admitted, plan)?,
            });
        }
        batch.commit(cursor)?;
        Ok(results)
    }

    /// Records one message as failed (unparseable, oversized, ...) with its original bytes.
    pub fn record_failed(
        &mut self,
        record: MessageRecord,
        error: &str,
    ) -> Result<ApplyResult, StoreError> {
        let item = ApplyItem {
            record,
            plan: Err(NoPlan::Unreadable(error.to_string())),
        };
        let mut results = self.apply_batch(vec![item], None, &ApplyOptions::default())?;
        results
            .pop()
            .ok_or_else(|| StoreError::BadData("a batch of one gave no result".into()))
    }
}

impl Batch<'_> {
    /// Thread lookups that see what the batch wrote so far.
    pub fn directory(&self) -> impl TaskDirectory + '_ {
        ConnectionDirectory(&self.tx)
    }

    /// Whether `record`'s key was processed before (a duplicate, counted on its row) or is
    /// to be applied now.
    pub fn admit(&mut self, record: MessageRecord) -> Result<Admission, StoreError> {
        let previous = messages::recorded(&self.tx, &record.key).map_err(|e| self.located(e))?;
        Ok(match previous {
            Some(done) if done.status != MessageStatus::Failed => {
                messages::count_duplicate(&self.tx, &record.key, &self.stamp)
                    .map_err(|e| self.located(e))?;
                if let Some(log) = self.log.as_mut() {
                    log.push(Logged::Duplicate(record.key.clone()));
                }
                Admission::Duplicate(ApplyResult {
                    key: record.key,
                    message_id: record.message_id,
                    rule: done.rule,
                    task: done.task,
                    status: ResultStatus::Duplicate,
                    error: None,
                })
            }
            _ => Admission::New(Admitted { record }),
        })
    }

    /// Applies a message's plan, or records it as failed with why there is none. Only this
    /// message is affected when it fails; `Err` means the whole batch failed.
    pub fn apply(
        &mut self,
        admitted: Admitted,
        plan: Result<Plan, NoPlan>,
    ) -> Result<ApplyResult, StoreError> {
        self.apply_admitted(admitted.record, plan)
            .map_err(|e| e.at(self.path))
    }

    fn apply_admitted(
        &mut self,
        record: MessageRecord,
        plan: Result<Plan, NoPlan>,
    ) -> Result<ApplyResult, StoreError> {
        let at = When {
            now: self.now,
            stamp: &self.stamp,
        };
        match apply_one(&self.tx, record, plan, self.opts, at, self.log.as_mut())? {
            Step::Done(result) => Ok(result),
            Step::FailedMidway(failed) => {
                // Undo the batch so far, apply its messages again from the log (their plans
                // hold: the store is in the same state before each of them), record this one
                // as failed, and give every message after it a savepoint.
                self.tx.restart()?;
                for logged in self.log.take().unwrap_or_default() {
                    logged.apply_again(&self.tx, self.opts, at)?;
                }
                failed.record(&self.tx, at.stamp)
            }
        }
    }

    /// Commits every message of the batch, and `cursor` with them.
    pub fn commit(mut self, cursor: Option<&MailboxCursor>) -> Result<(), StoreError> {
        let path = self.path;
        let mut done = || -> Result<(), StoreError> {
            if let Some(cursor) = cursor {
                messages::write_cursor(&self.tx, cursor, &self.stamp)?;
            }
            self.tx.commit()?;
            Ok(())
        };
        done().map_err(|e| e.at(path))
    }

    fn located(&self, e: StoreError) -> StoreError {
        e.at(self.path)
    }

    /// Runs `work` in a savepoint of its own, whatever the batch's isolation: schedule
    /// firings and other writes that are not messages. `Ok(Err(_))`: the work failed on its
    /// own account and left nothing behind.
    pub(super) fn isolated<T>(
        &mut self,
        work: impl FnOnce(&Connection) -> Result<T, Failure>,
    ) -> Result<Result<T, String>, StoreError> {
        savepoint(&self.tx)?;
        match work(&self.tx) {
            Ok(value) => {
                release(&self.tx)?;
                Ok(Ok(value))
            }
            Err(failure) => {
                let error = failure.into_message()?;
                roll_back(&self.tx)?;
                Ok(Err(error))
            }
        }
    }
}

/// The batch's clock: one time for every message of it.
#[derive(Clone, Copy)]
struct When<'a> {
    now: DateTime<Utc>,
    stamp: &'a str,
}

/// The batch's transaction, begun IMMEDIATE (the write lock is taken up front instead of
/// failing half-way on an upgrade), rolled back when dropped uncommitted.
pub(super) struct BatchTransaction<'c> {
    conn: &'c Connection,
    open: bool,
    /// SQLite's count of commits by other connections, when the transaction began.
    data_version: i64,
}

impl<'c> BatchTransaction<'c> {
    fn begin(conn: &'c Connection) -> Result<Self, rusqlite::Error> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let data_version = data_version(conn)?;
        Ok(BatchTransaction {
            conn,
            open: true,
            data_version,
        })
    }

    /// Rolls back everything done so far and begins again, on the store as it was.
    fn restart(&mut self) -> Result<(), StoreError> {
        self.roll_back()?;
        self.begin_again()
    }

    fn roll_back(&mut self) -> Result<(), rusqlite::Error> {
        self.open = false;
        self.conn.prepare_cached("ROLLBACK")?.execute([])?;
        Ok(())
    }

    /// Begins the rolled-back transaction again. When another process committed in between,
    /// the batch's logged plans may no longer hold, and the batch fails as if the store had
    /// been locked (the daemon tries it again, from the start).
    fn begin_again(&mut self) -> Result<(), StoreError> {
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        self.open = true;
        if data_version(self.conn)? != self.data_version {
            return Err(StoreError::Busy {
                detail: "another process wrote to the store while a batch was being applied \
                         again after one of its messages failed"
                    .into(),
            });
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), rusqlite::Error> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

fn data_version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.prepare_cached("PRAGMA data_version")?
        .query_row([], |row| row.get(0))
}

impl std::ops::Deref for BatchTransaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for BatchTransaction<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing to do about a failed rollback: SQLite rolls back an unfinished
            // transaction itself when the connection closes or the next one begins.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// How one message's changes are kept apart from the batch's other messages.
///
/// A savepoint per message makes SQLite copy every page a message touches into a
/// sub-journal first: a quarter of the applying thread's work. Messages rarely fail half-way,
/// so a batch starts without savepoints, logging each message's plan (`Some(log)`); when one
/// does fail, the batch is rolled back, applied again from the log, and goes on with a
/// savepoint per message (`None`), so no batch is applied more than twice.
type Isolation<'l> = Option<&'l mut Vec<Logged>>;

/// A message applied without a savepoint, with what applying it again takes.
enum Logged {
    Applied {
        record: MessageRecord,
        plan: Plan,
    },
    Failed(MessageToFail),
    /// A message processed before, delivered again (its key).
    Duplicate(String),
}

impl Logged {
    fn apply_again(self, tx: &Connection, opts: &ApplyOptions, at: When) -> Result<(), StoreError> {
        match self {
            Logged::Applied { record, plan } => match apply_plan(tx, &record, &plan, opts, at) {
                Ok(_) => Ok(()),
                Err(Failure::Store(e)) => Err(e),
                // The same plan on the same store cannot fail differently the second time.
                Err(Failure::Message(error)) => Err(StoreError::BadData(format!(
                    "message {} failed when applied again: {error}",
                    record.key
                ))),
            },
            Logged::Failed(failed) => failed.record(tx, at.stamp).map(drop),
            Logged::Duplicate(key) => messages::count_duplicate(tx, &key, at.stamp),
        }
    }
}

/// A message to record as failed, with its original bytes.
struct MessageToFail {
    record: MessageRecord,
    sender: Option<String>,
    rule: Option<String>,
    error: String,
}

impl MessageToFail {
    /// Writes the failed record (with the original bytes and the error).
    fn record(&self, conn: &Connection, stamp: &str) -> Result<ApplyResult, StoreError> {
        let record = &self.record;
        let outcome = RecordedOutcome {
            sender: self.sender.as_deref().or(record.from.as_deref()),
            rule: self.rule.as_deref(),
            task: None,
            error: Some(&self.error),
        };
        messages::write(conn, record, &outcome, stamp)?;
        Ok(ApplyResult {
            key: record.key.clone(),
            message_id: record.message_id.clone(),
            rule: self.rule.clone(),
            task: None,
            status: ResultStatus::Failed,
            error: Some(self.error.clone()),
        })
    }
}

/// Runs a message's plan and writes its record as applied; returns the last task acted on.
fn apply_plan(
    tx: &Connection,
    record: &MessageRecord,
    plan: &Plan,
    opts: &ApplyOptions,
    at: When,
) -> Result<Option<i64>, Failure> {
    let task = MessageApply::new(tx, plan, record, opts, at.now, at.stamp).run()?;
    let outcome = RecordedOutcome {
        sender: sender_of(plan),
        rule: plan.rule.as_deref(),
        task,
        error: None,
    };
    messages::write(tx, record, &outcome, at.stamp)?;
    Ok(task)
}

/// The sender recorded for a message: the plan's (after forward resolution), when it has one.
fn sender_of(plan: &Plan) -> Option<&str> {
    Some(plan.sender.email.trim()).filter(|s| !s.is_empty())
}

/// What became of one message.
enum Step {
    Done(ApplyResult),
    /// It failed after some of its changes were made, with no savepoint to undo them.
    FailedMidway(Box<MessageToFail>),
}

fn apply_one(
    tx: &Connection,
    mut record: MessageRecord,
    plan: Result<Plan, NoPlan>,
    opts: &ApplyOptions,
    at: When,
    log: Isolation,
) -> Result<Step, StoreError> {
    let plan = match plan {
        Ok(plan) => plan,
        Err(error) => {
            // A rule that matched but could not plan (a required value missing, a value outside
            // its list) is the rule of the failure: `message list` and `mailrules test` name it.
            let rule = match &error {
                NoPlan::Rules(e) if !e.rule.is_empty() => Some(e.rule.clone()),
                _ => None,
            };
            let failed = MessageToFail {
                record,
                sender: None,
                rule,
                error: error.to_string(),
            };
            let result = failed.record(tx, at.stamp)?;
            if let Some(log) = log {
                log.push(Logged::Failed(failed));
            }
            return Ok(Step::Done(result));
        }
    };
    let isolated = log.is_none();
    if isolated {
        savepoint(tx)?;
    }
    match apply_plan(tx, &record, &plan, opts, at) {
        Ok(task) => {
            if isolated {
                release(tx)?;
            }
            let result = ApplyResult {
                key: record.key.clone(),
                message_id: record.message_id.clone(),
                rule: plan.rule.clone(),
                task,
                status: ResultStatus::Applied,
                error: None,
            };
            if let Some(log) = log {
                // Applied again from the log, it writes its bytes again: compressed, they
                // take a fraction of the memory (the pipeline compressed them already). Bytes
                // kept only if the message fails stay as they are: compressing each message
                // here for the rare batch applied again cost more than keeping them all.
                if !record.keep_only_if_failed {
                    record.compress();
                }
                log.push(Logged::Applied { record, plan });
            }
            Ok(Step::Done(result))
        }
        Err(failure) => {
            let error = failure.into_message()?;
            let failed = MessageToFail {
                sender: sender_of(&plan).map(str::to_string),
                rule: plan.rule,
                record,
                error,
            };
            if !isolated {
                return Ok(Step::FailedMidway(Box::new(failed)));
            }
            roll_back(tx)?;
            failed.record(tx, at.stamp).map(Step::Done)
        }
    }
}

/// Opens the message's savepoint. The statements are prepared once per connection: rusqlite's
/// `Transaction::savepoint` parses the SQL text again for every message. A savepoint left open
/// by an error return is discarded with the batch's transaction.
fn savepoint(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.prepare_cached("SAVEPOINT message")?.execute([])?;
    Ok(())
}

/// Keeps the message's changes in the batch's transaction.
fn release(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.prepare_cached("RELEASE message")?.execute([])?;
    Ok(())
}

/// Undoes the message's changes and closes its savepoint.
fn roll_back(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.prepare_cached("ROLLBACK TO message")?.execute([])?;
    release(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_begun_again_after_another_process_wrote_fails_as_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailrules.db");
        let store = Store::open(&path).unwrap();
        let other = Store::open(&path).unwrap();
        let mut tx = BatchTransaction::begin(&store.conn).unwrap();
        tx.roll_back().unwrap();
        tx.begin_again().expect("nobody wrote in between");
        tx.roll_back().unwrap();
        other
            .conn
            .execute(
                "INSERT INTO contacts (name, created_at) VALUES ('x', 'now')",
                [],
            )
            .unwrap();
        let err = tx.begin_again().unwrap_err();
        assert!(
            matches!(err.without_path(), StoreError::Busy { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("another process wrote"), "{err}");
    }
}
