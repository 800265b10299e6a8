//! Header values: unfolding and RFC 2047 encoded-word decoding.
//!
//! Own decoder rather than mail-parser's because real mailers split long Cyrillic subjects
//! into encoded words at byte boundaries, cutting a UTF-8 character in two: adjacent words in
//! one charset are joined as bytes before the charset is applied. The whitespace between
//! adjacent encoded words is dropped (RFC 2047 §6.2), and nothing is added around them.

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;

use super::charset::decode_unlabelled;

/// Unfolds a raw header value (continuation lines joined with one space, ends trimmed) and
/// decodes its encoded words.
pub(super) fn decode_header_value(raw: &str) -> String {
    if encoded_word_start(raw).is_none() {
        // Most values (trace fields, ids, signatures) have no encoded word: only unfolded.
        return unfolded(raw);
    }
    decode_words(raw)
}

/// [`decode_header_value`] of a value that may have encoded words.
fn decode_words(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    // Words decoded so far in the current run of adjacent encoded words, one charset.
    let mut run: Option<(&str, Vec<u8>)> = None;
    // Whitespace seen after an encoded word, kept only if literal text follows.
    let mut gap = String::new();
    for (index, line) in raw
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if index > 0 {
            if run.is_some() {
                gap.push(' ');
            } else {
                out.push(' ');
            }
        }
        let mut rest = line;
        while !rest.is_empty() {
            match encoded_word_start(rest).and_then(|at| Some((at, parse_word(&rest[at..])?))) {
                Some((at, word)) => {
                    let before = &rest[..at];
                    if before.trim().is_empty() && run.is_some() {
                        // Only whitespace between two encoded words: it is dropped.
                    } else {
                        flush(&mut run, &mut out);
                        out.push_str(&gap);
                        out.push_str(before);
                    }
                    gap.clear();
                    match &mut run {
                        Some((charset, bytes)) if charset.eq_ignore_ascii_case(word.charset) => {
                            bytes.extend_from_slice(&word.bytes);
                        }
                        _ => {
                            flush(&mut run, &mut out);
                            run = Some((word.charset, word.bytes));
                        }
                    }
                    rest = &rest[at + word.len..];
                }
                None => {
                    if run.is_some() && rest.trim().is_empty() {
                        gap.push_str(rest);
                    } else {
                        flush(&mut run, &mut out);
                        out.push_str(&gap);
                        gap.clear();
                        out.push_str(rest);
                    }
                    rest = "";
                }
            }
        }
    }
    flush(&mut run, &mut out);
    out.truncate(out.trim_end().len());
    out
}

/// Where the first `=?` of `text` is. Found through its `=` (memchr) rather than as a
/// two-byte pattern: `str::find` sets up a two-way search on every call, which cost more than
/// the search itself on header values a few dozen bytes long.
fn encoded_word_start(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = memchr::memchr(b'=', &bytes[from..]) {
        let at = from + at;
        if bytes.get(at + 1) == Some(&b'?') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// A value without encoded words as [`decode_header_value`] gives it: its lines trimmed, the
/// blank ones dropped, the others joined with one space.
fn unfolded(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for line in raw.split('\n').map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line);
    }
    out
}

fn flush(run: &mut Option<(&str, Vec<u8>)>, out: &mut String) {
    if let Some((charset, bytes)) = run.take() {
        out.push_str(&decode_charset(charset, &bytes));
    }
}

/// Bytes in the charset an encoded word names; unknown or lying labels get the guess. Valid
/// non-ASCII UTF-8 is UTF-8 whatever the label says: single-byte Cyrillic text practically
/// never forms valid UTF-8, while UTF-8 sites still labelling mail windows-1251 are common.
pub(super) fn decode_charset(label: &str, bytes: &[u8]) -> String {
    if !bytes.is_ascii() {
        if let Ok(text) = std::str::from_utf8(bytes) {
            return text.to_string();
        }
    }
    // RFC 2231 allows a language after the charset: "utf-8*ru".
    let label = label.split('*').next().unwrap_or(label);
    let is_utf8 = label.eq_ignore_ascii_case("utf-8") || label.eq_ignore_ascii_case("utf8");
    match charset_decoder(label.as_bytes()) {
        Some(decode) if !is_utf8 => decode(bytes),
        _ => decode_unlabelled(bytes).into_owned(),
    }
}

struct EncodedWord<'a> {
    charset: &'a str,
    bytes: Vec<u8>,
    /// Length of the whole `=?…?=` in the input.
    len: usize,
}

/// Parses `=?charset?B|Q?text?=` at the start of `text`.
fn parse_word(text: &str) -> Option<EncodedWord<'_>> {
    let inner = text.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let payload = &rest[..end];
    if charset.is_empty() || charset.contains(char::is_whitespace) {
        return None;
    }
    if payload.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => base64_decode(payload.as_bytes())?,
        "Q" | "q" => decode_q(payload.as_bytes()),
        _ => return None,
    };
    let len = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    Some(EncodedWord {
        charset,
        bytes,
        len,
    })
}

fn decode_q(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len());
    let mut i = 0;
    while i < payload.len() {
        match payload[i] {
            b'_' => out.push(b' '),
            b'=' => {
                let hex = payload
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'='),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_unfolded_and_trimmed() {
        assert_eq!(decode_header_value(" one\r\n\t two  \r\n"), "one two");
        assert_eq!(decode_header_value("a  b"), "a  b");
    }

    #[test]
    fn values_without_encoded_words_are_unfolded_as_the_decoder_does() {
        let pieces = [
            "",
            " ",
            "\t",
            "\r",
            "\n",
            "\r\n",
            "\r\n ",
            "\n\t",
            "\u{a0}",
            "\u{2003}",
            "a",
            "Re:",
            "=",
            "?",
            "?=",
            "x=y",
            "Заказ",
            "<id@x>",
        ];
        let mut checked = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for d in pieces {
                        let value = format!("{a}{b}{c}{d}");
                        if encoded_word_start(&value).is_some() {
                            continue;
                        }
                        assert_eq!(unfolded(&value), decode_words(&value), "{value:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 50_000, "{checked}");
    }

    #[test]
    fn the_first_encoded_word_start_is_found() {
        for text in [
            "",
            "=",
            "?",
            "a=b",
            "==?",
            "=?",
            "x =? y",
            "a=\n=?b",
            "?=?=",
            "Заказ=?",
        ] {
            assert_eq!(encoded_word_start(text), text.find("=?"), "{text:?}");
        }
    }

    #[test]
    fn encoded_words_in_several_charsets() {
        assert_eq!(
            decode_header_value("=?windows-1251?Q?=D1=F7=B8=F2_=B9_5?= [#42]"),
            "Счёт № 5 [#42]"
        );
        assert_eq!(
            decode_header_value("Re: =?koi8-r?B?8NLJ18XU?="),
            "Re: Привет"
        );
        assert_eq!(
            decode_header_value("=?ISO-8859-5?q?=B2=E1=E2=E0=D5=E7=D0?="),
            "Встреча"
        );
    }

    #[test]
    fn whitespace_between_adjacent_words_is_dropped() {
        assert_eq!(
            decode_header_value("=?utf-8?B?0JfQsNC6?=\r\n =?utf-8?B?0LDQtw==?= N5"),
            "Заказ N5"
        );
    }

    #[test]
    fn utf8_character_split_across_words() {
        // "Привет" with the "е" (d0 b5) cut between the two words.
        assert_eq!(
            decode_header_value("=?utf-8?B?0J/RgNC40LLQ?= =?utf-8?B?tdGC?="),
            "Привет"
        );
    }

    #[test]
    fn quoted_display_name_keeps_quotes_without_extra_spaces() {
        assert_eq!(
            decode_header_value("\"=?utf-8?B?0JjQstCw0L0=?=\" <ivan@x.example>"),
            "\"Иван\" <ivan@x.example>"
        );
    }

    #[test]
    fn broken_words_stay_literal() {
        for value in [
            "=?utf-8?B?",
            "=?utf-8?X?abc?=",
            "=??B?abc?=",
            "a =? b ?= c",
            "=?utf-8?Q?a b?=",
        ] {
            assert_eq!(decode_header_value(value), value);
        }
    }

    #[test]
    fn mislabelled_and_unknown_charsets_are_guessed() {
        // windows-1251 bytes labelled utf-8, and an unknown label.
        assert_eq!(
            decode_header_value("=?utf-8?Q?=CF=F0=E8=E2=E5=F2?="),
            "Привет"
        );
        assert_eq!(
            decode_header_value("=?x-unknown?Q?=CF=F0=E8=E2=E5=F2?="),
            "Привет"
        );
    }
}
