//! The queue (`/tasks`): the filters of `task list` (status, open, assignee, field, search,
//! paging), the views a team uses (mine, waiting for us, waiting for the customer, overdue),
//! the count of tasks per status. The table of tasks itself (`#queue`, which the page's script
//! fetches again when a task changes) is `queue_rows`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Redirect;
use maud::{html, Markup, PreEscaped};

use super::{given, queue_rows};
use crate::rules::RuleSet;
use crate::store::{TaskFilter, Waiting};
use crate::web::auth::Person;
use crate::web::layout::{page, url_encode};
use crate::web::{WebError, WebState};

/// Tasks on one page of the queue unless `limit` says otherwise.
pub const PAGE_SIZE: u64 = 50;
/// The most a page shows, whatever `limit` asks.
pub(super) const MAX_PAGE: u64 = 500;

/// The queue's query string: `task list`'s filters, a view, paging.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct QueueQuery {
    pub status: Option<String>,
    /// Any non-empty value: leave out closed tasks.
    pub open: Option<String>,
    pub assignee: Option<String>,
    /// `NAME=VALUE`.
    pub field: Option<String>,
    pub search: Option<String>,
    /// `mine`, `waiting-us`, `waiting-customer` or `overdue`.
    pub view: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// The views, as (query value, label).
pub const VIEWS: [(&str, &str); 4] = [
    ("mine", "Mine"),
    ("waiting-us", "Waiting for us"),
    ("waiting-customer", "Waiting for the customer"),
    ("overdue", "Overdue"),
];

pub async fn home(_person: Person) -> Redirect {
    Redirect::to("/tasks")
}

/// The store's filter for a query: statuses and choice values in their declared spelling (as
/// `task list` does), the view turned into filters, the page's size.
pub fn filter_for(
    query: &QueueQuery,
    person: &Person,
    rules: Option<&RuleSet>,
    overdue_after: std::time::Duration,
) -> Result<TaskFilter, WebError> {
    let limit = query.limit.unwrap_or(PAGE_SIZE).clamp(1, MAX_PAGE);
    let mut filter = TaskFilter {
        limit: Some(limit),
        offset: query.offset.unwrap_or(0),
        search: given(&query.search),
        ..TaskFilter::default()
    };
    let open = given(&query.open).is_some();
    let closed = || rules.map(RuleSet::closed_statuses).unwrap_or_default();
    if let Some(status) = given(&query.status) {
        filter.status = Some(match rules {
            Some(rules) => rules.declared_status(&status)?,
            None => status,
        });
    }
    if open {
        filter.not_status = closed();
    }
    if let Some(field) = given(&query.field) {
        let Some((name, value)) = field.split_once('=') else {
            return Err(WebError::BadRequest(format!(
                "field \"{field}\": give NAME=VALUE"
            )));
        };
        filter.field = Some(match rules {
            Some(rules) => rules.declared_field(name, value)?,
            None => (name.trim().to_string(), value.trim().to_string()),
        });
    }
    if let Some(assignee) = given(&query.assignee) {
        let address = crate::outgoing::bare_address(&assignee).ok_or_else(|| {
            WebError::BadRequest(format!("assignee \"{assignee}\" is not an email address"))
        })?;
        filter.assignee = Some(address);
    }
    match given(&query.view).as_deref() {
        None => {}
        Some("mine") => {
            filter.assignee = Some(person.user.email.clone());
            filter.not_status = closed();
        }
        Some("waiting-us") => {
            filter.waiting = Some(Waiting::Us);
            filter.not_status = closed();
        }
        Some("waiting-customer") => {
            filter.waiting = Some(Waiting::Customer);
            filter.not_status = closed();
        }
        Some("overdue") => {
            let age =
                chrono::Duration::from_std(overdue_after).unwrap_or(chrono::Duration::days(1));
            filter.waiting = Some(Waiting::Us);
            filter.not_status = closed();
            filter.last_mail_before = Some(crate::store::timestamp_at(chrono::Utc::now() - age));
        }
        Some(other) => {
            return Err(WebError::BadRequest(format!(
            "unknown view \"{other}\": the views are mine, waiting-us, waiting-customer, overdue"
        )))
        }
    }
    Ok(filter)
}

/// What one queue page needs besides its rows.
struct QueuePage {
    counts: Arc<Vec<(String, u64)>>,
    statuses: Vec<String>,
    /// The `#queue` fragment, as `/tasks/rows` serves it (shared with the other clients that
    /// asked for the same rows at the same version).
    rows: Arc<String>,
}

/// GET /tasks
pub async fn queue(
    State(state): State<Arc<WebState>>,
    person: Person,
    Query(query): Query<QueueQuery>,
) -> Result<Markup, WebError> {
    let (rows, version) = queue_rows::fragment(&state, &person, &query).await?;
    let (counts, statuses) = state
        .with_store(move |store, state| {
            let statuses = state
                .rules()
                .ok()
                .map(|r| r.statuses().iter().map(|s| s.name.clone()).collect())
                .unwrap_or_default();
            Ok((state.status_counts(store, version)?, statuses))
        })
        .await?;
    let data = QueuePage {
        counts,
        statuses,
        rows,
    };
    Ok(page("Queue", &person, render(&query, &data)))
}

fn render(query: &QueueQuery, data: &QueuePage) -> Markup {
    let view = given(&query.view);
    let total: u64 = data.counts.iter().map(|(_, n)| n).sum();
    html! {
        h1 { "Queue" }
        ul.views #views {
            li { a href="/tasks" class=[view.is_none().then_some("current")] { "All" } }
            @for (key, label) in VIEWS {
                li { a href={ "/tasks?view=" (key) } data-view=(key)
                    class=[(view.as_deref() == Some(key)).then_some("current")] { (label) } }
            }
        }
        ul.counts #status-counts {
            li { span.muted { (total) " tasks:" } }
            @for (status, count) in data.counts.iter() {
                li { a.status-count href={ "/tasks?status=" (url_encode(status)) }
                    data-status=(status) data-count=(count) { (status) " " (count) } }
            }
        }
        form.filters #filter-form method="get" action="/tasks" {
            @if let Some(v) = &view { input type="hidden" name="view" value=(v); }
            label { "Status"
                select name="status" #filter-status {
                    option value="" { "any" }
                    @for s in &data.statuses {
                        option value=(s) selected[given(&query.status).as_deref() == Some(s.as_str())] { (s) }
                    }
                    @if data.statuses.is_empty() {
                        @if let Some(s) = given(&query.status) { option value=(s) selected { (s) } }
                    }
                }
            }
            label { "Assignee" input type="text" name="assignee" value=[query.assignee.as_deref()] placeholder="anna@acme.example"; }
            label { "Field" input type="text" name="field" value=[query.field.as_deref()] placeholder="NAME=VALUE"; }
            label { "Search" input type="search" name="search" value=[query.search.as_deref()]; }
            label { "Open only" input type="checkbox" name="open" value="1" checked[given(&query.open).is_some()]; }
            button type="submit" { "Filter" }
        }
        (PreEscaped(data.rows.as_str()))
    }
}

/// The same query at another offset.
pub(super) fn page_link(query: &QueueQuery, offset: u64) -> String {
    let mut parts = Vec::new();
    let pairs = [
        ("status", &query.status),
        ("open", &query.open),
        ("assignee", &query.assignee),
        ("field", &query.field),
        ("search", &query.search),
        ("view", &query.view),
    ];
    for (key, value) in pairs {
        if let Some(v) = given(value) {
            parts.push(format!("{key}={}", url_encode(&v)));
        }
    }
    if let Some(limit) = query.limit {
        parts.push(format!("limit={limit}"));
    }
    parts.push(format!("offset={offset}"));
    format!("/tasks?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::Role;
    use crate::store::User;
    use std::time::Duration;

    fn anna() -> Person {
        Person {
            user: User {
                id: 1,
                email: "anna@acme.example".into(),
                name: None,
                role: Role::Agent,
                token: false,
                created_at: String::new(),
            },
            csrf: String::new(),
            session: None,
        }
    }

    fn rules() -> RuleSet {
        let text = "[[status]]\nname = \"Новая\"\ninitial = true\n\
                    [[status]]\nname = \"Закрыта\"\nclosed = true\n";
        RuleSet::from_sources(&[("r.toml".into(), text.into())]).unwrap()
    }

    fn query(pairs: &[(&str, &str)]) -> QueueQuery {
        let mut q = QueueQuery::default();
        for (k, v) in pairs {
            let v = Some(v.to_string());
            match *k {
                "status" => q.status = v,
                "open" => q.open = v,
                "assignee" => q.assignee = v,
                "field" => q.field = v,
                "search" => q.search = v,
                "view" => q.view = v,
                _ => unreachable!(),
            }
        }
        q
    }

    fn filter(pairs: &[(&str, &str)]) -> Result<TaskFilter, WebError> {
        let rules = rules();
        filter_for(
            &query(pairs),
            &anna(),
            Some(&rules),
            Duration::from_secs(3600),
        )
    }

    #[test]
    fn filters_are_put_in_their_declared_spelling() {
        let f = filter(&[("status", "новая"), ("search", "  "), ("open", "1")]).unwrap();
        assert_eq!(f.status.as_deref(), Some("Новая"));
        assert_eq!(f.search, None, "an empty search is none");
        assert_eq!(f.not_status, ["Закрыта"]);
        assert_eq!(f.limit, Some(PAGE_SIZE));
        assert!(filter(&[("status", "потерян")]).is_err());
        assert!(filter(&[("assignee", "not an address")]).is_err());
    }

    #[test]
    fn views_are_filters_on_open_tasks() {
        let mine = filter(&[("view", "mine")]).unwrap();
        assert_eq!(mine.assignee.as_deref(), Some("anna@acme.example"));
        assert_eq!(mine.not_status, ["Закрыта"]);
        let us = filter(&[("view", "waiting-us")]).unwrap();
        assert_eq!(us.waiting, Some(Waiting::Us));
        assert_eq!(us.last_mail_before, None);
        let customer = filter(&[("view", "waiting-customer")]).unwrap();
        assert_eq!(customer.waiting, Some(Waiting::Customer));
        let overdue = filter(&[("view", "overdue")]).unwrap();
        assert_eq!(overdue.waiting, Some(Waiting::Us));
        assert!(overdue.last_mail_before.is_some());
        assert!(filter(&[("view", "someday")]).is_err());
    }

    #[test]
    fn paging_links_keep_the_filters() {
        let q = query(&[("status", "Новая"), ("view", "mine")]);
        assert_eq!(
            page_link(&q, 50),
            "/tasks?status=%D0%9D%D0%BE%D0%B2%D0%B0%D1%8F&view=mine&offset=50"
        );
    }
}
