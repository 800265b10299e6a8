//! Parse-level robustness over the real-world corpus in `fixtures/corpus/` (Dovecot's and
//! CPython's test mail): every file parses or returns `Err` without panicking, and known
//! messages decode to their real values.

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

use mailrules::message::{parse, Message};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpus")
}

/// Every message file of every corpus folder, as (folder/name, bytes).
fn corpus_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for folder in std::fs::read_dir(corpus_dir()).unwrap() {
        let folder = folder.unwrap().path();
        if !folder.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let is_message =
                name.ends_with(".eml") || (name.starts_with("msg_") && name.ends_with(".txt"));
            if is_message {
                let label = format!("{}/{name}", folder.file_name().unwrap().to_string_lossy());
                files.push((label, std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn parse_known(label: &str) -> Message {
    let raw = std::fs::read(corpus_dir().join(label)).unwrap();
    parse(&raw).unwrap_or_else(|e| panic!("{label}: {e}"))
}

#[test]
fn every_file_parses_or_fails_cleanly() {
    let files = corpus_files();
    assert!(
        files.len() >= 90,
        "corpus incomplete: {} files",
        files.len()
    );
    let mut panicked = Vec::new();
    let mut failed = Vec::new();
    let mut broken_invariants = Vec::new();
    for (label, raw) in &files {
        match panic::catch_unwind(AssertUnwindSafe(|| parse(raw))) {
            Err(_) => panicked.push(label.clone()),
            Ok(Err(_)) => failed.push(label.clone()),
            Ok(Ok(msg)) => {
                if msg.size != raw.len() {
                    broken_invariants.push(format!("{label}: size {}", msg.size));
                }
                if msg.body.contains('\r') {
                    broken_invariants.push(format!("{label}: CR in body"));
                }
                if msg.subject.contains(['\r', '\n']) || msg.subject != msg.subject.trim() {
                    broken_invariants.push(format!("{label}: unfolded subject {:?}", msg.subject));
                }
                if msg.headers.iter().any(|(_, v)| v.contains(['\r', '\n'])) {
                    broken_invariants.push(format!("{label}: folded header value"));
                }
            }
        }
    }
    assert!(panicked.is_empty(), "parse panicked on: {panicked:?}");
    assert!(broken_invariants.is_empty(), "{broken_invariants:#?}");
    // The one file without a single header line: a digest's body saved on its own.
    assert_eq!(failed, vec!["cpython-email/msg_19.txt".to_string()]);
}

#[test]
fn truncated_corpus_files_never_panic() {
    for (label, raw) in corpus_files() {
        for cut in [raw.len() / 3, raw.len() / 2, raw.len().saturating_sub(7)] {
            let result = panic::catch_unwind(|| parse(&raw[..cut]));
            assert!(result.is_ok(), "{label} cut at {cut} panicked");
        }
    }
}

#[test]
fn comment_style_from_and_message_id() {
    let msg = parse_known("cpython-email/msg_01.txt");
    assert_eq!(msg.subject, "This is a test message");
    let from = msg.from.unwrap();
    assert_eq!(from.email, "bbb@ddd.com");
    assert_eq!(from.name.as_deref(), Some("John X. Doe"));
    assert_eq!(
        msg.message_id.as_deref(),
        Some("15090.61304.110929.45684@aaa.zzz.org")
    );
    assert!(msg.body.contains("Do you like this message?"));
}

#[test]
fn null_sender_and_bare_local_sender() {
    // "From: MAILER DAEMON <>": a bounce's null sender is no address at all.
    assert_eq!(parse_known("cpython-email/msg_43.txt").from, None);
    // "From: foo": a local mailbox without a domain.
    let from = parse_known("cpython-email/msg_05.txt").from.unwrap();
    assert_eq!((from.name, from.email.as_str()), (None, "foo"));
}

#[test]
fn mailing_list_message() {
    let msg = parse_known("dovecot-thirdparty/014.eml");
    assert_eq!(msg.subject, "[Shapelib] need some help");
    let from = msg.from.unwrap();
    assert_eq!(from.email, "calpas2007@yahoo.fr");
    assert_eq!(from.name.as_deref(), Some("calpas calpas"));
    assert!(msg.body.starts_with("Dear all,"));
}

#[test]
fn encoded_word_subject() {
    assert_eq!(
        parse_known("dovecot-thirdparty/010.eml").subject,
        "こんにちは"
    );
}

#[test]
fn html_with_embedded_image() {
    let msg = parse_known("dovecot-thirdparty/016.eml");
    assert_eq!(msg.subject, "25 HTML + embedded image");
    assert!(msg.body_from_html);
    assert_eq!(msg.body, "Search for höhö");
    assert_eq!(msg.attachments.len(), 1);
    assert_eq!(msg.attachments[0].name, "kigaaldcbanejcbi.png");
    assert_eq!(msg.attachments[0].content_type, "image/png");
}

#[test]
fn message_wrapping_a_message_is_a_forward() {
    let msg = parse_known("cpython-email/msg_46.txt");
    assert_eq!(msg.subject, "GroupwiseForwardingTest");
    let forwarded = msg.forwarded.unwrap();
    assert_eq!(forwarded.from.email, "sender@example.net");
    assert_eq!(forwarded.from.name.as_deref(), Some("Dr. Sender"));
    assert_eq!(
        forwarded.subject.as_deref(),
        Some("GroupwiseForwardingTest")
    );
}

#[test]
fn delivery_report_and_reply_with_attached_mail_are_not_forwards() {
    let bounce = parse_known("cpython-email/msg_16.txt");
    assert_eq!(bounce.subject, "Delivery Notification: Delivery has failed");
    assert_eq!(bounce.forwarded, None);
    let reply = parse_known("dovecot-thirdparty/015.eml");
    assert_eq!(reply.subject, "Re: (#5290765) Proxmox Shop E-Mails");
    assert_eq!(reply.from.unwrap().email, "jsterr@proxforge.de");
    assert_eq!(reply.forwarded, None);
}

/// Deterministic xorshift, so a failure names a reproducible mutation.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn mutate(&mut self, raw: &[u8]) -> Vec<u8> {
        let mut out = raw.to_vec();
        if out.is_empty() {
            return out;
        }
        const NASTY: &[&[u8]] = &[
            b"=?", b"?=", b"\r\n", b"--", b"<", b"&#", b":", b"\n>", b"\xd0",
        ];
        for _ in 0..1 + self.next() % 8 {
            let at = (self.next() % out.len() as u64) as usize;
            match self.next() % 3 {
                0 => out[at] = self.next() as u8,
                1 => {
                    let piece = NASTY[(self.next() % NASTY.len() as u64) as usize];
                    out.splice(at..at, piece.iter().copied());
                }
                _ => {
                    let end = (at + (self.next() % 16) as usize).min(out.len());
                    out.drain(at..end);
                }
            }
        }
        out
    }
}

#[test]
fn mutated_messages_never_panic() {
    let encodings = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/encodings");
    let mut inputs = corpus_files();
    for entry in std::fs::read_dir(encodings).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "eml") {
            inputs.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    let mut mutator = Mutator(0x9e37_79b9_7f4a_7c15);
    for (label, raw) in &inputs {
        for round in 0..20 {
            let mutated = mutator.mutate(raw);
            let outcome = panic::catch_unwind(|| {
                if let Ok(msg) = parse(&mutated) {
                    let _ = mailrules::message::strip_quoted(&msg.body);
                }
                mailrules::message::html_to_text(&String::from_utf8_lossy(&mutated))
            });
            assert!(outcome.is_ok(), "{label}, mutation round {round} panicked");
        }
    }
}
