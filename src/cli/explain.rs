//! `mailrules explain`: the dry run of one message (a file, or a stored one by its id): how it
//! threads, every rule tried and why, the values extracted, the actions in words; and for a
//! message the store already holds, what became of it then.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use crate::pipeline::{message_key, Explanation, Pipeline};
use crate::store::{KeptBytes, MessageDetail, Store};

pub fn explain(
    config_path: &Path,
    file: Option<PathBuf>,
    message: Option<i64>,
    mailbox: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = Arc::new(super::load_config(config_path)?);
    let rules = Arc::new(super::load_rules(&config)?);
    let store = super::open_store(&config)?;
    let (raw, recorded) = match (message, file) {
        (Some(id), _) => {
            let Some(detail) = store.message(id)? else {
                anyhow::bail!("no message with id {id} (see `mailrules message list`)");
            };
            (store.message_raw(id)?, Some(detail))
        }
        (None, Some(file)) => {
            let raw = read_file(&file)?;
            let recorded = recorded_for(&store, &raw)?;
            (Some(raw), recorded)
        }
        (None, None) => anyhow::bail!("name a message file, or a stored message with --message ID"),
    };
    let pipeline = Pipeline::new(config, rules, store);
    let explanation = match &raw {
        Some(raw) => Some(pipeline.explain(raw, mailbox)?),
        None => None,
    };
    if json {
        // The explanation's keys stay at the top (cli.md); `recorded` is added beside them.
        let mut document = match &explanation {
            Some(e) => serde_json::to_value(e)?,
            None => json!({ "error": "the message's original bytes are not kept (keep_mail)" }),
        };
        document["recorded"] = serde_json::to_value(&recorded)?;
        super::print_json(&document)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    if let Some(detail) = &recorded {
        out.push_str(&render_recorded(detail));
    }
    match &explanation {
        Some(e) => {
            if recorded.is_some() {
                out.push_str(
                    "\nwhat the current rules would do with it as a new message (ingesting it \
                     again changes nothing: it is a duplicate; `mailrules retry` runs a failed \
                     one again):\n\n",
                );
            }
            out.push_str(&render_explanation(e));
        }
        None => out.push_str(
            "\nits original bytes are not kept (see `keep_mail`), so the current rules cannot be \
             tried on it\n",
        ),
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

fn read_file(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut raw)?;
        return Ok(raw);
    }
    std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))
}

/// What the store recorded for this message, if it was processed before.
fn recorded_for(store: &Store, raw: &[u8]) -> anyhow::Result<Option<MessageDetail>> {
    let parsed = crate::message::parse(raw).ok();
    let key = message_key(parsed.as_ref(), raw);
    match store.message_id_for_key(&key)? {
        Some(id) => Ok(store.message(id)?),
        None => Ok(None),
    }
}

/// The recorded fate of a stored message, for people.
fn render_recorded(detail: &MessageDetail) -> String {
    use std::fmt::Write;
    let s = &detail.summary;
    let line = |text: &str| crate::text::single_line(text);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "already processed: message {} ({}), received {}",
        s.id,
        line(&detail.source),
        s.received_at
    );
    let fate = match s.status.as_str() {
        "applied" => match (&s.rule, s.task) {
            (Some(rule), Some(task)) => {
                format!("applied by rule \"{}\", last on task #{task}", line(rule))
            }
            (Some(rule), None) => format!("applied by rule \"{}\"", line(rule)),
            (None, Some(task)) => format!("applied, last on task #{task}"),
            (None, None) => "applied".to_string(),
        },
        "ignored" => "ignored: processed without any effect".to_string(),
        "failed" => format!(
            "failed: {}",
            line(s.error.as_deref().unwrap_or("no error recorded"))
        ),
        other => line(other),
    };
    let _ = writeln!(out, "outcome: {fate}");
    if s.duplicates > 0 {
        let _ = writeln!(
            out,
            "delivered again {} time(s) since (changing nothing)",
            s.duplicates
        );
    }
    if let KeptBytes::Dropped { at } = &detail.bytes {
        let _ = writeln!(out, "original bytes dropped at {at} (keep_mail)");
    }
    out
}

fn render_explanation(e: &Explanation) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "subject: {}",
        e.subject.as_deref().unwrap_or("(unparseable message)")
    );
    if let Some(sender) = &e.sender {
        let kind = e
            .sender_kind
            .map(|k| match k {
                crate::context::SenderKind::Staff => "staff",
                crate::context::SenderKind::Contact => "contact",
            })
            .unwrap_or_default();
        let _ = write!(out, "sender:  {sender} ({kind})");
        if let Some(by) = &e.forwarded_by {
            let _ = write!(out, ", forwarded by {by}");
        }
        out.push('\n');
    }
    let thread = match (e.thread.task, e.thread.via) {
        (Some(task), Some(via)) => {
            let via = match via {
                crate::context::ThreadVia::References => "references",
                crate::context::ThreadVia::Subject => "subject",
            };
            format!("task #{task} (via {via})")
        }
        (Some(task), None) => format!("task #{task}"),
        _ => "new (no task found)".to_string(),
    };
    let _ = writeln!(out, "thread:  {thread}");
    out.push_str("\nrules:\n");
    if e.rules.is_empty() {
        out.push_str("  (no rules loaded)\n");
    }
    for rule in &e.rules {
        let mark = if rule.matched { "MATCH" } else { "  -  " };
        let _ = writeln!(out, "  {mark} {}: {}", rule.name, rule.why);
    }
    if !e.extracted.is_empty() {
        out.push_str("\nextracted:\n");
        for (name, value) in &e.extracted {
            let _ = writeln!(out, "  {name} = {}", crate::text::quoted(value));
        }
    }
    out.push_str("\nactions:\n");
    if e.actions.is_empty() {
        out.push_str("  (none)\n");
    }
    for action in &e.actions {
        let _ = writeln!(out, "  {}", crate::plan::describe(action));
    }
    if let Some(error) = &e.error {
        let _ = writeln!(out, "\nwould fail: {error}");
    }
    out
}
