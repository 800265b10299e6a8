//! Analytics (`/analytics`, `/analytics/{table}`): the tables, one table's rows, a chart of
//! its counts per period and value (`by` a column, `period` day/week/month/none; by default
//! the first choice column by month), and the rows as CSV (`?format=csv`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped};

use super::given;
use super::task::value_text;
use crate::store::{AnalyticsRow, Period, Report};
use crate::web::auth::Person;
use crate::web::chart;
use crate::web::layout::{page, url_encode};
use crate::web::{WebError, WebState};

/// Rows listed under the chart (the newest); the CSV has them all.
const ROWS_SHOWN: usize = 500;

/// GET /analytics: the tables.
pub async fn index(State(state): State<Arc<WebState>>, person: Person) -> Result<Markup, WebError> {
    let tables = state
        .with_store(|store, _| Ok(store.analytics_tables()?))
        .await?;
    let body = html! {
        h1 { "Analytics" }
        @if tables.is_empty() {
            p.muted { "No analytics rows were written yet." }
        }
        ul #analytics-tables {
            @for t in &tables {
                li { a.analytics-table href={ "/analytics/" (url_encode(t)) } { (t) } }
            }
        }
    };
    Ok(page("Analytics", &person, body))
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct TableQuery {
    by: Option<String>,
    /// day, week, month (the default) or none.
    period: Option<String>,
    /// `csv` for the rows as a file.
    format: Option<String>,
}

struct TablePage {
    rows: Vec<AnalyticsRow>,
    columns: Vec<String>,
    report: Option<Report>,
}

/// GET /analytics/{table}
pub async fn table(
    State(state): State<Arc<WebState>>,
    person: Person,
    Path(name): Path<String>,
    Query(query): Query<TableQuery>,
) -> Result<Response, WebError> {
    let period = match given(&query.period).as_deref() {
        None => Some(Period::Month),
        Some("none") => None,
        Some(p) => Some(p.parse::<Period>().map_err(WebError::BadRequest)?),
    };
    let csv = given(&query.format).as_deref() == Some("csv");
    let table_name = name.clone();
    let by = given(&query.by);
    let data = state
        .with_store(move |store, state| {
            let Some(rows) = store.analytics_rows(&table_name)? else {
                return Err(WebError::NotFound(format!(
                    "analytics table \"{table_name}\""
                )));
            };
            let decl = state.rules().ok().and_then(|r| {
                r.analytics_tables()
                    .iter()
                    .find(|t| t.name == table_name)
                    .cloned()
            });
            let mut columns: Vec<String> = decl
                .as_ref()
                .map(|d| d.columns.iter().map(|(c, _)| c.clone()).collect())
                .unwrap_or_default();
            for row in &rows {
                for key in row.values.keys() {
                    if !columns.contains(key) {
                        columns.push(key.clone());
                    }
                }
            }
            if csv {
                return Ok(TablePage {
                    rows,
                    columns,
                    report: None,
                });
            }
            let by = by.or_else(|| {
                decl.as_ref()
                    .and_then(|d| d.choices.first().map(|(c, _)| c.clone()))
                    .or_else(|| columns.first().cloned())
            });
            let report = match by {
                Some(by) => {
                    let spellings = decl
                        .as_ref()
                        .and_then(|d| d.choice(&by))
                        .map(<[String]>::to_vec)
                        .unwrap_or_default();
                    Some(store.report_spelled(&table_name, &by, period, &spellings)?)
                }
                None => None,
            };
            Ok(TablePage {
                rows,
                columns,
                report,
            })
        })
        .await?;
    if csv {
        let file = super::messages::content_disposition(&format!("{name}.csv"));
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, file),
            ],
            rows_csv(&data.rows, &data.columns),
        )
            .into_response());
    }
    let svg = match &data.report {
        Some(report) => {
            Some(chart::bars(&report.rows).map_err(|e| WebError::Internal(e.to_string()))?)
        }
        None => None,
    };
    Ok(page(&name, &person, render(&name, &data, svg.as_deref(), period)).into_response())
}

fn render(name: &str, data: &TablePage, svg: Option<&str>, period: Option<Period>) -> Markup {
    let shown = data.rows.len().min(ROWS_SHOWN);
    let period_name = match period {
        Some(Period::Day) => "day",
        Some(Period::Week) => "week",
        Some(Period::Month) => "month",
        None => "none",
    };
    html! {
        h1 #analytics-title { (name) }
        form.filters #report-form method="get" action={ "/analytics/" (url_encode(name)) } {
            label { "Count by"
                select name="by" #report-by {
                    @for c in &data.columns {
                        option value=(c) selected[data.report.as_ref().is_some_and(|r| r.by == *c)] { (c) }
                    }
                }
            }
            label { "Per"
                select name="period" #report-period {
                    @for p in ["month", "week", "day", "none"] {
                        option value=(p) selected[p == period_name] { (p) }
                    }
                }
            }
            button type="submit" { "Show" }
            a #csv-link href={ "/analytics/" (url_encode(name)) "?format=csv" } { "Download the rows as CSV" }
        }
        @if let (Some(report), Some(svg)) = (&data.report, svg) {
            h2 { "Count of " (report.by) " per " (period_name) }
            // plotters' own SVG output: every text in it is escaped by plotters.
            div #chart { (PreEscaped(svg)) }
            table #chart-data {
                thead { tr { th { "Period" } th { (report.by) } th { "Count" } } }
                tbody {
                    @for r in &report.rows {
                        tr.bar data-period=(r.period.as_deref().unwrap_or("all")) data-value=(r.value) data-count=(r.count) {
                            td { (r.period.as_deref().unwrap_or("all")) } td { (r.value) } td { (r.count) }
                        }
                    }
                }
            }
        }
        h2 { "Rows" @if shown < data.rows.len() { " (the newest " (shown) " of " (data.rows.len()) ")" } }
        table #analytics-rows {
            thead { tr { th { "Task" } th { "At" } @for c in &data.columns { th { (c) } } } }
            tbody {
                @for row in data.rows.iter().rev().take(ROWS_SHOWN) {
                    tr.analytics-row {
                        td { @if let Some(t) = row.task { a href={ "/tasks/" (t) } { "#" (t) } } }
                        td { (crate::web::layout::when(&row.at)) }
                        @for c in &data.columns { td { (row.values.get(c).map(value_text).unwrap_or_default()) } }
                    }
                }
            }
        }
    }
}

/// The rows as RFC 4180 CSV, `task,at,COLUMNS...`. A cell that a spreadsheet would take for
/// a formula (`=`, `+`, `-`, `@` first) is prefixed with `'`: values come from mail.
pub fn rows_csv(rows: &[AnalyticsRow], columns: &[String]) -> String {
    let mut out = String::from("task,at");
    for c in columns {
        out.push(',');
        out.push_str(&csv_field(c));
    }
    out.push('\n');
    for row in rows {
        out.push_str(&row.task.map(|t| t.to_string()).unwrap_or_default());
        out.push(',');
        out.push_str(&csv_field(&row.at));
        for c in columns {
            out.push(',');
            out.push_str(&csv_field(
                &row.values.get(c).map(value_text).unwrap_or_default(),
            ));
        }
        out.push('\n');
    }
    out
}

fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) && value.parse::<f64>().is_err() {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("a, \"b\""), "\"a, \"\"b\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-5"), "-5");
    }
}
