//! The SASL initial responses that carry an access token: XOAUTH2 (Google's and Microsoft's)
//! and OAUTHBEARER (RFC 7628), and the authenticator async-imap drives with them. Both are
//! [`Secret`]s: they contain the token.

use super::Secret;

/// The SASL mechanisms that sign in with an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    XOAuth2,
    OAuthBearer,
}

impl Mechanism {
    /// The name in `AUTHENTICATE` and in `AUTH=` capabilities.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// `user=USER^Aauth=Bearer TOKEN^A^A`.
pub fn xoauth2(user: &str, token: &Secret) -> Secret {
    Secret::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ))
}

/// `n,a=USER,^Ahost=HOST^Aport=PORT^Aauth=Bearer TOKEN^A^A` (RFC 7628 §3.1); the user name is
/// escaped as a GS2 saslname (`,` → `=2C`, `=` → `=3D`).
pub fn oauthbearer(user: &str, host: &str, port: u16, token: &Secret) -> Secret {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    Secret::new(format!(
        "n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        token.expose()
    ))
}

/// Answers the server's first challenge with the initial response. A second challenge is the
/// server's error report (a JSON document): it is kept, for the error message, and answered as
/// each mechanism requires (empty for XOAUTH2, `^A` for OAUTHBEARER), after which the server
/// completes with NO.
pub struct TokenAuthenticator {
    mechanism: Mechanism,
    initial: Option<Secret>,
    /// What the server said in its error challenge, if it sent one.
    pub server_said: Option<String>,
}

impl TokenAuthenticator {
    pub fn new(mechanism: Mechanism, initial: Secret) -> TokenAuthenticator {
        TokenAuthenticator {
            mechanism,
            initial: Some(initial),
            server_said: None,
        }
    }
}

impl async_imap::Authenticator for &mut TokenAuthenticator {
    type Response = Vec<u8>;

    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        if let Some(initial) = self.initial.take() {
            return initial.expose().as_bytes().to_vec();
        }
        let said = String::from_utf8_lossy(challenge).trim().to_string();
        if !said.is_empty() {
            self.server_said = Some(said);
        }
        match self.mechanism {
            Mechanism::XOAuth2 => Vec::new(),
            Mechanism::OAuthBearer => vec![0x01],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::Authenticator;

    #[test]
    fn xoauth2_is_user_and_bearer_token_separated_by_ctrl_a() {
        let s = xoauth2("support@acme.example", &Secret::new("ya29.abc"));
        assert_eq!(
            s.expose(),
            "user=support@acme.example\x01auth=Bearer ya29.abc\x01\x01"
        );
        assert_eq!(format!("{s:?}"), "[redacted]");
    }

    #[test]
    fn oauthbearer_has_a_gs2_header_host_and_port() {
        let s = oauthbearer("a,b=c@x.example", "imap.x.example", 993, &Secret::new("T"));
        assert_eq!(
            s.expose(),
            "n,a=a=2Cb=3Dc@x.example,\x01host=imap.x.example\x01port=993\x01auth=Bearer T\x01\x01"
        );
    }

    #[test]
    fn the_error_challenge_is_kept_and_answered_as_the_mechanism_requires() {
        let mut auth = TokenAuthenticator::new(Mechanism::OAuthBearer, Secret::new("first"));
        assert_eq!((&mut auth).process(b""), b"first");
        assert_eq!((&mut auth).process(b"{\"status\":\"invalid_token\"}"), [1]);
        assert_eq!(
            auth.server_said.as_deref(),
            Some("{\"status\":\"invalid_token\"}")
        );
        let mut auth = TokenAuthenticator::new(Mechanism::XOAuth2, Secret::new("first"));
        (&mut auth).process(b"");
        assert!((&mut auth).process(b"{}").is_empty());
    }
}
