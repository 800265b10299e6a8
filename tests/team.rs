//! Working tasks by hand through the built binary (team.md): `task set | comment | close |
//! reply | history`, declared statuses, and every bad input refused with exit 1, changing
//! nothing.

use std::io::Write;
use std::process::{Output, Stdio};

use crate::support::workdir::{fixture, Workdir};
use serde_json::Value;

const ANNA: &str = "anna@acme.example";

fn ingested() -> Workdir {
    let w = Workdir::with_shipped_rules();
    let result = w.ingest(&fixture("scenarios"));
    assert_eq!(result["failed"], 0, "{result:#}");
    w
}

/// `mailrules ARGS`, by Anna unless ARGS say otherwise, with `stdin` as standard input.
fn by(w: &Workdir, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = w
        .command(args)
        .env_remove("MAILRULES_USER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(w: &Workdir, args: &[&str]) -> String {
    let out = by(w, args, b"");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with exit 1; its stderr.
fn refused(w: &Workdir, args: &[&str], stdin: &[u8]) -> String {
    let out = by(w, args, stdin);
    assert_eq!(out.status.code(), Some(1), "{args:?} must be refused");
    String::from_utf8(out.stderr).unwrap()
}

fn history(w: &Workdir, task: i64) -> Vec<Value> {
    let h = w.json(&["task", "history", &task.to_string()]);
    h.as_array().unwrap().clone()
}

#[test]
fn a_persons_change_is_stored_in_declared_spelling_and_recorded_with_its_author() {
    let w = ingested();
    ok(
        &w,
        &[
            "task",
            "set",
            "1",
            "--status",
            "нужно ответить КЛИЕНТУ",
            "--assignee",
            "Petr@Acme.example",
            "--field",
            "причина отказа=другое",
            "--as",
            ANNA,
        ],
    );
    let t = w.json(&["task", "show", "1"]);
    assert_eq!(t["status"], "Нужно ответить клиенту");
    assert_eq!(t["assignee"], "petr@acme.example");
    assert_eq!(t["fields"]["Причина отказа"], "Другое");

    let h = history(&w, 1);
    assert_eq!(h[0]["kind"], "created");
    assert_eq!(h[0]["by"], "rule:new-request");
    let last: Vec<(&str, &str)> = h[h.len() - 3..]
        .iter()
        .map(|e| (e["by"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        last,
        [(ANNA, "status"), (ANNA, "field"), (ANNA, "assignee")]
    );
    let status = &h[h.len() - 3];
    assert_eq!(status["from"], "Ожидание ответа клиента");
    assert_eq!(status["to"], "Нужно ответить клиенту");
    for e in &h {
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 6, "{e}");
        for key in ["at", "by", "kind", "name", "from", "to"] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
    }
    // The human table names the author too.
    assert!(ok(&w, &["task", "history", "1"]).contains(ANNA));
}

#[test]
fn the_author_comes_from_the_environment_else_the_change_is_refused() {
    let w = ingested();
    let out = w
        .command(&["task", "comment", "1", "позвонила клиенту"])
        .env("MAILRULES_USER", "olga@acme.example")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = history(&w, 1).pop().unwrap();
    assert_eq!(
        (last["by"].as_str(), last["kind"].as_str()),
        (Some("olga@acme.example"), Some("comment"))
    );
    assert_eq!(last["to"], "позвонила клиенту");

    let err = refused(&w, &["task", "comment", "1", "кто я?"], b"");
    assert!(
        err.contains("--as") && err.contains("MAILRULES_USER"),
        "{err}"
    );
}

#[test]
fn a_comment_from_standard_input_must_be_utf8() {
    let w = ingested();
    let out = by(
        &w,
        &["task", "comment", "1", "-", "--as", ANNA],
        "Заметка\nвторая строка".as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = w.json(&["task", "show", "1"]);
    let last = t["comments"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["text"], "Заметка\nвторая строка");
    assert_eq!(last["author"], ANNA);

    let before = history(&w, 1).len();
    let err = refused(
        &w,
        &["task", "comment", "1", "-", "--as", ANNA],
        b"\xcf\xf0\xe8\xe2\xe5\xf2",
    );
    assert!(err.contains("not UTF-8"), "{err}");
    assert_eq!(history(&w, 1).len(), before);
}

#[test]
fn close_sets_the_first_closed_status_and_needs_one_declared() {
    let w = ingested();
    let out = ok(&w, &["task", "close", "1", "--as", ANNA]);
    assert!(out.contains("Завершенная"), "{out}");
    assert_eq!(w.json(&["task", "show", "1"])["status"], "Завершенная");

    let bare = Workdir::with_rules(&[("r.toml", "[[rule]]\nname = \"all\"\n[rule.when]\nthread = \"new\"\n[[rule.do]]\naction = \"create_task\"\n")]);
    bare.ingest(&fixture("scenarios/01-new-request.eml"));
    // Without declared statuses version 1 holds: the initial status, and any status text.
    assert_eq!(bare.json(&["task", "show", "1"])["status"], "Новая");
    ok(
        &bare,
        &["task", "set", "1", "--status", "Что угодно", "--as", ANNA],
    );
    let err = refused(&bare, &["task", "close", "1", "--as", ANNA], b"");
    assert!(err.contains("closed = true"), "{err}");
    assert_eq!(bare.json(&["task", "show", "1"])["status"], "Что угодно");
}

#[test]
fn a_reply_goes_to_the_requester_and_the_customers_answer_comes_back() {
    let w = ingested();
    let queued = w.json(&[
        "task",
        "reply",
        "1",
        "Проверьте, пожалуйста",
        "--cc",
        "boss@client.example",
        "--as",
        ANNA,
    ]);
    let id = queued["outbox"].as_i64().unwrap();
    let outbox = w.json(&["outbox"]);
    let row = outbox
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(row["recipient"], "ivan@client.example");
    assert_eq!(row["subject"], "Re: Не работает выгрузка отчётов [#1]");
    assert_eq!(row["cc"][0], "boss@client.example");
    assert!(row["in_reply_to"].is_string());
    // No automatic reply keeps a colleague's "Fwd:" (04: a forwarded invoice).
    for r in outbox.as_array().unwrap() {
        let subject = r["subject"].as_str().unwrap();
        assert!(
            !subject.contains("Fwd") && !subject.contains("Re: Re:"),
            "{subject}"
        );
    }

    let answer = format!(
        "From: Ivan <ivan@client.example>\r\nTo: support@acme.example\r\nSubject: Re: ok\r\n\
         Message-ID: <answer-1@client.example>\r\nIn-Reply-To: <{}>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nВсё работает, спасибо!\r\n",
        row["our_message_id"].as_str().unwrap()
    );
    let file = w.path("answer.eml");
    std::fs::write(&file, answer).unwrap();
    let result = w.ingest(&file);
    assert_eq!(result["messages"][0]["task"], 1, "{result:#}");
    let h = history(&w, 1);
    assert!(h.iter().any(|e| e["kind"] == "reply" && e["by"] == ANNA));
}

#[test]
fn bad_input_is_refused_naming_what_is_allowed_and_changes_nothing() {
    let w = ingested();
    let before = w.json(&["task", "show", "1"]);
    let history_before = history(&w, 1).len();
    let cases: &[(&[&str], &str)] = &[
        (&["task", "set", "99", "--status", "Новая"], "no task #99"),
        (
            &["task", "set", "1", "--status", "Завершена"],
            "did you mean \"Завершенная\"",
        ),
        (
            &["task", "set", "1", "--status", "Архив"],
            "\"Новая\", \"В работе\"",
        ),
        (&["task", "set", "1", "--assignee", "petr"], "\"none\""),
        (
            &["task", "set", "1", "--field", "Цвет=синий"],
            "the fields are",
        ),
        (
            &["task", "set", "1", "--field", "Причина отказа=Скучно"],
            "\"Дорого\", \"Не устроили сроки\"",
        ),
        (
            &["task", "set", "1", "--field", "Дата отказа=вчера"],
            "not a date",
        ),
        (&["task", "set", "1", "--field", "безравно"], "NAME=VALUE"),
        (&["task", "set", "1"], "nothing to change"),
        (&["task", "comment", "99", "x"], "no task #99"),
        (&["task", "reply", "99", "x"], "no task #99"),
        (&["task", "reply", "1", "x", "--cc", "boss"], "--cc"),
        (&["task", "close", "99"], "no task #99"),
        (&["task", "history", "99"], "no task #99"),
    ];
    for (args, wanted) in cases {
        let mut args = args.to_vec();
        args.extend(["--as", ANNA]);
        if args[1] == "history" {
            args.truncate(3);
        }
        let err = refused(&w, &args, b"");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains(wanted), "{args:?}: {err}");
    }
    assert_eq!(w.json(&["task", "show", "1"]), before);
    assert_eq!(history(&w, 1).len(), history_before);
}

#[test]
fn check_names_an_unknown_status_where_it_is_written() {
    let w = Workdir::with_rules(&[(
        "r.toml",
        "[[status]]\nname = \"Новая\"\ninitial = true\n[[status]]\nname = \"Завершенная\"\nclosed = true\n\
         [[rule]]\nname = \"done\"\n[rule.when]\nthread = \"reply\"\n[[rule.do]]\naction = \"set\"\n\
         status = \"Завершена\"\n",
    )]);
    let out = by(&w, &["check"], b"");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
    assert!(
        text.contains("r.toml:13:10: rule \"done\": unknown status \"Завершена\", did you mean \"Завершенная\"?"),
        "{text}"
    );
}

#[test]
fn task_list_filters_pages_and_shows_the_assignee() {
    let w = ingested();
    ok(&w, &["task", "close", "1", "--as", ANNA]);
    ok(
        &w,
        &[
            "task",
            "set",
            "2",
            "--assignee",
            "petr@acme.example",
            "--as",
            ANNA,
        ],
    );
    ok(
        &w,
        &[
            "task",
            "comment",
            "3",
            "клиент просит счёт-фактуру",
            "--as",
            ANNA,
        ],
    );
    let ids = |args: &[&str]| -> Vec<i64> {
        let args = [&["task", "list"][..], args].concat();
        let list = w.json(&args);
        list.as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    };
    let all = ids(&[]);
    assert!(all.windows(2).all(|p| p[0] > p[1]), "newest first: {all:?}");
    assert!(!ids(&["--open"]).contains(&1));
    assert_eq!(ids(&["--status", "завершенная"]), [1]);
    assert_eq!(ids(&["--assignee", "Petr@acme.example"]), [2]);
    assert_eq!(ids(&["--field", "причина отказа=дорого"]), [1]);
    assert_eq!(ids(&["--search", "счёт-фактуру"]), [3]);
    assert_eq!(ids(&["--limit", "2"]), all[..2]);
    assert_eq!(ids(&["--limit", "2", "--offset", "2"]), all[2..4]);
    let table = ok(&w, &["task", "list", "--assignee", "petr@acme.example"]);
    assert!(
        table.lines().next().unwrap().contains("ASSIGNEE"),
        "{table}"
    );
    assert!(table.contains("petr@acme.example"), "{table}");
    // The JSON keys of version 1 stay.
    let first = w.json(&["task", "list"])[0].clone();
    for key in ["id", "title", "status", "requester"] {
        assert!(first.get(key).is_some(), "{key}: {first}");
    }
    let err = refused(&w, &["task", "list", "--field", "Цвет=синий"], b"");
    assert!(err.contains("the fields are"), "{err}");
}

#[test]
fn a_status_set_by_hand_starts_the_schedules_clock_as_one_set_by_mail() {
    let w = ingested();
    let later = (chrono::Utc::now() + chrono::Duration::hours(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let fired_on_1 = |run: &Value| {
        run["firings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["task"] == 1 && f["schedule"] == "client-waiting")
    };
    // Task 1 waits for the client (the staff answered last): the lead is not told.
    let before = w.json(&["schedules", "run", "--now", "--at", &later]);
    assert!(!fired_on_1(&before), "{before:#}");
    ok(
        &w,
        &[
            "task",
            "set",
            "1",
            "--status",
            "Нужно ответить клиенту",
            "--as",
            ANNA,
        ],
    );
    let after = w.json(&["schedules", "run", "--now", "--at", &later]);
    assert!(fired_on_1(&after), "{after:#}");
    let last = history(&w, 1).pop().unwrap();
    assert_eq!(last["by"], "schedule:client-waiting");
}
