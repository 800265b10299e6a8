//! Opening a session: TCP, then implicit TLS or STARTTLS (or plain to loopback), greeting,
//! login and the capabilities the folder code needs.

use std::sync::Arc;

use async_imap::{Client, Session};
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::stream::ImapStream;
use super::{timed, tls, within, ImapError, Timeouts};
use crate::config::{MailboxConfig, TlsMode};

/// What the server can do, as far as the daemon cares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub idle: bool,
    /// RFC 6851 MOVE.
    pub moves: bool,
    /// RFC 4315 UIDPLUS (UID EXPUNGE).
    pub uidplus: bool,
}

/// A logged-in session and what the server offers.
pub struct Connection {
    pub session: Session<ImapStream>,
    pub capabilities: Capabilities,
}

/// Connects and logs in to the server of `mailbox`. `password` is used for LOGIN only.
pub async fn connect(
    mailbox: &MailboxConfig,
    password: &str,
    timeouts: &Timeouts,
) -> Result<Connection, ImapError> {
    let client = within(timeouts.connect, "connecting", open(mailbox)).await??;
    let session = match within(
        timeouts.command,
        "logging in",
        client.login(&mailbox.user, password),
    )
    .await?
    {
        Ok(session) => session,
        Err((async_imap::error::Error::No(message), _)) => {
            return Err(ImapError::LoginRejected {
                user: mailbox.user.clone(),
                message,
            })
        }
        Err((e, _)) => return Err(ImapError::from_imap(e, "logging in")),
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
    };
    Ok(Connection {
        session,
        capabilities,
    })
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
            let mut client = Client::new(ImapStream::Plain(tcp));
            read_greeting(&mut client).await?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(|e| match e {
                    async_imap::error::Error::No(message)
                    | async_imap::error::Error::Bad(message) => ImapError::NoStarttls { message },
                    e => ImapError::from_imap(e, "starting TLS"),
                })?;
            let ImapStream::Plain(tcp) = client.into_inner() else {
                unreachable!("the stream was created plain just above")
            };
            let stream = handshake(tcp, &mailbox.host, config).await?;
            Ok(Client::new(stream))
        }
        TlsMode::None => {
            let mut client = Client::new(ImapStream::Plain(tcp));
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
        Ok(stream) => Ok(ImapStream::Tls(Box::new(stream))),
        Err(e) => {
            let rustls_error = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>());
            match rustls_error {
                Some(rustls::Error::InvalidCertificate(reason)) => Err(ImapError::Certificate {
                    host: host.to_string(),
                    message: format!("the server's certificate is not trusted: {reason:?}"),
                }),
                _ => Err(ImapError::Tls {
                    host: host.to_string(),
                    message: e.to_string(),
                }),
            }
        }
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
