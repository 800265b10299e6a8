//! Who makes a manual change (team.md, "Who did it"): `--as EMAIL`, else `$MAILRULES_USER`;
//! once the store has users, it must name one of them. The commands that change tasks call
//! [`resolve`] before they change anything.

use crate::people::{self, Role};
use crate::store::{Store, StoreError};

/// The variable naming the person at the terminal when `--as` is not given.
pub const USER_VAR: &str = "MAILRULES_USER";

/// The person a change is recorded under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Lower-case, as accounts are keyed and as history records it.
    pub email: String,
    /// The account's role; `None` while the store has no users (anyone may then act).
    pub role: Option<Role>,
}

impl Author {
    /// Refuses an author whose role is below `needed` (a viewer changing a task). With no
    /// users in the store there are no roles and everything is allowed.
    pub fn require(&self, needed: Role) -> Result<(), AuthorError> {
        match self.role {
            Some(role) if role < needed => Err(AuthorError::RoleTooLow {
                email: self.email.clone(),
                role,
                needed,
            }),
            _ => Ok(()),
        }
    }
}

/// Why no author could be settled; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    #[error("who is making this change? Give --as EMAIL or set {USER_VAR}=EMAIL: every change to a task is recorded with its author")]
    Missing,
    #[error("{USER_VAR} is not valid UTF-8 text; set it to an email address or pass --as EMAIL")]
    EnvNotUnicode,
    #[error("{origin} \"{given}\" is not an email address: the author of a change is a person's address")]
    NotAnAddress { origin: &'static str, given: String },
    #[error(
        "{email} ({origin}) is not a mailrules user; `mailrules user list` shows the users \
         and `mailrules user add {email}` adds one"
    )]
    UnknownUser { email: String, origin: &'static str },
    #[error(
        "{email} is a {role}; this change needs the {needed} role (remove the user and add \
         them again with `mailrules user add {email} --role {needed}`)"
    )]
    RoleTooLow {
        email: String,
        role: Role,
        needed: Role,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The author of a manual change: `flag` (`--as`), else `$MAILRULES_USER` (an empty value
/// counts as unset). When the store has users, the email must be one of theirs; with none,
/// any well-formed email is accepted.
pub fn resolve(store: &Store, flag: Option<&str>) -> Result<Author, AuthorError> {
    let env = match std::env::var(USER_VAR) {
        Ok(value) => Some(value),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) if flag.is_none() => {
            return Err(AuthorError::EnvNotUnicode)
        }
        Err(std::env::VarError::NotUnicode(_)) => None,
    };
    resolve_from(store, flag, env.as_deref())
}

/// [`resolve`] with the environment's value passed in (tests do not change the process's
/// environment: other tests run on other threads).
fn resolve_from(
    store: &Store,
    flag: Option<&str>,
    env: Option<&str>,
) -> Result<Author, AuthorError> {
    let (given, origin) = match (flag, env.filter(|v| !v.trim().is_empty())) {
        (Some(flag), _) => (flag, "--as"),
        (None, Some(env)) => (env, USER_VAR),
        (None, None) => return Err(AuthorError::Missing),
    };
    let email = people::normalize_email(given).map_err(|_| AuthorError::NotAnAddress {
        origin,
        given: given.to_string(),
    })?;
    if !store.users_exist()? {
        return Ok(Author { email, role: None });
    }
    match store.user(&email)? {
        Some(user) => Ok(Author {
            email: user.email,
            role: Some(user.role),
        }),
        None => Err(AuthorError::UnknownUser { email, origin }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::Password;

    fn store_with(users: &[(&str, Role)]) -> Store {
        let store = Store::open_in_memory().unwrap();
        for (email, role) in users {
            let password = Password::new("x".into()).unwrap();
            store.user_add(email, None, *role, &password).unwrap();
        }
        store
    }

    #[test]
    fn the_flag_wins_over_the_environment() {
        let store = store_with(&[]);
        let author = resolve_from(&store, Some("Anna@Acme.example"), Some("bob@acme.example"));
        assert_eq!(author.unwrap().email, "anna@acme.example");
        let author = resolve_from(&store, None, Some("bob@acme.example")).unwrap();
        assert_eq!(
            author,
            Author {
                email: "bob@acme.example".into(),
                role: None
            }
        );
    }

    #[test]
    fn neither_flag_nor_environment_says_how_to_name_one() {
        let store = store_with(&[]);
        for env in [None, Some(""), Some("  ")] {
            let err = resolve_from(&store, None, env).unwrap_err().to_string();
            assert!(
                err.contains("--as EMAIL") && err.contains("MAILRULES_USER"),
                "{err}"
            );
        }
    }

    #[test]
    fn without_users_any_email_is_accepted_but_not_a_non_address() {
        let store = store_with(&[]);
        assert!(resolve_from(&store, Some("whoever@example.org"), None).is_ok());
        let err = resolve_from(&store, None, Some("anna"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("MAILRULES_USER") && err.contains("not an email address"),
            "{err}"
        );
    }

    #[test]
    fn with_users_the_author_must_be_one_of_them() {
        let store = store_with(&[("anna@acme.example", Role::Agent)]);
        let author = resolve_from(&store, Some("ANNA@acme.example"), None).unwrap();
        assert_eq!(author.role, Some(Role::Agent));
        let err = resolve_from(&store, Some("bob@acme.example"), None).unwrap_err();
        assert!(matches!(err, AuthorError::UnknownUser { .. }));
        let text = err.to_string();
        assert!(
            text.contains("bob@acme.example") && text.contains("mailrules user list"),
            "{text}"
        );
        let err = resolve_from(&store, None, Some("bob@acme.example")).unwrap_err();
        assert!(err.to_string().contains("(MAILRULES_USER)"), "{err}");
    }

    #[test]
    fn a_viewer_is_refused_a_change_that_needs_an_agent() {
        let store = store_with(&[
            ("vera@acme.example", Role::Viewer),
            ("anna@acme.example", Role::Admin),
        ]);
        let vera = resolve_from(&store, Some("vera@acme.example"), None).unwrap();
        let err = vera.require(Role::Agent).unwrap_err().to_string();
        assert!(err.contains("viewer") && err.contains("agent"), "{err}");
        let anna = resolve_from(&store, Some("anna@acme.example"), None).unwrap();
        assert!(anna.require(Role::Agent).is_ok());
        let nobody_counts = Author {
            email: "x@y.example".into(),
            role: None,
        };
        assert!(nobody_counts.require(Role::Admin).is_ok());
    }
}
