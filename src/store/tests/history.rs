//! A task's history: every change with who made it (rule, trigger, schedule, person), a
//! person's change and answer made like mail's, and the history rebuilt for an old store.

use std::sync::Arc;

use super::*;
use crate::store::{Answer, Change, ChangeError, FiringOutcome, FiringRequest, HistoryEntry};

/// `status_changed` to "Нужно ответить клиенту" sets the field "Мяч" to "у нас": a trigger
/// that a person's change must fire as mail's does. "Сломано" makes the trigger fail.
#[derive(Debug)]
struct Ball;

impl Triggers for Ball {
    fn actions_for(&self, event: &TaskEvent) -> Result<Vec<PlannedAction>, String> {
        let status = event.values.iter().find(|(k, _)| k == "status");
        match (event.kind, status.map(|(_, v)| v.as_str())) {
            (EventKind::StatusChanged, Some("Нужно ответить клиенту")) => {
                Ok(vec![PlannedAction {
                    rule: "whose-move".into(),
                    kind: set_field("Мяч", "у нас"),
                    task: TaskRef::Current,
                    if_missing: IfMissing::Fail,
                }])
            }
            (EventKind::StatusChanged, Some("Сломано")) => {
                Err("trigger \"broken\": no".into())
            }
            _ => Ok(vec![]),
        }
    }
}

fn with_ball(now: DateTime<Utc>) -> ApplyOptions {
    ApplyOptions {
        triggers: Some(Arc::new(Ball)),
        ..options(now)
    }
}

fn kinds(history: &[HistoryEntry]) -> Vec<(String, String)> {
    history
        .iter()
        .map(|e| (e.by.clone(), e.kind.clone()))
        .collect()
}

fn history(store: &Store, task: i64) -> Vec<HistoryEntry> {
    store.task_history(task).unwrap().expect("the task exists")
}

fn by_person(task: i64, kind: ActionKind) -> Change {
    Change {
        task,
        actions: vec![action(kind, TaskRef::Number(task), IfMissing::Fail)],
    }
}

#[test]
fn every_change_of_a_message_is_credited_to_its_rule() {
    let mut store = Store::open_in_memory().unwrap();
    let p = plan(
        "c@example.com",
        None,
        vec![create_task("A"), current(reply())],
    );
    let task = apply_one(&mut store, item("m1@x", p), at(20, 10))
        .task
        .unwrap();
    let p = plan(
        "c@example.com",
        Some(task),
        vec![
            current(comment("ещё вопрос")),
            current(set_status("Нужно ответить клиенту")),
            current(set_field("Номер заказа", "777")),
        ],
    );
    apply_one(&mut store, item("m2@x", p), at(20, 11));

    let h = history(&store, task);
    let rule = |kind: &str| ("rule:test-rule".to_string(), kind.to_string());
    assert_eq!(
        kinds(&h),
        [
            rule("created"),
            rule("status"),
            rule("message"),
            rule("reply"),
            rule("message"),
            rule("comment"),
            rule("status"),
            rule("field"),
        ]
    );
    assert_eq!(h[0].to.as_deref(), Some("A"));
    assert_eq!(h[3].to.as_deref(), Some("c@example.com"));
    assert_eq!(h[4].from.as_deref(), Some("c@example.com"));
    assert_eq!(h[6].from.as_deref(), Some("Новая"));
    assert_eq!(h[6].to.as_deref(), Some("Нужно ответить клиенту"));
    assert_eq!(h[7].name.as_deref(), Some("Номер заказа"));
    assert_eq!(
        (h[7].from.as_deref(), h[7].to.as_deref()),
        (None, Some("777"))
    );
    assert_eq!(h[7].at, "2026-11-20T11:00:00Z");
    assert_eq!(store.task_history(999).unwrap(), None);
}

#[test]
fn a_persons_change_fires_the_triggers_mail_fires_and_is_credited_to_the_person() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "m1@x", "c@example.com", at(20, 10));
    let change = by_person(task, set_status("Нужно ответить клиенту"));
    store
        .apply_change(change, "anna@acme.example", &with_ball(at(20, 12)))
        .unwrap();
    let assign = by_person(
        task,
        ActionKind::Assign {
            assignee: Some("petr@acme.example".into()),
        },
    );
    store
        .apply_change(assign, "anna@acme.example", &with_ball(at(20, 13)))
        .unwrap();

    let shown = store.task_show(task).unwrap().unwrap();
    assert_eq!(shown.status, "Нужно ответить клиенту");
    assert_eq!(shown.fields["Мяч"], "у нас");
    assert_eq!(shown.assignee.as_deref(), Some("petr@acme.example"));
    let h = history(&store, task);
    let tail: Vec<_> = kinds(&h).into_iter().skip(3).collect();
    assert_eq!(
        tail,
        [
            ("anna@acme.example".to_string(), "status".to_string()),
            ("trigger:whose-move".to_string(), "field".to_string()),
            ("anna@acme.example".to_string(), "assignee".to_string()),
        ]
    );
    // The person is staff, not a new contact who could become a requester.
    assert_eq!(store.contact_id("anna@acme.example").unwrap(), None);
}

#[test]
fn a_refused_change_changes_nothing() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "m1@x", "c@example.com", at(20, 10));
    let before: Vec<i64> = TABLES.iter().map(|t| count(&store, t)).collect();
    let err = store
        .apply_change(
            by_person(99, set_status("x")),
            "anna@acme.example",
            &with_ball(at(20, 11)),
        )
        .unwrap_err();
    assert!(matches!(err, ChangeError::UnknownTask(99)), "{err}");
    // A trigger that fails takes the whole change with it.
    let change = Change {
        task,
        actions: vec![
            action(comment("заметка"), TaskRef::Number(task), IfMissing::Fail),
            action(
                set_status("Сломано"),
                TaskRef::Number(task),
                IfMissing::Fail,
            ),
        ],
    };
    let err = store
        .apply_change(change, "anna@acme.example", &with_ball(at(20, 11)))
        .unwrap_err();
    assert!(err.to_string().contains("broken"), "{err}");
    let after: Vec<i64> = TABLES.iter().map(|t| count(&store, t)).collect();
    assert_eq!(before, after);
    assert_eq!(store.task_show(task).unwrap().unwrap().status, "Новая");
}

#[test]
fn an_answer_goes_to_the_requester_and_threads_both_ways() {
    let mut store = Store::open_in_memory().unwrap();
    let p = plan("c@example.com", None, vec![create_task("Fwd: Счёт")]);
    let task = apply_one(&mut store, item("m1@x", p), at(20, 10))
        .task
        .unwrap();
    let p = plan("c@example.com", Some(task), vec![current(comment("ещё"))]);
    apply_one(&mut store, item("m2@x", p), at(20, 11));
    let answer = Answer {
        task,
        text: "Добрый день".into(),
        cc: vec!["boss@example.com".into()],
    };
    let id = store
        .queue_answer(answer, "anna@acme.example", &options(at(20, 12)))
        .unwrap();
    let row = store
        .outbox_list()
        .unwrap()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap();
    assert_eq!(row.kind, "answer");
    assert_eq!(row.recipient, "c@example.com");
    assert_eq!(row.cc, ["boss@example.com"]);
    assert_eq!(row.subject, format!("Re: Счёт [#{task}]"));
    assert_eq!(row.in_reply_to.as_deref(), Some("m2@x"));
    assert_eq!(row.references, ["m1@x", "m2@x"]);
    // The customer's answer to it names our Message-ID: it comes back to the task.
    assert_eq!(
        store.task_for_message_ids(&[&row.our_message_id]).unwrap(),
        Some(task)
    );
    let last = history(&store, task).pop().unwrap();
    assert_eq!(
        (last.by.as_str(), last.kind.as_str()),
        ("anna@acme.example", "reply")
    );

    let err = store
        .queue_answer(
            Answer {
                task: 42,
                text: "x".into(),
                cc: vec![],
            },
            "anna@acme.example",
            &options(at(20, 12)),
        )
        .unwrap_err();
    assert!(matches!(err, ChangeError::UnknownTask(42)), "{err}");
}

#[test]
fn a_schedules_changes_are_credited_to_the_schedule() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "m1@x", "c@example.com", at(20, 10));
    let firing = FiringRequest {
        task,
        entry: "1".into(),
        summary: "status".into(),
        actions: Ok(vec![current(set_status("Просрочено"))]),
    };
    let outcomes = store
        .apply_schedule_run("overdue", vec![firing], &options(at(21, 10)))
        .unwrap();
    assert_eq!(outcomes, [FiringOutcome::Applied]);
    let last = history(&store, task).pop().unwrap();
    assert_eq!(last.by, "schedule:overdue");
    assert_eq!(last.to.as_deref(), Some("Просрочено"));
}

#[test]
fn an_old_store_gets_the_history_its_tables_remember() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailrules.db");
    {
        // A store of the release before history: one task made by a message of the rule
        // "new-request", a client's reply commented, a status change and a field.
        let raw = store_of_schema(&path, 5);
        raw.execute_batch(
            "INSERT INTO tasks (title, status, created_at, updated_at) VALUES
               ('Помогите', 'Ожидание', '2026-11-01T10:00:00Z', '2026-11-02T10:00:00Z');
             INSERT INTO task_status_history (task_id, status, at) VALUES
               (1, 'Новая', '2026-11-01T10:00:00Z'), (1, 'Ожидание', '2026-11-02T10:00:00Z');
             INSERT INTO task_field_history (task_id, name, value, at) VALUES
               (1, 'Номер', '7', '2026-11-02T10:00:00Z');
             INSERT INTO messages (key, mailbox, source, subject, sender, status, rule, \
               task_id, received_at, processed_at) VALUES
               ('a@x', 'cli', 'f', 'Помогите', 'c@example.com', 'applied', 'new-request', 1, \
                '2026-11-01T10:00:00Z', '2026-11-01T10:00:00Z'),
               ('b@x', 'cli', 'f', 'Re: Помогите', 'c@example.com', 'applied', 'staff-reply', \
                1, '2026-11-02T10:00:00Z', '2026-11-02T10:00:00Z');
             INSERT INTO comments (task_id, author, text, message_key, created_at) VALUES
               (1, 'anna@acme.example', 'Ответили', 'b@x', '2026-11-02T10:00:00Z');",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let h = history(&store, 1);
    let seen: Vec<(&str, &str, Option<&str>)> = h
        .iter()
        .map(|e| (e.by.as_str(), e.kind.as_str(), e.to.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("rule:new-request", "created", Some("Помогите")),
            ("rule:new-request", "message", Some("Помогите")),
            ("rule:new-request", "status", Some("Новая")),
            ("rule:staff-reply", "message", Some("Re: Помогите")),
            ("rule:staff-reply", "status", Some("Ожидание")),
            ("rule:staff-reply", "field", Some("7")),
            ("rule:staff-reply", "comment", Some("Ответили")),
        ]
    );
    assert_eq!(h[4].from.as_deref(), Some("Новая"));
}
