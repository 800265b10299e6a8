//! Every message's fate and bytes: ignored mail, re-deliveries, the kept original bytes in
//! both stored forms, the `message list` filters, and dropping bytes past `keep_mail`.

use super::apply::failing_plan;
use super::*;

fn ignore_plan() -> Plan {
    plan("c@example.com", None, vec![current(ActionKind::Ignore)])
}

/// A plan whose only action has no task to act on and is skipped.
fn skipped_plan() -> Plan {
    plan(
        "c@example.com",
        None,
        vec![action(
            comment("late"),
            TaskRef::Number(999),
            IfMissing::Skip,
        )],
    )
}

fn fates(store: &Store, filter: &MessageFilter) -> Vec<(String, String)> {
    store
        .messages(filter)
        .unwrap()
        .into_iter()
        .map(|m| (m.message_id.unwrap_or_default(), m.status))
        .collect()
}

fn id_of(store: &Store, key: &str) -> i64 {
    store
        .messages(&MessageFilter::default())
        .unwrap()
        .into_iter()
        .find(|m| m.message_id.as_deref() == Some(key))
        .unwrap()
        .id
}

#[test]
fn a_large_attachment_is_written_in_place_and_reads_back_exactly() {
    use base64::Engine;
    let mut store = Store::open_in_memory().unwrap();
    // Over a MiB of bytes that do not compress: kept decoded, written with incremental I/O.
    let photo = noise(1_500_000, 7);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&photo);
    let mut big = record("photo@x");
    big.raw = format!(
        "Message-ID: <photo@x>\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nФото.\r\n--b\r\nContent-Type: image/jpeg\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        encoded
            .as_bytes()
            .chunks(76)
            .map(|l| std::str::from_utf8(l).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n")
    )
    .into_bytes();
    let original = big.raw.clone();
    big.compress();
    let items = vec![ApplyItem {
        record: big,
        plan: Ok(plan("c@example.com", None, vec![create_task("A")])),
    }];
    store
        .apply_batch(items, None, &options(at(20, 10)))
        .unwrap();
    let id = id_of(&store, "photo@x");
    assert!(store.message_raw(id).unwrap() == Some(original.clone()));
    match store.message(id).unwrap().unwrap().bytes {
        KeptBytes::Kept { size, stored } => {
            assert_eq!(size, original.len() as u64);
            assert!(stored < photo.len() as u64 + 4096, "kept decoded: {stored}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_message_keeps_its_original_bytes_whatever_its_fate() {
    let mut store = Store::open_in_memory().unwrap();
    let mut big = record("big@x");
    big.raw = format!(
        "Message-ID: <big@x>\r\n\r\n{}",
        "Счёт на оплату. ".repeat(500)
    )
    .into_bytes();
    let original = big.raw.clone();
    // Compressed beforehand, as the preparing threads do.
    big.compress();
    let items = vec![
        ApplyItem {
            record: big,
            plan: Ok(plan("c@example.com", None, vec![create_task("A")])),
        },
        item("ignored@x", ignore_plan()),
        ApplyItem {
            record: record("failed@x"),
            plan: Err(NoPlan::Unreadable("broken".into())),
        },
    ];
    store
        .apply_batch(items, None, &options(at(20, 10)))
        .unwrap();
    let big = id_of(&store, "big@x");
    assert_eq!(store.message_raw(big).unwrap(), Some(original.clone()));
    match store.message(big).unwrap().unwrap().bytes {
        KeptBytes::Kept { size, stored } => {
            assert_eq!(size, original.len() as u64);
            assert!(stored * 5 < size, "compressed: {stored} of {size}");
        }
        other => panic!("{other:?}"),
    }
    for key in ["ignored@x", "failed@x"] {
        let id = id_of(&store, key);
        assert_eq!(
            store.message_raw(id).unwrap(),
            Some(record(key).raw),
            "{key}"
        );
    }
    assert_eq!(store.message_raw(999).unwrap(), None);
    assert_eq!(store.message(999).unwrap(), None);
}

#[test]
fn mail_with_no_effect_is_recorded_as_ignored_and_counts_as_processed() {
    let mut store = Store::open_in_memory().unwrap();
    let now = at(20, 10);
    assert_eq!(
        apply_one(&mut store, item("ign@x", ignore_plan()), now).status,
        ResultStatus::Applied
    );
    apply_one(&mut store, item("skip@x", skipped_plan()), now);
    new_task(&mut store, "task@x", "c@example.com", now);
    assert_eq!(
        store.message_status("ign@x").unwrap(),
        Some(MessageStatus::Ignored)
    );
    let ignored = MessageFilter {
        fate: Some(MessageFate::Ignored),
        ..MessageFilter::default()
    };
    assert_eq!(
        fates(&store, &ignored),
        [
            ("skip@x".to_string(), "ignored".to_string()),
            ("ign@x".to_string(), "ignored".to_string())
        ]
    );
    // Delivered again: a duplicate, counted, nothing else changes.
    let again = apply_one(&mut store, item("ign@x", ignore_plan()), at(21, 10));
    assert_eq!(again.status, ResultStatus::Duplicate);
    assert_eq!(count(&store, "messages"), 3);
}

#[test]
fn re_deliveries_are_counted_on_the_message_even_when_the_batch_is_applied_again() {
    let mut store = Store::open_in_memory().unwrap();
    new_task(&mut store, "first@x", "c@example.com", at(20, 10));
    // The re-delivery comes before a message that fails half-way: the batch is rolled back
    // and applied again from its log, and the count must survive that.
    let items = vec![
        item(
            "first@x",
            plan("c@example.com", None, vec![create_task("A")]),
        ),
        item("bad@x", failing_plan()),
        item(
            "first@x",
            plan("c@example.com", None, vec![create_task("A")]),
        ),
    ];
    let results = store
        .apply_batch(items, None, &options(at(21, 10)))
        .unwrap();
    assert_eq!(results[0].status, ResultStatus::Duplicate);
    assert_eq!(results[2].status, ResultStatus::Duplicate);
    let id = id_of(&store, "first@x");
    let detail = store.message(id).unwrap().unwrap();
    assert_eq!(detail.summary.duplicates, 2);
    assert_eq!(detail.summary.status, "applied");
    assert_eq!(
        detail.last_duplicate_at.as_deref(),
        Some("2026-11-21T10:00:00Z")
    );
    let duplicates = MessageFilter {
        fate: Some(MessageFate::Duplicate),
        ..MessageFilter::default()
    };
    assert_eq!(
        fates(&store, &duplicates),
        [("first@x".to_string(), "applied".to_string())]
    );
}

#[test]
fn messages_are_listed_newest_first_by_task_and_limited() {
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, "a@x", "c@example.com", at(20, 10));
    new_task(&mut store, "b@x", "d@example.com", at(20, 11));
    let reply = plan("c@example.com", Some(task), vec![current(comment("ещё"))]);
    apply_one(&mut store, item("c@x", reply), at(20, 12));
    let all = fates(&store, &MessageFilter::default());
    let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["c@x", "b@x", "a@x"]);
    let of_task = MessageFilter {
        task: Some(task),
        ..MessageFilter::default()
    };
    let keys: Vec<String> = fates(&store, &of_task)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["c@x", "a@x"]);
    let limited = MessageFilter {
        limit: Some(1),
        ..MessageFilter::default()
    };
    assert_eq!(fates(&store, &limited).len(), 1);
    let failed = MessageFilter {
        fate: Some(MessageFate::Failed),
        ..MessageFilter::default()
    };
    assert!(fates(&store, &failed).is_empty());
}

#[test]
fn keep_mail_drops_the_old_bytes_and_keeps_the_records() {
    let mut store = Store::open_in_memory().unwrap();
    new_task(&mut store, "old@x", "c@example.com", at(1, 10));
    store.record_failed(record("oldfail@x"), "broken").unwrap();
    new_task(&mut store, "new@x", "c@example.com", at(20, 10));
    let (old, new) = (id_of(&store, "old@x"), id_of(&store, "new@x"));
    // record_failed ran on the real clock: moved back to the 1st for this test.
    store
        .conn
        .execute(
            "UPDATE messages SET received_at = '2026-11-01T10:00:00Z' WHERE id = ?1",
            [id_of(&store, "oldfail@x")],
        )
        .unwrap();
    let dropped = store
        .drop_mail_received_before(at(10, 0), at(25, 0))
        .unwrap();
    assert_eq!(dropped, 2);
    assert_eq!(store.message_raw(old).unwrap(), None);
    assert_eq!(
        store.message(old).unwrap().unwrap().bytes,
        KeptBytes::Dropped {
            at: "2026-11-25T00:00:00Z".into()
        }
    );
    assert_eq!(
        store.message(old).unwrap().unwrap().summary.status,
        "applied"
    );
    assert_eq!(store.message_raw(new).unwrap(), Some(record("new@x").raw));
    // The failed one stays listed; retry is told its bytes are gone.
    let failed = store.failed_raw(&[]).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1, None);
    // Nothing left to drop the second time; still a duplicate when delivered again.
    assert_eq!(
        store
            .drop_mail_received_before(at(10, 0), at(26, 0))
            .unwrap(),
        0
    );
    let again = apply_one(&mut store, item("old@x", ignore_plan()), at(27, 0));
    assert_eq!(again.status, ResultStatus::Duplicate);
}
