//! What the rules see of one message: the parsed message plus what was resolved about it
//! before any rule ran (sender, thread, the thread's task status, the mailbox).

use crate::message::{Address, Message};

/// Whether the sender is one of us (config `[staff]`) or a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderKind {
    Staff,
    Contact,
}

/// How the message was tied to an existing task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThreadVia {
    /// In-Reply-To / References named a Message-ID stored on the task.
    References,
    /// The subject carried the task tag, e.g. `[#42]`.
    Subject,
}

/// The outcome of thread resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ThreadMatch {
    pub task: Option<i64>,
    pub via: Option<ThreadVia>,
}

/// One message as the rules see it.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub message: &'a Message,
    /// The configured mailbox it came from (`"cli"` for `ingest`, unless told otherwise).
    pub mailbox: &'a str,
    /// The sender after forward resolution: the original author when staff forwarded it.
    pub sender: Address,
    pub sender_kind: SenderKind,
    /// The staff member who forwarded the message, when the sender was taken from a forward.
    pub forwarded_by: Option<Address>,
    pub thread: ThreadMatch,
    /// Status of the task the message resolved to, if it resolved to one.
    pub task_status: Option<String>,
}
