//! `task list` with its filters and paging: one statement whatever filters are given (each
//! is skipped when its parameter is NULL), newest first.

use rusqlite::params;

use super::contacts::PRIMARY_ADDRESS;
use super::tasks::{summary_from, TaskSummary, SUMMARY_COLUMNS};
use super::{Store, StoreError};

/// Which tasks `task list` shows. Values are compared as stored: the caller puts statuses and
/// choice values in their declared spelling first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub status: Option<String>,
    /// Leave out tasks in these statuses (`--open`: the closed ones).
    pub not_status: Vec<String>,
    pub assignee: Option<String>,
    /// A field and its value.
    pub field: Option<(String, String)>,
    /// Text in the title, the description or a comment (any case of ASCII letters).
    pub search: Option<String>,
    pub limit: Option<u64>,
    pub offset: u64,
}

impl Store {
    /// The tasks `filter` lets through, newest first.
    pub fn task_query(&self, filter: &TaskFilter) -> Result<Vec<TaskSummary>, StoreError> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, {PRIMARY_ADDRESS} FROM tasks t \
             LEFT JOIN contacts c ON c.id = t.requester_contact_id \
             WHERE (?1 IS NULL OR t.status = ?1) \
             AND t.status NOT IN (SELECT value FROM json_each(?2)) \
             AND (?3 IS NULL OR t.assignee = ?3) \
             AND (?4 IS NULL OR EXISTS (SELECT 1 FROM task_fields f WHERE f.task_id = t.id \
                  AND f.name = ?4 AND f.value = ?5)) \
             AND (?6 IS NULL OR t.title LIKE ?6 ESCAPE '\\' OR t.description LIKE ?6 ESCAPE '\\' \
                  OR EXISTS (SELECT 1 FROM comments m WHERE m.task_id = t.id \
                  AND m.text LIKE ?6 ESCAPE '\\')) \
             ORDER BY t.id DESC LIMIT ?7 OFFSET ?8"
        );
        let not_status = serde_json::to_string(&filter.not_status)
            .map_err(|e| StoreError::BadData(format!("status list: {e}")))?;
        let (field, value) = match &filter.field {
            Some((f, v)) => (Some(f.as_str()), Some(v.as_str())),
            None => (None, None),
        };
        let search = filter.search.as_deref().map(like_pattern);
        // SQLite: a negative LIMIT is no limit.
        let limit = filter
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                filter.status,
                not_status,
                filter.assignee,
                field,
                value,
                search,
                limit,
                offset
            ],
            |r| summary_from(r, r.get(9)?),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// `%text%` with LIKE's wildcards in `text` taken literally.
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}
