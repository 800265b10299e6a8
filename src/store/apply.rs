//! Applying plans: one transaction per batch, and each message's record, effects and outgoing
//! mail commit together or not at all (see [`Isolation`] for how messages are kept apart).

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::messages::{self, Outcome};
use super::outbox::{self, NewOutgoing};
use super::tasks::{self, NewComment, NewTask};
use super::triggers::{EventKind, TaskEvent, MAX_TRIGGER_DEPTH};
use super::{
    analytics, contacts, timestamp, ApplyItem, ApplyOptions, ApplyResult, ConnectionDirectory,
    MailboxCursor, MessageRecord, MessageStatus, ResultStatus, Store, StoreError, TaskDirectory,
};
use crate::plan::{ActionKind, FieldValue, IfMissing, Plan, PlannedAction, TaskRef, Text};
use crate::text::single_line;

/// Why one message could not be applied.
pub(super) enum Failure {
    /// The message's own fault (a missing task, a bad value): it is recorded as failed and
    /// the batch goes on.
    Message(String),
    /// The store's fault: the whole batch fails.
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Store(e.into())
    }
}

impl Store {
    /// Applies a batch of messages in one transaction, one savepoint per message.
    ///
    /// A key already applied is reported as Duplicate and changes nothing; a key recorded as
    /// failed is run again. A message whose plan cannot be applied (no task with
    /// `if_missing = "fail"`, a parent that does not exist, ...) leaves no trace but its
    /// failed record (error and raw bytes), and the batch goes on. `cursor` is written in the
    /// same transaction. `Err` (disk full, read-only, locked) means nothing was committed.
    pub fn apply_batch(
        &mut self,
        items: Vec<ApplyItem>,
        cursor: Option<&MailboxCursor>,
        opts: &ApplyOptions,
    ) -> Result<Vec<ApplyResult>, StoreError> {
        let (records, mut plans): (Vec<MessageRecord>, Vec<Option<Result<Plan, String>>>) =
            items.into_iter().map(|i| (i.record, Some(i.plan))).unzip();
        self.apply_batch_with(
            records,
            |index, _| {
                Ok(plans[index]
                    .take()
                    .unwrap_or_else(|| Err("planned twice".into())))
            },
            cursor,
            opts,
        )
    }

    /// Like [`Store::apply_batch`], but each message is planned inside the transaction, just
    /// before it is applied: `plan_for(index, directory)` sees (through `directory`) what the
    /// batch's earlier messages wrote, so a reply threads onto a task created moments before.
    /// It is not called for duplicates. An `Err` from it fails the whole batch.
    ///
    /// `records` may be produced while the batch is applied (parsed on another thread): each
    /// is taken just before it is applied.
    pub fn apply_batch_with<F>(
        &mut self,
        records: impl IntoIterator<Item = MessageRecord>,
        plan_for: F,
        cursor: Option<&MailboxCursor>,
        opts: &ApplyOptions,
    ) -> Result<Vec<ApplyResult>, StoreError>
    where
        F: FnMut(usize, &dyn TaskDirectory) -> Result<Result<Plan, String>, StoreError>,
    {
        let now = opts.now.unwrap_or_else(Utc::now);
        apply_all(&mut self.conn, records, plan_for, cursor, opts, now)
            .map_err(|e| e.at(&self.path))
    }

    /// Records one message as failed (unparseable, oversized, ...) with its raw bytes.
    pub fn record_failed(
        &mut self,
        record: MessageRecord,
        error: &str,
    ) -> Result<ApplyResult, StoreError> {
        let item = ApplyItem {
            record,
            plan: Err(error.to_string()),
        };
        let mut results = self.apply_batch(vec![item], None, &ApplyOptions::default())?;
        results
            .pop()
            .ok_or_else(|| StoreError::BadData("a batch of one gave no result".into()))
    }
}

fn apply_all<F>(
    conn: &mut Connection,
    records: impl IntoIterator<Item = MessageRecord>,
    mut plan_for: F,
    cursor: Option<&MailboxCursor>,
    opts: &ApplyOptions,
    now: DateTime<Utc>,
) -> Result<Vec<ApplyResult>, StoreError>
where
    F: FnMut(usize, &dyn TaskDirectory) -> Result<Result<Plan, String>, StoreError>,
{
    let stamp = timestamp(now);
    let at = When { now, stamp: &stamp };
    let mut tx = BatchTransaction::begin(conn)?;
    let records = records.into_iter();
    let mut results = Vec::with_capacity(records.size_hint().0);
    // Until a message fails half-way, messages run without a savepoint of their own and
    // what they did is logged; see [`Isolation`].
    let mut log: Option<Vec<Logged>> = Some(Vec::new());
    for (index, record) in records.enumerate() {
        let plan_this = |tx: &Connection| plan_for(index, &ConnectionDirectory(tx));
        match apply_one(&tx, record, plan_this, opts, at, log.as_mut())? {
            Step::Done(result) => results.push(result),
            Step::FailedMidway(failed) => {
                // Undo the batch so far, apply its messages again from the log (their plans
                // hold: the store is in the same state before each of them), record this one
                // as failed, and give every message after it a savepoint.
                tx.restart()?;
                for logged in log.take().unwrap_or_default() {
                    logged.apply_again(&tx, opts, at)?;
                }
                results.push(failed.record(&tx, &stamp)?);
            }
        }
    }
    if let Some(cursor) = cursor {
        messages::write_cursor(&tx, cursor, &stamp)?;
    }
    tx.commit()?;
    Ok(results)
}

/// The batch's clock: one time for every message of it.
#[derive(Clone, Copy)]
struct When<'a> {
    now: DateTime<Utc>,
    stamp: &'a str,
}

/// The batch's transaction, begun IMMEDIATE (the write lock is taken up front instead of
/// failing half-way on an upgrade), rolled back when dropped uncommitted.
struct BatchTransaction<'c> {
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
                path: String::new(),
                detail: "another process wrote to the store while a batch was being applied \
                         again after one of its messages failed"
                    .into(),
            });
        }
        Ok(())
    }

    fn commit(mut self) -> Result<(), rusqlite::Error> {
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
    Applied { record: MessageRecord, plan: Plan },
    Failed(FailedMessage),
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
        }
    }
}

/// A message to record as failed, with its raw bytes.
struct FailedMessage {
    record: MessageRecord,
    sender: Option<String>,
    rule: Option<String>,
    error: String,
}

impl FailedMessage {
    /// Writes the failed record (with the raw bytes and the error).
    fn record(&self, conn: &Connection, stamp: &str) -> Result<ApplyResult, StoreError> {
        let record = &self.record;
        let outcome = Outcome {
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
    let outcome = Outcome {
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
    FailedMidway(Box<FailedMessage>),
}

fn apply_one(
    tx: &Connection,
    mut record: MessageRecord,
    plan_for: impl FnOnce(&Connection) -> Result<Result<Plan, String>, StoreError>,
    opts: &ApplyOptions,
    at: When,
    log: Isolation,
) -> Result<Step, StoreError> {
    let previous = messages::recorded(tx, &record.key)?;
    if let Some(done) = previous.as_ref() {
        if done.status == MessageStatus::Applied {
            return Ok(Step::Done(ApplyResult {
                key: record.key,
                message_id: record.message_id,
                rule: done.rule.clone(),
                task: done.task,
                status: ResultStatus::Duplicate,
                error: None,
            }));
        }
    }
    let plan = match plan_for(tx)? {
        Ok(plan) => plan,
        Err(error) => {
            let failed = FailedMessage {
                record,
                sender: None,
                rule: None,
                error,
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
                // Only a failed message keeps its raw bytes.
                record.raw = Vec::new();
                log.push(Logged::Applied { record, plan });
            }
            Ok(Step::Done(result))
        }
        Err(failure) => {
            let error = match failure {
                Failure::Message(error) => error,
                Failure::Store(e) if e.is_environmental() => return Err(e),
                // Anything else SQLite refused (a constraint, a type) is about this message's
                // data: record it, do not stop the mailbox.
                Failure::Store(e) => e.to_string(),
            };
            let failed = FailedMessage {
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

/// The state of one message while its actions run.
pub(super) struct MessageApply<'a> {
    conn: &'a Connection,
    plan: &'a Plan,
    record: &'a MessageRecord,
    opts: &'a ApplyOptions,
    now: DateTime<Utc>,
    stamp: &'a str,
    sender_contact: Option<i64>,
    /// The task the actions are about: the thread's task, or the event's task in a trigger.
    base: Option<i64>,
    /// The task created last by this message (or trigger), or, when the message threads to
    /// no task, the one its last action named: `{task}` for the actions after it.
    created: Option<i64>,
    /// Tasks the message's own actions acted on, in order, without repeats.
    touched: Vec<i64>,
    /// 0 for the message's own actions, n inside a trigger fired n levels deep.
    depth: u32,
    /// The triggers running now, outermost first, for the error when they loop.
    trail: Vec<String>,
}

impl<'a> MessageApply<'a> {
    pub(super) fn new(
        conn: &'a Connection,
        plan: &'a Plan,
        record: &'a MessageRecord,
        opts: &'a ApplyOptions,
        now: DateTime<Utc>,
        stamp: &'a str,
    ) -> Self {
        MessageApply {
            conn,
            plan,
            record,
            opts,
            now,
            stamp,
            sender_contact: None,
            base: plan.thread.task,
            created: None,
            touched: Vec::new(),
            depth: 0,
            trail: Vec::new(),
        }
    }

    /// Runs every action; returns the last task acted on.
    pub(super) fn run(mut self) -> Result<Option<i64>, Failure> {
        let sender = &self.plan.sender;
        self.sender_contact =
            contacts::contact_for(self.conn, &sender.email, sender.name.as_deref(), self.stamp)?;
        for action in &self.plan.actions {
            self.action(action)?;
        }
        if let Some(id) = self.record.message_id.as_deref() {
            for task in &self.touched {
                tasks::link_message_id(self.conn, id, *task)?;
            }
        }
        Ok(self.touched.last().copied())
    }

    fn touch(&mut self, task: i64) {
        if self.depth > 0 {
            return;
        }
        self.touched.retain(|t| *t != task);
        self.touched.push(task);
    }

    /// Runs the triggers that fire on a change, inside the same savepoint. `row`: the values
    /// of an analytics row; `old`: the value before a status or field change.
    fn emit(
        &mut self,
        kind: EventKind,
        task: i64,
        name: Option<&str>,
        row: Option<&[(String, String)]>,
        old: Option<String>,
    ) -> Result<(), Failure> {
        let Some(triggers) = self.opts.triggers.clone() else {
            return Ok(());
        };
        if !triggers.wants(kind) {
            return Ok(());
        }
        let Some(state) = tasks::state(self.conn, task)? else {
            return Ok(());
        };
        let values = match row {
            Some(row) => row.to_vec(),
            None => state.values(),
        };
        let event = TaskEvent {
            kind,
            task,
            name: name.map(str::to_string),
            values,
            old,
            state,
            depth: self.depth,
        };
        let actions = triggers.actions_for(&event).map_err(Failure::Message)?;
        if actions.is_empty() {
            return Ok(());
        }
        if self.depth >= MAX_TRIGGER_DEPTH {
            return Err(Failure::Message(loop_error(
                &self.trail,
                &actions[0].rule,
                kind,
                task,
            )));
        }
        let outer = (self.base, self.created, self.depth);
        self.base = Some(task);
        self.created = None;
        self.depth += 1;
        let result = actions.iter().try_for_each(|a| {
            self.trail.push(a.rule.clone());
            let done = self.action(a);
            self.trail.pop();
            done
        });
        (self.base, self.created, self.depth) = outer;
        result
    }

    fn action(&mut self, action: &PlannedAction) -> Result<(), Failure> {
        let task = match &action.kind {
            ActionKind::Ignore => return Ok(()),
            ActionKind::CreateTask {
                title,
                description,
                status,
                fields,
                assignee,
                parent,
            } => {
                let task = self.create_task(
                    action,
                    title,
                    description,
                    status.as_ref(),
                    assignee.as_ref(),
                    parent.as_ref(),
                    fields,
                )?;
                self.emit(EventKind::TaskCreated, task, None, None, None)?;
                task
            }
            _ => match self.resolve(action)? {
                Some(task) => task,
                None => return Ok(()),
            },
        };
        match &action.kind {
            ActionKind::Comment { text, auto } => {
                self.comment(task, text, *auto)?;
                self.emit(EventKind::CommentAdded, task, None, None, None)?;
            }
            ActionKind::Set { status, fields } => {
                if let Some(status) = render_nonempty(status.as_ref(), Some(task)) {
                    if let Some(old) = tasks::set_status(self.conn, task, &status, self.stamp)? {
                        self.emit(EventKind::StatusChanged, task, None, None, Some(old))?;
                    }
                }
                for field in fields {
                    let value = field.value.render(Some(task));
                    let changed =
                        tasks::set_field(self.conn, task, &field.name, &value, self.stamp)?;
                    if let Some(old) = changed {
                        self.emit(
                            EventKind::FieldChanged,
                            task,
                            Some(&field.name),
                            None,
                            Some(old),
                        )?;
                    }
                }
            }
            ActionKind::Analytics { table, values } => {
                let values: Vec<(String, String)> = values
                    .iter()
                    .map(|v| (v.name.clone(), v.value.render(Some(task))))
                    .collect();
                analytics::insert_row(
                    self.conn,
                    table,
                    Some(task),
                    &values,
                    &self.record.key,
                    self.stamp,
                )?;
                self.emit(EventKind::Analytics, task, Some(table), Some(&values), None)?;
            }
            ActionKind::Reply {
                subject,
                text,
                suppressed,
            } => self.reply(action, task, subject, text, suppressed.as_deref())?,
            ActionKind::Notify { to, subject, text } => {
                self.notify(action, task, to, subject, text)?
            }
            ActionKind::CreateTask { .. } | ActionKind::Ignore => {}
        }
        self.touch(task);
        Ok(())
    }

    /// The task an action acts on, applying `if_missing` when there is none; `None` = skip.
    fn resolve(&mut self, action: &PlannedAction) -> Result<Option<i64>, Failure> {
        let found = match &action.task {
            TaskRef::Current => match (self.created, self.base) {
                (Some(created), _) => Some(created),
                (None, Some(thread)) if tasks::exists(self.conn, thread)? => Some(thread),
                _ => None,
            },
            TaskRef::Number(n) => tasks::exists(self.conn, *n)?.then_some(*n),
            TaskRef::Field { field, value } => tasks::find_by_field(self.conn, field, value)?,
        };
        if let Some(task) = found {
            // A message that threads nowhere keeps acting on the task its previous action
            // named, so `task = { field = … }` need not be repeated on every action.
            if self.base.is_none() && !matches!(action.task, TaskRef::Current) {
                self.created = Some(task);
            }
            return Ok(found);
        }
        match action.if_missing {
            IfMissing::Skip => Ok(None),
            IfMissing::Fail => Err(Failure::Message(format!(
                "rule {:?}: {} (if_missing = \"fail\")",
                action.rule,
                missing(&action.task)
            ))),
            IfMissing::Create => {
                let subject = self.record.subject.as_str();
                let task = self.insert_task(subject, "", tasks::DEFAULT_STATUS, None, None)?;
                if let TaskRef::Field { field, value } = &action.task {
                    tasks::set_field(self.conn, task, field, value, self.stamp)?;
                }
                self.created = Some(task);
                self.emit(EventKind::TaskCreated, task, None, None, None)?;
                Ok(Some(task))
            }
        }
    }

    fn insert_task(
        &mut self,
        title: &str,
        description: &str,
        status: &str,
        assignee: Option<&str>,
        parent: Option<i64>,
    ) -> Result<i64, Failure> {
        let task = NewTask {
            title,
            description,
            status,
            requester: self.sender_contact,
            assignee,
            parent,
        };
        Ok(tasks::insert(self.conn, &task, self.stamp)?)
    }

    /// `{task}` in a create_task is the task the message (or trigger) is about, so that a
    /// subtask can name its parent; only when there is none is it the new task's own number.
    #[allow(clippy::too_many_arguments)]
    fn create_task(
        &mut self,
        action: &PlannedAction,
        title: &Text,
        description: &Text,
        status: Option<&Text>,
        assignee: Option<&Text>,
        parent: Option<&Text>,
        fields: &[FieldValue],
    ) -> Result<i64, Failure> {
        let current = self.created.or(self.base);
        let render = |text: Option<&Text>| render_nonempty(text, current);
        let parent = match render(parent) {
            None => None,
            Some(text) => {
                let number = text.trim_start_matches('#').parse::<i64>().map_err(|_| {
                    Failure::Message(format!(
                        "rule {:?}: parent {text:?} is not a task number",
                        action.rule
                    ))
                })?;
                if !tasks::exists(self.conn, number)? {
                    return Err(Failure::Message(format!(
                        "rule {:?}: parent task #{number} does not exist",
                        action.rule
                    )));
                }
                Some(number)
            }
        };
        let status = render(status).unwrap_or_else(|| tasks::DEFAULT_STATUS.into());
        let assignee = render(assignee);
        let task = self.insert_task(
            &title.render(current),
            &description.render(current),
            &status,
            assignee.as_deref(),
            parent,
        )?;
        let own = current.unwrap_or(task);
        if current.is_none() && (title.needs_task() || description.needs_task()) {
            tasks::retitle(
                self.conn,
                task,
                &title.render(Some(own)),
                &description.render(Some(own)),
            )?;
        }
        for field in fields {
            let value = field.value.render(Some(own));
            tasks::set_field(self.conn, task, &field.name, &value, self.stamp)?;
        }
        self.created = Some(task);
        Ok(task)
    }

    fn comment(&mut self, task: i64, text: &Text, auto: bool) -> Result<(), Failure> {
        let attachments = serde_json::to_string(&self.record.attachments)
            .map_err(|e| Failure::Message(format!("cannot record the attachments: {e}")))?;
        let sender = &self.plan.sender;
        // A trigger's comment is mailrules' own, not the words of the message's sender.
        let by_sender = self.depth == 0;
        let comment = NewComment {
            task,
            author: Some(sender.email.trim()).filter(|s| by_sender && !s.is_empty()),
            author_name: sender.name.as_deref().filter(|_| by_sender),
            text: &text.render(Some(task)),
            auto,
            attachments: &attachments,
            message_key: &self.record.key,
        };
        Ok(tasks::add_comment(self.conn, &comment, self.stamp)?)
    }

    fn reply(
        &mut self,
        action: &PlannedAction,
        task: i64,
        subject: &Text,
        text: &Text,
        suppressed: Option<&str>,
    ) -> Result<(), Failure> {
        let sender = self.plan.sender.email.trim();
        let recipient = bare_address(sender).unwrap_or_default();
        let mut reason = suppressed.map(str::to_string);
        if reason.is_none() && recipient.is_empty() {
            reason = Some(format!("no address to reply to (sender {sender:?})"));
        }
        if reason.is_none() && self.is_ours(&recipient) {
            reason = Some(format!("{recipient} is our own address"));
        }
        if reason.is_none() {
            reason = outbox::reply_limit_reason(
                self.conn,
                &recipient,
                task,
                self.now,
                &self.opts.limits,
            )?;
        }
        // Templates may carry line breaks from the message; a header must not.
        let mut subject = single_line(&subject.render(Some(task)));
        let tag = format!("[#{task}]");
        if !subject.contains(&tag) {
            subject = format!("{} {tag}", subject.trim_end());
        }
        let in_reply_to = self
            .record
            .message_id
            .as_deref()
            .map(super::bare_message_id);
        let mut references: Vec<String> = Vec::new();
        for id in self
            .record
            .references
            .iter()
            .map(String::as_str)
            .chain(in_reply_to)
        {
            let id = super::bare_message_id(id);
            if !id.is_empty() && !references.iter().any(|r| r == id) {
                references.push(id.to_string());
            }
        }
        let our_id = self.new_message_id(task);
        let row = NewOutgoing {
            kind: "reply",
            task: Some(task),
            message_key: &self.record.key,
            rule: &action.rule,
            recipient: &recipient,
            subject: &subject,
            body: &text.render(Some(task)),
            in_reply_to,
            references: &references,
            our_message_id: &our_id,
            suppressed: reason.as_deref(),
        };
        outbox::insert(self.conn, &row, self.stamp)?;
        if reason.is_none() {
            tasks::link_message_id(self.conn, &our_id, task)?;
        }
        Ok(())
    }

    fn notify(
        &mut self,
        action: &PlannedAction,
        task: i64,
        to: &Text,
        subject: &Text,
        text: &Text,
    ) -> Result<(), Failure> {
        let to = to.render(Some(task));
        let recipients: Vec<&str> = to
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if recipients.is_empty() {
            return Err(Failure::Message(format!(
                "rule {:?}: notify has no recipient (\"to\" is empty)",
                action.rule
            )));
        }
        let subject = single_line(&subject.render(Some(task)));
        let body = text.render(Some(task));
        for recipient in recipients {
            let address = bare_address(recipient).ok_or_else(|| {
                Failure::Message(format!(
                    "rule {:?}: notify: {recipient:?} is not an email address",
                    action.rule
                ))
            })?;
            let our_id = self.new_message_id(task);
            let row = NewOutgoing {
                kind: "notify",
                task: Some(task),
                message_key: &self.record.key,
                rule: &action.rule,
                recipient: &address,
                subject: &subject,
                body: &body,
                in_reply_to: None,
                references: &[],
                our_message_id: &our_id,
                suppressed: None,
            };
            outbox::insert(self.conn, &row, self.stamp)?;
            tasks::link_message_id(self.conn, &our_id, task)?;
        }
        Ok(())
    }

    fn is_ours(&self, address: &str) -> bool {
        self.opts
            .reply_from
            .iter()
            .any(|ours| ours.trim().eq_ignore_ascii_case(address))
    }

    /// `<hex.N@outgoing_domain>` without the brackets (see `outbox::new_message_id`).
    fn new_message_id(&self, task: i64) -> String {
        outbox::new_message_id(self.now, &self.record.key, task, &self.opts.outgoing_domain)
    }
}

/// The error when triggers keep firing each other: the chain of triggers, shortened to the
/// part that repeats when it repeats (`"ping" → "pong" → "ping"`).
fn loop_error(trail: &[String], next: &str, kind: EventKind, task: i64) -> String {
    let mut chain: Vec<&str> = trail.iter().map(String::as_str).collect();
    chain.push(next);
    // The shortest period p with chain[i] == chain[i + p] over the whole chain.
    let period = (1..chain.len()).find(|&p| (0..chain.len() - p).all(|i| chain[i] == chain[i + p]));
    let start = period.map_or(0, |p| chain.len() - p - 1);
    let shown: Vec<String> = chain[start..]
        .iter()
        .map(|name| format!("{name:?}"))
        .collect();
    let what = match period {
        Some(_) => "trigger loop",
        None => "triggers nested too deep",
    };
    format!(
        "{what}: {} fire each other more than {MAX_TRIGGER_DEPTH} levels deep ({} on task \
         #{task}); nothing of this message was applied",
        shown.join(" → "),
        kind.as_str()
    )
}

/// Rendered text, or None when there is no text or it renders empty.
fn render_nonempty(text: Option<&Text>, task: Option<i64>) -> Option<String> {
    text.map(|t| t.render(task).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `Name <a@b>` or `a@b` → `a@b` (lower-case); None when it is not an address.
fn bare_address(text: &str) -> Option<String> {
    let inner = match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close => &text[open + 1..close],
        _ => text,
    };
    let address = inner.trim();
    let (local, domain) = address.rsplit_once('@')?;
    let valid = !local.is_empty()
        && !domain.is_empty()
        && !address.chars().any(|c| c.is_whitespace() || c.is_control());
    valid.then(|| address.to_lowercase())
}

/// What could not be found, for the failure message.
fn missing(task: &TaskRef) -> String {
    match task {
        TaskRef::Current => {
            "no task for this message (it is not a reply to a known task and no task was \
             created before this action)"
                .into()
        }
        TaskRef::Number(n) => format!("no task #{n}"),
        TaskRef::Field { field, value } => format!("no task whose field {field:?} is {value:?}"),
    }
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
        assert!(matches!(err, StoreError::Busy { .. }), "{err}");
        assert!(err.to_string().contains("another process wrote"), "{err}");
    }
}
