//! The analytics chart as drawn in the browser: one bar per period and value of the rows the
//! desk was seeded with, bars of one value in one colour, heights in proportion to counts.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{log_in, seeded_desk, VIEWER};
use crate::support::browser::{screenshot_path, Browser};

/// What the ratings in `RATINGS` count up to, per month and score.
const EXPECTED: [(&str, &str, u64); 4] = [
    ("2026-01", "отлично", 3),
    ("2026-01", "хорошо", 1),
    ("2026-02", "плохо", 2),
    ("2026-02", "отлично", 0),
];

/// Reads the bars out of the drawn SVG: plotters draws each bar as a filled `rect` standing on
/// the x axis; the legend pairs each colour with its value (a small square beside a text),
/// and each period's label sits under the middle of its group. Returns (period, value,
/// height in pixels) per bar.
const READ_BARS: &str = r#"
const svg = document.querySelector('#chart svg');
if (!svg) { return null; }
const box = r => ({ x: +r.getAttribute('x'), y: +r.getAttribute('y'),
                    w: +r.getAttribute('width'), h: +r.getAttribute('height'),
                    fill: (r.getAttribute('fill') || '').toUpperCase() });
const plain = f => ['', 'NONE', '#FFFFFF', '#000000', 'WHITE', 'BLACK'].includes(f);
const rects = [...svg.querySelectorAll('rect')].map(box).filter(r => !plain(r.fill) && r.h > 0);
const texts = [...svg.querySelectorAll('text')].map(t => ({
  x: +t.getAttribute('x'), y: +t.getAttribute('y'), text: t.textContent.trim() }));
// Legend keys: the small squares; their value is the text just right of them on their line.
const keys = rects.filter(r => Math.abs(r.w - r.h) < 1 && r.w <= 12);
const legend = {};
for (const k of keys) {
  const beside = texts.filter(t => t.x > k.x && Math.abs(t.y - (k.y + k.h / 2)) < 12)
                      .sort((a, b) => a.x - b.x)[0];
  if (beside) { legend[k.fill] = beside.text; }
}
const bars = rects.filter(r => !keys.includes(r));
if (bars.length === 0) { return []; }
// Bars stand on the axis: the same bottom edge.
const bottom = Math.max(...bars.map(b => b.y + b.h));
const standing = bars.filter(b => Math.abs(b.y + b.h - bottom) < 1.5);
const periods = texts.filter(t => /^\d{4}-\d{2}$/.test(t.text));
return standing.map(b => {
  const middle = b.x + b.w / 2;
  const period = periods.slice().sort((p, q) => Math.abs(p.x - middle) - Math.abs(q.x - middle))[0];
  return [period ? period.text : '?', legend[b.fill] || ('colour ' + b.fill), b.h];
});
"#;

#[tokio::test]
async fn the_chart_draws_one_bar_per_month_and_rating_in_proportion_to_the_counts() {
    let desk = seeded_desk();
    let browser = Browser::start().await;
    log_in(&browser, &desk, VIEWER).await;
    browser.open(&desk.url("/analytics")).await;
    browser.wait_text("#analytics-tables").await;
    browser
        .client
        .find(fantoccini::Locator::LinkText("Оценки"))
        .await
        .expect("the analytics index links the table")
        .click()
        .await
        .unwrap();
    browser.wait_text("#chart").await;

    // The numbers beside the chart are the seeded rows' counts.
    let data = browser
        .eval("return [...document.querySelectorAll('#chart-data tr.bar')].map(r => [r.dataset.period, r.dataset.value, Number(r.dataset.count)]);")
        .await;
    let shown: BTreeSet<(String, String, u64)> = rows(&data)
        .into_iter()
        .map(|(p, v, c)| (p, v, c as u64))
        .collect();
    let expected: BTreeSet<(String, String, u64)> = EXPECTED
        .iter()
        .filter(|(_, _, c)| *c > 0)
        .map(|(p, v, c)| (p.to_string(), v.to_string(), *c))
        .collect();
    assert_eq!(shown, expected);

    // The drawing: one bar per row, at its month, in its value's colour, heights by count.
    let bars = rows(&browser.eval(READ_BARS).await);
    assert_eq!(bars.len(), expected.len(), "bars drawn: {bars:?}");
    let mut per_unit = Vec::new();
    for (period, value, height) in &bars {
        let count = expected
            .iter()
            .find(|(p, v, _)| p == period && v == value)
            .unwrap_or_else(|| panic!("a bar for {period} {value} that no row has: {bars:?}"))
            .2;
        per_unit.push(height / count as f64);
    }
    let (low, high) = per_unit
        .iter()
        .fold((f64::MAX, 0f64), |(l, h), x| (l.min(*x), h.max(*x)));
    assert!(
        high - low < 1.5,
        "bar heights are not in proportion to the counts: {bars:?}"
    );
    browser.screenshot(&screenshot_path("chart.png")).await;
    browser.close().await;
}

/// `[[period, value, number], …]` from the page.
fn rows(value: &Value) -> Vec<(String, String, f64)> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap().to_string(),
                row[1].as_str().unwrap().to_string(),
                row[2].as_f64().unwrap(),
            )
        })
        .collect()
}
