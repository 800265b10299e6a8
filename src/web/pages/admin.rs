//! The operator's pages: `/healthz` (no login), the outbox, each mailbox's state, and the
//! loaded rules with the last load's errors (admins only).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use crate::daemon::MailboxState;
use crate::people::Role;
use crate::store::Store;
use crate::web::auth::Person;
use crate::web::layout::page;
use crate::web::{WebError, WebState};

/// Rows the outbox page shows (newest first).
const OUTBOX_SHOWN: u32 = 500;

/// GET /healthz: `ok` while the store file can be read, else 503 and why.
pub async fn healthz(State(state): State<Arc<WebState>>) -> Response {
    let path = state.config.store.clone();
    let checked = tokio::task::spawn_blocking(move || Store::check_readable(&path))
        .await
        .map_err(|e| WebError::Internal(format!("the health check stopped: {e}")))
        .and_then(|r| r.map_err(WebError::from));
    match checked {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store cannot be read: {e}\n"),
        )
            .into_response(),
    }
}

/// GET /outbox
pub async fn outbox(
    State(state): State<Arc<WebState>>,
    person: Person,
) -> Result<Markup, WebError> {
    let rows = state
        .with_store(|store, _| Ok(store.outbox_recent(OUTBOX_SHOWN)?))
        .await?;
    let body = html! {
        h1 { "Outbox" }
        @if rows.is_empty() {
            p.muted { "Nothing was sent or queued." }
        } @else {
            table #outbox-table {
                thead { tr { th { "#" } th { "Task" } th { "Kind" } th { "To" } th { "Subject" } th { "State" } th { "Attempts" } th { "Created" } th { "Sent" } } }
                tbody {
                    @for r in &rows {
                        tr.outbox-row data-id=(r.id) data-state=(r.status) {
                            td { (r.id) }
                            td { @if let Some(t) = r.task { a href={ "/tasks/" (t) } { "#" (t) } } }
                            td { (r.kind) }
                            td { (r.recipient) }
                            td { (r.subject) }
                            td class={ "state-" (r.status) } { (r.status) @if let Some(why) = &r.reason { br; span.muted { (why) } } }
                            td { (r.attempts) }
                            td { (crate::web::layout::when(&r.created_at)) }
                            td { (r.sent_at.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Outbox", &person, body))
}

/// GET /mailboxes: each configured mailbox, where it was read up to, and (when the daemon
/// runs in this process) its state, unacknowledged count and last problem.
pub async fn mailboxes(
    State(state): State<Arc<WebState>>,
    person: Person,
) -> Result<Markup, WebError> {
    let names: Vec<String> = state
        .config
        .mailboxes
        .iter()
        .map(|m| m.name.clone())
        .collect();
    let cursors = state
        .with_store(move |store, _| {
            names
                .iter()
                .map(|n| Ok(store.mailbox_cursor(n)?))
                .collect::<Result<Vec<_>, WebError>>()
        })
        .await?;
    let board = state.daemon.as_ref().map(|d| d.mailboxes.snapshot());
    let body = html! {
        h1 { "Mailboxes" }
        @if board.is_none() {
            p.muted #no-daemon { "The daemon does not run in this process (mailrules serve): the states below are what the store recorded. Run `mailrules run` with [web] to see each mailbox live." }
        }
        table #mailbox-table {
            thead { tr { th { "Mailbox" } th { "Server" } th { "Folder" } th { "State" } th { "Last mail" } th { "Last UID read" } th { "Processed" } th { "Failed" } th { "Unacknowledged" } th { "Problem" } } }
            tbody {
                @for (m, cursor) in state.config.mailboxes.iter().zip(&cursors) {
                    @let status = board.as_ref().and_then(|b| b.get(&m.name));
                    tr.mailbox-row data-mailbox=(m.name) {
                        td { (m.name) }
                        td { (m.host) ":" (m.port) }
                        td { (m.folder) }
                        td.state { (status.map(|s| state_words(&s.state)).unwrap_or("unknown")) }
                        td.last-mail { (status.and_then(|s| s.last_mail_at.as_deref()).unwrap_or("—")) }
                        td { (cursor.as_ref().map(|c| c.last_uid.to_string()).unwrap_or_else(|| "—".into())) }
                        td { (status.map(|s| s.processed.to_string()).unwrap_or_default()) }
                        td { (status.map(|s| s.failed.to_string()).unwrap_or_default()) }
                        td { (status.map(|s| s.unacknowledged.to_string()).unwrap_or_default()) }
                        td.error { (status.and_then(|s| problem(&s.state)).unwrap_or("")) }
                    }
                }
            }
        }
    };
    Ok(page("Mailboxes", &person, body))
}

fn state_words(state: &MailboxState) -> &'static str {
    match state {
        MailboxState::Starting => "starting",
        MailboxState::Watching { idle: true } => "watching (IDLE)",
        MailboxState::Watching { idle: false } => "watching (polling)",
        MailboxState::Reconnecting { .. } => "reconnecting",
        MailboxState::NeedsOperator { .. } => "needs the operator",
        MailboxState::Stopped => "stopped",
    }
}

fn problem(state: &MailboxState) -> Option<&str> {
    match state {
        MailboxState::Reconnecting { problem } | MailboxState::NeedsOperator { problem } => {
            Some(problem)
        }
        _ => None,
    }
}

/// GET /users (admins): the staff accounts and their roles (never a hash).
pub async fn users(State(state): State<Arc<WebState>>, person: Person) -> Result<Markup, WebError> {
    person.require(Role::Admin)?;
    let users = state.with_store(|store, _| Ok(store.user_list()?)).await?;
    let body = html! {
        h1 { "Users" }
        p.muted { "Accounts are managed with `mailrules user add | passwd | token | remove`." }
        table #user-table {
            thead { tr { th { "Email" } th { "Name" } th { "Role" } th { "API token" } th { "Since" } } }
            tbody {
                @for u in &users {
                    tr.user-row data-email=(u.email) data-role=(u.role) {
                        td { (u.email) } td { (u.name.as_deref().unwrap_or("")) } td { (u.role) }
                        td { (if u.token { "issued" } else { "—" }) } td { (crate::web::layout::when(&u.created_at)) }
                    }
                }
            }
        }
    };
    Ok(page("Users", &person, body))
}

/// GET /rules (admins): the rule files, what they declare, and the last load's errors.
pub async fn rules(State(state): State<Arc<WebState>>, person: Person) -> Result<Markup, WebError> {
    person.require(Role::Admin)?;
    let loaded = tokio::task::spawn_blocking({
        let state = state.clone();
        move || state.rules_state()
    })
    .await
    .map_err(|e| WebError::Internal(format!("reading the rules stopped: {e}")))?;
    let body = html! {
        h1 { "Rules" }
        p { "From " code { (state.config.rules.display()) } @if let Some(at) = &loaded.loaded_at { ", last loaded " (at) } "." }
        @if let Some(error) = &loaded.error {
            h2 { "The rules do not load" }
            pre.error #rules-error { (error) }
        }
        h2 { "Files" }
        ul #rule-files { @for f in &loaded.files { li { code { (f.display()) } } } }
        @if let Some(rules) = &loaded.rules {
            @let summary = rules.summary();
            p #rules-summary { (summary.rules) " rules, " (summary.triggers) " triggers, " (summary.schedules) " schedules." }
            h2 { "Rules" }
            table #rule-table {
                thead { tr { th { "Name" } th { "Actions" } } }
                tbody {
                    @for r in rules.rules() {
                        tr.rule-row { td { (r.name) } td { (r.actions.len()) } }
                    }
                }
            }
            h2 { "Statuses" }
            ul { @for s in rules.statuses() { li { (s.name) @if s.initial { " (initial)" } @if s.closed { " (closed)" } } } }
            h2 { "Fields" }
            ul { @for f in rules.fields() { li { (f.name) @if !f.values.is_empty() { ": " (f.values.join(", ")) } } } }
        }
    };
    Ok(page("Rules", &person, body))
}
