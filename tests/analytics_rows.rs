//! Analytics rows as reports see them: a row's time is its message's `Date:` when sane (an
//! archive ingested today reports under its own period), rows made by triggers take the time
//! of the change, and a choice column groups every spelling of a value under the declared one.

use crate::support::workdir::Workdir;
use serde_json::Value;

const RULES: &str = r#"
[[analytics]]
name = "Returns"
columns = { "Reason" = { type = "choice", values = ["Damaged", "Wrong size"] }, "Source" = "text" }

[[rule]]
name = "return-form"
[rule.when]
subject = { contains = "Return" }
[rule.extract]
reason = { after = "Reason:" }
[[rule.do]]
action = "create_task"
[[rule.do]]
action = "analytics"
table = "Returns"
values = { "Reason" = "{reason}", "Source" = "mail" }

[[trigger]]
name = "count-new-tasks"
on = "task_created"
[[trigger.do]]
action = "analytics"
table = "Returns"
values = { "Reason" = "", "Source" = "trigger" }
"#;

/// Ingests one message with this `Date:` header (none when `None`) and reason.
fn ingest(w: &Workdir, n: usize, date: Option<&str>, reason: &str) {
    let date = date.map_or(String::new(), |d| format!("Date: {d}\r\n"));
    let text = format!(
        "From: client{n}@shop.example\r\nTo: support@acme.example\r\nSubject: Return {n}\r\n\
         {date}Message-ID: <return-{n}@shop.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nReason: {reason}\r\n"
    );
    let path = w.path(&format!("{n}.eml"));
    std::fs::write(&path, text).unwrap();
    let result = w.ingest(&path);
    assert_eq!(result["processed"], 1, "{result:#}");
    assert_eq!(result["failed"], 0, "{result:#}");
}

/// `report Returns --by COLUMN --period month` as (period, value, count) rows.
fn report(w: &Workdir, by: &str) -> Vec<(String, String, u64)> {
    let report = w.json(&["report", "Returns", "--by", by, "--period", "month"]);
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r: &Value| {
            (
                r["period"].as_str().unwrap().to_string(),
                r["value"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn an_archive_reports_under_the_months_its_mail_was_written() {
    let w = Workdir::with_rules(&[("rules.toml", RULES)]);
    ingest(&w, 1, Some("Mon, 10 Mar 2025 09:00:00 +0300"), "damaged");
    ingest(&w, 2, Some("Tue, 11 Mar 2025 09:00:00 +0300"), "DAMAGED");
    ingest(&w, 3, Some("Wed, 30 Apr 2025 23:30:00 -0200"), "Damaged");
    let by_mail: Vec<_> = report(&w, "Reason")
        .into_iter()
        .filter(|(_, value, _)| !value.is_empty())
        .collect();
    // One declared spelling; 30 Apr 23:30 -0200 is May in UTC, the store's time.
    assert_eq!(
        by_mail,
        [
            ("2025-03".to_string(), "Damaged".to_string(), 2),
            ("2025-05".to_string(), "Damaged".to_string(), 1),
        ]
    );
}

#[test]
fn rows_of_triggers_and_of_mail_without_a_sane_date_take_the_time_of_the_change() {
    let w = Workdir::with_rules(&[("rules.toml", RULES)]);
    ingest(&w, 1, Some("Mon, 10 Mar 2025 09:00:00 +0300"), "Wrong size");
    ingest(&w, 2, Some("Fri, 01 Jan 2100 09:00:00 +0000"), "Wrong size");
    ingest(&w, 3, None, "Wrong size");
    let rows = report(&w, "Source");
    let months = |source: &str| -> Vec<String> {
        rows.iter()
            .filter(|(_, value, _)| value == source)
            .flat_map(|(period, _, count)| std::iter::repeat_n(period.clone(), *count as usize))
            .collect()
    };
    // The rule's rows: the 2025 message under its month, the others under the month they
    // were processed in (whatever today is: never 2100, never 2025).
    let mail = months("mail");
    assert_eq!(mail.len(), 3, "{rows:?}");
    assert_eq!(
        mail.iter().filter(|m| *m == "2025-03").count(),
        1,
        "{rows:?}"
    );
    assert!(mail.iter().all(|m| !m.starts_with("2100")), "{rows:?}");
    // The trigger's rows were made when the tasks were created: none under 2025 or 2100.
    let trigger = months("trigger");
    assert_eq!(trigger.len(), 3, "{rows:?}");
    assert!(
        trigger
            .iter()
            .all(|m| !m.starts_with("2025") && !m.starts_with("2100")),
        "{rows:?}"
    );
}

#[test]
fn rows_written_before_a_column_became_a_choice_count_under_its_declared_spelling() {
    let text_column = RULES.replace(
        r#"{ type = "choice", values = ["Damaged", "Wrong size"] }"#,
        r#""text""#,
    );
    let w = Workdir::with_rules(&[("rules.toml", &text_column)]);
    ingest(&w, 1, Some("Mon, 10 Mar 2025 09:00:00 +0300"), "damaged");
    ingest(&w, 2, Some("Tue, 11 Mar 2025 09:00:00 +0300"), "DAMAGED");
    let reasons = |w: &Workdir| -> Vec<(String, u64)> {
        report(w, "Reason")
            .into_iter()
            .filter(|(_, value, _)| !value.is_empty())
            .map(|(_, value, count)| (value, count))
            .collect()
    };
    // As text, every spelling is its own value.
    assert_eq!(
        reasons(&w),
        [("DAMAGED".to_string(), 1), ("damaged".to_string(), 1)]
    );
    w.write_rule("rules.toml", RULES);
    ingest(&w, 3, Some("Wed, 12 Mar 2025 09:00:00 +0300"), "Damaged");
    assert_eq!(reasons(&w), [("Damaged".to_string(), 3)]);
}
