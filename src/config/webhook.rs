//! `[[webhook]]` endpoints: their URL, the secret that signs each body, the headers (whose
//! secrets are named by environment variable, never written in the file), timeout and retries.
//!
//! The file holds templates only; [`WebhookConfig::headers`] and [`WebhookConfig::secret`]
//! read the environment when a request is made, so a value never reaches the store, a log or
//! `Debug`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{is_loopback_host, parse_duration};

/// Headers mailrules sets itself on every delivery; an endpoint may not replace them.
const RESERVED_HEADERS: [&str; 5] = [
    "content-length",
    "host",
    "idempotency-key",
    "x-mailrules-signature",
    "transfer-encoding",
];

/// One configured endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    /// The environment variable holding the HMAC-SHA256 key (`secret_env`), if bodies are signed.
    pub secret_env: Option<String>,
    /// Header name and value template, in name order.
    pub headers: Vec<(String, HeaderTemplate)>,
    /// How long one request may take, connecting included.
    pub timeout: Duration,
    /// The first wait after a failed try; each further one twice as long, at most an hour.
    pub backoff: Duration,
    /// Tries before a delivery that keeps failing with a network error, a 5xx or a 429 fails
    /// for good.
    pub max_attempts: u32,
}

/// A header value as written: literal text and `{env:NAME}` references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderTemplate(pub Vec<HeaderPiece>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderPiece {
    Literal(String),
    /// The value of this environment variable, read when a request is made.
    Env(String),
}

/// Why an endpoint cannot be used now. Names variables, never their values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretError {
    #[error("webhook \"{endpoint}\": environment variable {var} is not set (named by {what})")]
    Missing {
        endpoint: String,
        var: String,
        what: String,
    },
    #[error(
        "webhook \"{endpoint}\": the value of environment variable {var} cannot go in header \
         {header} (it holds a line break or a control character)"
    )]
    Unusable {
        endpoint: String,
        var: String,
        header: String,
    },
}

impl HeaderTemplate {
    /// `Bearer {env:TOKEN}` → literal + env; any other `{…}` is an error. Errors never quote
    /// the value (a secret written there by mistake stays out of the message).
    pub fn parse(text: &str) -> Result<HeaderTemplate, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(HeaderPiece::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| "a `{` without its `}`".to_string())?;
            let inner = &after[..close];
            let Some(var) = inner.strip_prefix("env:") else {
                return Err(format!(
                    "`{{{inner}}}` is not allowed; a header value may name an \
                     environment variable only, as {{env:NAME}}"
                ));
            };
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "\"{var}\" is not an environment variable name (letters, digits, _)"
                ));
            }
            pieces.push(HeaderPiece::Env(var.to_string()));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(HeaderPiece::Literal(rest.to_string()));
        }
        for piece in &pieces {
            if let HeaderPiece::Literal(l) = piece {
                if l.chars().any(|c| c.is_control() && c != '\t') {
                    return Err("a header value cannot hold a line break".into());
                }
            }
        }
        Ok(HeaderTemplate(pieces))
    }

    /// The environment variables the value names.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            HeaderPiece::Env(v) => Some(v.as_str()),
            HeaderPiece::Literal(_) => None,
        })
    }
}

impl WebhookConfig {
    /// The signing key, read from the environment now; `None` when bodies are not signed.
    pub fn secret(&self) -> Result<Option<String>, WebhookSecretError> {
        let Some(var) = &self.secret_env else {
            return Ok(None);
        };
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err(WebhookSecretError::Missing {
                endpoint: self.name.clone(),
                var: var.clone(),
                what: "secret_env".into(),
            }),
        }
    }

    /// The headers with every `{env:NAME}` put in, read from the environment now. A variable
    /// that is not set is an error: a header is never sent with an empty secret.
    pub fn headers(&self) -> Result<Vec<(String, String)>, WebhookSecretError> {
        let mut out = Vec::new();
        for (name, template) in &self.headers {
            let mut value = String::new();
            for piece in &template.0 {
                match piece {
                    HeaderPiece::Literal(l) => value.push_str(l),
                    HeaderPiece::Env(var) => {
                        let Ok(v) = std::env::var(var) else {
                            return Err(WebhookSecretError::Missing {
                                endpoint: self.name.clone(),
                                var: var.clone(),
                                what: format!("header {name}"),
                            });
                        };
                        if v.chars().any(|c| c.is_control() && c != '\t') {
                            return Err(WebhookSecretError::Unusable {
                                endpoint: self.name.clone(),
                                var: var.clone(),
                                header: name.clone(),
                            });
                        }
                        value.push_str(&v);
                    }
                }
            }
            out.push((name.clone(), value));
        }
        Ok(out)
    }

    /// Every problem with the environment this endpoint needs (`check`, daemon start).
    pub fn environment_problems(&self) -> Vec<WebhookSecretError> {
        let mut problems = Vec::new();
        if let Err(e) = self.secret() {
            problems.push(e);
        }
        for (name, template) in &self.headers {
            for var in template.vars() {
                if std::env::var_os(var).is_none() {
                    problems.push(WebhookSecretError::Missing {
                        endpoint: self.name.clone(),
                        var: var.to_string(),
                        what: format!("header {name}"),
                    });
                }
            }
        }
        if problems.is_empty() {
            if let Err(e) = self.headers() {
                problems.push(e);
            }
        }
        problems
    }
}

// ---- the file as written -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    name: String,
    url: String,
    secret_env: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "default_timeout")]
    timeout: String,
    #[serde(default = "default_backoff")]
    backoff: String,
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    /// Plain http to a host that is not this machine; off by default.
    #[serde(default)]
    allow_http: bool,
}

fn default_timeout() -> String {
    "10s".into()
}
fn default_backoff() -> String {
    "30s".into()
}
fn default_max_attempts() -> u32 {
    10
}

/// Checks every `[[webhook]]`; each problem is pushed to `problems` (all of them, not the
/// first), and only endpoints without problems are returned.
pub(super) fn parse(raw: Vec<RawWebhook>, problems: &mut Vec<String>) -> Vec<WebhookConfig> {
    let mut endpoints: Vec<WebhookConfig> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for w in raw {
        let before = problems.len();
        let mut problem = |msg: String| problems.push(format!("webhook \"{}\": {msg}", w.name));
        if w.name.trim().is_empty() {
            problem("`name` is empty".into());
        }
        if names.contains(&w.name) {
            problem("a webhook with this name is already configured".into());
        }
        names.push(w.name.clone());
        if let Err(e) = check_url(&w.url, w.allow_http) {
            problem(e);
        }
        if let Some(var) = &w.secret_env {
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                problem(format!(
                    "secret_env \"{var}\" is not an environment variable name"
                ));
            }
        }
        let mut headers = Vec::new();
        for (name, value) in &w.headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                problem(format!("\"{name}\" is not a header name"));
                continue;
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                problem(format!("header {name} is set by mailrules itself"));
                continue;
            }
            match HeaderTemplate::parse(value) {
                Ok(t) => headers.push((name.clone(), t)),
                Err(e) => problem(format!("header {name}: {e}")),
            }
        }
        let timeout = parse_duration(&w.timeout)
            .map_err(|e| problem(format!("timeout: {e}")))
            .ok();
        let backoff = parse_duration(&w.backoff)
            .map_err(|e| problem(format!("backoff: {e}")))
            .ok();
        if timeout.is_some_and(|t| t.is_zero()) {
            problem("timeout must be longer than 0".into());
        }
        if w.max_attempts == 0 {
            problem("max_attempts must be at least 1".into());
        }
        let (Some(timeout), Some(backoff)) = (timeout, backoff) else {
            continue;
        };
        if problems.len() > before {
            continue;
        }
        endpoints.push(WebhookConfig {
            name: w.name,
            url: w.url,
            secret_env: w.secret_env,
            headers,
            timeout,
            backoff,
            max_attempts: w.max_attempts,
        });
    }
    endpoints
}

/// https anywhere; http only to this machine, or anywhere with `allow_http = true`. No user
/// and password in the URL (put them in `headers`). Errors name the host, never the whole
/// URL: a chat's incoming-webhook URL is itself a secret.
fn check_url(url: &str, allow_http: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url cannot be read: {e}"))?;
    let host = parsed.host_str().unwrap_or("");
    if host.is_empty() {
        return Err("url has no host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "the url holds a user or password; put credentials in `headers` with {env:NAME}".into(),
        );
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_http || is_loopback_host(host) => Ok(()),
        "http" => Err(format!(
            "url is plain http to another machine ({host}): use https, or set allow_http = true \
             if the network between is trusted"
        )),
        other => Err(format!("url: scheme {other} is not http or https")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> Vec<RawWebhook> {
        #[derive(Deserialize)]
        struct File {
            webhook: Vec<RawWebhook>,
        }
        toml::from_str::<File>(toml_text).unwrap().webhook
    }

    #[test]
    fn every_problem_of_every_endpoint_is_reported() {
        let mut problems = Vec::new();
        let ok = parse(
            raw(r#"
[[webhook]]
name = "a"
url = "http://tracker.example/api"
headers = { Authorization = "Bearer {token}", "Idempotency-Key" = "x" }
timeout = "soon"

[[webhook]]
name = "b"
url = "https://user:pw@tracker.example/"

[[webhook]]
name = "c"
url = "http://127.0.0.1:8080/hook"
headers = { Authorization = "Bearer {env:TOKEN}" }
"#),
            &mut problems,
        );
        assert_eq!(ok.len(), 1, "{problems:?}");
        assert_eq!(ok[0].name, "c");
        assert_eq!(ok[0].timeout, Duration::from_secs(10));
        let text = problems.join("\n");
        for needle in [
            "plain http",
            "{env:NAME}",
            "set by mailrules itself",
            "timeout",
            "user or password",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn a_missing_variable_is_an_error_never_an_empty_header() {
        let endpoint = WebhookConfig {
            name: "t".into(),
            url: "https://t.example/".into(),
            secret_env: None,
            headers: vec![(
                "Authorization".into(),
                HeaderTemplate::parse("Bearer {env:MAILRULES_TEST_SURELY_UNSET_VAR}").unwrap(),
            )],
            timeout: Duration::from_secs(1),
            backoff: Duration::from_secs(1),
            max_attempts: 1,
        };
        let err = endpoint.headers().unwrap_err().to_string();
        assert!(
            err.contains("MAILRULES_TEST_SURELY_UNSET_VAR is not set"),
            "{err}"
        );
        assert_eq!(endpoint.environment_problems().len(), 1);
    }
}
