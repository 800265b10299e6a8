//! One mailbox, watched for as long as the daemon runs: connect, catch up, then IDLE (or poll)
//! and process each batch as it comes: fetch → pipeline (commit) → acknowledge on the server.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{debug, error, info, info_span, warn};

use super::policy::{Backoff, RetryPolicy};
use super::shutdown::Shutdown;
use super::sink::{
    Incoming, MailboxCursor, Outcome, OutcomeStatus, SinkFailure, SinkHandle, Submitted,
};
use super::status::{MailboxState, StatusBoard};
use super::unreadable::{self, Unreadable};
use crate::config::{ConfigError, Disposition, MailboxConfig};
use crate::imap::{self, ErrorKind, Folder, ImapError, Wake};

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Password(#[from] ConfigError),
    #[error(transparent)]
    Sink(#[from] SinkFailure),
}

/// The kinds of trouble, each logged once when it starts (not on every retry).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trouble {
    Network,
    /// With the problem's text: a different problem (password fixed, now the folder is
    /// missing) is news for the operator, the same one again is not.
    Operator(String),
    Store,
}

/// The processing thread is gone; the daemon must stop.
#[derive(Debug, thiserror::Error)]
#[error("mailbox {mailbox}: {source}")]
pub struct WatcherFailed {
    mailbox: String,
    source: super::sink::SinkGone,
}

/// A batch committed (or being committed) but not yet acknowledged.
struct InFlight {
    uids: Vec<u32>,
    submitted: Submitted,
}

pub(crate) struct Watcher {
    mailbox: MailboxConfig,
    sink: SinkHandle,
    policy: Arc<RetryPolicy>,
    status: StatusBoard,
    shutdown: Shutdown,
    outbox_wake: Arc<Notify>,
    backoff: Backoff,
    trouble: Option<Trouble>,
    unreadable: Unreadable,
}

impl Watcher {
    pub(crate) fn new(
        mailbox: MailboxConfig,
        sink: SinkHandle,
        policy: Arc<RetryPolicy>,
        status: StatusBoard,
        shutdown: Shutdown,
        outbox_wake: Arc<Notify>,
    ) -> Watcher {
        status.register(&mailbox.name);
        Watcher {
            backoff: Backoff::new(&policy),
            mailbox,
            sink,
            policy,
            status,
            shutdown,
            outbox_wake,
            trouble: None,
            unreadable: Unreadable::default(),
        }
    }

    /// Runs until shutdown; fails only when the processing thread is gone.
    pub(crate) async fn run(mut self) -> Result<(), WatcherFailed> {
        let name = self.mailbox.name.clone();
        while !self.shutdown.is_triggered() {
            let error = match self.session().await {
                Ok(()) => break,
                Err(SessionError::Sink(SinkFailure::Gone(source))) => {
                    self.status.set_state(&name, MailboxState::Stopped);
                    return Err(WatcherFailed {
                        mailbox: name,
                        source,
                    });
                }
                Err(e) => e,
            };
            let wait = self.report(&error);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.shutdown.wait() => {}
            }
        }
        self.status.set_state(&name, MailboxState::Stopped);
        info!(mailbox = %name, "stopped");
        Ok(())
    }

    /// Logs `error` if it starts a new kind of trouble, updates the status, and says how long
    /// to wait before the next attempt.
    fn report(&mut self, error: &SessionError) -> Duration {
        let name = &self.mailbox.name;
        let trouble = match error {
            SessionError::Imap(e) if e.kind() == ErrorKind::Transient => Trouble::Network,
            SessionError::Imap(_) | SessionError::Password(_) => {
                Trouble::Operator(error.to_string())
            }
            SessionError::Sink(_) => Trouble::Store,
        };
        let (wait, state) = match trouble {
            Trouble::Operator(_) => (
                self.policy.operator_retry,
                MailboxState::NeedsOperator {
                    problem: error.to_string(),
                },
            ),
            Trouble::Network | Trouble::Store => (
                self.backoff.next_wait(),
                MailboxState::Reconnecting {
                    problem: error.to_string(),
                },
            ),
        };
        if self.trouble.as_ref() != Some(&trouble) {
            match trouble {
                Trouble::Network => warn!(
                    mailbox = %name,
                    "{error}; reconnecting with backoff (up to {:?} between attempts)",
                    self.policy.backoff_max
                ),
                Trouble::Operator(_) => error!(
                    mailbox = %name,
                    "{error}; retrying every {:?} until fixed",
                    self.policy.operator_retry
                ),
                Trouble::Store => error!(
                    mailbox = %name,
                    "{error}; nothing was committed or acknowledged, retrying with backoff"
                ),
            }
            self.trouble = Some(trouble);
        } else {
            debug!(mailbox = %name, "still failing: {error}; next attempt in {wait:?}");
        }
        self.status.set_state(name, state);
        wait
    }

    /// The session is up: connection trouble is over (store trouble ends with a commit).
    fn connected(&mut self, folder: &Folder, idle: bool) {
        let m = &self.mailbox;
        let how = if idle {
            "IDLE".to_string()
        } else {
            format!("polling every {}s", m.poll_interval.as_secs())
        };
        match self.trouble {
            Some(Trouble::Network | Trouble::Operator(_)) => {
                info!(
                    mailbox = %m.name,
                    "connected again to {}:{}, folder {} ({how})",
                    m.host,
                    m.port,
                    folder.name()
                );
                self.trouble = None;
                self.backoff.reset();
            }
            Some(Trouble::Store) => {
                debug!(mailbox = %m.name, "connected again; the store still has to prove writable");
            }
            None => {
                info!(
                    mailbox = %m.name,
                    "connected to {}:{} as {}, folder {} ({how})",
                    m.host,
                    m.port,
                    m.user,
                    folder.name()
                );
                self.backoff.reset();
            }
        }
        self.status
            .set_state(&m.name, MailboxState::Watching { idle });
    }

    /// A batch was committed: if the store was the trouble, it is over.
    fn committed(&mut self) {
        if self.trouble == Some(Trouble::Store) {
            info!(
                mailbox = %self.mailbox.name,
                "the store accepts writes again; processing resumed"
            );
            self.trouble = None;
            self.backoff.reset();
        }
    }

    /// One connection, from login until shutdown or an error.
    async fn session(&mut self) -> Result<(), SessionError> {
        let what = format!("mailbox {}", self.mailbox.name);
        let password = self.mailbox.password.read(&what)?.unwrap_or_default();
        let timeouts = self.policy.timeouts;
        let connection = tokio::select! {
            connection = imap::connect(&self.mailbox, &password, &timeouts) => connection?,
            _ = self.shutdown.wait() => return Ok(()),
        };
        drop(password);
        let (mut folder, selected) =
            Folder::select(connection, &self.mailbox.folder, timeouts).await?;
        for disposition in [&self.mailbox.on_success, &self.mailbox.on_failure] {
            if let Disposition::Move(target) = disposition {
                if folder.ensure_folder(target).await? {
                    info!(mailbox = %self.mailbox.name, "created folder {target}");
                }
            }
        }
        let capabilities = folder.capabilities();
        debug!(mailbox = %self.mailbox.name, "logged in; the server offers {capabilities:?}");
        let idle = self.mailbox.idle && capabilities.idle;
        let cursor = self.sink.mailbox_cursor(&self.mailbox.name).await?;
        self.connected(&folder, idle);

        let uid_validity = selected.uid_validity;
        let mut next_uid = match &cursor {
            Some(c) if c.uid_validity == uid_validity => c.last_uid.saturating_add(1),
            Some(c) => {
                info!(
                    mailbox = %self.mailbox.name,
                    "UIDVALIDITY changed from {} to {uid_validity}: scanning the whole folder again \
                     (messages processed before are recognised and not applied twice)",
                    c.uid_validity
                );
                1
            }
            None => 1,
        };
        if let Some(c) = cursor.filter(|c| c.uid_validity == uid_validity) {
            if self
                .finish_acknowledging(&mut folder, c.last_uid, uid_validity)
                .await?
            {
                folder.logout().await;
                return Ok(());
            }
        }

        loop {
            // Catch up with everything that is there.
            loop {
                let uids = folder.uids_from(next_uid).await?;
                if uids.is_empty() {
                    break;
                }
                if self
                    .process_all(&mut folder, &uids, uid_validity, true)
                    .await?
                {
                    folder.logout().await;
                    return Ok(());
                }
                next_uid = uids[uids.len() - 1].saturating_add(1);
            }
            if folder.take_changes() {
                continue; // mail arrived while we were busy
            }
            if self.shutdown.is_triggered() {
                break;
            }
            if idle {
                let (back, wake) = folder
                    .idle(self.policy.idle_refresh, self.shutdown.wait())
                    .await?;
                folder = back;
                match wake {
                    Wake::Stopped => break,
                    // Servers drop clients idling past 30 minutes (RFC 2177).
                    Wake::Quiet => debug!(
                        mailbox = %self.mailbox.name,
                        "no news for {:?}; renewing IDLE",
                        self.policy.idle_refresh
                    ),
                    Wake::Changed => {}
                }
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(self.mailbox.poll_interval) => {}
                    _ = self.shutdown.wait() => break,
                }
            }
        }
        folder.logout().await;
        Ok(())
    }

    /// Messages at or below the committed cursor that are still in the folder were committed
    /// but not acknowledged (the daemon died in between). Running them through the pipeline
    /// again is harmless (they come back as duplicates) and tells us where each belongs.
    /// Only possible when acknowledging removes or flags every message; with `keep` nothing
    /// tells an acknowledged message from one that was not.
    /// Returns true if shutdown interrupted it.
    async fn finish_acknowledging(
        &mut self,
        folder: &mut Folder,
        last_uid: u32,
        uid_validity: u32,
    ) -> Result<bool, SessionError> {
        let dispositions = [&self.mailbox.on_success, &self.mailbox.on_failure];
        if dispositions.contains(&&Disposition::Keep) {
            return Ok(false);
        }
        let unseen_only = dispositions.contains(&&Disposition::Flag);
        let pending = folder.uids_through(last_uid, unseen_only).await?;
        if pending.is_empty() {
            return Ok(false);
        }
        info!(
            mailbox = %self.mailbox.name,
            "{} message(s) were processed before the last stop but not acknowledged; doing it now",
            pending.len()
        );
        self.process_all(folder, &pending, uid_validity, false)
            .await
    }

    /// Processes `uids` (ascending) in batches, advancing the committed cursor if `advance`.
    /// While one batch is on the processing thread the next one is fetched, and the one before
    /// is acknowledged. Checks for shutdown between batches: the batch being processed is
    /// finished and acknowledged, one merely fetched is dropped (it was not committed, so it
    /// is fetched again next time). Returns true if it stopped because of shutdown.
    async fn process_all(
        &mut self,
        folder: &mut Folder,
        uids: &[u32],
        uid_validity: u32,
        advance: bool,
    ) -> Result<bool, SessionError> {
        let mut in_flight: Option<InFlight> = None;
        let mut rest = uids;
        while let Some(&first) = rest.first() {
            if self.shutdown.is_triggered() {
                break;
            }
            let size =
                self.unreadable
                    .batch_size(uid_validity, first, self.mailbox.batch_size as usize);
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
            let fetched = match folder.fetch(chunk).await {
                Ok(fetched) => fetched,
                Err(e) => {
                    self.unreadable.fetch_failed(uid_validity, chunk);
                    if let Some(previous) = in_flight.take() {
                        // Acknowledge what is committed if the connection still allows it.
                        let _ = self.finish(folder, previous).await;
                    }
                    return Err(e.into());
                }
            };
            for uid in chunk {
                self.unreadable.done(uid_validity, *uid);
            }
            let previous = match in_flight.take() {
                Some(previous) => Some((previous.uids, previous.submitted.outcomes().await?)),
                None => None,
            };
            if self.shutdown.is_triggered() {
                if let Some((uids, outcomes)) = previous {
                    self.acknowledge(folder, &uids, outcomes).await?;
                }
                return Ok(true);
            }
            let uids: Vec<u32> = fetched.iter().map(|f| f.uid).collect();
            let name = &self.mailbox.name;
            let batch: Vec<Incoming> = fetched
                .into_iter()
                .map(|f| Incoming {
                    raw: f.raw,
                    mailbox: name.clone(),
                    source: format!("imap:{name} uid {}", f.uid),
                })
                .collect();
            let submitted = self
                .sink
                .submit(batch, cursor)
                .await
                .map_err(SinkFailure::from)?;
            in_flight = Some(InFlight { uids, submitted });
            if let Some((uids, outcomes)) = previous {
                self.acknowledge(folder, &uids, outcomes).await?;
            }
        }
        if let Some(last) = in_flight.take() {
            self.finish(folder, last).await?;
        }
        Ok(self.shutdown.is_triggered())
    }

    async fn finish(&mut self, folder: &mut Folder, batch: InFlight) -> Result<(), SessionError> {
        let outcomes = batch.submitted.outcomes().await?;
        self.acknowledge(folder, &batch.uids, outcomes).await
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
        error!(
            mailbox = %self.mailbox.name,
            uid,
            "the server failed to deliver this message {} times; skipping it (see the server's log)",
            unreadable::GIVE_UP_AFTER
        );
        self.sink.process_batch(Vec::new(), cursor).await?;
        self.unreadable.done(uid_validity, uid);
        if let Err(e) = folder.acknowledge(&[uid], &self.mailbox.on_failure).await {
            warn!(mailbox = %self.mailbox.name, uid, "cannot move the unreadable message: {e}");
        }
        Ok(())
    }

    /// Logs each committed message in its span, then acknowledges the batch on the server.
    async fn acknowledge(
        &mut self,
        folder: &mut Folder,
        fetched_uids: &[u32],
        outcomes: Vec<Outcome>,
    ) -> Result<(), SessionError> {
        self.committed();
        let name = &self.mailbox.name;
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
        folder
            .acknowledge(&succeeded, &self.mailbox.on_success)
            .await?;
        folder
            .acknowledge(&failed, &self.mailbox.on_failure)
            .await?;
        debug!(
            mailbox = %name,
            "acknowledged {} processed and {} failed message(s)",
            succeeded.len(),
            failed.len()
        );
        Ok(())
    }
}
