//! The message model: one email parsed into owned, decoded, normalised parts.
//!
//! Everything downstream (threading, rules, planning, the store) reads messages only through
//! [`Message`]. Parsing is pure: bytes in, value out, no I/O.

use chrono::{DateTime, Utc};

mod alternative;
mod charset;
mod encoded_words;
mod flowed;
mod forward;
mod headers;
mod html;
mod parse;
mod single_part;
mod skeleton;

pub use html::html_to_text;
pub use parse::{attachment_contents, html_body, message_id, parse, ParseError};
pub(crate) use skeleton::in_text_part;

/// A mailbox address: `Name <local@domain>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Address {
    /// The decoded display name, if any.
    pub name: Option<String>,
    /// The bare address as written (compare with [`Address::same`], case-insensitively).
    pub email: String,
}

impl Address {
    pub fn new(name: Option<&str>, email: &str) -> Address {
        Address {
            name: name.map(str::to_string),
            email: email.trim().to_string(),
        }
    }

    /// Lower-cased address, the form stored and compared everywhere.
    pub fn normalized(&self) -> String {
        self.email.trim().to_lowercase()
    }

    pub fn same(&self, other: &str) -> bool {
        self.email.trim().eq_ignore_ascii_case(other.trim())
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) if !n.is_empty() => write!(f, "{n} <{}>", self.email),
            _ => f.write_str(&self.email),
        }
    }
}

/// An attachment: kept as name, type and size only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

/// The original author of a message that somebody forwarded, found in an inline forward block
/// ("---------- Forwarded message ---------", "-------- Пересылаемое сообщение --------",
/// Outlook's "From: … Sent: …" block) or in an attached message/rfc822.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Forwarded {
    pub from: Address,
    pub subject: Option<String>,
    /// The forwarded text (the block's body, without its header lines).
    pub body: String,
}

/// One parsed message.
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// Message-ID without angle brackets; `None` when the header is missing or empty.
    pub message_id: Option<String>,
    /// In-Reply-To ids, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// References ids, without angle brackets, oldest first.
    pub references: Vec<String>,
    /// The decoded subject (RFC 2047), whitespace-folded, empty when missing.
    pub subject: String,
    /// The first From address.
    pub from: Option<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub reply_to: Vec<Address>,
    /// Resent-From: recorded, never used as the sender.
    pub resent_from: Option<Address>,
    pub date: Option<DateTime<Utc>>,
    /// Every header in order, name as written, value decoded (RFC 2047) and unfolded.
    pub headers: Vec<(String, String)>,
    /// The text body: the text/plain part, or the HTML part converted to readable text.
    /// Line endings are `\n`.
    pub body: String,
    /// True when the text body had to be made from HTML.
    pub body_from_html: bool,
    pub attachments: Vec<Attachment>,
    /// Set when the message carries a forwarded message (inline block or message/rfc822).
    pub forwarded: Option<Forwarded>,
    /// Size of the raw message in bytes.
    pub size: usize,
}

impl Message {
    /// All values of header `name` (case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every Message-ID this message points back to: In-Reply-To first, then References
    /// newest first, without duplicates.
    pub fn ancestor_ids(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for id in self.in_reply_to.iter().chain(self.references.iter().rev()) {
            if !out.contains(&id.as_str()) {
                out.push(id);
            }
        }
        out
    }
}

mod quote;

pub use quote::strip_quoted;

#[cfg(test)]
mod fixture_tests;
