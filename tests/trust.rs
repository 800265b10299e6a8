//! Trust boundaries, through the binary: what a stranger writes into a message cannot make it
//! staff mail (display name, Reply-To, Sender, a comment, a forward block or an attached
//! message naming staff), and no header of theirs steers mailrules: `X-Mailrules-*` headers
//! change nothing, and a reply threads onto a task only through Message-IDs we stored (the
//! task's own mail and our outgoing mail), not through one that merely looks like ours.

use std::path::PathBuf;

use crate::support::workdir::Workdir;
use serde_json::Value;

/// Marks staff mail: whatever `sender = "staff"` matches is a task with status "staff".
const RULES: &str = r#"
[[rule]]
name = "staff-mail"
[rule.when]
sender = "staff"
thread = "new"
[[rule.do]]
action = "create_task"
status = "staff"

[[rule]]
name = "contact-mail"
[rule.when]
sender = "contact"
thread = "new"
[[rule.do]]
action = "create_task"
status = "contact"
[[rule.do]]
action = "reply"
subject = "Re: {subject}"
text = "Заявка {task} принята."
"#;

/// A workdir whose staff are the domain acme.example and the address boss@gmail.example.
fn workdir() -> Workdir {
    let w = Workdir::with_rules(&[("trust.toml", RULES)]);
    let config = std::fs::read_to_string(&w.config).unwrap().replace(
        "domains = [\"acme.example\"]",
        "domains = [\"acme.example\"]\naddresses = [\"boss@gmail.example\"]",
    );
    std::fs::write(&w.config, config).unwrap();
    w
}

fn write(w: &Workdir, name: &str, raw: &str) -> PathBuf {
    let path = w.path(name);
    std::fs::write(&path, raw.replace('\n', "\r\n")).unwrap();
    path
}

/// `explain --json` of `raw`.
fn explain(w: &Workdir, raw: &str) -> Value {
    let path = write(w, "explain.eml", raw);
    w.json(&["explain", path.to_str().unwrap()])
}

fn matched_rule(explanation: &Value) -> Option<String> {
    explanation["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["matched"] == true)
        .map(|r| r["name"].as_str().unwrap().to_string())
}

#[test]
fn only_the_bare_from_address_makes_a_message_staff_mail() {
    let w = workdir();
    let genuine = explain(
        &w,
        "From: Anna <anna@acme.example>\nTo: support@acme.example\nSubject: s\n\
         Message-ID: <genuine@acme.example>\n\ntext\n",
    );
    assert_eq!(genuine["sender_kind"], "staff", "{genuine:#}");
    assert_eq!(matched_rule(&genuine).as_deref(), Some("staff-mail"));

    let pretenders = [
        (
            "a quoted display name that is a staff address",
            "From: \"anna@acme.example\" <mallory@evil.example>\n",
        ),
        (
            "an unquoted display name that is a staff address",
            "From: anna@acme.example <mallory@evil.example>\n",
        ),
        (
            "a display name that is the staff address list entry",
            "From: boss@gmail.example <mallory@evil.example>\n",
        ),
        (
            "a staff name as display name",
            "From: \"Boss (boss@gmail.example)\" <mallory@evil.example>\n",
        ),
        (
            "a comment naming staff",
            "From: mallory@evil.example (anna@acme.example)\n",
        ),
        (
            "Reply-To a staff address",
            "From: mallory@evil.example\nReply-To: anna@acme.example\n",
        ),
        (
            "Sender a staff address",
            "From: mallory@evil.example\nSender: anna@acme.example\n",
        ),
        (
            "Resent-From a staff address",
            "From: mallory@evil.example\nResent-From: boss@gmail.example\n",
        ),
        (
            "a staff domain as a subdomain",
            "From: mallory@acme.example.evil.example\n",
        ),
        (
            "a staff domain inside the local part",
            "From: \"anna@acme.example\"@evil.example\n",
        ),
        (
            "an encoded-word display name",
            "From: =?utf-8?Q?anna=40acme=2Eexample?= <mallory@evil.example>\n",
        ),
    ];
    for (what, from) in pretenders {
        let e = explain(
            &w,
            &format!("{from}To: support@acme.example\nSubject: s\nMessage-ID: <p@evil.example>\n\ntext\n"),
        );
        assert_eq!(e["sender_kind"], "contact", "{what}: {e:#}");
        assert_eq!(e["forwarded_by"], Value::Null, "{what}: {e:#}");
        assert_eq!(
            matched_rule(&e).as_deref(),
            Some("contact-mail"),
            "{what}: {e:#}"
        );
    }
}

#[test]
fn a_stranger_forwarding_staff_mail_stays_the_sender() {
    let w = workdir();
    let inline = explain(
        &w,
        "From: Mallory <mallory@evil.example>\nTo: support@acme.example\nSubject: Fwd: s\n\
         Message-ID: <fwd@evil.example>\n\nPlease do it.\n\n\
         ---------- Forwarded message ---------\nFrom: Anna <anna@acme.example>\n\
         Date: Mon, 2 Mar 2026 10:00:00 +0000\nSubject: s\nTo: support@acme.example\n\n\
         Approved, close every task.\n",
    );
    assert_eq!(inline["sender"], "mallory@evil.example", "{inline:#}");
    assert_eq!(inline["sender_kind"], "contact", "{inline:#}");
    assert_eq!(inline["forwarded_by"], Value::Null);

    let attached = explain(
        &w,
        "From: mallory@evil.example\nTo: support@acme.example\nSubject: Fwd: s\n\
         Message-ID: <att@evil.example>\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\n\
         See attached.\n--b\nContent-Type: message/rfc822\n\n\
         From: Boss <boss@gmail.example>\nSubject: s\nMessage-ID: <inner@gmail.example>\n\n\
         Approved.\n--b--\n",
    );
    assert_eq!(attached["sender"], "mallory@evil.example", "{attached:#}");
    assert_eq!(attached["sender_kind"], "contact", "{attached:#}");

    // Staff forwarding a client's mail hand the sender over to the client, as documented.
    let by_staff = explain(
        &w,
        "From: Anna <anna@acme.example>\nTo: support@acme.example\nSubject: Fwd: s\n\
         Message-ID: <staff-fwd@acme.example>\n\n\
         ---------- Forwarded message ---------\nFrom: Ivan <ivan@client.example>\n\
         Subject: s\n\nHelp.\n",
    );
    assert_eq!(by_staff["sender"], "ivan@client.example", "{by_staff:#}");
    assert_eq!(by_staff["sender_kind"], "contact");
    assert_eq!(by_staff["forwarded_by"], "anna@acme.example");
}

/// Headers a stranger might hope mailrules reads.
const STEERING: &str =
    "X-Mailrules-Task: 1\nX-Mailrules-Rule: staff-mail\nX-Mailrules-Sender: staff\n\
X-Mailrules-Status: Закрыта\nX-Mailrules-Action: close_task\nX-Mailrules-Skip: yes\n";

fn outside(id: &str, extra: &str) -> String {
    format!(
        "From: Mallory <mallory@evil.example>\nTo: support@acme.example\nSubject: Order\n\
         Message-ID: <{id}@evil.example>\n{extra}\nPlease help.\n"
    )
}

#[test]
fn mailrules_headers_from_outside_are_ignored() {
    let w = workdir();
    let first = write(&w, "first.eml", &outside("first", ""));
    assert_eq!(w.ingest(&first)["messages"][0]["task"], 1);

    let plain = explain(&w, &outside("steer", ""));
    let steered = explain(&w, &outside("steer", STEERING));
    assert_eq!(
        steered, plain,
        "the X-Mailrules-* headers changed the decision"
    );
    assert_eq!(steered["thread"]["task"], Value::Null, "{steered:#}");
    assert_eq!(steered["sender_kind"], "contact");

    let path = write(&w, "steer.eml", &outside("steer", STEERING));
    let result = w.ingest(&path);
    assert_eq!(result["messages"][0]["rule"], "contact-mail", "{result:#}");
    assert_eq!(result["messages"][0]["task"], 2, "{result:#}");
    let task1 = w.json(&["task", "show", "1"]);
    assert_eq!(task1["status"], "contact", "{task1:#}");
    assert_eq!(task1["comments"].as_array().unwrap().len(), 0, "{task1:#}");
}

#[test]
fn replies_thread_through_our_own_message_ids_only() {
    let w = workdir();
    let first = write(&w, "first.eml", &outside("order", ""));
    assert_eq!(w.ingest(&first)["messages"][0]["task"], 1);
    let outbox = w.json(&["outbox"]);
    let ours = outbox[0]["our_message_id"].as_str().unwrap().to_string();
    assert!(ours.ends_with("@acme.example"), "{outbox:#}");

    // A reply to our automatic reply belongs to the task.
    let reply = write(
        &w,
        "reply.eml",
        &outside("reply", &format!("In-Reply-To: <{ours}>\n")),
    );
    let result = w.ingest(&reply);
    assert_eq!(result["messages"][0]["task"], 1, "{result:#}");

    // A Message-ID in our domain that we never sent, with our outgoing mail's headers copied,
    // is an outside message like any other: a new task.
    let forged = write(
        &w,
        "forged.eml",
        &outside(
            "forged",
            &format!(
                "In-Reply-To: <forged.{ours}>\nReferences: <1@acme.example> <task-1@acme.example>\n\
                 Auto-Submitted: no\n{STEERING}"
            ),
        ),
    );
    let result = w.ingest(&forged);
    assert_eq!(result["messages"][0]["task"], 2, "{result:#}");
    assert_eq!(result["messages"][0]["rule"], "contact-mail", "{result:#}");
}
