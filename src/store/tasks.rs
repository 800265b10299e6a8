//! Tasks: the writes that applying a plan makes (create, status, fields, comments) and the
//! views the CLI shows (`task list`, `task show`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::contacts::PRIMARY_ADDRESS;
use super::{Store, StoreError};

/// The default status of a new task.
pub const DEFAULT_STATUS: &str = "Новая";

/// A task to create.
pub(super) struct NewTask<'a> {
    pub title: &'a str,
    pub description: &'a str,
    pub status: &'a str,
    pub requester: Option<i64>,
    pub assignee: Option<&'a str>,
    pub parent: Option<i64>,
}

pub(super) fn exists(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The task whose field ?1 is ?2 and that was updated last: the first entry of the index
/// `task_fields_newest` (migration 5), however many tasks share the value.
pub(super) const NEWEST_WITH_FIELD: &str = "SELECT task_id FROM task_fields \
     WHERE name = ?1 AND value = ?2 ORDER BY task_updated_at DESC, task_id DESC LIMIT 1";

/// The most recently updated task whose field `name` equals `value`.
pub(super) fn find_by_field(
    conn: &Connection,
    name: &str,
    value: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(NEWEST_WITH_FIELD)?
        .query_row([name, value], |r| r.get(0))
        .optional()?)
}

/// Inserts the task; returns its number. Its first status is recorded by the caller, as a
/// `status` event of its history (the record of status changes, migration 13).
///
/// The row is written with its last mail already set (the customer's, at creation: what
/// the history keeps for a `created` event, which every new task records at the same
/// time), so that recording the creation does not rewrite the row and its two
/// `tasks_last_mail_*` index entries right after this insert.
pub(super) fn insert(conn: &Connection, task: &NewTask, now: &str) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO tasks (title, description, status, requester_contact_id, assignee, \
         parent_id, created_at, updated_at, last_mail_at, last_mail_ours) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7, 0)",
    )?
    .execute(params![
        task.title,
        task.description,
        task.status,
        task.requester,
        task.assignee,
        task.parent,
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Rewrites title and description (used once the new task's number is known).
pub(super) fn retitle(
    conn: &Connection,
    id: i64,
    title: &str,
    description: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE tasks SET title = ?1, description = ?2 WHERE id = ?3")?
        .execute(params![title, description, id])?;
    Ok(())
}

/// Sets the status; the caller records a change (only) in the task's history (a `status`
/// event: schedules read since when the task has had it there). Returns the status before
/// when it changed, None when it was already `status` (or there is no such task).
pub(super) fn set_status(
    conn: &Connection,
    id: i64,
    status: &str,
    now: &str,
) -> Result<Option<String>, StoreError> {
    let old: Option<String> = conn
        .prepare_cached("SELECT status FROM tasks WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    match old {
        Some(old) if old != status => {
            conn.prepare_cached("UPDATE tasks SET status = ?1, updated_at = ?2 WHERE id = ?3")?
                .execute(params![status, now, id])?;
            fields_follow_task(conn, id, now)?;
            Ok(Some(old))
        }
        _ => Ok(None),
    }
}

/// Sets the assignee (None: nobody). Returns `Some(before)` when it changed.
pub(super) fn set_assignee(
    conn: &Connection,
    id: i64,
    assignee: Option<&str>,
    now: &str,
) -> Result<Option<Option<String>>, StoreError> {
    let old: Option<Option<String>> = conn
        .prepare_cached("SELECT assignee FROM tasks WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    match old {
        Some(old) if old.as_deref() != assignee => {
            conn.prepare_cached("UPDATE tasks SET assignee = ?1, updated_at = ?2 WHERE id = ?3")?
                .execute(params![assignee, now, id])?;
            fields_follow_task(conn, id, now)?;
            Ok(Some(old))
        }
        _ => Ok(None),
    }
}

/// Field `name` of task `id`: empty when the task has none.
pub(super) fn field_value(conn: &Connection, id: i64, name: &str) -> Result<String, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM task_fields WHERE task_id = ?1 AND name = ?2")?
        .query_row(params![id, name], |r| r.get(0))
        .optional()?
        .unwrap_or_default())
}

/// Field ?2 of task ?1 set to ?3 at ?4, the task's `updated_at` too ([`write_field`]).
pub(super) const WRITE_FIELD: &str =
    "INSERT INTO task_fields (task_id, name, value, updated_at, task_updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?4) \
     ON CONFLICT (task_id, name) DO UPDATE SET value = excluded.value, \
     updated_at = excluded.updated_at";

/// Writes field `name` (an empty value clears it) and appends the change to the field
/// history (schedules ask since when a field has had its value). The caller has read the
/// value before ([`field_value`]) and found it different, and has touched the task at `now`
/// first ([`touch`]): a new field row is written with its task's `updated_at` (`now`), which
/// the touch copied onto the task's other field rows.
pub(super) fn write_field(
    conn: &Connection,
    id: i64,
    name: &str,
    value: &str,
    now: &str,
) -> Result<(), StoreError> {
    if value.is_empty() {
        conn.prepare_cached("DELETE FROM task_fields WHERE task_id = ?1 AND name = ?2")?
            .execute(params![id, name])?;
    } else {
        conn.prepare_cached(WRITE_FIELD)?
            .execute(params![id, name, value, now])?;
    }
    conn.prepare_cached(
        "INSERT INTO task_field_history (task_id, name, value, at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, name, value, now])?;
    Ok(())
}

/// A task as triggers and schedules see it: its title, status, people and fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TaskState {
    pub title: String,
    pub status: String,
    pub assignee: Option<String>,
    /// The requester's primary address.
    pub requester: Option<String>,
    /// By name; a cleared field is absent.
    pub fields: Vec<(String, String)>,
}

impl TaskState {
    /// The fields and `"status"`, as trigger conditions see a task.
    pub fn values(&self) -> Vec<(String, String)> {
        let mut values = self.fields.clone();
        values.push(("status".into(), self.status.clone()));
        values
    }
}

/// The state of task `id`, or None when there is no such task.
pub(super) fn state(conn: &Connection, id: i64) -> Result<Option<TaskState>, StoreError> {
    let sql = format!(
        "SELECT t.title, t.status, t.assignee, {PRIMARY_ADDRESS} FROM tasks t \
         LEFT JOIN contacts c ON c.id = t.requester_contact_id WHERE t.id = ?1"
    );
    let head = conn
        .prepare_cached(&sql)?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((title, status, assignee, requester)) = head else {
        return Ok(None);
    };
    let fields = conn
        .prepare_cached("SELECT name, value FROM task_fields WHERE task_id = ?1 ORDER BY name")?
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(Some(TaskState {
        title,
        status,
        assignee,
        requester,
        fields,
    }))
}

/// Marks task ?2 changed at ?1 ([`touch`]).
pub(super) const TOUCH: &str =
    "UPDATE tasks SET updated_at = ?1 WHERE id = ?2 AND updated_at IS NOT ?1";

/// Marks the task changed at `now`. A row changed at `now` already is not written again: one
/// batch applies all its messages at one time, and a message often changes a task several
/// times (a comment, fields) and others of the batch change it again.
pub(super) fn touch(conn: &Connection, id: i64, now: &str) -> Result<(), StoreError> {
    let changed = conn.prepare_cached(TOUCH)?.execute(params![now, id])?;
    if changed > 0 {
        fields_follow_task(conn, id, now)?;
    }
    Ok(())
}

/// Copies the task's new `updated_at` onto its field rows (`task_fields.task_updated_at`, by
/// which index `task_fields_newest` finds the task updated last among those with a value).
/// Every write of `tasks.updated_at` calls it. Until migration 15 triggers did this; a
/// statement that fires a trigger makes SQLite keep a statement journal, a copy of every
/// page the statement touches, and that cost more than this statement (BENCHMARKS.md,
/// "Session 8"). A row that holds the time already is not written.
fn fields_follow_task(conn: &Connection, id: i64, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE task_fields SET task_updated_at = ?1 WHERE task_id = ?2 \
         AND task_updated_at IS NOT ?1",
    )?
    .execute(params![now, id])?;
    Ok(())
}

/// [`touch`] and the task's last mail (at `now`; `ours`: our mail, else the customer's) in one
/// statement: a message on a task, or a person's answer, changes both, and writing them
/// apart rewrote the row twice. Like [`touch`], a row that holds the values is not written.
pub(super) fn touch_with_last_mail(
    conn: &Connection,
    id: i64,
    now: &str,
    ours: bool,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE tasks SET updated_at = ?2, last_mail_at = ?2, last_mail_ours = ?3 \
             WHERE id = ?1 \
             AND (updated_at IS NOT ?2 OR last_mail_at IS NOT ?2 OR last_mail_ours IS NOT ?3)",
        )?
        .execute(params![id, now, ours])?;
    if changed > 0 {
        fields_follow_task(conn, id, now)?;
    }
    Ok(())
}

/// The task's last mail alone. A row that already holds the values is not written: a new
/// task's first message comes at the time of its insert, which wrote them, and rewriting
/// would redo the row and both `tasks_last_mail_*` index entries for nothing.
pub(super) fn set_last_mail(
    conn: &Connection,
    id: i64,
    at: &str,
    ours: bool,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE tasks SET last_mail_at = ?2, last_mail_ours = ?3 \
         WHERE id = ?1 AND (last_mail_at IS NOT ?2 OR last_mail_ours IS NOT ?3)",
    )?
    .execute(params![id, at, ours])?;
    Ok(())
}

/// A comment to add.
pub(super) struct NewComment<'a> {
    pub task: i64,
    pub author: Option<&'a str>,
    pub author_name: Option<&'a str>,
    pub text: &'a str,
    pub auto: bool,
    /// JSON array of `{"name","content_type","size"}`.
    pub attachments: &'a str,
    pub message_key: &'a str,
}

/// Adds a comment; the caller touches the task (with its last mail when that changes too).
pub(super) fn add_comment(conn: &Connection, c: &NewComment, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO comments (task_id, author, author_name, text, auto, attachments, \
         message_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        c.task,
        c.author,
        c.author_name,
        c.text,
        c.auto,
        c.attachments,
        c.message_key,
        now
    ])?;
    Ok(())
}

/// Ties a Message-ID (incoming or ours) to a task, for threading. The first task to claim an
/// id keeps it.
pub(super) fn link_message_id(conn: &Connection, id: &str, task: i64) -> Result<(), StoreError> {
    let id = crate::outgoing::bare_message_id(id);
    if id.is_empty() {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT OR IGNORE INTO task_messages (message_id, task_id) VALUES (?1, ?2)",
    )?
    .execute(params![id, task])?;
    Ok(())
}

// ---- views ---------------------------------------------------------------------------------

/// One line of `task list --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskSummary {
    pub id: i64,
    pub title: String,
    pub status: String,
    /// The requester's primary address.
    pub requester: Option<String>,
    pub requester_name: Option<String>,
    pub assignee: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// `task show --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskView {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub status: String,
    pub requester: Option<String>,
    pub requester_name: Option<String>,
    pub assignee: Option<String>,
    pub parent: Option<i64>,
    pub fields: BTreeMap<String, String>,
    pub comments: Vec<CommentView>,
    pub analytics: Vec<TaskAnalyticsRow>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommentView {
    pub author: Option<String>,
    pub author_name: Option<String>,
    pub text: String,
    pub at: String,
    /// Written by the robot (a template), not by a person.
    pub auto: bool,
    pub attachments: Vec<AttachmentView>,
    /// The stored message the attachments came with (its id in `message list`), for
    /// downloading them; only for a comment with attachments. Not in the JSON.
    #[serde(skip)]
    pub message: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AttachmentView {
    pub name: String,
    pub content_type: String,
    pub size: u64,
}

/// A task and since when it has been in its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusEntry {
    pub task: i64,
    pub status: String,
    /// RFC 3339: when the task last entered the status.
    pub since: String,
}

/// An analytics row as shown on its task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskAnalyticsRow {
    pub table: String,
    pub values: serde_json::Map<String, serde_json::Value>,
    pub at: String,
}

pub(super) const SUMMARY_COLUMNS: &str =
    "t.id, t.title, t.status, t.assignee, t.created_at, t.updated_at, \
     c.name, t.description, t.parent_id";

pub(super) fn summary_from(
    row: &rusqlite::Row,
    requester: Option<String>,
) -> rusqlite::Result<TaskSummary> {
    Ok(TaskSummary {
        id: row.get(0)?,
        title: row.get(1)?,
        status: row.get(2)?,
        assignee: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        requester_name: row.get(6)?,
        requester,
    })
}

impl Store {
    /// Tasks, newest first, optionally only those in `status`.
    pub fn task_list(&self, status: Option<&str>) -> Result<Vec<TaskSummary>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, {PRIMARY_ADDRESS} FROM tasks t \
             LEFT JOIN contacts c ON c.id = t.requester_contact_id \
             WHERE ?1 IS NULL OR t.status = ?1 ORDER BY t.id DESC"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([status], |r| summary_from(r, r.get(9)?))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One task with its fields, comments and analytics rows, or None.
    pub fn task_show(&self, id: i64) -> Result<Option<TaskView>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, {PRIMARY_ADDRESS} FROM tasks t \
             LEFT JOIN contacts c ON c.id = t.requester_contact_id WHERE t.id = ?1"
        );
        let head = self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], |r| {
                Ok((
                    summary_from(r, r.get(9)?)?,
                    r.get::<_, String>(7)?,
                    r.get(8)?,
                ))
            })
            .optional()?;
        let Some((summary, description, parent)) = head else {
            return Ok(None);
        };
        Ok(Some(TaskView {
            id: summary.id,
            title: summary.title,
            description,
            status: summary.status,
            requester: summary.requester,
            requester_name: summary.requester_name,
            assignee: summary.assignee,
            parent,
            fields: self.task_fields(id)?,
            comments: self.task_comments(id)?,
            analytics: self.task_analytics(id)?,
            created_at: summary.created_at,
            updated_at: summary.updated_at,
        }))
    }

    fn task_fields(&self, id: i64) -> Result<BTreeMap<String, String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, value FROM task_fields WHERE task_id = ?1")?;
        let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn task_comments(&self, id: i64) -> Result<Vec<CommentView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT author, author_name, text, created_at, auto, attachments, \
             CASE WHEN attachments = '[]' THEN NULL \
             ELSE (SELECT m.id FROM messages m WHERE m.key = comments.message_key) END \
             FROM comments WHERE task_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get::<_, String>(5)?,
                r.get(6)?,
            ))
        })?;
        let mut comments = Vec::new();
        for row in rows {
            let (author, author_name, text, at, auto, attachments, message) = row?;
            let attachments = serde_json::from_str(&attachments).map_err(|e| {
                StoreError::BadData(format!("attachments of a comment on task #{id}: {e}"))
            })?;
            comments.push(CommentView {
                author,
                author_name,
                text,
                at,
                auto,
                attachments,
                message,
            });
        }
        Ok(comments)
    }

    fn task_analytics(&self, id: i64) -> Result<Vec<TaskAnalyticsRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.name, r.\"values\", r.at FROM analytics_rows r \
             JOIN analytics_tables t ON t.id = r.table_id WHERE r.task_id = ?1 ORDER BY r.id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (table, values, at) = row?;
            out.push(TaskAnalyticsRow {
                values: super::analytics::parse_values(&table, &values)?,
                table,
                at,
            });
        }
        Ok(out)
    }

    /// Tasks now in `status` that entered it at or before `entered_by`, longest waiting
    /// first (for schedules: `in_status_for`). `since` tells the entries apart, so that a
    /// schedule can act once per entry.
    pub fn tasks_in_status_since(
        &self,
        status: &str,
        entered_by: DateTime<Utc>,
    ) -> Result<Vec<StatusEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.id, h.at FROM tasks t JOIN task_events h ON h.id = \
             (SELECT MAX(id) FROM task_events WHERE task_id = t.id AND kind = 'status') \
             WHERE t.status = ?1 AND h.at <= ?2 ORDER BY h.at, t.id",
        )?;
        let rows = stmt.query_map(params![status, super::timestamp(entered_by)], |r| {
            Ok(StatusEntry {
                task: r.get(0)?,
                status: status.to_string(),
                since: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When task `id` entered its current status (for schedules), or None if no such task.
    pub fn task_in_status_since(&self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT h.at FROM task_events h JOIN tasks t ON t.id = h.task_id \
                 WHERE h.task_id = ?1 AND h.kind = 'status' AND h.to_value = t.status \
                 ORDER BY h.id DESC LIMIT 1",
            )?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }
}
