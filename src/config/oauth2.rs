//! The `auth` key and the `[mailbox.oauth2]` / `[smtp.oauth2]` table: how an account signs in
//! with OAuth2 (provider, client, where the client secret and the refresh token are), checked
//! with every problem reported at once. Only references to secrets live here, never a value.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Who issues the tokens: endpoints and scopes are built in for `google` and `microsoft`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Google,
    Microsoft,
    /// Any other identity provider: `token_url` (and `device_url` for `mailrules auth`) given.
    Custom,
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Provider::Google => "google",
            Provider::Microsoft => "microsoft",
            Provider::Custom => "custom",
        })
    }
}

/// Where a secret is (the client secret or the refresh token). `Debug` shows the source, never
/// the value; the value is read only when it is needed.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

impl std::fmt::Display for SecretSource {
    /// Where the secret is, in words: `file /etc/mailrules/gmail.refresh`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "file {}", p.display()),
            SecretSource::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// One account's OAuth2 settings, resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Config {
    pub provider: Provider,
    /// The token endpoint; `None`: the provider's own.
    pub token_url: Option<String>,
    /// The device authorization endpoint (`mailrules auth`); `None`: the provider's own.
    pub device_url: Option<String>,
    pub client_id: String,
    /// Public clients (Microsoft's device flow) have none.
    pub client_secret: Option<SecretSource>,
    pub refresh_token: SecretSource,
    /// Space-separated scopes; `None`: the provider's defaults.
    pub scope: Option<String>,
}

/// The table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth2 {
    provider: Option<String>,
    token_url: Option<String>,
    device_url: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<PathBuf>,
    client_secret_env: Option<String>,
    refresh_token_file: Option<PathBuf>,
    refresh_token_env: Option<String>,
    scope: Option<String>,
}

/// How an account signs in, as written in `auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(super) enum AuthMethod {
    #[default]
    Password,
    #[serde(rename = "oauth2")]
    OAuth2,
}

/// Checks `auth` against the password keys and the oauth2 table of one account (`at` names
/// it in problems: `mailbox "gmail"` or `[smtp]`); `table` is how the table is written there
/// (`[mailbox.oauth2]`). Returns the OAuth2 settings when `auth = "oauth2"` and all is well.
pub(super) fn resolve(
    at: &str,
    table: &str,
    auth: AuthMethod,
    raw: Option<RawOAuth2>,
    has_password: bool,
    base: &Path,
    problems: &mut Vec<String>,
) -> Option<OAuth2Config> {
    let raw = match (auth, raw) {
        (AuthMethod::Password, None) => return None,
        (AuthMethod::Password, Some(_)) => {
            problems.push(format!(
                "{at}: {table} is given but auth is not \"oauth2\"; set auth = \"oauth2\" to \
                 sign in with it, or remove the table"
            ));
            return None;
        }
        (AuthMethod::OAuth2, None) => {
            problems.push(format!(
                "{at}: auth = \"oauth2\" needs a {table} table (provider, client_id, \
                 refresh_token_file, …; see config.example.toml)"
            ));
            return None;
        }
        (AuthMethod::OAuth2, Some(raw)) => raw,
    };
    let before = problems.len();
    let mut problem = |text: String| problems.push(format!("{at}: {text}"));
    if has_password {
        problem(
            "auth = \"oauth2\" signs in with a token: remove password_file/password_env".into(),
        );
    }
    let provider = match raw.provider.as_deref().map(str::trim) {
        Some("google") => Some(Provider::Google),
        Some("microsoft") => Some(Provider::Microsoft),
        Some("custom") => Some(Provider::Custom),
        Some(other) => {
            problem(format!(
                "{table} provider \"{other}\" is unknown: expected google, microsoft or custom"
            ));
            None
        }
        None => {
            problem(format!(
                "{table} needs provider = \"google\", \"microsoft\" or \"custom\""
            ));
            None
        }
    };
    if provider == Some(Provider::Custom) && raw.token_url.is_none() {
        problem(format!(
            "{table} provider = \"custom\" needs token_url (the identity provider's token \
             endpoint)"
        ));
    }
    for (key, url) in [
        ("token_url", &raw.token_url),
        ("device_url", &raw.device_url),
    ] {
        if let Some(url) = url {
            if let Err(e) = check_url(url) {
                problem(format!("{table} {key}: {e}"));
            }
        }
    }
    let client_id = raw.client_id.unwrap_or_default();
    if client_id.trim().is_empty() {
        problem(format!(
            "{table} needs client_id (from the app registration at the provider)"
        ));
    }
    let client_secret = match (raw.client_secret_file, raw.client_secret_env) {
        (Some(_), Some(_)) => {
            problem(format!(
                "{table}: give client_secret_file or client_secret_env, not both"
            ));
            None
        }
        (Some(file), None) => Some(SecretSource::File(base.join(file))),
        (None, Some(var)) => Some(SecretSource::Env(var)),
        (None, None) => None,
    };
    let refresh_token = match (raw.refresh_token_file, raw.refresh_token_env) {
        (Some(_), Some(_)) => {
            problem(format!(
                "{table}: give refresh_token_file or refresh_token_env, not both"
            ));
            None
        }
        (Some(file), None) => Some(SecretSource::File(base.join(file))),
        (None, Some(var)) => Some(SecretSource::Env(var)),
        (None, None) => {
            problem(format!(
                "{table} needs refresh_token_file (written by `mailrules auth`) or \
                 refresh_token_env"
            ));
            None
        }
    };
    let scope = raw.scope.filter(|s| !s.trim().is_empty());
    if problems.len() > before {
        return None;
    }
    Some(OAuth2Config {
        provider: provider?,
        token_url: raw.token_url,
        device_url: raw.device_url,
        client_id,
        client_secret,
        refresh_token: refresh_token?,
        scope,
    })
}

/// Token endpoints get client secrets and refresh tokens: HTTPS, or plain HTTP to this machine.
fn check_url(url: &str) -> Result<(), String> {
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        let host = match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        };
        if !super::is_loopback_host(host) {
            return Err(format!(
                "\"{url}\" is plain http: only https is allowed, except to this machine"
            ));
        }
        rest
    } else {
        return Err(format!("\"{url}\" is not an http(s) URL"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("\"{url}\" names no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_str(text, Path::new("/etc/mr/mailrules.toml"))
    }

    const MAILBOX: &str = "[[mailbox]]\nname = \"gmail\"\nhost = \"imap.gmail.com\"\n\
                           user = \"support@acme.example\"\n";

    #[test]
    fn an_oauth2_mailbox_is_read_with_paths_beside_the_config() {
        let config = load(&format!(
            "{MAILBOX}auth = \"oauth2\"\n[mailbox.oauth2]\nprovider = \"google\"\n\
             client_id = \"123.apps\"\nclient_secret_file = \"gmail.secret\"\n\
             refresh_token_file = \"gmail.refresh\"\n"
        ))
        .unwrap();
        let oauth2 = config.mailboxes[0].oauth2.clone().unwrap();
        assert_eq!(oauth2.provider, Provider::Google);
        assert_eq!(oauth2.client_id, "123.apps");
        assert_eq!(
            oauth2.client_secret,
            Some(SecretSource::File("/etc/mr/gmail.secret".into()))
        );
        assert_eq!(
            oauth2.refresh_token,
            SecretSource::File("/etc/mr/gmail.refresh".into())
        );
        assert_eq!(oauth2.scope, None);
        let password = load(MAILBOX).unwrap();
        assert_eq!(password.mailboxes[0].oauth2, None);
    }

    #[test]
    fn missing_and_contradictory_oauth2_keys_are_reported_together() {
        let error = load(&format!(
            "{MAILBOX}auth = \"oauth2\"\npassword_env = \"PW\"\n[mailbox.oauth2]\n\
             provider = \"custom\"\nclient_secret_file = \"a\"\nclient_secret_env = \"B\"\n\
             device_url = \"http://idp.example/device\"\n"
        ))
        .unwrap_err()
        .to_string();
        for expected in [
            "remove password_file/password_env",
            "provider = \"custom\" needs token_url",
            "device_url: \"http://idp.example/device\" is plain http",
            "needs client_id",
            "client_secret_file or client_secret_env, not both",
            "needs refresh_token_file",
        ] {
            assert!(
                error.contains(expected),
                "{expected:?} missing from:\n{error}"
            );
        }
        assert!(error.lines().count() >= 6, "{error}");
    }

    #[test]
    fn auth_and_the_table_must_agree() {
        let error = load(&format!("{MAILBOX}auth = \"oauth2\"\n"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("needs a [mailbox.oauth2] table"), "{error}");
        let error = load(&format!(
            "{MAILBOX}[mailbox.oauth2]\nprovider = \"google\"\nclient_id = \"x\"\n\
             refresh_token_env = \"T\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("auth is not \"oauth2\""), "{error}");
        let error = load(&format!(
            "{MAILBOX}auth = \"oauth2\"\n[mailbox.oauth2]\nprovider = \"yahoo\"\n\
             client_id = \"x\"\nrefresh_token_env = \"T\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("provider \"yahoo\" is unknown"), "{error}");
    }

    #[test]
    fn smtp_with_oauth2_needs_a_user() {
        let error = load(
            "[smtp]\nhost = \"smtp.gmail.com\"\nfrom = \"a@b.example\"\nauth = \"oauth2\"\n\
             [smtp.oauth2]\nprovider = \"google\"\nclient_id = \"x\"\nrefresh_token_env = \"T\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("[smtp]: auth = \"oauth2\" needs user"),
            "{error}"
        );
    }

    #[test]
    fn secret_sources_show_where_not_what() {
        let source = SecretSource::Env("GMAIL_REFRESH".into());
        assert_eq!(format!("{source:?}"), "environment variable GMAIL_REFRESH");
        assert_eq!(source.to_string(), "environment variable GMAIL_REFRESH");
    }
}
