//! Scenarios 3, 4 and 6 end to end through the built binary: the shipped triggers react to
//! what the mail rules changed, and the shipped schedules (run with
//! `schedules run --now --at TIME`) act once per task per entry into their state.

use crate::support::workdir::{fixture, Workdir};
use chrono::{Duration, SecondsFormat, Utc};
use serde_json::Value;

fn ingested() -> Workdir {
    let w = Workdir::with_shipped_rules();
    let result = w.ingest(&fixture("scenarios"));
    assert_eq!(result["failed"], 0, "{result:#}");
    w
}

/// `schedules run --now --at (now + hours)`: the firings of `schedule`, as (task, status).
fn run_schedules(w: &Workdir, hours: i64, schedule: &str) -> Vec<(i64, String)> {
    let at = (Utc::now() + Duration::hours(hours)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let out = w.json(&["schedules", "run", "--now", "--at", &at]);
    out["firings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["schedule"] == schedule)
        .map(|f| {
            (
                f["task"].as_i64().unwrap(),
                f["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn outbox_to(w: &Workdir, recipient: &str) -> Vec<Value> {
    w.json(&["outbox"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["recipient"] == recipient)
        .cloned()
        .collect()
}

fn applied(tasks: &[i64]) -> Vec<(i64, String)> {
    tasks.iter().map(|t| (*t, "applied".to_string())).collect()
}

/// Writes a message into the workdir and ingests it.
fn ingest_text(w: &Workdir, name: &str, text: &str) {
    let path = w.path(name);
    std::fs::write(&path, text).unwrap();
    let result = w.ingest(&path);
    assert_eq!(result["processed"], 1, "{result:#}");
}

#[test]
fn scenario_3_a_negative_answer_makes_a_subtask_for_the_manager_and_notifies_them() {
    let w = ingested();
    let rows = w.json(&["analytics", "show", "Удовлетворенность клиентов"]);
    let survey = rows[0]["task"].as_i64().unwrap();

    let tasks = w.json(&["task", "list"]);
    let subtasks: Vec<i64> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .filter(|id| w.json(&["task", "show", &id.to_string()])["parent"] == survey)
        .collect();
    // Only the negative answer (09) made one; the positive one (10) did not.
    assert_eq!(subtasks.len(), 1, "{tasks:#}");
    let sub = w.json(&["task", "show", &subtasks[0].to_string()]);
    assert_eq!(sub["title"], "Негативный отзыв: Анна Смирнова");
    assert_eq!(sub["assignee"], "anna@acme.example");
    assert_eq!(
        sub["description"],
        "Скорость ответа: медленно\nОценка менеджера: плохо\nМенеджер: Анна Смирнова\n\
         Почта менеджера: anna@acme.example"
    );

    let mail = outbox_to(&w, "anna@acme.example");
    assert_eq!(mail.len(), 1, "{mail:#?}");
    assert_eq!(mail[0]["kind"], "notify");
    assert_eq!(mail[0]["task"], subtasks[0]);
    assert_eq!(
        mail[0]["subject"],
        format!("Негативный отзыв клиента, задача #{}", subtasks[0])
    );
    assert!(mail[0]["body"]
        .as_str()
        .unwrap()
        .contains("Оценка менеджера: плохо"));
}

#[test]
fn scenario_3_either_negative_answer_is_enough() {
    // OR over the columns: a quick answer with a bad rating still counts.
    let w = Workdir::with_shipped_rules();
    let form = |id: &str, speed: &str, rating: &str| {
        format!(
            "From: forms@webform.example\r\nTo: support@acme.example\r\nSubject: Анкета: оценка \
             работы менеджера\r\nMessage-ID: <{id}@webform.example>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
             Насколько быстро ответил менеджер? {speed}\r\nОцените работу менеджера: {rating}\r\n\
             Менеджер: Пётр Иванов\r\n"
        )
    };
    ingest_text(&w, "a.eml", &form("a", "тут же", "очень плохо"));
    ingest_text(&w, "b.eml", &form("b", "нормально", "хорошо"));
    ingest_text(&w, "c.eml", &form("c", "медленно", "отлично"));
    let mail = outbox_to(&w, "petr@acme.example");
    assert_eq!(mail.len(), 2, "{mail:#?}");
    let titles: Vec<Value> = w
        .json(&["task", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].clone())
        .filter(|t| t.as_str().unwrap().starts_with("Негативный отзыв"))
        .collect();
    assert_eq!(titles.len(), 2);
}

#[test]
fn scenario_4_the_team_lead_hears_once_per_wait() {
    let w = ingested();
    // Tasks 2 and 3 wait for our answer (04 made task 2, 11 reopened task 3); task 1 waits
    // for the client.
    assert_eq!(run_schedules(&w, 1, "client-waiting"), vec![]);
    assert_eq!(run_schedules(&w, 5, "client-waiting"), applied(&[2, 3]));
    let mail = outbox_to(&w, "lead@acme.example");
    let subjects: Vec<&str> = mail
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects.contains(&"Клиент ждёт ответа по задаче #3"),
        "{subjects:?}"
    );
    let body = mail.iter().find(|m| m["task"] == 3).unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(body.contains("«Заказ №12345»"), "{body}");

    // Each `schedules run` is a new process on the same store: a restart. Still once.
    assert_eq!(run_schedules(&w, 6, "client-waiting"), vec![]);
    assert_eq!(outbox_to(&w, "lead@acme.example").len(), 2);

    // The robot's note is an automatic comment: hidden from the feed unless --all.
    let t = w.json(&["task", "show", "3"]);
    let note = t["comments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["text"]
                .as_str()
                .unwrap()
                .starts_with("Руководителю отправлено")
        })
        .unwrap();
    assert_eq!(note["auto"], true);
    assert!(!w
        .ok(&["task", "show", "3"])
        .contains("Руководителю отправлено"));
    assert!(w
        .ok(&["task", "show", "3", "--all"])
        .contains("Руководителю отправлено"));

    // We answer, the client writes again: a new wait, a new notice, for task 3 only.
    let reply = |id: &str, from: &str, body: &str| {
        format!(
            "From: {from}\r\nTo: support@acme.example\r\nSubject: Re: [#3] Заказ №12345\r\n\
             Message-ID: <{id}@x.example>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        )
    };
    ingest_text(
        &w,
        "staff.eml",
        &reply("s2", "anna@acme.example", "Досылаем позицию."),
    );
    ingest_text(
        &w,
        "client.eml",
        &reply("c2", "sergey@client3.example", "Спасибо, жду."),
    );
    assert_eq!(run_schedules(&w, 6, "client-waiting"), applied(&[3]));
    assert_eq!(outbox_to(&w, "lead@acme.example").len(), 3);

    let listed = w.json(&["schedules"]);
    let waiting = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "client-waiting")
        .unwrap();
    assert_eq!(waiting["every"], "5m");
    assert_eq!(waiting["fired_total"], 3);
    assert_eq!(waiting["last_fired"], 1);
    assert!(waiting["last_run_did"]
        .as_str()
        .unwrap()
        .contains("#3: notify lead@acme.example"));
}

#[test]
fn scenario_6_a_result_is_recorded_and_the_assignee_is_reminded_once() {
    let w = ingested();
    let deal = w.json(&["task", "show", "6"]);
    assert_eq!(deal["title"], "Поставка оборудования для ООО «Вектор»");
    assert_eq!(deal["assignee"], "anna@acme.example");
    // 12 planned the next action, 13 reported its result: the plan is cleared.
    let fields = deal["fields"].as_object().unwrap();
    assert_eq!(fields.get("Тип").unwrap(), "Сделка");
    assert!(!fields.contains_key("Следующее действие"), "{fields:?}");
    assert!(
        !fields.contains_key("Срок следующего действия"),
        "{fields:?}"
    );
    let rows = w.json(&["analytics", "show", "Результаты сделок"]);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["task"], 6);
    assert_eq!(
        rows[0]["values"]["Результат"],
        "спецификация согласована, ждём договор"
    );
    assert_eq!(rows[0]["values"]["Менеджер"], "anna@acme.example");

    let schedule = "deal-without-next-action";
    assert_eq!(run_schedules(&w, 20, schedule), vec![]);
    assert_eq!(run_schedules(&w, 25, schedule), applied(&[6]));
    assert_eq!(run_schedules(&w, 48, schedule), vec![]);
    let mail = outbox_to(&w, "anna@acme.example");
    let reminders: Vec<&Value> = mail
        .iter()
        .filter(|m| m["subject"] == "Запланируйте следующее действие по сделке #6")
        .collect();
    assert_eq!(reminders.len(), 1, "{mail:#?}");

    // Planning the next action ends the wait; no reminder while it stands.
    let plan = "From: anna@acme.example\r\nTo: support@acme.example\r\n\
                Subject: Re: [#6] Сделка\r\nMessage-ID: <plan-1@acme.example>\r\n\
                MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
                Следующее действие: Отправить договор\r\nСрок: 27.11.2026\r\n";
    ingest_text(&w, "plan.eml", plan);
    let deal = w.json(&["task", "show", "6"]);
    assert_eq!(deal["fields"]["Следующее действие"], "Отправить договор");
    assert_eq!(deal["fields"]["Срок следующего действия"], "2026-11-27");
    assert_eq!(run_schedules(&w, 72, schedule), vec![]);
}

#[test]
fn a_schedule_tried_out_in_the_future_is_recorded_as_run_now() {
    let w = ingested();
    let before = Utc::now();
    run_schedules(&w, 72, "no such schedule");
    let after = Utc::now();
    let schedules = w.json(&["schedules"]);
    let schedules = schedules.as_array().unwrap();
    assert!(!schedules.is_empty());
    for schedule in schedules {
        let last = schedule["last_run"].as_str().unwrap();
        let last = chrono::DateTime::parse_from_rfc3339(last).unwrap();
        // Seconds precision: the recorded time is the real one, not three days ahead.
        assert!(
            last >= before - Duration::seconds(1) && last <= after + Duration::seconds(1),
            "{schedule}"
        );
    }
}
