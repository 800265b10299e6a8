//! Running a rule's extractors on one message: find the raw text, then map, convert, default.

use super::condition::Vars;
use super::convert::convert;
use super::model::{short, ExtractHow, Extractor, Source};
use crate::context::Envelope;

/// Why extraction stopped a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractFailure {
    /// A `required` value is missing or unusable: the rule does not match.
    NoMatch(String),
    /// A value is unusable and has no default: the message fails (visible, retryable).
    Failed(String),
}

/// Runs every extractor of the rule, adding its value to `vars`.
pub fn run_all(
    extractors: &[Extractor],
    env: &Envelope,
    vars: &mut Vars,
) -> Result<(), ExtractFailure> {
    for ex in extractors {
        let value = run(ex, env)?;
        vars.insert(ex.name.clone(), value);
    }
    Ok(())
}

fn run(ex: &Extractor, env: &Envelope) -> Result<String, ExtractFailure> {
    let sender;
    let text: Option<&str> = match &ex.source {
        Source::Body => Some(&env.message.body),
        Source::Subject => Some(&env.message.subject),
        Source::From => {
            sender = env.sender.to_string();
            Some(&sender)
        }
        Source::Header(name) => env.message.header(name),
    };
    let raw = text
        .and_then(|t| find(&ex.how, t))
        .filter(|v| !v.is_empty());
    let problem = match raw {
        None => format!(
            "extract {}: not found in the {}",
            ex.name,
            source_name(&ex.source)
        ),
        Some(raw) => match finish(ex, raw) {
            Ok(value) => return Ok(value),
            Err(e) => format!("extract {}: {e}", ex.name),
        },
    };
    if let Some(default) = &ex.default {
        return convert(ex.kind, default)
            .map_err(|e| ExtractFailure::Failed(format!("extract {}: default {e}", ex.name)));
    }
    if ex.required {
        return Err(ExtractFailure::NoMatch(format!("{problem} (required)")));
    }
    if raw.is_none() {
        return Ok(String::new());
    }
    Err(ExtractFailure::Failed(problem))
}

/// Map, then convert to the extractor's type.
fn finish(ex: &Extractor, raw: &str) -> Result<String, String> {
    let mapped = match &ex.map {
        None => raw,
        Some(pairs) => {
            let key = raw.trim().to_lowercase();
            match pairs.iter().find(|(k, _)| *k == key) {
                Some((_, v)) => v.as_str(),
                None => return Err(format!("\"{}\" is not in its map", short(raw))),
            }
        }
    };
    convert(ex.kind, mapped)
}

fn source_name(source: &Source) -> String {
    match source {
        Source::Body => "body".into(),
        Source::Subject => "subject".into(),
        Source::From => "sender".into(),
        Source::Header(h) => format!("header {h}"),
    }
}

/// The raw value, trimmed; `None` when the form finds nothing.
fn find<'t>(how: &ExtractHow, text: &'t str) -> Option<&'t str> {
    match how {
        ExtractHow::After(label) => text
            .lines()
            .find_map(|line| label.find(line).map(|m| line[m.end()..].trim())),
        ExtractHow::Between(start, end) => {
            let from = start.find(text)?.end();
            let rest = &text[from..];
            // No end marker: the value runs to the end of the text.
            let to = end.find(rest).map_or(rest.len(), |m| m.start());
            Some(rest[..to].trim())
        }
        ExtractHow::Regex(regex) => {
            let caps = regex.captures(text)?;
            let m = caps
                .name("value")
                .or_else(|| caps.get(1))
                .or_else(|| caps.get(0))?;
            Some(m.as_str().trim())
        }
        ExtractHow::Line(n) => text.lines().nth(n - 1).map(str::trim),
        ExtractHow::Whole => Some(text.trim()),
    }
}
