//! Triggers: the rule set answering the store's [`Triggers`] hook.

use std::sync::Arc;

use crate::plan::PlannedAction;
use crate::rules::{render_row, EventValues, RuleSet, TriggerEvent};
use crate::store::{EventKind, TaskEvent, Triggers};

/// The triggers of a rule set, as the store calls them.
#[derive(Debug)]
pub struct RuleTriggers {
    rules: Arc<RuleSet>,
}

impl RuleTriggers {
    /// The hook for `rules`, or None when they have no triggers (the store then builds no
    /// events at all).
    pub fn for_rules(rules: &Arc<RuleSet>) -> Option<Arc<dyn Triggers>> {
        if rules.triggers().is_empty() {
            return None;
        }
        Some(Arc::new(RuleTriggers {
            rules: rules.clone(),
        }))
    }
}

fn trigger_event(kind: EventKind) -> TriggerEvent {
    match kind {
        EventKind::Analytics => TriggerEvent::Analytics,
        EventKind::TaskCreated => TriggerEvent::TaskCreated,
        EventKind::CommentAdded => TriggerEvent::CommentAdded,
        EventKind::StatusChanged => TriggerEvent::StatusChanged,
        EventKind::FieldChanged => TriggerEvent::FieldChanged,
    }
}

impl Triggers for RuleTriggers {
    fn actions_for(&self, event: &TaskEvent) -> Result<Vec<PlannedAction>, String> {
        let table = match event.kind {
            EventKind::Analytics => event.name.as_deref(),
            _ => None,
        };
        self.rules
            .trigger_actions(
                trigger_event(event.kind),
                table,
                event.task,
                &event_values(event),
            )
            .map_err(|e| format!("trigger \"{}\": {}", e.rule, e.message))
    }

    fn wants(&self, kind: EventKind) -> bool {
        self.rules.listens_to(trigger_event(kind))
    }
}

/// What a trigger's conditions and templates see of an event.
///
/// Conditions: an analytics row's columns; for other events the task's fields and `status`,
/// and for changes `old` and `new` (absent when empty), plus `old_status` on
/// `status_changed` and `field` (the field's name) on `field_changed`. Templates see all of
/// that and the task's `title`, `assignee`, `requester`, fields, and `{row}`.
pub fn event_values(event: &TaskEvent) -> EventValues {
    let mut changes: Vec<(&str, String)> = Vec::new();
    let old = event.old.clone().unwrap_or_default();
    match event.kind {
        EventKind::StatusChanged => {
            changes.push(("old_status", old.clone()));
            changes.push(("old", old));
            changes.push(("new", event.state.status.clone()));
        }
        EventKind::FieldChanged => {
            let name = event.name.clone().unwrap_or_default();
            let new = event
                .state
                .fields
                .iter()
                .find(|(f, _)| *f == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            changes.push(("field", name));
            changes.push(("old", old));
            changes.push(("new", new));
        }
        _ => {}
    }
    let changes = changes.into_iter().filter(|(_, v)| !v.is_empty());
    let mut values = EventValues::default();
    values.conditions.extend(event.values.iter().cloned());
    if event.kind != EventKind::Analytics {
        values
            .conditions
            .extend(changes.clone().map(|(k, v)| (k.to_string(), v)));
    }
    let state = &event.state;
    values.vars.extend(state.values());
    values.vars.insert("title".into(), state.title.clone());
    if let Some(a) = &state.assignee {
        values.vars.insert("assignee".into(), a.clone());
    }
    if let Some(r) = &state.requester {
        values.vars.insert("requester".into(), r.clone());
    }
    if event.kind == EventKind::Analytics {
        values.vars.extend(event.values.iter().cloned());
        values.vars.insert("row".into(), render_row(&event.values));
    }
    values.vars.extend(changes.map(|(k, v)| (k.to_string(), v)));
    // `{task}` stays open for the store: after a create_task it is the new task.
    values.vars.remove("task");
    values
}
