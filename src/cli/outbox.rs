//! `mailrules outbox`: outgoing mail and its fate.

use std::path::Path;
use std::process::ExitCode;

use super::output::say;
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
    // A webhook row's TO is its endpoint's name and its NOTE the last answer (or error).
    let mut table = Table::new(&[
        "ID", "STATUS", "KIND", "TASK", "TO", "SUBJECT", "TRIES", "NOTE",
    ]);
    for r in &rows {
        table.row(vec![
            r.id.to_string(),
            r.status.clone(),
            r.kind.clone(),
            r.task.map(|t| format!("#{t}")).unwrap_or_default(),
            r.recipient.clone(),
            r.subject.clone(),
            r.attempts.to_string(),
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

pub fn send(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    if config.smtp.is_none() && config.webhooks.is_empty() {
        anyhow::bail!(
            "no [smtp] section and no [[webhook]] in {}: nothing can be sent",
            config_path.display()
        );
    }
    let mut store = super::open_store(&config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if !config.webhooks.is_empty() {
        // As `run` does: an unset variable stops here, before anything is sent or counted.
        let missing: Vec<String> = config
            .webhooks
            .iter()
            .flat_map(|w| w.environment_problems())
            .map(|e| e.to_string())
            .collect();
        if !missing.is_empty() {
            anyhow::bail!("{}; nothing was sent", missing.join("\n"));
        }
        let report =
            runtime.block_on(crate::webhook::send_due_once(&mut store, &config.webhooks))?;
        for error in &report.errors {
            eprintln!("warning: outbox {error}");
        }
        say!(
            "webhooks: delivered {}, retrying later {}, failed {}",
            report.delivered,
            report.retrying,
            report.failed
        )?;
    }
    let Some(smtp) = &config.smtp else {
        return Ok(ExitCode::SUCCESS);
    };
    let report = runtime.block_on(crate::outbox::send_due_once(&mut store, smtp))?;
    for error in &report.errors {
        let next = match (&error.gave_up, &error.retry_at) {
            (true, _) => "gave up".to_string(),
            (false, Some(at)) => format!("next try {at}"),
            (false, None) => "will retry".to_string(),
        };
        eprintln!(
            "warning: outbox #{} to {}: {} ({next})",
            error.id, error.recipient, error.error
        );
    }
    say!(
        "sent {}, retrying later {}, failed {}",
        report.sent,
        report.retrying,
        report.failed
    )?;
    Ok(ExitCode::SUCCESS)
}
