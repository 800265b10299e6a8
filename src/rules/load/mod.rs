//! Loading rule files: every `[[rule]]`, `[[trigger]]`, `[[schedule]]`, `[[field]]` and
//! `[[analytics]]` of every file, with every error collected (never only the first).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

mod action;
mod extract;
mod names;
mod reader;
mod status;
mod webhook;
mod when;

use self::action::{Owner, Scope, RULE_BUILTINS};
use self::extract::{extractors, literals};
use self::reader::{entries, Sink, Span};
use self::when::value_names;
use super::error::{unknown_word, RuleError, RuleErrors};
use super::model::{
    AnalyticsDecl, Condition, FieldDecl, FieldType, Rule, Schedule, StatusDecl, Test, Trigger,
    TriggerEvent, ValueType, When,
};
use crate::text::LineIndex;

const TOP_KEYS: [&str; 6] = [
    "rule",
    "trigger",
    "schedule",
    "field",
    "analytics",
    "status",
];
const RULE_KEYS: [&str; 7] = [
    "name", "mailbox", "priority", "continue", "when", "extract", "do",
];
const TRIGGER_KEYS: [&str; 5] = ["name", "on", "table", "when", "do"];
const SCHEDULE_KEYS: [&str; 4] = ["name", "every", "when", "do"];
/// Variables of every trigger and schedule action (empty where the event has no such value).
const EVENT_BUILTINS: [&str; 11] = [
    "task",
    "rule",
    "status",
    "title",
    "assignee",
    "requester",
    "row",
    "field",
    "old",
    "new",
    "old_status",
];

/// Everything the files declare, in file order.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rules: Vec<Rule>,
    pub triggers: Vec<Trigger>,
    pub schedules: Vec<Schedule>,
    pub fields: Vec<FieldDecl>,
    pub analytics: Vec<AnalyticsDecl>,
    pub statuses: Vec<StatusDecl>,
}

/// Where a name was first declared, for duplicate errors.
struct Place {
    kind: &'static str,
    file: PathBuf,
    line: usize,
    column: usize,
}

pub fn load(files: &[(PathBuf, String)]) -> Result<Loaded, RuleErrors> {
    let mut errors = Vec::new();
    let mut docs: Vec<(&Path, &str, LineIndex, DeTable)> = Vec::new();
    for (path, src) in files {
        // Recoverable parsing reports every syntax error of the file, not only the first; a
        // file with syntax errors is not checked further (its tables may be cut short).
        let (doc, syntax) = DeTable::parse_recoverable(src);
        let lines = LineIndex::new(src);
        if syntax.is_empty() {
            docs.push((path, src, lines, doc.into_inner()));
            continue;
        }
        let mut lines_seen = Vec::new();
        for e in syntax {
            let (line, column) = lines.line_col(e.span().map_or(0, |s| s.start));
            // The parser's recovery may add follow-up errors on the same line: keep the first.
            if lines_seen.contains(&line) {
                continue;
            }
            lines_seen.push(line);
            errors.push(RuleError {
                file: path.clone(),
                line,
                column,
                kind: "",
                rule: None,
                message: format!(
                    "TOML syntax: {}",
                    crate::text::single_line(e.message().trim())
                ),
            });
        }
    }
    let mut loaded = Loaded::default();
    // Declarations first: actions in any file may use fields and tables declared in any file.
    for (path, src, lines, doc) in &docs {
        let mut sink = Sink {
            file: path,
            src,
            lines,
            errors: &mut errors,
            regexes: &mut HashMap::new(),
            kind: "",
            item: None,
        };
        reader::check_keys(&mut sink, doc, &TOP_KEYS);
        declarations(&mut sink, doc, &mut loaded);
    }
    let mut names: HashMap<String, Place> = HashMap::new();
    let mut regexes = HashMap::new();
    for (path, src, lines, doc) in &docs {
        let mut sink = Sink {
            file: path,
            src,
            lines,
            errors: &mut errors,
            regexes: &mut regexes,
            kind: "",
            item: None,
        };
        for (kind, key) in [
            ("rule", "rule"),
            ("trigger", "trigger"),
            ("schedule", "schedule"),
        ] {
            let Some(value) = doc.get(key) else { continue };
            for (table, span) in reader::tables(&mut sink, key, value) {
                sink.kind = kind;
                sink.item = None;
                let Some(name) = item_name(&mut sink, table, &span, &mut names) else {
                    continue;
                };
                sink.item = Some(name.clone());
                match kind {
                    "rule" => loaded
                        .rules
                        .extend(rule(&mut sink, name, table, &span, &loaded)),
                    "trigger" => loaded
                        .triggers
                        .extend(trigger(&mut sink, name, table, &span, &loaded)),
                    _ => loaded
                        .schedules
                        .extend(schedule(&mut sink, name, table, &span, &loaded)),
                }
            }
        }
    }
    // Reported in file order, and by position within a file, whatever pass found them.
    let file_index = |e: &RuleError| files.iter().position(|(p, _)| *p == e.file);
    errors.sort_by_key(|e| (file_index(e), e.line, e.column));
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(RuleErrors(errors))
    }
}

/// The `name` of a rule, trigger or schedule, checked for uniqueness across all files.
fn item_name(
    sink: &mut Sink,
    table: &DeTable,
    span: &Span,
    names: &mut HashMap<String, Place>,
) -> Option<String> {
    let name =
        reader::required_string(sink, table, "name", span, "every item needs a unique name")?;
    let (line, column) = sink.lines.line_col(name.span().start);
    if name.get_ref().trim().is_empty() {
        sink.error(&name.span(), "`name` must not be empty");
        return None;
    }
    if let Some(first) = names.get(name.get_ref()) {
        sink.item = Some(name.get_ref().clone());
        let message = format!(
            "the name {} is already used by the {} at {}:{}:{}",
            crate::text::quoted(name.get_ref()),
            first.kind,
            first.file.display(),
            first.line,
            first.column
        );
        sink.error(&name.span(), message);
        return None;
    }
    names.insert(
        name.get_ref().clone(),
        Place {
            kind: sink.kind,
            file: sink.file.to_path_buf(),
            line,
            column,
        },
    );
    Some(name.into_inner())
}

fn declarations(sink: &mut Sink, doc: &DeTable, loaded: &mut Loaded) {
    status::declare(sink, doc, loaded);
    if let Some(value) = doc.get("field") {
        for (table, span) in reader::tables(sink, "field", value) {
            sink.kind = "field";
            sink.item = None;
            reader::check_keys(sink, table, &["name", "type", "values"]);
            let Some(name) =
                reader::required_string(sink, table, "name", &span, "the field's name")
            else {
                continue;
            };
            sink.item = Some(name.get_ref().clone());
            if loaded.fields.iter().any(|f| &f.name == name.get_ref()) {
                sink.error(&name.span(), "this field is already declared");
                continue;
            }
            let kind = match reader::string(sink, table, "type") {
                None => FieldType::Value(ValueType::Text),
                Some(t) if t.get_ref() == "choice" => FieldType::Choice,
                Some(t) => match ValueType::parse(t.get_ref()) {
                    Some(v) => FieldType::Value(v),
                    None => {
                        let mut known = ValueType::NAMES.to_vec();
                        known.push("choice");
                        sink.error(&t.span(), unknown_word("type", t.get_ref(), &known));
                        continue;
                    }
                },
            };
            let values: Vec<String> = reader::strings(sink, table, "values")
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.into_inner())
                .collect();
            match kind {
                FieldType::Choice if values.is_empty() => sink.error(
                    &span,
                    "a `choice` field needs `values`, the list of allowed values",
                ),
                FieldType::Value(_) if table.contains_key("values") => {
                    sink.error(&span, "`values` applies only to fields of type \"choice\"")
                }
                _ => {}
            }
            loaded.fields.push(FieldDecl {
                name: name.into_inner(),
                kind,
                values,
            });
        }
    }
    if let Some(value) = doc.get("analytics") {
        for (table, span) in reader::tables(sink, "analytics", value) {
            sink.kind = "analytics";
            sink.item = None;
            reader::check_keys(sink, table, &["name", "columns"]);
            let Some(name) =
                reader::required_string(sink, table, "name", &span, "the table's name")
            else {
                continue;
            };
            sink.item = Some(name.get_ref().clone());
            if loaded.analytics.iter().any(|a| &a.name == name.get_ref()) {
                sink.error(&name.span(), "this analytics table is already declared");
                continue;
            }
            let mut columns = Vec::new();
            let mut choices = Vec::new();
            match reader::table(sink, table, "columns") {
                None if !table.contains_key("columns") => {
                    sink.error(&span, "missing `columns` (column name = type)")
                }
                None => {}
                Some((cols, _)) => {
                    for (col, kind) in entries(cols) {
                        let name = col.get_ref().to_string();
                        match column_type(sink, &name, kind) {
                            Some(ColumnType::Value(k)) => columns.push((name, k)),
                            Some(ColumnType::Choice(values)) => {
                                columns.push((name.clone(), ValueType::Text));
                                choices.push((name, values));
                            }
                            None => {}
                        }
                    }
                }
            }
            loaded.analytics.push(AnalyticsDecl {
                name: name.into_inner(),
                columns,
                choices,
            });
        }
    }
}

/// The type of an analytics column, as declared.
enum ColumnType {
    Value(ValueType),
    Choice(Vec<String>),
}

/// A column's type: `"number"`, or a table typed like a field:
/// `{ type = "choice", values = [...] }`, `{ type = "date" }`.
fn column_type(sink: &mut Sink, column: &str, kind: &reader::Value) -> Option<ColumnType> {
    let mut known = ValueType::NAMES.to_vec();
    known.push("choice");
    let (name, spec) = match kind.get_ref() {
        DeValue::String(s) => (toml::Spanned::new(kind.span(), s.to_string()), None),
        DeValue::Table(t) => {
            reader::check_keys(sink, t, &["type", "values"]);
            let name = reader::required_string(sink, t, "type", &kind.span(), "the column's type")?;
            (name, Some(t))
        }
        _ => {
            reader::wrong_type(
                sink,
                column,
                kind,
                "a type name or { type = \"choice\", values = [...] }",
            );
            return None;
        }
    };
    let values: Vec<String> = spec
        .and_then(|t| reader::strings(sink, t, "values"))
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.into_inner())
        .collect();
    if name.get_ref() == "choice" {
        if values.is_empty() {
            sink.error(
                &kind.span(),
                format!("column `{column}` of type \"choice\" needs `values`, the list of allowed values"),
            );
            return None;
        }
        return Some(ColumnType::Choice(values));
    }
    if spec.is_some_and(|t| t.contains_key("values")) {
        sink.error(
            &kind.span(),
            format!("column `{column}`: `values` applies only to columns of type \"choice\""),
        );
    }
    match ValueType::parse(name.get_ref()) {
        Some(k) => Some(ColumnType::Value(k)),
        None => {
            sink.error(&name.span(), unknown_word("type", name.get_ref(), &known));
            None
        }
    }
}

fn rule(
    sink: &mut Sink,
    name: String,
    table: &DeTable,
    span: &Span,
    loaded: &Loaded,
) -> Option<Rule> {
    let before = sink.error_count();
    reader::check_keys(sink, table, &RULE_KEYS);
    if let Some(w) = reader::get(table, "when") {
        status::check_conditions(sink, w, &loaded.statuses);
    }
    let mailboxes = reader::strings(sink, table, "mailbox")
        .map(|list| list.into_iter().map(|m| m.into_inner()).collect());
    let priority = reader::integer(sink, table, "priority").unwrap_or(0);
    let continues = reader::boolean(sink, table, "continue").unwrap_or(false);
    let when = reader::table(sink, table, "when")
        .map(|(t, _)| when::when(sink, t))
        .unwrap_or_default();
    let (extract, literals) = reader::table(sink, table, "extract")
        .map(|(t, _)| (extractors(sink, t), literals(t)))
        .unwrap_or_default();
    let mut vars: Vec<String> = RULE_BUILTINS.iter().map(|s| s.to_string()).collect();
    regex_names(&when, &mut vars);
    vars.extend(extract.iter().map(|e| e.name.clone()));
    let scope = Scope {
        owner: Owner::Rule,
        vars: &vars,
        tables: &loaded.analytics,
        statuses: &loaded.statuses,
        fields: &loaded.fields,
        literals: &literals,
    };
    let actions = do_actions(sink, table, span, &scope);
    (sink.error_count() == before).then_some(Rule {
        name,
        mailboxes,
        priority,
        continues,
        when,
        extract,
        actions,
    })
}

/// Named groups of every regex in the conditions: each becomes a variable.
fn regex_names(when: &When, out: &mut Vec<String>) {
    for c in &when.conditions {
        match c {
            Condition::From(l)
            | Condition::To(l)
            | Condition::Subject(l)
            | Condition::Body(l)
            | Condition::TaskStatus(l)
            | Condition::Header { leaf: l, .. } => out.extend(Test::regex_names(&l.test)),
            Condition::Any(ws) | Condition::All(ws) => ws.iter().for_each(|w| regex_names(w, out)),
            Condition::Not(w) => regex_names(w, out),
            Condition::HasAttachment(_) | Condition::Thread(_) | Condition::Sender(_) => {}
        }
    }
}

/// Variables of trigger and schedule actions: the built-ins, declared fields, the columns of
/// the trigger's table and every value its `when` names.
fn event_vars(loaded: &Loaded, table: Option<&str>, when: &super::model::ValueWhen) -> Vec<String> {
    let mut vars: Vec<String> = EVENT_BUILTINS.iter().map(|s| s.to_string()).collect();
    vars.extend(loaded.fields.iter().map(|f| f.name.clone()));
    if let Some(decl) = table.and_then(|t| loaded.analytics.iter().find(|a| a.name == t)) {
        vars.extend(decl.columns.iter().map(|(c, _)| c.clone()));
    }
    value_names(when, &mut vars);
    vars
}

fn do_actions(
    sink: &mut Sink,
    table: &DeTable,
    span: &Span,
    scope: &Scope,
) -> Vec<super::model::Action> {
    match reader::get(table, "do") {
        Some(value) => action::actions(sink, value, scope),
        None => {
            sink.error(span, "missing `do`: at least one action is needed");
            Vec::new()
        }
    }
}

fn trigger(
    sink: &mut Sink,
    name: String,
    table: &DeTable,
    span: &Span,
    loaded: &Loaded,
) -> Option<Trigger> {
    let before = sink.error_count();
    reader::check_keys(sink, table, &TRIGGER_KEYS);
    let on_text = reader::required_string(
        sink,
        table,
        "on",
        span,
        "the event: analytics, task_created, comment_added, status_changed or field_changed",
    );
    let on = on_text.as_ref().and_then(|on| {
        let parsed = TriggerEvent::parse(on.get_ref());
        if parsed.is_none() {
            sink.error(
                &on.span(),
                unknown_word("event", on.get_ref(), &TriggerEvent::NAMES),
            );
        }
        parsed
    });
    if let Some(w) = reader::get(table, "when") {
        status::check_conditions(sink, w, &loaded.statuses);
    }
    let table_name = reader::string(sink, table, "table");
    if let Some(w) = reader::get(table, "when") {
        match on {
            // The row of a declared table: its columns (checked below) and their choices.
            Some(TriggerEvent::Analytics) => {
                let declared = table_name
                    .as_ref()
                    .and_then(|n| loaded.analytics.iter().find(|a| &a.name == n.get_ref()));
                if let Some(decl) = declared {
                    names::check_when(sink, w, names::Names::Columns(decl));
                }
            }
            _ => names::check_when(sink, w, names::Names::Fields(&loaded.fields)),
        }
    }
    if let (Some(t), Some(on)) = (&table_name, on) {
        if on != TriggerEvent::Analytics {
            sink.error(
                &t.span(),
                "`table` applies only to triggers with on = \"analytics\"",
            );
        } else if !loaded.analytics.is_empty()
            && !loaded.analytics.iter().any(|a| &a.name == t.get_ref())
        {
            // A trigger on a misspelt table would never fire.
            let known: Vec<&str> = loaded.analytics.iter().map(|a| a.name.as_str()).collect();
            sink.error(
                &t.span(),
                unknown_word("analytics table", t.get_ref(), &known),
            );
        }
    }
    let when = reader::table(sink, table, "when")
        .map(|(t, _)| {
            // The row of a declared table has exactly its columns.
            let declared = table_name
                .as_ref()
                .and_then(|n| loaded.analytics.iter().find(|a| &a.name == n.get_ref()))
                .filter(|_| on == Some(TriggerEvent::Analytics));
            let columns: Option<Vec<&str>> =
                declared.map(|d| d.columns.iter().map(|(c, _)| c.as_str()).collect());
            when::value_when(sink, t, &[], columns.as_deref())
        })
        .unwrap_or_default();
    let vars = event_vars(
        loaded,
        table_name.as_ref().map(|t| t.get_ref().as_str()),
        &when,
    );
    let scope = Scope {
        owner: Owner::Event,
        vars: &vars,
        tables: &loaded.analytics,
        statuses: &loaded.statuses,
        fields: &loaded.fields,
        literals: &[],
    };
    let actions = do_actions(sink, table, span, &scope);
    if sink.error_count() != before {
        return None;
    }
    Some(Trigger {
        name,
        on: on?,
        table: table_name.map(|t| t.into_inner()),
        when,
        actions,
    })
}

fn schedule(
    sink: &mut Sink,
    name: String,
    table: &DeTable,
    span: &Span,
    loaded: &Loaded,
) -> Option<Schedule> {
    let before = sink.error_count();
    reader::check_keys(sink, table, &SCHEDULE_KEYS);
    if let Some(w) = reader::get(table, "when") {
        status::check_conditions(sink, w, &loaded.statuses);
    }
    if let Some(w) = reader::get(table, "when") {
        names::check_when(sink, w, names::Names::Fields(&loaded.fields));
    }
    let every =
        reader::required_string(sink, table, "every", span, "how often it runs, e.g. \"5m\"")
            .and_then(|e| duration(sink, &e));
    let mut in_status_for = None;
    let mut field_older_than = Vec::new();
    let when = match reader::table(sink, table, "when") {
        Some((t, _)) => {
            if let Some(d) = reader::string(sink, t, "in_status_for") {
                in_status_for = duration(sink, &d);
            }
            if let Some((ages, _)) = reader::table(sink, t, "field_older_than") {
                for (field, age) in entries(ages) {
                    match age.get_ref() {
                        DeValue::String(text) => {
                            let text = toml::Spanned::new(age.span(), text.to_string());
                            if let Some(d) = duration(sink, &text) {
                                field_older_than.push((field.get_ref().to_string(), d));
                            }
                        }
                        _ => reader::wrong_type(
                            sink,
                            field.get_ref(),
                            age,
                            "a duration, e.g. \"1d\"",
                        ),
                    }
                }
            }
            when::value_when(sink, t, &["in_status_for", "field_older_than"], None)
        }
        None => Default::default(),
    };
    let mut vars = event_vars(loaded, None, &when);
    vars.extend(field_older_than.iter().map(|(f, _)| f.clone()));
    let scope = Scope {
        owner: Owner::Event,
        vars: &vars,
        tables: &loaded.analytics,
        statuses: &loaded.statuses,
        fields: &loaded.fields,
        literals: &[],
    };
    let actions = do_actions(sink, table, span, &scope);
    if sink.error_count() != before {
        return None;
    }
    Some(Schedule {
        name,
        every: every?,
        when,
        in_status_for,
        field_older_than,
        actions,
    })
}

fn duration(sink: &mut Sink, text: &toml::Spanned<String>) -> Option<std::time::Duration> {
    match crate::config::parse_duration(text.get_ref()) {
        Ok(d) if !d.is_zero() => Some(d),
        Ok(_) => {
            sink.error(&text.span(), "the duration must be longer than zero");
            None
        }
        Err(e) => {
            sink.error(&text.span(), e);
            None
        }
    }
}
