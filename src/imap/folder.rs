//! Working one selected folder: which UIDs are new, fetching them, acknowledging them
//! (move, flag, delete) and waiting for news with IDLE.

use std::future::Future;
use std::time::Duration;

use async_imap::types::UnsolicitedResponse;
use async_imap::Session;
use futures::StreamExt;

use super::stream::ImapStream;
use super::{timed, uid_set, within, Capabilities, Connection, ImapError, Timeouts};
use crate::config::Disposition;

/// What SELECT told us about the folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    pub uid_validity: u32,
    pub exists: u32,
}

/// One fetched message.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
}

/// Why waiting for news ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The server reported a change (new mail, most likely).
    Changed,
    /// Nothing happened within the refresh period.
    Quiet,
    /// The caller asked to stop.
    Stopped,
}

/// A session with one folder selected.
pub struct Folder {
    session: Session<ImapStream>,
    capabilities: Capabilities,
    name: String,
    timeouts: Timeouts,
}

impl Folder {
    /// Selects `name`; the server must report a UIDVALIDITY (every IMAP4rev1 server does).
    pub async fn select(
        connection: Connection,
        name: &str,
        timeouts: Timeouts,
    ) -> Result<(Folder, Selected), ImapError> {
        let Connection {
            mut session,
            capabilities,
        } = connection;
        let mailbox = match within(
            timeouts.command,
            "selecting the folder",
            session.select(encode_mailbox_name(name)),
        )
        .await?
        {
            Ok(mailbox) => mailbox,
            Err(async_imap::error::Error::No(message)) => {
                return Err(ImapError::Folder {
                    folder: name.to_string(),
                    message,
                })
            }
            Err(e) => return Err(ImapError::from_imap(e, "selecting the folder")),
        };
        let uid_validity = mailbox.uid_validity.ok_or_else(|| ImapError::Folder {
            folder: name.to_string(),
            message: "the server reports no UIDVALIDITY for it".into(),
        })?;
        let folder = Folder {
            session,
            capabilities,
            name: name.to_string(),
            timeouts,
        };
        Ok((
            folder,
            Selected {
                uid_validity,
                exists: mailbox.exists,
            },
        ))
    }

    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Creates `name` unless it exists. A refusal is not an error here: if the folder really
    /// cannot be used, moving into it fails and says so.
    pub async fn ensure_folder(&mut self, name: &str) -> Result<bool, ImapError> {
        match within(
            self.timeouts.command,
            "creating a folder",
            self.session.create(encode_mailbox_name(name)),
        )
        .await?
        {
            Ok(()) => Ok(true),
            Err(async_imap::error::Error::No(_)) => Ok(false),
            Err(e) => Err(ImapError::from_imap(e, "creating a folder")),
        }
    }

    /// UIDs from `first` on, ascending.
    pub async fn uids_from(&mut self, first: u32) -> Result<Vec<u32>, ImapError> {
        let first = first.max(1);
        let found = timed(
            self.timeouts.command,
            "searching for new mail",
            self.session.uid_search(format!("UID {first}:*")),
        )
        .await?;
        // `n:*` always includes the highest UID, even when it is below n.
        let mut uids: Vec<u32> = found.into_iter().filter(|&u| u >= first).collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// UIDs up to and including `last` (optionally only unseen ones), ascending.
    pub async fn uids_through(
        &mut self,
        last: u32,
        unseen_only: bool,
    ) -> Result<Vec<u32>, ImapError> {
        if last == 0 {
            return Ok(Vec::new());
        }
        let query = if unseen_only {
            format!("UID 1:{last} UNSEEN")
        } else {
            format!("UID 1:{last}")
        };
        let found = timed(
            self.timeouts.command,
            "searching for unacknowledged mail",
            self.session.uid_search(query),
        )
        .await?;
        let mut uids: Vec<u32> = found.into_iter().filter(|&u| u <= last).collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The full raw messages for `uids` (without setting \Seen). Messages that vanished in the
    /// meantime are simply missing from the result.
    pub async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<Fetched>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let limit = self.timeouts.command;
        let mut stream = timed(
            limit,
            "fetching mail",
            self.session
                .uid_fetch(uid_set(uids), "(UID RFC822.SIZE BODY.PEEK[])"),
        )
        .await?;
        let mut fetched = Vec::with_capacity(uids.len());
        // The limit applies per message, so a large batch on a slow link is not cut off.
        while let Some(item) = within(limit, "fetching mail", stream.next()).await? {
            let fetch = item.map_err(|e| ImapError::from_imap(e, "fetching mail"))?;
            let (Some(uid), Some(body)) = (fetch.uid, fetch.body()) else {
                continue; // an unsolicited flag update, not one of ours
            };
            if uids.contains(&uid) {
                fetched.push(Fetched {
                    uid,
                    raw: body.to_vec(),
                });
            }
        }
        drop(stream);
        fetched.sort_by_key(|f| f.uid);
        Ok(fetched)
    }

    /// Applies `disposition` to `uids`: their fate is committed, this only tidies the server.
    pub async fn acknowledge(
        &mut self,
        uids: &[u32],
        disposition: &Disposition,
    ) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        match disposition {
            Disposition::Keep => Ok(()),
            Disposition::Flag => self.add_flag(&set, "\\Seen").await,
            Disposition::Delete => {
                self.add_flag(&set, "\\Deleted").await?;
                self.expunge(&set).await
            }
            Disposition::Move(target) if self.capabilities.moves => {
                let limit = self.timeouts.command;
                let moved = within(
                    limit,
                    "moving mail",
                    self.session.uid_mv(&set, encode_mailbox_name(target)),
                )
                .await?;
                moved.map_err(|e| self.target_error(e, target, "moving mail"))
            }
            Disposition::Move(target) => {
                let limit = self.timeouts.command;
                let copied = within(
                    limit,
                    "copying mail",
                    self.session.uid_copy(&set, encode_mailbox_name(target)),
                )
                .await?;
                copied.map_err(|e| self.target_error(e, target, "copying mail"))?;
                self.add_flag(&set, "\\Deleted").await?;
                self.expunge(&set).await
            }
        }
    }

    fn target_error(
        &self,
        e: async_imap::error::Error,
        target: &str,
        doing: &'static str,
    ) -> ImapError {
        match e {
            async_imap::error::Error::No(message) => ImapError::Folder {
                folder: target.to_string(),
                message,
            },
            e => ImapError::from_imap(e, doing),
        }
    }

    async fn add_flag(&mut self, set: &str, flag: &str) -> Result<(), ImapError> {
        let limit = self.timeouts.command;
        let mut updates = timed(
            limit,
            "setting flags",
            self.session
                .uid_store(set, format!("+FLAGS.SILENT ({flag})")),
        )
        .await?;
        while let Some(update) = within(limit, "setting flags", updates.next()).await? {
            update.map_err(|e| ImapError::from_imap(e, "setting flags"))?;
        }
        Ok(())
    }

    async fn expunge(&mut self, set: &str) -> Result<(), ImapError> {
        let limit = self.timeouts.command;
        if self.capabilities.uidplus {
            let gone = timed(limit, "expunging", self.session.uid_expunge(set)).await?;
            let mut gone = std::pin::pin!(gone);
            while let Some(uid) = within(limit, "expunging", gone.next()).await? {
                uid.map_err(|e| ImapError::from_imap(e, "expunging"))?;
            }
        } else {
            // Without UIDPLUS, EXPUNGE also removes whatever else is marked \Deleted; that is
            // what the user asked for by marking it.
            let gone = timed(limit, "expunging", self.session.expunge()).await?;
            let mut gone = std::pin::pin!(gone);
            while let Some(seq) = within(limit, "expunging", gone.next()).await? {
                seq.map_err(|e| ImapError::from_imap(e, "expunging"))?;
            }
        }
        Ok(())
    }

    /// Forgets the unsolicited responses seen so far; true if any of them announced new mail.
    pub fn take_changes(&mut self) -> bool {
        let mut changed = false;
        while let Ok(response) = self.session.unsolicited_responses.try_recv() {
            changed |= matches!(
                response,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            );
        }
        changed
    }

    /// Waits with IDLE until the server reports a change, `refresh` passes, or `stop` resolves.
    /// IDLE is always ended properly, so the session stays usable afterwards.
    pub async fn idle(
        self,
        refresh: Duration,
        stop: impl Future<Output = ()>,
    ) -> Result<(Folder, Wake), ImapError> {
        let Folder {
            session,
            capabilities,
            name,
            timeouts,
        } = self;
        let unsolicited = session.unsolicited_responses.clone();
        let mut handle = session.idle();
        timed(timeouts.command, "starting IDLE", handle.init()).await?;
        // News that arrived while IDLE was being set up went to the unsolicited queue.
        let mut wake = None;
        while let Ok(response) = unsolicited.try_recv() {
            if matches!(
                response,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            ) {
                wake = Some(Wake::Changed);
            }
        }
        let wake = match wake {
            Some(wake) => wake,
            None => {
                // The library's own timeout restarts on every keepalive ("* OK Still here"),
                // so the refresh period is enforced here.
                let (news, _interrupt) = handle.wait_with_timeout(refresh);
                tokio::select! {
                    news = news => match news {
                        Ok(async_imap::extensions::idle::IdleResponse::NewData(_)) => Wake::Changed,
                        Ok(async_imap::extensions::idle::IdleResponse::Timeout) => Wake::Quiet,
                        // The stream ended: the server went away.
                        Ok(async_imap::extensions::idle::IdleResponse::ManualInterrupt) => {
                            return Err(ImapError::Closed {
                                message: "connection lost while idling".into(),
                            })
                        }
                        Err(e) => return Err(ImapError::from_imap(e, "idling")),
                    },
                    _ = tokio::time::sleep(refresh) => Wake::Quiet,
                    _ = stop => Wake::Stopped,
                }
            }
        };
        let session = timed(timeouts.command, "leaving IDLE", handle.done()).await?;
        Ok((
            Folder {
                session,
                capabilities,
                name,
                timeouts,
            },
            wake,
        ))
    }

    /// Says goodbye; errors do not matter any more at this point.
    pub async fn logout(mut self) {
        let _ = within(self.timeouts.command, "logging out", self.session.logout()).await;
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A folder name as IMAP wants it: non-ASCII names in modified UTF-7 (RFC 3501 5.1.3).
pub fn encode_mailbox_name(name: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let digits = chunk.len() + 1;
            for i in 0..digits {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out.push('-');
        pending.clear();
    };
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut pending, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_use_modified_utf7() {
        assert_eq!(encode_mailbox_name("INBOX"), "INBOX");
        assert_eq!(encode_mailbox_name("Tom & Jerry"), "Tom &- Jerry");
        // RFC 3501's own example.
        assert_eq!(
            encode_mailbox_name("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            encode_mailbox_name("Обработано"),
            "&BB4EMQRABDAEMQQ+BEIEMAQ9BD4-"
        );
    }
}
