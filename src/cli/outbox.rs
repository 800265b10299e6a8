//! `mailrules outbox`: outgoing mail and its fate.

use std::path::Path;
use std::process::ExitCode;

use super::table::Table;

pub fn list(config_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let store = super::open_store(&super::load_config(config_path)?)?;
    let rows = store.outbox_list()?;
    if json {
        super::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("outbox is empty");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&["ID", "STATUS", "KIND", "TASK", "TO", "SUBJECT", "NOTE"]);
    for r in &rows {
        table.row(vec![
            r.id.to_string(),
            r.status.clone(),
            r.kind.clone(),
            r.task.map(|t| format!("#{t}")).unwrap_or_default(),
            r.recipient.clone(),
            r.subject.clone(),
            r.reason.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}

pub fn retry(config_path: &Path, ids: &[i64]) -> anyhow::Result<ExitCode> {
    let store = super::open_store(&super::load_config(config_path)?)?;
    let n = store.outbox_requeue(ids)?;
    println!("requeued {n}");
    Ok(ExitCode::SUCCESS)
}
