//! Small text helpers shared by several modules: positions, terminal widths, control characters.

use unicode_width::UnicodeWidthStr;

/// 1-based line and column (in characters) of byte offset `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut cut = offset;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let before = &text[..cut];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let text = "a = 1\nимя = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        let pos = text.find('=').unwrap();
        assert_eq!(line_col(text, pos), (1, 3));
        let pos = text.rfind('=').unwrap();
        assert_eq!(line_col(text, pos), (2, 5));
    }

    #[test]
    fn single_line_removes_breaks() {
        assert_eq!(single_line("a\r\nBcc: x"), "a  Bcc: x");
    }
}
