//! `mailrules failed` and `mailrules retry`: messages that could not be applied.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use super::table::Table;
use crate::pipeline::{Incoming, OutcomeStatus, Pipeline};

pub fn list(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let store = super::open_store(&super::load_config(config_path)?)?;
    let failed = store.failed_messages()?;
    if json {
        super::print_json(&failed)?;
        return Ok(ExitCode::SUCCESS);
    }
    if failed.is_empty() {
        println!("no failed messages");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["ID", "RECEIVED", "SOURCE", "SUBJECT", "ERROR"]);
    for f in &failed {
        table.row(vec![
            f.id.to_string(),
            f.received_at.clone(),
            f.source.clone(),
            f.subject.clone(),
            f.error.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}

/// Runs failed messages through the current rules and store again. Each is still applied at
/// most once: its unique key is the same, and a message that now applies leaves the failed list.
pub fn retry(config_path: &Path, ids: &[i64], json: bool) -> anyhow::Result<ExitCode> {
    let config = Arc::new(super::load_config(config_path)?);
    let rules = Arc::new(super::load_rules(&config)?);
    let store = super::open_store(&config)?;
    let failed = store.failed_raw(ids)?;
    if !ids.is_empty() {
        for id in ids {
            if !failed.iter().any(|(f, _)| f.id == *id) {
                anyhow::bail!("no failed message with id {id} (see `mailrules failed`)");
            }
        }
    }
    let mut batch: Vec<Incoming> = Vec::with_capacity(failed.len());
    for (f, raw) in failed {
        // Nothing of it was ever fetched: it stays failed, under the same record, until the
        // server delivers it (it waits in the mailbox's on_failure folder).
        if f.key.starts_with("unreadable:") {
            let mut incoming = Incoming::new(Vec::new(), &f.mailbox, f.source.clone());
            incoming.unreadable = Some(f.error.clone().unwrap_or_default());
            batch.push(incoming);
            continue;
        }
        let Some(raw) = raw else {
            let why = format!(
                "failed message {} cannot be run again: its original bytes were deleted \
                 (keep_mail in {}); it stays listed",
                f.id,
                config_path.display()
            );
            if !ids.is_empty() {
                anyhow::bail!(why);
            }
            eprintln!("skipped: {why}");
            continue;
        };
        batch.push(Incoming::new(raw, &f.mailbox, f.source.clone()));
    }
    let mut pipeline = Pipeline::new(config, rules, store);
    let results = pipeline.process_batch(batch, None)?;
    let applied = results
        .iter()
        .filter(|r| r.status == OutcomeStatus::Applied)
        .count();
    let still = results
        .iter()
        .filter(|r| r.status == OutcomeStatus::Failed)
        .count();
    if json {
        let messages: Vec<_> = results
            .iter()
            .map(|o| {
                json!({"message_id": o.message_id, "key": o.key, "rule": o.rule, "task": o.task,
                            "status": super::ingest::status_name(o.status), "error": o.error})
            })
            .collect();
        super::print_json(&json!({"applied": applied, "failed": still, "messages": messages}))?;
    } else {
        for r in results.iter().filter(|r| r.status == OutcomeStatus::Failed) {
            eprintln!(
                "warning: message {} still fails: {}",
                r.key,
                r.error.as_deref().unwrap_or("unknown error")
            );
        }
        println!(
            "retried {}, applied {applied}, still failed {still}",
            results.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
