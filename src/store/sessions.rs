//! The web's logins: sessions (found by the hash of their id, with an expiry and the CSRF
//! token of their forms) and the count of failed logins per account that slows guessing.
//! The session id itself never reaches the store: the web hashes it first.

use rusqlite::{params, OptionalExtension};

use super::users::{user_from, USER_COLUMNS};
use super::{Store, StoreError, User};

/// How long (seconds) a count of failed logins is kept after the last failure.
const FAILURES_KEPT: i64 = 24 * 3600;

/// A live session: whose it is and the token its forms must carry.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub user: User,
    pub csrf: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Failed logins of one account since its last successful one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    pub count: u32,
    /// Unix seconds of the last failure.
    pub last_at: i64,
}

impl Store {
    /// Records a new session of `user_id`, valid until `expires_at` (Unix seconds); sessions
    /// that expired before `now` go at the same time.
    pub fn session_create(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM web_sessions WHERE expires_at <= ?1", [now])
            .map_err(|e| self.located(e.into()))?;
        self.conn
            .execute(
                "INSERT INTO web_sessions (id_hash, user_id, csrf, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id_hash, user_id, csrf, now, expires_at],
            )
            .map_err(|e| self.located(e.into()))?;
        Ok(())
    }

    /// The session with this id hash, unless it expired by `now` (or its account is gone).
    pub fn session(&self, id_hash: &str, now: i64) -> Result<Option<WebSession>, StoreError> {
        let session: Option<(i64, String, i64)> = self
            .conn
            .prepare_cached(
                "SELECT user_id, csrf, expires_at FROM web_sessions \
                 WHERE id_hash = ?1 AND expires_at > ?2",
            )?
            .query_row(params![id_hash, now], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((user_id, csrf, expires_at)) = session else {
            return Ok(None);
        };
        let user = self
            .conn
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
            .query_row([user_id], user_from)
            .optional()?;
        let found = user.map(|user| WebSession {
            user,
            csrf,
            expires_at,
        });
        Ok(found)
    }

    /// Ends a session (logout).
    pub fn session_delete(&self, id_hash: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM web_sessions WHERE id_hash = ?1", [id_hash])
            .map_err(|e| self.located(e.into()))?;
        Ok(())
    }

    /// The failed logins of the account `email` (lower-case) since its last good one.
    pub fn login_failures(&self, email: &str) -> Result<Option<LoginFailures>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT failures, last_failure_at FROM web_login_failures WHERE email = ?1",
            )?
            .query_row([email], |r| {
                Ok(LoginFailures {
                    count: r.get(0)?,
                    last_at: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// Counts one more failed login of `email` at `now`. Counts untouched for a day go at the
    /// same time: guesses at made-up accounts do not pile up.
    pub fn login_failed(&self, email: &str, now: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM web_login_failures WHERE last_failure_at < ?1",
                [now - FAILURES_KEPT],
            )
            .map_err(|e| self.located(e.into()))?;
        self.conn
            .execute(
                "INSERT INTO web_login_failures (email, failures, last_failure_at) \
                 VALUES (?1, 1, ?2) ON CONFLICT(email) DO UPDATE SET \
                 failures = failures + 1, last_failure_at = excluded.last_failure_at",
                params![email, now],
            )
            .map_err(|e| self.located(e.into()))?;
        Ok(())
    }

    /// A good login: the account's failures are forgotten.
    pub fn login_succeeded(&self, email: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM web_login_failures WHERE email = ?1", [email])
            .map_err(|e| self.located(e.into()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::{Password, Role};

    fn store_with_anna() -> (Store, i64) {
        let store = Store::open_in_memory().unwrap();
        let password = Password::new("correct horse".into()).unwrap();
        store
            .user_add("anna@acme.example", None, Role::Agent, &password)
            .unwrap();
        let id = store.user("anna@acme.example").unwrap().unwrap().id;
        (store, id)
    }

    #[test]
    fn a_session_lives_until_it_expires() {
        let (store, anna) = store_with_anna();
        store.session_create("h1", anna, "tok", 100, 200).unwrap();
        let s = store.session("h1", 150).unwrap().unwrap();
        assert_eq!(s.user.email, "anna@acme.example");
        assert_eq!(s.csrf, "tok");
        assert!(store.session("h1", 200).unwrap().is_none());
        assert!(store.session("other", 150).unwrap().is_none());
        store.session_delete("h1").unwrap();
        assert!(store.session("h1", 150).unwrap().is_none());
    }

    #[test]
    fn a_removed_account_has_no_session() {
        let (store, anna) = store_with_anna();
        store.session_create("h1", anna, "tok", 100, 200).unwrap();
        store.user_remove("anna@acme.example").unwrap();
        assert!(store.session("h1", 150).unwrap().is_none());
    }

    #[test]
    fn failures_count_up_and_clear() {
        let (store, _) = store_with_anna();
        assert!(store.login_failures("x@y.example").unwrap().is_none());
        store.login_failed("x@y.example", 10).unwrap();
        store.login_failed("x@y.example", 12).unwrap();
        let f = store.login_failures("x@y.example").unwrap().unwrap();
        assert_eq!((f.count, f.last_at), (2, 12));
        store.login_succeeded("x@y.example").unwrap();
        assert!(store.login_failures("x@y.example").unwrap().is_none());
        // A day later another account's failure clears the stale count.
        store.login_failed("old@y.example", 10).unwrap();
        store
            .login_failed("new@y.example", 10 + FAILURES_KEPT + 1)
            .unwrap();
        assert!(store.login_failures("old@y.example").unwrap().is_none());
    }
}
