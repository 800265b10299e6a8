//! Raw bytes → [`Message`], on mail-parser 0.11.

use super::Message;

/// Why a message could not be parsed at all (it is then kept and listed as failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unparseable message: {0}")]
pub struct ParseError(pub String);

/// Parses one raw message.
pub fn parse(raw: &[u8]) -> Result<Message, ParseError> {
    let _ = raw;
    Err(ParseError("parser not written yet".into()))
}
