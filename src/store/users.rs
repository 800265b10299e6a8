//! Staff accounts: add, list, remove, new password, new API token, and the checks the web and
//! the command line's author check need (password, bearer token, lookup, whether any exist).
//!
//! Passwords and tokens reach this module as [`Password`] / [`ApiToken`] and leave it only as
//! argon2id hashes: no function here takes or stores a plain secret in any other form.

use chrono::Utc;
use rusqlite::{params, OptionalExtension};

use super::{timestamp, Store, StoreError};
use crate::people::{self, ApiToken, Password, Role};

/// A staff account as the commands show it (never its hashes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    #[serde(skip)]
    pub id: i64,
    /// Lower-case: the form accounts are keyed by.
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    /// Whether an API token was issued (`user token`).
    pub token: bool,
    pub created_at: String,
}

pub(super) const USER_COLUMNS: &str = "id, email, name, role, token_hash IS NOT NULL, created_at";

pub(super) fn user_from(row: &rusqlite::Row) -> rusqlite::Result<User> {
    let role: String = row.get(3)?;
    let role = role.parse::<Role>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(User {
        id: row.get(0)?,
        email: row.get(1)?,
        name: row.get(2)?,
        role,
        token: row.get(4)?,
        created_at: row.get(5)?,
    })
}

fn hashed(secret: &str) -> Result<String, StoreError> {
    Ok(people::hash_secret(secret)?)
}

impl Store {
    /// Adds an account. `email` must be normalized (`people::normalize_email`).
    pub fn user_add(
        &self,
        email: &str,
        name: Option<&str>,
        role: Role,
        password: &Password,
    ) -> Result<User, StoreError> {
        let hash = hashed(password.expose())?;
        let now = timestamp(Utc::now());
        let inserted = self.conn.execute(
            "INSERT INTO users (email, name, role, password_hash, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (email) DO NOTHING",
            params![email, name, role.as_str(), hash, now],
        );
        match inserted.map_err(|e| self.located(e.into()))? {
            0 => Err(StoreError::UserExists(email.to_string())),
            _ => self.user_required(email),
        }
    }

    /// Every account, by email.
    pub fn user_list(&self) -> Result<Vec<User>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY email"))?;
        let users = stmt
            .query_map([], user_from)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(users)
    }

    /// The account with this (normalized) email.
    pub fn user(&self, email: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE email = ?1"
            ))?
            .query_row([email], user_from)
            .optional()?)
    }

    fn user_required(&self, email: &str) -> Result<User, StoreError> {
        self.user(email)?
            .ok_or_else(|| StoreError::UnknownUser(email.to_string()))
    }

    /// Whether any account exists: with none, the command line accepts any author.
    pub fn users_exist(&self) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM users)")?
            .query_row([], |r| r.get(0))?)
    }

    /// Removes an account (its token stops working with it).
    pub fn user_remove(&self, email: &str) -> Result<(), StoreError> {
        let removed = self
            .conn
            .execute("DELETE FROM users WHERE email = ?1", [email])
            .map_err(|e| self.located(e.into()))?;
        match removed {
            0 => Err(StoreError::UnknownUser(email.to_string())),
            _ => Ok(()),
        }
    }

    /// Replaces an account's password.
    pub fn user_set_password(&self, email: &str, password: &Password) -> Result<(), StoreError> {
        let hash = hashed(password.expose())?;
        let now = timestamp(Utc::now());
        let changed = self
            .conn
            .execute(
                "UPDATE users SET password_hash = ?1, updated_at = ?2 WHERE email = ?3",
                params![hash, now, email],
            )
            .map_err(|e| self.located(e.into()))?;
        match changed {
            0 => Err(StoreError::UnknownUser(email.to_string())),
            _ => Ok(()),
        }
    }

    /// Issues a new API token for an account, replacing (and so revoking) its previous one.
    /// The token is returned once; only its hash is kept.
    pub fn user_new_token(&self, email: &str) -> Result<ApiToken, StoreError> {
        let user = self.user_required(email)?;
        let token = ApiToken::generate(user.id);
        let hash = hashed(token.expose())?;
        let now = timestamp(Utc::now());
        self.conn
            .execute(
                "UPDATE users SET token_hash = ?1, updated_at = ?2 WHERE id = ?3",
                params![hash, now, user.id],
            )
            .map_err(|e| self.located(e.into()))?;
        Ok(token)
    }

    /// The account whose email and password these are, or None. An unknown email costs as
    /// much time as a wrong password, so an answer's timing does not tell which accounts exist.
    pub fn verify_password(
        &self,
        email: &str,
        password: &Password,
    ) -> Result<Option<User>, StoreError> {
        let Ok(email) = people::normalize_email(email) else {
            people::verify_nothing(password.expose());
            return Ok(None);
        };
        let stored: Option<(i64, String)> = self
            .conn
            .prepare_cached("SELECT id, password_hash FROM users WHERE email = ?1")?
            .query_row([&email], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((_, hash)) = stored else {
            people::verify_nothing(password.expose());
            return Ok(None);
        };
        if !people::verify_secret(password.expose(), &hash) {
            return Ok(None);
        }
        self.user(&email)
    }

    /// The account a bearer token belongs to (its role says what it may do), or None.
    pub fn verify_token(&self, token: &str) -> Result<Option<User>, StoreError> {
        let Some(id) = ApiToken::claimed_user(token) else {
            return Ok(None);
        };
        let stored: Option<Option<String>> = self
            .conn
            .prepare_cached("SELECT token_hash FROM users WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let Some(Some(hash)) = stored else {
            people::verify_nothing(token);
            return Ok(None);
        };
        if !people::verify_secret(token, &hash) {
            return Ok(None);
        }
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
            .query_row([id], user_from)
            .optional()?)
    }
}
