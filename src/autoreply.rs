//! The automatic-reply loop guard (RFC 3834, RFC 5230 practice): decides from an incoming
//! message alone whether an automatic answer to it could start a mail loop or flood a list.
//!
//! Pure: no store, no clock. Rate limits need the store and live there.

use crate::message::Message;

/// Local parts that belong to robots; compared case-insensitively, also with a `+tag` or a
/// `-suffix` (`noreply-billing@`, `postmaster+abuse@`).
const ROBOT_LOCAL_PARTS: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "no-reply",
    "noreply",
    "no_reply",
    "do-not-reply",
    "donotreply",
    "do_not_reply",
];

/// Why no automatic reply may be sent to `msg`, as a short text shown by `explain` and
/// `outbox`; `None` when a reply is fine. `own_addresses` are the addresses we send from.
pub fn suppression_reason(msg: &Message, own_addresses: &[String]) -> Option<String> {
    if let Some(value) = msg.header("Auto-Submitted") {
        let keyword = first_keyword(value);
        if keyword != "no" {
            return Some(format!(
                "the message is automatic (Auto-Submitted: {keyword})"
            ));
        }
    }
    for value in msg.header_values("Precedence") {
        let keyword = first_keyword(value);
        if matches!(keyword.as_str(), "bulk" | "list" | "junk") {
            return Some(format!("bulk mail (Precedence: {keyword})"));
        }
    }
    if let Some((name, _)) = msg
        .headers
        .iter()
        .find(|(name, _)| name.len() > 5 && name[..5].eq_ignore_ascii_case("list-"))
    {
        return Some(format!("mailing-list mail ({name} header)"));
    }
    for value in msg.header_values("X-Auto-Response-Suppress") {
        let asks = value
            .split(',')
            .map(|v| v.trim().to_ascii_lowercase())
            .find(|v| matches!(v.as_str(), "all" | "autoreply" | "oof"));
        if let Some(what) = asks {
            return Some(format!(
                "the sender asks for no automatic replies (X-Auto-Response-Suppress: {what})"
            ));
        }
    }
    if let Some(name) = ["X-Autoreply", "X-Autorespond"]
        .into_iter()
        .find(|name| msg.header(name).is_some())
    {
        return Some(format!("the message is an automatic reply ({name} header)"));
    }
    if msg
        .header_values("Return-Path")
        .any(|v| v.chars().filter(|c| !c.is_whitespace()).collect::<String>() == "<>")
    {
        return Some("a bounce or notice (empty Return-Path <>)".into());
    }
    if msg
        .header("Content-Type")
        .is_some_and(|v| first_keyword(v) == "multipart/report")
    {
        return Some("a delivery or read report (multipart/report)".into());
    }
    let Some(from) = &msg.from else {
        return Some("the message has no sender address".into());
    };
    let address = from.normalized();
    if own_addresses
        .iter()
        .any(|own| own.trim().eq_ignore_ascii_case(&address))
    {
        return Some(format!("the sender {address} is our own address"));
    }
    if is_robot(&address) {
        return Some(format!("the sender {address} is a robot address"));
    }
    None
}

/// The header's main value, lower-cased, without parameters or comments.
fn first_keyword(value: &str) -> String {
    value
        .split([';', '(', ' ', '\t'])
        .find(|part| !part.is_empty())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn is_robot(address: &str) -> bool {
    let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
    let local = local.to_ascii_lowercase();
    ROBOT_LOCAL_PARTS.iter().any(|robot| {
        local == *robot
            || local
                .strip_prefix(robot)
                .is_some_and(|rest| rest.starts_with(['+', '-', '.', '_']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Address;

    fn message(from: &str, headers: &[(&str, &str)]) -> Message {
        Message {
            from: Some(Address::new(Some("Клиент"), from)),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            ..Message::default()
        }
    }

    fn own() -> Vec<String> {
        vec!["support@acme.example".into()]
    }

    fn reason(from: &str, headers: &[(&str, &str)]) -> Option<String> {
        suppression_reason(&message(from, headers), &own())
    }

    #[test]
    fn an_ordinary_message_may_be_answered() {
        let headers = [
            ("Subject", "Не работает принтер"),
            ("Auto-Submitted", "no"),
            ("Precedence", "first-class"),
            ("X-Auto-Response-Suppress", "DR, RN"),
            ("Return-Path", "<ivan@client.example>"),
        ];
        assert_eq!(reason("ivan@client.example", &headers), None);
    }

    #[test]
    fn auto_submitted_other_than_no() {
        for value in [
            "auto-replied",
            "auto-generated (vacation)",
            "Auto-Notified; x=1",
        ] {
            let r = reason("ivan@client.example", &[("Auto-Submitted", value)]).unwrap();
            assert!(r.contains("Auto-Submitted"), "{value}: {r}");
        }
        let r = reason("a@b.example", &[("Auto-Submitted", "auto-replied")]).unwrap();
        assert_eq!(r, "the message is automatic (Auto-Submitted: auto-replied)");
    }

    #[test]
    fn precedence_bulk_list_junk() {
        for value in ["bulk", "List", "junk"] {
            let r = reason("ivan@client.example", &[("Precedence", value)]).unwrap();
            assert_eq!(
                r,
                format!("bulk mail (Precedence: {})", value.to_lowercase())
            );
        }
    }

    #[test]
    fn any_list_header() {
        for name in ["List-Id", "list-unsubscribe", "List-Post"] {
            let r = reason("ivan@client.example", &[(name, "<x.lists.example>")]).unwrap();
            assert!(r.contains(name), "{r}");
        }
    }

    #[test]
    fn x_auto_response_suppress() {
        for value in ["All", "OOF", "DR, AutoReply"] {
            let r = reason(
                "ivan@client.example",
                &[("X-Auto-Response-Suppress", value)],
            );
            assert!(r.unwrap().contains("X-Auto-Response-Suppress"), "{value}");
        }
    }

    #[test]
    fn empty_return_path_is_a_bounce() {
        for value in ["<>", "< >"] {
            let r = reason("ivan@client.example", &[("Return-Path", value)]).unwrap();
            assert!(r.contains("empty Return-Path"), "{r}");
        }
    }

    #[test]
    fn robot_senders() {
        for from in [
            "MAILER-DAEMON@mx.client.example",
            "postmaster@client.example",
            "no-reply@shop.example",
            "noreply@shop.example",
            "noreply-billing@shop.example",
            "do-not-reply@bank.example",
        ] {
            let r = reason(from, &[]).unwrap();
            assert!(r.contains("robot"), "{from}: {r}");
        }
        // A person whose name merely starts like a robot's is still answered.
        assert_eq!(reason("noreen@client.example", &[]), None);
        assert_eq!(reason("postmasters-fan@client.example", &[]), None);
    }

    #[test]
    fn our_own_address() {
        let r = reason("Support@ACME.example", &[]).unwrap();
        assert_eq!(r, "the sender support@acme.example is our own address");
    }

    #[test]
    fn reports_and_other_autoresponders() {
        let r = reason(
            "ivan@client.example",
            &[(
                "Content-Type",
                "multipart/report; report-type=delivery-status",
            )],
        );
        assert!(r.unwrap().contains("report"));
        let r = reason("ivan@client.example", &[("X-Autoreply", "yes")]);
        assert!(r.unwrap().contains("X-Autoreply"));
    }

    #[test]
    fn no_sender_no_reply() {
        let msg = Message::default();
        assert_eq!(
            suppression_reason(&msg, &own()).as_deref(),
            Some("the message has no sender address")
        );
    }
}
