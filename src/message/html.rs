//! HTML → readable plain text, for messages that carry only an HTML body.
//!
//! A small single-pass converter rather than a crate: mail HTML needs only a handful of rules
//! (drop invisible elements, blocks become lines, entities decoded), and the output has to keep
//! web-form answers like `<p><b>Причина:</b> Дорого</p>` on one line each so line-based
//! extractors work.

/// Converts an HTML document or fragment to plain text with `\n` line endings.
///
/// Script, style, head and comments are dropped; block elements and `<br>` start new lines;
/// list items become `- item`; table cells are separated (`Причина: Дорого` when the first cell
/// ends with a colon, `a | b` otherwise); `<blockquote>` lines are prefixed with `> ` so quoted
/// replies can be recognised; whitespace is collapsed outside `<pre>`; at most one blank line
/// is kept in a row.
pub fn html_to_text(html: &str) -> String {
    let mut out = TextBuilder::with_capacity(html.len() / 2);
    let bytes = html.as_bytes();
    let mut pos = 0;
    let mut text_start = 0;
    while let Some(offset) = memchr_lt(&bytes[pos..]) {
        let lt = pos + offset;
        out.push_text(&html[text_start..lt]);
        match read_markup(html, lt) {
            Markup::Comment { end } | Markup::Declaration { end } => pos = end,
            Markup::Tag { name, closing, end } => {
                pos = end;
                if !closing {
                    if let Some(skip_to) = skipped_element_end(html, name, end) {
                        pos = skip_to;
                        text_start = pos;
                        continue;
                    }
                }
                out.tag(name, closing);
            }
            Markup::Text => {
                // A lone `<` (as in "a < b"): keep it as text.
                out.push_text("<");
                pos = lt + 1;
            }
        }
        text_start = pos;
    }
    out.push_text(&html[text_start..]);
    out.finish()
}

fn memchr_lt(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'<')
}

enum Markup<'a> {
    Comment {
        end: usize,
    },
    Declaration {
        end: usize,
    },
    Tag {
        name: &'a str,
        closing: bool,
        end: usize,
    },
    Text,
}

/// Reads the markup starting at `html[lt] == '<'`.
fn read_markup(html: &str, lt: usize) -> Markup<'_> {
    let rest = &html[lt..];
    if let Some(comment) = rest.strip_prefix("<!--") {
        let end = comment.find("-->").map_or(html.len(), |i| lt + 4 + i + 3);
        return Markup::Comment { end };
    }
    if rest.starts_with("<!") || rest.starts_with("<?") {
        let end = rest.find('>').map_or(html.len(), |i| lt + i + 1);
        return Markup::Declaration { end };
    }
    let (closing, name_start) = if rest.starts_with("</") {
        (true, lt + 2)
    } else {
        (false, lt + 1)
    };
    let name_len = html[name_start..]
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b':' || *b == b'-')
        .count();
    if name_len == 0 || !html.as_bytes()[name_start].is_ascii_alphabetic() {
        return Markup::Text;
    }
    let name = &html[name_start..name_start + name_len];
    Markup::Tag {
        name,
        closing,
        end: tag_end(html, name_start + name_len),
    }
}

/// The position after the `>` that closes a tag, honouring quoted attribute values.
fn tag_end(html: &str, from: usize) -> usize {
    let mut quote: Option<u8> = None;
    for (i, b) in html.as_bytes()[from..].iter().enumerate() {
        match (quote, *b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(*b),
            (None, b'>') => return from + i + 1,
            _ => {}
        }
    }
    html.len()
}

/// For elements whose content is never shown, the position after their closing tag.
fn skipped_element_end(html: &str, name: &str, content_start: usize) -> Option<usize> {
    let closers: &[&str] = if name.eq_ignore_ascii_case("script") {
        &["</script"]
    } else if name.eq_ignore_ascii_case("style") {
        &["</style"]
    } else if name.eq_ignore_ascii_case("title") {
        &["</title"]
    } else if name.eq_ignore_ascii_case("head") {
        // Broken mail often never closes <head>; <body> ends it too.
        &["</head", "<body"]
    } else {
        return None;
    };
    let rest = &html[content_start..];
    let found = closers
        .iter()
        .filter_map(|closer| find_ignore_ascii_case(rest, closer))
        .min();
    Some(match found {
        Some(i) => {
            let close_at = content_start + i;
            if html[close_at..].starts_with("</") {
                tag_end(html, close_at + 2)
            } else {
                close_at
            }
        }
        None => html.len(),
    })
}

fn find_ignore_ascii_case(haystack: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TagKind {
    /// Starts and ends on its own line.
    Block,
    LineBreak,
    ListItem,
    Row,
    Cell,
    Quote,
    Pre,
    Inline,
}

fn tag_kind(name: &str) -> TagKind {
    const BLOCKS: &[&str] = &[
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "caption",
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "aside",
        "main",
        "address",
        "form",
        "fieldset",
        "legend",
        "center",
        "hr",
        "body",
        "html",
        "figure",
        "figcaption",
        "details",
        "summary",
    ];
    let is = |s: &str| name.eq_ignore_ascii_case(s);
    if is("br") {
        TagKind::LineBreak
    } else if is("li") {
        TagKind::ListItem
    } else if is("tr") {
        TagKind::Row
    } else if is("td") || is("th") {
        TagKind::Cell
    } else if is("blockquote") {
        TagKind::Quote
    } else if is("pre") {
        TagKind::Pre
    } else if BLOCKS.iter().any(|b| is(b)) {
        TagKind::Block
    } else {
        TagKind::Inline
    }
}

/// Accumulates the text, tracking where lines start so block boundaries never produce
/// stray blank lines and whitespace collapses the way a browser would show it.
struct TextBuilder {
    out: String,
    /// A collapsed whitespace run is waiting to become one space before the next word.
    pending_space: bool,
    /// Nothing has been written on the current output line yet.
    at_line_start: bool,
    quote_depth: usize,
    pre_depth: usize,
    /// Some text came from `<pre>`, whose indentation is meaningful.
    saw_pre: bool,
    /// Cells already written in the current table row.
    cells_in_row: usize,
}

impl TextBuilder {
    fn with_capacity(capacity: usize) -> TextBuilder {
        TextBuilder {
            out: String::with_capacity(capacity),
            pending_space: false,
            at_line_start: true,
            quote_depth: 0,
            pre_depth: 0,
            saw_pre: false,
            cells_in_row: 0,
        }
    }

    fn tag(&mut self, name: &str, closing: bool) {
        match (tag_kind(name), closing) {
            (TagKind::Inline, _) => {}
            (TagKind::LineBreak, _) => self.newline(),
            (TagKind::Block, _) => self.end_line(),
            (TagKind::ListItem, false) => {
                self.end_line();
                self.push_text("- ");
            }
            (TagKind::ListItem, true) => self.end_line(),
            (TagKind::Row, _) => {
                self.end_line();
                self.cells_in_row = 0;
            }
            (TagKind::Cell, false) => {
                if self.cells_in_row > 0 && !self.at_line_start {
                    let after_label = self.out.trim_end().ends_with(':');
                    self.pending_space = false;
                    self.out.push_str(if after_label { " " } else { " | " });
                }
                self.cells_in_row += 1;
            }
            (TagKind::Cell, true) => {}
            (TagKind::Quote, false) => {
                self.end_line();
                self.quote_depth += 1;
            }
            (TagKind::Quote, true) => {
                self.end_line();
                self.quote_depth = self.quote_depth.saturating_sub(1);
            }
            (TagKind::Pre, false) => {
                self.end_line();
                self.pre_depth += 1;
                self.saw_pre = true;
            }
            (TagKind::Pre, true) => {
                self.end_line();
                self.pre_depth = self.pre_depth.saturating_sub(1);
            }
        }
    }

    /// Text between tags, entities still encoded.
    fn push_text(&mut self, raw: &str) {
        if raw.is_empty() {
            return;
        }
        if raw.contains('&') {
            let decoded = decode_entities(raw);
            self.push_decoded(&decoded);
        } else {
            self.push_decoded(raw);
        }
    }

    fn push_decoded(&mut self, text: &str) {
        for ch in text.chars() {
            if self.pre_depth > 0 {
                match ch {
                    '\r' => {}
                    '\n' => self.newline(),
                    _ => self.push_char(ch),
                }
            } else if ch == '\u{a0}' {
                // A non-breaking space is visible even where whitespace collapses: it keeps
                // Outlook's `<p>&nbsp;</p>` empty paragraphs as blank lines.
                self.push_char(' ');
            } else if ch.is_whitespace() {
                if !self.at_line_start {
                    self.pending_space = true;
                }
            } else if ch == '\u{ad}' || ch == '\u{200b}' || ch == '\u{feff}' {
                // Soft hyphen and zero-width characters are invisible.
            } else {
                self.push_char(ch);
            }
        }
    }

    fn push_char(&mut self, ch: char) {
        if self.at_line_start {
            for _ in 0..self.quote_depth {
                self.out.push_str("> ");
            }
            self.at_line_start = false;
        } else if self.pending_space {
            self.out.push(' ');
        }
        self.pending_space = false;
        self.out.push(ch);
    }

    /// `<br>`: always a new line, so `<br><br>` gives a blank line.
    fn newline(&mut self) {
        if self.at_line_start && self.quote_depth > 0 {
            for _ in 0..self.quote_depth {
                self.out.push('>');
            }
        }
        self.out.push('\n');
        self.pending_space = false;
        self.at_line_start = true;
    }

    /// Block boundary: start a new line unless already at the start of one.
    fn end_line(&mut self) {
        if !self.at_line_start {
            self.newline();
        }
        self.pending_space = false;
    }

    /// Spaces off both ends of every line (`&nbsp;` indents would hide "Причина:" from
    /// line-start patterns; only `<pre>` keeps its indentation), at most one blank line in a
    /// row, no blank lines at either end.
    fn finish(self) -> String {
        let mut result = String::with_capacity(self.out.len());
        let mut blank_run = 0;
        for line in self.out.split('\n') {
            let line = if self.saw_pre {
                line.trim_end()
            } else {
                line.trim()
            };
            if line.is_empty() {
                blank_run += 1;
                continue;
            }
            if !result.is_empty() {
                result.push('\n');
                if blank_run > 0 {
                    result.push('\n');
                }
            }
            blank_run = 0;
            result.push_str(line);
        }
        result
    }
}

/// Decodes named (the common ones) and numeric character references; unknown ones stay as
/// written.
pub(crate) fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let reference_len = after
            .bytes()
            .take(32)
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'#')
            .count();
        let reference = &after[..reference_len];
        match decode_reference(reference) {
            Some(ch) => {
                out.push(ch);
                let consumed = if after[reference_len..].starts_with(';') {
                    reference_len + 1
                } else {
                    reference_len
                };
                rest = &after[consumed..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_reference(reference: &str) -> Option<char> {
    if let Some(number) = reference.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse::<u32>().ok()?,
        };
        // Windows-1252 code points are what broken mailers mean by &#150; and friends.
        let code = match code {
            0x91 => 0x2018,
            0x92 => 0x2019,
            0x93 => 0x201C,
            0x94 => 0x201D,
            0x96 => 0x2013,
            0x97 => 0x2014,
            0x85 => 0x2026,
            0 => 0xFFFD,
            other => other,
        };
        return Some(char::from_u32(code).unwrap_or('\u{fffd}'));
    }
    let ch = match reference {
        "amp" | "AMP" => '&',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "quot" | "QUOT" => '"',
        "apos" => '\'',
        "nbsp" | "NBSP" => '\u{a0}',
        "shy" => '\u{ad}',
        "laquo" => '«',
        "raquo" => '»',
        "lsaquo" => '‹',
        "rsaquo" => '›',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ndash" => '–',
        "mdash" => '—',
        "minus" => '−',
        "hellip" => '…',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "curren" => '¤',
        "rub" => '₽',
        "numero" => '№',
        "sect" => '§',
        "para" => '¶',
        "deg" => '°',
        "plusmn" => '±',
        "times" => '×',
        "divide" => '÷',
        "frac12" => '½',
        "frac14" => '¼',
        "frac34" => '¾',
        "sup2" => '²',
        "sup3" => '³',
        "micro" => 'µ',
        "larr" => '←',
        "rarr" => '→',
        "uarr" => '↑',
        "darr" => '↓',
        "harr" => '↔',
        "check" => '✓',
        "ensp" | "emsp" | "thinsp" => ' ',
        "zwnj" | "zwj" => '\u{200b}',
        "iexcl" => '¡',
        "iquest" => '¿',
        "acute" => '´',
        "uml" => '¨',
        "ordf" => 'ª',
        "ordm" => 'º',
        "not" => '¬',
        "macr" => '¯',
        "dagger" => '†',
        "Dagger" => '‡',
        "permil" => '‰',
        "prime" => '′',
        "Prime" => '″',
        "infin" => '∞',
        "ne" => '≠',
        "le" => '≤',
        "ge" => '≥',
        "asymp" => '≈',
        _ => return None,
    };
    Some(ch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_form_paragraphs_give_one_answer_per_line() {
        let html = "<html><head><title>Опрос</title><style>p{color:red}</style></head>\
            <body><p><b>Причина:</b> Дорого</p><p><b>Комментарий:</b>  нашли\n дешевле</p>\
            <p><b>Дата:</b> 21.11.2026</p></body></html>";
        assert_eq!(
            html_to_text(html),
            "Причина: Дорого\nКомментарий: нашли дешевле\nДата: 21.11.2026"
        );
    }

    #[test]
    fn script_style_and_comments_are_dropped() {
        let html = "<div>Hello<script>var x = '<p>no</p>';</script><!-- hidden --> world\
            <STYLE type=\"text/css\">.a{}</STYLE></div>";
        assert_eq!(html_to_text(html), "Hello world");
    }

    #[test]
    fn unclosed_head_ends_at_body() {
        let html = "<html><head><meta charset=utf-8><body><p>Текст</p>";
        assert_eq!(html_to_text(html), "Текст");
    }

    #[test]
    fn line_breaks_and_blank_lines() {
        let html = "<div>Строка 1<br>Строка 2</div><div><br></div><div>Строка 3<br></div>\
            <div>Строка 4</div>";
        assert_eq!(
            html_to_text(html),
            "Строка 1\nСтрока 2\n\nСтрока 3\nСтрока 4"
        );
    }

    #[test]
    fn outlook_empty_paragraphs_keep_one_blank_line() {
        let html = "<p class=MsoNormal>Добрый день!<o:p></o:p></p>\
            <p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>\
            <p class=MsoNormal>Спасибо.<o:p></o:p></p>";
        assert_eq!(html_to_text(html), "Добрый день!\n\nСпасибо.");
    }

    #[test]
    fn nbsp_indentation_is_trimmed() {
        let html = "<p>&nbsp;&nbsp;<b>Причина:</b> Дорого&nbsp;</p><p>&nbsp;</p><p>Конец</p>";
        assert_eq!(html_to_text(html), "Причина: Дорого\n\nКонец");
    }

    #[test]
    fn lists_become_dashes() {
        let html = "<p>Состав заказа:</p><ul><li>Стол</li><li>Стул <i>x2</i></li></ul>";
        assert_eq!(html_to_text(html), "Состав заказа:\n- Стол\n- Стул x2");
    }

    #[test]
    fn table_cells_are_separated() {
        let html = "<table><tr><td>Причина:</td><td>Дорого</td></tr>\
            <tr><th>Товар</th><th>Цена</th></tr><tr><td>Стол</td><td>100&nbsp;&#8381;</td></tr>\
            </table>";
        assert_eq!(
            html_to_text(html),
            "Причина: Дорого\nТовар | Цена\nСтол | 100 ₽"
        );
    }

    #[test]
    fn entities_are_decoded() {
        let html = "&laquo;Ромашка&raquo; &amp; Co &mdash; &#1055;&#x440;&#1080;вет &lt;b&gt; \
            &numero;5 &copy; &unknown; a&b";
        assert_eq!(
            html_to_text(html),
            "«Ромашка» & Co — Привет <b> №5 © &unknown; a&b"
        );
    }

    #[test]
    fn blockquote_lines_are_quoted() {
        let html = "<div>Спасибо!</div><div>пн, 23 нояб. 2026 г. в 10:00, Иван:</div>\
            <blockquote><div>Первая</div><div>Вторая</div></blockquote>";
        assert_eq!(
            html_to_text(html),
            "Спасибо!\nпн, 23 нояб. 2026 г. в 10:00, Иван:\n> Первая\n> Вторая"
        );
    }

    #[test]
    fn pre_keeps_whitespace() {
        let html = "<pre>a  b\n  c</pre><p>x   y</p>";
        assert_eq!(html_to_text(html), "a  b\n  c\nx y");
    }

    #[test]
    fn stray_angle_brackets_and_attributes_with_gt() {
        let html = "<p title=\"a > b\">1 < 2</p><a href='x>y'>ссылка</a>";
        assert_eq!(html_to_text(html), "1 < 2\nссылка");
    }

    #[test]
    fn truncated_markup_does_not_panic() {
        for html in [
            "<",
            "<p",
            "<!--",
            "<script>",
            "&",
            "&#",
            "&#x;",
            "</",
            "<head>x",
            "<a href=\"",
        ] {
            let _ = html_to_text(html);
        }
        assert_eq!(html_to_text("текст <b"), "текст");
    }
}
