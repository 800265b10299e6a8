//! Secrets and private files, through the binary: with distinctive IMAP and SMTP passwords
//! (from `password_file` and `password_env`), a refused login, a refused connection and a
//! failed SMTP delivery are reported at the most verbose log level, and every command's output
//! (`check`, `explain`, `ingest`, `failed`, `outbox`, `task`, with and without `--json`) and the
//! store are searched for the passwords. The store and its WAL and shared-memory files are
//! created owner-only even under a permissive umask.

use crate::support::smtp as smtp_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::support::dovecot::{wait_until, Dovecot, USER};
use smtp_support::{free_port, SmtpServer};

/// Wrong for Dovecot, so the login is refused with it in hand.
const IMAP_SECRET: &str = "imap-Secret-7f3a9c-wrong";
const CLOSED_PORT_SECRET: &str = "env-Secret-c0ffee-unused";
const SMTP_SECRET: &str = "smtp-Secret-51d2e8-never";

const RULES: &str = r#"
[[rule]]
name = "acknowledge"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"
[[rule.do]]
action = "reply"
subject = "Re: {subject}"
text = "Принято: {task}."
"#;

struct Setup {
    dir: tempfile::TempDir,
    _dovecot: Dovecot,
    _smtp: SmtpServer,
}

impl Setup {
    fn new() -> Setup {
        let dovecot = Dovecot::start();
        let smtp = SmtpServer::start();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/10-test.toml"), RULES).unwrap();
        std::fs::write(dir.path().join("imap.pass"), format!("{IMAP_SECRET}\n")).unwrap();
        let smtp_port = smtp.config(mailrules::config::TlsMode::None).port;
        let config = format!(
            "store = \"mailrules.db\"\nrules = \"rules\"\n[staff]\ndomains = [\"acme.example\"]\n\n\
             [[mailbox]]\nname = \"support\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             user = \"{USER}\"\npassword_file = \"imap.pass\"\n\n\
             [[mailbox]]\nname = \"sales\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             user = \"sales@acme.example\"\npassword_env = \"TRUST_TEST_IMAP_PASSWORD\"\n\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\n\
             user = \"support@acme.example\"\npassword_env = \"TRUST_TEST_SMTP_PASSWORD\"\n\
             from = \"ACME <support@acme.example>\"\nmax_attempts = 1\ntimeout = \"5s\"\n",
            dovecot.port,
            free_port(),
        );
        std::fs::write(dir.path().join("mailrules.toml"), config).unwrap();
        Setup {
            dir,
            _dovecot: dovecot,
            _smtp: smtp,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `mailrules ARGS` as a command, with the secrets in its environment and every log on.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailrules"));
        command
            .arg("--config")
            .arg(self.path("mailrules.toml"))
            .args(args)
            .env("MAILRULES_LOG", "trace")
            .env("RUST_LOG", "trace")
            .env("TRUST_TEST_IMAP_PASSWORD", CLOSED_PORT_SECRET)
            .env("TRUST_TEST_SMTP_PASSWORD", SMTP_SECRET)
            .env_remove("MAILRULES_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null());
        command
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [IMAP_SECRET, CLOSED_PORT_SECRET, SMTP_SECRET] {
        assert!(
            !text.contains(secret),
            "{what} shows the password {secret:?}:\n{text}"
        );
    }
}

fn text_of(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The daemon under `umask 000`, killed on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_appear_in_no_output_log_or_store_and_the_store_is_private() {
    let setup = Setup::new();
    let log = setup.path("daemon.log");
    let run = setup.command(&["run"]);
    let program = run.get_program().to_owned();
    let args: Vec<_> = run.get_args().map(|a| a.to_owned()).collect();
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(program)
        .args(args)
        .envs(run.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(setup.path("daemon.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut daemon = Daemon(shell.spawn().unwrap());
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(
        Duration::from_secs(60),
        "the refused login and the refused connection in the daemon's log",
        || {
            let text = read_log();
            async move {
                text.contains("rejected the login") && text.to_lowercase().contains("refused")
            }
        },
    )
    .await;
    for name in ["mailrules.db", "mailrules.db-wal", "mailrules.db-shm"] {
        assert_eq!(
            mode(&setup.path(name)),
            0o600,
            "{name} under umask 000 while the daemon runs"
        );
    }
    let status = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = tokio::task::spawn_blocking(move || {
        let status = daemon.0.wait();
        (daemon, status)
    });
    let (_daemon, _status) = tokio::time::timeout(Duration::from_secs(60), exited)
        .await
        .expect("the daemon did not stop on SIGTERM")
        .unwrap();
    let daemon_text = read_log() + &std::fs::read_to_string(setup.path("daemon.out")).unwrap();
    assert!(
        daemon_text.contains("TRACE") || daemon_text.contains("DEBUG"),
        "the log level did not reach debug:\n{daemon_text}"
    );
    assert_no_secret("the daemon's log", &daemon_text);

    // A message whose reply the SMTP server cannot take with our login.
    let message = setup.path("m.eml");
    std::fs::write(
        &message,
        "From: Ivan <ivan@client.example>\r\nTo: support@acme.example\r\nSubject: Help\r\n\
         Message-ID: <m1@client.example>\r\n\r\nHelp me.\r\n",
    )
    .unwrap();
    let message = message.to_str().unwrap();
    let bad = setup.path("bad.eml");
    std::fs::write(&bad, vec![0xffu8; 64]).unwrap();
    let bad = bad.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["check"],
        vec!["explain", message],
        vec!["explain", message, "--json"],
        vec!["ingest", message, "--json"],
        vec!["ingest", bad],
        vec!["outbox", "send"],
        vec!["outbox"],
        vec!["outbox", "--json"],
        vec!["failed"],
        vec!["failed", "--json"],
        vec!["retry", "--json"],
        vec!["task", "list", "--json"],
        vec!["task", "show", "1", "--json"],
        vec!["schedules", "--json"],
    ];
    let mut outbox_send = String::new();
    for args in &commands {
        let out = setup.output(args);
        let text = text_of(&out);
        assert_no_secret(&format!("mailrules {args:?}"), &text);
        if args == &["outbox", "send"] {
            outbox_send = text;
        }
    }
    // The delivery was really attempted with the password in hand, and failed.
    let outbox = text_of(&setup.output(&["outbox", "--json"]));
    assert!(
        outbox.contains("\"failed\"") || outbox.contains("\"queued\""),
        "{outbox}"
    );
    assert!(!outbox.contains("\"sent\""), "{outbox}\n{outbox_send}");

    let store = std::fs::read(setup.path("mailrules.db")).unwrap();
    for secret in [IMAP_SECRET, CLOSED_PORT_SECRET, SMTP_SECRET] {
        assert!(
            !store.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the store holds {secret:?}"
        );
    }
}
