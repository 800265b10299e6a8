//! What an endpoint's answer means for a delivery (pure): delivered on 2xx; tried again on a
//! network error, a timeout, a 5xx or a 429 (after `Retry-After` when it says, capped); failed
//! for good on anything else. And the body's signature.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// No wait between tries is longer than this, whatever `Retry-After` asks.
pub const LONGEST_WAIT: Duration = Duration::from_secs(3600);
/// How much of an answer's body is kept (after escaping) in the outbox and the log.
pub const EXCERPT_CHARS: usize = 200;

/// What one try came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the answer, e.g. `HTTP 201 Created: {"id":7}`.
    Delivered { answer: String },
    /// Try again; `after` is what the endpoint asked for (`Retry-After`), if it did.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Never try again as it is.
    Failed { error: String },
}

/// The outcome of an HTTP answer: `status`, its `Retry-After` header if any, the start of its
/// body.
pub fn classify(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Outcome {
    let answer = answer_words(status, body);
    match status {
        200..=299 => Outcome::Delivered { answer },
        429 | 500..=599 => Outcome::Retry {
            error: answer,
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
        },
        300..=399 => Outcome::Failed {
            error: format!(
                "{answer} (mailrules does not follow redirects: put the final address in the \
                 webhook's url)"
            ),
        },
        _ => Outcome::Failed { error: answer },
    }
}

/// `HTTP 400 Bad Request: the start of the body`, on one line, control characters escaped,
/// at most [`EXCERPT_CHARS`] characters of the body.
pub fn answer_words(status: u16, body: &[u8]) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut words = format!("HTTP {status}");
    if !reason.is_empty() {
        words.push(' ');
        words.push_str(reason);
    }
    let text = excerpt(body);
    if !text.is_empty() {
        words.push_str(": ");
        words.push_str(&text);
    }
    words
}

/// The start of an answer's body, safe to show: invalid UTF-8 replaced, every control
/// character (line breaks, escape sequences) written as `\u{..}`, cut with `…`.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == EXCERPT_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}') {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// `Retry-After`: seconds, or an HTTP date; capped at [`LONGEST_WAIT`]. A date in the past
/// is no wait.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value)
                .ok()?
                .with_timezone(&Utc);
            (at - now).to_std().unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(LONGEST_WAIT))
}

/// How long to wait after the `attempts`-th failed try (1-based): `first`, doubling, at most
/// [`LONGEST_WAIT`]; what the endpoint asked for (`Retry-After`) when it did.
pub fn wait_before_next(first: Duration, attempts: u32, asked: Option<Duration>) -> Duration {
    if let Some(asked) = asked {
        return asked.min(LONGEST_WAIT);
    }
    let doublings = attempts.saturating_sub(1).min(20);
    first.saturating_mul(1u32 << doublings).min(LONGEST_WAIT)
}

/// `sha256=HEX` of HMAC-SHA256(secret, body): the `X-Mailrules-Signature` header.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn server_trouble_is_retried_and_other_4xx_fail_for_good() {
        assert!(matches!(
            classify(201, None, b"{}", now()),
            Outcome::Delivered { .. }
        ));
        for status in [429, 500, 502, 503] {
            assert!(
                matches!(classify(status, None, b"", now()), Outcome::Retry { .. }),
                "{status}"
            );
        }
        for status in [400, 401, 404, 422, 301] {
            assert!(
                matches!(classify(status, None, b"", now()), Outcome::Failed { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date_is_honoured_and_capped() {
        assert_eq!(parse_retry_after("7", now()), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Tue, 01 Dec 2026 12:02:00 GMT", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("999999", now()), Some(LONGEST_WAIT));
        assert_eq!(parse_retry_after("soon", now()), None);
        let Outcome::Retry { after, .. } = classify(429, Some("3"), b"", now()) else {
            panic!("429 is retried");
        };
        assert_eq!(after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn backoff_doubles_up_to_an_hour_unless_the_endpoint_asks() {
        let first = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=9)
            .map(|a| wait_before_next(first, a, None).as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(
            wait_before_next(first, 5, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn an_answer_is_shown_escaped_and_bounded() {
        let hostile = format!("bad\r\n\x1b[31mred {}", "x".repeat(500));
        let words = answer_words(400, hostile.as_bytes());
        assert!(
            words.starts_with("HTTP 400 Bad Request: bad\\u{d}\\u{a}\\u{1b}[31mred"),
            "{words}"
        );
        assert!(!words.chars().any(char::is_control));
        assert!(words.chars().count() < EXCERPT_CHARS + 40, "{words}");
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
