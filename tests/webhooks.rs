//! Webhook deliveries end to end through the built binary against a scripted local HTTP
//! receiver (`support::http_sink`): JSON bodies from a rule, a trigger and a schedule; retries
//! that reach the receiver's application exactly once (one Idempotency-Key, one 2xx); a 400
//! not retried; a hanging endpoint that holds up nothing else; a daemon killed between send
//! and record; signatures; secrets that stay out of logs, the store and `outbox`.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::support::daemon_process::Daemon;
use crate::support::http_sink::{HttpSink, Reply, Request};
use crate::support::workdir::Workdir;

const TOKEN: &str = "tok-3f9a1c-never-shown";
const SECRET: &str = "sig-7d2e44-never-shown";
/// Generous: the machine is shared; no test asserts how fast anything is.
const LIMIT: Duration = Duration::from_secs(90);

const RULES: &str = r#"
[[rule]]
name = "push"
[rule.when]
from = "*@client.example"
[[rule.do]]
action = "create_task"
status = "Open"
[[rule.do]]
action = "webhook"
to = "tracker"
body = { title = "{subject}", task = "{task}", from = { address = "{from}" }, tags = ["mail"], priority = 3, urgent = true }
"#;

/// A workdir whose rules push to `tracker` (and `other`, when given) on the receiver.
fn workdir(sink: &HttpSink, rules: &str, endpoints: &[(&str, &str)]) -> Workdir {
    let w = Workdir::with_rules(&[("push.toml", rules)]);
    let mut config = std::fs::read_to_string(&w.config).unwrap();
    for (name, extra) in endpoints {
        config.push_str(&format!(
            "\n[[webhook]]\nname = \"{name}\"\nurl = \"{}\"\nsecret_env = \"HOOK_SECRET\"\n\
             headers = {{ Authorization = \"Bearer {{env:HOOK_TOKEN}}\" }}\nbackoff = \"1s\"\n{extra}\n",
            sink.url(&format!("/{name}"))
        ));
    }
    std::fs::write(&w.config, config).unwrap();
    w
}

fn with_env(w: &Workdir, args: &[&str]) -> std::process::Output {
    w.command(args)
        .env("HOOK_TOKEN", TOKEN)
        .env("HOOK_SECRET", SECRET)
        .output()
        .unwrap()
}

fn start_daemon(w: &Workdir) -> Daemon {
    Daemon::start_with_env(
        &w.config,
        &[
            ("HOOK_TOKEN", Path::new(TOKEN)),
            ("HOOK_SECRET", Path::new(SECRET)),
        ],
    )
}

fn ingest_mail(w: &Workdir, n: u32, subject: &str) {
    let path = w.path(&format!("m{n}.eml"));
    std::fs::write(
        &path,
        format!(
            "From: Client <client@client.example>\r\nTo: support@acme.example\r\n\
             Subject: {subject}\r\nMessage-ID: <m{n}@client.example>\r\n\
             Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nWhere is my order?\r\n"
        ),
    )
    .unwrap();
    let result = w.ingest(&path);
    assert_eq!(result["processed"], 1, "{result:#}");
    assert_eq!(result["failed"], 0, "{result:#}");
}

fn webhook_rows(w: &Workdir) -> Vec<Value> {
    let mut rows: Vec<Value> = w
        .json(&["outbox"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "webhook")
        .cloned()
        .collect();
    rows.sort_by_key(|r| r["id"].as_i64());
    rows
}

/// Waits until the webhook row to `endpoint` has `status`; returns it.
fn wait_for_status(w: &Workdir, endpoint: &str, status: &str) -> Value {
    let start = Instant::now();
    loop {
        let rows = webhook_rows(w);
        if let Some(row) = rows
            .iter()
            .find(|r| r["recipient"] == endpoint && r["status"] == status)
        {
            return row.clone();
        }
        assert!(
            start.elapsed() < LIMIT,
            "no {status} delivery to {endpoint}: {rows:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signature_verifies(request: &Request) -> bool {
    let Some(hex) = request
        .header("x-mailrules-signature")
        .and_then(|s| s.strip_prefix("sha256="))
    else {
        return false;
    };
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&request.body);
    bytes.is_some_and(|b| mac.verify_slice(&b).is_ok())
}

fn body_json(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

#[test]
fn a_rule_a_trigger_and_a_schedule_each_push_their_json() {
    let sink = HttpSink::start();
    let rules = format!(
        r#"{RULES}
[[trigger]]
name = "done"
on = "status_changed"
[trigger.when]
status = "Done"
[[trigger.do]]
action = "webhook"
to = "tracker"
body = {{ event = "done", task = "{{task}}" }}

[[schedule]]
name = "stale"
every = "5m"
[schedule.when]
status = "Open"
in_status_for = "1h"
[[schedule.do]]
action = "webhook"
to = "tracker"
body = {{ event = "stale", task = "{{task}}", seen = [1, 2.5, {{ deep = "yes" }}] }}
"#
    );
    let w = workdir(&sink, &rules, &[("tracker", "")]);
    ingest_mail(&w, 1, "Order 42 is late");
    let at = (Utc::now() + chrono::Duration::hours(2)).to_rfc3339_opts(SecondsFormat::Secs, true);
    w.ok(&["schedules", "run", "--now", "--at", &at]);
    w.ok(&[
        "task",
        "set",
        "1",
        "--status",
        "Done",
        "--as",
        "anna@acme.example",
    ]);

    let out = with_env(&w, &["outbox", "send"]);
    assert!(out.status.success(), "{out:?}");
    let got = sink.wait_for("/tracker", 3, LIMIT);
    // Sent concurrently: they arrive in any order.
    let mut bodies: Vec<Value> = got.iter().map(body_json).collect();
    bodies.sort_by_key(|b| b["event"].as_str().map(str::to_string));
    assert_eq!(
        bodies[0],
        serde_json::json!({"title": "Order 42 is late", "task": "1",
            "from": {"address": "client@client.example"}, "tags": ["mail"],
            "priority": 3, "urgent": true})
    );
    assert_eq!(bodies[1], serde_json::json!({"event": "done", "task": "1"}));
    assert_eq!(
        bodies[2],
        serde_json::json!({"event": "stale", "task": "1", "seen": [1, 2.5, {"deep": "yes"}]})
    );
    let mut keys: Vec<&str> = got
        .iter()
        .map(|r| r.header("idempotency-key").unwrap())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 3, "one key per delivery: {keys:?}");
    for request in &got {
        assert!(signature_verifies(request), "{request:#?}");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    let rows = webhook_rows(&w);
    assert!(rows.iter().all(|r| r["status"] == "sent"), "{rows:#?}");
    assert!(rows.iter().all(|r| r["task"] == 1), "{rows:#?}");
    let history = w.ok(&["task", "history", "1"]);
    assert_eq!(
        history.matches("webhook to tracker").count(),
        3,
        "{history}"
    );
}

#[test]
fn retries_reach_the_receiver_once_with_one_key_and_secrets_stay_hidden() {
    let sink = HttpSink::start();
    sink.script(
        "/tracker",
        vec![
            Reply::status(503),
            Reply::Status(429, vec![("Retry-After".into(), "1".into())], String::new()),
            Reply::Reset,
        ],
    );
    let w = workdir(&sink, RULES, &[("tracker", "")]);
    ingest_mail(&w, 1, "Order 42 is late");
    let mut daemon = start_daemon(&w);
    let got = sink.wait_for("/tracker", 4, LIMIT);
    let row = wait_for_status(&w, "tracker", "sent");
    daemon.terminate(LIMIT);

    let answered: Vec<Option<u16>> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [Some(503), Some(429), None, Some(200)]);
    let key = got[0].header("idempotency-key").unwrap();
    assert!(got.iter().all(|r| r.header("idempotency-key") == Some(key)));
    assert!(got.iter().all(|r| r.body == got[0].body));
    assert!(got.iter().all(signature_verifies));
    assert_eq!(row["attempts"], 4, "{row:#}");
    assert!(
        row["reason"].as_str().unwrap().starts_with("HTTP 200"),
        "{row:#}"
    );

    // The token and the secret went to the receiver only.
    let listing = String::from_utf8(with_env(&w, &["outbox"]).stdout).unwrap()
        + &w.json(&["outbox"]).to_string();
    let mut store = std::fs::read(w.path("store.db")).unwrap();
    store.extend(std::fs::read(w.path("store.db-wal")).unwrap_or_default());
    // A chat's incoming-webhook URL is a secret too: the endpoint is named, never its URL.
    let url = sink.url("/tracker");
    for secret in [TOKEN, SECRET, url.as_str()] {
        assert!(!daemon.log().contains(secret), "{}", daemon.log());
        assert!(!listing.contains(secret), "{listing}");
        assert!(!store.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
}

#[test]
fn a_400_is_not_retried_and_is_shown_failed_with_the_answer() {
    let sink = HttpSink::start();
    sink.script(
        "/tracker",
        vec![Reply::Status(
            400,
            Vec::new(),
            "{\"error\":\"no such project\"}\n\u{1b}[31m".into(),
        )],
    );
    let w = workdir(&sink, RULES, &[("tracker", "")]);
    ingest_mail(&w, 1, "Order 42 is late");
    let first = with_env(&w, &["outbox", "send"]);
    assert!(first.status.success(), "{first:?}");
    let again = with_env(&w, &["outbox", "send"]);
    assert!(again.status.success(), "{again:?}");
    assert_eq!(sink.requests("/tracker").len(), 1);

    let row = &webhook_rows(&w)[0];
    assert_eq!(row["status"], "failed");
    assert_eq!(row["attempts"], 1);
    let reason = row["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("HTTP 400 Bad Request: {\"error\":\"no such project\"}"),
        "{reason}"
    );
    assert!(!reason.chars().any(char::is_control), "{reason}");
    let table = w.ok(&["outbox"]);
    let line = table.lines().find(|l| l.contains("webhook")).unwrap();
    for word in ["failed", "tracker", "HTTP 400"] {
        assert!(line.contains(word), "{table}");
    }
    let warning = String::from_utf8_lossy(&first.stderr);
    assert!(
        warning.contains("HTTP 400") && warning.contains("gave up"),
        "{warning}"
    );

    // `outbox retry` queues it again; the receiver now accepts it.
    let id = row["id"].as_i64().unwrap().to_string();
    w.ok(&["outbox", "retry", &id]);
    assert!(with_env(&w, &["outbox", "send"]).status.success());
    assert_eq!(webhook_rows(&w)[0]["status"], "sent");
}

#[test]
fn a_hanging_endpoint_does_not_hold_up_other_deliveries() {
    let sink = HttpSink::start();
    sink.script("/slow", vec![Reply::Hang; 17]);
    // Seventeen deliveries to an endpoint that never answers, queued before the one to
    // another: more than the 16 the sender keeps in flight, so only its cap of 8 per endpoint
    // leaves room for the other.
    let mut rules = RULES.replace("to = \"tracker\"", "to = \"slow\"");
    for _ in 0..16 {
        rules.push_str("[[rule.do]]\naction = \"webhook\"\nto = \"slow\"\nbody = { n = 1 }\n");
    }
    rules.push_str(
        "[[rule.do]]\naction = \"webhook\"\nto = \"fast\"\nbody = { task = \"{task}\" }\n",
    );
    let w = workdir(
        &sink,
        &rules,
        &[("slow", "timeout = \"60s\""), ("fast", "")],
    );
    ingest_mail(&w, 1, "Order 42 is late");
    let mut daemon = start_daemon(&w);
    sink.wait_for("/slow", 8, LIMIT);
    wait_for_status(&w, "fast", "sent");
    // The slow ones are still in flight (not answered, not recorded), eight of them at most.
    let slow: Vec<Value> = webhook_rows(&w)
        .into_iter()
        .filter(|r| r["recipient"] == "slow")
        .collect();
    assert_eq!(slow.len(), 17);
    assert!(
        slow.iter()
            .all(|r| r["status"] == "queued" && r["attempts"] == 0),
        "{slow:#?}"
    );
    let open = sink.requests("/slow");
    assert_eq!(open.len(), 8, "{open:#?}");
    assert!(open.iter().all(|r| r.answered.is_none()));
    daemon.kill();
}

#[test]
fn a_daemon_killed_between_send_and_record_sends_again_with_the_same_key() {
    let sink = HttpSink::start();
    sink.script("/tracker", vec![Reply::Hang]);
    let w = workdir(&sink, RULES, &[("tracker", "timeout = \"60s\"")]);
    ingest_mail(&w, 1, "Order 42 is late");
    let mut first = start_daemon(&w);
    sink.wait_for("/tracker", 1, LIMIT);
    first.kill();

    let mut second = start_daemon(&w);
    let got = sink.wait_for("/tracker", 2, LIMIT);
    let row = wait_for_status(&w, "tracker", "sent");
    second.terminate(LIMIT);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(
        got[0].header("idempotency-key"),
        got[1].header("idempotency-key")
    );
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(
        got.iter().filter(|r| r.answered == Some(200)).count(),
        1,
        "{got:#?}"
    );
    assert_eq!(
        row["attempts"], 1,
        "the killed try was never recorded: {row:#}"
    );
}

#[test]
fn check_names_an_unknown_endpoint_where_it_is_written_and_a_missing_variable() {
    let sink = HttpSink::start();
    let rules = RULES.replace("to = \"tracker\"", "to = \"trackr\"");
    let w = workdir(&sink, &rules, &[("tracker", "")]);
    let out = w
        .command(&["check"])
        .env_remove("HOOK_TOKEN")
        .env("HOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = RULES.lines().position(|l| l.starts_with("to = ")).unwrap() + 1;
    assert!(
        stdout.contains(&format!(
            "push.toml:{line}:6: rule \"push\": unknown webhook `trackr`, did you mean `tracker`?"
        )),
        "{stdout}"
    );
    assert!(stderr.contains("HOOK_TOKEN is not set"), "{stderr}");
    assert!(!stderr.contains(SECRET) && !stdout.contains(SECRET));

    // Nothing is queued for it either.
    let path = w.path("m.eml");
    std::fs::write(&path, "From: c@client.example\r\nSubject: x\r\n\r\nx\r\n").unwrap();
    let ingest = w.run(&["ingest", path.to_str().unwrap()]);
    assert!(!ingest.status.success());
    assert!(String::from_utf8_lossy(&ingest.stderr).contains("did you mean `tracker`"));

    // The daemon refuses to start with either.
    let mut daemon = Daemon::start(&w.config);
    assert!(!daemon.wait_exit(LIMIT).success());
    assert!(
        daemon.log().contains("did you mean `tracker`"),
        "{}",
        daemon.log()
    );
}

#[test]
fn the_integration_examples_load_and_name_their_endpoints() {
    let doc = std::fs::read_to_string(crate::support::workdir::root().join("docs/integrations.md"))
        .unwrap();
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    let mut config = String::from("store = \"s.db\"\n");
    let mut rules = Vec::new();
    for block in &blocks {
        if block.starts_with("# mailrules.toml") {
            config.push_str(block);
        } else {
            assert!(block.starts_with("# rules/"), "{block}");
            rules.push((
                std::path::PathBuf::from("integrations.md"),
                block.to_string(),
            ));
        }
    }
    assert_eq!(rules.len(), 4, "Planfix, Jira, Redmine, chat");
    let config = mailrules::config::Config::from_str(&config, Path::new("/tmp/mailrules.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let set = mailrules::rules::RuleSet::from_sources(&rules).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["planfix", "jira", "redmine", "slack", "mattermost"]);
    assert_eq!(set.check_webhooks(&names), []);
}

#[test]
fn a_message_whose_later_action_fails_queues_no_webhook() {
    let sink = HttpSink::start();
    let rules = format!(
        "[[field]]\nname = \"Сумма\"\ntype = \"number\"\n{RULES}[[rule.do]]\naction = \"set\"\n\
         fields = {{ \"Сумма\" = \"{{subject}}\" }}\n"
    );
    let w = workdir(&sink, &rules, &[("tracker", "")]);
    let path = w.path("m.eml");
    std::fs::write(
        &path,
        "From: c@client.example\r\nSubject: not a number\r\nMessage-ID: <f1@client.example>\r\n\r\nx\r\n",
    )
    .unwrap();
    let result = w.ingest(&path);
    assert_eq!(result["failed"], 1, "{result:#}");
    // The webhook was queued in the message's transaction, and went with it.
    assert_eq!(webhook_rows(&w), Vec::<Value>::new());
    assert_eq!(w.json(&["task", "list"]), serde_json::json!([]));
}

#[test]
fn a_hang_past_the_timeout_is_tried_again_with_the_same_key() {
    let sink = HttpSink::start();
    sink.script("/tracker", vec![Reply::Hang]);
    let w = workdir(&sink, RULES, &[("tracker", "timeout = \"1s\"")]);
    ingest_mail(&w, 1, "Order 42 is late");
    let first = with_env(&w, &["outbox", "send"]);
    let warning = String::from_utf8_lossy(&first.stderr);
    assert!(warning.contains("no answer within 1s"), "{warning}");
    let row = &webhook_rows(&w)[0];
    assert_eq!(
        (row["status"].as_str(), row["attempts"].as_i64()),
        (Some("queued"), Some(1))
    );

    let mut daemon = start_daemon(&w);
    let got = sink.wait_for("/tracker", 2, LIMIT);
    let row = wait_for_status(&w, "tracker", "sent");
    daemon.terminate(LIMIT);
    assert_eq!(
        got[0].header("idempotency-key"),
        got[1].header("idempotency-key")
    );
    assert_eq!(row["attempts"], 2, "{row:#}");
}
