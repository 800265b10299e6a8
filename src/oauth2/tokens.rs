//! One account's access tokens: cached with their expiry, refreshed a margin before it, and on
//! demand when a server refused one. A refresh token the provider rotates is written back to
//! `refresh_token_file`; one it refuses is remembered, so the provider is not asked again with
//! it (the file is read again each time: `mailrules auth` fixes a running daemon).

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType};
use oauth2::{
    AuthType, ClientId, ClientSecret, HttpClientError, RefreshToken, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use tokio::time::Instant;
use tracing::{debug, error, warn};

use super::provider::{endpoints, Endpoints};
use super::{token_file, OAuth2Error, Secret};
use crate::config::{OAuth2Config, SecretSource};

/// Lifetime assumed when the provider does not say (`expires_in` is optional in RFC 6749).
const ASSUMED_LIFETIME: Duration = Duration::from_secs(3600);
/// A token is renewed this long before it expires, at most (a fifth of a short lifetime).
const RENEW_MARGIN: Duration = Duration::from_secs(60);
/// How long one request to the token endpoint may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

struct Cached {
    token: Secret,
    /// When it is renewed: the expiry less the margin.
    renew_at: Instant,
}

/// Access tokens for one account (`mailbox "gmail"` or `[smtp]`).
pub struct TokenSource {
    account: String,
    /// What to run when the refresh token is refused: `mailrules auth gmail`.
    reauth_command: String,
    config: OAuth2Config,
    endpoints: Endpoints,
    http: reqwest::Client,
    cached: Option<Cached>,
    /// A rotated refresh token that could not be written back (from an environment variable,
    /// or the file could not be written): used instead of the configured one.
    rotated_in_memory: Option<Secret>,
    /// The refresh token the provider refused, with its words.
    refused: Option<(Secret, String)>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("account", &self.account)
            .field("token_url", &self.endpoints.token_url)
            .finish_non_exhaustive()
    }
}

/// A token endpoint's answer or failure, as the oauth2 crate hands it over.
type Exchange = Result<
    oauth2::basic::BasicTokenResponse,
    RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>,
>;

impl TokenSource {
    /// `account` names it in messages; `reauth_command` is what fixes a refused refresh token.
    pub fn new(
        account: &str,
        reauth_command: &str,
        config: &OAuth2Config,
    ) -> Result<TokenSource, OAuth2Error> {
        Ok(TokenSource {
            account: account.to_string(),
            reauth_command: reauth_command.to_string(),
            endpoints: endpoints(config),
            config: config.clone(),
            http: http_client(account)?,
            cached: None,
            rotated_in_memory: None,
            refused: None,
        })
    }

    /// A token valid for a while yet: the cached one, else a new one.
    pub async fn access_token(&mut self) -> Result<(Secret, Freshness), OAuth2Error> {
        if let Some(cached) = &self.cached {
            if Instant::now() < cached.renew_at {
                return Ok((cached.token.clone(), Freshness::Cached));
            }
        }
        Ok((self.refresh().await?, Freshness::New))
    }

    /// Drops the cached token (a server refused it); the next one is new.
    pub fn forget_access_token(&mut self) {
        self.cached = None;
    }

    /// Asks the token endpoint for a new access token with the refresh token.
    async fn refresh(&mut self) -> Result<Secret, OAuth2Error> {
        self.cached = None;
        let refresh_token = match &self.rotated_in_memory {
            Some(token) => token.clone(),
            None => self.read(&self.config.refresh_token, "refresh token")?,
        };
        if let Some((refused, words)) = &self.refused {
            if *refused == refresh_token {
                return Err(self.revoked(words.clone()));
            }
        }
        let client = self.client()?;
        let scopes = self.endpoints.scopes.iter().cloned().map(Scope::new);
        let started = Instant::now();
        let answer: Exchange = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.expose().to_string()))
            .add_scopes(scopes)
            .request_async(&self.http)
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(RequestTokenError::ServerResponse(refusal))
                if *refusal.error() == BasicErrorResponseType::InvalidGrant =>
            {
                let words = provider_words(&refusal);
                self.refused = Some((refresh_token, words.clone()));
                return Err(self.revoked(words));
            }
            Err(e) => return Err(self.failure(e)),
        };
        self.refused = None;
        let lifetime = response.expires_in().unwrap_or(ASSUMED_LIFETIME);
        let margin = RENEW_MARGIN.min(lifetime / 5);
        let token = Secret::new(response.access_token().secret().clone());
        self.cached = Some(Cached {
            token: token.clone(),
            renew_at: started + lifetime.saturating_sub(margin),
        });
        debug!(
            account = %self.account,
            "new access token, valid for {}",
            crate::text::duration(lifetime)
        );
        if let Some(rotated) = response.refresh_token() {
            let rotated = Secret::new(rotated.secret().clone());
            if rotated != refresh_token {
                self.keep_rotated(rotated);
            }
        }
        Ok(token)
    }

    /// Writes a rotated refresh token back where it came from, or keeps it in memory.
    fn keep_rotated(&mut self, rotated: Secret) {
        match &self.config.refresh_token {
            SecretSource::File(path) => match token_file::write_secret(path, &rotated) {
                Ok(()) => {
                    debug!(account = %self.account, "the provider rotated the refresh token; written to {}", path.display());
                    self.rotated_in_memory = None;
                }
                Err(e) => {
                    error!(
                        account = %self.account,
                        "the provider rotated the refresh token but {e}; it is kept in memory \
                         until the daemon stops (then run `{}`)",
                        self.reauth_command
                    );
                    self.rotated_in_memory = Some(rotated);
                }
            },
            SecretSource::Env(var) => {
                if self.rotated_in_memory.is_none() {
                    warn!(
                        account = %self.account,
                        "the provider rotated the refresh token, which cannot be written back \
                         to the environment variable {var}; it is kept in memory until the \
                         daemon stops (use refresh_token_file to keep it)"
                    );
                }
                self.rotated_in_memory = Some(rotated);
            }
        }
    }

    fn client(
        &self,
    ) -> Result<
        BasicClient<
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointSet,
        >,
        OAuth2Error,
    > {
        let token_url =
            TokenUrl::new(self.endpoints.token_url.clone()).map_err(|e| OAuth2Error::Setup {
                account: self.account.clone(),
                message: format!("token_url \"{}\": {e}", self.endpoints.token_url),
            })?;
        let mut client = BasicClient::new(ClientId::new(self.config.client_id.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url);
        if let Some(source) = &self.config.client_secret {
            let secret = self.read(source, "client secret")?;
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
        }
        Ok(client)
    }

    fn read(&self, source: &SecretSource, what: &'static str) -> Result<Secret, OAuth2Error> {
        read_secret(&self.account, source, what, &self.reauth_command)
    }

    fn revoked(&self, message: String) -> OAuth2Error {
        OAuth2Error::Revoked {
            account: self.account.clone(),
            command: self.reauth_command.clone(),
            message,
        }
    }

    fn failure(
        &self,
        error: RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>,
    ) -> OAuth2Error {
        exchange_failure(&self.account, &self.endpoints.token_url, error)
    }
}

/// Whether a token came from the cache (a refusal may mean it was revoked: get a new one)
/// or was just issued (a refusal is final).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Cached,
    New,
}

/// The HTTP client for token endpoints: no redirects (a redirect could carry the client
/// secret elsewhere), a time limit, rustls with the web's roots.
pub(super) fn http_client(account: &str) -> Result<reqwest::Client, OAuth2Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| OAuth2Error::Setup {
            account: account.to_string(),
            message: format!("cannot set up HTTPS: {e}"),
        })
}

/// Whether the client secret and the refresh token of an account can be read (for `check`),
/// each problem in words; nothing is sent anywhere.
pub fn unreadable_secrets(
    account: &str,
    reauth_command: &str,
    config: &OAuth2Config,
) -> Vec<OAuth2Error> {
    let mut problems = Vec::new();
    if let Some(source) = &config.client_secret {
        if let Err(e) = read_secret(account, source, "client secret", reauth_command) {
            problems.push(e);
        }
    }
    if let Err(e) = read_secret(
        account,
        &config.refresh_token,
        "refresh token",
        reauth_command,
    ) {
        problems.push(e);
    }
    problems
}

/// Reads a client secret or refresh token; an empty one counts as missing.
pub(super) fn read_secret(
    account: &str,
    source: &SecretSource,
    what: &'static str,
    reauth_command: &str,
) -> Result<Secret, OAuth2Error> {
    let failed = |message: String| OAuth2Error::Secret {
        account: account.to_string(),
        what,
        message,
    };
    let value = match source {
        SecretSource::Env(var) => std::env::var(var)
            .map_err(|_| failed(format!("the environment variable {var} is not set")))?,
        SecretSource::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && what == "refresh token" => {
                return Err(failed(format!(
                    "{} does not exist yet; run `{reauth_command}` to sign in",
                    path.display()
                )))
            }
            Err(e) => return Err(failed(format!("cannot read {}: {e}", path.display()))),
        },
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(failed(format!("the {source} is empty")));
    }
    Ok(Secret::new(value))
}

/// The provider's refusal in its words: `invalid_grant: Token has been expired or revoked.`
pub(super) fn provider_words<T: oauth2::ErrorResponseType + AsRef<str> + std::fmt::Display>(
    refusal: &oauth2::StandardErrorResponse<T>,
) -> String {
    match refusal.error_description() {
        Some(description) => format!("{}: {description}", refusal.error().as_ref()),
        None => refusal.error().as_ref().to_string(),
    }
}

/// A failed exchange in words, without the answer's body (it could hold a token).
pub(super) fn exchange_failure<T: oauth2::ErrorResponseType + AsRef<str> + std::fmt::Display>(
    account: &str,
    url: &str,
    error: RequestTokenError<HttpClientError<reqwest::Error>, oauth2::StandardErrorResponse<T>>,
) -> OAuth2Error {
    let unreachable = |message: String| OAuth2Error::Unreachable {
        account: account.to_string(),
        url: url.to_string(),
        message,
    };
    match error {
        RequestTokenError::ServerResponse(refusal) => OAuth2Error::Refused {
            account: account.to_string(),
            url: url.to_string(),
            message: provider_words(&refusal),
        },
        RequestTokenError::Request(e) => unreachable(error_chain(&e)),
        RequestTokenError::Parse(_, _) => {
            unreachable("its answer is not a token response (is token_url right?)".into())
        }
        RequestTokenError::Other(words) => unreachable(words),
    }
}

/// An error and its causes on one line (reqwest's own message leaves the cause out).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let words = cause.to_string();
        if !text.contains(&words) {
            text.push_str(": ");
            text.push_str(&words);
        }
        source = cause.source();
    }
    text
}
