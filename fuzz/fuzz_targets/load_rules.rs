//! Fuzz target: rule-file loading (`RuleSet::from_sources`) on arbitrary TOML text; what loads
//! is then evaluated against a fixed message, and every error must render.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mailrules::message::{self, Message};
use mailrules::rules::RuleSet;

static MESSAGE: OnceLock<Message> = OnceLock::new();

const SAMPLE: &[u8] = b"From: Ivan <ivan@client.example>\r\nTo: support@acme.example\r\n\
Subject: Re: [#3] Ticket 7 order 12\r\nMessage-ID: <m1@client.example>\r\n\
In-Reply-To: <t3.x@acme.example>\r\nX-Order: 12\r\nDate: Mon, 2 Mar 2026 10:00:00 +0300\r\n\r\n\
Оценка: 5\r\nОтвет: да\r\nid=abc ABC-12 3,5\r\n\r\n> quoted\r\n";

fuzz_target!(|text: &str| {
    let message = MESSAGE.get_or_init(|| message::parse(SAMPLE).unwrap());
    match RuleSet::from_sources(&[(PathBuf::from("fuzz.toml"), text.to_string())]) {
        Ok(rules) => mailrules_fuzz::evaluate(message, "support", &rules),
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error result with no errors");
            let _ = errors.to_string();
        }
    }
});
