//! Outgoing mail: composing well-formed messages and handing them to the configured SMTP
//! server, with every failure sorted into "try again later" or "this will never work".

mod compose;
mod oauth2;
mod transport;

pub use compose::{compose, parse_from, MailKind, OutgoingMail};
pub use oauth2::xoauth2_credentials;
pub use transport::Mailer;

/// Why a mail was not sent. Never contains the SMTP password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// The `[smtp]` settings cannot work (unreadable `ca_file`, missing password, bad `from`):
    /// nothing can be sent until the configuration is fixed.
    #[error("{0}")]
    Config(String),
    /// This one mail can never be sent as it is (its recipient is not an address).
    #[error("cannot send this mail: {0}")]
    Unsendable(String),
    /// The server answered with an error: `answer` is its reply, code first.
    #[error("{answer}")]
    Rejected { code: u16, answer: String },
    /// No answer: connection refused, time-out, TLS failure (an untrusted certificate, a
    /// server without STARTTLS), or the connection broke.
    #[error("cannot reach {server}: {message}")]
    Unreachable { server: String, message: String },
    /// Connected, but the dialogue broke down before any answer about the mail: login
    /// impossible or refused, an answer that is not SMTP.
    #[error("SMTP with {server} failed: {message}")]
    Session { server: String, message: String },
}

impl SmtpError {
    /// Whether trying again cannot help: a 5xx answer or an unusable recipient. Everything
    /// else (4xx, connection problems, time-outs) may pass. Configuration errors are neither:
    /// they stop sending altogether.
    pub fn is_permanent(&self) -> bool {
        match self {
            SmtpError::Unsendable(_) => true,
            SmtpError::Rejected { code, .. } => *code >= 500,
            SmtpError::Config(_) | SmtpError::Unreachable { .. } | SmtpError::Session { .. } => {
                false
            }
        }
    }

    /// Whether the failure has nothing to do with the mail itself, so that every other mail
    /// would fail the same way right now.
    pub fn affects_every_mail(&self) -> bool {
        matches!(
            self,
            SmtpError::Config(_) | SmtpError::Unreachable { .. } | SmtpError::Session { .. }
        )
    }

    /// Whether the failure is worth another attempt later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SmtpError::Unreachable { .. } | SmtpError::Session { .. }
        ) || matches!(self, SmtpError::Rejected { code, .. } if *code < 500)
    }
}
