//! Planning the actions of triggers and schedules: which triggers fire on an event, and
//! their actions (or a schedule's) rendered over the event's values. Pure, like the rest.

use std::collections::BTreeMap;

use super::model::{Schedule, TriggerEvent};
use super::planner::{Context, Planner};
use super::value_when::holds;
use super::RuleSet;
use crate::plan::{PlanError, PlannedAction};

/// What one event (or one task a schedule looks at) offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventValues {
    /// What `when` tests: an analytics row's columns, or the task's fields and `status`
    /// (with `old`/`new`, `field`, `old_status` for changes).
    pub conditions: BTreeMap<String, String>,
    /// What templates may use: everything above plus `{title}`, `{row}`, `{assignee}`, …
    /// Never `task`: `{task}` stays open for the store.
    pub vars: BTreeMap<String, String>,
}

impl RuleSet {
    /// Whether any trigger listens to `on`.
    pub fn listens_to(&self, on: TriggerEvent) -> bool {
        self.triggers().iter().any(|t| t.on == on)
    }

    /// The actions of every trigger on `on` (for analytics: on `table`) whose `when` holds,
    /// in file order, acting on `task`.
    pub fn trigger_actions(
        &self,
        on: TriggerEvent,
        table: Option<&str>,
        task: i64,
        values: &EventValues,
    ) -> Result<Vec<PlannedAction>, PlanError> {
        let mut out = Vec::new();
        for trigger in self.triggers() {
            let table_ok = match (&trigger.table, table) {
                (None, _) => true,
                (Some(wanted), Some(table)) => wanted == table,
                (Some(_), None) => false,
            };
            if trigger.on != on || !table_ok || !holds(&trigger.when, &values.conditions) {
                continue;
            }
            let planner = self.event_planner(&trigger.name, task, &values.vars);
            for action in &trigger.actions {
                out.push(planner.action(action)?);
            }
        }
        Ok(out)
    }

    /// The actions of `schedule` on `task` (its conditions are checked by the caller, who
    /// knows the clock and the task's history).
    pub fn schedule_actions(
        &self,
        schedule: &Schedule,
        task: i64,
        values: &EventValues,
    ) -> Result<Vec<PlannedAction>, PlanError> {
        let planner = self.event_planner(&schedule.name, task, &values.vars);
        schedule.actions.iter().map(|a| planner.action(a)).collect()
    }

    fn event_planner<'a>(
        &'a self,
        name: &'a str,
        task: i64,
        vars: &'a BTreeMap<String, String>,
    ) -> Planner<'a> {
        Planner {
            context: Context::Event { task },
            rule: name,
            vars,
            fields: self.fields(),
            tables: self.analytics_tables(),
        }
    }
}

/// `{row}`: an analytics row as `column: value` lines, in the row's order.
pub fn render_row(row: &[(String, String)]) -> String {
    row.iter()
        .map(|(column, value)| format!("{column}: {value}"))
        .collect::<Vec<_>>()
        .join("\n")
}
