//! Fuzz target: HTML-to-text conversion and quoted-reply stripping on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailrules::message::{html_to_text, strip_quoted};

fuzz_target!(|text: &str| {
    let plain = html_to_text(text);
    let _ = strip_quoted(&plain);
    let _ = strip_quoted(text);
});
