//! Small text helpers shared by several modules: positions, terminal widths, control characters,
//! the base64 alphabet.

use unicode_width::UnicodeWidthStr;

/// A value from mail or a rule file in double quotes, as TOML writes it: control characters and
/// quotes escaped (so a hostile value cannot move a terminal's cursor) and the text pasteable
/// into a rule file.
pub fn quoted(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// 1-based line and column (in characters) of byte offset `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_col(offset)
}

/// Where each line of a text starts, for many [`line_col`] lookups in one file (the rule loader
/// asks for every item's position: from the start of the file each time, that is quadratic).
pub struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    pub fn new(text: &'t str) -> LineIndex<'t> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { text, starts }
    }

    /// 1-based line and column (in characters) of byte offset `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut cut = offset.min(self.text.len());
        while !self.text.is_char_boundary(cut) {
            cut -= 1;
        }
        let line = self.starts.partition_point(|&start| start <= cut);
        let line_start = self.starts[line - 1];
        let column = self.text[line_start..cut].chars().count() + 1;
        (line, column)
    }
}

/// `s.to_lowercase()`, faster on the text mail carries: ASCII and Cyrillic letters are mapped
/// directly instead of through the Unicode case tables (the rule engine lower-cases every
/// subject and body). Any other character goes through `char::to_lowercase`, and text with a
/// capital sigma (whose lower case depends on its position) through `str::to_lowercase`.
pub fn lowercase(s: &str) -> String {
    if s.contains('Σ') {
        return s.to_lowercase();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        // A run of ASCII is copied and lower-cased in place, many bytes at a time.
        let ascii = rest
            .bytes()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len());
        let start = out.len();
        out.push_str(&rest[..ascii]);
        out[start..].make_ascii_lowercase();
        let mut chars = rest[ascii..].chars();
        for ch in chars.by_ref() {
            match ch {
                'А'..='Я' => out.push(shifted(ch, 0x20)),
                'а'..='џ' => out.push(ch),
                'Ѐ'..='Џ' => out.push(shifted(ch, 0x50)),
                '\0'..='\u{7f}' => {
                    out.push(ch.to_ascii_lowercase());
                    break;
                }
                _ => out.extend(ch.to_lowercase()),
            }
        }
        rest = chars.as_str();
    }
    out
}

/// `ch` moved up by `by` code points (a capital letter to its small letter).
fn shifted(ch: char, by: u32) -> char {
    char::from_u32(ch as u32 + by).unwrap_or(ch)
}

/// Which bytes belong to base64's alphabet (no `=`): one load per byte where comparing with
/// three ranges and two characters was most of the time spent finding attachments' lines.
pub static BASE64_ALPHABET: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
        b += 1;
    }
    table
};

/// Lower-case hexadecimal digits of `bytes`, appended to `out`.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
}

/// Display width of `s` in a terminal (Cyrillic letters are one column, CJK two).
pub fn display_width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// Replaces CR, LF and other control characters by spaces, so that a value can go into a
/// header or a one-line log field without starting a new line.
pub fn single_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        out.push(if ch.is_control() { ' ' } else { ch });
    }
    out
}

/// Bidirectional controls (embeddings, overrides, isolates, marks): in mail text they can
/// make a terminal show text in another order than it is (a file name ending in "fdp.exe"
/// shown as "exe.pdf").
fn is_bidi_control(ch: char) -> bool {
    matches!(ch, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// One line of mail text for a terminal: control characters (every escape sequence starts
/// with one) and bidirectional controls become spaces.
pub fn for_terminal(s: &str) -> String {
    s.chars()
        .map(|ch| {
            if ch.is_control() || is_bidi_control(ch) {
                ' '
            } else {
                ch
            }
        })
        .collect()
}

/// Many lines of mail (a whole message as it came) for a terminal: line breaks and tabs stay,
/// other control characters and bidirectional controls are shown escaped (`\x1b`, `\u{202e}`)
/// and bytes that are not UTF-8 as U+FFFD.
pub fn escape_for_terminal(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\n' | '\t' => out.push(ch),
            '\r' => {}
            c if c.is_control() && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// `90s`, `5m`, `2h`, `1d`, `1h30m`: the way durations are written in the config (and in
/// messages people read, instead of Rust's `Debug` form).
pub fn duration(d: std::time::Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        // Only tests wait less than a second.
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_in_the_config() {
        use std::time::Duration;
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(duration(Duration::from_secs(300)), "5m");
        assert_eq!(duration(Duration::from_secs(86_400 + 3600)), "1d1h");
        assert_eq!(duration(Duration::from_millis(500)), "500ms");
    }

    #[test]
    fn line_col_counts_characters() {
        let text = "a = 1\nимя = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        let pos = text.find('=').unwrap();
        assert_eq!(line_col(text, pos), (1, 3));
        let pos = text.rfind('=').unwrap();
        assert_eq!(line_col(text, pos), (2, 5));
        assert_eq!(line_col(text, text.len()), (3, 1));
        assert_eq!(line_col(text, 8), (2, 2), "inside a character: its start");
    }

    #[test]
    fn single_line_removes_breaks() {
        assert_eq!(single_line("a\r\nBcc: x"), "a  Bcc: x");
    }

    #[test]
    fn mail_text_reaches_a_terminal_without_escape_sequences() {
        let hostile = "Счёт\u{1b}]0;owned\u{7}\u{1b}[2J \u{202e}fdp.exe";
        let line = for_terminal(hostile);
        assert!(
            !line.chars().any(|c| c.is_control() || is_bidi_control(c)),
            "{line:?}"
        );
        assert!(line.starts_with("Счёт ]0;owned "), "{line:?}");
        let text = escape_for_terminal(format!("{hostile}\r\nnext\tline\n").as_bytes());
        assert_eq!(
            text,
            "Счёт\\x1b]0;owned\\x07\\x1b[2J \\u{202e}fdp.exe\nnext\tline\n"
        );
        assert_eq!(escape_for_terminal(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn push_hex_writes_two_lower_case_digits_per_byte() {
        let mut out = String::from("sha256:");
        push_hex(&mut out, &[0x00, 0x0f, 0xa5, 0xff]);
        assert_eq!(out, "sha256:000fa5ff");
    }

    #[test]
    fn lowercase_agrees_with_the_standard_library() {
        let every_char: String = (0u32..0x3000)
            .filter_map(char::from_u32)
            .filter(|c| *c != 'Σ')
            .collect();
        assert_eq!(lowercase(&every_char), every_char.to_lowercase());
        for text in [
            "Заказ №42 ДОСТАВЛЕН, Ёлка и ЁЖ",
            "ΟΔΟΣ Σ ΣΑΣ",
            "İstanbul ǅ ẞ",
            "",
            "plain ascii MIXED Case 123",
        ] {
            assert_eq!(lowercase(text), text.to_lowercase(), "{text}");
        }
    }
}
