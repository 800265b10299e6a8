//! Working the queue in the browser: logging in, filtering, opening a task, answering the
//! customer (the reply reaches the outbox and a real SMTP server), changing a status (its
//! trigger fires), and new mail showing up on the open queue without a reload.

use fantoccini::Locator;
use serde_json::Value;

use super::{log_in, seeded_desk, AGENT, REQUESTS};
use crate::support::browser::{screenshot_path, Browser};
use crate::support::desk::mail;

/// The ids of the queue's rows, top to bottom.
async fn queue_ids(browser: &Browser) -> Vec<i64> {
    let ids = browser
        .eval("return [...document.querySelectorAll('#queue tr.task-row')].map(r => Number(r.dataset.id));")
        .await;
    ids.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn an_agent_logs_in_filters_the_queue_opens_a_task_and_answers_the_customer() {
    let desk = seeded_desk();
    desk.ok(&["task", "set", "2", "--status", "В работе", "--as", AGENT]);
    let browser = Browser::start().await;

    // Without a session the queue sends the browser to the login page.
    browser.open(&desk.url("/tasks")).await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/login");
    log_in(&browser, &desk, AGENT).await;
    browser.open(&desk.url("/tasks")).await;
    browser.wait_text("#task-table").await;
    let mut all = queue_ids(&browser).await;
    all.sort();
    assert_eq!(all, (1..=9).collect::<Vec<i64>>());
    let first_title = browser.wait_text("tr.task-row[data-id='1'] td.title").await;
    assert_eq!(first_title, REQUESTS[0].1);
    browser.screenshot(&screenshot_path("queue.png")).await;

    // Filter by status through the form: only task 2 is "В работе".
    browser
        .eval("document.querySelector('#filter-status').value = 'В работе'; return true;")
        .await;
    let filter = browser
        .client
        .form(Locator::Css("#filter-form"))
        .await
        .unwrap();
    filter.submit().await.unwrap();
    assert!(
        browser
            .wait_until("return window.location.search.includes('status=');")
            .await
    );
    assert_eq!(queue_ids(&browser).await, [2]);

    // Open task 1 from the queue, as a person would: by its link.
    browser.open(&desk.url("/tasks")).await;
    browser
        .client
        .find(Locator::Css("tr.task-row[data-id='1'] td.title a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let title = browser.wait_text("#task-title").await;
    assert_eq!(title, format!("#1 {}", REQUESTS[0].1));
    let mails = browser
        .eval("return document.querySelectorAll('#timeline li.kind-mail').length;")
        .await;
    assert_eq!(mails, Value::from(1));

    // Answer the customer: the reply is queued, shown with its delivery state, and sent.
    let reply = browser
        .client
        .form(Locator::Css("#reply-form"))
        .await
        .unwrap();
    reply
        .set_by_name("text", "Здравствуйте! Мастер придёт завтра в 10:00.")
        .await
        .unwrap();
    reply.submit().await.unwrap();
    let state = browser.wait_text("#timeline li.kind-reply .delivery").await;
    assert_ne!(state, "sent", "nothing has been sent yet");
    let outbox = desk.json(&["outbox"]);
    let rows = outbox.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{outbox:#}");
    assert_eq!(rows[0]["recipient"], "ivan@client.example", "{outbox:#}");
    assert_eq!(rows[0]["task"], 1, "{outbox:#}");

    desk.ok(&["outbox", "send"]);
    let delivered = desk.smtp.messages();
    assert_eq!(delivered.len(), 1);
    let text = String::from_utf8_lossy(&delivered[0]).to_string();
    let parsed = mail_parser::MessageParser::default()
        .parse(text.as_bytes())
        .unwrap();
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains("Мастер придёт завтра в 10:00."),
        "{text}"
    );
    assert!(parsed.subject().unwrap().contains("[#1]"), "{text}");
    browser.client.refresh().await.unwrap();
    assert_eq!(
        browser.wait_text("#timeline li.kind-reply .delivery").await,
        "sent"
    );

    // Change the status: the trigger sets its field in the same change.
    browser
        .eval("document.querySelector('#status-select').value = 'Ожидание ответа клиента'; return true;")
        .await;
    browser
        .client
        .form(Locator::Css("#status-form"))
        .await
        .unwrap()
        .submit()
        .await
        .unwrap();
    assert!(
        browser
            .wait_until("const s = document.querySelector('#task-status'); return !!s && s.textContent.trim() === 'Ожидание ответа клиента';")
            .await
    );
    let marked = browser
        .wait_text("dd.field-value[data-field='Ждём клиента с']")
        .await;
    assert_eq!(marked, "Ожидание ответа клиента");
    let history = desk.history(1);
    let who: Vec<(String, String)> = history
        .iter()
        .map(|e| {
            (
                e["by"].as_str().unwrap_or_default().to_string(),
                e["kind"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        who.contains(&(AGENT.to_string(), "status".to_string())),
        "{history:#?}"
    );
    assert!(
        who.contains(&(
            "trigger:waiting-for-customer".to_string(),
            "field".to_string()
        )),
        "{history:#?}"
    );
    assert_eq!(desk.task(1)["status"], "Ожидание ответа клиента");
    browser.screenshot(&screenshot_path("task.png")).await;
    browser.close().await;
}

#[tokio::test]
async fn new_mail_appears_on_the_open_queue_without_a_reload() {
    let mut desk = seeded_desk();
    let browser = Browser::start().await;
    log_in(&browser, &desk, AGENT).await;
    browser.open(&desk.url("/tasks")).await;
    browser.wait_text("#task-table").await;
    // A mark on this very document: a reload would lose it.
    browser
        .eval("window.sameDocument = 'still here'; return true;")
        .await;

    desk.ingest(&mail(
        500,
        "Мария Кузнецова <maria@client.example>",
        "Сломался сканер на третьем этаже",
        "Mon, 30 Nov 2026 12:00:00 +0000",
        "Сканер не включается.",
    ));
    let shown = browser
        .wait_until(
            "return [...document.querySelectorAll('#queue tr.task-row td.title')]
                .some(t => t.textContent.includes('Сломался сканер на третьем этаже'));",
        )
        .await;
    assert!(shown, "the new task never appeared on the open queue");
    assert_eq!(
        browser.eval("return window.sameDocument;").await,
        Value::from("still here"),
        "the page was reloaded instead of updated"
    );
    browser.close().await;
}
