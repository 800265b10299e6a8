//! CLI queries: task list/show, analytics, reports, contacts, cursors.

use super::*;

fn survey(store: &mut Store, key: &str, task: i64, reason: &str, when: DateTime<Utc>) {
    let p = plan(
        "survey@example.com",
        Some(task),
        vec![current(ActionKind::Analytics {
            table: "Отказы".into(),
            values: vec![field("Причина", reason), field("Комментарий", "—")],
        })],
    );
    let result = apply_one(store, item(key, p), when);
    assert_eq!(result.status, ResultStatus::Applied, "{:?}", result.error);
}

#[test]
fn task_list_is_newest_first_and_filters_by_status() {
    let mut store = Store::open_in_memory().unwrap();
    let a = new_task(&mut store, "a@x", "a@example.com", at(20, 10));
    let b = new_task(&mut store, "b@x", "b@example.com", at(20, 11));
    let close = plan(
        "b@example.com",
        Some(b),
        vec![current(set_status("Закрыта"))],
    );
    apply_one(&mut store, item("c@x", close), at(20, 12));

    let all = store.task_list(None).unwrap();
    assert_eq!(all.iter().map(|t| t.id).collect::<Vec<_>>(), [b, a]);
    let open = store.task_list(Some("Новая")).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].requester.as_deref(), Some("a@example.com"));
    let json = serde_json::to_value(&open[0]).unwrap();
    for key in ["id", "title", "status", "requester"] {
        assert!(json.get(key).is_some(), "{key} missing in {json}");
    }
}

#[test]
fn task_show_json_has_the_documented_keys() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "a@x", "a@example.com", at(20, 10));
    let auto = plan(
        "a@example.com",
        Some(task),
        vec![current(ActionKind::Comment {
            text: text("Статус изменён"),
            auto: true,
        })],
    );
    apply_one(&mut store, item("auto@x", auto), at(20, 11));
    survey(&mut store, "s@x", task, "Дорого", at(20, 12));
    let json = serde_json::to_value(store.task_show(task).unwrap().unwrap()).unwrap();
    for key in [
        "id",
        "title",
        "description",
        "status",
        "requester",
        "assignee",
        "parent",
        "fields",
        "comments",
        "analytics",
        "created_at",
        "updated_at",
    ] {
        assert!(json.get(key).is_some(), "{key} missing in {json}");
    }
    assert_eq!(json["comments"][0]["auto"], true);
    assert_eq!(json["comments"][0]["at"], "2026-11-20T11:00:00Z");
    assert_eq!(json["comments"][0]["author"], "a@example.com");
    assert!(json["comments"][0]["attachments"].is_array());
    assert_eq!(json["analytics"][0]["table"], "Отказы");
    assert_eq!(json["analytics"][0]["values"]["Причина"], "Дорого");
    assert_eq!(json["updated_at"], "2026-11-20T11:00:00Z");
    assert!(store.task_show(task + 1).unwrap().is_none());
}

#[test]
fn analytics_rows_list_a_table_or_say_it_does_not_exist() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "a@x", "a@example.com", at(20, 10));
    survey(&mut store, "s1@x", task, "Дорого", at(20, 11));
    let rows = store.analytics_rows("Отказы").unwrap().unwrap();
    assert_eq!(rows.len(), 1);
    let json = serde_json::to_value(&rows[0]).unwrap();
    assert_eq!(json["task"], task);
    assert_eq!(json["values"]["Причина"], "Дорого");
    assert_eq!(json["at"], "2026-11-20T11:00:00Z");
    assert!(store.analytics_rows("Нет такой").unwrap().is_none());
    assert_eq!(store.analytics_tables().unwrap(), ["Отказы"]);
}

#[test]
fn a_report_ranks_values_within_each_period() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "a@x", "a@example.com", at(1, 10));
    let october = Utc.with_ymd_and_hms(2026, 10, 30, 9, 0, 0).unwrap();
    survey(&mut store, "o1@x", task, "Сроки", october);
    for (n, reason) in ["Дорого", "Другое", "Дорого", "Сроки", "Дорого", "Другое"]
        .iter()
        .enumerate()
    {
        survey(
            &mut store,
            &format!("n{n}@x"),
            task,
            reason,
            at(2 + n as u32, 10),
        );
    }
    let report = store
        .report("Отказы", "Причина", Some(Period::Month))
        .unwrap();
    let rows: Vec<(Option<&str>, &str, u64)> = report
        .rows
        .iter()
        .map(|r| (r.period.as_deref(), r.value.as_str(), r.count))
        .collect();
    assert_eq!(
        rows,
        [
            (Some("2026-10"), "Сроки", 1),
            (Some("2026-11"), "Дорого", 3),
            (Some("2026-11"), "Другое", 2),
            (Some("2026-11"), "Сроки", 1),
        ]
    );

    let overall = store.report("Отказы", "Причина", None).unwrap();
    assert_eq!(overall.rows[0].value, "Дорого");
    assert_eq!(overall.rows[0].count, 3);
    // Equal counts: by value.
    assert_eq!(
        (overall.rows[1].value.as_str(), overall.rows[1].count),
        ("Другое", 2)
    );
    assert_eq!(
        (overall.rows[2].value.as_str(), overall.rows[2].count),
        ("Сроки", 2)
    );

    let weekly = store
        .report("Отказы", "Причина", Some(Period::Week))
        .unwrap();
    assert_eq!(weekly.rows[0].period.as_deref(), Some("2026-W44"));
    let daily = store
        .report("Отказы", "Причина", Some(Period::Day))
        .unwrap();
    assert_eq!(daily.rows[0].period.as_deref(), Some("2026-10-30"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["rows"][1]["count"], 3);
    assert_eq!(json["period"], "month");
}

#[test]
fn a_report_on_an_unknown_table_or_column_says_so() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "a@x", "a@example.com", at(1, 10));
    survey(&mut store, "s@x", task, "Дорого", at(2, 10));
    let err = store.report("Нет", "Причина", None).unwrap_err();
    assert_eq!(err.to_string(), "no analytics table named \"Нет\"");
    let err = store.report("Отказы", "Оценка", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "analytics table \"Отказы\" has no column \"Оценка\" (columns: Причина, Комментарий)"
    );
    assert_eq!("week".parse::<Period>().unwrap(), Period::Week);
    assert!("year"
        .parse::<Period>()
        .unwrap_err()
        .contains("day, week or month"));
}

#[test]
fn a_contact_with_a_second_address_is_one_requester() {
    let mut store = Store::open_in_memory().unwrap();
    let home = new_task(&mut store, "a@x", "Ivan@Home.example", at(20, 10));
    let work = new_task(&mut store, "b@x", "ivan@work.example", at(20, 11));
    let id = store
        .contact_add_address("ivan@home.example", "IVAN@work.example")
        .unwrap();
    assert_eq!(store.contact_id("ivan@work.example").unwrap(), Some(id));
    assert_eq!(store.contact_id("ivan@home.example").unwrap(), Some(id));
    assert_eq!(count(&store, "contacts"), 1, "the two contacts were merged");
    for task in [home, work] {
        let shown = store.task_show(task).unwrap().unwrap();
        assert_eq!(shown.requester.as_deref(), Some("ivan@home.example"));
    }

    // New mail from the other address maps to the same contact.
    store
        .contact_add_address("ivan@home.example", "ivan@mobile.example")
        .unwrap();
    let third = new_task(&mut store, "c@x", "ivan@mobile.example", at(20, 12));
    let shown = store.task_show(third).unwrap().unwrap();
    assert_eq!(shown.requester.as_deref(), Some("ivan@home.example"));
    assert_eq!(count(&store, "contacts"), 1);

    let err = store.contact_add_address("nobody@x", "a@b").unwrap_err();
    assert!(err.to_string().contains("nobody@x"));
}

#[test]
fn the_cursor_is_written_with_the_batch() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.mailbox_cursor("support").unwrap(), None);
    for last_uid in [10, 20] {
        let cursor = MailboxCursor {
            mailbox: "support".into(),
            uid_validity: 3,
            last_uid,
        };
        store
            .apply_batch(vec![], Some(&cursor), &options(at(20, 10)))
            .unwrap();
        assert_eq!(store.mailbox_cursor("support").unwrap(), Some(cursor));
    }
}
