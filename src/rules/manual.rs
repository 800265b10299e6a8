//! A person's change to a task (`task set`, `task comment`, `task close`), checked against the
//! rules' declarations exactly as a rule's actions are (declared statuses, typed and choice
//! fields, values stored in their declared spelling) and turned into planned actions that the
//! store runs like a message's. Pure: the store checks the task exists.

use super::convert::convert;
use super::model::{FieldType, ValueType};
use super::RuleSet;
use crate::outgoing::bare_address;
use crate::plan::{ActionKind, FieldValue, IfMissing, PlannedAction, TaskRef, Text};

/// What a person asks to change on one task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManualChange {
    pub status: Option<String>,
    /// `Some("none")` (any case) takes the assignee off; otherwise an address.
    pub assignee: Option<String>,
    /// `NAME=VALUE` pairs, in the order given; an empty value clears the field.
    pub fields: Vec<(String, String)>,
    /// An internal note.
    pub comment: Option<String>,
    /// `task close`: the first `closed = true` status.
    pub close: bool,
}

/// Why a person's change is refused, worded with what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefused {
    #[error("unknown status \"{given}\"{hint}; the statuses are: {allowed}")]
    UnknownStatus {
        given: String,
        hint: String,
        allowed: String,
    },
    #[error("no status is declared `closed = true` in the rules: declare one ([[status]] with closed = true) to close tasks")]
    NoClosedStatus,
    #[error("assignee \"{0}\" is not an email address; give an address, or \"none\" to take the assignee off")]
    BadAssignee(String),
    #[error("unknown field \"{given}\"{hint}; the fields are: {allowed}")]
    UnknownField {
        given: String,
        hint: String,
        allowed: String,
    },
    #[error("field \"{name}\": \"{value}\" is not one of its values ({allowed})")]
    NotAChoice {
        name: String,
        value: String,
        allowed: String,
    },
    #[error("field \"{name}\": {message}")]
    BadValue { name: String, message: String },
    #[error("the comment is empty")]
    EmptyComment,
    #[error("nothing to change: give --status, --assignee or --field NAME=VALUE")]
    Nothing,
}

impl RuleSet {
    /// The actions a person's change takes on `task`, by `person` (the author recorded).
    pub fn plan_change(
        &self,
        task: i64,
        person: &str,
        change: &ManualChange,
    ) -> Result<Vec<PlannedAction>, ChangeRefused> {
        let action = |kind| PlannedAction {
            rule: person.to_string(),
            kind,
            task: TaskRef::Number(task),
            if_missing: IfMissing::Fail,
        };
        let mut actions = Vec::new();
        let status = match (&change.status, change.close) {
            (_, true) => Some(self.closed_status()?.to_string()),
            (Some(status), false) => Some(self.declared_status(status)?),
            (None, false) => None,
        };
        let mut fields = Vec::new();
        for (name, value) in &change.fields {
            fields.push(FieldValue {
                name: self.manual_field_name(name)?,
                value: Text::literal(self.manual_field_value(name, value)?),
            });
        }
        if status.is_some() || !fields.is_empty() {
            actions.push(action(ActionKind::Set {
                status: status.map(Text::literal),
                fields,
            }));
        }
        if let Some(assignee) = &change.assignee {
            let assignee = assignee.trim();
            let assignee = if assignee.eq_ignore_ascii_case("none") {
                None
            } else {
                Some(
                    bare_address(assignee)
                        .ok_or_else(|| ChangeRefused::BadAssignee(assignee.to_string()))?,
                )
            };
            actions.push(action(ActionKind::Assign { assignee }));
        }
        if let Some(text) = &change.comment {
            if text.trim().is_empty() {
                return Err(ChangeRefused::EmptyComment);
            }
            actions.push(action(ActionKind::Comment {
                text: Text::literal(text.clone()),
                auto: false,
            }));
        }
        if actions.is_empty() {
            return Err(ChangeRefused::Nothing);
        }
        Ok(actions)
    }

    /// The first status declared `closed = true`.
    pub fn closed_status(&self) -> Result<&str, ChangeRefused> {
        self.statuses()
            .iter()
            .find(|s| s.closed)
            .map(|s| s.name.as_str())
            .ok_or(ChangeRefused::NoClosedStatus)
    }

    /// The statuses declared `closed = true` (none: every task is open).
    pub fn closed_statuses(&self) -> Vec<String> {
        self.statuses()
            .iter()
            .filter(|s| s.closed)
            .map(|s| s.name.clone())
            .collect()
    }

    /// A field and value a person names (`task list --field`), as they are stored.
    pub fn declared_field(
        &self,
        name: &str,
        value: &str,
    ) -> Result<(String, String), ChangeRefused> {
        Ok((
            self.manual_field_name(name)?,
            self.manual_field_value(name, value)?,
        ))
    }

    /// A status a person names, in its declared spelling.
    pub fn declared_status(&self, given: &str) -> Result<String, ChangeRefused> {
        let given = given.trim();
        match self.status_named(given) {
            Ok(name) if !name.trim().is_empty() => Ok(name.trim().to_string()),
            Ok(_) => Err(ChangeRefused::UnknownStatus {
                given: given.to_string(),
                hint: String::new(),
                allowed: "any text (no [[status]] is declared)".into(),
            }),
            Err(nearest) => Err(ChangeRefused::UnknownStatus {
                given: given.to_string(),
                hint: nearest
                    .map(|n| format!(" (did you mean \"{n}\"?)"))
                    .unwrap_or_default(),
                allowed: list(self.statuses().iter().map(|s| s.name.as_str())),
            }),
        }
    }

    /// A field a person names: a declared one in its declared spelling; any name when the
    /// rules declare no field at all (as rules may set undeclared fields).
    fn manual_field_name(&self, given: &str) -> Result<String, ChangeRefused> {
        let given = given.trim();
        if self.fields().is_empty() {
            return Ok(given.to_string());
        }
        let wanted = given.to_lowercase();
        if let Some(f) = self
            .fields()
            .iter()
            .find(|f| f.name.to_lowercase() == wanted)
        {
            return Ok(f.name.clone());
        }
        let names: Vec<&str> = self.fields().iter().map(|f| f.name.as_str()).collect();
        Err(ChangeRefused::UnknownField {
            given: given.to_string(),
            hint: super::error::nearest(given, &names)
                .map(|n| format!(" (did you mean \"{n}\"?)"))
                .unwrap_or_default(),
            allowed: list(names.into_iter()),
        })
    }

    /// A field's value checked like a rule's: a choice in its declared spelling, a typed value
    /// in its canonical text; empty clears the field.
    fn manual_field_value(&self, name: &str, value: &str) -> Result<String, ChangeRefused> {
        let value = value.trim();
        let wanted = name.trim().to_lowercase();
        let decl = self
            .fields()
            .iter()
            .find(|f| f.name.to_lowercase() == wanted);
        if value.is_empty() {
            return Ok(String::new());
        }
        match decl.map(|d| (d.kind, &d.values)) {
            None | Some((FieldType::Value(ValueType::Text), _)) => Ok(value.to_string()),
            Some((FieldType::Choice, allowed)) => {
                let lower = value.to_lowercase();
                allowed
                    .iter()
                    .find(|v| v.trim().to_lowercase() == lower)
                    .cloned()
                    .ok_or_else(|| ChangeRefused::NotAChoice {
                        name: decl.map(|d| d.name.clone()).unwrap_or_default(),
                        value: value.to_string(),
                        allowed: list(allowed.iter().map(String::as_str)),
                    })
            }
            Some((FieldType::Value(kind), _)) => {
                convert(kind, value).map_err(|message| ChangeRefused::BadValue {
                    name: decl.map(|d| d.name.clone()).unwrap_or_default(),
                    message,
                })
            }
        }
    }
}

/// `"a", "b", "c"`.
fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const RULES: &str = r#"
[[status]]
name = "Новая"
initial = true
[[status]]
name = "Завершенная"
closed = true
[[field]]
name = "Причина отказа"
type = "choice"
values = ["Дорого", "Другое"]
[[field]]
name = "Дата отказа"
type = "date"
"#;

    fn rules() -> RuleSet {
        RuleSet::from_sources(&[(PathBuf::from("s.toml"), RULES.to_string())]).unwrap()
    }

    fn set(status: Option<&str>, fields: &[(&str, &str)]) -> ManualChange {
        ManualChange {
            status: status.map(str::to_string),
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            ..ManualChange::default()
        }
    }

    #[test]
    fn values_are_stored_in_their_declared_spelling() {
        let actions = rules()
            .plan_change(
                3,
                "anna@acme.example",
                &set(
                    Some("завершенная"),
                    &[("причина отказа", "ДОРОГО"), ("Дата отказа", "21.11.2026")],
                ),
            )
            .unwrap();
        let ActionKind::Set { status, fields } = &actions[0].kind else {
            panic!("{actions:?}");
        };
        assert_eq!(status.as_ref().unwrap().render(None), "Завершенная");
        assert_eq!(fields[0].name, "Причина отказа");
        assert_eq!(fields[0].value.render(None), "Дорого");
        assert_eq!(fields[1].value.render(None), "2026-11-21");
        assert_eq!(actions[0].task, TaskRef::Number(3));
    }

    #[test]
    fn bad_input_names_what_is_allowed() {
        let r = rules();
        let err = r
            .plan_change(1, "a@b.c", &set(Some("Завершена"), &[]))
            .unwrap_err();
        assert!(
            err.to_string().contains("did you mean \"Завершенная\""),
            "{err}"
        );
        assert!(
            err.to_string().contains("\"Новая\", \"Завершенная\""),
            "{err}"
        );
        let err = r
            .plan_change(1, "a@b.c", &set(None, &[("Причина отказа", "Скучно")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("(\"Дорого\", \"Другое\")"),
            "{err}"
        );
        let err = r
            .plan_change(1, "a@b.c", &set(None, &[("Цвет", "синий")]))
            .unwrap_err();
        assert!(err.to_string().contains("the fields are"), "{err}");
        let assign = ManualChange {
            assignee: Some("anna".into()),
            ..ManualChange::default()
        };
        let err = r.plan_change(1, "a@b.c", &assign).unwrap_err();
        assert!(err.to_string().contains("\"none\""), "{err}");
        let err = r
            .plan_change(1, "a@b.c", &ManualChange::default())
            .unwrap_err();
        assert_eq!(err, ChangeRefused::Nothing);
    }

    #[test]
    fn close_needs_a_closed_status() {
        let close = ManualChange {
            close: true,
            ..ManualChange::default()
        };
        let actions = rules().plan_change(1, "a@b.c", &close).unwrap();
        assert!(
            matches!(&actions[0].kind, ActionKind::Set { status: Some(s), .. }
            if s.render(None) == "Завершенная")
        );
        let bare = RuleSet::from_sources(&[]).unwrap();
        assert_eq!(
            bare.plan_change(1, "a@b.c", &close).unwrap_err(),
            ChangeRefused::NoClosedStatus
        );
    }
}
