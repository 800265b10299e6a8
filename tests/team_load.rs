//! A person's changes while the daemon ingests mail: hundreds of `task set` and `task comment`
//! through the binary, racing `mailrules run` applying batches from a private Dovecot. Every
//! change must land whole (with the trigger it fires, in its transaction), none may be lost,
//! and no mail may be lost or applied twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::daemon_process::Daemon;
use crate::support::dovecot::{message, wait_until, Dovecot, USER};

const WAIT: Duration = Duration::from_secs(60);
/// Hundreds of messages and process starts through a debug build on a shared machine.
const LONG_WAIT: Duration = Duration::from_secs(300);
const ANNA: &str = "anna@acme.example";

/// Statuses declared; a trigger copies every status change into a field, so a change that
/// lands without its trigger (half-applied) shows as a field that disagrees with the status.
const RULES: &str = r#"
[[status]]
name = "Новая"
initial = true
[[status]]
name = "Нужно ответить клиенту"
[[status]]
name = "Ожидание ответа клиента"
[[status]]
name = "Завершенная"
closed = true

[[rule]]
name = "new"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"

[[trigger]]
name = "remember-status"
on = "status_changed"
[[trigger.do]]
action = "set"
fields = { "Последний статус" = "{new}" }
"#;

const STATUSES: [&str; 3] = [
    "Нужно ответить клиенту",
    "Ожидание ответа клиента",
    "Завершенная",
];

fn workdir(dovecot: &Dovecot) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/10-load.toml"), RULES).unwrap();
    let config = format!(
        "store = \"mailrules.db\"\nrules = \"rules\"\n\n[[mailbox]]\nname = \"support\"\n\
         host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nuser = \"{USER}\"\n\
         password_file = \"{}\"\nbatch_size = 20\n",
        dovecot.port,
        dovecot.password_file().display()
    );
    std::fs::write(dir.path().join("mailrules.toml"), config).unwrap();
    dir
}

fn mailrules(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mailrules"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("MAILRULES_CONFIG")
        .env("MAILRULES_USER", ANNA)
        .env("MAILRULES_LOG", "warn")
        .output()
        .unwrap()
}

fn json(config: &Path, args: &[&str]) -> Value {
    let out = mailrules(config, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn mail(prefix: &str, range: std::ops::RangeInclusive<usize>) -> Vec<Vec<u8>> {
    range
        .map(|i| message(&format!("{prefix}-{i}"), &format!("{prefix} {i}"), ""))
        .collect()
}

/// What the test asked of one task: its last status, and how many changes of each kind.
#[derive(Debug, Default)]
struct Asked {
    status: Option<&'static str>,
    status_changes: usize,
    comments: usize,
}

/// `rounds` manual changes spread over tasks 1..=tasks; what each task should show after.
fn work_the_queue(config: PathBuf, tasks: i64, rounds: usize) -> BTreeMap<i64, Asked> {
    let mut asked: BTreeMap<i64, Asked> = BTreeMap::new();
    for round in 0..rounds {
        let task = (round as i64 % tasks) + 1;
        let id = task.to_string();
        let entry = asked.entry(task).or_default();
        if round % 3 == 2 {
            let text = format!("заметка {round}");
            let out = mailrules(&config, &["task", "comment", &id, &text]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            entry.comments += 1;
        } else {
            // Each task cycles through the statuses: every set is a change.
            let status = STATUSES[entry.status_changes % STATUSES.len()];
            let out = mailrules(&config, &["task", "set", &id, "--status", status]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            entry.status = Some(status);
            entry.status_changes += 1;
        }
    }
    asked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_changes_while_the_daemon_ingests_are_neither_lost_nor_half_applied() {
    const FIRST: usize = 20;
    const MORE: usize = 300;
    const ROUNDS: usize = 300;
    let dovecot = Dovecot::start();
    dovecot.append_all("INBOX", &mail("first", 1..=FIRST)).await;
    let work = workdir(&dovecot);
    let config = work.path().join("mailrules.toml");
    let mut daemon = Daemon::start(&config);
    wait_until(WAIT, "the first tasks", || async {
        dovecot.count("Processed").await == FIRST
    })
    .await;

    // Mail keeps coming in while a person works the first tasks.
    let person = tokio::task::spawn_blocking({
        let config = config.clone();
        move || work_the_queue(config, FIRST as i64, ROUNDS)
    });
    for chunk in mail("more", FIRST + 1..=FIRST + MORE).chunks(20) {
        dovecot.append_all("INBOX", chunk).await;
    }
    let asked = person.await.unwrap();
    wait_until(LONG_WAIT, "all mail processed", || async {
        dovecot.count("Processed").await == FIRST + MORE
    })
    .await;
    daemon.signal("TERM");
    assert!(daemon.wait_exit(WAIT).success(), "{}", daemon.log());

    // No mail lost or applied twice.
    let list = json(&config, &["task", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), FIRST + MORE);
    assert_eq!(dovecot.count("INBOX").await, 0);
    assert_eq!(dovecot.count("Failed").await, 0);

    // Every manual change landed whole, with its trigger, credited to the person.
    for (task, asked) in &asked {
        let shown = json(&config, &["task", "show", &task.to_string(), "--json"]);
        let history = json(&config, &["task", "history", &task.to_string(), "--json"]);
        let events = history.as_array().unwrap();
        let count = |by: &str, kind: &str| {
            events
                .iter()
                .filter(|e| e["by"].as_str().unwrap().starts_with(by) && e["kind"] == kind)
                .count()
        };
        assert_eq!(count(ANNA, "status"), asked.status_changes, "task #{task}");
        assert_eq!(count(ANNA, "comment"), asked.comments, "task #{task}");
        assert_eq!(
            count("trigger:remember-status", "field"),
            asked.status_changes,
            "task #{task}: every status change fired the trigger once"
        );
        assert_eq!(shown["status"].as_str(), asked.status, "task #{task}");
        assert_eq!(
            shown["fields"]["Последний статус"].as_str(),
            asked.status,
            "task #{task}"
        );
        let comments = shown["comments"].as_array().unwrap().len();
        assert_eq!(comments, asked.comments, "task #{task}");
    }
    // The daemon's own tasks carry only what mail did.
    let last = json(
        &config,
        &["task", "history", &(FIRST + MORE).to_string(), "--json"],
    );
    assert!(last
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["by"] == "rule:new"));
}
