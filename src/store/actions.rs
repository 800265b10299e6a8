//! Running a plan's actions inside a batch: tasks, fields, comments, analytics rows and
//! queued mail, and the triggers each change fires. Used for every message and every
//! schedule firing; the batch (`batch.rs`) decides what is kept when this fails.

use std::cell::{Cell, RefCell};

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::history::{Author, Kind};
use super::outbox::{self, NewOutgoing};
use super::tasks::{self, NewComment, NewTask};
use super::triggers::{loop_error, EventKind, TaskEvent, MAX_TRIGGER_DEPTH};
use super::{analytics, contacts, ApplyOptions, MessageRecord, StoreError};
use crate::outgoing::thread_references;
use crate::outgoing::{bare_address, bare_message_id, new_message_id, reply_subject};
use crate::plan::{ActionKind, FieldValue, IfMissing, Plan, PlannedAction, TaskRef, Text};
use crate::text::{quoted, single_line};

mod recording;

/// Why a plan's actions could not run.
pub(super) enum Failure {
    /// The message's own fault (a missing task, a bad value): it is recorded as failed and
    /// the batch goes on.
    Message(String),
    /// The store's fault: the whole batch fails.
    Store(StoreError),
}

impl Failure {
    /// The text a failed message is recorded with, or the store error that fails the batch.
    /// Anything SQLite refused other than the environment (a constraint, a type) is about
    /// this message's data: it is recorded, the mailbox does not stop.
    pub(super) fn into_message(self) -> Result<String, StoreError> {
        match self {
            Failure::Message(error) => Ok(error),
            Failure::Store(e) if e.is_environmental() => Err(e),
            Failure::Store(e) => Ok(e.to_string()),
        }
    }
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

/// The state of one message while its actions run.
pub(super) struct MessageApply<'a> {
    pub(super) conn: &'a Connection,
    plan: &'a Plan,
    pub(super) record: &'a MessageRecord,
    opts: &'a ApplyOptions,
    now: DateTime<Utc>,
    pub(super) stamp: &'a str,
    sender_contact: Option<i64>,
    /// The task the actions are about: the thread's task, or the event's task in a trigger.
    pub(super) base: Option<i64>,
    /// The task created last by this message (or trigger), or, when the message threads to
    /// no task, the one its last action named: `{task}` for the actions after it.
    pub(super) created: Option<i64>,
    /// Tasks the message's own actions acted on, in order, without repeats.
    touched: Vec<i64>,
    /// 0 for the message's own actions, n inside a trigger fired n levels deep.
    depth: u32,
    /// The triggers running now, outermost first, for the error when they loop.
    trail: Vec<String>,
    /// Who the changes are by, outside triggers (inside one: the trigger).
    author: Author,
    /// Tasks whose history already tells that this message came in.
    messaged: Vec<i64>,
    /// Tasks this run inserted whose row still holds the last mail its insert wrote (the
    /// customer's, at this time): recording that mail again writes nothing.
    inserted: RefCell<Vec<i64>>,
    /// A task's last mail (task, ours) recorded in its history but not yet on its row: it is
    /// written with the `updated_at` that the message's comment or field change writes right
    /// after (one row update, not two), or alone at the end of the run.
    last_mail: Cell<Option<(i64, bool)>>,
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
            author: Author::Rule(plan.rule.clone().unwrap_or_else(|| "(unmatched)".into())),
            messaged: Vec::new(),
            inserted: RefCell::new(Vec::new()),
            last_mail: Cell::new(None),
        }
    }

    /// The same run credited to `author` (a schedule, a person) instead of the plan's rule.
    pub(super) fn by(mut self, author: Author) -> Self {
        self.author = author;
        self
    }

    /// Runs every action; returns the last task acted on.
    pub(super) fn run(mut self) -> Result<Option<i64>, Failure> {
        let sender = &self.plan.sender;
        // A person working a task is staff, not a contact who could become a requester.
        if !matches!(self.author, Author::Person(_)) {
            self.sender_contact = contacts::contact_for(
                self.conn,
                &sender.email,
                sender.name.as_deref(),
                self.stamp,
            )?;
        }
        for action in &self.plan.actions {
            self.action(action)?;
        }
        if let Some(id) = self.record.message_id.as_deref() {
            for task in &self.touched {
                tasks::link_message_id(self.conn, id, *task)?;
            }
        }
        self.flush_last_mail()?;
        Ok(self.touched.last().copied())
    }

    pub(super) fn touch(&mut self, task: i64) {
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
            ActionKind::Webhook { to, body } => return self.webhook(action, to, body),
            _ => match self.resolve(action)? {
                Some(task) => {
                    self.note_message(task)?;
                    task
                }
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
                    let status = self.declared_status(action, status)?;
                    if let Some(old) = tasks::set_status(self.conn, task, &status, self.stamp)? {
                        self.record(task, Kind::Status, None, Some(&old), Some(&status))?;
                        self.emit(EventKind::StatusChanged, task, None, None, Some(old))?;
                    }
                }
                for field in fields {
                    let value = field.value.render(Some(task));
                    let changed = self.set_field(task, &field.name, &value)?;
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
                // Rows made by people, triggers and schedules: the change's time.
                let by_message = self.depth == 0 && matches!(self.author, Author::Rule(_));
                let date = self.record.date.filter(|_| by_message);
                let at = analytics::row_time(date, self.now, self.stamp);
                analytics::insert_row(
                    self.conn,
                    table,
                    Some(task),
                    &values,
                    &self.record.key,
                    &at,
                )?;
                let row: serde_json::Map<String, serde_json::Value> = values
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect();
                let row = serde_json::Value::Object(row).to_string();
                self.record(task, Kind::Analytics, Some(table), None, Some(&row))?;
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
            ActionKind::Assign { assignee } => {
                let changed =
                    tasks::set_assignee(self.conn, task, assignee.as_deref(), self.stamp)?;
                if let Some(old) = changed {
                    self.record(
                        task,
                        Kind::Assignee,
                        None,
                        old.as_deref(),
                        assignee.as_deref(),
                    )?;
                }
            }
            ActionKind::CreateTask { .. } | ActionKind::Ignore | ActionKind::Webhook { .. } => {}
        }
        self.touch(task);
        Ok(())
    }

    /// The task an action acts on, applying `if_missing` when there is none; `None` = skip.
    pub(super) fn resolve(&mut self, action: &PlannedAction) -> Result<Option<i64>, Failure> {
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
                "rule {}: {} (if_missing = \"fail\")",
                quoted(&action.rule),
                missing(&action.task)
            ))),
            IfMissing::Create => {
                let subject = self.record.subject.as_str();
                let status = self.opts.initial_status();
                let task = self.insert_task(subject, "", &status, None, None)?;
                self.note_created(task, subject, &status, None)?;
                if let TaskRef::Field { field, value } = &action.task {
                    self.set_field(task, field, value)?;
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
        let id = tasks::insert(self.conn, &task, self.stamp)?;
        self.inserted.borrow_mut().push(id);
        Ok(id)
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
                        "rule {}: parent {} is not a task number",
                        quoted(&action.rule),
                        quoted(&text)
                    ))
                })?;
                if !tasks::exists(self.conn, number)? {
                    return Err(Failure::Message(format!(
                        "rule {}: parent task #{number} does not exist",
                        quoted(&action.rule)
                    )));
                }
                Some(number)
            }
        };
        let status = match render(status) {
            Some(status) => self.declared_status(action, status)?,
            None => self.opts.initial_status(),
        };
        let assignee = render(assignee);
        let task = self.insert_task(
            &title.render(current),
            &description.render(current),
            &status,
            assignee.as_deref(),
            parent,
        )?;
        let own = current.unwrap_or(task);
        let mut shown_title = title.render(current);
        if current.is_none() && (title.needs_task() || description.needs_task()) {
            shown_title = title.render(Some(own));
            tasks::retitle(
                self.conn,
                task,
                &shown_title,
                &description.render(Some(own)),
            )?;
        }
        self.note_created(task, &shown_title, &status, assignee.as_deref())?;
        for field in fields {
            let value = field.value.render(Some(own));
            self.set_field(task, &field.name, &value)?;
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
        tasks::add_comment(self.conn, &comment, self.stamp)?;
        self.touch_row(task)?;
        Ok(self.record(task, Kind::Comment, None, None, Some(comment.text))?)
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
            reason = Some(format!(
                "no address to reply to (sender {})",
                quoted(sender)
            ));
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
        let subject = reply_subject(&subject.render(Some(task)), task);
        let in_reply_to = self.record.message_id.as_deref().map(bare_message_id);
        let thread = self.record.references.iter().map(String::as_str);
        let references = thread_references(thread, in_reply_to);
        let our_id = self.new_message_id(task);
        let row = NewOutgoing {
            kind: "reply",
            task: Some(task),
            message_key: &self.record.key,
            rule: &action.rule,
            recipient: &recipient,
            cc: &[],
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
            self.record(task, Kind::Reply, None, None, Some(&recipient))?;
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
                "rule {}: notify has no recipient (\"to\" is empty)",
                quoted(&action.rule)
            )));
        }
        let subject = single_line(&subject.render(Some(task)));
        let body = text.render(Some(task));
        for recipient in recipients {
            let address = bare_address(recipient).ok_or_else(|| {
                Failure::Message(format!(
                    "rule {}: notify: {} is not an email address",
                    quoted(&action.rule),
                    quoted(recipient)
                ))
            })?;
            let our_id = self.new_message_id(task);
            let row = NewOutgoing {
                kind: "notify",
                task: Some(task),
                message_key: &self.record.key,
                rule: &action.rule,
                recipient: &address,
                cc: &[],
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

    /// `status` in its declared spelling; a status that is not declared fails the message
    /// (only a status made of variables can get here: literal ones are checked on loading).
    fn declared_status(&self, action: &PlannedAction, status: String) -> Result<String, Failure> {
        let declared = &self.opts.statuses;
        if declared.is_empty() {
            return Ok(status);
        }
        // Declared statuses differ in more than case (the rules' loader refuses two that do
        // not), so a status written as declared is that one: found without lower-casing
        // every declared name for every status change.
        if declared.contains(&status) {
            return Ok(status);
        }
        let wanted = status.to_lowercase();
        match declared.iter().find(|s| s.to_lowercase() == wanted) {
            Some(name) => Ok(name.clone()),
            None => Err(Failure::Message(format!(
                "rule \"{}\": unknown status \"{status}\"; the declared statuses are {}",
                action.rule,
                declared
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn is_ours(&self, address: &str) -> bool {
        self.opts
            .reply_from
            .iter()
            .any(|ours| ours.trim().eq_ignore_ascii_case(address))
    }

    /// A new Message-ID for mail this message sends about `task`.
    fn new_message_id(&self, task: i64) -> String {
        new_message_id(self.now, &self.record.key, task, &self.opts.outgoing_domain)
    }
}

/// Rendered text, or None when there is no text or it renders empty.
fn render_nonempty(text: Option<&Text>, task: Option<i64>) -> Option<String> {
    text.map(|t| t.render(task).trim().to_string())
        .filter(|s| !s.is_empty())
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
        TaskRef::Field { field, value } => {
            format!("no task whose field {} is {}", quoted(field), quoted(value))
        }
    }
}
