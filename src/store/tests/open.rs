//! Opening stores: file mode, schema version, migrations run once, clear open errors.

use super::*;

#[test]
fn a_new_store_file_is_private_and_at_the_latest_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailrules.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        migrations::MIGRATIONS.len() as u32
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn reopening_keeps_the_data_and_runs_no_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailrules.db");
    {
        let mut store = Store::open(&path).unwrap();
        new_task(&mut store, "t@x", "c@example.com", at(20, 10));
    }
    let mut raw = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(migrations::migrate(&mut raw).unwrap(), 0);
    drop(raw);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.task_list(None).unwrap().len(), 1);
    assert_eq!(
        store.message_status("t@x").unwrap(),
        Some(MessageStatus::Applied)
    );
}

#[test]
fn an_unopenable_path_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("mailrules.db");
    let err = Store::open(&path).err().unwrap();
    let message = err.to_string();
    assert!(message.starts_with("cannot open store"), "{message}");
    assert!(message.contains("no-such-dir"), "{message}");
}

#[test]
fn a_store_of_schema_2_upgrades_keeping_threads_and_failed_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailrules.db");
    {
        // A store as the previous release left it: a thread link and a failed message.
        let raw = store_of_schema(&path, 2);
        raw.execute_batch(
            "INSERT INTO tasks (title, status, created_at, updated_at) \
               VALUES ('t', 'Новая', 'x', 'x');
             INSERT INTO task_messages (message_id, task_id) VALUES ('a@example.com', 1);
             INSERT INTO messages (key, mailbox, source, subject, status, error, raw, \
               received_at, processed_at) \
               VALUES ('bad@x', 'cli', 'f.eml', 's', 'failed', 'broken', x'41', 'x', 'x');",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        migrations::MIGRATIONS.len() as u32
    );
    assert_eq!(
        store.task_for_message_ids(&["a@example.com"]).unwrap(),
        Some(1)
    );
    let failed = store.failed_messages().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].key, "bad@x");
    // Its bytes, kept as they were before bytes were compressed, still read back for retry.
    assert_eq!(store.failed_raw(&[]).unwrap()[0].1, Some(b"A".to_vec()));
    assert_eq!(
        store.message_raw(failed[0].id).unwrap(),
        Some(b"A".to_vec())
    );
}

#[test]
fn many_connections_opening_a_new_store_at_once_all_succeed() {
    const OPENERS: usize = 8;
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailrules.db");
        let start = std::sync::Barrier::new(OPENERS);
        let opened: Vec<Result<u32, String>> = std::thread::scope(|s| {
            let openers: Vec<_> = (0..OPENERS)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        let store = Store::open(&path).map_err(|e| e.to_string())?;
                        store.schema_version().map_err(|e| e.to_string())
                    })
                })
                .collect();
            openers.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for result in opened {
            assert_eq!(
                result,
                Ok(migrations::latest_version()),
                "round {round}: every opener gets the migrated store"
            );
        }
        // The schema was created once: the store works as any other.
        let mut store = Store::open(&path).unwrap();
        new_task(&mut store, "t@x", "c@example.com", at(20, 10));
        assert_eq!(store.task_list(None).unwrap().len(), 1);
    }
}

#[test]
fn a_store_of_schema_3_upgrades_keeping_replies_counted_and_fields_findable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailrules.db");
    // The previous release's store (schema 3).
    older_store_with_two_orders_and_ten_replies(&path, 3);
    let mut store = Store::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        migrations::latest_version()
    );

    assert_the_old_replies_count(&mut store, "new@x", at(20, 11));

    let by_order = TaskRef::Field {
        field: "Номер заказа".into(),
        value: "777".into(),
    };
    let p = plan(
        "courier@example.com",
        None,
        vec![action(comment("доставлен"), by_order, IfMissing::Fail)],
    );
    let result = apply_one(&mut store, item("d@x", p), at(20, 12));
    assert_eq!(result.task, Some(1), "the task updated last");
}
