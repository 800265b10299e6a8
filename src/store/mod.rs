//! The SQLite store: tasks, contacts, comments, analytics, processed messages and the outbox.
//!
//! The only module that runs SQL. Everything a message does is written by
//! a [`Batch`] (one transaction); the CLI and the workers read and update through
//! the small query functions in the submodules.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{config::DbConfig, Connection, ErrorCode, OptionalExtension};

use crate::message::Attachment;
use crate::outgoing::bare_message_id;
use crate::plan::{NoPlan, Plan};

mod actions;
mod analytics;
mod batch;
mod checkpoints;
mod contacts;
mod history;
mod kept_dictionary;
mod kept_layout;
mod kept_mail;
mod manual;
mod messages;
mod migrations;
mod outbox;
mod schedules;
mod sessions;
mod task_query;
mod tasks;
mod triggers;
mod users;
mod webhooks;

pub use analytics::{AnalyticsRow, Period, Report, ReportRow};
pub use batch::{Admission, Admitted, Batch};
pub use history::{Author, HistoryEntry};
pub use kept_dictionary::{MailDictionary, TrainedDictionary, TRAIN_AFTER};
pub use kept_mail::Compressed;
pub use manual::{Answer, Change, ChangeError};
pub use messages::{
    FailedMessage, KeptBytes, MessageDetail, MessageFate, MessageFilter, MessageSummary,
};
pub use outbox::{OutboxRow, ANSWER as ANSWER_KIND};
pub use schedules::{
    Entered, FiringOutcome, FiringRequest, ScheduleCandidate, ScheduleRun, ScheduleStatus,
};
pub use sessions::{LoginFailures, WebSession};
pub use task_query::{TaskFilter, Waiting};
pub use tasks::{
    AttachmentView, CommentView, StatusEntry, TaskAnalyticsRow, TaskState, TaskSummary, TaskView,
};
pub use triggers::{EventKind, TaskEvent, Triggers, MAX_TRIGGER_DEPTH};
pub use users::User;
pub use webhooks::{WebhookDelivery, WEBHOOK as WEBHOOK_KIND};

/// Everything that can go wrong in the store, worded for the operator. The errors about the
/// store file as a whole (it cannot be opened, written, locked, ...) are named with its path
/// once, by [`StoreError::InStore`], where they leave the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// One of the errors below, in the store file `path`.
    #[error("{source} (store {})", path.display())]
    InStore {
        path: PathBuf,
        source: Box<StoreError>,
    },
    #[error("cannot open store: {detail}")]
    Open { detail: String },
    #[error("the store is read-only: {detail}")]
    ReadOnly { detail: String },
    #[error("disk full while writing the store: {detail}")]
    DiskFull { detail: String },
    /// A write or sync failed (EFBIG past the file size limit, EIO, ...); the store itself is
    /// fine, the transaction was rolled back.
    #[error("cannot write to the store (is its disk full, read-only or failing?): {detail}")]
    WriteFailed { detail: String },
    #[error("the store is locked by another process (waited 5s): {detail}")]
    Busy { detail: String },
    #[error("the store is damaged or cannot be read: {detail}")]
    Unavailable { detail: String },
    #[error("the store was written by a newer mailrules (schema version {found}, this program knows up to {supported}); upgrade mailrules")]
    TooNew { found: u32, supported: u32 },
    #[error("no analytics table named {}", crate::text::quoted(.0))]
    UnknownTable(String),
    #[error(
        "analytics table {} has no column {} (columns: {known})",
        crate::text::quoted(table),
        crate::text::quoted(column)
    )]
    UnknownColumn {
        table: String,
        column: String,
        known: String,
    },
    #[error("no contact with address {}", crate::text::quoted(.0))]
    UnknownContact(String),
    #[error("no user \"{0}\"; `mailrules user list` shows the users")]
    UnknownUser(String),
    #[error("a user \"{0}\" already exists; `mailrules user passwd {0}` changes the password")]
    UserExists(String),
    #[error(transparent)]
    People(#[from] crate::people::PeopleError),
    #[error("the store holds unreadable data: {0}")]
    BadData(String),
    #[error("store error: {0}")]
    Sqlite(#[source] rusqlite::Error),
}

/// The extended I/O error codes of a failed write or sync (not of a read, which may mean
/// a damaged file): SQLITE_IOERR_WRITE, _FSYNC, _DIR_FSYNC, _TRUNCATE.
const WRITE_ERRORS: [std::os::raw::c_int; 4] = [
    rusqlite::ffi::SQLITE_IOERR_WRITE,
    rusqlite::ffi::SQLITE_IOERR_FSYNC,
    rusqlite::ffi::SQLITE_IOERR_DIR_FSYNC,
    rusqlite::ffi::SQLITE_IOERR_TRUNCATE,
];

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let detail = e.to_string();
        let (code, extended) = match &e {
            rusqlite::Error::SqliteFailure(f, _) => (Some(f.code), f.extended_code),
            _ => (None, 0),
        };
        match code {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { detail },
            Some(ErrorCode::SystemIoFailure) if WRITE_ERRORS.contains(&extended) => {
                StoreError::WriteFailed { detail }
            }
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { detail },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Busy { detail }
            }
            Some(
                ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase
                | ErrorCode::OutOfMemory
                | ErrorCode::PermissionDenied
                | ErrorCode::FileLockingProtocolFailed,
            ) => StoreError::Unavailable { detail },
            _ => StoreError::Sqlite(e),
        }
    }
}

impl StoreError {
    /// Names the store file, once, for the errors about the file as a whole.
    fn at(self, store: &Path) -> StoreError {
        if self.is_environmental() && !matches!(self, StoreError::InStore { .. }) {
            StoreError::InStore {
                path: store.to_path_buf(),
                source: Box::new(self),
            }
        } else {
            self
        }
    }

    /// The error itself, without the store file it happened in.
    pub fn without_path(&self) -> &StoreError {
        match self {
            StoreError::InStore { source, .. } => source.without_path(),
            other => other,
        }
    }

    /// Whether the store as a whole cannot be written right now (disk, permissions, locks):
    /// the caller should acknowledge nothing and try again later.
    pub fn is_environmental(&self) -> bool {
        matches!(
            self.without_path(),
            StoreError::ReadOnly { .. }
                | StoreError::DiskFull { .. }
                | StoreError::WriteFailed { .. }
                | StoreError::Busy { .. }
                | StoreError::Unavailable { .. }
                | StoreError::Open { .. }
        )
    }
}

/// The store: one SQLite connection. Not shared between threads; open one per worker.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// One message to apply: its record and its plan (or why there is none).
#[derive(Debug, Clone)]
pub struct ApplyItem {
    pub record: MessageRecord,
    /// The plan, or why there is none (unparseable message, extraction failure, ...): the
    /// message is then recorded as failed with that error and its raw bytes.
    pub plan: Result<Plan, NoPlan>,
}

/// What is kept about a processed message.
#[derive(Debug, Clone, Default)]
pub struct MessageRecord {
    /// Message-ID, or `sha256:<hex>` of the raw bytes: the exactly-once key.
    pub key: String,
    pub message_id: Option<String>,
    /// The configured mailbox name, or `"cli"`.
    pub mailbox: String,
    /// File path, `imap:support uid 42`, `stdin`.
    pub source: String,
    pub subject: String,
    /// The resolved sender address.
    pub from: Option<String>,
    pub from_name: Option<String>,
    pub date: Option<DateTime<Utc>>,
    /// Kept on comments as names and sizes.
    pub attachments: Vec<Attachment>,
    /// In-Reply-To + References of the incoming message, without `<>`.
    pub references: Vec<String>,
    /// The original bytes; kept (compressed) with every message, whatever its fate.
    /// [`MessageRecord::compress`] replaces them by `compressed` beforehand, off the store's
    /// thread; bytes still here are compressed when the message is written.
    pub raw: Vec<u8>,
    pub compressed: Option<Compressed>,
    /// The bytes are kept only if the message fails (`keep_mail = "failed"`); the record of
    /// a message that did not fail says they were let go when it was processed.
    pub keep_only_if_failed: bool,
}

/// How to apply: our identity, the flood limits and the clock.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// The domain of the Message-IDs we generate: `<random.N@outgoing_domain>`.
    pub outgoing_domain: String,
    /// Our own addresses: never auto-reply to them.
    pub reply_from: Vec<String>,
    pub limits: crate::config::Limits,
    /// The time to record; `None` means the real clock.
    pub now: Option<DateTime<Utc>>,
    /// The triggers to run on every change; `None`: no triggers.
    pub triggers: Option<std::sync::Arc<dyn Triggers>>,
    /// The status of a task created without one: the rules' `initial = true` status, else
    /// [`tasks::DEFAULT_STATUS`].
    pub initial_status: Option<String>,
    /// The declared statuses (`[[status]]`): a status an action sets is put in its declared
    /// spelling, and one that is not declared (from a template's variables) fails the
    /// message. Empty: any status goes.
    pub statuses: Vec<String>,
}

impl ApplyOptions {
    /// The status a task created without one gets.
    pub fn initial_status(&self) -> String {
        self.initial_status
            .clone()
            .unwrap_or_else(|| tasks::DEFAULT_STATUS.to_string())
    }
}

/// Where an IMAP mailbox was read up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxCursor {
    pub mailbox: String,
    pub uid_validity: u32,
    pub last_uid: u32,
}

/// The recorded fate of a message key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Applied,
    /// Processed with no effect: every action was `ignore` (the rule's, or `unmatched =
    /// "ignore"`), or skipped (`if_missing = "skip"`). A duplicate like an applied one.
    Ignored,
    Failed,
}

/// What became of one message of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    Applied,
    /// Already applied earlier: nothing changed.
    Duplicate,
    Failed,
}

/// The outcome of one message, as `ingest --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApplyResult {
    pub key: String,
    pub message_id: Option<String>,
    pub rule: Option<String>,
    /// The last task the message acted on.
    pub task: Option<i64>,
    pub status: ResultStatus,
    pub error: Option<String>,
}

/// What threading needs from the store.
pub trait TaskDirectory {
    /// The task that stores any of these Message-IDs (incoming mail or our own outgoing),
    /// trying them in the order given.
    fn task_for_message_ids(&self, ids: &[&str]) -> Result<Option<i64>, StoreError>;
    /// The status of task `id`, or None when there is no such task.
    fn task_status(&self, id: i64) -> Result<Option<String>, StoreError>;
}

impl Store {
    /// Opens the store file, creating it (mode 0600) and its schema when missing.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_error = |detail: String| StoreError::Open { detail }.at(path);
        create_private_file(path).map_err(|e| open_error(e.to_string()))?;
        let conn = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        Store::setup(conn, path.to_path_buf()).map_err(|e| match e {
            StoreError::Sqlite(inner) => open_error(inner.to_string()),
            other => other.at(path),
        })
    }

    /// Whether the store file at `path` can be read now: a fresh read-only connection (one
    /// held open keeps reading its cached pages after the file is damaged or replaced) that
    /// reads the schema version and counts the tables. Never creates the file. For /healthz.
    pub fn check_readable(path: &Path) -> Result<u32, StoreError> {
        let open_error = |detail: String| StoreError::Open { detail }.at(path);
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| open_error(e.to_string()))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_error(e.to_string()))?;
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| open_error(e.to_string()))?;
        migrations::version(&conn).map_err(|e| e.at(path))
    }

    /// A private store in memory, for tests and dry runs.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::setup(Connection::open_in_memory()?, PathBuf::from(":memory:"))
    }

    fn setup(mut conn: Connection, path: PathBuf) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL + FULL: the WAL is synced at every commit, so a commit survives a power cut.
        // The daemon acknowledges a batch on the IMAP server right after its commit; with
        // NORMAL a power cut could undo a commit whose messages the server no longer offers,
        // losing them. One fsync per batch (not per message) is cheap.
        use_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // 16 MiB of page cache instead of 2: once the store holds tens of thousands of
        // messages, the indexes a batch touches no longer fit in 2 MiB and every lookup reads
        // its pages from the OS again.
        conn.pragma_update(None, "cache_size", -16384)?;
        // Copy the WAL into the database every 10,000 pages (40 MiB) instead of 1,000: the
        // index pages that every batch touches are then copied once for several batches, not
        // once per batch (a third less written over a 20,000-message ingest).
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        conn.set_prepared_statement_cache_capacity(128);
        // Without the query planner stability guarantee SQLite (built with STAT4) compiles
        // again, at every step after a rebind, each cached statement whose plan might depend
        // on a bound value: the contact and thread lookups were re-parsed for every message
        // (9 % of an ingest's CPU). Our plans do not depend on the values.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        migrations::migrate(&mut conn)?;
        Ok(Store { conn, path })
    }

    /// The schema version of the open store (the number of migrations applied).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        migrations::version(&self.conn)
    }

    /// The file this store lives in (`:memory:` for in-memory stores).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn located(&self, e: StoreError) -> StoreError {
        e.at(&self.path)
    }

    /// `(status, count)` pairs from a `SELECT status, count(*) … GROUP BY status` (for /metrics).
    fn counts_by_status(&self, sql: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl TaskDirectory for Store {
    fn task_for_message_ids(&self, ids: &[&str]) -> Result<Option<i64>, StoreError> {
        ConnectionDirectory(&self.conn).task_for_message_ids(ids)
    }

    fn task_status(&self, id: i64) -> Result<Option<String>, StoreError> {
        ConnectionDirectory(&self.conn).task_status(id)
    }
}

/// Thread lookups on a connection or an open transaction, so that planning inside a batch
/// sees what the batch's earlier messages wrote.
pub(crate) struct ConnectionDirectory<'a>(pub(crate) &'a Connection);

impl TaskDirectory for ConnectionDirectory<'_> {
    fn task_for_message_ids(&self, ids: &[&str]) -> Result<Option<i64>, StoreError> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT task_id FROM task_messages WHERE message_id = ?1")?;
        for id in ids {
            let id = bare_message_id(id);
            if id.is_empty() {
                continue;
            }
            if let Some(task) = stmt.query_row([id], |r| r.get(0)).optional()? {
                return Ok(Some(task));
            }
        }
        Ok(None)
    }

    fn task_status(&self, id: i64) -> Result<Option<String>, StoreError> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT status FROM tasks WHERE id = ?1")?;
        Ok(stmt.query_row([id], |r| r.get(0)).optional()?)
    }
}

/// How long a statement waits for another process's lock before the store counts as busy
/// (`StoreError::Busy` says so in its message).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Switches the store to WAL. On a new file several processes may do this at the same moment
/// (the daemon started while a command runs): the switch needs an exclusive lock, and SQLite
/// answers SQLITE_BUSY at once there instead of calling the busy handler, so it is tried again
/// for as long as any other statement would wait. On a store that is already in WAL mode
/// nothing is written.
fn use_wal(conn: &Connection) -> Result<(), StoreError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())) {
            Ok(()) => return Ok(()),
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
                if Instant::now() >= deadline {
                    return Err(e.into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Creates the file with owner-only permissions before SQLite opens it (SQLite gives its
/// WAL and shared-memory files the same permissions).
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The form timestamps are stored and shown in.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A time as the store writes it (RFC 3339, seconds, `Z`), for comparing with stored times.
pub fn timestamp_at(at: DateTime<Utc>) -> String {
    timestamp(at)
}

/// Now, as the store writes times.
pub fn timestamp_now() -> String {
    timestamp(Utc::now())
}

#[cfg(test)]
mod tests;
