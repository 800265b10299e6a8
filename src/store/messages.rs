//! Processed messages: the exactly-once record (one row per key) with each message's fate
//! (applied, ignored, failed; how often it was delivered again), the queries behind `failed`
//! and `message list|show`, and each IMAP mailbox's cursor. The bytes are in `kept_mail`.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::kept_mail;
use super::{MailboxCursor, MessageRecord, MessageStatus, Store, StoreError};

/// What is recorded about a key already seen.
pub(super) struct Recorded {
    pub status: MessageStatus,
    pub rule: Option<String>,
    pub task: Option<i64>,
}

pub(super) fn recorded(conn: &Connection, key: &str) -> Result<Option<Recorded>, StoreError> {
    let row: Option<(String, Option<String>, Option<i64>)> = conn
        .prepare_cached("SELECT status, rule, task_id FROM messages WHERE key = ?1")?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(row.map(|(status, rule, task)| Recorded {
        status: match status.as_str() {
            "applied" => MessageStatus::Applied,
            "ignored" => MessageStatus::Ignored,
            _ => MessageStatus::Failed,
        },
        rule,
        task,
    }))
}

/// Notes that the message with `key`, processed before, was delivered again (nothing else
/// changes: see [`MessageFate::Duplicate`]).
pub(super) fn count_duplicate(conn: &Connection, key: &str, now: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE messages SET duplicates = duplicates + 1, last_duplicate_at = ?2 WHERE key = ?1",
    )?
    .execute(params![key, now])?;
    Ok(())
}

/// The fate to write for a message.
pub(super) struct RecordedOutcome<'a> {
    pub sender: Option<&'a str>,
    pub rule: Option<&'a str>,
    pub task: Option<i64>,
    /// `None`: applied (or ignored, when no task was acted on); `Some(error)`: failed.
    pub error: Option<&'a str>,
}

/// A new message's row; nothing when its key is there already.
pub(super) const INSERT_NEW: &str =
    "INSERT INTO messages (key, message_id, mailbox, source, subject, sender, status, \
     rule, task_id, error, attempts, received_at, processed_at, bytes_dropped_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?11, ?12) \
     ON CONFLICT (key) DO NOTHING";

/// Writes the messages row and the message's bytes: a new one, or the update of a failed one
/// that was run again (its key is already there; `received_at` keeps the first arrival).
///
/// A message that did not fail is `ignored` when it acted on no task: every change a plan can
/// make (a task, a comment, a field, an analytics row, a reply or a notification) is made on a
/// task, so no task means every action was `ignore` or skipped (`if_missing = "skip"`).
///
/// A new key is a plain insert and its id `last_insert_rowid()`; only a key already there
/// (a failed message run again) takes the update. One upsert with `RETURNING id` did both,
/// but SQLite runs a `RETURNING` clause through an ephemeral table and a statement journal:
/// about 7 % of the applying thread's instructions (BENCHMARKS.md, "Session 8").
pub(super) fn write(
    conn: &Connection,
    record: &MessageRecord,
    outcome: &RecordedOutcome,
    now: &str,
) -> Result<(), StoreError> {
    let status = match (outcome.error, outcome.task) {
        (Some(_), _) => "failed",
        (None, None) => "ignored",
        (None, Some(_)) => "applied",
    };
    // `keep_mail = "failed"`: a message that did not fail lets its bytes go at once.
    let let_go = record.keep_only_if_failed && outcome.error.is_none();
    let values = params![
        record.key,
        record.message_id,
        record.mailbox,
        record.source,
        record.subject,
        outcome.sender,
        status,
        outcome.rule,
        outcome.task,
        outcome.error,
        now,
        let_go.then_some(now)
    ];
    let inserted = conn.prepare_cached(INSERT_NEW)?.execute(values)?;
    let (id, run_again) = if inserted == 1 {
        (conn.last_insert_rowid(), false)
    } else {
        let id = conn
            .prepare_cached(
                "UPDATE messages SET message_id = ?2, mailbox = ?3, source = ?4, subject = ?5, \
                 sender = ?6, status = ?7, rule = ?8, task_id = ?9, error = ?10, \
                 bytes_dropped_at = ?12, attempts = attempts + 1, processed_at = ?11 \
                 WHERE key = ?1 RETURNING id",
            )?
            .query_row(values, |r| r.get(0))?;
        (id, true)
    };
    if let_go {
        // A failed message run again that now succeeds: what it kept to be run again goes.
        if run_again {
            kept_mail::forget(conn, id)?;
        }
        return Ok(());
    }
    kept_mail::write(conn, id, record)
}

pub(super) fn write_cursor(
    conn: &Connection,
    cursor: &MailboxCursor,
    now: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO mailbox_state (mailbox, uid_validity, last_uid, updated_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (mailbox) DO UPDATE SET \
         uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, \
         updated_at = excluded.updated_at",
    )?
    .execute(params![
        cursor.mailbox,
        cursor.uid_validity,
        cursor.last_uid,
        now
    ])?;
    Ok(())
}

/// One line of `mailrules failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedMessage {
    pub id: i64,
    pub key: String,
    pub message_id: Option<String>,
    pub mailbox: String,
    pub source: String,
    pub subject: String,
    pub error: Option<String>,
    pub attempts: u32,
    pub received_at: String,
}

const FAILED_COLUMNS: &str =
    "id, key, message_id, mailbox, source, subject, error, attempts, received_at";

fn failed_from(row: &rusqlite::Row) -> rusqlite::Result<FailedMessage> {
    Ok(FailedMessage {
        id: row.get(0)?,
        key: row.get(1)?,
        message_id: row.get(2)?,
        mailbox: row.get(3)?,
        source: row.get(4)?,
        subject: row.get(5)?,
        error: row.get(6)?,
        attempts: row.get(7)?,
        received_at: row.get(8)?,
    })
}

impl Store {
    /// Status of an already recorded message with this unique key, if any.
    pub fn message_status(&self, key: &str) -> Result<Option<MessageStatus>, StoreError> {
        Ok(recorded(&self.conn, key)?.map(|r| r.status))
    }

    /// Failed messages, oldest first.
    pub fn failed_messages(&self) -> Result<Vec<FailedMessage>, StoreError> {
        let sql =
            format!("SELECT {FAILED_COLUMNS} FROM messages WHERE status = 'failed' ORDER BY id");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], failed_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Failed messages with their original bytes (`None` when `keep_mail` dropped them or
    /// the server never delivered any): those with the given ids, or all when `ids` is empty.
    /// Ids that are unknown or not failed are left out.
    #[allow(clippy::type_complexity)]
    pub fn failed_raw(
        &self,
        ids: &[i64],
    ) -> Result<Vec<(FailedMessage, Option<Vec<u8>>)>, StoreError> {
        let sql = format!(
            "SELECT {FAILED_COLUMNS} FROM messages WHERE status = 'failed' \
             AND (?1 IS NULL OR id = ?1) ORDER BY id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut found: Vec<FailedMessage> = Vec::new();
        if ids.is_empty() {
            let rows = stmt.query_map([None::<i64>], failed_from)?;
            found = rows.collect::<Result<_, _>>()?;
        }
        for id in ids {
            found.extend(stmt.query_row([Some(*id)], failed_from).optional()?);
        }
        let mut out = Vec::with_capacity(found.len());
        for failed in found {
            let raw = kept_mail::read(&self.conn, failed.id)?;
            out.push((failed, raw));
        }
        Ok(out)
    }

    /// Where mailbox `mailbox` was read up to.
    pub fn mailbox_cursor(&self, mailbox: &str) -> Result<Option<MailboxCursor>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT uid_validity, last_uid FROM mailbox_state WHERE mailbox = ?1")?
            .query_row([mailbox], |r| {
                Ok(MailboxCursor {
                    mailbox: mailbox.to_string(),
                    uid_validity: r.get(0)?,
                    last_uid: r.get(1)?,
                })
            })
            .optional()?)
    }
}

/// What `message list --status` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageFate {
    Applied,
    /// Processed with no effect.
    Ignored,
    Failed,
    /// Delivered again after it was processed, at least once. A re-delivery changes nothing
    /// and is counted on the message's own row (`duplicates`), whose status stays the fate of
    /// its first processing: one row per message, however often a server offers it again.
    Duplicate,
}

impl MessageFate {
    /// The condition selecting these messages. Written out (not bound) so that `failed` uses
    /// the partial index on failed messages.
    fn condition(self) -> &'static str {
        match self {
            MessageFate::Applied => "status = 'applied'",
            MessageFate::Ignored => "status = 'ignored'",
            MessageFate::Failed => "status = 'failed'",
            MessageFate::Duplicate => "duplicates > 0",
        }
    }
}

/// The filters of `message list`.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub fate: Option<MessageFate>,
    /// Messages that acted on this task.
    pub task: Option<i64>,
    pub limit: Option<u32>,
}

/// One line of `message list`: a message and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageSummary {
    pub id: i64,
    pub message_id: Option<String>,
    /// `applied`, `ignored` or `failed`.
    pub status: String,
    pub rule: Option<String>,
    /// The last task the message acted on.
    pub task: Option<i64>,
    /// The sender (the original author of a staff forward).
    pub from: Option<String>,
    pub subject: String,
    pub received_at: String,
    pub error: Option<String>,
    /// How often it was delivered again after it was processed.
    pub duplicates: u32,
}

/// What became of a message's original bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum KeptBytes {
    /// Kept: the original length and what it takes in the store.
    Kept { size: u64, stored: u64 },
    /// Dropped by `keep_mail` at this time.
    Dropped { at: String },
    /// Never had any (the server could not deliver it).
    None,
}

/// `message show`: a message's record and the state of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageDetail {
    #[serde(flatten)]
    pub summary: MessageSummary,
    pub key: String,
    pub mailbox: String,
    pub source: String,
    pub attempts: u32,
    pub processed_at: String,
    pub last_duplicate_at: Option<String>,
    pub bytes: KeptBytes,
}

const SUMMARY_COLUMNS: &str = "id, message_id, status, rule, task_id, sender, subject, \
     received_at, error, duplicates";

fn summary_from(row: &rusqlite::Row) -> rusqlite::Result<MessageSummary> {
    Ok(MessageSummary {
        id: row.get(0)?,
        message_id: row.get(1)?,
        status: row.get(2)?,
        rule: row.get(3)?,
        task: row.get(4)?,
        from: row.get(5)?,
        subject: row.get(6)?,
        received_at: row.get(7)?,
        error: row.get(8)?,
        duplicates: row.get(9)?,
    })
}

impl Store {
    /// Messages and their fates, newest first.
    pub fn messages(&self, filter: &MessageFilter) -> Result<Vec<MessageSummary>, StoreError> {
        let mut conditions = vec![filter.fate.map_or("1", MessageFate::condition)];
        if filter.task.is_some() {
            // A message that acted on several tasks records the last; the others know it by
            // its Message-ID.
            conditions.push(
                "(task_id = ?2 OR key IN (SELECT message_id FROM task_messages WHERE task_id = ?2))",
            );
        } else {
            conditions.push("?2 IS NULL");
        }
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM messages WHERE {} ORDER BY id DESC LIMIT ?1",
            conditions.join(" AND ")
        );
        let limit = filter.limit.map_or(-1, i64::from);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![limit, filter.task], summary_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many messages have each fate (`applied`, `ignored`, `failed`), for /metrics.
    pub fn message_status_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.counts_by_status("SELECT status, count(*) FROM messages GROUP BY status")
    }

    /// One message's record, or `None` when there is no message `id`.
    pub fn message(&self, id: i64) -> Result<Option<MessageDetail>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, key, mailbox, source, attempts, processed_at, \
             last_duplicate_at, bytes_dropped_at FROM messages WHERE id = ?1"
        );
        let found = self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], |r| {
                Ok((
                    summary_from(r)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, String>(11)?,
                    r.get::<_, String>(12)?,
                    r.get::<_, u32>(13)?,
                    r.get::<_, String>(14)?,
                    r.get::<_, Option<String>>(15)?,
                    r.get::<_, Option<String>>(16)?,
                ))
            })
            .optional()?;
        let Some((summary, key, mailbox, source, attempts, processed_at, last_dup, dropped)) =
            found
        else {
            return Ok(None);
        };
        let bytes = match (kept_mail::sizes(&self.conn, id)?, dropped) {
            (Some((size, stored)), _) => KeptBytes::Kept { size, stored },
            (None, Some(at)) => KeptBytes::Dropped { at },
            (None, None) => KeptBytes::None,
        };
        Ok(Some(MessageDetail {
            summary,
            key,
            mailbox,
            source,
            attempts,
            processed_at,
            last_duplicate_at: last_dup,
            bytes,
        }))
    }

    /// The id of the message recorded under `key` (Message-ID, else `sha256:` of its bytes).
    pub fn message_id_for_key(&self, key: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT id FROM messages WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }
}
