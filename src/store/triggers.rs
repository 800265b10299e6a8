//! The hook through which triggers (`[[trigger]]`) run inside the transaction of the change
//! that fired them: the store reports each change as a [`TaskEvent`], the rules answer with
//! the actions to run, and the store runs them in the same savepoint.

use serde::Serialize;

use super::tasks::TaskState;
use crate::plan::PlannedAction;

/// How deep triggers may fire triggers; deeper is taken for a loop and fails the message.
pub const MAX_TRIGGER_DEPTH: u32 = 8;

/// What changed (`on = "…"` of a trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Analytics,
    TaskCreated,
    CommentAdded,
    StatusChanged,
    FieldChanged,
}

impl EventKind {
    /// The name a trigger's `on` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Analytics => "analytics",
            EventKind::TaskCreated => "task_created",
            EventKind::CommentAdded => "comment_added",
            EventKind::StatusChanged => "status_changed",
            EventKind::FieldChanged => "field_changed",
        }
    }
}

/// One change to a task, as trigger conditions see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskEvent {
    pub kind: EventKind,
    /// The task that changed (`{task}` for the trigger's actions).
    pub task: i64,
    /// `analytics`: the table; `field_changed`: the field; otherwise `None`.
    pub name: Option<String>,
    /// `analytics`: the row's values, in order. Other events: the task's fields (after the
    /// change) and `"status"`.
    pub values: Vec<(String, String)>,
    /// `status_changed`: the status before; `field_changed`: the field's value before (empty
    /// when it had none). The value after is in `values` (absent when the field was cleared).
    pub old: Option<String>,
    /// The task after the change (for templates: `{title}`, `{assignee}`, its fields).
    pub state: TaskState,
    /// How many triggers deep this change happened (0: the message's own actions).
    pub depth: u32,
}

/// Decides which trigger actions a change causes. Implemented by the rules; the store calls
/// it for every change while applying and runs what it returns, `TaskRef::Current` meaning
/// the event's task (or a task the same trigger created before).
pub trait Triggers: std::fmt::Debug + Send + Sync {
    /// The actions of every trigger that fires on `event`, in order; `Err` fails the message
    /// with that text (name the trigger in it).
    fn actions_for(&self, event: &TaskEvent) -> Result<Vec<PlannedAction>, String>;

    /// Whether any trigger listens to `kind`: the store skips building events nobody wants.
    fn wants(&self, kind: EventKind) -> bool {
        let _ = kind;
        true
    }
}

/// The error when triggers keep firing each other: the chain of triggers, shortened to the
/// part that repeats when it repeats (`"ping" → "pong" → "ping"`).
pub(super) fn loop_error(trail: &[String], next: &str, kind: EventKind, task: i64) -> String {
    let mut chain: Vec<&str> = trail.iter().map(String::as_str).collect();
    chain.push(next);
    // The shortest period p with chain[i] == chain[i + p] over the whole chain.
    let period = (1..chain.len()).find(|&p| (0..chain.len() - p).all(|i| chain[i] == chain[i + p]));
    let start = period.map_or(0, |p| chain.len() - p - 1);
    let shown: Vec<String> = chain[start..]
        .iter()
        .map(|name| crate::text::quoted(name))
        .collect();
    let what = match period {
        Some(_) => "trigger loop",
        None => "triggers nested too deep",
    };
    format!(
        "{what}: {} fire each other more than {MAX_TRIGGER_DEPTH} levels deep ({} on task \
         #{task}); nothing of this message was applied",
        shown.join(" → "),
        kind.as_str()
    )
}
