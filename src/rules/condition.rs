//! Whether a rule's `when` holds for one message, with the named regex groups it captured and,
//! when it does not hold, why (the first failing condition and the value it saw).

use std::cell::OnceCell;
use std::collections::BTreeMap;

use super::model::{short, Condition, Leaf, Test, ThreadKind, When};
use crate::context::{Envelope, SenderKind};
use crate::text::lowercase;

/// Variables a rule captured or extracted.
pub type Vars = BTreeMap<String, String>;

/// Recipient headers that are not parsed into the message's `to`/`cc` lists.
const RECIPIENT_HEADERS: [&str; 3] = ["Delivered-To", "X-Original-To", "Resent-To"];

/// One message, with what the conditions compute from it only once.
pub struct Facts<'a> {
    pub env: &'a Envelope<'a>,
    /// The prefilter's answers, by test slot; `None` evaluates every test directly.
    pub hits: Option<Vec<bool>>,
    /// Say why a condition failed; without it failures carry no text (the daemon's hot path).
    pub explain: bool,
    subject_lower: OnceCell<String>,
    body_lower: OnceCell<String>,
    recipients: OnceCell<Vec<String>>,
    /// The subject and body as traces show them, cut once per message.
    subject_shown: OnceCell<String>,
    body_shown: OnceCell<String>,
    sender_shown: OnceCell<String>,
}

impl<'a> Facts<'a> {
    /// Facts without prefilter answers (set [`Facts::hits`] after asking the prefilter, which
    /// reads the lower-cased texts cached here).
    pub fn new(env: &'a Envelope<'a>, explain: bool) -> Facts<'a> {
        Facts {
            env,
            hits: None,
            explain,
            subject_lower: OnceCell::new(),
            body_lower: OnceCell::new(),
            recipients: OnceCell::new(),
            subject_shown: OnceCell::new(),
            body_shown: OnceCell::new(),
            sender_shown: OnceCell::new(),
        }
    }

    /// The prefilter's answers, to carry to [`Facts::resume`] for the same message once its
    /// thread is known. The lower-cased texts are not kept: few conditions read them after the
    /// prefilter, and a batch of them waiting for the store would double its memory.
    pub fn into_scan(self) -> Scan {
        Scan {
            hits: self.hits.unwrap_or_default(),
        }
    }

    /// Facts about the message that `scan` was taken from, with its answers.
    pub fn resume(env: &'a Envelope<'a>, explain: bool, scan: Scan) -> Facts<'a> {
        let mut facts = Facts::new(env, explain);
        facts.hits = Some(scan.hits);
        facts
    }

    /// A failed condition, with its reason when explaining.
    fn fail(&self, why: impl FnOnce() -> String) -> Result<(), String> {
        Err(if self.explain { why() } else { String::new() })
    }

    /// The subject lower-cased, computed once per message.
    pub fn subject_lower(&self) -> &str {
        self.subject_lower
            .get_or_init(|| lowercase(&self.env.message.subject))
    }

    /// The body lower-cased, computed once per message.
    pub fn body_lower(&self) -> &str {
        self.body_lower
            .get_or_init(|| lowercase(&self.env.message.body))
    }

    /// Every recipient address: To, Cc, Delivered-To, X-Original-To, Resent-To.
    pub fn recipients(&self) -> &[String] {
        self.recipients.get_or_init(|| {
            let m = self.env.message;
            let mut out: Vec<String> = m.to.iter().chain(&m.cc).map(|a| a.email.clone()).collect();
            for header in RECIPIENT_HEADERS {
                for value in m.header_values(header) {
                    out.extend(addresses_in(value));
                }
            }
            out
        })
    }
}

/// What the prefilter found in one message; it depends only on the message and its sender,
/// so it can be worked out on the thread that parses, before the thread lookups.
#[derive(Debug, Default)]
pub struct Scan {
    hits: Vec<bool>,
}

/// The bare addresses of a header value such as `"A, B" <a@x>, b@y`.
pub fn addresses_in(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, ch) in value.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    for part in parts {
        let bare = match (part.rfind('<'), part.rfind('>')) {
            (Some(open), Some(close)) if open < close => &part[open + 1..close],
            _ => part,
        }
        .trim();
        if bare.contains('@') {
            out.push(bare.to_string());
        }
    }
    out
}

/// `Ok` when every condition holds (named groups added to `vars`), else why not.
pub fn check(when: &When, facts: &Facts, vars: &mut Vars) -> Result<(), String> {
    for condition in &when.conditions {
        check_one(condition, facts, vars)?;
    }
    Ok(())
}

fn check_one(condition: &Condition, facts: &Facts, vars: &mut Vars) -> Result<(), String> {
    let env = facts.env;
    let message = env.message;
    match condition {
        Condition::From(leaf) => {
            let seen = &env.sender.email;
            let held = run(&leaf.test, seen, None, facts.hits.as_deref(), vars);
            expect(facts, held, leaf, || {
                facts.sender_shown.get_or_init(|| short(seen).into_owned())
            })
        }
        Condition::To(leaf) => {
            let recipients = facts.recipients();
            if recipients
                .iter()
                .any(|r| run(&leaf.test, r, None, None, vars))
            {
                Ok(())
            } else {
                facts.fail(|| leaf.missed(&short(&recipients.join(", ")), ')'))
            }
        }
        Condition::Subject(leaf) => {
            let seen = &message.subject;
            let lower =
                needs_lower(&leaf.test, facts.hits.as_deref()).then(|| facts.subject_lower());
            let held = run(&leaf.test, seen, lower, facts.hits.as_deref(), vars);
            expect(facts, held, leaf, || {
                facts.subject_shown.get_or_init(|| short(seen).into_owned())
            })
        }
        Condition::Body(leaf) => {
            let seen = &message.body;
            let lower = needs_lower(&leaf.test, facts.hits.as_deref()).then(|| facts.body_lower());
            let held = run(&leaf.test, seen, lower, facts.hits.as_deref(), vars);
            expect(facts, held, leaf, || {
                facts.body_shown.get_or_init(|| short(seen).into_owned())
            })
        }
        Condition::TaskStatus(leaf) => match &env.task_status {
            Some(status) => {
                if run(&leaf.test, status, None, None, vars) {
                    Ok(())
                } else {
                    facts.fail(|| leaf.missed(&short(status), '"'))
                }
            }
            None => facts.fail(|| "task_status: the message has no task".into()),
        },
        Condition::Header { name, leaf } => {
            let values: Vec<&str> = message.header_values(name).collect();
            match &leaf.test {
                Test::Exists(want) if values.is_empty() == *want => facts.fail(|| {
                    format!(
                        "header {name}: expected it to {}, it is {}",
                        if *want { "exist" } else { "be absent" },
                        if *want { "absent" } else { "present" }
                    )
                }),
                Test::Exists(_) => Ok(()),
                _ if values.is_empty() => {
                    facts.fail(|| format!("header {name}: the message has no such header"))
                }
                test => {
                    if values.iter().any(|v| run(test, v, None, None, vars)) {
                        Ok(())
                    } else {
                        facts.fail(|| leaf.missed(&short(values[0]), '"'))
                    }
                }
            }
        }
        Condition::HasAttachment(want) => {
            let has = !message.attachments.is_empty();
            if has == *want {
                Ok(())
            } else if *want {
                facts.fail(|| "has_attachment: the message has no attachments".into())
            } else {
                facts.fail(|| {
                    format!(
                        "has_attachment: the message has {} attachment(s)",
                        message.attachments.len()
                    )
                })
            }
        }
        Condition::Thread(want) => {
            let seen = if env.thread.task.is_some() {
                ThreadKind::Reply
            } else {
                ThreadKind::New
            };
            if seen == *want {
                Ok(())
            } else {
                facts.fail(|| {
                    format!(
                        "thread: expected \"{}\", the message is \"{}\"",
                        thread_word(*want),
                        thread_word(seen)
                    )
                })
            }
        }
        Condition::Sender(want) => {
            if env.sender_kind == *want {
                Ok(())
            } else {
                facts.fail(|| {
                    format!(
                        "sender: expected \"{}\", {} is \"{}\"",
                        sender_word(*want),
                        short(&env.sender.email),
                        sender_word(env.sender_kind)
                    )
                })
            }
        }
        Condition::Any(branches) => {
            let mut reasons = Vec::new();
            for branch in branches {
                let mut branch_vars = Vars::new();
                match check(branch, facts, &mut branch_vars) {
                    Ok(()) => {
                        vars.extend(branch_vars);
                        return Ok(());
                    }
                    Err(why) if facts.explain => reasons.push(why),
                    Err(_) => {}
                }
            }
            facts.fail(|| format!("any: none held ({})", reasons.join("; ")))
        }
        Condition::All(branches) => {
            for branch in branches {
                if let Err(why) = check(branch, facts, vars) {
                    return facts.fail(|| format!("all: {why}"));
                }
            }
            Ok(())
        }
        Condition::Not(inner) => match check(inner, facts, &mut Vars::new()) {
            Ok(()) => facts.fail(|| "not: the conditions inside `not` held".into()),
            Err(_) => Ok(()),
        },
    }
}

fn thread_word(kind: ThreadKind) -> &'static str {
    match kind {
        ThreadKind::Reply => "reply",
        ThreadKind::New => "new",
    }
}

fn sender_word(kind: SenderKind) -> &'static str {
    match kind {
        SenderKind::Staff => "staff",
        SenderKind::Contact => "contact",
    }
}

/// Whether the test compares lower-cased text (then the message's lower-cased subject or body
/// is made once and shared by every rule). Not a `contains` that the prefilter answered
/// (`hits`): a body the prefilter did not lower-case is not lower-cased here either.
fn needs_lower(test: &Test, hits: Option<&[bool]>) -> bool {
    match test {
        Test::Contains { slot, .. } => slot.zip(hits).is_none_or(|(s, h)| s >= h.len()),
        Test::Is { .. } => true,
        Test::AnyOf(items) => items.iter().any(|t| needs_lower(t, hits)),
        _ => false,
    }
}

/// `seen` gives the value as traces show it (already shortened).
fn expect<'s>(
    facts: &Facts,
    held: bool,
    leaf: &Leaf,
    seen: impl FnOnce() -> &'s str,
) -> Result<(), String> {
    if held {
        Ok(())
    } else {
        facts.fail(|| leaf.missed(seen(), '"'))
    }
}

/// One test on one value. `lower` is the value lower-cased, when the caller has it cached;
/// `hits` are the prefilter's answers for tests that have a slot.
pub fn run(
    test: &Test,
    value: &str,
    lower: Option<&str>,
    hits: Option<&[bool]>,
    vars: &mut Vars,
) -> bool {
    let hit = |slot: &Option<usize>| match (hits, slot) {
        (Some(h), Some(s)) => h.get(*s).copied(),
        _ => None,
    };
    match test {
        Test::Glob { glob, slot } => hit(slot).unwrap_or_else(|| glob.matches(value)),
        Test::Is { lower: want, .. } => match lower {
            Some(l) => l.trim() == want,
            None => lowercase(value.trim()) == *want,
        },
        Test::Contains {
            lower: want, slot, ..
        } => hit(slot).unwrap_or_else(|| match lower {
            Some(l) => l.contains(want.as_str()),
            None => lowercase(value).contains(want.as_str()),
        }),
        Test::Regex { regex, slot } => {
            if hit(slot) == Some(false) {
                return false;
            }
            if regex.capture_names().flatten().next().is_none() {
                return hit(slot).unwrap_or_else(|| regex.is_match(value));
            }
            let Some(caps) = regex.captures(value) else {
                return false;
            };
            for name in regex.capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    vars.insert(name.to_string(), m.as_str().to_string());
                }
            }
            true
        }
        Test::AnyOf(items) => items.iter().any(|t| run(t, value, lower, hits, vars)),
        Test::Exists(want) => *want,
    }
}
