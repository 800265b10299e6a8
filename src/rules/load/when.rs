//! Loading conditions: `[rule.when]` over a message, and the `when` of triggers and schedules
//! over named values.

use regex::{Regex, RegexBuilder};
use toml::de::{DeTable, DeValue};

use super::reader::{self, entries, Sink, Span, Value};
use crate::context::SenderKind;
use crate::rules::error::unknown_word;
use crate::rules::glob::Glob;
use crate::rules::model::{Condition, Leaf, Test, ThreadKind, ValueCondition, ValueWhen, When};

pub const WHEN_KEYS: [&str; 12] = [
    "from",
    "to",
    "subject",
    "body",
    "header",
    "has_attachment",
    "thread",
    "sender",
    "task_status",
    "any",
    "all",
    "not",
];

const TEST_KEYS: [&str; 5] = ["is", "contains", "regex", "any", "exists"];

/// A compiled regex with bounded memory (a rule file must not be able to exhaust it).
pub fn compile_regex(sink: &mut Sink, span: &Span, pattern: &str) -> Option<Regex> {
    if let Some(known) = sink.regexes.get(pattern) {
        return Some(known.clone());
    }
    match RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
    {
        Ok(r) => {
            sink.regexes.insert(pattern.to_string(), r.clone());
            Some(r)
        }
        Err(e) => {
            sink.error(span, format!("bad regex: {}", regex_error_text(&e)));
            None
        }
    }
}

/// The regex crate's message on one line (its syntax errors come as a multi-line diagram).
fn regex_error_text(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => {
            let reasons: Vec<&str> = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("error:"))
                .map(str::trim)
                .collect();
            if reasons.is_empty() {
                crate::text::single_line(text)
            } else {
                reasons.join("; ")
            }
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled regex is larger than the limit of {limit} bytes; simplify it")
        }
        other => crate::text::single_line(&other.to_string()),
    }
}

/// `[rule.when]`: every key is a condition, all must hold.
pub fn when(sink: &mut Sink, table: &DeTable) -> When {
    let mut conditions = Vec::new();
    for (key, value) in entries(table) {
        let name: &str = key.get_ref();
        let condition = match name {
            "from" | "to" => test(sink, name, value, true, false).map(|t| {
                let leaf = Leaf::new(name, t);
                if name == "from" {
                    Condition::From(leaf)
                } else {
                    Condition::To(leaf)
                }
            }),
            "subject" | "body" | "task_status" => test(sink, name, value, false, false).map(|t| {
                let leaf = Leaf::new(name, t);
                match name {
                    "subject" => Condition::Subject(leaf),
                    "body" => Condition::Body(leaf),
                    _ => Condition::TaskStatus(leaf),
                }
            }),
            "header" => {
                if let DeValue::Table(headers) = value.get_ref() {
                    for (header, cond) in entries(headers) {
                        let label = format!("header {}", header.get_ref());
                        if let Some(t) = test(sink, &label, cond, false, true) {
                            conditions.push(Condition::Header {
                                name: header.get_ref().to_string(),
                                leaf: Leaf::new(&label, t),
                            });
                        }
                    }
                } else {
                    reader::wrong_type(sink, name, value, "a table of header name = condition");
                }
                None
            }
            "has_attachment" => match value.get_ref() {
                DeValue::Boolean(b) => Some(Condition::HasAttachment(*b)),
                _ => {
                    reader::wrong_type(sink, name, value, "true or false");
                    None
                }
            },
            "thread" => word(sink, name, value, &["reply", "new"]).map(|w| {
                Condition::Thread(if w == "reply" {
                    ThreadKind::Reply
                } else {
                    ThreadKind::New
                })
            }),
            "sender" => word(sink, name, value, &["staff", "contact"]).map(|w| {
                Condition::Sender(if w == "staff" {
                    SenderKind::Staff
                } else {
                    SenderKind::Contact
                })
            }),
            "any" | "all" => {
                let branches: Vec<When> = reader::some_tables(sink, name, value)
                    .into_iter()
                    .map(|(t, _)| when(sink, t))
                    .collect();
                Some(if name == "any" {
                    Condition::Any(branches)
                } else {
                    Condition::All(branches)
                })
            }
            "not" => match value.get_ref() {
                DeValue::Table(t) => Some(Condition::Not(Box::new(when(sink, t)))),
                _ => {
                    reader::wrong_type(sink, name, value, "a table of conditions");
                    None
                }
            },
            other => {
                sink.error(&key.span(), unknown_word("condition", other, &WHEN_KEYS));
                None
            }
        };
        conditions.extend(condition);
    }
    When { conditions }
}

/// The `when` of a trigger or schedule: any key names a value; `any`/`all`/`not` combine.
/// `skip`: keys read elsewhere (`in_status_for`); `known`: when the value names are known
/// (the columns of a declared analytics table), any other name is an error.
pub fn value_when(
    sink: &mut Sink,
    table: &DeTable,
    skip: &[&str],
    known: Option<&[&str]>,
) -> ValueWhen {
    let mut conditions = Vec::new();
    for (key, value) in entries(table) {
        let name: &str = key.get_ref();
        if skip.contains(&name) {
            continue;
        }
        let condition = match name {
            "any" | "all" => {
                let branches: Vec<ValueWhen> = reader::some_tables(sink, name, value)
                    .into_iter()
                    .map(|(t, _)| value_when(sink, t, &[], known))
                    .collect();
                Some(if name == "any" {
                    ValueCondition::Any(branches)
                } else {
                    ValueCondition::All(branches)
                })
            }
            "not" => match value.get_ref() {
                DeValue::Table(t) => Some(ValueCondition::Not(Box::new(value_when(
                    sink,
                    t,
                    &[],
                    known,
                )))),
                _ => {
                    reader::wrong_type(sink, name, value, "a table of conditions");
                    None
                }
            },
            _ if known.is_some_and(|k| !k.contains(&name)) => {
                let known = known.unwrap_or_default();
                sink.error(&key.span(), unknown_word("column", name, known));
                None
            }
            _ => test(sink, name, value, false, true).map(|test| ValueCondition::Value {
                name: name.to_string(),
                test,
            }),
        };
        conditions.extend(condition);
    }
    ValueWhen { conditions }
}

/// Every value name a value `when` tests (for the variables its actions may use).
pub fn value_names(when: &ValueWhen, out: &mut Vec<String>) {
    out.extend(when.names());
}

/// One string out of a fixed list.
fn word(sink: &mut Sink, key: &str, value: &Value, allowed: &[&str]) -> Option<String> {
    match value.get_ref() {
        DeValue::String(s) if allowed.contains(&s.as_ref()) => Some(s.to_string()),
        DeValue::String(s) => {
            sink.error(
                &value.span(),
                unknown_word(&format!("{key} value"), s, allowed),
            );
            None
        }
        _ => {
            reader::wrong_type(sink, key, value, "a string");
            None
        }
    }
}

/// A condition value: a plain string (glob on address keys, else `is`) or a table with one of
/// `is`, `contains`, `regex`, `any`, `exists`.
pub fn test(
    sink: &mut Sink,
    key: &str,
    value: &Value,
    address: bool,
    allow_exists: bool,
) -> Option<Test> {
    let plain = |s: &str| {
        if address {
            Test::Glob {
                glob: Glob::new(s),
                slot: None,
            }
        } else {
            Test::Is {
                shown: s.to_string(),
                lower: s.trim().to_lowercase(),
            }
        }
    };
    let table = match value.get_ref() {
        DeValue::String(s) => return Some(plain(s)),
        DeValue::Table(t) => t,
        _ => {
            reader::wrong_type(sink, key, value, "a string or a table");
            return None;
        }
    };
    let found = entries(table);
    if found.len() != 1 {
        sink.error(
            &value.span(),
            format!("`{key}` needs exactly one of `is`, `contains`, `regex`, `any`, `exists`"),
        );
    }
    let (test_key, test_value) = *found.first()?;
    let text = |sink: &mut Sink| match test_value.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        _ => {
            reader::wrong_type(sink, test_key.get_ref(), test_value, "a string");
            None
        }
    };
    match test_key.get_ref().as_ref() {
        "is" => text(sink).map(|s| Test::Is {
            lower: s.trim().to_lowercase(),
            shown: s,
        }),
        "contains" => {
            let s = text(sink)?;
            if s.is_empty() {
                sink.error(&test_value.span(), "`contains` needs a non-empty text");
                return None;
            }
            Some(Test::Contains {
                lower: s.to_lowercase(),
                shown: s,
                slot: None,
            })
        }
        "regex" => {
            let s = text(sink)?;
            compile_regex(sink, &test_value.span(), &s)
                .map(|regex| Test::Regex { regex, slot: None })
        }
        "any" => {
            let items = reader::string_list(sink, "any", test_value)?;
            Some(Test::AnyOf(
                items.iter().map(|s| plain(s.get_ref())).collect(),
            ))
        }
        "exists" if allow_exists => match test_value.get_ref() {
            DeValue::Boolean(b) => Some(Test::Exists(*b)),
            _ => {
                reader::wrong_type(sink, "exists", test_value, "true or false");
                None
            }
        },
        "exists" => {
            sink.error(
                &test_key.span(),
                format!("`exists` applies to headers, not to `{key}`"),
            );
            None
        }
        other => {
            sink.error(&test_key.span(), unknown_word("key", other, &TEST_KEYS));
            None
        }
    }
}
