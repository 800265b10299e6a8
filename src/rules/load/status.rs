//! `[[status]]`: the declared statuses, and every status a rule, trigger or schedule names
//! checked against them (with a "did you mean") and put in its declared spelling. With no
//! status declared, any status text goes, as in version 1.

use toml::de::{DeTable, DeValue};

use super::reader::{self, entries, Sink, Value};
use super::Loaded;
use crate::rules::error::nearest;
use crate::rules::model::StatusDecl;
use crate::rules::template::Template;

/// Reads the `[[status]]` tables of one file.
pub fn declare(sink: &mut Sink, doc: &DeTable, loaded: &mut Loaded) {
    let Some(value) = doc.get("status") else {
        return;
    };
    for (table, span) in reader::tables(sink, "status", value) {
        sink.kind = "status";
        sink.item = None;
        reader::check_keys(sink, table, &["name", "initial", "closed"]);
        let Some(name) = reader::required_string(sink, table, "name", &span, "the status's name")
        else {
            continue;
        };
        let trimmed = name.get_ref().trim().to_string();
        if trimmed.is_empty() {
            sink.error(&name.span(), "a status needs a name");
            continue;
        }
        sink.item = Some(trimmed.clone());
        let lower = trimmed.to_lowercase();
        if let Some(first) = loaded
            .statuses
            .iter()
            .find(|s| s.name.to_lowercase() == lower)
        {
            let message = format!(
                "status \"{}\" is already declared (statuses compare without case)",
                first.name
            );
            sink.error(&name.span(), message);
            continue;
        }
        let initial = reader::boolean(sink, table, "initial").unwrap_or(false);
        let closed = reader::boolean(sink, table, "closed").unwrap_or(false);
        if initial {
            if let Some(first) = loaded.statuses.iter().find(|s| s.initial) {
                let message = format!(
                    "\"{}\" is already the initial status: at most one status is `initial = true`",
                    first.name
                );
                sink.error(&span, message);
                continue;
            }
        }
        loaded.statuses.push(StatusDecl {
            name: trimmed,
            initial,
            closed,
        });
    }
}

/// The status of an action (`set`, `create_task`) in its declared spelling; an unknown one is
/// an error at `key`'s value. A status with variables is left as written.
pub fn action_status(
    sink: &mut Sink,
    table: &DeTable,
    status: Option<Template>,
    statuses: &[StatusDecl],
) -> Option<Template> {
    let template = status?;
    if statuses.is_empty() || template.vars().next().is_some() {
        return Some(template);
    }
    let value = reader::get(table, "status")?;
    let DeValue::String(text) = value.get_ref() else {
        return Some(template);
    };
    match declared(sink, &value.span(), text, statuses) {
        Some(name) => Some(Template::literal(&name)),
        None => Some(template),
    }
}

/// Checks every status a `when` names (`status`, `task_status`, `old_status`, at any depth:
/// inside `any`, `all`, `not`, and in `is`/`any` lists).
pub fn check_conditions(sink: &mut Sink, when: &Value, statuses: &[StatusDecl]) {
    if statuses.is_empty() {
        return;
    }
    match when.get_ref() {
        DeValue::Table(table) => {
            for (key, value) in entries(table) {
                if matches!(
                    key.get_ref().as_ref(),
                    "status" | "task_status" | "old_status"
                ) {
                    check_values(sink, value, statuses);
                } else {
                    check_conditions(sink, value, statuses);
                }
            }
        }
        DeValue::Array(items) => {
            for item in items.iter() {
                check_conditions(sink, item, statuses);
            }
        }
        _ => {}
    }
}

/// The strings of a status condition (`"X"`, `["X", "Y"]`, `{ any = [...] }`, `{ is = "X" }`);
/// patterns (`regex`, `contains`, globs) are not statuses and are left alone.
fn check_values(sink: &mut Sink, value: &Value, statuses: &[StatusDecl]) {
    match value.get_ref() {
        DeValue::String(text) => {
            declared(sink, &value.span(), text, statuses);
        }
        DeValue::Array(items) => {
            for item in items.iter() {
                check_values(sink, item, statuses);
            }
        }
        DeValue::Table(table) => {
            for (key, inner) in entries(table) {
                if matches!(key.get_ref().as_ref(), "is" | "any" | "not" | "equals") {
                    check_values(sink, inner, statuses);
                }
            }
        }
        _ => {}
    }
}

/// The declared spelling of `text`, or an error at `span` (with the nearest declared one).
fn declared(
    sink: &mut Sink,
    span: &reader::Span,
    text: &str,
    statuses: &[StatusDecl],
) -> Option<String> {
    let wanted = text.trim().to_lowercase();
    if let Some(s) = statuses.iter().find(|s| s.name.to_lowercase() == wanted) {
        return Some(s.name.clone());
    }
    let names: Vec<&str> = statuses.iter().map(|s| s.name.as_str()).collect();
    let message = match nearest(text.trim(), &names) {
        Some(near) => format!(
            "unknown status \"{}\", did you mean \"{near}\"?",
            text.trim()
        ),
        None => {
            let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            format!(
                "unknown status \"{}\"; the declared statuses are {}",
                text.trim(),
                list.join(", ")
            )
        }
    };
    sink.error(span, message);
    None
}
