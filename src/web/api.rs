//! The JSON API: `/api/tasks` and `/api/tasks/{id}` are the `task list --json` and
//! `task show --json` documents (a session or `Authorization: Bearer TOKEN`; errors are JSON
//! too), and `/api/version` is what the queue's script polls to notice new mail.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::web::auth::Person;
use crate::web::pages::queue::{filter_for, QueueQuery};
use crate::web::{WebError, WebState};

/// GET /api/tasks: the queue's filters and views as query parameters.
pub async fn tasks(
    State(state): State<Arc<WebState>>,
    person: Result<Person, WebError>,
    Query(query): Query<QueueQuery>,
) -> Response {
    let person = match person {
        Ok(p) => p,
        Err(e) => return e.into_json(),
    };
    let listed = state
        .with_store(move |store, state| {
            let rules = state.rules().ok();
            let filter = filter_for(&query, &person, rules.as_deref(), state.web.overdue_after)?;
            Ok(store.task_query(&filter)?)
        })
        .await;
    match listed {
        Ok(tasks) => Json(tasks).into_response(),
        Err(e) => e.into_json(),
    }
}

/// GET /api/tasks/{id}
pub async fn task(
    State(state): State<Arc<WebState>>,
    person: Result<Person, WebError>,
    Path(id): Path<i64>,
) -> Response {
    if let Err(e) = person {
        return e.into_json();
    }
    let shown = state
        .with_store(move |store, _| {
            store
                .task_show(id)?
                .ok_or_else(|| WebError::NotFound(format!("task #{id}")))
        })
        .await;
    match shown {
        Ok(task) => Json(task).into_response(),
        Err(e) => e.into_json(),
    }
}

/// GET /api/version: `{"version": N}`, a number that changes with every change to any task.
pub async fn version(
    State(state): State<Arc<WebState>>,
    person: Result<Person, WebError>,
) -> Response {
    if let Err(e) = person {
        return e.into_json();
    }
    match state
        .with_store(|store, _| Ok(store.tasks_version()?))
        .await
    {
        Ok(version) => Json(serde_json::json!({ "version": version })).into_response(),
        Err(e) => e.into_json(),
    }
}
