//! Extraction and planning: values, types, maps, defaults, required values, the task an action
//! acts on, typed fields and columns, and the unmatched policy.

use super::*;
use crate::plan::{FieldValue, IfMissing, PlanError, TaskRef, Text};

const SURVEY_BODY: &str = "Здравствуйте!\n\
Причина: Дорого\n\
Комментарий: нашли дешевле,\n\
у конкурента.\n\
--\n\
Дата: 21.11.2026\n\
Оценка: Отлично\n\
Сумма: 12 500,50\n\
Контакт: Иван <ivan@shop.example>";

/// Values a rule with the given `[rule.extract]` body extracts from `message`, or why it did
/// not match, or the plan error.
fn extract(extract: &str, message: &Mail) -> Result<BTreeMap<String, String>, String> {
    let set = load(&format!(
        "[[rule]]\nname = \"r\"\n[rule.extract]\n{extract}\n[[rule.do]]\naction = \"ignore\"\n"
    ));
    let e = message.run(&set);
    match (&e.plan, e.rules[0].matched) {
        (Err(err), _) => Err(err.to_string()),
        (Ok(_), false) => Err(e.rules[0].why.clone()),
        (Ok(_), true) => Ok(e.extracted),
    }
}

use std::collections::BTreeMap;

fn survey() -> Mail {
    mail(
        "client@shop.example",
        "Опрос: Причина отказа [#17]",
        SURVEY_BODY,
    )
    .header("X-Survey-Id", "  S-42 ")
}

#[test]
fn extractors_and_their_options() {
    let cases: Vec<(&str, Result<&str, &str>)> = vec![
        (r#"v = { after = "Причина:" }"#, Ok("Дорого")),
        (r#"v = { after = "причина:" }"#, Ok("Дорого")),
        (r#"v = { between = ["Комментарий:", "--"] }"#, Ok("нашли дешевле,\nу конкурента.")),
        (r#"v = { between = ["Комментарий:", "\n\n"] }"#, Ok("нашли дешевле,\nу конкурента.\n--\nДата: 21.11.2026\nОценка: Отлично\nСумма: 12 500,50\nКонтакт: Иван <ivan@shop.example>")),
        (r#"v = { regex = 'Сумма: (?P<value>[\d ]+)' }"#, Ok("12 500")),
        (r#"v = { regex = 'Дата: (\d+)\.(\d+)' }"#, Ok("21")),
        (r#"v = { regex = 'Оценка: \w+' }"#, Ok("Оценка: Отлично")),
        (r#"v = { line = 2 }"#, Ok("Причина: Дорого")),
        (r#"v = { line = 99 }"#, Ok("")),
        (r#"v = { header = "x-survey-id" }"#, Ok("S-42")),
        (r#"v = { regex = '\[#(\d+)\]', from = "subject" }"#, Ok("17")),
        (r#"v = { regex = '^(.+) <', from = "from" }"#, Ok("Клиент Иванов")),
        (r#"v = { regex = 'S-(\d+)', from = "header:X-Survey-Id" }"#, Ok("42")),
        (r#"v = { after = "Дата:", type = "date" }"#, Ok("2026-11-21")),
        (r#"v = { after = "Сумма:", type = "number" }"#, Ok("12500.50")),
        (r#"v = { after = "Контакт:", type = "email" }"#, Ok("ivan@shop.example")),
        (r#"v = { after = "Дата:", type = "datetime" }"#, Ok("2026-11-21T00:00:00Z")),
        (r#"v = { after = "Оценка:", map = { "отлично" = "5", "хорошо" = "4" } }"#, Ok("5")),
        (r#"v = { after = "Оценка:", map = { "отлично" = "5" }, type = "number" }"#, Ok("5")),
        (r#"v = { after = "Нет такого:" }"#, Ok("")),
        (r#"v = { after = "Нет такого:", default = "Другое" }"#, Ok("Другое")),
        (r#"v = { after = "Причина:", map = { "дешево" = "1" }, default = "0" }"#, Ok("0")),
        (
            r#"v = { after = "Нет такого:", required = true }"#,
            Err("extract v: not found in the body (required)"),
        ),
        (
            r#"v = { after = "Причина:", type = "number", required = true }"#,
            Err(r#"extract v: "Дорого" is not a number (required)"#),
        ),
        (
            r#"v = { after = "Причина:", map = { "дешево" = "1" } }"#,
            Err(r#"rule "r": extract v: "Дорого" is not in its map"#),
        ),
        (
            r#"v = { after = "Причина:", type = "date" }"#,
            Err(r#"rule "r": extract v: "Дорого" is not a date (expected YYYY-MM-DD, DD.MM.YYYY or an RFC 2822 date)"#),
        ),
    ];
    for (spec, expected) in cases {
        let got = extract(spec, &survey()).map(|v| v.get("v").cloned().unwrap_or_default());
        assert_eq!(
            got.as_deref(),
            expected.map_err(String::from).as_deref(),
            "{spec}"
        );
    }
}

#[test]
fn a_required_value_that_is_missing_lets_the_next_rule_match() {
    let set = load(
        r#"
[[rule]]
name = "with-reason"
[rule.extract]
reason = { after = "Причина:", required = true }
[[rule.do]]
action = "comment"
text = "Причина: {reason}"

[[rule]]
name = "fallback"
[[rule.do]]
action = "ignore"
"#,
    );
    let e = mail("a@b.example", "Опрос", "Без причины").run(&set);
    assert_eq!(matched(&e), ["fallback"]);
    assert_eq!(
        why(&e, "with-reason"),
        "extract reason: not found in the body (required)"
    );
    assert_eq!(actions(&e), [ActionKind::Ignore]);
}

const REFUSAL: &str = r#"
[[field]]
name = "Причина отказа"
type = "choice"
values = ["Дорого", "Не устроили сроки", "Выбрали другого поставщика", "Другое"]

[[field]]
name = "Дата отказа"
type = "date"

[[field]]
name = "Сумма"
type = "number"

[[rule]]
name = "refusal-survey"
[rule.when]
subject = { regex = '^Опрос: (?P<survey>.+) \[#(?P<task>\d+)\]' }
body = { contains = "Причина:" }
[rule.extract]
reason = { after = "Причина:" }
comment = { between = ["Комментарий:", "--"] }
when = { after = "Дата:" }
[[rule.do]]
action = "set"
task = "{task}"
status = "Отмененная"
fields = { "Причина отказа" = "{reason}", "Дата отказа" = "{when}", "Комментарий к опросу" = "{comment}", "Получено" = "{date}" }
[[rule.do]]
action = "comment"
task = "{task}"
text = "Опрос «{survey}» по задаче #{task}: {reason}"
"#;

fn field(name: &str, value: &str) -> FieldValue {
    FieldValue {
        name: name.into(),
        value: Text::literal(value),
    }
}

#[test]
fn the_refusal_survey_sets_typed_fields_on_the_captured_task() {
    let set = load(REFUSAL);
    let body = SURVEY_BODY.replace("Причина: Дорого", "Причина: дорого");
    let e = mail("client@shop.example", "Опрос: Причина отказа [#17]", &body).run(&set);
    let p = plan(&e);
    assert_eq!(p.rule.as_deref(), Some("refusal-survey"));
    assert_eq!(p.actions[0].task, TaskRef::Number(17));
    assert_eq!(p.actions[0].if_missing, IfMissing::Fail);
    assert_eq!(
        p.actions[0].kind,
        ActionKind::Set {
            status: Some(Text::literal("Отмененная")),
            fields: vec![
                // the choice is written in its declared spelling
                field("Причина отказа", "Дорого"),
                field("Дата отказа", "2026-11-21"),
                field("Комментарий к опросу", "нашли дешевле,\nу конкурента."),
                field("Получено", "2026-11-21T10:00:00Z"),
            ],
        }
    );
    // a captured `task` is a value like any other: `{task}` is literal text here; `{reason}`
    // sets the choice field, so it renders in the declared spelling too (rules.md, version 2)
    assert_eq!(
        p.actions[1].kind,
        ActionKind::Comment {
            text: Text::literal("Опрос «Причина отказа» по задаче #17: Дорого"),
            auto: true,
        }
    );
}

#[test]
fn a_value_outside_a_choice_list_fails_the_message() {
    let set = load(REFUSAL);
    let body = SURVEY_BODY.replace("Причина: Дорого", "Причина: Долго");
    let e = mail("client@shop.example", "Опрос: Причина отказа [#17]", &body).run(&set);
    assert_eq!(
        e.plan,
        Err(PlanError {
            rule: "refusal-survey".into(),
            message: "field \"Причина отказа\": \"Долго\" is not one of its values (Дорого, Не устроили сроки, Выбрали другого поставщика, Другое)".into(),
        })
    );
    assert_eq!(e.extracted["reason"], "Долго");
}

#[test]
fn a_typed_field_that_does_not_convert_fails_the_message() {
    let set = load(&format!(
        "{REFUSAL}\n[[rule]]\nname = \"sum\"\npriority = 1\n[[rule.do]]\naction = \"set\"\nfields = {{ \"Сумма\" = \"{{subject}}\", \"Дата отказа\" = \"\" }}\n"
    ));
    let e = mail("a@b.example", "двенадцать", "").run(&set);
    assert_eq!(
        e.plan.unwrap_err().to_string(),
        r#"rule "sum": field "Сумма": "двенадцать" is not a number"#
    );
    let e = mail("a@b.example", "1 200", "").run(&set);
    assert_eq!(
        actions(&e)[0],
        ActionKind::Set {
            status: None,
            // an empty value clears a typed field
            fields: vec![field("Сумма", "1200"), field("Дата отказа", "")],
        }
    );
}

#[test]
fn actions_and_their_defaults() {
    let set = load(
        r#"
[[analytics]]
name = "Удовлетворенность клиентов"
columns = { "Скорость ответа" = "text", "Оценка" = "number" }

[[rule]]
name = "all-actions"
[rule.extract]
score = { after = "Оценка:", map = { "отлично" = "5" } }
[[rule.do]]
action = "create_task"
status = "Новая"
assignee = "manager@acme.example"
parent = "7"
fields = { "Источник" = "{mailbox}" }
[[rule.do]]
action = "comment"
[[rule.do]]
action = "comment"
text = "Принято от {from_name} <{from}> для {to}, id {message_id}"
auto = false
[[rule.do]]
action = "analytics"
table = "Удовлетворенность клиентов"
values = { "Скорость ответа" = "быстро", "Оценка" = "{score}" }
[[rule.do]]
action = "reply"
text = "Ваша заявка принята, номер {task}. {{rule {rule}}}"
[[rule.do]]
action = "notify"
to = "lead@acme.example"
subject = "Новая заявка #{task}"
[[rule.do]]
action = "set"
task = { field = "Номер заказа", is = "{score}" }
if_missing = "skip"
status = "Завершенная"
"#,
    );
    let m = mail(
        "client@shop.example",
        "Помогите",
        "Оценка: Отлично\n> старое",
    );
    let e = m.run(&set);
    let p = plan(&e);
    let task = Text(vec![
        crate::plan::Piece::Literal("Ваша заявка принята, номер ".into()),
        crate::plan::Piece::Task,
        crate::plan::Piece::Literal(". {rule all-actions}".into()),
    ]);
    assert_eq!(
        actions(&e),
        [
            ActionKind::CreateTask {
                title: Text::literal("Помогите"),
                description: Text::literal("Оценка: Отлично\n> старое"),
                status: Some(Text::literal("Новая")),
                fields: vec![field("Источник", "support")],
                assignee: Some(Text::literal("manager@acme.example")),
                parent: Some(Text::literal("7")),
            },
            // without text: the sender's own words (strip_quoted), not a robot comment
            ActionKind::Comment {
                text: Text::literal(crate::message::strip_quoted("Оценка: Отлично\n> старое")),
                auto: false,
            },
            ActionKind::Comment {
                text: Text::literal("Принято от Клиент Иванов <client@shop.example> для support@acme.example, id m1@example.com"),
                auto: false,
            },
            ActionKind::Analytics {
                table: "Удовлетворенность клиентов".into(),
                values: vec![field("Скорость ответа", "быстро"), field("Оценка", "5")],
            },
            ActionKind::Reply {
                subject: Text::literal("Re: Помогите"),
                text: task,
                suppressed: None,
            },
            ActionKind::Notify {
                to: Text::literal("lead@acme.example"),
                subject: Text(vec![
                    crate::plan::Piece::Literal("Новая заявка #".into()),
                    crate::plan::Piece::Task
                ]),
                text: Text::literal(""),
            },
            ActionKind::Set {
                status: Some(Text::literal("Завершенная")),
                fields: vec![],
            },
        ]
    );
    assert!(p.actions[..6].iter().all(|a| a.task == TaskRef::Current));
    assert_eq!(
        p.actions[6].task,
        TaskRef::Field {
            field: "Номер заказа".into(),
            value: "5".into()
        }
    );
    assert_eq!(p.actions[6].if_missing, IfMissing::Skip);
    assert!(p.actions.iter().all(|a| a.rule == "all-actions"));
}

#[test]
fn task_references() {
    let set = load(
        r#"
[[rule]]
name = "delivery"
[rule.when]
subject = { regex = 'Заказ №(?P<order>\d+) доставлен' }
[[rule.do]]
action = "set"
task = { field = "Номер заказа", is = "{order}" }
status = "Завершенная"

[[rule]]
name = "by-number"
[rule.when]
subject = { regex = 'задача (?P<n>\S+)' }
[[rule.do]]
action = "comment"
task = "{n}"

[[rule]]
name = "current"
[[rule.do]]
action = "comment"
task = "{task}"
"#,
    );
    let e = mail("courier@post.example", "Заказ №12345 доставлен", "").run(&set);
    assert_eq!(
        plan(&e).actions[0].task,
        TaskRef::Field {
            field: "Номер заказа".into(),
            value: "12345".into()
        }
    );
    let e = mail("a@b.example", "задача #42", "").run(&set);
    assert_eq!(plan(&e).actions[0].task, TaskRef::Number(42));
    let e = mail("a@b.example", "задача сорок", "").run(&set);
    assert_eq!(
        e.plan.unwrap_err().to_string(),
        r#"rule "by-number": task: "сорок" is not a task number"#
    );
    // `{task}` that no rule captured: the task the message resolved to
    let e = mail("a@b.example", "Привет", "")
        .on_task(9, "В работе")
        .run(&set);
    assert_eq!(plan(&e).actions[0].task, TaskRef::Current);
}

#[test]
fn the_unmatched_policy() {
    let set = load("[[rule]]\nname = \"never\"\n[rule.when]\nsubject = \"никогда\"\n[[rule.do]]\naction = \"ignore\"\n");
    let new = mail("a@b.example", "Новая заявка", "Текст");
    let e = new.run(&set);
    let p = plan(&e);
    assert_eq!(p.rule, None);
    assert_eq!(p.actions[0].rule, "(unmatched)");
    assert_eq!(
        p.actions[0].kind,
        ActionKind::CreateTask {
            title: Text::literal("Новая заявка"),
            description: Text::literal("Текст"),
            status: None,
            fields: vec![],
            assignee: None,
            parent: None,
        }
    );
    let e = new.clone().on_task(3, "Открыта").run(&set);
    assert_eq!(
        actions(&e),
        [ActionKind::Comment {
            text: Text::literal(crate::message::strip_quoted("Текст")),
            auto: false
        }]
    );
    assert_eq!(plan(&e).actions[0].task, TaskRef::Current);
    let e = new.run_with(&set, Unmatched::Ignore);
    assert_eq!(actions(&e), [ActionKind::Ignore]);
}

#[test]
fn evaluation_serializes_for_explain() {
    let set = load(REFUSAL);
    let e = survey().run(&set);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["rules"][0]["name"], "refusal-survey");
    assert_eq!(json["rules"][0]["why"], "matched");
    assert_eq!(json["extracted"]["survey"], "Причина отказа");
    assert_eq!(json["plan"]["actions"][0]["action"], "set");
}
