//! The loaded rule language: rules, conditions, extractors, actions, declarations, triggers
//! and schedules, as typed values (everything checked and compiled at load).

use std::fmt;
use std::time::Duration;

use regex::Regex;

use super::glob::Glob;
use super::template::Template;
use crate::context::SenderKind;
use crate::plan::IfMissing;

/// One `[[rule]]`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// Only mail from these configured mailboxes; `None`: every mailbox.
    pub mailboxes: Option<Vec<String>>,
    pub priority: i64,
    /// Keep trying later rules after this one matched.
    pub continues: bool,
    pub when: When,
    pub extract: Vec<Extractor>,
    pub actions: Vec<Action>,
}

/// Conditions that must all hold (an empty list always holds).
#[derive(Debug, Clone, Default)]
pub struct When {
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub enum Condition {
    From(Leaf),
    To(Leaf),
    Subject(Leaf),
    Body(Leaf),
    Header { name: String, leaf: Leaf },
    HasAttachment(bool),
    Thread(ThreadKind),
    Sender(SenderKind),
    TaskStatus(Leaf),
    Any(Vec<When>),
    All(Vec<When>),
    Not(Box<When>),
}

/// A test on one value of the message, with the start of its "did not match" trace made once
/// at load (a thousand rules must not mean a thousand formatting runs per message).
#[derive(Debug, Clone)]
pub struct Leaf {
    pub test: Test,
    /// e.g. `subject: regex '^Опрос' did not match "`; the value seen and `"` follow.
    pub miss: String,
}

impl Leaf {
    pub fn new(key: &str, test: Test) -> Leaf {
        let miss = if key == "to" {
            format!("to: {test} did not match any recipient (")
        } else {
            format!("{key}: {test} did not match \"")
        };
        Leaf { test, miss }
    }

    /// The trace when the test failed on `seen` (already shortened).
    pub fn missed(&self, seen: &str, close: char) -> String {
        let mut out = String::with_capacity(self.miss.len() + seen.len() + 1);
        out.push_str(&self.miss);
        out.push_str(seen);
        out.push(close);
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadKind {
    Reply,
    New,
}

/// A test on one text value. `slot` is this test's bit in the per-message prefilter, when
/// the prefilter answers it.
#[derive(Debug, Clone)]
pub enum Test {
    /// Address keys: a case-insensitive glob.
    Glob {
        glob: Glob,
        slot: Option<usize>,
    },
    /// Whole value, case-insensitive (`lower` is the lower-cased pattern).
    Is {
        shown: String,
        lower: String,
    },
    Contains {
        shown: String,
        lower: String,
        slot: Option<usize>,
    },
    Regex {
        regex: Regex,
        slot: Option<usize>,
    },
    /// One of these (globs on address keys).
    AnyOf(Vec<Test>),
    Exists(bool),
}

impl Test {
    pub fn regex_names(&self) -> Vec<String> {
        match self {
            Test::Regex { regex, .. } => {
                regex.capture_names().flatten().map(String::from).collect()
            }
            Test::AnyOf(items) => items.iter().flat_map(Test::regex_names).collect(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Test::Glob { glob, .. } => write!(f, "glob '{}'", short(&glob.source)),
            Test::Is { shown, .. } => write!(f, "is '{}'", short(shown)),
            Test::Contains { shown, .. } => write!(f, "contains '{}'", short(shown)),
            Test::Regex { regex, .. } => write!(f, "regex '{}'", short(regex.as_str())),
            Test::AnyOf(items) => {
                f.write_str("any of [")?;
                for (i, t) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match t {
                        Test::Glob { glob, .. } => write!(f, "'{}'", short(&glob.source))?,
                        Test::Is { shown, .. } => write!(f, "'{}'", short(shown))?,
                        other => write!(f, "{other}")?,
                    }
                }
                f.write_str("]")
            }
            Test::Exists(true) => f.write_str("exists"),
            Test::Exists(false) => f.write_str("does not exist"),
        }
    }
}

/// A value cut to about 80 characters on one line, for traces.
pub fn short(text: &str) -> std::borrow::Cow<'_, str> {
    const LIMIT: usize = 80;
    let mut count = 0;
    let mut plain = true;
    for ch in text.chars() {
        count += 1;
        if ch.is_control() || count > LIMIT {
            plain = false;
            break;
        }
    }
    if plain {
        return std::borrow::Cow::Borrowed(text);
    }
    // Cut first: the text may be a whole body.
    let mut cut: String = text.chars().take(LIMIT + 1).collect();
    let long = cut.chars().count() > LIMIT;
    if long {
        cut.pop();
    }
    let mut out = crate::text::single_line(&cut);
    if long {
        out.push('…');
    }
    std::borrow::Cow::Owned(out)
}

/// One named value of `[rule.extract]`.
#[derive(Debug, Clone)]
pub struct Extractor {
    pub name: String,
    pub source: Source,
    pub how: ExtractHow,
    pub kind: ValueType,
    /// Lower-cased key → value.
    pub map: Option<Vec<(String, String)>>,
    pub default: Option<String>,
    pub required: bool,
}

/// Where an extractor reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Body,
    Subject,
    /// The sender as `Name <address>`.
    From,
    Header(String),
}

#[derive(Debug, Clone)]
pub enum ExtractHow {
    /// Case-insensitive label; the rest of its line.
    After(Regex),
    /// Case-insensitive start and end markers.
    Between(Regex, Regex),
    Regex(Regex),
    /// 1-based line number.
    Line(usize),
    /// The whole source (used by `{ header = "Name" }`).
    Whole,
}

/// The types a value can be converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Text,
    Number,
    Date,
    Datetime,
    Email,
}

impl ValueType {
    pub const NAMES: [&'static str; 5] = ["text", "number", "date", "datetime", "email"];

    pub fn parse(name: &str) -> Option<ValueType> {
        Some(match name {
            "text" => ValueType::Text,
            "number" => ValueType::Number,
            "date" => ValueType::Date,
            "datetime" => ValueType::Datetime,
            "email" => ValueType::Email,
            _ => return None,
        })
    }
}

/// A `[[field]]` declaration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldDecl {
    pub name: String,
    pub kind: FieldType,
    /// The allowed values of a `choice` field, in the declared spelling.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Value(ValueType),
    Choice,
}

/// A `[[status]]` declaration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusDecl {
    pub name: String,
    /// A task created without a status gets this one (at most one is).
    pub initial: bool,
    /// `task close`, the open filters: a task in this status is done.
    pub closed: bool,
}

/// An `[[analytics]]` declaration: a table name and its typed columns in declared order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AnalyticsDecl {
    pub name: String,
    /// A `choice` column is listed as text here, with its values in `choices`.
    pub columns: Vec<(String, ValueType)>,
    /// The allowed values of each `choice` column, in the declared spelling.
    pub choices: Vec<(String, Vec<String>)>,
}

impl AnalyticsDecl {
    /// The allowed values of column `name`, when it is a `choice` column.
    pub fn choice(&self, name: &str) -> Option<&[String]> {
        self.choices
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// One action of `do`, still a template.
#[derive(Debug, Clone)]
pub struct Action {
    pub kind: ActionSpec,
    pub task: TaskSpec,
    pub if_missing: IfMissing,
}

#[derive(Debug, Clone)]
pub enum ActionSpec {
    CreateTask {
        title: Template,
        description: Template,
        status: Option<Template>,
        fields: Vec<(String, Template)>,
        assignee: Option<Template>,
        parent: Option<Template>,
    },
    Comment {
        /// `None`: the message body without the quoted reply.
        text: Option<Template>,
        auto: bool,
    },
    Set {
        status: Option<Template>,
        fields: Vec<(String, Template)>,
    },
    Analytics {
        table: String,
        values: Vec<(String, Template)>,
    },
    Reply {
        subject: Template,
        text: Template,
    },
    Notify {
        to: Template,
        subject: Template,
        text: Template,
    },
    /// `action = "webhook"`: a JSON body queued for the `[[webhook]]` endpoint `to`.
    Webhook {
        to: String,
        /// Where `to` is written (message empty): the position of the error when the
        /// configuration has no such endpoint (checked by [`crate::rules::RuleSet::check_webhooks`]).
        to_at: crate::rules::RuleError,
        body: BodyTemplate,
    },
    Ignore,
}

/// A webhook `body` as written: a TOML value whose strings are templates.
#[derive(Debug, Clone)]
pub enum BodyTemplate {
    Text(Template),
    /// A number, a boolean or a date, sent as it is.
    Value(serde_json::Value),
    List(Vec<BodyTemplate>),
    /// Keys in source order.
    Table(Vec<(String, BodyTemplate)>),
}

/// Which task an action acts on, as written.
#[derive(Debug, Clone)]
pub enum TaskSpec {
    Current,
    Number(Template),
    Field { field: String, value: Template },
}

/// A `[[trigger]]`: actions run when a change happens to a task.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub name: String,
    pub on: TriggerEvent,
    /// For `on = "analytics"`: only rows of this table.
    pub table: Option<String>,
    pub when: ValueWhen,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerEvent {
    Analytics,
    TaskCreated,
    CommentAdded,
    StatusChanged,
    FieldChanged,
}

impl TriggerEvent {
    pub const NAMES: [&'static str; 5] = [
        "analytics",
        "task_created",
        "comment_added",
        "status_changed",
        "field_changed",
    ];

    pub fn parse(name: &str) -> Option<TriggerEvent> {
        Some(match name {
            "analytics" => TriggerEvent::Analytics,
            "task_created" => TriggerEvent::TaskCreated,
            "comment_added" => TriggerEvent::CommentAdded,
            "status_changed" => TriggerEvent::StatusChanged,
            "field_changed" => TriggerEvent::FieldChanged,
            _ => return None,
        })
    }
}

/// A `[[schedule]]`: actions run for tasks that have been in a state for a while.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub every: Duration,
    /// Conditions over the task's values (`status` and field names).
    pub when: ValueWhen,
    pub in_status_for: Option<Duration>,
    /// `field_older_than = { "Field" = "1d" }`: the field has had its value (empty included)
    /// at least this long.
    pub field_older_than: Vec<(String, Duration)>,
    pub actions: Vec<Action>,
}

/// Conditions over named values (an event's row or a task's fields and `status`).
#[derive(Debug, Clone, Default)]
pub struct ValueWhen {
    pub conditions: Vec<ValueCondition>,
}

#[derive(Debug, Clone)]
pub enum ValueCondition {
    Value { name: String, test: Test },
    Any(Vec<ValueWhen>),
    All(Vec<ValueWhen>),
    Not(Box<ValueWhen>),
}
