//! Dropping the quoted previous message from a reply's text.
//!
//! Also owns the recognition of "where the quoted message starts" lines (attributions,
//! "-----Original Message-----", Outlook header blocks), which forward detection shares.

/// What kind of line starts the quoted part of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Boundary {
    /// "On … wrote:", "… пишет:", "…, Иван <ivan@x>:" before `>` lines: always a reply's quote.
    Attribution,
    /// "-----Original Message-----", Outlook's "From: … Sent: …" block, a "____" separator
    /// before "From:": a quote in a reply, the forwarded message in a forward.
    HeaderBlock,
    /// "---------- Forwarded message ---------" and the like: a forwarded message follows.
    Forward,
}

/// The reply's own words: `>` lines and the quoted message below an attribution line removed.
/// A forwarded message below a forward marker is not the writer's own words either.
///
/// Trailing and leading blank lines are trimmed. When nothing of the writer's own is left
/// (the whole text is a quote), the original text is returned trimmed.
pub fn strip_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let cut = (0..lines.len())
        .find(|&i| !is_quoted(lines[i]) && boundary_at(&lines, i).is_some())
        .unwrap_or(lines.len());
    let own: Vec<&str> = lines[..cut]
        .iter()
        .copied()
        .filter(|line| !is_quoted(line))
        .collect();
    let first = own.iter().position(|l| !l.trim().is_empty());
    let last = own.iter().rposition(|l| !l.trim().is_empty());
    match (first, last) {
        (Some(first), Some(last)) => own[first..=last].join("\n").trim_end().to_string(),
        _ => text.trim().to_string(),
    }
}

/// A `>`-quoted line (leading spaces allowed).
pub(super) fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// Whether line `i` starts the quoted message, and how.
pub(super) fn boundary_at(lines: &[&str], i: usize) -> Option<Boundary> {
    let line = lines[i].trim();
    if line.is_empty() {
        return None;
    }
    if is_forward_marker(line) {
        return Some(Boundary::Forward);
    }
    if is_original_message_marker(line) || is_separator_before_from(lines, i) {
        return Some(Boundary::HeaderBlock);
    }
    if is_outlook_header_block(lines, i) {
        return Some(Boundary::HeaderBlock);
    }
    if is_attribution(lines, i) {
        return Some(Boundary::Attribution);
    }
    None
}

/// "---------- Forwarded message ---------", "-------- Пересылаемое сообщение --------",
/// "Begin forwarded message:" and their translations.
fn is_forward_marker(line: &str) -> bool {
    const FRAMED: &[&str] = &[
        "forwarded message",
        "пересланное сообщение",
        "пересылаемое сообщение",
        "переадресованное сообщение",
        "начало переадресованного сообщения",
        "начало пересылаемого сообщения",
    ];
    const INTRODUCING: &[&str] = &[
        "begin forwarded message:",
        "начало пересылаемого сообщения:",
        "начало переадресованного сообщения:",
    ];
    if let Some(inner) = dash_framed(line) {
        return FRAMED.iter().any(|marker| eq_lower(inner, marker));
    }
    line.ends_with(':') && INTRODUCING.iter().any(|marker| eq_lower(line, marker))
}

/// "-----Original Message-----", "-------- Исходное сообщение --------" and the like.
fn is_original_message_marker(line: &str) -> bool {
    let Some(inner) = dash_framed(line) else {
        return false;
    };
    [
        "original message",
        "исходное сообщение",
        "оригинальное сообщение",
    ]
    .iter()
    .any(|marker| eq_lower(inner, marker))
}

/// The text between runs of at least two dashes on both sides (`--- text ---`).
pub(super) fn dash_framed(line: &str) -> Option<&str> {
    let start = line.trim_start_matches('-');
    let end = start.trim_end_matches('-');
    let leading = line.len() - start.len();
    let trailing = start.len() - end.len();
    (leading >= 2 && trailing >= 2).then(|| end.trim())
}

/// Outlook's "________________________________" line followed by a "From:" line.
fn is_separator_before_from(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    if line.len() < 10 || !line.bytes().all(|b| b == b'_') {
        return false;
    }
    lines[i + 1..]
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .is_some_and(|l| header_key(l).is_some_and(|k| k == HeaderKey::From))
}

/// "From: … / Sent: …" (or "От: … / Отправлено: …"): a From line followed within four
/// lines by Sent, or by Date together with To or Subject when the From line carries an
/// address. A bare "От: … / Дата: …" pair also appears in web-form answers and is not enough.
fn is_outlook_header_block(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    if header_key(line) != Some(HeaderKey::From) {
        return false;
    }
    let (mut date, mut to_or_subject) = (false, false);
    for next in lines[i + 1..].iter().take(4).map(|l| l.trim()) {
        match header_key(next) {
            Some(HeaderKey::Sent) => return true,
            Some(HeaderKey::Date) => date = true,
            Some(HeaderKey::To | HeaderKey::Subject) => to_or_subject = true,
            _ if next.is_empty() => break,
            _ => {}
        }
    }
    date && to_or_subject && line.contains('@')
}

/// Keys of the header lines that clients write into quoted and forwarded blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderKey {
    From,
    Sent,
    Date,
    To,
    Cc,
    Subject,
    ReplyTo,
}

/// The key of a "Key: value" line ("*From:*" as Gmail writes bold in text too), if it is one
/// of the known ones.
pub(super) fn header_key(line: &str) -> Option<HeaderKey> {
    let (key, _) = line.split_once(':')?;
    let key = key.trim().trim_matches('*').trim();
    const KEYS: &[(&str, HeaderKey)] = &[
        ("from", HeaderKey::From),
        ("от", HeaderKey::From),
        ("от кого", HeaderKey::From),
        ("отправитель", HeaderKey::From),
        ("sent", HeaderKey::Sent),
        ("отправлено", HeaderKey::Sent),
        ("date", HeaderKey::Date),
        ("дата", HeaderKey::Date),
        ("to", HeaderKey::To),
        ("кому", HeaderKey::To),
        ("cc", HeaderKey::Cc),
        ("копия", HeaderKey::Cc),
        ("subject", HeaderKey::Subject),
        ("тема", HeaderKey::Subject),
        ("reply-to", HeaderKey::ReplyTo),
        ("ответить", HeaderKey::ReplyTo),
    ];
    if key.is_empty() || key.len() > 24 {
        return None;
    }
    KEYS.iter()
        .find(|(name, _)| eq_lower(key, name))
        .map(|(_, kind)| *kind)
}

/// `text` equals `lower` (written in lower case) ignoring case, without allocating: these
/// checks run on every line of every body. Upper and lower case of the Latin and Cyrillic
/// letters compared here have the same UTF-8 length, so unequal lengths fail at once.
pub(super) fn eq_lower(text: &str, lower: &str) -> bool {
    text.len() == lower.len() && text.chars().flat_map(char::to_lowercase).eq(lower.chars())
}

/// `text` ends with `lower` (written in lower case) ignoring case.
fn ends_with_lower(text: &str, lower: &str) -> bool {
    text.len()
        .checked_sub(lower.len())
        .filter(|&start| text.is_char_boundary(start))
        .is_some_and(|start| eq_lower(&text[start..], lower))
}

/// The value part of a "Key: value" line, `*` bold markers removed.
pub(super) fn header_value(line: &str) -> &str {
    line.split_once(':')
        .map_or("", |(_, value)| value.trim().trim_start_matches('*').trim())
}

/// "On … wrote:" (on one line or wrapped over up to three), Russian "… пишет:" /
/// "… написал(а):", and "<date>, Name <addr>:" followed by quoted lines (Gmail in Russian,
/// Yandex, Mail.ru).
fn is_attribution(lines: &[&str], i: usize) -> bool {
    let first = lines[i].trim();
    if ends_attribution(first, || quote_follows(lines, i)) {
        return true;
    }
    if !starts_like_attribution(first) {
        return false;
    }
    let mut joined = first.to_string();
    for j in i + 1..lines.len().min(i + 3) {
        let next = lines[j].trim();
        if next.is_empty() || is_quoted(next) {
            return false;
        }
        joined.push(' ');
        joined.push_str(next);
        if ends_attribution(&joined, || quote_follows(lines, j)) {
            return true;
        }
    }
    false
}

/// Whether the first non-blank line after `j` is `>`-quoted.
fn quote_follows(lines: &[&str], j: usize) -> bool {
    lines[j + 1..]
        .iter()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| is_quoted(l))
}

fn ends_attribution(text: &str, quote_follows: impl FnOnce() -> bool) -> bool {
    const ENDINGS: &[&str] = &[
        "wrote:",
        "пишет:",
        "написал(а):",
        "написал:",
        "написала:",
        "писал(а):",
        "писал:",
        "писала:",
    ];
    let Some(body) = text.strip_suffix(':') else {
        return false;
    };
    if ENDINGS.iter().any(|e| ends_with_lower(text, e)) {
        // Real attributions name a date or an address; "He wrote:" in prose does not.
        return text.contains('@') || text.bytes().any(|b| b.is_ascii_digit()) || quote_follows();
    }
    // "пн, 23 нояб. 2026 г. в 10:00, Иван <ivan@x>:" / "23.11.2026, 10:15, "Иван" <ivan@x>:"
    body.contains('@') && body.trim_end().ends_with('>') && quote_follows()
}

fn starts_like_attribution(line: &str) -> bool {
    const WEEKDAYS: &[&str] = &[
        "пн",
        "вт",
        "ср",
        "чт",
        "пт",
        "сб",
        "вс",
        "понедельник",
        "вторник",
        "среда",
        "четверг",
        "пятница",
        "суббота",
        "воскресенье",
    ];
    if line.starts_with("On ") || line.starts_with(|c: char| c.is_ascii_digit()) {
        return true;
    }
    let first_word = line
        .split(|c: char| c == ',' || c.is_whitespace())
        .next()
        .unwrap_or("");
    first_word.len() <= 24 && WEEKDAYS.iter().any(|day| eq_lower(first_word, day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_reply_cuts_at_on_wrote() {
        let text = "Спасибо, всё получили.\n\nOn Mon, 23 Nov 2026 at 10:15, Ivan Petrov \
            <ivan@client.example> wrote:\n> Добрый день\n> Счёт во вложении\n";
        assert_eq!(strip_quoted(text), "Спасибо, всё получили.");
    }

    #[test]
    fn wrapped_on_wrote_is_an_attribution() {
        let text = "Подтверждаю.\n\nOn Mon, 23 Nov 2026 at 10:15, Ivan Petrov <\n\
            ivan@client.example> wrote:\n\n> Старый текст\n";
        assert_eq!(strip_quoted(text), "Подтверждаю.");
    }

    #[test]
    fn russian_attributions() {
        for attribution in [
            "23.11.2026 10:15, Иван Петров пишет:",
            "23.11.2026 10:15, Иван Петров написал(а):",
            "23 ноября 2026 г., в 10:15, Иван написал:",
            "Понедельник, 23 ноября 2026, 10:15 +03:00 от Иван Петров <ivan@client.example>:",
            "пн, 23 нояб. 2026 г. в 10:15, Иван Петров <ivan@client.example>:",
            "23.11.2026, 10:15, \"Иван Петров\" <ivan@client.example>:",
            "Мария написала:",
        ] {
            let text = format!("Хорошо, договорились.\n\n{attribution}\n\n> Можно завтра?\n");
            assert_eq!(
                strip_quoted(&text),
                "Хорошо, договорились.",
                "{attribution}"
            );
        }
    }

    #[test]
    fn outlook_original_message_block() {
        let text = "Счёт оплачен.\r\n\r\n-----Original Message-----\r\nFrom: Ivan \
            [mailto:ivan@client.example]\r\nSent: Monday, November 23, 2026 10:15 AM\r\n\
            To: support@firm.example\r\nSubject: Счёт\r\n\r\nПришлите счёт.\r\n";
        assert_eq!(strip_quoted(text), "Счёт оплачен.");
    }

    #[test]
    fn outlook_header_block_without_marker() {
        let text = "Принято.\n\nFrom: Ivan Petrov\nSent: Monday, November 23, 2026 10:15 AM\n\
            To: Support\nSubject: RE: Заказ\n\nСтарый текст\n";
        assert_eq!(strip_quoted(text), "Принято.");
        let russian = "Принято.\n\nОт: Иван Петров [mailto:ivan@client.example]\n\
            Отправлено: 23 ноября 2026 г. 10:15\nКому: support@firm.example\nТема: Заказ\n\n\
            Старый текст\n";
        assert_eq!(strip_quoted(russian), "Принято.");
    }

    #[test]
    fn bold_header_block_from_html_conversion() {
        let text = "Готово.\n\n*From:* Ivan Petrov <ivan@client.example>\n*Sent:* Monday, \
            November 23, 2026 10:15 AM\n*Subject:* Заказ\n\nСтарый текст";
        assert_eq!(strip_quoted(text), "Готово.");
    }

    #[test]
    fn forwarded_message_is_not_own_words() {
        let text = "Посмотри.\n\nBegin forwarded message:\n\nFrom: Ivan <ivan@client.example>\n\
            Subject: Заказ\n\nТекст клиента";
        assert_eq!(strip_quoted(text), "Посмотри.");
        let only_forward =
            "---------- Forwarded message ---------\nFrom: Ivan <ivan@x.example>\n\nТекст";
        assert_eq!(strip_quoted(only_forward), only_forward);
    }

    #[test]
    fn underscore_separator_before_from() {
        let text = "Да, верно.\n\n________________________________\nFrom: Ivan \
            <ivan@client.example>\nSent: 23 November 2026 10:15\n\nСтарый текст";
        assert_eq!(strip_quoted(text), "Да, верно.");
    }

    #[test]
    fn russian_original_message_marker() {
        let text = "Ок\n\n-------- Исходное сообщение --------\nОт: Иван <ivan@client.example>\n\
            Дата: 23.11.2026\n\nСтарый текст";
        assert_eq!(strip_quoted(text), "Ок");
    }

    #[test]
    fn interleaved_quotes_keep_own_lines_and_signature() {
        let text = "> Когда доставка?\nЗавтра.\n> А оплата?\nПо счёту.\n\n--\nОтправлено с iPhone";
        assert_eq!(
            strip_quoted(text),
            "Завтра.\nПо счёту.\n\n--\nОтправлено с iPhone"
        );
    }

    #[test]
    fn all_quoted_returns_original_trimmed() {
        let text = "\n> только цитата\n> ещё\n\n";
        assert_eq!(strip_quoted(text), "> только цитата\n> ещё");
        let only_attribution = "On Mon, 23 Nov 2026, Ivan <ivan@x.example> wrote:\n> текст";
        assert_eq!(strip_quoted(only_attribution), only_attribution);
    }

    #[test]
    fn plain_text_is_unchanged_but_trimmed() {
        let text = "\nПричина: Дорого\nКомментарий: нашли дешевле\nДата: 21.11.2026\n\n\n";
        assert_eq!(
            strip_quoted(text),
            "Причина: Дорого\nКомментарий: нашли дешевле\nДата: 21.11.2026"
        );
    }

    #[test]
    fn prose_is_not_an_attribution() {
        let text = "Директор написал:\nсогласовано, работаем.\nOn time delivery is key.";
        assert_eq!(strip_quoted(text), text);
        let form = "От: Иван Петров\nДата: 21.11.2026\nПричина: Дорого";
        assert_eq!(strip_quoted(form), form);
        let form_with_address =
            "Опрос: Причина отказа\nОт: Иван Петров <ivan@client.example>\nДата: 21.11.2026\n\
            Причина: Дорого";
        assert_eq!(strip_quoted(form_with_address), form_with_address);
    }
}
