//! `mailrules run` as users run it: the real binary, pipeline and store against a private
//! Dovecot. SIGKILL mid-batch, SIGTERM, systemd notifications and rules edited while running.

use crate::support::smtp as smtp_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::daemon_process::Daemon;
use crate::support::dovecot::{message, wait_until, Dovecot, USER};
use crate::support::systemd::FakeSystemd;
use smtp_support::SmtpServer;

const WAIT: Duration = Duration::from_secs(30);
/// Hundreds of messages through a debug build on a shared machine.
const LONG_WAIT: Duration = Duration::from_secs(180);

const RULES_FIRST: &str = r#"
[[rule]]
name = "first"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"
status = "Первая"
"#;

const RULES_BROKEN: &str = r#"
[[rule]]
name = "first"
[rule.when]
thread = "new"
[[rule.do]]
action = "frobnicate"
"#;

const RULES_SECOND: &str = r#"
[[rule]]
name = "second"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"
status = "Вторая"
"#;

const RULES_WITH_REPLY: &str = r#"
[[rule]]
name = "acknowledge"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"
[[rule.do]]
action = "reply"
subject = "Re: {subject}"
text = "Ваша заявка принята, номер {task}."
"#;

/// A config directory: mailrules.toml, rules/10-test.toml, the store once it runs.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new(dovecot: &Dovecot, mailbox_extra: &str, rules: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/10-test.toml"), rules).unwrap();
        let config = format!(
            "store = \"mailrules.db\"\nrules = \"rules\"\n\n[[mailbox]]\nname = \"support\"\n\
             host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nuser = \"{USER}\"\n\
             password_file = \"{}\"\n{mailbox_extra}\n",
            dovecot.port,
            dovecot.password_file().display()
        );
        std::fs::write(dir.path().join("mailrules.toml"), config).unwrap();
        Workdir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> PathBuf {
        self.path().join("mailrules.toml")
    }

    fn write_rules(&self, text: &str) {
        std::fs::write(self.path().join("rules/10-test.toml"), text).unwrap();
    }

    fn store(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.path().join("mailrules.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
    }

    /// (rows, distinct keys, applied rows) of the processed-messages table.
    fn message_counts(&self) -> (i64, i64, i64) {
        self.store()
            .query_row(
                "SELECT COUNT(*), COUNT(DISTINCT key), \
                 COALESCE(SUM(status = 'applied'), 0) FROM messages",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    }

    fn task_status(&self, title: &str) -> Option<String> {
        self.store()
            .query_row("SELECT status FROM tasks WHERE title = ?1", [title], |r| {
                r.get(0)
            })
            .ok()
    }
}

async fn wait_for_count(dovecot: &Dovecot, folder: &str, n: usize, limit: Duration) {
    wait_until(limit, &format!("{n} message(s) in {folder}"), || async {
        dovecot.count(folder).await == n
    })
    .await;
}

fn bulk(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (1..=n)
        .map(|i| {
            message(
                &format!("{prefix}-{i}"),
                &format!("{prefix} request {i}"),
                "",
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_then_restart_processes_every_message_exactly_once() {
    const N: usize = 300;
    let dovecot = Dovecot::start();
    dovecot.append_all("INBOX", &bulk("kill", N)).await;
    let work = Workdir::new(&dovecot, "batch_size = 20", RULES_FIRST);

    let mut daemon = Daemon::start(&work.config());
    wait_until(WAIT, "the first batch to be acknowledged", || async {
        dovecot.count("Processed").await > 0
    })
    .await;
    daemon.kill(); // SIGKILL: no chance to finish anything
    let (committed, _, _) = work.message_counts();
    assert!(
        (committed as usize) < N,
        "the kill should land before the end ({committed} of {N} committed)"
    );

    let mut daemon = Daemon::start(&work.config());
    wait_for_count(&dovecot, "Processed", N, LONG_WAIT).await;
    daemon.signal("TERM");
    assert!(daemon.wait_exit(WAIT).success(), "{}", daemon.log());

    assert_eq!(dovecot.count("INBOX").await, 0);
    assert_eq!(dovecot.count("Failed").await, 0);
    let (rows, keys, applied) = work.message_counts();
    assert_eq!((rows, keys, applied), (N as i64, N as i64, N as i64));
    let (tasks, titles): (i64, i64) = work
        .store()
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT title) FROM tasks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (tasks, titles),
        (N as i64, N as i64),
        "one task per message, none twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_0_promptly_with_everything_committed_also_acknowledged() {
    const N: usize = 200;
    let dovecot = Dovecot::start();
    dovecot.append_all("INBOX", &bulk("term", N)).await;
    let work = Workdir::new(&dovecot, "batch_size = 10", RULES_FIRST);
    let systemd = FakeSystemd::bind(&work.path().join("notify.sock"));

    let mut daemon = Daemon::start_with_env(&work.config(), &[("NOTIFY_SOCKET", systemd.path())]);
    systemd.wait_for("READY=1", WAIT).await;
    wait_until(WAIT, "some mail to be processed", || async {
        dovecot.count("Processed").await > 0
    })
    .await;
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(10));
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        daemon.log()
    );

    // Nothing half-done: what was committed was acknowledged, and nothing else was.
    let (rows, keys, applied) = work.message_counts();
    assert_eq!(rows, keys);
    assert_eq!(rows, applied);
    assert_eq!(dovecot.count("Processed").await, rows as usize);
    assert_eq!(dovecot.count("INBOX").await, N - rows as usize);

    systemd.wait_for("STOPPING=1", WAIT).await;
    let heard = systemd.heard();
    assert!(
        heard.iter().any(|h| h.starts_with("STATUS=support idle")),
        "{heard:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_rule_edit_while_running_keeps_the_old_rules() {
    let dovecot = Dovecot::start();
    let work = Workdir::new(&dovecot, "", RULES_FIRST);
    let daemon = Daemon::start(&work.config());
    daemon.wait_for_log("connected to", 1, WAIT).await;

    dovecot.append("INBOX", &message("one", "one", "")).await;
    wait_for_count(&dovecot, "Processed", 1, WAIT).await;
    assert_eq!(work.task_status("one").as_deref(), Some("Первая"));

    // A broken edit: every error reported with file:line:col, the old rules stay.
    work.write_rules(RULES_BROKEN);
    daemon
        .wait_for_log("still using the rules loaded before", 1, WAIT)
        .await;
    let log = daemon.log();
    let rules_file = work.path().join("rules/10-test.toml");
    assert!(
        log.contains(&format!("{}:7:", rules_file.display())),
        "the error names file and line: {log}"
    );
    dovecot.append("INBOX", &message("two", "two", "")).await;
    wait_for_count(&dovecot, "Processed", 2, WAIT).await;
    assert_eq!(work.task_status("two").as_deref(), Some("Первая"));

    // A good edit replaces them.
    work.write_rules(RULES_SECOND);
    daemon.wait_for_log("rules reloaded", 1, WAIT).await;
    dovecot
        .append("INBOX", &message("three", "three", ""))
        .await;
    wait_for_count(&dovecot, "Processed", 3, WAIT).await;
    assert_eq!(work.task_status("three").as_deref(), Some("Вторая"));

    // SIGHUP reloads too (systemctl reload).
    daemon.signal("HUP");
    daemon.wait_for_log("rules reloaded", 2, WAIT).await;
    let mut daemon = daemon;
    daemon.signal("TERM");
    assert!(daemon.wait_exit(WAIT).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_rules_at_start_exit_1_naming_every_error() {
    let dovecot = Dovecot::start();
    let work = Workdir::new(&dovecot, "", RULES_BROKEN);
    let mut daemon = Daemon::start(&work.config());
    let status = daemon.wait_exit(WAIT);
    assert_eq!(status.code(), Some(1), "{}", daemon.log());
    let log = daemon.log();
    let rules_file = work.path().join("rules/10-test.toml");
    assert!(
        log.contains(&format!("{}:7:", rules_file.display())),
        "{log}"
    );
    // Nothing was touched on the server.
    assert_eq!(dovecot.count("Processed").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_automatic_reply_goes_out_through_smtp_while_running() {
    let dovecot = Dovecot::start();
    let smtp = SmtpServer::start();
    let work = Workdir::new(&dovecot, "", RULES_WITH_REPLY);
    let mut config = std::fs::read_to_string(work.path().join("mailrules.toml")).unwrap();
    config.push_str(&format!(
        "\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         from = \"Поддержка ACME <support@acme.example>\"\n",
        smtp.port
    ));
    std::fs::write(work.path().join("mailrules.toml"), config).unwrap();
    let mut daemon = Daemon::start(&work.config());
    daemon.wait_for_log("connected to", 1, WAIT).await;

    dovecot
        .append("INBOX", &message("printer", "Не печатает принтер", ""))
        .await;
    wait_until(WAIT, "the reply at the SMTP server", || {
        let sent = smtp.messages().len();
        async move { sent == 1 }
    })
    .await;
    let reply = String::from_utf8_lossy(&smtp.messages()[0]).to_string();
    assert!(
        reply.contains("In-Reply-To: <printer@example.org>"),
        "{reply}"
    );
    assert!(reply.contains("client@example.org"), "{reply}");
    let status: String = work
        .store()
        .query_row("SELECT status FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(status, "sent");
    daemon.signal("TERM");
    assert!(daemon.wait_exit(WAIT).success(), "{}", daemon.log());
}

const RULES_WITH_SCHEDULE: &str = r#"
[[rule]]
name = "new-request"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"
status = "Новая"

[[schedule]]
name = "stale-new"
every = "1s"
[schedule.when]
status = "Новая"
in_status_for = "1s"
[[schedule.do]]
action = "comment"
text = "Задача #{task} ждёт разбора."
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_fire_while_running_once_per_task() {
    let dovecot = Dovecot::start();
    let work = Workdir::new(&dovecot, "", RULES_WITH_SCHEDULE);
    let mut daemon = Daemon::start(&work.config());
    daemon.wait_for_log("connected to", 1, WAIT).await;
    dovecot
        .append("INBOX", &message("stale", "Вопрос без ответа", ""))
        .await;
    let comments = || {
        work.store()
            .query_row(
                "SELECT COUNT(*) FROM comments WHERE text = 'Задача #1 ждёт разбора.'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0)
    };
    wait_until(WAIT, "the schedule's comment on task #1", || {
        let n = comments();
        async move { n == 1 }
    })
    .await;
    daemon
        .wait_for_log("schedule \"stale-new\" on task #1", 1, WAIT)
        .await;
    // It keeps running every second; staying in the state does not fire again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(comments(), 1, "{}", daemon.log());
    daemon.signal("TERM");
    assert!(daemon.wait_exit(WAIT).success(), "{}", daemon.log());
}

/// `mailrules check --online` with the given config: (exit code, stdout then stderr).
fn check_online(config: &Path) -> (Option<i32>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mailrules"))
        .arg("--config")
        .arg(config)
        .args(["check", "--online"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code(),
        format!("{}{stderr}", String::from_utf8_lossy(&output.stdout)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_online_logs_in_resolves_the_folders_and_shows_what_waits() {
    let dovecot = Dovecot::start_with_inbox_prefix();
    let smtp = SmtpServer::start();
    let work = Workdir::new(&dovecot, "", RULES_FIRST);
    let config = std::fs::read_to_string(work.config()).unwrap();
    let smtp_table = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"support@acme.example\"\n",
        smtp.port
    );
    std::fs::write(work.config(), format!("{config}\n{smtp_table}")).unwrap();
    let (code, out) = check_online(&work.config());
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ok: logged in; the server offers IDLE"),
        "{out}"
    );
    assert!(
        out.contains("personal prefix \"INBOX.\", delimiter \".\""),
        "{out}"
    );
    assert!(
        out.contains("on_success = \"move:Processed\" is folder \"INBOX.Processed\""),
        "{out}"
    );
    assert!(out.contains("smtp (127.0.0.1:"), "{out}");
    assert!(out.contains("ok: connected"), "{out}");

    // Committed but not moved: as a crash before the acknowledgement leaves it.
    dovecot.append("INBOX", &message("waiting", "Hi", "")).await;
    let mut daemon = Daemon::start(&work.config());
    wait_for_count(&dovecot, "INBOX.Processed", 1, WAIT).await;
    assert_eq!(daemon.terminate(WAIT).code(), Some(0), "{}", daemon.log());
    dovecot
        .append("INBOX", &message("waiting-2", "Hi", ""))
        .await;
    let store = work.store();
    let last_uid: i64 = store
        .query_row("SELECT last_uid FROM mailbox_state", [], |r| r.get(0))
        .unwrap();
    drop(store);
    let writable = rusqlite::Connection::open(work.path().join("mailrules.db")).unwrap();
    writable
        .execute("UPDATE mailbox_state SET last_uid = ?1", [last_uid + 1])
        .unwrap();
    drop(writable);
    let (code, out) = check_online(&work.config());
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("warning: 1 message(s) are processed (committed) but still in \"INBOX\""),
        "{out}"
    );

    // A wrong password: exit 1, the server's words, never the password.
    std::fs::write(dovecot.password_file(), "hunter2\n").unwrap();
    let (code, out) = check_online(&work.config());
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("error: the server rejected the login"),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "{out}");
}
