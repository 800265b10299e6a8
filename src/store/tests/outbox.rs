//! The outbox API the SMTP worker uses.

use super::*;

fn queued_reply(store: &mut Store, key: &str, sender: &str, now: DateTime<Utc>) -> OutboxRow {
    let p = plan(sender, None, vec![create_task("A"), current(reply())]);
    apply_one(store, item(key, p), now);
    store.outbox_list().unwrap()[0].clone()
}

#[test]
fn due_mail_is_sent_retried_failed_and_requeued() {
    let mut store = Store::open_in_memory().unwrap();
    let first = queued_reply(&mut store, "a@x", "a@example.com", at(20, 10));
    let second = queued_reply(&mut store, "b@x", "b@example.com", at(20, 11));
    let due = store.outbox_due(at(20, 12), 10).unwrap();
    assert_eq!(
        due.iter().map(|r| r.id).collect::<Vec<_>>(),
        [first.id, second.id]
    );
    assert_eq!(store.outbox_due(at(20, 12), 1).unwrap().len(), 1);

    store
        .outbox_mark_retry(first.id, "421 try later", at(20, 13))
        .unwrap();
    let due = store.outbox_due(at(20, 12), 10).unwrap();
    assert_eq!(
        due.iter().map(|r| r.id).collect::<Vec<_>>(),
        [second.id],
        "not before retry_at"
    );
    let due = store.outbox_due(at(20, 13), 10).unwrap();
    assert_eq!(due[0].id, first.id);
    assert_eq!(due[0].attempts, 1);
    assert_eq!(due[0].reason.as_deref(), Some("421 try later"));

    store.outbox_mark_sent(second.id, at(20, 13)).unwrap();
    store
        .outbox_mark_failed(first.id, "550 no such user")
        .unwrap();
    assert!(store.outbox_due(at(21, 0), 10).unwrap().is_empty());
    let rows = store.outbox_list().unwrap();
    let sent = rows.iter().find(|r| r.id == second.id).unwrap();
    assert_eq!(sent.status, "sent");
    assert_eq!(sent.sent_at.as_deref(), Some("2026-11-20T13:00:00Z"));
    let failed = rows.iter().find(|r| r.id == first.id).unwrap();
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.attempts, 2);
    assert_eq!(failed.reason.as_deref(), Some("550 no such user"));

    // Sent mail is never requeued; failed mail is, with attempts reset.
    assert_eq!(store.outbox_requeue(&[second.id]).unwrap(), 0);
    assert_eq!(store.outbox_requeue(&[]).unwrap(), 1);
    let due = store.outbox_due(at(21, 0), 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].id, due[0].attempts), (first.id, 0));
}

#[test]
fn a_suppressed_reply_can_be_requeued_by_id_only() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "t@x", "c@example.com", at(20, 10));
    let auto = plan(
        "c@example.com",
        Some(task),
        vec![current(ActionKind::Reply {
            subject: text("Re"),
            text: text("t"),
            suppressed: Some("list mail (List-Id)".into()),
        })],
    );
    apply_one(&mut store, item("auto@x", auto), at(20, 11));
    let row = store.outbox_list().unwrap()[0].clone();
    assert_eq!(store.outbox_requeue(&[]).unwrap(), 0);
    assert_eq!(store.outbox_requeue(&[row.id]).unwrap(), 1);
    assert_eq!(store.outbox_due(at(20, 12), 10).unwrap()[0].id, row.id);
}

/// Applies a new request from `sender` whose plan replies, with at most `per_day` replies per
/// recipient a day; returns the outbox row it wrote.
fn request_with_reply(
    store: &mut Store,
    key: &str,
    sender: &str,
    per_day: u32,
    now: DateTime<Utc>,
) -> OutboxRow {
    let mut opts = options(now);
    opts.limits.replies_per_recipient_per_day = per_day;
    let p = plan(sender, None, vec![create_task("A"), current(reply())]);
    let results = store.apply_batch(vec![item(key, p)], None, &opts).unwrap();
    assert_eq!(
        results[0].status,
        ResultStatus::Applied,
        "{:?}",
        results[0].error
    );
    store.outbox_list().unwrap()[0].clone() // newest first
}

#[test]
fn a_busy_sender_is_limited_by_the_replies_that_count_not_by_those_suppressed() {
    let mut store = Store::open_in_memory().unwrap();
    let robot = "info@courier.example";
    let first: Vec<OutboxRow> = (0..3)
        .map(|n| request_with_reply(&mut store, &format!("a{n}@x"), robot, 3, at(20, 10)))
        .collect();
    assert!(first.iter().all(|r| r.status == "queued"));
    // The robot goes on writing: hundreds of suppressed replies pile up.
    for n in 0..300 {
        let row = request_with_reply(&mut store, &format!("b{n}@x"), robot, 3, at(20, 11));
        assert_eq!(row.status, "suppressed");
        assert_eq!(
            row.reason.as_deref(),
            Some(
                "rate limit: info@courier.example already got 3 automatic replies in the last \
                 24h (limit 3)"
            )
        );
    }
    // A reply that failed for good was not sent: it no longer counts, a sent one does.
    store.outbox_mark_sent(first[0].id, at(20, 12)).unwrap();
    store
        .outbox_mark_failed(first[1].id, "550 no such user")
        .unwrap();
    let row = request_with_reply(&mut store, "c@x", robot, 3, at(20, 12));
    assert_eq!(row.status, "queued");
    let row = request_with_reply(&mut store, "d@x", robot, 3, at(20, 12));
    assert_eq!(row.status, "suppressed");
    // A day after the first replies only the later ones count.
    let row = request_with_reply(&mut store, "e@x", robot, 3, at(21, 11));
    assert_eq!(row.status, "queued");
    // Other recipients were never limited by the robot's history.
    let row = request_with_reply(&mut store, "f@x", "ivan@client.example", 3, at(20, 12));
    assert_eq!(row.status, "queued");
}

#[test]
fn the_per_message_lookups_that_could_grow_read_one_index_entry_or_up_to_a_limit() {
    // The growth run (BENCHMARKS.md) is what shows the cost; this keeps the plans that give
    // it: a change to a query that stops SQLite from using these indexes would walk every
    // outbox row to a recipient, or every task sharing a field value, for each message again.
    let store = Store::open_in_memory().unwrap();
    for (sql, table, index) in [
        (
            super::super::outbox::REPLIED_ABOUT_TASK,
            "outbox",
            "outbox_counted_task_replies (recipient=?",
        ),
        (
            super::super::outbox::REPLIES_UP_TO_LIMIT,
            "outbox",
            "outbox_counted_replies (recipient=?",
        ),
        (
            super::super::tasks::NEWEST_WITH_FIELD,
            "task_fields",
            "task_fields_newest (name=? AND value=?)",
        ),
    ] {
        let mut explain = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let values = ["a@example.com", "1", "2026-11-20"];
        let bound = &values[..explain.parameter_count()];
        let plan: Vec<String> = explain
            .query_map(rusqlite::params_from_iter(bound), |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // One search of one index, no sorting of what it found.
        assert!(!plan.iter().any(|s| s.contains("TEMP B-TREE")), "{plan:?}");
        let searches: Vec<&String> = plan.iter().filter(|s| s.contains(table)).collect();
        assert_eq!(searches.len(), 1, "{plan:?}");
        assert!(
            searches[0].starts_with(&format!("SEARCH {table} USING "))
                && searches[0].contains(&format!("INDEX {index}")),
            "{plan:?}"
        );
    }
}

#[test]
fn the_rows_each_message_writes_need_no_ephemeral_table_and_fire_no_trigger() {
    // What the applying thread pays per message (BENCHMARKS.md, "Session 8"): SQLite builds
    // an ephemeral table for a `RETURNING` clause and for an `IN` list of three values or more
    // in a partial index's WHERE clause, evaluated for every row written; and it keeps a
    // statement journal, a copy of every page touched, for a statement that fires a trigger.
    let store = Store::open_in_memory().unwrap();
    for sql in [
        super::super::messages::INSERT_NEW,
        super::super::outbox::INSERT,
        super::super::tasks::TOUCH,
        super::super::tasks::WRITE_FIELD,
    ] {
        let mut explain = store.conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let unbound = vec![rusqlite::types::Null; explain.parameter_count()];
        let opcodes: Vec<String> = explain
            .query_map(rusqlite::params_from_iter(unbound), |r| r.get(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!opcodes.is_empty(), "{sql}");
        for costly in ["OpenEphemeral", "Program"] {
            assert!(!opcodes.iter().any(|op| op == costly), "{costly} in {sql}");
        }
    }
}
