//! Typed values: text as written in mail → the canonical text stored for a number, date,
//! datetime or email (numbers without spaces, dates `YYYY-MM-DD`, datetimes RFC 3339 UTC).

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

use super::model::ValueType;
use crate::text::quoted;

/// The canonical text of `text` as `kind`, or why it does not convert.
pub fn convert(kind: ValueType, text: &str) -> Result<String, String> {
    let text = text.trim();
    match kind {
        ValueType::Text => Ok(text.to_string()),
        ValueType::Number => {
            number(text).ok_or_else(|| format!("{} is not a number", quoted(text)))
        }
        ValueType::Date => date(text)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .ok_or_else(|| {
                format!(
                    "{} is not a date (expected YYYY-MM-DD, DD.MM.YYYY or an RFC 2822 date)",
                    quoted(text)
                )
            }),
        ValueType::Datetime => datetime(text)
            .map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true))
            .ok_or_else(|| {
                format!(
                    "{} is not a date and time (expected RFC 3339, RFC 2822, \
                     YYYY-MM-DD HH:MM or DD.MM.YYYY HH:MM)",
                    quoted(text)
                )
            }),
        ValueType::Email => {
            email(text).ok_or_else(|| format!("{} is not an email address", quoted(text)))
        }
    }
}

/// `1 234,50` → `1234.50`; digits with at most one decimal separator and an optional sign.
fn number(text: &str) -> Option<String> {
    let cleaned: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{202f}' && *c != '\'')
        .map(|c| if c == ',' { '.' } else { c })
        .collect();
    let unsigned = cleaned.strip_prefix(['-', '+']).unwrap_or(&cleaned);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    Some(cleaned.trim_start_matches('+').to_string())
}

fn date(text: &str) -> Option<NaiveDate> {
    for format in ["%Y-%m-%d", "%d.%m.%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(text, format) {
            return Some(d);
        }
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(text) {
        return Some(d.date_naive());
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(text) {
        return Some(d.date_naive());
    }
    None
}

fn datetime(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(text) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(text) {
        return Some(d.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%d.%m.%Y %H:%M:%S",
        "%d.%m.%Y %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(text, format) {
            return Some(d.and_utc());
        }
    }
    date(text)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

/// The bare address of `Name <local@domain>` or `local@domain`.
fn email(text: &str) -> Option<String> {
    let bare = match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close => &text[open + 1..close],
        _ => text,
    }
    .trim();
    let (local, domain) = bare.split_once('@')?;
    let valid = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !bare.chars().any(|c| c.is_whitespace() || c.is_control());
    valid.then(|| bare.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lose_spaces_and_take_a_dot() {
        assert_eq!(convert(ValueType::Number, " 1 234,50 ").unwrap(), "1234.50");
        assert_eq!(convert(ValueType::Number, "+7").unwrap(), "7");
        assert_eq!(convert(ValueType::Number, "-3.5").unwrap(), "-3.5");
        assert!(convert(ValueType::Number, "12 руб").is_err());
        assert!(convert(ValueType::Number, "1.2.3").is_err());
    }

    #[test]
    fn dates_in_three_spellings() {
        for text in [
            "2026-11-21",
            "21.11.2026",
            "Sat, 21 Nov 2026 10:00:00 +0300",
        ] {
            assert_eq!(
                convert(ValueType::Date, text).unwrap(),
                "2026-11-21",
                "{text}"
            );
        }
        assert!(convert(ValueType::Date, "31.02.2026").is_err());
        assert_eq!(
            convert(ValueType::Datetime, "21.11.2026 10:30").unwrap(),
            "2026-11-21T10:30:00Z"
        );
        assert_eq!(
            convert(ValueType::Datetime, "Sat, 21 Nov 2026 10:00:00 +0300").unwrap(),
            "2026-11-21T07:00:00Z"
        );
    }

    #[test]
    fn emails_are_bare_addresses() {
        assert_eq!(
            convert(ValueType::Email, "Анна <anna@example.com>").unwrap(),
            "anna@example.com"
        );
        assert!(convert(ValueType::Email, "anna at example").is_err());
    }
}
