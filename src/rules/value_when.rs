//! The `when` of triggers and schedules over named values (an analytics row, or a task's
//! fields and `status`): a pure function, shared by whatever runs triggers and schedules.

use std::collections::BTreeMap;

use super::condition::{run, Vars};
use super::model::{Test, ValueCondition, ValueWhen};

/// Whether every condition holds for `values`. A missing value fails every test except
/// `{ exists = false }`.
pub fn holds(when: &ValueWhen, values: &BTreeMap<String, String>) -> bool {
    when.conditions.iter().all(|c| match c {
        ValueCondition::Value { name, test } => match (values.get(name), test) {
            (None, Test::Exists(want)) => !*want,
            (None, _) => false,
            (Some(value), test) => run(test, value, None, None, &mut Vars::new()),
        },
        ValueCondition::Any(branches) => branches.iter().any(|b| holds(b, values)),
        ValueCondition::All(branches) => branches.iter().all(|b| holds(b, values)),
        ValueCondition::Not(inner) => !holds(inner, values),
    })
}
