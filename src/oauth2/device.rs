//! The device-code flow (RFC 8628) of `mailrules auth`: ask for a user code, show where to
//! enter it, poll the token endpoint until the person has signed in, and write the refresh
//! token where the configuration says.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, DeviceAuthorizationUrl, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};

use super::provider::endpoints;
use super::tokens::{exchange_failure, http_client, read_secret};
use super::{token_file, OAuth2Error, Secret};
use crate::config::{OAuth2Config, SecretSource};

/// What the person must do: open `verification_uri` and enter `user_code`.
#[derive(Debug, Clone)]
pub struct DevicePrompt {
    pub verification_uri: String,
    /// A link with the code filled in, when the provider offers one.
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
    /// How long the code stays valid.
    pub expires_in: Duration,
}

/// Runs the device flow for `account` and writes the refresh token to `refresh_token_file`
/// (0600, atomically). `show` is called once with what to tell the person.
pub async fn sign_in_with_device_code(
    account: &str,
    reauth_command: &str,
    config: &OAuth2Config,
    show: impl FnOnce(&DevicePrompt),
) -> Result<std::path::PathBuf, OAuth2Error> {
    let setup = |message: String| OAuth2Error::Setup {
        account: account.to_string(),
        message,
    };
    let SecretSource::File(path) = &config.refresh_token else {
        return Err(setup(
            "refresh_token_env cannot be written: set refresh_token_file to where the refresh \
             token should be kept"
                .into(),
        ));
    };
    let endpoints = endpoints(config);
    let Some(device_url) = endpoints.device_url.clone() else {
        return Err(setup(
            "provider = \"custom\" needs device_url (the device authorization endpoint) for \
             `mailrules auth`"
                .into(),
        ));
    };
    let http = http_client(account)?;
    let mut client = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(
            TokenUrl::new(endpoints.token_url.clone())
                .map_err(|e| setup(format!("token_url \"{}\": {e}", endpoints.token_url)))?,
        )
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(device_url.clone())
                .map_err(|e| setup(format!("device_url \"{device_url}\": {e}")))?,
        );
    if let Some(source) = &config.client_secret {
        let secret = read_secret(account, source, "client secret", reauth_command)?;
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
    }
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(endpoints.scopes.iter().cloned().map(Scope::new))
        .request_async(&http)
        .await
        .map_err(|e| exchange_failure(account, &device_url, e))?;
    show(&DevicePrompt {
        verification_uri: details.verification_uri().to_string(),
        verification_uri_complete: details
            .verification_uri_complete()
            .map(|u| u.secret().to_string()),
        user_code: details.user_code().secret().to_string(),
        expires_in: details.expires_in(),
    });
    let tokens = client
        .exchange_device_access_token(&details)
        .request_async(&http, tokio::time::sleep, None)
        .await
        .map_err(|e| exchange_failure(account, &endpoints.token_url, e))?;
    let Some(refresh_token) = tokens.refresh_token() else {
        return Err(setup(
            "the provider issued no refresh token (Microsoft needs the scope offline_access)"
                .into(),
        ));
    };
    token_file::write_secret(path, &Secret::new(refresh_token.secret().clone()))?;
    Ok(path.clone())
}
