//! What each fuzz target runs on one input, and the pieces they share: a task directory in
//! memory, the staff list, and the fixed rule set that uses every extractor kind. The project's
//! `tests/fuzz_regressions.rs` includes this file to run every saved finding the same way.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use mailrules::config::Staff;
use mailrules::context::Envelope;
use mailrules::message::{self, html_to_text, strip_quoted, Message};
use mailrules::pipeline::message_key;
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

/// `parse_thread`: raw bytes → `message::parse` → sender and thread resolution → message key.
pub fn parse_thread(raw: &[u8]) {
    let Ok(message) = message::parse(raw) else {
        return;
    };
    let sender = resolve_sender(&message, &staff());
    if sender.forwarded_by.is_some() {
        // Only staff forwards hand the sender over to the forwarded author.
        let from = message.from.as_ref().map(|a| a.email.as_str());
        assert!(staff().is_staff(from.unwrap_or_default()));
    }
    let _ = resolve_thread(&message, &subject_tag(), &FakeDirectory::default());
    let key = message_key(Some(&message), raw);
    assert!(!key.is_empty());
    let _ = message.ancestor_ids();
}

/// `evaluate`: extractors, conversions and template rendering; the fixed rules of
/// `seeds/every-extractor.toml` are evaluated against the message made from the input.
pub fn evaluate_message(raw: &[u8]) {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    let rules = RULES.get_or_init(every_extractor_rules);
    let Ok(message) = message::parse(raw) else {
        return;
    };
    evaluate(&message, "support", rules);
}

const SAMPLE: &str = "From: Ivan <ivan@client.example>\r\nTo: support@acme.example\r\n\
Subject: Re: [#3] Ticket 7 order 12\r\nMessage-ID: <m1@client.example>\r\n\
In-Reply-To: <t3.x@acme.example>\r\nX-Order: 12\r\nDate: Mon, 2 Mar 2026 10:00:00 +0300\r\n\r\n\
Оценка: 5\r\nОтвет: да\r\nid=abc ABC-12 3,5\r\n\r\n> quoted\r\n";

/// `load_rules`: rule-file loading on arbitrary TOML text; what loads is then evaluated
/// against a fixed message, and every error must render.
pub fn load_rules(text: &str) {
    static MESSAGE: OnceLock<Message> = OnceLock::new();
    let message = MESSAGE.get_or_init(|| {
        message::parse(SAMPLE.as_bytes()).unwrap_or_else(|e| panic!("the fixed fuzz message: {e}"))
    });
    match RuleSet::from_sources(&[(PathBuf::from("fuzz.toml"), text.to_string())]) {
        Ok(rules) => evaluate(message, "support", &rules),
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error result with no errors");
            let _ = errors.to_string();
        }
    }
}

/// `html_quote`: HTML-to-text conversion and quoted-reply stripping on arbitrary text.
pub fn html_quote(text: &str) {
    let plain = html_to_text(text);
    let _ = strip_quoted(&plain);
    let _ = strip_quoted(text);
}
