//! The operator's side of the web over HTTP: a failed message's error, explain and retry, a
//! follow-up's attachments and the originals, and the web served by `mailrules run` (one
//! SIGTERM stops both; /mailboxes and /metrics show each mailbox as the daemon sees it).

use crate::support::web::{add_user, location, web_section, WebServer};
use crate::support::workdir::Workdir;
use crate::web::{one_task, team, ADMIN, AGENT, CUSTOMER_MAIL, TRIGGER_RULES, VIEWER};

const FAILING_RULES: &str = r#"
[[status]]
name = "Новая"
initial = true

[[rule]]
name = "by-subject"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"
status = "{subject}"
"#;

#[test]
fn a_failed_message_shows_its_error_and_explain_and_an_admin_retries_it() {
    let mail = "From: Client <client@customer.example>\r\nTo: support@acme.example\r\n\
                Subject: Срочно\r\nMessage-ID: <urgent-1@customer.example>\r\n\r\nHelp!\r\n";
    let w = Workdir::with_rules(&[("rules.toml", FAILING_RULES)]);
    std::fs::write(w.path("mail.eml"), mail).unwrap();
    assert_eq!(w.ingest(&w.path("mail.eml"))["failed"], 1);
    add_user(&w, AGENT, "agent");
    add_user(&w, ADMIN, "admin");
    let web = WebServer::start(&w);
    let agent = web.login(AGENT);
    let failed = agent.page("/messages?status=failed");
    assert!(failed.contains("data-status=\"failed\""), "{failed}");
    let page = agent.page("/messages/1");
    assert!(page.contains("id=\"message-error\""), "{page}");
    assert!(page.contains("unknown status"), "{page}");
    assert!(page.contains("id=\"explain\""), "{page}");
    assert!(
        !page.contains("id=\"retry-form\""),
        "an agent gets no retry button"
    );
    assert_eq!(agent.post("/messages/1/retry", &[]).status(), 403);
    // The rules are fixed; the admin retries from the web.
    w.write_rule(
        "rules.toml",
        &format!("{FAILING_RULES}\n[[status]]\nname = \"Срочно\"\n"),
    );
    let admin = web.login(ADMIN);
    assert!(admin.page("/messages/1").contains("id=\"retry-form\""));
    let answer = admin.post("/messages/1/retry", &[]);
    assert_eq!(answer.status(), 303);
    assert_eq!(location(&answer), "/messages/1");
    let messages = w.json(&["message", "list"]);
    assert_eq!(messages[0]["status"], "applied", "{messages:#}");
    assert_eq!(w.json(&["task", "show", "1"])["status"], "Срочно");
}

#[test]
fn a_follow_ups_attachment_downloads_from_the_tasks_timeline() {
    let w = one_task(TRIGGER_RULES, CUSTOMER_MAIL);
    let follow_up = "From: Ivan <ivan@customer.example>\r\nTo: support@acme.example\r\n\
        Subject: Re: The order is late\r\nMessage-ID: <late-2@customer.example>\r\n\
        In-Reply-To: <late-1@customer.example>\r\nReferences: <late-1@customer.example>\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe invoice is attached.\r\n\
        --b\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\n\
        Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--b--\r\n";
    std::fs::write(w.path("follow-up.eml"), follow_up).unwrap();
    let result = w.ingest(&w.path("follow-up.eml"));
    assert_eq!(result["messages"][0]["task"], 1, "{result:#}");
    let web = WebServer::start(&w);
    let s = web.login(AGENT);
    let page = s.page("/tasks/1");
    let link = "href=\"/messages/2/attachments/1\"";
    assert!(page.contains(link), "{page}");
    let file = s.get("/messages/2/attachments/1");
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().unwrap().as_ref(), b"%PDF-1.4");
    // The original of each mail is one click away.
    assert!(page.contains("href=\"/messages/1/raw\""), "{page}");
    assert!(s.page("/messages/1/raw").contains("Where is my order?"));
}

#[test]
fn run_serves_the_web_when_the_config_has_it_and_stops_with_it() {
    let w = team();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    web_section(&w, &format!("listen = \"127.0.0.1:{port}\""));
    let mut daemon = w
        .command(&["run"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let mut answer = None;
    for _ in 0..600 {
        if let Ok(a) = client.get(&url).send() {
            answer = Some(a);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let answer = answer.expect("run serves /healthz");
    assert_eq!(answer.status(), 200);
    let metrics = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("mailrules_apply_seconds"), "{metrics}");
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let status = daemon.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn under_run_the_mailboxes_page_and_metrics_show_each_mailbox_live() {
    use crate::support::dovecot::{free_port, message, Dovecot, USER};
    let dovecot = Dovecot::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(dovecot.append("INBOX", &message("live-1", "Live mail", "")));
    let w = Workdir::with_rules(&[("rules.toml", TRIGGER_RULES)]);
    add_user(&w, VIEWER, "viewer");
    let port = free_port();
    let mut text = std::fs::read_to_string(&w.config).unwrap();
    text.push_str(&format!(
        "\n[[mailbox]]\nname = \"support\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         user = \"{USER}\"\npassword_file = \"{}\"\npoll_interval = \"1s\"\n\n[web]\n\
         listen = \"127.0.0.1:{port}\"\n",
        dovecot.port,
        dovecot.password_file().display()
    ));
    std::fs::write(&w.config, text).unwrap();
    let mut daemon = w
        .command(&["run"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let mut metrics = String::new();
    for _ in 0..600 {
        metrics = client
            .get(&metrics_url)
            .send()
            .and_then(|a| a.text())
            .unwrap_or_default();
        if metrics.contains("mailrules_mailbox_up{mailbox=\"support\"} 1")
            && metrics.contains("mailrules_messages_total{status=\"applied\"} 1")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        metrics.contains("mailrules_mailbox_up{mailbox=\"support\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailrules_messages_total{status=\"applied\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailrules_apply_seconds_count 1"),
        "{metrics}"
    );
    // The same through a person's eyes.
    let web = WebServer::at(port);
    let s = web.login(VIEWER);
    let page = s.page("/mailboxes");
    assert!(page.contains("data-mailbox=\"support\""), "{page}");
    assert!(page.contains("watching"), "{page}");
    assert!(!page.contains("id=\"no-daemon\""), "{page}");
    assert!(s.page("/tasks").contains("Live mail"));
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    assert!(daemon.wait().unwrap().success());
}
