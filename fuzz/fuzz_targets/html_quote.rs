//! Fuzz target: HTML-to-text conversion and quoted-reply stripping on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    mailrules_fuzz::html_quote(text);
});
