//! Every timing of the daemon in one place: reconnect backoff, slow retries for problems an
//! operator must fix, IDLE refresh, rules polling and network timeouts.

use std::time::Duration;

use crate::imap::Timeouts;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// First wait after a lost connection; doubled on each further failure...
    pub backoff_initial: Duration,
    /// ...up to this.
    pub backoff_max: Duration,
    /// Wait between attempts while the problem needs an operator (wrong password, bad
    /// certificate, missing folder): slow, so a locked account does not get hammered.
    pub operator_retry: Duration,
    /// IDLE is ended and re-issued this often (RFC 2177 asks for less than 29 minutes).
    pub idle_refresh: Duration,
    /// How often the rules directory is checked for changed files.
    pub rules_poll: Duration,
    pub timeouts: Timeouts,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(120),
            operator_retry: Duration::from_secs(300),
            idle_refresh: Duration::from_secs(25 * 60),
            rules_poll: Duration::from_secs(2),
            timeouts: Timeouts::default(),
        }
    }
}

/// Capped exponential backoff.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(policy: &RetryPolicy) -> Backoff {
        Backoff {
            initial: policy.backoff_initial,
            max: policy.backoff_max,
            next: policy.backoff_initial,
        }
    }

    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next.min(self.max);
        self.next = (wait * 2).min(self.max);
        wait
    }

    /// After a success, the next failure starts over from the initial wait.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let policy = RetryPolicy {
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5),
            ..RetryPolicy::default()
        };
        let mut backoff = Backoff::new(&policy);
        let waits: Vec<u64> = (0..5).map(|_| backoff.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        backoff.reset();
        assert_eq!(backoff.next_wait().as_secs(), 1);
    }
}
