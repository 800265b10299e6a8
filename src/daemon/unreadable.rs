//! Messages the server cannot deliver: a fetch that fails or kills the connection again and
//! again must not block the mailbox. After a failed batch the same UIDs are fetched one at a
//! time; a single message that fails [`GIVE_UP_AFTER`] times is skipped.

use std::collections::HashMap;

/// Failed single-message fetches before a message is skipped.
pub(crate) const GIVE_UP_AFTER: u32 = 3;

#[derive(Debug, Default)]
pub(crate) struct Unreadable {
    /// UIDVALIDITY and the highest UID of the last batch whose fetch failed.
    suspect_through: Option<(u32, u32)>,
    /// Failed single-message fetches per (UIDVALIDITY, UID).
    failures: HashMap<(u32, u32), u32>,
    /// What the last failed fetch ended with, for the record of a message given up.
    last_error: String,
}

impl Unreadable {
    /// How many messages starting at `uid` to fetch at once.
    pub(crate) fn batch_size(&self, uid_validity: u32, uid: u32, normal: usize) -> usize {
        match self.suspect_through {
            Some((validity, last)) if validity == uid_validity && uid <= last => 1,
            _ => normal.max(1),
        }
    }

    /// Notes that fetching `uids` failed with `error`.
    pub(crate) fn fetch_failed(&mut self, uid_validity: u32, uids: &[u32], error: &str) {
        self.last_error = error.to_string();
        if let Some(&last) = uids.last() {
            let through = match self.suspect_through {
                Some((v, old)) if v == uid_validity => old.max(last),
                _ => last,
            };
            self.suspect_through = Some((uid_validity, through));
        }
        if let [uid] = uids {
            *self.failures.entry((uid_validity, *uid)).or_default() += 1;
        }
    }

    /// What the last failed fetch ended with.
    pub(crate) fn last_error(&self) -> &str {
        &self.last_error
    }

    /// Whether `uid` has failed often enough to be skipped.
    pub(crate) fn given_up(&self, uid_validity: u32, uid: u32) -> bool {
        self.failures
            .get(&(uid_validity, uid))
            .is_some_and(|&n| n >= GIVE_UP_AFTER)
    }

    /// `uid` was fetched (or skipped): forget its failures.
    pub(crate) fn done(&mut self, uid_validity: u32, uid: u32) {
        self.failures.remove(&(uid_validity, uid));
        if self.suspect_through == Some((uid_validity, uid)) {
            self.suspect_through = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_batch_is_retried_one_by_one_and_a_poison_message_given_up() {
        let mut u = Unreadable::default();
        assert_eq!(u.batch_size(7, 1, 50), 50);
        u.fetch_failed(7, &[1, 2, 3], "connection lost");
        assert_eq!(u.batch_size(7, 1, 50), 1);
        assert_eq!(u.batch_size(7, 4, 50), 50);
        assert_eq!(
            u.batch_size(8, 1, 50),
            50,
            "another UIDVALIDITY is another folder"
        );
        u.done(7, 1);
        for _ in 0..GIVE_UP_AFTER {
            assert!(!u.given_up(7, 2));
            u.fetch_failed(7, &[2], "timeout");
        }
        assert!(u.given_up(7, 2));
        assert_eq!(u.last_error(), "timeout");
        u.done(7, 2);
        assert!(!u.given_up(7, 2));
        u.done(7, 3);
        assert_eq!(u.batch_size(7, 3, 50), 50);
    }
}
