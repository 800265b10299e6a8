//! Fault tests: the real `mailrules run` binary working through a mailbox of thousands of
//! messages on a private Dovecot while things break under it (SIGKILL at random moments,
//! Dovecot crashing, the store's disk full, the SMTP server refusing mail) and the outbox
//! when its store is locked. At the end every message is applied exactly once and
//! acknowledged on the server, and every reply delivered once.

use crate::support::smtp as smtp_support;

use std::path::PathBuf;
use std::time::Duration;

use crate::support::daemon_process::{trouble, Daemon};
use crate::support::dovecot::{header, wait_until, Dovecot, USER};
use crate::support::dovecot_outage::stop_dropping_clients;
use crate::support::maildir_fill::fill_inbox;
use crate::support::rng::Rng;
use smtp_support::{ServerOptions, SmtpServer};

/// What one whole fault test may take before it counts as a hang (debug build, two shared
/// cores, other tests running beside it).
const TEST_LIMIT: Duration = Duration::from_secs(540);
/// Waiting for thousands of messages to go through.
const DRAIN: Duration = Duration::from_secs(360);
const WAIT: Duration = Duration::from_secs(30);

const RULES: &str = r#"
[[analytics]]
name = "Оценки"
columns = { "Оценка" = "number" }

# Runs every second on the store (matching no task here): must survive store trouble too.
[[schedule]]
name = "stale-closed"
every = "1s"
[schedule.when]
status = "Закрыта"
in_status_for = "1s"
[[schedule.do]]
action = "comment"
text = "Задача #{task} закрыта давно."

[[rule]]
name = "newsletter"
[rule.when]
header = { "List-Id" = { regex = '.' } }
[[rule.do]]
action = "ignore"

[[rule]]
name = "request"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"
status = "Новая"
[[rule.do]]
action = "reply"
subject = "Re: {subject}"
text = "Ваша заявка принята, номер {task}."

[[rule]]
name = "follow-up"
[rule.when]
thread = "reply"
[rule.extract]
score = { after = "Score:" }
[[rule.do]]
action = "comment"
[[rule.do]]
action = "analytics"
table = "Оценки"
values = { "Оценка" = "{score}" }
"#;

// ---- the generated mailbox ----------------------------------------------------------------

/// Four messages per conversation `c`: a new request (a task and a queued reply), a follow-up
/// (a comment and an analytics row), a newsletter (ignored), and a second follow-up whose
/// score does not convert to a number in every fourth conversation (the message fails, with
/// no effect) and is fine otherwise.
fn mailbox(conversations: usize) -> Vec<Vec<u8>> {
    let mut raws = Vec::with_capacity(conversations * 4);
    for c in 0..conversations {
        let from = format!("Client {c} <client{c}@example.org>");
        let request = format!("<req-{c}@example.org>");
        raws.push(mail(
            &from,
            &format!("Request {c}"),
            &request,
            "",
            "Please help.\r\n",
        ));
        let reply_to = format!("In-Reply-To: {request}\r\nReferences: {request}\r\n");
        raws.push(mail(
            &from,
            &format!("Re: Request {c}"),
            &format!("<fu1-{c}@example.org>"),
            &reply_to,
            &format!("Thanks.\r\nScore: {}\r\n", c % 5 + 1),
        ));
        raws.push(mail(
            "News <news@lists.example>",
            &format!("Newsletter {c}"),
            &format!("<news-{c}@lists.example>"),
            "List-Id: <news.lists.example>\r\n",
            "Our news.\r\n",
        ));
        let score = if c % 4 == 0 { "lots" } else { "5" };
        raws.push(mail(
            &from,
            &format!("Re: Request {c}"),
            &format!("<fu2-{c}@example.org>"),
            &reply_to,
            &format!("Once more.\r\nScore: {score}\r\n"),
        ));
    }
    raws
}

fn mail(from: &str, subject: &str, id: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@acme.example\r\nSubject: {subject}\r\nMessage-ID: {id}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n{extra}\r\n{body}"
    )
    .into_bytes()
}

/// What the rules imply for `mailbox(conversations)`.
#[derive(Debug, PartialEq, Eq)]
struct Effects {
    messages: i64,
    failed: i64,
    tasks: i64,
    comments: i64,
    analytics: i64,
    outbox: i64,
}

impl Effects {
    fn expected(conversations: usize) -> Effects {
        let c = conversations as i64;
        let bad = (0..conversations).filter(|c| c % 4 == 0).count() as i64;
        Effects {
            messages: 4 * c,
            failed: bad,
            tasks: c,
            comments: 2 * c - bad,
            analytics: 2 * c - bad,
            outbox: c,
        }
    }
}

// ---- the setup ----------------------------------------------------------------------------

/// A config directory for the daemon: mailrules.toml, rules/, the store.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new(dovecot: &Dovecot, extra: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/10-faults.toml"), RULES).unwrap();
        let config = format!(
            "store = \"mailrules.db\"\nrules = \"rules\"\n{extra}\n\n[[mailbox]]\n\
             name = \"support\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             user = \"{USER}\"\npassword_file = \"{}\"\nbatch_size = 25\n",
            dovecot.port,
            dovecot.password_file().display()
        );
        std::fs::write(dir.path().join("mailrules.toml"), config).unwrap();
        Workdir { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("mailrules.toml")
    }

    fn store_path(&self) -> PathBuf {
        self.dir.path().join("mailrules.db")
    }

    fn store(&self) -> rusqlite::Connection {
        let store = rusqlite::Connection::open_with_flags(
            self.store_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        store.busy_timeout(Duration::from_secs(10)).unwrap();
        store
    }

    fn count(&self, sql: &str) -> i64 {
        self.store().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Messages recorded in the store (0 before the store exists).
    fn recorded(&self) -> i64 {
        if !self.store_path().exists() {
            return 0;
        }
        self.store()
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap_or(0)
    }

    /// Waits until one more message is recorded, or all `total` are (only acknowledgements
    /// may be left then).
    async fn wait_for_progress(&self, total: i64) {
        let at_least = (self.recorded() + 1).min(total);
        wait_until(DRAIN, "some progress", || {
            let done = self.recorded();
            async move { done >= at_least }
        })
        .await;
    }

    /// Message-IDs (without <>) of every message the store recorded.
    fn committed_message_ids(&self) -> std::collections::HashSet<String> {
        let store = self.store();
        let mut query = store.prepare("SELECT message_id FROM messages").unwrap();
        let ids = query
            .query_map([], |r| r.get::<_, Option<String>>(0))
            .unwrap()
            .filter_map(|id| id.unwrap())
            .map(|id| id.trim_matches(['<', '>']).to_string())
            .collect();
        ids
    }

    fn effects(&self) -> Effects {
        Effects {
            messages: self.count("SELECT COUNT(*) FROM messages"),
            failed: self.count("SELECT COUNT(*) FROM messages WHERE status = 'failed'"),
            tasks: self.count("SELECT COUNT(*) FROM tasks"),
            comments: self.count("SELECT COUNT(*) FROM comments"),
            analytics: self.count("SELECT COUNT(*) FROM analytics_rows"),
            outbox: self.count("SELECT COUNT(*) FROM outbox"),
        }
    }

    /// Nothing applied twice: one record per key, one task per request, one comment per
    /// follow-up, one reply per task.
    fn assert_no_duplicates(&self) {
        let dup = |sql: &str| self.count(sql);
        assert_eq!(
            dup("SELECT COUNT(*) - COUNT(DISTINCT key) FROM messages"),
            0
        );
        assert_eq!(dup("SELECT COUNT(*) - COUNT(DISTINCT title) FROM tasks"), 0);
        assert_eq!(
            dup("SELECT COUNT(*) - COUNT(DISTINCT task_id) FROM outbox"),
            0,
            "one reply per task"
        );
        assert_eq!(
            dup("SELECT COUNT(*) FROM (SELECT task_id FROM comments GROUP BY task_id HAVING COUNT(*) > 2)"),
            0,
            "at most two follow-up comments per task"
        );
    }
}

/// The `[smtp]` table for `server`; retries come quickly, for a test.
fn smtp_table(server: &SmtpServer) -> String {
    format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         from = \"Поддержка ACME <support@acme.example>\"\n",
        server.port
    )
}

/// Every reply the SMTP server got is one the store queued, and none came twice.
fn assert_each_reply_delivered_once(server: &SmtpServer, work: &Workdir) {
    let delivered: Vec<String> = server
        .messages()
        .iter()
        .map(|raw| header(raw, "Message-ID").unwrap())
        .collect();
    let distinct: std::collections::HashSet<&String> = delivered.iter().collect();
    assert_eq!(
        distinct.len(),
        delivered.len(),
        "a reply was delivered twice"
    );
    assert_eq!(delivered.len() as i64, work.effects().outbox);
    assert_eq!(
        work.count("SELECT COUNT(*) FROM outbox WHERE status = 'sent'"),
        work.effects().outbox
    );
}

/// A private Dovecot whose INBOX holds `mailbox(conversations)`.
async fn dovecot_with_mail(conversations: usize) -> Dovecot {
    let dovecot = Dovecot::start();
    fill_inbox(&dovecot, &mailbox(conversations)).await;
    dovecot
}

/// Waits until INBOX is empty, then checks that every message is where it belongs
/// ([`assert_acknowledged`]).
async fn wait_until_acknowledged(dovecot: &Dovecot, conversations: usize, copies_allowed: bool) {
    let expected = Effects::expected(conversations);
    let processed = (expected.messages - expected.failed) as usize;
    wait_until(DRAIN, "every message acknowledged", || async {
        dovecot.count("INBOX").await == 0
            && dovecot.count("Processed").await >= processed
            && dovecot.count("Failed").await >= expected.failed as usize
    })
    .await;
    assert_acknowledged(dovecot, conversations, copies_allowed).await;
}

/// SIGTERM: the daemon finishes what it holds and exits 0.
fn terminate_cleanly(daemon: &mut Daemon) {
    assert!(
        daemon.terminate(WAIT).success(),
        "{}",
        trouble(&daemon.log())
    );
}

/// Every message is in the folder its outcome sends it to: the applied ones in Processed,
/// the failed ones in Failed, each by its Message-ID. With `copies_allowed`, a folder may hold
/// a message twice: when the server dies inside a MOVE (Dovecot copies, then expunges), the
/// message is in both folders, and acknowledging it again after the reconnect copies it again.
/// Its effects still happen once (the store is checked separately).
async fn assert_acknowledged(dovecot: &Dovecot, conversations: usize, copies_allowed: bool) {
    let expected = Effects::expected(conversations);
    assert_eq!(dovecot.count("INBOX").await, 0);
    for (folder, count) in [
        ("Processed", expected.messages - expected.failed),
        ("Failed", expected.failed),
    ] {
        let ids = dovecot.message_ids(folder).await;
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(
            distinct.len() as i64,
            count,
            "distinct messages in {folder}"
        );
        if !copies_allowed {
            assert_eq!(ids.len(), distinct.len(), "a message twice in {folder}");
        }
    }
}

/// Runs `test`, failing it if it takes longer than [`TEST_LIMIT`]: a hang must fail, not
/// block the test run.
async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    let started = std::time::Instant::now();
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .unwrap_or_else(|_| panic!("the fault test did not finish within {TEST_LIMIT:?}"));
    let name = std::thread::current().name().unwrap_or("").to_string();
    eprintln!("{name} took {:?}", started.elapsed());
}

fn logs_of(daemons: &[String]) -> String {
    daemons
        .iter()
        .map(|log| trouble(log))
        .collect::<Vec<_>>()
        .join("\n---- next run ----\n")
}

// ---- the tests ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_applies_every_message_exactly_once() {
    bounded(async {
        const CONVERSATIONS: usize = 750;
        const KILLS: usize = 15;
        let mut rng = Rng::from_env_or_clock();
        let started = std::time::Instant::now();
        let dovecot = dovecot_with_mail(CONVERSATIONS).await;
        eprintln!("appended in {:?}", started.elapsed());
        let work = Workdir::new(&dovecot, "");
        let total = Effects::expected(CONVERSATIONS).messages;
        let mut logs = Vec::new();
        let mut kills = 0;
        while kills < KILLS {
            let mut daemon = Daemon::start(&work.config());
            // Kill it at a random moment, but only once it has done some work since the
            // last start and reached its share of the mailbox, so that the kills spread
            // over all of it.
            let share = total * (kills as i64 + 1) / (KILLS as i64 + 2);
            work.wait_for_progress(total).await;
            wait_until(DRAIN, "the next share of the mailbox", || {
                let done = work.recorded();
                async move { done >= share }
            })
            .await;
            tokio::time::sleep(rng.millis(0, 250)).await;
            if dovecot.count("INBOX").await == 0 {
                logs.push(daemon.log());
                break; // the mailbox is done; kill no more
            }
            daemon.kill();
            kills += 1;
            eprintln!(
                "kill {kills} at {} of {total} recorded ({:?})",
                work.recorded(),
                started.elapsed()
            );
            logs.push(daemon.log());
        }
        assert!(
            kills >= 10,
            "only {kills} kills landed before the mailbox was done; make it bigger"
        );
        let mut daemon = Daemon::start(&work.config());
        wait_until_acknowledged(&dovecot, CONVERSATIONS, false).await;
        terminate_cleanly(&mut daemon);
        logs.push(daemon.log());

        assert_eq!(
            work.effects(),
            Effects::expected(CONVERSATIONS),
            "logs:\n{}",
            logs_of(&logs)
        );
        work.assert_no_duplicates();
        assert_eq!(dovecot.count("INBOX").await, 0);
        let late = logs_of(&logs)
            .matches("processed before the last stop but not acknowledged")
            .count();
        eprintln!("{late} restart(s) acknowledged mail committed before the kill");
        eprintln!("done in {:?}", started.elapsed());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_restarted_mid_run_loses_and_repeats_nothing() {
    bounded(async {
        const CONVERSATIONS: usize = 750;
        const OUTAGES: usize = 3;
        let mut rng = Rng::from_env_or_clock();
        let mut dovecot = dovecot_with_mail(CONVERSATIONS).await;
        let work = Workdir::new(&dovecot, "");
        let mut daemon = Daemon::start(&work.config());
        let mut outages = 0;
        while outages < OUTAGES {
            work.wait_for_progress(Effects::expected(CONVERSATIONS).messages)
                .await;
            tokio::time::sleep(rng.millis(0, 250)).await;
            if dovecot.count("INBOX").await == 0 {
                break;
            }
            tokio::task::block_in_place(|| stop_dropping_clients(&mut dovecot));
            outages += 1;
            let recorded = work.recorded();
            // Down for a while: the daemon retries with backoff, the store stays as it was.
            tokio::time::sleep(rng.millis(500, 3000)).await;
            assert!(daemon.is_running(), "{}", trouble(&daemon.log()));
            tokio::task::block_in_place(|| dovecot.start_again());
            eprintln!("outage {outages}: {recorded} recorded when Dovecot stopped");
        }
        assert_eq!(outages, OUTAGES, "the mailbox was done before every outage");
        wait_until_acknowledged(&dovecot, CONVERSATIONS, true).await;
        terminate_cleanly(&mut daemon);

        let log = trouble(&daemon.log());
        assert_eq!(work.effects(), Effects::expected(CONVERSATIONS), "{log}");
        work.assert_no_duplicates();
        // One warning when each outage starts and one line when it ends, not one per retry.
        assert_eq!(
            daemon.log_lines_with("reconnecting with backoff"),
            OUTAGES,
            "{log}"
        );
        assert_eq!(daemon.log_lines_with("connected again"), OUTAGES, "{log}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_acknowledging_until_the_store_can_write_again() {
    bounded(async {
        const CONVERSATIONS: usize = 500;
        const STORE_FAILURE: &str = "nothing was committed or acknowledged";
        let dovecot = dovecot_with_mail(CONVERSATIONS).await;
        let smtp = SmtpServer::start();
        let work = Workdir::new(&dovecot, &smtp_table(&smtp));
        let mut daemon = Daemon::start(&work.config());
        wait_until(DRAIN, "the first batches committed", || {
            let done = work.recorded();
            async move { done >= 100 }
        })
        .await;

        // No write to any file may grow it any more: the disk is full.
        daemon.limit_file_size(0);
        wait_until(WAIT, "the store failure in the log", || {
            let seen = daemon.log_lines_with(STORE_FAILURE);
            async move { seen >= 1 }
        })
        .await;
        let recorded = work.recorded();
        let acknowledged = dovecot.message_ids("Processed").await;
        // Several retries with backoff (1 s, 2 s, 4 s, ...) while the disk stays full.
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert!(daemon.is_running(), "{}", trouble(&daemon.log()));
        assert_eq!(work.recorded(), recorded, "nothing committed while full");
        assert_eq!(
            dovecot.message_ids("Processed").await,
            acknowledged,
            "nothing acknowledged while the store cannot commit"
        );
        assert!(dovecot.count("INBOX").await > 0);
        let committed = work.committed_message_ids();
        assert!(
            acknowledged.iter().all(|id| committed.contains(id)),
            "only committed messages are acknowledged"
        );
        let log = trouble(&daemon.log());
        assert_eq!(
            daemon.log_lines_with(STORE_FAILURE),
            1,
            "once, not per retry:\n{log}"
        );

        // Space again: it resumes by itself and finishes the mailbox.
        daemon.unlimit_file_size();
        wait_until_acknowledged(&dovecot, CONVERSATIONS, false).await;
        terminate_cleanly(&mut daemon);
        let log = trouble(&daemon.log());
        assert_eq!(work.effects(), Effects::expected(CONVERSATIONS), "{log}");
        work.assert_no_duplicates();
        assert_eq!(daemon.log_lines_with(STORE_FAILURE), 1, "{log}");
        assert_eq!(
            daemon.log_lines_with("the store accepts writes again; processing resumed"),
            1,
            "{log}"
        );
        // Replies sent while the store could not record it are recorded, not sent again;
        // those not sent yet go out after a restart.
        let mut daemon = Daemon::start(&work.config());
        wait_until(DRAIN, "every reply sent and recorded", || {
            let sent = work.count("SELECT COUNT(*) FROM outbox WHERE status = 'sent'");
            async move { sent == Effects::expected(CONVERSATIONS).outbox }
        })
        .await;
        terminate_cleanly(&mut daemon);
        assert_each_reply_delivered_once(&smtp, &work);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_refused_for_a_while_are_retried_with_backoff_and_delivered_once() {
    bounded(async {
        const CONVERSATIONS: usize = 100;
        let dovecot = dovecot_with_mail(CONVERSATIONS).await;
        // Every reply's first attempt is refused with a temporary error; then all is well.
        let smtp = SmtpServer::start_with(
            ServerOptions {
                reject: Some("451 4.3.0 Mail server temporarily rejected message".into()),
                reject_times: Some(CONVERSATIONS as u32),
                ..ServerOptions::default()
            },
            None,
        );
        let work = Workdir::new(&dovecot, &smtp_table(&smtp));
        let mut daemon = Daemon::start(&work.config());
        wait_until_acknowledged(&dovecot, CONVERSATIONS, false).await;
        wait_until(WAIT, "every reply refused once", || {
            let refused = work.count("SELECT COUNT(*) FROM outbox WHERE attempts = 1");
            async move { refused == CONVERSATIONS as i64 }
        })
        .await;
        assert!(smtp.messages().is_empty(), "refused mail was not delivered");
        // The first retry comes a minute after the refusal (then 2, 4, ... minutes).
        wait_until(DRAIN, "every reply delivered", || {
            let sent = smtp.messages().len();
            async move { sent == CONVERSATIONS }
        })
        .await;
        wait_until(WAIT, "every reply recorded as sent", || {
            let sent = work.count("SELECT COUNT(*) FROM outbox WHERE status = 'sent'");
            async move { sent == CONVERSATIONS as i64 }
        })
        .await;
        terminate_cleanly(&mut daemon);

        assert_eq!(work.effects(), Effects::expected(CONVERSATIONS));
        assert_each_reply_delivered_once(&smtp, &work);
        let store = work.store();
        let mut rows = store
            .prepare("SELECT created_at, sent_at, attempts, reason FROM outbox")
            .unwrap();
        let rows: Vec<(String, String, i64, String)> = rows
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (created, sent, attempts, reason) in rows {
            let waited = parse_time(&sent) - parse_time(&created);
            assert!(
                waited >= chrono::Duration::seconds(59),
                "sent {waited} after it was queued: the retry did not wait"
            );
            assert_eq!(attempts, 1, "one refused attempt, then delivered");
            assert!(reason.starts_with("451 4.3.0"), "{reason}");
        }
    })
    .await;
}

fn parse_time(text: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_while_the_store_is_locked_is_recorded_later_not_sent_again() {
    bounded(async {
        let smtp = SmtpServer::start();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailrules.db");
        let store = mailrules::store::Store::open(&path).unwrap();
        let queue = rusqlite::Connection::open(&path).unwrap();
        queue
            .execute(
                "INSERT INTO outbox (kind, recipient, subject, body, our_message_id, status, \
                 created_at) VALUES ('reply', 'ivan@client.example', 'Re: Заказ', 'Принято.', \
                 'locked-1@acme.example', 'queued', '2026-11-23T10:00:00Z')",
                [],
            )
            .unwrap();
        // Another process holds the write lock (a backup, a long query) longer than the
        // store's 5 s busy timeout: the mail goes out, marking it sent fails.
        queue.execute_batch("BEGIN IMMEDIATE").unwrap();
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let shutdown = std::sync::Arc::new(tokio::sync::Notify::new());
        let worker = tokio::spawn(mailrules::outbox::run_outbox(
            store,
            smtp_support::smtp_config(smtp.port, mailrules::config::TlsMode::None),
            wake.clone(),
            {
                let shutdown = shutdown.clone();
                async move { shutdown.notified().await }
            },
        ));
        wait_until(WAIT, "the reply at the SMTP server", || {
            let sent = smtp.messages().len();
            async move { sent == 1 }
        })
        .await;
        let status = || -> String {
            let store = rusqlite::Connection::open(&path).unwrap();
            store
                .query_row("SELECT status FROM outbox", [], |r| r.get(0))
                .unwrap()
        };
        // Past the busy timeout the round ends with the store error.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(status(), "queued");

        queue.execute_batch("COMMIT").unwrap();
        // Rounds come on every wake: each must record the sent mail, none send it again.
        for _ in 0..3 {
            wake.notify_one();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        wait_until(WAIT, "the reply recorded as sent", || {
            let now = status();
            async move { now == "sent" }
        })
        .await;
        assert_eq!(smtp.messages().len(), 1, "sent exactly once");
        shutdown.notify_one();
        tokio::time::timeout(WAIT, worker)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    })
    .await;
}
