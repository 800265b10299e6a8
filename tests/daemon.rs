//! The daemon against a real Dovecot, with an in-process fake pipeline: fetching, committing
//! then acknowledging, IDLE and polling, several mailboxes, shutdown and rules reload.

use std::time::Duration;

use crate::support::dovecot::{message, wait_until, Dovecot};
use crate::support::fake_daemon::*;
use crate::support::logs::captured_logs;
use crate::support::systemd::FakeSystemd;
use mailrules::daemon::{MailboxCursor, MailboxState, Notifier, RetryPolicy};

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
    let systemd = FakeSystemd::bind(&dir.path().join("notify.sock"));
    let daemon = start(config, sink.clone(), Notifier::to_socket(systemd.path()));

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

    systemd.wait_for("STOPPING=1", WAIT).await;
    let heard = systemd.heard();
    assert!(heard.contains(&"READY=1".to_string()), "{heard:?}");
    assert!(heard.contains(&"STOPPING=1".to_string()), "{heard:?}");
    assert!(
        heard.iter().any(|h| h.starts_with("STATUS=stopping idle")),
        "{heard:?}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_move_messages_are_copied_then_expunged() {
    let dovecot = Dovecot::start_with_capabilities("IMAP4rev1 IDLE UIDPLUS");
    dovecot.append("INBOX", &message("copied", "Hi", "")).await;
    dovecot
        .append(
            "INBOX",
            &message("copied-bad", "Hi", "X-Test-Fail: yes\r\n"),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &[mailbox("nomove", &dovecot, "")]);
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());
    wait_for_count(&dovecot, "Processed", 1).await;
    wait_for_count(&dovecot, "Failed", 1).await;
    wait_for_count(&dovecot, "INBOX", 0).await;
    assert_eq!(
        dovecot.message_ids("Processed").await,
        ["copied@example.org"]
    );
    assert!(logs_for("nomove")
        .iter()
        .any(|l| l.contains("the server offers IDLE UIDPLUS") && !l.contains("MOVE")));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_works_without_uidplus_too() {
    let dovecot = Dovecot::start_with_capabilities("IMAP4rev1 IDLE");
    dovecot.append("INBOX", &message("deleted", "Hi", "")).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &[mailbox(
            "deleter",
            &dovecot,
            "on_success = \"delete\"\non_failure = \"keep\"",
        )],
    );
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());
    wait_for_count(&dovecot, "INBOX", 0).await;
    assert_eq!(sink.applied(), ["<deleted@example.org>"]);
    assert_eq!(dovecot.count("Processed").await, 0);
    assert!(logs_for("deleter")
        .iter()
        .any(|l| l.contains("the server offers IDLE") && !l.contains("UIDPLUS")));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_targets_resolve_under_the_servers_personal_namespace() {
    // Folders under `INBOX.` with `.` between levels, as on Cyrus and Courier: the README's
    // `move:Processed` must mean the user's folder "Processed", i.e. `INBOX.Processed`.
    let dovecot = Dovecot::start_with_inbox_prefix();
    dovecot.append("INBOX", &message("ns-good", "Hi", "")).await;
    dovecot
        .append("INBOX", &message("ns-bad", "Hi", "X-Test-Fail: yes\r\n"))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &[mailbox(
            "prefixed",
            &dovecot,
            "on_success = \"move:Processed\"\non_failure = \"move:INBOX.Failed\"",
        )],
    );
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());
    wait_for_count(&dovecot, "INBOX.Processed", 1).await;
    wait_for_count(&dovecot, "INBOX.Failed", 1).await;
    wait_for_count(&dovecot, "INBOX", 0).await;
    assert_eq!(
        dovecot.message_ids("INBOX.Processed").await,
        ["ns-good@example.org"]
    );
    assert!(
        logs_for("prefixed")
            .iter()
            .any(|l| l.contains("created folder INBOX.Processed")),
        "the resolved name is the one logged"
    );
    assert!(!logs_for("prefixed").iter().any(|l| l.contains("ERROR")));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_move_never_stops_later_mail_and_is_shown() {
    let dovecot = Dovecot::start();
    for id in ["stuck-1", "stuck-2"] {
        dovecot.append("INBOX", &message(id, "Hi", "")).await;
    }
    let dir = tempfile::tempdir().unwrap();
    // Dovecot refuses to create (and so to move into) a folder with an empty level.
    let config = config(
        dir.path(),
        &[mailbox("refused", &dovecot, "on_success = \"move:a..b\"")],
    );
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());
    wait_until(
        WAIT,
        "both committed and shown as unacknowledged",
        || async {
            daemon
                .status
                .snapshot()
                .get("refused")
                .is_some_and(|s| s.unacknowledged == 2)
        },
    )
    .await;
    // New mail is still processed while the first two wait.
    dovecot.append("INBOX", &message("later-3", "Hi", "")).await;
    wait_until(WAIT, "the later message committed", || async {
        sink.applied().len() == 3
    })
    .await;
    assert_eq!(
        sink.applied(),
        [
            "<stuck-1@example.org>",
            "<stuck-2@example.org>",
            "<later-3@example.org>"
        ],
        "each applied once, although acknowledging was tried again and again"
    );
    assert_eq!(
        dovecot.count("INBOX").await,
        3,
        "nothing moved, nothing lost"
    );
    let logs = logs_for("refused");
    let refusals: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("cannot acknowledge"))
        .collect();
    assert!(!refusals.is_empty(), "the refusal is logged: {logs:#?}");
    for line in logs.iter().filter(|l| l.contains("ERROR")) {
        assert!(
            !line.contains("code: "),
            "the server's words, not Debug: {line}"
        );
        assert!(
            !line.contains("info: Some"),
            "the server's words, not Debug: {line}"
        );
    }
    assert!(
        logs.iter()
            .any(|l| l.contains("cannot create folder \"a..b\"") && l.contains("server said")),
        "the refused CREATE is logged with the server's words: {logs:#?}"
    );
    assert!(daemon
        .status
        .summary()
        .contains("committed but not yet moved"));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_between_copy_and_expunge_no_message_is_copied_twice() {
    let dovecot = Dovecot::start_with_capabilities("IMAP4rev1 IDLE UIDPLUS");
    // The state a SIGKILL after `UID COPY` and before `UID EXPUNGE` leaves: committed (cursor
    // at UID 3), copied into Processed, still in INBOX. Message 2 has no Message-ID.
    dovecot
        .append("INBOX", &message("copied-1", "Hi", ""))
        .await;
    let no_id = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: no id\r\n\
                  Date: Mon, 23 Nov 2026 11:00:00 +0000\r\n\r\nno Message-ID here\r\n";
    dovecot.append("INBOX", no_id).await;
    dovecot
        .append("INBOX", &message("copied-3", "Hi", ""))
        .await;
    dovecot
        .append("Processed", &message("copied-1", "Hi", ""))
        .await;
    dovecot.append("Processed", no_id).await;
    dovecot
        .append("Processed", &message("copied-3", "Hi", ""))
        .await;
    dovecot.append("INBOX", &message("fresh-4", "Hi", "")).await;
    let mut session = dovecot.session().await;
    let uid_validity = session.select("INBOX").await.unwrap().uid_validity.unwrap();
    session.logout().await.unwrap();
    let sink = FakeSink::default();
    sink.with(|f| {
        f.applied = vec![
            "<copied-1@example.org>".into(),
            String::new(),
            "<copied-3@example.org>".into(),
        ];
        f.cursors.insert(
            "crashed".into(),
            MailboxCursor {
                mailbox: "crashed".into(),
                uid_validity,
                last_uid: 3,
            },
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &[mailbox("crashed", &dovecot, "")]);
    let daemon = start(config, sink.clone(), Notifier::default());
    wait_for_count(&dovecot, "INBOX", 0).await;
    wait_for_count(&dovecot, "Processed", 4).await;
    let mut ids = dovecot.message_ids("Processed").await;
    ids.sort();
    assert_eq!(
        ids,
        [
            "copied-1@example.org",
            "copied-3@example.org",
            "fresh-4@example.org"
        ],
        "one copy each (the message without an id is the fourth)"
    );
    assert_eq!(dovecot.count("Processed").await, 4);
    daemon.stop().await;
}
