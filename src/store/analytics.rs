//! Analytics tables: rows attached to tasks (created on first use), their listing, and
//! reports (counts grouped by a column and a period).

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Store, StoreError};

/// The time of a row a message made: what the message reports happened when it was written,
/// so an archive ingested today reports under its own period. Its `Date:` counts when sane (at
/// most a day ahead of `now`: clocks drift, but a forged future date must not open a future
/// period); else the time of the change, `stamp`.
pub(super) fn row_time(date: Option<DateTime<Utc>>, now: DateTime<Utc>, stamp: &str) -> String {
    match date {
        Some(date) if date <= now + chrono::Duration::days(1) => super::timestamp(date),
        _ => stamp.to_string(),
    }
}

/// Appends a row to table `table` (created when new) and remembers any new column names.
pub(super) fn insert_row(
    conn: &Connection,
    table: &str,
    task: Option<i64>,
    values: &[(String, String)],
    message_key: &str,
    now: &str,
) -> Result<(), StoreError> {
    let existing: Option<(i64, String)> = conn
        .prepare_cached("SELECT id, columns FROM analytics_tables WHERE name = ?1")?
        .query_row([table], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (table_id, mut columns) = match existing {
        Some((id, columns)) => (id, parse_columns(table, &columns)?),
        None => {
            conn.prepare_cached(
                "INSERT INTO analytics_tables (name, columns, created_at) VALUES (?1, '[]', ?2)",
            )?
            .execute(params![table, now])?;
            (conn.last_insert_rowid(), Vec::new())
        }
    };
    let mut new_column = false;
    for (name, _) in values {
        if !columns.iter().any(|c| c == name) {
            columns.push(name.clone());
            new_column = true;
        }
    }
    if new_column {
        conn.prepare_cached("UPDATE analytics_tables SET columns = ?1 WHERE id = ?2")?
            .execute(params![Value::from(columns).to_string(), table_id])?;
    }
    let object: Map<String, Value> = values
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    conn.prepare_cached(
        "INSERT INTO analytics_rows (table_id, task_id, \"values\", message_key, at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        table_id,
        task,
        Value::Object(object).to_string(),
        message_key,
        now
    ])?;
    Ok(())
}

fn parse_columns(table: &str, text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::BadData(format!(
            "columns of analytics table {}: {e}",
            crate::text::quoted(table)
        ))
    })
}

pub(super) fn parse_values(table: &str, text: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::BadData(format!(
            "a row of analytics table {}: {e}",
            crate::text::quoted(table)
        ))
    })
}

/// One row of `analytics show --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnalyticsRow {
    pub task: Option<i64>,
    pub values: Map<String, Value>,
    pub at: String,
}

/// How report rows are bucketed in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// `YYYY-MM-DD`
    Day,
    /// ISO week, `YYYY-Www`
    Week,
    /// `YYYY-MM`
    Month,
}

impl std::str::FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Period, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "day" => Ok(Period::Day),
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            other => Err(format!(
                "unknown period {}: expected day, week or month",
                crate::text::quoted(other)
            )),
        }
    }
}

impl Period {
    /// The bucket that time `at` falls into.
    pub fn bucket(self, at: DateTime<Utc>) -> String {
        match self {
            Period::Day => at.format("%Y-%m-%d").to_string(),
            Period::Week => {
                let week = at.iso_week();
                format!("{:04}-W{:02}", week.year(), week.week())
            }
            Period::Month => at.format("%Y-%m").to_string(),
        }
    }
}

/// `report NAME --by COLUMN [--period P]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub table: String,
    pub by: String,
    pub period: Option<Period>,
    /// By period (oldest first), then most frequent value first, then value.
    pub rows: Vec<ReportRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    pub period: Option<String>,
    /// The column's value; empty for rows without it.
    pub value: String,
    pub count: u64,
}

impl Store {
    /// Rows of analytics table `table`, oldest first; None when there is no such table.
    pub fn analytics_rows(&self, table: &str) -> Result<Option<Vec<AnalyticsRow>>, StoreError> {
        let Some((table_id, _)) = self.analytics_table(table)? else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT task_id, \"values\", at FROM analytics_rows WHERE table_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([table_id], |r| {
            Ok((r.get(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (task, values, at) = row?;
            out.push(AnalyticsRow {
                task,
                values: parse_values(table, &values)?,
                at,
            });
        }
        Ok(Some(out))
    }

    /// Names of the analytics tables that have rows, sorted.
    pub fn analytics_tables(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM analytics_tables ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn analytics_table(&self, table: &str) -> Result<Option<(i64, Vec<String>)>, StoreError> {
        let found: Option<(i64, String)> = self
            .conn
            .prepare_cached("SELECT id, columns FROM analytics_tables WHERE name = ?1")?
            .query_row([table], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match found {
            Some((id, columns)) => Ok(Some((id, parse_columns(table, &columns)?))),
            None => Ok(None),
        }
    }

    /// Counts of the rows of `table` grouped by the value of column `by` (and by the period
    /// bucket of the row's time).
    pub fn report(
        &self,
        table: &str,
        by: &str,
        period: Option<Period>,
    ) -> Result<Report, StoreError> {
        self.report_spelled(table, by, period, &[])
    }

    /// [`Store::report`] of a choice column: a value equal to one of `spellings` without case
    /// counts under that spelling, so rows written before the column was declared a choice
    /// (`damaged`, `DAMAGED`) group with the declared `Damaged`.
    pub fn report_spelled(
        &self,
        table: &str,
        by: &str,
        period: Option<Period>,
        spellings: &[String],
    ) -> Result<Report, StoreError> {
        let (_, columns) = self
            .analytics_table(table)?
            .ok_or_else(|| StoreError::UnknownTable(table.to_string()))?;
        if !columns.iter().any(|c| c == by) {
            return Err(StoreError::UnknownColumn {
                table: table.to_string(),
                column: by.to_string(),
                known: columns.join(", "),
            });
        }
        let mut counts: HashMap<(Option<String>, String), u64> = HashMap::new();
        for row in self.analytics_rows(table)?.unwrap_or_default() {
            let value = match row.values.get(by) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            let wanted = value.trim().to_lowercase();
            let value = match spellings.iter().find(|s| s.trim().to_lowercase() == wanted) {
                Some(declared) => declared.clone(),
                None => value,
            };
            let bucket = match period {
                Some(p) => {
                    let at = DateTime::parse_from_rfc3339(&row.at).map_err(|e| {
                        StoreError::BadData(format!(
                            "time {} of a row of {}: {e}",
                            crate::text::quoted(&row.at),
                            crate::text::quoted(table)
                        ))
                    })?;
                    Some(p.bucket(at.with_timezone(&Utc)))
                }
                None => None,
            };
            *counts.entry((bucket, value)).or_default() += 1;
        }
        let mut rows: Vec<ReportRow> = counts
            .into_iter()
            .map(|((period, value), count)| ReportRow {
                period,
                value,
                count,
            })
            .collect();
        rows.sort_by(|a, b| {
            a.period
                .cmp(&b.period)
                .then(b.count.cmp(&a.count))
                .then_with(|| a.value.cmp(&b.value))
        });
        Ok(Report {
            table: table.to_string(),
            by: by.to_string(),
            period,
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_row_takes_its_messages_date_unless_it_is_more_than_a_day_ahead() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let stamp = "2026-12-01T12:00:00Z";
        let archive = Utc.with_ymd_and_hms(2025, 3, 10, 6, 0, 0).unwrap();
        assert_eq!(row_time(Some(archive), now, stamp), "2025-03-10T06:00:00Z");
        // A sender's clock a few hours fast is believed; a date days ahead is not.
        let fast = now + chrono::Duration::hours(23);
        assert_eq!(row_time(Some(fast), now, stamp), "2026-12-02T11:00:00Z");
        let future = now + chrono::Duration::days(2);
        assert_eq!(row_time(Some(future), now, stamp), stamp);
        assert_eq!(row_time(None, now, stamp), stamp);
    }
}
