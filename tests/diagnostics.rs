//! cli.md, version 2: diagnostics go to stderr and start with `error:` or `warning:`.

use crate::support::workdir::{fixture, Workdir};

/// A rule whose choice field does not allow the value the survey mail carries: the message
/// fails, the command goes on.
const FAILING_RULE: &str = r#"
[[field]]
name = "Причина отказа"
type = "choice"
values = ["Другое"]

[[rule]]
name = "survey"
[rule.when]
subject = { regex = '^Опрос: Причина отказа' }
[rule.extract]
reason = { after = "Причина:" }
[[rule.do]]
action = "set"
if_missing = "create"
fields = { "Причина отказа" = "{reason}" }
"#;

fn stderr_lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("  "))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_failed_message_is_a_warning_and_a_failed_command_an_error() {
    let w = Workdir::with_rules(&[("survey.toml", FAILING_RULE)]);
    let eml = fixture("scenarios/07-refusal-survey.eml");
    let out = w.run(&["ingest", eml.to_str().unwrap()]);
    assert!(out.status.success());
    let lines = stderr_lines(&out);
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(line.starts_with("warning: "), "{line}");
    }
    let out = w.run(&["retry"]);
    for line in stderr_lines(&out) {
        assert!(line.starts_with("warning: "), "{line}");
    }

    for args in [
        &["task", "show", "42"][..],
        &["user", "remove", "x@y.example"],
        &["task", "sohw"],
    ] {
        let out = w.run(args);
        assert!(!out.status.success(), "{args:?}");
        let lines = stderr_lines(&out);
        assert!(lines[0].starts_with("error: "), "{args:?}: {lines:?}");
    }
}
