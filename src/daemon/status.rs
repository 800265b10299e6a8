//! What each mailbox watcher is doing, for `STATUS=` lines, readiness and tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxState {
    /// Not connected yet since the daemon started.
    Starting,
    /// Logged in and watching; `idle` says whether with IDLE or by polling.
    Watching {
        idle: bool,
    },
    /// Connection trouble; reconnecting with backoff.
    Reconnecting {
        problem: String,
    },
    /// A problem only the operator can fix; retrying slowly.
    NeedsOperator {
        problem: String,
    },
    Stopped,
}

/// One mailbox's state and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxStatus {
    pub state: MailboxState,
    /// Messages committed as applied or duplicate since the start.
    pub processed: u64,
    /// Messages recorded as failed since the start.
    pub failed: u64,
    /// How many times the state changed into [`MailboxState::NeedsOperator`].
    pub operator_alerts: u64,
    /// Messages committed whose acknowledgement the server refused (retried with backoff).
    pub unacknowledged: usize,
    /// When mail from it last committed (RFC 3339), since the start: the web's "last mail".
    pub last_mail_at: Option<String>,
}

impl Default for MailboxStatus {
    fn default() -> Self {
        MailboxStatus {
            state: MailboxState::Starting,
            processed: 0,
            failed: 0,
            operator_alerts: 0,
            unacknowledged: 0,
            last_mail_at: None,
        }
    }
}

/// Shared, observable map from mailbox name to its status.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    board: Arc<watch::Sender<BTreeMap<String, MailboxStatus>>>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        StatusBoard::new()
    }
}

impl StatusBoard {
    pub fn new() -> StatusBoard {
        StatusBoard {
            board: Arc::new(watch::Sender::new(BTreeMap::new())),
        }
    }

    pub(crate) fn register(&self, mailbox: &str) {
        self.board.send_modify(|b| {
            b.entry(mailbox.to_string()).or_default();
        });
    }

    pub(crate) fn set_state(&self, mailbox: &str, state: MailboxState) {
        self.board.send_if_modified(|b| {
            let entry = b.entry(mailbox.to_string()).or_default();
            if entry.state == state {
                return false;
            }
            if matches!(state, MailboxState::NeedsOperator { .. }) {
                entry.operator_alerts += 1;
            }
            entry.state = state;
            true
        });
    }

    pub(crate) fn count(&self, mailbox: &str, processed: u64, failed: u64) {
        if processed == 0 && failed == 0 {
            return;
        }
        self.board.send_modify(|b| {
            let entry = b.entry(mailbox.to_string()).or_default();
            entry.processed += processed;
            entry.failed += failed;
            entry.last_mail_at = Some(crate::store::timestamp_now());
        });
    }

    pub(crate) fn set_unacknowledged(&self, mailbox: &str, count: usize) {
        self.board.send_if_modified(|b| {
            let entry = b.entry(mailbox.to_string()).or_default();
            let changed = entry.unacknowledged != count;
            entry.unacknowledged = count;
            changed
        });
    }

    pub fn snapshot(&self) -> BTreeMap<String, MailboxStatus> {
        self.board.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<BTreeMap<String, MailboxStatus>> {
        self.board.subscribe()
    }

    /// Every mailbox has connected or failed its first attempt.
    pub fn all_started(&self) -> bool {
        self.board
            .borrow()
            .values()
            .all(|s| s.state != MailboxState::Starting)
    }

    /// A one-line summary for systemd's STATUS=.
    pub fn summary(&self) -> String {
        summarize(&self.board.borrow())
    }
}

fn summarize(board: &BTreeMap<String, MailboxStatus>) -> String {
    if board.is_empty() {
        return "no mailboxes configured".into();
    }
    let mut parts = Vec::new();
    let (mut processed, mut failed) = (0, 0);
    for (name, status) in board {
        processed += status.processed;
        failed += status.failed;
        let state = match &status.state {
            MailboxState::Starting => "connecting".to_string(),
            MailboxState::Watching { idle: true } => "idle".to_string(),
            MailboxState::Watching { idle: false } => "polling".to_string(),
            MailboxState::Reconnecting { .. } => "reconnecting".to_string(),
            MailboxState::NeedsOperator { problem } => format!("needs attention: {problem}"),
            MailboxState::Stopped => "stopped".to_string(),
        };
        if status.unacknowledged > 0 {
            parts.push(format!(
                "{name} {state} ({} committed but not yet moved on the server)",
                status.unacknowledged
            ));
        } else {
            parts.push(format!("{name} {state}"));
        }
    }
    format!(
        "{}; {processed} processed, {failed} failed",
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_each_mailbox_and_totals() {
        let board = StatusBoard::new();
        board.register("sales");
        board.register("support");
        assert!(!board.all_started());
        board.set_state("support", MailboxState::Watching { idle: true });
        board.set_state(
            "sales",
            MailboxState::NeedsOperator {
                problem: "login rejected".into(),
            },
        );
        board.count("support", 3, 1);
        assert!(board.all_started());
        assert_eq!(
            board.summary(),
            "sales needs attention: login rejected, support idle; 3 processed, 1 failed"
        );
        assert_eq!(board.snapshot()["sales"].operator_alerts, 1);
        board.set_unacknowledged("support", 2);
        assert_eq!(
            board.summary(),
            "sales needs attention: login rejected, support idle (2 committed but not yet moved \
             on the server); 3 processed, 1 failed"
        );
    }
}
