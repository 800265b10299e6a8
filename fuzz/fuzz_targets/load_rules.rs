//! Fuzz target: rule-file loading on arbitrary TOML text (see `load_rules`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    mailrules_fuzz::load_rules(text);
});
