//! Folder names as a user writes them (`Processed`, `Archive/2024`) turned into the names a
//! server uses (`INBOX.Processed` on Cyrus and Courier), from its RFC 2342 NAMESPACE answer or
//! its hierarchy delimiter. Pure: the session code asks the server, this decides.

/// The server's personal namespace, and the prefixes of the others (which names already carry).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespaces {
    /// The prefix of the user's own folders: `""` on Dovecot, `"INBOX."` on Cyrus and Courier.
    pub personal: String,
    /// The hierarchy delimiter of the personal namespace, if the server has a hierarchy.
    pub delimiter: Option<char>,
    /// Prefixes of the other users' and shared namespaces (`"user."`, `"#shared/"`).
    pub others: Vec<String>,
}

impl Namespaces {
    /// What a server without NAMESPACE is taken to have: no prefix, the given delimiter.
    pub fn flat(delimiter: Option<char>) -> Namespaces {
        Namespaces {
            delimiter,
            ..Namespaces::default()
        }
    }

    /// Reads an untagged `* NAMESPACE personal other shared` line. `None` if it is not one.
    pub fn parse(line: &[u8]) -> Option<Namespaces> {
        let mut tokens = Tokens { rest: line };
        if !tokens.word()?.eq_ignore_ascii_case("*")
            || !tokens.word()?.eq_ignore_ascii_case("NAMESPACE")
        {
            return None;
        }
        let personal = tokens.group()?;
        let other = tokens.group()?;
        let shared = tokens.group()?;
        let (prefix, delimiter) = personal.into_iter().next().unwrap_or_default();
        Some(Namespaces {
            personal: prefix,
            delimiter,
            others: other
                .into_iter()
                .chain(shared)
                .map(|(prefix, _)| prefix)
                .filter(|p| !p.is_empty())
                .collect(),
        })
    }

    /// The server's name for the folder a user calls `name`. INBOX stays INBOX; a name that
    /// already starts with a namespace prefix is used as written (so configurations written
    /// with `INBOX.Processed` keep working); anything else goes under the personal prefix,
    /// with `/` standing for the server's delimiter.
    pub fn resolve(&self, name: &str) -> String {
        let name = name.trim();
        if name.eq_ignore_ascii_case("INBOX") || self.has_namespace_prefix(name) {
            return name.to_string();
        }
        let local = match self.delimiter {
            Some(d) if d != '/' => name.replace('/', &d.to_string()),
            _ => name.to_string(),
        };
        format!("{}{local}", self.personal)
    }

    fn has_namespace_prefix(&self, name: &str) -> bool {
        let starts = |prefix: &str| {
            !prefix.is_empty()
                && name.len() >= prefix.len()
                && name.is_char_boundary(prefix.len())
                // INBOX is case-insensitive (RFC 3501 5.1); the rest of a prefix is not, but a
                // user who wrote "Inbox." meant the same folder.
                && name[..prefix.len()].eq_ignore_ascii_case(prefix)
        };
        starts(&self.personal) || self.others.iter().any(|p| starts(p))
    }
}

/// A tiny reader for the NAMESPACE syntax: parentheses, NIL, quoted strings and literals.
struct Tokens<'a> {
    rest: &'a [u8],
}

impl Tokens<'_> {
    fn skip_space(&mut self) {
        while let [b' ' | b'\r' | b'\n', rest @ ..] = self.rest {
            self.rest = rest;
        }
    }

    fn word(&mut self) -> Option<String> {
        self.skip_space();
        let end = self
            .rest
            .iter()
            .position(|&b| matches!(b, b' ' | b'(' | b')' | b'\r' | b'\n'))
            .unwrap_or(self.rest.len());
        if end == 0 {
            return None;
        }
        let word = String::from_utf8_lossy(&self.rest[..end]).into_owned();
        self.rest = &self.rest[end..];
        Some(word)
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        match self.rest.split_first() {
            Some((&b, rest)) if b == byte => {
                self.rest = rest;
                true
            }
            _ => false,
        }
    }

    /// A string, or `None` for NIL.
    fn string(&mut self) -> Option<Option<String>> {
        self.skip_space();
        match self.rest.first()? {
            b'"' => {
                let mut out = Vec::new();
                let mut i = 1;
                loop {
                    match *self.rest.get(i)? {
                        b'\\' => {
                            out.push(*self.rest.get(i + 1)?);
                            i += 2;
                        }
                        b'"' => break,
                        b => {
                            out.push(b);
                            i += 1;
                        }
                    }
                }
                self.rest = &self.rest[i + 1..];
                Some(Some(unescape_ampersand(&String::from_utf8_lossy(&out))))
            }
            b'{' => {
                let close = self.rest.iter().position(|&b| b == b'}')?;
                let n: usize = std::str::from_utf8(&self.rest[1..close])
                    .ok()?
                    .parse()
                    .ok()?;
                let start =
                    close + 1 + self.rest[close + 1..].iter().position(|&b| b == b'\n')? + 1;
                let text = self.rest.get(start..start + n)?;
                self.rest = &self.rest[start + n..];
                Some(Some(unescape_ampersand(&String::from_utf8_lossy(text))))
            }
            _ => {
                let word = self.word()?;
                word.eq_ignore_ascii_case("NIL").then_some(None)
            }
        }
    }

    /// One namespace group: NIL, or a list of (prefix, delimiter) with optional extensions.
    fn group(&mut self) -> Option<Vec<(String, Option<char>)>> {
        if !self.eat(b'(') {
            return match self.word()? {
                w if w.eq_ignore_ascii_case("NIL") => Some(Vec::new()),
                _ => None,
            };
        }
        let mut entries = Vec::new();
        while self.eat(b'(') {
            let prefix = self.string()?.unwrap_or_default();
            let delimiter = self.string()?.and_then(|d| d.chars().next());
            entries.push((prefix, delimiter));
            // Extensions (RFC 2342 5): skip anything up to this entry's closing parenthesis.
            let mut depth = 1;
            while depth > 0 {
                self.skip_space();
                match self.rest.first()? {
                    b'(' => {
                        depth += 1;
                        self.rest = &self.rest[1..];
                    }
                    b')' => {
                        depth -= 1;
                        self.rest = &self.rest[1..];
                    }
                    _ => {
                        self.string()?;
                    }
                }
            }
        }
        self.eat(b')').then_some(entries)
    }
}

/// Prefixes come in modified UTF-7 like every folder name. The ones servers use are ASCII
/// (`INBOX.`, `user.`, `#shared.`); only the escaped `&` is undone, other non-ASCII stays as
/// the server wrote it.
fn unescape_ampersand(text: &str) -> String {
    text.replace("&-", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Namespaces {
        Namespaces::parse(line.as_bytes()).expect("a NAMESPACE line")
    }

    #[test]
    fn servers_answers_are_read() {
        // Cyrus 3.6 and Courier 5.0 as Debian ships them.
        let cyrus =
            parsed("* NAMESPACE ((\"INBOX.\" \".\")) ((\"user.\" \".\")) ((\"\" \".\"))\r\n");
        assert_eq!(cyrus.personal, "INBOX.");
        assert_eq!(cyrus.delimiter, Some('.'));
        assert_eq!(cyrus.others, vec!["user.".to_string()]);
        let courier = parsed("* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\" ))\r\n");
        assert_eq!(courier.personal, "INBOX.");
        assert_eq!(courier.others, vec!["#shared.".to_string()]);
        let dovecot = parsed("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
        assert_eq!(dovecot.personal, "");
        assert_eq!(dovecot.delimiter, Some('/'));
        let with_extension = parsed("* NAMESPACE ((\"\" \"/\" \"X-PARAM\" (\"A\" \"B\"))) NIL NIL");
        assert_eq!(with_extension.delimiter, Some('/'));
        let literal = parsed("* NAMESPACE (({6}\r\nINBOX. \".\")) NIL NIL\r\n");
        assert_eq!(literal.personal, "INBOX.");
        assert_eq!(Namespaces::parse(b"* OK hello"), None);
        assert_eq!(Namespaces::parse(b"* NAMESPACE ((\"unterminated"), None);
    }

    #[test]
    fn user_names_go_under_the_personal_prefix() {
        let cyrus = parsed("* NAMESPACE ((\"INBOX.\" \".\")) ((\"user.\" \".\")) NIL");
        assert_eq!(cyrus.resolve("Processed"), "INBOX.Processed");
        assert_eq!(cyrus.resolve("Archive/2024"), "INBOX.Archive.2024");
        assert_eq!(cyrus.resolve("INBOX"), "INBOX");
        assert_eq!(cyrus.resolve("inbox"), "inbox");
        assert_eq!(
            cyrus.resolve("INBOX.Processed"),
            "INBOX.Processed",
            "names written with the prefix keep working"
        );
        assert_eq!(cyrus.resolve("user.boss.Inbox"), "user.boss.Inbox");
        assert_eq!(cyrus.resolve("Обработано"), "INBOX.Обработано");

        let dovecot = Namespaces::flat(Some('/'));
        assert_eq!(dovecot.resolve("Processed"), "Processed");
        assert_eq!(dovecot.resolve("Archive/2024"), "Archive/2024");
        let dotted = Namespaces::flat(Some('.'));
        assert_eq!(dotted.resolve("Archive/2024"), "Archive.2024");
        assert_eq!(
            Namespaces::flat(None).resolve("Archive/2024"),
            "Archive/2024"
        );
    }
}
