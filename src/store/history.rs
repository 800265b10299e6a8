//! A task's story (`task_events`, migration 6): every change with who made it, written in the
//! transaction of the change, and `task history` reading it back oldest first.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{Store, StoreError};

/// Who made a change, as `task history` shows it in `by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    /// A message matched by this rule (`rule:NAME`; `(unmatched)` for the unmatched policy).
    Rule(String),
    /// A schedule firing (`schedule:NAME`).
    Schedule(String),
    /// A person working the task by hand: their address.
    Person(String),
}

impl Author {
    /// The text recorded in `by`.
    pub fn by(&self) -> String {
        match self {
            Author::Rule(name) => format!("rule:{name}"),
            Author::Schedule(name) => format!("schedule:{name}"),
            Author::Person(address) => address.clone(),
        }
    }
}

/// What kind of change an event is (`kind` in `task history --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Created,
    Status,
    Field,
    Assignee,
    Comment,
    Reply,
    /// A webhook delivery queued (`to`: the endpoint's name).
    Webhook,
    Message,
    Analytics,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::Status => "status",
            Kind::Field => "field",
            Kind::Assignee => "assignee",
            Kind::Comment => "comment",
            Kind::Reply => "reply",
            Kind::Webhook => "webhook",
            Kind::Message => "message",
            Kind::Analytics => "analytics",
        }
    }
}

/// One change to record. `from`/`to`: the value before and after (None for none).
pub(super) struct Event<'a> {
    pub task: i64,
    pub by: &'a str,
    pub kind: Kind,
    pub name: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
}

/// Writes the event's row. The caller keeps the task's last mail ([`last_mail_by_us`]), with
/// the `updated_at` it writes anyway when it can (`actions.rs`, `manual.rs`).
pub(super) fn write_event(conn: &Connection, event: &Event, at: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO task_events (task_id, at, by, kind, name, from_value, to_value) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        event.task,
        at,
        event.by,
        event.kind.as_str(),
        event.name,
        // An empty value is no value: a cleared field shows as null, not as "".
        event.from.filter(|v| !v.is_empty()),
        event.to.filter(|v| !v.is_empty()),
    ])?;
    Ok(())
}

/// Whether the event is mail that becomes the task's last mail, and if so whether it was
/// ours. Every change is written here, so the task's last mail (the web's "waiting
/// for us / for the customer" and "overdue" views, served by indexes) is kept from here: the
/// mail that created the task or a later incoming message is the customer's, a person's
/// reply ours; an automatic reply (`rule:`, `trigger:`, `schedule:`) is only an
/// acknowledgement and changes nothing. (The mail that created the task is written with its
/// row by `tasks::insert`.)
pub(super) fn last_mail_by_us(event: &Event) -> Option<bool> {
    match event.kind {
        Kind::Message => Some(false),
        Kind::Reply if !event.by.contains(':') => Some(true),
        _ => None,
    }
}

/// One line of `task history --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// RFC 3339.
    pub at: String,
    pub by: String,
    /// created | status | field | assignee | comment | reply | message | analytics
    pub kind: String,
    /// The field (`field`), the analytics table (`analytics`); otherwise null.
    pub name: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Store {
    /// Task `id`'s story, oldest first; None when there is no such task.
    pub fn task_history(&self, id: i64) -> Result<Option<Vec<HistoryEntry>>, StoreError> {
        if !super::tasks::exists(&self.conn, id)? {
            return Ok(None);
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, by, kind, name, from_value, to_value FROM task_events \
             WHERE task_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![id], |r| {
            Ok(HistoryEntry {
                at: r.get(0)?,
                by: r.get(1)?,
                kind: r.get(2)?,
                name: r.get(3)?,
                from: r.get(4)?,
                to: r.get(5)?,
            })
        })?;
        Ok(Some(rows.collect::<Result<_, _>>()?))
    }
}
