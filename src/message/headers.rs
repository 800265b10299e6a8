//! Header fields of one mail-parser message → decoded strings, addresses, ids and the date.
//!
//! Every value is taken from the raw bytes so names keep their spelling and values come out
//! RFC 2047-decoded and unfolded ([`super::encoded_words`]); raw 8-bit values (unencoded windows-1251 / KOI8-R subjects
//! and names, which mail-parser would turn into U+FFFD) are decoded with the charset guess of
//! [`super::charset`] first.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use mail_parser::parsers::MessageStream;
use mail_parser::{Header, HeaderName, HeaderValue};

use super::charset::decode_unlabelled;
use super::encoded_words::decode_header_value;
use super::Address;

/// The header-derived fields of a [`super::Message`].
#[derive(Debug, Default)]
pub(super) struct HeaderFields {
    pub headers: Vec<(String, String)>,
    pub subject: String,
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub reply_to: Vec<Address>,
    pub resent_from: Option<Address>,
    pub date: Option<DateTime<Utc>>,
}

/// Reads the top-level headers of `message`. `None` when not one of them has a well-formed
/// field name (printable ASCII), which is how random bytes look to mail-parser.
pub(super) fn read_headers(message: &mail_parser::Message<'_>) -> Option<HeaderFields> {
    let raw: &[u8] = &message.raw_message;
    let headers = &message.root_part().headers;
    let mut fields = HeaderFields {
        headers: Vec::with_capacity(headers.len()),
        ..HeaderFields::default()
    };
    let mut any_well_formed = false;
    for header in headers {
        let name = written_name(raw, header);
        any_well_formed |= is_field_name(name);
        let value_raw = raw
            .get(header.offset_start as usize..header.offset_end as usize)
            .unwrap_or_default();
        let (value_text, is_utf8) = match std::str::from_utf8(value_raw) {
            Ok(text) => (Cow::Borrowed(text), true),
            Err(_) => (decode_unlabelled(value_raw), false),
        };
        let value = decode_header_value(&value_text);
        let reparsed = if is_utf8 && !has_broken_name(&header.value) {
            None
        } else {
            reparse_address(&header.name, &value)
        };
        fill_field(&mut fields, header, &value, reparsed);
        fields
            .headers
            .push((String::from_utf8_lossy(name).into_owned(), value));
    }
    any_well_formed.then_some(fields)
}

/// The header name exactly as written (without the colon).
fn written_name<'a>(raw: &'a [u8], header: &Header<'_>) -> &'a [u8] {
    let name = raw
        .get(header.offset_field as usize..header.offset_start as usize)
        .unwrap_or_default();
    let name = name.strip_suffix(b":").unwrap_or(name);
    name.trim_ascii()
}

fn is_field_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|b| (0x21..=0x7e).contains(b) && *b != b':')
}

/// A display name with U+FFFD: mail-parser decoded each encoded word on its own and a
/// character split between two words was lost.
fn has_broken_name(value: &HeaderValue<'_>) -> bool {
    value.as_address().is_some_and(|list| {
        list.iter()
            .any(|addr| addr.name().is_some_and(|n| n.contains('\u{fffd}')))
    })
}

/// Address headers whose raw bytes were not UTF-8, or whose names mail-parser could not
/// decode, are parsed again from the decoded text.
fn reparse_address(name: &HeaderName<'_>, decoded: &str) -> Option<Vec<Address>> {
    if !is_address_header(name) {
        return None;
    }
    let mut terminated = Vec::with_capacity(decoded.len() + 1);
    terminated.extend_from_slice(decoded.as_bytes());
    terminated.push(b'\n');
    let parsed = MessageStream::new(&terminated).parse_address();
    Some(parsed.as_address().map(addresses).unwrap_or_default())
}

fn is_address_header(name: &HeaderName<'_>) -> bool {
    matches!(
        name,
        HeaderName::From
            | HeaderName::To
            | HeaderName::Cc
            | HeaderName::ReplyTo
            | HeaderName::ResentFrom
    )
}

fn fill_field(
    fields: &mut HeaderFields,
    header: &Header<'_>,
    decoded: &str,
    reparsed: Option<Vec<Address>>,
) {
    let address_list = move || {
        reparsed.unwrap_or_else(|| header.value.as_address().map(addresses).unwrap_or_default())
    };
    match header.name {
        HeaderName::Subject if fields.subject.is_empty() => {
            fields.subject = fold_whitespace(decoded)
        }
        HeaderName::From if fields.from.is_none() => {
            fields.from = address_list().into_iter().next()
        }
        HeaderName::To => fields.to.extend(address_list()),
        HeaderName::Cc => fields.cc.extend(address_list()),
        HeaderName::ReplyTo => fields.reply_to.extend(address_list()),
        HeaderName::ResentFrom if fields.resent_from.is_none() => {
            fields.resent_from = address_list().into_iter().next();
        }
        HeaderName::MessageId if fields.message_id.is_none() => {
            fields.message_id = message_ids(&header.value).into_iter().next();
        }
        HeaderName::InReplyTo => fields.in_reply_to.extend(message_ids(&header.value)),
        HeaderName::References => fields.references.extend(message_ids(&header.value)),
        HeaderName::Date if fields.date.is_none() => {
            fields.date = header.value.as_datetime().and_then(|d| {
                d.is_valid()
                    .then(|| DateTime::from_timestamp(d.to_timestamp(), 0))
                    .flatten()
            });
        }
        _ => {}
    }
}

/// Addresses with a usable email; a lone word where the address should be counts as one.
/// `MAILER DAEMON <>` (a null sender) gives none.
fn addresses(list: &mail_parser::Address<'_>) -> Vec<Address> {
    list.iter()
        .filter_map(|addr| {
            let name = addr.name().map(str::trim).filter(|n| !n.is_empty());
            match addr.address().map(str::trim).filter(|a| !a.is_empty()) {
                Some(email) => Some(Address::new(name, email)),
                // "From: foo" is a local mailbox written without a domain, not a name.
                None => name
                    .filter(|n| !n.contains(char::is_whitespace))
                    .map(|n| Address::new(None, n)),
            }
        })
        .collect()
}

fn message_ids(value: &HeaderValue<'_>) -> Vec<String> {
    let clean = |id: &str| {
        let id = id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        // Old clients write prose ("Your message of …") where an id belongs.
        (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| id.to_string())
    };
    match value {
        HeaderValue::Text(id) => clean(id).into_iter().collect(),
        HeaderValue::TextList(ids) => ids.iter().filter_map(|id| clean(id)).collect(),
        _ => Vec::new(),
    }
}

/// Runs of whitespace become one space; ends trimmed.
pub(super) fn fold_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(raw: &[u8]) -> HeaderFields {
        let parsed = mail_parser::MessageParser::default().parse(raw).unwrap();
        read_headers(&parsed).unwrap()
    }

    #[test]
    fn names_as_written_and_values_unfolded() {
        let f = fields(
            b"message-id: <a@b>\r\nX-Custom:  one\r\n two\r\nSubject: =?UTF-8?B?0JfQsNC60LDQtw==?=\r\n\r\n",
        );
        assert_eq!(
            f.headers,
            vec![
                ("message-id".to_string(), "<a@b>".to_string()),
                ("X-Custom".to_string(), "one two".to_string()),
                ("Subject".to_string(), "Заказ".to_string()),
            ]
        );
        assert_eq!(f.message_id.as_deref(), Some("a@b"));
        assert_eq!(f.subject, "Заказ");
    }

    #[test]
    fn raw_8bit_subject_and_name_are_guessed() {
        // Unencoded windows-1251: "Счёт на оплату" and "Иван Петров".
        let raw = b"From: \xc8\xe2\xe0\xed \xcf\xe5\xf2\xf0\xee\xe2 <ivan@client.example>\n\
            Subject: \xd1\xf7\xb8\xf2 \xed\xe0 \xee\xef\xeb\xe0\xf2\xf3\n\ntext\n";
        let f = fields(raw);
        assert_eq!(f.subject, "Счёт на оплату");
        let from = f.from.unwrap();
        assert_eq!(from.name.as_deref(), Some("Иван Петров"));
        assert_eq!(from.email, "ivan@client.example");
        assert_eq!(f.headers[1].1, "Счёт на оплату");
    }

    #[test]
    fn name_split_across_encoded_words() {
        let f = fields(b"From: =?utf-8?B?0J/RgNC40LLQ?= =?utf-8?B?tdGC?= <p@x.example>\n\n");
        assert_eq!(f.from.unwrap().name.as_deref(), Some("Привет"));
        assert_eq!(f.headers[0].1, "Привет <p@x.example>");
    }

    #[test]
    fn ids_without_brackets() {
        let f = fields(
            b"Message-ID: plain@id\nIn-Reply-To: <p1@x>\nReferences: <r1@x>\n <r2@x> <p1@x>\n\
              In-Reply-To: Your message of Mon, 23 Nov 2026\n\n",
        );
        assert_eq!(f.message_id.as_deref(), Some("plain@id"));
        assert_eq!(f.in_reply_to, vec!["p1@x"]);
        assert_eq!(f.references, vec!["r1@x", "r2@x", "p1@x"]);
    }

    #[test]
    fn random_bytes_have_no_headers() {
        let parsed = mail_parser::MessageParser::default().parse(&b"\x8f\x01\xfe: \x00\x10\n"[..]);
        assert!(parsed.is_none_or(|p| read_headers(&p).is_none()));
    }

    #[test]
    fn fold_whitespace_collapses_runs() {
        assert_eq!(fold_whitespace("  Re:\t Заказ \n №5  "), "Re: Заказ №5");
    }
}
