//! Messages (`/messages`, `/messages/{id}`): every message's fate; one message with its error,
//! the `explain` of it under the current rules, its HTML body cleaned by ammonia (no script,
//! handler, `javascript:` link, style or image survives), its attachments to download, its
//! original bytes as plain text, and for admins the retry of a failed one.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, PreEscaped};

use super::given;
use crate::people::Role;
use crate::pipeline::{Explanation, Incoming, OutcomeStatus, Pipeline};
use crate::store::{KeptBytes, MessageDetail, MessageFate, MessageFilter, Store};
use crate::web::auth::Person;
use crate::web::layout::{csrf_field, page};
use crate::web::{WebError, WebState};

/// Messages listed on one page unless `limit` says otherwise.
const LISTED: u32 = 200;

#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    /// applied, ignored, failed, duplicate
    status: Option<String>,
    task: Option<i64>,
    limit: Option<u32>,
}

/// GET /messages
pub async fn list(
    State(state): State<Arc<WebState>>,
    person: Person,
    Query(query): Query<ListQuery>,
) -> Result<Markup, WebError> {
    let fate = match given(&query.status).as_deref() {
        None => None,
        Some("applied") => Some(MessageFate::Applied),
        Some("ignored") => Some(MessageFate::Ignored),
        Some("failed") => Some(MessageFate::Failed),
        Some("duplicate") => Some(MessageFate::Duplicate),
        Some(other) => {
            return Err(WebError::BadRequest(format!(
                "unknown status \"{other}\": applied, ignored, failed or duplicate"
            )))
        }
    };
    let filter = MessageFilter {
        fate,
        task: query.task,
        limit: Some(query.limit.unwrap_or(LISTED).clamp(1, 5000)),
    };
    let messages = state
        .with_store(move |store, _| Ok(store.messages(&filter)?))
        .await?;
    let current = given(&query.status);
    let body = html! {
        h1 { "Messages" }
        ul.views #message-filters {
            li { a href="/messages" class=[current.is_none().then_some("current")] { "All" } }
            @for s in ["applied", "ignored", "failed", "duplicate"] {
                li { a href={ "/messages?status=" (s) } class=[(current.as_deref() == Some(s)).then_some("current")] { (s) } }
            }
        }
        @if messages.is_empty() {
            p.muted { "No messages." }
        } @else {
            table #message-table {
                thead { tr { th { "#" } th { "Received" } th { "From" } th { "Subject" } th { "Fate" } th { "Rule" } th { "Task" } th { "Error" } } }
                tbody {
                    @for m in &messages {
                        tr.message-row data-id=(m.id) data-status=(m.status) {
                            td { a href={ "/messages/" (m.id) } { (m.id) } }
                            td { (crate::web::layout::when(&m.received_at)) }
                            td { (m.from.as_deref().unwrap_or("")) }
                            td { a href={ "/messages/" (m.id) } { (m.subject) } }
                            td class={ "state-" (m.status) } { (m.status) @if m.duplicates > 0 { " (+" (m.duplicates) " again)" } }
                            td { (m.rule.as_deref().unwrap_or("")) }
                            td { @if let Some(t) = m.task { a href={ "/tasks/" (t) } { "#" (t) } } }
                            td.error { (m.error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Messages", &person, body))
}

struct MessagePage {
    detail: MessageDetail,
    html: Option<String>,
    attachments: Vec<crate::message::Attachment>,
    explanation: Option<Result<Explanation, String>>,
}

/// GET /messages/{id}
pub async fn show(
    State(state): State<Arc<WebState>>,
    person: Person,
    Path(id): Path<i64>,
) -> Result<Markup, WebError> {
    let data = state
        .with_store(move |store, state| {
            let detail = find(store, id)?;
            let raw = store.message_raw(id)?;
            let (html, attachments) = match &raw {
                Some(raw) => (
                    crate::message::html_body(raw).map(|h| clean_html(&h)),
                    crate::message::attachment_contents(raw)
                        .map(|all| all.into_iter().map(|(a, _)| a).collect())
                        .unwrap_or_default(),
                ),
                None => (None, Vec::new()),
            };
            let explanation = match (&raw, detail.summary.status.as_str()) {
                (Some(raw), "failed") => Some(explain(state, raw, &detail.mailbox)),
                _ => None,
            };
            Ok(MessagePage {
                detail,
                html,
                attachments,
                explanation,
            })
        })
        .await?;
    let title = format!("Message {id}");
    Ok(page(&title, &person, render(&data, &person)))
}

/// What the current rules would do with the message (a fresh connection: the pipeline owns
/// its store).
fn explain(state: &WebState, raw: &[u8], mailbox: &str) -> Result<Explanation, String> {
    let rules = state.rules().map_err(|e| e.to_string())?;
    let store = Store::open(&state.config.store).map_err(|e| e.to_string())?;
    let pipeline = Pipeline::new(state.config.clone(), rules, store);
    pipeline.explain(raw, mailbox).map_err(|e| e.to_string())
}

fn render(data: &MessagePage, person: &Person) -> Markup {
    let d = &data.detail;
    let m = &d.summary;
    html! {
        h1 #message-subject { (m.subject) }
        dl.facts #message-facts {
            dt { "From" } dd { (m.from.as_deref().unwrap_or("—")) }
            dt { "Message-ID" } dd { (m.message_id.as_deref().unwrap_or("—")) }
            dt { "Received" } dd { (crate::web::layout::when(&m.received_at)) " in " (d.mailbox) " (" (d.source) ")" }
            dt { "Fate" } dd #message-status class={ "state-" (m.status) } { (m.status) }
            @if let Some(rule) = &m.rule { dt { "Rule" } dd { (rule) } }
            @if let Some(task) = m.task { dt { "Task" } dd { a href={ "/tasks/" (task) } { "#" (task) } } }
            @if let Some(error) = &m.error { dt { "Error" } dd.error #message-error { (error) } }
            dt { "Original" } dd {
                @match &d.bytes {
                    KeptBytes::Kept { size, .. } => { a #raw-link href={ "/messages/" (m.id) "/raw" } { "the original message" } " (" (size) " bytes)" }
                    KeptBytes::Dropped { at } => { "deleted at " (at) " (keep_mail)" }
                    KeptBytes::None => { "none was received" }
                }
            }
        }
        @if m.status == "failed" && person.may(Role::Admin) {
            form.action #retry-form method="post" action={ "/messages/" (m.id) "/retry" } {
                (csrf_field(person))
                button type="submit" { "Retry with the current rules" }
            }
        }
        @if let Some(explanation) = &data.explanation {
            h2 { "What the current rules would do with it" }
            @match explanation {
                Ok(e) => { (render_explanation(e)) }
                Err(why) => { p.error { (why) } }
            }
        }
        @if !data.attachments.is_empty() {
            h2 { "Attachments" }
            ul #attachments {
                @for (n, a) in data.attachments.iter().enumerate() {
                    li.attachment {
                        a.attachment-link href={ "/messages/" (m.id) "/attachments/" (n + 1) } { (a.name) }
                        " " span.muted { "(" (a.content_type) ", " (a.size) " bytes)" }
                    }
                }
            }
        }
        @if let Some(html) = &data.html {
            h2 { "As the sender formatted it" }
            p.muted { "Cleaned: no scripts, styles or images; links open elsewhere." }
            // ammonia's output: only its allowed tags and attributes, every text escaped.
            div.mail-html #mail-html { (PreEscaped(html)) }
        }
    }
}

fn render_explanation(e: &Explanation) -> Markup {
    html! {
        div #explain {
            p { "Thread: " @match e.thread.task { Some(t) => { a href={ "/tasks/" (t) } { "#" (t) } } None => { "a new task" } } }
            ul {
                @for r in &e.rules {
                    li { @if r.matched { strong { "MATCH " } } (r.name) ": " (r.why) }
                }
            }
            @if !e.actions.is_empty() {
                p { "Actions:" }
                ul { @for a in &e.actions { li { (crate::plan::describe(a)) } } }
            }
            @if let Some(error) = &e.error { p.error { "Would fail: " (error) } }
        }
    }
}

/// Sanitizes a message's HTML: ammonia's safe tags, no images (nothing remote is fetched),
/// no style, links only to http(s)/mailto and opened without a referrer.
pub fn clean_html(html: &str) -> String {
    let schemes: HashSet<&str> = ["http", "https", "mailto"].into_iter().collect();
    ammonia::Builder::default()
        .rm_tags(["img"])
        .url_schemes(schemes)
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(html)
        .to_string()
}

fn find(store: &Store, id: i64) -> Result<MessageDetail, WebError> {
    store
        .message(id)?
        .ok_or_else(|| WebError::NotFound(format!("message {id}")))
}

/// GET /messages/{id}/raw: the original bytes, as plain text.
pub async fn raw(
    State(state): State<Arc<WebState>>,
    _person: Person,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let bytes = state
        .with_store(move |store, _| {
            find(store, id)?;
            store.message_raw(id)?.ok_or_else(|| {
                WebError::NotFound(format!("original of message {id} (keep_mail deleted it)"))
            })
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response())
}

/// GET /messages/{id}/attachments/{number}: always a download, never shown inline.
pub async fn attachment(
    State(state): State<Arc<WebState>>,
    _person: Person,
    Path((id, number)): Path<(i64, usize)>,
) -> Result<Response, WebError> {
    let (name, contents) = state
        .with_store(move |store, _| {
            find(store, id)?;
            let raw = store
                .message_raw(id)?
                .ok_or_else(|| WebError::NotFound(format!("original of message {id}")))?;
            let mut all = crate::message::attachment_contents(&raw)
                .map_err(|e| WebError::BadRequest(format!("message {id} cannot be parsed: {e}")))?;
            if number == 0 || number > all.len() {
                return Err(WebError::NotFound(format!(
                    "attachment {number} of message {id}"
                )));
            }
            let (found, contents) = all.swap_remove(number - 1);
            Ok((found.name, contents))
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, content_disposition(&name)),
        ],
        contents,
    )
        .into_response())
}

/// `attachment` with an ASCII fallback name and the real one encoded (RFC 6266 / 5987): a
/// hostile name cannot break out of the header.
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ascii = if ascii.trim().is_empty() {
        "attachment".to_string()
    } else {
        ascii
    };
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// POST /messages/{id}/retry (admins): the failed message through the current rules again.
pub async fn retry(
    State(state): State<Arc<WebState>>,
    person: Person,
    Path(id): Path<i64>,
) -> Result<Redirect, WebError> {
    person.require(Role::Admin)?;
    state
        .with_store(move |store, state| {
            let failed = store.failed_raw(&[id])?;
            let Some((f, raw)) = failed.into_iter().find(|(f, _)| f.id == id) else {
                return Err(WebError::NotFound(format!("failed message {id}")));
            };
            let Some(raw) = raw else {
                return Err(WebError::Refused(format!(
                    "failed message {id} cannot be run again: its original bytes were deleted (keep_mail)"
                )));
            };
            let rules = state.rules()?;
            let mut pipeline = Pipeline::new(state.config.clone(), rules, Store::open(&state.config.store)?);
            let outcomes = pipeline.process_batch(vec![Incoming::new(raw, &f.mailbox, f.source)], None)?;
            if let Some(o) = outcomes.iter().find(|o| o.status == OutcomeStatus::Failed) {
                tracing::warn!("web: message {id} still fails: {}", o.error.as_deref().unwrap_or(""));
            }
            tracing::info!("web: {} retried message {id}", person.user.email);
            Ok(())
        })
        .await?;
    state.wake_outbox();
    Ok(Redirect::to(&format!("/messages/{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_html_is_cleaned() {
        let html = r#"<p onclick="x()">Hi<script>alert(1)</script></p>
            <a href="javascript:alert(2)">a</a><a href="https://ok.example/">b</a>
            <img src="https://tracker.example/p.gif" onerror="alert(3)">
            <div style="background:url(https://tracker.example/c)">c</div>
            <style>body{background:url(https://tracker.example/s)}</style>"#;
        let clean = clean_html(html);
        for bad in [
            "<script",
            "onclick",
            "onerror",
            "javascript:",
            "<img",
            "tracker.example",
            "style",
        ] {
            assert!(!clean.contains(bad), "{bad} in {clean}");
        }
        assert!(clean.contains("https://ok.example/"), "{clean}");
    }

    #[test]
    fn attachment_names_cannot_break_the_header() {
        let header = content_disposition("a\"; x=\r\n<script>.pdf");
        assert!(!header.contains('\r') && !header.contains('<'), "{header}");
        assert!(
            header.starts_with("attachment; filename=\"a__ x____script_.pdf\""),
            "{header}"
        );
    }
}
