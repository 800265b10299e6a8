//! Turning a matched rule's actions (or a trigger's or schedule's) into planned actions:
//! templates rendered (with `{task}` left open), the target task decided, typed field and
//! column values converted.

use chrono::SecondsFormat;

use super::condition::Vars;
use super::convert::convert;
use super::model::{
    short, Action, ActionSpec, AnalyticsDecl, BodyTemplate, FieldDecl, FieldType, TaskSpec,
    ValueType,
};
use super::template::{Part, Template};
use crate::context::Envelope;
use crate::message::strip_quoted;
use crate::plan::{
    ActionKind, FieldValue, JsonText, Piece, PlanError, PlannedAction, TaskRef, Text,
};

/// Puts every variable that alone sets a choice field or column (`"{reason}"`) in the value's
/// declared spelling, so that the other templates of the rule (a reply, a comment) render it
/// as the task stores it: "дорого" is "Дорого" everywhere. Values outside the list are left
/// as they are (the field's own planning fails on them).
pub fn canonical_vars(
    actions: &[Action],
    fields: &[FieldDecl],
    tables: &[AnalyticsDecl],
    vars: &mut Vars,
) {
    for action in actions {
        let (pairs, table) = match &action.kind {
            ActionSpec::CreateTask { fields, .. } | ActionSpec::Set { fields, .. } => {
                (fields, None)
            }
            ActionSpec::Analytics { table, values } => {
                (values, tables.iter().find(|t| &t.name == table))
            }
            _ => continue,
        };
        for (name, template) in pairs {
            let Some(var) = template.single_var() else {
                continue;
            };
            let allowed = match table {
                Some(t) => t.choice(name),
                None => fields
                    .iter()
                    .find(|f| &f.name == name && f.kind == FieldType::Choice)
                    .map(|f| f.values.as_slice()),
            };
            let (Some(allowed), Some(value)) = (allowed, vars.get_mut(var)) else {
                continue;
            };
            let wanted = value.trim().to_lowercase();
            if let Some(declared) = allowed.iter().find(|v| v.trim().to_lowercase() == wanted) {
                value.clone_from(declared);
            }
        }
    }
}

/// What the actions are about.
#[derive(Clone, Copy)]
pub enum Context<'a> {
    /// A message: the built-in variables come from it.
    Message(&'a Envelope<'a>),
    /// A trigger's event or a schedule's task: every variable is in `vars`, and `{task}`
    /// rendered early (in a task reference) is this task.
    Event { task: i64 },
}

/// Plans the actions of one matched rule, trigger or schedule.
pub struct Planner<'a> {
    pub context: Context<'a>,
    pub rule: &'a str,
    pub vars: &'a Vars,
    pub fields: &'a [FieldDecl],
    pub tables: &'a [AnalyticsDecl],
}

impl Planner<'_> {
    fn error(&self, message: String) -> PlanError {
        PlanError {
            rule: self.rule.to_string(),
            message,
        }
    }

    /// A webhook body with every template rendered (`{task}` left open).
    fn body(&self, body: &BodyTemplate) -> JsonText {
        match body {
            BodyTemplate::Text(t) => JsonText::Text(self.text(t)),
            BodyTemplate::Value(v) => JsonText::Value(v.clone()),
            BodyTemplate::List(items) => {
                JsonText::List(items.iter().map(|i| self.body(i)).collect())
            }
            BodyTemplate::Table(entries) => JsonText::Table(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), self.body(v)))
                    .collect(),
            ),
        }
    }

    pub fn action(&self, action: &Action) -> Result<PlannedAction, PlanError> {
        let kind = match &action.kind {
            ActionSpec::CreateTask {
                title,
                description,
                status,
                fields,
                assignee,
                parent,
            } => ActionKind::CreateTask {
                title: self.text(title),
                description: self.text(description),
                status: status.as_ref().map(|t| self.text(t)),
                fields: self.fields(fields)?,
                assignee: assignee.as_ref().map(|t| self.text(t)),
                parent: parent.as_ref().map(|t| self.text(t)),
            },
            ActionSpec::Comment { text, auto } => ActionKind::Comment {
                text: match (text, self.context) {
                    (Some(t), _) => self.text(t),
                    (None, Context::Message(env)) => Text::literal(strip_quoted(&env.message.body)),
                    // Triggers and schedules must write a text (checked at load).
                    (None, Context::Event { .. }) => Text::literal(""),
                },
                auto: *auto,
            },
            ActionSpec::Set { status, fields } => ActionKind::Set {
                status: status.as_ref().map(|t| self.text(t)),
                fields: self.fields(fields)?,
            },
            ActionSpec::Analytics { table, values } => ActionKind::Analytics {
                table: table.clone(),
                values: self.columns(table, values)?,
            },
            ActionSpec::Reply { subject, text } => ActionKind::Reply {
                subject: self.text(subject),
                text: self.text(text),
                suppressed: None,
            },
            ActionSpec::Notify { to, subject, text } => ActionKind::Notify {
                to: self.text(to),
                subject: self.text(subject),
                text: self.text(text),
            },
            ActionSpec::Webhook { to, body, .. } => ActionKind::Webhook {
                to: to.clone(),
                body: self.body(body),
            },
            ActionSpec::Ignore => ActionKind::Ignore,
        };
        Ok(PlannedAction {
            rule: self.rule.to_string(),
            kind,
            task: self.task(&action.task)?,
            if_missing: action.if_missing,
        })
    }

    fn task(&self, spec: &TaskSpec) -> Result<TaskRef, PlanError> {
        match spec {
            TaskSpec::Current => Ok(TaskRef::Current),
            TaskSpec::Number(t)
                if t.single_var() == Some("task") && !self.vars.contains_key("task") =>
            {
                Ok(TaskRef::Current)
            }
            TaskSpec::Number(t) => {
                let text = self.text(t).render(self.current_task());
                let number = text.trim().trim_start_matches('#');
                match number.parse::<i64>() {
                    Ok(n) if n > 0 => Ok(TaskRef::Number(n)),
                    _ => {
                        Err(self.error(format!("task: \"{}\" is not a task number", short(&text))))
                    }
                }
            }
            TaskSpec::Field { field, value } => Ok(TaskRef::Field {
                field: field.clone(),
                value: self
                    .text(value)
                    .render(self.current_task())
                    .trim()
                    .to_string(),
            }),
        }
    }

    fn fields(&self, fields: &[(String, Template)]) -> Result<Vec<FieldValue>, PlanError> {
        fields
            .iter()
            .map(|(name, t)| {
                let text = self.text(t);
                let decl = self.fields.iter().find(|f| &f.name == name);
                let value = match decl.map(|d| d.kind) {
                    None | Some(FieldType::Value(ValueType::Text)) => text,
                    Some(FieldType::Choice) => {
                        self.choice("field", name, decl.map_or(&[][..], |d| &d.values[..]), text)?
                    }
                    Some(FieldType::Value(kind)) => self.typed("field", name, kind, text)?,
                };
                Ok(FieldValue {
                    name: name.clone(),
                    value,
                })
            })
            .collect()
    }

    fn columns(
        &self,
        table: &str,
        values: &[(String, Template)],
    ) -> Result<Vec<FieldValue>, PlanError> {
        let decl = self.tables.iter().find(|t| t.name == table);
        values
            .iter()
            .map(|(name, t)| {
                let text = self.text(t);
                let kind = decl
                    .and_then(|d| d.columns.iter().find(|(c, _)| c == name))
                    .map(|(_, k)| *k);
                let value = match (decl.and_then(|d| d.choice(name)), kind) {
                    // Rows are grouped by value in reports: one declared spelling per value.
                    (Some(allowed), _) => self.choice("column", name, allowed, text)?,
                    (None, None | Some(ValueType::Text)) => text,
                    (None, Some(kind)) => self.typed("column", name, kind, text)?,
                };
                Ok(FieldValue {
                    name: name.clone(),
                    value,
                })
            })
            .collect()
    }

    /// A choice value in its declared spelling; an empty value clears the field.
    fn choice(
        &self,
        what: &str,
        name: &str,
        allowed: &[String],
        text: Text,
    ) -> Result<Text, PlanError> {
        if text.needs_task() {
            return Ok(text);
        }
        let value = text.render(None);
        let wanted = value.trim().to_lowercase();
        if wanted.is_empty() {
            return Ok(Text::literal(""));
        }
        match allowed.iter().find(|v| v.trim().to_lowercase() == wanted) {
            Some(v) => Ok(Text::literal(v.clone())),
            None => Err(self.error(format!(
                "{what} \"{name}\": \"{}\" is not one of its values ({})",
                short(value.trim()),
                allowed.join(", ")
            ))),
        }
    }

    /// A typed value converted to its canonical text; an empty value clears it.
    fn typed(
        &self,
        what: &str,
        name: &str,
        kind: ValueType,
        text: Text,
    ) -> Result<Text, PlanError> {
        if text.needs_task() {
            return Ok(text);
        }
        let value = text.render(None);
        if value.trim().is_empty() {
            return Ok(Text::literal(""));
        }
        convert(kind, &value)
            .map(Text::literal)
            .map_err(|e| self.error(format!("{what} \"{name}\": {e}")))
    }

    /// Renders a template: captured and extracted values first, then the built-ins; `{task}`
    /// (unless captured) stays open for the store.
    pub fn text(&self, template: &Template) -> Text {
        let mut pieces: Vec<Piece> = Vec::new();
        let mut literal = String::new();
        for part in &template.parts {
            match part {
                Part::Literal(s) => literal.push_str(s),
                Part::Var(name) => match self.vars.get(name) {
                    Some(v) => literal.push_str(v),
                    None if name == "task" => {
                        if !literal.is_empty() {
                            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                        }
                        pieces.push(Piece::Task);
                    }
                    None => literal.push_str(&self.builtin(name)),
                },
            }
        }
        if !literal.is_empty() || pieces.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Text(pieces)
    }

    /// The task `{task}` names when it must be rendered while planning.
    fn current_task(&self) -> Option<i64> {
        match self.context {
            Context::Message(env) => env.thread.task,
            Context::Event { task } => Some(task),
        }
    }

    fn builtin(&self, name: &str) -> String {
        if name == "rule" {
            return self.rule.to_string();
        }
        let env = match self.context {
            Context::Message(env) => env,
            // An event value the task does not have (a cleared field): empty.
            Context::Event { .. } => return String::new(),
        };
        let m = env.message;
        match name {
            "subject" => m.subject.clone(),
            "body" => m.body.clone(),
            "from" => env.sender.email.clone(),
            "from_name" => env.sender.name.clone().unwrap_or_default(),
            "to" => {
                m.to.iter()
                    .map(|a| a.email.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
            "date" => m
                .date
                .map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_default(),
            "message_id" => m.message_id.clone().unwrap_or_default(),
            "mailbox" => env.mailbox.to_string(),
            // A named group that did not take part in the match.
            _ => String::new(),
        }
    }
}
