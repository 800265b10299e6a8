//! The pages, one module per part of the site: the queue, a task and its actions, analytics,
//! messages, and the operator's pages (outbox, mailboxes, rules, health).

pub mod admin;
pub mod analytics;
pub mod messages;
pub mod queue;
pub mod queue_rows;
pub mod task;
pub mod task_actions;

/// A form or query value, with an empty one taken as not given.
pub fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}
