//! `mailrules test` through the built binary: the shipped rules pass their own tests, and a
//! user sees what failed and why, can write expectations with `--bless`, and is told about a
//! mistyped key or a folder without tests. The configured store is never touched.

use std::process::Output;

use crate::support::workdir::Workdir;

const ACKNOWLEDGE: &str = r#"
[[rule]]
name = "acknowledge"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"
[[rule.do]]
action = "reply"
subject = "Re: {subject}"
text = "Принято"

[[rule]]
name = "client-reply"
[rule.when]
thread = "reply"
[[rule.do]]
action = "comment"
"#;

const REQUEST: &str = "From: Иван <ivan@client.example>\r\nTo: support@acme.example\r\n\
    Subject: Printer is broken\r\nMessage-ID: <req-1@client.example>\r\n\r\nIt does not print.\r\n";

const REPLY: &str = "From: Иван <ivan@client.example>\r\nTo: support@acme.example\r\n\
    Subject: Re: Printer is broken [#1]\r\nMessage-ID: <req-2@client.example>\r\n\
    In-Reply-To: <req-1@client.example>\r\n\r\nStill broken.\r\n";

/// A workdir with the two rules above and `tests` (name, text) in rules/tests/.
fn with_tests(tests: &[(&str, &str)]) -> Workdir {
    let w = Workdir::with_rules(&[("rules.toml", ACKNOWLEDGE)]);
    std::fs::create_dir_all(w.path("rules/tests")).unwrap();
    for (name, text) in tests {
        std::fs::write(w.path("rules/tests").join(name), text).unwrap();
    }
    w
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or_default()
}

#[test]
fn the_shipped_rules_pass_their_tests() {
    let w = Workdir::with_shipped_rules();
    let out = w.run(&["test"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("ok   01-new-request\n"), "{text}");
    assert!(text.contains("ok   07-refusal-survey\n"), "{text}");
    let summary = last_line(&text);
    assert!(
        summary.ends_with(" passed, 0 failed") && !summary.starts_with("0 "),
        "{text}"
    );
    // The tests folder beside the rules is not a rule file: `check` loads the rules as before.
    assert_eq!(
        w.ok(&["check"]).trim(),
        "ok: 11 rules, 1 triggers, 2 schedules in 6 files"
    );
    assert!(!w.path("store.db").exists(), "the real store was opened");
}

#[test]
fn a_failing_expectation_shows_expected_against_actual_and_exits_1() {
    let w = with_tests(&[
        ("01-request.eml", REQUEST),
        (
            "01-request.toml",
            "rule = \"acknowledge\"\nstatus = \"applied\"\n",
        ),
        ("02-reply.eml", REPLY),
        (
            "02-reply.toml",
            "rule = \"acknowledge\"\n[task]\ntitle = \"Printer is broken\"\nstatus = \"Закрыта\"\n\
             [[outbox]]\nkind = \"reply\"\nto = \"ivan@client.example\"\n",
        ),
    ]);
    let out = w.run(&["test"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("ok   01-request\nFAIL 02-reply\n"),
        "{text}"
    );
    // The reply threaded onto the request's task: the store held the earlier message.
    assert!(
        text.contains("rule: expected \"acknowledge\", got \"client-reply\"\n"),
        "{text}"
    );
    assert!(
        text.contains("task.status: expected \"Закрыта\", got \"Новая\"\n"),
        "{text}"
    );
    assert!(
        text.contains("outbox: expected 1 mail, got 0 mails\n"),
        "{text}"
    );
    assert!(!text.contains("task.title"), "the title matched: {text}");
    assert_eq!(last_line(&text), "1 passed, 1 failed");
    assert!(!w.path("store.db").exists(), "the real store was opened");
}

#[test]
fn bless_writes_the_expectations_from_what_happened() {
    let w = with_tests(&[("01-request.eml", REQUEST), ("02-reply.eml", REPLY)]);
    let out = w.run(&["test"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("no expectation file 01-request.toml"),
        "{}",
        stdout(&out)
    );

    let text = w.ok(&["test", "--bless"]);
    let first = w.path("rules/tests/01-request.toml");
    assert!(
        text.contains(&format!("wrote {}\n", first.display())),
        "{text}"
    );
    assert_eq!(last_line(&text), "2 written, 0 unchanged, 0 failed");
    let written = std::fs::read_to_string(&first).unwrap();
    assert!(written.contains("rule = \"acknowledge\"\n"), "{written}");
    assert!(written.contains("status = \"applied\"\n"), "{written}");
    assert!(
        written.contains("to = \"ivan@client.example\"\n"),
        "{written}"
    );
    let reply = std::fs::read_to_string(w.path("rules/tests/02-reply.toml")).unwrap();
    assert!(reply.contains("rule = \"client-reply\"\n"), "{reply}");
    assert!(reply.contains("outbox = []\n"), "{reply}");

    assert_eq!(last_line(&w.ok(&["test"])), "2 passed, 0 failed");
    // Blessing again changes nothing, and says so.
    assert_eq!(
        last_line(&w.ok(&["test", "--bless"])),
        "0 written, 2 unchanged, 0 failed"
    );
    // The rules still load with the tests beside them.
    assert!(w.ok(&["check"]).starts_with("ok: 2 rules"));
}

#[test]
fn one_named_test_runs_after_the_earlier_messages_of_its_folder() {
    let w = with_tests(&[
        ("01-request.eml", REQUEST),
        ("01-request.toml", "rule = \"nothing\"\n"),
        ("02-reply.eml", REPLY),
        ("02-reply.toml", "rule = \"client-reply\"\n"),
    ]);
    let reply = w.path("rules/tests/02-reply.toml");
    let text = w.ok(&["test", reply.to_str().unwrap()]);
    assert_eq!(text, "ok   02-reply\n1 passed, 0 failed\n");
}

#[test]
fn an_unknown_key_fails_the_test_at_its_line_and_column() {
    let w = with_tests(&[
        ("01-request.eml", REQUEST),
        (
            "01-request.toml",
            "rule = \"acknowledge\"\n[task]\nstauts = \"Новая\"\n",
        ),
    ]);
    let out = w.run(&["test"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let file = w.path("rules/tests/01-request.toml");
    assert!(text.starts_with("FAIL 01-request\n"), "{text}");
    assert!(
        text.contains(&format!("{}:3:1: unknown field `stauts`", file.display())),
        "{text}"
    );
    assert_eq!(last_line(&text), "0 passed, 1 failed");
}

#[test]
fn no_tests_is_an_error_that_says_where_it_looked() {
    let w = with_tests(&[]);
    let out = w.run(&["test"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let folder = w.path("rules/tests");
    assert!(
        err.starts_with(&format!(
            "error: no rule tests found in {}",
            folder.display()
        )),
        "{err}"
    );
    assert!(err.contains("--bless"), "{err}");

    // No tests folder at all: the same, naming the folder it expected.
    std::fs::remove_dir(&folder).unwrap();
    let out = w.run(&["test"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("no rule tests found in {}", folder.display())),
        "{}",
        stderr(&out)
    );
}

/// Every `*.toml` file directly in `dir`, parsed, in name order.
fn toml_files(dir: &std::path::Path) -> Vec<toml::Table> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

#[test]
fn every_shipped_rule_has_a_test() {
    let rules = crate::support::workdir::root().join("rules");
    let tested: Vec<String> = toml_files(&rules.join("tests"))
        .iter()
        .filter_map(|t| t.get("rule")?.as_str().map(str::to_string))
        .collect();
    let mut untested = Vec::new();
    for file in toml_files(&rules) {
        let Some(list) = file.get("rule").and_then(|r| r.as_array()) else {
            continue;
        };
        for rule in list {
            let name = rule["name"].as_str().unwrap().to_string();
            if !tested.contains(&name) {
                untested.push(name);
            }
        }
    }
    assert!(
        untested.is_empty(),
        "rules without a test in rules/tests/: {untested:?}"
    );
}
