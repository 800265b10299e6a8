//! Messages whose effects are committed but whose acknowledgement the server refused (the
//! target folder cannot be created, a flag cannot be set): kept here and tried again with
//! backoff, while later mail goes on being processed.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// Where a committed message goes on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Applied or a duplicate: `on_success`.
    Processed,
    /// Recorded as failed: `on_failure`.
    Failed,
}

#[derive(Debug)]
pub(crate) struct Unacknowledged {
    uid_validity: u32,
    waiting: BTreeMap<u32, Fate>,
    retry_at: Option<Instant>,
    first_wait: Duration,
    max_wait: Duration,
    wait: Duration,
}

impl Unacknowledged {
    pub(crate) fn new(first_wait: Duration, max_wait: Duration) -> Unacknowledged {
        Unacknowledged {
            uid_validity: 0,
            waiting: BTreeMap::new(),
            retry_at: None,
            first_wait,
            max_wait,
            wait: first_wait,
        }
    }

    /// Forgets everything if the folder's UIDs now mean other messages.
    pub(crate) fn set_uid_validity(&mut self, uid_validity: u32) {
        if self.uid_validity != uid_validity {
            self.uid_validity = uid_validity;
            self.waiting.clear();
            self.retry_at = None;
            self.wait = self.first_wait;
        }
    }

    /// The server refused to acknowledge `uids`; the next try waits longer than the last.
    pub(crate) fn refused(&mut self, uids: &[u32], fate: Fate, now: Instant) {
        for &uid in uids {
            self.waiting.insert(uid, fate);
        }
        self.retry_at = Some(now + self.wait);
        self.wait = (self.wait * 2).min(self.max_wait);
    }

    /// `uids` are acknowledged now.
    pub(crate) fn acknowledged(&mut self, uids: &[u32]) {
        for uid in uids {
            self.waiting.remove(uid);
        }
        if self.waiting.is_empty() {
            self.retry_at = None;
            self.wait = self.first_wait;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// When the next try is due, if anything waits.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at.filter(|_| !self.waiting.is_empty())
    }

    /// The messages to try again now, by fate, if a try is due.
    pub(crate) fn due(&self, now: Instant) -> Option<(Vec<u32>, Vec<u32>)> {
        if self.retry_at()? > now {
            return None;
        }
        let pick = |fate: Fate| {
            self.waiting
                .iter()
                .filter(|(_, f)| **f == fate)
                .map(|(uid, _)| *uid)
                .collect::<Vec<u32>>()
        };
        Some((pick(Fate::Processed), pick(Fate::Failed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_messages_wait_longer_each_time_and_leave_when_acknowledged() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        let mut waiting = Unacknowledged::new(second, 4 * second);
        waiting.set_uid_validity(7);
        assert_eq!(waiting.due(start), None);
        waiting.refused(&[3, 4], Fate::Processed, start);
        waiting.refused(&[5], Fate::Failed, start);
        assert_eq!(waiting.len(), 3);
        assert_eq!(waiting.due(start), None, "not before the wait");
        let later = start + 2 * second;
        assert_eq!(waiting.due(later), Some((vec![3, 4], vec![5])));
        waiting.refused(&[3, 4], Fate::Processed, later);
        waiting.refused(&[5], Fate::Failed, later);
        assert_eq!(waiting.retry_at(), Some(later + 4 * second), "capped");
        waiting.acknowledged(&[3, 4, 5]);
        assert_eq!(waiting.len(), 0);
        assert_eq!(waiting.retry_at(), None);
        waiting.refused(&[9], Fate::Processed, later);
        assert_eq!(waiting.retry_at(), Some(later + second), "starts over");
        waiting.set_uid_validity(8);
        assert_eq!(waiting.len(), 0, "other UIDs, other messages");
    }
}
