//! Tests of the rule language: rules written as text, messages built in code.

mod load;
mod matching;
mod names;
mod planning;
mod prefilter;

use std::path::PathBuf;

use chrono::{TimeZone, Utc};

use super::evaluate::{evaluate, Mode};
use super::{Evaluation, RuleSet, RuleTrace};
use crate::config::Unmatched;
use crate::context::{Envelope, SenderKind, ThreadMatch, ThreadVia};
use crate::message::{Address, Attachment, Message};
use crate::plan::{ActionKind, Plan, PlannedAction};

/// A rule set from one file named `rules.toml`.
fn load(src: &str) -> RuleSet {
    match RuleSet::from_sources(&[(PathBuf::from("rules.toml"), src.to_string())]) {
        Ok(set) => set,
        Err(e) => panic!("rules did not load:\n{e}"),
    }
}

/// The error lines of a rule file that must not load.
fn errors(src: &str) -> Vec<String> {
    errors_of(&[("rules.toml", src)])
}

fn errors_of(files: &[(&str, &str)]) -> Vec<String> {
    let files: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(p, s)| (PathBuf::from(p), s.to_string()))
        .collect();
    match RuleSet::from_sources(&files) {
        Ok(_) => panic!("rules loaded but should not have"),
        Err(e) => e.to_string().lines().map(String::from).collect(),
    }
}

/// A message under test, with what threading resolved about it.
#[derive(Clone)]
struct Mail {
    message: Message,
    mailbox: String,
    sender_kind: SenderKind,
    task: Option<i64>,
    task_status: Option<String>,
}

fn mail(from: &str, subject: &str, body: &str) -> Mail {
    Mail {
        message: Message {
            message_id: Some("m1@example.com".into()),
            subject: subject.into(),
            from: Some(Address::new(Some("Клиент Иванов"), from)),
            to: vec![Address::new(None, "support@acme.example")],
            date: Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).single(),
            body: body.into(),
            headers: vec![("Subject".into(), subject.into())],
            ..Message::default()
        },
        mailbox: "support".into(),
        sender_kind: SenderKind::Contact,
        task: None,
        task_status: None,
    }
}

impl Mail {
    fn header(mut self, name: &str, value: &str) -> Mail {
        self.message.headers.push((name.into(), value.into()));
        self
    }
    fn cc(mut self, address: &str) -> Mail {
        self.message.cc.push(Address::new(None, address));
        self
    }
    fn attachment(mut self, name: &str) -> Mail {
        self.message.attachments.push(Attachment {
            name: name.into(),
            content_type: "application/pdf".into(),
            size: 1000,
        });
        self
    }
    fn on_task(mut self, task: i64, status: &str) -> Mail {
        self.task = Some(task);
        self.task_status = Some(status.into());
        self
    }
    fn staff(mut self) -> Mail {
        self.sender_kind = SenderKind::Staff;
        self
    }
    fn mailbox(mut self, name: &str) -> Mail {
        self.mailbox = name.into();
        self
    }

    fn envelope(&self) -> Envelope<'_> {
        Envelope {
            message: &self.message,
            mailbox: &self.mailbox,
            sender: self.message.from.clone().unwrap_or_default(),
            sender_kind: self.sender_kind,
            forwarded_by: None,
            thread: ThreadMatch {
                task: self.task,
                via: self.task.map(|_| ThreadVia::Subject),
            },
            task_status: self.task_status.clone(),
        }
    }

    /// Evaluates with the prefilter and checks that the plain evaluator agrees.
    fn run(&self, set: &RuleSet) -> Evaluation {
        self.run_with(set, Unmatched::Thread)
    }

    fn run_with(&self, set: &RuleSet, unmatched: Unmatched) -> Evaluation {
        let env = self.envelope();
        let fast = set.evaluate(&env, unmatched);
        let plain = evaluate(set, &env, unmatched, Mode::Plain, true);
        assert_eq!(
            fast, plain,
            "the prefilter and the plain evaluator disagree"
        );
        // The daemon's path: same plan and values, only the matched rules traced.
        let quiet = set.decide(&env, unmatched);
        assert_eq!(quiet.plan, fast.plan);
        assert_eq!(quiet.extracted, fast.extracted);
        let fast_matched: Vec<&RuleTrace> = fast.rules.iter().filter(|t| t.matched).collect();
        let quiet_traced: Vec<&RuleTrace> = quiet.rules.iter().collect();
        assert_eq!(quiet_traced, fast_matched);
        // The pipeline's path: the rules decided ahead, as if the message threaded nowhere;
        // that decision is used when it does not, else the scan taken with it.
        let unthreaded = Envelope {
            thread: Default::default(),
            task_status: None,
            ..env.clone()
        };
        let (scan, ahead) = set.decide_unthreaded(&unthreaded, unmatched);
        if env.thread == unthreaded.thread && env.task_status.is_none() {
            assert_eq!(ahead, quiet, "the decision taken ahead differs");
        }
        let scanned = set.decide_scanned(&env, unmatched, scan);
        assert_eq!(scanned, quiet, "a scan taken ahead changes the decision");
        fast
    }
}

fn plan(e: &Evaluation) -> &Plan {
    match &e.plan {
        Ok(p) => p,
        Err(err) => panic!("no plan: {err}"),
    }
}

fn actions(e: &Evaluation) -> Vec<ActionKind> {
    plan(e)
        .actions
        .iter()
        .map(|a: &PlannedAction| a.kind.clone())
        .collect()
}

/// The names of the rules that matched.
fn matched(e: &Evaluation) -> Vec<&str> {
    e.rules
        .iter()
        .filter(|t| t.matched)
        .map(|t| t.name.as_str())
        .collect()
}

/// Why rule `name` did (not) match.
fn why<'e>(e: &'e Evaluation, name: &str) -> &'e str {
    match e.rules.iter().find(|t| t.name == name) {
        Some(t) => &t.why,
        None => panic!("rule {name} was not tried"),
    }
}
