//! Loading `do`: actions with their templates checked against the variables in scope.

use toml::de::{DeTable, DeValue};

use super::reader::{self, entries, Sink, Span};
use crate::plan::IfMissing;
use crate::rules::error::{likely_typo, nearest, unknown_word};
use crate::rules::model::{
    Action, ActionSpec, AnalyticsDecl, FieldDecl, FieldType, StatusDecl, TaskSpec,
};
use crate::rules::template::{Part, Template};

pub const ACTIONS: [&str; 8] = [
    "create_task",
    "comment",
    "set",
    "analytics",
    "reply",
    "notify",
    "webhook",
    "ignore",
];

/// Variables every rule template may use.
pub const RULE_BUILTINS: [&str; 10] = [
    "subject",
    "body",
    "from",
    "from_name",
    "to",
    "date",
    "message_id",
    "mailbox",
    "task",
    "rule",
];

/// What the actions belong to: message rules have the message's defaults (title = subject,
/// comment = the body); triggers and schedules have no message, so those texts are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Rule,
    Event,
}

/// What an action may refer to.
pub struct Scope<'a> {
    pub owner: Owner,
    pub vars: &'a [String],
    pub tables: &'a [AnalyticsDecl],
    /// The declared statuses (none: any status goes).
    pub statuses: &'a [StatusDecl],
    /// The declared fields: choice values and near-miss names are checked against them.
    pub fields: &'a [FieldDecl],
    /// The texts an extracted variable may take whatever the mail says (its `default`, its
    /// `map` values): a choice field set from the variable must allow each of them.
    pub literals: &'a [Literal],
}

/// A text written in the rule that a variable may take at run time.
pub struct Literal {
    pub var: String,
    /// Where the text is written, for the error.
    pub span: Span,
    pub text: String,
    /// `default` or `map`.
    pub what: &'static str,
}

/// What the names of `fields`/`values` are checked against.
#[derive(Clone, Copy)]
enum Target<'a> {
    Fields,
    Columns(Option<&'a AnalyticsDecl>),
}

/// Every action of a `do` value.
pub fn actions(sink: &mut Sink, value: &reader::Value, scope: &Scope) -> Vec<Action> {
    reader::some_tables(sink, "do", value)
        .into_iter()
        .filter_map(|(t, span)| action(sink, t, &span, scope))
        .collect()
}

fn keys_of(action: &str) -> &'static [&'static str] {
    match action {
        "create_task" => &[
            "action",
            "title",
            "description",
            "status",
            "fields",
            "assignee",
            "parent",
        ],
        "comment" => &["action", "text", "auto", "task", "if_missing"],
        "set" => &["action", "status", "fields", "task", "if_missing"],
        "analytics" => &["action", "table", "values", "task", "if_missing"],
        "reply" => &["action", "subject", "text", "task", "if_missing"],
        "notify" => &["action", "to", "subject", "text", "task", "if_missing"],
        "webhook" => &["action", "to", "body", "task", "if_missing"],
        _ => &["action"],
    }
}

fn action(sink: &mut Sink, table: &DeTable, span: &Span, scope: &Scope) -> Option<Action> {
    let name = reader::required_string(
        sink,
        table,
        "action",
        span,
        "one of create_task, comment, set, analytics, reply, notify, webhook, ignore",
    )?;
    let kind = name.get_ref().as_str();
    if !ACTIONS.contains(&kind) {
        sink.error(&name.span(), unknown_word("action", kind, &ACTIONS));
        return None;
    }
    reader::check_keys(sink, table, keys_of(kind));
    let event = scope.owner == Owner::Event;
    let t = |sink: &mut Sink, key: &str| template(sink, table, key, scope);
    let needed = |sink: &mut Sink, key: &str| {
        if reader::get(table, key).is_none() {
            sink.error(span, format!("action `{kind}` needs `{key}`"));
            None
        } else {
            template(sink, table, key, scope)
        }
    };
    let with_default = |sink: &mut Sink, key: &str, default: &str| {
        if reader::get(table, key).is_some() {
            template(sink, table, key, scope)
        } else {
            Some(Template::parse(default).unwrap_or_else(|_| Template::literal(default)))
        }
    };
    let spec = match kind {
        "create_task" => {
            let title = if event {
                needed(sink, "title")
            } else {
                with_default(sink, "title", "{subject}")
            };
            let description = with_default(sink, "description", if event { "" } else { "{body}" });
            ActionSpec::CreateTask {
                title: title?,
                description: description?,
                status: {
                    let status = t(sink, "status");
                    super::status::action_status(sink, table, status, scope.statuses)
                },
                fields: pairs(sink, table, "fields", scope, Target::Fields),
                assignee: t(sink, "assignee"),
                parent: t(sink, "parent"),
            }
        }
        "comment" => {
            let text = if event {
                needed(sink, "text")
            } else {
                t(sink, "text")
            };
            let auto = reader::boolean(sink, table, "auto").unwrap_or(text.is_some());
            ActionSpec::Comment { text, auto }
        }
        "set" => {
            if !table.contains_key("status") && !table.contains_key("fields") {
                sink.error(span, "action `set` needs `status` or `fields`");
            }
            let status = t(sink, "status");
            ActionSpec::Set {
                status: super::status::action_status(sink, table, status, scope.statuses),
                fields: pairs(sink, table, "fields", scope, Target::Fields),
            }
        }
        "analytics" => {
            let table_name =
                reader::required_string(sink, table, "table", span, "the analytics table")?;
            let decl = check_table(sink, &table_name, scope.tables)?;
            let values = pairs(sink, table, "values", scope, Target::Columns(decl));
            if reader::get(table, "values").is_none() {
                sink.error(span, "action `analytics` needs `values`");
            }
            check_columns(sink, table, &table_name, scope.tables);
            ActionSpec::Analytics {
                table: table_name.into_inner(),
                values,
            }
        }
        "reply" => {
            let subject = if event {
                needed(sink, "subject")
            } else {
                with_default(sink, "subject", "Re: {subject}")
            };
            let text = needed(sink, "text");
            ActionSpec::Reply {
                subject: subject?,
                text: text?,
            }
        }
        "notify" => {
            let to = needed(sink, "to");
            let subject = needed(sink, "subject");
            let text = with_default(sink, "text", "");
            ActionSpec::Notify {
                to: to?,
                subject: subject?,
                text: text?,
            }
        }
        "webhook" => super::webhook::webhook(sink, table, span, scope)?,
        _ => ActionSpec::Ignore,
    };
    Some(Action {
        kind: spec,
        task: task_spec(sink, table, scope),
        if_missing: if_missing(sink, table),
    })
}

/// The declared table an analytics action names. When tables are declared, a name that is
/// not one of them is an error (a typo would start a new table and split the data); with none
/// declared, any table goes, as in version 1. `None` from the outer option: the error.
fn check_table<'t>(
    sink: &mut Sink,
    name: &toml::Spanned<String>,
    tables: &'t [AnalyticsDecl],
) -> Option<Option<&'t AnalyticsDecl>> {
    if tables.is_empty() {
        return Some(None);
    }
    if let Some(decl) = tables.iter().find(|d| &d.name == name.get_ref()) {
        return Some(Some(decl));
    }
    let known: Vec<&str> = tables.iter().map(|d| d.name.as_str()).collect();
    sink.error(
        &name.span(),
        unknown_word("analytics table", name.get_ref(), &known),
    );
    None
}

/// Analytics columns must be declared when the table is.
fn check_columns(
    sink: &mut Sink,
    table: &DeTable,
    name: &toml::Spanned<String>,
    tables: &[AnalyticsDecl],
) {
    let Some(decl) = tables.iter().find(|d| &d.name == name.get_ref()) else {
        return;
    };
    let Some((values, _)) = reader::table(sink, table, "values") else {
        return;
    };
    let known: Vec<&str> = decl.columns.iter().map(|(c, _)| c.as_str()).collect();
    for (column, _) in entries(values) {
        if !known.contains(&column.get_ref().as_ref()) {
            sink.error(
                &column.span(),
                format!(
                    "analytics table {} has no column: {}",
                    crate::text::quoted(&decl.name),
                    unknown_word("column", column.get_ref(), &known)
                ),
            );
        }
    }
}

fn task_spec(sink: &mut Sink, table: &DeTable, scope: &Scope) -> TaskSpec {
    let Some(value) = reader::get(table, "task") else {
        return TaskSpec::Current;
    };
    match value.get_ref() {
        DeValue::String(_) => match template(sink, table, "task", scope) {
            Some(t) => TaskSpec::Number(t),
            None => TaskSpec::Current,
        },
        DeValue::Table(by) => {
            reader::check_keys(sink, by, &["field", "is"]);
            let field = reader::required_string(
                sink,
                by,
                "field",
                &value.span(),
                "the field to look the task up by",
            );
            let is = if reader::get(by, "is").is_none() {
                sink.error(&value.span(), "`task` needs `is`: the value of the field");
                None
            } else {
                template(sink, by, "is", scope)
            };
            if let Some(field) = &field {
                let name = toml::Spanned::new(field.span(), field.get_ref().as_str().into());
                check_field_name(sink, &name, scope.fields);
            }
            match (field, is) {
                (Some(field), Some(value)) => TaskSpec::Field {
                    field: field.into_inner(),
                    value,
                },
                _ => TaskSpec::Current,
            }
        }
        _ => {
            reader::wrong_type(
                sink,
                "task",
                value,
                "\"{variable}\" or { field = \"…\", is = \"…\" }",
            );
            TaskSpec::Current
        }
    }
}

fn if_missing(sink: &mut Sink, table: &DeTable) -> IfMissing {
    let Some(word) = reader::string(sink, table, "if_missing") else {
        return IfMissing::Fail;
    };
    match word.get_ref().as_str() {
        "create" => IfMissing::Create,
        "skip" => IfMissing::Skip,
        "fail" => IfMissing::Fail,
        other => {
            sink.error(
                &word.span(),
                unknown_word("if_missing value", other, &["create", "skip", "fail"]),
            );
            IfMissing::Fail
        }
    }
}

/// `fields = { "Name" = "template" }` or analytics `values`, in source order. A literal value
/// of a choice field or column is checked against its list and put in its declared spelling.
fn pairs(
    sink: &mut Sink,
    table: &DeTable,
    key: &str,
    scope: &Scope,
    target: Target,
) -> Vec<(String, Template)> {
    let Some((map, _)) = reader::table(sink, table, key) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, value) in entries(map) {
        let text = match value.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(i) => i.to_string(),
            DeValue::Float(f) => f.to_string(),
            _ => {
                reader::wrong_type(sink, name.get_ref(), value, "a string");
                continue;
            }
        };
        let choices = match target {
            Target::Fields => {
                check_field_name(sink, name, scope.fields);
                scope
                    .fields
                    .iter()
                    .find(|f| f.name == name.get_ref().as_ref() && f.kind == FieldType::Choice)
                    .map(|f| (format!("field \"{}\"", f.name), f.values.as_slice()))
            }
            Target::Columns(decl) => decl.and_then(|d| {
                d.choice(name.get_ref())
                    .map(|v| (format!("column \"{}\"", name.get_ref()), v))
            }),
        };
        let Some(mut t) = compile(sink, &value.span(), &text, scope) else {
            continue;
        };
        if let Some((what, allowed)) = choices {
            t = choice(sink, &value.span(), t, &what, allowed, scope.literals);
        }
        out.push((name.get_ref().to_string(), t));
    }
    out
}

/// A field name one or two edits from a declared one is a typo, not a new free field: the
/// value would go where no report or trigger looks.
pub fn check_field_name(
    sink: &mut Sink,
    name: &toml::Spanned<toml::de::DeString>,
    fields: &[FieldDecl],
) {
    let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    if let Some(near) = likely_typo(name.get_ref(), &known) {
        sink.error(
            &name.span(),
            format!(
                "field \"{}\" is not declared, did you mean \"{near}\"? (an undeclared field is \
                 a free text field, but this name is too close to a declared one to be meant)",
                name.get_ref()
            ),
        );
    }
}

/// A choice value written in the rule: a literal must be one of `allowed` (it becomes the
/// declared spelling); a lone variable must allow every text the rule gives it (`default`,
/// `map` values). Other templates depend on the mail and are checked when it arrives.
fn choice(
    sink: &mut Sink,
    span: &Span,
    template: Template,
    what: &str,
    allowed: &[String],
    literals: &[Literal],
) -> Template {
    if template.vars().next().is_none() {
        let text: String = template
            .parts
            .iter()
            .map(|p| match p {
                Part::Literal(l) => l.as_str(),
                Part::Var(_) => "",
            })
            .collect();
        return match check_choice(sink, span, &text, what, allowed, "value") {
            Some(declared) => Template::literal(&declared),
            None => template,
        };
    }
    if let Some(var) = template.single_var() {
        for literal in literals.iter().filter(|l| l.var == var) {
            let label = format!("`{}` of {{{var}}}", literal.what);
            check_choice(sink, &literal.span, &literal.text, what, allowed, &label);
        }
    }
    template
}

/// The declared spelling of `text` among `allowed`, or an error at `span`. Empty clears.
pub fn check_choice(
    sink: &mut Sink,
    span: &Span,
    text: &str,
    what: &str,
    allowed: &[String],
    label: &str,
) -> Option<String> {
    let wanted = text.trim().to_lowercase();
    if wanted.is_empty() {
        return Some(String::new());
    }
    if let Some(v) = allowed.iter().find(|v| v.trim().to_lowercase() == wanted) {
        return Some(v.clone());
    }
    let names: Vec<&str> = allowed.iter().map(String::as_str).collect();
    let hint = match nearest(text.trim(), &names) {
        Some(near) => format!(", did you mean \"{near}\"?"),
        None => {
            let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            format!("; its values are {}", list.join(", "))
        }
    };
    sink.error(
        span,
        format!("{label} \"{}\" is not a value of {what}{hint}", text.trim()),
    );
    None
}

/// A template-valued key, if present.
pub fn template(sink: &mut Sink, table: &DeTable, key: &str, scope: &Scope) -> Option<Template> {
    let value = reader::string(sink, table, key)?;
    compile(sink, &value.span(), value.get_ref(), scope)
}

/// Compiles `text` and checks every variable against the scope.
pub fn compile(sink: &mut Sink, span: &Span, text: &str, scope: &Scope) -> Option<Template> {
    let template = match Template::parse(text) {
        Ok(t) => t,
        Err(e) => {
            let at = inner_span(sink, span, text, e.offset);
            sink.error(&at, e.message);
            return None;
        }
    };
    let mut ok = true;
    for var in template.vars() {
        if scope.vars.iter().any(|v| v == var) {
            continue;
        }
        ok = false;
        let known: Vec<&str> = scope.vars.iter().map(String::as_str).collect();
        let hint = match nearest(var, &known) {
            Some(k) => format!(", did you mean `{{{k}}}`?"),
            None => format!(
                "; known here: {}",
                known
                    .iter()
                    .map(|k| format!("{{{k}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let at = sink.span_of(span, &format!("{{{var}"));
        sink.error(&at, format!("unknown variable `{{{var}}}`{hint}"));
    }
    ok.then_some(template)
}

/// The source position of byte `offset` of a string value, exact when the string is written
/// without escapes, else the start of the string.
fn inner_span(sink: &Sink, span: &Span, text: &str, offset: usize) -> Span {
    let raw = sink.src.get(span.clone()).unwrap_or("");
    let quote = raw.chars().next().map_or(0, char::len_utf8);
    if raw.len() >= quote && raw.get(quote..quote + text.len()) == Some(text) {
        let at = span.start + quote + offset;
        at..at + 1
    } else {
        span.clone()
    }
}
