//! Load errors of a rule set: where each one is, what it is about, and "did you mean".

use std::fmt;
use std::path::PathBuf;

/// One problem in one rule file, with its position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// What the error is inside: `"rule"`, `"trigger"`, `"schedule"`, `"field"` or
    /// `"analytics"`; empty when it is not inside a named item.
    pub kind: &'static str,
    /// The name of the rule (or trigger, schedule, field, table) the error is in.
    pub rule: Option<String>,
    pub message: String,
}

impl RuleError {
    /// Whether the error is about reading a file or folder, not about a place in a rule file
    /// (then it has no line and column).
    pub fn is_unreadable(&self) -> bool {
        self.line == 0
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unreadable() {
            write!(f, "{}: ", self.file.display())?;
        } else {
            write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        }
        if let Some(name) = &self.rule {
            let kind = if self.kind.is_empty() {
                "rule"
            } else {
                self.kind
            };
            write!(f, "{kind} \"{name}\": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every error found while loading a rule set (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

impl RuleErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, RuleError> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The known word closest to `word`, if it is close enough to be a likely typo.
pub fn nearest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    let word_len = word.chars().count();
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= (word_len.max(k.chars().count()) / 2).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The known name `word` most likely misspells: one within two edits of it (a difference of
/// case included) but not equal to it. For names that may be new (free fields), where only a
/// near miss of a declared one is surely a mistake.
pub fn likely_typo<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    if known.contains(&word) {
        return None;
    }
    known
        .iter()
        .map(|k| {
            // A difference of case alone counts as one edit: "причина" is not "Причина".
            let d = edit_distance(word, k).max(usize::from(word != *k));
            (d, *k)
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// "unknown key `frm`, did you mean `from`?", or the list of known keys when nothing is close.
pub fn unknown_word(what: &str, word: &str, known: &[&str]) -> String {
    match nearest(word, known) {
        Some(k) => format!("unknown {what} `{word}`, did you mean `{k}`?"),
        None => {
            let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            format!(
                "unknown {what} `{word}`; expected one of {}",
                list.join(", ")
            )
        }
    }
}

/// Levenshtein distance over characters, case-insensitive.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_key() {
        assert_eq!(nearest("frm", &["from", "to", "subject"]), Some("from"));
        assert_eq!(
            nearest("subjcet", &["from", "to", "subject"]),
            Some("subject")
        );
        assert_eq!(nearest("zzzzzz", &["from", "to", "subject"]), None);
        assert_eq!(likely_typo("Тпи", &["Тип", "Сбор данных"]), Some("Тип"));
        assert_eq!(likely_typo("тип", &["Тип"]), Some("Тип"));
        assert_eq!(likely_typo("Тип", &["Тип"]), None);
        assert_eq!(likely_typo("Источник", &["Тип"]), None);
        assert_eq!(
            unknown_word("key", "frm", &["from", "to"]),
            "unknown key `frm`, did you mean `from`?"
        );
    }
}
