//! The command line's contract (shared/spec/cli.md): errors, exit codes, failed and retry.

use std::io::Write;
use std::process::Stdio;

use crate::support::workdir::{fixture, Workdir};

const SURVEY_RULE: &str = r#"
[[field]]
name = "Причина отказа"
type = "choice"
values = ["Дорого", "Другое"]

[[rule]]
name = "survey"
[rule.when]
subject = { regex = '^Опрос: Причина отказа \[#(?P<task>\d+)\]' }
[rule.extract]
reason = { after = "Причина:" }
[[rule.do]]
action = "set"
task = "{task}"
if_missing = "create"
fields = { "Причина отказа" = "{reason}" }
"#;

#[test]
fn check_names_file_line_column_and_rule_for_every_error() {
    let w = Workdir::with_rules(&[
        ("a.toml", "[[rule]]\nname = \"first\"\n[rule.when]\nsubjcet = \"x\"\n[[rule.do]]\naction = \"ignore\"\n"),
        ("b.toml", "[[rule]]\nname = \"second\"\n[rule.when]\nsubject = { regex = '(' }\n[[rule.do]]\naction = \"ignore\"\n"),
    ]);
    let out = w.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let a = w.path("rules/a.toml").display().to_string();
    let b = w.path("rules/b.toml").display().to_string();
    assert!(text.contains(&format!("{a}:4:1: rule \"first\"")), "{text}");
    assert!(text.contains("did you mean `subject`"), "{text}");
    assert!(
        text.contains(&format!("{b}:4:")) && text.contains("rule \"second\""),
        "{text}"
    );
}

#[test]
fn a_bad_config_is_a_user_error() {
    let w = Workdir::with_rules(&[]);
    std::fs::write(&w.config, "store = 5\n").unwrap();
    let out = w.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mailrules.toml:1:"), "{err}");
}

#[test]
fn check_reports_what_would_fail_at_run_time_all_at_once() {
    let w = Workdir::with_rules(&[(
        "reply.toml",
        "[[rule]]\nname = \"acknowledge\"\n[rule.when]\nthread = \"new\"\n\
         [[rule.do]]\naction = \"create_task\"\n[[rule.do]]\naction = \"reply\"\n\
         subject = \"Re: {subject}\"\ntext = \"Принято\"\n",
    )]);
    assert!(w.ok(&["check"]).starts_with("ok: 1 rules"));
    let text = std::fs::read_to_string(&w.config).unwrap();
    let smtp_at = text.find("[smtp]").unwrap();
    let broken = format!(
        "{}\n[[mailbox]]\nname = \"support\"\nhost = \"127.0.0.1\"\ntls = \"none\"\n\
         user = \"support@acme.example\"\npassword_file = \"missing.pass\"\n",
        text[..smtp_at].replace("store.db", "no/such/dir/store.db")
    );
    std::fs::write(&w.config, broken).unwrap();
    let out = w.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 3, "{err}");
    assert!(
        err.contains("the store's folder") && err.contains("does not exist"),
        "{err}"
    );
    assert!(
        err.contains("mailbox support") && err.contains("missing.pass"),
        "{err}"
    );
    assert!(
        err.contains("rule \"acknowledge\" sends mail, but the configuration has no [smtp]"),
        "{err}"
    );
}

#[test]
fn a_missing_rules_folder_is_said_on_stderr_without_a_position() {
    let w = Workdir::with_rules(&[]);
    let text = std::fs::read_to_string(&w.config).unwrap();
    std::fs::write(
        &w.config,
        text.replace("rules = \"rules\"", "rules = \"rulez\""),
    )
    .unwrap();
    let out = w.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("rulez: the rules folder does not exist"),
        "{err}"
    );
    assert!(!err.contains("rulez:1:1"), "{err}");
}

#[test]
fn every_command_describes_each_argument_and_shows_an_example() {
    let w = Workdir::with_rules(&[]);
    let leaves: &[&[&str]] = &[
        &["run"],
        &["check"],
        &["ingest"],
        &["explain"],
        &["test"],
        &["report"],
        &["failed"],
        &["retry"],
        &["schedules"],
        &["outbox"],
        &["completions"],
        &["man"],
        &["task", "list"],
        &["task", "show"],
        &["task", "set"],
        &["task", "comment"],
        &["task", "close"],
        &["task", "reply"],
        &["task", "history"],
        &["user", "add"],
        &["user", "list"],
        &["user", "remove"],
        &["user", "passwd"],
        &["user", "token"],
        &["message", "list"],
        &["message", "show"],
        &["message", "attachment"],
        &["message", "prune"],
        &["analytics", "show"],
        &["schedules", "run"],
        &["outbox", "retry"],
    ];
    for command in leaves {
        let mut args = command.to_vec();
        args.push("--help");
        let help = w.ok(&args);
        assert!(
            help.contains("Example:\n  mailrules "),
            "{command:?} has no example:\n{help}"
        );
        let lines: Vec<&str> = help.lines().collect();
        let mut in_options = false;
        for (i, line) in lines.iter().enumerate() {
            if line.ends_with(':') && !line.starts_with(' ') {
                in_options = matches!(*line, "Arguments:" | "Options:");
                continue;
            }
            let item = line.trim();
            if !in_options || !(item.starts_with('-') || item.starts_with('<')) {
                continue;
            }
            // Short help: the description on the same line; long help: on the next, indented.
            let same_line = item.contains("  ");
            let next_line = lines
                .get(i + 1)
                .is_some_and(|next| next.starts_with("          ") && !next.trim().is_empty());
            assert!(
                same_line || next_line,
                "{command:?}: {line:?} has no description"
            );
        }
    }
}

#[test]
fn completions_and_the_man_page_cover_every_command() {
    let w = Workdir::with_rules(&[]);
    for shell in ["bash", "zsh", "fish"] {
        let script = w.ok(&["completions", shell]);
        for command in ["ingest", "explain", "task", "outbox", "user"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
    }
    let page = w.ok(&["man"]);
    assert!(page.contains(".TH mailrules 1"), "{page}");
    assert!(page.contains("ingest"), "{page}");
    let out = w.run(&["completions", "powershell-7"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn a_missing_config_names_the_full_path_and_how_to_pick_another() {
    let w = Workdir::with_rules(&[]);
    // Relative, as the default `mailrules.toml` is: the message says which directory.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailrules"))
        .current_dir(w.path(""))
        .args(["--config", "nowhere.toml", "check"])
        .env_remove("MAILRULES_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    let full = w.path("nowhere.toml");
    assert!(
        err.starts_with(&format!(
            "error: no configuration file at {}",
            full.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("--config") && err.contains("MAILRULES_CONFIG"),
        "{err}"
    );
    assert!(err.contains("config.example.toml"), "{err}");
    assert!(
        !err.contains("os error"),
        "no OS error, let alone twice: {err}"
    );
}

#[test]
fn ingest_takes_mail_only_and_refuses_empty_input_and_unknown_mailboxes() {
    let w = Workdir::with_rules(&[("survey.toml", SURVEY_RULE)]);
    let dir = w.path("export");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        fixture("scenarios/07-refusal-survey.eml"),
        dir.join("1.eml"),
    )
    .unwrap();
    std::fs::write(dir.join("manifest.tsv"), "file\tsubject\n1.eml\tОтказ\n").unwrap();
    let out = w.run(&["ingest", dir.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "processed 1, duplicates 0, failed 0",
        "the manifest is not a failed message"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: ") && err.contains("manifest.tsv is not a mail message"),
        "{err}"
    );
    assert!(w.json(&["failed"]).as_array().unwrap().is_empty());

    let mut child = w
        .command(&["ingest", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error: standard input is empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(w.json(&["failed"]).as_array().unwrap().is_empty());

    let out = w.run(&["ingest", "--mailbox", "suport", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--mailbox \"suport\" is not a [[mailbox]]"),
        "{err}"
    );
}

#[test]
fn a_failed_message_is_kept_listed_and_retried_after_the_fix() {
    let w = Workdir::with_rules(&[("survey.toml", SURVEY_RULE)]);
    // "Дорого" is not in this list yet: the message fails and nothing of it is applied.
    std::fs::write(
        w.path("rules/survey.toml"),
        SURVEY_RULE.replace("[\"Дорого\", \"Другое\"]", "[\"Другое\"]"),
    )
    .unwrap();
    let result = w.ingest(&fixture("scenarios/07-refusal-survey.eml"));
    assert_eq!(result["failed"], 1, "{result:#}");
    assert_eq!(result["messages"][0]["status"], "failed");
    let error = result["messages"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("Причина отказа") && error.contains("Дорого"),
        "{error}"
    );
    assert_eq!(w.json(&["task", "list"]).as_array().unwrap().len(), 0);

    let failed = w.json(&["failed"]);
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert_eq!(failed[0]["message_id"], "survey-501@survey.example");

    // Ingesting it again while the rules are unchanged fails again, still one record.
    w.ingest(&fixture("scenarios/07-refusal-survey.eml"));
    assert_eq!(w.json(&["failed"]).as_array().unwrap().len(), 1);

    w.write_rule("survey.toml", SURVEY_RULE);
    let retried = w.json(&["retry"]);
    assert_eq!(retried["applied"], 1, "{retried:#}");
    assert_eq!(w.json(&["failed"]).as_array().unwrap().len(), 0);
    let task = w.json(&["task", "show", "1"]);
    assert_eq!(task["fields"]["Причина отказа"], "Дорого");

    // Retrying again does nothing twice.
    let again = w.ingest(&fixture("scenarios/07-refusal-survey.eml"));
    assert_eq!(again["duplicates"], 1);
}

#[test]
fn explain_says_what_became_of_a_stored_message_and_what_would_happen_now() {
    let w = Workdir::with_rules(&[("survey.toml", SURVEY_RULE)]);
    std::fs::write(
        w.path("rules/survey.toml"),
        SURVEY_RULE.replace("[\"Дорого\", \"Другое\"]", "[\"Другое\"]"),
    )
    .unwrap();
    let survey = fixture("scenarios/07-refusal-survey.eml");
    assert_eq!(w.ingest(&survey)["failed"], 1);
    let id = w.json(&["message", "list"])[0]["id"].as_i64().unwrap();
    w.write_rule("survey.toml", SURVEY_RULE);

    let out = w.ok(&["explain", "--message", &id.to_string()]);
    assert!(
        out.starts_with(&format!("already processed: message {id} (")),
        "{out}"
    );
    assert!(
        out.contains("outcome: failed: ") && out.contains("Дорого"),
        "{out}"
    );
    assert!(out.contains("what the current rules would do"), "{out}");
    assert!(out.contains("MATCH survey"), "the rule matches now: {out}");

    // The same message as a file: the store knows it.
    let out = w.ok(&["explain", survey.to_str().unwrap()]);
    assert!(out.starts_with("already processed: message"), "{out}");

    let json = w.json(&["explain", "--message", &id.to_string()]);
    assert_eq!(json["recorded"]["status"], "failed", "{json:#}");
    assert!(
        json["rules"].is_array(),
        "the explanation's keys stay: {json:#}"
    );

    let out = w.run(&["explain", "--message", "999"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no message with id 999"), "{err}");
}

#[test]
fn ingest_from_stdin_and_tempfail_when_the_store_cannot_be_written() {
    let w = Workdir::with_rules(&[("survey.toml", SURVEY_RULE)]);
    let raw = std::fs::read(fixture("scenarios/07-refusal-survey.eml")).unwrap();
    let mut child = w
        .command(&["ingest", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&raw).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "processed 1, duplicates 0, failed 0"
    );

    // A store in a directory that does not exist cannot be written: exit 75 so the MTA retries.
    let text = std::fs::read_to_string(&w.config).unwrap();
    std::fs::write(&w.config, text.replace("store.db", "no/such/dir/store.db")).unwrap();
    let mut child = w
        .command(&["ingest", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&raw).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unknown_task_is_a_user_error() {
    let w = Workdir::with_rules(&[]);
    let out = w.run(&["task", "show", "42"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no task #42"));
}

#[test]
fn usage_errors_exit_2() {
    let w = Workdir::with_rules(&[]);
    assert_eq!(w.run(&["frobnicate"]).status.code(), Some(2));
}
