//! The daemon against a real Dovecot when things go wrong: a message the server cannot deliver,
//! a store that cannot be written, a server restart, a wrong password, an untrusted certificate.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::dovecot::{message, wait_until, Dovecot};
use crate::support::fake_daemon::*;
use crate::support::logs::captured_logs;
use mailrules::daemon::{MailboxState, Notifier};

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
    // It is recorded as failed, with its UID, size and the error, for `mailrules failed`.
    let failed = sink.with(|f| f.failed.clone());
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].starts_with("unreadable:imap:poisoned uid 2 (UIDVALIDITY "));
    assert!(
        failed[0].contains("message UID 2 (") && failed[0].contains(") 3 times; last error: "),
        "{}",
        failed[0]
    );
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
        errors[0].contains("Authentication failed") && !errors[0].contains("info: Some"),
        "the server's own words, not a Debug rendering: {}",
        errors[0]
    );
    assert!(
        captured_logs().iter().all(|l| !l.contains("hunter2")),
        "the password never reaches the logs"
    );
    assert_eq!(sink.applied().len(), 0);

    // The operator fixes the file; the next slow retry gets in without a restart.
    std::fs::write(
        &password_file,
        format!("{}\n", crate::support::dovecot::PASSWORD),
    )
    .unwrap();
    wait_for_count(&dovecot, "Processed", 1).await;
    assert_eq!(sink.applied(), ["<patient@example.org>"]);
    daemon.stop().await;
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
    // Mail that arrives while it idles over TLS: the search and fetch written behind DONE go
    // through the TLS stream's flush.
    tokio::time::sleep(Duration::from_secs(1)).await;
    dovecot
        .append("INBOX", &message("secure-idle", "Hi again", ""))
        .await;
    wait_until(
        WAIT,
        "the message that arrived while idling over TLS",
        || {
            let sink = sink.clone();
            async move { sink.applied().len() == 2 }
        },
    )
    .await;
    assert_eq!(
        sink.applied(),
        ["<secure@example.org>", "<secure-idle@example.org>"]
    );
    // Within the first session: had the pair not gone out, its answer would never have come
    // and the daemon would have connected again.
    let connections = logs_for("starttls")
        .iter()
        .filter(|l| l.contains("connected"))
        .count();
    assert_eq!(connections, 1, "{:#?}", logs_for("starttls"));
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_setting_that_does_not_fit_the_port_says_which_to_try() {
    let dovecot = Dovecot::start_with_tls();
    let tls_port = dovecot.tls_port.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Implicit TLS against the plain port.
    let implicit_on_plain =
        mailbox("implicit", &dovecot, "").replace("tls = \"none\"", "tls = \"implicit\"");
    // STARTTLS against the implicit-TLS port: no greeting ever comes.
    let starttls_on_tls = mailbox("starttls-on-tls", &dovecot, "")
        .replace(
            &format!("port = {}", dovecot.port),
            &format!("port = {tls_port}"),
        )
        .replace("tls = \"none\"", "tls = \"starttls\"");
    let config = config(dir.path(), &[implicit_on_plain, starttls_on_tls]);
    let sink = FakeSink::default();
    let daemon = start(config, sink.clone(), Notifier::default());
    let problem_of = |name: &'static str, hint: &'static str| {
        let daemon = &daemon;
        async move {
            daemon
                .wait_for_state(name, hint, |s| {
                    matches!(s, MailboxState::Reconnecting { problem } if problem.contains(hint))
                })
                .await;
        }
    };
    problem_of("implicit", "set tls = \"starttls\"").await;
    problem_of("starttls-on-tls", "set tls = \"implicit\"").await;
    for line in logs_for("implicit")
        .iter()
        .chain(&logs_for("starttls-on-tls"))
    {
        assert!(!line.contains("InvalidContentType"), "{line}");
    }
    daemon.stop().await;
    assert!(sink.applied().is_empty());
}
