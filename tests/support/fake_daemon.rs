//! The daemon in-process with a fake pipeline: records what it is given, dedupes by
//! Message-ID like the store, and can be told to fail or to take its time.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailrules::config::Config;
use mailrules::daemon::{
    run_with, Batch, BatchSink, DaemonError, DaemonOptions, MailboxCursor, MailboxState, Notifier,
    Outcome, OutcomeStatus, Reload, RetryPolicy, Shutdown, SinkError, StatusBoard,
};
use mailrules::imap::Timeouts;

use super::dovecot::{header, wait_until, Dovecot};
use super::logs::{capture_logs, captured_logs};

/// The bound of every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

// ---- the fake pipeline --------------------------------------------------------------------

/// Records what it is given; dedupes by Message-ID like the store; fails messages carrying
/// `X-Test-Fail: yes`; can be told to fail whole batches or to hold a batch for a while.
#[derive(Clone, Default)]
pub struct FakeSink(pub Arc<Mutex<Fake>>);

#[derive(Default)]
pub struct Fake {
    pub cursors: HashMap<String, MailboxCursor>,
    pub applied: Vec<String>,
    pub duplicates: Vec<String>,
    pub failed: Vec<String>,
    /// How many of the next batches fail as if the store could not be written.
    pub failing_batches: usize,
    /// Announce each batch as it starts, then take this long over it.
    pub batch_started: Option<std::sync::mpsc::Sender<usize>>,
    pub batch_time: Duration,
    pub reloads: usize,
    pub reload_errors: Vec<String>,
}

impl FakeSink {
    pub fn with<T>(&self, f: impl FnOnce(&mut Fake) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
    pub fn applied(&self) -> Vec<String> {
        self.with(|f| f.applied.clone())
    }
}

impl BatchSink for FakeSink {
    fn mailbox_cursor(&mut self, mailbox: &str) -> Result<Option<MailboxCursor>, SinkError> {
        Ok(self.with(|f| f.cursors.get(mailbox).cloned()))
    }

    fn process_batch(
        &mut self,
        batch: Batch,
        cursor: Option<&MailboxCursor>,
    ) -> Result<Vec<Outcome>, SinkError> {
        // Without a preparer, every batch comes as fetched.
        let Batch::Fetched(batch) = batch else {
            return Err(SinkError(
                "the fake sink was given a batch parsed ahead".into(),
            ));
        };
        let (started, time) = self.with(|f| (f.batch_started.clone(), f.batch_time));
        if let Some(started) = started {
            let _ = started.send(batch.len());
        }
        std::thread::sleep(time);
        let mut fake = self.0.lock().unwrap();
        if fake.failing_batches > 0 {
            fake.failing_batches -= 1;
            return Err(SinkError("disk I/O error".into()));
        }
        let mut outcomes = Vec::new();
        for incoming in batch {
            if let Some(error) = &incoming.unreadable {
                // As the pipeline does: recorded as failed under its source.
                let key = mailrules::pipeline::unreadable_key(&incoming.source);
                fake.failed.push(format!("{key}: {error}"));
                outcomes.push(Outcome {
                    message_id: None,
                    key,
                    rule: None,
                    task: None,
                    status: OutcomeStatus::Failed,
                    error: Some(error.clone()),
                });
                continue;
            }
            let key = header(&incoming.raw, "Message-ID").unwrap_or_default();
            let fail = header(&incoming.raw, "X-Test-Fail").is_some();
            let status = if fail {
                fake.failed.push(key.clone());
                OutcomeStatus::Failed
            } else if fake.applied.contains(&key) {
                fake.duplicates.push(key.clone());
                OutcomeStatus::Duplicate
            } else {
                fake.applied.push(key.clone());
                OutcomeStatus::Applied
            };
            outcomes.push(Outcome {
                message_id: Some(key.clone()),
                key,
                rule: None,
                task: None,
                status,
                error: fail.then(|| "rule \"x\": no task matches".to_string()),
            });
        }
        if let Some(cursor) = cursor {
            fake.cursors.insert(cursor.mailbox.clone(), cursor.clone());
        }
        Ok(outcomes)
    }

    /// A fake has no rules, so no schedules.
    fn run_schedules(
        &mut self,
        _: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<mailrules::automation::ScheduleFiring>, SinkError> {
        Ok(Vec::new())
    }

    fn reload_rules(&mut self) -> Result<String, Vec<String>> {
        self.with(|f| {
            f.reloads += 1;
            if f.reload_errors.is_empty() {
                Ok("2 rules in 1 file".into())
            } else {
                Err(f.reload_errors.clone())
            }
        })
    }
}

// ---- running the daemon -------------------------------------------------------------------

pub fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_millis(500),
        operator_retry: Duration::from_millis(300),
        idle_refresh: Duration::from_secs(600),
        rules_poll: Duration::from_millis(100),
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            command: Duration::from_secs(10),
        },
    }
}

/// A `[[mailbox]]` table for `dovecot` without TLS; `extra` adds or overrides keys.
pub fn mailbox(name: &str, dovecot: &Dovecot, extra: &str) -> String {
    format!(
        "[[mailbox]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         user = \"{}\"\npassword_file = \"{}\"\n{extra}\n",
        dovecot.port,
        super::dovecot::USER,
        dovecot.password_file().display()
    )
}

pub fn config(dir: &Path, mailboxes: &[String]) -> Arc<Config> {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let path = dir.join("mailrules.toml");
    std::fs::write(&path, mailboxes.concat()).unwrap();
    Arc::new(Config::load(&path).unwrap())
}

pub struct Running {
    pub shutdown: Shutdown,
    pub status: StatusBoard,
    pub reload: Reload,
    pub task: tokio::task::JoinHandle<Result<(), DaemonError>>,
}

pub fn start(config: Arc<Config>, sink: FakeSink, notifier: Notifier) -> Running {
    start_with(config, sink, notifier, fast_policy())
}

pub fn start_with(
    config: Arc<Config>,
    sink: FakeSink,
    notifier: Notifier,
    policy: RetryPolicy,
) -> Running {
    capture_logs();
    let shutdown = Shutdown::new();
    let options = DaemonOptions {
        policy,
        notifier,
        ..DaemonOptions::default()
    };
    let (status, reload) = (options.status.clone(), options.reload.clone());
    let task = tokio::spawn(run_with(config, sink, options, shutdown.clone()));
    Running {
        shutdown,
        status,
        reload,
        task,
    }
}

impl Running {
    pub async fn stop(self) {
        self.shutdown.trigger();
        let result = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the daemon did not stop in time")
            .unwrap();
        result.expect("the daemon stopped with an error");
    }

    pub fn state(&self, mailbox: &str) -> MailboxState {
        // The daemon registers its mailboxes once its task gets going.
        self.status
            .snapshot()
            .get(mailbox)
            .map_or(MailboxState::Starting, |s| s.state.clone())
    }

    pub async fn wait_for_state(
        &self,
        mailbox: &str,
        what: &str,
        test: impl Fn(&MailboxState) -> bool,
    ) {
        wait_until(WAIT, what, || {
            let ok = test(&self.state(mailbox));
            async move { ok }
        })
        .await;
    }
}

pub async fn wait_for_count(dovecot: &Dovecot, folder: &str, n: usize) {
    wait_until(WAIT, &format!("{n} message(s) in {folder}"), || async {
        dovecot.count(folder).await == n
    })
    .await;
}

pub fn ids(prefix: &str, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("{prefix}-{i}@example.org"))
        .collect()
}

pub fn logs_for(mailbox: &str) -> Vec<String> {
    let field = format!("mailbox={mailbox}");
    captured_logs()
        .into_iter()
        .filter(|l| l.contains(&field))
        .collect()
}
