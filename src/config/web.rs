//! The `[web]` section of `mailrules.toml`: where `mailrules serve` listens, whether a
//! reverse proxy stands in front of it, its public address and how long a login lasts.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// The web's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// Where the server listens; loopback unless `behind_proxy`.
    pub listen: SocketAddr,
    /// A reverse proxy (with TLS) stands in front: its `X-Forwarded-Proto` is believed.
    pub behind_proxy: bool,
    /// The address people reach the web at (links in notifications); an `https://` one makes
    /// the session cookie `Secure`.
    pub base_url: Option<String>,
    /// How long a login lasts before the password is asked again.
    pub session_lifetime: Duration,
    /// A task the customer wrote last is "overdue" on the queue once their mail is this old.
    pub overdue_after: Duration,
}

/// The default address: this machine only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default session lifetime: a working day.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The default answer time before a task counts as overdue: a day.
pub const DEFAULT_OVERDUE_AFTER: Duration = Duration::from_secs(24 * 3600);

impl Default for WebConfig {
    fn default() -> WebConfig {
        WebConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            behind_proxy: false,
            base_url: None,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            overdue_after: DEFAULT_OVERDUE_AFTER,
        }
    }
}

impl WebConfig {
    /// Whether pages are reached over https (the base URL says so): cookies are then `Secure`.
    pub fn https_base(&self) -> bool {
        self.base_url
            .as_deref()
            .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"))
    }
}

/// `[web]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    listen: Option<String>,
    #[serde(default)]
    behind_proxy: bool,
    base_url: Option<String>,
    session_lifetime: Option<String>,
    overdue_after: Option<String>,
}

/// Checks `[web]`; every problem is pushed to `problems` (as `[web]: ...`).
pub(super) fn parse(raw: RawWeb, problems: &mut Vec<String>) -> Option<WebConfig> {
    let before = problems.len();
    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN).trim();
    let listen = match listen_text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            problems.push(format!(
                "[web]: listen = \"{listen_text}\" is not an address and port (e.g. \
                 \"127.0.0.1:8080\")"
            ));
            None
        }
    };
    if let Some(addr) = listen {
        if !addr.ip().is_loopback() && !raw.behind_proxy {
            problems.push(format!(
                "[web]: listen = \"{addr}\" is reachable from other machines, and the web \
                 speaks plain HTTP; put a reverse proxy with TLS in front and set \
                 behind_proxy = true, or listen on 127.0.0.1"
            ));
        }
    }
    if let Some(url) = &raw.base_url {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            problems.push(format!(
                "[web]: base_url = \"{url}\" must start with https:// (or http://)"
            ));
        }
    }
    let session_lifetime = duration(
        "session_lifetime",
        raw.session_lifetime.as_deref(),
        DEFAULT_SESSION_LIFETIME,
        problems,
    );
    let overdue_after = duration(
        "overdue_after",
        raw.overdue_after.as_deref(),
        DEFAULT_OVERDUE_AFTER,
        problems,
    );
    if problems.len() > before {
        return None;
    }
    Some(WebConfig {
        listen: listen?,
        behind_proxy: raw.behind_proxy,
        base_url: raw.base_url.map(|u| u.trim_end_matches('/').to_string()),
        session_lifetime,
        overdue_after,
    })
}

/// A duration key longer than 0, or `default` when it is not given.
fn duration(
    key: &str,
    text: Option<&str>,
    default: Duration,
    problems: &mut Vec<String>,
) -> Duration {
    let Some(text) = text else {
        return default;
    };
    match super::parse_duration(text) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => {
            problems.push(format!("[web]: {key} must be longer than 0 (e.g. \"12h\")"));
            default
        }
        Err(m) => {
            problems.push(format!("[web]: {key}: {m}"));
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Option<WebConfig>, Vec<String>) {
        let raw: RawWeb = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        (parse(raw, &mut problems), problems)
    }

    #[test]
    fn defaults_to_loopback() {
        let (web, problems) = parsed("");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(web.unwrap(), WebConfig::default());
    }

    #[test]
    fn a_public_address_needs_a_proxy() {
        let (web, problems) = parsed("listen = \"0.0.0.0:8080\"");
        assert!(web.is_none());
        assert!(problems[0].contains("behind_proxy = true"), "{problems:?}");
        let (web, problems) = parsed("listen = \"0.0.0.0:8080\"\nbehind_proxy = true");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(web.unwrap().behind_proxy);
    }

    #[test]
    fn bad_values_are_named() {
        let (_, problems) =
            parsed("listen = \"nowhere\"\nbase_url = \"desk\"\nsession_lifetime = \"soon\"");
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn an_https_base_url_means_secure_cookies() {
        let (web, _) = parsed("base_url = \"https://desk.acme.example/\"");
        let web = web.unwrap();
        assert!(web.https_base());
        assert_eq!(web.base_url.as_deref(), Some("https://desk.acme.example"));
    }
}
