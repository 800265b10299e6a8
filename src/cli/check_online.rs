//! `mailrules check --online`: log in to every mailbox and the SMTP server as the daemon
//! would, resolve the folders mail is moved to, and say what was found. Changes nothing on the
//! servers or in the store.

use super::output::say;
use crate::config::{Config, Disposition, MailboxConfig};
use crate::imap::{self, Folder, ImapError, Login, Timeouts};
use crate::oauth2::{login, reauth_command, TokenSource};
use crate::smtp::Mailer;
use crate::store::Store;

/// Prints one block per server; false if any of them failed.
pub fn check_online(config: &Config) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Committed cursors tell which messages still wait for their acknowledgement; a store
    // that does not exist yet has none.
    let store = if config.store.exists() {
        Some(Store::open(&config.store)?)
    } else {
        None
    };
    let mut all_ok = true;
    for mailbox in &config.mailboxes {
        let cursor_last_uid = match &store {
            Some(store) => store
                .mailbox_cursor(&mailbox.name)?
                .map(|c| (c.uid_validity, c.last_uid)),
            None => None,
        };
        say!(
            "mailbox {} ({}:{} as {}):",
            mailbox.name,
            mailbox.host,
            mailbox.port,
            mailbox.user
        )?;
        match runtime.block_on(check_mailbox(mailbox, cursor_last_uid)) {
            Ok(lines) => {
                for line in lines {
                    say!("  {line}")?;
                }
            }
            Err(e) => {
                all_ok = false;
                say!("  error: {e}")?;
            }
        }
    }
    if let Some(smtp) = &config.smtp {
        say!("smtp ({}:{}):", smtp.host, smtp.port)?;
        // The mailer's connection pool lives on the runtime: build and drop it there.
        let checked = runtime.block_on(async {
            let mailer = Mailer::new(smtp)?;
            mailer.check_login().await
        });
        match checked {
            Ok(()) => match &smtp.user {
                Some(user) if smtp.oauth2.is_some() => {
                    say!("  ok: logged in as {user} with OAuth2 (XOAUTH2)")?
                }
                Some(user) => say!("  ok: logged in as {user}")?,
                None => say!("  ok: connected (no login configured)")?,
            },
            Err(e) => {
                all_ok = false;
                say!("  error: {e}")?;
            }
        }
    }
    if config.mailboxes.is_empty() && config.smtp.is_none() {
        say!("online: no [[mailbox]] and no [smtp] configured, nothing to log in to")?;
    }
    Ok(all_ok)
}

/// Logs in, selects the watched folder and looks for the folders mail is moved to.
async fn check_mailbox(
    mailbox: &MailboxConfig,
    cursor: Option<(u32, u32)>,
) -> Result<Vec<String>, CheckError> {
    let timeouts = Timeouts::default();
    let connection = match &mailbox.oauth2 {
        None => {
            let what = format!("mailbox {}", mailbox.name);
            let password = mailbox
                .password
                .read(&what)
                .map_err(|e| CheckError(e.to_string()))?
                .unwrap_or_default();
            imap::connect(mailbox, Login::Password(&password), &timeouts).await?
        }
        Some(config) => {
            let mut tokens = TokenSource::new(
                &format!("mailbox \"{}\"", mailbox.name),
                &reauth_command(&mailbox.name),
                config,
            )
            .map_err(|e| CheckError(e.to_string()))?;
            login::connect(mailbox, &mut tokens, &timeouts)
                .await
                .map_err(|e| CheckError(e.to_string()))?
        }
    };
    let how = match connection.signed_in_with {
        "LOGIN" => String::new(),
        mechanism => format!(" with OAuth2 ({mechanism})"),
    };
    let mut lines = vec![format!(
        "ok: logged in{how}; the server offers {}",
        connection.capabilities
    )];
    let namespaces = connection.namespaces.clone();
    let delimiter = namespaces
        .delimiter
        .map_or("none".to_string(), |d| format!("\"{d}\""));
    lines.push(format!(
        "folders: personal prefix \"{}\", delimiter {delimiter}",
        namespaces.personal
    ));
    let capabilities = connection.capabilities;
    let (mut folder, selected) = Folder::select(connection, &mailbox.folder, timeouts).await?;
    lines.push(format!(
        "ok: folder \"{}\" has {} message(s)",
        folder.name(),
        selected.exists
    ));
    if mailbox.idle && !capabilities.idle {
        lines.push(format!(
            "note: no IDLE; new mail is looked for every {}s",
            mailbox.poll_interval.as_secs()
        ));
    }
    for (key, disposition) in [
        ("on_success", &mailbox.on_success),
        ("on_failure", &mailbox.on_failure),
    ] {
        let Disposition::Move(target) = disposition else {
            continue;
        };
        let resolved = folder.resolve(target);
        let state = if folder.exists(target).await? {
            "exists"
        } else {
            "does not exist yet; the daemon creates it when it starts"
        };
        let how = if capabilities.moves {
            "MOVE"
        } else {
            "COPY + EXPUNGE (no MOVE)"
        };
        lines.push(format!(
            "ok: {key} = \"move:{target}\" is folder \"{resolved}\": {state}; moved with {how}"
        ));
    }
    let removes_or_flags =
        ![&mailbox.on_success, &mailbox.on_failure].contains(&&Disposition::Keep);
    if let Some((uid_validity, last_uid)) = cursor {
        if uid_validity == selected.uid_validity && removes_or_flags {
            let unseen_only =
                [&mailbox.on_success, &mailbox.on_failure].contains(&&Disposition::Flag);
            let waiting = folder.uids_through(last_uid, unseen_only).await?;
            if waiting.is_empty() {
                lines.push("ok: every processed message is acknowledged on the server".into());
            } else {
                lines.push(format!(
                    "warning: {} message(s) are processed (committed) but still in \"{}\": the \
                     daemon acknowledges them when it can (see its log)",
                    waiting.len(),
                    folder.name()
                ));
            }
        }
    }
    folder.logout().await;
    Ok(lines)
}

/// Why one mailbox could not be checked, in words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CheckError(String);

impl From<ImapError> for CheckError {
    fn from(e: ImapError) -> Self {
        CheckError(e.to_string())
    }
}
