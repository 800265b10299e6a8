//! One mailbox, watched for as long as the daemon runs: connect, catch up, then IDLE (or poll)
//! and process each batch as it comes: fetch → pipeline (commit) → acknowledge on the server.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{debug, error, info, warn};

use super::policy::{Backoff, RetryPolicy};
use super::shutdown::Shutdown;
use super::sink::{SinkFailure, SinkHandle};
use super::status::{MailboxState, StatusBoard};
use super::unacknowledged::{Fate, Unacknowledged};
use super::unreadable::Unreadable;
use crate::config::{ConfigError, Disposition, MailboxConfig};
use crate::imap::{self, ErrorKind, Folder, FolderCheck, ImapError, Login, NewMail, Wake};
use crate::oauth2::login::LoginError;
use crate::oauth2::{OAuth2Error, TokenSource};

mod batches;

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Password(#[from] ConfigError),
    #[error(transparent)]
    Sink(#[from] SinkFailure),
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(transparent)]
    Token(#[from] OAuth2Error),
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

/// How to acknowledge a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acknowledging {
    /// Fresh mail: nothing was done to it on the server yet.
    First,
    /// Mail an earlier attempt may have half acknowledged (see [`Folder::acknowledge_again`]).
    Again,
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
    unacknowledged: Unacknowledged,
    /// The last refusal to acknowledge that was logged (the same one again is not news).
    refusal_reported: Option<String>,
    /// Access tokens, for a mailbox with `auth = "oauth2"` (made at the first login).
    tokens: Option<TokenSource>,
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
            unacknowledged: Unacknowledged::new(policy.backoff_initial, policy.operator_retry),
            refusal_reported: None,
            tokens: None,
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
            SessionError::Login(e) if e.kind() == ErrorKind::Transient => Trouble::Network,
            SessionError::Imap(_)
            | SessionError::Password(_)
            | SessionError::Login(_)
            | SessionError::Token(_) => Trouble::Operator(error.to_string()),
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
                    "{error}; reconnecting with backoff (up to {} between attempts)",
                    crate::text::duration(self.policy.backoff_max)
                ),
                Trouble::Operator(_) => error!(
                    mailbox = %name,
                    "{error}; retrying every {} until fixed",
                    crate::text::duration(self.policy.operator_retry)
                ),
                Trouble::Store => error!(
                    mailbox = %name,
                    "{error}; nothing was committed or acknowledged, retrying with backoff"
                ),
            }
            self.trouble = Some(trouble);
        } else {
            let wait = crate::text::duration(wait);
            debug!(mailbox = %name, "still failing: {error}; next attempt in {wait}");
        }
        self.status.set_state(name, state);
        wait
    }

    /// The session is up: connection trouble is over (store trouble ends with a commit).
    fn connected(&mut self, folder: &Folder, idle: bool, signed_in_with: &str) {
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
                let with = match signed_in_with {
                    "LOGIN" => String::new(),
                    mechanism => format!(" with {mechanism}"),
                };
                info!(
                    mailbox = %m.name,
                    "connected to {}:{} as {}{with}, folder {} ({how})",
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
        let timeouts = self.policy.timeouts;
        let connection = match &self.mailbox.oauth2 {
            None => {
                let what = format!("mailbox {}", self.mailbox.name);
                let password = self.mailbox.password.read(&what)?.unwrap_or_default();
                tokio::select! {
                    connection = imap::connect(&self.mailbox, Login::Password(&password), &timeouts) => connection?,
                    _ = self.shutdown.wait() => return Ok(()),
                }
            }
            Some(config) => {
                let tokens = match &mut self.tokens {
                    Some(tokens) => tokens,
                    None => self.tokens.insert(TokenSource::new(
                        &format!("mailbox \"{}\"", self.mailbox.name),
                        &crate::oauth2::reauth_command(&self.mailbox.name),
                        config,
                    )?),
                };
                tokio::select! {
                    connection = crate::oauth2::login::connect(&self.mailbox, tokens, &timeouts) => connection?,
                    _ = self.shutdown.wait() => return Ok(()),
                }
            }
        };
        let signed_in_with = connection.signed_in_with;
        let (mut folder, selected) =
            Folder::select(connection, &self.mailbox.folder, timeouts).await?;
        for (key, disposition) in [
            ("on_success", &self.mailbox.on_success),
            ("on_failure", &self.mailbox.on_failure),
        ] {
            if let Disposition::Move(target) = disposition {
                let resolved = folder.resolve(target);
                match folder.ensure_folder(target).await? {
                    FolderCheck::Exists => {}
                    FolderCheck::Created => {
                        info!(mailbox = %self.mailbox.name, "created folder {resolved}")
                    }
                    FolderCheck::Refused(words) => error!(
                        mailbox = %self.mailbox.name,
                        "cannot create folder \"{resolved}\" ({key} = \"move:{target}\"): the \
                         server said: {words}; mail goes on being processed and stays in {} \
                         until it can be moved",
                        folder.name()
                    ),
                }
            }
        }
        let capabilities = folder.capabilities();
        debug!(mailbox = %self.mailbox.name, "logged in; the server offers {capabilities}");
        let idle = self.mailbox.idle && capabilities.idle;
        let cursor = self.sink.mailbox_cursor(&self.mailbox.name).await?;
        self.connected(&folder, idle, signed_in_with);

        let uid_validity = selected.uid_validity;
        self.unacknowledged.set_uid_validity(uid_validity);
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

        // The server announced news since the last look: new mail is then fetched at once.
        let mut announced = false;
        loop {
            // Catch up with everything that is there.
            loop {
                // After news, the next batch is fetched with the search (one round trip less
                // before it is committed; none more after IDLE).
                let after_news = std::mem::take(&mut announced);
                let query = self.new_mail_from(next_uid, uid_validity);
                let (uids, fetched) = match query.filter(|_| after_news) {
                    Some(query) => {
                        let found = folder.new_mail(query).await?;
                        (found.uids, Some(found.fetched))
                    }
                    None => (folder.uids_from(next_uid).await?, None),
                };
                if uids.is_empty() {
                    break;
                }
                // With "announced news" and "fetched": where a woken watcher's time goes
                // (bench/idle_phases.py).
                debug!(mailbox = %self.mailbox.name, "found {} new message(s)", uids.len());
                if self
                    .process_all(
                        &mut folder,
                        &uids,
                        fetched,
                        uid_validity,
                        Acknowledging::First,
                    )
                    .await?
                {
                    folder.logout().await;
                    return Ok(());
                }
                next_uid = uids[uids.len() - 1].saturating_add(1);
            }
            if folder.take_changes() {
                announced = true;
                continue; // mail arrived while we were busy
            }
            if self.shutdown.is_triggered() {
                break;
            }
            self.acknowledge_waiting(&mut folder).await?;
            // Wake up in time for the next try of refused acknowledgements.
            let until_retry = self
                .unacknowledged
                .retry_at()
                .map(|at| at.saturating_duration_since(tokio::time::Instant::now()));
            if idle {
                let refresh = until_retry.map_or(self.policy.idle_refresh, |d| {
                    d.min(self.policy.idle_refresh)
                });
                let then = self.new_mail_from(next_uid, uid_validity);
                let name = &self.mailbox.name;
                // The moment mailrules heard of new mail, for measuring what it adds to the
                // server's own delay (bench/imap_bench.py reads it).
                let heard = || debug!(mailbox = %name, "the server announced news");
                let (back, wake) = folder
                    .idle(refresh, self.shutdown.wait(), then, heard)
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
                    Wake::Changed => announced = true,
                }
            } else {
                let poll = until_retry.map_or(self.mailbox.poll_interval, |d| {
                    d.min(self.mailbox.poll_interval)
                });
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = self.shutdown.wait() => break,
                }
            }
        }
        folder.logout().await;
        Ok(())
    }

    /// The search for mail from `next_uid` on and the fetch of the batch that starts there,
    /// to send after news; `None` when a message there is suspected unreadable (the batches
    /// then fetch one by one).
    fn new_mail_from(&self, next_uid: u32, uid_validity: u32) -> Option<NewMail> {
        let batch = self.mailbox.batch_size.max(1);
        let normal = self
            .unreadable
            .batch_size(uid_validity, next_uid, batch as usize)
            == batch as usize;
        normal.then(|| NewMail::new(next_uid, next_uid.saturating_add(batch - 1)))
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
        self.process_all(folder, &pending, None, uid_validity, Acknowledging::Again)
            .await
    }

    /// Tries again to acknowledge the messages the server refused before, if it is time.
    async fn acknowledge_waiting(&mut self, folder: &mut Folder) -> Result<(), SessionError> {
        let Some((processed, failed)) = self.unacknowledged.due(tokio::time::Instant::now()) else {
            return Ok(());
        };
        let waiting = processed.len() + failed.len();
        self.acknowledge_uids(folder, &processed, Fate::Processed, Acknowledging::Again)
            .await?;
        self.acknowledge_uids(folder, &failed, Fate::Failed, Acknowledging::Again)
            .await?;
        if self.unacknowledged.len() == 0 {
            info!(
                mailbox = %self.mailbox.name,
                "acknowledged the {waiting} message(s) the server had refused before"
            );
            self.refusal_reported = None;
        }
        Ok(())
    }
}
