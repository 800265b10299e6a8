//! The outbox worker: takes queued mail that is due from the store, sends it, and records
//! the outcome (sent, retry later with capped exponential backoff, or failed with the
//! server's answer).
//!
//! The store is touched only between deliveries, never during one: no SMTP dialogue ever runs
//! inside a store transaction, so a slow server cannot hold the database.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde::Serialize;

use crate::config::SmtpConfig;
use crate::smtp::{MailKind, Mailer, OutgoingMail, SmtpError};
use crate::store::{OutboxRow, Store, StoreError};

/// The first retry waits this long; each further one twice as long as the one before.
const FIRST_RETRY: Duration = Duration::from_secs(60);
/// No retry waits longer than this.
const LONGEST_RETRY: Duration = Duration::from_secs(3600);
/// How many rows one store query hands out.
const BATCH: usize = 50;
/// How often an idle worker looks for mail that became due.
const POLL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The `[smtp]` settings cannot work; nothing was sent and no row was changed.
    #[error(transparent)]
    Smtp(SmtpError),
}

/// What one pass over the due mail did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SendReport {
    pub sent: usize,
    /// Failed this time, queued again for later.
    pub retrying: usize,
    /// Gave up: the row is now `failed`.
    pub failed: usize,
    /// One line per row that was not sent.
    pub errors: Vec<RowError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub id: i64,
    pub recipient: String,
    /// The server's answer, or why the server could not be reached.
    pub error: String,
    /// Whether the row is now `failed` (else it is queued for a later attempt).
    pub gave_up: bool,
    /// When the next attempt is due (RFC 3339), for rows that will be retried.
    pub retry_at: Option<String>,
}

/// What happens to a row after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(DateTime<Utc>),
    GiveUp,
}

/// The retry policy. `attempts_before` counts earlier failed attempts of the row. A mail that
/// can never be sent as it is (no valid recipient) fails at once; any other failure, 4xx or
/// 5xx or no answer, is tried `max_attempts` times in all, waiting 1, 2, 4 … minutes (at most
/// an hour) in between.
pub fn after_failure(
    error: &SmtpError,
    attempts_before: u32,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> AfterFailure {
    let attempts = attempts_before.saturating_add(1);
    if matches!(error, SmtpError::Unsendable(_)) || attempts >= max_attempts {
        return AfterFailure::GiveUp;
    }
    AfterFailure::RetryAt(now + retry_delay(attempts))
}

/// How long to wait after the `attempts`-th failed attempt (1-based).
pub fn retry_delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_RETRY
        .saturating_mul(1u32 << doublings)
        .min(LONGEST_RETRY)
}

/// Sends every due row once, with a fresh connection: what `mailrules outbox send` and tests
/// use. A broken `[smtp]` configuration is an error and leaves every row as it was.
pub async fn send_due_once(
    store: &mut Store,
    smtp: &SmtpConfig,
) -> Result<SendReport, OutboxError> {
    let mailer = Mailer::new(smtp).map_err(OutboxError::Smtp)?;
    send_due(store, &mailer, smtp.max_attempts, Utc::now()).await
}

/// Sends every row that is due at `now` (queued, and its retry time reached).
pub async fn send_due(
    store: &mut Store,
    mailer: &Mailer,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Result<SendReport, OutboxError> {
    send_until(
        store,
        mailer,
        max_attempts,
        now,
        &mut || false,
        &mut Unrecorded::default(),
    )
    .await
}

/// The worker inside `mailrules run`: sends due mail, then waits for `wake` (notify it after
/// queueing mail, for a prompt reply), for a poll interval, or for `shutdown`. A delivery in
/// progress is finished before it stops, so that a sent mail is always recorded as sent.
///
/// Give it its own store connection (`Store::open` on the same file): deliveries take
/// seconds and must not hold the connection the mail pipeline writes through.
pub async fn run_outbox(
    mut store: Store,
    smtp: SmtpConfig,
    wake: Arc<tokio::sync::Notify>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), OutboxError> {
    let mailer = Mailer::new(&smtp).map_err(OutboxError::Smtp)?;
    let shutdown = shutdown.fuse();
    futures::pin_mut!(shutdown);
    let mut stopping = false;
    let mut unrecorded = Unrecorded::default();
    let mut store_failing = false;
    loop {
        let mut stop_requested = || {
            stopping = stopping || shutdown.as_mut().now_or_never().is_some();
            stopping
        };
        let round = match unrecorded.record(&mut store) {
            Ok(()) => {
                send_until(
                    &mut store,
                    &mailer,
                    smtp.max_attempts,
                    Utc::now(),
                    &mut stop_requested,
                    &mut unrecorded,
                )
                .await
            }
            Err(e) => Err(e),
        };
        match round {
            Ok(report) => {
                if store_failing {
                    tracing::info!("outbox: the store accepts writes again; sending resumed");
                    store_failing = false;
                }
                log_report(&report)
            }
            // A store hiccup (busy, disk full) must not end the daemon: try again next round,
            // and say so once, not every round.
            Err(e) if !store_failing => {
                tracing::error!(error = %e, "outbox: store error, trying again every round until it is fixed");
                store_failing = true;
            }
            Err(e) => tracing::debug!(error = %e, "outbox: store error again"),
        }
        if stopping {
            return Ok(());
        }
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Mail the server accepted but the store could not mark as sent (disk full): the worker
/// remembers it and records it before sending anything else, rather than send it again.
#[derive(Debug, Default)]
struct Unrecorded(Vec<(i64, DateTime<Utc>)>);

impl Unrecorded {
    fn contains(&self, id: i64) -> bool {
        self.0.iter().any(|(sent, _)| *sent == id)
    }

    /// Marks every remembered row as sent; stops at the first store error.
    fn record(&mut self, store: &mut Store) -> Result<(), OutboxError> {
        while let Some(&(id, at)) = self.0.first() {
            store.outbox_mark_sent(id, at)?;
            self.0.remove(0);
        }
        Ok(())
    }
}

async fn send_until(
    store: &mut Store,
    mailer: &Mailer,
    max_attempts: u32,
    now: DateTime<Utc>,
    stop: &mut (dyn FnMut() -> bool + Send),
    unrecorded: &mut Unrecorded,
) -> Result<SendReport, OutboxError> {
    let mut report = SendReport::default();
    let mut seen: Vec<i64> = Vec::new();
    loop {
        let due = store.outbox_due(now, BATCH)?;
        let fresh: Vec<OutboxRow> = due
            .into_iter()
            .filter(|r| !seen.contains(&r.id) && !unrecorded.contains(r.id))
            .collect();
        if fresh.is_empty() {
            return Ok(report);
        }
        for row in fresh {
            if stop() {
                return Ok(report);
            }
            seen.push(row.id);
            let mail = outgoing_mail(&row, Utc::now());
            match mailer.send(&mail).await {
                Ok(()) => {
                    let sent_at = Utc::now();
                    if let Err(e) = store.outbox_mark_sent(row.id, sent_at) {
                        tracing::warn!(
                            id = row.id,
                            "outbox: sent, but the store cannot record it yet; recorded later, \
                             not sent again"
                        );
                        unrecorded.0.push((row.id, sent_at));
                        return Err(e.into());
                    }
                    tracing::info!(id = row.id, to = %row.recipient, "outbox: sent");
                    report.sent += 1;
                }
                Err(error) => {
                    // Without a server, the other rows would only wait for the same time-out
                    // one after the other: they stay due for the next round instead.
                    let server_down = error.affects_every_mail();
                    let text = error.to_string();
                    let decision = after_failure(&error, row.attempts, max_attempts, now);
                    match decision {
                        AfterFailure::RetryAt(at) => {
                            store.outbox_mark_retry(row.id, &text, at)?;
                            report.retrying += 1;
                        }
                        AfterFailure::GiveUp => {
                            store.outbox_mark_failed(row.id, &text)?;
                            report.failed += 1;
                        }
                    }
                    report.errors.push(RowError {
                        id: row.id,
                        recipient: row.recipient.clone(),
                        error: text,
                        gave_up: decision == AfterFailure::GiveUp,
                        retry_at: match decision {
                            AfterFailure::RetryAt(at) => {
                                Some(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                            }
                            AfterFailure::GiveUp => None,
                        },
                    });
                    if server_down {
                        return Ok(report);
                    }
                }
            }
        }
    }
}

fn outgoing_mail(row: &OutboxRow, date: DateTime<Utc>) -> OutgoingMail {
    OutgoingMail {
        kind: MailKind::from_outbox_kind(&row.kind),
        to: row.recipient.clone(),
        cc: row.cc.clone(),
        subject: row.subject.clone(),
        body: row.body.clone(),
        message_id: row.our_message_id.clone(),
        in_reply_to: row.in_reply_to.clone(),
        references: row.references.clone(),
        date,
    }
}

fn log_report(report: &SendReport) {
    for e in &report.errors {
        if e.gave_up {
            tracing::warn!(id = e.id, to = %e.recipient, error = %e.error, "outbox: gave up");
        } else {
            tracing::info!(id = e.id, to = %e.recipient, error = %e.error, "outbox: will retry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
    }

    fn rejected(code: u16) -> SmtpError {
        SmtpError::Rejected {
            code,
            answer: format!("{code} nope"),
        }
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let minutes: Vec<u64> = (1..=9).map(|a| retry_delay(a).as_secs() / 60).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(u32::MAX), LONGEST_RETRY);
    }

    #[test]
    fn failures_are_retried_until_the_last_attempt() {
        let down = SmtpError::Unreachable {
            server: "127.0.0.1:25".into(),
            message: "connection refused".into(),
        };
        for error in [down, rejected(451), rejected(550)] {
            assert_eq!(
                after_failure(&error, 0, 3, now()),
                AfterFailure::RetryAt(now() + chrono::Duration::minutes(1))
            );
            assert_eq!(
                after_failure(&error, 1, 3, now()),
                AfterFailure::RetryAt(now() + chrono::Duration::minutes(2))
            );
            assert_eq!(after_failure(&error, 2, 3, now()), AfterFailure::GiveUp);
        }
    }

    #[test]
    fn an_unusable_recipient_fails_at_once() {
        let error = SmtpError::Unsendable("\"not an address\"".into());
        assert_eq!(after_failure(&error, 0, 5, now()), AfterFailure::GiveUp);
    }
}
