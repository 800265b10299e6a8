//! Large messages without their attachments' bulk: long runs of base64 lines are cut out of a
//! copy before parsing, so that a 25 MB attachment is never decoded into memory (only its name,
//! type and size are kept, and the size is worked out from what was cut).

use mail_parser::{Encoding, PartType};

/// Messages below this size are parsed as they are.
pub const MIN_MESSAGE: usize = 16 << 10;
/// Runs shorter than this (in bytes) are left in place: below it, decoding costs less than
/// copying the message.
const MIN_RUN: usize = 8 << 10;
/// How far before a run [`Skeleton::cut`] looks for the part's `Content-Type`.
const HEADER_WINDOW: usize = 2 << 10;
/// A base64 line is cut only when it holds whole 4-character groups and is this long: every
/// encoder writes 60-76 characters per line.
const MIN_LINE: usize = 40;

/// A copy of a message with runs of base64 lines removed.
pub struct Skeleton {
    pub bytes: Vec<u8>,
    /// Each cut: where it is in `bytes`, and how many bytes the removed base64 decodes to.
    cuts: Vec<(usize, usize)>,
}

impl Skeleton {
    /// The skeleton of `raw`, or `None` when nothing is worth cutting.
    pub fn of(raw: &[u8]) -> Option<Skeleton> {
        if raw.len() < MIN_MESSAGE {
            return None;
        }
        let mut skeleton = Skeleton {
            bytes: Vec::new(),
            cuts: Vec::new(),
        };
        let mut copied = 0; // raw[..copied] is in `bytes` or was cut
        let mut run: Option<Run> = None;
        let mut at = 0;
        while at < raw.len() {
            let end = memchr::memchr(b'\n', &raw[at..]).map_or(raw.len(), |i| at + i + 1);
            let line = trim_line_end(&raw[at..end]);
            if is_whole_base64_line(line) {
                match &mut run {
                    Some(run) => {
                        run.chars += line.len();
                        run.last_start = at;
                        run.last_chars = line.len();
                    }
                    None => {
                        run = Some(Run {
                            first_end: end,
                            last_start: end,
                            chars: 0,
                            last_chars: 0,
                        })
                    }
                }
            } else if let Some(run) = run.take() {
                skeleton.cut(raw, &mut copied, run);
            }
            at = end;
        }
        if let Some(run) = run {
            skeleton.cut(raw, &mut copied, run);
        }
        if skeleton.cuts.is_empty() {
            return None;
        }
        skeleton.bytes.extend_from_slice(&raw[copied..]);
        Some(skeleton)
    }

    /// Cuts the lines between a run's first and last line (both stay, so that the cut is
    /// inside the part's body), when they are worth it.
    fn cut(&mut self, raw: &[u8], copied: &mut usize, run: Run) {
        if run.last_start < run.first_end + MIN_RUN || in_text_part(raw, run.first_end) {
            return;
        }
        self.bytes.extend_from_slice(&raw[*copied..run.first_end]);
        self.cuts
            .push((self.bytes.len(), (run.chars - run.last_chars) / 4 * 3));
        *copied = run.last_start;
    }

    /// The decoded bytes cut from each attachment, by part id; `None` when a cut is not inside
    /// a base64 binary part (the message must then be parsed whole).
    pub fn cut_sizes(&self, message: &mail_parser::Message<'_>) -> Option<Vec<(u32, usize)>> {
        let mut out: Vec<(u32, usize)> = Vec::new();
        for &(offset, size) in &self.cuts {
            let (id, part) = message.parts.iter().enumerate().find(|(_, p)| {
                !matches!(p.body, PartType::Multipart(_))
                    && (p.offset_body as usize) < offset
                    && offset < p.offset_end as usize
            })?;
            let binary = matches!(part.body, PartType::Binary(_) | PartType::InlineBinary(_));
            if !binary || part.encoding != Encoding::Base64 {
                return None;
            }
            out.push((id as u32, size));
        }
        Some(out)
    }
}

/// Whether the part that a run starts in declares a `text/*` type (an HTML newsletter sent
/// as base64): its text is needed, and cutting it would only make [`Skeleton::cut_sizes`]
/// send the message to be parsed a second time, whole. The store asks the same before it
/// keeps a run decoded (`store/kept_layout.rs`).
pub(crate) fn in_text_part(raw: &[u8], run_start: usize) -> bool {
    let window = &raw[run_start.saturating_sub(HEADER_WINDOW)..run_start];
    const NAME: &[u8] = b"content-type:";
    let Some(at) = window
        .windows(NAME.len())
        .rposition(|w| w.eq_ignore_ascii_case(NAME))
    else {
        return false;
    };
    let value = window[at + NAME.len()..].trim_ascii_start();
    value.len() >= 5 && value[..5].eq_ignore_ascii_case(b"text/")
}

/// Consecutive whole base64 lines: the first ends at `first_end`, the last starts at
/// `last_start`; `chars` counts the characters of all but the first.
struct Run {
    first_end: usize,
    last_start: usize,
    chars: usize,
    last_chars: usize,
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Whole 4-character groups of the base64 alphabet, no padding: cutting such lines out of a
/// base64 body removes exactly 3 decoded bytes per group and changes nothing else.
fn is_whole_base64_line(line: &[u8]) -> bool {
    line.len() >= MIN_LINE && line.len().is_multiple_of(4) && is_base64_alphabet(line)
}

/// Whether every byte of `bytes` is in base64's alphabet (no `=`): the table looked up for
/// sixteen bytes at a time with no branch between them, half the instructions of a branch a
/// byte over every attachment line of a large message. (Range compares instead of the table,
/// meant for vector instructions, took half as many again as the branch a byte.)
fn is_base64_alphabet(bytes: &[u8]) -> bool {
    let in_alphabet = |b: &u8| crate::text::BASE64_ALPHABET[usize::from(*b)];
    let (blocks, rest) = bytes.as_chunks::<16>();
    blocks
        .iter()
        .all(|block| block.iter().fold(true, |all, b| all & in_alphabet(b)))
        && rest.iter().all(in_alphabet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big_message(text_part_encoding: &str) -> Vec<u8> {
        let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n";
        let lines = (MIN_MESSAGE / line.len()) + 10;
        let body = line.repeat(lines);
        format!(
            "From: a@b.example\r\nSubject: big\r\nMessage-ID: <big@b.example>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: {text_part_encoding}\r\n\r\nhello\r\n\
             --b\r\nContent-Type: application/pdf; name=\"doc.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"doc.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{body}QUJD\r\n--b--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn the_base64_alphabet_is_recognised_as_the_table_says() {
        let valid = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx+/";
        for len in 0..valid.len() {
            assert!(is_base64_alphabet(&valid[..len]));
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut line = valid[..len].to_vec();
                    line[at] = byte;
                    assert_eq!(
                        is_base64_alphabet(&line),
                        crate::text::BASE64_ALPHABET[usize::from(byte)],
                        "{byte} at {at} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn small_messages_are_left_alone() {
        assert!(Skeleton::of(b"Subject: x\r\n\r\nQUJD\r\n").is_none());
    }

    #[test]
    fn the_attachment_bulk_is_cut_and_its_size_kept() {
        let raw = big_message("7bit");
        let skeleton = Skeleton::of(&raw).unwrap();
        assert!(skeleton.bytes.len() < 1024, "{}", skeleton.bytes.len());
        let parsed = mail_parser::MessageParser::default()
            .parse(&skeleton.bytes)
            .unwrap();
        assert!(
            skeleton.cut_sizes(&parsed).is_some(),
            "the cut is in the PDF"
        );
        let whole = crate::message::parse(&raw).unwrap();
        assert_eq!(whole.attachments.len(), 1);
        assert_eq!(whole.attachments[0].name, "doc.pdf");
        assert!(whole.attachments[0].size > MIN_MESSAGE / 2);
        assert_eq!(whole.body, "hello");
        assert_eq!(whole.size, raw.len());
    }

    #[test]
    fn sizes_match_a_full_decode() {
        let raw = big_message("7bit");
        let full = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let decoded: usize = full
            .attachments()
            .map(|p| match &p.body {
                PartType::Binary(b) => b.len(),
                _ => 0,
            })
            .sum();
        let parsed = crate::message::parse(&raw).unwrap();
        assert_eq!(parsed.attachments[0].size, decoded);
    }

    /// A long Russian text, base64-encoded in lines of 72 characters.
    fn long_base64_text() -> String {
        let line = "0YLQtdC60YHRgiDRgtC10LrRgdGCINGC0LXQutGB0YIg0YLQtdC60YHRgiDRgtC10LrRgdGC\r\n";
        line.repeat(MIN_MESSAGE / line.len() + 10)
    }

    fn assert_long_text_body(raw: &str) {
        let parsed = crate::message::parse(raw.as_bytes()).unwrap();
        assert!(
            parsed.body.starts_with("текст текст"),
            "{}",
            &parsed.body[..40]
        );
        assert!(parsed.body.len() > MIN_MESSAGE / 2);
    }

    #[test]
    fn a_base64_text_part_is_not_cut() {
        let raw = format!(
            "From: a@b.example\r\nSubject: long text\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}",
            long_base64_text()
        );
        assert!(Skeleton::of(raw.as_bytes()).is_none());
        assert_long_text_body(&raw);
    }

    #[test]
    fn a_cut_inside_a_text_part_falls_back_to_the_whole_message() {
        // A part without Content-Type is text/plain: the cut lands in the message's text, so
        // the message is parsed whole.
        let raw = format!(
            "From: a@b.example\r\nSubject: long text\r\n\
             Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--b--\r\n",
            long_base64_text()
        );
        let skeleton = Skeleton::of(raw.as_bytes()).unwrap();
        let cut = mail_parser::MessageParser::default()
            .parse(&skeleton.bytes)
            .unwrap();
        assert!(skeleton.cut_sizes(&cut).is_none());
        assert_long_text_body(&raw);
    }
}
