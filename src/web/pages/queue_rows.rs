//! The queue's table of tasks (`#queue`, also served alone at `/tasks/rows`): what the queue
//! page's script fetches again whenever the tasks' version moves, and the small cache that
//! makes every open queue with the same rows cost one query and one render per version.
//!
//! Why a cache: while the daemon ingests, the version moves at every batch and each open
//! queue asks for its rows again; 50 browsers meant 50 identical queries and renders per
//! batch, taken from the ingest's CPU. The rows depend only on the version, the store's filter
//! (which already holds what is per person, such as "mine"'s assignee) and the query's own
//! spelling (the paging links repeat it), so that is the key. Nothing per session (no CSRF
//! token, no name) is in the fragment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::response::Html;
use maud::html;

use super::queue::{filter_for, page_link, QueueQuery, MAX_PAGE, PAGE_SIZE};
use crate::store::{TaskFilter, TaskSummary};
use crate::web::auth::Person;
use crate::web::{WebError, WebState};

/// The most different row sets kept for one version: more are rendered but not kept (a
/// version lives for a fraction of a second while mail arrives, a few filters are open).
const MAX_ENTRIES: usize = 64;

/// Which rows: the store's filter and the query as spelled (for the paging links).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RowsKey {
    filter: TaskFilter,
    links: String,
}

/// The rendered rows of the current version.
#[derive(Default)]
struct Entries {
    version: i64,
    rendered: HashMap<RowsKey, Arc<String>>,
}

/// The rendered `#queue` fragments of the latest version, and the gate that makes clients
/// asking for rows not yet rendered wait for one render instead of each doing their own.
#[derive(Default)]
pub struct RowsCache {
    entries: Mutex<Entries>,
    render_gate: tokio::sync::Mutex<()>,
}

impl RowsCache {
    /// The fragment for `key` rendered at `version` or later.
    fn get(&self, key: &RowsKey, version: i64) -> Option<Arc<String>> {
        let entries = self.entries.lock().ok()?;
        if entries.version < version {
            return None;
        }
        entries.rendered.get(key).cloned()
    }

    fn put(&self, key: RowsKey, version: i64, rows: Arc<String>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if version > entries.version {
            entries.version = version;
            entries.rendered.clear();
        }
        if version == entries.version && entries.rendered.len() < MAX_ENTRIES {
            entries.rendered.insert(key, rows);
        }
    }
}

/// GET /tasks/rows: the queue's `#queue` fragment for the same query string as `/tasks`.
pub async fn rows(
    State(state): State<Arc<WebState>>,
    person: Person,
    Query(query): Query<QueueQuery>,
) -> Result<Html<String>, WebError> {
    let (rows, _) = fragment(&state, &person, &query).await?;
    Ok(Html(rows.as_str().to_string()))
}

/// The `#queue` fragment for `query` as `person` sees it, and the tasks' version it shows.
pub async fn fragment(
    state: &Arc<WebState>,
    person: &Person,
    query: &QueueQuery,
) -> Result<(Arc<String>, i64), WebError> {
    let (q, who) = (query.clone(), person.clone());
    let (filter, version) = state
        .with_store(move |store, state| {
            // Rules that do not load must not keep anyone from the queue: filters are then
            // compared as given.
            let rules = state.rules().ok();
            let filter = filter_for(&q, &who, rules.as_deref(), state.web.overdue_after)?;
            Ok((filter, store.tasks_version()?))
        })
        .await?;
    let key = RowsKey {
        filter,
        links: page_link(query, 0),
    };
    if let Some(rows) = state.queue_rows.get(&key, version) {
        return Ok((rows, version));
    }
    let _gate = state.queue_rows.render_gate.lock().await;
    // Another client may have rendered these rows while this one waited.
    if let Some(rows) = state.queue_rows.get(&key, version) {
        return Ok((rows, version));
    }
    let filter = key.filter.clone();
    // The version was read first: a change after it is seen by the next poll.
    let tasks = state
        .with_store(move |store, _| Ok(store.task_query(&filter)?))
        .await?;
    let rows = Arc::new(render(query, version, &tasks).into_string());
    state.queue_rows.put(key, version, rows.clone());
    Ok((rows, version))
}

fn render(query: &QueueQuery, version: i64, tasks: &[TaskSummary]) -> maud::Markup {
    let limit = query.limit.unwrap_or(PAGE_SIZE).clamp(1, MAX_PAGE);
    let offset = query.offset.unwrap_or(0);
    html! {
        div #queue data-version=(version) {
            @if tasks.is_empty() {
                p.muted #no-tasks { "No tasks." }
            } @else {
                table #task-table {
                    thead { tr { th { "#" } th { "Title" } th { "Status" } th { "Requester" } th { "Assignee" } th { "Updated" } } }
                    tbody {
                        @for t in tasks {
                            tr.task-row data-id=(t.id) data-status=(t.status) {
                                td { a href={ "/tasks/" (t.id) } { "#" (t.id) } }
                                td.title { a href={ "/tasks/" (t.id) } { (t.title) } }
                                td.status { (t.status) }
                                td.requester {
                                    @if let Some(name) = &t.requester_name { (name) " " }
                                    span.muted { (t.requester.as_deref().unwrap_or("")) }
                                }
                                td.assignee { (t.assignee.as_deref().unwrap_or("")) }
                                td.updated { (crate::web::layout::when(&t.updated_at)) }
                            }
                        }
                    }
                }
            }
            div.pager #pager {
                @if offset > 0 {
                    a #prev-page href=(page_link(query, offset.saturating_sub(limit))) { "← newer" }
                }
                @if tasks.len() as u64 == limit {
                    a #next-page href=(page_link(query, offset + limit)) { "older →" }
                }
            }
        }
    }
}
