//! Data-driven tests over `fixtures/encodings/*.eml`: each message must decode to the values
//! `fixtures/encodings/make.py` wrote into `expected.json` from the text it encoded.

use std::path::PathBuf;

use serde_json::Value;

use super::{parse, strip_quoted, Message};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/encodings")
}

fn expectations() -> Vec<Value> {
    let path = fixtures_dir().join("expected.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    value.as_array().unwrap().clone()
}

fn check(msg: &Message, expected: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    let mut expect = |what: &str, actual: Value, wanted: &Value| {
        if &actual != wanted {
            failures.push(format!("{what}: got {actual}, want {wanted}"));
        }
    };
    let map = expected.as_object().unwrap();
    for (key, wanted) in map {
        match key.as_str() {
            "file" => {}
            "subject" => expect(key, Value::from(msg.subject.as_str()), wanted),
            "from" => expect(
                key,
                msg.from.as_ref().map(|a| a.email.as_str()).into(),
                wanted,
            ),
            "from_name" => expect(
                key,
                msg.from.as_ref().and_then(|a| a.name.as_deref()).into(),
                wanted,
            ),
            "to" => expect(key, emails(&msg.to), wanted),
            "to_names" => expect(
                key,
                msg.to
                    .iter()
                    .map(|a| a.name.clone())
                    .collect::<Vec<_>>()
                    .into(),
                wanted,
            ),
            "cc" => expect(key, emails(&msg.cc), wanted),
            "reply_to" => expect(key, emails(&msg.reply_to), wanted),
            "resent_from" => expect(
                key,
                msg.resent_from.as_ref().map(|a| a.email.as_str()).into(),
                wanted,
            ),
            "message_id" => expect(key, msg.message_id.as_deref().into(), wanted),
            "in_reply_to" => expect(key, msg.in_reply_to.clone().into(), wanted),
            "references" => expect(key, msg.references.clone().into(), wanted),
            "date" => expect(
                key,
                msg.date
                    .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .into(),
                wanted,
            ),
            "body" => expect(key, Value::from(msg.body.as_str()), wanted),
            "body_from_html" => expect(key, Value::from(msg.body_from_html), wanted),
            "own_words" => expect(key, Value::from(strip_quoted(&msg.body)), wanted),
            "header" => {
                for (name, value) in wanted.as_object().unwrap() {
                    expect(&format!("header {name}"), msg.header(name).into(), value);
                }
            }
            "forwarded" => {
                let actual = msg.forwarded.as_ref().map(|f| {
                    serde_json::json!({
                        "email": f.from.email,
                        "name": f.from.name,
                        "subject": f.subject,
                        "body": f.body,
                    })
                });
                expect(key, actual.into(), wanted);
            }
            "attachments" => {
                let actual: Vec<Value> = msg
                    .attachments
                    .iter()
                    .zip(wanted.as_array().unwrap())
                    .map(|(a, w)| {
                        // Sizes are asserted only where the generator knows them.
                        let mut v = serde_json::json!({
                            "name": a.name, "content_type": a.content_type,
                        });
                        if w.get("size").is_some() {
                            v["size"] = a.size.into();
                        }
                        v
                    })
                    .collect();
                let count_ok = msg.attachments.len() == wanted.as_array().unwrap().len();
                let actual = if count_ok {
                    Value::from(actual)
                } else {
                    Value::from(format!(
                        "{} attachments: {:?}",
                        msg.attachments.len(),
                        msg.attachments
                    ))
                };
                expect(key, actual, wanted);
            }
            other => panic!("expected.json has an unknown key {other:?}"),
        }
    }
    failures
}

fn emails(list: &[super::Address]) -> Value {
    list.iter()
        .map(|a| a.email.as_str())
        .collect::<Vec<_>>()
        .into()
}

#[test]
fn every_fixture_decodes_to_its_expected_values() {
    let expectations = expectations();
    assert!(
        expectations.len() >= 20,
        "expected.json lists too few fixtures"
    );
    let mut failures = Vec::new();
    for expected in &expectations {
        let file = expected["file"].as_str().unwrap();
        let raw = std::fs::read(fixtures_dir().join(file)).unwrap();
        match parse(&raw) {
            Ok(msg) => {
                for failure in check(&msg, expected) {
                    failures.push(format!("{file}: {failure}"));
                }
            }
            Err(e) => failures.push(format!("{file}: {e}")),
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
fn every_fixture_file_is_listed() {
    let listed: Vec<String> = expectations()
        .iter()
        .map(|e| e["file"].as_str().unwrap().to_string())
        .collect();
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".eml") {
            assert!(
                listed.contains(&name),
                "{name} has no entry in expected.json"
            );
        }
    }
}
