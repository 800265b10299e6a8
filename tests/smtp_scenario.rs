//! Scenario 1 over the wire: a new request gets the automatic reply through a real SMTP
//! server, and the client's answer to that reply (its number removed from the subject)
//! threads back to the task through our Message-ID. An autoresponder gets no reply.

use crate::support::smtp as smtp_support;

use crate::support::workdir::Workdir;
use mailrules::config::Config;
use mailrules::outbox::send_due_once;
use mailrules::store::Store;
use smtp_support::SmtpServer;

/// The shipped rules, with `[smtp]` pointing at `server`.
fn workdir_for(server: &SmtpServer) -> Workdir {
    let w = Workdir::with_shipped_rules();
    let text = std::fs::read_to_string(&w.config).unwrap();
    assert!(text.contains("port = 2525"), "{text}");
    let text = text.replace("port = 2525", &format!("port = {}", server.port));
    std::fs::write(&w.config, text).unwrap();
    w
}

async fn send_outbox(w: &Workdir) -> mailrules::outbox::SendReport {
    let config = Config::load(&w.config).unwrap();
    let mut store = Store::open(&config.store).unwrap();
    send_due_once(&mut store, config.smtp.as_ref().unwrap())
        .await
        .unwrap()
}

fn write_mail(w: &Workdir, name: &str, text: &str) -> std::path::PathBuf {
    let path = w.path(name);
    std::fs::write(&path, text.replace('\n', "\r\n")).unwrap();
    path
}

const REQUEST: &str = "From: Иван Петров <ivan@client.example>
To: support@acme.example
Subject: Не печатает принтер
Message-ID: <req-1@mail.client.example>
Date: Mon, 23 Nov 2026 09:00:00 +0300
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Добрый день! Принтер в бухгалтерии не печатает с утра.
";

#[tokio::test]
async fn the_client_answers_the_automatic_reply_and_it_lands_on_the_task() {
    let server = SmtpServer::start();
    let w = workdir_for(&server);
    let result = w.ingest(&write_mail(&w, "request.eml", REQUEST));
    assert_eq!(result["processed"], 1, "{result}");
    let task = result["messages"][0]["task"].as_i64().unwrap();

    let report = send_outbox(&w).await;
    assert_eq!(report.sent, 1, "{report:?}");
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let reply = mail_parser::MessageParser::default()
        .parse(&messages[0])
        .unwrap();
    assert_eq!(
        reply.subject(),
        Some(format!("Re: Не печатает принтер [#{task}]").as_str())
    );
    let body = reply.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(
        body.contains(&format!("Ваша заявка принята, номер {task}.")),
        "{body}"
    );
    assert_eq!(
        reply.in_reply_to().as_text(),
        Some("req-1@mail.client.example")
    );
    assert_eq!(
        reply.header("Auto-Submitted").and_then(|h| h.as_text()),
        Some("auto-replied")
    );
    let our_id = reply.message_id().unwrap().to_string();
    assert!(our_id.ends_with("@acme.example"), "{our_id}");

    // The client answers from a client that dropped the [#N] tag from the subject.
    let answer = format!(
        "From: Иван Петров <ivan@client.example>
To: Поддержка ACME <support@acme.example>
Subject: Re: Не печатает принтер
Message-ID: <answer-1@mail.client.example>
In-Reply-To: <{our_id}>
References: <req-1@mail.client.example> <{our_id}>
Date: Mon, 23 Nov 2026 10:15:00 +0300
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Спасибо! Модель принтера HP LaserJet 1020, кабинет 12.
"
    );
    let result = w.ingest(&write_mail(&w, "answer.eml", &answer));
    assert_eq!(
        result["messages"][0]["task"].as_i64(),
        Some(task),
        "{result}"
    );
    assert_eq!(result["messages"][0]["rule"], "client-reply", "{result}");

    let tasks = w.json(&["task", "list"]);
    assert_eq!(tasks.as_array().unwrap().len(), 1, "{tasks}");
    let shown = w.json(&["task", "show", &task.to_string()]);
    let comments = shown["comments"].as_array().unwrap();
    assert!(
        comments.iter().any(|c| c["text"]
            .as_str()
            .unwrap()
            .contains("HP LaserJet 1020, кабинет 12")),
        "{shown}"
    );
    // Answering our reply does not start another automatic reply.
    assert_eq!(send_outbox(&w).await.sent, 0);
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn an_autoresponder_gets_no_reply_and_the_reason_is_listed() {
    let server = SmtpServer::start();
    let w = workdir_for(&server);
    let vacation = "From: Мария <maria@client.example>
To: support@acme.example
Subject: Автоответ: в отпуске до 1 декабря
Message-ID: <vacation-1@mail.client.example>
Auto-Submitted: auto-replied
Date: Mon, 23 Nov 2026 09:00:00 +0300
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Я в отпуске до 1 декабря.
";
    let result = w.ingest(&write_mail(&w, "vacation.eml", vacation));
    assert_eq!(result["processed"], 1, "{result}");

    assert_eq!(send_outbox(&w).await.sent, 0);
    assert!(server.messages().is_empty());
    let outbox = w.json(&["outbox"]);
    let rows = outbox.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{outbox}");
    assert_eq!(rows[0]["status"], "suppressed");
    assert_eq!(
        rows[0]["reason"],
        "the message is automatic (Auto-Submitted: auto-replied)"
    );
}
