//! Shared pieces of the fuzz targets: a task directory in memory, the staff list, and the fixed
//! rule set that uses every extractor kind.

use std::collections::HashMap;
use std::path::PathBuf;

use mailrules::config::Staff;
use mailrules::context::Envelope;
use mailrules::message::Message;
use mailrules::rules::RuleSet;
use mailrules::store::{StoreError, TaskDirectory};
use mailrules::thread::{resolve_sender, resolve_thread};

/// Tasks 1 to 50 exist; Message-IDs that start with `t<N>.` belong to task N.
pub struct FakeDirectory {
    statuses: HashMap<i64, String>,
}

impl Default for FakeDirectory {
    fn default() -> Self {
        let names = ["Новая", "В работе", "Завершенная"];
        let statuses = (1..=50)
            .map(|n| (n, names[n as usize % names.len()].to_string()))
            .collect();
        FakeDirectory { statuses }
    }
}

impl TaskDirectory for FakeDirectory {
    fn task_for_message_ids(&self, ids: &[&str]) -> Result<Option<i64>, StoreError> {
        Ok(ids.iter().find_map(|id| {
            let number = id.strip_prefix('t')?.split('.').next()?;
            number
                .parse::<i64>()
                .ok()
                .filter(|n| self.statuses.contains_key(n))
        }))
    }

    fn task_status(&self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(self.statuses.get(&id).cloned())
    }
}

pub fn staff() -> Staff {
    Staff {
        domains: vec!["acme.example".into()],
        addresses: vec!["boss@gmail.example".into()],
    }
}

pub fn subject_tag() -> regex::Regex {
    regex::Regex::new(r"\[#(\d+)\]").unwrap()
}

/// The rules in `seeds/every-extractor.toml`, loaded once.
pub fn every_extractor_rules() -> RuleSet {
    let text = include_str!("../seeds/every-extractor.toml");
    RuleSet::from_sources(&[(PathBuf::from("every-extractor.toml"), text.to_string())])
        .unwrap_or_else(|e| panic!("the fixed fuzz rules do not load:\n{e}"))
}

/// Resolves sender and thread the way the pipeline does, and evaluates `rules` both ways.
pub fn evaluate(message: &Message, mailbox: &str, rules: &RuleSet) {
    let sender = resolve_sender(message, &staff());
    let directory = FakeDirectory::default();
    let (thread, task_status) = resolve_thread(message, &subject_tag(), &directory)
        .unwrap_or_else(|e| panic!("the fake directory never fails: {e}"));
    let envelope = Envelope {
        message,
        mailbox,
        sender: sender.address.clone(),
        sender_kind: sender.kind,
        forwarded_by: sender.forwarded_by.clone(),
        thread,
        task_status,
    };
    let traced = rules.evaluate(&envelope, mailrules::config::Unmatched::Thread);
    let decided = rules.decide(&envelope, mailrules::config::Unmatched::Thread);
    // `decide` is `evaluate` without the traces of the rules that did not match.
    assert_eq!(traced.plan, decided.plan, "evaluate and decide disagree");
    assert_eq!(traced.extracted, decided.extracted);
    let _ = serde_json::to_string(&traced);
}

/// `message::parse` catches panics inside mail-parser (its debug assertions trip on hostile
/// MIME) and records the message as failed. libFuzzer's panic hook would abort on them anyway,
/// so panics located in mail-parser's source are let through to that `catch_unwind`; every
/// other panic still aborts and is reported.
pub fn let_parse_catch_mail_parser_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mail_parser = info
                .location()
                .is_some_and(|l| l.file().contains("mail-parser"));
            if !in_mail_parser {
                fuzzer_hook(info);
            }
        }));
    });
}
