//! The connection to the SMTP server, built from `[smtp]`: implicit TLS or STARTTLS with
//! certificate checks (webpki roots plus an optional `ca_file`), plain text only to loopback.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::oauth2::{refuses_login, TokenTransport};
use super::{compose, parse_from, OutgoingMail, SmtpError};
use crate::config::{SmtpConfig, TlsMode};
use crate::oauth2::{Freshness, TokenSource};

/// How the transport signs in.
enum Sending {
    /// With the configured user and password, or not at all.
    Login(AsyncSmtpTransport<Tokio1Executor>),
    /// With XOAUTH2 and an access token (`auth = "oauth2"`).
    OAuth2(Box<TokenTransport>),
}

/// A ready-to-use sender for one `[smtp]` configuration. Connections are pooled, so keep one
/// `Mailer` for a whole run rather than building one per mail.
pub struct Mailer {
    sending: Sending,
    from: Mailbox,
    /// `host:port`, for messages.
    server: String,
    /// Upper bound for one whole delivery (connect, TLS, dialogue, data).
    deadline: Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Checks the settings and reads the secret and the CA file; connects only when sending.
    pub fn new(cfg: &SmtpConfig) -> Result<Mailer, SmtpError> {
        let from = parse_from(&cfg.from)?;
        let server = format!("{}:{}", cfg.host, cfg.port);
        let tls = match cfg.tls {
            TlsMode::Implicit => Tls::Wrapper(tls_parameters(cfg)?),
            TlsMode::Starttls => Tls::Required(tls_parameters(cfg)?),
            TlsMode::None => {
                // The config loader refuses this already; checked again because a plain-text
                // password must never leave the machine.
                if !crate::config::is_loopback_host(&cfg.host) {
                    return Err(SmtpError::Config(format!(
                        "[smtp] tls = \"none\" is only allowed for loopback hosts, not {:?}",
                        cfg.host
                    )));
                }
                Tls::None
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(cfg.timeout));
        if let (Some(oauth2), Some(user)) = (&cfg.oauth2, &cfg.user) {
            let tokens = TokenSource::new("[smtp]", "mailrules auth --smtp", oauth2)
                .map_err(|e| SmtpError::Config(e.to_string()))?;
            return Ok(Mailer {
                sending: Sending::OAuth2(Box::new(TokenTransport::new(builder, user, tokens))),
                from,
                server,
                deadline: cfg.timeout.saturating_mul(4),
            });
        }
        let password = cfg
            .password
            .read("[smtp]")
            .map_err(|e| SmtpError::Config(e.to_string()))?;
        match (&cfg.user, password) {
            (Some(user), Some(password)) => {
                builder = builder.credentials(Credentials::new(user.clone(), password));
            }
            (Some(user), None) => {
                return Err(SmtpError::Config(format!(
                    "[smtp] user {user:?} needs password_file or password_env"
                )))
            }
            (None, Some(_)) => {
                return Err(SmtpError::Config(
                    "[smtp] a password is configured but no user".into(),
                ))
            }
            (None, None) => {}
        }
        Ok(Mailer {
            sending: Sending::Login(builder.build()),
            from,
            server,
            deadline: cfg.timeout.saturating_mul(4),
        })
    }

    /// Connects, starts TLS and logs in as a delivery would, without sending anything.
    pub async fn check_login(&self) -> Result<(), SmtpError> {
        self.signed_in(|transport| self.check_with(transport)).await
    }

    async fn check_with(
        &self,
        transport: AsyncSmtpTransport<Tokio1Executor>,
    ) -> Result<(), SmtpError> {
        match tokio::time::timeout(self.deadline, transport.test_connection()).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(SmtpError::Unreachable {
                server: self.server.clone(),
                message: "the connection was closed right after login".into(),
            }),
            Ok(Err(e)) => Err(self.classify(&e)),
            Err(_) => Err(SmtpError::Unreachable {
                server: self.server.clone(),
                message: format!(
                    "no complete answer within {}",
                    crate::text::duration(self.deadline)
                ),
            }),
        }
    }

    /// The configured sender.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Composes and delivers one mail.
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), SmtpError> {
        let message = compose(mail, &self.from)?;
        self.signed_in(|transport| self.send_with(transport, message.clone()))
            .await
    }

    async fn send_with(
        &self,
        transport: AsyncSmtpTransport<Tokio1Executor>,
        message: lettre::Message,
    ) -> Result<(), SmtpError> {
        match tokio::time::timeout(self.deadline, transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.classify(&e)),
            Err(_) => Err(SmtpError::Unreachable {
                server: self.server.clone(),
                message: format!(
                    "no complete answer within {}",
                    crate::text::duration(self.deadline)
                ),
            }),
        }
    }

    /// Runs `step` on the signed-in transport. With OAuth2, a login the server refuses with a
    /// cached token is tried once more with a new one; a refusal of a new token is a session
    /// failure (every mail would fail the same way), not this mail's.
    async fn signed_in<F, Fut>(&self, step: F) -> Result<(), SmtpError>
    where
        F: Fn(AsyncSmtpTransport<Tokio1Executor>) -> Fut,
        Fut: std::future::Future<Output = Result<(), SmtpError>>,
    {
        let tokens = match &self.sending {
            Sending::Login(transport) => return step(transport.clone()).await,
            Sending::OAuth2(tokens) => tokens,
        };
        let token_error = |e: crate::oauth2::OAuth2Error| {
            if e.is_transient() {
                SmtpError::Unreachable {
                    server: self.server.clone(),
                    message: e.to_string(),
                }
            } else {
                SmtpError::Config(e.to_string())
            }
        };
        let (transport, freshness) = tokens.transport(false).await.map_err(token_error)?;
        let mut done = step(transport).await;
        // Gmail answers a bad token with a challenge lettre's XOAUTH2 cannot take (a session
        // error), others with 535: either way, one more try with a new token.
        let refused = match &done {
            Err(SmtpError::Rejected { code, .. }) => refuses_login(*code),
            Err(SmtpError::Session { .. }) => true,
            _ => false,
        };
        if refused && freshness == Freshness::Cached {
            let (transport, _) = tokens.transport(true).await.map_err(token_error)?;
            done = step(transport).await;
        }
        match done {
            Err(SmtpError::Rejected { code, answer }) if refuses_login(code) => {
                Err(SmtpError::Session {
                    server: self.server.clone(),
                    message: format!(
                        "the server refused the XOAUTH2 login of \"{}\" with a new access \
                         token: {answer}",
                        tokens.user()
                    ),
                })
            }
            done => done,
        }
    }

    fn classify(&self, e: &lettre::transport::smtp::Error) -> SmtpError {
        if let Some(code) = e.status() {
            let code_text = code.to_string();
            let text = std::error::Error::source(e)
                .map(|s| crate::text::single_line(&s.to_string()))
                .unwrap_or_default();
            return SmtpError::Rejected {
                code: code_text.parse().unwrap_or(500),
                answer: format!("{code_text} {text}").trim_end().to_string(),
            };
        }
        let server = self.server.clone();
        let message = crate::text::single_line(&error_chain(e));
        if e.is_client() || e.is_response() {
            SmtpError::Session { server, message }
        } else {
            SmtpError::Unreachable { server, message }
        }
    }
}

/// The error and its causes, so that "tls error" says which certificate problem it was.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

fn tls_parameters(cfg: &SmtpConfig) -> Result<TlsParameters, SmtpError> {
    let mut builder = TlsParameters::builder(cfg.host.clone());
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            SmtpError::Config(format!(
                "[smtp] cannot read ca_file {}: {e}",
                path.display()
            ))
        })?;
        let no_certificate = || {
            SmtpError::Config(format!(
                "[smtp] ca_file {} holds no PEM certificate",
                path.display()
            ))
        };
        if !pem
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            return Err(no_certificate());
        }
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            SmtpError::Config(format!(
                "[smtp] ca_file {} holds no usable PEM certificate: {e}",
                path.display()
            ))
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|e| SmtpError::Config(format!("[smtp] TLS setup failed: {e}")))
}
