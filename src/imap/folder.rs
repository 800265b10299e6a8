//! Working one selected folder: which UIDs are new, fetching them, acknowledging them
//! (move, flag, delete) and waiting for news with IDLE.

use std::future::Future;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{AttributeValue, MailboxDatum, Response};
use async_imap::types::UnsolicitedResponse;
use async_imap::Session;
use tracing::debug;

use super::namespace::Namespaces;
use super::news::{Found, NewMail};
use super::pipelined::fetched_message;
use super::stream::ImapStream;
use super::{
    exchange, exchange_all, server_words, timed, uid_set, within, Capabilities, Connection,
};
use super::{ImapError, Timeouts};
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

/// What became of a folder the daemon moves mail into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderCheck {
    Exists,
    Created,
    /// The server would not create it, in its own words.
    Refused(String),
}

/// A session with one folder selected.
pub struct Folder {
    pub(super) session: Session<ImapStream>,
    capabilities: Capabilities,
    namespaces: Namespaces,
    /// The selected folder, in the server's naming.
    name: String,
    uid_validity: u32,
    timeouts: Timeouts,
    /// The server announced new mail during one of our own commands.
    news: bool,
    /// What the search and fetch sent with IDLE's `DONE` found, for [`Folder::new_mail`].
    found_with_done: Option<(NewMail, Found)>,
    /// The server refused commands written right behind `DONE`: they wait for its answer.
    refuses_behind_done: bool,
}

impl Folder {
    /// Selects the folder a user calls `name` (resolved through the server's namespace); the
    /// server must report a UIDVALIDITY (every IMAP4rev1 server does).
    pub async fn select(
        connection: Connection,
        name: &str,
        timeouts: Timeouts,
    ) -> Result<(Folder, Selected), ImapError> {
        let Connection {
            mut session,
            capabilities,
            namespaces,
            ..
        } = connection;
        let name = &namespaces.resolve(name);
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
                    message: server_words(&message),
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
            namespaces,
            name: name.to_string(),
            uid_validity,
            timeouts,
            news: false,
            found_with_done: None,
            refuses_behind_done: false,
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

    pub fn namespaces(&self) -> &Namespaces {
        &self.namespaces
    }

    pub(super) fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    pub(super) fn uid_validity(&self) -> u32 {
        self.uid_validity
    }

    /// The server's name for the folder a user calls `name`.
    pub fn resolve(&self, name: &str) -> String {
        self.namespaces.resolve(name)
    }

    /// Whether the folder a user calls `name` exists and can hold mail.
    pub async fn exists(&mut self, name: &str) -> Result<bool, ImapError> {
        let quoted = quote(&encode_mailbox_name(&self.resolve(name)));
        let mut found = false;
        self.exchange(
            &format!("LIST \"\" {quoted}"),
            "looking for a folder",
            |r| {
                if let Response::MailboxData(MailboxDatum::List {
                    name_attributes, ..
                }) = r
                {
                    found |= !name_attributes
                        .iter()
                        .any(|a| matches!(a, async_imap::imap_proto::NameAttribute::NoSelect));
                }
            },
        )
        .await?;
        Ok(found)
    }

    /// Makes sure the folder a user calls `name` exists, creating it if needed. A refusal is
    /// reported, not an error: the daemon goes on processing and keeps the messages it cannot
    /// move until the folder can be used.
    pub async fn ensure_folder(&mut self, name: &str) -> Result<FolderCheck, ImapError> {
        if self.exists(name).await? {
            return Ok(FolderCheck::Exists);
        }
        let quoted = quote(&encode_mailbox_name(&self.resolve(name)));
        match self
            .exchange(&format!("CREATE {quoted}"), "creating a folder", |_| {})
            .await
        {
            Ok(()) => Ok(FolderCheck::Created),
            // Another session may have created it since we looked (Dovecot then answers
            // `NO [ALREADYEXISTS]`): a refusal counts only if the folder is still missing.
            Err(ImapError::Refused { .. }) if self.exists(name).await? => Ok(FolderCheck::Exists),
            Err(ImapError::Refused { message, .. }) => Ok(FolderCheck::Refused(message)),
            Err(e) => Err(e),
        }
    }

    /// UIDs from `first` on, ascending.
    pub async fn uids_from(&mut self, first: u32) -> Result<Vec<u32>, ImapError> {
        let first = first.max(1);
        let found = self.search(&format!("UID {first}:*")).await?;
        // `n:*` always includes the highest UID, even when it is below n.
        Ok(found.into_iter().filter(|&u| u >= first).collect())
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
        let unseen = if unseen_only { " UNSEEN" } else { "" };
        let found = self.search(&format!("UID 1:{last}{unseen}")).await?;
        Ok(found.into_iter().filter(|&u| u <= last).collect())
    }

    pub(super) async fn search(&mut self, criteria: &str) -> Result<Vec<u32>, ImapError> {
        let mut uids = Vec::new();
        self.exchange(&format!("UID SEARCH {criteria}"), "searching", |response| {
            if let Response::MailboxData(MailboxDatum::Search(found)) = response {
                uids.extend_from_slice(found);
            }
        })
        .await?;
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// The full raw messages for `uids` (ascending), without setting \Seen. Messages that
    /// vanished in the meantime are simply missing from the result; any failure of the command
    /// is an error (never a silently shorter result).
    pub async fn fetch(&mut self, uids: &[u32]) -> Result<Vec<Fetched>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = |uid: u32| uids.binary_search(&uid).is_ok();
        self.fetch_set(&uid_set(uids), wanted).await
    }

    /// [`NewMail`]'s search and fetch in one round trip (pipelined), or no round trip when
    /// they went out with IDLE's `DONE` (see [`Folder::idle`]).
    pub async fn new_mail(&mut self, query: NewMail) -> Result<Found, ImapError> {
        if let Some((asked, found)) = self.found_with_done.take() {
            if asked == query {
                return Ok(found);
            }
        }
        let commands = query.commands();
        let commands: Vec<(&str, &'static str)> = commands
            .iter()
            .map(|(command, doing)| (command.as_str(), *doing))
            .collect();
        let mut found = Found::default();
        let answers = self
            .exchange_all(&commands, |response| query.collect(response, &mut found))
            .await?;
        query.finish(found, answers)
    }

    /// `UID FETCH` of `set`, keeping the messages `wanted` says were asked for (a server may
    /// add others, e.g. flags another client changed).
    async fn fetch_set(
        &mut self,
        set: &str,
        wanted: impl Fn(u32) -> bool,
    ) -> Result<Vec<Fetched>, ImapError> {
        let mut fetched = Vec::new();
        let command = format!("UID FETCH {set} (UID BODY.PEEK[])");
        self.exchange(&command, "fetching mail", |response| {
            if let Some(message) = fetched_message(response, &wanted) {
                fetched.push(message);
            }
        })
        .await?;
        fetched.sort_by_key(|f| f.uid);
        fetched.dedup_by_key(|f| f.uid);
        Ok(fetched)
    }

    /// The size the server gives for message `uid`, if it has it.
    pub async fn size_of(&mut self, uid: u32) -> Result<Option<u32>, ImapError> {
        let mut size = None;
        self.exchange(
            &format!("UID FETCH {uid} (UID RFC822.SIZE)"),
            "asking a message's size",
            |r| {
                if let Response::Fetch(_, attributes) = r {
                    for attribute in attributes {
                        if let AttributeValue::Rfc822Size(s) = attribute {
                            size = Some(*s);
                        }
                    }
                }
            },
        )
        .await?;
        Ok(size)
    }

    /// Runs one command on this session (see [`exchange`]).
    pub(super) async fn exchange(
        &mut self,
        command: &str,
        doing: &'static str,
        each: impl FnMut(&Response<'_>),
    ) -> Result<(), ImapError> {
        let limit = self.timeouts.command;
        exchange(
            &mut self.session,
            limit,
            command,
            doing,
            &mut self.news,
            each,
        )
        .await
    }

    /// Runs several commands on this session in one round trip (see [`exchange_all`]).
    pub(super) async fn exchange_all(
        &mut self,
        commands: &[(&str, &'static str)],
        each: impl FnMut(&Response<'_>),
    ) -> Result<Vec<Result<(), ImapError>>, ImapError> {
        let limit = self.timeouts.command;
        exchange_all(&mut self.session, limit, commands, &mut self.news, each).await
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
                let target = &self.resolve(target);
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
                let target = &self.resolve(target);
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

    pub(super) fn target_error(
        &self,
        e: async_imap::error::Error,
        target: &str,
        doing: &'static str,
    ) -> ImapError {
        match e {
            async_imap::error::Error::No(message) => ImapError::Folder {
                folder: target.to_string(),
                message: server_words(&message),
            },
            e => ImapError::from_imap(e, doing),
        }
    }

    pub(super) async fn add_flag(&mut self, set: &str, flag: &str) -> Result<(), ImapError> {
        let command = format!("UID STORE {set} +FLAGS.SILENT ({flag})");
        self.exchange(&command, "setting flags", |_| {}).await
    }

    pub(super) async fn expunge(&mut self, set: &str) -> Result<(), ImapError> {
        let command = self.expunge_command(set);
        self.exchange(&command, "expunging", |_| {}).await
    }

    /// The command that expunges `set`.
    pub(super) fn expunge_command(&self, set: &str) -> String {
        if self.capabilities.uidplus {
            format!("UID EXPUNGE {set}")
        } else {
            // Without UIDPLUS, EXPUNGE also removes whatever else is marked \Deleted; that is
            // what the user asked for by marking it.
            "EXPUNGE".to_string()
        }
    }

    /// Forgets the unsolicited responses seen so far; true if any of them announced new mail.
    pub fn take_changes(&mut self) -> bool {
        let mut changed = std::mem::take(&mut self.news);
        while let Ok(response) = self.session.unsolicited_responses.try_recv() {
            changed |= unsolicited_announces_mail(&response);
        }
        changed
    }

    /// Waits with IDLE until the server reports a change, `refresh` passes, or `stop` resolves.
    /// IDLE is always ended properly, so the session stays usable afterwards. On news,
    /// `on_news` is called at once (before IDLE is left), and `then` (the search and fetch of
    /// new mail) is written right behind `DONE`; [`Folder::new_mail`] answers it from what the
    /// server sent back.
    pub async fn idle(
        self,
        refresh: Duration,
        stop: impl Future<Output = ()>,
        then: Option<NewMail>,
        on_news: impl FnOnce(),
    ) -> Result<(Folder, Wake), ImapError> {
        let Folder {
            session,
            capabilities,
            namespaces,
            name,
            uid_validity,
            timeouts,
            mut news,
            found_with_done: _,
            mut refuses_behind_done,
        } = self;
        let unsolicited = session.unsolicited_responses.clone();
        let mut handle = session.idle();
        timed(timeouts.command, "starting IDLE", handle.init()).await?;
        // News that arrived while IDLE was being set up went to the unsolicited queue.
        let mut wake = None;
        while let Ok(response) = unsolicited.try_recv() {
            if unsolicited_announces_mail(&response) {
                wake = Some(Wake::Changed);
            }
        }
        let wake = match wake {
            Some(wake) => wake,
            None => {
                // The library's own timeout restarts on every keepalive ("* OK Still here"),
                // so the refresh period is enforced here.
                let refreshed = tokio::time::sleep(refresh);
                tokio::pin!(refreshed, stop);
                loop {
                    let (heard, _interrupt) = handle.wait_with_timeout(refresh);
                    break tokio::select! {
                        heard = heard => match heard {
                            Ok(IdleResponse::NewData(data)) if super::announces_mail(data.parsed()) => {
                                Wake::Changed
                            }
                            // Flags another client changed, mail it deleted: no new mail, so
                            // no reason to leave IDLE (a person reading the watched folder
                            // would otherwise cost a search per message read).
                            Ok(IdleResponse::NewData(_)) => continue,
                            Ok(IdleResponse::Timeout) => Wake::Quiet,
                            // The stream ended: the server went away.
                            Ok(IdleResponse::ManualInterrupt) => {
                                return Err(ImapError::Closed {
                                    message: "connection lost while idling".into(),
                                })
                            }
                            Err(e) => return Err(ImapError::from_imap(e, "idling")),
                        },
                        _ = &mut refreshed => Wake::Quiet,
                        _ = &mut stop => Wake::Stopped,
                    };
                }
            }
        };
        if wake == Wake::Changed {
            on_news();
        }
        let news_now = wake == Wake::Changed && !refuses_behind_done;
        let behind_done = then.filter(|_| news_now).map(|query| {
            let (bytes, tags) = query.behind_done();
            handle.as_mut().send_with_next_flush(&bytes);
            (query, tags)
        });
        let mut session = timed(timeouts.command, "leaving IDLE", handle.done()).await?;
        let mut found_with_done = None;
        if let Some((query, tags)) = behind_done {
            let doings = query.commands().map(|(_, doing)| doing);
            let mut found = Found::default();
            let answers = super::read_answers(
                &mut session,
                timeouts.command,
                &tags,
                &doings,
                &mut news,
                |response| query.collect(response, &mut found),
            )
            .await?;
            match query.finish(found, answers) {
                Ok(found) => found_with_done = Some((query, found)),
                // A server that wants DONE answered before the next command: the search and
                // fetch go out on their own from now on (`Folder::new_mail`).
                Err(ImapError::Refused { message, .. }) => {
                    debug!(
                        folder = %name,
                        "the server refused a search sent right behind DONE ({message}); \
                         waiting for its answer to DONE from now on"
                    );
                    refuses_behind_done = true;
                }
                Err(e) => return Err(e),
            }
        }
        if wake == Wake::Changed {
            // The rest of the announcement that woke us (`* 1 RECENT` after `* 7 EXISTS`)
            // waits in the queue; the search that follows sees everything it announced, so
            // it is no news any more (else it cost a second, empty search before idling).
            while unsolicited.try_recv().is_ok() {}
        }
        Ok((
            Folder {
                session,
                capabilities,
                namespaces,
                name,
                uid_validity,
                timeouts,
                news,
                found_with_done,
                refuses_behind_done,
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

/// `text` as an IMAP quoted string.
pub(super) fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
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

/// [`super::announces_mail`] for a response the library queued as unsolicited.
fn unsolicited_announces_mail(response: &UnsolicitedResponse) -> bool {
    match response {
        UnsolicitedResponse::Exists(_) => true,
        UnsolicitedResponse::Recent(recent) => *recent > 0,
        _ => false,
    }
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
