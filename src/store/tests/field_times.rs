//! A task found by a field value is the one updated last (index `task_fields_newest`), on a
//! store upgraded from before migration 15 (which dropped the triggers that copied each
//! task's `updated_at` onto its field rows) as on a new one, whichever change marks the task
//! updated; and the reply limits still count an upgraded store's replies.

use super::*;

/// The task that a message naming order `order` acts on (`if_missing = "fail"`).
fn task_by_order(store: &mut Store, key: &str, order: &str, now: DateTime<Utc>) -> Option<i64> {
    let by_order = TaskRef::Field {
        field: "Номер заказа".into(),
        value: order.into(),
    };
    let p = plan(
        "courier@example.com",
        None,
        vec![action(
            comment("статус доставки"),
            by_order,
            IfMissing::Fail,
        )],
    );
    let result = apply_one(store, item(key, p), now);
    assert_eq!(result.status, ResultStatus::Applied, "{:?}", result.error);
    result.task
}

/// Changes task `task` at `now` with `change` (a status, a field, a comment).
fn change(store: &mut Store, key: &str, task: i64, change: ActionKind, now: DateTime<Utc>) {
    let p = plan(
        "staff@acme.example",
        None,
        vec![action(change, TaskRef::Number(task), IfMissing::Fail)],
    );
    let result = apply_one(store, item(key, p), now);
    assert_eq!(result.status, ResultStatus::Applied, "{:?}", result.error);
}

#[test]
fn an_upgraded_store_finds_the_task_updated_last_by_a_field_whatever_changed_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailrules.db");
    // The previous release's store (schema 14).
    older_store_with_two_orders_and_ten_replies(&path, 14);
    let mut store = Store::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        migrations::latest_version()
    );
    assert_eq!(task_by_order(&mut store, "a@x", "777", at(20, 11)), Some(1));

    // Each kind of change to task 2 makes it the one updated last.
    change(&mut store, "b@x", 2, set_status("В работе"), at(20, 12));
    assert_eq!(task_by_order(&mut store, "c@x", "777", at(20, 12)), Some(2));
    change(&mut store, "d@x", 1, comment("ещё"), at(20, 13));
    assert_eq!(task_by_order(&mut store, "e@x", "777", at(20, 13)), Some(1));
    change(
        &mut store,
        "f@x",
        2,
        set_field("Курьер", "Пётр"),
        at(20, 14),
    );
    assert_eq!(task_by_order(&mut store, "g@x", "777", at(20, 14)), Some(2));
    // A task that gets the value now is the one updated last.
    let third = new_task(&mut store, "h@x", "c3@example.com", at(20, 15));
    change(
        &mut store,
        "i@x",
        third,
        set_field("Номер заказа", "777"),
        at(20, 16),
    );
    assert_eq!(
        task_by_order(&mut store, "j@x", "777", at(20, 16)),
        Some(third)
    );

    // The ten replies of the upgraded store count against the daily limit.
    assert_the_old_replies_count(&mut store, "k@x", at(20, 17));
}
