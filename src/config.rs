//! The daemon's configuration file (`mailrules.toml`): loading, defaults and validation.
//!
//! Every key is documented with its default in `config.example.toml`; keep the two in step.
//! Paths inside the file are resolved relative to the file's own directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod webhook;
pub use webhook::{HeaderPiece, HeaderTemplate, WebhookConfig, WebhookSecretError};
mod oauth2;
pub use oauth2::{OAuth2Config, Provider, SecretSource};
mod values;
mod web;
pub use values::{is_loopback_host, parse_duration, parse_size};
pub use web::WebConfig;

/// Everything that can be wrong with a configuration file, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no configuration file at {}; name another with --config PATH or the \
         MAILRULES_CONFIG variable (a fully commented example is config.example.toml, beside \
         mailrules' README)",
        .path.display()
    )]
    NotFound { path: PathBuf },
    // The OS error is part of the message, not a source: printed with its causes it would
    // appear twice.
    #[error("cannot read config {}: {message}", .path.display())]
    Read { path: PathBuf, message: String },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// Every problem found in a configuration that parsed, each on its own line, so that one
    /// run of `check` shows them all.
    #[error("{}", .problems.iter().map(|p| format!("{}: {p}", .path.display())).collect::<Vec<_>>().join("\n"))]
    Problems {
        path: PathBuf,
        problems: Vec<String>,
    },
    #[error("cannot read the password for {what}: {message}")]
    Secret { what: String, message: String },
}

/// Whose original bytes the store keeps (`keep_mail`). The record of every message's fate
/// is kept whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepMail {
    /// Every message's (the default).
    #[default]
    Forever,
    /// Every message's, for this long after it arrived.
    For(Duration),
    /// Only failed messages' (`"failed"`), which `retry` needs: for a mailbox where ingest
    /// speed counts more than opening old mail. Compressing and writing every message's bytes
    /// costs about a third of the CPU time that processing it does (BENCHMARKS.md).
    FailedOnly,
}

impl KeepMail {
    /// Whether a message that did not fail keeps its bytes.
    pub fn keeps_every_message(self) -> bool {
        self != KeepMail::FailedOnly
    }
}

/// The parsed configuration, with every path made absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (for messages and for re-reading).
    pub path: PathBuf,
    pub store: PathBuf,
    pub rules: PathBuf,
    pub unmatched: Unmatched,
    pub staff: Staff,
    pub threading: Threading,
    pub mailboxes: Vec<MailboxConfig>,
    pub smtp: Option<SmtpConfig>,
    pub limits: Limits,
    /// Whose original bytes are kept, and how long (`keep_mail`).
    pub keep_mail: KeepMail,
    /// `[[webhook]]` endpoints that rules push to, by name.
    pub webhooks: Vec<WebhookConfig>,
    /// `[web]`: the web's settings; `None` when the section is absent (`run` then serves no
    /// web; `serve` uses the defaults).
    pub web: Option<WebConfig>,
}

/// What happens to a message that no rule matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    /// A reply becomes a comment on its task, a new message becomes a task.
    #[default]
    Thread,
    /// Recorded as processed, nothing else.
    Ignore,
}

/// Who counts as staff; everyone else is a contact.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staff {
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<String>,
}

impl Staff {
    /// Whether `address` belongs to staff. Compared case-insensitively on the bare address only:
    /// a display name never makes anybody staff.
    pub fn is_staff(&self, address: &str) -> bool {
        let address = address.trim().to_lowercase();
        if self
            .addresses
            .iter()
            .any(|a| a.trim().to_lowercase() == address)
        {
            return true;
        }
        match address.rsplit_once('@') {
            Some((_, domain)) => self.domains.iter().any(|d| {
                d.trim()
                    .trim_start_matches('@')
                    .eq_ignore_ascii_case(domain)
            }),
            None => false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threading {
    /// Regex whose group 1 is a task number, searched for in the subject.
    #[serde(default = "default_subject_tag")]
    pub subject_tag: String,
}

impl Default for Threading {
    fn default() -> Self {
        Threading {
            subject_tag: default_subject_tag(),
        }
    }
}

fn default_subject_tag() -> String {
    r"\[#(\d+)\]".to_string()
}

/// How a connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS; refused if the server does not offer it.
    Starttls,
    /// No TLS at all: accepted only for loopback hosts.
    None,
}

/// What to do with a message on the IMAP server once its fate is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Move(String),
    Flag,
    Delete,
    /// Leave it where it is (the stored UID keeps it from being fetched twice).
    Keep,
}

impl Disposition {
    fn parse(text: &str) -> Result<Disposition, String> {
        let text = text.trim();
        if let Some(folder) = text.strip_prefix("move:") {
            let folder = folder.trim();
            if folder.is_empty() {
                return Err("\"move:\" needs a folder name, e.g. \"move:Processed\"".into());
            }
            return Ok(Disposition::Move(folder.to_string()));
        }
        match text {
            "flag" => Ok(Disposition::Flag),
            "delete" => Ok(Disposition::Delete),
            "keep" => Ok(Disposition::Keep),
            other => Err(format!(
                "unknown disposition {}: expected move:FOLDER, flag, delete or keep",
                crate::text::quoted(other)
            )),
        }
    }
}

/// Where a password comes from. The secret itself is read only when it is needed and is
/// never formatted: `Debug` shows the source, not the value.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordSource {
    File(PathBuf),
    Env(String),
    None,
}

impl std::fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordSource::File(p) => write!(f, "password_file {}", p.display()),
            PasswordSource::Env(v) => write!(f, "password_env {v}"),
            PasswordSource::None => write!(f, "no password"),
        }
    }
}

impl PasswordSource {
    /// Reads the secret. `what` names the account in the error (never the secret).
    pub fn read(&self, what: &str) -> Result<Option<String>, ConfigError> {
        let secret_error = |message: String| ConfigError::Secret {
            what: what.to_string(),
            message,
        };
        match self {
            PasswordSource::None => Ok(None),
            PasswordSource::Env(var) => match std::env::var(var) {
                Ok(v) => Ok(Some(v)),
                Err(_) => Err(secret_error(format!(
                    "environment variable {var} is not set"
                ))),
            },
            PasswordSource::File(path) => match std::fs::read_to_string(path) {
                Ok(v) => Ok(Some(v.trim_end_matches(['\r', '\n']).to_string())),
                Err(e) => Err(secret_error(format!("cannot read {}: {e}", path.display()))),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct MailboxConfig {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// A PEM file with extra trusted roots (a private CA or a self-signed certificate).
    pub ca_file: Option<PathBuf>,
    pub user: String,
    pub password: PasswordSource,
    /// Set when `auth = "oauth2"`: sign in with an access token instead of the password.
    pub oauth2: Option<OAuth2Config>,
    pub folder: String,
    pub on_success: Disposition,
    pub on_failure: Disposition,
    pub idle: bool,
    pub poll_interval: Duration,
    /// How many messages one fetch asks for.
    pub batch_size: u32,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    pub user: Option<String>,
    pub password: PasswordSource,
    /// Set when `auth = "oauth2"`: sign in with an access token instead of the password.
    pub oauth2: Option<OAuth2Config>,
    /// The From of every message we send, e.g. `Поддержка ACME <support@example.com>`.
    pub from: String,
    /// Attempts before a transient failure becomes permanent.
    pub max_attempts: u32,
    pub timeout: Duration,
}

/// Flood protection and size limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// At most one automatic reply per task and recipient within this period.
    pub reply_per_task_period: Duration,
    /// At most this many automatic replies to one recipient per day.
    pub replies_per_recipient_per_day: u32,
    /// Larger messages are recorded as failed without being parsed.
    pub max_message_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            reply_per_task_period: Duration::from_secs(24 * 3600),
            replies_per_recipient_per_day: 10,
            max_message_size: 50 * 1024 * 1024,
        }
    }
}

// ---- the file as written -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_store")]
    store: PathBuf,
    #[serde(default = "default_rules")]
    rules: PathBuf,
    #[serde(default)]
    unmatched: Unmatched,
    #[serde(default)]
    staff: Staff,
    #[serde(default)]
    threading: Threading,
    #[serde(default)]
    mailbox: Vec<RawMailbox>,
    smtp: Option<RawSmtp>,
    #[serde(default)]
    limits: RawLimits,
    keep_mail: Option<String>,
    #[serde(default)]
    webhook: Vec<webhook::RawWebhook>,
    web: Option<web::RawWeb>,
}

fn default_store() -> PathBuf {
    PathBuf::from("mailrules.db")
}
fn default_rules() -> PathBuf {
    PathBuf::from("rules")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailbox {
    name: String,
    host: String,
    port: Option<u16>,
    #[serde(default)]
    tls: Option<TlsMode>,
    ca_file: Option<PathBuf>,
    user: String,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    #[serde(default)]
    auth: oauth2::AuthMethod,
    oauth2: Option<oauth2::RawOAuth2>,
    #[serde(default = "default_folder")]
    folder: String,
    #[serde(default = "default_on_success")]
    on_success: String,
    #[serde(default = "default_on_failure")]
    on_failure: String,
    #[serde(default = "default_true")]
    idle: bool,
    #[serde(default = "default_poll_interval")]
    poll_interval: String,
    #[serde(default = "default_batch_size")]
    batch_size: u32,
}

fn default_folder() -> String {
    "INBOX".into()
}
fn default_on_success() -> String {
    "move:Processed".into()
}
fn default_on_failure() -> String {
    "move:Failed".into()
}
fn default_true() -> bool {
    true
}
fn default_poll_interval() -> String {
    "60s".into()
}
fn default_batch_size() -> u32 {
    200
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: Option<u16>,
    tls: Option<TlsMode>,
    ca_file: Option<PathBuf>,
    user: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    #[serde(default)]
    auth: oauth2::AuthMethod,
    oauth2: Option<oauth2::RawOAuth2>,
    from: String,
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    #[serde(default = "default_timeout")]
    timeout: String,
}

fn default_max_attempts() -> u32 {
    5
}
fn default_timeout() -> String {
    "30s".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    reply_per_task_period: Option<String>,
    replies_per_recipient_per_day: Option<u32>,
    max_message_size: Option<String>,
}

fn password_source(
    file: Option<PathBuf>,
    env: Option<String>,
    base: &Path,
) -> Result<PasswordSource, String> {
    match (file, env) {
        (Some(_), Some(_)) => Err("give password_file or password_env, not both".into()),
        (Some(f), None) => Ok(PasswordSource::File(base.join(f))),
        (None, Some(v)) => Ok(PasswordSource::Env(v)),
        (None, None) => Ok(PasswordSource::None),
    }
}

/// The value, or `None` with the problem noted as `at: problem`.
fn noted<T>(problems: &mut Vec<String>, at: &str, result: Result<T, String>) -> Option<T> {
    result.map_err(|e| problems.push(format!("{at}: {e}"))).ok()
}

impl Config {
    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            // The full path looked at: `mailrules.toml` alone does not say which directory.
            let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            match e.kind() {
                std::io::ErrorKind::NotFound => ConfigError::NotFound { path },
                _ => ConfigError::Read {
                    path,
                    message: e.to_string(),
                },
            }
        })?;
        Config::from_str(&text, path)
    }

    /// Parses config text as if it had been read from `path`.
    pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| crate::text::line_col(text, s.start))
                .unwrap_or((1, 1));
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        // Every problem is collected (as rule errors are) and reported together at the end.
        let mut problems: Vec<String> = Vec::new();

        let mut mailboxes = Vec::new();
        for m in raw.mailbox {
            let ctx = |msg: String| format!("mailbox {}: {msg}", crate::text::quoted(&m.name));
            let before = problems.len();
            if mailboxes.iter().any(|b: &MailboxConfig| b.name == m.name) {
                problems.push(ctx("a mailbox with this name is already configured".into()));
            }
            let tls = m.tls.unwrap_or(TlsMode::Implicit);
            if tls == TlsMode::None && !is_loopback_host(&m.host) {
                problems.push(ctx(format!(
                    "tls = \"none\" is only allowed for loopback hosts, not {}",
                    crate::text::quoted(&m.host)
                )));
            }
            let at = format!("mailbox {}", crate::text::quoted(&m.name));
            let has_password = m.password_file.is_some() || m.password_env.is_some();
            let oauth2 = oauth2::resolve(
                &at,
                "[mailbox.oauth2]",
                m.auth,
                m.oauth2,
                has_password,
                &base,
                &mut problems,
            );
            let password = noted(
                &mut problems,
                &at,
                password_source(m.password_file, m.password_env, &base),
            );
            let on_success = noted(&mut problems, &at, Disposition::parse(&m.on_success));
            let on_failure = noted(&mut problems, &at, Disposition::parse(&m.on_failure));
            let poll_interval = noted(&mut problems, &at, parse_duration(&m.poll_interval));
            let (Some(password), Some(on_success), Some(on_failure), Some(poll_interval)) =
                (password, on_success, on_failure, poll_interval)
            else {
                continue;
            };
            if problems.len() > before {
                continue;
            }
            mailboxes.push(MailboxConfig {
                port: m
                    .port
                    .unwrap_or(if tls == TlsMode::Implicit { 993 } else { 143 }),
                tls,
                ca_file: m.ca_file.map(|f| base.join(f)),
                password,
                oauth2,
                on_success,
                on_failure,
                poll_interval,
                batch_size: m.batch_size.max(1),
                idle: m.idle,
                folder: m.folder,
                user: m.user,
                host: m.host,
                name: m.name,
            });
        }

        let smtp = match raw.smtp {
            None => None,
            Some(s) => {
                let ctx = |msg: String| format!("[smtp]: {msg}");
                let tls = s.tls.unwrap_or(TlsMode::Starttls);
                if tls == TlsMode::None && !is_loopback_host(&s.host) {
                    problems.push(ctx(format!(
                        "tls = \"none\" is only allowed for loopback hosts, not {}",
                        crate::text::quoted(&s.host)
                    )));
                }
                let has_password = s.password_file.is_some() || s.password_env.is_some();
                let oauth2 = oauth2::resolve(
                    "[smtp]",
                    "[smtp.oauth2]",
                    s.auth,
                    s.oauth2,
                    has_password,
                    &base,
                    &mut problems,
                );
                if oauth2.is_some() && s.user.is_none() {
                    problems.push(
                        "[smtp]: auth = \"oauth2\" needs user (the account the token is for)"
                            .into(),
                    );
                }
                let password = noted(
                    &mut problems,
                    "[smtp]",
                    password_source(s.password_file, s.password_env, &base),
                );
                let timeout = noted(&mut problems, "[smtp]", parse_duration(&s.timeout));
                match (password, timeout) {
                    (Some(password), Some(timeout)) => Some(SmtpConfig {
                        port: s.port.unwrap_or(match tls {
                            TlsMode::Implicit => 465,
                            TlsMode::Starttls => 587,
                            TlsMode::None => 25,
                        }),
                        tls,
                        ca_file: s.ca_file.map(|f| base.join(f)),
                        password,
                        oauth2,
                        timeout,
                        max_attempts: s.max_attempts.max(1),
                        user: s.user,
                        from: s.from,
                        host: s.host,
                    }),
                    _ => None,
                }
            }
        };

        let defaults = Limits::default();
        let limits = Limits {
            reply_per_task_period: match raw.limits.reply_per_task_period {
                Some(t) => parse_duration(&t)
                    .map_err(|m| problems.push(format!("[limits]: {m}")))
                    .unwrap_or(defaults.reply_per_task_period),
                None => defaults.reply_per_task_period,
            },
            replies_per_recipient_per_day: raw
                .limits
                .replies_per_recipient_per_day
                .unwrap_or(defaults.replies_per_recipient_per_day),
            max_message_size: match raw.limits.max_message_size {
                Some(t) => parse_size(&t)
                    .map_err(|m| problems.push(format!("[limits]: {m}")))
                    .unwrap_or(defaults.max_message_size),
                None => defaults.max_message_size,
            },
        };

        let keep_mail = match raw.keep_mail.as_deref().map(str::trim) {
            None | Some("forever") => KeepMail::Forever,
            Some("failed") => KeepMail::FailedOnly,
            Some(text) => match parse_duration(text) {
                Ok(d) if d.is_zero() => {
                    problems.push(
                        "keep_mail must be longer than 0 (e.g. \"365d\"); leave it out to \
                         keep mail forever, or say \"failed\" to keep only failed messages"
                            .into(),
                    );
                    KeepMail::Forever
                }
                Ok(d) => KeepMail::For(d),
                Err(m) => {
                    problems.push(format!(
                        "keep_mail: {m}; or \"forever\", or \"failed\" (only failed messages)"
                    ));
                    KeepMail::Forever
                }
            },
        };

        let webhooks = webhook::parse(raw.webhook, &mut problems);

        let web = raw.web.and_then(|w| web::parse(w, &mut problems));
        if let Err(e) = regex::Regex::new(&raw.threading.subject_tag) {
            problems.push(format!("[threading] subject_tag is not a valid regex: {e}"));
        }
        match problems.len() {
            0 => {}
            1 => {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    message: problems.remove(0),
                })
            }
            _ => {
                return Err(ConfigError::Problems {
                    path: path.to_path_buf(),
                    problems,
                })
            }
        }

        Ok(Config {
            path: path.to_path_buf(),
            store: base.join(raw.store),
            rules: base.join(raw.rules),
            unmatched: raw.unmatched,
            staff: raw.staff,
            threading: raw.threading,
            mailboxes,
            smtp,
            limits,
            keep_mail,
            webhooks,
            web,
        })
    }
}

#[cfg(test)]
mod tests;
