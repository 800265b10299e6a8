//! `mailrules ingest` and `mailrules explain`: messages from files through the pipeline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use crate::ingest::{expand, read_all, IngestError, Source};
use crate::parallel;
use crate::pipeline::{Incoming, Outcome, OutcomeStatus, Pipeline, PARSE_AHEAD};

/// Messages per store transaction: each commit writes every index page the transaction
/// touched and syncs the disk, so larger transactions write less. Memory does not grow with
/// it: a message's parsed form is dropped once it is planned.
const BATCH: usize = 1000;

pub fn ingest(
    config_path: &Path,
    paths: &[PathBuf],
    mailbox: &str,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = Arc::new(super::load_config(config_path)?);
    let rules = Arc::new(super::load_rules(&config)?);
    if mailbox != "cli" && !config.mailboxes.iter().any(|m| m.name == mailbox) {
        let known: Vec<&str> = config.mailboxes.iter().map(|m| m.name.as_str()).collect();
        anyhow::bail!(
            "--mailbox {} is not a [[mailbox]] of {} (configured: {}); leave it out to \
             ingest as \"cli\"",
            crate::text::quoted(mailbox),
            config.path.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    let expanded = expand(paths)?;
    for file in &expanded.not_mail {
        eprintln!(
            "warning: {} is not a mail message (no header at its start); left out",
            file.display()
        );
    }
    let sources = expanded.sources;
    let from_stdin = sources.contains(&Source::Stdin);
    let store = match super::open_store(&config) {
        Ok(store) => store,
        Err(e) if from_stdin => return Ok(tempfail(&e)),
        Err(e) => return Err(e),
    };
    let mut pipeline = Pipeline::new(config, rules, store);

    let mut outcomes: Vec<Outcome> = Vec::new();
    let (mut processed, mut duplicates, mut failed) = (0usize, 0usize, 0usize);
    let mut count = |results: Vec<Outcome>| {
        for r in &results {
            match r.status {
                OutcomeStatus::Applied => processed += 1,
                OutcomeStatus::Duplicate => duplicates += 1,
                OutcomeStatus::Failed => failed += 1,
            }
        }
        if json {
            outcomes.extend(results);
        } else {
            for r in results.iter().filter(|r| r.status == OutcomeStatus::Failed) {
                eprintln!(
                    "warning: message {} failed (kept; `mailrules retry` runs it again): {}",
                    r.key,
                    r.error.as_deref().unwrap_or("unknown error")
                );
            }
        }
    };
    // Reading and parsing need no store: other threads do them while this one applies the
    // messages before, in arrival order, each transaction taking BATCH messages as they come.
    let preparer = pipeline.preparer();
    let mut unreadable = false;
    // Reading stops at the first file that cannot be read; the messages before it are applied.
    let messages =
        read_all(sources).take_while(move |m| !std::mem::replace(&mut unreadable, m.is_err()));
    let prepare = |message: Result<Incoming, IngestError>| {
        message.map(|mut message| {
            message.mailbox = mailbox.to_string();
            preparer.prepare(message)
        })
    };
    // Ok(Err): a file could not be read; Err: the store failed.
    let applied = parallel::map_in_order(
        messages,
        parallel::workers(),
        PARSE_AHEAD,
        prepare,
        |prepared| -> anyhow::Result<Result<(), IngestError>> {
            let mut prepared = prepared.peekable();
            let mut unreadable = None;
            while prepared.peek().is_some() {
                let batch = prepared
                    .by_ref()
                    .take(BATCH)
                    .map_while(|m| m.map_err(|e| unreadable = Some(e)).ok());
                count(pipeline.apply_prepared(batch, None)?);
                if let Some(e) = unreadable {
                    return Ok(Err(e));
                }
            }
            Ok(Ok(()))
        },
    );
    match applied {
        Ok(Ok(())) => {}
        Ok(Err(unreadable)) => return Err(unreadable.into()),
        Err(e) => return if from_stdin { Ok(tempfail(&e)) } else { Err(e) },
    }

    if json {
        let messages: Vec<_> = outcomes
            .iter()
            .map(|o| {
                json!({
                    "message_id": o.message_id,
                    "key": o.key,
                    "rule": o.rule,
                    "task": o.task,
                    "status": status_name(o.status),
                    "error": o.error,
                })
            })
            .collect();
        super::print_json(&json!({
            "processed": processed,
            "duplicates": duplicates,
            "failed": failed,
            "messages": messages,
        }))?;
    } else {
        println!("processed {processed}, duplicates {duplicates}, failed {failed}");
    }
    Ok(ExitCode::SUCCESS)
}

fn tempfail(error: &anyhow::Error) -> ExitCode {
    // One diagnostic, starting with `error:` as all of them do (cli.md, version 2).
    eprintln!(
        "error: {error:#}\n  the message was not stored; exiting with 75 (EX_TEMPFAIL) so the sender retries"
    );
    ExitCode::from(super::EXIT_TEMPFAIL)
}

pub fn status_name(status: OutcomeStatus) -> &'static str {
    match status {
        OutcomeStatus::Applied => "applied",
        OutcomeStatus::Duplicate => "duplicate",
        OutcomeStatus::Failed => "failed",
    }
}
