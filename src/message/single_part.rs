//! Single-part quoted-printable text messages (what most people's mail programs send) parsed
//! without mail-parser's body decoder: the header fields by mail-parser as always, the body by
//! [`decode_quoted_printable`], which gives the same bytes. mail-parser decodes
//! quoted-printable one byte at a time through its boundary-aware stream (about 39
//! instructions per byte: 14 % of a preparing thread's work on the project's corpus); this
//! copies the runs between `=` and line ends whole and decodes `=XX` in one step. Every other
//! message, and any body that mail-parser would take as broken, is left to mail-parser.
//! A base64 text body is decoded by the `base64` crate when it is canonical (whole lines of
//! the alphabet, padding only at the end), where mail-parser's lenient decoder gives the same
//! bytes at about 37 instructions a byte.

use std::borrow::Cow;
use std::sync::LazyLock;

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    Encoding, GetHeader, HeaderName, HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType,
};

/// `raw` parsed as mail-parser parses it, when it is one `text/plain` part (or has no
/// `Content-Type`) in quoted-printable or base64 with no `Content-Disposition`; `None` for any
/// other message, which mail-parser must parse itself.
pub(super) fn parse<'x>(parser: &MessageParser, raw: &'x [u8]) -> Option<mail_parser::Message<'x>> {
    if !may_be_single_part_text(raw) {
        return None;
    }
    // The header fields exactly as mail-parser's own parse reads them, from the same place.
    let mut stream = MessageStream::new(raw);
    let mut headers = Vec::new();
    if !stream.parse_headers(parser, &mut headers) {
        return None;
    }
    let offset_body = stream.offset();
    let encoding = match headers.header_value(&HeaderName::ContentTransferEncoding) {
        Some(HeaderValue::Text(name)) if name.eq_ignore_ascii_case("quoted-printable") => {
            Encoding::QuotedPrintable
        }
        Some(HeaderValue::Text(name)) if name.eq_ignore_ascii_case("base64") => Encoding::Base64,
        _ => return None,
    };
    if headers
        .header_value(&HeaderName::ContentDisposition)
        .is_some()
    {
        return None;
    }
    let mut part = MessagePart {
        headers,
        is_encoding_problem: false,
        body: PartType::default(),
        encoding,
        offset_header: 0,
        offset_body: u32::try_from(offset_body).ok()?,
        offset_end: u32::try_from(raw.len()).ok()?,
    };
    // mail-parser's `mime_type`: no Content-Type is text/plain; a multipart, HTML or any
    // other type takes its other paths.
    let content_type = part.content_type();
    if content_type.is_some_and(|ct| ct.ctype() != "text" || ct.subtype() != Some("plain")) {
        return None;
    }
    let body = raw.get(offset_body..)?;
    let bytes = match encoding {
        Encoding::Base64 => decode_canonical_base64(body)?,
        _ => decode_quoted_printable(body)?,
    };
    let decoder = content_type
        .and_then(|ct| ct.attribute("charset"))
        .and_then(|charset| charset_decoder(charset.as_bytes()));
    let text = match decoder {
        Some(decode) => decode(&bytes),
        None => String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    };
    part.body = PartType::Text(Cow::Owned(text));
    // A lone inline text part is both the text and the HTML body, and no attachment.
    Some(mail_parser::Message {
        html_body: vec![0],
        text_body: vec![0],
        attachments: Vec::new(),
        parts: vec![part],
        raw_message: Cow::Borrowed(raw),
    })
}

/// A quick look, before the header fields are parsed for it: `false` when the header section
/// (up to the first empty line) names neither quoted-printable nor base64 or names a
/// multipart, which rules the message out; `true` leaves it to [`parse`]'s checks. Without
/// it, the header fields of every other message were parsed twice.
fn may_be_single_part_text(raw: &[u8]) -> bool {
    static PRINTABLE: LazyLock<Spellings> =
        LazyLock::new(|| Spellings::of(["printable", "Printable", "PRINTABLE"]));
    static BASE64: LazyLock<Spellings> =
        LazyLock::new(|| Spellings::of(["base64", "Base64", "BASE64"]));
    static MULTIPART: LazyLock<Spellings> =
        LazyLock::new(|| Spellings::of(["multipart", "Multipart", "MULTIPART"]));
    let head = header_section(raw);
    (PRINTABLE.are_in(head) || BASE64.are_in(head)) && !MULTIPART.are_in(head)
}

/// A word's three spellings (lower case, capitalised, upper case), each looked for with a
/// `memmem` searcher built once: building one for every search cost about as much as the
/// search over a header section.
pub(super) struct Spellings([memchr::memmem::Finder<'static>; 3]);

impl Spellings {
    pub(super) fn of(spellings: [&'static str; 3]) -> Spellings {
        Spellings(spellings.map(memchr::memmem::Finder::new))
    }

    /// Whether one of the spellings occurs in `text`.
    pub(super) fn are_in(&self, text: &[u8]) -> bool {
        self.0.iter().any(|finder| finder.find(text).is_some())
    }
}

/// `raw` up to the line end before its first empty line (LF or CR LF), or all of it: found
/// line by line, where two `memmem` searches (`\n\n`, `\n\r\n`) ran, the first one over the
/// whole of every CR LF message.
pub(super) fn header_section(raw: &[u8]) -> &[u8] {
    for at in memchr::memchr_iter(b'\n', raw) {
        if matches!(raw.get(at + 1..), Some([b'\n', ..] | [b'\r', b'\n', ..])) {
            return &raw[..at];
        }
    }
    raw
}

/// The body `body` decoded as mail-parser's `decode_base64_mime` decodes a part that runs to
/// the end of the message, when it is canonical base64: its lines (each ending in LF or
/// CR LF) joined are the alphabet with `=` padding to a whole group at the end only, and no
/// bits left over. mail-parser skips line ends wherever they are, so it decodes such a body
/// to the same bytes; anything else (spaces, `-`, padding inside, a partial group) is `None`
/// and left to mail-parser, which is lenient about each in its own way.
pub(super) fn decode_canonical_base64(body: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let mut joined = Vec::with_capacity(body.len());
    for line in body.split(|&b| b == b'\n') {
        joined.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
    }
    base64::engine::general_purpose::STANDARD
        .decode(&joined)
        .ok()
}

/// The bytes that end a run of ordinary text in a quoted-printable body.
static SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'=' as usize] = true;
    table[b'\n' as usize] = true;
    table[b'\r' as usize] = true;
    table
};

/// Where a quoted-printable decoder is: after ordinary text, after `=`, after `=X`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    Equals,
    FirstDigit(u8),
}

/// The body `body` decoded as mail-parser's `decode_quoted_printable_mime` decodes a part that
/// runs to the end of the message (no boundary), or `None` where it gives up (`==`, `=A=`):
/// CR is dropped and every line ends as the first CR-LF or LF seen so far; whitespace before
/// a line end is dropped; `=` + line end joins lines; `=` before anything but hex digits or
/// whitespace is kept as it is, and so is `=X` before a non-hex character.
pub(super) fn decode_quoted_printable(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut state = State::Text;
    let mut line_end: &[u8] = b"\n";
    // Whitespace bytes at the end of `out`, pushed as text since the last line end or escape.
    let mut trailing_space = 0;
    let mut at = 0;
    while at < body.len() {
        if state == State::Text {
            // A run of ordinary bytes is copied whole (runs are short in Cyrillic text, where
            // nearly every byte is escaped: a plain loop, not a `memchr` call per run).
            let start = at;
            while at < body.len() && !SPECIAL[usize::from(body[at])] {
                at += 1;
            }
            if at > start {
                let run = &body[start..at];
                let spaces = run
                    .iter()
                    .rev()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
                trailing_space = if spaces == run.len() {
                    trailing_space + spaces
                } else {
                    spaces
                };
                out.extend_from_slice(run);
                continue;
            }
            // `=XX`, the usual escape, in one step.
            if body[at] == b'=' {
                if let (Some(high), Some(low)) = (
                    body.get(at + 1).and_then(|&b| hex(b)),
                    body.get(at + 2).and_then(|&b| hex(b)),
                ) {
                    out.push((high << 4) | low);
                    trailing_space = 0;
                    at += 3;
                    continue;
                }
            }
        }
        let byte = body[at];
        at += 1;
        match byte {
            b'=' => {
                if state != State::Text {
                    return None;
                }
                state = State::Equals;
            }
            b'\n' => {
                if state == State::Equals {
                    state = State::Text;
                } else {
                    out.truncate(out.len() - trailing_space);
                    out.extend_from_slice(line_end);
                }
                trailing_space = 0;
            }
            b'\r' => line_end = b"\r\n",
            _ => match state {
                State::Text => {
                    trailing_space = if byte.is_ascii_whitespace() {
                        trailing_space + 1
                    } else {
                        0
                    };
                    out.push(byte);
                }
                State::Equals => match hex(byte) {
                    Some(high) => state = State::FirstDigit(high),
                    None if byte.is_ascii_whitespace() => {}
                    None => {
                        state = State::Text;
                        out.extend_from_slice(&[b'=', byte]);
                        trailing_space = 0;
                    }
                },
                State::FirstDigit(high) => {
                    state = State::Text;
                    match hex(byte) {
                        Some(low) => out.push((high << 4) | low),
                        // mail-parser writes back the byte before this one, which is the
                        // first digit unless a line end came between them.
                        None => out.extend_from_slice(&[b'=', body[at - 2], byte]),
                    }
                    trailing_space = 0;
                }
            },
        }
    }
    Some(out)
}

pub(super) fn hex(byte: u8) -> Option<u8> {
    let value = HEX[usize::from(byte)];
    (value != NOT_HEX).then_some(value)
}

/// [`HEX`] of a byte that is not a hex digit.
const NOT_HEX: u8 = u8::MAX;

/// Each byte's value as a hex digit (either case), by one load: `char::to_digit` took a
/// dozen instructions for each of the two digits of every escape.
static HEX: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = match byte as u8 {
            digit @ b'0'..=b'9' => digit - b'0',
            letter @ b'a'..=b'f' => letter - b'a' + 10,
            letter @ b'A'..=b'F' => letter - b'A' + 10,
            _ => NOT_HEX,
        };
        byte += 1;
    }
    table
};

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// mail-parser's own decoding of `body` as a whole part.
    fn theirs(body: &[u8]) -> Option<Vec<u8>> {
        let (end, bytes) = MessageStream::new(body).decode_quoted_printable_mime(b"");
        (end != usize::MAX).then(|| bytes.into_owned())
    }

    #[test]
    fn hex_digits_are_what_char_to_digit_says() {
        for byte in 0..=255u8 {
            assert_eq!(
                hex(byte),
                (byte as char).to_digit(16).map(|d| d as u8),
                "{byte}"
            );
        }
    }

    #[test]
    fn decodes_as_mail_parser_does() {
        let cases: [&[u8]; 16] = [
            b"",
            b"plain text\r\nsecond line",
            b"soft=\r\nbreak and =D0=9F=D1=80=D0=B8=D0=B2=D0=B5=D1=82\r\n",
            b"trailing spaces   \r\nand tabs\t\t\nend",
            b"=\n=\r\n= \t\nx",
            b"bad =ZZ and =Az and = x and =",
            b"two == equals",
            b"=A=B",
            b"=A\nB and =A\r\nB",
            b"lf first\nthen crlf\r\nthen lf\n",
            b"  \n\t \r\n=20 \n",
            b"lone \r in the middle",
            b"=4",
            b"= ",
            b"\xd0\x9f\xff raw bytes =c3=a9",
            b"ends in spaces   ",
        ];
        for body in cases {
            assert_eq!(
                decode_quoted_printable(body),
                theirs(body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// mail-parser's own decoding of `body` as a whole base64 part.
    fn theirs_base64(body: &[u8]) -> Option<Vec<u8>> {
        let (end, bytes) = MessageStream::new(body).decode_base64_mime(b"");
        (end != usize::MAX).then(|| bytes.into_owned())
    }

    #[test]
    fn decodes_canonical_base64_as_mail_parser_does_and_leaves_the_rest() {
        let canonical: [&[u8]; 6] = [
            b"",
            b"0J/RgNC40LLQtdGC\r\n",
            b"0J/RgNC4\r\n0LLQtdGC\r\nYQ==\r\n",
            b"0J/RgNC4\n0LLQtdGCYWI=\n\n",
            b"0J/R\r\ngNC4",
            b"YQ==",
        ];
        for body in canonical {
            let ours = decode_canonical_base64(body);
            assert!(ours.is_some(), "{}", String::from_utf8_lossy(body));
            assert_eq!(
                ours,
                theirs_base64(body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let left: [&[u8]; 8] = [
            b"0J/R gNC4",
            b"0J/R\tgNC4",
            b"YQ==YQ==",
            b"YQ",
            b"YR==",
            b"0J/R-gNC4",
            b"0J/R\rgNC4",
            b"0J/R--",
        ];
        for body in left {
            assert_eq!(
                decode_canonical_base64(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// `count` pseudo-random bodies of up to 63 bytes drawn from `alphabet` (deterministic).
    fn generated_bodies(alphabet: &[u8], mut seed: u64, count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let len = (seed >> 58) as usize;
                (0..len)
                    .map(|i| alphabet[((seed >> (i % 29)) as usize + i * 7) % alphabet.len()])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn decodes_every_mix_of_base64_bytes_as_mail_parser_does_or_leaves_it() {
        let alphabet: &[u8] = b"QUJD0J/R+==\r\n\n -\t\xd0";
        let mut decoded = 0;
        for body in generated_bodies(alphabet, 0x2545_f491_4f6c_dd1d, 50_000) {
            if let Some(ours) = decode_canonical_base64(&body) {
                decoded += 1;
                assert_eq!(
                    Some(ours),
                    theirs_base64(&body),
                    "{:?}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
        assert!(
            decoded > 100,
            "canonical bodies among the generated ones: {decoded}"
        );
    }

    #[test]
    fn decodes_every_mix_of_the_tricky_bytes_as_mail_parser_does() {
        let alphabet: &[u8] = b"=A0fz \t\r\nx\xd0";
        for body in generated_bodies(alphabet, 0x9e37_79b9_7f4a_7c15, 20_000) {
            assert_eq!(
                decode_quoted_printable(&body),
                theirs(&body),
                "{:?}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    /// The header section as the two `memmem` searches found it.
    fn header_section_by_two_searches(raw: &[u8]) -> &[u8] {
        let end = [&b"\n\n"[..], b"\n\r\n"]
            .iter()
            .filter_map(|blank| memchr::memmem::find(raw, blank))
            .min()
            .unwrap_or(raw.len());
        &raw[..end]
    }

    #[test]
    fn the_header_section_ends_where_the_first_empty_line_starts() {
        let pieces: [&[u8]; 7] = [b"\n", b"\r\n", b"\r", b"a", b"\n\n", b"\r\n\r\n", b" "];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for d in pieces {
                        let raw = [a, b, c, d].concat();
                        assert_eq!(
                            header_section(&raw),
                            header_section_by_two_searches(&raw),
                            "{raw:?}"
                        );
                    }
                }
            }
        }
    }

    fn parser() -> MessageParser {
        MessageParser::new()
            .with_mime_headers()
            .with_date_headers()
            .with_address_headers()
            .with_message_ids()
    }

    /// Every `.eml` under `dir`, recursively.
    pub(in crate::message) fn messages_in(dir: &std::path::Path, out: &mut Vec<Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                messages_in(&path, out);
            } else if path.extension().is_some_and(|e| e == "eml") {
                out.push(std::fs::read(&path).expect("a fixture is readable"));
            }
        }
    }

    #[test]
    fn parses_the_fixtures_as_mail_parser_does() {
        let parser = parser();
        let mut messages = Vec::new();
        messages_in(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"),
            &mut messages,
        );
        assert!(messages.len() > 50, "fixtures found: {}", messages.len());
        let mut fast = 0;
        for raw in &messages {
            let Some(ours) = parse(&parser, raw) else {
                continue;
            };
            fast += 1;
            let whole = parser.parse(raw).expect("the message has header fields");
            assert_eq!(ours.parts, whole.parts, "{}", String::from_utf8_lossy(raw));
            assert_eq!(
                (ours.text_body, ours.html_body, ours.attachments),
                (whole.text_body, whole.html_body, whole.attachments)
            );
        }
        assert!(fast >= 3, "single-part quoted-printable fixtures: {fast}");
    }

    #[test]
    fn parses_single_part_messages_as_mail_parser_does() {
        let parser = parser();
        let bodies: [&[u8]; 5] = [
            b"=D0=9F=D1=80=D0=B8=D0=B2=D0=B5=D1=82, =\r\nworld  \r\n\r\n",
            b"=CF=F0=E8=E2=E5=F2\n",
            b"two == equals\n",
            b"0J/RgNC4\r\n0LLQtdGC\r\nYQ==\r\n",
            b"z/Do4uXy\n",
        ];
        let headers = [
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
            "Content-Type: text/plain; charset=\"windows-1251\"\nContent-Transfer-Encoding: Quoted-Printable\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "Content-Type: text/plain; charset=x-unknown\r\nContent-Transfer-Encoding: quoted-printable\r\n",
            "Content-Type: TEXT/Plain\r\nContent-Transfer-Encoding: quoted-printable\r\n",
            "Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n",
            "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Disposition: inline\r\n",
            "Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n",
            "Content-Transfer-Encoding: base64\r\nContent-Transfer-Encoding: quoted-printable\r\n",
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
            "Content-Type: text/plain; charset=windows-1251\nContent-Transfer-Encoding: BASE64\n",
        ];
        let mut fast = 0;
        for header in headers {
            for body in bodies {
                let mut raw =
                    format!("From: a@b.example\r\nSubject: hi\r\n{header}\r\n").into_bytes();
                raw.extend_from_slice(body);
                let Some(ours) = parse(&parser, &raw) else {
                    continue;
                };
                fast += 1;
                let whole = parser.parse(&raw).expect("the message has header fields");
                assert_eq!(ours.parts, whole.parts, "{}", String::from_utf8_lossy(&raw));
                assert_eq!(ours.text_body, whole.text_body);
                assert_eq!(ours.html_body, whole.html_body);
                assert_eq!(ours.attachments, whole.attachments);
            }
        }
        // Six of the headers (the type's case does not matter, the last encoding counts) with
        // every body that is good quoted-printable (all but the two with `==`, on which
        // mail-parser gives up and parses the message as broken), and the two base64 headers
        // with the two base64 bodies.
        assert_eq!(fast, 6 * 3 + 2 * 2, "the single-part texts");
    }
}
