//! Working a task by hand: `task set | comment | close | reply | history`. Each change is
//! checked against the rules like a rule's actions and made by the store as a small batch of
//! its own, with its author (`author::resolve`).

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::author;
use super::table::Table;
use crate::outgoing::bare_address;
use crate::rules::ManualChange;
use crate::store::{Answer, Change, HistoryEntry};

/// What `task set` was asked.
#[derive(Debug, Default)]
pub struct SetArgs {
    pub status: Option<String>,
    pub assignee: Option<String>,
    /// `NAME=VALUE`, as given.
    pub fields: Vec<String>,
}

pub fn set(
    config_path: &Path,
    id: i64,
    args: SetArgs,
    who: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let fields = args
        .fields
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .filter(|(n, _)| !n.is_empty())
                .with_context(|| {
                    format!(
                        "--field {}: give NAME=VALUE (an empty VALUE clears the field)",
                        crate::text::quoted(f)
                    )
                })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let change = ManualChange {
        status: args.status,
        assignee: args.assignee,
        fields,
        ..ManualChange::default()
    };
    change_task(config_path, id, &change, who)?;
    println!("task #{id} changed");
    Ok(ExitCode::SUCCESS)
}

pub fn comment(
    config_path: &Path,
    id: i64,
    text: &str,
    who: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let change = ManualChange {
        comment: Some(text_argument(text)?),
        ..ManualChange::default()
    };
    change_task(config_path, id, &change, who)?;
    println!("comment added to task #{id}");
    Ok(ExitCode::SUCCESS)
}

pub fn close(config_path: &Path, id: i64, who: Option<&str>) -> anyhow::Result<ExitCode> {
    let change = ManualChange {
        close: true,
        ..ManualChange::default()
    };
    let status = change_task(config_path, id, &change, who)?;
    println!("task #{id} closed ({})", status.unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

/// Checks `change` against the rules and makes it; the task's status after.
fn change_task(
    config_path: &Path,
    id: i64,
    change: &ManualChange,
    who: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let config = super::load_config(config_path)?;
    let mut store = super::open_store(&config)?;
    let person = person(&store, who)?;
    let rules = Arc::new(super::load_rules(&config)?);
    let actions = rules.plan_change(id, &person, change)?;
    let opts = crate::pipeline::apply_options(&config, &rules);
    store.apply_change(Change { task: id, actions }, &person, &opts)?;
    Ok(store.task_show(id)?.map(|t| t.status))
}

pub fn reply(
    config_path: &Path,
    id: i64,
    text: &str,
    cc: &[String],
    who: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let text = text_argument(text)?;
    if text.trim().is_empty() {
        anyhow::bail!("the reply is empty");
    }
    let cc = cc
        .iter()
        .map(|c| {
            bare_address(c)
                .with_context(|| format!("--cc {} is not an email address", crate::text::quoted(c)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = super::load_config(config_path)?;
    let mut store = super::open_store(&config)?;
    let person = person(&store, who)?;
    let rules = Arc::new(super::load_rules(&config)?);
    let opts = crate::pipeline::apply_options(&config, &rules);
    let answer = Answer { task: id, text, cc };
    let outbox = store.queue_answer(answer, &person, &opts)?;
    if json {
        super::print_json(&serde_json::json!({ "outbox": outbox }))?;
    } else {
        println!("reply to task #{id} queued (outbox {outbox})");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn history(config_path: &Path, id: i64, json: bool) -> anyhow::Result<ExitCode> {
    let store = super::open_store(&super::load_config(config_path)?)?;
    let Some(entries) = store.task_history(id)? else {
        anyhow::bail!("no task #{id}");
    };
    if json {
        super::print_json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["AT", "BY", "WHAT"]);
    for e in &entries {
        table.row(vec![e.at.clone(), e.by.clone(), describe(e)]);
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}

/// One history entry in words, for the table.
fn describe(e: &HistoryEntry) -> String {
    let from = e.from.as_deref().unwrap_or("—");
    let to = e.to.as_deref().unwrap_or("—");
    match e.kind.as_str() {
        "created" => format!("created: {to}"),
        "status" | "assignee" if e.from.is_none() => format!("{}: {to}", e.kind),
        "status" | "assignee" => format!("{}: {from} → {to}", e.kind),
        "field" => format!("field {}: {from} → {to}", e.name.as_deref().unwrap_or("")),
        "message" => format!("message from {from}: {to}"),
        "reply" => format!("reply to {to}"),
        "webhook" => format!("webhook to {to}"),
        "analytics" => format!("analytics {}: {to}", e.name.as_deref().unwrap_or("")),
        kind => format!("{kind}: {to}"),
    }
}

/// Who makes the change, before anything is changed: `--as`, else `$MAILRULES_USER`; when
/// users exist, one of them, and one who may work tasks (an agent or an admin).
fn person(store: &crate::store::Store, who: Option<&str>) -> anyhow::Result<String> {
    let author = author::resolve(store, who)?;
    author.require(crate::people::Role::Agent)?;
    Ok(author.email)
}

/// A text argument, or standard input for `-` (which must be UTF-8).
fn text_argument(text: &str) -> anyhow::Result<String> {
    if text != "-" {
        return Ok(text.to_string());
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("cannot read the text from standard input")?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!("standard input is not UTF-8 text ({e}); convert it first, e.g. with iconv")
    })
}
