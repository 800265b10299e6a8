//! Aligned plain-text tables for the terminal, measured in display columns so Cyrillic and
//! wide characters line up.

use crate::text::display_width;

pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Cells wider than this are cut with an ellipsis (0 = never).
    max_cell: usize,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            max_cell: 60,
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .map(|c| truncate(&crate::text::single_line(&c), self.max_cell))
            .collect();
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| display_width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(display_width(cell));
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate().take(columns) {
                text.push_str(cell);
                if i + 1 < columns {
                    let pad = widths[i].saturating_sub(display_width(cell)) + 2;
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&self.headers);
        for row in &self.rows {
            line(row);
        }
        out
    }
}

/// Cuts `s` to at most `max` display columns, ending with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if max == 0 || display_width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut width = 0;
    for ch in s.chars() {
        let w = display_width(ch.encode_utf8(&mut [0; 4]));
        if width + w + 1 > max {
            break;
        }
        out.push(ch);
        width += w;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyrillic_columns_line_up() {
        let mut t = Table::new(&["ID", "СТАТУС", "TITLE"]);
        t.row(vec!["1".into(), "Новая".into(), "Заявка".into()]);
        t.row(vec![
            "12".into(),
            "Нужно ответить клиенту".into(),
            "x".into(),
        ]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        let col = |line: &str, needle: &str| display_width(&line[..line.find(needle).unwrap()]);
        assert_eq!(col(lines[1], "Заявка"), col(lines[2], "x"));
        assert_eq!(col(lines[0], "TITLE"), col(lines[2], "x"));
    }

    #[test]
    fn long_cells_are_cut() {
        assert_eq!(truncate("абвгдежз", 5), "абвг…");
        assert_eq!(truncate("абв", 5), "абв");
    }
}
