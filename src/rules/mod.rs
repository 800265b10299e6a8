//! The rule language v1: loading rule files, matching a message against the rules, extracting
//! values and planning the actions. Pure: the only I/O is reading the files in [`RuleSet::load_dir`].

mod condition;
mod convert;
mod error;
mod evaluate;
mod events;
mod extract;
mod glob;
mod load;
mod manual;
mod model;
mod planner;
mod prefilter;
mod template;
mod value_when;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use condition::Scan;
pub use error::{RuleError, RuleErrors};
pub use events::{render_row, EventValues};
pub use glob::Glob;
pub use manual::{ChangeRefused, ManualChange};
pub use model::{
    Action, ActionSpec, AnalyticsDecl, BodyTemplate, Condition, ExtractHow, Extractor, FieldDecl,
    FieldType, Leaf, Rule, Schedule, Source, StatusDecl, TaskSpec, Test, ThreadKind, Trigger,
    TriggerEvent, ValueCondition, ValueType, ValueWhen, When,
};
pub use template::{Part, Template};
pub use value_when::holds;

use crate::context::Envelope;
use crate::plan::{Plan, PlanError};
use condition::Facts;

/// A loaded, checked set of rules. Immutable; share it in an `Arc`.
#[derive(Debug)]
pub struct RuleSet {
    /// In the order they are tried: higher priority first, equal priority in file order.
    rules: Vec<Rule>,
    triggers: Vec<Trigger>,
    schedules: Vec<Schedule>,
    fields: Vec<FieldDecl>,
    analytics: Vec<AnalyticsDecl>,
    statuses: Vec<StatusDecl>,
    files: usize,
    prefilter: prefilter::Prefilter,
}

/// Counts for `mailrules check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RuleSummary {
    pub rules: usize,
    pub triggers: usize,
    pub schedules: usize,
    pub files: usize,
}

/// One rule tried on one message, for `explain`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleTrace {
    pub name: String,
    pub matched: bool,
    /// `"matched"`, or the first condition that failed and the value it saw.
    pub why: String,
}

/// What the rules make of one message. Serialized with `plan` on success, `error` (the plan
/// error's text) on failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Every rule tried, in order ([`RuleSet::decide`]: only the rules that matched).
    pub rules: Vec<RuleTrace>,
    /// Values of the matched rule(s): extracted values and named regex groups.
    pub extracted: BTreeMap<String, String>,
    pub plan: Result<Plan, PlanError>,
}

impl serde::Serialize for Evaluation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("Evaluation", 3)?;
        out.serialize_field("rules", &self.rules)?;
        out.serialize_field("extracted", &self.extracted)?;
        match &self.plan {
            Ok(plan) => out.serialize_field("plan", plan)?,
            Err(e) => out.serialize_field("error", &e.to_string())?,
        }
        out.end()
    }
}

impl RuleSet {
    /// Loads every `*.toml` file of `dir`, in byte order of the file name.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, RuleErrors> {
        // No line and column: nothing was read to point into.
        let io_error = |path: &Path, e: std::io::Error| RuleError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            kind: "",
            rule: None,
            message: match e.kind() {
                std::io::ErrorKind::NotFound if path == dir => {
                    "the rules folder does not exist (`rules` in the configuration names it)"
                        .to_string()
                }
                _ => format!("cannot read: {e}"),
            },
        };
        let entries = std::fs::read_dir(dir).map_err(|e| RuleErrors(vec![io_error(dir, e)]))?;
        let mut unreadable = Vec::new();
        let mut paths: Vec<PathBuf> = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => {
                    let path = entry.path();
                    if path.extension().is_some_and(|x| x == "toml") && path.is_file() {
                        paths.push(path);
                    }
                }
                Err(e) => unreadable.push(io_error(dir, e)),
            }
        }
        paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        let mut files = Vec::new();
        for path in paths {
            match std::fs::read_to_string(&path) {
                Ok(text) => files.push((path, text)),
                Err(e) => unreadable.push(io_error(&path, e)),
            }
        }
        // Report unreadable files together with the errors of the readable ones.
        match (RuleSet::from_sources(&files), unreadable.is_empty()) {
            (Ok(set), true) => Ok(set),
            (Ok(_), false) => Err(RuleErrors(unreadable)),
            (Err(RuleErrors(errors)), _) => {
                unreadable.extend(errors);
                Err(RuleErrors(unreadable))
            }
        }
    }

    /// Loads rule files given as (path, text), in the order given.
    pub fn from_sources(files: &[(PathBuf, String)]) -> Result<RuleSet, RuleErrors> {
        let loaded = load::load(files)?;
        let mut rules = loaded.rules;
        // Stable: equal priority keeps file order.
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
        let prefilter = prefilter::Prefilter::build(&mut rules);
        Ok(RuleSet {
            rules,
            triggers: loaded.triggers,
            schedules: loaded.schedules,
            fields: loaded.fields,
            analytics: loaded.analytics,
            statuses: loaded.statuses,
            files: files.len(),
            prefilter,
        })
    }

    /// Every `action = "webhook"` whose `to` names no endpoint of `known` (the configuration's
    /// `[[webhook]]` names), at the position of its `to`, with "did you mean".
    pub fn check_webhooks(&self, known: &[&str]) -> Vec<RuleError> {
        let actions = self
            .rules
            .iter()
            .flat_map(|r| &r.actions)
            .chain(self.triggers.iter().flat_map(|t| &t.actions))
            .chain(self.schedules.iter().flat_map(|s| &s.actions));
        let mut errors: Vec<RuleError> = Vec::new();
        for action in actions {
            let ActionSpec::Webhook { to, to_at, .. } = &action.kind else {
                continue;
            };
            if known.contains(&to.as_str()) {
                continue;
            }
            let message = if known.is_empty() {
                format!(
                    "no webhook \"{to}\": the configuration has no [[webhook]] (add one, see \
                     config.example.toml)"
                )
            } else {
                error::unknown_word("webhook", to, known)
            };
            let error = RuleError {
                message,
                ..to_at.clone()
            };
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
        // File order, as the loader reports.
        errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        errors
    }

    pub fn summary(&self) -> RuleSummary {
        RuleSummary {
            rules: self.rules.len(),
            triggers: self.triggers.len(),
            schedules: self.schedules.len(),
            files: self.files,
        }
    }

    /// The rules in the order they are tried.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
    pub fn triggers(&self) -> &[Trigger] {
        &self.triggers
    }
    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }
    pub fn fields(&self) -> &[FieldDecl] {
        &self.fields
    }
    /// The declared statuses, in declaration order (none: any status text goes).
    pub fn statuses(&self) -> &[StatusDecl] {
        &self.statuses
    }

    /// The status a task created without one gets: the declared `initial` one, else none
    /// (the store's default).
    pub fn initial_status(&self) -> Option<&str> {
        self.statuses
            .iter()
            .find(|s| s.initial)
            .map(|s| s.name.as_str())
    }

    /// The declared status `name` names, compared without case: its declared spelling.
    /// `Ok(name)` as given when no status is declared; `Err` with the nearest one when it
    /// is not declared.
    pub fn status_named<'a>(&'a self, name: &'a str) -> Result<&'a str, Option<&'a str>> {
        if self.statuses.is_empty() {
            return Ok(name);
        }
        let wanted = name.trim().to_lowercase();
        self.statuses
            .iter()
            .find(|s| s.name.to_lowercase() == wanted)
            .map(|s| s.name.as_str())
            .ok_or_else(|| {
                let names: Vec<&str> = self.statuses.iter().map(|s| s.name.as_str()).collect();
                error::nearest(name, &names)
            })
    }

    pub fn analytics_tables(&self) -> &[AnalyticsDecl] {
        &self.analytics
    }

    /// Pure: which rules match, what they extract, and the plan; every rule tried is traced
    /// with why it did or did not match (for `explain`).
    pub fn evaluate(&self, env: &Envelope, unmatched: crate::config::Unmatched) -> Evaluation {
        evaluate::evaluate(self, env, unmatched, evaluate::Mode::Prefiltered, true)
    }

    /// The same plan and extracted values as [`RuleSet::evaluate`], but `rules` lists only the
    /// rules that matched: no words are spent on the rules that did not. For the daemon, where
    /// a thousand rules must cost little more than ten.
    pub fn decide(&self, env: &Envelope, unmatched: crate::config::Unmatched) -> Evaluation {
        evaluate::evaluate(self, env, unmatched, evaluate::Mode::Prefiltered, false)
    }

    /// [`RuleSet::decide`] and the prefilter's answers at once, for a message on the thread
    /// that parses, before its thread is known: `env` says it threads nowhere. The decision
    /// holds when the store then finds no thread either (the rules see exactly this `env`);
    /// otherwise [`RuleSet::decide_scanned`] decides again from the scan.
    pub fn decide_unthreaded(
        &self,
        env: &Envelope,
        unmatched: crate::config::Unmatched,
    ) -> (Scan, Evaluation) {
        let mut facts = Facts::new(env, false);
        facts.hits = Some(self.prefilter.hits(&facts));
        let evaluation = evaluate::evaluate_facts(self, &facts, unmatched);
        (facts.into_scan(), evaluation)
    }

    /// [`RuleSet::decide`] for a message this rule set scanned, with the same message and
    /// sender in `env`.
    pub fn decide_scanned(
        &self,
        env: &Envelope,
        unmatched: crate::config::Unmatched,
        scan: Scan,
    ) -> Evaluation {
        evaluate::evaluate_facts(self, &Facts::resume(env, false, scan), unmatched)
    }
}
