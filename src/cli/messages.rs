//! `mailrules message list|show|attachment|prune`: every message's fate, its original bytes
//! and attachments, and dropping the bytes past `keep_mail`.
//!
//! Mail is hostile input: every mail-derived text printed for people goes through
//! `text::for_terminal` (tables do it themselves), `--raw` to a terminal is shown escaped, and
//! an attachment is never written to a terminal.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::table::Table;
use crate::config::KeepMail;
use crate::message::Attachment;
use crate::store::{KeptBytes, MessageDetail, MessageFilter, Store};
use crate::text::{escape_for_terminal, for_terminal};

pub fn list(config_path: &Path, filter: &MessageFilter, json: bool) -> anyhow::Result<ExitCode> {
    let store = super::open_store(&super::load_config(config_path)?)?;
    let messages = store.messages(filter)?;
    if json {
        super::print_json(&messages)?;
        return Ok(ExitCode::SUCCESS);
    }
    if messages.is_empty() {
        write_stdout(b"no messages\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&[
        "ID", "RECEIVED", "STATUS", "RULE", "TASK", "FROM", "SUBJECT", "ERROR",
    ]);
    for m in &messages {
        let status = match m.duplicates {
            0 => m.status.clone(),
            n => format!("{} (+{n} dup)", m.status),
        };
        table.row(vec![
            m.id.to_string(),
            m.received_at.clone(),
            status,
            m.rule.clone().unwrap_or_default(),
            m.task.map(|t| format!("#{t}")).unwrap_or_default(),
            for_terminal(m.from.as_deref().unwrap_or_default()),
            for_terminal(&m.subject),
            for_terminal(m.error.as_deref().unwrap_or_default()),
        ]);
    }
    write_stdout(table.render().as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

pub fn show(config_path: &Path, id: i64, raw: bool, json: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let store = super::open_store(&config)?;
    let detail = find(&store, id)?;
    let bytes = store.message_raw(id)?;
    if raw {
        let bytes = require_bytes(&detail, bytes, config_path, "its original bytes")?;
        if std::io::stdout().is_terminal() {
            write_stdout(escape_for_terminal(&bytes).as_bytes())?;
        } else {
            write_stdout(&bytes)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let parsed = bytes.as_deref().map(crate::message::parse);
    let message = parsed.as_ref().and_then(|p| p.as_ref().ok());
    let attachments = match &bytes {
        Some(bytes) => crate::message::attachment_contents(bytes)
            .map(|all| all.into_iter().map(|(a, _)| a).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let header = |name: &str| message.and_then(|m| m.header(name)).map(str::to_string);
    let headers = [
        ("From", header("From").or(detail.summary.from.clone())),
        ("To", header("To")),
        ("Date", header("Date")),
        (
            "Subject",
            header("Subject").or(Some(detail.summary.subject.clone())),
        ),
        (
            "Message-ID",
            header("Message-ID").or(detail.summary.message_id.clone()),
        ),
    ];
    if json {
        let headers: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .map(|(name, value)| (name.to_string(), json!(value)))
            .collect();
        let attachments: Vec<_> = attachments
            .iter()
            .enumerate()
            .map(|(i, a)| {
                json!({"number": i + 1, "name": a.name, "content_type": a.content_type,
                       "size": a.size})
            })
            .collect();
        let mut value = serde_json::to_value(&detail)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("headers".into(), headers.into());
            object.insert("attachments".into(), attachments.into());
        }
        super::print_json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }
    let text = render(&detail, &headers, &attachments, config_path);
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `message show` for people. Every value that came with the mail goes through
/// [`for_terminal`].
fn render(
    detail: &MessageDetail,
    headers: &[(&str, Option<String>)],
    attachments: &[Attachment],
    config_path: &Path,
) -> String {
    let m = &detail.summary;
    let mut out = String::new();
    let mut line = |label: &str, value: &str| {
        out.push_str(&format!(
            "{:<12} {}\n",
            format!("{label}:"),
            for_terminal(value)
        ));
    };
    for (name, value) in headers {
        line(name, value.as_deref().unwrap_or("-"));
    }
    let mut fate = m.status.clone();
    if let Some(rule) = &m.rule {
        fate.push_str(&format!(", rule \"{rule}\""));
    }
    if let Some(task) = m.task {
        fate.push_str(&format!(", task #{task}"));
    }
    line("Status", &fate);
    if let Some(error) = &m.error {
        line("Error", error);
    }
    line(
        "Received",
        &format!(
            "{} (mailbox {}, from {})",
            m.received_at, detail.mailbox, detail.source
        ),
    );
    if detail.attempts > 1 {
        line(
            "Processed",
            &format!("{} ({} attempts)", detail.processed_at, detail.attempts),
        );
    }
    if m.duplicates > 0 {
        let last = detail.last_duplicate_at.as_deref().unwrap_or("-");
        line(
            "Duplicates",
            &format!(
                "delivered again {} time{}, last at {last}",
                m.duplicates,
                if m.duplicates == 1 { "" } else { "s" }
            ),
        );
    }
    let original = match &detail.bytes {
        KeptBytes::Kept { size, stored } => format!(
            "{size} bytes kept ({stored} in the store): mailrules message show {} --raw",
            m.id
        ),
        KeptBytes::Dropped { at } => format!(
            "deleted at {at} (keep_mail in {}); this record stays",
            config_path.display()
        ),
        KeptBytes::None => "none: the server could not deliver the message".into(),
    };
    line("Original", &original);
    if !attachments.is_empty() {
        out.push_str("Attachments:\n");
        let mut table = Table::new(&["  N", "NAME", "TYPE", "SIZE"]);
        for (i, a) in attachments.iter().enumerate() {
            table.row(vec![
                format!("  {}", i + 1),
                a.name.clone(),
                a.content_type.clone(),
                format!("{} bytes", a.size),
            ]);
        }
        let rendered = table.render();
        // The header line of the table is left out: the label above says what follows.
        for row in rendered.lines().skip(1) {
            out.push_str(row);
            out.push('\n');
        }
        out.push_str(&format!(
            "             write one: mailrules message attachment {} N -o FILE\n",
            m.id
        ));
    }
    out
}

pub fn attachment(
    config_path: &Path,
    id: i64,
    number: usize,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let store = super::open_store(&config)?;
    let detail = find(&store, id)?;
    let bytes = store.message_raw(id)?;
    let bytes = require_bytes(&detail, bytes, config_path, "its attachments")?;
    let mut all = crate::message::attachment_contents(&bytes)
        .with_context(|| format!("message {id} cannot be parsed"))?;
    let count = all.len();
    if count == 0 {
        bail!("message {id} has no attachments");
    }
    if number == 0 || number > count {
        bail!(
            "message {id} has {count} attachment{}, numbered from 1: there is no attachment \
             {number} (see `mailrules message show {id}`)",
            if count == 1 { "" } else { "s" }
        );
    }
    let (found, contents) = all.swap_remove(number - 1);
    match output {
        Some(path) => {
            std::fs::write(path, &contents)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote attachment {number} of message {id} ({}, {} bytes) to {}",
                for_terminal(&found.name),
                contents.len(),
                path.display()
            );
        }
        None if std::io::stdout().is_terminal() => bail!(
            "attachment {number} of message {id} ({}, {}) is not written to a terminal: \
             give -o FILE or redirect the output",
            for_terminal(&found.name),
            for_terminal(&found.content_type)
        ),
        None => write_stdout(&contents)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `message prune`: enforces `keep_mail` now (the daemon does it every hour).
pub fn prune(config_path: &Path, at: Option<&str>) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let now: DateTime<Utc> = match at {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| {
                anyhow!(
                    "--at {} is not an RFC 3339 time ({e})",
                    crate::text::quoted(text)
                )
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let keep = match config.keep_mail {
        KeepMail::For(keep) => keep,
        KeepMail::Forever => {
            write_stdout(
                format!(
                    "keep_mail is not set in {}: every message's bytes are kept forever\n",
                    config_path.display()
                )
                .as_bytes(),
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        KeepMail::FailedOnly => {
            write_stdout(
                format!(
                    "keep_mail = \"failed\" in {}: only failed messages' bytes are kept, until \
                     they are run again; there is nothing to prune\n",
                    config_path.display()
                )
                .as_bytes(),
            )?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut store = super::open_store(&config)?;
    let dropped = crate::pipeline::drop_expired_mail(&mut store, &config, now)?;
    let days = keep.as_secs() / 86_400;
    write_stdout(
        format!(
            "dropped the original bytes of {dropped} message{} received over {days} days ago \
             (keep_mail); their records stay\n",
            if dropped == 1 { "" } else { "s" }
        )
        .as_bytes(),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn find(store: &Store, id: i64) -> anyhow::Result<MessageDetail> {
    store
        .message(id)?
        .ok_or_else(|| anyhow!("no message with id {id} (see `mailrules message list`)"))
}

/// The message's bytes, or why there are none, in words.
fn require_bytes(
    detail: &MessageDetail,
    bytes: Option<Vec<u8>>,
    config_path: &Path,
    what: &str,
) -> anyhow::Result<Vec<u8>> {
    let id = detail.summary.id;
    match (bytes, &detail.bytes) {
        (Some(bytes), _) => Ok(bytes),
        (None, KeptBytes::Dropped { at }) => bail!(
            "message {id} no longer has {what}: its original bytes were deleted at {at} by \
             keep_mail (in {}); its record stays (`mailrules message show {id}`)",
            config_path.display()
        ),
        (None, _) => bail!(
            "message {id} has no original bytes: the server could not deliver it \
             (`mailrules message show {id}`)"
        ),
    }
}

/// Writes to stdout; a reader that went away (`| head`) ends the output quietly.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow!("cannot write to standard output: {e}"))
        }
        _ => Ok(()),
    }
}
