//! Names must exist: analytics tables and columns, choice values (written or given by an
//! extractor), near-miss field names; and choice values kept in their declared spelling.

use super::*;
use crate::plan::{FieldValue, Text};

const SCHEMA: &str = r#"[[field]]
name = "Причина отказа"
type = "choice"
values = ["Дорого", "Не устроили сроки", "Другое"]

[[analytics]]
name = "Причины отказа"
columns = { "Причина" = { type = "choice", values = ["Дорого", "Другое"] }, "Дата" = "date" }
"#;

/// The schema (12 lines, see above: rules start on line 10) and then `rules`.
fn with_schema(rules: &str) -> String {
    format!("{SCHEMA}\n{rules}")
}

fn value(name: &str, value: &str) -> FieldValue {
    FieldValue {
        name: name.into(),
        value: Text::literal(value),
    }
}

#[test]
fn an_analytics_action_on_an_undeclared_table_names_the_nearest_one() {
    let src = with_schema(
        r#"[[rule]]
name = "survey"
[[rule.do]]
action = "analytics"
table = "Причина отказа"
values = { "Причина" = "Дорого" }
"#,
    );
    assert_eq!(
        errors(&src),
        [
            r#"rules.toml:14:9: rule "survey": unknown analytics table `Причина отказа`, did you mean `Причины отказа`?"#
        ]
    );
}

#[test]
fn a_trigger_on_an_undeclared_table_names_the_nearest_one() {
    let src = with_schema(
        r#"[[trigger]]
name = "t"
on = "analytics"
table = "Причины отказов"
[[trigger.do]]
action = "comment"
text = "x"
"#,
    );
    assert_eq!(
        errors(&src),
        [
            r#"rules.toml:13:9: trigger "t": unknown analytics table `Причины отказов`, did you mean `Причины отказа`?"#
        ]
    );
}

#[test]
fn an_undeclared_column_of_a_typed_table_names_the_nearest_one() {
    let src = with_schema(
        r#"[[rule]]
name = "survey"
[[rule.do]]
action = "analytics"
table = "Причины отказа"
values = { "Прична" = "Дорого" }
"#,
    );
    assert_eq!(
        errors(&src),
        [
            r#"rules.toml:15:12: rule "survey": analytics table "Причины отказа" has no column: unknown column `Прична`, did you mean `Причина`?"#
        ]
    );
}

#[test]
fn a_literal_choice_value_outside_the_list_names_the_nearest_one() {
    let src = with_schema(
        r#"[[rule]]
name = "refusal"
[[rule.do]]
action = "create_task"
fields = { "Причина отказа" = "Дорога" }
[[rule.do]]
action = "analytics"
table = "Причины отказа"
values = { "Причина" = "Дешево" }
"#,
    );
    assert_eq!(
        errors(&src),
        [
            r#"rules.toml:14:31: rule "refusal": value "Дорога" is not a value of field "Причина отказа", did you mean "Дорого"?"#,
            r#"rules.toml:18:24: rule "refusal": value "Дешево" is not a value of column "Причина"; its values are "Дорого", "Другое""#,
        ]
    );
}

#[test]
fn an_extractor_default_or_map_value_outside_the_list_is_an_error_where_it_is_written() {
    let src = with_schema(
        r#"[[rule]]
name = "refusal"
[rule.extract]
reason = { after = "Причина:", map = { "дорого" = "Дорого", "долго" = "Сроки" }, default = "Другие" }
[[rule.do]]
action = "set"
fields = { "Причина отказа" = "{reason}" }
"#,
    );
    assert_eq!(
        errors(&src),
        [
            r#"rules.toml:13:71: rule "refusal": `map` of {reason} "Сроки" is not a value of field "Причина отказа"; its values are "Дорого", "Не устроили сроки", "Другое""#,
            r#"rules.toml:13:92: rule "refusal": `default` of {reason} "Другие" is not a value of field "Причина отказа", did you mean "Другое"?"#,
        ]
    );
}

#[test]
fn a_field_name_two_edits_from_a_declared_one_is_a_typo() {
    let src = with_schema(
        r#"[[rule]]
name = "refusal"
[[rule.do]]
action = "set"
fields = { "Причина отказаа" = "Дорого", "Источник" = "почта" }
task = { field = "причина отказа", is = "Дорого" }
"#,
    );
    // "Источник" is far from every declared name: a free text field, as in version 1.
    assert_eq!(
        errors(&src),
        [
            r#"rules.toml:14:12: rule "refusal": field "Причина отказаа" is not declared, did you mean "Причина отказа"? (an undeclared field is a free text field, but this name is too close to a declared one to be meant)"#,
            r#"rules.toml:15:18: rule "refusal": field "причина отказа" is not declared, did you mean "Причина отказа"? (an undeclared field is a free text field, but this name is too close to a declared one to be meant)"#,
        ]
    );
}

#[test]
fn choice_values_are_planned_in_their_declared_spelling() {
    let set = load(&with_schema(
        r#"[[rule]]
name = "refusal"
[rule.extract]
reason = { after = "Причина:" }
[[rule.do]]
action = "create_task"
fields = { "Причина отказа" = "ДОРОГО", "Источник" = "почта" }
[[rule.do]]
action = "analytics"
table = "Причины отказа"
values = { "Причина" = "{reason}", "Дата" = "21.11.2026" }
"#,
    ));
    let e = mail("a@shop.example", "Отказ", "Причина: дорого\n").run(&set);
    let acts = actions(&e);
    let ActionKind::CreateTask { fields, .. } = &acts[0] else {
        panic!("not a task: {acts:?}");
    };
    assert_eq!(
        fields,
        &[
            value("Причина отказа", "Дорого"),
            value("Источник", "почта")
        ]
    );
    assert_eq!(
        acts[1],
        ActionKind::Analytics {
            table: "Причины отказа".into(),
            values: vec![value("Причина", "Дорого"), value("Дата", "2026-11-21")],
        }
    );
}

#[test]
fn a_value_outside_a_choice_column_fails_the_message() {
    let set = load(&with_schema(
        r#"[[rule]]
name = "refusal"
[rule.extract]
reason = { after = "Причина:" }
[[rule.do]]
action = "analytics"
table = "Причины отказа"
values = { "Причина" = "{reason}" }
"#,
    ));
    let e = mail("a@shop.example", "Отказ", "Причина: долго\n").run(&set);
    let err = e.plan.expect_err("the value is not one of the column's");
    assert_eq!(
        err.to_string(),
        r#"rule "refusal": column "Причина": "долго" is not one of its values (Дорого, Другое)"#
    );
}

#[test]
fn a_choice_column_needs_its_values() {
    let src = "[[analytics]]\nname = \"t\"\ncolumns = { \"a\" = { type = \"choice\" }, \"b\" = { type = \"numbr\" } }\n";
    assert_eq!(
        errors(src),
        [
            r#"rules.toml:3:19: analytics "t": column `a` of type "choice" needs `values`, the list of allowed values"#,
            r#"rules.toml:3:55: analytics "t": unknown type `numbr`, did you mean `number`?"#,
        ]
    );
}

#[test]
fn field_names_in_trigger_and_schedule_conditions_are_checked_too() {
    let src = with_schema(
        r#"[[trigger]]
name = "t"
on = "field_changed"
[trigger.when]
any = [ { "Причина откза" = "Дорого" }, { status = "x", "Источник" = "y" } ]
[[trigger.do]]
action = "comment"
text = "x"

[[schedule]]
name = "s"
every = "1h"
[schedule.when]
field_older_than = { "Причина Отказа" = "1d" }
[[schedule.do]]
action = "comment"
text = "x"
"#,
    );
    assert_eq!(
        errors(&src),
        [
            r#"rules.toml:14:11: trigger "t": field "Причина откза" is not declared, did you mean "Причина отказа"? (an undeclared field is a free text field, but this name is too close to a declared one to be meant)"#,
            r#"rules.toml:23:22: schedule "s": field "Причина Отказа" is not declared, did you mean "Причина отказа"? (an undeclared field is a free text field, but this name is too close to a declared one to be meant)"#,
        ]
    );
}

#[test]
fn a_variable_that_sets_a_choice_renders_in_its_declared_spelling_everywhere() {
    let set = load(&with_schema(
        r#"[[rule]]
name = "refusal"
[rule.extract]
reason = { after = "Причина:" }
[[rule.do]]
action = "set"
task = "7"
fields = { "Причина отказа" = "{reason}" }
[[rule.do]]
action = "comment"
task = "7"
text = "Причина: {reason}"
"#,
    ));
    let e = mail("a@shop.example", "Отказ", "Причина: не устроили СРОКИ\n").run(&set);
    assert_eq!(
        actions(&e)[1],
        ActionKind::Comment {
            text: Text::literal("Причина: Не устроили сроки"),
            auto: true,
        }
    );
}

#[test]
fn a_condition_on_a_choice_outside_its_list_is_an_error() {
    let src = with_schema(
        r#"[[trigger]]
name = "cheap"
on = "analytics"
table = "Причины отказа"
[trigger.when]
"Причина" = { any = ["дорого", "Дешево"] }
[[trigger.do]]
action = "comment"
text = "x"

[[schedule]]
name = "s"
every = "1h"
[schedule.when]
not = { "Причина отказа" = "Не устроили срок" }
[[schedule.do]]
action = "comment"
text = "x"
"#,
    );
    assert_eq!(
        errors(&src),
        [
            r#"rules.toml:15:32: trigger "cheap": value "Дешево" is not a value of column "Причина"; its values are "Дорого", "Другое""#,
            r#"rules.toml:24:28: schedule "s": value "Не устроили срок" is not a value of field "Причина отказа", did you mean "Не устроили сроки"?"#,
        ]
    );
}
