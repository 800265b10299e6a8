//! The rules outgoing mail follows, in one pure place: bare addresses, our Message-IDs and
//! their domain, the `[#N]` subject tag that threads an answer back to its task, and the
//! References of a reply. The store queues replies with them and `smtp` sends with them.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::config::Config;

/// The domain of our Message-IDs when no `[smtp] from` names one: `.invalid` is reserved
/// (RFC 2606), so such an id can never clash with a real host's.
pub const FALLBACK_DOMAIN: &str = "mailrules.invalid";

/// References longer than this keep the first id (the thread root) and the newest ones, as
/// RFC 5322 section 3.6.4 suggests, so that a long thread cannot grow the header without bound.
pub const MAX_REFERENCES: usize = 20;

/// `Name <a@b>` or `a@b` → `a@b` (lower-case); `None` when it is not an address.
pub fn bare_address(text: &str) -> Option<String> {
    let inner = match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close => &text[open + 1..close],
        _ => text,
    };
    let address = inner.trim();
    let (local, domain) = address.rsplit_once('@')?;
    let valid = !local.is_empty()
        && !domain.is_empty()
        && !address.chars().any(|c| c.is_whitespace() || c.is_control());
    valid.then(|| address.to_lowercase())
}

/// A Message-ID as stored: without `<>` and surrounding spaces.
pub fn bare_message_id(id: &str) -> &str {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
}

/// A message id reduced to what may stand between `<` and `>`: printable ASCII without
/// spaces or brackets. `None` when nothing usable is left.
pub fn safe_message_id(id: &str) -> Option<String> {
    let cleaned: String = bare_message_id(id)
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\'))
        .collect();
    if cleaned.is_empty() || !cleaned.contains('@') {
        return None;
    }
    Some(cleaned)
}

/// The domain our Message-IDs end in: that of `[smtp] from`, else [`FALLBACK_DOMAIN`].
pub fn message_id_domain(config: &Config) -> String {
    config
        .smtp
        .as_ref()
        .and_then(|s| bare_address(&s.from))
        .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_string()))
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| FALLBACK_DOMAIN.to_string())
}

/// A new Message-ID for mail about `task`, without the brackets: 24 hex digits, then
/// `.<task>@domain`, unique across processes and restarts. `seed` (the key of the message that
/// caused it) only adds to the randomness; `now` is the batch's clock.
pub fn new_message_id(now: DateTime<Utc>, seed: &str, task: i64, domain: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hash = Sha256::new();
    hash.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hash.update(std::process::id().to_le_bytes());
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    hash.update(nanos.to_le_bytes());
    hash.update(seed.as_bytes());
    let digest = hash.finalize();
    // Seconds first (in order until 2106), so that the ids of one batch sort together: adding
    // them to the unique indexes of outbox and task_messages then dirties the last pages of
    // each, not one random page per reply of indexes that grow with the store.
    let secs = u32::try_from(now.timestamp()).unwrap_or(u32::MAX);
    let mut hex = String::with_capacity(24);
    crate::text::push_hex(&mut hex, &secs.to_be_bytes());
    crate::text::push_hex(&mut hex, &digest[..8]);
    let domain = domain.trim();
    let domain = if domain.is_empty() {
        FALLBACK_DOMAIN
    } else {
        domain
    };
    format!("{hex}.{task}@{domain}")
}

/// `subject` on one line, ending in the task's tag `[#N]` unless it carries it already: the
/// tag brings the answer back to the task even when a mail client drops References.
pub fn tagged_subject(subject: &str, task: i64) -> String {
    let subject = crate::text::single_line(subject);
    let tag = format!("[#{task}]");
    if subject.contains(&tag) {
        subject
    } else {
        format!("{} {tag}", subject.trim_end())
    }
}

/// The subject of an answer about `task`: one `Re: ` in front of the subject without the
/// reply and forward prefixes it gathered on the way (`Re: Fwd: AW: x` → `Re: x`), and the
/// task's tag. A subject that had no such prefix keeps its words (a rule may answer with a
/// subject of its own).
pub fn reply_subject(subject: &str, task: i64) -> String {
    let line = crate::text::single_line(subject);
    let (rest, had_prefix) = without_reply_prefixes(line.trim());
    let subject = if had_prefix {
        format!("Re: {rest}")
    } else {
        rest.to_string()
    };
    tagged_subject(&subject, task)
}

/// `subject` without its leading `Re:`/`Fwd:`-like prefixes (any case, `Re[2]:` too, the
/// German and Russian ones mail clients write), and whether it had any.
fn without_reply_prefixes(mut subject: &str) -> (&str, bool) {
    const PREFIXES: [&str; 11] = [
        "re",
        "fwd",
        "fw",
        "aw",
        "wg",
        "sv",
        "tr",
        "vs",
        "отв",
        "ответ",
        "пересл",
    ];
    let mut had = false;
    loop {
        let Some((head, tail)) = subject.split_once(':') else {
            return (subject, had);
        };
        // `Re[2]` and `Re(2)`: a counter some clients add.
        let word = head
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit() || "[]()".contains(c))
            .to_lowercase();
        if !PREFIXES.contains(&word.as_str()) {
            return (subject, had);
        }
        had = true;
        subject = tail.trim_start();
    }
}

/// The References of an answer: the thread so far, then the message answered, as safe ids,
/// each once, cut to [`MAX_REFERENCES`] (the root and the newest).
pub fn thread_references<'a>(
    thread: impl IntoIterator<Item = &'a str>,
    answered: Option<&'a str>,
) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for id in thread.into_iter().chain(answered) {
        if let Some(id) = safe_message_id(id) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    if ids.len() > MAX_REFERENCES {
        let tail = ids.split_off(ids.len() - (MAX_REFERENCES - 1));
        ids.truncate(1);
        ids.extend(tail);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_has_one_re_and_no_fwd() {
        assert_eq!(reply_subject("Re: Fwd: Счёт", 7), "Re: Счёт [#7]");
        assert_eq!(reply_subject("Re: RE: re[2]: Счёт", 7), "Re: Счёт [#7]");
        assert_eq!(reply_subject("Re: FW: AW: Счёт [#7]", 7), "Re: Счёт [#7]");
        assert_eq!(reply_subject("Re: Пересл: Счёт", 7), "Re: Счёт [#7]");
        assert_eq!(reply_subject("Заявка принята", 7), "Заявка принята [#7]");
        // A colon inside the words is not a prefix.
        assert_eq!(reply_subject("Re: Заказ: 12", 7), "Re: Заказ: 12 [#7]");
    }

    #[test]
    fn addresses_are_bare_and_lower_case() {
        assert_eq!(
            bare_address("Иван <Ivan@Client.Example>").as_deref(),
            Some("ivan@client.example")
        );
        assert_eq!(bare_address("a@b").as_deref(), Some("a@b"));
        assert_eq!(
            bare_address("Поддержка ACME <Support@ACME.example>").as_deref(),
            Some("support@acme.example")
        );
        assert_eq!(bare_address("Поддержка без адреса"), None);
        assert_eq!(bare_address("not an address"), None);
        assert_eq!(bare_address("a b@c"), None);
    }

    #[test]
    fn subjects_carry_the_task_tag_once() {
        assert_eq!(tagged_subject("Re: Принтер", 42), "Re: Принтер [#42]");
        assert_eq!(tagged_subject("Re: Принтер [#42]", 42), "Re: Принтер [#42]");
        assert_eq!(tagged_subject("two\r\nlines", 7), "two  lines [#7]");
    }

    #[test]
    fn references_are_merged_once_and_cut_keeping_the_root() {
        let thread = ["<root@x>", "a@x", "bad id", "a@x"];
        assert_eq!(
            thread_references(thread, Some("<parent@x>")),
            ["root@x", "a@x", "parent@x"]
        );
        let long: Vec<String> = (0..30).map(|n| format!("m{n}@x")).collect();
        let cut = thread_references(long.iter().map(String::as_str), None);
        assert_eq!(cut.len(), MAX_REFERENCES);
        assert_eq!(cut[0], "m0@x");
        assert_eq!(cut[MAX_REFERENCES - 1], "m29@x");
    }

    #[test]
    fn message_ids_are_unique_and_end_in_our_domain() {
        let now = Utc::now();
        let a = new_message_id(now, "k", 5, "acme.example");
        let b = new_message_id(now, "k", 5, "acme.example");
        assert_ne!(a, b);
        assert!(a.ends_with(".5@acme.example"), "{a}");
        assert_eq!(a[..8], b[..8], "one batch's ids start alike: {a} {b}");
        assert!(new_message_id(now, "k", 5, " ").ends_with("@mailrules.invalid"));
    }
}
