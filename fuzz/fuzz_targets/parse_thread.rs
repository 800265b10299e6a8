//! Fuzz target: raw bytes → `message::parse` → sender and thread resolution → message key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailrules::message;
use mailrules::pipeline::message_key;
use mailrules::thread::{resolve_sender, resolve_thread};
use mailrules_fuzz::{staff, subject_tag, FakeDirectory};

fuzz_target!(|raw: &[u8]| {
    mailrules_fuzz::let_parse_catch_mail_parser_panics();
    let Ok(message) = message::parse(raw) else {
        return;
    };
    let sender = resolve_sender(&message, &staff());
    if sender.forwarded_by.is_some() {
        // Only staff forwards hand the sender over to the forwarded author.
        assert!(staff().is_staff(&message.from.as_ref().unwrap().email));
    }
    let _ = resolve_thread(&message, &subject_tag(), &FakeDirectory::default());
    let key = message_key(Some(&message), raw);
    assert!(!key.is_empty());
    let _ = message.ancestor_ids();
});
