//! Tests of the `zstd-parts` layout: every message comes back byte for byte, attachments that
//! are compressed already are stored decoded, anything else stays in the compressed text.

use base64::Engine;

use super::*;
use crate::store::tests::noise;

fn lines(data: &[u8], width: usize, eol: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::new();
    for chunk in encoded.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push_str(eol);
    }
    out
}

fn message(ctype: &str, body: &str, eol: &str) -> Vec<u8> {
    format!(
        "From: a@b.example{eol}Subject: scan{eol}MIME-Version: 1.0{eol}\
         Content-Type: multipart/mixed; boundary=\"b\"{eol}{eol}\
         --b{eol}Content-Type: text/plain; charset=utf-8{eol}{eol}Счёт во вложении.{eol}\
         --b{eol}Content-Type: {ctype}; name=\"scan\"{eol}\
         Content-Transfer-Encoding: base64{eol}{eol}{body}--b--{eol}"
    )
    .into_bytes()
}

fn zstd(raw: &[u8]) -> Option<Vec<u8>> {
    zstd::bulk::compress(raw, 1).ok()
}

fn round_trip(raw: &[u8]) -> Option<usize> {
    let packed = pack(raw.to_vec(), zstd).ok()?;
    let back = unpack(&packed, raw.len(), |frame, len| {
        zstd::bulk::decompress(frame, len).map_err(|e| e.to_string())
    })
    .unwrap();
    assert!(back == raw, "the message came back different");
    Some(packed.len())
}

#[test]
fn a_compressed_attachment_is_stored_decoded_and_comes_back_exactly() {
    for (n, width, eol) in [
        (30_000, 76, "\r\n"),
        (30_001, 76, "\n"),
        (30_002, 64, "\r\n"),
        (57 * 200, 76, "\n"),
        (48 * 200, 64, "\n"),
    ] {
        let data = noise(n, n as u64);
        let raw = message("application/pdf", &lines(&data, width, eol), eol);
        let stored = round_trip(&raw).expect("packed");
        assert!(
            stored < n + 400,
            "{n} bytes of attachment take {stored} bytes"
        );
    }
}

#[test]
fn several_attachments_and_text_between_them_come_back() {
    let (a, b) = (noise(9000, 1), noise(12_345, 2));
    let body = format!(
        "{}--b\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
        lines(&a, 76, "\r\n"),
        lines(&b, 76, "\r\n")
    );
    let raw = message("application/zip", &body, "\r\n");
    let packed = pack(raw.clone(), zstd).unwrap();
    let count = &packed[packed.len() - 4..];
    assert_eq!(u32::from_le_bytes(count.try_into().unwrap()), 2);
    round_trip(&raw).unwrap();
}

#[test]
fn base64_that_compresses_or_is_text_stays_in_the_compressed_text() {
    let text = "Реестр платежей за март. ".repeat(400);
    let compressible = message(
        "application/octet-stream",
        &lines(text.as_bytes(), 76, "\n"),
        "\n",
    );
    assert_eq!(pack(compressible.clone(), zstd), Err(compressible));
    let html = message("text/html", &lines(&noise(20_000, 3), 76, "\n"), "\n");
    assert_eq!(pack(html.clone(), zstd), Err(html));
    let short = message("image/jpeg", &lines(&noise(600, 4), 76, "\n"), "\n");
    assert_eq!(pack(short.clone(), zstd), Err(short));
}

#[test]
fn lines_that_base64_would_not_write_back_alike_are_left_as_they_are() {
    let data = noise(20_000, 5);
    let regular = lines(&data, 76, "\r\n");
    // A line of another length in the middle, a line end of another kind, a last group with
    // bits set after the data (a decoder ignores them, an encoder writes zeros), a run without
    // a line end at the end of the message.
    let mut uneven = regular.clone();
    uneven.insert_str(78 * 100, "QUJD\r\n");
    let mixed = regular.replacen("\r\n", "\n", 1);
    let mut trailing_bits = lines(&data[..19_999], 76, "\r\n");
    let at = trailing_bits.rfind("==").unwrap();
    trailing_bits.replace_range(at - 1..at, "B");
    for body in [uneven, mixed, trailing_bits] {
        let raw = message("application/pdf", &body, "\r\n");
        round_trip(&raw);
    }
    let mut unterminated = message("image/jpeg", "", "\r\n");
    unterminated.extend_from_slice(regular.trim_end().as_bytes());
    round_trip(&unterminated);
}

#[test]
fn a_damaged_blob_is_an_error_not_a_panic() {
    let data = noise(10_000, 6);
    let raw = message("application/pdf", &lines(&data, 76, "\r\n"), "\r\n");
    let packed = pack(raw.clone(), zstd).unwrap();
    let decompress = |frame: &[u8], len: usize| -> Result<Vec<u8>, String> {
        zstd::bulk::decompress(frame, len).map_err(|e| e.to_string())
    };
    for cut in [0, 3, 10, 30, 60, packed.len() - 1] {
        assert!(
            unpack(&packed[..cut], raw.len(), decompress).is_err(),
            "cut at {cut}"
        );
    }
    assert!(unpack(&packed[1..], raw.len(), decompress).is_err());
    assert!(unpack(&packed, raw.len() + 1, decompress).is_err());
    assert!(unpack(&packed, 10, decompress).is_err());
    // The one run's line length: the table's entry is before the frame's length and the count.
    let mut bad_width = packed.clone();
    let line = packed.len() - 12 - ENTRY + 8;
    bad_width[line..line + 4].copy_from_slice(&0u32.to_le_bytes());
    assert!(unpack(&bad_width, raw.len(), decompress).is_err());
}
