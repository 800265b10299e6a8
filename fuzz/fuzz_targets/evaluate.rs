//! Fuzz target: extractors, conversions and template rendering. The fixed rules of
//! `seeds/every-extractor.toml` are evaluated against the message made from the input.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mailrules::message;
use mailrules::rules::RuleSet;
use mailrules_fuzz::{evaluate, every_extractor_rules};

static RULES: OnceLock<RuleSet> = OnceLock::new();

fuzz_target!(|raw: &[u8]| {
    mailrules_fuzz::let_parse_catch_mail_parser_panics();
    let rules = RULES.get_or_init(every_extractor_rules);
    let Ok(message) = message::parse(raw) else {
        return;
    };
    evaluate(&message, "support", rules);
});
