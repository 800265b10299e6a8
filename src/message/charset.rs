//! Best-effort decoding of 8-bit text whose charset is missing, wrong or unknown.
//!
//! Russian mail often arrives as raw windows-1251 or KOI8-R bytes labelled as nothing,
//! `us-ascii` or even `utf-8`. Valid UTF-8 is taken as is; otherwise the byte statistics pick
//! between windows-1251 and KOI8-R (their lower-case letters sit in opposite halves of the
//! 0xC0–0xFF range), falling back to windows-1252 for Latin text.

use std::borrow::Cow;

use mail_parser::decoders::charsets::map::charset_decoder;

/// Decodes `bytes` that carry no trustworthy charset label.
pub(crate) fn decode_unlabelled(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    if mostly_utf8(bytes) {
        return String::from_utf8_lossy(bytes);
    }
    let label: &[u8] = match guess_single_byte(bytes) {
        SingleByte::Windows1251 => b"windows-1251",
        SingleByte::Koi8R => b"koi8-r",
        SingleByte::Windows1252 => b"windows-1252",
    };
    match charset_decoder(label) {
        Some(decode) => Cow::Owned(decode(bytes)),
        None => String::from_utf8_lossy(bytes),
    }
}

/// Whether text decoded with a single-byte charset reads like UTF-8 Cyrillic decoded that way:
/// windows-1251 turns UTF-8 continuation bytes into letters such as "ђ", "Ѓ", "µ", "¶",
/// KOI8-R into box-drawing characters, ISO-8859-5 into C1 controls, none of which Russian
/// text uses (two are enough). Only a hint: the caller still checks that the bytes are valid
/// UTF-8.
pub(crate) fn looks_like_utf8_mojibake(text: &str) -> bool {
    // The characters by their UTF-8 bytes: a lead byte and the range of the byte after it.
    // Looking at bytes rather than decoding characters halves the cost on Cyrillic text;
    // C2, D0, D1 and E2 are never continuation bytes, so a pair is always a character's start.
    let mut seen = 0;
    for pair in text.as_bytes().windows(2) {
        let is_mojibake = match pair[0] {
            0xC2 => matches!(pair[1], 0x80..=0x9F | 0xB5 | 0xB6), // U+0080-009F, µ, ¶
            0xD0 => matches!(pair[1], 0x82..=0x8F),               // U+0402-040F
            0xD1 => matches!(pair[1], 0x92..=0x9F),               // U+0452-045F
            0xE2 => matches!(pair[1], 0x94..=0x97),               // U+2500-25FF
            _ => false,
        };
        if is_mojibake {
            seen += 1;
            if seen == 2 {
                return true;
            }
        }
    }
    false
}

/// UTF-8 with a few broken bytes (truncated or corrupted mail) rather than a single-byte
/// charset: windows-1251 and KOI8-R letters hardly ever form valid multi-byte sequences.
fn mostly_utf8(bytes: &[u8]) -> bool {
    let (mut valid_sequences, mut invalid_bytes) = (0usize, 0usize);
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                valid_sequences += valid.bytes().filter(|b| *b >= 0xC0).count();
                break;
            }
            Err(error) => {
                let valid_len = error.valid_up_to();
                valid_sequences += rest[..valid_len].iter().filter(|b| **b >= 0xC0).count();
                let bad = error.error_len().unwrap_or(rest.len() - valid_len);
                invalid_bytes += bad;
                rest = &rest[valid_len + bad..];
            }
        }
    }
    valid_sequences > 0 && valid_sequences >= invalid_bytes
}

#[derive(Debug, PartialEq, Eq)]
enum SingleByte {
    Windows1251,
    Koi8R,
    Windows1252,
}

fn guess_single_byte(bytes: &[u8]) -> SingleByte {
    let (mut c0_df, mut e0_ff, mut in_words) = (0usize, 0usize, 0usize);
    for (i, &b) in bytes.iter().enumerate() {
        if b < 0xC0 {
            continue;
        }
        if b < 0xE0 {
            c0_df += 1;
        } else {
            e0_ff += 1;
        }
        let high_neighbour = |j: usize| bytes.get(j).is_some_and(|&n| n >= 0x80);
        if high_neighbour(i + 1) || (i > 0 && high_neighbour(i - 1)) {
            in_words += 1;
        }
    }
    let letters = c0_df + e0_ff;
    // Cyrillic words are runs of high bytes; Latin-1 accents sit alone between ASCII letters
    // ("café", "Müller").
    if letters == 0 || in_words * 2 < letters {
        return SingleByte::Windows1252;
    }
    if c0_df > e0_ff {
        SingleByte::Koi8R
    } else {
        SingleByte::Windows1251
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_borrowed_unchanged() {
        let text = "Добрый день";
        assert!(matches!(decode_unlabelled(text.as_bytes()), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn windows_1251_is_recognised() {
        // "Добрый день, прошу выставить счёт" in windows-1251.
        let bytes = b"\xc4\xee\xe1\xf0\xfb\xe9 \xe4\xe5\xed\xfc, \xef\xf0\xee\xf8\xf3 \
            \xe2\xfb\xf1\xf2\xe0\xe2\xe8\xf2\xfc \xf1\xf7\xb8\xf2";
        assert_eq!(
            decode_unlabelled(bytes),
            "Добрый день, прошу выставить счёт"
        );
    }

    #[test]
    fn koi8_r_is_recognised() {
        // "Добрый день, прошу выставить счет" in KOI8-R.
        let bytes = b"\xe4\xcf\xc2\xd2\xd9\xca \xc4\xc5\xce\xd8, \xd0\xd2\xcf\xdb\xd5 \
            \xd7\xd9\xd3\xd4\xc1\xd7\xc9\xd4\xd8 \xd3\xde\xc5\xd4";
        assert_eq!(
            decode_unlabelled(bytes),
            "Добрый день, прошу выставить счет"
        );
    }

    #[test]
    fn utf8_with_a_broken_tail_stays_utf8() {
        assert_eq!(
            decode_unlabelled(b"y\xc3\xb6t\xc3\xa4 vaan.\n\xff\t\xc3"),
            "yötä vaan.\n\u{fffd}\t\u{fffd}"
        );
    }

    #[test]
    fn utf8_mojibake_is_recognised() {
        let utf8 = "Добрый день, прошу счёт".as_bytes();
        let as_cp1251 = charset_decoder(b"windows-1251").unwrap()(utf8);
        let as_koi8 = charset_decoder(b"koi8-r").unwrap()(utf8);
        assert!(looks_like_utf8_mojibake(&as_cp1251), "{as_cp1251}");
        assert!(looks_like_utf8_mojibake(&as_koi8), "{as_koi8}");
        assert!(!looks_like_utf8_mojibake(
            "Добрый день, прошу счёт № 5 — «срочно»"
        ));
    }

    /// The characters [`looks_like_utf8_mojibake`] counts, one at a time.
    fn is_mojibake_character(c: char) -> bool {
        matches!(c,
            '\u{80}'..='\u{9f}'
            | '\u{b5}' | '\u{b6}'
            | '\u{402}'..='\u{40f}' | '\u{452}'..='\u{45f}'
            | '\u{2500}'..='\u{25ff}')
    }

    #[test]
    fn mojibake_characters_are_recognised_by_their_bytes_every_one() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let expected = is_mojibake_character(c);
            assert_eq!(
                looks_like_utf8_mojibake(&format!("{c}{c}")),
                expected,
                "{c:?}"
            );
            assert_eq!(
                looks_like_utf8_mojibake(&format!("а{c}я{c}.")),
                expected,
                "{c:?}"
            );
            assert!(!looks_like_utf8_mojibake(&format!("{c}")), "{c:?}");
            assert_eq!(
                looks_like_utf8_mojibake(&format!("{c}Ђ")),
                expected,
                "{c:?}"
            );
        }
    }

    #[test]
    fn latin1_falls_back_to_windows_1252() {
        assert_eq!(decode_unlabelled(b"caf\xe9 \x80 5"), "café € 5");
    }
}
