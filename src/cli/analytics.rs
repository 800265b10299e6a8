//! `mailrules analytics show` and `mailrules report`: analytics rows and their counts, as a
//! table, CSV (RFC 4180) or JSON.

use std::path::Path;
use std::process::ExitCode;

use super::table::Table;
use super::tasks::json_text;
use super::{PeriodArg, ReportFormat};
use crate::store::Period;

pub fn analytics(config_path: &Path, name: &str, format: ReportFormat) -> anyhow::Result<ExitCode> {
    let store = super::open_store(&super::load_config(config_path)?)?;
    let Some(rows) = store.analytics_rows(name)? else {
        anyhow::bail!("no analytics table {}", crate::text::quoted(name));
    };
    if format == ReportFormat::Json {
        super::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut columns: Vec<String> = Vec::new();
    for row in &rows {
        for key in row.values.keys() {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    if format == ReportFormat::Csv {
        let mut out = String::from("task,at");
        for column in &columns {
            out.push(',');
            out.push_str(&csv_field(column));
        }
        out.push('\n');
        for row in &rows {
            out.push_str(&row.task.map(|t| t.to_string()).unwrap_or_default());
            out.push(',');
            out.push_str(&csv_field(&row.at));
            for column in &columns {
                out.push(',');
                out.push_str(&csv_field(
                    &row.values.get(column).map(json_text).unwrap_or_default(),
                ));
            }
            out.push('\n');
        }
        print!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut headers = vec!["TASK", "AT"];
    headers.extend(columns.iter().map(String::as_str));
    let mut table = Table::new(&headers);
    for row in &rows {
        let task = row.task.map(|t| format!("#{t}")).unwrap_or_default();
        let mut cells = vec![task, row.at.clone()];
        cells.extend(
            columns
                .iter()
                .map(|c| row.values.get(c).map(json_text).unwrap_or_default()),
        );
        table.row(cells);
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}

pub fn report(
    config_path: &Path,
    table_name: &str,
    by: &str,
    period: Option<PeriodArg>,
    format: ReportFormat,
) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let store = super::open_store(&config)?;
    // A choice column groups its values under their declared spelling, rows written before
    // it was declared included. The report is about stored rows: rules that do not load
    // (being edited) only lose that merging, they do not stop the report.
    let spellings: Vec<String> = super::load_rules(&config)
        .ok()
        .and_then(|rules| {
            rules
                .analytics_tables()
                .iter()
                .find(|t| t.name == table_name)
                .and_then(|t| t.choice(by))
                .map(<[String]>::to_vec)
        })
        .unwrap_or_default();
    let period = period.map(|p| match p {
        PeriodArg::Day => Period::Day,
        PeriodArg::Week => Period::Week,
        PeriodArg::Month => Period::Month,
    });
    let report = store.report_spelled(table_name, by, period, &spellings)?;
    match format {
        ReportFormat::Json => super::print_json(&report)?,
        ReportFormat::Csv => {
            let mut out = String::new();
            if period.is_some() {
                out.push_str("period,");
            }
            out.push_str(&csv_field(by));
            out.push_str(",count\n");
            for row in &report.rows {
                if period.is_some() {
                    out.push_str(&csv_field(row.period.as_deref().unwrap_or("")));
                    out.push(',');
                }
                out.push_str(&format!("{},{}\n", csv_field(&row.value), row.count));
            }
            print!("{out}");
        }
        ReportFormat::Table => {
            let mut headers = Vec::new();
            if period.is_some() {
                headers.push("PERIOD");
            }
            headers.push(by);
            headers.push("COUNT");
            let mut table = Table::new(&headers);
            for row in &report.rows {
                let mut cells = Vec::new();
                if period.is_some() {
                    cells.push(row.period.clone().unwrap_or_default());
                }
                cells.push(row.value.clone());
                cells.push(row.count.to_string());
                table.row(cells);
            }
            print!("{}", table.render());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// RFC 4180 quoting: a field with a comma, quote or line break is quoted, quotes doubled.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(super::csv_field("Дорого"), "Дорого");
        assert_eq!(super::csv_field("a, \"b\""), "\"a, \"\"b\"\"\"");
    }
}
