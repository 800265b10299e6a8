//! The plan: what one message will do to the store, decided before any write.
//!
//! Produced by the rules (pure), consumed by the store (one transaction). Everything that can
//! be checked without the store (templates, typed values, choice lists) was checked while
//! planning; what needs the store (which task a reference names, rate limits) is checked when
//! the plan is applied.

mod words;

use serde::Serialize;

pub use words::describe;

use crate::context::{SenderKind, ThreadMatch};
use crate::message::Address;

/// Text with the task number still open: `{task}` may name a task that only the store will
/// create. Everything else was substituted while planning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(pub Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    /// The task the action acts on (resolved or just created).
    Task,
}

impl Text {
    pub fn literal(s: impl Into<String>) -> Text {
        Text(vec![Piece::Literal(s.into())])
    }

    /// The final text, with `task` put in for every `{task}`.
    pub fn render(&self, task: Option<i64>) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Task => {
                    if let Some(n) = task {
                        out.push_str(&n.to_string());
                    }
                }
            }
        }
        out
    }

    /// Whether the text still waits for a task number.
    pub fn needs_task(&self) -> bool {
        self.0.iter().any(|p| matches!(p, Piece::Task))
    }
}

/// Shown as the template would print, with `{task}` where the number goes.
impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Literal(l) => out.push_str(l),
                Piece::Task => out.push_str("{task}"),
            }
        }
        s.serialize_str(&out)
    }
}

/// A webhook body: JSON whose strings may still wait for the task number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonText {
    Text(Text),
    /// A number, a boolean or a date, as written.
    Value(serde_json::Value),
    List(Vec<JsonText>),
    /// Keys in the order written.
    Table(Vec<(String, JsonText)>),
}

impl JsonText {
    /// The JSON text to send, with `task` put in for every `{task}`, keys in the order written
    /// (receivers and people reading `outbox` see the body as the rule has it).
    pub fn to_json(&self, task: Option<i64>) -> String {
        // Serializing strings, numbers, booleans and string-keyed maps cannot fail.
        serde_json::to_string(&Rendered(self, task)).unwrap_or_default()
    }
}

/// A body with its task number, serialized in order.
struct Rendered<'a>(&'a JsonText, Option<i64>);

impl Serialize for Rendered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        let task = self.1;
        match self.0 {
            JsonText::Text(t) => s.serialize_str(&t.render(task)),
            JsonText::Value(v) => v.serialize(s),
            JsonText::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Rendered(item, task))?;
                }
                seq.end()
            }
            JsonText::Table(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, &Rendered(v, task))?;
                }
                map.end()
            }
        }
    }
}

/// Shown as JSON with `{task}` where the number goes.
impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            JsonText::Text(t) => t.serialize(s),
            JsonText::Value(v) => v.serialize(s),
            JsonText::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            JsonText::Table(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Which task an action acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskRef {
    /// The task the message resolved to by threading, else the one created earlier by the
    /// same message.
    Current,
    /// `task = "{var}"`: an explicit number.
    Number(i64),
    /// `task = { field = "Номер заказа", is = "{order}" }`: the most recently updated task whose
    /// field equals the value.
    Field { field: String, value: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IfMissing {
    Create,
    Skip,
    #[default]
    Fail,
}

/// A field value, already converted to its declared type's canonical text
/// (numbers as written without spaces, dates as `YYYY-MM-DD`, datetimes as RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldValue {
    pub name: String,
    pub value: Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionKind {
    CreateTask {
        title: Text,
        description: Text,
        status: Option<Text>,
        fields: Vec<FieldValue>,
        assignee: Option<Text>,
        parent: Option<Text>,
    },
    Comment {
        text: Text,
        /// Written by the robot (a template), as opposed to the sender's own words.
        auto: bool,
    },
    Set {
        status: Option<Text>,
        fields: Vec<FieldValue>,
    },
    Analytics {
        table: String,
        values: Vec<FieldValue>,
    },
    Reply {
        subject: Text,
        text: Text,
        /// Why no reply may be sent (RFC 3834 loop guard), decided from the message alone.
        /// A suppressed reply is still recorded, with this reason.
        suppressed: Option<String>,
    },
    Notify {
        to: Text,
        subject: Text,
        text: Text,
    },
    /// A JSON body for the `[[webhook]]` endpoint `to`, queued in the outbox.
    Webhook {
        to: String,
        body: JsonText,
    },
    /// A person's change of the assignee (a bare address; None: nobody).
    Assign {
        assignee: Option<String>,
    },
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedAction {
    /// The rule that asked for it (`"(unmatched)"` for the unmatched policy).
    pub rule: String,
    #[serde(flatten)]
    pub kind: ActionKind,
    pub task: TaskRef,
    pub if_missing: IfMissing,
}

/// Everything one message will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The first rule that matched, `None` when the unmatched policy applied.
    pub rule: Option<String>,
    pub sender: Address,
    pub sender_kind: SenderKind,
    pub thread: ThreadMatch,
    pub actions: Vec<PlannedAction>,
}

/// Why a message could not be planned. The message is recorded as failed with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule \"{rule}\": {message}")]
pub struct PlanError {
    pub rule: String,
    pub message: String,
}

/// Why a message gets no plan at all; it is recorded as failed with this text (and its raw
/// bytes, for `mailrules retry`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoPlan {
    /// The bytes are not a message we can read (or are over the size limit), or the server
    /// could not deliver them: the reason, in words.
    #[error("{0}")]
    Unreadable(String),
    /// The rules decided it cannot be applied (a required value missing, a bad value).
    #[error(transparent)]
    Rules(#[from] PlanError),
}
