//! Loading: counts, declarations, and every error with its exact position.

use super::*;
use crate::rules::{FieldType, TriggerEvent, ValueType};

const SURVEY: &str = r#"
[[field]]
name = "Причина отказа"
type = "choice"
values = ["Дорого", "Не устроили сроки", "Другое"]

[[analytics]]
name = "Удовлетворенность клиентов"
columns = { "Скорость ответа" = "text", "Оценка" = "number" }

[[rule]]
name = "refusal-survey"
[rule.when]
subject = { regex = '^Опрос: (?P<survey>.+) \[#(?P<task>\d+)\]' }
[[rule.do]]
action = "set"
task = "{task}"
fields = { "Причина отказа" = "{survey}" }

[[trigger]]
name = "negative-feedback"
on = "analytics"
table = "Удовлетворенность клиентов"
[trigger.when]
any = [ { "Скорость ответа" = "медленно" }, { "Оценка" = { any = ["1", "2"] } } ]
[[trigger.do]]
action = "create_task"
parent = "{task}"
title = "Негативный отзыв по задаче #{task}"
description = "{row}"

[[schedule]]
name = "overdue-reply"
every = "5m"
[schedule.when]
status = "Нужно ответить клиенту"
in_status_for = "2h"
[[schedule.do]]
action = "notify"
to = "lead@example.com"
subject = "Клиент ждёт ответа по задаче #{task}"
"#;

#[test]
fn loads_every_kind_of_table_and_counts_them() {
    let set = load(SURVEY);
    let summary = set.summary();
    assert_eq!(
        (
            summary.rules,
            summary.triggers,
            summary.schedules,
            summary.files
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(set.fields()[0].kind, FieldType::Choice);
    assert_eq!(set.fields()[0].values.len(), 3);
    assert_eq!(
        set.analytics_tables()[0].columns[1],
        ("Оценка".to_string(), ValueType::Number)
    );
    assert_eq!(set.triggers()[0].on, TriggerEvent::Analytics);
    let schedule = &set.schedules()[0];
    assert_eq!(schedule.every.as_secs(), 300);
    assert_eq!(schedule.in_status_for.map(|d| d.as_secs()), Some(7200));
}

#[test]
fn an_unknown_key_names_the_nearest_one_with_its_position() {
    let lines = errors(
        "[[rule]]\nname = \"a\"\n[rule.when]\nfrm = \"*@x.example\"\n[[rule.do]]\naction = \"ignore\"\n",
    );
    assert_eq!(
        lines,
        vec![r#"rules.toml:4:1: rule "a": unknown condition `frm`, did you mean `from`?"#]
    );
}

#[test]
fn every_error_of_every_file_is_reported_at_once() {
    let a = "[[rule]]\nname = \"one\"\npriorty = 1\n[[rule.do]]\naction = \"comment\"\ntext = \"{reasn}\"\n";
    let b = "[[rule]]\nname = \"two\"\n[rule.when]\nsubject = { regex = '(abc' }\n[[rule.do]]\naction = \"explode\"\n";
    let lines = errors_of(&[("a.toml", a), ("b.toml", b)]);
    assert_eq!(
        lines,
        vec![
            r#"a.toml:3:1: rule "one": unknown key `priorty`, did you mean `priority`?"#,
            r#"a.toml:6:9: rule "one": unknown variable `{reasn}`; known here: {subject}, {body}, {from}, {from_name}, {to}, {date}, {message_id}, {mailbox}, {task}, {rule}"#,
            r#"b.toml:4:21: rule "two": bad regex: unclosed group"#,
            r#"b.toml:6:10: rule "two": unknown action `explode`; expected one of `create_task`, `comment`, `set`, `analytics`, `reply`, `notify`, `webhook`, `ignore`"#,
        ]
    );
}

#[test]
fn duplicate_names_across_files_name_both_places() {
    let a = "[[rule]]\nname = \"dup\"\n[[rule.do]]\naction = \"ignore\"\n";
    let b = "\n[[trigger]]\nname = \"dup\"\non = \"task_created\"\n[[trigger.do]]\naction = \"comment\"\ntext = \"x\"\n";
    assert_eq!(
        errors_of(&[("a.toml", a), ("b.toml", b)]),
        vec![
            r#"b.toml:3:8: trigger "dup": the name "dup" is already used by the rule at a.toml:2:8"#
        ]
    );
}

#[test]
fn syntax_errors_have_positions() {
    let lines = errors("[[rule]]\nname = \"a\nx = 1\n");
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("rules.toml:2:"), "{lines:?}");
    assert!(lines[0].contains("TOML syntax"), "{lines:?}");
}

#[test]
fn every_syntax_error_of_a_file_is_reported() {
    let lines = errors(
        "[[rule]]\nname = \"a\"\npriority = = 3\n[[rule]]\nname = \"b\"\nmailbox = [\"x\",\n",
    );
    assert_eq!(
        lines,
        [
            "rules.toml:3:12: TOML syntax: extra `=`, expected nothing",
            "rules.toml:6:16: TOML syntax: unclosed array, expected `]`"
        ]
    );
}

#[test]
fn type_and_value_errors() {
    let src = r#"
[[rule]]
name = "types"
priority = "high"
continue = 1
mailbox = [1]
[rule.when]
has_attachment = "yes"
thread = "old"
sender = "boss"
subject = { contains = "a", regex = "b" }
header = { "X-Mailer" = { exists = "yes" } }
body = { exists = true }
[rule.extract]
n = { line = 0 }
d = { after = "Дата:", type = "day" }
e = { after = "x", default = "abc", type = "number" }
f = { from = "footer", after = "y" }
[[rule.do]]
action = "set"
if_missing = "maybe"
[[rule.do]]
action = "reply"
[[rule.do]]
action = "comment"
text = "{{literal}} and { broken"
"#;
    assert_eq!(
        errors(src),
        vec![
            r#"rules.toml:4:12: rule "types": `priority` must be an integer, not a string"#,
            r#"rules.toml:5:12: rule "types": `continue` must be true or false, not an integer"#,
            r#"rules.toml:6:12: rule "types": `mailbox` must be a string, not an integer"#,
            r#"rules.toml:8:18: rule "types": `has_attachment` must be true or false, not a string"#,
            r#"rules.toml:9:10: rule "types": unknown thread value `old`; expected one of `reply`, `new`"#,
            r#"rules.toml:10:10: rule "types": unknown sender value `boss`; expected one of `staff`, `contact`"#,
            r#"rules.toml:11:11: rule "types": `subject` needs exactly one of `is`, `contains`, `regex`, `any`, `exists`"#,
            r#"rules.toml:12:36: rule "types": `exists` must be true or false, not a string"#,
            r#"rules.toml:13:10: rule "types": `exists` applies to headers, not to `body`"#,
            r#"rules.toml:15:14: rule "types": `line` counts from 1"#,
            r#"rules.toml:16:31: rule "types": unknown type `day`, did you mean `date`?"#,
            r#"rules.toml:17:30: rule "types": `default`: "abc" is not a number"#,
            r#"rules.toml:18:14: rule "types": `from` must be "body", "subject", "from" or "header:NAME", not "footer""#,
            r#"rules.toml:19:1: rule "types": action `set` needs `status` or `fields`"#,
            r#"rules.toml:21:14: rule "types": unknown if_missing value `maybe`; expected one of `create`, `skip`, `fail`"#,
            r#"rules.toml:22:1: rule "types": action `reply` needs `text`"#,
            r#"rules.toml:26:25: rule "types": a `{` without a closing `}` (write `{{` for a literal brace)"#,
        ]
    );
}

#[test]
fn missing_required_keys() {
    let src = "[[rule]]\n[[rule.do]]\naction = \"ignore\"\n\n[[rule]]\nname = \"no-do\"\n\n[[field]]\nname = \"Статус оплаты\"\ntype = \"choice\"\n";
    assert_eq!(
        errors(src),
        vec![
            "rules.toml:1:1: missing `name` (every item needs a unique name)",
            r#"rules.toml:5:1: rule "no-do": missing `do`: at least one action is needed"#,
            r#"rules.toml:8:1: field "Статус оплаты": a `choice` field needs `values`, the list of allowed values"#,
        ]
    );
}

#[test]
fn analytics_columns_are_checked_against_the_declaration() {
    let src = r#"
[[analytics]]
name = "Удовлетворенность клиентов"
columns = { "Скорость ответа" = "text" }

[[rule]]
name = "survey"
[[rule.do]]
action = "analytics"
table = "Удовлетворенность клиентов"
values = { "Скорость отвта" = "{body}" }
"#;
    assert_eq!(
        errors(src),
        vec![
            r#"rules.toml:11:12: rule "survey": analytics table "Удовлетворенность клиентов" has no column: unknown column `Скорость отвта`, did you mean `Скорость ответа`?"#
        ]
    );
}

#[test]
fn templates_know_extracted_values_and_named_groups() {
    let src = r#"
[[rule]]
name = "vars"
[rule.when]
any = [ { subject = { regex = '(?P<order>\d+)' } }, { body = "x" } ]
[rule.extract]
reason = { after = "Причина:" }
[[rule.do]]
action = "comment"
text = "{order} {reason} {from_name} {{not a var}}"
[[rule.do]]
action = "comment"
text = "{resaon}"
"#;
    assert_eq!(
        errors(src),
        vec![
            r#"rules.toml:13:9: rule "vars": unknown variable `{resaon}`, did you mean `{reason}`?"#
        ]
    );
}

#[test]
fn trigger_and_schedule_errors() {
    let src = r#"
[[trigger]]
name = "t"
on = "analytic"
table = "x"
[[trigger.do]]
action = "create_task"

[[schedule]]
name = "s"
every = "5 minutes"
[schedule.when]
in_status_for = "2x"
[[schedule.do]]
action = "comment"
text = "{nope}"
"#;
    let lines = errors(src);
    assert_eq!(
        lines[..3],
        [
            r#"rules.toml:4:6: trigger "t": unknown event `analytic`, did you mean `analytics`?"#,
            r#"rules.toml:6:1: trigger "t": action `create_task` needs `title`"#,
            r#"rules.toml:11:9: schedule "s": bad duration "5 minutes": use e.g. 30s, 5m, 2h, 1d"#,
        ]
    );
    assert!(
        lines[3].starts_with(r#"rules.toml:13:17: schedule "s": bad duration "2x""#),
        "{lines:?}"
    );
    assert!(
        lines[4].starts_with(r#"rules.toml:16:9: schedule "s": unknown variable `{nope}`"#),
        "{lines:?}"
    );
}

#[test]
fn load_dir_reads_toml_files_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        "[[rule]]\nname = \"b\"\n[[rule.do]]\naction = \"ignore\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        "[[rule]]\nname = \"a\"\n[[rule.do]]\naction = \"ignore\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not rules").unwrap();
    let set = RuleSet::load_dir(dir.path()).unwrap();
    let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(set.summary().files, 2);
}

#[test]
fn unreadable_files_are_reported_with_the_other_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), b"name = \"\xff\"\n").unwrap();
    std::fs::write(dir.path().join("b.toml"), "[[rule]]\nname = \"b\"\n").unwrap();
    let errors = RuleSet::load_dir(dir.path()).unwrap_err();
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    // No made-up position: nothing of the file was read.
    assert!(lines[0].contains("a.toml: cannot read"), "{lines:?}");
    assert!(
        lines[1].ends_with(r#"b.toml:1:1: rule "b": missing `do`: at least one action is needed"#),
        "{lines:?}"
    );
}

#[test]
fn a_rule_set_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<RuleSet>();
    shared::<std::sync::Arc<RuleSet>>();
}

#[test]
fn trigger_conditions_name_columns_of_a_declared_table() {
    let src = r#"
[[analytics]]
name = "Удовлетворенность клиентов"
columns = { "Скорость ответа" = "text" }

[[trigger]]
name = "slow"
on = "analytics"
table = "Удовлетворенность клиентов"
[trigger.when]
any = [ { "Скорость отвта" = "медленно" } ]
[[trigger.do]]
action = "notify"
to = "lead@acme.example"
subject = "{Скорость ответа}"
"#;
    assert_eq!(
        errors(src),
        vec![
            r#"rules.toml:11:11: trigger "slow": unknown column `Скорость отвта`, did you mean `Скорость ответа`?"#
        ]
    );
}

#[test]
fn empty_lists_that_mean_nothing_are_errors() {
    assert_eq!(
        errors("[[rule]]\nname = \"a\"\nwhen = { any = [] }\ndo = []\n"),
        vec![
            r#"rules.toml:3:16: rule "a": `any` needs at least one table"#,
            r#"rules.toml:4:6: rule "a": `do` needs at least one table"#,
        ]
    );
}

#[test]
fn a_webhook_body_is_checked_to_its_deepest_value() {
    let lines = errors(
        "[[rule]]\nname = \"w\"\n[[rule.do]]\naction = \"webhook\"\nto = \"tracker\"\n\
         body = { a = { b = [\"{subjct}\"] }, n = nan }\n\n\
         [[rule]]\nname = \"x\"\n[[rule.do]]\naction = \"webhook\"\nbody = \"text\"\n",
    );
    assert_eq!(
        lines,
        vec![
            r#"rules.toml:6:22: rule "w": unknown variable `{subjct}`, did you mean `{subject}`?"#,
            r#"rules.toml:6:40: rule "w": nan cannot be sent as a JSON number"#,
            r#"rules.toml:10:1: rule "x": missing `to` (the name of a [[webhook]])"#,
            r#"rules.toml:12:8: rule "x": `body` must be a table, e.g. { title = "{subject}" }, not a string"#,
        ]
    );
}

#[test]
fn an_unknown_webhook_is_named_where_it_is_written_with_the_nearest_one() {
    let set = load(
        "[[rule]]\nname = \"w\"\n[[rule.do]]\naction = \"webhook\"\nto = \"trackr\"\nbody = {}\n",
    );
    let lines: Vec<String> = set
        .check_webhooks(&["tracker", "chat"])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        vec![r#"rules.toml:5:6: rule "w": unknown webhook `trackr`, did you mean `tracker`?"#]
    );
    assert!(set.check_webhooks(&["trackr"]).is_empty());
}
