//! The pipeline's tests: a batch parsed on other threads or ahead of time comes out as one
//! processed message by message, and undeliverable mail is recorded as failed.

use super::*;

fn pipeline() -> Pipeline {
    let config = Config::from_str(
        "[staff]\ndomains = [\"acme.example\"]\n",
        std::path::Path::new("mailrules.toml"),
    )
    .unwrap();
    let rules =
        RuleSet::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).unwrap();
    Pipeline::new(
        Arc::new(config),
        Arc::new(rules),
        Store::open_in_memory().unwrap(),
    )
}

/// New requests, each followed by replies that thread onto it.
fn mail() -> Vec<Incoming> {
    let mut out = Vec::new();
    for request in 0..4 {
        let first = format!("req{request}@client.example");
        for n in 0..4 {
            let threading = if n == 0 {
                String::new()
            } else {
                format!("In-Reply-To: <{first}>\r\n")
            };
            let id = if n == 0 {
                first.clone()
            } else {
                format!("re{n}.{first}")
            };
            let raw = format!(
                "From: Client {request} <client{request}@client.example>\r\n\
                 To: support@acme.example\r\nSubject: Printer {request} is broken\r\n\
                 Message-ID: <{id}>\r\n{threading}\r\nIt does not print, message {n}.\r\n"
            );
            out.push(Incoming::new(raw.into_bytes(), "cli", id));
        }
    }
    out
}

fn summary(outcomes: &[Outcome]) -> Vec<(OutcomeStatus, Option<String>, Option<i64>)> {
    outcomes
        .iter()
        .map(|o| (o.status, o.rule.clone(), o.task))
        .collect()
}

#[test]
fn a_message_the_server_could_not_deliver_is_recorded_as_failed_under_its_source() {
    let mut pipeline = pipeline();
    let source = "imap:support uid 7 (UIDVALIDITY 3)".to_string();
    let mut unreadable = Incoming::new(Vec::new(), "support", source.clone());
    unreadable.unreadable = Some("the server failed to deliver message UID 7".into());
    let outcomes = pipeline
        .process_batch(vec![unreadable.clone()], None)
        .unwrap();
    assert_eq!(outcomes[0].status, OutcomeStatus::Failed);
    let failed = pipeline.store().failed_messages().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].key,
        "unreadable:imap:support uid 7 (UIDVALIDITY 3)"
    );
    assert_eq!(failed[0].source, source);
    assert_eq!(
        failed[0].error.as_deref(),
        Some("the server failed to deliver message UID 7")
    );
    // Seen again (the daemon gave up on it a second time): still one record.
    pipeline.process_batch(vec![unreadable], None).unwrap();
    assert_eq!(pipeline.store().failed_messages().unwrap().len(), 1);
}

#[test]
fn a_batch_parsed_alongside_threads_like_one_message_at_a_time() {
    let batch = mail();
    assert!(batch.len() >= PARSE_ALONGSIDE_FROM);
    let together = pipeline().process_batch(batch, None).unwrap();
    let mut one_by_one = pipeline();
    let mut alone = Vec::new();
    for message in mail() {
        alone.extend(one_by_one.process_batch(vec![message], None).unwrap());
    }
    assert_eq!(summary(&together), summary(&alone));
    let tasks: Vec<Option<i64>> = together.iter().map(|o| o.task).collect();
    assert!(tasks.iter().all(Option::is_some), "{together:?}");
    assert_eq!(
        tasks[1], tasks[0],
        "a reply threads onto the task of its request"
    );
    assert_ne!(tasks[4], tasks[0], "the next request is a new task");
}

#[test]
fn a_batch_parsed_ahead_comes_out_as_one_processed_as_fetched() {
    let as_fetched = pipeline().process_batch(mail(), None).unwrap();
    let mut ahead = pipeline();
    let Ok(preparing) = ahead.preparer().start(mail()) else {
        panic!("no thread could be started");
    };
    assert_eq!(preparing.len(), mail().len());
    let parsed_ahead = ahead.process_preparing(preparing, None).unwrap();
    assert_eq!(summary(&parsed_ahead), summary(&as_fetched));
}
