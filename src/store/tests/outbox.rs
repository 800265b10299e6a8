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
