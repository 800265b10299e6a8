//! The outbox: mail we will send (replies, notifications), written in the same transaction as
//! the message that caused it, then sent and marked by the SMTP worker.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;

use super::{timestamp, Store, StoreError};

/// A row to queue (or record as suppressed).
pub(super) struct NewOutgoing<'a> {
    pub kind: &'a str,
    pub task: Option<i64>,
    pub message_key: &'a str,
    pub rule: &'a str,
    pub recipient: &'a str,
    /// Bare addresses that get a copy (a person's answer only).
    pub cc: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub references: &'a [String],
    pub our_message_id: &'a str,
    /// Why it must not be sent; `None` queues it.
    pub suppressed: Option<&'a str>,
}

/// The outbox kind of a person's answer to a requester: sent as a person's mail (no
/// `Auto-Submitted`), and not counted by the automatic reply limits.
pub const ANSWER: &str = "answer";

/// One outgoing mail's row.
pub(super) const INSERT: &str =
    "INSERT INTO outbox (kind, task_id, message_key, rule, recipient, subject, body, \
     in_reply_to, references_ids, our_message_id, status, reason, created_at, cc) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// Queues (or records as suppressed) one mail; the row's id.
pub(super) fn insert(conn: &Connection, row: &NewOutgoing, now: &str) -> Result<i64, StoreError> {
    let (status, reason) = match row.suppressed {
        Some(reason) => ("suppressed", Some(reason)),
        None => ("queued", None),
    };
    let references = (!row.references.is_empty()).then(|| row.references.join(" "));
    conn.prepare_cached(INSERT)?.execute(params![
        row.kind,
        row.task,
        row.message_key,
        row.rule,
        row.recipient,
        row.subject,
        row.body,
        row.in_reply_to,
        references,
        row.our_message_id,
        status,
        reason,
        now,
        row.cc.join(" ")
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Whether `recipient` got a reply that counts about task ?2 since ?3. The conditions on kind
/// and status are those of the partial index `outbox_counted_task_replies` (migrations 4 and
/// 15), word for word, so this is one index lookup.
pub(super) const REPLIED_ABOUT_TASK: &str = "SELECT EXISTS (SELECT 1 FROM outbox \
     WHERE kind = 'reply' AND (status = 'queued' OR status = 'sending' OR status = 'sent') \
     AND recipient = ?1 AND task_id = ?2 AND created_at > ?3)";

/// How many replies that count `recipient` got since ?2, counting no further than the limit
/// ?3: only whether the limit is reached matters, so the count reads at most that many entries
/// of `outbox_counted_replies` (migrations 4 and 15) however many replies the history holds.
pub(super) const REPLIES_UP_TO_LIMIT: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM outbox \
     WHERE kind = 'reply' AND (status = 'queued' OR status = 'sending' OR status = 'sent') \
     AND recipient = ?1 AND created_at > ?2 LIMIT ?3)";

/// Why an automatic reply to `recipient` about `task` would exceed the flood limits, if it
/// would. Only replies that were (or will be) sent count.
pub(super) fn reply_limit_reason(
    conn: &Connection,
    recipient: &str,
    task: i64,
    now: DateTime<Utc>,
    limits: &crate::config::Limits,
) -> Result<Option<String>, StoreError> {
    let since = |period: Duration| {
        let period = chrono::Duration::from_std(period).unwrap_or(chrono::Duration::MAX);
        timestamp(
            now.checked_sub_signed(period)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        )
    };
    let replied_about_task: bool = conn.prepare_cached(REPLIED_ABOUT_TASK)?.query_row(
        params![recipient, task, since(limits.reply_per_task_period)],
        |r| r.get(0),
    )?;
    if replied_about_task {
        return Ok(Some(format!(
            "rate limit: {recipient} already got an automatic reply about task #{task} \
             within {}",
            crate::text::duration(limits.reply_per_task_period)
        )));
    }
    let per_day: i64 = conn.prepare_cached(REPLIES_UP_TO_LIMIT)?.query_row(
        params![
            recipient,
            since(Duration::from_secs(24 * 3600)),
            limits.replies_per_recipient_per_day
        ],
        |r| r.get(0),
    )?;
    if per_day >= i64::from(limits.replies_per_recipient_per_day) {
        return Ok(Some(format!(
            "rate limit: {recipient} already got {per_day} automatic replies in the last 24h \
             (limit {})",
            limits.replies_per_recipient_per_day
        )));
    }
    Ok(None)
}

/// One outbox row, as the SMTP worker and `mailrules outbox` see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    /// `reply` or `notify`.
    pub kind: String,
    pub task: Option<i64>,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// Without `<>`.
    pub in_reply_to: Option<String>,
    /// Without `<>`, oldest first.
    pub references: Vec<String>,
    /// Without `<>`.
    pub our_message_id: String,
    /// Bare addresses that get a copy.
    pub cc: Vec<String>,
    /// queued | sending | sent | failed | suppressed
    pub status: String,
    pub reason: Option<String>,
    pub attempts: u32,
    pub created_at: String,
    pub sent_at: Option<String>,
}

const OUTBOX_COLUMNS: &str = "id, kind, task_id, recipient, subject, body, in_reply_to, \
     references_ids, our_message_id, status, reason, attempts, created_at, sent_at, cc";

fn outbox_from(row: &rusqlite::Row) -> rusqlite::Result<OutboxRow> {
    let references: Option<String> = row.get(7)?;
    Ok(OutboxRow {
        id: row.get(0)?,
        kind: row.get(1)?,
        task: row.get(2)?,
        recipient: row.get(3)?,
        subject: row.get(4)?,
        body: row.get(5)?,
        in_reply_to: row.get(6)?,
        references: references
            .map(|r| r.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        our_message_id: row.get(8)?,
        status: row.get(9)?,
        reason: row.get(10)?,
        attempts: row.get(11)?,
        created_at: row.get(12)?,
        sent_at: row.get(13)?,
        cc: row
            .get::<_, String>(14)?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    })
}

impl Store {
    /// Mail rows with status queued and next_attempt_at <= now (or NULL), oldest first
    /// (webhook deliveries have their own sender: `Store::webhooks_due`).
    pub fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'queued' \
             AND (next_attempt_at IS NULL OR next_attempt_at <= ?1) AND kind != 'webhook' \
             ORDER BY id LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![timestamp(now), limit], outbox_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn outbox_mark_sent(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.outbox_update(
            "UPDATE outbox SET status = 'sent', sent_at = ?2, next_attempt_at = NULL \
             WHERE id = ?1",
            params![id, timestamp(at)],
        )
    }

    /// attempts += 1; next_attempt_at = retry_at; reason = error; status stays queued.
    pub fn outbox_mark_retry(
        &self,
        id: i64,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.outbox_update(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, reason = ?3 \
             WHERE id = ?1",
            params![id, timestamp(retry_at), error],
        )
    }

    /// attempts += 1; status failed; reason = error.
    pub fn outbox_mark_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.outbox_update(
            "UPDATE outbox SET attempts = attempts + 1, status = 'failed', reason = ?2, \
             next_attempt_at = NULL WHERE id = ?1",
            params![id, error],
        )
    }

    fn outbox_update(&self, sql: &str, args: impl rusqlite::Params) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(args))
            .map(|_| ())
            .map_err(|e| self.located(e.into()))
    }

    /// Queues mail again with attempts reset: every failed row when `ids` is empty, else the
    /// given rows if they failed or were suppressed (sent mail is never sent twice). Returns
    /// how many rows were requeued.
    pub fn outbox_requeue(&self, ids: &[i64]) -> Result<usize, StoreError> {
        let requeue = |sql: &str, id: Option<i64>| {
            self.conn
                .prepare_cached(sql)
                .and_then(|mut s| s.execute([id]))
                .map_err(|e| self.located(e.into()))
        };
        const RESET: &str = "UPDATE outbox SET status = 'queued', attempts = 0, \
             next_attempt_at = NULL, reason = NULL";
        if ids.is_empty() {
            return requeue(
                &format!("{RESET} WHERE status = 'failed' AND ?1 IS NULL"),
                None,
            );
        }
        let sql = format!("{RESET} WHERE id = ?1 AND status IN ('failed', 'suppressed')");
        let mut count = 0;
        for id in ids {
            count += requeue(&sql, Some(*id))?;
        }
        Ok(count)
    }

    /// Every outbox row, newest first.
    pub fn outbox_list(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id DESC");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], outbox_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest `limit` outbox rows (the web's /outbox), newest first.
    pub fn outbox_recent(&self, limit: u32) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id DESC LIMIT ?1");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([limit], outbox_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The mail sent (or to be sent) about `task`, oldest first: its replies and their
    /// delivery state on the task's page.
    pub fn outbox_for_task(&self, task: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE task_id = ?1 ORDER BY id");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([task], outbox_from)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many outbox rows are in each status (for /metrics).
    pub fn outbox_status_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.counts_by_status("SELECT status, count(*) FROM outbox GROUP BY status")
    }
}
