//! The task's last mail kept on the task (`last_mail_at` / `last_mail_ours`): the web's views
//! "waiting for us", "waiting for the customer" and "overdue" on a store upgraded from before
//! the columns, and as new mail and replies arrive after the upgrade.

use super::*;
use crate::store::{history, TaskFilter, Waiting};

/// The ids `filter` lets through, newest first.
fn ids(store: &Store, filter: TaskFilter) -> Vec<i64> {
    store
        .task_query(&filter)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect()
}

fn waiting(who: Waiting) -> TaskFilter {
    TaskFilter {
        waiting: Some(who),
        ..TaskFilter::default()
    }
}

#[test]
fn an_upgraded_old_store_answers_the_views_from_each_tasks_last_mail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailrules.db");
    {
        // A store of the release before the columns (schema 10): task 1 only has the mail
        // that created it, task 2 a person's reply after it, task 3 a person's reply and then
        // the customer's answer, task 4 only a rule's automatic acknowledgement after its mail.
        let raw = store_of_schema(&path, 10);
        raw.execute_batch(
            "INSERT INTO tasks (title, status, created_at, updated_at) VALUES
               ('Один', 'Новая', '2026-11-01T10:00:00Z', '2026-11-01T10:00:00Z'),
               ('Два', 'Новая', '2026-11-01T11:00:00Z', '2026-11-01T12:00:00Z'),
               ('Три', 'Новая', '2026-11-01T12:00:00Z', '2026-11-03T12:00:00Z'),
               ('Четыре', 'Новая', '2026-11-01T13:00:00Z', '2026-11-01T13:00:00Z');
             INSERT INTO task_events (task_id, at, by, kind, to_value) VALUES
               (1, '2026-11-01T10:00:00Z', 'rule:new', 'created', 'Один'),
               (2, '2026-11-01T11:00:00Z', 'rule:new', 'created', 'Два'),
               (2, '2026-11-01T12:00:00Z', 'anna@acme.example', 'reply', 'c@example.com'),
               (3, '2026-11-01T12:00:00Z', 'rule:new', 'created', 'Три'),
               (3, '2026-11-02T12:00:00Z', 'anna@acme.example', 'reply', 'c@example.com'),
               (3, '2026-11-03T12:00:00Z', 'rule:answer', 'message', 'c@example.com'),
               (4, '2026-11-01T13:00:00Z', 'rule:new', 'created', 'Четыре'),
               (4, '2026-11-01T13:00:01Z', 'rule:new', 'reply', 'c@example.com');",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(ids(&store, waiting(Waiting::Us)), [4, 3, 1]);
    assert_eq!(ids(&store, waiting(Waiting::Customer)), [2]);
    // Overdue: waiting for us with the last mail before 2026-11-02.
    let overdue = TaskFilter {
        last_mail_before: Some("2026-11-02T00:00:00Z".into()),
        ..waiting(Waiting::Us)
    };
    assert_eq!(ids(&store, overdue.clone()), [4, 1]);

    // After the upgrade every recorded mail keeps them: a person answers task 1, the customer
    // task 2 (written as every writer writes them: the history row, and the last mail it
    // implies).
    let conn = &store.conn;
    record_with_last_mail(
        conn,
        &crate::store::history::Event {
            task: 1,
            by: "anna@acme.example",
            kind: crate::store::history::Kind::Reply,
            name: None,
            from: None,
            to: Some("c@example.com"),
        },
        "2026-11-04T10:00:00Z",
    );
    record_with_last_mail(
        conn,
        &crate::store::history::Event {
            task: 2,
            by: "rule:answer",
            kind: crate::store::history::Kind::Message,
            name: None,
            from: None,
            to: Some("c@example.com"),
        },
        "2026-11-04T11:00:00Z",
    );
    assert_eq!(ids(&store, waiting(Waiting::Us)), [4, 3, 2]);
    assert_eq!(ids(&store, waiting(Waiting::Customer)), [1]);
    assert_eq!(ids(&store, overdue), [4]);
}

/// Writes `event` to its task's history and the last mail it implies on the task's row.
fn record_with_last_mail(conn: &rusqlite::Connection, event: &history::Event, at: &str) {
    history::write_event(conn, event, at).unwrap();
    if let Some(ours) = history::last_mail_by_us(event) {
        crate::store::tasks::set_last_mail(conn, event.task, at, ours).unwrap();
    }
}

/// Task `task`'s last mail as the store keeps it: when, and whether it was our reply.
fn last_mail(store: &Store, task: i64) -> (Option<String>, Option<bool>) {
    store
        .conn
        .query_row(
            "SELECT last_mail_at, last_mail_ours FROM tasks WHERE id = ?1",
            [task],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// When the task's history says its last incoming mail came.
fn last_message_at(store: &Store, task: i64) -> Option<String> {
    let history = store.task_history(task).unwrap().unwrap();
    history
        .into_iter()
        .filter(|e| e.kind == "created" || e.kind == "message")
        .map(|e| e.at)
        .next_back()
}

#[test]
fn a_task_from_mail_waits_for_us_from_that_mail_and_from_each_later_one() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(
        &mut store,
        "m1@example.com",
        "client@example.com",
        at(20, 10),
    );
    let created = last_mail(&store, task);
    assert_eq!(created.1, Some(false), "{created:?}");
    assert_eq!(created.0, last_message_at(&store, task));
    assert_eq!(ids(&store, waiting(Waiting::Us)), [task]);
    assert!(ids(&store, waiting(Waiting::Customer)).is_empty());

    // The customer writes again on the same task the next day: the task's last mail moves.
    let again = plan(
        "client@example.com",
        Some(task),
        vec![current(comment("Ещё вопрос"))],
    );
    apply_one(&mut store, item("m2@example.com", again), at(21, 9));
    let later = last_mail(&store, task);
    assert_eq!(later.1, Some(false), "{later:?}");
    assert_eq!(later.0, last_message_at(&store, task));
    assert_ne!(later.0, created.0);
    let overdue_before_the_second_mail = TaskFilter {
        last_mail_before: later.0.clone(),
        ..waiting(Waiting::Us)
    };
    assert!(ids(&store, overdue_before_the_second_mail).is_empty());
}
