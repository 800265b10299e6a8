//! A rule test's expectation file (`NAME.toml`): reading it (unknown keys are errors at their
//! line and column), comparing it with what happened field by field, and writing it from what
//! happened (`--bless`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::text::quoted;

/// What must happen when the test's message arrives. Keys left out are not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The rule that matched; `""` for none.
    pub rule: Option<String>,
    pub status: Option<Fate>,
    pub task: Option<ExpectedTask>,
    /// Every mail the message queued, in order (`outbox = []`: none).
    pub outbox: Option<Vec<ExpectedMail>>,
}

/// A message's fate, as `mailrules message list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fate {
    Applied,
    Ignored,
    Failed,
    /// An earlier test of the folder delivered the same message (its Message-ID): nothing
    /// changed. Expected on purpose to show that a message delivered again is harmless.
    Duplicate,
}

impl Fate {
    pub fn name(self) -> &'static str {
        match self {
            Fate::Applied => "applied",
            Fate::Ignored => "ignored",
            Fate::Failed => "failed",
            Fate::Duplicate => "duplicate",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedTask {
    pub title: Option<String>,
    pub status: Option<String>,
    /// Only the fields named here are checked; `""` means the field has no value.
    pub fields: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedMail {
    /// `reply` or `notify`.
    pub kind: Option<String>,
    pub to: Option<String>,
    pub subject_contains: Option<String>,
}

/// What happened to one message in the test's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actual {
    pub rule: String,
    /// `applied`, `ignored`, `failed` (or `duplicate`: the folder holds it twice).
    pub status: &'static str,
    pub error: Option<String>,
    pub task: Option<ActualTask>,
    /// The mail it queued, in order; replies the RFC 3834 guard suppressed are not mail.
    pub outbox: Vec<ActualMail>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualTask {
    pub id: i64,
    pub title: String,
    pub status: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualMail {
    pub kind: String,
    pub to: String,
    pub subject: String,
}

/// Why an expectation file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ExpectationError {
    #[error("{}: cannot read: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: cannot write: {message}", path.display())]
    Write { path: PathBuf, message: String },
}

/// Reads an expectation file; an unknown key or a wrong value is an error at its position.
pub fn read(path: &Path) -> Result<Expectation, ExpectationError> {
    let text = std::fs::read_to_string(path).map_err(|e| ExpectationError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    parse(&text, path)
}

pub fn parse(text: &str, path: &Path) -> Result<Expectation, ExpectationError> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| crate::text::line_col(text, s.start))
            .unwrap_or((1, 1));
        ExpectationError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            // toml's message can span lines (it quotes the source); its first line says it.
            message: e.message().trim().to_string(),
        }
    })
}

/// One difference between the expectation and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Which value: `status`, `task.fields."Причина"`, `outbox[1].to`.
    pub what: String,
    pub expected: String,
    pub got: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.what, self.expected, self.got
        )
    }
}

/// Every difference, in the order of the file's keys.
pub fn compare(expected: &Expectation, actual: &Actual) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut differ = |what: String, expected: String, got: String| {
        out.push(Mismatch {
            what,
            expected,
            got,
        })
    };
    if let Some(rule) = &expected.rule {
        if *rule != actual.rule {
            differ("rule".into(), quoted(rule), quoted(&actual.rule));
        }
    }
    if let Some(status) = expected.status {
        if status.name() != actual.status {
            let mut got = quoted(actual.status);
            if let Some(error) = &actual.error {
                got.push_str(&format!(" ({error})"));
            }
            differ("status".into(), quoted(status.name()), got);
        }
    }
    if let Some(task) = &expected.task {
        match &actual.task {
            None => differ("task".into(), "a task".into(), "none".into()),
            Some(got) => {
                if let Some(title) = &task.title {
                    if *title != got.title {
                        differ("task.title".into(), quoted(title), quoted(&got.title));
                    }
                }
                if let Some(status) = &task.status {
                    if *status != got.status {
                        differ("task.status".into(), quoted(status), quoted(&got.status));
                    }
                }
                for (name, value) in task.fields.iter().flatten() {
                    let actual = got.fields.get(name).map_or("", String::as_str);
                    if value != actual {
                        let what = format!("task.fields.{}", quoted(name));
                        differ(what, value_or_none(value), value_or_none(actual));
                    }
                }
            }
        }
    }
    if let Some(mails) = &expected.outbox {
        if mails.len() != actual.outbox.len() {
            differ(
                "outbox".into(),
                mail_count(mails.len()),
                mail_count(actual.outbox.len()),
            );
        }
        for (i, (want, got)) in mails.iter().zip(&actual.outbox).enumerate() {
            let at = |key: &str| format!("outbox[{}].{key}", i + 1);
            if let Some(kind) = &want.kind {
                if *kind != got.kind {
                    differ(at("kind"), quoted(kind), quoted(&got.kind));
                }
            }
            if let Some(to) = &want.to {
                if !to.eq_ignore_ascii_case(&got.to) {
                    differ(at("to"), quoted(to), quoted(&got.to));
                }
            }
            if let Some(part) = &want.subject_contains {
                if !got.subject.contains(part.as_str()) {
                    let expected = format!("a subject containing {}", quoted(part));
                    differ(at("subject_contains"), expected, quoted(&got.subject));
                }
            }
        }
    }
    out
}

fn mail_count(n: usize) -> String {
    match n {
        1 => "1 mail".to_string(),
        n => format!("{n} mails"),
    }
}

fn value_or_none(value: &str) -> String {
    if value.is_empty() {
        "no value".to_string()
    } else {
        quoted(value)
    }
}

/// The expectation file for what happened: every key `compare` checks.
pub fn bless(actual: &Actual) -> String {
    let mut out = String::from(
        "# Written by `mailrules test --bless` from what happened: check that it is what\n\
         # should happen. Keys left out are not checked.\n",
    );
    let _ = writeln!(out, "rule = {}", quoted(&actual.rule));
    let _ = writeln!(out, "status = {}", quoted(actual.status));
    if let Some(error) = &actual.error {
        for line in error.lines() {
            let _ = writeln!(out, "# error: {line}");
        }
    }
    if actual.outbox.is_empty() {
        out.push_str("outbox = []\n");
    }
    if let Some(task) = &actual.task {
        out.push_str("\n[task]\n");
        let _ = writeln!(out, "title = {}", quoted(&task.title));
        let _ = writeln!(out, "status = {}", quoted(&task.status));
        let fields: Vec<String> = task
            .fields
            .iter()
            .map(|(name, value)| format!("{} = {}", quoted(name), quoted(value)))
            .collect();
        if fields.is_empty() {
            out.push_str("fields = {}\n");
        } else {
            let _ = writeln!(out, "fields = {{ {} }}", fields.join(", "));
        }
    }
    for mail in &actual.outbox {
        out.push_str("\n[[outbox]]\n");
        let _ = writeln!(out, "kind = {}", quoted(&mail.kind));
        let _ = writeln!(out, "to = {}", quoted(&mail.to));
        let _ = writeln!(out, "subject_contains = {}", quoted(&mail.subject));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actual() -> Actual {
        Actual {
            rule: "refusal-survey".into(),
            status: "applied",
            error: None,
            task: Some(ActualTask {
                id: 1,
                title: "Не работает \"выгрузка\"".into(),
                status: "Новая".into(),
                fields: BTreeMap::from([("Причина отказа".into(), "Дорого".into())]),
            }),
            outbox: vec![ActualMail {
                kind: "reply".into(),
                to: "ivan@client.example".into(),
                subject: "Re: [#1] Принято".into(),
            }],
        }
    }

    #[test]
    fn a_blessed_file_reads_back_and_matches_what_happened() {
        let text = bless(&actual());
        let expected = parse(&text, Path::new("t.toml")).unwrap();
        assert_eq!(compare(&expected, &actual()), vec![]);
        assert_eq!(expected.rule.as_deref(), Some("refusal-survey"));
        assert_eq!(expected.outbox.as_ref().map(Vec::len), Some(1));
        let mut none = actual();
        none.outbox.clear();
        none.task = None;
        let expected = parse(&bless(&none), Path::new("t.toml")).unwrap();
        assert_eq!(expected.outbox, Some(vec![]));
        assert_eq!(compare(&expected, &none), vec![]);
        assert_eq!(compare(&expected, &actual())[0].what, "outbox");
    }

    #[test]
    fn differences_are_shown_field_by_field() {
        let text = "status = \"ignored\"\n[task]\nstatus = \"Отмененная\"\n\
                    fields = { \"Причина отказа\" = \"Другое\", \"Дата\" = \"\" }\n\
                    [[outbox]]\nsubject_contains = \"[#2]\"\n";
        let expected = parse(text, Path::new("t.toml")).unwrap();
        let lines: Vec<String> = compare(&expected, &actual())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "status: expected \"ignored\", got \"applied\"",
                "task.status: expected \"Отмененная\", got \"Новая\"",
                "task.fields.\"Причина отказа\": expected \"Другое\", got \"Дорого\"",
                "outbox[1].subject_contains: expected a subject containing \"[#2]\", \
                 got \"Re: [#1] Принято\"",
            ]
        );
    }

    #[test]
    fn an_unknown_key_is_an_error_at_its_line_and_column() {
        let text = "rule = \"x\"\n[task]\n  stauts = \"Новая\"\n";
        let error = parse(text, Path::new("tests/a.toml")).unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("tests/a.toml:3:3: "), "{message}");
        assert!(message.contains("stauts"), "{message}");
        let error = parse("status = \"done\"\n", Path::new("a.toml")).unwrap_err();
        assert!(error.to_string().starts_with("a.toml:1:10: "), "{error}");
    }
}
