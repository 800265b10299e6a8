//! One test body for three IMAP servers: [`ImapServer`] starts a private Dovecot, Cyrus or
//! Courier and offers what tests do with any of them (put mail in, look at folders, restart),
//! over IMAP so that it works the same on each. Also what the Cyrus and Courier helpers share.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_imap::Session;
use futures::StreamExt;

use super::courier::Courier;
use super::cyrus::Cyrus;
use super::dovecot::{header, Dovecot, PASSWORD, USER};

/// Where scripts/test unpacks the IMAP server packages that cannot be installed beside
/// Dovecot (cyrus-imapd, courier-imap): outside the repository, shared by every worktree.
pub const UNPACKED_SERVERS: &str = "/var/cache/mailrules-tests/servers";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dovecot,
    Cyrus,
    Courier,
}

pub enum ImapServer {
    Dovecot(Dovecot),
    Cyrus(Cyrus),
    Courier(Courier),
}

impl ImapServer {
    /// Starts a fresh server of `kind` with one user ([`USER`], [`PASSWORD`]) and an empty
    /// INBOX; prints how long the start took.
    pub fn start(kind: Kind) -> ImapServer {
        let started = Instant::now();
        let server = match kind {
            Kind::Dovecot => ImapServer::Dovecot(Dovecot::start()),
            Kind::Cyrus => ImapServer::Cyrus(Cyrus::start()),
            Kind::Courier => ImapServer::Courier(Courier::start()),
        };
        eprintln!("{kind:?} started in {:?}", started.elapsed());
        server
    }

    pub fn kind(&self) -> Kind {
        match self {
            ImapServer::Dovecot(_) => Kind::Dovecot,
            ImapServer::Cyrus(_) => Kind::Cyrus,
            ImapServer::Courier(_) => Kind::Courier,
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            ImapServer::Dovecot(s) => s.port,
            ImapServer::Cyrus(s) => s.port,
            ImapServer::Courier(s) => s.port,
        }
    }

    pub fn password_file(&self) -> PathBuf {
        match self {
            ImapServer::Dovecot(s) => s.password_file(),
            ImapServer::Cyrus(s) => s.password_file(),
            ImapServer::Courier(s) => s.password_file(),
        }
    }

    /// The user's own folder `name` as this server spells it: Dovecot's personal namespace has
    /// no prefix, Cyrus's and Courier's is `INBOX.` with `.` as the delimiter.
    pub fn personal(&self, name: &str) -> String {
        match self.kind() {
            Kind::Dovecot => name.to_string(),
            Kind::Cyrus | Kind::Courier => format!("INBOX.{name}"),
        }
    }

    /// Stops the server and starts it again on the same port with the same mail; returns when
    /// the user can log in again.
    pub fn restart(&mut self) {
        let started = Instant::now();
        match self {
            ImapServer::Dovecot(s) => {
                s.stop();
                s.start_again();
            }
            ImapServer::Cyrus(s) => {
                s.stop();
                s.start_again();
            }
            ImapServer::Courier(s) => {
                s.stop();
                s.start_again();
            }
        }
        eprintln!("{:?} restarted in {:?}", self.kind(), started.elapsed());
    }

    /// A logged-in session of our own, for putting mail in and looking at folders.
    pub async fn session(&self) -> Session<tokio::net::TcpStream> {
        super::dovecot::login(self.port()).await
    }

    /// APPENDs every message of `raws` to `folder` (which must exist, e.g. INBOX) over one
    /// session, in this order.
    pub async fn append_all(&self, folder: &str, raws: &[Vec<u8>]) {
        let mut session = self.session().await;
        for raw in raws {
            session.append(folder, None, None, raw).await.unwrap();
        }
        session.logout().await.unwrap();
    }

    pub async fn append(&self, folder: &str, raw: &[u8]) {
        self.append_all(folder, &[raw.to_vec()]).await;
    }

    /// How many messages `folder` holds (0 if it does not exist); reads no message.
    pub async fn count(&self, folder: &str) -> usize {
        let mut session = self.session().await;
        let exists = session.examine(folder).await.map_or(0, |m| m.exists);
        session.logout().await.unwrap();
        exists as usize
    }

    /// Message-IDs (without <>) of the messages in `folder` in UID order, one per message
    /// (a message there twice is listed twice); empty if the folder does not exist.
    pub async fn message_ids(&self, folder: &str) -> Vec<String> {
        let mut session = self.session().await;
        let mut found = Vec::new();
        if let Ok(mailbox) = session.examine(folder).await {
            if mailbox.exists > 0 {
                let mut fetches = session
                    .fetch("1:*", "(UID BODY.PEEK[HEADER])")
                    .await
                    .unwrap();
                while let Some(fetch) = fetches.next().await {
                    let fetch = fetch.unwrap();
                    if let (Some(uid), Some(head)) = (fetch.uid, fetch.header()) {
                        let id = header(head, "Message-ID").unwrap_or_default();
                        found.push((uid, id.trim_matches(['<', '>']).to_string()));
                    }
                }
            }
        }
        session.logout().await.unwrap();
        found.sort();
        found.into_iter().map(|(_, id)| id).collect()
    }
}

/// The unpacked file `path` of server `name` (`cyrus`, `courier`), or a panic telling what to
/// run: a test never silently skips a server.
pub fn unpacked(name: &str, path: &str) -> PathBuf {
    let full = PathBuf::from(UNPACKED_SERVERS).join(name).join(path);
    assert!(
        full.exists(),
        "the {name} tests need {} (a package that conflicts with Dovecot's, unpacked, not \
         installed): run scripts/test, which downloads and unpacks it",
        full.display()
    );
    full
}

/// Panics unless running as root, naming what needs it.
pub fn require_root(what: &str) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "{what} needs root to run in tests");
}

/// kill(2): `pid` may be a negative process group. Errors (already gone) do not matter.
pub fn signal(pid: i32, signal: i32) {
    // SAFETY: kill has no memory preconditions; a stale pid only makes it fail.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Whether [`USER`] can log in with [`PASSWORD`] on `port` (plain LOGIN, blocking): a server
/// that greets may not have its authentication ready yet.
pub fn logs_in(port: u16) -> bool {
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(tcp.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || !line.starts_with("* OK") {
        return false;
    }
    let command = format!("a LOGIN \"{USER}\" \"{PASSWORD}\"\r\nb LOGOUT\r\n");
    if (&tcp).write_all(command.as_bytes()).is_err() {
        return false;
    }
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line.starts_with("a ") => return line.starts_with("a OK"),
            Ok(_) => {}
        }
    }
}
