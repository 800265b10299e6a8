//! One message through the rule set: which rules match (in order, with why), what they
//! extract, and the plan; the unmatched policy when none does.

use std::collections::BTreeMap;

use super::condition::{self, Facts, Vars};
use super::extract::{self, ExtractFailure};
use super::planner::{canonical_vars, Context, Planner};
use super::{Evaluation, RuleSet, RuleTrace};
use crate::config::Unmatched;
use crate::context::Envelope;
use crate::message::strip_quoted;
use crate::plan::{ActionKind, IfMissing, Plan, PlanError, PlannedAction, TaskRef, Text};

/// The rule name on actions of the unmatched policy.
pub const UNMATCHED: &str = "(unmatched)";

/// Whether tests read the prefilter's answers or run one by one (the two must agree; the
/// plain mode exists to check that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Prefiltered,
    #[cfg_attr(not(test), allow(dead_code))]
    Plain,
}

/// `explain`: trace every rule tried with why it did not match; without it only the rules
/// that matched are traced, and failed conditions are not put into words.
pub fn evaluate(
    set: &RuleSet,
    env: &Envelope,
    unmatched: Unmatched,
    mode: Mode,
    explain: bool,
) -> Evaluation {
    let mut facts = Facts::new(env, explain);
    if mode == Mode::Prefiltered {
        facts.hits = Some(set.prefilter.hits(&facts));
    }
    evaluate_facts(set, &facts, unmatched)
}

/// [`evaluate`] with the message's facts (and the prefilter's answers) already gathered.
pub fn evaluate_facts(set: &RuleSet, facts: &Facts, unmatched: Unmatched) -> Evaluation {
    let env = facts.env;
    let explain = facts.explain;
    let mut traces = Vec::new();
    let mut extracted = BTreeMap::new();
    let mut actions = Vec::new();
    let mut first: Option<String> = None;
    let trace = |name: &str, matched: bool, why: String| RuleTrace {
        name: name.to_string(),
        matched,
        why,
    };
    for rule in set.rules() {
        if let Some(mailboxes) = &rule.mailboxes {
            if !mailboxes.iter().any(|m| m == env.mailbox) {
                if !explain {
                    continue;
                }
                let why = format!(
                    "mailbox: \"{}\" is not one of {}",
                    env.mailbox,
                    mailboxes.join(", ")
                );
                traces.push(trace(&rule.name, false, why));
                continue;
            }
        }
        let mut vars = Vars::new();
        if let Err(why) = condition::check(&rule.when, facts, &mut vars) {
            if explain {
                traces.push(trace(&rule.name, false, why));
            }
            continue;
        }
        match extract::run_all(&rule.extract, env, &mut vars) {
            Ok(()) => {}
            Err(ExtractFailure::NoMatch(why)) => {
                if explain {
                    traces.push(trace(&rule.name, false, why));
                }
                continue;
            }
            Err(ExtractFailure::Failed(message)) => {
                traces.push(trace(&rule.name, true, format!("matched, but {message}")));
                extracted.extend(vars);
                let plan = Err(PlanError {
                    rule: rule.name.clone(),
                    message,
                });
                return Evaluation {
                    rules: traces,
                    extracted,
                    plan,
                };
            }
        }
        traces.push(trace(&rule.name, true, "matched".into()));
        first.get_or_insert_with(|| rule.name.clone());
        canonical_vars(
            &rule.actions,
            set.fields(),
            set.analytics_tables(),
            &mut vars,
        );
        let planner = Planner {
            context: Context::Message(env),
            rule: &rule.name,
            vars: &vars,
            fields: set.fields(),
            tables: set.analytics_tables(),
        };
        for action in &rule.actions {
            match planner.action(action) {
                Ok(planned) => actions.push(planned),
                Err(e) => {
                    extracted.extend(vars);
                    return Evaluation {
                        rules: traces,
                        extracted,
                        plan: Err(e),
                    };
                }
            }
        }
        extracted.extend(vars);
        if !rule.continues {
            break;
        }
    }
    if first.is_none() {
        actions = unmatched_actions(env, unmatched);
    }
    let plan = Ok(Plan {
        rule: first,
        sender: env.sender.clone(),
        sender_kind: env.sender_kind,
        thread: env.thread,
        actions,
    });
    Evaluation {
        rules: traces,
        extracted,
        plan,
    }
}

/// `unmatched = "thread"`: a reply becomes the sender's comment, a new message a task;
/// `unmatched = "ignore"`: recorded, nothing else.
fn unmatched_actions(env: &Envelope, unmatched: Unmatched) -> Vec<PlannedAction> {
    let message = env.message;
    let kind = match unmatched {
        Unmatched::Ignore => ActionKind::Ignore,
        Unmatched::Thread if env.thread.task.is_some() => ActionKind::Comment {
            text: Text::literal(strip_quoted(&message.body)),
            auto: false,
        },
        Unmatched::Thread => ActionKind::CreateTask {
            title: Text::literal(message.subject.clone()),
            description: Text::literal(message.body.clone()),
            status: None,
            fields: Vec::new(),
            assignee: None,
            parent: None,
        },
    };
    vec![PlannedAction {
        rule: UNMATCHED.to_string(),
        kind,
        task: TaskRef::Current,
        if_missing: IfMissing::Fail,
    }]
}
