//! The names and values a trigger's or schedule's `when` tests, checked against the
//! declarations: a field name one or two edits from a declared one, and a value a choice field
//! or column can never hold. Either way the condition would never hold, and nothing would say
//! why.

use toml::de::DeValue;

use super::action::{check_choice, check_field_name};
use super::reader::{entries, Sink, Value};
use crate::rules::model::{AnalyticsDecl, FieldDecl, FieldType};

/// What the names of a `when` are.
#[derive(Clone, Copy)]
pub enum Names<'a> {
    /// The task's fields (and the event's own names: `status`, `old`, …).
    Fields(&'a [FieldDecl]),
    /// The columns of an analytics row of this declared table.
    Columns(&'a AnalyticsDecl),
}

/// Names that are the event's or the schedule's, not fields.
const OWN: [&str; 6] = [
    "status",
    "old_status",
    "old",
    "new",
    "field",
    "in_status_for",
];

/// Checks every name and choice value of a `when`, at any depth (`any`, `all`, `not`).
pub fn check_when(sink: &mut Sink, when: &Value, names: Names) {
    match when.get_ref() {
        DeValue::Table(table) => {
            for (key, value) in entries(table) {
                let name: &str = key.get_ref();
                match (name, names) {
                    ("any" | "all" | "not", _) => check_when(sink, value, names),
                    ("field_older_than", Names::Fields(fields)) => {
                        if let DeValue::Table(ages) = value.get_ref() {
                            for (field, _) in entries(ages) {
                                check_field_name(sink, field, fields);
                            }
                        }
                    }
                    (own, Names::Fields(_)) if OWN.contains(&own) => {}
                    (_, Names::Fields(fields)) => {
                        check_field_name(sink, key, fields);
                        let choice = fields
                            .iter()
                            .find(|f| f.name == name && f.kind == FieldType::Choice);
                        if let Some(f) = choice {
                            let what = format!("field \"{}\"", f.name);
                            check_values(sink, value, &what, &f.values);
                        }
                    }
                    // Unknown columns are reported where the row's `when` is read.
                    (_, Names::Columns(decl)) => {
                        if let Some(allowed) = decl.choice(name) {
                            let what = format!("column \"{name}\"");
                            check_values(sink, value, &what, allowed);
                        }
                    }
                }
            }
        }
        DeValue::Array(items) => {
            for item in items.iter() {
                check_when(sink, item, names);
            }
        }
        _ => {}
    }
}

/// The literal values of one condition (`"X"`, `{ is = "X" }`, `{ any = ["X", "Y"] }`,
/// `{ not = … }`); patterns (`contains`, `regex`) may match part of a value and are left alone.
fn check_values(sink: &mut Sink, value: &Value, what: &str, allowed: &[String]) {
    match value.get_ref() {
        DeValue::String(text) => {
            check_choice(sink, &value.span(), text, what, allowed, "value");
        }
        DeValue::Array(items) => {
            for item in items.iter() {
                check_values(sink, item, what, allowed);
            }
        }
        DeValue::Table(table) => {
            for (key, inner) in entries(table) {
                if matches!(key.get_ref().as_ref(), "is" | "any" | "not") {
                    check_values(sink, inner, what, allowed);
                }
            }
        }
        _ => {}
    }
}
