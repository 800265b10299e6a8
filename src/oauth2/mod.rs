//! OAuth2 sign-in for mailboxes and SMTP: the providers' endpoints, access tokens cached and
//! refreshed before they expire, rotated refresh tokens written back, the device-code flow of
//! `mailrules auth`, the SASL strings (XOAUTH2, OAUTHBEARER) and logging in to IMAP with one
//! retry on a fresh token. Tokens and secrets are [`Secret`]s: never shown, never logged.

mod device;
pub mod login;
pub mod provider;
pub mod sasl;
mod secret;
#[cfg(test)]
mod tests;
pub mod token_file;
mod tokens;

pub use device::{sign_in_with_device_code, DevicePrompt};
pub use secret::Secret;
pub use tokens::{unreadable_secrets, Freshness, TokenSource};

use std::path::PathBuf;

/// What fixes a refused refresh token of mailbox `name`: `mailrules auth NAME`, quoted for a
/// shell when the name needs it.
pub fn reauth_command(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-@+".contains(c));
    if plain && !name.is_empty() {
        format!("mailrules auth {name}")
    } else {
        format!("mailrules auth '{}'", name.replace('\'', "'\\''"))
    }
}

/// What went wrong getting a token, in words an operator can act on. Never holds a token.
#[derive(Debug, thiserror::Error)]
pub enum OAuth2Error {
    /// The refresh token was refused (`invalid_grant`): only signing in again helps.
    #[error(
        "{account}: the identity provider refused the refresh token ({message}); run \
         `{command}` to sign in again"
    )]
    Revoked {
        account: String,
        command: String,
        message: String,
    },
    /// The provider refused the client or the request (`invalid_client`, `invalid_scope`, …).
    #[error("{account}: the identity provider at {url} refused to issue a token: {message}")]
    Refused {
        account: String,
        url: String,
        message: String,
    },
    /// Network trouble or an answer that is no token response (a 5xx page): tried again.
    #[error("{account}: cannot get a token from {url}: {message}")]
    Unreachable {
        account: String,
        url: String,
        message: String,
    },
    #[error("{account}: cannot read the {what}: {message}")]
    Secret {
        account: String,
        what: &'static str,
        message: String,
    },
    #[error("{account}: {message}")]
    Setup { account: String, message: String },
    #[error("cannot write the refresh token to {}: {message}", .path.display())]
    TokenFile { path: PathBuf, message: String },
}

impl OAuth2Error {
    /// Whether trying again later may help without the operator.
    pub fn is_transient(&self) -> bool {
        matches!(self, OAuth2Error::Unreachable { .. })
    }
}
