//! One task (`/tasks/{id}`): its facts and fields, the conversation as one timeline (incoming
//! mail, notes, replies with their delivery state, status/field/assignee changes with who
//! made them, analytics rows), and the forms that work it (for agents and admins).
//! Everything from mail is shown as text: maud escapes every value it inserts.

use std::sync::Arc;

use axum::extract::{Path, State};
use maud::{html, Markup};

use crate::people::Role;
use crate::rules::{FieldDecl, FieldType};
use crate::store::{
    CommentView, HistoryEntry, MessageFilter, MessageSummary, OutboxRow, TaskAnalyticsRow, TaskView,
};
use crate::web::auth::Person;
use crate::web::layout::{csrf_field, page};
use crate::web::{WebError, WebState};

/// The most messages of one task listed on its page.
const MESSAGES_SHOWN: u32 = 1000;

/// What a task's page shows.
pub struct TaskPage {
    pub task: TaskView,
    pub history: Vec<HistoryEntry>,
    pub messages: Vec<MessageSummary>,
    pub replies: Vec<OutboxRow>,
    pub statuses: Vec<String>,
    pub fields: Vec<FieldDecl>,
    /// Who may be assigned (agents and admins), offered in the assignee field.
    pub staff: Vec<String>,
}

/// One entry of the timeline; they are shown in time order.
enum Item<'a> {
    Mail(&'a MessageSummary),
    Comment(&'a CommentView),
    Reply(&'a OutboxRow),
    Change(&'a HistoryEntry),
    Analytics(&'a TaskAnalyticsRow),
}

impl Item<'_> {
    fn at(&self) -> &str {
        match self {
            Item::Mail(m) => &m.received_at,
            Item::Comment(c) => &c.at,
            Item::Reply(r) => &r.created_at,
            Item::Change(h) => &h.at,
            Item::Analytics(a) => &a.at,
        }
    }
}

/// GET /tasks/{id}
pub async fn show(
    State(state): State<Arc<WebState>>,
    person: Person,
    Path(id): Path<i64>,
) -> Result<Markup, WebError> {
    let data = state
        .with_store(move |store, state| {
            let Some(task) = store.task_show(id)? else {
                return Err(WebError::NotFound(format!("task #{id}")));
            };
            let history = store.task_history(id)?.unwrap_or_default();
            let filter = MessageFilter {
                task: Some(id),
                limit: Some(MESSAGES_SHOWN),
                ..MessageFilter::default()
            };
            let mut messages = store.messages(&filter)?;
            messages.reverse();
            let replies = store.outbox_for_task(id)?;
            let (statuses, fields) = match state.rules() {
                Ok(rules) => (
                    rules.statuses().iter().map(|s| s.name.clone()).collect(),
                    rules.fields().to_vec(),
                ),
                Err(_) => (Vec::new(), Vec::new()),
            };
            let staff = store
                .user_list()?
                .into_iter()
                .filter(|u| u.role >= Role::Agent)
                .map(|u| u.email)
                .collect();
            Ok(TaskPage {
                task,
                history,
                messages,
                replies,
                statuses,
                fields,
                staff,
            })
        })
        .await?;
    let title = format!("#{} {}", data.task.id, data.task.title);
    Ok(page(&title, &person, render(&data, &person)))
}

fn render(data: &TaskPage, person: &Person) -> Markup {
    let t = &data.task;
    let mut items: Vec<Item> = Vec::new();
    items.extend(data.messages.iter().map(Item::Mail));
    items.extend(t.comments.iter().map(Item::Comment));
    items.extend(data.replies.iter().map(Item::Reply));
    items.extend(
        data.history
            .iter()
            .filter(|h| matches!(h.kind.as_str(), "created" | "status" | "field" | "assignee"))
            .map(Item::Change),
    );
    items.extend(t.analytics.iter().map(Item::Analytics));
    // Stable: at the same second, mail comes before what it caused.
    items.sort_by(|a, b| a.at().cmp(b.at()));
    html! {
        h1 #task-title { "#" (t.id) " " (t.title) }
        div.task-layout {
            section #timeline-section {
                @if !t.description.trim().is_empty() {
                    pre.text #description { (t.description.trim_end()) }
                }
                h2 { "Conversation" }
                ol.timeline #timeline {
                    @for item in &items { (render_item(item)) }
                }
            }
            aside #task-side {
                dl.facts #facts {
                    dt { "Status" } dd #task-status { (t.status) }
                    dt { "Assignee" } dd #task-assignee { (t.assignee.as_deref().unwrap_or("—")) }
                    dt { "Requester" } dd #task-requester {
                        @if let Some(name) = &t.requester_name { (name) " " }
                        (t.requester.as_deref().unwrap_or("—"))
                    }
                    @if let Some(parent) = t.parent {
                        dt { "Parent" } dd { a href={ "/tasks/" (parent) } { "#" (parent) } }
                    }
                    dt { "Created" } dd { (crate::web::layout::when(&t.created_at)) }
                    dt { "Updated" } dd { (crate::web::layout::when(&t.updated_at)) }
                    @for (name, value) in &t.fields {
                        dt.field-name { (name) } dd.field-value data-field=(name) { (value) }
                    }
                }
                @if person.may(Role::Agent) {
                    (actions(data, person))
                }
            }
        }
    }
}

fn render_item(item: &Item) -> Markup {
    match item {
        Item::Mail(m) => html! {
            li.timeline-item.kind-mail data-kind="mail" data-message=(m.id) {
                header {
                    "Mail from " (m.from.as_deref().unwrap_or("unknown sender")) " · " (crate::web::layout::when(&m.received_at))
                    " · " a.message-link href={ "/messages/" (m.id) } { "attachments and details" }
                    " · " a.original-link href={ "/messages/" (m.id) "/raw" } { "original" }
                }
                p.subject { (m.subject) }
            }
        },
        Item::Comment(c) => {
            let author = match (&c.author_name, &c.author) {
                (Some(name), Some(address)) => format!("{name} <{address}>"),
                (None, Some(address)) => address.clone(),
                (Some(name), None) => name.clone(),
                (None, None) => "mailrules".to_string(),
            };
            html! {
                li.timeline-item.kind-comment data-kind=(if c.auto { "auto-comment" } else { "comment" }) {
                    header { (author) @if c.auto { " (automatic)" } " · " (crate::web::layout::when(&c.at)) }
                    pre.text { (c.text.trim_end()) }
                    @if !c.attachments.is_empty() {
                        ul.attachments {
                            @for (n, a) in c.attachments.iter().enumerate() {
                                li.attachment {
                                    @if let Some(message) = c.message {
                                        a.attachment-link href={ "/messages/" (message) "/attachments/" (n + 1) } { (a.name) }
                                    } @else {
                                        (a.name)
                                    }
                                    " " span.muted { "(" (a.content_type) ", " (a.size) " bytes)" }
                                }
                            }
                        }
                    }
                }
            }
        }
        Item::Reply(r) => html! {
            li.timeline-item.kind-reply data-kind="reply" data-outbox=(r.id) data-state=(r.status) {
                header {
                    (outgoing_kind(&r.kind)) " to " (r.recipient) " · " (crate::web::layout::when(&r.created_at)) " · "
                    span class={ "delivery state-" (r.status) } { (r.status) }
                    @if let Some(reason) = &r.reason { " — " (reason) }
                }
                p.subject { (r.subject) }
                pre.text { (r.body.trim_end()) }
            }
        },
        Item::Change(h) => html! {
            li.timeline-item.kind-change data-kind=(h.kind) {
                header { (h.by) " · " (crate::web::layout::when(&h.at)) }
                p { (describe(h)) }
            }
        },
        Item::Analytics(a) => html! {
            li.timeline-item.kind-analytics data-kind="analytics" {
                header { "Analytics " a href={ "/analytics/" (crate::web::layout::url_encode(&a.table)) } { (a.table) } " · " (crate::web::layout::when(&a.at)) }
                ul {
                    @for (k, v) in &a.values {
                        li { (k) ": " (value_text(v)) }
                    }
                }
            }
        },
    }
}

/// A change in words.
fn describe(e: &HistoryEntry) -> String {
    let from = e.from.as_deref().unwrap_or("—");
    let to = e.to.as_deref().unwrap_or("—");
    match e.kind.as_str() {
        "created" => format!("created the task: {to}"),
        "status" if e.from.is_none() => format!("status: {to}"),
        "status" => format!("status: {from} → {to}"),
        "assignee" if e.from.is_none() => format!("assignee: {to}"),
        "assignee" => format!("assignee: {from} → {to}"),
        "field" => format!("field {}: {from} → {to}", e.name.as_deref().unwrap_or("")),
        kind => format!("{kind}: {to}"),
    }
}

/// A stored value as text (strings without their JSON quotes).
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The forms that work the task.
fn actions(data: &TaskPage, person: &Person) -> Markup {
    let t = &data.task;
    html! {
        form.action #status-form method="post" action={ "/tasks/" (t.id) "/status" } {
            (csrf_field(person))
            label { "Status"
                @if data.statuses.is_empty() {
                    input #status-select type="text" name="status" value=(t.status) required;
                } @else {
                    select #status-select name="status" {
                        @for s in &data.statuses {
                            option value=(s) selected[*s == t.status] { (s) }
                        }
                    }
                }
            }
            button type="submit" { "Set status" }
        }
        form.action #assignee-form method="post" action={ "/tasks/" (t.id) "/assignee" } {
            (csrf_field(person))
            label { "Assignee (an address, or none)"
                input #assignee-input type="text" name="assignee" list="staff" value=(t.assignee.as_deref().unwrap_or("")) placeholder="none";
            }
            datalist #staff { @for email in &data.staff { option value=(email) {} } }
            button type="submit" { "Assign" }
        }
        @if !data.fields.is_empty() {
            form.action #fields-form method="post" action={ "/tasks/" (t.id) "/fields" } {
                (csrf_field(person))
                @for f in &data.fields {
                    @let current = t.fields.get(&f.name).cloned().unwrap_or_default();
                    label { (f.name)
                        @if f.kind == FieldType::Choice {
                            select.field-input name={ "field:" (f.name) } {
                                option value="" selected[current.is_empty()] { "—" }
                                @for v in &f.values {
                                    option value=(v) selected[*v == current] { (v) }
                                }
                            }
                        } @else {
                            input.field-input type="text" name={ "field:" (f.name) } value=(current);
                        }
                    }
                }
                button type="submit" { "Save fields" }
            }
        }
        form.action #note-form method="post" action={ "/tasks/" (t.id) "/note" } {
            (csrf_field(person))
            label { "Internal note" textarea name="text" required {} }
            button type="submit" { "Add note" }
        }
        form.action #reply-form method="post" action={ "/tasks/" (t.id) "/reply" } {
            (csrf_field(person))
            label { "Reply to " (t.requester.as_deref().unwrap_or("the requester")) textarea name="text" required {} }
            label { "Cc (addresses, comma-separated)" input type="text" name="cc"; }
            button type="submit" { "Send reply" }
        }
        form.action #close-form method="post" action={ "/tasks/" (t.id) "/close" } {
            (csrf_field(person))
            button type="submit" { "Close the task" }
        }
    }
}

/// What an outgoing item is, in words: a person's answer, a rule's automatic reply, a
/// notification to staff, a webhook delivery.
fn outgoing_kind(kind: &str) -> &str {
    match kind {
        crate::store::ANSWER_KIND => "Reply",
        "reply" => "Automatic reply",
        "notify" => "Notification",
        "webhook" => "Webhook",
        other => other,
    }
}
