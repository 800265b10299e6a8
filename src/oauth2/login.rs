//! Logging in to an IMAP mailbox with an access token: the cached token first, and once more
//! with a new one when the server refuses it (it may have been revoked or expired early).

use super::tokens::Freshness;
use super::{OAuth2Error, TokenSource};
use crate::config::MailboxConfig;
use crate::imap::{self, Connection, ErrorKind, ImapError, Login, Timeouts};

/// Why an OAuth2 login failed: getting the token or the server's refusal.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Token(#[from] OAuth2Error),
}

impl LoginError {
    /// Whether trying again later may help without the operator.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LoginError::Imap(e) => e.kind(),
            LoginError::Token(e) if e.is_transient() => ErrorKind::Transient,
            LoginError::Token(_) => ErrorKind::NeedsOperator,
        }
    }
}

/// Connects and signs in with a token from `tokens`; the mechanism is OAUTHBEARER when the
/// server offers it, else XOAUTH2.
pub async fn connect(
    mailbox: &MailboxConfig,
    tokens: &mut TokenSource,
    timeouts: &Timeouts,
) -> Result<Connection, LoginError> {
    let (token, freshness) = tokens.access_token().await?;
    match imap::connect(mailbox, Login::AccessToken(&token), timeouts).await {
        Err(ImapError::TokenRejected { .. }) if freshness == Freshness::Cached => {
            tokens.forget_access_token();
            let (token, _) = tokens.access_token().await?;
            Ok(imap::connect(mailbox, Login::AccessToken(&token), timeouts).await?)
        }
        done => Ok(done?),
    }
}
