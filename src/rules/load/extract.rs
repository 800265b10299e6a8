//! Loading `[rule.extract]`: named extractors with their source, form and options.

use regex::Regex;
use toml::de::{DeTable, DeValue};

use super::action::Literal;
use super::reader::{self, entries, Sink, Span};
use super::when::compile_regex;
use crate::rules::convert::convert;
use crate::rules::error::unknown_word;
use crate::rules::model::{ExtractHow, Extractor, Source, ValueType};

const EXTRACT_KEYS: [&str; 10] = [
    "after", "between", "regex", "line", "header", "from", "type", "map", "default", "required",
];
const FORMS: [&str; 5] = ["after", "between", "regex", "line", "header"];

/// Every extractor of the table, in source order.
pub fn extractors(sink: &mut Sink, table: &DeTable) -> Vec<Extractor> {
    let mut out = Vec::new();
    for (key, value) in entries(table) {
        let name = key.get_ref().to_string();
        match value.get_ref() {
            DeValue::Table(t) => out.extend(extractor(sink, name, t, &value.span())),
            _ => reader::wrong_type(sink, &name, value, "a table such as { after = \"Label:\" }"),
        }
    }
    out
}

/// The texts the rule itself gives each extracted variable (`default`, `map` values), with
/// where they are written: a choice field set from the variable must allow them.
pub fn literals(table: &DeTable) -> Vec<Literal> {
    let mut out = Vec::new();
    for (key, value) in entries(table) {
        let DeValue::Table(t) = value.get_ref() else {
            continue;
        };
        let var = key.get_ref().to_string();
        if let Some(d) = reader::get(t, "default") {
            if let DeValue::String(text) = d.get_ref() {
                out.push(Literal {
                    var: var.clone(),
                    span: d.span(),
                    text: text.to_string(),
                    what: "default",
                });
            }
        }
        if let Some(DeValue::Table(map)) = reader::get(t, "map").map(|m| m.get_ref()) {
            for (_, v) in entries(map) {
                if let DeValue::String(text) = v.get_ref() {
                    out.push(Literal {
                        var: var.clone(),
                        span: v.span(),
                        text: text.to_string(),
                        what: "map",
                    });
                }
            }
        }
    }
    out
}

fn extractor(sink: &mut Sink, name: String, table: &DeTable, span: &Span) -> Option<Extractor> {
    reader::check_keys(sink, table, &EXTRACT_KEYS);
    let forms: Vec<&str> = FORMS
        .iter()
        .copied()
        .filter(|f| table.contains_key(*f))
        .collect();
    if forms.len() != 1 {
        sink.error(
            span,
            format!(
                "extractor `{name}` needs exactly one of `after`, `between`, `regex`, `line`, `header`"
            ),
        );
        return None;
    }
    let mut source = Source::Body;
    if let Some(from) = reader::string(sink, table, "from") {
        let text = from.get_ref();
        source = match text.as_str() {
            "body" => Source::Body,
            "subject" => Source::Subject,
            "from" => Source::From,
            _ => match text.strip_prefix("header:") {
                Some(h) if !h.trim().is_empty() => Source::Header(h.trim().to_string()),
                _ => {
                    sink.error(
                        &from.span(),
                        format!(
                            "`from` must be \"body\", \"subject\", \"from\" or \"header:NAME\", not {}",
                            crate::text::quoted(text)
                        ),
                    );
                    Source::Body
                }
            },
        };
    }
    let how = match forms[0] {
        "after" => ExtractHow::After(label(sink, table, "after")?),
        "between" => {
            let value = reader::get(table, "between")?;
            let parts = reader::string_list(sink, "between", value)?;
            if parts.len() != 2 || parts.iter().any(|p| p.get_ref().is_empty()) {
                sink.error(
                    &value.span(),
                    "`between` needs two non-empty texts: [\"Start\", \"End\"]",
                );
                return None;
            }
            ExtractHow::Between(
                literal(sink, &parts[0].span(), parts[0].get_ref())?,
                literal(sink, &parts[1].span(), parts[1].get_ref())?,
            )
        }
        "regex" => {
            let pattern = reader::string(sink, table, "regex")?;
            ExtractHow::Regex(compile_regex(sink, &pattern.span(), pattern.get_ref())?)
        }
        "line" => {
            let n = reader::integer(sink, table, "line")?;
            if n < 1 {
                sink.error(&reader::get(table, "line")?.span(), "`line` counts from 1");
                return None;
            }
            ExtractHow::Line(usize::try_from(n).ok()?)
        }
        _ => {
            let header = reader::string(sink, table, "header")?;
            if table.contains_key("from") {
                sink.error(span, "`header` reads its header; it takes no `from`");
            }
            source = Source::Header(header.get_ref().trim().to_string());
            ExtractHow::Whole
        }
    };
    let kind = match reader::string(sink, table, "type") {
        None => ValueType::Text,
        Some(t) => match ValueType::parse(t.get_ref()) {
            Some(k) => k,
            None => {
                sink.error(
                    &t.span(),
                    unknown_word("type", t.get_ref(), &ValueType::NAMES),
                );
                ValueType::Text
            }
        },
    };
    let map = match reader::table(sink, table, "map") {
        None => None,
        Some((m, _)) => {
            let mut pairs = Vec::new();
            for (k, v) in entries(m) {
                match v.get_ref() {
                    DeValue::String(s) => {
                        pairs.push((k.get_ref().trim().to_lowercase(), s.to_string()))
                    }
                    _ => reader::wrong_type(sink, k.get_ref(), v, "a string"),
                }
            }
            Some(pairs)
        }
    };
    let default = reader::string(sink, table, "default");
    if let Some(d) = &default {
        if let Err(e) = convert(kind, d.get_ref()) {
            sink.error(&d.span(), format!("`default`: {e}"));
        }
    }
    Some(Extractor {
        name,
        source,
        how,
        kind,
        map,
        default: default.map(|d| d.into_inner()),
        required: reader::boolean(sink, table, "required").unwrap_or(false),
    })
}

fn label(sink: &mut Sink, table: &DeTable, key: &str) -> Option<Regex> {
    let text = reader::string(sink, table, key)?;
    if text.get_ref().is_empty() {
        sink.error(&text.span(), format!("`{key}` needs a non-empty label"));
        return None;
    }
    literal(sink, &text.span(), text.get_ref())
}

/// A case-insensitive search for literal text.
fn literal(sink: &mut Sink, span: &Span, text: &str) -> Option<Regex> {
    compile_regex(sink, span, &format!("(?i){}", regex::escape(text)))
}
