//! The IMAP client: connecting (TLS, STARTTLS, login, capabilities) and working one folder
//! (new UIDs, fetch, acknowledge, IDLE). No retry policy lives here: errors go up to the daemon,
//! which decides what to do with them by [`ImapError::kind`].

mod connect;
mod folder;
mod stream;
pub mod tls;

use std::path::PathBuf;
use std::time::Duration;

pub use connect::{connect, Capabilities, Connection};
pub use folder::{Fetched, Folder, Selected, Wake};
pub use stream::ImapStream;

/// How long one network step may take before the connection is given up.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect plus TLS handshake plus greeting.
    pub connect: Duration,
    /// One command, or one message of a fetch, or leaving IDLE.
    pub command: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            command: Duration::from_secs(120),
        }
    }
}

/// What went wrong talking to an IMAP server. Never contains the password.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no answer from the server within {}s while {doing}", .after.as_secs())]
    Timeout {
        doing: &'static str,
        after: Duration,
    },
    #[error(
        "TLS with {host} failed: {message} \
         (set ca_file to trust a private CA or a self-signed certificate)"
    )]
    Certificate { host: String, message: String },
    #[error("TLS with {host} failed: {message}")]
    Tls { host: String, message: String },
    #[error("cannot use ca_file {path}: {message}")]
    CaFile { path: PathBuf, message: String },
    #[error("the server does not accept STARTTLS ({message}); refusing to log in without TLS")]
    NoStarttls { message: String },
    #[error("the server rejected the login of {user:?}: {message}; check user and password")]
    LoginRejected { user: String, message: String },
    #[error("cannot open folder {folder:?}: {message}")]
    Folder { folder: String, message: String },
    #[error("the server closed the connection: {message}")]
    Closed { message: String },
    #[error("IMAP {doing} failed: {source}")]
    Protocol {
        doing: &'static str,
        #[source]
        source: async_imap::error::Error,
    },
}

/// How the daemon should react to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Network trouble or a server restart: reconnect with backoff.
    Transient,
    /// Something only the operator can fix (password, certificate, folder): report it once and
    /// retry slowly, in case it gets fixed without a restart.
    NeedsOperator,
}

impl ImapError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImapError::Connect { .. }
            | ImapError::Timeout { .. }
            | ImapError::Closed { .. }
            | ImapError::Tls { .. }
            | ImapError::Protocol { .. } => ErrorKind::Transient,
            ImapError::Certificate { .. }
            | ImapError::CaFile { .. }
            | ImapError::NoStarttls { .. }
            | ImapError::LoginRejected { .. }
            | ImapError::Folder { .. } => ErrorKind::NeedsOperator,
        }
    }
}

/// Runs one IMAP command under a time limit.
pub(crate) async fn timed<T>(
    limit: Duration,
    doing: &'static str,
    step: impl std::future::Future<Output = async_imap::error::Result<T>>,
) -> Result<T, ImapError> {
    within(limit, doing, step)
        .await?
        .map_err(|e| ImapError::from_imap(e, doing))
}

/// Runs any network step under a time limit.
pub(crate) async fn within<T>(
    limit: Duration,
    doing: &'static str,
    step: impl std::future::Future<Output = T>,
) -> Result<T, ImapError> {
    tokio::time::timeout(limit, step)
        .await
        .map_err(|_| ImapError::Timeout {
            doing,
            after: limit,
        })
}

impl ImapError {
    pub(crate) fn from_imap(source: async_imap::error::Error, doing: &'static str) -> Self {
        match source {
            async_imap::error::Error::ConnectionLost => ImapError::Closed {
                message: format!("connection lost while {doing}"),
            },
            source => ImapError::Protocol { doing, source },
        }
    }
}

/// A UID set in IMAP syntax with runs collapsed: `[1,2,3,7]` → `1:3,7`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_collapse_runs() {
        assert_eq!(uid_set(&[7, 1, 2, 3, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn operator_problems_are_told_apart_from_network_trouble() {
        let login = ImapError::LoginRejected {
            user: "u".into(),
            message: "Authentication failed.".into(),
        };
        assert_eq!(login.kind(), ErrorKind::NeedsOperator);
        let lost = ImapError::Closed {
            message: "x".into(),
        };
        assert_eq!(lost.kind(), ErrorKind::Transient);
    }
}
