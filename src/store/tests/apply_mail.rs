//! Mail that applying a plan queues: our Message-IDs, the reply subject, the loop guard and
//! the rate limits, notifications.

use super::*;

#[test]
fn our_reply_message_id_threads_the_answer_back() {
    let mut store = Store::open_in_memory().unwrap();
    let p = plan(
        "c@example.com",
        None,
        vec![create_task("A"), current(reply())],
    );
    let mut it = item("first@client", p);
    it.record.references = vec!["older@client".into()];
    let task = apply_one(&mut store, it, at(20, 10)).task.unwrap();
    let ours = store.outbox_list().unwrap()[0].clone();
    assert_eq!(
        ours.references,
        vec!["older@client".to_string(), "first@client".to_string()]
    );

    let bracketed = format!("<{}>", ours.our_message_id);
    assert_eq!(
        store
            .task_for_message_ids(&["unknown@x", &bracketed])
            .unwrap(),
        Some(task)
    );
    assert_eq!(
        store.task_for_message_ids(&["first@client"]).unwrap(),
        Some(task)
    );
    assert_eq!(store.task_for_message_ids(&["unknown@x"]).unwrap(), None);
    assert_eq!(store.task_status(task).unwrap().as_deref(), Some("Новая"));
    assert_eq!(store.task_status(task + 1).unwrap(), None);
}

#[test]
fn replies_are_suppressed_by_the_loop_guard_and_the_rate_limits() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "t@x", "c@example.com", at(20, 10));
    let answer = |store: &mut Store, key: &str, task: i64, when| {
        let p = plan("c@example.com", Some(task), vec![current(reply())]);
        apply_one(store, item(key, p), when);
        store.outbox_list().unwrap()[0].clone() // newest first
    };
    assert_eq!(
        answer(&mut store, "r1@x", task, at(20, 11)).status,
        "queued"
    );
    let second = answer(&mut store, "r2@x", task, at(20, 12));
    assert_eq!(second.status, "suppressed");
    assert!(second.reason.unwrap().contains("task #1 within 1d"));
    // The period over: a reply is allowed again.
    assert_eq!(
        answer(&mut store, "r3@x", task, at(21, 12)).status,
        "queued"
    );

    // At most N replies per recipient per day, whatever the task.
    let mut limited = options(at(22, 10));
    limited.limits.replies_per_recipient_per_day = 2;
    let mut statuses = Vec::new();
    for n in 0..3 {
        let other = new_task(&mut store, &format!("o{n}@x"), "d@example.com", at(22, 10));
        let p = plan("d@example.com", Some(other), vec![current(reply())]);
        store
            .apply_batch(vec![item(&format!("q{n}@x"), p)], None, &limited)
            .unwrap();
        let row = store.outbox_list().unwrap()[0].clone();
        statuses.push((row.status, row.reason));
    }
    assert_eq!(statuses[0].0, "queued");
    assert_eq!(statuses[1].0, "queued");
    assert_eq!(statuses[2].0, "suppressed");
    assert!(statuses[2].1.as_deref().unwrap().contains("last 24h"));

    // RFC 3834 reasons decided by the planner are kept.
    let auto = plan(
        "robot@example.com",
        Some(task),
        vec![current(ActionKind::Reply {
            subject: text("Re"),
            text: text("t"),
            suppressed: Some("the sender is auto-submitted (Auto-Submitted: auto-replied)".into()),
        })],
    );
    apply_one(&mut store, item("auto@x", auto), at(23, 10));
    let row = store.outbox_list().unwrap()[0].clone();
    assert_eq!(row.status, "suppressed");
    assert!(row.reason.unwrap().contains("auto-submitted"));
    assert!(store
        .task_for_message_ids(&[&row.our_message_id])
        .unwrap()
        .is_none());

    // Never to ourselves.
    let ours = plan("Support@acme.example", Some(task), vec![current(reply())]);
    apply_one(&mut store, item("self@x", ours), at(24, 10));
    let row = store.outbox_list().unwrap()[0].clone();
    assert_eq!(row.status, "suppressed");
    assert!(row.reason.unwrap().contains("our own address"));
    assert!(store
        .outbox_due(at(25, 0), 100)
        .unwrap()
        .iter()
        .all(|r| r.status == "queued"));
}

#[test]
fn notify_queues_mail_to_each_recipient_and_refuses_a_non_address() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "t@x", "c@example.com", at(20, 10));
    let notify = |to: &str| {
        plan(
            "c@example.com",
            Some(task),
            vec![current(ActionKind::Notify {
                to: text(to),
                subject: with_task("Клиент ждёт ответа по задаче #", ""),
                text: text("Посмотрите"),
            })],
        )
    };
    let ok = apply_one(
        &mut store,
        item(
            "n1@x",
            notify("Lead <Lead@acme.example>, boss@acme.example"),
        ),
        at(20, 11),
    );
    assert_eq!(ok.status, ResultStatus::Applied);
    let rows = store.outbox_list().unwrap();
    let mut recipients: Vec<&str> = rows.iter().map(|r| r.recipient.as_str()).collect();
    recipients.sort();
    assert_eq!(recipients, ["boss@acme.example", "lead@acme.example"]);
    assert!(rows
        .iter()
        .all(|r| r.kind == "notify" && r.status == "queued"));
    assert_eq!(
        rows[0].subject,
        format!("Клиент ждёт ответа по задаче #{task}")
    );

    let bad = apply_one(&mut store, item("n2@x", notify("nobody")), at(20, 12));
    assert_eq!(bad.status, ResultStatus::Failed);
    assert!(bad
        .error
        .unwrap()
        .contains("\"nobody\" is not an email address"));
}

#[test]
fn a_reply_subject_stays_on_one_line_and_a_sender_without_address_gets_none() {
    let mut store = Store::open_in_memory().unwrap();
    let multi_line = ActionKind::Reply {
        subject: text("Re: строка\r\nBcc: victim@example.com"),
        text: text("t"),
        suppressed: None,
    };
    let p = plan(
        "c@example.com",
        None,
        vec![create_task("A"), current(multi_line)],
    );
    apply_one(&mut store, item("a@x", p), at(20, 10));
    let row = store.outbox_list().unwrap()[0].clone();
    assert!(!row.subject.contains(['\r', '\n']), "{:?}", row.subject);
    assert_eq!(row.status, "queued");

    let p = plan(
        "undisclosed-recipients",
        None,
        vec![create_task("B"), current(reply())],
    );
    apply_one(&mut store, item("b@x", p), at(20, 11));
    let row = store.outbox_list().unwrap()[0].clone();
    assert_eq!(row.status, "suppressed");
    assert!(row.reason.unwrap().contains("no address to reply to"));
}
