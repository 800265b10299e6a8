//! `task list` with its filters and paging: one statement whatever filters are given (each
//! is skipped when its parameter is NULL), newest first.

use rusqlite::params;

use super::contacts::PRIMARY_ADDRESS;
use super::tasks::{summary_from, TaskSummary, SUMMARY_COLUMNS};
use super::{Store, StoreError};

/// Which tasks `task list` shows. Values are compared as stored: the caller puts statuses and
/// choice values in their declared spelling first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
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
    /// Whose turn it is, by the task's last mail (the web's "waiting for us / for the
    /// customer" views).
    pub waiting: Option<Waiting>,
    /// Only tasks whose last mail is older than this (RFC 3339): the web's "overdue".
    pub last_mail_before: Option<String>,
}

/// Whose turn it is on a task, by its last mail (kept on the task, `tasks.last_mail_ours`,
/// as its history is written, `history::last_mail_by_us`): the mail that created it (`task_events` kind
/// `created`) or a later incoming message (`message`) means ours, a person's reply (`reply`
/// by an address; an automatic one by `rule:`, `trigger:` or `schedule:` is only an
/// acknowledgement) means the customer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Waiting {
    Us,
    Customer,
}

impl Waiting {
    /// Bound as ?9: whether the last mail must be our reply.
    fn ours_last(self) -> bool {
        self == Waiting::Customer
    }
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
             AND {waiting} AND {last_mail_before} \
             ORDER BY t.id DESC LIMIT ?7 OFFSET ?8",
            // Written out only when asked for, so that SQLite can pick the index on the last
            // mail (a `?9 IS NULL OR ...` would keep it from any index).
            waiting = if filter.waiting.is_some() {
                "t.last_mail_ours = ?9"
            } else {
                "?9 IS NULL"
            },
            last_mail_before = if filter.last_mail_before.is_some() {
                "t.last_mail_at < ?10"
            } else {
                "?10 IS NULL"
            },
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
                offset,
                filter.waiting.map(Waiting::ours_last),
                filter.last_mail_before
            ],
            |r| summary_from(r, r.get(9)?),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl Store {
    /// How many tasks are in each status, most first.
    pub fn task_status_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT status, count(*) FROM tasks GROUP BY status ORDER BY count(*) DESC, status",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?)))?;
        let counts: Vec<(String, i64)> = rows.collect::<Result<_, _>>()?;
        Ok(counts
            .into_iter()
            .map(|(s, n)| (s, n.max(0) as u64))
            .collect())
    }

    /// A number that changes whenever any task changes or gets mail (the id of the last
    /// history entry): the web's queue polls it to know when to refresh.
    pub fn tasks_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM task_events")?
            .query_row([], |r| r.get(0))?)
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
