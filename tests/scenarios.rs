//! End to end through the built binary: the shipped rules and the sample mail in
//! fixtures/scenarios play scenarios 1-6 of the user guide, and the store shows the result.
//! Triggers and schedules (scenarios 3, 4 and 6) are followed further in
//! tests/scenarios_automation.rs.

use crate::support::workdir::{fixture, Workdir};
use serde_json::Value;

fn ingested() -> Workdir {
    let w = Workdir::with_shipped_rules();
    let result = w.ingest(&fixture("scenarios"));
    assert_eq!(result["failed"], 0, "{result:#}");
    assert_eq!(result["processed"], 13, "{result:#}");
    w
}

fn task(w: &Workdir, id: i64) -> Value {
    w.json(&["task", "show", &id.to_string()])
}

fn comments(task: &Value) -> Vec<(String, String, bool)> {
    task["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["author"].as_str().unwrap().to_string(),
                c["text"].as_str().unwrap().to_string(),
                c["auto"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn shipped_rules_check_ok() {
    let w = Workdir::with_shipped_rules();
    let out = w.ok(&["check"]);
    assert_eq!(
        out.trim(),
        "ok: 11 rules, 1 triggers, 2 schedules in 6 files"
    );
}

#[test]
fn helpdesk_request_reply_and_whose_move() {
    let w = ingested();
    let t = task(&w, 1);
    assert_eq!(t["title"], "Не работает выгрузка отчётов");
    assert_eq!(t["requester"], "ivan@client.example");
    assert!(t["description"]
        .as_str()
        .unwrap()
        .contains("кнопка не нажимается"));
    // The staff answer (03) came last: the ball is on the client's side.
    assert_eq!(t["status"], "Ожидание ответа клиента");

    let c = comments(&t);
    // 02: the client wrote from another address (windows-1251); threaded by References.
    assert_eq!(c[0].0, "ivan.petrov@gmail.example");
    assert!(
        c[0].1.starts_with("Добавлю: браузер Firefox"),
        "{:?}",
        c[0].1
    );
    assert!(
        !c[0].1.contains("пишет:"),
        "the quoted message must be dropped: {:?}",
        c[0].1
    );
    assert!(!c[0].2, "a person's comment is not automatic");
    // 03: the staff reply, threaded by the [#1] tag.
    assert_eq!(c[1].0, "anna@acme.example");
    assert!(c[1].1.contains("Исправили"));

    // The automatic reply is queued for the client, with the number.
    let outbox = w.json(&["outbox"]);
    let replies: Vec<&Value> = outbox
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["task"] == 1)
        .collect();
    assert_eq!(replies.len(), 1, "{outbox:#}");
    assert_eq!(replies[0]["recipient"], "ivan@client.example");
    assert!(replies[0]["body"]
        .as_str()
        .unwrap()
        .contains("Ваша заявка принята, номер 1"));
    assert!(replies[0]["subject"].as_str().unwrap().contains("[#1]"));
}

#[test]
fn staff_forward_makes_the_client_the_requester() {
    let w = ingested();
    let t = task(&w, 2);
    assert_eq!(t["requester"], "olga@client2.example");
    assert_eq!(t["title"], "Fwd: Счёт на оплату");
    // Scenario 2's second survey landed in its own fields.
    assert_eq!(t["fields"]["Оценка доставки"], "5");
    assert_eq!(
        t["fields"]["Комментарий к доставке"],
        "курьер приехал вовремя"
    );
}

#[test]
fn delivery_notice_closes_the_order_and_the_client_reopens_it() {
    let w = ingested();
    let t = task(&w, 3);
    assert_eq!(t["title"], "Заказ №12345");
    assert_eq!(t["fields"]["Номер заказа"], "12345");
    let c = comments(&t);
    assert!(
        c[0].1
            .starts_with("Служба доставки: заказ №12345 доставлен."),
        "{c:?}"
    );
    assert!(c[0].2, "the rule's own text is an automatic comment");
    // 11: the client wrote on the closed task (ISO-8859-5): it is our move again.
    assert_eq!(t["status"], "Нужно ответить клиенту");
    assert!(c[1].1.contains("не хватает одной позиции"));

    let closed = w.json(&["task", "list", "--status", "Завершенная"]);
    assert_eq!(closed.as_array().unwrap().len(), 0);
}

#[test]
fn refusal_survey_sets_typed_fields_and_feeds_the_report() {
    let w = ingested();
    let t = task(&w, 1);
    assert_eq!(t["fields"]["Причина отказа"], "Дорого");
    assert_eq!(t["fields"]["Дата отказа"], "2026-11-21");
    assert_eq!(t["fields"]["Комментарий к опросу"], "нашли дешевле");
    let rows = w.json(&["analytics", "show", "Причины отказа"]);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["task"], 1);
    assert_eq!(rows[0]["values"]["Причина"], "Дорого");

    let report = w.ok(&[
        "report",
        "Причины отказа",
        "--by",
        "Причина",
        "--period",
        "month",
        "--format",
        "csv",
    ]);
    // The month of the survey's `Date:` (21 Nov 2026), not of the day it was ingested.
    let month = "2026-11";
    assert_eq!(report, format!("period,Причина,count\n{month},Дорого,1\n"));

    // `--json` like every other command, and the rows as CSV.
    let report = w.json(&["report", "Причины отказа", "--by", "Причина"]);
    assert_eq!(report["rows"][0]["value"], "Дорого", "{report}");
    assert_eq!(report["rows"][0]["count"], 1, "{report}");
    let csv = w.ok(&["analytics", "show", "Причины отказа", "--format", "csv"]);
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("task,at,"), "{csv}");
    let column = header.split(',').position(|c| c == "Причина").unwrap();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(row[0], "1", "{csv}");
    assert_eq!(row[column], "Дорого", "{csv}");
}

#[test]
fn satisfaction_form_collects_comments_and_rows() {
    let w = ingested();
    let rows = w.json(&["analytics", "show", "Удовлетворенность клиентов"]);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["values"]["Скорость ответа"], "медленно");
    assert_eq!(rows[0]["values"]["Оценка менеджера"], "плохо");
    assert_eq!(rows[0]["values"]["Менеджер"], "Анна Смирнова");
    assert_eq!(rows[1]["values"]["Скорость ответа"], "тут же");
    // Both rows hang on the one collecting task, created by the first form.
    assert_eq!(rows[0]["task"], rows[1]["task"]);
    let t = task(&w, rows[0]["task"].as_i64().unwrap());
    assert_eq!(t["fields"]["Сбор данных"], "Удовлетворенность клиентов");
    assert_eq!(comments(&t).len(), 2);
}

#[test]
fn ingesting_twice_changes_nothing() {
    let w = ingested();
    let before = w.json(&["task", "show", "1"]);
    let again = w.ingest(&fixture("scenarios"));
    assert_eq!(again["processed"], 0);
    assert_eq!(again["duplicates"], 13);
    assert_eq!(again["failed"], 0);
    assert_eq!(w.json(&["task", "show", "1"]), before);
    // Two automatic replies and the trigger's notification of the negative answer.
    assert_eq!(w.json(&["outbox"]).as_array().unwrap().len(), 3);
}

#[test]
fn explain_shows_why_each_rule_did_or_did_not_match() {
    let w = ingested();
    let e = w.json(&[
        "explain",
        fixture("scenarios/07-refusal-survey.eml").to_str().unwrap(),
    ]);
    assert_eq!(e["thread"]["task"], 1);
    assert_eq!(e["thread"]["via"], "subject");
    assert_eq!(e["extracted"]["reason"], "Дорого");
    let rules = e["rules"].as_array().unwrap();
    let refusal = rules
        .iter()
        .find(|r| r["name"] == "refusal-survey")
        .unwrap();
    assert_eq!(refusal["matched"], true);
    let order = rules.iter().find(|r| r["name"] == "shop-order").unwrap();
    assert_eq!(order["matched"], false);
    assert!(order["why"].as_str().unwrap().contains("from"), "{order}");
    assert_eq!(e["actions"][0]["action"], "set");
}
