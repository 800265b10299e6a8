//! The daemon against a real Dovecot, with an in-process fake pipeline: fetching, committing
//! then acknowledging, IDLE, reconnecting, operator problems, TLS, shutdown and rules reload.

mod support;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailrules::config::Config;
use mailrules::daemon::{
    run_with, BatchSink, DaemonError, DaemonOptions, Incoming, MailboxCursor, MailboxState,
    Notifier, Outcome, OutcomeStatus, Reload, RetryPolicy, Shutdown, SinkError, StatusBoard,
};
use mailrules::imap::Timeouts;
use support::dovecot::{header, message, wait_until, Dovecot};
use support::logs::{capture_logs, captured_logs};

const WAIT: Duration = Duration::from_secs(20);

// ---- the fake pipeline --------------------------------------------------------------------

/// Records what it is given; dedupes by Message-ID like the store; fails messages carrying
/// `X-Test-Fail: yes`; can be told to fail whole batches or to hold a batch for a while.
#[derive(Clone, Default)]
struct FakeSink(Arc<Mutex<Fake>>);

#[derive(Default)]
struct Fake {
    cursors: HashMap<String, MailboxCursor>,
    applied: Vec<String>,
    duplicates: Vec<String>,
    failed: Vec<String>,
    /// How many of the next batches fail as if the store could not be written.
    failing_batches: usize,
    /// Announce each batch as it starts, then take this long over it.
    batch_started: Option<std::sync::mpsc::Sender<usize>>,
    batch_time: Duration,
    reloads: usize,
    reload_errors: Vec<String>,
}

impl FakeSink {
    fn with<T>(&self, f: impl FnOnce(&mut Fake) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
    fn applied(&self) -> Vec<String> {
        self.with(|f| f.applied.clone())
    }
}

impl BatchSink for FakeSink {
    fn mailbox_cursor(&mut self, mailbox: &str) -> Result<Option<MailboxCursor>, SinkError> {
        Ok(self.with(|f| f.cursors.get(mailbox).cloned()))
    }

    fn process_batch(
        &mut self,
        batch: Vec<Incoming>,
        cursor: Option<&MailboxCursor>,
    ) -> Result<Vec<Outcome>, SinkError> {
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

fn fast_policy() -> RetryPolicy {
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
fn mailbox(name: &str, dovecot: &Dovecot, extra: &str) -> String {
    format!(
        "[[mailbox]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         user = \"{}\"\npassword_file = \"{}\"\n{extra}\n",
        dovecot.port,
        support::dovecot::USER,
        dovecot.password_file().display()
    )
}

fn config(dir: &Path, mailboxes: &[String]) -> Arc<Config> {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let path = dir.join("mailrules.toml");
    std::fs::write(&path, mailboxes.concat()).unwrap();
    Arc::new(Config::load(&path).unwrap())
}

struct Running {
    shutdown: Shutdown,
    status: StatusBoard,
    reload: Reload,
    task: tokio::task::JoinHandle<Result<(), DaemonError>>,
}

fn start(config: Arc<Config>, sink: FakeSink, notifier: Notifier) -> Running {
    start_with(config, sink, notifier, fast_policy())
}

fn start_with(
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
    async fn stop(self) {
        self.shutdown.trigger();
        let result = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the daemon did not stop in time")
            .unwrap();
        result.expect("the daemon stopped with an error");
    }

    fn state(&self, mailbox: &str) -> MailboxState {
        // The daemon registers its mailboxes once its task gets going.
        self.status
            .snapshot()
            .get(mailbox)
            .map_or(MailboxState::Starting, |s| s.state.clone())
    }

    async fn wait_for_state(
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

async fn wait_for_count(dovecot: &Dovecot, folder: &str, n: usize) {
    wait_until(WAIT, &format!("{n} message(s) in {folder}"), || async {
        dovecot.count(folder).await == n
    })
    .await;
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("{prefix}-{i}@example.org"))
        .collect()
}

fn logs_for(mailbox: &str) -> Vec<String> {
    let field = format!("mailbox={mailbox}");
    captured_logs()
        .into_iter()
        .filter(|l| l.contains(&field))
        .collect()
}

// ---- the tests ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_appended_before_and_after_start_is_processed_once_and_moved() {
    let dovecot = Dovecot::start();
    for id in ids("early", 3) {
        let local = id.trim_end_matches("@example.org").to_string();
        dovecot.append("INBOX", &message(&local, "Early", "")).await;
    }
    let dir = tempfile::tempdir().unwrap();
    // A batch size below the backlog, so catching up takes several batches.
    let config = config(dir.path(), &[mailbox("basic", &dovecot, "batch_size = 2")]);
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());

    wait_for_count(&dovecot, "Processed", 3).await;
    assert_eq!(dovecot.count("INBOX").await, 0);
    daemon
        .wait_for_state("basic", "watching with IDLE", |s| {
            *s == MailboxState::Watching { idle: true }
        })
        .await;

    for id in ids("late", 2) {
        let local = id.trim_end_matches("@example.org").to_string();
        dovecot.append("INBOX", &message(&local, "Late", "")).await;
    }
    wait_for_count(&dovecot, "Processed", 5).await;
    assert_eq!(dovecot.count("INBOX").await, 0);

    let mut expected: Vec<String> = ids("early", 3);
    expected.extend(ids("late", 2));
    let expected: Vec<String> = expected.iter().map(|id| format!("<{id}>")).collect();
    assert_eq!(
        sink.applied(),
        expected,
        "each message applied once, in order"
    );
    let mut moved = dovecot.message_ids("Processed").await;
    moved.sort();
    let mut want: Vec<String> = ids("early", 3).into_iter().chain(ids("late", 2)).collect();
    want.sort();
    assert_eq!(moved, want);
    let cursor = sink.with(|f| f.cursors["basic"].clone());
    assert_eq!(cursor.last_uid, 5);
    assert_eq!(daemon.status.snapshot()["basic"].processed, 5);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_wakes_the_daemon_long_before_the_poll_interval() {
    let dovecot = Dovecot::start();
    let dir = tempfile::tempdir().unwrap();
    // With an hour between polls, only IDLE can bring the message in within the wait.
    let config = config(
        dir.path(),
        &[mailbox("idler", &dovecot, "poll_interval = \"1h\"")],
    );
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());
    daemon
        .wait_for_state("idler", "IDLE", |s| {
            *s == MailboxState::Watching { idle: true }
        })
        .await;
    // Let the watcher get into IDLE before the mail arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    dovecot
        .append("INBOX", &message("wake", "Wake up", ""))
        .await;
    wait_for_count(&dovecot, "Processed", 1).await;
    assert_eq!(sink.applied(), ["<wake@example.org>"]);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_is_renewed_periodically_and_keeps_working() {
    let dovecot = Dovecot::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &[mailbox("renewer", &dovecot, "poll_interval = \"1h\"")],
    );
    let sink = FakeSink::default();
    let policy = RetryPolicy {
        idle_refresh: Duration::from_millis(200),
        ..fast_policy()
    };
    let daemon = start_with(config, sink.clone(), Notifier::default(), policy);
    wait_until(WAIT, "IDLE to be renewed three times", || async {
        logs_for("renewer")
            .iter()
            .filter(|l| l.contains("renewing IDLE"))
            .count()
            >= 3
    })
    .await;
    dovecot
        .append("INBOX", &message("renewed", "Still there?", ""))
        .await;
    wait_for_count(&dovecot, "Processed", 1).await;
    assert_eq!(sink.applied(), ["<renewed@example.org>"]);
    // Renewing IDLE is not a reconnection.
    assert_eq!(
        logs_for("renewer")
            .iter()
            .filter(|l| l.contains("connected"))
            .count(),
        1
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idle_the_folder_is_polled() {
    let dovecot = Dovecot::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &[mailbox(
            "poller",
            &dovecot,
            "idle = false\npoll_interval = \"1s\"\non_success = \"flag\"",
        )],
    );
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());
    daemon
        .wait_for_state("poller", "polling", |s| {
            *s == MailboxState::Watching { idle: false }
        })
        .await;
    dovecot
        .append("INBOX", &message("polled", "Polled", ""))
        .await;
    wait_until(WAIT, "the message to be applied", || {
        let sink = sink.clone();
        async move { sink.applied().len() == 1 }
    })
    .await;
    // `flag` leaves it in place, marked \Seen; it is not processed again on later polls.
    let mut session = dovecot.session().await;
    session.select("INBOX").await.unwrap();
    wait_until(WAIT, "the message to be flagged \\Seen", || {
        let found = futures::executor::block_on(session.uid_search("SEEN")).unwrap();
        async move { found.len() == 1 }
    })
    .await;
    session.logout().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sink.applied().len(), 1);
    assert!(sink.with(|f| f.duplicates.is_empty()));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_mailboxes_are_watched_at_once() {
    let dovecot = Dovecot::start();
    let mut session = dovecot.session().await;
    session.create("Sales").await.unwrap();
    session.logout().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &[
            mailbox("two-support", &dovecot, ""),
            mailbox(
                "two-sales",
                &dovecot,
                "folder = \"Sales\"\non_success = \"move:Sales Done\"",
            ),
        ],
    );
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());
    dovecot.append("INBOX", &message("s1", "Support", "")).await;
    dovecot.append("Sales", &message("d1", "Deal", "")).await;
    wait_for_count(&dovecot, "Processed", 1).await;
    wait_for_count(&dovecot, "Sales Done", 1).await;
    assert_eq!(dovecot.message_ids("Processed").await, ["s1@example.org"]);
    assert_eq!(dovecot.message_ids("Sales Done").await, ["d1@example.org"]);
    let cursors = sink.with(|f| f.cursors.clone());
    assert_eq!(cursors["two-support"].last_uid, 1);
    assert_eq!(cursors["two-sales"].last_uid, 1);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_message_goes_to_the_failure_folder_without_blocking_the_others() {
    let dovecot = Dovecot::start();
    dovecot.append("INBOX", &message("ok-1", "Fine", "")).await;
    dovecot
        .append("INBOX", &message("bad", "Broken", "X-Test-Fail: yes\r\n"))
        .await;
    dovecot.append("INBOX", &message("ok-2", "Fine", "")).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &[mailbox(
            "failing",
            &dovecot,
            "on_failure = \"move:Needs Review\"",
        )],
    );
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());
    wait_for_count(&dovecot, "Processed", 2).await;
    wait_for_count(&dovecot, "Needs Review", 1).await;
    assert_eq!(
        dovecot.message_ids("Needs Review").await,
        ["bad@example.org"]
    );
    assert_eq!(dovecot.count("INBOX").await, 0);
    // Mail after the bad one keeps flowing.
    dovecot.append("INBOX", &message("ok-3", "Fine", "")).await;
    wait_for_count(&dovecot, "Processed", 3).await;
    let snapshot = daemon.status.snapshot();
    assert_eq!(
        (snapshot["failing"].processed, snapshot["failing"].failed),
        (3, 1)
    );
    assert!(logs_for("failing")
        .iter()
        .any(|l| l.contains("WARN") && l.contains("uid=2") && l.contains("no task matches")));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_server_cannot_deliver_is_skipped_after_a_few_attempts() {
    let dovecot = Dovecot::start();
    dovecot
        .append("INBOX", &message("fine-1", "Fine", ""))
        .await;
    dovecot
        .append("INBOX", &message("poison", "Unreadable", ""))
        .await;
    dovecot
        .append("INBOX", &message("fine-2", "Fine", ""))
        .await;
    // Dovecot drops the connection when it cannot read a message file.
    let file = dovecot.maildir_file("poison@example.org");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &[mailbox("poisoned", &dovecot, "")]);
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());
    wait_for_count(&dovecot, "Processed", 2).await;
    assert_eq!(
        sink.applied(),
        ["<fine-1@example.org>", "<fine-2@example.org>"]
    );
    assert_eq!(sink.with(|f| f.cursors["poisoned"].last_uid), 3);
    assert!(logs_for("poisoned")
        .iter()
        .any(|l| l.contains("ERROR") && l.contains("uid=2") && l.contains("skipping it")));
    // It went where failures go, out of the way of new mail.
    wait_for_count(&dovecot, "Failed", 1).await;
    assert_eq!(dovecot.count("INBOX").await, 0);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_acknowledges_nothing_and_the_batch_is_retried() {
    let dovecot = Dovecot::start();
    dovecot
        .append("INBOX", &message("retry-me", "Later", ""))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &[mailbox("storefail", &dovecot, "")]);
    let sink = FakeSink::default();
    let (started, batches) = std::sync::mpsc::channel();
    sink.with(|f| {
        f.failing_batches = 3;
        f.batch_started = Some(started);
    });
    let daemon = start(config, sink.clone(), Notifier::default());
    for attempt in 1..=3 {
        tokio::task::block_in_place(|| batches.recv_timeout(WAIT))
            .unwrap_or_else(|_| panic!("batch attempt {attempt} never came"));
        // Nothing committed, so nothing may have left the inbox.
        assert_eq!(dovecot.count("Processed").await, 0);
    }
    wait_for_count(&dovecot, "Processed", 1).await;
    assert_eq!(sink.applied(), ["<retry-me@example.org>"]);
    let errors: Vec<String> = logs_for("storefail")
        .into_iter()
        .filter(|l| l.contains("disk I/O error") && !l.contains("DEBUG"))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "one log line for the trouble, not one per retry: {errors:#?}"
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_committed_but_not_acknowledged_is_acknowledged_after_a_restart() {
    let dovecot = Dovecot::start();
    for id in ["done-1", "done-2", "new-3"] {
        dovecot.append("INBOX", &message(id, "Hi", "")).await;
    }
    let mut session = dovecot.session().await;
    let uid_validity = session.select("INBOX").await.unwrap().uid_validity.unwrap();
    session.logout().await.unwrap();
    // As if the daemon had committed UIDs 1-2 and died before moving them.
    let sink = FakeSink::default();
    sink.with(|f| {
        f.applied = vec!["<done-1@example.org>".into(), "<done-2@example.org>".into()];
        f.cursors.insert(
            "recover".into(),
            MailboxCursor {
                mailbox: "recover".into(),
                uid_validity,
                last_uid: 2,
            },
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &[mailbox("recover", &dovecot, "")]);
    let daemon = start(config, sink.clone(), Notifier::default());
    wait_for_count(&dovecot, "Processed", 3).await;
    assert_eq!(
        sink.applied(),
        [
            "<done-1@example.org>",
            "<done-2@example.org>",
            "<new-3@example.org>"
        ]
    );
    assert_eq!(
        sink.with(|f| f.duplicates.clone()),
        ["<done-1@example.org>", "<done-2@example.org>"]
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uidvalidity_change_rescans_without_applying_anything_twice() {
    let dovecot = Dovecot::start();
    dovecot.append("INBOX", &message("kept-1", "Hi", "")).await;
    dovecot.append("INBOX", &message("kept-2", "Hi", "")).await;
    let sink = FakeSink::default();
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &[mailbox("rescan", &dovecot, "on_success = \"keep\"")],
    );
    let daemon = start(config.clone(), sink.clone(), Notifier::default());
    wait_until(WAIT, "both applied", || {
        let sink = sink.clone();
        async move { sink.applied().len() == 2 }
    })
    .await;
    daemon.stop().await;
    // The folder was recreated (or restored from a backup): a different UIDVALIDITY.
    sink.with(|f| {
        let cursor = f.cursors.get_mut("rescan").unwrap();
        cursor.uid_validity = cursor.uid_validity.wrapping_add(7);
        cursor.last_uid = 999;
    });
    let daemon = start(config, sink.clone(), Notifier::default());
    wait_until(WAIT, "both seen again as duplicates", || {
        let sink = sink.clone();
        async move { sink.with(|f| f.duplicates.len()) == 2 }
    })
    .await;
    assert_eq!(sink.applied().len(), 2);
    assert_eq!(sink.with(|f| f.cursors["rescan"].last_uid), 2);
    assert!(logs_for("rescan")
        .iter()
        .any(|l| l.contains("UIDVALIDITY changed")));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dovecot_restart_is_survived_with_one_log_line_per_state_change() {
    let mut dovecot = Dovecot::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &[mailbox("restart", &dovecot, "")]);
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());
    dovecot.append("INBOX", &message("before", "Hi", "")).await;
    wait_for_count(&dovecot, "Processed", 1).await;

    tokio::task::block_in_place(|| dovecot.stop());
    daemon
        .wait_for_state("restart", "reconnecting", |s| {
            matches!(s, MailboxState::Reconnecting { .. })
        })
        .await;
    // Several failed attempts while the server is down.
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| dovecot.start_again());
    daemon
        .wait_for_state("restart", "watching again", |s| {
            *s == MailboxState::Watching { idle: true }
        })
        .await;
    dovecot.append("INBOX", &message("after", "Hi", "")).await;
    wait_for_count(&dovecot, "Processed", 2).await;
    assert_eq!(
        sink.applied(),
        ["<before@example.org>", "<after@example.org>"]
    );

    let logs = logs_for("restart");
    let lost: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("reconnecting with backoff"))
        .collect();
    assert_eq!(lost.len(), 1, "one line when the trouble starts: {lost:#?}");
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("connected again"))
            .count(),
        1
    );
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_reported_once_and_retried_until_fixed() {
    let dovecot = Dovecot::start();
    dovecot.append("INBOX", &message("patient", "Hi", "")).await;
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("wrong.pass");
    std::fs::write(&password_file, "hunter2-wrong\n").unwrap();
    let toml = mailbox("badpass", &dovecot, "").replace(
        &dovecot.password_file().display().to_string(),
        &password_file.display().to_string(),
    );
    let config = config(dir.path(), &[toml]);
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());
    daemon
        .wait_for_state("badpass", "the login problem", |s| {
            matches!(s, MailboxState::NeedsOperator { problem } if problem.contains("rejected the login"))
        })
        .await;
    // Let it retry a few times (Dovecot delays each failed login by about 2s).
    wait_until(WAIT, "three failed logins in the server log", || {
        let failures = dovecot.log().matches("auth failed").count();
        async move { failures >= 3 }
    })
    .await;
    let logs = logs_for("badpass");
    let errors: Vec<&String> = logs.iter().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "reported once: {errors:#?}");
    assert!(
        errors[0].contains("rejected the login") && errors[0].contains("check user and password")
    );
    assert!(
        captured_logs().iter().all(|l| !l.contains("hunter2")),
        "the password never reaches the logs"
    );
    assert_eq!(sink.applied().len(), 0);

    // The operator fixes the file; the next slow retry gets in without a restart.
    std::fs::write(&password_file, format!("{}\n", support::dovecot::PASSWORD)).unwrap();
    wait_for_count(&dovecot, "Processed", 1).await;
    assert_eq!(sink.applied(), ["<patient@example.org>"]);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_and_acknowledges_the_batch_in_hand() {
    let dovecot = Dovecot::start();
    for id in ["sd-1", "sd-2", "sd-3"] {
        dovecot.append("INBOX", &message(id, "Hi", "")).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &[mailbox("stopping", &dovecot, "batch_size = 2")],
    );
    let sink = FakeSink::default();
    let (started, batches) = std::sync::mpsc::channel();
    sink.with(|f| {
        f.batch_started = Some(started);
        f.batch_time = Duration::from_millis(1500);
    });
    let socket_path = dir.path().join("notify.sock");
    let systemd = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    systemd.set_read_timeout(Some(WAIT)).unwrap();
    let daemon = start(config, sink.clone(), Notifier::to_socket(&socket_path));

    let first = tokio::task::block_in_place(|| batches.recv_timeout(WAIT)).unwrap();
    assert_eq!(first, 2);
    // SIGTERM arrives while the first batch is being processed.
    daemon.shutdown.trigger();
    let stopped = tokio::time::timeout(WAIT, daemon.task)
        .await
        .unwrap()
        .unwrap();
    assert!(stopped.is_ok(), "{stopped:?}");

    // The batch in hand was committed and acknowledged; nothing after it was started.
    assert_eq!(sink.applied(), ["<sd-1@example.org>", "<sd-2@example.org>"]);
    assert_eq!(sink.with(|f| f.cursors["stopping"].last_uid), 2);
    let mut moved = dovecot.message_ids("Processed").await;
    moved.sort();
    assert_eq!(moved, ["sd-1@example.org", "sd-2@example.org"]);
    assert_eq!(dovecot.message_ids("INBOX").await, ["sd-3@example.org"]);

    let mut heard = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = systemd.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let last = text == "STATUS=stopping: finishing the messages in hand";
        heard.push(text);
        if last {
            break;
        }
    }
    assert!(heard.contains(&"READY=1".to_string()), "{heard:?}");
    assert!(heard.contains(&"STOPPING=1".to_string()), "{heard:?}");
    assert!(
        heard.iter().any(|h| h.starts_with("STATUS=stopping idle")),
        "{heard:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_certificate_is_refused_unless_ca_file_names_it() {
    let dovecot = Dovecot::start_with_tls();
    dovecot.append("INBOX", &message("secure", "Hi", "")).await;
    let tls_port = dovecot.tls_port.unwrap();
    let certificate = dovecot.certificate.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let implicit = |name: &str, extra: &str| {
        mailbox(name, &dovecot, extra)
            .replace(
                &format!("port = {}", dovecot.port),
                &format!("port = {tls_port}"),
            )
            .replace("tls = \"none\"", "tls = \"implicit\"")
    };

    // Without ca_file: refused, reported as a certificate problem, nothing read.
    let config_untrusted = config(
        &dir.path().join("untrusted"),
        &[implicit("untrusted", "on_success = \"keep\"")],
    );
    let sink = FakeSink::default();
    let daemon = start(config_untrusted, sink.clone(), Notifier::default());
    daemon
        .wait_for_state("untrusted", "the certificate problem", |s| {
            matches!(s, MailboxState::NeedsOperator { problem } if problem.contains("certificate"))
        })
        .await;
    daemon.stop().await;
    assert!(sink.applied().is_empty());

    // With ca_file naming it: implicit TLS works...
    let ca = format!(
        "ca_file = \"{}\"\non_success = \"keep\"",
        certificate.display()
    );
    let config_trusted = config(&dir.path().join("trusted"), &[implicit("trusted", &ca)]);
    let sink = FakeSink::default();
    let daemon = start(config_trusted, sink.clone(), Notifier::default());
    wait_until(WAIT, "the message over implicit TLS", || {
        let sink = sink.clone();
        async move { sink.applied().len() == 1 }
    })
    .await;
    daemon.stop().await;

    // ...and so does STARTTLS.
    let starttls =
        mailbox("starttls", &dovecot, &ca).replace("tls = \"none\"", "tls = \"starttls\"");
    let config_starttls = config(&dir.path().join("starttls"), &[starttls]);
    let sink = FakeSink::default();
    let daemon = start(config_starttls, sink.clone(), Notifier::default());
    wait_until(WAIT, "the message over STARTTLS", || {
        let sink = sink.clone();
        async move { sink.applied().len() == 1 }
    })
    .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_reloaded_on_file_change_and_on_request_keeping_old_rules_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &[]);
    let sink = FakeSink::default();
    let daemon = start(config.clone(), sink.clone(), Notifier::default());
    // Give the watcher its first look at the directory.
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(config.rules.join("support.toml"), "# edited\n").unwrap();
    wait_until(WAIT, "a reload after the file changed", || {
        let sink = sink.clone();
        async move { sink.with(|f| f.reloads) == 1 }
    })
    .await;

    let problem = format!(
        "{}:3:7: unknown action \"frobnicate\"",
        config.rules.join("support.toml").display()
    );
    sink.with(|f| f.reload_errors = vec![problem.clone()]);
    daemon.reload.request(); // what SIGHUP does
    wait_until(WAIT, "a reload on request", || {
        let sink = sink.clone();
        async move { sink.with(|f| f.reloads) == 2 }
    })
    .await;
    wait_until(WAIT, "the error in the log", || async {
        captured_logs()
            .iter()
            .any(|l| l.contains("ERROR") && l.contains(&problem))
    })
    .await;
    assert!(captured_logs()
        .iter()
        .any(|l| l.contains("still using the rules loaded before")));
    daemon.stop().await;
}
