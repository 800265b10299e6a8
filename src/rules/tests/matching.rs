//! Matching: every condition kind, order, priority, continue, mailboxes, and the traces.

use super::*;

/// One rule named "r" with the given `[rule.when]` body.
fn rule_with(when: &str) -> RuleSet {
    load(&format!(
        "[[rule]]\nname = \"r\"\n[rule.when]\n{when}\n[[rule.do]]\naction = \"ignore\"\n"
    ))
}

fn base() -> Mail {
    mail(
        "Client@Shop.Example",
        "Опрос: Причина отказа [#17]",
        "Здравствуйте!\nПричина: Дорого\nКомментарий: нашли дешевле\n--\nИван",
    )
}

/// (when, message, expected `why`): "matched" or the reason it did not match.
fn cases() -> Vec<(&'static str, Mail, &'static str)> {
    vec![
        // from: glob, case-insensitive, on the resolved sender
        (r#"from = "*@shop.example""#, base(), "matched"),
        (
            r#"from = "*@survey.example""#,
            base(),
            r#"from: glob '*@survey.example' did not match "Client@Shop.Example""#,
        ),
        (r#"from = "client@shop.example""#, base(), "matched"),
        (r#"from = "cl?ent@*""#, base(), "matched"),
        (
            r#"from = { any = ["*@a.example", "*@SHOP.example"] }"#,
            base(),
            "matched",
        ),
        (r#"from = { contains = "shop" }"#, base(), "matched"),
        (
            r#"from = { regex = '^(?P<who>[a-z]+)@' }"#,
            base(),
            r#"from: regex '^(?P<who>[a-z]+)@' did not match "Client@Shop.Example""#,
        ),
        // to: To, Cc and the delivery headers
        (r#"to = "support@acme.example""#, base(), "matched"),
        (
            r#"to = "sales@acme.example""#,
            base().cc("Sales@Acme.Example"),
            "matched",
        ),
        (
            r#"to = "orders@acme.example""#,
            base().header("Delivered-To", "orders@acme.example"),
            "matched",
        ),
        (
            r#"to = "*@inbox.example""#,
            base().header("X-Original-To", "\"Box, A\" <a@inbox.example>"),
            "matched",
        ),
        (
            r#"to = "r@acme.example""#,
            base().header("Resent-To", "r@acme.example"),
            "matched",
        ),
        (
            r#"to = "sales@acme.example""#,
            base(),
            "to: glob 'sales@acme.example' did not match any recipient (support@acme.example)",
        ),
        // subject: is / contains / regex / any
        (
            r#"subject = "опрос: причина отказа [#17]""#,
            base(),
            "matched",
        ),
        (r#"subject = { contains = "ПРИЧИНА" }"#, base(), "matched"),
        (
            r#"subject = { regex = '^Опрос: .+ \[#\d+\]' }"#,
            base(),
            "matched",
        ),
        (
            r#"subject = { regex = '^Заказ' }"#,
            base(),
            r#"subject: regex '^Заказ' did not match "Опрос: Причина отказа [#17]""#,
        ),
        (
            r#"subject = { any = ["Привет", "Опрос"] }"#,
            base(),
            r#"subject: any of ['Привет', 'Опрос'] did not match "Опрос: Причина отказа [#17]""#,
        ),
        (
            r#"subject = { is = "Опрос" }"#,
            base(),
            r#"subject: is 'Опрос' did not match "Опрос: Причина отказа [#17]""#,
        ),
        // body
        (r#"body = { contains = "причина:" }"#, base(), "matched"),
        (
            r#"body = { regex = '(?m)^Причина: Дорого$' }"#,
            base(),
            "matched",
        ),
        (
            r#"body = { contains = "Оценка" }"#,
            base(),
            r#"body: contains 'Оценка' did not match "Здравствуйте! Причина: Дорого Комментарий: нашли дешевле -- Иван""#,
        ),
        // header
        (
            r#"header = { "X-Mailer" = { contains = "taskas" } }"#,
            base().header("X-Mailer", "TaskAs 2.0"),
            "matched",
        ),
        (
            r#"header = { "x-mailer" = { exists = true } }"#,
            base().header("X-Mailer", "a"),
            "matched",
        ),
        (
            r#"header = { "X-Mailer" = { exists = false } }"#,
            base(),
            "matched",
        ),
        (
            r#"header = { "X-Mailer" = { exists = true } }"#,
            base(),
            "header X-Mailer: expected it to exist, it is absent",
        ),
        (
            r#"header = { "X-Mailer" = "Outlook" }"#,
            base(),
            "header X-Mailer: the message has no such header",
        ),
        (
            r#"header = { "Auto-Submitted" = { any = ["auto-replied", "auto-generated"] } }"#,
            base().header("Auto-Submitted", "no"),
            r#"header Auto-Submitted: any of ['auto-replied', 'auto-generated'] did not match "no""#,
        ),
        // has_attachment, thread, sender, task_status
        (
            "has_attachment = true",
            base().attachment("счёт.pdf"),
            "matched",
        ),
        (
            "has_attachment = true",
            base(),
            "has_attachment: the message has no attachments",
        ),
        (
            "has_attachment = false",
            base().attachment("a.pdf"),
            "has_attachment: the message has 1 attachment(s)",
        ),
        (
            r#"thread = "reply""#,
            base().on_task(17, "В работе"),
            "matched",
        ),
        (r#"thread = "new""#, base(), "matched"),
        (
            r#"thread = "reply""#,
            base(),
            r#"thread: expected "reply", the message is "new""#,
        ),
        (r#"sender = "staff""#, base().staff(), "matched"),
        (
            r#"sender = "staff""#,
            base(),
            r#"sender: expected "staff", Client@Shop.Example is "contact""#,
        ),
        (
            r#"task_status = "в работе""#,
            base().on_task(17, "В работе"),
            "matched",
        ),
        (
            r#"task_status = { any = ["Завершенная", "Отмененная"] }"#,
            base().on_task(17, "Отмененная"),
            "matched",
        ),
        (
            r#"task_status = "В работе""#,
            base(),
            "task_status: the message has no task",
        ),
        // any / all / not
        (
            r#"any = [ { from = "*@x.example" }, { subject = { contains = "опрос" } } ]"#,
            base(),
            "matched",
        ),
        (
            r#"any = [ { from = "*@x.example" }, { thread = "reply" } ]"#,
            base(),
            r#"any: none held (from: glob '*@x.example' did not match "Client@Shop.Example"; thread: expected "reply", the message is "new")"#,
        ),
        (
            r#"all = [ { from = "*@shop.example" }, { body = { contains = "дорого" } } ]"#,
            base(),
            "matched",
        ),
        (
            r#"all = [ { from = "*@shop.example" }, { body = { contains = "дёшево" } } ]"#,
            base(),
            r#"all: body: contains 'дёшево' did not match "Здравствуйте! Причина: Дорого Комментарий: нашли дешевле -- Иван""#,
        ),
        (r#"not = { from = "*@acme.example" }"#, base(), "matched"),
        (
            r#"not = { sender = "contact" }"#,
            base(),
            "not: the conditions inside `not` held",
        ),
        // several keys: AND, the first failing one (in file order) is reported
        (
            "thread = \"new\"\nsubject = { contains = \"заказ\" }\nfrom = \"*@nowhere.example\"",
            base(),
            r#"subject: contains 'заказ' did not match "Опрос: Причина отказа [#17]""#,
        ),
        // an empty `when` always holds
        ("", base(), "matched"),
    ]
}

#[test]
fn every_condition_kind() {
    for (when, message, expected) in cases() {
        let e = message.run(&rule_with(when));
        assert_eq!(why(&e, "r"), expected, "when: {when}");
        assert_eq!(e.rules[0].matched, expected == "matched", "when: {when}");
    }
}

#[test]
fn named_groups_become_values() {
    let set = rule_with(r#"subject = { regex = '^Опрос: (?P<survey>.+) \[#(?P<task>\d+)\]' }"#);
    let e = base().run(&set);
    assert_eq!(e.extracted["survey"], "Причина отказа");
    assert_eq!(e.extracted["task"], "17");
}

#[test]
fn long_values_are_cut_in_traces() {
    let long_subject = "Тема ".repeat(40);
    let e = mail("a@b.example", &long_subject, "").run(&rule_with(r#"subject = "x""#));
    let why = why(&e, "r");
    assert!(why.ends_with("…\""), "{why}");
    assert!(why.chars().count() < 130, "{why}");
}

const ORDERED: &str = r#"
[[rule]]
name = "first"
[rule.when]
subject = { contains = "заказ" }
[[rule.do]]
action = "comment"
text = "first"

[[rule]]
name = "second"
continue = true
[rule.when]
subject = { contains = "заказ" }
[[rule.do]]
action = "comment"
text = "second"

[[rule]]
name = "urgent"
priority = 10
continue = true
[rule.when]
subject = { contains = "срочно" }
[[rule.do]]
action = "comment"
text = "urgent"

[[rule]]
name = "support-only"
mailbox = ["support"]
priority = 5
[rule.when]
subject = { contains = "поддержка" }
[[rule.do]]
action = "ignore"
"#;

#[test]
fn priority_then_file_order_and_continue() {
    let set = load(ORDERED);
    let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["urgent", "support-only", "first", "second"]);

    // "urgent" continues, "first" ends the search: "second" is never tried.
    let e = mail("a@b.example", "Срочно: заказ 5", "").run(&set);
    assert_eq!(matched(&e), ["urgent", "first"]);
    assert_eq!(e.rules.len(), 3);
    assert_eq!(plan(&e).rule.as_deref(), Some("urgent"));
    let texts: Vec<String> = actions(&e)
        .into_iter()
        .map(|a| match a {
            ActionKind::Comment { text, .. } => text.render(None),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(texts, ["urgent", "first"]);
}

#[test]
fn mailbox_limits_rules() {
    let set = load(ORDERED);
    let e = mail("a@b.example", "Поддержка", "")
        .mailbox("sales")
        .run(&set);
    assert_eq!(
        why(&e, "support-only"),
        r#"mailbox: "sales" is not one of support"#
    );
    let e = mail("a@b.example", "Поддержка", "").run(&set);
    assert_eq!(matched(&e), ["support-only"]);
}
