//! Matching: every condition kind, order, priority, continue, mailboxes, and the traces.
