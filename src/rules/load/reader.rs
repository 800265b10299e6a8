//! Reading spanned TOML (`toml::de::DeTable`) with positioned errors: typed getters, unknown
//! keys with "did you mean", and the error sink every loader writes to.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use regex::Regex;
use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

use crate::rules::error::{unknown_word, RuleError};

pub type Span = Range<usize>;
pub type Value<'i> = Spanned<DeValue<'i>>;

/// Collects errors for one file; knows which named item (rule, trigger, …) is being read.
pub struct Sink<'s> {
    pub file: &'s Path,
    pub src: &'s str,
    /// Line starts of `src`, for the positions of errors and names.
    pub lines: &'s crate::text::LineIndex<'s>,
    pub errors: &'s mut Vec<RuleError>,
    /// The regexes compiled so far, by pattern: rules repeat labels (`Email:`, `Сумма:`), and a
    /// thousand rules should not compile and hold a thousand copies of the same automaton.
    pub regexes: &'s mut HashMap<String, Regex>,
    pub kind: &'static str,
    pub item: Option<String>,
}

impl Sink<'_> {
    pub fn error(&mut self, span: &Span, message: impl Into<String>) {
        let (line, column) = self.lines.line_col(span.start);
        self.errors.push(RuleError {
            file: self.file.to_path_buf(),
            line,
            column,
            kind: if self.item.is_some() { self.kind } else { "" },
            rule: self.item.clone(),
            // One error per line, whatever the message quotes.
            message: crate::text::single_line(&message.into()),
        });
    }

    /// The position of `needle` inside the source text of `span`, for errors about a part of a
    /// string (a variable in a template); the span's start when it cannot be found.
    pub fn span_of(&self, span: &Span, needle: &str) -> Span {
        let text = self.src.get(span.clone()).unwrap_or("");
        match text.find(needle) {
            Some(i) => span.start + i..span.start + i + needle.len(),
            None => span.clone(),
        }
    }

    pub fn error_count(&self) -> usize {
        self.errors.len()
    }
}

/// The entries of a table in source order (the parser's map is ordered by key).
pub fn entries<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Spanned<DeString<'i>>, &'t Value<'i>)> {
    let mut out: Vec<_> = table.iter().collect();
    out.sort_by_key(|(k, _)| k.span().start);
    out
}

/// Reports every key of `table` that is not in `known`.
pub fn check_keys(sink: &mut Sink, table: &DeTable, known: &[&str]) {
    for (key, _) in entries(table) {
        if !known.contains(&key.get_ref().as_ref()) {
            sink.error(&key.span(), unknown_word("key", key.get_ref(), known));
        }
    }
}

pub fn type_name(value: &DeValue) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

pub fn wrong_type(sink: &mut Sink, key: &str, value: &Value, expected: &str) {
    sink.error(
        &value.span(),
        format!(
            "`{key}` must be {expected}, not {}",
            type_name(value.get_ref())
        ),
    );
}

pub fn get<'t, 'i>(table: &'t DeTable<'i>, key: &str) -> Option<&'t Value<'i>> {
    table.get(key)
}

/// A string value (reports a type error and returns `None` for anything else).
pub fn string(sink: &mut Sink, table: &DeTable, key: &str) -> Option<Spanned<String>> {
    let value = get(table, key)?;
    match value.get_ref() {
        DeValue::String(s) => Some(Spanned::new(value.span(), s.to_string())),
        _ => {
            wrong_type(sink, key, value, "a string");
            None
        }
    }
}

pub fn boolean(sink: &mut Sink, table: &DeTable, key: &str) -> Option<bool> {
    let value = get(table, key)?;
    match value.get_ref() {
        DeValue::Boolean(b) => Some(*b),
        _ => {
            wrong_type(sink, key, value, "true or false");
            None
        }
    }
}

pub fn integer(sink: &mut Sink, table: &DeTable, key: &str) -> Option<i64> {
    let value = get(table, key)?;
    match value.get_ref() {
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Some(n),
            Err(_) => {
                sink.error(&value.span(), format!("`{key}` is too large"));
                None
            }
        },
        _ => {
            wrong_type(sink, key, value, "an integer");
            None
        }
    }
}

pub fn table<'t, 'i>(
    sink: &mut Sink,
    parent: &'t DeTable<'i>,
    key: &str,
) -> Option<(&'t DeTable<'i>, Span)> {
    let value = get(parent, key)?;
    match value.get_ref() {
        DeValue::Table(t) => Some((t, value.span())),
        _ => {
            wrong_type(sink, key, value, "a table");
            None
        }
    }
}

/// A string or an array of strings (`mailbox = "a"` or `mailbox = ["a", "b"]`).
pub fn strings(sink: &mut Sink, table: &DeTable, key: &str) -> Option<Vec<Spanned<String>>> {
    let value = get(table, key)?;
    string_list(sink, key, value)
}

pub fn string_list(sink: &mut Sink, key: &str, value: &Value) -> Option<Vec<Spanned<String>>> {
    match value.get_ref() {
        DeValue::String(s) => Some(vec![Spanned::new(value.span(), s.to_string())]),
        DeValue::Array(items) => {
            let mut out = Vec::new();
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(s) => out.push(Spanned::new(item.span(), s.to_string())),
                    _ => wrong_type(sink, key, item, "a string"),
                }
            }
            Some(out)
        }
        _ => {
            wrong_type(sink, key, value, "a string or an array of strings");
            None
        }
    }
}

/// The tables of an array of tables (`[[rule.do]]`, or `do = [{…}, {…}]`, or one `{…}`).
pub fn tables<'t, 'i>(
    sink: &mut Sink,
    key: &str,
    value: &'t Value<'i>,
) -> Vec<(&'t DeTable<'i>, Span)> {
    match value.get_ref() {
        DeValue::Table(t) => vec![(t, value.span())],
        DeValue::Array(items) => {
            let mut out = Vec::new();
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::Table(t) => out.push((t, item.span())),
                    _ => wrong_type(sink, key, item, "a table"),
                }
            }
            out
        }
        _ => {
            wrong_type(sink, key, value, "an array of tables");
            Vec::new()
        }
    }
}

/// A required string: reports "missing" at `at` when it is absent.
pub fn required_string(
    sink: &mut Sink,
    table: &DeTable,
    key: &str,
    at: &Span,
    what: &str,
) -> Option<Spanned<String>> {
    if get(table, key).is_none() {
        sink.error(at, format!("missing `{key}` ({what})"));
        return None;
    }
    string(sink, table, key)
}

/// Like [`tables`], for lists that mean nothing when empty (`do`, `any`, `all`).
pub fn some_tables<'t, 'i>(
    sink: &mut Sink,
    key: &str,
    value: &'t Value<'i>,
) -> Vec<(&'t DeTable<'i>, Span)> {
    let found = tables(sink, key, value);
    if matches!(value.get_ref(), DeValue::Array(items) if items.is_empty()) {
        sink.error(&value.span(), format!("`{key}` needs at least one table"));
    }
    found
}
