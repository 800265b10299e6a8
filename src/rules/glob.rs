//! Case-insensitive address globs: `*@example.com`, `robot-?@*.example`.

/// A compiled glob: `*` is any run of characters, `?` one character, the rest literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// As written, for messages.
    pub source: String,
    lower: Vec<char>,
}

/// What a glob can be looked up by, so that many address rules cost one hash lookup.
pub enum GlobKey<'g> {
    /// No wildcard: one address.
    Exact(String),
    /// `*@domain`: every address at one domain.
    Domain(&'g str),
    Other,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob {
            source: pattern.to_string(),
            lower: pattern.trim().to_lowercase().chars().collect(),
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.trim().to_lowercase().chars().collect();
        glob_match(&self.lower, &text)
    }

    pub fn key(&self) -> GlobKey<'_> {
        let src = self.source.trim();
        if !src.contains(['*', '?']) {
            return GlobKey::Exact(src.to_lowercase());
        }
        match src.strip_prefix("*@") {
            Some(domain) if !domain.contains(['*', '?']) => GlobKey::Domain(domain),
            _ => GlobKey::Other,
        }
    }
}

/// Iterative wildcard match with single backtracking point (linear for `*` patterns).
fn glob_match(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_case_insensitive_and_anchored() {
        let g = Glob::new("*@Survey.example");
        assert!(g.matches("Bot@survey.EXAMPLE"));
        assert!(!g.matches("bot@survey.example.evil.test"));
        assert!(Glob::new("robot-?@*.example").matches("robot-1@mail.example"));
        assert!(!Glob::new("robot-?@*.example").matches("robot-12@mail.example"));
        assert!(Glob::new("анна@пример.рф").matches("Анна@ПРИМЕР.рф"));
        assert!(Glob::new("*").matches(""));
    }
}
