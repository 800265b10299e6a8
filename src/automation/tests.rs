//! Triggers and schedules from rule files, applied through the store: conditions on rows and
//! on old/new values, the depth limit and loops, and schedules on a controlled clock.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::context::{SenderKind, ThreadMatch};
use crate::message::Address;
use crate::plan::{ActionKind, FieldValue, IfMissing, Plan, PlannedAction, TaskRef, Text};
use crate::rules::RuleSet;
use crate::store::{
    ApplyItem, ApplyOptions, ApplyResult, FiringOutcome, MessageRecord, ResultStatus, Store,
    TaskDirectory,
};

fn rules(toml: &str) -> Arc<RuleSet> {
    let set = RuleSet::from_sources(&[(PathBuf::from("test.toml"), toml.to_string())]);
    Arc::new(set.unwrap_or_else(|e| panic!("{e}")))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
}

fn hours(h: i64) -> DateTime<Utc> {
    t0() + Duration::hours(h)
}

fn options(rules: &Arc<RuleSet>, now: DateTime<Utc>) -> ApplyOptions {
    ApplyOptions {
        now: Some(now),
        triggers: RuleTriggers::for_rules(rules),
        ..ApplyOptions::default()
    }
}

fn text(s: &str) -> Text {
    Text::literal(s)
}

fn on_task(kind: ActionKind) -> PlannedAction {
    PlannedAction {
        rule: "mail".into(),
        kind,
        task: TaskRef::Current,
        if_missing: IfMissing::Fail,
    }
}

fn create(title: &str) -> PlannedAction {
    on_task(ActionKind::CreateTask {
        title: text(title),
        description: text(""),
        status: None,
        fields: vec![],
        assignee: None,
        parent: None,
    })
}

fn set_status(status: &str) -> PlannedAction {
    on_task(ActionKind::Set {
        status: Some(text(status)),
        fields: vec![],
    })
}

fn set_field(name: &str, value: &str) -> PlannedAction {
    on_task(ActionKind::Set {
        status: None,
        fields: vec![FieldValue {
            name: name.into(),
            value: text(value),
        }],
    })
}

fn row(table: &str, values: &[(&str, &str)]) -> PlannedAction {
    on_task(ActionKind::Analytics {
        table: table.into(),
        values: values
            .iter()
            .map(|(k, v)| FieldValue {
                name: k.to_string(),
                value: text(v),
            })
            .collect(),
    })
}

/// Applies one message's actions on `task` (None: a new thread) at `now`.
fn apply(
    store: &mut Store,
    rules: &Arc<RuleSet>,
    now: DateTime<Utc>,
    task: Option<i64>,
    actions: Vec<PlannedAction>,
) -> ApplyResult {
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEY: AtomicU64 = AtomicU64::new(0);
    let key = format!("m{}@test", KEY.fetch_add(1, Ordering::Relaxed));
    let plan = Plan {
        rule: Some("mail".into()),
        sender: Address::new(None, "client@example.com"),
        sender_kind: SenderKind::Contact,
        thread: ThreadMatch { task, via: None },
        actions,
    };
    let item = ApplyItem {
        record: MessageRecord {
            key: key.clone(),
            message_id: Some(key),
            mailbox: "test".into(),
            source: "test".into(),
            ..MessageRecord::default()
        },
        plan: Ok(plan),
    };
    store
        .apply_batch(vec![item], None, &options(rules, now))
        .unwrap()
        .pop()
        .unwrap()
}

fn new_task(store: &mut Store, rules: &Arc<RuleSet>, now: DateTime<Utc>) -> i64 {
    let result = apply(store, rules, now, None, vec![create("Сделка")]);
    assert_eq!(result.status, ResultStatus::Applied, "{:?}", result.error);
    result.task.unwrap()
}

fn comments(store: &Store, task: i64) -> Vec<String> {
    let view = store.task_show(task).unwrap().unwrap();
    view.comments.into_iter().map(|c| c.text).collect()
}

#[test]
fn a_row_trigger_fires_when_any_column_is_negative() {
    let rules = rules(
        r#"
[[analytics]]
name = "Оценки"
columns = { "Скорость" = "text", "Оценка" = "text" }

[[trigger]]
name = "bad"
on = "analytics"
table = "Оценки"
[trigger.when]
any = [ { "Скорость" = "медленно" }, { "Оценка" = { any = ["плохо", "очень плохо"] } } ]
[[trigger.do]]
action = "comment"
text = "{rule}: {row}"
"#,
    );
    // (speed, rating, fires)
    let cases = [
        ("медленно", "отлично", true),
        ("тут же", "плохо", true),
        ("Тут же", "Очень плохо", true),
        ("медленно", "очень плохо", true),
        ("быстро", "хорошо", false),
        ("нормально", "плоховато", false),
    ];
    for (speed, rating, fires) in cases {
        let mut store = Store::open_in_memory().unwrap();
        let task = new_task(&mut store, &rules, t0());
        let values = [("Скорость", speed), ("Оценка", rating)];
        let result = apply(
            &mut store,
            &rules,
            t0(),
            Some(task),
            vec![row("Оценки", &values)],
        );
        assert_eq!(result.status, ResultStatus::Applied, "{:?}", result.error);
        let expected = if fires {
            vec![format!("bad: Скорость: {speed}\nОценка: {rating}")]
        } else {
            vec![]
        };
        assert_eq!(comments(&store, task), expected, "{speed} / {rating}");
    }
}

#[test]
fn change_triggers_see_the_old_and_the_new_value() {
    let rules = rules(
        r#"
[[trigger]]
name = "reopened"
on = "status_changed"
[trigger.when]
old_status = "Завершенная"
new = "Нужно ответить клиенту"
[[trigger.do]]
action = "comment"
text = "Открыта снова: {old} → {status}"

[[trigger]]
name = "amount-changed"
on = "field_changed"
[trigger.when]
field = "Сумма"
old = { exists = true }
new = { exists = true }
[[trigger.do]]
action = "set"
fields = { "Прошлая сумма" = "{old}" }

[[trigger]]
name = "plan-cleared"
on = "field_changed"
[trigger.when]
field = "План"
new = { exists = false }
[[trigger.do]]
action = "comment"
text = "План снят (был: {old})"
"#,
    );
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, &rules, t0());
    // (action, the comments after it, "Прошлая сумма" after it)
    let steps: Vec<(PlannedAction, Vec<&str>, Option<&str>)> = vec![
        (set_status("Нужно ответить клиенту"), vec![], None),
        (set_status("Завершенная"), vec![], None),
        (
            set_status("Нужно ответить клиенту"),
            vec!["Открыта снова: Завершенная → Нужно ответить клиенту"],
            None,
        ),
        (set_field("Сумма", "100"), vec![], None),
        (set_field("Сумма", "150"), vec![], Some("100")),
        (set_field("Сумма", "150"), vec![], Some("100")),
        (set_field("Сумма", ""), vec![], Some("100")),
        (set_field("План", "Позвонить"), vec![], Some("100")),
        (
            set_field("План", ""),
            vec!["План снят (был: Позвонить)"],
            Some("100"),
        ),
    ];
    let mut seen: Vec<String> = Vec::new();
    for (i, (action, added, amount)) in steps.into_iter().enumerate() {
        let result = apply(&mut store, &rules, t0(), Some(task), vec![action]);
        assert_eq!(
            result.status,
            ResultStatus::Applied,
            "step {i}: {:?}",
            result.error
        );
        seen.extend(added.iter().map(|s| s.to_string()));
        assert_eq!(comments(&store, task), seen, "step {i}");
        let fields = store.task_show(task).unwrap().unwrap().fields;
        assert_eq!(
            fields.get("Прошлая сумма").map(String::as_str),
            amount,
            "step {i}"
        );
    }
}

/// `n` triggers, each moving the status one step on: S0 → S1 → … → Sn.
fn chain(n: usize) -> Arc<RuleSet> {
    let mut toml = String::new();
    for i in 0..n {
        toml.push_str(&format!(
            "[[trigger]]\nname = \"step-{i}\"\non = \"status_changed\"\n[trigger.when]\n\
             status = \"S{i}\"\n[[trigger.do]]\naction = \"set\"\nstatus = \"S{}\"\n\n",
            i + 1
        ));
    }
    rules(&toml)
}

#[test]
fn triggers_may_chain_up_to_the_depth_limit() {
    let depth = crate::store::MAX_TRIGGER_DEPTH as usize;
    let rules = chain(depth);
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, &rules, t0());
    let result = apply(&mut store, &rules, t0(), Some(task), vec![set_status("S0")]);
    assert_eq!(result.status, ResultStatus::Applied, "{:?}", result.error);
    assert_eq!(store.task_status(task).unwrap(), Some(format!("S{depth}")));

    let rules = chain(depth + 1);
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, &rules, t0());
    let result = apply(&mut store, &rules, t0(), Some(task), vec![set_status("S0")]);
    assert_eq!(result.status, ResultStatus::Failed);
    let error = result.error.unwrap();
    assert!(error.contains("nested too deep"), "{error}");
    assert!(error.contains("\"step-0\" → \"step-1\""), "{error}");
    assert_eq!(store.task_status(task).unwrap().as_deref(), Some("Новая"));
}

#[test]
fn a_trigger_cycle_fails_the_message_naming_the_triggers_and_applies_nothing() {
    let rules = rules(
        r#"
[[trigger]]
name = "ping"
on = "status_changed"
[trigger.when]
status = "Пинг"
[[trigger.do]]
action = "comment"
text = "пинг"
[[trigger.do]]
action = "set"
status = "Понг"

[[trigger]]
name = "pong"
on = "status_changed"
[trigger.when]
status = "Понг"
[[trigger.do]]
action = "set"
status = "Пинг"
"#,
    );
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, &rules, t0());
    let result = apply(
        &mut store,
        &rules,
        t0(),
        Some(task),
        vec![set_field("Метка", "1"), set_status("Пинг")],
    );
    assert_eq!(result.status, ResultStatus::Failed);
    let error = result.error.unwrap();
    assert!(error.starts_with("trigger loop: "), "{error}");
    assert!(error.contains("\"pong\" → \"ping\""), "{error}");
    assert_eq!(store.task_status(task).unwrap().as_deref(), Some("Новая"));
    assert!(comments(&store, task).is_empty());
    assert!(store.task_show(task).unwrap().unwrap().fields.is_empty());
    assert_eq!(store.failed_messages().unwrap().len(), 1);
}

#[test]
fn a_trigger_that_cannot_plan_fails_the_message_with_its_name() {
    let rules = rules(
        r#"
[[field]]
name = "Дата"
type = "date"
[[trigger]]
name = "bad-date"
on = "comment_added"
[[trigger.do]]
action = "set"
fields = { "Дата" = "{title}" }
"#,
    );
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, &rules, t0());
    let comment = on_task(ActionKind::Comment {
        text: text("привет"),
        auto: false,
    });
    let result = apply(&mut store, &rules, t0(), Some(task), vec![comment]);
    assert_eq!(result.status, ResultStatus::Failed);
    let error = result.error.unwrap();
    assert!(
        error.starts_with("trigger \"bad-date\": field \"Дата\""),
        "{error}"
    );
}

const WAITING: &str = r#"
[[schedule]]
name = "waiting"
every = "1h"
[schedule.when]
status = "Ждём"
in_status_for = "2h"
[[schedule.do]]
action = "comment"
text = "ждёт с {status}"
[[schedule.do]]
action = "notify"
to = "lead@acme.example"
subject = "Задача #{task} ждёт"
"#;

fn fired(firings: &[ScheduleFiring]) -> Vec<(String, i64)> {
    firings
        .iter()
        .filter(|f| f.outcome == FiringOutcome::Applied)
        .map(|f| (f.schedule.clone(), f.task))
        .collect()
}

fn run(
    store: &mut Store,
    rules: &Arc<RuleSet>,
    now: DateTime<Utc>,
    which: Which,
) -> Vec<ScheduleFiring> {
    run_with(store, rules, &options(rules, now), now, which).unwrap()
}

#[test]
fn a_schedule_acts_once_per_entry_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let rules = rules(WAITING);
    let mut store = Store::open(&path).unwrap();
    let task = new_task(&mut store, &rules, t0());
    apply(
        &mut store,
        &rules,
        t0(),
        Some(task),
        vec![set_status("Ждём")],
    );

    assert!(run(&mut store, &rules, hours(1), Which::All).is_empty());
    let first = run(&mut store, &rules, hours(3), Which::All);
    assert_eq!(fired(&first), [("waiting".to_string(), task)]);
    assert_eq!(first[0].summary, "comment; notify lead@acme.example");
    assert_eq!(comments(&store, task), ["ждёт с Ждём"]);

    drop(store);
    let mut store = Store::open(&path).unwrap();
    assert!(run(&mut store, &rules, hours(4), Which::All).is_empty());
    assert_eq!(store.outbox_list().unwrap().len(), 1);

    // Leaving the state and entering it again is a new entry.
    apply(
        &mut store,
        &rules,
        hours(5),
        Some(task),
        vec![set_status("В работе")],
    );
    apply(
        &mut store,
        &rules,
        hours(5),
        Some(task),
        vec![set_status("Ждём")],
    );
    assert!(run(&mut store, &rules, hours(6), Which::All).is_empty());
    let again = run(&mut store, &rules, hours(8), Which::All);
    assert_eq!(fired(&again), [("waiting".to_string(), task)]);
    assert_eq!(store.outbox_list().unwrap().len(), 2);
    let comment = &store.task_show(task).unwrap().unwrap().comments[1];
    assert!(comment.auto, "a schedule's comment is automatic");
    assert_eq!(comment.author, None);
}

#[test]
fn due_schedules_run_every_so_often_and_say_what_they_did() {
    let rules = rules(WAITING);
    let mut store = Store::open_in_memory().unwrap();
    let a = new_task(&mut store, &rules, t0());
    apply(&mut store, &rules, t0(), Some(a), vec![set_status("Ждём")]);
    assert!(run(&mut store, &rules, hours(1), Which::Due).is_empty());
    // Ran at 1h: not due again before 2h, even though task a is now old enough.
    assert!(run(
        &mut store,
        &rules,
        hours(1) + Duration::minutes(59),
        Which::Due
    )
    .is_empty());
    assert_eq!(
        fired(&run(&mut store, &rules, hours(2), Which::Due)).len(),
        1
    );

    let statuses = store.schedule_statuses().unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].last_run_at, "2026-11-23T11:00:00Z");
    assert_eq!((statuses[0].last_fired, statuses[0].fired_total), (1, 1));
    let runs = store.schedule_runs("waiting", 10).unwrap();
    assert_eq!(runs[0].task, a);
    assert_eq!(runs[0].status, "applied");
}

#[test]
fn a_failed_firing_applies_nothing_and_is_tried_again() {
    let rules = rules(
        r#"
[[schedule]]
name = "remind-assignee"
every = "1h"
[schedule.when]
status = "Новая"
[[schedule.do]]
action = "comment"
text = "напоминание"
[[schedule.do]]
action = "notify"
to = "{assignee}"
subject = "Задача #{task}"
"#,
    );
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, &rules, t0());
    for attempt in 1..=2 {
        let firings = run(&mut store, &rules, hours(attempt), Which::All);
        assert_eq!(firings.len(), 1);
        match &firings[0].outcome {
            FiringOutcome::Failed(e) => assert!(e.contains("no recipient"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(comments(&store, task).is_empty());
        let runs = store.schedule_runs("remind-assignee", 10).unwrap();
        assert_eq!(
            (runs[0].status.as_str(), runs[0].attempts),
            ("failed", attempt)
        );
    }
    assert!(
        store.failed_messages().unwrap().is_empty(),
        "firings are not messages"
    );
}

#[test]
fn field_older_than_counts_from_when_the_field_got_its_value() {
    let rules = rules(
        r#"
[[schedule]]
name = "no-plan"
every = "15m"
[schedule.when]
"План" = { exists = false }
field_older_than = { "План" = "1d" }
[[schedule.do]]
action = "comment"
text = "нет плана"
"#,
    );
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, &rules, t0());
    apply(
        &mut store,
        &rules,
        t0(),
        Some(task),
        vec![set_field("План", "Позвонить")],
    );
    apply(
        &mut store,
        &rules,
        hours(10),
        Some(task),
        vec![set_field("План", "")],
    );
    // Empty since 10h (not since the task was created).
    assert!(run(&mut store, &rules, hours(33), Which::All).is_empty());
    assert_eq!(
        fired(&run(&mut store, &rules, hours(35), Which::All)).len(),
        1
    );
    assert!(run(&mut store, &rules, hours(60), Which::All).is_empty());
    // Planned and cleared again: a new entry, a day later a new reminder.
    apply(
        &mut store,
        &rules,
        hours(61),
        Some(task),
        vec![set_field("План", "Встреча")],
    );
    assert!(run(&mut store, &rules, hours(70), Which::All).is_empty());
    apply(
        &mut store,
        &rules,
        hours(70),
        Some(task),
        vec![set_field("План", "")],
    );
    assert!(run(&mut store, &rules, hours(93), Which::All).is_empty());
    assert_eq!(
        fired(&run(&mut store, &rules, hours(94), Which::All)).len(),
        1
    );
    assert_eq!(comments(&store, task), ["нет плана", "нет плана"]);
}

#[tokio::test]
async fn the_runner_runs_at_once_and_stops_on_shutdown() {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let runner = tokio::spawn(run_schedules(
        std::time::Duration::from_secs(3600),
        move |_now| {
            let calls = counted.clone();
            async move {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(Vec::new())
            }
        },
        async move {
            let mut shutdown = shutdown;
            let _ = shutdown.wait_for(|stop| *stop).await;
        },
    ));
    while calls.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    stop.send_replace(true);
    runner.await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn a_triggers_comment_is_automatic_and_not_the_senders() {
    let rules = rules(
        r#"
[[trigger]]
name = "welcome"
on = "task_created"
[[trigger.do]]
action = "comment"
text = "Задача «{title}» создана"
"#,
    );
    let mut store = Store::open_in_memory().unwrap();
    let task = new_task(&mut store, &rules, t0());
    let view = store.task_show(task).unwrap().unwrap();
    assert_eq!(view.comments.len(), 1);
    let comment = &view.comments[0];
    assert_eq!(comment.text, "Задача «Сделка» создана");
    assert!(comment.auto);
    assert_eq!(
        (comment.author.as_deref(), comment.author_name.as_deref()),
        (None, None)
    );
}
