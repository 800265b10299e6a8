//! Webhook deliveries in the outbox (kind `webhook`): queued inside the transaction of the
//! message, trigger, schedule or person that asked for them, then handed to the webhook sender
//! (`crate::webhook`) and marked with each try's answer. Only this file knows their columns.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;

use super::actions::{Failure, MessageApply};
use super::history::Kind;
use super::{tasks, timestamp, Store, StoreError};
use crate::plan::{JsonText, PlannedAction, TaskRef};

/// The outbox kind of a webhook delivery.
pub const WEBHOOK: &str = "webhook";

/// A delivery to queue.
pub(super) struct NewDelivery<'a> {
    pub task: Option<i64>,
    pub message_key: &'a str,
    pub rule: &'a str,
    pub endpoint: &'a str,
    /// The exact JSON text sent (and signed) on every try.
    pub body: &'a str,
}

/// Queues one delivery with a fresh random Idempotency-Key; the row's id.
pub(super) fn queue(conn: &Connection, row: &NewDelivery, now: &str) -> Result<i64, StoreError> {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let key = format!("mailrules-{key}");
    conn.prepare_cached(
        "INSERT INTO outbox (kind, task_id, message_key, rule, recipient, subject, body, \
         our_message_id, status, created_at, idempotency_key) \
         VALUES (?1, ?2, ?3, ?4, ?5, '', ?6, ?7, 'queued', ?8, ?9)",
    )?
    .execute(params![
        WEBHOOK,
        row.task,
        row.message_key,
        row.rule,
        row.endpoint,
        row.body,
        // Not a Message-ID: the column is unique and required, and this keeps it so.
        format!("webhook:{key}"),
        now,
        key,
    ])?;
    Ok(conn.last_insert_rowid())
}

impl MessageApply<'_> {
    /// Queues a webhook delivery. Its task is the one `task` names; with no `task` key, the
    /// message's task if it has one, else none (`{task}` renders empty): a rule may push mail
    /// to a tracker without keeping a task here.
    pub(super) fn webhook(
        &mut self,
        action: &PlannedAction,
        to: &str,
        body: &JsonText,
    ) -> Result<(), Failure> {
        let no_task_yet = match (self.created, self.base) {
            (Some(_), _) => false,
            (None, Some(thread)) => !tasks::exists(self.conn, thread)?,
            (None, None) => true,
        };
        let task = if action.task == TaskRef::Current && no_task_yet {
            None
        } else {
            match self.resolve(action)? {
                Some(task) => Some(task),
                None => return Ok(()),
            }
        };
        let body = body.to_json(task);
        let row = NewDelivery {
            task,
            message_key: &self.record.key,
            rule: &action.rule,
            endpoint: to,
            body: &body,
        };
        queue(self.conn, &row, self.stamp)?;
        if let Some(task) = task {
            self.record(task, Kind::Webhook, None, None, Some(to))?;
            self.touch(task);
        }
        Ok(())
    }
}

/// One delivery as the sender needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookDelivery {
    pub id: i64,
    /// The `[[webhook]]` name.
    pub endpoint: String,
    pub body: String,
    /// Sent as `Idempotency-Key` on every try.
    pub idempotency_key: String,
    /// Tries that failed so far.
    pub attempts: u32,
}

impl Store {
    /// Queued deliveries whose next try is due at `now`, oldest first, leaving out `busy`
    /// (the ones being sent now).
    pub fn webhooks_due(
        &self,
        now: DateTime<Utc>,
        busy: &[i64],
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, recipient, body, idempotency_key, attempts FROM outbox \
             WHERE status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= ?1) \
             AND kind = 'webhook' ORDER BY id LIMIT ?2",
        )?;
        let wanted = i64::try_from(limit.saturating_add(busy.len())).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![timestamp(now), wanted], |r| {
            Ok(WebhookDelivery {
                id: r.get(0)?,
                endpoint: r.get(1)?,
                body: r.get(2)?,
                idempotency_key: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                attempts: r.get(4)?,
            })
        })?;
        let mut out = Vec::new();
        for row in rows {
            let row = row?;
            if !busy.contains(&row.id) && out.len() < limit {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// When the next queued delivery that is not in `busy` becomes due, if one is waiting.
    pub fn webhooks_next_due(&self, busy: &[i64]) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, next_attempt_at FROM outbox WHERE status = 'queued' \
             AND kind = 'webhook' ORDER BY next_attempt_at IS NOT NULL, next_attempt_at \
             LIMIT ?1",
        )?;
        let wanted = i64::try_from(busy.len() + 1).unwrap_or(i64::MAX);
        let rows = stmt.query_map([wanted], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        let mut next = None;
        for row in rows {
            let (id, at) = row?;
            if !busy.contains(&id) {
                next = Some(at);
                break;
            }
        }
        Ok(match next {
            None => None,
            Some(None) => Some(DateTime::<Utc>::MIN_UTC),
            Some(Some(at)) => Some(
                DateTime::parse_from_rfc3339(&at)
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            ),
        })
    }

    /// The endpoint answered 2xx: sent, with its answer (`reason` holds the last answer).
    pub fn webhook_mark_delivered(
        &self,
        id: i64,
        at: DateTime<Utc>,
        answer: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE outbox SET status = 'sent', sent_at = ?2, next_attempt_at = NULL, \
                 attempts = attempts + 1, reason = ?3 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, timestamp(at), answer]))
            .map(|_| ())
            .map_err(|e| self.located(e.into()))
    }
}
