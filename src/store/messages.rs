//! Processed messages: the exactly-once record (one row per key), failed messages with their
//! raw bytes, and each IMAP mailbox's cursor.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

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
        status: if status == "applied" {
            MessageStatus::Applied
        } else {
            MessageStatus::Failed
        },
        rule,
        task,
    }))
}

/// The fate to write for a message.
pub(super) struct RecordedOutcome<'a> {
    pub sender: Option<&'a str>,
    pub rule: Option<&'a str>,
    pub task: Option<i64>,
    /// `None`: applied; `Some(error)`: failed (the raw bytes are kept).
    pub error: Option<&'a str>,
}

/// Writes the messages row: a new one, or the update of a failed one that was run again (its
/// key is already there; `received_at` keeps the first arrival).
pub(super) fn write(
    conn: &Connection,
    record: &MessageRecord,
    outcome: &RecordedOutcome,
    now: &str,
) -> Result<(), StoreError> {
    let status = if outcome.error.is_some() {
        "failed"
    } else {
        "applied"
    };
    let raw = outcome.error.map(|_| record.raw.as_slice());
    conn.prepare_cached(
        "INSERT INTO messages (key, message_id, mailbox, source, subject, sender, status, rule, \
         task_id, error, raw, attempts, received_at, processed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 1, ?12, ?12) \
         ON CONFLICT (key) DO UPDATE SET message_id = excluded.message_id, \
         mailbox = excluded.mailbox, source = excluded.source, subject = excluded.subject, \
         sender = excluded.sender, status = excluded.status, rule = excluded.rule, \
         task_id = excluded.task_id, error = excluded.error, raw = excluded.raw, \
         attempts = attempts + 1, processed_at = excluded.processed_at",
    )?
    .execute(params![
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
        raw,
        now
    ])?;
    Ok(())
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
    "id, key, message_id, mailbox, source, subject, error, attempts, received_at, raw";

fn failed_from(row: &rusqlite::Row) -> rusqlite::Result<(FailedMessage, Vec<u8>)> {
    Ok((
        FailedMessage {
            id: row.get(0)?,
            key: row.get(1)?,
            message_id: row.get(2)?,
            mailbox: row.get(3)?,
            source: row.get(4)?,
            subject: row.get(5)?,
            error: row.get(6)?,
            attempts: row.get(7)?,
            received_at: row.get(8)?,
        },
        row.get::<_, Option<Vec<u8>>>(9)?.unwrap_or_default(),
    ))
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
        let rows = stmt.query_map([], |r| failed_from(r).map(|(m, _)| m))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Failed messages with their raw bytes: those with the given ids, or all when `ids` is
    /// empty. Ids that are unknown or not failed are left out.
    pub fn failed_raw(&self, ids: &[i64]) -> Result<Vec<(FailedMessage, Vec<u8>)>, StoreError> {
        let sql = format!(
            "SELECT {FAILED_COLUMNS} FROM messages WHERE status = 'failed' \
             AND (?1 IS NULL OR id = ?1) ORDER BY id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        if ids.is_empty() {
            let rows = stmt.query_map([None::<i64>], failed_from)?;
            return Ok(rows.collect::<Result<_, _>>()?);
        }
        let mut out = Vec::new();
        for id in ids {
            if let Some(found) = stmt.query_row([Some(*id)], failed_from).optional()? {
                out.push(found);
            }
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
