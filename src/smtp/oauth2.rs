//! Sending as an OAuth2 account: lettre's XOAUTH2 with an access token from the account's
//! token source. lettre fixes credentials per transport, so a transport (with its connection
//! pool) is built for each new token and kept while the token is.

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use crate::oauth2::{Freshness, OAuth2Error, Secret, TokenSource};

/// Transports signed in with the current access token.
pub(super) struct TokenTransport {
    builder: AsyncSmtpTransportBuilder,
    user: String,
    state: tokio::sync::Mutex<State>,
}

struct State {
    tokens: TokenSource,
    current: Option<(Secret, AsyncSmtpTransport<Tokio1Executor>)>,
}

impl TokenTransport {
    pub(super) fn new(
        builder: AsyncSmtpTransportBuilder,
        user: &str,
        tokens: TokenSource,
    ) -> TokenTransport {
        TokenTransport {
            builder,
            user: user.to_string(),
            state: tokio::sync::Mutex::new(State {
                tokens,
                current: None,
            }),
        }
    }

    pub(super) fn user(&self) -> &str {
        &self.user
    }

    /// A transport signed in with a valid token; with `renew`, with a new token (the server
    /// refused the one before).
    pub(super) async fn transport(
        &self,
        renew: bool,
    ) -> Result<(AsyncSmtpTransport<Tokio1Executor>, Freshness), OAuth2Error> {
        let mut state = self.state.lock().await;
        if renew {
            state.tokens.forget_access_token();
        }
        let (token, freshness) = state.tokens.access_token().await?;
        if let Some((current, transport)) = &state.current {
            if *current == token {
                return Ok((transport.clone(), freshness));
            }
        }
        let transport = self
            .builder
            .clone()
            .credentials(xoauth2_credentials(&self.user, &token))
            .authentication(vec![Mechanism::Xoauth2])
            .build();
        state.current = Some((token, transport.clone()));
        Ok((transport, freshness))
    }
}

/// What lettre's XOAUTH2 needs: the account and the access token as the "secret".
pub fn xoauth2_credentials(user: &str, token: &Secret) -> Credentials {
    Credentials::new(user.to_string(), token.expose().to_string())
}

/// Whether an SMTP reply code refuses the login (530, 534, 535): with a cached token, worth
/// one more try with a new one.
pub(super) fn refuses_login(code: u16) -> bool {
    matches!(code, 530 | 534 | 535)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lettre_sends_the_xoauth2_string_with_the_token() {
        let credentials = xoauth2_credentials("support@acme.example", &Secret::new("ya29.tok"));
        let sent = Mechanism::Xoauth2.response(&credentials, None).unwrap();
        assert_eq!(
            sent,
            "user=support@acme.example\x01auth=Bearer ya29.tok\x01\x01"
        );
        assert_eq!(
            sent,
            crate::oauth2::sasl::xoauth2("support@acme.example", &Secret::new("ya29.tok")).expose()
        );
    }

    #[test]
    fn only_login_refusals_are_tried_again_with_a_new_token() {
        assert!(refuses_login(535));
        assert!(refuses_login(534));
        assert!(!refuses_login(550));
        assert!(!refuses_login(421));
    }
}
