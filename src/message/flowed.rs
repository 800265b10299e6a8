//! Undoing `format=flowed` (RFC 3676) soft line breaks, as Thunderbird and Apple Mail send
//! them, so a paragraph or a long "Причина: …" answer comes back as one line.

/// Joins flowed lines of `text` (any line endings); `delsp` is the `delsp=yes` parameter.
pub(super) fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    // The paragraph being joined: its quote depth, and whether the last line was flowed.
    let mut open: Option<usize> = None;
    for raw_line in text.lines() {
        let depth = raw_line.bytes().take_while(|b| *b == b'>').count();
        let content = &raw_line[depth..];
        let content = content.strip_prefix(' ').unwrap_or(content);
        let is_signature_separator = content == "-- ";
        let flowed = content.ends_with(' ') && !is_signature_separator;
        match open {
            Some(open_depth) if open_depth == depth => {}
            Some(_) => {
                // A flowed line followed by another quote depth ends its paragraph.
                out.push('\n');
                start_line(&mut out, depth);
            }
            None => start_line(&mut out, depth),
        }
        let content = if flowed && delsp {
            &content[..content.len() - 1]
        } else {
            content
        };
        out.push_str(content);
        if flowed {
            open = Some(depth);
        } else {
            out.push('\n');
            open = None;
        }
    }
    if open.is_some() {
        out.push('\n');
    }
    out
}

fn start_line(out: &mut String, depth: usize) {
    if depth > 0 {
        out.extend(std::iter::repeat_n('>', depth));
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_breaks_are_joined() {
        let text =
            "Причина: слишком долгая доставка и \r\nнеудобный самовывоз\r\nДата: 21.11.2026\r\n";
        assert_eq!(
            unflow(text, false),
            "Причина: слишком долгая доставка и неудобный самовывоз\nДата: 21.11.2026\n"
        );
    }

    #[test]
    fn delsp_removes_the_soft_space() {
        assert_eq!(
            unflow("Очень длинн \nое слово\n", true),
            "Очень длинное слово\n"
        );
    }

    #[test]
    fn quotes_space_stuffing_and_signature() {
        let text = "> Первая часть \n> цитаты\n>> глубже\n From here\n-- \nИван\n";
        assert_eq!(
            unflow(text, false),
            "> Первая часть цитаты\n>> глубже\nFrom here\n-- \nИван\n"
        );
    }

    #[test]
    fn flowed_line_before_another_depth_ends_the_paragraph() {
        assert_eq!(unflow("текст \n> цитата\n", false), "текст \n> цитата\n");
    }
}
