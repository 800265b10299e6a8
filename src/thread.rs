//! Before any rule runs: who really sent the message, and which task it belongs to.
//!
//! Sender resolution is pure. Thread resolution reads the store only through
//! [`TaskDirectory`], so it can be tested with an in-memory fake.

use regex::Regex;

use crate::config::Staff;
use crate::context::{SenderKind, ThreadMatch, ThreadVia};
use crate::message::{Address, Message};
use crate::store::{StoreError, TaskDirectory};

/// The sender as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSender {
    pub address: Address,
    pub kind: SenderKind,
    /// The staff member who forwarded the message, when `address` was taken from the forward.
    pub forwarded_by: Option<Address>,
}

/// The From address, except for mail that staff forwarded: then the original author.
///
/// Only the bare From address decides who is staff: a display name, a Reply-To or a
/// Resent-From never does, so a stranger cannot make their mail count as staff mail.
pub fn resolve_sender(message: &Message, staff: &Staff) -> ResolvedSender {
    let from = message.from.clone().unwrap_or_default();
    if staff.is_staff(&from.email) {
        if let Some(forwarded) = &message.forwarded {
            if !forwarded.from.email.is_empty() {
                let address = forwarded.from.clone();
                let kind = kind_of(&address, staff);
                return ResolvedSender {
                    address,
                    kind,
                    forwarded_by: Some(from),
                };
            }
        }
    }
    let kind = kind_of(&from, staff);
    ResolvedSender {
        address: from,
        kind,
        forwarded_by: None,
    }
}

fn kind_of(address: &Address, staff: &Staff) -> SenderKind {
    if staff.is_staff(&address.email) {
        SenderKind::Staff
    } else {
        SenderKind::Contact
    }
}

/// The task a message belongs to, and that task's status.
///
/// 1. In-Reply-To / References naming a Message-ID stored on a task;
/// 2. the subject tag (group 1 of `subject_tag`) naming an existing task;
/// 3. otherwise a new thread.
pub fn resolve_thread(
    message: &Message,
    subject_tag: &Regex,
    directory: &dyn TaskDirectory,
) -> Result<(ThreadMatch, Option<String>), StoreError> {
    let ancestors = message.ancestor_ids();
    if !ancestors.is_empty() {
        if let Some(task) = directory.task_for_message_ids(&ancestors)? {
            if let Some(status) = directory.task_status(task)? {
                let found = ThreadMatch {
                    task: Some(task),
                    via: Some(ThreadVia::References),
                };
                return Ok((found, Some(status)));
            }
        }
    }
    for captures in subject_tag.captures_iter(&message.subject) {
        let number = captures
            .get(1)
            .or_else(|| captures.get(0))
            .map(|m| m.as_str());
        let Some(task) = number.and_then(|n| n.trim().parse::<i64>().ok()) else {
            continue;
        };
        if let Some(status) = directory.task_status(task)? {
            let found = ThreadMatch {
                task: Some(task),
                via: Some(ThreadVia::Subject),
            };
            return Ok((found, Some(status)));
        }
    }
    Ok((ThreadMatch::default(), None))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::message::Forwarded;

    struct FakeDirectory {
        ids: HashMap<String, i64>,
        tasks: HashMap<i64, String>,
    }

    impl TaskDirectory for FakeDirectory {
        fn task_for_message_ids(&self, ids: &[&str]) -> Result<Option<i64>, StoreError> {
            Ok(ids.iter().find_map(|id| self.ids.get(*id).copied()))
        }
        fn task_status(&self, id: i64) -> Result<Option<String>, StoreError> {
            Ok(self.tasks.get(&id).cloned())
        }
    }

    fn directory() -> FakeDirectory {
        FakeDirectory {
            ids: HashMap::from([("a@x".to_string(), 7)]),
            tasks: HashMap::from([(7, "Новая".to_string()), (42, "Завершенная".to_string())]),
        }
    }

    fn tag() -> Regex {
        Regex::new(r"\[#(\d+)\]").unwrap()
    }

    #[test]
    fn references_win_over_the_subject_tag() {
        let msg = Message {
            subject: "Re: [#42] вопрос".into(),
            references: vec!["unknown@x".into(), "a@x".into()],
            ..Message::default()
        };
        let (found, status) = resolve_thread(&msg, &tag(), &directory()).unwrap();
        assert_eq!(
            found,
            ThreadMatch {
                task: Some(7),
                via: Some(ThreadVia::References)
            }
        );
        assert_eq!(status.as_deref(), Some("Новая"));
    }

    #[test]
    fn subject_tag_needs_an_existing_task() {
        let mut msg = Message {
            subject: "Re: [#42] вопрос".into(),
            ..Message::default()
        };
        let (found, status) = resolve_thread(&msg, &tag(), &directory()).unwrap();
        assert_eq!(found.task, Some(42));
        assert_eq!(found.via, Some(ThreadVia::Subject));
        assert_eq!(status.as_deref(), Some("Завершенная"));

        msg.subject = "Re: [#999] вопрос".into();
        let (found, status) = resolve_thread(&msg, &tag(), &directory()).unwrap();
        assert_eq!(found, ThreadMatch::default());
        assert_eq!(status, None);
    }

    fn staff() -> Staff {
        Staff {
            domains: vec!["acme.example".into()],
            addresses: vec![],
        }
    }

    fn forwarded_by(from: &str) -> Message {
        Message {
            from: Some(Address::new(Some("Менеджер"), from)),
            forwarded: Some(Forwarded {
                from: Address::new(Some("Иван Петров"), "ivan@client.example"),
                subject: Some("Счёт".into()),
                body: "Пришлите счёт".into(),
            }),
            ..Message::default()
        }
    }

    #[test]
    fn staff_forward_makes_the_client_the_sender() {
        let sender = resolve_sender(&forwarded_by("anna@acme.example"), &staff());
        assert_eq!(sender.address.email, "ivan@client.example");
        assert_eq!(sender.kind, SenderKind::Contact);
        assert_eq!(
            sender.forwarded_by.map(|a| a.email).as_deref(),
            Some("anna@acme.example")
        );
    }

    #[test]
    fn a_stranger_forwarding_stays_the_sender() {
        let sender = resolve_sender(&forwarded_by("someone@else.example"), &staff());
        assert_eq!(sender.address.email, "someone@else.example");
        assert_eq!(sender.forwarded_by, None);
    }

    #[test]
    fn display_name_never_makes_staff() {
        let msg = Message {
            from: Some(Address::new(
                Some("anna@acme.example"),
                "evil@attacker.example",
            )),
            reply_to: vec![Address::new(None, "anna@acme.example")],
            ..Message::default()
        };
        assert_eq!(resolve_sender(&msg, &staff()).kind, SenderKind::Contact);
    }
}
