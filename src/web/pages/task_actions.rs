//! The forms of a task's page: status, assignee, fields, note, reply, close. Each is a POST
//! whose CSRF token the middleware checked; each is checked against the rules like `task set`
//! (`RuleSet::plan_change`) and made by the store's one operation for a person's change
//! (`apply_change`, or `queue_answer` for a reply), recorded under the person's address.
//! On success the browser goes back to the task (303).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Redirect;
use axum::Form;

use super::given;
use crate::people::Role;
use crate::rules::ManualChange;
use crate::store::{Answer, Change};
use crate::web::auth::Person;
use crate::web::{WebError, WebState};

#[derive(serde::Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    status: String,
}

#[derive(serde::Deserialize)]
pub struct AssigneeForm {
    #[serde(default)]
    assignee: String,
}

#[derive(serde::Deserialize)]
pub struct TextForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    cc: Option<String>,
}

/// POST /tasks/{id}/status
pub async fn status(
    State(state): State<Arc<WebState>>,
    person: Person,
    Path(id): Path<i64>,
    Form(form): Form<StatusForm>,
) -> Result<Redirect, WebError> {
    let status =
        given(&Some(form.status)).ok_or_else(|| WebError::BadRequest("choose a status".into()))?;
    let change = ManualChange {
        status: Some(status),
        ..ManualChange::default()
    };
    change_task(&state, &person, id, change).await
}

/// POST /tasks/{id}/assignee (an address, or empty / `none` to take the assignee off)
pub async fn assignee(
    State(state): State<Arc<WebState>>,
    person: Person,
    Path(id): Path<i64>,
    Form(form): Form<AssigneeForm>,
) -> Result<Redirect, WebError> {
    let assignee = given(&Some(form.assignee)).unwrap_or_else(|| "none".into());
    let change = ManualChange {
        assignee: Some(assignee),
        ..ManualChange::default()
    };
    change_task(&state, &person, id, change).await
}

/// POST /tasks/{id}/fields: `field:NAME=VALUE` pairs; only those that differ from the task's
/// values are changed (an empty value clears a field).
pub async fn fields(
    State(state): State<Arc<WebState>>,
    person: Person,
    Path(id): Path<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Redirect, WebError> {
    person.require(Role::Agent)?;
    let sent: Vec<(String, String)> = form
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("field:")?.to_string(), v.trim().to_string())))
        .collect();
    let current = state
        .with_store(move |store, _| {
            store
                .task_show(id)?
                .map(|t| t.fields)
                .ok_or_else(|| WebError::NotFound(format!("task #{id}")))
        })
        .await?;
    let changed: Vec<(String, String)> = sent
        .into_iter()
        .filter(|(name, value)| current.get(name).map(String::as_str).unwrap_or("") != value)
        .collect();
    if changed.is_empty() {
        return Ok(back(id));
    }
    let change = ManualChange {
        fields: changed,
        ..ManualChange::default()
    };
    change_task(&state, &person, id, change).await
}

/// POST /tasks/{id}/note
pub async fn note(
    State(state): State<Arc<WebState>>,
    person: Person,
    Path(id): Path<i64>,
    Form(form): Form<TextForm>,
) -> Result<Redirect, WebError> {
    let change = ManualChange {
        comment: Some(form.text),
        ..ManualChange::default()
    };
    change_task(&state, &person, id, change).await
}

/// POST /tasks/{id}/close: the first `closed = true` status.
pub async fn close(
    State(state): State<Arc<WebState>>,
    person: Person,
    Path(id): Path<i64>,
) -> Result<Redirect, WebError> {
    let change = ManualChange {
        close: true,
        ..ManualChange::default()
    };
    change_task(&state, &person, id, change).await
}

/// POST /tasks/{id}/reply: queued in the outbox (the daemon sends it).
pub async fn reply(
    State(state): State<Arc<WebState>>,
    person: Person,
    Path(id): Path<i64>,
    Form(form): Form<TextForm>,
) -> Result<Redirect, WebError> {
    person.require(Role::Agent)?;
    if form.text.trim().is_empty() {
        return Err(WebError::BadRequest("the reply is empty".into()));
    }
    let cc = form
        .cc
        .as_deref()
        .unwrap_or("")
        .split([',', ' ', ';'])
        .filter(|c| !c.trim().is_empty())
        .map(|c| {
            crate::outgoing::bare_address(c)
                .ok_or_else(|| WebError::BadRequest(format!("cc \"{c}\" is not an email address")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let email = person.user.email.clone();
    // Normalised line ends: a browser sends CRLF.
    let text = form.text.replace("\r\n", "\n");
    state
        .with_store(move |store, state| {
            let rules = state.rules()?;
            let opts = state.apply_options(&rules);
            let answer = Answer { task: id, text, cc };
            store.queue_answer(answer, &email, &opts)?;
            Ok(())
        })
        .await?;
    state.wake_outbox();
    Ok(back(id))
}

/// Checks `change` against the rules and makes it as `person`.
async fn change_task(
    state: &Arc<WebState>,
    person: &Person,
    id: i64,
    mut change: ManualChange,
) -> Result<Redirect, WebError> {
    person.require(Role::Agent)?;
    if let Some(text) = change.comment.as_mut() {
        *text = text.replace("\r\n", "\n");
    }
    let email = person.user.email.clone();
    state
        .with_store(move |store, state| {
            let rules = state.rules()?;
            let actions = rules.plan_change(id, &email, &change)?;
            let opts = state.apply_options(&rules);
            store.apply_change(Change { task: id, actions }, &email, &opts)?;
            Ok(())
        })
        .await?;
    // A trigger the change fired may have queued mail.
    state.wake_outbox();
    Ok(back(id))
}

fn back(id: i64) -> Redirect {
    Redirect::to(&format!("/tasks/{id}"))
}
