//! The identity providers mailrules knows: their token and device-code endpoints and the
//! scopes IMAP and SMTP need. `custom` takes both from the configuration.

use crate::config::{OAuth2Config, Provider};

pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const GOOGLE_DEVICE_URL: &str = "https://oauth2.googleapis.com/device/code";
/// Gmail's one scope for IMAP and SMTP.
pub const GOOGLE_SCOPE: &str = "https://mail.google.com/";
pub const MICROSOFT_TOKEN_URL: &str = "https://login.microsoftonline.com/common/oauth2/v2.0/token";
pub const MICROSOFT_DEVICE_URL: &str =
    "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode";
/// IMAP and SMTP for Microsoft 365; `offline_access` is what makes it issue a refresh token.
pub const MICROSOFT_SCOPE: &str = "https://outlook.office.com/IMAP.AccessAsUser.All \
     https://outlook.office.com/SMTP.Send offline_access";

/// Where to ask for tokens and for which scopes, once the configuration is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub token_url: String,
    /// `None` for a custom provider without `device_url`: `mailrules auth` cannot run.
    pub device_url: Option<String>,
    pub scopes: Vec<String>,
}

/// The provider's endpoints and scopes, each overridden by the configuration where given.
pub fn endpoints(config: &OAuth2Config) -> Endpoints {
    let (token_url, device_url, scope) = match config.provider {
        Provider::Google => (
            Some(GOOGLE_TOKEN_URL),
            Some(GOOGLE_DEVICE_URL),
            GOOGLE_SCOPE,
        ),
        Provider::Microsoft => (
            Some(MICROSOFT_TOKEN_URL),
            Some(MICROSOFT_DEVICE_URL),
            MICROSOFT_SCOPE,
        ),
        Provider::Custom => (None, None, ""),
    };
    let scope = config.scope.as_deref().unwrap_or(scope);
    Endpoints {
        // The loader makes a custom provider name its token_url.
        token_url: config
            .token_url
            .clone()
            .or(token_url.map(str::to_string))
            .unwrap_or_default(),
        device_url: config.device_url.clone().or(device_url.map(str::to_string)),
        scopes: scope.split_whitespace().map(str::to_string).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretSource;

    fn config(provider: Provider) -> OAuth2Config {
        OAuth2Config {
            provider,
            token_url: None,
            device_url: None,
            client_id: "id".into(),
            client_secret: None,
            refresh_token: SecretSource::Env("X".into()),
            scope: None,
        }
    }

    #[test]
    fn the_built_in_providers_know_their_endpoints_and_scopes() {
        let google = endpoints(&config(Provider::Google));
        assert_eq!(google.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(
            google.device_url.as_deref(),
            Some("https://oauth2.googleapis.com/device/code")
        );
        assert_eq!(google.scopes, ["https://mail.google.com/"]);
        let microsoft = endpoints(&config(Provider::Microsoft));
        assert_eq!(
            microsoft.token_url,
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
        assert_eq!(
            microsoft.scopes,
            [
                "https://outlook.office.com/IMAP.AccessAsUser.All",
                "https://outlook.office.com/SMTP.Send",
                "offline_access"
            ]
        );
        let mut custom = config(Provider::Custom);
        custom.token_url = Some("https://idp.example/token".into());
        custom.scope = Some("imap smtp".into());
        let custom = endpoints(&custom);
        assert_eq!(custom.token_url, "https://idp.example/token");
        assert_eq!(custom.device_url, None);
        assert_eq!(custom.scopes, ["imap", "smtp"]);
    }
}
