//! The IMAP client: connecting (TLS, STARTTLS, login, capabilities) and working one folder
//! (new UIDs, fetch, acknowledge, IDLE). No retry policy lives here: errors go up to the daemon,
//! which decides what to do with them by [`ImapError::kind`].

mod connect;
mod folder;
mod namespace;
mod news;
mod pipelined;
mod recovery;
mod stream;
pub mod tls;

use std::path::PathBuf;
use std::time::Duration;

use async_imap::imap_proto::{MailboxDatum, RequestId, Response, ResponseCode, Status};
use async_imap::Session;

pub use connect::{connect, Capabilities, Connection, Login};
pub use folder::{Fetched, Folder, FolderCheck, Selected, Wake};
pub use namespace::Namespaces;
pub use news::{Found, NewMail};
pub use pipelined::{AcknowledgedAndFetched, Acknowledgement};
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
    #[error("the server rejected the login of \"{user}\": {message}; check user and password")]
    LoginRejected { user: String, message: String },
    /// The server refused an OAuth2 access token; `message` is in its own words.
    #[error(
        "the server refused the {mechanism} login of \"{user}\" with an access token: {message}"
    )]
    TokenRejected {
        user: String,
        mechanism: &'static str,
        message: String,
    },
    #[error("cannot open folder \"{folder}\": {message}")]
    Folder { folder: String, message: String },
    #[error("the server closed the connection: {message}")]
    Closed { message: String },
    /// The server answered NO or BAD; `message` is in its own words.
    #[error("the server refused {doing}: {message}")]
    Refused {
        doing: &'static str,
        message: String,
    },
    #[error("IMAP failed while {doing}: {message}")]
    Protocol {
        doing: &'static str,
        message: String,
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
            | ImapError::Refused { .. }
            | ImapError::Protocol { .. } => ErrorKind::Transient,
            ImapError::Certificate { .. }
            | ImapError::CaFile { .. }
            | ImapError::NoStarttls { .. }
            | ImapError::LoginRejected { .. }
            | ImapError::TokenRejected { .. }
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
            async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
                ImapError::Refused {
                    doing,
                    message: server_words(&text),
                }
            }
            async_imap::error::Error::Io(e) => ImapError::Protocol {
                doing,
                message: e.to_string(),
            },
            async_imap::error::Error::Parse(_) => ImapError::Protocol {
                doing,
                message: "the server's answer could not be read".into(),
            },
            other => ImapError::Protocol {
                doing,
                message: other.to_string(),
            },
        }
    }
}

/// The server's own words from a NO or BAD answer. Our IMAP library hands them over as
/// `code: Some(TryCreate), info: Some("Mailbox does not exist")`; people should read
/// `[TRYCREATE] Mailbox does not exist`. Text in any other form is returned as it is.
pub(crate) fn server_words(text: &str) -> String {
    let Some(rest) = text.strip_prefix("code: ") else {
        return text.to_string();
    };
    let Some((code, info)) = rest.split_once(", info: ") else {
        return text.to_string();
    };
    let code = code
        .strip_prefix("Some(")
        .map(|c| {
            c.chars()
                .take_while(|ch| ch.is_ascii_alphanumeric())
                .collect::<String>()
        })
        .and_then(|name| code_name_from_text(&name))
        .map(|name| format!("[{name}] "))
        .unwrap_or_default();
    let info = info
        .strip_prefix("Some(\"")
        .and_then(|i| i.strip_suffix("\")"))
        .map(|i| i.replace("\\\"", "\"").replace("\\\\", "\\"))
        .unwrap_or_default();
    let words = format!("{code}{info}");
    if words.trim().is_empty() {
        "(no explanation given)".to_string()
    } else {
        words.trim().to_string()
    }
}

/// Runs one command on `session`, handing each untagged response to `each`, and succeeds
/// only if the server completes it with OK (a NO or BAD carries the server's own words). The
/// time limit applies to every response, so a large fetch on a slow link is not cut off while
/// data keeps coming. New-mail announcements set `news`.
pub(crate) async fn exchange(
    session: &mut Session<ImapStream>,
    limit: Duration,
    command: &str,
    doing: &'static str,
    news: &mut bool,
    each: impl FnMut(&Response<'_>),
) -> Result<(), ImapError> {
    let answers = exchange_all(session, limit, &[(command, doing)], news, each).await?;
    answers.into_iter().next().unwrap_or(Ok(()))
}

/// Sends `commands` one after the other without waiting for answers in between (pipelining,
/// RFC 3501 5.5: one round trip instead of one per command), then reads until the server has
/// completed every one. Untagged responses of all of them go to `each`. The outer error is
/// the connection's (nothing is known of the commands then); each command's own answer, OK
/// or NO/BAD in the server's words, is in the list, in the order of `commands`.
pub(crate) async fn exchange_all(
    session: &mut Session<ImapStream>,
    limit: Duration,
    commands: &[(&str, &'static str)],
    news: &mut bool,
    each: impl FnMut(&Response<'_>),
) -> Result<Vec<Result<(), ImapError>>, ImapError> {
    let mut tags = Vec::with_capacity(commands.len());
    for (command, doing) in commands {
        tags.push(timed(limit, doing, session.run_command(command)).await?);
    }
    let doings: Vec<&'static str> = commands.iter().map(|(_, doing)| *doing).collect();
    read_answers(session, limit, &tags, &doings, news, each).await
}

/// Reads until the server has completed every command tagged `tags` (sent already, `doings`
/// saying what each does), as [`exchange_all`] does.
pub(crate) async fn read_answers(
    session: &mut Session<ImapStream>,
    limit: Duration,
    tags: &[RequestId],
    doings: &[&'static str],
    news: &mut bool,
    mut each: impl FnMut(&Response<'_>),
) -> Result<Vec<Result<(), ImapError>>, ImapError> {
    let mut answers: Vec<Option<Result<(), ImapError>>> = tags.iter().map(|_| None).collect();
    while let Some(open) = answers.iter().position(Option::is_none) {
        // Trouble now is reported as trouble with the oldest command still unanswered.
        let doing = doings[open];
        let response = within(limit, doing, session.read_response())
            .await?
            .map_err(|e| ImapError::from_imap(e.into(), doing))?;
        let Some(response) = response else {
            return Err(ImapError::Closed {
                message: format!("connection lost while {doing}"),
            });
        };
        match response.parsed() {
            Response::Done {
                tag: done,
                status,
                information,
                code,
            } => {
                let Some(which) = tags.iter().position(|tag| tag == done) else {
                    continue; // not one of ours: nothing to do with it
                };
                let doing = doings[which];
                let code = code
                    .as_ref()
                    .and_then(response_code_name)
                    .map(|name| format!("[{name}] "))
                    .unwrap_or_default();
                let words = format!("{code}{}", information.as_deref().unwrap_or_default());
                answers[which] = Some(match status {
                    Status::Ok => Ok(()),
                    Status::No => Err(ImapError::from_imap(
                        async_imap::error::Error::No(words),
                        doing,
                    )),
                    _ => Err(ImapError::from_imap(
                        async_imap::error::Error::Bad(words),
                        doing,
                    )),
                });
            }
            Response::Data {
                status: Status::Bye,
                information,
                ..
            } => {
                return Err(ImapError::Closed {
                    message: information
                        .as_deref()
                        .unwrap_or("the server said BYE")
                        .to_string(),
                })
            }
            other => {
                *news |= announces_mail(other);
                each(other);
            }
        }
    }
    Ok(answers.into_iter().flatten().collect())
}

/// Whether a response may announce new mail: EXISTS, or a RECENT count above zero (Dovecot
/// answers our own MOVE with `* 0 RECENT`, which announces nothing).
fn announces_mail(response: &Response<'_>) -> bool {
    matches!(
        response,
        Response::MailboxData(MailboxDatum::Exists(_) | MailboxDatum::Recent(1..))
    )
}

/// The name of a response code worth showing with the server's words; codes that carry data
/// for the client (UIDVALIDITY, CAPABILITY, …) are left out.
fn response_code_name(code: &ResponseCode<'_>) -> Option<&'static str> {
    Some(match code {
        ResponseCode::Alert => "ALERT",
        ResponseCode::Parse => "PARSE",
        ResponseCode::ReadOnly => "READ-ONLY",
        ResponseCode::TryCreate => "TRYCREATE",
        ResponseCode::BadCharset(_) => "BADCHARSET",
        _ => return None,
    })
}

/// The same names, from the library's rendering of a code (see [`server_words`]).
fn code_name_from_text(name: &str) -> Option<&'static str> {
    Some(match name {
        "Alert" => "ALERT",
        "Parse" => "PARSE",
        "ReadOnly" => "READ-ONLY",
        "TryCreate" => "TRYCREATE",
        "BadCharset" => "BADCHARSET",
        _ => return None,
    })
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
    fn the_servers_own_words_are_shown_not_the_librarys_rendering() {
        assert_eq!(
            server_words("code: Some(TryCreate), info: Some(\"Mailbox does not exist\")"),
            "[TRYCREATE] Mailbox does not exist"
        );
        assert_eq!(
            server_words("code: None, info: Some(\"Error in IMAP command received by server.\")"),
            "Error in IMAP command received by server."
        );
        assert_eq!(
            server_words("code: None, info: Some(\"say \\\"hi\\\"\")"),
            "say \"hi\""
        );
        assert_eq!(
            server_words("code: None, info: None"),
            "(no explanation given)"
        );
        assert_eq!(server_words("Permission denied"), "Permission denied");
        let refused = ImapError::from_imap(
            async_imap::error::Error::No("code: None, info: Some(\"Permission denied\")".into()),
            "creating a folder",
        );
        assert_eq!(
            refused.to_string(),
            "the server refused creating a folder: Permission denied"
        );
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
