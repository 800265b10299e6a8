//! A watcher's batches: handing fetched mail to the processing thread, waiting for each
//! batch's commit, and acknowledging it on the server, the acknowledgement sent together with
//! the next fetch when the server allows (one round trip for both).

use std::collections::VecDeque;

use tracing::{debug, error, info, info_span, warn};

use super::{Acknowledging, SessionError, Watcher};
use crate::daemon::sink::{
    Incoming, MailboxCursor, Outcome, OutcomeStatus, SinkFailure, Submitted,
};
use crate::daemon::unacknowledged::Fate;
use crate::daemon::unreadable;
use crate::imap::{Acknowledgement, Fetched, Folder, ImapError};

/// Batches handed to the processing thread before the watcher waits for the oldest one's
/// commit: one being applied while the next is parsed (and the one after it fetched).
const IN_FLIGHT: usize = 2;

/// A batch committed (or being committed) but not yet acknowledged.
struct InFlight {
    uids: Vec<u32>,
    submitted: Submitted,
}

/// A committed batch, logged and counted, waiting to be acknowledged on the server.
pub(super) struct Settled {
    succeeded: Vec<u32>,
    failed: Vec<u32>,
}

impl Watcher {
    /// Applies the disposition for `fate` to `uids`. A refusal by the server (the target
    /// folder cannot be used, a flag cannot be set) keeps them for a later try and lets
    /// processing go on: their effects are committed. Connection trouble ends the session;
    /// the next one finds them again below the committed cursor.
    pub(super) async fn acknowledge_uids(
        &mut self,
        folder: &mut Folder,
        uids: &[u32],
        fate: Fate,
        how: Acknowledging,
    ) -> Result<(), SessionError> {
        if uids.is_empty() {
            return Ok(());
        }
        let disposition = match fate {
            Fate::Processed => &self.mailbox.on_success,
            Fate::Failed => &self.mailbox.on_failure,
        };
        let done = match how {
            Acknowledging::First => folder.acknowledge(uids, disposition).await,
            Acknowledging::Again => folder.acknowledge_again(uids, disposition).await,
        };
        self.acknowledged(uids, fate, done)
    }

    /// Notes the server's answer to acknowledging `uids`: done, refused (kept for a later
    /// try) or connection trouble (an error: the session ends).
    pub(super) fn acknowledged(
        &mut self,
        uids: &[u32],
        fate: Fate,
        done: Result<(), ImapError>,
    ) -> Result<(), SessionError> {
        let name = &self.mailbox.name;
        match done {
            Ok(()) => self.unacknowledged.acknowledged(uids),
            Err(e @ (ImapError::Folder { .. } | ImapError::Refused { .. })) => {
                self.unacknowledged
                    .refused(uids, fate, tokio::time::Instant::now());
                let text = e.to_string();
                if self.refusal_reported.as_ref() != Some(&text) {
                    error!(
                        mailbox = %name,
                        "cannot acknowledge {} message(s) on the server: {text}; their effects \
                         are committed, processing goes on, and acknowledging them is tried \
                         again with backoff",
                        uids.len()
                    );
                    self.refusal_reported = Some(text);
                }
            }
            Err(e) => return Err(e.into()),
        }
        self.status
            .set_unacknowledged(name, self.unacknowledged.len());
        Ok(())
    }

    /// Processes `uids` (ascending) in batches, advancing the committed cursor for fresh mail
    /// (acknowledged [`Acknowledging::First`]). `prefetched`: the first batch, when it was
    /// fetched already.
    /// Each batch is handed to the processing thread as soon as it is fetched, where its
    /// parsing starts while the batch before it is still being applied; the next one is
    /// fetched meanwhile, and a batch is acknowledged once its transaction committed (its
    /// acknowledgement goes out with the next fetch). At most [`IN_FLIGHT`] batches are on
    /// the processing thread at once, which bounds memory.
    /// Checks for shutdown between batches: the batches handed over are finished and
    /// acknowledged, one merely fetched is dropped (it was not committed, so it is fetched
    /// again next time). Returns true if it stopped because of shutdown.
    pub(super) async fn process_all(
        &mut self,
        folder: &mut Folder,
        uids: &[u32],
        mut prefetched: Option<Vec<Fetched>>,
        uid_validity: u32,
        how: Acknowledging,
    ) -> Result<bool, SessionError> {
        let advance = how == Acknowledging::First;
        let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(IN_FLIGHT);
        let mut settled: Option<Settled> = None;
        let mut rest = uids;
        while let Some(&first) = rest.first() {
            if self.shutdown.is_triggered() {
                break;
            }
            // The first batch, when it was fetched with the search: the messages `uids`
            // starts with (the watcher fetched the UIDs after the last one seen).
            let ready = prefetched.take().filter(|p| {
                !p.is_empty()
                    && p.len() <= rest.len()
                    && p.iter().map(|f| f.uid).eq(rest[..p.len()].iter().copied())
            });
            let size = match &ready {
                Some(fetched) => fetched.len(),
                None => self.unreadable.batch_size(
                    uid_validity,
                    first,
                    self.mailbox.batch_size as usize,
                ),
            };
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            rest = tail;
            let cursor = advance.then(|| MailboxCursor {
                mailbox: self.mailbox.name.clone(),
                uid_validity,
                last_uid: chunk[chunk.len() - 1],
            });
            if chunk.len() == 1 && self.unreadable.given_up(uid_validity, first) {
                self.skip_unreadable(folder, first, uid_validity, cursor)
                    .await?;
                continue;
            }
            let fetched = match ready {
                Some(fetched) => Ok(fetched),
                None => self.fetch(folder, settled.take(), chunk, how).await,
            };
            let fetched = match fetched {
                Ok(fetched) => fetched,
                Err(e) => {
                    let e = match e {
                        SessionError::Imap(e) => e,
                        other => return Err(other),
                    };
                    self.unreadable
                        .fetch_failed(uid_validity, chunk, &e.to_string());
                    // Acknowledge what is committed if the connection still allows it.
                    while let Some(batch) = in_flight.pop_front() {
                        let _ = self.finish(folder, batch, how).await;
                    }
                    return Err(e.into());
                }
            };
            debug!(mailbox = %self.mailbox.name, "fetched {} message(s)", fetched.len());
            for uid in chunk {
                self.unreadable.done(uid_validity, *uid);
            }
            if self.shutdown.is_triggered() {
                break;
            }
            let uids: Vec<u32> = fetched.iter().map(|f| f.uid).collect();
            let name = &self.mailbox.name;
            let batch: Vec<Incoming> = fetched
                .into_iter()
                .map(|f| Incoming::new(f.raw, name, format!("imap:{name} uid {}", f.uid)))
                .collect();
            let submitted = self
                .sink
                .submit(batch, cursor)
                .await
                .map_err(SinkFailure::from)?;
            in_flight.push_back(InFlight { uids, submitted });
            while in_flight.len() >= IN_FLIGHT {
                let Some(oldest) = in_flight.pop_front() else {
                    break;
                };
                let outcomes = oldest.submitted.outcomes().await?;
                let committed = self.settle(&oldest.uids, outcomes);
                // Left from a message skipped in between: not to be held back any longer.
                if let Some(earlier) = settled.replace(committed) {
                    self.acknowledge_settled(folder, earlier, how).await?;
                }
            }
        }
        if let Some(earlier) = settled.take() {
            self.acknowledge_settled(folder, earlier, how).await?;
        }
        while let Some(batch) = in_flight.pop_front() {
            self.finish(folder, batch, how).await?;
        }
        Ok(self.shutdown.is_triggered())
    }

    /// Fetches `chunk`, acknowledging `settled` first: in the same round trip when the
    /// server allows it for fresh mail, else one after the other. A refused acknowledgement
    /// is kept for later as always; an error is the fetch's or the connection's.
    async fn fetch(
        &mut self,
        folder: &mut Folder,
        settled: Option<Settled>,
        chunk: &[u32],
        how: Acknowledging,
    ) -> Result<Vec<Fetched>, SessionError> {
        let Some(settled) = settled else {
            return Ok(folder.fetch(chunk).await?);
        };
        let together = how == Acknowledging::First
            && folder.acknowledges_pipelined(&self.mailbox.on_success)
            && folder.acknowledges_pipelined(&self.mailbox.on_failure);
        if !together {
            self.acknowledge_settled(folder, settled, how).await?;
            return Ok(folder.fetch(chunk).await?);
        }
        let on_success = self.mailbox.on_success.clone();
        let on_failure = self.mailbox.on_failure.clone();
        let answers = folder
            .acknowledge_and_fetch(
                &[
                    Acknowledgement {
                        uids: &settled.succeeded,
                        disposition: &on_success,
                    },
                    Acknowledgement {
                        uids: &settled.failed,
                        disposition: &on_failure,
                    },
                ],
                chunk,
            )
            .await?;
        let mut acknowledged = answers.acknowledged.into_iter();
        for (uids, fate) in [
            (&settled.succeeded, Fate::Processed),
            (&settled.failed, Fate::Failed),
        ] {
            let done = acknowledged.next().unwrap_or(Ok(()));
            if !uids.is_empty() {
                self.acknowledged(uids, fate, done)?;
            }
        }
        debug!(
            mailbox = %self.mailbox.name,
            "acknowledged {} processed and {} failed message(s) with the next fetch",
            settled.succeeded.len(),
            settled.failed.len()
        );
        Ok(answers.fetched?)
    }

    async fn finish(
        &mut self,
        folder: &mut Folder,
        batch: InFlight,
        how: Acknowledging,
    ) -> Result<(), SessionError> {
        let outcomes = batch.submitted.outcomes().await?;
        let settled = self.settle(&batch.uids, outcomes);
        self.acknowledge_settled(folder, settled, how).await
    }

    /// Gives up on a message the server failed to deliver again and again: the cursor moves
    /// past it and it goes where failures go, if the server lets us move it.
    async fn skip_unreadable(
        &mut self,
        folder: &mut Folder,
        uid: u32,
        uid_validity: u32,
        cursor: Option<MailboxCursor>,
    ) -> Result<(), SessionError> {
        let name = self.mailbox.name.clone();
        error!(
            mailbox = %name,
            uid,
            "the server failed to deliver this message {} times; recording it as failed and \
             skipping it (see the server's log)",
            unreadable::GIVE_UP_AFTER
        );
        // Its size helps find it in the server's logs; asking may fail as well.
        let size = match folder.size_of(uid).await {
            Ok(Some(size)) => format!("{size} bytes"),
            Ok(None) | Err(_) => "size unknown".to_string(),
        };
        let mut record = Incoming::new(
            Vec::new(),
            &name,
            format!("imap:{name} uid {uid} (UIDVALIDITY {uid_validity})"),
        );
        record.unreadable = Some(format!(
            "the server failed to deliver message UID {uid} ({size}) {} times; last error: {}",
            unreadable::GIVE_UP_AFTER,
            self.unreadable.last_error()
        ));
        self.sink.process_batch(vec![record], cursor).await?;
        self.unreadable.done(uid_validity, uid);
        self.status.count(&name, 0, 1);
        self.acknowledge_uids(folder, &[uid], Fate::Failed, Acknowledging::First)
            .await
    }

    /// Logs each committed message in its span and counts it; says which UIDs go where.
    fn settle(&mut self, fetched_uids: &[u32], outcomes: Vec<Outcome>) -> Settled {
        self.committed();
        let name = &self.mailbox.name.clone();
        if outcomes.len() != fetched_uids.len() {
            warn!(
                mailbox = %name,
                "the pipeline answered {} outcomes for {} messages; acknowledging only those it answered",
                outcomes.len(),
                fetched_uids.len()
            );
        }
        let mut succeeded = Vec::new();
        let mut failed = Vec::new();
        for (uid, outcome) in fetched_uids.iter().zip(&outcomes) {
            let span = info_span!(
                "message",
                mailbox = %name,
                uid,
                message_id = outcome.message_id.as_deref().unwrap_or(""),
                rule = outcome.rule.as_deref().unwrap_or(""),
                task = outcome.task,
            );
            let _in_span = span.enter();
            match outcome.status {
                OutcomeStatus::Applied => {
                    info!("applied");
                    succeeded.push(*uid);
                }
                OutcomeStatus::Duplicate => {
                    info!("already processed before");
                    succeeded.push(*uid);
                }
                OutcomeStatus::Failed => {
                    warn!(
                        "failed: {}; recorded for `mailrules failed`",
                        outcome.error.as_deref().unwrap_or("unknown error")
                    );
                    failed.push(*uid);
                }
            }
        }
        self.status
            .count(name, succeeded.len() as u64, failed.len() as u64);
        if outcomes.iter().any(|o| o.status == OutcomeStatus::Applied) {
            self.outbox_wake.notify_one();
        }
        Settled { succeeded, failed }
    }

    /// Acknowledges a committed batch on the server.
    async fn acknowledge_settled(
        &mut self,
        folder: &mut Folder,
        settled: Settled,
        how: Acknowledging,
    ) -> Result<(), SessionError> {
        let Settled { succeeded, failed } = settled;
        self.acknowledge_uids(folder, &succeeded, Fate::Processed, how)
            .await?;
        self.acknowledge_uids(folder, &failed, Fate::Failed, how)
            .await?;
        debug!(
            mailbox = %self.mailbox.name,
            "acknowledged {} processed and {} failed message(s)",
            succeeded.len(),
            failed.len()
        );
        Ok(())
    }
}
