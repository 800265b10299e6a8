//! A planned action in words, for people reading `mailrules explain`: what it does, to which
//! task, and what happens when that task does not exist. Pure.

use super::{ActionKind, FieldValue, IfMissing, Piece, PlannedAction, TaskRef, Text};

/// One line per action: `rule "x": on task #1: set "Причина" to "Дорого"`.
pub fn describe(action: &PlannedAction) -> String {
    let task = task_words(&action.task);
    let what = match &action.kind {
        ActionKind::CreateTask {
            title,
            status,
            fields,
            assignee,
            parent,
            ..
        } => {
            let mut details = Vec::new();
            if let Some(status) = status {
                details.push(format!("status {}", quoted(status)));
            }
            if let Some(assignee) = assignee {
                details.push(format!("assigned to {}", quoted(assignee)));
            }
            if let Some(parent) = parent {
                details.push(format!("under task {}", quoted(parent)));
            }
            details.extend(fields.iter().map(field_words));
            let details = if details.is_empty() {
                String::new()
            } else {
                format!(" ({})", details.join(", "))
            };
            return format!(
                "rule \"{}\": create task {}{details}",
                action.rule,
                quoted(title)
            );
        }
        ActionKind::Comment { text, auto } => {
            let who = if *auto {
                "a comment"
            } else {
                "the sender's words as a comment"
            };
            format!("add {who}: {}", quoted_short(text))
        }
        ActionKind::Set { status, fields } => {
            let mut parts: Vec<String> = status
                .iter()
                .map(|s| format!("set the status to {}", quoted(s)))
                .collect();
            parts.extend(fields.iter().map(|f| format!("set {}", field_words(f))));
            if parts.is_empty() {
                "change nothing".to_string()
            } else {
                parts.join("; ")
            }
        }
        ActionKind::Analytics { table, values } => {
            let values: Vec<String> = values
                .iter()
                .map(|v| format!("\"{}\" = {}", v.name, quoted(&v.value)))
                .collect();
            format!(
                "add a row to analytics \"{table}\": {}",
                if values.is_empty() {
                    "(no values)".to_string()
                } else {
                    values.join(", ")
                }
            )
        }
        ActionKind::Reply {
            subject,
            suppressed,
            ..
        } => {
            let mut text = format!("reply to the sender, subject {}", quoted(subject));
            if let Some(reason) = suppressed {
                text.push_str(&format!(" (recorded but not sent: {reason})"));
            }
            text
        }
        ActionKind::Notify { to, subject, .. } => {
            format!("notify {}, subject {}", quoted(to), quoted(subject))
        }
        ActionKind::Webhook { to, body } => {
            // JSON escapes every control character: mail's text cannot reach the terminal raw.
            let json = serde_json::to_string(body).unwrap_or_default();
            let mut short: String = json.chars().take(120).collect();
            if short.len() < json.len() {
                short.push('…');
            }
            return format!(
                "rule \"{}\": send to webhook \"{}\" the JSON {short} ({{task}}: {task}, \
                 empty when there is none)",
                action.rule,
                crate::text::single_line(to)
            );
        }
        ActionKind::Assign { assignee } => match assignee {
            Some(person) => format!("assign it to {}", crate::text::single_line(person)),
            None => "leave it unassigned".to_string(),
        },
        ActionKind::Ignore => return format!("rule \"{}\": ignore the message", action.rule),
    };
    let missing = match action.if_missing {
        IfMissing::Fail => "the message fails",
        IfMissing::Skip => "this action is skipped",
        IfMissing::Create => "a task is created",
    };
    format!(
        "rule \"{}\": on {task}: {what} (if there is no such task, {missing})",
        action.rule
    )
}

fn task_words(task: &TaskRef) -> String {
    match task {
        TaskRef::Current => "the message's task".to_string(),
        TaskRef::Number(n) => format!("task #{n}"),
        TaskRef::Field { field, value } => {
            format!("the latest task whose \"{field}\" is \"{value}\"")
        }
    }
}

fn field_words(field: &FieldValue) -> String {
    format!("\"{}\" to {}", field.name, quoted(&field.value))
}

/// The text in quotes, `{task}` standing where the task's number will go.
fn quoted(text: &Text) -> String {
    format!("\"{}\"", template(text))
}

/// Like [`quoted`], cut after 60 characters on one line.
fn quoted_short(text: &Text) -> String {
    let whole = template(text);
    let mut short: String = whole.chars().take(60).collect();
    if short.len() < whole.len() {
        short.push('…');
    }
    format!("\"{short}\"")
}

/// The text with `{task}` in its place, on one line: values come from mail, and a control
/// character or escape sequence must not reach the reader's terminal.
fn template(text: &Text) -> String {
    let whole: String = text
        .0
        .iter()
        .map(|piece| match piece {
            Piece::Literal(s) => s.as_str(),
            Piece::Task => "{task}",
        })
        .collect();
    crate::text::single_line(&whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(kind: ActionKind, task: TaskRef, if_missing: IfMissing) -> PlannedAction {
        PlannedAction {
            rule: "refusal-survey".into(),
            kind,
            task,
            if_missing,
        }
    }

    #[test]
    fn actions_read_as_sentences() {
        let set = action(
            ActionKind::Set {
                status: None,
                fields: vec![FieldValue {
                    name: "Причина отказа".into(),
                    value: Text::literal("Дорого"),
                }],
            },
            TaskRef::Number(1),
            IfMissing::Fail,
        );
        assert_eq!(
            describe(&set),
            "rule \"refusal-survey\": on task #1: set \"Причина отказа\" to \"Дорого\" (if there \
             is no such task, the message fails)"
        );
        let create = action(
            ActionKind::CreateTask {
                title: Text(vec![Piece::Literal("Заказ ".into()), Piece::Task]),
                description: Text::literal(""),
                status: Some(Text::literal("Новая")),
                fields: Vec::new(),
                assignee: None,
                parent: None,
            },
            TaskRef::Current,
            IfMissing::Fail,
        );
        assert_eq!(
            describe(&create),
            "rule \"refusal-survey\": create task \"Заказ {task}\" (status \"Новая\")"
        );
        let reply = action(
            ActionKind::Reply {
                subject: Text::literal("Re: x"),
                text: Text::literal("y"),
                suppressed: Some("the sender is a robot (Auto-Submitted)".into()),
            },
            TaskRef::Current,
            IfMissing::Skip,
        );
        assert!(describe(&reply).contains(
            "reply to the sender, subject \"Re: x\" (recorded but not sent: the sender is a robot"
        ));
        assert!(describe(&reply).ends_with("this action is skipped)"));
        let comment = action(
            ActionKind::Comment {
                text: Text::literal("x".repeat(80)),
                auto: false,
            },
            TaskRef::Field {
                field: "Номер заказа".into(),
                value: "42".into(),
            },
            IfMissing::Create,
        );
        let words = describe(&comment);
        assert!(words.contains("the latest task whose \"Номер заказа\" is \"42\""));
        assert!(
            words.contains(&format!("\"{}…\"", "x".repeat(60))),
            "{words}"
        );
        let hostile = action(
            ActionKind::Analytics {
                table: "t".into(),
                values: vec![FieldValue {
                    name: "v".into(),
                    value: Text::literal("a\u{1b}[2Jb"),
                }],
            },
            TaskRef::Current,
            IfMissing::Fail,
        );
        assert!(
            describe(&hostile).contains("\"v\" = \"a [2Jb\""),
            "{}",
            describe(&hostile)
        );
    }

    #[test]
    fn a_webhook_reads_as_its_json_with_mail_text_escaped() {
        let webhook = action(
            ActionKind::Webhook {
                to: "tracker".into(),
                body: super::super::JsonText::Table(vec![
                    (
                        "title".into(),
                        super::super::JsonText::Text(Text::literal("Заказ\u{1b}[2J")),
                    ),
                    (
                        "task".into(),
                        super::super::JsonText::Text(Text(vec![Piece::Task])),
                    ),
                    ("n".into(), super::super::JsonText::Value(3.into())),
                ]),
            },
            TaskRef::Current,
            IfMissing::Fail,
        );
        assert_eq!(
            describe(&webhook),
            "rule \"refusal-survey\": send to webhook \"tracker\" the JSON \
             {\"title\":\"Заказ\\u001b[2J\",\"task\":\"{task}\",\"n\":3} ({task}: the \
             message's task, empty when there is none)"
        );
    }
}
