//! The analytics chart: counts per period and value as grouped bars, drawn by plotters' SVG
//! backend (the library draws; nothing here writes SVG by hand). Values are a report's, so
//! a value from mail (a reason a customer typed) reaches the SVG only as plotters' escaped
//! text.

use plotters::prelude::*;

use crate::store::ReportRow;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("the chart could not be drawn: {0}")]
pub struct ChartError(String);

const WIDTH: u32 = 900;
const HEIGHT: u32 = 380;

/// The periods (x axis, oldest first) and values (one colour each) of `rows`, as drawn.
pub fn axes(rows: &[ReportRow]) -> (Vec<String>, Vec<String>) {
    let mut periods: Vec<String> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    for row in rows {
        let period = row.period.clone().unwrap_or_else(|| "all".into());
        if !periods.contains(&period) {
            periods.push(period);
        }
        if !values.contains(&row.value) {
            values.push(row.value.clone());
        }
    }
    (periods, values)
}

/// An SVG document with one bar per report row: grouped by period, coloured by value.
pub fn bars(rows: &[ReportRow]) -> Result<String, ChartError> {
    let fail = |e: &dyn std::fmt::Display| ChartError(e.to_string());
    let (periods, values) = axes(rows);
    let highest = rows.iter().map(|r| r.count).max().unwrap_or(0).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let slots = periods.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..slots, 0f64..(highest as f64 * 1.1))
            .map_err(|e| fail(&e))?;
        let label = |x: &f64| {
            let slot = x.floor();
            // A label under the middle of each period's group only.
            if (x - slot - 0.5).abs() < 1e-6 {
                periods.get(slot as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            // Counts are whole: one label and one line per whole count (at most ten), not
            // plotters' default of fine lines and fractional ticks rounded into repeats.
            .y_labels((highest as usize + 1).min(10))
            .max_light_lines(0)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 14))
            .x_labels(periods.len() * 2 + 1)
            .x_label_formatter(&label)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .y_desc("count")
            .draw()
            .map_err(|e| fail(&e))?;
        let width = 0.8 / values.len().max(1) as f64;
        for (v, value) in values.iter().enumerate() {
            let colour = Palette99::pick(v).to_rgba();
            let bars = rows.iter().filter(|r| &r.value == value).map(|r| {
                let period = r.period.clone().unwrap_or_else(|| "all".into());
                let slot = periods.iter().position(|p| *p == period).unwrap_or(0) as f64;
                let left = slot + 0.1 + v as f64 * width;
                Rectangle::new(
                    [(left, 0.0), (left + width, r.count as f64)],
                    colour.filled(),
                )
            });
            let name = if value.is_empty() {
                "(none)".to_string()
            } else {
                value.clone()
            };
            chart
                .draw_series(bars)
                .map_err(|e| fail(&e))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(period: &str, value: &str, count: u64) -> ReportRow {
        ReportRow {
            period: Some(period.into()),
            value: value.into(),
            count,
        }
    }

    #[test]
    fn one_bar_per_row() {
        let rows = vec![
            row("2026-01", "5", 3),
            row("2026-01", "4", 1),
            row("2026-02", "5", 2),
        ];
        let svg = bars(&rows).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        let (periods, values) = axes(&rows);
        assert_eq!(periods, ["2026-01", "2026-02"]);
        assert_eq!(values, ["5", "4"]);
    }

    #[test]
    fn hostile_values_are_text_in_the_svg() {
        let rows = vec![row("2026-01", "<script>alert(1)</script>", 1)];
        let svg = bars(&rows).unwrap();
        assert!(!svg.contains("<script>"), "{svg}");
    }

    #[test]
    fn an_empty_report_still_draws() {
        assert!(bars(&[]).unwrap().contains("<svg"));
    }
}
