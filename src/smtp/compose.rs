//! Turns one outgoing mail (an outbox row) into a well-formed RFC 5322 message.
//!
//! Every value that comes from a template or from incoming mail goes through
//! [`crate::text::single_line`] before it reaches a header, and message ids are reduced to
//! their safe characters, so that nothing a client wrote can add a header of its own.

use chrono::{DateTime, Utc};
use lettre::message::header::{
    ContentType, HeaderName, HeaderValue, InReplyTo, MessageId, References,
};
use lettre::message::Mailbox;

use super::SmtpError;
use crate::outgoing::{safe_message_id, thread_references};

/// What the mail is, which decides its `Auto-Submitted` value (RFC 3834).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// An automatic answer to a message: `Auto-Submitted: auto-replied`.
    Reply,
    /// A message the rules generated for somebody else: `Auto-Submitted: auto-generated`.
    Notify,
    /// A person's own answer (`task reply`): no `Auto-Submitted`, so that the customer's
    /// mail client and autoresponders treat it as a person's mail.
    Answer,
}

impl MailKind {
    /// The outbox `kind` column: `reply`, `answer` or `notify`; anything else is sent as a
    /// notification.
    pub fn from_outbox_kind(kind: &str) -> MailKind {
        if kind.eq_ignore_ascii_case("reply") {
            MailKind::Reply
        } else if kind.eq_ignore_ascii_case(crate::store::ANSWER_KIND) {
            MailKind::Answer
        } else {
            MailKind::Notify
        }
    }

    fn auto_submitted(self) -> Option<&'static str> {
        match self {
            MailKind::Reply => Some("auto-replied"),
            MailKind::Notify => Some("auto-generated"),
            MailKind::Answer => None,
        }
    }
}

/// One mail to send, as the outbox stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub kind: MailKind,
    /// The bare recipient address.
    pub to: String,
    /// Bare addresses that get a copy.
    pub cc: Vec<String>,
    pub subject: String,
    /// Plain text; `\n` line endings are fine (they become CRLF on the wire).
    pub body: String,
    /// Our Message-ID, without angle brackets.
    pub message_id: String,
    /// The message this one answers, without angle brackets.
    pub in_reply_to: Option<String>,
    /// The thread so far, oldest first, without angle brackets.
    pub references: Vec<String>,
    pub date: DateTime<Utc>,
}

/// Parses the configured `from` (`Поддержка ACME <support@example.com>` or a bare address).
pub fn parse_from(from: &str) -> Result<Mailbox, SmtpError> {
    crate::text::single_line(from)
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| {
            SmtpError::Config(format!(
                "[smtp] from \"{}\" is not an address: {e}",
                crate::text::single_line(from)
            ))
        })
}

/// Builds the message. Fails (permanently) only when the recipient is not a valid address.
pub fn compose(mail: &OutgoingMail, from: &Mailbox) -> Result<lettre::Message, SmtpError> {
    let to_text = crate::text::single_line(&mail.to);
    let to: Mailbox = to_text.trim().parse().map_err(|e| {
        SmtpError::Unsendable(format!(
            "the recipient {:?} is not an address: {e}",
            to_text.trim()
        ))
    })?;
    let message_id = safe_message_id(&mail.message_id).ok_or_else(|| {
        SmtpError::Unsendable(format!(
            "unusable Message-ID \"{}\"",
            crate::text::single_line(&mail.message_id)
        ))
    })?;

    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(crate::text::single_line(&mail.subject))
        .date(mail.date.into())
        .header(MessageId::from(format!("<{message_id}>")));
    if let Some(auto) = mail.kind.auto_submitted() {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                auto.to_string(),
            ))
            // Asks Exchange and its kin not to answer our automatic mail with their own.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
                "All".to_string(),
            ));
    }
    for copy in &mail.cc {
        let copy = crate::text::single_line(copy);
        let cc: Mailbox = copy.trim().parse().map_err(|e| {
            SmtpError::Unsendable(format!(
                "the copy address {:?} is not an address: {e}",
                copy.trim()
            ))
        })?;
        builder = builder.cc(cc);
    }

    if let Some(parent) = mail.in_reply_to.as_deref().and_then(safe_message_id) {
        builder = builder.header(InReplyTo::from(format!("<{parent}>")));
    }
    let references = references_of(mail);
    if !references.is_empty() {
        let joined: Vec<String> = references.iter().map(|id| format!("<{id}>")).collect();
        builder = builder.header(References::from(joined.join(" ")));
    }

    builder
        .header(ContentType::TEXT_PLAIN)
        .body(normalize_body(&mail.body))
        .map_err(|e| SmtpError::Unsendable(e.to_string()))
}

/// The References we send: the stored thread plus the message we answer (see
/// [`thread_references`]).
fn references_of(mail: &OutgoingMail) -> Vec<String> {
    let thread = mail.references.iter().map(String::as_str);
    thread_references(thread, mail.in_reply_to.as_deref())
}

/// Line endings as the wire wants them, and no stray controls other than tab and newline.
fn normalize_body(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 16);
    for (i, line) in body.replace("\r\n", "\n").split('\n').enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        out.extend(
            line.chars()
                .map(|c| if c.is_control() && c != '\t' { ' ' } else { c }),
        );
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn reply() -> OutgoingMail {
        OutgoingMail {
            kind: MailKind::Reply,
            to: "ivan@client.example".into(),
            cc: Vec::new(),
            subject: "Re: Не работает принтер [#42]".into(),
            body: "Ваша заявка принята, номер 42.\nМы ответим в течение дня.".into(),
            message_id: "a1b2c3.42@acme.example".into(),
            in_reply_to: Some("CAF=xyz@mail.client.example".into()),
            references: vec!["root@mail.client.example".into()],
            date: Utc.with_ymd_and_hms(2026, 11, 23, 9, 30, 0).unwrap(),
        }
    }

    #[test]
    fn a_persons_answer_is_not_marked_automatic_and_carries_its_copies() {
        let mail = OutgoingMail {
            kind: MailKind::Answer,
            cc: vec!["boss@client.example".into()],
            ..reply()
        };
        let raw = String::from_utf8(compose(&mail, &from()).unwrap().formatted()).unwrap();
        assert!(!raw.contains("Auto-Submitted"), "{raw}");
        assert!(raw.contains("Cc: boss@client.example"), "{raw}");
        assert_eq!(MailKind::from_outbox_kind("answer"), MailKind::Answer);
    }

    fn from() -> Mailbox {
        parse_from("Поддержка ACME <support@acme.example>").unwrap()
    }

    fn bytes(mail: &OutgoingMail) -> String {
        String::from_utf8(compose(mail, &from()).unwrap().formatted()).unwrap()
    }

    /// The header block, unfolded, as (name, raw value) pairs.
    fn header_lines(raw: &str) -> Vec<(String, String)> {
        let head = raw.split("\r\n\r\n").next().unwrap();
        let mut out: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                out.last_mut().unwrap().1.push_str(line);
            } else {
                let (n, v) = line.split_once(':').unwrap();
                out.push((n.to_string(), v.trim().to_string()));
            }
        }
        out
    }

    fn header<'a>(lines: &'a [(String, String)], name: &str) -> Vec<&'a str> {
        lines
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn a_reply_carries_threading_and_auto_submitted_headers() {
        let raw = bytes(&reply());
        assert!(raw.is_ascii(), "headers and body must be 7-bit on the wire");
        let lines = header_lines(&raw);
        assert_eq!(header(&lines, "Message-ID"), ["<a1b2c3.42@acme.example>"]);
        assert_eq!(
            header(&lines, "In-Reply-To"),
            ["<CAF=xyz@mail.client.example>"]
        );
        assert_eq!(
            header(&lines, "References"),
            ["<root@mail.client.example> <CAF=xyz@mail.client.example>"]
        );
        assert_eq!(header(&lines, "Auto-Submitted"), ["auto-replied"]);
        assert_eq!(header(&lines, "X-Auto-Response-Suppress"), ["All"]);
        assert_eq!(header(&lines, "Date"), ["Mon, 23 Nov 2026 09:30:00 +0000"]);
        assert_eq!(header(&lines, "To"), ["ivan@client.example"]);
        assert!(header(&lines, "Content-Type")[0].starts_with("text/plain; charset=utf-8"));
    }

    #[test]
    fn cyrillic_survives_encoding() {
        let raw = bytes(&reply());
        let parsed = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        assert_eq!(parsed.subject(), Some("Re: Не работает принтер [#42]"));
        let from = parsed.from().unwrap().first().unwrap();
        assert_eq!(from.name(), Some("Поддержка ACME"));
        assert_eq!(from.address(), Some("support@acme.example"));
        assert_eq!(
            parsed
                .body_text(0)
                .unwrap()
                .replace("\r\n", "\n")
                .trim_end(),
            "Ваша заявка принята, номер 42.\nМы ответим в течение дня."
        );
        let raw_subject = header(&header_lines(&raw), "Subject")[0].to_string();
        assert!(raw_subject.contains("=?utf-8?b?"), "{raw_subject}");
    }

    #[test]
    fn a_notification_is_auto_generated_and_threads_nowhere() {
        let mail = OutgoingMail {
            kind: MailKind::Notify,
            in_reply_to: None,
            references: vec![],
            ..reply()
        };
        let lines = header_lines(&bytes(&mail));
        assert_eq!(header(&lines, "Auto-Submitted"), ["auto-generated"]);
        assert!(header(&lines, "In-Reply-To").is_empty());
        assert!(header(&lines, "References").is_empty());
    }

    #[test]
    fn crlf_in_a_subject_cannot_add_a_header() {
        let mail = OutgoingMail {
            subject: "Заказ 7\r\nBcc: thief@evil.example\nX-Evil: 1".into(),
            ..reply()
        };
        let raw = bytes(&mail);
        let lines = header_lines(&raw);
        assert!(header(&lines, "Bcc").is_empty(), "{raw}");
        assert!(header(&lines, "X-Evil").is_empty(), "{raw}");
        let parsed = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Заказ 7  Bcc: thief@evil.example X-Evil: 1")
        );
        let message = compose(&mail, &from()).unwrap();
        let recipients = message.envelope().to();
        assert_eq!(recipients.len(), 1);
        assert_eq!(recipients[0].to_string(), "ivan@client.example");
    }

    #[test]
    fn crlf_in_a_recipient_is_refused() {
        let mail = OutgoingMail {
            to: "ivan@client.example\r\nBcc: thief@evil.example".into(),
            ..reply()
        };
        let err = compose(&mail, &from()).unwrap_err();
        assert!(err.is_permanent(), "{err}");
        assert!(matches!(err, SmtpError::Unsendable(_)));
    }

    #[test]
    fn hostile_message_ids_are_cleaned_or_dropped() {
        let mail = OutgoingMail {
            in_reply_to: Some("<evil@x.example>\r\nBcc: thief@evil.example".into()),
            references: vec!["no-at-sign".into(), "ok@x.example".into()],
            ..reply()
        };
        let raw = bytes(&mail);
        let lines = header_lines(&raw);
        assert!(header(&lines, "Bcc").is_empty(), "{raw}");
        let in_reply_to = header(&lines, "In-Reply-To")[0];
        assert!(!in_reply_to.contains(' '), "{in_reply_to}");
        assert_eq!(
            header(&lines, "References")[0].matches('<').count(),
            2,
            "{raw}"
        );
    }

    #[test]
    fn long_threads_keep_the_root_and_the_newest_references() {
        let mail = OutgoingMail {
            references: (0..50).map(|i| format!("m{i}@x.example")).collect(),
            in_reply_to: Some("m49@x.example".into()),
            ..reply()
        };
        let lines = header_lines(&bytes(&mail));
        let refs: Vec<&str> = header(&lines, "References")[0].split_whitespace().collect();
        assert_eq!(refs.len(), crate::outgoing::MAX_REFERENCES);
        assert_eq!(refs[0], "<m0@x.example>");
        assert_eq!(refs[1], "<m31@x.example>");
        assert_eq!(*refs.last().unwrap(), "<m49@x.example>");
    }

    #[test]
    fn a_from_without_an_address_is_a_config_error() {
        assert!(matches!(
            parse_from("Поддержка без адреса"),
            Err(SmtpError::Config(_))
        ));
    }

    #[test]
    fn body_lines_end_in_crlf_and_lose_stray_controls() {
        assert_eq!(normalize_body("a\nb\r\n\nc\u{7}"), "a\r\nb\r\n\r\nc \r\n");
    }
}
