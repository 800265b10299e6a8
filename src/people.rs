//! Staff accounts, the pure part: roles, email addresses as accounts are keyed, and secrets
//! (passwords and API tokens) with their argon2id hashes. No I/O; the store keeps the hashes.
//!
//! A secret never reaches a log, an error or `Debug` output: [`Password`] and [`ApiToken`]
//! print as `[secret]`, and hashing or verification errors never carry the secret or the hash.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// What a person may do (team.md, "People"); each role can do everything the one before can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Also works tasks: statuses, fields, assignees, comments, replies.
    Agent,
    /// Also manages users, retries failed mail and sees the rules.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Agent, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = PeopleError;

    fn from_str(s: &str) -> Result<Role, PeopleError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| PeopleError::UnknownRole(s.to_string()))
    }
}

/// Bad input about people, worded so the user knows what to type instead.
#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("\"{0}\" is not an email address (expected something like anna@acme.example)")]
    BadEmail(String),
    #[error("the name must not be empty or hold control characters")]
    BadName,
    #[error("unknown role \"{0}\": the roles are viewer, agent and admin")]
    UnknownRole(String),
    #[error("the password is empty: type one, or give it as one line on standard input")]
    EmptyPassword,
    #[error("the password is not valid UTF-8 text")]
    PasswordNotUtf8,
    #[error("the two passwords differ; nothing was changed")]
    PasswordsDiffer,
    /// Hashing failed (the argon2 parameters are fixed, so this means a broken build or no
    /// randomness from the OS); the secret is not in the message.
    #[error("cannot hash the secret: {0}")]
    Hash(String),
}

/// An email address as accounts are keyed: trimmed and lower-case, so `Anna@Acme.example` and
/// `anna@acme.example` are one account (as contacts' addresses are matched).
pub fn normalize_email(email: &str) -> Result<String, PeopleError> {
    let email = email.trim().to_lowercase();
    let bad = || PeopleError::BadEmail(email.clone());
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let plain = |part: &str| {
        !part.is_empty()
            && !part
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>@,;\"()[]\\".contains(c))
    };
    if !plain(local) || !plain(domain) || domain.starts_with('.') || domain.ends_with('.') {
        return Err(bad());
    }
    Ok(email)
}

/// A display name: trimmed, not empty, one line.
pub fn clean_name(name: &str) -> Result<String, PeopleError> {
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(PeopleError::BadName);
    }
    Ok(name.to_string())
}

/// A password typed by a person; never empty. `Debug` does not show it.
pub struct Password(String);

impl Password {
    pub fn new(text: String) -> Result<Password, PeopleError> {
        if text.is_empty() {
            return Err(PeopleError::EmptyPassword);
        }
        Ok(Password(text))
    }

    /// A password from one line of input: the line ending (`\n` or `\r\n`) is not part of it,
    /// every other character is (spaces too: they may be meant).
    pub fn from_line(line: Vec<u8>) -> Result<Password, PeopleError> {
        let mut text = String::from_utf8(line).map_err(|_| PeopleError::PasswordNotUtf8)?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Password::new(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([secret])")
    }
}

/// A new API token: `mrt_ID_SECRET`. The user's id lets the store find the one hash to check
/// (an argon2 hash is salted, so it cannot be looked up by value); the secret is 32 random
/// bytes. Shown once, then only its hash exists.
pub struct ApiToken(String);

/// What every token starts with: recognisable in a leaked file or a secret scanner's rules.
const TOKEN_PREFIX: &str = "mrt_";

impl ApiToken {
    pub fn generate(user_id: i64) -> ApiToken {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        ApiToken(format!("{TOKEN_PREFIX}{user_id}_{secret}"))
    }

    /// The user id a presented token claims, or None when it is not shaped like our tokens.
    pub fn claimed_user(token: &str) -> Option<i64> {
        let rest = token.strip_prefix(TOKEN_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        id.parse().ok()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken([secret])")
    }
}

/// The argon2id hash of a secret as a PHC string (`$argon2id$v=19$m=…$SALT$HASH`), with a
/// fresh random salt and the crate's default cost (19 MiB, 2 passes: OWASP's recommendation).
pub fn hash_secret(secret: &str) -> Result<String, PeopleError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PeopleError::Hash(e.to_string()))
}

/// Whether `secret` matches a stored PHC hash. The comparison is argon2's own (constant
/// time); a stored hash that cannot be read matches nothing.
pub fn verify_secret(secret: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification without a stored hash: a login for an unknown account
/// takes as long as one with a wrong password, so timing does not tell which accounts exist.
pub fn verify_nothing(secret: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    if let Some(hash) = DUMMY.get_or_init(|| hash_secret("no such account").ok()) {
        verify_secret(secret, hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_keyed_lower_case_and_must_look_like_addresses() {
        assert_eq!(
            normalize_email(" Anna@Acme.Example ").unwrap(),
            "anna@acme.example"
        );
        for bad in [
            "",
            "anna",
            "@acme.example",
            "anna@",
            "a b@acme.example",
            "<a@b>",
            "a@b@c",
        ] {
            let err = normalize_email(bad).unwrap_err();
            assert!(
                err.to_string().contains("not an email address"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn roles_parse_in_any_case_and_name_the_choices_otherwise() {
        assert_eq!("Agent".parse::<Role>().unwrap(), Role::Agent);
        let err = "boss".parse::<Role>().unwrap_err().to_string();
        assert!(err.contains("viewer, agent and admin"), "{err}");
        assert!(Role::Viewer < Role::Agent && Role::Agent < Role::Admin);
    }

    #[test]
    fn a_password_line_loses_only_its_line_ending() {
        let p = Password::from_line(b" s3cret \r\n".to_vec()).unwrap();
        assert_eq!(p.expose(), " s3cret ");
        assert!(matches!(
            Password::from_line(b"\n".to_vec()),
            Err(PeopleError::EmptyPassword)
        ));
        assert!(matches!(
            Password::from_line(vec![0xff, b'\n']),
            Err(PeopleError::PasswordNotUtf8)
        ));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let p = Password::new("hunter2".into()).unwrap();
        let t = ApiToken::generate(7);
        assert!(!format!("{p:?}").contains("hunter2"));
        assert!(!format!("{t:?}").contains(t.expose()));
    }

    #[test]
    fn a_hash_is_salted_argon2id_and_verifies_only_its_secret() {
        let a = hash_secret("correct horse").unwrap();
        let b = hash_secret("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(!a.contains("correct horse"));
        assert!(verify_secret("correct horse", &a));
        assert!(!verify_secret("correct horsE", &a));
        assert!(!verify_secret("correct horse", "not a hash"));
    }

    #[test]
    fn a_token_names_its_user_and_nothing_else_passes_for_one() {
        let t = ApiToken::generate(42);
        assert!(t.expose().starts_with("mrt_42_"));
        assert_eq!(ApiToken::claimed_user(t.expose()), Some(42));
        assert_ne!(t.expose(), ApiToken::generate(42).expose());
        for bad in ["", "mrt_42", "mrt_x_00", "Bearer mrt_42_00", "mrt_42_zz"] {
            assert_eq!(ApiToken::claimed_user(bad), None, "{bad}");
        }
    }
}
