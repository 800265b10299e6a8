//! The layout of a kept message whose attachments are already compressed (encoding
//! `zstd-parts` in `message_bytes`): the message's text compressed with zstd, and each long run
//! of base64 lines whose content does not compress (PDF, JPEG, ZIP, XLSX) stored decoded, as
//! it is, with what it takes to write the very same lines again.
//!
//! Why: zstd spent its work on such runs for a few per cent, and a message with a large
//! attachment must not be held twice in memory (peak RSS with a 25 MiB attachment, issue 18):
//! the runs are decoded in place, inside the message's own buffer (base64 shrinks, so the
//! decoded bytes never overtake the characters still to be read), and that buffer becomes the
//! blob, with the compressed text and the table after them.
//!
//! Layout (integers little-endian):
//! ```text
//! the k runs' decoded bytes, one after the other
//! z bytes                                 zstd: the message without the runs
//! k × { u64 at, u32 line, u8 crlf, u64 n } where the run starts in the message, its line
//!                                         length in characters, "\r\n" (1) or "\n" (0) after
//!                                         each line, the decoded length
//! u64 z                                   the zstd frame's length
//! u32 k                                   runs stored decoded
//! ```
//! A run is written back as the standard base64 (with `=` padding) of its bytes, cut into lines
//! of `line` characters (the last one shorter), each followed by its line end. A run is stored
//! this way only when that gives back its bytes exactly: only whole lines of one length and
//! one line end, the alphabet only, `=` only at the very end, and a canonical last group
//! (base64's standard engine refuses anything else).

use base64::Engine;

/// Runs shorter than this (characters of base64, line ends not counted) stay in the text: the
/// bookkeeping and the entropy test would cost more than zstd saves on them.
const MIN_RUN_CHARS: usize = 2 << 10;
/// Messages shorter than this are not looked through: most mail has no attachment, and
/// one worth storing decoded makes a message longer than this.
pub(super) const MIN_MESSAGE: usize = 8 << 10;
/// Base64 lines are at least this long (every encoder writes 60-76 characters per line); a
/// shorter line of letters is more likely text.
const MIN_LINE: usize = 40;
/// How many decoded bytes the entropy test reads.
const SAMPLE: usize = 4 << 10;
/// Decoded runs with more bits of entropy per byte than this (order 0, over the sample) are
/// stored as they are: zstd would shrink them by a few per cent at most. Random bytes measure
/// about 7.95 over 4 KiB; text and uncompressed images measure well under 7.
const INCOMPRESSIBLE_BITS: f64 = 7.5;
/// Lines decoded in one call when a run is decoded in place.
const DECODE_BATCH: usize = 64;
/// Bytes of one run's entry in the table.
const ENTRY: usize = 8 + 4 + 1 + 8;

/// A run of base64 lines to store decoded, checked: every line decodes.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    /// Where its first line starts in the message.
    at: usize,
    /// Its length in the message, line ends included.
    len: usize,
    /// Characters per line (all but the last).
    line: usize,
    crlf: bool,
    /// Its decoded length.
    n: usize,
}

/// The `zstd-parts` form of `raw`, made in `raw`'s own buffer, with `compress` for the text;
/// `raw` back unchanged when it has no run worth storing decoded (the caller then compresses
/// it whole, encoding `zstd`) or when `compress` fails.
pub(super) fn pack(
    mut raw: Vec<u8>,
    compress: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, Vec<u8>> {
    if raw.len() < MIN_MESSAGE {
        return Err(raw);
    }
    let runs = incompressible_runs(&raw);
    if runs.is_empty() {
        return Err(raw);
    }
    let mut text = Vec::with_capacity(raw.len() - runs.iter().map(|r| r.len).sum::<usize>());
    let mut copied = 0;
    for run in &runs {
        text.extend_from_slice(&raw[copied..run.at]);
        copied = run.at + run.len;
    }
    text.extend_from_slice(&raw[copied..]);
    let Some(frame) = compress(&text) else {
        return Err(raw);
    };
    drop(text);
    // From here on `raw` is overwritten: every line of every run was checked to decode. Lines
    // are decoded a batch at a time (the engine's setup per call cost more than decoding one
    // line); a batch's bytes land before the batch's own characters, never past them.
    let mut written = 0;
    let (mut chars, mut bytes) = (Vec::new(), Vec::new());
    for run in &runs {
        let eol = if run.crlf { 2 } else { 1 };
        let mut at = run.at;
        while at < run.at + run.len {
            chars.clear();
            for _ in 0..DECODE_BATCH {
                if at >= run.at + run.len {
                    break;
                }
                let end = next_line(&raw, at);
                chars.extend_from_slice(&raw[at..end - eol]);
                at = end;
            }
            bytes.clear();
            // Cannot fail: whole lines of the alphabet, a multiple of 4 long, always decode, and
            // the last line was decoded once already. Were it to fail, the batch would be left
            // out and `unpack`'s length checks would refuse the blob, never hand back other bytes.
            let _ = base64::engine::general_purpose::STANDARD.decode_vec(&chars, &mut bytes);
            raw[written..written + bytes.len()].copy_from_slice(&bytes);
            written += bytes.len();
        }
    }
    raw.truncate(written);
    raw.reserve_exact(frame.len() + runs.len() * ENTRY + 12);
    raw.extend_from_slice(&frame);
    for run in &runs {
        raw.extend_from_slice(&(run.at as u64).to_le_bytes());
        raw.extend_from_slice(&(run.line as u32).to_le_bytes());
        raw.push(u8::from(run.crlf));
        raw.extend_from_slice(&(run.n as u64).to_le_bytes());
    }
    raw.extend_from_slice(&(frame.len() as u64).to_le_bytes());
    raw.extend_from_slice(&(runs.len() as u32).to_le_bytes());
    if raw.capacity() - raw.len() > 1 << 20 {
        // A large attachment's base64 took a third more room than its bytes: give it back
        // (for a buffer this large the allocator remaps it, without copying).
        raw.shrink_to_fit();
    }
    Ok(raw)
}

/// The message `packed` holds (`size` bytes long), with `decompress(frame, text_len)` for the
/// text; an error says what does not fit.
pub(super) fn unpack(
    packed: &[u8],
    size: usize,
    decompress: impl FnOnce(&[u8], usize) -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, String> {
    let (rest, count) = split_tail(packed, 4)?;
    let count = u32::from_le_bytes(count.try_into().map_err(|_| "cut short")?) as usize;
    let (rest, frame_len) = split_tail(rest, 8)?;
    let frame_len = to_usize(u64::from_le_bytes(
        frame_len.try_into().map_err(|_| "cut short")?,
    ))?;
    let (rest, table) = split_tail(rest, count.checked_mul(ENTRY).ok_or("cut short")?)?;
    let (decoded, frame) = split_tail(rest, frame_len)?;
    let mut reader = Reader { rest: table };
    let mut entries = Vec::with_capacity(count);
    let mut encoded_total = 0usize;
    for _ in 0..count {
        let at = to_usize(reader.u64()?)?;
        let line = reader.u32()? as usize;
        let crlf = match reader.u8()? {
            0 => false,
            1 => true,
            _ => return Err("a run with an unknown line end".to_string()),
        };
        let n = to_usize(reader.u64()?)?;
        if line == 0 || !line.is_multiple_of(4) {
            return Err("a run with an impossible line length".to_string());
        }
        let len = encoded_len(n, line, crlf).ok_or("a run too long")?;
        encoded_total = encoded_total.checked_add(len).ok_or("runs too long")?;
        entries.push((at, line, crlf, n, len));
    }
    let mut reader = Reader { rest: decoded };
    let text_len = size
        .checked_sub(encoded_total)
        .ok_or("runs longer than the message")?;
    let text = decompress(frame, text_len)?;
    if text.len() != text_len {
        return Err("text of a different length than recorded".to_string());
    }
    let mut out = Vec::with_capacity(size);
    let (mut text_at, mut orig_at) = (0usize, 0usize);
    let mut encoded = String::new();
    for (at, line, crlf, n, len) in entries {
        let before = at.checked_sub(orig_at).ok_or("runs out of order")?;
        let piece = text
            .get(text_at..text_at + before)
            .ok_or("a run past the end of the text")?;
        out.extend_from_slice(piece);
        text_at += before;
        encoded.clear();
        base64::engine::general_purpose::STANDARD.encode_string(reader.take(n)?, &mut encoded);
        for chunk in encoded.as_bytes().chunks(line) {
            out.extend_from_slice(chunk);
            out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
        orig_at = at + len;
    }
    out.extend_from_slice(&text[text_at..]);
    if !reader.rest.is_empty() {
        return Err("bytes left over after the last run".to_string());
    }
    if out.len() != size {
        return Err("a different length than recorded".to_string());
    }
    Ok(out)
}

/// Bytes in the message of a run of `n` decoded bytes written in lines of `line` characters.
fn encoded_len(n: usize, line: usize, crlf: bool) -> Option<usize> {
    let chars = n.div_ceil(3).checked_mul(4)?;
    let lines = chars.div_ceil(line);
    chars.checked_add(lines.checked_mul(if crlf { 2 } else { 1 })?)
}

/// `bytes` without its last `n` bytes, and those.
fn split_tail(bytes: &[u8], n: usize) -> Result<(&[u8], &[u8]), String> {
    let at = bytes.len().checked_sub(n).ok_or("cut short")?;
    Ok(bytes.split_at(at))
}

fn to_usize(n: u64) -> Result<usize, String> {
    usize::try_from(n).map_err(|_| "a length too large for this machine".to_string())
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.rest.len() < n {
            return Err("cut short".to_string());
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
}

/// The runs of base64 lines in `raw` that are long, outside a `text/*` part, give back their
/// exact bytes and hold data that does not compress.
///
/// Most messages have none, and looking costs every message: lines are first only measured
/// (`memchr` for the line ends), and only a streak of lines of one length long enough to be a
/// run is read character by character.
fn incompressible_runs(raw: &[u8]) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut covered = 0; // raw[..covered] has been looked at closely
    let (mut streak_start, mut streak_line, mut line_start) = (0, 0, 0);
    for newline in memchr::memchr_iter(b'\n', raw) {
        let line = newline + 1 - line_start;
        if line != streak_line {
            if streak_line > MIN_LINE && line_start - streak_start >= MIN_RUN_CHARS {
                look_closely(
                    raw,
                    streak_start.max(covered),
                    line_start,
                    &mut covered,
                    &mut runs,
                );
            }
            (streak_start, streak_line) = (line_start, line);
        }
        line_start = newline + 1;
    }
    if streak_line > MIN_LINE && line_start - streak_start >= MIN_RUN_CHARS {
        look_closely(
            raw,
            streak_start.max(covered),
            line_start,
            &mut covered,
            &mut runs,
        );
    }
    runs
}

/// The runs that start in `raw[from..to]` (a streak of lines of one length), with the last,
/// shorter line that may follow it.
fn look_closely(raw: &[u8], from: usize, to: usize, covered: &mut usize, runs: &mut Vec<Run>) {
    // Nearly always the whole streak is one run (an attachment's body): the decoder checks its
    // characters, and only when it refuses are the lines read one by one.
    if let Some((run, incompressible)) = whole_streak(raw, from, to) {
        *covered = (*covered).max(run.at + run.len);
        if incompressible {
            runs.push(run);
        }
        return;
    }
    let mut at = from;
    while at < to {
        let Some((line_end, chars, crlf)) = full_line(raw, at) else {
            at = next_line(raw, at);
            continue;
        };
        // A candidate run starts here: lines of `chars` characters with the same line end.
        let eol = if crlf { 2 } else { 1 };
        let mut end = line_end;
        loop {
            match full_line(raw, end) {
                Some((next_end, n, c)) if n == chars && c == crlf => end = next_end,
                _ => break,
            }
        }
        // The last line may be shorter, or padded.
        if let Some(last_end) = last_line(raw, end, chars, crlf) {
            end = last_end;
        }
        let run_chars = (end - at) - (end - at).div_ceil(chars + eol) * eol;
        if run_chars >= MIN_RUN_CHARS && !crate::message::in_text_part(raw, at) {
            if let Some((run, true)) = check_run(&raw[at..end], at, chars, crlf) {
                runs.push(run);
            }
        }
        at = end;
    }
    *covered = (*covered).max(at);
}

/// The streak `raw[from..to]` of lines of one length, with the shorter last line after it, as
/// one run, when the decoder takes all of it and it is long enough and outside a text part.
fn whole_streak(raw: &[u8], from: usize, to: usize) -> Option<(Run, bool)> {
    let first = next_line(raw, from) - from;
    let crlf = first >= 2 && raw[from + first - 2] == b'\r';
    let chars = first - if crlf { 2 } else { 1 };
    if chars < MIN_LINE || !chars.is_multiple_of(4) || to - from < MIN_RUN_CHARS {
        return None;
    }
    let end = last_line(raw, to, chars, crlf).unwrap_or(to);
    if crate::message::in_text_part(raw, from) {
        return None;
    }
    check_run(&raw[from..end], from, chars, crlf)
}

/// The end of the line starting at `at` (after its `\n`).
fn next_line(raw: &[u8], at: usize) -> usize {
    raw[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |i| at + i + 1)
}

/// A whole base64 line at `at` (alphabet only, a multiple of 4, at least [`MIN_LINE`] long,
/// ended by a line end): where it ends, its characters and whether it ends with `\r\n`.
fn full_line(raw: &[u8], at: usize) -> Option<(usize, usize, bool)> {
    let rest = &raw[at.min(raw.len())..];
    let chars = rest.iter().position(|&b| !is_base64(b))?;
    if chars < MIN_LINE || !chars.is_multiple_of(4) {
        return None;
    }
    match &rest[chars..] {
        [b'\n', ..] => Some((at + chars + 1, chars, false)),
        [b'\r', b'\n', ..] => Some((at + chars + 2, chars, true)),
        _ => None,
    }
}

/// A last line at `at` after lines of `width` characters: shorter than them, or as long and
/// padded; ended by the same line end.
fn last_line(raw: &[u8], at: usize, width: usize, crlf: bool) -> Option<usize> {
    let rest = &raw[at.min(raw.len())..];
    let alphabet = rest.iter().position(|&b| !is_base64(b))?;
    let pads = rest[alphabet..].iter().take_while(|&&b| b == b'=').count();
    let chars = alphabet + pads;
    if chars == 0 || chars > width || !chars.is_multiple_of(4) || pads > 2 {
        return None;
    }
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    rest[chars..]
        .starts_with(eol)
        .then_some(at + chars + eol.len())
}

/// Whether every byte of `chars` is of the alphabet: without a branch per byte (this runs over
/// every attachment's characters before they are decoded in place).
fn all_base64(chars: &[u8]) -> bool {
    chars.iter().fold(true, |all, &b| {
        all & crate::text::BASE64_ALPHABET[b as usize]
    })
}

fn is_base64(b: u8) -> bool {
    crate::text::BASE64_ALPHABET[b as usize]
}

/// The run in `lines` when they give back their bytes exactly (only the alphabet in the whole
/// lines, a canonical last group), with whether its bytes look already compressed (decoded
/// from a sample in the middle).
fn check_run(lines: &[u8], at: usize, line: usize, crlf: bool) -> Option<(Run, bool)> {
    let eol = if crlf { 2 } else { 1 };
    let chunks = lines.len().div_ceil(line + eol);
    let mut n = 0;
    let mut scratch = Vec::with_capacity(line / 4 * 3);
    for (i, chunk) in lines.chunks(line + eol).enumerate() {
        let chars = &chunk[..chunk.len() - eol];
        if i + 1 < chunks {
            // A whole line of the alphabet, a multiple of 4 long: it decodes, whatever it holds.
            if chars.len() != line || !all_base64(chars) {
                return None;
            }
            n += line / 4 * 3;
        } else {
            // The last line: padding and the bits after the data are the decoder's to check.
            scratch.clear();
            base64::engine::general_purpose::STANDARD
                .decode_vec(chars, &mut scratch)
                .ok()?;
            n += scratch.len();
        }
    }
    if encoded_len(n, line, crlf) != Some(lines.len()) {
        return None;
    }
    // The sample: whole lines from the middle.
    let per_line = line + eol;
    let sample_lines = (SAMPLE / (line / 4 * 3))
        .max(1)
        .min(chunks.saturating_sub(1));
    let first = (chunks.saturating_sub(1) - sample_lines) / 2;
    let mut sample = Vec::with_capacity(SAMPLE + line);
    for i in first..first + sample_lines {
        let chars = &lines[i * per_line..i * per_line + line];
        base64::engine::general_purpose::STANDARD
            .decode_vec(chars, &mut sample)
            .ok()?;
    }
    let run = Run {
        at,
        len: lines.len(),
        line,
        crlf,
        n,
    };
    Some((run, incompressible(&sample)))
}

/// Whether `bytes` look already compressed: the order-0 entropy of a sample from their middle.
fn incompressible(bytes: &[u8]) -> bool {
    let start = bytes.len().saturating_sub(SAMPLE) / 2;
    let sample = &bytes[start..bytes.len().min(start + SAMPLE)];
    let mut counts = [0u32; 256];
    for &b in sample {
        counts[b as usize] += 1;
    }
    let n = sample.len() as f64;
    let bits: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    bits > INCOMPRESSIBLE_BITS
}

#[cfg(test)]
#[path = "tests/kept_layout.rs"]
mod tests;
