//! Fuzz target: raw bytes → `message::parse` → sender and thread resolution → message key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    mailrules_fuzz::let_parse_catch_mail_parser_panics();
    mailrules_fuzz::parse_thread(raw);
});
