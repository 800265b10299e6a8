//! Opening a session: TCP, then implicit TLS or STARTTLS (or plain to loopback), greeting,
//! login and the capabilities the folder code needs.

use std::sync::Arc;

use async_imap::{Client, Session};
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use async_imap::imap_proto::{MailboxDatum, Response};

use super::namespace::Namespaces;
use super::stream::{ImapStream, NamespaceTap};
use super::{exchange, server_words, timed, tls, within, ImapError, Timeouts};
use crate::config::{MailboxConfig, TlsMode};
use crate::oauth2::sasl::{self, Mechanism, TokenAuthenticator};
use crate::oauth2::Secret;

/// What the server can do, as far as the daemon cares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub idle: bool,
    /// RFC 6851 MOVE.
    pub moves: bool,
    /// RFC 4315 UIDPLUS (UID EXPUNGE).
    pub uidplus: bool,
    /// RFC 2342 NAMESPACE.
    pub namespace: bool,
}

impl std::fmt::Display for Capabilities {
    /// The capabilities the daemon uses, in the server's words: `IDLE MOVE UIDPLUS NAMESPACE`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let named = [
            (self.idle, "IDLE"),
            (self.moves, "MOVE"),
            (self.uidplus, "UIDPLUS"),
            (self.namespace, "NAMESPACE"),
        ];
        let offered: Vec<&str> = named
            .iter()
            .filter(|(has, _)| *has)
            .map(|(_, n)| *n)
            .collect();
        if offered.is_empty() {
            f.write_str("none of IDLE, MOVE, UIDPLUS, NAMESPACE")
        } else {
            f.write_str(&offered.join(" "))
        }
    }
}

/// A logged-in session, what the server offers and how it names folders.
pub struct Connection {
    pub session: Session<ImapStream>,
    pub capabilities: Capabilities,
    pub namespaces: Namespaces,
    /// How it signed in: `LOGIN`, `XOAUTH2` or `OAUTHBEARER`.
    pub signed_in_with: &'static str,
}

/// What to sign in with.
#[derive(Debug, Clone, Copy)]
pub enum Login<'a> {
    /// LOGIN with the configured user and this password.
    Password(&'a str),
    /// SASL OAUTHBEARER when the server offers it, else XOAUTH2.
    AccessToken(&'a Secret),
}

/// Connects and logs in to the server of `mailbox`.
pub async fn connect(
    mailbox: &MailboxConfig,
    login: Login<'_>,
    timeouts: &Timeouts,
) -> Result<Connection, ImapError> {
    let client = within(timeouts.connect, "connecting", open(mailbox))
        .await
        .and_then(|opened| opened)
        .map_err(|e| with_tls_hint(e, mailbox))?;
    let tap = client.get_ref().tap();
    let (session, signed_in_with) = match login {
        Login::Password(password) => (log_in(client, mailbox, password, timeouts).await?, "LOGIN"),
        Login::AccessToken(token) => {
            let (session, mechanism) = authenticate(client, mailbox, token, timeouts).await?;
            (session, mechanism.name())
        }
    };
    let mut session = session;
    let caps = timed(
        timeouts.command,
        "asking for capabilities",
        session.capabilities(),
    )
    .await?;
    let capabilities = Capabilities {
        idle: caps.has_str("IDLE"),
        moves: caps.has_str("MOVE"),
        uidplus: caps.has_str("UIDPLUS"),
        namespace: caps.has_str("NAMESPACE"),
    };
    let namespaces = namespaces(&mut session, capabilities, &tap, timeouts).await?;
    Ok(Connection {
        session,
        capabilities,
        namespaces,
        signed_in_with,
    })
}

/// LOGIN with a password.
async fn log_in(
    client: Client<ImapStream>,
    mailbox: &MailboxConfig,
    password: &str,
    timeouts: &Timeouts,
) -> Result<Session<ImapStream>, ImapError> {
    match within(
        timeouts.command,
        "logging in",
        client.login(&mailbox.user, password),
    )
    .await?
    {
        Ok(session) => Ok(session),
        Err((async_imap::error::Error::No(message), _)) => Err(ImapError::LoginRejected {
            user: mailbox.user.clone(),
            message: server_words(&message),
        }),
        Err((e, _)) => Err(ImapError::from_imap(e, "logging in")),
    }
}

/// SASL with an access token: OAUTHBEARER when the server offers it, else XOAUTH2. A refusal
/// is reported in the server's words (its NO, and the error document it sent before it).
async fn authenticate(
    mut client: Client<ImapStream>,
    mailbox: &MailboxConfig,
    token: &Secret,
    timeouts: &Timeouts,
) -> Result<(Session<ImapStream>, Mechanism), ImapError> {
    let offered = within(
        timeouts.command,
        "asking for capabilities",
        sasl_mechanisms(&mut client),
    )
    .await??;
    let mechanism = if offered
        .iter()
        .any(|m| m.eq_ignore_ascii_case("OAUTHBEARER"))
    {
        Mechanism::OAuthBearer
    } else {
        Mechanism::XOAuth2
    };
    let initial = match mechanism {
        Mechanism::OAuthBearer => {
            sasl::oauthbearer(&mailbox.user, &mailbox.host, mailbox.port, token)
        }
        Mechanism::XOAuth2 => sasl::xoauth2(&mailbox.user, token),
    };
    let mut authenticator = TokenAuthenticator::new(mechanism, initial);
    let done = within(
        timeouts.command,
        "logging in",
        client.authenticate(mechanism.name(), &mut authenticator),
    )
    .await?;
    match done {
        Ok(session) => Ok((session, mechanism)),
        Err((
            async_imap::error::Error::No(message) | async_imap::error::Error::Bad(message),
            _,
        )) => {
            let mut message = server_words(&message);
            if let Some(said) = authenticator.server_said.take() {
                message.push_str(&format!(" ({said})"));
            }
            if is_temporary(&message) {
                // The server could not check the token (its identity provider is down):
                // network trouble, tried again with backoff, not the operator's to fix.
                return Err(ImapError::Refused {
                    doing: "logging in",
                    message,
                });
            }
            Err(ImapError::TokenRejected {
                user: mailbox.user.clone(),
                mechanism: mechanism.name(),
                message,
            })
        }
        Err((e, _)) => Err(ImapError::from_imap(e, "logging in")),
    }
}

/// Whether a refused login says the server failed, not the credentials: RFC 5530's
/// `[UNAVAILABLE]`, or Dovecot's "Temporary authentication failure".
fn is_temporary(words: &str) -> bool {
    words.contains("UNAVAILABLE") || words.to_ascii_lowercase().contains("temporary")
}

/// The SASL mechanisms the server offers before login (`AUTH=…` in its CAPABILITY answer).
async fn sasl_mechanisms(client: &mut Client<ImapStream>) -> Result<Vec<String>, ImapError> {
    use async_imap::imap_proto::{Capability, Status};
    let doing = "asking for capabilities";
    // The library runs tagged commands only after login; this one goes straight to the
    // stream with a tag of our own.
    use tokio::io::AsyncWriteExt;
    const TAG: &str = "mrcap";
    let stream = client.get_mut();
    let sent = async {
        stream
            .write_all(format!("{TAG} CAPABILITY\r\n").as_bytes())
            .await?;
        stream.flush().await
    };
    sent.await.map_err(|e| ImapError::Protocol {
        doing,
        message: e.to_string(),
    })?;
    let mut offered = Vec::new();
    loop {
        let response = client
            .read_response()
            .await
            .map_err(|e| ImapError::from_imap(e.into(), doing))?
            .ok_or_else(|| ImapError::Closed {
                message: format!("connection lost while {doing}"),
            })?;
        match response.parsed() {
            Response::Capabilities(capabilities) => {
                offered.extend(capabilities.iter().filter_map(|c| match c {
                    Capability::Auth(name) => Some(name.to_string()),
                    _ => None,
                }));
            }
            Response::Done {
                tag: done,
                status,
                information,
                ..
            } if done.0 == TAG => {
                return match status {
                    Status::Ok => Ok(offered),
                    _ => Err(ImapError::Refused {
                        doing,
                        message: information.as_deref().unwrap_or_default().to_string(),
                    }),
                };
            }
            _ => {}
        }
    }
}

/// How the server names folders: its NAMESPACE answer, else the delimiter of `LIST "" ""`.
async fn namespaces(
    session: &mut Session<ImapStream>,
    capabilities: Capabilities,
    tap: &NamespaceTap,
    timeouts: &Timeouts,
) -> Result<Namespaces, ImapError> {
    let mut news = false;
    if capabilities.namespace {
        tap.arm();
        let asked = exchange(
            session,
            timeouts.command,
            "NAMESPACE",
            "asking for the namespaces",
            &mut news,
            |_| {},
        )
        .await;
        let line = tap.take();
        asked?;
        if let Some(found) = line.as_deref().and_then(Namespaces::parse) {
            return Ok(found);
        }
    }
    let mut delimiter = None;
    exchange(
        session,
        timeouts.command,
        "LIST \"\" \"\"",
        "asking for the hierarchy delimiter",
        &mut news,
        |response| {
            if let Response::MailboxData(MailboxDatum::List { delimiter: d, .. }) = response {
                delimiter = d.as_deref().and_then(|d| d.chars().next());
            }
        },
    )
    .await?;
    Ok(Namespaces::flat(delimiter))
}

/// A TLS handshake that fails because the other side speaks plain IMAP, or a greeting that
/// never comes because the other side waits for a TLS handshake, means `tls` and `port` do
/// not fit together; say which to try.
fn with_tls_hint(error: ImapError, mailbox: &MailboxConfig) -> ImapError {
    let address = format!("{}:{}", mailbox.host, mailbox.port);
    match (error, mailbox.tls) {
        (ImapError::Tls { host, message }, TlsMode::Implicit)
            if message.contains("corrupt message") =>
        {
            ImapError::Tls {
                host,
                message: format!(
                    "{address} did not answer with TLS (it seems to speak plain IMAP there); \
                     for port 143 set tls = \"starttls\", or use the implicit-TLS port, usually 993"
                ),
            }
        }
        (ImapError::Timeout { after, .. }, TlsMode::Starttls | TlsMode::None) => ImapError::Tls {
            host: mailbox.host.clone(),
            message: format!(
                "{address} sent no IMAP greeting within {}s; if this is an implicit-TLS port \
                 (usually 993), set tls = \"implicit\"",
                after.as_secs()
            ),
        },
        (error, _) => error,
    }
}

/// TCP plus the configured protection, up to a client that has seen the greeting.
async fn open(mailbox: &MailboxConfig) -> Result<Client<ImapStream>, ImapError> {
    let address = format!("{}:{}", mailbox.host, mailbox.port);
    let tcp = TcpStream::connect((mailbox.host.as_str(), mailbox.port))
        .await
        .map_err(|source| ImapError::Connect {
            address: address.clone(),
            source,
        })?;
    // Without this a lost peer goes unnoticed while idling until the IDLE refresh.
    let _ = tcp.set_nodelay(true);
    match mailbox.tls {
        TlsMode::Implicit => {
            let config = tls::client_config(mailbox.ca_file.as_deref())?;
            let stream = handshake(tcp, &mailbox.host, config).await?;
            let mut client = Client::new(stream);
            read_greeting(&mut client).await?;
            Ok(client)
        }
        TlsMode::Starttls => {
            // Read the CA file before talking, so a bad ca_file is reported as such.
            let config = tls::client_config(mailbox.ca_file.as_deref())?;
            let mut client = Client::new(ImapStream::plain(tcp));
            read_greeting(&mut client).await?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(|e| match e {
                    async_imap::error::Error::No(message)
                    | async_imap::error::Error::Bad(message) => ImapError::NoStarttls {
                        message: server_words(&message),
                    },
                    e => ImapError::from_imap(e, "starting TLS"),
                })?;
            let tcp = client
                .into_inner()
                .into_plain()
                .ok_or_else(|| ImapError::NoStarttls {
                    message: "the server sent data before the TLS handshake".into(),
                })?;
            let stream = handshake(tcp, &mailbox.host, config).await?;
            Ok(Client::new(stream))
        }
        TlsMode::None => {
            let mut client = Client::new(ImapStream::plain(tcp));
            read_greeting(&mut client).await?;
            Ok(client)
        }
    }
}

async fn handshake(
    tcp: TcpStream,
    host: &str,
    config: Arc<ClientConfig>,
) -> Result<ImapStream, ImapError> {
    let name = tls::server_name(host)?;
    match TlsConnector::from(config).connect(name, tcp).await {
        Ok(stream) => Ok(ImapStream::tls(stream)),
        Err(e) => {
            let rustls_error = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>());
            match rustls_error {
                Some(rustls::Error::InvalidCertificate(reason)) => Err(ImapError::Certificate {
                    host: host.to_string(),
                    message: format!(
                        "the server's certificate is not trusted: {}",
                        certificate_problem(reason)
                    ),
                }),
                _ => Err(ImapError::Tls {
                    host: host.to_string(),
                    message: e.to_string(),
                }),
            }
        }
    }
}

/// A certificate problem in words (rustls's own names for them are Rust enum variants).
fn certificate_problem(reason: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    match reason {
        E::UnknownIssuer => {
            "it is signed by an unknown authority (self-signed or a private CA)".into()
        }
        E::Expired | E::ExpiredContext { .. } => "it has expired".into(),
        E::NotValidYet | E::NotValidYetContext { .. } => "it is not valid yet".into(),
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            "it is not valid for this host name".into()
        }
        E::Revoked => "it has been revoked".into(),
        E::BadSignature => "its signature is invalid".into(),
        E::BadEncoding => "it cannot be read".into(),
        other => other.to_string(),
    }
}

async fn read_greeting(client: &mut Client<ImapStream>) -> Result<(), ImapError> {
    use async_imap::imap_proto::{Response, Status};
    let greeting = client
        .read_response()
        .await
        .map_err(|e| ImapError::from_imap(e.into(), "reading the greeting"))?;
    match greeting.as_ref().map(|g| g.parsed()) {
        Some(Response::Data {
            status: Status::Ok | Status::PreAuth,
            ..
        }) => Ok(()),
        Some(Response::Data {
            status: Status::Bye,
            information,
            ..
        }) => Err(ImapError::Closed {
            message: information
                .as_deref()
                .unwrap_or("the server said BYE")
                .to_string(),
        }),
        Some(_) => Err(ImapError::Closed {
            message: "the server did not greet with OK".into(),
        }),
        None => Err(ImapError::Closed {
            message: "the server closed the connection before its greeting".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_the_server_could_not_check_is_temporary() {
        assert!(is_temporary(
            "[UNAVAILABLE] Temporary authentication failure. [host:2026-12-01 18:00:00]"
        ));
        assert!(!is_temporary(
            "[AUTHENTICATIONFAILED] Authentication failed."
        ));
    }
}
