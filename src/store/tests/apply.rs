//! Applying plans: rows written, exactly-once, failures, task references, statuses.

use super::*;

#[test]
fn a_plan_creates_exactly_the_rows_it_describes() {
    let mut store = Store::open_in_memory().unwrap();
    let p = plan(
        "Client@Example.com",
        None,
        vec![
            current(ActionKind::CreateTask {
                title: text("Помогите"),
                description: text("Не работает"),
                status: None,
                fields: vec![field("Номер заказа", "12345")],
                assignee: Some(text("manager@acme.example")),
                parent: None,
            }),
            current(comment("Не работает принтер")),
            current(ActionKind::Analytics {
                table: "Обращения".into(),
                values: vec![field("Канал", "почта")],
            }),
            current(reply()),
        ],
    );
    let mut it = item("m1@example.com", p);
    it.record.attachments = vec![crate::message::Attachment {
        name: "скрин.png".into(),
        content_type: "image/png".into(),
        size: 2048,
    }];
    let result = apply_one(&mut store, it, at(20, 10));
    assert_eq!(result.status, ResultStatus::Applied);
    assert_eq!(result.task, Some(1));
    assert_eq!(result.rule.as_deref(), Some("test-rule"));

    let expected = [
        ("tasks", 1),
        ("task_fields", 1),
        ("comments", 1),
        ("contacts", 1),
        ("contact_addresses", 1),
        ("task_messages", 2), // the incoming Message-ID and our reply's
        ("analytics_tables", 1),
        ("analytics_rows", 1),
        ("messages", 1),
        ("mailbox_state", 0),
        ("outbox", 1),
        // created, status, message, field, comment, analytics, reply … in the history
        ("task_events", 8),
    ];
    assert_eq!(counts(&store), expected.to_vec());

    let task = store.task_show(1).unwrap().unwrap();
    assert_eq!(task.title, "Помогите");
    assert_eq!(task.description, "Не работает");
    assert_eq!(task.status, "Новая");
    assert_eq!(task.requester.as_deref(), Some("client@example.com"));
    assert_eq!(task.requester_name.as_deref(), Some("Иван Петров"));
    assert_eq!(task.assignee.as_deref(), Some("manager@acme.example"));
    assert_eq!(
        task.fields.get("Номер заказа").map(String::as_str),
        Some("12345")
    );
    assert_eq!(task.comments.len(), 1);
    assert_eq!(task.comments[0].text, "Не работает принтер");
    assert_eq!(
        task.comments[0].author.as_deref(),
        Some("Client@Example.com")
    );
    assert!(!task.comments[0].auto);
    assert_eq!(task.comments[0].attachments[0].name, "скрин.png");
    assert_eq!(task.comments[0].attachments[0].size, 2048);
    assert_eq!(task.analytics[0].table, "Обращения");
    assert_eq!(task.analytics[0].values["Канал"], "почта");
    assert_eq!(task.created_at, "2026-11-20T10:00:00Z");

    let outbox = store.outbox_list().unwrap();
    assert_eq!(outbox[0].status, "queued");
    assert_eq!(outbox[0].recipient, "client@example.com");
    assert_eq!(outbox[0].subject, "Re: Помогите [#1]");
    assert_eq!(outbox[0].body, "Ваша заявка принята, номер 1");
    assert_eq!(outbox[0].in_reply_to.as_deref(), Some("m1@example.com"));
    assert_eq!(outbox[0].references, vec!["m1@example.com".to_string()]);
    assert!(outbox[0].our_message_id.ends_with(".1@mail.acme.example"));
}

#[test]
fn the_same_batch_twice_gives_duplicates_and_no_new_rows() {
    let mut store = Store::open_in_memory().unwrap();
    let batch = || {
        vec![
            item(
                "a@x",
                plan(
                    "c@example.com",
                    None,
                    vec![create_task("A"), current(reply())],
                ),
            ),
            item("b@x", plan("d@example.com", None, vec![create_task("B")])),
        ]
    };
    let cursor = MailboxCursor {
        mailbox: "support".into(),
        uid_validity: 7,
        last_uid: 42,
    };
    let first = store
        .apply_batch(batch(), Some(&cursor), &options(at(20, 10)))
        .unwrap();
    assert!(first.iter().all(|r| r.status == ResultStatus::Applied));
    let before = counts(&store);

    let second = store
        .apply_batch(batch(), Some(&cursor), &options(at(20, 11)))
        .unwrap();
    assert!(second.iter().all(|r| r.status == ResultStatus::Duplicate));
    // A duplicate still reports what the first run did.
    assert_eq!(second[0].task, first[0].task);
    assert_eq!(second[1].rule.as_deref(), Some("test-rule"));
    assert_eq!(counts(&store), before);
    assert_eq!(store.mailbox_cursor("support").unwrap(), Some(cursor));
}

#[test]
fn a_key_repeated_inside_one_batch_applies_once() {
    let mut store = Store::open_in_memory().unwrap();
    let p = plan("c@example.com", None, vec![create_task("A")]);
    let results = store
        .apply_batch(
            vec![item("same@x", p.clone()), item("same@x", p)],
            None,
            &options(at(20, 10)),
        )
        .unwrap();
    assert_eq!(results[0].status, ResultStatus::Applied);
    assert_eq!(results[1].status, ResultStatus::Duplicate);
    assert_eq!(count(&store, "tasks"), 1);
}

pub(super) fn failing_plan() -> Plan {
    plan(
        "c@example.com",
        None,
        vec![
            create_task("A"),
            current(comment("first")),
            current(reply()),
            action(set_status("Закрыта"), TaskRef::Number(999), IfMissing::Fail),
        ],
    )
}

#[test]
fn a_failing_action_leaves_no_trace_and_records_the_message_as_failed() {
    let mut store = Store::open_in_memory().unwrap();
    let results = store
        .apply_batch(
            vec![
                item("bad@x", failing_plan()),
                item(
                    "good@x",
                    plan("d@example.com", None, vec![create_task("B")]),
                ),
            ],
            None,
            &options(at(20, 10)),
        )
        .unwrap();
    assert_eq!(results[0].status, ResultStatus::Failed);
    let error = results[0].error.as_deref().unwrap();
    assert!(
        error.contains("test-rule") && error.contains("#999"),
        "{error}"
    );
    assert_eq!(results[0].task, None);
    // The batch went on.
    assert_eq!(results[1].status, ResultStatus::Applied);
    assert_eq!(results[1].task, Some(1));

    assert_eq!(count(&store, "tasks"), 1);
    assert_eq!(count(&store, "comments"), 0);
    assert_eq!(count(&store, "outbox"), 0);
    assert_eq!(
        count(&store, "contacts"),
        1,
        "only the good message's sender"
    );
    assert_eq!(
        store.message_status("bad@x").unwrap(),
        Some(MessageStatus::Failed)
    );

    let failed = store.failed_messages().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].key, "bad@x");
    assert_eq!(failed[0].error.as_deref(), Some(error));
    assert_eq!(failed[0].attempts, 1);
    let raw = store.failed_raw(&[]).unwrap();
    assert_eq!(raw[0].1, Some(record("bad@x").raw));
    assert_eq!(store.failed_raw(&[failed[0].id]).unwrap().len(), 1);
    assert!(store.failed_raw(&[failed[0].id + 100]).unwrap().is_empty());
}

#[test]
fn failures_in_the_middle_of_a_batch_undo_only_themselves() {
    // Messages run without savepoints until one fails half-way; the batch is then applied
    // again up to it and goes on with a savepoint per message. Users see the same as with a
    // savepoint per message: every good message's rows once, no trace of the bad ones.
    let mut store = Store::open_in_memory().unwrap();
    let good = |sender: &str, title: &str| {
        plan(
            sender,
            None,
            vec![
                create_task(title),
                current(comment("спасибо")),
                current(reply()),
            ],
        )
    };
    let unplannable = ApplyItem {
        record: record("unplannable@x"),
        plan: Err(NoPlan::Unreadable("no plan".into())),
    };
    let results = store
        .apply_batch(
            vec![
                item("g1@x", good("a@example.com", "A")),
                unplannable,
                item("bad1@x", failing_plan()),
                item("g2@x", good("b@example.com", "B")),
                item("bad2@x", failing_plan()),
                item("g3@x", good("a@example.com", "C")),
            ],
            None,
            &options(at(20, 10)),
        )
        .unwrap();
    let statuses: Vec<_> = results.iter().map(|r| (r.key.as_str(), r.status)).collect();
    assert_eq!(
        statuses,
        [
            ("g1@x", ResultStatus::Applied),
            ("unplannable@x", ResultStatus::Failed),
            ("bad1@x", ResultStatus::Failed),
            ("g2@x", ResultStatus::Applied),
            ("bad2@x", ResultStatus::Failed),
            ("g3@x", ResultStatus::Applied),
        ]
    );
    let tasks: Vec<_> = results.iter().map(|r| r.task).collect();
    assert_eq!(tasks, [Some(1), None, None, Some(2), None, Some(3)]);
    assert_eq!(count(&store, "tasks"), 3);
    assert_eq!(count(&store, "comments"), 3);
    assert_eq!(count(&store, "outbox"), 3);
    assert_eq!(count(&store, "contacts"), 2);
    assert_eq!(count(&store, "messages"), 6);
    assert_eq!(store.failed_messages().unwrap().len(), 3);
    assert_eq!(
        store.message_status("g1@x").unwrap(),
        Some(MessageStatus::Applied)
    );
}

#[test]
fn a_failed_key_applied_again_after_the_cause_is_fixed_becomes_applied() {
    let mut store = Store::open_in_memory().unwrap();
    let failed = apply_one(&mut store, item("k@x", failing_plan()), at(20, 10));
    assert_eq!(failed.status, ResultStatus::Failed);

    // Still failing: stays failed, one more attempt.
    let again = apply_one(&mut store, item("k@x", failing_plan()), at(20, 11));
    assert_eq!(again.status, ResultStatus::Failed);
    assert_eq!(store.failed_messages().unwrap()[0].attempts, 2);

    // The cause fixed (task #999 no longer referenced): applies once.
    let fixed = plan(
        "c@example.com",
        None,
        vec![create_task("A"), current(comment("first"))],
    );
    let applied = apply_one(&mut store, item("k@x", fixed.clone()), at(20, 12));
    assert_eq!(applied.status, ResultStatus::Applied);
    assert_eq!(
        store.message_status("k@x").unwrap(),
        Some(MessageStatus::Applied)
    );
    assert!(store.failed_messages().unwrap().is_empty());
    assert_eq!(count(&store, "messages"), 1);
    let raw_kept: Option<Vec<u8>> = store
        .conn
        .query_row("SELECT raw FROM messages WHERE key = 'k@x'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        raw_kept, None,
        "raw bytes are kept only for failed messages"
    );

    let dup = apply_one(&mut store, item("k@x", fixed), at(20, 13));
    assert_eq!(dup.status, ResultStatus::Duplicate);
    assert_eq!(count(&store, "tasks"), 1);
    assert_eq!(count(&store, "comments"), 1);
}

#[test]
fn a_message_without_a_plan_is_recorded_failed_with_its_reason() {
    let mut store = Store::open_in_memory().unwrap();
    let result = store
        .record_failed(record("broken@x"), "unparseable message: no headers")
        .unwrap();
    assert_eq!(result.status, ResultStatus::Failed);
    let failed = store.failed_raw(&[]).unwrap();
    assert_eq!(
        failed[0].0.error.as_deref(),
        Some("unparseable message: no headers")
    );
    assert_eq!(failed[0].1, Some(record("broken@x").raw));
    assert_eq!(count(&store, "contacts"), 0);
}

#[test]
fn if_missing_create_makes_a_task_and_skip_does_nothing() {
    let mut store = Store::open_in_memory().unwrap();
    let skip = plan(
        "c@example.com",
        None,
        vec![action(comment("lost"), TaskRef::Number(5), IfMissing::Skip)],
    );
    let skipped = apply_one(&mut store, item("s@x", skip), at(20, 10));
    assert_eq!(skipped.status, ResultStatus::Applied);
    assert_eq!(skipped.task, None);
    assert_eq!(count(&store, "tasks"), 0);
    assert_eq!(count(&store, "comments"), 0);

    let by_field = TaskRef::Field {
        field: "Номер заказа".into(),
        value: "777".into(),
    };
    let create = plan(
        "c@example.com",
        None,
        vec![
            action(comment("Заказ создан"), by_field.clone(), IfMissing::Create),
            current(set_status("В работе")),
        ],
    );
    let created = apply_one(&mut store, item("c@x", create), at(20, 11));
    assert_eq!(created.status, ResultStatus::Applied, "{:?}", created.error);
    let task = store.task_show(created.task.unwrap()).unwrap().unwrap();
    assert_eq!(task.title, "Помогите", "titled by the subject");
    assert_eq!(task.requester.as_deref(), Some("c@example.com"));
    assert_eq!(
        task.status, "В работе",
        "later actions act on the created task"
    );
    assert_eq!(
        task.fields["Номер заказа"], "777",
        "findable by the field next time"
    );
    assert_eq!(task.comments[0].text, "Заказ создан");

    let again = plan(
        "c@example.com",
        None,
        vec![action(comment("ещё"), by_field, IfMissing::Create)],
    );
    let found = apply_one(&mut store, item("c2@x", again), at(20, 12));
    assert_eq!(found.task, created.task);
    assert_eq!(count(&store, "tasks"), 1);
}

#[test]
fn current_is_the_thread_task_and_a_missing_one_fails_clearly() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "t@x", "c@example.com", at(20, 10));
    let answer = plan(
        "c@example.com",
        Some(task),
        vec![current(comment("Спасибо"))],
    );
    let result = apply_one(&mut store, item("answer@x", answer), at(20, 11));
    assert_eq!(result.task, Some(task));

    let orphan = plan("c@example.com", None, vec![current(comment("?"))]);
    let result = apply_one(&mut store, item("orphan@x", orphan), at(20, 12));
    assert_eq!(result.status, ResultStatus::Failed);
    assert!(result.error.unwrap().contains("no task for this message"));
}

#[test]
fn a_field_reference_picks_the_most_recently_updated_task() {
    let mut store = Store::open_in_memory().unwrap();
    let older = new_task(&mut store, "o@x", "c@example.com", at(1, 10));
    let newer = new_task(&mut store, "n@x", "c@example.com", at(2, 10));
    for (task, key, when) in [(older, "fo@x", at(3, 10)), (newer, "fn@x", at(4, 10))] {
        let p = plan(
            "c@example.com",
            None,
            vec![action(
                set_field("Номер заказа", "12345"),
                TaskRef::Number(task),
                IfMissing::Fail,
            )],
        );
        apply_one(&mut store, item(key, p), when);
    }
    let by_order = || TaskRef::Field {
        field: "Номер заказа".into(),
        value: "12345".into(),
    };
    let delivered = plan(
        "courier@example.com",
        None,
        vec![action(
            set_status("Завершенная"),
            by_order(),
            IfMissing::Fail,
        )],
    );
    let result = apply_one(&mut store, item("d1@x", delivered), at(5, 10));
    assert_eq!(result.task, Some(newer));

    // A comment makes the older one the most recently updated.
    let touch = plan("c@example.com", Some(older), vec![current(comment("ping"))]);
    apply_one(&mut store, item("touch@x", touch), at(6, 10));
    let next = plan(
        "courier@example.com",
        None,
        vec![action(comment("ещё"), by_order(), IfMissing::Fail)],
    );
    assert_eq!(
        apply_one(&mut store, item("d2@x", next), at(7, 10)).task,
        Some(older)
    );

    let none = plan(
        "courier@example.com",
        None,
        vec![action(
            comment("?"),
            TaskRef::Field {
                field: "Номер заказа".into(),
                value: "0".into(),
            },
            IfMissing::Fail,
        )],
    );
    let failed = apply_one(&mut store, item("d3@x", none), at(7, 11));
    let error = failed.error.unwrap();
    assert!(
        error.contains("Номер заказа") && error.contains("\"0\""),
        "{error}"
    );
}

#[test]
fn a_status_change_is_recorded_in_the_history() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "t@x", "c@example.com", at(20, 10));
    for (key, status, when) in [
        ("s1@x", "Нужно ответить клиенту", at(20, 11)),
        ("s2@x", "Нужно ответить клиенту", at(20, 12)), // no change, no entry
        ("s3@x", "Ожидание ответа клиента", at(20, 13)),
    ] {
        let p = plan(
            "c@example.com",
            Some(task),
            vec![current(set_status(status))],
        );
        apply_one(&mut store, item(key, p), when);
    }
    let history: Vec<(String, String)> = store
        .conn
        .prepare(
            "SELECT to_value, at FROM task_events WHERE task_id = ?1 AND kind = 'status' \
             ORDER BY id",
        )
        .unwrap()
        .query_map([task], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [
        ("Новая", "2026-11-20T10:00:00Z"),
        ("Нужно ответить клиенту", "2026-11-20T11:00:00Z"),
        ("Ожидание ответа клиента", "2026-11-20T13:00:00Z"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(s, a)| (s.to_string(), a.to_string()))
        .collect();
    assert_eq!(history, expected);
    assert_eq!(
        store.task_in_status_since(task).unwrap().as_deref(),
        Some("2026-11-20T13:00:00Z")
    );
    let waiting = |by| {
        store
            .tasks_in_status_since("Ожидание ответа клиента", by)
            .unwrap()
    };
    assert!(
        waiting(at(20, 12)).is_empty(),
        "not in the status that long yet"
    );
    let entries = waiting(at(20, 14));
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].task, entries[0].since.as_str()),
        (task, "2026-11-20T13:00:00Z")
    );
    assert!(store
        .tasks_in_status_since("Нужно ответить клиенту", at(21, 0))
        .unwrap()
        .is_empty());
}

#[test]
fn create_task_renders_the_current_task_else_its_own_number_and_checks_the_parent() {
    let mut store = Store::open_in_memory().unwrap();
    let numbered = |parent: Option<Text>| {
        current(ActionKind::CreateTask {
            title: with_task("Задача #", ""),
            description: text("Оценка: плохо"),
            status: Some(text("Открыта")),
            fields: vec![FieldValue {
                name: "Основание".into(),
                value: with_task("#", ""),
            }],
            assignee: None,
            parent,
        })
    };
    let fresh = plan("c@example.com", None, vec![numbered(None)]);
    let own = apply_one(&mut store, item("own@x", fresh), at(20, 10))
        .task
        .unwrap();
    let shown = store.task_show(own).unwrap().unwrap();
    assert_eq!(shown.title, format!("Задача #{own}"));
    assert_eq!(shown.fields["Основание"], format!("#{own}"));
    assert_eq!(shown.parent, None);

    let sub = plan(
        "c@example.com",
        Some(own),
        vec![numbered(Some(with_task("", "")))],
    );
    let result = apply_one(&mut store, item("sub@x", sub), at(20, 11));
    let child = store.task_show(result.task.unwrap()).unwrap().unwrap();
    assert_ne!(child.id, own);
    assert_eq!(child.parent, Some(own));
    assert_eq!(child.status, "Открыта");
    assert_eq!(
        child.title,
        format!("Задача #{own}"),
        "{{task}} is the parent here"
    );

    let orphan = plan(
        "c@example.com",
        None,
        vec![current(ActionKind::CreateTask {
            title: text("x"),
            description: text(""),
            status: None,
            fields: vec![],
            assignee: None,
            parent: Some(text("77")),
        })],
    );
    let failed = apply_one(&mut store, item("orphan@x", orphan), at(20, 12));
    assert!(failed
        .error
        .unwrap()
        .contains("parent task #77 does not exist"));
}

#[test]
fn a_store_that_cannot_be_written_fails_the_whole_batch_and_commits_nothing() {
    let mut store = Store::open_in_memory().unwrap();
    new_task(&mut store, "t@x", "c@example.com", at(20, 10));
    let before = counts(&store);
    store.conn.pragma_update(None, "query_only", true).unwrap();
    let err = store
        .apply_batch(
            vec![item(
                "n@x",
                plan("c@example.com", None, vec![create_task("B")]),
            )],
            None,
            &options(at(20, 11)),
        )
        .unwrap_err();
    assert!(
        matches!(err.without_path(), StoreError::ReadOnly { .. }),
        "{err}"
    );
    assert!(err.is_environmental());
    assert!(
        err.to_string().starts_with("the store is read-only"),
        "{err}"
    );
    store.conn.pragma_update(None, "query_only", false).unwrap();
    assert_eq!(counts(&store), before);
    assert_eq!(store.message_status("n@x").unwrap(), None);
}

#[test]
fn a_full_disk_fails_the_whole_batch_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    let mut store = Store::open(&path).unwrap();
    new_task(&mut store, "t@x", "c@example.com", at(20, 10));
    let before = counts(&store);
    let pages: i64 = store
        .conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    store
        .conn
        .pragma_update(None, "max_page_count", pages)
        .unwrap();
    let big = "x".repeat(64 * 1024);
    let items: Vec<ApplyItem> = (0..20)
        .map(|n| {
            let p = plan(
                "c@example.com",
                None,
                vec![create_task("B"), current(comment(&big))],
            );
            item(&format!("big{n}@x"), p)
        })
        .collect();
    let err = store
        .apply_batch(items, None, &options(at(20, 11)))
        .unwrap_err();
    assert!(
        matches!(err.without_path(), StoreError::DiskFull { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("disk full while writing"), "{err}");
    assert!(err.to_string().contains("full.db"), "names the file: {err}");
    assert_eq!(counts(&store), before);
}

#[test]
fn a_status_is_stored_in_its_declared_spelling_and_an_undeclared_one_fails_the_message() {
    let mut store = Store::open_in_memory().unwrap();
    let opts = ApplyOptions {
        statuses: vec!["Новая".into(), "Нужно ответить клиенту".into()],
        initial_status: Some("Новая".into()),
        ..options(at(20, 10))
    };
    let p = plan(
        "c@example.com",
        None,
        vec![
            create_task("A"),
            current(set_status("нужно ответить КЛИЕНТУ")),
        ],
    );
    let done = store
        .apply_batch(vec![item("m1@x", p)], None, &opts)
        .unwrap();
    let task = done[0].task.unwrap();
    let shown = store.task_show(task).unwrap().unwrap();
    assert_eq!(shown.status, "Нужно ответить клиенту");

    // A status that came out of a template's variables and is not declared.
    let p = plan(
        "c@example.com",
        Some(task),
        vec![current(set_status("Архив"))],
    );
    let failed = store
        .apply_batch(vec![item("m2@x", p)], None, &opts)
        .unwrap();
    assert_eq!(failed[0].status, ResultStatus::Failed);
    let error = failed[0].error.clone().unwrap();
    assert!(error.contains("unknown status \"Архив\""), "{error}");
    assert!(
        error.contains("\"Новая\", \"Нужно ответить клиенту\""),
        "{error}"
    );
}
