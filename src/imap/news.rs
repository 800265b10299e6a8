//! The search and fetch of new mail after news, as one pipelined pair: on their own, or
//! written right behind IDLE's `DONE`, so that leaving IDLE and asking for the new mail take
//! one round trip instead of three.

use async_imap::imap_proto::{MailboxDatum, RequestId, Response};

use super::folder::Fetched;
use super::pipelined::fetched_message;
use super::ImapError;

/// `UID SEARCH UID first:*` and `UID FETCH first:last`: which UIDs there are from `first` on,
/// and the messages of the first batch, since new mail most often has the UIDs right after
/// the last one seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewMail {
    first: u32,
    last: u32,
}

/// What the pair found.
#[derive(Debug, Default)]
pub struct Found {
    /// Every UID from `first` on, ascending.
    pub uids: Vec<u32>,
    /// The messages with UIDs `first` to `last`, ascending; empty when the server refused
    /// to deliver one of them (fetching them one by one finds which).
    pub fetched: Vec<Fetched>,
}

/// The tags of the pair when it is written behind `DONE`, where the library's own tags are
/// not at hand. The library's tags are `A` and a number, so these never meet one in flight.
const TAGS_BEHIND_DONE: [&str; 2] = ["N1", "N2"];

impl NewMail {
    /// From UID `first` on, fetching up to UID `last` with the search.
    pub fn new(first: u32, last: u32) -> NewMail {
        let first = first.max(1);
        NewMail {
            first,
            last: last.max(first),
        }
    }

    /// The two commands, with what each does (for errors).
    pub(super) fn commands(&self) -> [(String, &'static str); 2] {
        let NewMail { first, last } = self;
        [
            (format!("UID SEARCH UID {first}:*"), "searching"),
            (
                format!("UID FETCH {first}:{last} (UID BODY.PEEK[])"),
                "fetching mail",
            ),
        ]
    }

    /// The commands as they are written behind `DONE`, and their tags.
    pub(super) fn behind_done(&self) -> (Vec<u8>, Vec<RequestId>) {
        let mut bytes = Vec::new();
        for ((command, _), tag) in self.commands().iter().zip(TAGS_BEHIND_DONE) {
            bytes.extend_from_slice(format!("{tag} {command}\r\n").as_bytes());
        }
        let tags = TAGS_BEHIND_DONE
            .iter()
            .map(|tag| RequestId(tag.to_string()))
            .collect();
        (bytes, tags)
    }

    /// Takes what one untagged response of either command says.
    pub(super) fn collect(&self, response: &Response<'_>, found: &mut Found) {
        match response {
            Response::MailboxData(MailboxDatum::Search(uids)) => found.uids.extend_from_slice(uids),
            other => {
                let asked = |uid| (self.first..=self.last).contains(&uid);
                found.fetched.extend(fetched_message(other, asked));
            }
        }
    }

    /// What was found, given each command's answer: a failed search is an error; a fetch
    /// the server refused leaves the fetched messages empty.
    pub(super) fn finish(
        &self,
        mut found: Found,
        answers: Vec<Result<(), ImapError>>,
    ) -> Result<Found, ImapError> {
        let mut answers = answers.into_iter();
        answers.next().unwrap_or(Ok(()))?;
        match answers.next().unwrap_or(Ok(())) {
            Ok(()) => {}
            Err(ImapError::Refused { .. }) => found.fetched.clear(),
            Err(e) => return Err(e),
        }
        // `n:*` always includes the highest UID, even when it is below n.
        found.uids.retain(|&uid| uid >= self.first);
        found.uids.sort_unstable();
        found.uids.dedup();
        found.fetched.sort_by_key(|f| f.uid);
        found.fetched.dedup_by_key(|f| f.uid);
        Ok(found)
    }
}
