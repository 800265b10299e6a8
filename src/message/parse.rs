//! Raw bytes → [`Message`], on mail-parser 0.11: the body text, attachments and the forwarded
//! message; header fields are read by [`super::headers`].

use std::borrow::Cow;
use std::sync::LazyLock;

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::{Encoding, MessageParser, MessagePart, MimeHeaders, PartType};

use super::alternative::Hollowed;
use super::charset::{decode_unlabelled, looks_like_utf8_mojibake};
use super::flowed::unflow;
use super::headers::{read_headers, HeaderFields};
use super::html::html_to_text;
use super::single_part;
use super::skeleton::Skeleton;
use super::{forward, Attachment, Forwarded, Message};

/// Why a message could not be parsed at all (it is then kept and listed as failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unparseable message: {0}")]
pub struct ParseError(pub String);

/// mail-parser parsing only the header fields whose parsed form something reads: the MIME
/// fields (for the body), dates, addresses and Message-IDs ([`read_headers`] decodes every
/// value it keeps from the raw bytes). The others (`Received:` trace fields, `Subject:`,
/// `List-*:`, ...) are only delimited: parsing the trace fields alone was 7 % of parsing a
/// message, and copying the other values out as raw text (which nothing read) 4 %.
static PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .with_mime_headers()
        .with_date_headers()
        .with_address_headers()
        .with_message_ids()
        .default_header_ignore()
});

/// Parses one raw message.
///
/// Lenient: missing or broken headers, unknown charsets and truncated MIME give a best-effort
/// [`Message`]. Only input in which no header field can be found at all (empty input, random
/// bytes) is an error.
pub fn parse(raw: &[u8]) -> Result<Message, ParseError> {
    // mail-parser has debug assertions that hostile MIME structures can trip; a message must
    // end up recorded as failed, never take the daemon down.
    std::panic::catch_unwind(|| parse_unguarded(raw))
        .unwrap_or_else(|_| Err(ParseError("the MIME parser failed on this message".into())))
}

/// The Message-ID of `raw`, read from its header section only (the body is not looked at):
/// the key of a message too large to parse, so that it is the same record when it comes again
/// and when `retry` parses it after the limit was raised.
pub fn message_id(raw: &[u8]) -> Option<String> {
    std::panic::catch_unwind(|| read_headers(&PARSER.parse_headers(raw)?)?.message_id)
        .ok()
        .flatten()
}

/// Every attachment of `raw` (as [`Message::attachments`] lists them, in the same order and
/// with the same names) with its decoded contents: what `mailrules message attachment` writes.
/// The whole message is parsed, attachments included.
pub fn attachment_contents(raw: &[u8]) -> Result<Vec<(Attachment, Vec<u8>)>, ParseError> {
    std::panic::catch_unwind(|| {
        let parsed = PARSER
            .parse(raw)
            .ok_or_else(|| ParseError("no header fields found".into()))?;
        let contents = parsed
            .attachments
            .iter()
            .filter_map(|&id| parsed.parts.get(id as usize))
            .map(|part| part.contents().to_vec());
        Ok(attachments(&parsed, &[])
            .into_iter()
            .zip(contents)
            .collect())
    })
    .unwrap_or_else(|_| Err(ParseError("the MIME parser failed on this message".into())))
}

/// The message's HTML body as its sender wrote it (unsanitized: hostile; the web cleans it
/// before showing it), or None when it has none.
pub fn html_body(raw: &[u8]) -> Option<String> {
    std::panic::catch_unwind(|| {
        let parsed = PARSER.parse(raw)?;
        parsed.html_part(0)?;
        parsed.body_html(0).map(|b| b.into_owned())
    })
    .ok()
    .flatten()
}

fn parse_unguarded(raw: &[u8]) -> Result<Message, ParseError> {
    // One quoted-printable text part: its body decoded here, as mail-parser would.
    if let Some(parsed) = single_part::parse(&PARSER, raw) {
        return from_parsed(&parsed, raw.len(), &[]);
    }
    // An alternative is parsed without its HTML part's body when its text part has text
    // (when it has none, the body comes from the HTML and the whole message is parsed).
    if let Some(hollowed) = Hollowed::of(&PARSER, raw) {
        if let Some(parsed) = PARSER.parse(&hollowed.bytes) {
            if hollowed.is_faithful(&parsed) {
                let message = from_parsed(&parsed, raw.len(), &[])?;
                // Read from the text part: no HTML part was looked at.
                if !message.body_from_html && !message.body.is_empty() {
                    return Ok(message);
                }
            }
        }
    }
    // A large message is parsed without the bulk of its attachments when that is certain to
    // give the same result; the whole message otherwise.
    if let Some(skeleton) = Skeleton::of(raw) {
        if let Some(parsed) = PARSER.parse(&skeleton.bytes) {
            if let Some(cut) = skeleton.cut_sizes(&parsed) {
                return from_parsed(&parsed, raw.len(), &cut);
            }
        }
    }
    let parsed = PARSER
        .parse(raw)
        .ok_or_else(|| ParseError("no header fields found".into()))?;
    from_parsed(&parsed, raw.len(), &[])
}

/// [`parse`] the slow way, the whole message by mail-parser: what the faster paths are
/// tested against.
#[cfg(test)]
pub(super) fn parse_whole(raw: &[u8]) -> Result<Message, ParseError> {
    let parsed = PARSER
        .parse(raw)
        .ok_or_else(|| ParseError("no header fields found".into()))?;
    from_parsed(&parsed, raw.len(), &[])
}

/// Whether [`parse`] takes the hollowed path for `raw`.
#[cfg(test)]
pub(super) fn is_parsed_hollowed(raw: &[u8]) -> bool {
    Hollowed::of(&PARSER, raw).is_some_and(|hollowed| {
        PARSER
            .parse(&hollowed.bytes)
            .is_some_and(|parsed| hollowed.is_faithful(&parsed))
    })
}

/// The [`Message`] of a parsed message of `size` bytes; `cut` adds the decoded bytes cut from
/// attachments (by part id) to their sizes.
fn from_parsed(
    parsed: &mail_parser::Message<'_>,
    size: usize,
    cut: &[(u32, usize)],
) -> Result<Message, ParseError> {
    let fields = read_headers(parsed)
        .ok_or_else(|| ParseError("no well-formed header field found".into()))?;
    let (body, body_from_html) = body_text(parsed);
    let forwarded = forward::detect_inline(&body, &fields.subject)
        .or_else(|| attached_message(parsed, &fields.subject));
    let HeaderFields {
        headers,
        subject,
        message_id,
        in_reply_to,
        references,
        from,
        to,
        cc,
        reply_to,
        resent_from,
        date,
    } = fields;
    Ok(Message {
        message_id,
        in_reply_to,
        references,
        subject,
        from,
        to,
        cc,
        reply_to,
        resent_from,
        date,
        headers,
        body,
        body_from_html,
        attachments: attachments(parsed, cut),
        forwarded,
        size,
    })
}

/// The text body: the text/plain parts, or the HTML parts converted when there is no
/// non-blank text part. `true` when it came from HTML.
fn body_text(message: &mail_parser::Message<'_>) -> (String, bool) {
    let mut body = String::new();
    for part in parts(message, &message.text_body) {
        if let PartType::Text(text) = &part.body {
            let mut text = recover_charset(message, part, text);
            if let Some(delsp) = flowed(part) {
                text = Cow::Owned(unflow(&text, delsp));
            }
            if !text.trim().is_empty() {
                if !body.is_empty() {
                    body.push('\n');
                }
                push_normalized(&mut body, &text);
            }
        }
    }
    if !body.is_empty() {
        body.truncate(body.trim_end().len());
        return (body, false);
    }
    for part in parts(message, &message.html_body) {
        if let PartType::Html(html) = &part.body {
            let text = html_to_text(&recover_charset(message, part, html));
            if !text.is_empty() {
                if !body.is_empty() {
                    body.push_str("\n\n");
                }
                body.push_str(&text);
            }
        }
    }
    let from_html = !body.is_empty();
    (body, from_html)
}

/// `Some(delsp)` for a `format=flowed` text part.
fn flowed(part: &MessagePart<'_>) -> Option<bool> {
    let ct = part.content_type()?;
    let is_flowed = ct
        .attribute("format")
        .is_some_and(|f| f.eq_ignore_ascii_case("flowed"));
    is_flowed.then(|| {
        ct.attribute("delsp")
            .is_some_and(|d| d.eq_ignore_ascii_case("yes"))
    })
}

fn parts<'m, 'x>(
    message: &'m mail_parser::Message<'x>,
    ids: &'m [u32],
) -> impl Iterator<Item = &'m MessagePart<'x>> + 'm {
    ids.iter().filter_map(|&id| message.parts.get(id as usize))
}

/// Appends `text` with CRLF and lone CR turned into LF, in one pass.
fn push_normalized(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(cr) = rest.find('\r') {
        out.push_str(&rest[..cr]);
        out.push('\n');
        rest = &rest[cr + 1..];
        if let Some(after) = rest.strip_prefix('\n') {
            rest = after;
        }
    }
    out.push_str(rest);
}

/// Text that mail-parser decoded with a missing, `us-ascii`, unknown or wrong UTF-8 label is
/// decoded again from the part's bytes with the charset guess (raw windows-1251 / KOI8-R);
/// text under a single-byte label that reads like UTF-8 mojibake ("РџСЂРёРІРµС‚") is taken as
/// UTF-8 when its bytes are valid UTF-8.
fn recover_charset<'t>(
    message: &mail_parser::Message<'_>,
    part: &MessagePart<'_>,
    text: &'t str,
) -> Cow<'t, str> {
    let declared = part.content_type().and_then(|ct| ct.attribute("charset"));
    let label_is_single_byte = match declared {
        Some(label) if is_ascii_label(label) => {
            if text.is_ascii() {
                return Cow::Borrowed(text);
            }
            false
        }
        Some(label) if charset_decoder(label.as_bytes()).is_some() => {
            if text.is_ascii() || !looks_like_utf8_mojibake(text) {
                return Cow::Borrowed(text);
            }
            true
        }
        // No label, a UTF-8 label or one mail-parser does not know: it decoded as UTF-8.
        _ => {
            if !text.contains('\u{fffd}') {
                return Cow::Borrowed(text);
            }
            false
        }
    };
    let Some(bytes) = transfer_decoded(message, part) else {
        return Cow::Borrowed(text);
    };
    if label_is_single_byte {
        // Only a definite UTF-8 reading overrides the label.
        return match String::from_utf8(bytes.into_owned()) {
            Ok(utf8) => Cow::Owned(utf8),
            Err(_) => Cow::Borrowed(text),
        };
    }
    Cow::Owned(decode_unlabelled(&bytes).into_owned())
}

fn is_ascii_label(label: &str) -> bool {
    ["us-ascii", "ascii", "us_ascii", "ansi_x3.4-1968"]
        .iter()
        .any(|l| label.eq_ignore_ascii_case(l))
}

/// The part's body bytes after base64 / quoted-printable decoding, before any charset.
fn transfer_decoded<'a>(
    message: &'a mail_parser::Message<'_>,
    part: &MessagePart<'_>,
) -> Option<Cow<'a, [u8]>> {
    let raw = message
        .raw_message
        .get(part.offset_body as usize..part.offset_end as usize)?;
    Some(match part.encoding {
        Encoding::Base64 => MessageStream::new(raw).decode_base64_mime(b"").1,
        Encoding::QuotedPrintable => MessageStream::new(raw).decode_quoted_printable_mime(b"").1,
        Encoding::None => Cow::Borrowed(raw),
    })
}

/// Every attachment, inline images included; unnamed ones get a name from their type
/// ("image.png", "message.eml") or their position ("attachment-3").
/// `cut`: decoded bytes to add to a part's size (by part id), cut before parsing.
fn attachments(message: &mail_parser::Message<'_>, cut: &[(u32, usize)]) -> Vec<Attachment> {
    let mut out: Vec<Attachment> = Vec::with_capacity(message.attachments.len());
    let with_ids = message
        .attachments
        .iter()
        .filter_map(|&id| Some((id, message.parts.get(id as usize)?)));
    for (index, (id, part)) in with_ids.enumerate() {
        let content_type = content_type(part);
        let name = match part
            .attachment_name()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            Some(name) => name.to_string(),
            None => generated_name(&content_type, index + 1, &out),
        };
        let size = match &part.body {
            PartType::Text(text) | PartType::Html(text) => text.len(),
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => bytes.len(),
            PartType::Message(inner) => inner.raw_message.len(),
            PartType::Multipart(_) => 0,
        } + cut
            .iter()
            .filter(|(part, _)| *part == id)
            .map(|(_, bytes)| bytes)
            .sum::<usize>();
        out.push(Attachment {
            name,
            content_type,
            size,
        });
    }
    out
}

fn content_type(part: &MessagePart<'_>) -> String {
    if let Some(ct) = part.content_type() {
        let mut value = ct.ctype().to_ascii_lowercase();
        if let Some(subtype) = ct.subtype() {
            value.push('/');
            value.push_str(&subtype.to_ascii_lowercase());
        }
        return value;
    }
    match part.body {
        PartType::Text(_) => "text/plain",
        PartType::Html(_) => "text/html",
        PartType::Message(_) => "message/rfc822",
        _ => "application/octet-stream",
    }
    .to_string()
}

fn generated_name(content_type: &str, position: usize, earlier: &[Attachment]) -> String {
    let (kind, subtype) = content_type.split_once('/').unwrap_or((content_type, ""));
    let extension = match (kind, subtype) {
        ("message", "rfc822" | "global") => Some(("message", "eml")),
        ("image", "jpeg" | "jpg" | "pjpeg") => Some(("image", "jpg")),
        ("image", "svg+xml") => Some(("image", "svg")),
        ("image", sub) if !sub.is_empty() && sub.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Some(("image", sub))
        }
        ("text", "plain") => Some(("text", "txt")),
        ("text", "html") => Some(("text", "html")),
        ("text", "calendar") => Some(("invite", "ics")),
        ("application", "pdf") => Some(("document", "pdf")),
        _ => None,
    };
    let Some((stem, extension)) = extension else {
        return format!("attachment-{position}");
    };
    let plain = format!("{stem}.{extension}");
    if earlier.iter().any(|a| a.name == plain) {
        format!("{stem}-{position}.{extension}")
    } else {
        plain
    }
}

/// The first attached message/rfc822 with a From address, as the forwarded message. Not in
/// a reply ("Re:" subject: the attachment illustrates the reply), a delivery report (the
/// returned message) or a digest (its parts are messages by default, not forwards).
fn attached_message(message: &mail_parser::Message<'_>, subject: &str) -> Option<Forwarded> {
    if forward::subject_is_reply(subject) {
        return None;
    }
    let root_type = message.root_part().content_type();
    if root_type.is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct.subtype().is_some_and(|s| {
                s.eq_ignore_ascii_case("report") || s.eq_ignore_ascii_case("digest")
            })
    }) {
        return None;
    }
    parts(message, &message.attachments).find_map(|part| {
        let PartType::Message(inner) = &part.body else {
            return None;
        };
        if !part.is_content_type("message", "rfc822") && !part.is_content_type("message", "global")
        {
            return None;
        }
        let fields = read_headers(inner)?;
        let from = fields.from?;
        let (body, _) = body_text(inner);
        Some(Forwarded {
            from,
            subject: (!fields.subject.is_empty()).then_some(fields.subject),
            body,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_random_input_is_an_error() {
        assert!(parse(b"").is_err());
        assert!(parse(b"\n\n\n").is_err());
        assert!(parse(b"just some words without any colon\n").is_err());
        let noise: Vec<u8> = (0u32..4096)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let _ = parse(&noise);
    }

    #[test]
    fn minimal_message_without_from_or_id() {
        let raw = b"Subject: hi\r\n\r\nline one\r\nline two\r\n\r\n";
        let msg = parse(raw).unwrap();
        assert_eq!(msg.subject, "hi");
        assert_eq!(msg.from, None);
        assert_eq!(msg.message_id, None);
        assert_eq!(msg.body, "line one\nline two");
        assert!(!msg.body_from_html);
        assert_eq!(msg.size, raw.len());
    }

    #[test]
    fn headers_only_message() {
        let msg = parse(b"From: a@b.example\nSubject: no body").unwrap();
        assert_eq!(msg.from.unwrap().email, "a@b.example");
        assert_eq!(msg.subject, "no body");
        assert_eq!(msg.body, "");
    }

    #[test]
    fn push_normalized_handles_all_line_endings() {
        let mut out = String::new();
        push_normalized(&mut out, "a\r\nb\rc\nd\r");
        assert_eq!(out, "a\nb\nc\nd\n");
    }

    #[test]
    fn generated_names() {
        assert_eq!(generated_name("image/png", 1, &[]), "image.png");
        let first = Attachment {
            name: "image.png".into(),
            content_type: "image/png".into(),
            size: 1,
        };
        assert_eq!(generated_name("image/png", 2, &[first]), "image-2.png");
        assert_eq!(generated_name("application/x-foo", 3, &[]), "attachment-3");
        assert_eq!(generated_name("message/rfc822", 1, &[]), "message.eml");
    }
}
