//! Data-driven tests of the pure core: a message and rules in, the expected decision out.
//!
//! Each folder under tests/plans/ is one case:
//! - `message.eml`: the message to explain;
//! - `rules/`: the rule files (absent: the shipped rules/ directory);
//! - `setup/`: messages ingested first, in name order (to have tasks to thread onto);
//! - `expected.json`: the decision — thread, sender, matched rules, extracted values, actions
//!   and error, exactly as `mailrules explain --json` reports them.
//!
//! `MAILRULES_BLESS=1 cargo test --test plans` rewrites expected.json from the current output;
//! review the diff before committing it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailrules::config::Config;
use mailrules::pipeline::{Incoming, Pipeline};
use mailrules::rules::RuleSet;
use mailrules::store::Store;
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn decision(case: &Path) -> Value {
    let rules_dir = if case.join("rules").is_dir() {
        case.join("rules")
    } else {
        root().join("rules")
    };
    let config_text = "[staff]\ndomains = [\"acme.example\"]\n\n[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"Поддержка ACME <support@acme.example>\"\n";
    let config = Config::from_str(config_text, &case.join("mailrules.toml")).unwrap();
    let rules = RuleSet::load_dir(&rules_dir).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    let mut pipeline = Pipeline::new(
        Arc::new(config),
        Arc::new(rules),
        Store::open_in_memory().unwrap(),
    );

    let setup = case.join("setup");
    if setup.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&setup)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let batch = files
            .iter()
            .map(|f| Incoming::new(std::fs::read(f).unwrap(), "cli", f.display().to_string()))
            .collect();
        for outcome in pipeline.process_batch(batch, None).unwrap() {
            assert!(
                outcome.error.is_none(),
                "{}: setup failed: {:?}",
                case.display(),
                outcome.error
            );
        }
    }

    let raw = std::fs::read(case.join("message.eml")).unwrap();
    let explanation = serde_json::to_value(pipeline.explain(&raw, "cli").unwrap()).unwrap();
    let matched: Vec<Value> = explanation["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["matched"] == true)
        .map(|r| r["name"].clone())
        .collect();
    json!({
        "thread": explanation["thread"],
        "sender": explanation["sender"],
        "sender_kind": explanation["sender_kind"],
        "forwarded_by": explanation["forwarded_by"],
        "matched": matched,
        "extracted": explanation["extracted"],
        "actions": explanation["actions"],
        "error": explanation["error"],
    })
}

#[test]
fn every_case_decides_as_expected() {
    let bless = std::env::var_os("MAILRULES_BLESS").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root().join("tests/plans"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "the cases went missing");
    let mut failures = Vec::new();
    for case in &cases {
        let got = decision(case);
        let expected_path = case.join("expected.json");
        if bless {
            std::fs::write(
                &expected_path,
                serde_json::to_string_pretty(&got).unwrap() + "\n",
            )
            .unwrap();
            continue;
        }
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|_| panic!("{} has no expected.json", case.display())),
        )
        .unwrap();
        if got != expected {
            failures.push(format!(
                "{}:\nexpected {}\n     got {}",
                case.display(),
                serde_json::to_string_pretty(&expected).unwrap(),
                serde_json::to_string_pretty(&got).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
