//! Who makes a change by hand: `--as EMAIL`, else `$MAILRULES_USER`. The one place the author
//! of a person's change is decided, so that checking it names a known user is added here.

use crate::outgoing::bare_address;

/// The variable naming the person at the terminal when `--as` is not given.
pub const USER_VAR: &str = "MAILRULES_USER";

/// Why a change has no author it may be made under.
#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    #[error("who is making this change? Give --as EMAIL or set {USER_VAR}=EMAIL: every change to a task is recorded with its author")]
    Missing,
    #[error(
        "{origin} {given:?} is not an email address: the author of a change is a person's address"
    )]
    NotAnAddress { origin: &'static str, given: String },
}

/// The author of a person's change (a bare, lower-case address): `flag` (`--as`), else
/// `$MAILRULES_USER`; neither is refused.
pub fn resolve(flag: Option<&str>) -> Result<String, AuthorError> {
    let from_env = std::env::var_os(USER_VAR);
    let (origin, given) = match (flag, &from_env) {
        (Some(flag), _) => ("--as", flag.to_string()),
        (None, Some(value)) => (USER_VAR, value.to_string_lossy().into_owned()),
        (None, None) => return Err(AuthorError::Missing),
    };
    if given.trim().is_empty() {
        return Err(AuthorError::Missing);
    }
    // A display name around the address ("Анна <anna@…>") is not an author's name.
    match bare_address(&given) {
        Some(address) if address == given.trim().to_lowercase() => Ok(address),
        _ => Err(AuthorError::NotAnAddress { origin, given }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_names_the_author() {
        assert_eq!(
            resolve(Some("Anna@Acme.example")).unwrap(),
            "anna@acme.example"
        );
        let err = resolve(Some("anna")).unwrap_err();
        assert!(err.to_string().contains("--as \"anna\""), "{err}");
        let err = resolve(Some("Анна <anna@acme.example>")).unwrap_err();
        assert!(err.to_string().contains("not an email address"), "{err}");
    }
}
