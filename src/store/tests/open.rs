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
    assert!(message.starts_with("cannot open store "), "{message}");
    assert!(message.contains("no-such-dir"), "{message}");
}
