//! Tests of the store, with plans built by hand from `crate::plan` types.

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::context::{SenderKind, ThreadMatch};
use crate::message::Address;
use crate::plan::{ActionKind, FieldValue, IfMissing, Piece, Plan, PlannedAction, TaskRef, Text};

mod apply;
mod apply_mail;
mod field_times;
mod history;
mod kept_dictionary;
mod last_mail;
mod messages;
mod open;
mod outbox;
mod queries;
mod status_record;
mod triggers;
mod users;
mod webhooks;

/// A store file at `path` with only the first `version` migrations run, as an older release
/// left it; the connection to fill it with that release's rows.
pub(in crate::store) fn store_of_schema(path: &Path, version: usize) -> rusqlite::Connection {
    let raw = rusqlite::Connection::open(path).unwrap();
    for sql in &migrations::MIGRATIONS[..version] {
        raw.execute_batch(sql).unwrap();
    }
    raw.pragma_update(None, "user_version", version as i64)
        .unwrap();
    raw
}

/// A store of the given older schema as a previous release left it: two tasks with order 777
/// (the older one updated last) and ten automatic replies sent to one address on 2026-11-20,
/// for tests that an upgrade keeps fields findable and replies counted.
pub(in crate::store) fn older_store_with_two_orders_and_ten_replies(path: &Path, version: usize) {
    let raw = store_of_schema(path, version);
    raw.execute_batch(
        "INSERT INTO tasks (title, status, created_at, updated_at) VALUES
           ('old', 'Новая', '2026-11-01T10:00:00Z', '2026-11-05T10:00:00Z'),
           ('new', 'Новая', '2026-11-02T10:00:00Z', '2026-11-02T10:00:00Z');
         INSERT INTO task_fields (task_id, name, value, updated_at) VALUES
           (1, 'Номер заказа', '777', '2026-11-01T10:00:00Z'),
           (2, 'Номер заказа', '777', '2026-11-02T10:00:00Z');",
    )
    .unwrap();
    for n in 0..10 {
        raw.execute(
            "INSERT INTO outbox (kind, task_id, recipient, subject, body, our_message_id, \
             status, created_at) VALUES ('reply', 1, 'c@example.com', 's', 'b', ?1, 'sent', \
             '2026-11-20T10:00:00Z')",
            [format!("r{n}@mail.acme.example")],
        )
        .unwrap();
    }
}

/// The ten replies `older_store_with_two_orders_and_ten_replies` left count against the daily
/// limit: a new task's reply to the same address is suppressed.
pub(in crate::store) fn assert_the_old_replies_count(
    store: &mut Store,
    key: &str,
    now: DateTime<Utc>,
) {
    let p = plan(
        "c@example.com",
        None,
        vec![create_task("A"), current(reply())],
    );
    apply_one(store, item(key, p), now);
    let row = store.outbox_list().unwrap()[0].clone();
    assert_eq!(row.status, "suppressed");
    assert!(
        row.reason.as_deref().unwrap().contains("already got 10"),
        "{:?}",
        row.reason
    );
}

/// Deterministic bytes that do not compress (xorshift).
pub(in crate::store) fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
}

fn options(now: DateTime<Utc>) -> ApplyOptions {
    ApplyOptions {
        outgoing_domain: "mail.acme.example".into(),
        reply_from: vec!["support@acme.example".into()],
        limits: crate::config::Limits::default(),
        now: Some(now),
        triggers: None,
        initial_status: None,
        statuses: Vec::new(),
    }
}

fn text(s: &str) -> Text {
    Text::literal(s)
}

/// `before{task}after`
fn with_task(before: &str, after: &str) -> Text {
    Text(vec![
        Piece::Literal(before.into()),
        Piece::Task,
        Piece::Literal(after.into()),
    ])
}

fn action(kind: ActionKind, task: TaskRef, if_missing: IfMissing) -> PlannedAction {
    PlannedAction {
        rule: "test-rule".into(),
        kind,
        task,
        if_missing,
    }
}

fn current(kind: ActionKind) -> PlannedAction {
    action(kind, TaskRef::Current, IfMissing::Fail)
}

fn create_task(title: &str) -> PlannedAction {
    current(ActionKind::CreateTask {
        title: text(title),
        description: text("body"),
        status: None,
        fields: vec![],
        assignee: None,
        parent: None,
    })
}

fn comment(s: &str) -> ActionKind {
    ActionKind::Comment {
        text: text(s),
        auto: false,
    }
}

fn set_status(status: &str) -> ActionKind {
    ActionKind::Set {
        status: Some(text(status)),
        fields: vec![],
    }
}

fn set_field(name: &str, value: &str) -> ActionKind {
    ActionKind::Set {
        status: None,
        fields: vec![field(name, value)],
    }
}

fn field(name: &str, value: &str) -> FieldValue {
    FieldValue {
        name: name.into(),
        value: text(value),
    }
}

fn reply() -> ActionKind {
    ActionKind::Reply {
        subject: text("Re: Помогите"),
        text: with_task("Ваша заявка принята, номер ", ""),
        suppressed: None,
    }
}

fn plan(sender: &str, thread_task: Option<i64>, actions: Vec<PlannedAction>) -> Plan {
    Plan {
        rule: Some("test-rule".into()),
        sender: Address::new(Some("Иван Петров"), sender),
        sender_kind: SenderKind::Contact,
        thread: ThreadMatch {
            task: thread_task,
            via: None,
        },
        actions,
    }
}

fn record(key: &str) -> MessageRecord {
    MessageRecord {
        key: key.into(),
        message_id: Some(key.into()),
        mailbox: "support".into(),
        source: format!("test {key}"),
        subject: "Помогите".into(),
        from: Some("client@example.com".into()),
        from_name: Some("Иван Петров".into()),
        date: None,
        attachments: vec![],
        references: vec![],
        raw: format!("Message-ID: <{key}>\r\n\r\nbody").into_bytes(),
        compressed: None,
        keep_only_if_failed: false,
    }
}

fn item(key: &str, plan: Plan) -> ApplyItem {
    ApplyItem {
        record: record(key),
        plan: Ok(plan),
    }
}

/// Applies one message at `now` and returns its result.
fn apply_one(store: &mut Store, item: ApplyItem, now: DateTime<Utc>) -> ApplyResult {
    let mut results = store.apply_batch(vec![item], None, &options(now)).unwrap();
    assert_eq!(results.len(), 1);
    results.pop().unwrap()
}

/// A new task from `sender` with one comment; returns the task number.
fn new_task(store: &mut Store, key: &str, sender: &str, now: DateTime<Utc>) -> i64 {
    let p = plan(sender, None, vec![create_task("Помогите")]);
    let result = apply_one(store, item(key, p), now);
    assert_eq!(result.status, ResultStatus::Applied, "{:?}", result.error);
    result.task.unwrap()
}

const TABLES: &[&str] = &[
    "tasks",
    "task_fields",
    "comments",
    "contacts",
    "contact_addresses",
    "task_messages",
    "analytics_tables",
    "analytics_rows",
    "messages",
    "mailbox_state",
    "outbox",
    "task_events",
];

fn count(store: &Store, table: &str) -> i64 {
    store
        .conn
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn counts(store: &Store) -> Vec<(&'static str, i64)> {
    TABLES.iter().map(|t| (*t, count(store, t))).collect()
}
