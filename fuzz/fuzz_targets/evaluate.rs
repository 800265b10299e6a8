//! Fuzz target: extractors, conversions and template rendering (see `evaluate_message`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    mailrules_fuzz::let_parse_catch_mail_parser_panics();
    mailrules_fuzz::evaluate_message(raw);
});
