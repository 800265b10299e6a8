//! Acknowledging again what an earlier attempt may have half done. On a server without MOVE a
//! move is `UID COPY` then `UID STORE \Deleted` then `UID EXPUNGE`; a crash or a lost
//! connection between the copy and the expunge leaves the message in both folders, and copying
//! it again would put a second copy in the target. So before copying, look in the target for
//! each message (by Message-ID, else by its Date header and exact size) and copy only the
//! missing ones.

use std::collections::BTreeMap;

use async_imap::imap_proto::{AttributeValue, Response, ResponseCode, Status};

use super::folder::{encode_mailbox_name, quote};
use super::{uid_set, Folder, ImapError};
use crate::config::Disposition;

/// How a message is recognised in another folder: a SEARCH key.
type Probe = String;

impl Folder {
    /// Applies `disposition` to `uids` like [`Folder::acknowledge`], without ever leaving a
    /// second copy of a message in the target folder. Use it for messages whose earlier
    /// acknowledgement may have been cut short; it costs a look into the target folder.
    pub async fn acknowledge_again(
        &mut self,
        uids: &[u32],
        disposition: &Disposition,
    ) -> Result<(), ImapError> {
        let target = match disposition {
            Disposition::Move(target) if !self.capabilities().moves && !uids.is_empty() => {
                self.resolve(target)
            }
            _ => return self.acknowledge(uids, disposition).await,
        };
        let probes = self.probes(uids).await?;
        let already_there = self.find_in(&target, &probes).await?;
        let to_copy: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|uid| !already_there.contains(uid))
            .collect();
        if !to_copy.is_empty() {
            let limit = self.timeouts().command;
            let set = uid_set(&to_copy);
            let copied = super::within(
                limit,
                "copying mail",
                self.session.uid_copy(&set, encode_mailbox_name(&target)),
            )
            .await?;
            copied.map_err(|e| self.target_error(e, &target, "copying mail"))?;
        }
        let set = uid_set(uids);
        self.add_flag(&set, "\\Deleted").await?;
        self.expunge(&set).await
    }

    /// A SEARCH key for each of `uids` that identifies it in another folder.
    async fn probes(&mut self, uids: &[u32]) -> Result<BTreeMap<u32, Probe>, ImapError> {
        let mut probes = BTreeMap::new();
        let command = format!(
            "UID FETCH {} (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE)])",
            uid_set(uids)
        );
        self.exchange(&command, "reading message headers", |response| {
            let Response::Fetch(_, attributes) = response else {
                return;
            };
            let (mut uid, mut size, mut header) = (None, None, None);
            for attribute in attributes {
                match attribute {
                    AttributeValue::Uid(u) => uid = Some(*u),
                    AttributeValue::Rfc822Size(s) => size = Some(*s),
                    AttributeValue::BodySection {
                        data: Some(data), ..
                    } => header = Some(data.to_vec()),
                    _ => {}
                }
            }
            if let (Some(uid), Some(size)) = (uid, size) {
                probes.insert(uid, probe(header.as_deref().unwrap_or_default(), size));
            }
        })
        .await?;
        Ok(probes)
    }

    /// Which of the probed messages `target` already holds. Leaves the folder selected again.
    async fn find_in(
        &mut self,
        target: &str,
        probes: &BTreeMap<u32, Probe>,
    ) -> Result<Vec<u32>, ImapError> {
        let examined = self
            .exchange(
                &format!("EXAMINE {}", quote(&encode_mailbox_name(target))),
                "looking into the target folder",
                |_| {},
            )
            .await;
        let mut found = Vec::new();
        // A target that does not exist holds nothing yet.
        if examined.is_ok() {
            for (&uid, probe) in probes {
                if !self.search(probe).await?.is_empty() {
                    found.push(uid);
                }
            }
        }
        self.select_again().await?;
        Ok(found)
    }

    /// Selects this folder again after looking elsewhere; its UIDs must still mean the same
    /// messages.
    async fn select_again(&mut self) -> Result<(), ImapError> {
        let mut uid_validity = None;
        let name = self.name().to_string();
        self.exchange(
            &format!("SELECT {}", quote(&encode_mailbox_name(&name))),
            "selecting the folder again",
            |response| {
                if let Response::Data {
                    status: Status::Ok,
                    code: Some(ResponseCode::UidValidity(v)),
                    ..
                } = response
                {
                    uid_validity = Some(*v);
                }
            },
        )
        .await?;
        match (uid_validity, self.uid_validity()) {
            (Some(now), before) if now != before => Err(ImapError::Folder {
                folder: name,
                message: format!("its UIDVALIDITY changed from {before} to {now}"),
            }),
            _ => Ok(()),
        }
    }
}

/// The SEARCH key for a message with these header lines (Message-ID and Date) and size.
fn probe(header: &[u8], size: u32) -> Probe {
    let header = String::from_utf8_lossy(header);
    let field = |name: &str| {
        header_value(&header, name)
            .map(|v| v.replace(['"', '\\'], " "))
            .filter(|v| !v.trim().is_empty())
    };
    match field("message-id") {
        Some(id) => format!("HEADER Message-ID {}", quote(id.trim())),
        None => {
            let size_key = format!("LARGER {} SMALLER {}", size.saturating_sub(1), size + 1);
            match field("date") {
                Some(date) => format!("{size_key} HEADER Date {}", quote(date.trim())),
                None => size_key,
            }
        }
    }
}

/// The unfolded value of the first header line called `name`.
fn header_value(header: &str, name: &str) -> Option<String> {
    let mut value: Option<String> = None;
    for line in header.split('\n') {
        let line = line.trim_end_matches('\r');
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((field, rest)) = line.split_once(':') {
            if field.trim().eq_ignore_ascii_case(name) {
                value = Some(rest.trim().to_string());
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_recognised_by_message_id_else_by_date_and_size() {
        let header =
            b"Message-ID:\r\n <a1@shop.example>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\n";
        assert_eq!(
            probe(header, 900),
            "HEADER Message-ID \"<a1@shop.example>\""
        );
        let header = b"Date: Tue, 1 Dec 2026\r\n 10:00:00 +0000\r\n\r\n";
        assert_eq!(
            probe(header, 900),
            "LARGER 899 SMALLER 901 HEADER Date \"Tue, 1 Dec 2026 10:00:00 +0000\""
        );
        assert_eq!(probe(b"\r\n", 5), "LARGER 4 SMALLER 6");
        // Hostile values cannot break out of the quoted string.
        assert_eq!(
            probe(b"Message-ID: <x\"y\\z>\r\n", 5),
            "HEADER Message-ID \"<x y z>\""
        );
    }
}
