//! Finding the original author, subject and text of a forwarded message in an inline forward
//! block (Gmail, Outlook, Thunderbird, Apple Mail, Yandex, Mail.ru).
//!
//! A block counts only when it is really there: an explicit forward marker before any quote,
//! or an Outlook-style header block ("-----Original Message-----", "From: … Sent: …") in a
//! message whose subject says it is a forward ("Fwd:", "FW:", "Пересл:"). The same header
//! block under a "Re:" subject is a quoted reply, not a forward.

use super::quote::{self, Boundary, HeaderKey};
use super::{Address, Forwarded};

/// The forwarded message described by the first forward block of `body`, if any.
pub(super) fn detect_inline(body: &str, subject: &str) -> Option<Forwarded> {
    let lines: Vec<&str> = body.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if quote::is_quoted(line) {
            continue;
        }
        match quote::boundary_at(&lines, i) {
            Some(Boundary::Forward) => return read_block(&lines, i + 1),
            Some(Boundary::HeaderBlock) if subject_is_forward(subject) => {
                let start = if quote::header_key(line.trim()).is_some() {
                    i
                } else {
                    i + 1
                };
                return read_block(&lines, start);
            }
            // The first quote is a reply's: whatever follows belongs to the quoted message.
            Some(_) => return None,
            None => {}
        }
    }
    None
}

/// "-------- Конец переадресованного сообщения --------", "--- End forwarded message ---".
fn is_forward_end_marker(line: &str) -> bool {
    quote::dash_framed(line.trim()).is_some_and(|inner| {
        let inner = inner.to_lowercase();
        inner.starts_with("конец")
            || inner.starts_with("end forwarded")
            || inner.starts_with("end of forwarded")
    })
}

/// Whether the subject starts with a forward prefix ("Fwd:", "FW:", "Fwd[2]:", "Пересл:"),
/// after any "[tag]" prefixes.
pub(super) fn subject_is_forward(subject: &str) -> bool {
    matches!(
        subject_prefix(subject).as_deref(),
        Some("fwd" | "fw" | "пересл" | "перес" | "пересылка" | "переслано" | "пересланное")
    )
}

/// Whether the subject starts with a reply prefix ("Re:", "RE[2]:", "Ответ:", "AW:").
pub(super) fn subject_is_reply(subject: &str) -> bool {
    matches!(
        subject_prefix(subject).as_deref(),
        Some("re" | "ответ" | "отв" | "aw" | "sv" | "antw")
    )
}

/// The lower-cased word before the subject's first colon, counters like "[2]" removed, when
/// it is short enough to be a prefix.
fn subject_prefix(subject: &str) -> Option<String> {
    let mut rest = subject.trim_start();
    while let Some(tagged) = rest.strip_prefix('[') {
        match tagged.find(']') {
            Some(close) => rest = tagged[close + 1..].trim_start(),
            None => break,
        }
    }
    let (prefix, _) = rest.split_once(':')?;
    if prefix.len() > 24 {
        return None;
    }
    Some(
        prefix
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit() || matches!(c, '[' | ']' | '(' | ')'))
            .to_lowercase(),
    )
}

/// Reads the forward block whose header lines start at `start` (after any blank lines).
fn read_block(lines: &[&str], start: usize) -> Option<Forwarded> {
    let mut i = skip_blank(lines, start);
    let mut from = None;
    let mut subject = None;

    // Yandex and Apple-style blocks open with an attribution: `23.11.2026, 10:15, "Иван" <…>:`.
    if let Some(line) = lines.get(i).map(|l| l.trim()) {
        if quote::header_key(line).is_none() && line.ends_with(':') && line.contains('@') {
            from = parse_author(line);
            i = skip_blank(lines, i + 1);
        }
    }

    let block_start = i;
    while let Some(line) = lines.get(i).map(|l| l.trim()) {
        if line.is_empty() {
            break;
        }
        match quote::header_key(line) {
            Some(HeaderKey::From) => {
                if let Some(author) = parse_author(quote::header_value(line)) {
                    from = Some(author);
                }
            }
            Some(HeaderKey::Subject) => {
                let value = quote::header_value(line);
                subject = (!value.is_empty()).then(|| value.to_string());
            }
            Some(_) => {}
            // No header lines at all: the text starts right here.
            None if i == block_start => break,
            // A wrapped header value (a long "To:" list).
            None => {}
        }
        i += 1;
    }

    let body_start = skip_blank(lines, i);
    let body_end = lines[body_start..]
        .iter()
        .position(|l| is_forward_end_marker(l))
        .map_or(lines.len(), |p| body_start + p);
    let body = lines[body_start..body_end]
        .join("\n")
        .trim_end()
        .to_string();
    Some(Forwarded {
        from: from?,
        subject,
        body,
    })
}

fn skip_blank(lines: &[&str], from: usize) -> usize {
    lines[from.min(lines.len())..]
        .iter()
        .position(|l| !l.trim().is_empty())
        .map_or(lines.len(), |p| from + p)
}

/// The author in a "From:" value or an attribution line: `Иван Петров <ivan@x>`,
/// `"Ivan" <ivan@x>`, `ivan@x`, `Ivan [mailto:ivan@x]`, `23.11.2026, 10:15, "Иван" <ivan@x>:`.
pub(super) fn parse_author(value: &str) -> Option<Address> {
    let value = value.trim().trim_end_matches(':').trim_end();
    let (name, email) = if let Some(open) = value.rfind("[mailto:") {
        let inside = &value[open + "[mailto:".len()..];
        (&value[..open], inside.split(']').next().unwrap_or(inside))
    } else if let Some(open) = value.rfind('<') {
        let inside = &value[open + 1..];
        let email = inside.split('>').next().unwrap_or(inside);
        (&value[..open], email.trim().trim_start_matches("mailto:"))
    } else {
        let token = value.split_whitespace().find(|t| t.contains('@'))?;
        let email = token.trim_matches(|c: char| "<>()[]\"',;:".contains(c));
        let name = value.replacen(token, "", 1);
        let name = clean_name(&name, email);
        return valid_email(email).then(|| Address::new(name.as_deref(), email));
    };
    let email = email.trim();
    if !valid_email(email) {
        return None;
    }
    let name = clean_name(name, email);
    Some(Address::new(name.as_deref(), email))
}

fn valid_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !email.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// The display name out of what precedes the address: quotes removed; for attribution lines
/// the date before it dropped (`23.11.2026, 10:15, "Иван"` → `Иван`, `…, 10:15 от Иван` →
/// `Иван`).
fn clean_name(raw: &str, email: &str) -> Option<String> {
    let raw = raw.trim().trim_end_matches(',').trim();
    let name = if let Some(end) = raw.rfind('"') {
        let before = &raw[..end];
        match before.rfind('"') {
            Some(start) => &raw[start + 1..end],
            None => raw.trim_matches('"'),
        }
    } else if let Some((_, after)) = raw.rsplit_once(" от ") {
        after
    } else if raw.starts_with(|c: char| c.is_ascii_digit()) || raw.contains(", ") {
        raw.rsplit(", ").next().unwrap_or(raw)
    } else {
        raw
    };
    // Plain-text parts made from HTML write bold names as "*Иван Петров*".
    let name = name.trim().trim_matches(['\'', '*']).trim();
    (!name.is_empty() && !name.eq_ignore_ascii_case(email)).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn author(value: &str) -> Option<(Option<String>, String)> {
        parse_author(value).map(|a| (a.name, a.email))
    }

    #[test]
    fn author_formats() {
        let ivan =
            |name: Option<&str>| Some((name.map(str::to_string), "ivan@client.example".into()));
        assert_eq!(
            author("Иван Петров <ivan@client.example>"),
            ivan(Some("Иван Петров"))
        );
        assert_eq!(author("\"Ivan\" <ivan@client.example>"), ivan(Some("Ivan")));
        assert_eq!(author("ivan@client.example"), ivan(None));
        assert_eq!(author("<ivan@client.example>"), ivan(None));
        assert_eq!(
            author("Ivan Petrov [mailto:ivan@client.example]"),
            ivan(Some("Ivan Petrov"))
        );
        assert_eq!(
            author("ivan@client.example <ivan@client.example>"),
            ivan(None)
        );
        assert_eq!(
            author("23.11.2026, 10:15, \"Иван Петров\" <ivan@client.example>:"),
            ivan(Some("Иван Петров"))
        );
        assert_eq!(
            author(
                "Понедельник, 23 ноября 2026, 10:15 +03:00 от Иван Петров <ivan@client.example>:"
            ),
            ivan(Some("Иван Петров"))
        );
        assert_eq!(
            author("*Иван Петров* <ivan@client.example>"),
            ivan(Some("Иван Петров"))
        );
        assert_eq!(author("Ivan Petrov"), None);
        assert_eq!(author("Ivan <not an address>"), None);
    }

    #[test]
    fn forward_subject_prefixes() {
        for subject in [
            "Fwd: Заказ",
            "FW: Заказ",
            "Fw[2]: Заказ",
            "Пересл: Заказ",
            "[#42] Fwd: x",
        ] {
            assert!(subject_is_forward(subject), "{subject}");
        }
        for subject in [
            "Re: Fwd: Заказ",
            "RE: Заказ",
            "Ответ: Заказ",
            "Заказ",
            "Forward planning",
        ] {
            assert!(!subject_is_forward(subject), "{subject}");
        }
        for subject in [
            "Re: Заказ",
            "RE[2]: Заказ",
            "Ответ: Заказ",
            "[#42] Re: x",
            "AW: x",
        ] {
            assert!(subject_is_reply(subject), "{subject}");
        }
        for subject in ["Fwd: Re: Заказ", "Заказ", "Report: Q3"] {
            assert!(!subject_is_reply(subject), "{subject}");
        }
    }

    #[test]
    fn gmail_forward() {
        let body = "Посмотрите, пожалуйста.\n\n---------- Forwarded message ---------\n\
            From: Иван Петров <ivan@client.example>\nDate: Mon, 23 Nov 2026 at 10:15\n\
            Subject: Заказ №12345\nTo: <sales@firm.example>\n\n\nДобрый день!\nПрошу счёт.\n";
        let fwd = detect_inline(body, "Fwd: Заказ №12345").unwrap();
        assert_eq!(fwd.from.email, "ivan@client.example");
        assert_eq!(fwd.from.name.as_deref(), Some("Иван Петров"));
        assert_eq!(fwd.subject.as_deref(), Some("Заказ №12345"));
        assert_eq!(fwd.body, "Добрый день!\nПрошу счёт.");
    }

    #[test]
    fn explicit_marker_needs_no_forward_subject() {
        let body = "---------- Пересланное сообщение ---------\nОт: Иван <ivan@client.example>\n\
            Дата: пн, 23 нояб. 2026 г. в 10:15\nТема: Вопрос\nКому: <sales@firm.example>\n\n\
            Текст";
        let fwd = detect_inline(body, "Вопрос").unwrap();
        assert_eq!(fwd.from.email, "ivan@client.example");
        assert_eq!(fwd.body, "Текст");
    }

    #[test]
    fn outlook_block_is_a_forward_only_under_a_forward_subject() {
        let body = "Коллеги, ответьте клиенту.\n\n-----Original Message-----\n\
            From: Ivan Petrov [mailto:ivan@client.example]\nSent: Monday, November 23, 2026 10:15 AM\n\
            To: support@firm.example\nSubject: Не работает доступ\n\nНе могу войти.\n";
        let fwd = detect_inline(body, "FW: Не работает доступ").unwrap();
        assert_eq!(fwd.from.email, "ivan@client.example");
        assert_eq!(fwd.from.name.as_deref(), Some("Ivan Petrov"));
        assert_eq!(fwd.subject.as_deref(), Some("Не работает доступ"));
        assert_eq!(fwd.body, "Не могу войти.");
        assert_eq!(detect_inline(body, "RE: Не работает доступ"), None);
        assert_eq!(detect_inline(body, "Ответ: Не работает доступ"), None);
    }

    #[test]
    fn outlook_from_sent_block_without_marker() {
        let body =
            "См. ниже\n\nFrom: Ivan Petrov <ivan@client.example>\nSent: Monday, November 23, \
            2026 10:15 AM\nTo: support@firm.example\nSubject: Счёт\n\nВыставьте счёт.";
        let fwd = detect_inline(body, "FW: Счёт").unwrap();
        assert_eq!(fwd.from.email, "ivan@client.example");
        assert_eq!(fwd.body, "Выставьте счёт.");
    }

    #[test]
    fn yandex_forward_with_attribution_line() {
        let body = "\n\n-------- Начало переадресованного сообщения --------\n\
            23.11.2026, 10:15, \"Иван Петров\" <ivan@client.example>:\n\nДобрый день!\n\
            -------- Конец переадресованного сообщения --------\n";
        let fwd = detect_inline(body, "Fwd: Вопрос").unwrap();
        assert_eq!(fwd.from.name.as_deref(), Some("Иван Петров"));
        assert_eq!(fwd.from.email, "ivan@client.example");
        assert_eq!(fwd.subject, None);
        assert_eq!(fwd.body, "Добрый день!");
    }

    #[test]
    fn mail_ru_forward_with_ot_kogo() {
        let body = "\n\n-------- Пересылаемое сообщение --------\n\
            От кого: Иван Петров <ivan@client.example>\nКому: sales@firm.example\n\
            Дата: Понедельник, 23 ноября 2026, 10:15 +03:00\nТема: Доставка\n\nГде заказ?\n";
        let fwd = detect_inline(body, "Fwd: Доставка").unwrap();
        assert_eq!(fwd.from.email, "ivan@client.example");
        assert_eq!(fwd.subject.as_deref(), Some("Доставка"));
        assert_eq!(fwd.body, "Где заказ?");
    }

    #[test]
    fn reply_quoting_a_forward_is_not_a_forward() {
        let body = "Спасибо!\n\nOn Mon, 23 Nov 2026 at 10:15, Anna <anna@firm.example> wrote:\n\
            > ---------- Forwarded message ---------\n> From: Ivan <ivan@client.example>\n";
        assert_eq!(detect_inline(body, "Re: Fwd: Заказ"), None);
    }

    #[test]
    fn marker_without_author_is_not_a_forward() {
        let body = "---------- Forwarded message ---------\nFrom: Ivan Petrov\n\nТекст";
        assert_eq!(detect_inline(body, "Fwd: x"), None);
        assert_eq!(detect_inline("", "Fwd: x"), None);
        assert_eq!(
            detect_inline("---------- Forwarded message ---------", "Fwd: x"),
            None
        );
    }
}
