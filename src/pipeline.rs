//! One message's straight line: parse → resolve sender and thread → match rules → plan →
//! apply in the store. Shared by `ingest`, `retry`, `explain` and the daemon.
//!
//! The pipeline owns the only store connection that writes. Everything before `apply` is pure.
//! It drives one store [`Batch`](crate::store::Batch) per batch of mail: admit each message,
//! plan it against the batch (so a reply threads onto a task an earlier message of the same
//! batch created), apply it, and commit with the mailbox cursor.

use std::collections::BTreeMap;
use std::sync::Arc;

use regex::Regex;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::context::{Envelope, SenderKind, ThreadMatch};
use crate::message::{self, Message};
use crate::parallel;
use crate::plan::{ActionKind, NoPlan, Plan, PlanError, PlannedAction};
use crate::rules::{RuleSet, RuleTrace, Scan};
use crate::store::TaskDirectory;
use crate::store::{
    Admission, ApplyOptions, MailDictionary, MailboxCursor, MessageRecord, Store, StoreError,
};
use crate::thread::{resolve_sender, resolve_thread, ResolvedSender};

mod ahead;
pub use ahead::PreparingBatch;

/// One message to process, as fetched.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub raw: Vec<u8>,
    /// The configured mailbox name (`"cli"` for files given to `ingest`).
    pub mailbox: String,
    /// Where it came from, for people: a file path, `imap:support uid 42`, `stdin`.
    pub source: String,
    /// Why the server could not deliver it (then `raw` is empty): it is recorded as failed
    /// under a key made of its source, so that nobody loses track of it.
    pub unreadable: Option<String>,
}

impl Incoming {
    pub fn new(raw: Vec<u8>, mailbox: &str, source: String) -> Incoming {
        Incoming {
            raw,
            mailbox: mailbox.to_string(),
            source,
            unreadable: None,
        }
    }
}

/// The key under which a message the server could not deliver is recorded.
pub fn unreadable_key(source: &str) -> String {
    format!("unreadable:{source}")
}

pub use crate::store::ApplyResult as Outcome;
pub use crate::store::ResultStatus as OutcomeStatus;

/// Batches at least this large are parsed on other threads while they are applied.
pub const PARSE_ALONGSIDE_FROM: usize = 8;
/// Messages each parsing thread may be ahead of the applying one.
pub const PARSE_AHEAD: usize = 16;

/// A message after parsing, waiting for its plan.
struct Prepared {
    record: MessageRecord,
    parsed: Parsed,
}

/// What planning reads: the parsed message and its sender, or why it could not be parsed.
type Parsed = Result<(Message, ResolvedSender), NoPlan>;

/// The unique key of a message: its Message-ID, else a hash of its bytes.
pub fn message_key(message: Option<&Message>, raw: &[u8]) -> String {
    key_of(message.and_then(|m| m.message_id.as_deref()), raw)
}

fn key_of(message_id: Option<&str>, raw: &[u8]) -> String {
    match message_id {
        Some(id) if !id.trim().is_empty() => id.trim().to_string(),
        _ => {
            let digest = Sha256::digest(raw);
            let mut hex = String::with_capacity(71);
            hex.push_str("sha256:");
            crate::text::push_hex(&mut hex, &digest);
            hex
        }
    }
}

/// What `explain` shows: the whole decision for one message, with nothing written.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub thread: ThreadMatch,
    pub sender: Option<String>,
    pub sender_name: Option<String>,
    pub sender_kind: Option<SenderKind>,
    pub forwarded_by: Option<String>,
    pub subject: Option<String>,
    pub rules: Vec<RuleTrace>,
    pub extracted: BTreeMap<String, String>,
    pub actions: Vec<PlannedAction>,
    /// Why the message would fail (unparseable, extraction or conversion failure).
    pub error: Option<String>,
}

pub struct Pipeline {
    config: Arc<Config>,
    rules: Arc<RuleSet>,
    store: Store,
    subject_tag: Regex,
    options: ApplyOptions,
    own_addresses: Vec<String>,
    /// The store's dictionary for kept mail, shared with every [`Preparer`]; read when the
    /// first one is made (commands that only read, `explain`, never need it).
    dictionary: std::sync::OnceLock<MailDictionary>,
}

impl Pipeline {
    /// The configuration the pipeline runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn new(config: Arc<Config>, rules: Arc<RuleSet>, store: Store) -> Pipeline {
        // Config::load already checked the regex; an invalid one here means a hand-built Config.
        let subject_tag = Regex::new(&config.threading.subject_tag)
            .unwrap_or_else(|_| Regex::new(r"\[#(\d+)\]").expect("the default tag is valid"));
        let own_addresses = own_addresses(&config);
        let options = apply_options(&config, &rules);
        Pipeline {
            config,
            rules,
            store,
            subject_tag,
            options,
            own_addresses,
            dictionary: std::sync::OnceLock::new(),
        }
    }

    /// Replaces the rule set (after a reload that loaded without error).
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        self.options.triggers = crate::automation::RuleTriggers::for_rules(&rules);
        self.options.initial_status = rules.initial_status().map(str::to_string);
        self.options.statuses = declared_statuses(&rules);
        self.rules = rules;
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs the schedules of the current rules on the store at `now`, through the store's
    /// batch like mail, with the same triggers and limits.
    pub fn run_schedules(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
        which: crate::automation::Which,
    ) -> Result<Vec<crate::automation::ScheduleFiring>, StoreError> {
        let rules = self.rules.clone();
        crate::automation::run_with(&mut self.store, &rules, &self.options, now, which)
    }

    /// Drops the original bytes of the messages received longer ago than the config's
    /// `keep_mail` (nothing when it is not set); returns how many messages lost them.
    pub fn drop_expired_mail(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, StoreError> {
        drop_expired_mail(&mut self.store, &self.config, now)
    }

    /// Lets tests and the schedule runner fix the clock.
    pub fn set_now(&mut self, now: Option<chrono::DateTime<chrono::Utc>>) {
        self.options.now = now;
    }

    /// Processes a batch in one store transaction; `cursor` is committed with it.
    /// `Err` means nothing was committed, so nothing may be acknowledged.
    pub fn process_batch(
        &mut self,
        batch: Vec<Incoming>,
        cursor: Option<&MailboxCursor>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let preparer = self.preparer();
        if batch.len() < PARSE_ALONGSIDE_FROM {
            let prepared = batch.into_iter().map(|m| preparer.prepare(m));
            return self.apply_prepared(prepared, cursor);
        }
        // Parsing needs no store: other threads parse the messages after message n while this
        // one applies message n, in the same single transaction.
        let prepare = |incoming| preparer.prepare(incoming);
        parallel::map_in_order(
            batch.into_iter(),
            parallel::workers(),
            PARSE_AHEAD,
            prepare,
            |prepared| self.apply_prepared(prepared, cursor),
        )
    }

    /// Applies a batch that was parsed ahead ([`Preparer::start`]) in one transaction, as
    /// [`Pipeline::process_batch`] does; `cursor` is committed with it. Messages the rules of
    /// the time decided are decided again if the rules were reloaded since.
    pub fn process_preparing(
        &mut self,
        batch: PreparingBatch,
        cursor: Option<&MailboxCursor>,
    ) -> Result<Vec<Outcome>, StoreError> {
        self.apply_prepared(batch, cursor)
    }

    /// What parses batches for this pipeline, on any thread.
    pub fn preparer(&self) -> Preparer {
        Preparer {
            config: self.config.clone(),
            rules: self.rules.clone(),
            dictionary: self
                .dictionary
                .get_or_init(|| {
                    // A store whose dictionary cannot be read fails again at its next write,
                    // with the same error; until then mail is compressed as if it had none.
                    self.store.mail_dictionary().unwrap_or_else(|e| {
                        tracing::warn!("kept mail is compressed without a dictionary: {e}");
                        MailDictionary::default()
                    })
                })
                .clone(),
        }
    }

    /// The second half of [`Pipeline::process_batch`]: plans and applies, in one store
    /// batch with `cursor`, messages that a [`Preparer`] parsed, taking each as it comes (the
    /// next may still be being parsed on another thread). A message's parsed form is dropped
    /// once it is planned: a long batch holds only its results.
    pub fn apply_prepared(
        &mut self,
        messages: impl Iterator<Item = PreparedMessage>,
        cursor: Option<&MailboxCursor>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let Pipeline {
            store,
            config,
            rules,
            subject_tag,
            own_addresses,
            options,
            ..
        } = self;
        let planner = Planner {
            config,
            rules,
            subject_tag,
            own_addresses,
        };
        let mut batch = store.begin_batch(options)?;
        let mut outcomes = Vec::with_capacity(messages.size_hint().0);
        for message in messages {
            let PreparedMessage {
                record,
                parsed,
                decided,
                rules: decided_by,
            } = message;
            let admitted = match batch.admit(record)? {
                Admission::Duplicate(outcome) => {
                    outcomes.push(outcome);
                    continue;
                }
                Admission::New(admitted) => admitted,
            };
            // After a reload in between, the early decision is the old rules'.
            let decided = decided.filter(|_| std::ptr::eq(&*decided_by, planner.rules));
            let mailbox = &admitted.record().mailbox;
            let plan = planner.plan_one(parsed, decided, mailbox, &batch.directory())?;
            outcomes.push(batch.apply(admitted, plan)?);
        }
        batch.commit(cursor)?;
        Ok(outcomes)
    }

    /// The dry run behind `mailrules explain`: reads the store, writes nothing.
    pub fn explain(&self, raw: &[u8], mailbox: &str) -> Result<Explanation, StoreError> {
        let mut explanation = Explanation {
            thread: ThreadMatch::default(),
            sender: None,
            sender_name: None,
            sender_kind: None,
            forwarded_by: None,
            subject: None,
            rules: Vec::new(),
            extracted: BTreeMap::new(),
            actions: Vec::new(),
            error: None,
        };
        let message = match message::parse(raw) {
            Ok(m) => m,
            Err(e) => {
                explanation.error = Some(e.to_string());
                return Ok(explanation);
            }
        };
        let sender = resolve_sender(&message, &self.config.staff);
        let (thread, task_status) = resolve_thread(&message, &self.subject_tag, &self.store)?;
        explanation.thread = thread;
        let envelope = envelope(&message, mailbox, &sender, Some((thread, task_status)));
        explanation.subject = Some(message.subject.clone());
        explanation.sender = Some(sender.address.email.clone());
        explanation.sender_name = sender.address.name.clone();
        explanation.sender_kind = Some(sender.kind);
        explanation.forwarded_by = sender.forwarded_by.as_ref().map(|a| a.email.clone());
        let evaluation = self.rules.evaluate(&envelope, self.config.unmatched);
        explanation.rules = evaluation.rules;
        explanation.extracted = evaluation.extracted;
        match evaluation.plan {
            Ok(mut plan) => {
                guard_replies(&mut plan, &message, &self.own_addresses);
                explanation.actions = plan.actions;
            }
            Err(e) => explanation.error = Some(e.to_string()),
        }
        Ok(explanation)
    }
}

/// Enforces the config's `keep_mail` on `store` at `now`: the bytes of the messages received
/// before `now - keep_mail` go, their records stay.
pub fn drop_expired_mail(
    store: &mut Store,
    config: &Config,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, StoreError> {
    let crate::config::KeepMail::For(keep) = config.keep_mail else {
        return Ok(0);
    };
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let cutoff = now
        .checked_sub_signed(keep)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    store.drop_mail_received_before(cutoff, now)
}

/// The pure first half of processing (parse, resolve the sender), which needs no store: it
/// can run on another thread while the batch before is applied.
#[derive(Clone)]
pub struct Preparer {
    config: Arc<Config>,
    rules: Arc<RuleSet>,
    /// What kept mail is compressed with, shared by every preparing thread.
    dictionary: MailDictionary,
}

/// One message parsed by a [`Preparer`], for [`Pipeline::apply_prepared`].
pub struct PreparedMessage {
    record: MessageRecord,
    parsed: Parsed,
    decided: Option<Decided>,
    /// The rules that decided it.
    rules: Arc<RuleSet>,
}

/// The rules' work done on the preparing thread: the prefilter's answers, and the plan for
/// the case that the message threads nowhere (most mail: new requests, notices, partners).
struct Decided {
    scan: Scan,
    unthreaded: Result<Plan, PlanError>,
}

impl Preparer {
    /// Parses one message, resolves its sender, runs the rules on it as if it threaded
    /// nowhere and compresses its original bytes (which the store keeps for every message):
    /// all of that here, on a preparing thread, not on the one that holds the store. The
    /// record goes to the store and the parsed message stays for planning.
    pub fn prepare(&self, incoming: Incoming) -> PreparedMessage {
        let Prepared { mut record, parsed } = self.prepare_one(incoming);
        // Bytes kept only if the message fails are compressed then, by the store (few are).
        if !record.keep_only_if_failed {
            record.compress_with(&self.dictionary);
        }
        let decided = parsed.as_ref().ok().map(|(message, sender)| {
            let env = envelope(message, &record.mailbox, sender, None);
            let (scan, evaluation) = self.rules.decide_unthreaded(&env, self.config.unmatched);
            Decided {
                scan,
                unthreaded: evaluation.plan,
            }
        });
        PreparedMessage {
            record,
            parsed,
            decided,
            rules: self.rules.clone(),
        }
    }

    fn prepare_one(&self, incoming: Incoming) -> Prepared {
        let Incoming {
            raw,
            mailbox,
            source,
            unreadable,
        } = incoming;
        if let Some(error) = unreadable {
            return Prepared {
                record: MessageRecord {
                    key: unreadable_key(&source),
                    mailbox,
                    source,
                    raw,
                    ..MessageRecord::default()
                },
                parsed: Err(NoPlan::Unreadable(error)),
            };
        }
        let max = self.config.limits.max_message_size;
        // Too large to parse: only its Message-ID is read, so that it keys the same record
        // as when it is parsed (after the limit is raised, `retry`).
        let oversized_id = (raw.len() > max)
            .then(|| message::message_id(&raw))
            .flatten();
        let parsed = if raw.len() > max {
            Err(NoPlan::Unreadable(format!(
                "message is {} bytes, over the limit of {max} bytes (limits.max_message_size)",
                raw.len()
            )))
        } else {
            message::parse(&raw).map_err(|e| NoPlan::Unreadable(e.to_string()))
        };
        let key = match &parsed {
            Ok(m) => message_key(Some(m), &raw),
            Err(_) => key_of(oversized_id.as_deref(), &raw),
        };
        let parsed = parsed.map(|m| {
            let sender = resolve_sender(&m, &self.config.staff);
            (m, sender)
        });
        let keep_only_if_failed = !self.config.keep_mail.keeps_every_message();
        let record = match &parsed {
            Ok((m, sender)) => MessageRecord {
                key,
                message_id: m.message_id.clone(),
                mailbox,
                source,
                subject: m.subject.clone(),
                from: Some(sender.address.normalized()).filter(|a| !a.is_empty()),
                from_name: sender.address.name.clone(),
                date: m.date,
                attachments: m.attachments.clone(),
                references: m.ancestor_ids().into_iter().map(str::to_string).collect(),
                raw,
                compressed: None,
                keep_only_if_failed,
            },
            Err(_) => MessageRecord {
                key,
                message_id: oversized_id,
                mailbox,
                source,
                raw,
                keep_only_if_failed,
                ..MessageRecord::default()
            },
        };
        Prepared { record, parsed }
    }
}

/// The pure part of planning, borrowed from the pipeline while the store holds its transaction.
struct Planner<'a> {
    config: &'a Config,
    rules: &'a RuleSet,
    subject_tag: &'a Regex,
    own_addresses: &'a [String],
}

impl Planner<'_> {
    /// The plan for one prepared message, or why it has none. Store errors abort the batch.
    fn plan_one(
        &self,
        parsed: Parsed,
        decided: Option<Decided>,
        mailbox: &str,
        directory: &dyn TaskDirectory,
    ) -> Result<Result<Plan, NoPlan>, StoreError> {
        let (message, sender) = match parsed {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let thread = resolve_thread(&message, self.subject_tag, directory)?;
        let unthreaded = thread == Default::default();
        let plan = match decided {
            // The rules read nothing but the message, its sender, its mailbox and its thread:
            // with no thread, this is the decision they made on the preparing thread.
            Some(decided) if unthreaded => decided.unthreaded,
            decided => {
                let envelope = envelope(&message, mailbox, &sender, Some(thread));
                let unmatched = self.config.unmatched;
                match decided {
                    Some(d) => self.rules.decide_scanned(&envelope, unmatched, d.scan),
                    None => self.rules.decide(&envelope, unmatched),
                }
                .plan
            }
        };
        Ok(plan.map_err(NoPlan::from).map(|mut plan| {
            guard_replies(&mut plan, &message, self.own_addresses);
            plan
        }))
    }
}

/// What the rules see of a message; `thread`: the task it threads to and that task's
/// status, once looked up.
fn envelope<'a>(
    message: &'a Message,
    mailbox: &'a str,
    sender: &ResolvedSender,
    thread: Option<(ThreadMatch, Option<String>)>,
) -> Envelope<'a> {
    let (thread, task_status) = thread.unwrap_or_default();
    Envelope {
        message,
        mailbox,
        sender: sender.address.clone(),
        sender_kind: sender.kind,
        forwarded_by: sender.forwarded_by.clone(),
        thread,
        task_status,
    }
}

/// Marks automatic replies that RFC 3834 forbids (the message is from a robot, a list, us).
fn guard_replies(plan: &mut Plan, message: &Message, own_addresses: &[String]) {
    for action in &mut plan.actions {
        if let ActionKind::Reply { suppressed, .. } = &mut action.kind {
            if suppressed.is_none() {
                *suppressed = crate::autoreply::suppression_reason(message, own_addresses);
            }
        }
    }
}

/// Addresses that are ours: the SMTP sender and every mailbox account.
/// How the store applies changes under `config` and `rules`: our identity, the limits, the
/// triggers and the initial status. Mail, schedules and a person's change use the same.
pub fn apply_options(config: &Config, rules: &Arc<RuleSet>) -> ApplyOptions {
    ApplyOptions {
        outgoing_domain: crate::outgoing::message_id_domain(config),
        reply_from: own_addresses(config),
        limits: config.limits.clone(),
        now: None,
        triggers: crate::automation::RuleTriggers::for_rules(rules),
        initial_status: rules.initial_status().map(str::to_string),
        statuses: declared_statuses(rules),
    }
}

fn declared_statuses(rules: &RuleSet) -> Vec<String> {
    rules.statuses().iter().map(|s| s.name.clone()).collect()
}

fn own_addresses(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(from) = config
        .smtp
        .as_ref()
        .and_then(|s| crate::outgoing::bare_address(&s.from))
    {
        out.push(from);
    }
    for mailbox in &config.mailboxes {
        if mailbox.user.contains('@') {
            out.push(mailbox.user.to_lowercase());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
