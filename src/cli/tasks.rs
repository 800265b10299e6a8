//! `task list`, `task show`, `analytics show` and `report`: reading the store.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::table::Table;
use crate::store::TaskFilter;

/// What `task list` was asked.
#[derive(Debug, Default)]
pub struct ListArgs {
    pub status: Option<String>,
    pub open: bool,
    pub assignee: Option<String>,
    /// `NAME=VALUE`, as given.
    pub field: Option<String>,
    pub search: Option<String>,
    pub limit: Option<u64>,
    pub offset: u64,
}

pub fn list(config_path: &Path, args: ListArgs, json: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let filter = filter(&config, args)?;
    let store = super::open_store(&config)?;
    let tasks = store.task_query(&filter)?;
    if json {
        super::print_json(&tasks)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["ID", "STATUS", "ASSIGNEE", "REQUESTER", "TITLE"]);
    for t in &tasks {
        table.row(vec![
            t.id.to_string(),
            t.status.clone(),
            t.assignee.clone().unwrap_or_default(),
            t.requester.clone().unwrap_or_default(),
            t.title.clone(),
        ]);
    }
    if table.is_empty() {
        println!("no tasks");
    } else {
        print!("{}", table.render());
    }
    Ok(ExitCode::SUCCESS)
}

/// The store's filter for `args`: statuses and choice values in their declared spelling, so
/// that `--status завершенная` finds "Завершенная". The rules are read only when a filter
/// needs them.
fn filter(config: &crate::config::Config, args: ListArgs) -> anyhow::Result<TaskFilter> {
    let needs_rules = args.open || args.status.is_some() || args.field.is_some();
    let rules = match needs_rules.then(|| super::load_rules(config)) {
        None => None,
        Some(Ok(rules)) => Some(rules),
        // Rules that do not load must not keep anyone from looking at the tasks: --status
        // is then compared as given.
        Some(Err(_)) if !args.open && args.field.is_none() => None,
        Some(Err(e)) => return Err(e),
    };
    let mut filter = TaskFilter {
        limit: args.limit,
        offset: args.offset,
        search: args.search.filter(|s| !s.is_empty()),
        ..TaskFilter::default()
    };
    if let Some(rules) = &rules {
        if let Some(status) = &args.status {
            filter.status = Some(rules.declared_status(status)?);
        }
        if args.open {
            filter.not_status = rules.closed_statuses();
        }
        if let Some(field) = &args.field {
            let (name, value) = field.split_once('=').with_context(|| {
                format!("--field {}: give NAME=VALUE", crate::text::quoted(field))
            })?;
            filter.field = Some(rules.declared_field(name, value)?);
        }
    }
    if rules.is_none() {
        filter.status = args.status;
    }
    if let Some(assignee) = &args.assignee {
        let address = crate::outgoing::bare_address(assignee).with_context(|| {
            format!(
                "--assignee {} is not an email address",
                crate::text::quoted(assignee)
            )
        })?;
        filter.assignee = Some(address);
    }
    Ok(filter)
}

pub fn show(config_path: &Path, id: i64, all: bool, json: bool) -> anyhow::Result<ExitCode> {
    let store = super::open_store(&super::load_config(config_path)?)?;
    let Some(task) = store.task_show(id)? else {
        anyhow::bail!("no task #{id}");
    };
    if json {
        super::print_json(&task)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("#{} {}", task.id, task.title);
    println!("status:    {}", task.status);
    println!("requester: {}", task.requester.as_deref().unwrap_or("-"));
    if let Some(assignee) = &task.assignee {
        println!("assignee:  {assignee}");
    }
    if let Some(parent) = task.parent {
        println!("parent:    #{parent}");
    }
    println!(
        "created:   {}   updated: {}",
        task.created_at, task.updated_at
    );
    if !task.fields.is_empty() {
        println!("\nfields:");
        let width = task
            .fields
            .keys()
            .map(|k| crate::text::display_width(k))
            .max()
            .unwrap_or(0);
        for (name, value) in &task.fields {
            let pad = width - crate::text::display_width(name);
            println!("  {name}{}  {value}", " ".repeat(pad));
        }
    }
    if !task.description.trim().is_empty() {
        println!("\n{}", task.description.trim_end());
    }
    let hidden = task.comments.iter().filter(|c| c.auto && !all).count();
    let shown: Vec<_> = task.comments.iter().filter(|c| all || !c.auto).collect();
    if !shown.is_empty() || hidden > 0 {
        println!("\ncomments:");
    }
    for c in shown {
        let robot = if c.auto { " [auto]" } else { "" };
        let author = match (&c.author_name, &c.author) {
            (Some(name), Some(address)) => format!("{name} <{address}>"),
            (None, Some(address)) => address.clone(),
            (Some(name), None) => name.clone(),
            (None, None) => "mailrules".to_string(),
        };
        println!("  {} {author}{robot}:", c.at);
        for a in &c.attachments {
            println!(
                "    [attachment] {} ({}, {} bytes)",
                a.name, a.content_type, a.size
            );
        }
        for line in c.text.trim_end().lines() {
            println!("    {line}");
        }
    }
    if hidden > 0 {
        println!("  ({hidden} automatic comment(s) hidden; --all shows them)");
    }
    if !task.analytics.is_empty() {
        println!("\nanalytics:");
        for row in &task.analytics {
            let values: Vec<String> = row
                .values
                .iter()
                .map(|(k, v)| format!("{k}: {}", json_text(v)))
                .collect();
            println!("  {} {}: {}", row.at, row.table, values.join("; "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A stored value as plain text (strings without their JSON quotes).
pub(super) fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
