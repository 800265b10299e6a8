//! Acknowledging a committed batch and fetching the next one in one round trip: the
//! acknowledgement's commands (STORE, EXPUNGE, MOVE) and the next UID FETCH are sent
//! together and their answers read afterwards (RFC 3501 5.5; every one of them names its
//! messages by UID, so none depends on message numbers the others change).

use async_imap::imap_proto::{AttributeValue, Response};

use super::folder::{encode_mailbox_name, quote};
use super::{uid_set, Fetched, Folder, ImapError};
use crate::config::Disposition;

/// A disposition to apply to some UIDs of a committed batch.
pub struct Acknowledgement<'a> {
    pub uids: &'a [u32],
    pub disposition: &'a Disposition,
}

/// What [`Folder::acknowledge_and_fetch`] came back with.
pub struct AcknowledgedAndFetched {
    /// One answer per acknowledgement, in the order given.
    pub acknowledged: Vec<Result<(), ImapError>>,
    pub fetched: Result<Vec<Fetched>, ImapError>,
}

/// One command of an acknowledgement, and which acknowledgement it belongs to.
struct Step {
    command: String,
    doing: &'static str,
    of: usize,
    /// The folder a MOVE goes to: a refusal is then a problem with that folder.
    target: Option<String>,
}

impl Folder {
    /// Whether [`Folder::acknowledge_and_fetch`] can apply `disposition`: everything but a
    /// move on a server without MOVE, whose delete must wait until the copy succeeded.
    pub fn acknowledges_pipelined(&self, disposition: &Disposition) -> bool {
        !matches!(disposition, Disposition::Move(_)) || self.capabilities().moves
    }

    /// Applies `acknowledgements` (each only if [`Folder::acknowledges_pipelined`]) and
    /// fetches `uids` as [`Folder::fetch`] does, sending every command before reading any
    /// answer. The outer error is the connection's: then nothing is known of any of them.
    pub async fn acknowledge_and_fetch(
        &mut self,
        acknowledgements: &[Acknowledgement<'_>],
        uids: &[u32],
    ) -> Result<AcknowledgedAndFetched, ImapError> {
        let mut steps = Vec::new();
        for (of, acknowledgement) in acknowledgements.iter().enumerate() {
            self.acknowledgement_steps(of, acknowledgement, &mut steps);
        }
        let fetch = format!("UID FETCH {} (UID BODY.PEEK[])", uid_set(uids));
        let mut commands: Vec<(&str, &'static str)> = steps
            .iter()
            .map(|step| (step.command.as_str(), step.doing))
            .collect();
        if !uids.is_empty() {
            commands.push((fetch.as_str(), "fetching mail"));
        }
        let mut fetched = Vec::with_capacity(uids.len());
        let mut answers = self
            .exchange_all(&commands, |response| {
                if let Some(message) =
                    fetched_message(response, |uid| uids.binary_search(&uid).is_ok())
                {
                    fetched.push(message);
                }
            })
            .await?;
        let fetch_answer = if uids.is_empty() {
            Ok(())
        } else {
            answers.pop().unwrap_or(Ok(()))
        };
        let mut acknowledged: Vec<Result<(), ImapError>> =
            acknowledgements.iter().map(|_| Ok(())).collect();
        for (step, answer) in steps.iter().zip(answers) {
            let Err(error) = answer else { continue };
            let error = match (&step.target, error) {
                (Some(target), ImapError::Refused { message, .. }) => ImapError::Folder {
                    folder: target.clone(),
                    message,
                },
                (_, error) => error,
            };
            // The first refusal of an acknowledgement is the one to report.
            if acknowledged[step.of].is_ok() {
                acknowledged[step.of] = Err(error);
            }
        }
        fetched.sort_by_key(|f| f.uid);
        fetched.dedup_by_key(|f| f.uid);
        Ok(AcknowledgedAndFetched {
            acknowledged,
            fetched: fetch_answer.map(|()| fetched),
        })
    }

    fn acknowledgement_steps(&self, of: usize, ack: &Acknowledgement<'_>, steps: &mut Vec<Step>) {
        if ack.uids.is_empty() {
            return;
        }
        let set = uid_set(ack.uids);
        let step = |command: String, doing: &'static str| Step {
            command,
            doing,
            of,
            target: None,
        };
        match ack.disposition {
            Disposition::Keep => {}
            Disposition::Flag => steps.push(step(
                format!("UID STORE {set} +FLAGS.SILENT (\\Seen)"),
                "setting flags",
            )),
            Disposition::Delete => {
                steps.push(step(
                    format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
                    "setting flags",
                ));
                steps.push(step(self.expunge_command(&set), "expunging"));
            }
            Disposition::Move(target) => {
                let target = self.resolve(target);
                steps.push(Step {
                    command: format!("UID MOVE {set} {}", quote(&encode_mailbox_name(&target))),
                    doing: "moving mail",
                    of,
                    target: Some(target),
                });
            }
        }
    }
}

/// The message in a FETCH response, if its UID is `wanted` and it carries its body;
/// anything else is an unsolicited flag update, not one of ours.
pub(super) fn fetched_message(
    response: &Response<'_>,
    wanted: impl Fn(u32) -> bool,
) -> Option<Fetched> {
    let Response::Fetch(_, attributes) = response else {
        return None;
    };
    let mut uid = None;
    let mut body = None;
    for attribute in attributes {
        match attribute {
            AttributeValue::Uid(u) => uid = Some(*u),
            AttributeValue::BodySection {
                section: None,
                data: Some(data),
                ..
            } => body = Some(data),
            _ => {}
        }
    }
    let (uid, body) = (uid?, body?);
    wanted(uid).then(|| Fetched {
        uid,
        raw: body.to_vec(),
    })
}
