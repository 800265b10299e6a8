//! Triggers run inside the message's savepoint, on the event's task, to a bounded depth.

use std::sync::{Arc, Mutex};

use super::*;

/// Negative feedback makes a subtask and notifies the manager; a flip-flop status trigger
/// loops. Records every event it sees.
#[derive(Debug, Default)]
struct TestTriggers {
    seen: Mutex<Vec<TaskEvent>>,
}

impl Triggers for TestTriggers {
    fn actions_for(&self, event: &TaskEvent) -> Result<Vec<PlannedAction>, String> {
        self.seen.lock().unwrap().push(event.clone());
        let value = |name: &str| {
            event
                .values
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let mut actions = Vec::new();
        let mut add = |kind| {
            actions.push(PlannedAction {
                rule: "negative-feedback".into(),
                kind,
                task: TaskRef::Current,
                if_missing: IfMissing::Fail,
            })
        };
        match event.kind {
            EventKind::Analytics if value("Оценка") == Some("плохо") => {
                add(ActionKind::CreateTask {
                    title: with_task("Негативный отзыв по задаче #", ""),
                    description: text("Оценка: плохо"),
                    status: None,
                    fields: vec![],
                    assignee: Some(text("manager@acme.example")),
                    parent: Some(with_task("", "")),
                });
                add(ActionKind::Notify {
                    to: text("manager@acme.example"),
                    subject: with_task("Негативный отзыв #", ""),
                    text: text("см. задачу"),
                });
            }
            EventKind::StatusChanged if value("status") == Some("Пинг") => {
                add(set_status("Понг"));
            }
            EventKind::StatusChanged if value("status") == Some("Понг") => {
                add(set_status("Пинг"));
            }
            _ => {}
        }
        Ok(actions)
    }
}

fn with_triggers(now: DateTime<Utc>, triggers: Arc<TestTriggers>) -> ApplyOptions {
    ApplyOptions {
        triggers: Some(triggers),
        ..options(now)
    }
}

fn rate(value: &str) -> ActionKind {
    ActionKind::Analytics {
        table: "Удовлетворенность клиентов".into(),
        values: vec![field("Оценка", value)],
    }
}

#[test]
fn a_trigger_acts_on_the_events_task_in_the_same_transaction() {
    let mut store = Store::open_in_memory().unwrap();
    let triggers = Arc::new(TestTriggers::default());
    let survey = new_task(&mut store, "s@x", "c@example.com", at(20, 10));
    let p = plan("c@example.com", Some(survey), vec![current(rate("плохо"))]);
    let result = store
        .apply_batch(
            vec![item("bad@x", p)],
            None,
            &with_triggers(at(20, 11), triggers.clone()),
        )
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(result.status, ResultStatus::Applied, "{:?}", result.error);
    assert_eq!(
        result.task,
        Some(survey),
        "the message's own task, not the trigger's"
    );

    let sub = store.task_list(None).unwrap()[0].clone();
    assert_ne!(sub.id, survey);
    let sub = store.task_show(sub.id).unwrap().unwrap();
    assert_eq!(sub.parent, Some(survey));
    assert_eq!(sub.title, format!("Негативный отзыв по задаче #{survey}"));
    let mail = store.outbox_list().unwrap();
    // After its create_task, the trigger's {task} is the new subtask.
    assert_eq!(mail[0].subject, format!("Негативный отзыв #{}", sub.id));
    assert_eq!(mail[0].task, Some(sub.id));

    let seen = triggers.seen.lock().unwrap();
    let kinds: Vec<(EventKind, u32)> = seen.iter().map(|e| (e.kind, e.depth)).collect();
    assert_eq!(
        kinds,
        [(EventKind::Analytics, 0), (EventKind::TaskCreated, 1)]
    );
    assert!(seen[1]
        .values
        .contains(&("status".to_string(), "Новая".to_string())));
}

#[test]
fn a_trigger_loop_fails_the_message_and_leaves_no_trace() {
    let mut store = Store::open_in_memory().unwrap();
    let triggers = Arc::new(TestTriggers::default());
    let task = new_task(&mut store, "t@x", "c@example.com", at(20, 10));
    let before = counts(&store);
    let p = plan(
        "c@example.com",
        Some(task),
        vec![current(set_status("Пинг"))],
    );
    let result = store
        .apply_batch(
            vec![item("loop@x", p)],
            None,
            &with_triggers(at(20, 11), triggers),
        )
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(result.status, ResultStatus::Failed);
    let error = result.error.unwrap();
    assert!(
        error.contains("loop") && error.contains("negative-feedback"),
        "{error}"
    );
    let mut after = counts(&store);
    after.retain(|(t, _)| *t != "messages");
    let mut expected = before;
    expected.retain(|(t, _)| *t != "messages");
    assert_eq!(after, expected);
    assert_eq!(store.task_status(task).unwrap().as_deref(), Some("Новая"));
}
