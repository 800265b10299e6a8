//! Status changes recorded once, in the task's history (`task_events`, migration 13): what
//! schedules see of a store upgraded from when `task_status_history` held them too.

use super::*;
use crate::store::{FiringOutcome, FiringRequest};

#[test]
fn an_upgraded_store_keeps_since_when_each_task_has_its_status_and_what_schedules_did() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailrules.db");
    // The schema just before migration 13 (found by what it does: its position depends on
    // the order branches merged in).
    let before = migrations::MIGRATIONS
        .iter()
        .position(|sql| sql.contains("DROP TABLE task_status_history"))
        .unwrap();
    {
        // A store of the release before (both tables written by every change): task 1 new on
        // the 1st and waiting since the 3rd, task 2 new since the 2nd. The schedule "remind"
        // fired for task 1's wait and task 2's new status, told apart by the ids of
        // `task_status_history`.
        let raw = store_of_schema(&path, before);
        raw.execute_batch(
            "INSERT INTO tasks (title, status, created_at, updated_at) VALUES
               ('Один', 'Ожидание', '2026-11-01T10:00:00Z', '2026-11-03T10:00:00Z'),
               ('Два', 'Новая', '2026-11-02T10:00:00Z', '2026-11-02T10:00:00Z');
             INSERT INTO task_status_history (id, task_id, status, at) VALUES
               (1, 1, 'Новая', '2026-11-01T10:00:00Z'),
               (2, 2, 'Новая', '2026-11-02T10:00:00Z'),
               (3, 1, 'Ожидание', '2026-11-03T10:00:00Z');
             INSERT INTO task_events (id, task_id, at, by, kind, from_value, to_value) VALUES
               (1, 1, '2026-11-01T10:00:00Z', 'rule:new', 'created', NULL, 'Один'),
               (2, 1, '2026-11-01T10:00:00Z', 'rule:new', 'status', NULL, 'Новая'),
               (3, 2, '2026-11-02T10:00:00Z', 'rule:new', 'created', NULL, 'Два'),
               (4, 2, '2026-11-02T10:00:00Z', 'rule:new', 'status', NULL, 'Новая'),
               (5, 1, '2026-11-03T10:00:00Z', 'rule:answer', 'message', NULL, 'Re: Один'),
               (6, 1, '2026-11-03T10:00:00Z', 'rule:answer', 'status', 'Новая', 'Ожидание');
             INSERT INTO schedule_runs (schedule, task_id, entry, status, summary, fired_at)
             VALUES
               ('remind', 1, 'status#3', 'applied', 'comment', '2026-11-04T10:00:00Z'),
               ('remind', 2, 'status#2;Номер#0', 'applied', 'comment', '2026-11-04T10:00:00Z');",
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let gone: i64 = store
        .conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'task_status_history'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(gone, 0, "the second copy of the status changes is dropped");

    // Since when: as before the upgrade, for the schedules and for `task_in_status_since`.
    let waiting = store.schedule_candidates(Some("Ожидание")).unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].task, 1);
    assert_eq!(waiting[0].status_since.at, at(3, 10));
    let new = store.schedule_candidates(Some("Новая")).unwrap();
    assert_eq!(new.len(), 1);
    assert_eq!((new[0].task, new[0].status_since.at), (2, at(2, 10)));
    assert_eq!(
        store.task_in_status_since(1).unwrap().as_deref(),
        Some("2026-11-03T10:00:00Z")
    );
    let since_new = store.tasks_in_status_since("Новая", at(5, 0)).unwrap();
    assert_eq!(since_new.len(), 1);
    assert_eq!(
        (since_new[0].task, since_new[0].since.as_str()),
        (2, "2026-11-02T10:00:00Z")
    );

    // The entries the schedule fired for before the upgrade are the ones it sees now: it
    // does not fire again.
    let firings = vec![
        FiringRequest {
            task: 1,
            entry: format!("status#{}", waiting[0].status_since.id),
            summary: "comment".into(),
            actions: Ok(vec![current(comment("Напоминание"))]),
        },
        FiringRequest {
            task: 2,
            entry: format!("status#{};Номер#0", new[0].status_since.id),
            summary: "comment".into(),
            actions: Ok(vec![current(comment("Напоминание"))]),
        },
    ];
    let outcomes = store
        .apply_schedule_run("remind", firings, &options(at(6, 10)))
        .unwrap();
    assert_eq!(
        outcomes,
        [FiringOutcome::AlreadyFired, FiringOutcome::AlreadyFired]
    );

    // A change after the upgrade is a new entry, recorded once.
    let p = plan(
        "c@example.com",
        Some(2),
        vec![current(set_status("Ожидание"))],
    );
    apply_one(&mut store, item("m9@x", p), at(7, 10));
    let waiting = store.schedule_candidates(Some("Ожидание")).unwrap();
    let task2 = waiting.iter().find(|c| c.task == 2).unwrap();
    assert_eq!(task2.status_since.at, at(7, 10));
    let firing = FiringRequest {
        task: 2,
        entry: format!("status#{}", task2.status_since.id),
        summary: "comment".into(),
        actions: Ok(vec![current(comment("Напоминание"))]),
    };
    let outcomes = store
        .apply_schedule_run("remind", vec![firing], &options(at(8, 10)))
        .unwrap();
    assert_eq!(outcomes, [FiringOutcome::Applied]);
}
