//! Webhook deliveries in the outbox: queued with the message (with or without a task), handed
//! only to the webhook sender, due again after a retry, and left out while being sent.

use super::*;
use crate::plan::JsonText;

fn webhook(to: &str) -> ActionKind {
    ActionKind::Webhook {
        to: to.into(),
        body: JsonText::Table(vec![
            ("title".into(), JsonText::Text(text("Помогите"))),
            ("task".into(), JsonText::Text(with_task("#", ""))),
        ]),
    }
}

#[test]
fn a_delivery_is_queued_with_its_task_and_a_key_and_is_not_mail() {
    let mut store = Store::open_in_memory().unwrap();
    let p = plan(
        "a@example.com",
        None,
        vec![
            create_task("A"),
            current(reply()),
            current(webhook("tracker")),
        ],
    );
    apply_one(&mut store, item("a@x", p), at(20, 10));
    // Without a task the body's {task} is empty, and nothing fails.
    let p = plan("b@example.com", None, vec![current(webhook("chat"))]);
    apply_one(&mut store, item("b@x", p), at(20, 10));

    let mail = store.outbox_due(at(20, 11), 10).unwrap();
    assert_eq!(
        mail.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ["reply"]
    );
    let due = store.webhooks_due(at(20, 11), &[], 10).unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.endpoint.as_str(), d.body.as_str()))
            .collect::<Vec<_>>(),
        [
            ("tracker", r##"{"title":"Помогите","task":"#1"}"##),
            ("chat", r##"{"title":"Помогите","task":"#"}"##)
        ]
    );
    assert!(due[0].idempotency_key.starts_with("mailrules-"));
    assert_ne!(due[0].idempotency_key, due[1].idempotency_key);
    let rows = store.outbox_list().unwrap();
    let tasks: Vec<Option<i64>> = rows
        .iter()
        .filter(|r| r.kind == "webhook")
        .map(|r| r.task)
        .collect();
    assert_eq!(tasks, [None, Some(1)], "newest first");
}

#[test]
fn a_delivery_in_flight_is_left_out_and_a_retry_waits_its_time() {
    let mut store = Store::open_in_memory().unwrap();
    for key in ["a@x", "b@x"] {
        let p = plan("a@example.com", None, vec![current(webhook("tracker"))]);
        apply_one(&mut store, item(key, p), at(20, 10));
    }
    let due = store.webhooks_due(at(20, 10), &[], 10).unwrap();
    let (first, second) = (due[0].id, due[1].id);
    let busy = store.webhooks_due(at(20, 10), &[first], 10).unwrap();
    assert_eq!(busy.iter().map(|d| d.id).collect::<Vec<_>>(), [second]);
    assert_eq!(
        store.webhooks_next_due(&[first]).unwrap(),
        Some(DateTime::<Utc>::MIN_UTC)
    );

    store
        .outbox_mark_retry(first, "HTTP 503 Service Unavailable", at(20, 12))
        .unwrap();
    store
        .webhook_mark_delivered(second, at(20, 10), "HTTP 201 Created")
        .unwrap();
    assert!(store.webhooks_due(at(20, 11), &[], 10).unwrap().is_empty());
    assert_eq!(store.webhooks_next_due(&[]).unwrap(), Some(at(20, 12)));
    let again = store.webhooks_due(at(20, 12), &[], 10).unwrap();
    assert_eq!((again[0].id, again[0].attempts), (first, 1));
    assert_eq!(
        again[0].idempotency_key, due[0].idempotency_key,
        "the same key"
    );
    let rows = store.outbox_list().unwrap();
    let sent = rows.iter().find(|r| r.id == second).unwrap();
    assert_eq!(
        (sent.status.as_str(), sent.attempts, sent.reason.as_deref()),
        ("sent", 1, Some("HTTP 201 Created"))
    );
}
