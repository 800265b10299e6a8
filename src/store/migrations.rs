//! The store's schema: numbered migrations, applied in order, tracked by `PRAGMA user_version`.
//!
//! Never edit a migration that has shipped: append a new one. The position in [`MIGRATIONS`]
//! (from 1) is the schema version it brings the store to.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Every migration, oldest first.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
CREATE TABLE contacts (
  id INTEGER PRIMARY KEY,
  name TEXT,
  created_at TEXT NOT NULL
);
-- One contact, many addresses; the first address added is the contact's primary one.
CREATE TABLE contact_addresses (
  address TEXT PRIMARY KEY,
  contact_id INTEGER NOT NULL REFERENCES contacts(id),
  added_at TEXT NOT NULL
);
CREATE INDEX contact_addresses_contact ON contact_addresses(contact_id);

CREATE TABLE tasks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  title TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  requester_contact_id INTEGER REFERENCES contacts(id),
  assignee TEXT,
  parent_id INTEGER REFERENCES tasks(id),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX tasks_status ON tasks(status);
CREATE INDEX tasks_requester ON tasks(requester_contact_id);

CREATE TABLE task_fields (
  task_id INTEGER NOT NULL REFERENCES tasks(id),
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (task_id, name)
);
CREATE INDEX task_fields_lookup ON task_fields(name, value);

CREATE TABLE task_status_history (
  id INTEGER PRIMARY KEY,
  task_id INTEGER NOT NULL REFERENCES tasks(id),
  status TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX task_status_history_task ON task_status_history(task_id, at);

CREATE TABLE comments (
  id INTEGER PRIMARY KEY,
  task_id INTEGER NOT NULL REFERENCES tasks(id),
  author TEXT,
  author_name TEXT,
  text TEXT NOT NULL,
  auto INTEGER NOT NULL DEFAULT 0,
  attachments TEXT NOT NULL DEFAULT '[]',
  message_key TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX comments_task ON comments(task_id, id);

-- Message-IDs (without <>) of mail about a task: incoming, and our own outgoing.
CREATE TABLE task_messages (
  message_id TEXT PRIMARY KEY,
  task_id INTEGER NOT NULL REFERENCES tasks(id)
);
CREATE INDEX task_messages_task ON task_messages(task_id);

CREATE TABLE analytics_tables (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  columns TEXT NOT NULL DEFAULT '[]',
  created_at TEXT NOT NULL
);
CREATE TABLE analytics_rows (
  id INTEGER PRIMARY KEY,
  table_id INTEGER NOT NULL REFERENCES analytics_tables(id),
  task_id INTEGER REFERENCES tasks(id),
  "values" TEXT NOT NULL,
  message_key TEXT,
  at TEXT NOT NULL
);
CREATE INDEX analytics_rows_table ON analytics_rows(table_id, id);
CREATE INDEX analytics_rows_task ON analytics_rows(task_id);

CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  message_id TEXT,
  mailbox TEXT NOT NULL,
  source TEXT NOT NULL,
  subject TEXT NOT NULL,
  sender TEXT,
  status TEXT NOT NULL,
  rule TEXT,
  task_id INTEGER,
  error TEXT,
  raw BLOB,
  attempts INTEGER NOT NULL DEFAULT 1,
  received_at TEXT NOT NULL,
  processed_at TEXT NOT NULL
);
CREATE INDEX messages_status ON messages(status);

CREATE TABLE mailbox_state (
  mailbox TEXT PRIMARY KEY,
  uid_validity INTEGER NOT NULL,
  last_uid INTEGER NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  task_id INTEGER REFERENCES tasks(id),
  message_key TEXT,
  rule TEXT,
  recipient TEXT NOT NULL,
  subject TEXT NOT NULL,
  body TEXT NOT NULL,
  in_reply_to TEXT,
  references_ids TEXT,
  our_message_id TEXT NOT NULL UNIQUE,
  status TEXT NOT NULL,
  reason TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TEXT,
  created_at TEXT NOT NULL,
  sent_at TEXT
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox(recipient, created_at);
"#,
    // 2: field history (since when a field has had its value, for schedules) and what the
    // schedules did (each acts once per task per entry into the state it looks for).
    r#"
CREATE TABLE task_field_history (
  id INTEGER PRIMARY KEY,
  task_id INTEGER NOT NULL REFERENCES tasks(id),
  name TEXT NOT NULL,
  value TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX task_field_history_task ON task_field_history(task_id, name, id);
INSERT INTO task_field_history (task_id, name, value, at)
  SELECT task_id, name, value, updated_at FROM task_fields ORDER BY updated_at;

-- One row per schedule, task and entry into the state the schedule looks for.
CREATE TABLE schedule_runs (
  id INTEGER PRIMARY KEY,
  schedule TEXT NOT NULL,
  task_id INTEGER NOT NULL REFERENCES tasks(id),
  entry TEXT NOT NULL,
  status TEXT NOT NULL,
  summary TEXT NOT NULL,
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 1,
  fired_at TEXT NOT NULL,
  UNIQUE (schedule, task_id, entry)
);
CREATE INDEX schedule_runs_schedule ON schedule_runs(schedule, id);

-- When each schedule last looked at the tasks, and what it found.
CREATE TABLE schedule_state (
  schedule TEXT PRIMARY KEY,
  last_run_at TEXT NOT NULL,
  fired INTEGER NOT NULL,
  failed INTEGER NOT NULL
);
"#,
    // 3: only failed messages are looked up by status (`failed`, `retry`): a partial index on
    // them instead of an index that every applied message had to be added to.
    r#"
DROP INDEX messages_status;
CREATE INDEX messages_failed ON messages(id) WHERE status = 'failed';
"#,
    // 4: the reply limits count the earlier replies to a recipient that were or will be sent.
    // Through outbox_recipient that walked every row to the recipient in the window, the
    // suppressed ones too: a robot sender whose thousands of replies were suppressed made every
    // message slower than the last. These indexes hold only the replies that count, so a check
    // reads at most as many entries as its limit, whatever the outbox holds. The WHERE clause
    // must stay word for word the one of the queries in `store::outbox` (SQLite uses a partial
    // index only for a query whose WHERE clause contains the index's).
    r#"
CREATE INDEX outbox_counted_replies ON outbox(recipient, created_at)
  WHERE kind = 'reply' AND status IN ('queued', 'sending', 'sent');
CREATE INDEX outbox_counted_task_replies ON outbox(recipient, task_id, created_at)
  WHERE kind = 'reply' AND status IN ('queued', 'sending', 'sent');
DROP INDEX outbox_recipient;
"#,
    // 5: a task named by a field value (`task = { field = "Номер заказа", is = "{order}" }`)
    // is the most recently updated task with that value. Through task_fields_lookup that read
    // every task holding the value and sorted them by tasks.updated_at: a value many tasks
    // share (a host name on monitoring tasks) made every such message slower than the last.
    // Each field row now carries its task's updated_at, kept by the triggers below whatever
    // statement changes it, so the newest task with a value is the first entry of one index.
    r#"
ALTER TABLE task_fields ADD COLUMN task_updated_at TEXT NOT NULL DEFAULT '';
UPDATE task_fields
  SET task_updated_at = (SELECT t.updated_at FROM tasks t WHERE t.id = task_fields.task_id);
DROP INDEX task_fields_lookup;
CREATE INDEX task_fields_newest ON task_fields(name, value, task_updated_at DESC, task_id DESC);
CREATE TRIGGER task_fields_take_task_updated_at AFTER INSERT ON task_fields BEGIN
  UPDATE task_fields SET task_updated_at = (SELECT updated_at FROM tasks WHERE id = NEW.task_id)
    WHERE task_id = NEW.task_id AND name = NEW.name;
END;
CREATE TRIGGER tasks_updated_at_to_fields AFTER UPDATE OF updated_at ON tasks
  WHEN NEW.updated_at IS NOT OLD.updated_at BEGIN
  UPDATE task_fields SET task_updated_at = NEW.updated_at WHERE task_id = NEW.id;
END;
"#,
    // 6: staff accounts (team.md, "People"). The email is kept lower-case,
    // the form it is looked up in. Passwords and API tokens only as argon2id PHC strings, each
    // with its own salt; one token per account (a new one replaces it).
    r#"
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT,
  role TEXT NOT NULL CHECK (role IN ('viewer', 'agent', 'admin')),
  password_hash TEXT NOT NULL,
  token_hash TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
"#,
    // 7: who did what to a task, oldest first (`task history`). Every change is written here
    // as it is made, with its author: a person's address, or rule:/trigger:/schedule:NAME.
    // A store from before keeps its story: what the other tables remember (creation, status
    // and field history, comments, analytics rows, replies, messages) is copied in, each row
    // credited to the rule of the message that made it where the store says which (the
    // message's key on comments and rows, the message's task and time otherwise), else to
    // "unknown". A person's answer to the customer may carry copies: `outbox.cc`.
    r#"
CREATE TABLE task_events (
  id INTEGER PRIMARY KEY,
  task_id INTEGER NOT NULL REFERENCES tasks(id),
  at TEXT NOT NULL,
  by TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT,
  from_value TEXT,
  to_value TEXT
);
CREATE INDEX task_events_task ON task_events(task_id, id);
ALTER TABLE outbox ADD COLUMN cc TEXT NOT NULL DEFAULT '';

-- The rule of each applied message by task and time: messages has no index on task_id.
CREATE TEMP TABLE rebuilt_rule AS
  SELECT task_id, processed_at AS at, MIN(rule) AS rule FROM messages
  WHERE status = 'applied' AND task_id IS NOT NULL AND rule IS NOT NULL
  GROUP BY task_id, processed_at;
CREATE INDEX temp.rebuilt_rule_at ON rebuilt_rule(task_id, at);
CREATE TEMP TABLE rebuilt (
  task_id INTEGER, at TEXT, ord INTEGER, src INTEGER, by TEXT, kind TEXT,
  name TEXT, from_value TEXT, to_value TEXT
);
INSERT INTO rebuilt
  SELECT t.id, t.created_at, 0, t.id,
    COALESCE('rule:' || (SELECT r.rule FROM rebuilt_rule r WHERE r.task_id = t.id
                         AND r.at = t.created_at), 'unknown'),
    'created', NULL, NULL, t.title
  FROM tasks t;
INSERT INTO rebuilt
  SELECT m.task_id, m.processed_at, 1, m.id, 'rule:' || COALESCE(m.rule, '(unmatched)'),
    'message', NULL, m.sender, m.subject
  FROM messages m WHERE m.status = 'applied' AND m.task_id IS NOT NULL
    AND m.mailbox != 'schedule';
INSERT INTO rebuilt
  SELECT h.task_id, h.at, 2, h.id,
    COALESCE('rule:' || (SELECT r.rule FROM rebuilt_rule r WHERE r.task_id = h.task_id
                         AND r.at = h.at), 'unknown'),
    'status', NULL,
    LAG(h.status) OVER (PARTITION BY h.task_id ORDER BY h.id), h.status
  FROM task_status_history h;
INSERT INTO rebuilt
  SELECT h.task_id, h.at, 4, h.id,
    COALESCE('rule:' || (SELECT r.rule FROM rebuilt_rule r WHERE r.task_id = h.task_id
                         AND r.at = h.at), 'unknown'),
    'field', h.name,
    NULLIF(LAG(h.value) OVER (PARTITION BY h.task_id, h.name ORDER BY h.id), ''),
    NULLIF(h.value, '')
  FROM task_field_history h;
INSERT INTO rebuilt
  SELECT c.task_id, c.created_at, 5, c.id,
    COALESCE('rule:' || (SELECT m.rule FROM messages m WHERE m.key = c.message_key),
             'unknown'),
    'comment', NULL, NULL, c.text
  FROM comments c;
INSERT INTO rebuilt
  SELECT a.task_id, a.at, 6, a.id,
    COALESCE('rule:' || (SELECT m.rule FROM messages m WHERE m.key = a.message_key),
             'unknown'),
    'analytics', t.name, NULL, a."values"
  FROM analytics_rows a JOIN analytics_tables t ON t.id = a.table_id
  WHERE a.task_id IS NOT NULL;
INSERT INTO rebuilt
  SELECT o.task_id, o.created_at, 7, o.id, 'rule:' || COALESCE(o.rule, 'unknown'),
    'reply', NULL, NULL, o.recipient
  FROM outbox o WHERE o.kind = 'reply' AND o.status != 'suppressed' AND o.task_id IS NOT NULL;
INSERT INTO task_events (task_id, at, by, kind, name, from_value, to_value)
  SELECT task_id, at, by, kind, name, from_value, to_value FROM rebuilt
  ORDER BY at, ord, src;
DROP TABLE temp.rebuilt;
DROP TABLE temp.rebuilt_rule;
"#,
    // 8: every message's original bytes, not only a failed one's: compressed (zstd), in a
    // table of their own whose id is the message row's, so that listing and counting messages
    // never reads mail bytes (a row with its mail inline fills several pages). No foreign key
    // and no index: with either, every message's insert cost more than the bytes themselves
    // (a foreign key makes SQLite keep a statement journal); `keep_mail` walks the rows in
    // id order, which is the order of arrival. The bytes kept by failed messages so far move
    // there as they are ("plain"). On the message row: how often it was delivered again after
    // it was processed (a re-delivery changes nothing else), and when `keep_mail` dropped its
    // bytes.
    r#"
CREATE TABLE message_bytes (
  id INTEGER PRIMARY KEY,
  encoding TEXT NOT NULL,
  size INTEGER NOT NULL,
  bytes BLOB NOT NULL
);
INSERT INTO message_bytes (id, encoding, size, bytes)
  SELECT id, 'plain', length(raw), raw FROM messages
  WHERE raw IS NOT NULL AND length(raw) > 0;
UPDATE messages SET raw = NULL WHERE raw IS NOT NULL;
ALTER TABLE messages ADD COLUMN duplicates INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN last_duplicate_at TEXT;
ALTER TABLE messages ADD COLUMN bytes_dropped_at TEXT;
"#,
    // 9: the web's logins (team.md, "The web"). A session is found by the SHA-256 of its id:
    // the id itself (the cookie) is never stored. Times are Unix seconds, compared as numbers.
    // Failed logins are counted per account (lower-case email, whether or not it exists) to
    // slow guessing down; a successful login clears the count. A task's page lists its
    // messages and its outgoing mail: both are found by task.
    r#"
CREATE INDEX messages_task ON messages(task_id) WHERE task_id IS NOT NULL;
CREATE INDEX outbox_task ON outbox(task_id) WHERE task_id IS NOT NULL;
CREATE TABLE web_sessions (
  id_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  csrf TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);
CREATE TABLE web_login_failures (
  email TEXT PRIMARY KEY,
  failures INTEGER NOT NULL,
  last_failure_at INTEGER NOT NULL
);
"#,
    // 10: webhook deliveries are outbox rows of kind 'webhook' (recipient: the endpoint's
    // name, body: the JSON sent, attempts / next_attempt_at / reason: tries, next try, last
    // answer, exactly as for mail). The Idempotency-Key every try of one delivery carries is
    // fixed when the row is queued; the endpoint's URL, headers and secret stay in the
    // configuration and are read at send time, so no secret is ever stored. The mail sender
    // and the webhook sender each look only at their own kind among the due rows.
    r#"
ALTER TABLE outbox ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX outbox_idempotency_key ON outbox(idempotency_key)
  WHERE idempotency_key IS NOT NULL;
"#,
    // 11: each task's last mail, kept by the
    // store as it records the task's history (`history::record`, since `last_mail_by_us`): when, and whether it was our
    // reply (1: a person's reply, waiting for the customer) or the customer's mail (0: the mail
    // that created the task or a later incoming message, waiting for us). An automatic reply
    // (by rule:, trigger: or schedule:) does not count. Tasks of an older store get theirs
    // from their history. The web's views answer from the indexes instead of reading every
    // task's history: "waiting for the customer" walks `tasks_last_mail_ours` newest first,
    // "overdue" the old end of `tasks_last_mail_at`.
    r#"
ALTER TABLE tasks ADD COLUMN last_mail_at TEXT;
ALTER TABLE tasks ADD COLUMN last_mail_ours INTEGER;
UPDATE tasks SET (last_mail_at, last_mail_ours) = (
  SELECT e.at, e.kind = 'reply' FROM task_events e WHERE e.task_id = tasks.id
    AND (e.kind IN ('created', 'message') OR (e.kind = 'reply' AND e.by NOT LIKE '%:%'))
  ORDER BY e.id DESC LIMIT 1);
CREATE INDEX tasks_last_mail_ours ON tasks(last_mail_ours);
CREATE INDEX tasks_last_mail_at ON tasks(last_mail_ours, last_mail_at);
"#,
    // 12: zstd dictionaries trained on the store's own mail (`kept_dictionary.rs`), and on
    // each kept message's row the dictionary its bytes were compressed with (NULL: none, as
    // every row before). A dictionary is never changed or deleted once stored (rows name it by
    // id; `keep_mail` drops only rows of `message_bytes`); its SHA-256 finds it again when the
    // same one is written by another process and shows when its bytes were damaged. No
    // foreign key, as for `message_bytes` itself (migration 8).
    r#"
CREATE TABLE mail_dictionaries (
  id INTEGER PRIMARY KEY,
  digest TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  bytes BLOB NOT NULL
);
ALTER TABLE message_bytes ADD COLUMN dictionary INTEGER;
"#,
    // 13: a status change is recorded once, as a `status` row of `task_events` (`to_value`: the
    // status), which every change has written since migration 7 (and which that migration rebuilt from
    // `task_status_history`). `task_status_history` held a second copy of the same changes,
    // written by every task insert and status change; it goes. Schedules and `task list`'s
    // "since when in its status" read a task's last status event through the partial index
    // `task_events_status`. Schedule firings are told apart by the status entry they acted on
    // (`schedule_runs.entry`, `status#ID;…`): the ids of the old table's rows become those of
    // the matching events (a task's changes paired newest first in both tables), so that a
    // schedule that fired before the upgrade does not fire again for the same entry. A task
    // with status history but, against every writer, no status event gets one from its last
    // status change, so that schedules still see it; an old row left without a match (none
    // is expected) keeps its firings as `status#hID`, which no later entry can be.
    r#"
CREATE INDEX task_events_status ON task_events(task_id, id) WHERE kind = 'status';
INSERT INTO task_events (task_id, at, by, kind, name, from_value, to_value)
  SELECT h.task_id, h.at, 'unknown', 'status', NULL, NULL, h.status
  FROM task_status_history h
  WHERE h.id = (SELECT MAX(id) FROM task_status_history WHERE task_id = h.task_id)
    AND NOT EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = h.task_id
                    AND e.kind = 'status');
CREATE TEMP TABLE status_ids AS
  SELECT h.id AS old_id, e.id AS new_id
  FROM (SELECT id, task_id,
          ROW_NUMBER() OVER (PARTITION BY task_id ORDER BY id DESC) AS nth
        FROM task_status_history) h
  JOIN (SELECT id, task_id,
          ROW_NUMBER() OVER (PARTITION BY task_id ORDER BY id DESC) AS nth
        FROM task_events WHERE kind = 'status') e
    ON e.task_id = h.task_id AND e.nth = h.nth;
CREATE UNIQUE INDEX temp.status_ids_old ON status_ids(old_id);
CREATE TEMP TABLE entry_ids AS
  SELECT id, CAST(substr(entry, 8, instr(entry || ';', ';') - 8) AS INTEGER) AS old_id,
    substr(entry, instr(entry || ';', ';')) AS rest
  FROM schedule_runs WHERE entry LIKE 'status#%';
-- In two steps (`status~` first): a new id may equal another entry's old one.
UPDATE schedule_runs SET entry = (
    SELECT COALESCE('status~' || s.new_id, 'status#h' || x.old_id) || x.rest
    FROM temp.entry_ids x LEFT JOIN temp.status_ids s ON s.old_id = x.old_id
    WHERE x.id = schedule_runs.id)
  WHERE id IN (SELECT id FROM temp.entry_ids);
UPDATE schedule_runs SET entry = 'status#' || substr(entry, 8) WHERE entry LIKE 'status~%';
DROP TABLE temp.entry_ids;
DROP TABLE temp.status_ids;
DROP TABLE task_status_history;
"#,
    // 14 (after 13 above): a new field row written with its task's updated_at
    // (`tasks::write_field`) is not rewritten by the trigger of migration 5, which fills in
    // only a row written without it.
    r#"
DROP TRIGGER task_fields_take_task_updated_at;
CREATE TRIGGER task_fields_take_task_updated_at AFTER INSERT ON task_fields
  WHEN NEW.task_updated_at = '' BEGIN
  UPDATE task_fields SET task_updated_at = (SELECT updated_at FROM tasks WHERE id = NEW.task_id)
    WHERE task_id = NEW.task_id AND name = NEW.name;
END;
"#,
    // 15: the reply limits' partial indexes (migration 4) name the statuses that count as
    // comparisons joined by OR instead of `status IN (...)`: SQLite evaluates a partial index's
    // WHERE clause for every row written to the table, and an IN list of three or more values
    // is built into an ephemeral table each time (two per queued reply, about 4 % of the
    // applying thread's instructions; BENCHMARKS.md, "Session 8"). Same rows, same queries
    // (`store::outbox`, whose WHERE clauses follow these word for word).
    // And the triggers of migrations 5 and 14, which copied a task's `updated_at` onto its
    // field rows, are gone: `store::tasks` writes the copy with every change of `updated_at`
    // (`fields_follow_task`) and with every new field row. A statement that fires a trigger
    // makes SQLite keep a statement journal, a copy of each page it touches, on every
    // `UPDATE tasks` that marks a task changed (about 5 % of the applying thread).
    r#"
DROP INDEX outbox_counted_replies;
DROP INDEX outbox_counted_task_replies;
CREATE INDEX outbox_counted_replies ON outbox(recipient, created_at)
  WHERE kind = 'reply' AND (status = 'queued' OR status = 'sending' OR status = 'sent');
CREATE INDEX outbox_counted_task_replies ON outbox(recipient, task_id, created_at)
  WHERE kind = 'reply' AND (status = 'queued' OR status = 'sending' OR status = 'sent');
DROP TRIGGER task_fields_take_task_updated_at;
DROP TRIGGER tasks_updated_at_to_fields;
UPDATE task_fields
  SET task_updated_at = (SELECT t.updated_at FROM tasks t WHERE t.id = task_fields.task_id)
  WHERE task_updated_at = '';
"#,
];

/// The schema version this program writes.
pub fn latest_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Brings the store up to [`latest_version`]; returns how many migrations ran here. Each
/// migration runs in its own transaction together with the version bump, so a crash leaves the
/// store at a known version.
///
/// Any number of processes may open a store at once (systemd starting the daemon while someone
/// runs `mailrules task list` on a new store): each migration runs under the write lock
/// (`BEGIN IMMEDIATE`, which waits out the busy timeout while another process holds it) and
/// reads the version again inside it, so whoever comes second finds the migration done and
/// runs nothing. A store that is up to date is recognised without taking the write lock, so
/// opening one never waits for a daemon's batch.
pub fn migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    let latest = latest_version();
    let mut ran = 0;
    while !up_to_date(version(conn)?, latest)? {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = version(&tx)?;
        if up_to_date(current, latest)? {
            // Another process migrated while this one waited for the lock.
            break;
        }
        tx.execute_batch(MIGRATIONS[current as usize])?;
        tx.pragma_update(None, "user_version", current + 1)?;
        tx.commit()?;
        ran += 1;
    }
    Ok(ran)
}

/// Whether a store at schema `current` needs no migration; a store written by a newer program
/// is an error (its tables may mean something this one does not know).
fn up_to_date(current: u32, latest: u32) -> Result<bool, StoreError> {
    if current > latest {
        return Err(StoreError::TooNew {
            found: current,
            supported: latest,
        });
    }
    Ok(current == latest)
}

/// The schema version recorded in the store file.
pub fn version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_runs_nothing_the_second_time() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len());
        assert_eq!(version(&conn).unwrap(), latest_version());
        assert_eq!(migrate(&mut conn).unwrap(), 0);
    }

    #[test]
    fn a_store_from_a_newer_program_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
