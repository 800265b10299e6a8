//! The outbox worker on the real store against a real SMTP server: replies queued by
//! `apply_batch` are delivered once, retried while the server is down or greylisting, failed
//! with the server's answer after their attempts, and suppressed ones are never sent.

use crate::support::smtp as smtp_support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mailrules::autoreply::suppression_reason;
use mailrules::config::{Limits, TlsMode};
use mailrules::context::{SenderKind, ThreadMatch};
use mailrules::message::{Address, Message};
use mailrules::outbox::{run_outbox, send_due, send_due_once};
use mailrules::plan::{ActionKind, IfMissing, Piece, Plan, PlannedAction, TaskRef, Text};
use mailrules::smtp::Mailer;
use mailrules::store::{ApplyItem, ApplyOptions, MessageRecord, OutboxRow, ResultStatus, Store};
use smtp_support::{free_port, smtp_config, ServerOptions, SmtpServer};

const OUR_ADDRESS: &str = "support@acme.example";

fn options(limits: Limits) -> ApplyOptions {
    ApplyOptions {
        outgoing_domain: "acme.example".into(),
        reply_from: vec![OUR_ADDRESS.into()],
        limits,
        ..ApplyOptions::default()
    }
}

/// An incoming message as the pipeline would hand it over.
struct Incoming {
    key: String,
    message_id: String,
    from: String,
    subject: String,
    /// The loop guard's verdict for the reply (what the planner puts into the plan).
    suppressed: Option<String>,
    /// Task the message threads to (`None`: a new task is made).
    thread_task: Option<i64>,
}

impl Incoming {
    fn new(n: u32, from: &str, subject: &str) -> Incoming {
        Incoming {
            key: format!("m{n}@mail.client.example"),
            message_id: format!("m{n}@mail.client.example"),
            from: from.into(),
            subject: subject.into(),
            suppressed: None,
            thread_task: None,
        }
    }
}

fn action(kind: ActionKind, if_missing: IfMissing) -> PlannedAction {
    PlannedAction {
        rule: "helpdesk".into(),
        kind,
        task: TaskRef::Current,
        if_missing,
    }
}

/// Applies "new request → task + automatic reply" for `msg`, like the shipped helpdesk rules.
fn apply_request(store: &mut Store, msg: &Incoming, opts: &ApplyOptions) -> Option<i64> {
    let reply = ActionKind::Reply {
        subject: Text::literal(format!("Re: {}", msg.subject)),
        text: Text(vec![
            Piece::Literal("Здравствуйте!\nВаша заявка принята, номер ".into()),
            Piece::Task,
            Piece::Literal(".".into()),
        ]),
        suppressed: msg.suppressed.clone(),
    };
    let mut actions = Vec::new();
    if msg.thread_task.is_none() {
        actions.push(action(
            ActionKind::CreateTask {
                title: Text::literal(msg.subject.clone()),
                description: Text::literal("Не печатает принтер в бухгалтерии."),
                status: None,
                fields: vec![],
                assignee: None,
                parent: None,
            },
            IfMissing::Create,
        ));
    }
    actions.push(action(reply, IfMissing::Fail));
    let plan = Plan {
        rule: Some("helpdesk".into()),
        sender: Address::new(Some("Иван Петров"), &msg.from),
        sender_kind: SenderKind::Contact,
        thread: ThreadMatch {
            task: msg.thread_task,
            via: None,
        },
        actions,
    };
    let record = MessageRecord {
        key: msg.key.clone(),
        message_id: Some(msg.message_id.clone()),
        mailbox: "support".into(),
        source: "test".into(),
        subject: msg.subject.clone(),
        from: Some(msg.from.clone()),
        from_name: Some("Иван Петров".into()),
        date: Some(Utc::now()),
        ..MessageRecord::default()
    };
    let results = store
        .apply_batch(
            vec![ApplyItem {
                record,
                plan: Ok(plan),
            }],
            None,
            opts,
        )
        .unwrap();
    assert_eq!(results[0].status, ResultStatus::Applied, "{results:?}");
    results[0].task
}

fn only_row(store: &Store) -> OutboxRow {
    let rows = store.outbox_list().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.into_iter().next().unwrap()
}

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default().parse(raw).unwrap()
}

#[tokio::test]
async fn a_queued_reply_is_delivered_once_and_threads_to_its_task() {
    let server = SmtpServer::start();
    let mut store = Store::open_in_memory().unwrap();
    let incoming = Incoming::new(1, "ivan@client.example", "Не работает принтер");
    let task = apply_request(&mut store, &incoming, &options(Limits::default())).unwrap();

    let report = send_due_once(&mut store, &server.config(TlsMode::None))
        .await
        .unwrap();
    assert_eq!((report.sent, report.retrying, report.failed), (1, 0, 0));
    let row = only_row(&store);
    assert_eq!(row.status, "sent");
    assert!(row.sent_at.is_some());

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let mail = parse(&messages[0]);
    assert_eq!(
        mail.subject(),
        Some(format!("Re: Не работает принтер [#{task}]").as_str())
    );
    assert_eq!(
        mail.body_text(0).unwrap().replace("\r\n", "\n").trim_end(),
        format!("Здравствуйте!\nВаша заявка принята, номер {task}.")
    );
    assert_eq!(mail.message_id(), Some(row.our_message_id.as_str()));
    assert!(row.our_message_id.ends_with("@acme.example"));
    assert_eq!(mail.in_reply_to().as_text(), Some("m1@mail.client.example"));
    assert_eq!(
        mail.header("Auto-Submitted").and_then(|h| h.as_text()),
        Some("auto-replied")
    );
    assert_eq!(
        mail.header("X-Test-Envelope-To").and_then(|h| h.as_text()),
        Some("ivan@client.example")
    );
    // The client's answer to our reply names our Message-ID in References: it finds the task.
    use mailrules::store::TaskDirectory;
    assert_eq!(
        store
            .task_for_message_ids(&[row.our_message_id.as_str()])
            .unwrap(),
        Some(task)
    );

    let again = send_due_once(&mut store, &server.config(TlsMode::None))
        .await
        .unwrap();
    assert_eq!(again.sent, 0);
    assert_eq!(server.messages().len(), 1, "sent exactly once");
}

fn message_with(from: &str, headers: &[(&str, &str)]) -> Message {
    Message {
        from: Some(Address::new(None, from)),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        ..Message::default()
    }
}

#[tokio::test]
async fn loop_guard_cases_send_nothing_and_record_the_reason() {
    let server = SmtpServer::start();
    let mut store = Store::open_in_memory().unwrap();
    let own = vec![OUR_ADDRESS.to_string()];
    let cases = [
        message_with("ivan@client.example", &[("Auto-Submitted", "auto-replied")]),
        message_with("ivan@client.example", &[("Precedence", "bulk")]),
        message_with(
            "ivan@client.example",
            &[("List-Id", "<staff.lists.example>")],
        ),
        message_with(
            "ivan@client.example",
            &[("X-Auto-Response-Suppress", "OOF")],
        ),
        message_with("ivan@client.example", &[("Return-Path", "<>")]),
        message_with("MAILER-DAEMON@mx.client.example", &[]),
        message_with("noreply@shop.example", &[]),
        message_with(OUR_ADDRESS, &[]),
    ];
    let mut expected = Vec::new();
    for (n, msg) in cases.iter().enumerate() {
        let reason = suppression_reason(msg, &own).expect("the guard must refuse");
        let mut incoming = Incoming::new(n as u32, &msg.from.as_ref().unwrap().email, "Авто");
        incoming.suppressed = Some(reason.clone());
        apply_request(&mut store, &incoming, &options(Limits::default()));
        expected.push(reason);
    }

    let report = send_due_once(&mut store, &server.config(TlsMode::None))
        .await
        .unwrap();
    assert_eq!(report.sent, 0);
    assert!(server.messages().is_empty());
    let mut rows = store.outbox_list().unwrap();
    rows.sort_by_key(|r| r.id);
    assert_eq!(rows.len(), cases.len());
    for (row, reason) in rows.iter().zip(&expected) {
        assert_eq!(row.status, "suppressed", "{row:?}");
        assert_eq!(row.reason.as_deref(), Some(reason.as_str()));
    }
}

#[tokio::test]
async fn one_reply_per_task_and_recipient_and_a_daily_cap() {
    let server = SmtpServer::start();
    let mut store = Store::open_in_memory().unwrap();
    let opts = options(Limits {
        replies_per_recipient_per_day: 2,
        ..Limits::default()
    });
    let first = Incoming::new(1, "ivan@client.example", "Заявка");
    let task = apply_request(&mut store, &first, &opts).unwrap();
    // A second message on the same task within the period: no second reply.
    let mut follow_up = Incoming::new(2, "ivan@client.example", "Re: Заявка");
    follow_up.thread_task = Some(task);
    apply_request(&mut store, &follow_up, &opts);
    // Two more new requests: the second of them exceeds the cap of 2 a day.
    apply_request(
        &mut store,
        &Incoming::new(3, "ivan@client.example", "Ещё"),
        &opts,
    );
    apply_request(
        &mut store,
        &Incoming::new(4, "ivan@client.example", "И ещё"),
        &opts,
    );

    let report = send_due_once(&mut store, &server.config(TlsMode::None))
        .await
        .unwrap();
    assert_eq!(report.sent, 2);
    assert_eq!(server.messages().len(), 2);
    let mut rows = store.outbox_list().unwrap();
    rows.sort_by_key(|r| r.id);
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["sent", "suppressed", "sent", "suppressed"]);
    assert!(rows[1].reason.as_deref().unwrap().contains("rate limit"));
    assert!(rows[3].reason.as_deref().unwrap().contains("rate limit"));
}

#[tokio::test]
async fn mail_waits_while_the_server_is_down_and_goes_out_once_it_is_back() {
    let port = free_port();
    let cfg = smtp_config(port, TlsMode::None);
    let mut store = Store::open_in_memory().unwrap();
    apply_request(
        &mut store,
        &Incoming::new(1, "ivan@client.example", "Срочно"),
        &options(Limits::default()),
    );

    let report = send_due_once(&mut store, &cfg).await.unwrap();
    assert_eq!((report.sent, report.retrying, report.failed), (0, 1, 0));
    let row = only_row(&store);
    assert_eq!((row.status.as_str(), row.attempts), ("queued", 1));
    assert!(
        row.reason.as_deref().unwrap().contains("cannot reach"),
        "{row:?}"
    );
    // Not due again before its retry time.
    assert_eq!(send_due_once(&mut store, &cfg).await.unwrap().retrying, 0);

    let server = SmtpServer::start_with(
        ServerOptions {
            port: Some(port),
            ..ServerOptions::default()
        },
        None,
    );
    let mailer = Mailer::new(&cfg).unwrap();
    let later = Utc::now() + chrono::Duration::minutes(2);
    let report = send_due(&mut store, &mailer, cfg.max_attempts, later)
        .await
        .unwrap();
    assert_eq!(report.sent, 1);
    let again = send_due(
        &mut store,
        &mailer,
        cfg.max_attempts,
        later + chrono::Duration::hours(1),
    )
    .await
    .unwrap();
    assert_eq!(again.sent, 0);
    assert_eq!(server.messages().len(), 1, "delivered exactly once");
    assert_eq!(only_row(&store).status, "sent");
}

#[tokio::test]
async fn a_5xx_answer_fails_the_row_after_its_attempts_with_the_servers_answer() {
    let server = SmtpServer::start_with(
        ServerOptions {
            reject: Some("550 5.1.1 <ivan@client.example>: Recipient address rejected".into()),
            ..ServerOptions::default()
        },
        None,
    );
    let cfg = server.config(TlsMode::None);
    assert_eq!(cfg.max_attempts, 3);
    let mut store = Store::open_in_memory().unwrap();
    apply_request(
        &mut store,
        &Incoming::new(1, "ivan@client.example", "Вопрос"),
        &options(Limits::default()),
    );
    let mailer = Mailer::new(&cfg).unwrap();
    let mut now = Utc::now();
    for attempt in 1..=3u32 {
        let report = send_due(&mut store, &mailer, cfg.max_attempts, now)
            .await
            .unwrap();
        let row = only_row(&store);
        assert_eq!(row.attempts, attempt);
        assert_eq!(report.errors.len(), 1);
        if attempt < 3 {
            assert_eq!(row.status, "queued");
            assert!(!report.errors[0].gave_up);
        } else {
            assert_eq!(row.status, "failed");
            assert!(report.errors[0].gave_up);
            assert_eq!(
                row.reason.as_deref(),
                Some("550 5.1.1 <ivan@client.example>: Recipient address rejected")
            );
        }
        now += chrono::Duration::hours(2);
    }
    assert!(server.messages().is_empty());
    // A failed row stays failed until somebody requeues it.
    let report = send_due(&mut store, &mailer, cfg.max_attempts, now)
        .await
        .unwrap();
    assert_eq!(report, Default::default());
    assert_eq!(store.outbox_requeue(&[]).unwrap(), 1);
    assert_eq!(only_row(&store).status, "queued");
}

#[tokio::test]
async fn greylisting_is_retried_and_then_delivered() {
    let server = SmtpServer::start_with(
        ServerOptions {
            reject: Some("451 4.7.1 Greylisted, please try again later".into()),
            reject_times: Some(1),
            ..ServerOptions::default()
        },
        None,
    );
    let cfg = server.config(TlsMode::None);
    let mut store = Store::open_in_memory().unwrap();
    apply_request(
        &mut store,
        &Incoming::new(1, "ivan@client.example", "Вопрос"),
        &options(Limits::default()),
    );
    let first = send_due_once(&mut store, &cfg).await.unwrap();
    assert_eq!(first.retrying, 1);
    assert!(first.errors[0].error.starts_with("451 4.7.1 Greylisted"));
    let mailer = Mailer::new(&cfg).unwrap();
    let later = Utc::now() + chrono::Duration::minutes(5);
    let second = send_due(&mut store, &mailer, cfg.max_attempts, later)
        .await
        .unwrap();
    assert_eq!(second.sent, 1);
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn crlf_in_an_extracted_value_cannot_add_a_header_or_a_recipient() {
    let server = SmtpServer::start();
    let mut store = Store::open_in_memory().unwrap();
    // The subject comes from the client's message, e.g. through {subject} in the template.
    let hostile = "Заказ 17\r\nBcc: thief@evil.example\r\nX-Injected: yes";
    apply_request(
        &mut store,
        &Incoming::new(1, "ivan@client.example", hostile),
        &options(Limits::default()),
    );
    send_due_once(&mut store, &server.config(TlsMode::None))
        .await
        .unwrap();
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let mail = parse(&messages[0]);
    assert!(mail.header("Bcc").is_none());
    assert!(mail.header("X-Injected").is_none());
    assert_eq!(
        mail.header("X-Test-Envelope-To").and_then(|h| h.as_text()),
        Some("ivan@client.example")
    );
    assert!(mail.subject().unwrap().contains("Bcc: thief@evil.example"));
}

#[tokio::test]
async fn the_worker_sends_when_woken_and_stops_on_shutdown() {
    let server = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailrules.db");
    let mut pipeline = Store::open(&path).unwrap();
    let worker_store = Store::open(&path).unwrap();

    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run_outbox(
        worker_store,
        server.config(TlsMode::None),
        wake.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    apply_request(
        &mut pipeline,
        &Incoming::new(1, "ivan@client.example", "Не работает почта"),
        &options(Limits::default()),
    );
    wake.notify_one();
    let mut waited = Duration::ZERO;
    while server.messages().is_empty() {
        assert!(waited < Duration::from_secs(20), "the worker sent nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), worker)
        .await
        .expect("the worker did not stop")
        .unwrap()
        .unwrap();
    assert_eq!(server.messages().len(), 1);
    assert_eq!(only_row(&pipeline).status, "sent");
}

#[tokio::test]
async fn a_notification_goes_to_its_recipient_marked_auto_generated() {
    let server = SmtpServer::start();
    let mut store = Store::open_in_memory().unwrap();
    let incoming = Incoming::new(1, "ivan@client.example", "Жалоба");
    let task = apply_request(&mut store, &incoming, &options(Limits::default())).unwrap();
    let plan = Plan {
        rule: Some("escalate".into()),
        sender: Address::new(None, "ivan@client.example"),
        sender_kind: SenderKind::Contact,
        thread: ThreadMatch {
            task: Some(task),
            via: None,
        },
        actions: vec![action(
            ActionKind::Notify {
                to: Text::literal("lead@acme.example"),
                subject: Text(vec![
                    Piece::Literal("Клиент ждёт ответа по задаче #".into()),
                    Piece::Task,
                ]),
                text: Text::literal("Проверьте задачу."),
            },
            IfMissing::Fail,
        )],
    };
    let record = MessageRecord {
        key: "m2@mail.client.example".into(),
        message_id: Some("m2@mail.client.example".into()),
        mailbox: "support".into(),
        source: "test".into(),
        subject: "Re: Жалоба".into(),
        from: Some("ivan@client.example".into()),
        ..MessageRecord::default()
    };
    store
        .apply_batch(
            vec![ApplyItem {
                record,
                plan: Ok(plan),
            }],
            None,
            &options(Limits::default()),
        )
        .unwrap();

    let report = send_due_once(&mut store, &server.config(TlsMode::None))
        .await
        .unwrap();
    assert_eq!(report.sent, 2, "{report:?}");
    let notification = server
        .messages()
        .into_iter()
        .find(|raw| {
            parse(raw)
                .header("X-Test-Envelope-To")
                .and_then(|h| h.as_text())
                == Some("lead@acme.example")
        })
        .expect("the notification was not delivered");
    let mail = parse(&notification);
    assert_eq!(
        mail.subject(),
        Some(format!("Клиент ждёт ответа по задаче #{task}").as_str())
    );
    assert_eq!(
        mail.header("Auto-Submitted").and_then(|h| h.as_text()),
        Some("auto-generated")
    );
}

#[tokio::test]
async fn a_dead_server_costs_one_attempt_per_round_not_one_per_mail() {
    let cfg = smtp_config(free_port(), TlsMode::None);
    let mut store = Store::open_in_memory().unwrap();
    let opts = options(Limits::default());
    apply_request(
        &mut store,
        &Incoming::new(1, "ivan@client.example", "Раз"),
        &opts,
    );
    apply_request(
        &mut store,
        &Incoming::new(2, "olga@client.example", "Два"),
        &opts,
    );

    let report = send_due_once(&mut store, &cfg).await.unwrap();
    assert_eq!((report.sent, report.retrying), (0, 1));
    let mut rows = store.outbox_list().unwrap();
    rows.sort_by_key(|r| r.id);
    let attempts: Vec<(&str, u32)> = rows
        .iter()
        .map(|r| (r.status.as_str(), r.attempts))
        .collect();
    assert_eq!(attempts, [("queued", 1), ("queued", 0)]);
}
