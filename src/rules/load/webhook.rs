//! Loading `action = "webhook"`: the endpoint's name (checked against the configuration
//! later, by `RuleSet::check_webhooks`) and the `body` table, whose strings are templates.

use toml::de::{DeTable, DeValue};

use super::action::{compile, Scope};
use super::reader::{self, entries, Sink, Span};
use crate::rules::error::RuleError;
use crate::rules::model::{ActionSpec, BodyTemplate};

/// How deep a body may nest: deeper is a mistake, and the renderer recurses.
const MAX_DEPTH: usize = 16;

pub fn webhook(sink: &mut Sink, table: &DeTable, span: &Span, scope: &Scope) -> Option<ActionSpec> {
    let to = reader::required_string(sink, table, "to", span, "the name of a [[webhook]]");
    let body = match reader::get(table, "body") {
        None => {
            sink.error(span, "action `webhook` needs `body`: a table sent as JSON");
            None
        }
        Some(value) if !matches!(value.get_ref(), DeValue::Table(_)) => {
            reader::wrong_type(
                sink,
                "body",
                value,
                "a table, e.g. { title = \"{subject}\" }",
            );
            None
        }
        Some(value) => body(sink, value, scope, 0),
    };
    let to = to?;
    let (line, column) = sink.lines.line_col(to.span().start);
    let to_at = RuleError {
        file: sink.file.to_path_buf(),
        line,
        column,
        kind: if sink.item.is_some() { sink.kind } else { "" },
        rule: sink.item.clone(),
        message: String::new(),
    };
    Some(ActionSpec::Webhook {
        to: to.into_inner(),
        to_at,
        body: body?,
    })
}

fn body(
    sink: &mut Sink,
    value: &reader::Value,
    scope: &Scope,
    depth: usize,
) -> Option<BodyTemplate> {
    if depth > MAX_DEPTH {
        sink.error(
            &value.span(),
            format!("the webhook body nests deeper than {MAX_DEPTH} levels"),
        );
        return None;
    }
    let bad_number = |sink: &mut Sink, text: &str| {
        sink.error(
            &value.span(),
            format!("{text} cannot be sent as a JSON number"),
        );
        None
    };
    match value.get_ref() {
        DeValue::String(s) => compile(sink, &value.span(), s, scope).map(BodyTemplate::Text),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            match i64::from_str_radix(&digits, i.radix()) {
                Ok(n) => Some(BodyTemplate::Value(n.into())),
                Err(_) => bad_number(sink, i.as_str()),
            }
        }
        DeValue::Float(f) => {
            let parsed = f.as_str().replace('_', "").parse::<f64>().ok();
            match parsed.and_then(serde_json::Number::from_f64) {
                Some(n) => Some(BodyTemplate::Value(serde_json::Value::Number(n))),
                None => bad_number(sink, f.as_str()),
            }
        }
        DeValue::Boolean(b) => Some(BodyTemplate::Value((*b).into())),
        DeValue::Datetime(d) => Some(BodyTemplate::Value(d.to_string().into())),
        DeValue::Array(items) => {
            let before = sink.error_count();
            let items: Vec<BodyTemplate> = items
                .iter()
                .filter_map(|item| body(sink, item, scope, depth + 1))
                .collect();
            (sink.error_count() == before).then_some(BodyTemplate::List(items))
        }
        DeValue::Table(table) => {
            let before = sink.error_count();
            let mut out = Vec::new();
            for (key, item) in entries(table) {
                if let Some(v) = body(sink, item, scope, depth + 1) {
                    out.push((key.get_ref().to_string(), v));
                }
            }
            (sink.error_count() == before).then_some(BodyTemplate::Table(out))
        }
    }
}
