//! The prefilter (regex sets, literal automaton, address index) must give exactly the answers
//! of the plain evaluator, whatever the rules and messages; and the `when` of triggers.

use std::collections::BTreeMap;

use super::*;
use crate::rules::{holds, Condition, Test};

/// Many rules mixing every prefiltered test, nested in `any`/`all`/`not`, with shared patterns.
fn many_rules(n: usize) -> String {
    let mut src = String::new();
    for i in 0..n {
        let when = match i % 9 {
            0 => format!("from = \"*@shop{}.example\"", i % 13),
            1 => format!("from = \"client{i}@shop.example\"\nsubject = {{ contains = \"заказ {}\" }}", i % 7),
            2 => format!("subject = {{ regex = '^Опрос: (?P<survey>\\w+) {}' }}", i % 11),
            3 => format!(
                "body = {{ regex = '(?i)причина: {}|z{i}z' }}",
                ["дорого", "долго", "другое"][i % 3]
            ),
            4 => format!("body = {{ contains = \"Оценка: {}\" }}", i % 5),
            5 => format!(
                "any = [ {{ from = \"c?ient{i}@*\" }}, {{ subject = {{ contains = \"СРОЧНО {}\" }} }} ]",
                i % 4
            ),
            6 => format!(
                "not = {{ body = {{ regex = 'x{}( |$)|q{i}q' }} }}\nfrom = {{ any = [\"*@a{i}.example\", \"b@shop.example\"] }}",
                i % 9
            ),
            7 => format!(
                "body = {{ regex = '(?m)^\\s*Оценка: {}$' }}\nany = [ {{ subject = {{ regex = 'Заказ {}\\s+срочно' }} }}, {{ subject = {{ regex = '(срочно {})+' }} }} ]",
                i % 5,
                i % 7,
                i % 4
            ),
            _ => format!(
                "all = [ {{ subject = {{ regex = '\\[#(?P<task>{})\\]' }} }}, {{ body = {{ contains = \"{}\" }} }} ]",
                i % 20,
                ["спасибо", "дорого", "ß"][i % 3]
            ),
        };
        src.push_str(&format!(
            "[[rule]]\nname = \"r{i}\"\ncontinue = {}\n[rule.when]\n{when}\n[[rule.do]]\naction = \"comment\"\ntext = \"{{rule}}\"\n\n",
            i % 3 == 0
        ));
    }
    src
}

fn messages() -> Vec<Mail> {
    let mut out = Vec::new();
    for i in 0..40 {
        let from = match i % 5 {
            0 => format!("Client{i}@Shop.Example"),
            1 => format!("x@shop{}.example", i % 13),
            2 => "b@SHOP.example".to_string(),
            3 => format!("ciient{i}@other.example"),
            _ => "nobody@nowhere.example".to_string(),
        };
        let subject = match i % 4 {
            0 => format!("Опрос: Отказ {} [#{}]", i % 11, i % 20),
            1 => format!("Re: Заказ {} срочно {}", i % 7, i % 4),
            2 => format!("[#{}] Вопрос", i % 20),
            _ => String::new(),
        };
        let body = format!(
            "Причина: {}\nОценка: {}\nСПАСИБО, STRASSE x{}\n",
            ["Дорого", "ДОЛГО", "нет"][i % 3],
            i % 5,
            i % 9
        );
        out.push(mail(&from, &subject, &body));
    }
    out
}

#[test]
fn the_prefilter_agrees_with_the_plain_evaluator() {
    // 300 rules put more than one regex set's worth of distinct patterns on the body.
    let set = load(&many_rules(300));
    let mut matches = 0;
    for message in messages() {
        // `run` compares the prefiltered and the plain evaluation in full.
        let e = message.run(&set);
        matches += matched(&e).len();
    }
    assert!(
        matches > 40,
        "the messages should match many rules, matched {matches}"
    );
    // Few rules: the literals that gate regexes are looked for one by one, not by automaton.
    let set = load(&many_rules(9));
    let mut matches = 0;
    for message in messages() {
        matches += matched(&message.run(&set)).len();
    }
    assert!(matches > 5, "nine rules should match, matched {matches}");
}

#[test]
fn every_subject_body_and_from_test_gets_a_slot() {
    let set = load(&many_rules(16));
    let mut slotted = 0;
    for rule in set.rules() {
        for condition in &rule.when.conditions {
            let test = match condition {
                Condition::From(l) | Condition::Subject(l) | Condition::Body(l) => &l.test,
                _ => continue,
            };
            match test {
                Test::Glob { slot, .. }
                | Test::Contains { slot, .. }
                | Test::Regex { slot, .. } => {
                    assert!(slot.is_some(), "rule {} has an unslotted test", rule.name);
                    slotted += 1;
                }
                _ => {}
            }
        }
    }
    assert!(slotted >= 8);
}

#[test]
fn trigger_conditions_over_values() {
    let set = load(
        r#"
[[trigger]]
name = "negative-feedback"
on = "analytics"
table = "Удовлетворенность клиентов"
[trigger.when]
any = [ { "Скорость ответа" = "медленно" }, { "Оценка менеджера" = { any = ["плохо", "очень плохо"] } } ]
not = { "Менеджер" = { exists = true } }
[[trigger.do]]
action = "create_task"
parent = "{task}"
title = "Негативный отзыв по задаче #{task}"
description = "{row}"
"#,
    );
    let when = &set.triggers()[0].when;
    let row = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert!(holds(when, &row(&[("Скорость ответа", "Медленно")])));
    assert!(holds(
        when,
        &row(&[
            ("Скорость ответа", "быстро"),
            ("Оценка менеджера", "очень плохо")
        ])
    ));
    assert!(!holds(
        when,
        &row(&[
            ("Скорость ответа", "быстро"),
            ("Оценка менеджера", "отлично")
        ])
    ));
    assert!(!holds(
        when,
        &row(&[("Скорость ответа", "медленно"), ("Менеджер", "Анна")])
    ));
    assert!(!holds(when, &row(&[])));
}

#[test]
fn contains_texts_with_digits_skip_bodies_without_them_and_agree() {
    // Every body `contains` text has a run of digits and punctuation: a body without any of
    // the runs is not lower-cased for them.
    let mut src = String::new();
    for (i, code) in ["R-0977", "r-0897", "Ǆ-1234"].iter().enumerate() {
        src.push_str(&format!(
            "[[rule]]\nname = \"report{i}\"\n[rule.when]\nbody = {{ contains = \"Код отчёта: {code}\" }}\n[[rule.do]]\naction = \"comment\"\ntext = \"{{rule}}\"\n\n"
        ));
    }
    let set = load(&src);
    let bodies = [
        ("КОД ОТЧЁТА: r-0977, спасибо", Some("report0")),
        ("код отчёта: R-0897", Some("report1")),
        ("Код Отчёта: ǆ-1234", Some("report2")),
        ("Код отчёта: \u{212A}-0977", None),
        ("Код отчёта: R-0976", None),
        ("no report here", None),
        ("", None),
    ];
    for (body, rule) in bodies {
        let e = mail("a@shop.example", "report", body).run(&set);
        assert_eq!(matched(&e).first().copied(), rule, "{body}");
    }
}

#[test]
fn only_ascii_digits_and_punctuation_lower_case_to_themselves() {
    // What the `contains` gate relies on: no other character's lower case holds one.
    for ch in (0u32..0x11_0000).filter_map(char::from_u32) {
        let lower = crate::text::lowercase(&ch.to_string());
        let caseless = lower
            .bytes()
            .any(|b| b.is_ascii() && !b.is_ascii_alphabetic());
        assert!(
            !caseless || (ch.is_ascii() && !ch.is_ascii_alphabetic()),
            "U+{:04X}",
            ch as u32
        );
    }
}
