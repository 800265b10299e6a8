//! `multipart/alternative` messages parsed without decoding their HTML alternative: the text
//! part is what is read whenever it has text, and mail-parser decoding the HTML part's
//! quoted-printable or base64 and charset was about half its work on such messages. The HTML
//! part's body is cut out of a copy before mail-parser parses it; the result is used only when
//! it is certain to be the same [`super::Message`] as the whole message's (the text part has
//! text, and the cut body is one mail-parser would have decoded without a problem), the whole
//! message is parsed otherwise.

use std::sync::LazyLock;

use mail_parser::parsers::MessageStream;
use mail_parser::{GetHeader, HeaderName, HeaderValue, MessageParser, PartType};

use super::single_part::{header_section, Spellings};

/// A copy of a message with its HTML alternative's body cut out.
pub(super) struct Hollowed {
    pub bytes: Vec<u8>,
    /// Where the HTML part's body starts (the same offset in the copy and in the message).
    body_start: usize,
}

impl Hollowed {
    /// The copy of `raw` without the body of its root `multipart/alternative`'s `text/html`
    /// part, or `None` when the message is not of that shape or the cut is not certain to
    /// leave every other part as mail-parser parses it in the whole message.
    pub(super) fn of(parser: &MessageParser, raw: &[u8]) -> Option<Hollowed> {
        if !may_be_alternative(raw) {
            return None;
        }
        let mut stream = MessageStream::new(raw);
        let mut headers = Vec::new();
        if !stream.parse_headers(parser, &mut headers) {
            return None;
        }
        let body = stream.offset();
        // The same Content-Type and boundary as mail-parser's own parse takes.
        let content_type = headers
            .header_value(&HeaderName::ContentType)
            .and_then(|value| value.as_content_type())?;
        if content_type.ctype() != "multipart" || content_type.subtype() != Some("alternative") {
            return None;
        }
        let mut delimiter = b"--".to_vec();
        delimiter.extend_from_slice(content_type.attribute("boundary")?.as_bytes());
        let finder = memchr::memmem::Finder::new(&delimiter);
        // Each part from its delimiter on: the first text/html one is cut; any part that is
        // not a leaf text part (a nested multipart, an attachment) ends the look.
        let mut at = body + finder.find(raw.get(body..)?)?;
        loop {
            let after = at + delimiter.len();
            if raw.get(after..after + 2) == Some(b"--") {
                return None;
            }
            // The part's header fields start on the next line, for mail-parser too, when the
            // delimiter ends its line (it reads anything else after it as a header field).
            let header_start = match raw.get(after..)? {
                [b'\n', ..] => after + 1,
                [b'\r', b'\n', ..] => after + 2,
                _ => return None,
            };
            let mut part_stream = MessageStream::new(raw.get(header_start..)?);
            let mut part_headers = Vec::new();
            if !part_stream.parse_headers(parser, &mut part_headers) {
                return None;
            }
            let body_start = header_start + part_stream.offset();
            let next = body_start + finder.find(raw.get(body_start..)?)?;
            let part_type = part_headers
                .header_value(&HeaderName::ContentType)
                .and_then(|value| value.as_content_type())?;
            if part_type.ctype() != "text" {
                return None;
            }
            if part_type.subtype() == Some("html") {
                let encoding = part_headers.header_value(&HeaderName::ContentTransferEncoding);
                return Self::cut(raw, body_start, next, encoding);
            }
            at = next;
        }
    }

    /// The copy without `raw[body_start..]` up to the line end before the delimiter at
    /// `delimiter`, when mail-parser decodes that body without a problem.
    fn cut(
        raw: &[u8],
        body_start: usize,
        delimiter: usize,
        encoding: Option<&HeaderValue<'_>>,
    ) -> Option<Hollowed> {
        // The delimiter on a line of its own; its line end stays (an empty body before it).
        let line_end = delimiter.checked_sub(1)?;
        if raw.get(line_end) != Some(&b'\n') {
            return None;
        }
        let end = if line_end > 0 && raw.get(line_end - 1) == Some(&b'\r') {
            line_end - 1
        } else {
            line_end
        };
        if end <= body_start {
            return None;
        }
        let cut = raw.get(body_start..end)?;
        let decodes = match encoding {
            Some(HeaderValue::Text(encoding)) if encoding.eq_ignore_ascii_case("base64") => {
                is_plain_base64(cut)
            }
            Some(HeaderValue::Text(encoding))
                if encoding.eq_ignore_ascii_case("quoted-printable") =>
            {
                is_plain_quoted_printable(cut)
            }
            // Taken as it is: nothing in it can be a problem.
            _ => true,
        };
        if !decodes {
            return None;
        }
        let mut bytes = Vec::with_capacity(raw.len() - cut.len());
        bytes.extend_from_slice(&raw[..body_start]);
        bytes.extend_from_slice(&raw[end..]);
        Some(Hollowed { bytes, body_start })
    }

    /// Whether `parsed` (mail-parser's parse of [`Hollowed::bytes`]) is certain to give the
    /// whole message's [`super::Message`]: the cut part is an HTML body of the root
    /// alternative, empty and without a problem, and not an attachment.
    pub(super) fn is_faithful(&self, parsed: &mail_parser::Message<'_>) -> bool {
        let Some(PartType::Multipart(children)) = parsed.parts.first().map(|root| &root.body)
        else {
            return false;
        };
        let Some(&id) = children.iter().find(|&&id| {
            parsed
                .parts
                .get(id as usize)
                .is_some_and(|part| part.offset_body as usize == self.body_start)
        }) else {
            return false;
        };
        let Some(part) = parsed.parts.get(id as usize) else {
            return false;
        };
        matches!(&part.body, PartType::Html(html) if html.is_empty())
            && !part.is_encoding_problem
            && part.offset_end as usize == self.body_start
            && parsed.html_body.contains(&id)
            && !parsed.attachments.contains(&id)
            && !parsed.text_body.contains(&id)
    }
}

/// A quick look at the header section: `false` when it does not name an alternative.
fn may_be_alternative(raw: &[u8]) -> bool {
    static ALTERNATIVE: LazyLock<Spellings> =
        LazyLock::new(|| Spellings::of(["alternative", "Alternative", "ALTERNATIVE"]));
    ALTERNATIVE.are_in(header_section(raw))
}

/// Base64 that mail-parser decodes without a problem: the alphabet, `=`, spaces and line
/// ends only (a `-` is where it looks for a boundary, and gives up on any other byte).
fn is_plain_base64(body: &[u8]) -> bool {
    body.iter().all(|&b| {
        crate::text::BASE64_ALPHABET[usize::from(b)]
            || matches!(b, b'=' | b'\n' | b'\r' | b' ' | b'\t')
    })
}

/// Quoted-printable that mail-parser decodes without a problem: every `=` followed by two hex
/// digits or a line end, so that no `=` comes while an escape is still open (`==`, `=A=`,
/// `= =`: where it gives up). A plain loop that steps over each escape: in Cyrillic text every
/// third byte is a `=`, and a `memchr` call per `=` cost twice as much.
fn is_plain_quoted_printable(body: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&byte) = body.get(at) {
        if byte != b'=' {
            at += 1;
            continue;
        }
        at += match &body[at + 1..] {
            [high, low, ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => 3,
            [b'\n', ..] => 2,
            [b'\r', b'\n', ..] => 3,
            _ => return false,
        };
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::parse::{is_parsed_hollowed, parse, parse_whole};

    /// `raw` parsed by [`parse`] and by mail-parser whole, each as its debug text (a message
    /// has no `PartialEq`): every field compared.
    fn both_ways(raw: &[u8]) -> (String, String) {
        (
            format!("{:#?}", parse(raw)),
            format!("{:#?}", parse_whole(raw)),
        )
    }

    fn alternative(boundary: &str, text: &str, html_encoding: &str, html: &str) -> Vec<u8> {
        format!(
            "From: Анна <anna@client.example>\r\nSubject: =?utf-8?B?0JfQsNC60LDQtw==?=\r\n\
             Message-ID: <alt@client.example>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
             --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n{text}\r\n\
             --{boundary}\r\nContent-Type: text/html; charset=windows-1251\r\n\
             Content-Transfer-Encoding: {html_encoding}\r\n\r\n{html}\r\n\
             --{boundary}--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn an_alternative_is_parsed_without_its_html_as_mail_parser_parses_it_whole() {
        let html_bodies = [
            (
                "quoted-printable",
                "<p>=C4=EE=E1=F0=FB=E9 =E4=E5=ED=FC</p>=\r\n<p>end</p>",
            ),
            ("quoted-printable", "<p>a</p>=\r\n"),
            ("base64", "PHA+0J/RgNC40LLQtdGCPC9wPg==\r\nPHA+"),
            ("8bit", "<p>plain -- text</p>"),
            ("7bit", ""),
        ];
        for (encoding, html) in html_bodies {
            for text in ["=D0=9F=D1=80=D0=B8=D0=B2=D0=B5=D1=82", "hello =\r\nworld"] {
                let raw = alternative("b1", text, encoding, html);
                let (ours, whole) = both_ways(&raw);
                assert_eq!(ours, whole, "{encoding}: {html}");
                assert!(!parse_whole(&raw).expect("parses").body.is_empty());
                if !html.is_empty() && !html.ends_with('\n') {
                    assert!(is_parsed_hollowed(&raw), "{encoding}: {html}");
                }
            }
        }
    }

    /// HTML bodies mail-parser has a problem with (it then lists the part as an attachment),
    /// or that hide a boundary, a blank text part, and parts in another order: the whole
    /// message's parse every time, whichever way it was reached.
    #[test]
    fn every_tricky_alternative_gives_the_whole_message_parse() {
        let pieces = [
            "x", "=", "==", "=A=", "= =", "=3D", "=\r\n", "=4", "--", "--b1", "--b1--", "\r\n",
            "\n", " ", "\t", "\r", "Zm9v", "-", "\u{0}", "а",
        ];
        let encodings = ["quoted-printable", "base64", "8bit"];
        let texts = ["text", "", " \r\n ", "=D0=9F"];
        let mut checked = 0;
        let mut hollowed = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for encoding in encodings {
                        for text in texts {
                            let html = format!("{a}<p>{b}</p>{c}");
                            let raw = alternative("b1", text, encoding, &html);
                            let (ours, whole) = both_ways(&raw);
                            assert_eq!(ours, whole, "{}", String::from_utf8_lossy(&raw));
                            checked += 1;
                            hollowed += usize::from(is_parsed_hollowed(&raw));
                        }
                    }
                }
            }
        }
        assert!(hollowed > checked / 10, "{hollowed} of {checked}");
        assert!(hollowed < checked, "{hollowed} of {checked}");
    }

    #[test]
    fn plain_quoted_printable_is_every_escape_whole() {
        for (body, plain) in [
            (&b""[..], true),
            (b"=D0=9F text =3d=\r\nmore=\n", true),
            (b"=", false),
            (b"=A", false),
            (b"==", false),
            (b"=A=", false),
            (b"= \r\n", false),
            (b"=\r", false),
            (b"=\rx", false),
            (b"ok =G0", false),
        ] {
            assert_eq!(
                super::is_plain_quoted_printable(body),
                plain,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn html_first_junk_after_a_delimiter_and_nested_parts_give_the_whole_message_parse() {
        let messages = [
            // The HTML part first.
            "Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/html\n\
             Content-Transfer-Encoding: quoted-printable\n\n<p>=E4</p>\n--b\n\
             Content-Type: text/plain\n\ntext\n--b--\n",
            // Something after the delimiter on its line, read by mail-parser as a field.
            "Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
             text\n--b Content-Transfer-Encoding: base64\nContent-Type: text/html\n\n<p>!</p>\n--b--\n",
            // The HTML alternative inside a related part.
            "Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
             text\n--b\nContent-Type: multipart/related; boundary=c\n\n--c\n\
             Content-Type: text/html\n\n<p>x</p>\n--c--\n--b--\n",
            // A delimiter in the middle of a line of the HTML.
            "Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
             text\n--b\nContent-Type: text/html\n\n<p>x</p>--b\nmore\n--b--\n",
            // No closing delimiter, and an attachment after the HTML part.
            "Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
             text\n--b\nContent-Type: text/html\n\n<p>x</p>\n--b\nContent-Type: text/calendar\n\n\
             BEGIN:VCALENDAR\n",
        ];
        for raw in messages {
            let (ours, whole) = both_ways(raw.as_bytes());
            assert_eq!(ours, whole, "{raw}");
        }
    }

    #[test]
    fn the_fixtures_give_the_whole_message_parse() {
        let mut messages = Vec::new();
        super::super::single_part::tests::messages_in(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"),
            &mut messages,
        );
        assert!(messages.len() > 50, "fixtures found: {}", messages.len());
        let hollowed = messages
            .iter()
            .filter(|raw| is_parsed_hollowed(raw))
            .count();
        for raw in &messages {
            let (ours, whole) = both_ways(raw);
            assert_eq!(ours, whole, "{}", String::from_utf8_lossy(raw));
        }
        assert!(
            hollowed >= 1,
            "alternatives parsed without their HTML: {hollowed}"
        );
    }
}
