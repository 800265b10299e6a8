//! The web over HTTP (docs/web.md): `mailrules serve` started on a free port against a
//! scratch store, driven with a plain HTTP client. Login and its cookie, the login wall,
//! every route with each role, CSRF, working a task (triggers, history, the outbox), the
//! API, analytics, /healthz and /metrics. Hostile mail and the login's defences are in
//! `web_security.rs`; messages, retry and the web under `run` in `web_operator.rs`.

use serde_json::Value;

use crate::support::web::{add_user, location, set_cookie, web_section, WebServer};
use crate::support::workdir::{fixture, Workdir};

pub const AGENT: &str = "anna@acme.example";
pub const VIEWER: &str = "vera@acme.example";
pub const ADMIN: &str = "adam@acme.example";

/// The shipped rules, the scenario mail ingested (tasks 1–6), one user of each role.
pub fn team() -> Workdir {
    let w = Workdir::with_shipped_rules();
    let result = w.ingest(&fixture("scenarios"));
    assert_eq!(result["failed"], 0, "{result:#}");
    add_user(&w, AGENT, "agent");
    add_user(&w, VIEWER, "viewer");
    add_user(&w, ADMIN, "admin");
    w
}

#[test]
fn logging_in_gives_a_session_cookie_that_scripts_cannot_read() {
    let w = team();
    let web = WebServer::start(&w);
    let answer = web.try_login(AGENT, crate::support::web::PASSWORD, "/tasks/3");
    assert_eq!(answer.status(), 303);
    assert_eq!(location(&answer), "/tasks/3");
    let cookie = set_cookie(&answer, "mailrules_session").expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    // Plain HTTP on loopback: a Secure cookie would never come back.
    assert!(!cookie.contains("Secure"), "{cookie}");
    let session = web.login(AGENT);
    let queue = session.page("/tasks");
    assert!(queue.contains("class=\"task-row\""), "{queue}");
    assert!(queue.contains(AGENT), "the page says who is logged in");
}

#[test]
fn the_cookie_is_secure_when_the_web_is_reached_over_https() {
    let w = team();
    web_section(&w, "base_url = \"https://desk.acme.example\"");
    let web = WebServer::start(&w);
    let answer = web.try_login(AGENT, crate::support::web::PASSWORD, "/tasks");
    assert_eq!(answer.status(), 303);
    let cookie = set_cookie(&answer, "mailrules_session").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[test]
fn behind_a_proxy_cookies_are_secure_only_when_the_proxy_says_https() {
    let w = team();
    web_section(&w, "behind_proxy = true");
    let web = WebServer::start(&w);
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let login_cookie = |proto: Option<&str>| {
        let mut request = client.get(web.url("/login"));
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        set_cookie(&request.send().unwrap(), "mailrules_login").unwrap()
    };
    assert!(login_cookie(Some("https")).contains("; Secure"));
    assert!(!login_cookie(Some("http")).contains("Secure"));
    assert!(!login_cookie(None).contains("Secure"));
}

#[test]
fn a_wrong_password_or_unknown_account_gets_no_session() {
    let w = team();
    let web = WebServer::start(&w);
    for (email, password) in [
        (AGENT, "wrong"),
        ("nobody@acme.example", "whatever"),
        (AGENT, ""),
    ] {
        let answer = web.try_login(email, password, "/tasks");
        assert_eq!(answer.status(), 401, "{email}");
        assert!(set_cookie(&answer, "mailrules_session").is_none());
        let page = answer.text().unwrap();
        assert!(page.contains("Wrong email or password"), "{page}");
        assert!(!page.contains(password) || password.is_empty() || password == "whatever");
    }
}

#[test]
fn without_a_session_pages_send_to_login_and_the_api_answers_401() {
    let w = team();
    let web = WebServer::start(&w);
    for path in [
        "/",
        "/tasks",
        "/tasks/rows",
        "/tasks/1",
        "/analytics",
        "/messages",
        "/messages/1",
        "/outbox",
        "/mailboxes",
        "/rules",
        "/no/such/page",
    ] {
        let answer = web.get(path);
        assert_eq!(answer.status(), 303, "{path}");
        assert!(
            location(&answer).starts_with("/login?next="),
            "{path}: {}",
            location(&answer)
        );
    }
    let answer = web.get("/tasks/3?x=1");
    assert_eq!(location(&answer), "/login?next=/tasks/3%3Fx%3D1");
    for path in ["/api/tasks", "/api/tasks/1", "/api/version"] {
        let answer = web.get(path);
        assert_eq!(answer.status(), 401, "{path}");
        let body: Value = serde_json::from_str(&answer.text().unwrap()).unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
    // A change without a session changes nothing and goes to the login.
    let answer = web.post("/tasks/1/note", "", &[("text", "sneaky")]);
    assert_ne!(answer.status(), 200);
    let t = w.json(&["task", "show", "1"]);
    assert!(!t.to_string().contains("sneaky"));
    // The open routes.
    assert_eq!(web.get("/healthz").status(), 200);
    assert_eq!(web.get("/healthz").text().unwrap(), "ok\n");
    assert_eq!(web.get("/metrics").status(), 200);
    assert_eq!(web.get("/login").status(), 200);
    assert_eq!(web.get("/static/style.css").status(), 200);
}

/// Which answer each role gets on each route: reading is everyone's, working tasks the
/// agents' and admins', retry and the rules the admins'.
#[test]
fn every_route_with_each_role() {
    let w = team();
    let web = WebServer::start(&w);
    let table = first_table(&w);
    let analytics = format!("/analytics/{}", encode_path(&table));
    let reads = [
        "/tasks",
        "/tasks/rows",
        "/tasks/1",
        "/tasks?view=mine",
        "/analytics",
        analytics.as_str(),
        "/messages",
        "/messages/1",
        "/messages/1/raw",
        "/outbox",
        "/mailboxes",
        "/api/tasks",
        "/api/tasks/1",
        "/api/version",
    ];
    for (who, role) in [(VIEWER, "viewer"), (AGENT, "agent"), (ADMIN, "admin")] {
        let s = web.login(who);
        for path in reads {
            assert_eq!(s.get(path).status(), 200, "{role} GET {path}");
        }
        let rules = s.get("/rules").status();
        assert_eq!(
            rules,
            if role == "admin" { 200 } else { 403 },
            "{role} GET /rules"
        );
        let works = role != "viewer";
        for (path, fields) in [
            ("/tasks/1/note", vec![("text", "a note")]),
            ("/tasks/1/assignee", vec![("assignee", "petr@acme.example")]),
            ("/tasks/1/status", vec![("status", "В работе")]),
            ("/tasks/1/reply", vec![("text", "Здравствуйте")]),
            ("/tasks/2/close", vec![]),
        ] {
            let status = s.post(path, &fields).status();
            if works {
                assert_eq!(status, 303, "{role} POST {path}");
            } else {
                assert_eq!(status, 403, "{role} POST {path}");
            }
        }
        // Message 1 did not fail: an admin is told so, the others may not retry at all.
        let retry = s.post("/messages/1/retry", &[]).status();
        assert_eq!(
            retry,
            if role == "admin" { 404 } else { 403 },
            "{role} retry"
        );
        let html = s.page("/tasks/1");
        assert_eq!(
            html.contains("id=\"status-form\""),
            works,
            "{role} sees the forms"
        );
    }
    // The viewer's tries left no trace: every note is an agent's or the admin's.
    let history = w.json(&["task", "history", "1"]);
    assert!(!history.to_string().contains(VIEWER), "{history:#}");
}

#[test]
fn a_post_without_the_sessions_token_is_refused_and_changes_nothing() {
    let w = team();
    let web = WebServer::start(&w);
    let s = web.login(AGENT);
    let before = w.json(&["task", "show", "3"]);
    let other = web.login(ADMIN);
    for fields in [
        vec![("status", "В работе")],
        vec![("csrf", "0000"), ("status", "В работе")],
        vec![("csrf", other.csrf.as_str()), ("status", "В работе")],
        vec![("csrf", ""), ("status", "В работе")],
    ] {
        let answer = s.post_raw("/tasks/3/status", &fields);
        assert_eq!(answer.status(), 403, "{fields:?}");
    }
    assert_eq!(s.post_raw("/tasks/3/note", &[("text", "x")]).status(), 403);
    assert_eq!(s.post_raw("/logout", &[]).status(), 403);
    assert_eq!(w.json(&["task", "show", "3"]), before);
    // The login form's own token: a POST without it is refused too.
    let answer = web.post(
        "/login",
        "",
        &[
            ("email", AGENT),
            ("password", crate::support::web::PASSWORD),
        ],
    );
    assert_eq!(answer.status(), 403);
    assert!(set_cookie(&answer, "mailrules_session").is_none());
}

pub const TRIGGER_RULES: &str = r#"
[[status]]
name = "Новая"
initial = true
[[status]]
name = "В работе"
[[status]]
name = "Завершенная"
closed = true

[[field]]
name = "Последний статус"
type = "text"
[[field]]
name = "Причина"
type = "choice"
values = ["Дорого", "Долго"]

[[rule]]
name = "new"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"

[[trigger]]
name = "remember-status"
on = "status_changed"
[[trigger.do]]
action = "set"
fields = { "Последний статус" = "{new}" }
"#;

pub const CUSTOMER_MAIL: &str =
    "From: Ivan <ivan@customer.example>\r\nTo: support@acme.example\r\n\
Subject: The order is late\r\nMessage-ID: <late-1@customer.example>\r\n\
Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nWhere is my order?\r\n";

/// A workdir with `TRIGGER_RULES`, one customer's mail (task 1) and an agent.
pub fn one_task(rules: &str, mail: &str) -> Workdir {
    let w = Workdir::with_rules(&[("rules.toml", rules)]);
    std::fs::write(w.path("mail.eml"), mail).unwrap();
    let result = w.ingest(&w.path("mail.eml"));
    assert_eq!(result["failed"], 0, "{result:#}");
    add_user(&w, AGENT, "agent");
    w
}

#[test]
fn a_status_change_on_the_web_fires_its_trigger_and_records_the_person() {
    let w = one_task(TRIGGER_RULES, CUSTOMER_MAIL);
    let web = WebServer::start(&w);
    let s = web.login(AGENT);
    let page = s.page("/tasks/1");
    assert!(page.contains("id=\"status-select\""), "{page}");
    assert_eq!(
        s.post("/tasks/1/status", &[("status", "в работе")])
            .status(),
        303
    );
    let t = w.json(&["task", "show", "1"]);
    assert_eq!(t["status"], "В работе");
    assert_eq!(
        t["fields"]["Последний статус"], "В работе",
        "the trigger ran"
    );
    let history = w.json(&["task", "history", "1"]);
    let entries = history.as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "status" && e["by"] == AGENT && e["to"] == "В работе"),
        "{history:#}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "field" && e["by"] == "trigger:remember-status"),
        "{history:#}"
    );
    // The timeline shows the change with who made it.
    let page = s.page("/tasks/1");
    assert!(page.contains("data-kind=\"status\""), "{page}");
    assert!(page.contains(AGENT));
    // A choice field is a list of its values, and a value outside it is refused.
    assert!(page.contains("<option value=\"Долго\""), "{page}");
    assert_eq!(
        s.post("/tasks/1/fields", &[("field:Причина", "Долго")])
            .status(),
        303
    );
    assert_eq!(w.json(&["task", "show", "1"])["fields"]["Причина"], "Долго");
    let refused = s.post("/tasks/1/fields", &[("field:Причина", "Дешево")]);
    assert_eq!(refused.status(), 422);
    assert_eq!(w.json(&["task", "show", "1"])["fields"]["Причина"], "Долго");
    // A status nobody declared is refused in the rules' words.
    let refused = s.post("/tasks/1/status", &[("status", "Потерян")]);
    assert_eq!(refused.status(), 422);
    assert!(refused.text().unwrap().contains("unknown status"));
    // Close: the first closed status.
    assert_eq!(s.post("/tasks/1/close", &[]).status(), 303);
    assert_eq!(w.json(&["task", "show", "1"])["status"], "Завершенная");
}

#[test]
fn a_reply_on_the_web_reaches_the_outbox_and_the_timeline() {
    let w = one_task(TRIGGER_RULES, CUSTOMER_MAIL);
    let web = WebServer::start(&w);
    let s = web.login(AGENT);
    let answer = s.post(
        "/tasks/1/reply",
        &[
            ("text", "It ships today.\r\nSorry!"),
            ("cc", "boss@customer.example"),
        ],
    );
    assert_eq!(answer.status(), 303);
    assert_eq!(location(&answer), "/tasks/1");
    let outbox = w.json(&["outbox"]);
    let rows = outbox.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{outbox:#}");
    assert_eq!(rows[0]["recipient"], "ivan@customer.example");
    assert_eq!(rows[0]["task"], 1);
    assert_eq!(rows[0]["body"], "It ships today.\nSorry!");
    assert_eq!(rows[0]["cc"][0], "boss@customer.example");
    let page = s.page("/tasks/1");
    assert!(page.contains("data-kind=\"reply\""), "{page}");
    assert!(page.contains("data-state=\"queued\""), "{page}");
    assert!(s.page("/outbox").contains("class=\"outbox-row\""));
    // An empty reply is refused and queues nothing.
    assert_eq!(s.post("/tasks/1/reply", &[("text", "  ")]).status(), 400);
    assert_eq!(w.json(&["outbox"]).as_array().unwrap().len(), 1);
    // A note is internal: no mail.
    assert_eq!(
        s.post("/tasks/1/note", &[("text", "called him")]).status(),
        303
    );
    assert_eq!(w.json(&["outbox"]).as_array().unwrap().len(), 1);
    assert!(s.page("/tasks/1").contains("called him"));
}

#[test]
fn the_queue_filters_views_and_counts_match_task_list() {
    let w = team();
    let web = WebServer::start(&w);
    let s = web.login(AGENT);
    let ids = |html: &str| -> Vec<i64> {
        html.split("class=\"task-row\" data-id=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
            .collect()
    };
    let cli_ids = |args: &[&str]| -> Vec<i64> {
        let mut all = vec!["task", "list"];
        all.extend_from_slice(args);
        w.json(&all)
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&s.page("/tasks")), cli_ids(&[]));
    assert_eq!(ids(&s.page("/tasks?open=1")), cli_ids(&["--open"]));
    assert_eq!(
        ids(&s.page("/tasks?status=%D0%BD%D0%BE%D0%B2%D0%B0%D1%8F")),
        cli_ids(&["--status", "новая"])
    );
    assert_eq!(
        ids(&s.page("/tasks?search=%D0%B7%D0%B0%D0%BA%D0%B0%D0%B7")),
        cli_ids(&["--search", "заказ"])
    );
    assert_eq!(
        ids(&s.page("/tasks?limit=2&offset=1")),
        cli_ids(&["--limit", "2", "--offset", "1"])
    );
    assert_eq!(
        ids(&s.page("/tasks?view=mine")),
        cli_ids(&["--open", "--assignee", AGENT])
    );
    // Every status with its count.
    let page = s.page("/tasks");
    for t in w.json(&["task", "list"]).as_array().unwrap() {
        assert!(page.contains(&format!(
            "data-status=\"{}\"",
            t["status"].as_str().unwrap()
        )));
    }
    assert_eq!(s.get("/tasks?view=everything").status(), 400);
}

#[test]
fn waiting_views_follow_the_last_mail() {
    let w = one_task(TRIGGER_RULES, CUSTOMER_MAIL);
    web_section(&w, "overdue_after = \"1s\"");
    let web = WebServer::start(&w);
    let s = web.login(AGENT);
    let has_task = |path: &str| s.page(path).contains("data-id=\"1\"");
    assert!(has_task("/tasks?view=waiting-us"));
    assert!(!has_task("/tasks?view=waiting-customer"));
    // The customer's mail was processed more than overdue_after ago.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(has_task("/tasks?view=overdue"));
    assert_eq!(
        s.post("/tasks/1/reply", &[("text", "On its way")]).status(),
        303
    );
    assert!(!has_task("/tasks?view=waiting-us"));
    assert!(has_task("/tasks?view=waiting-customer"));
    assert!(!has_task("/tasks?view=overdue"));
}

/// What the queue's script fetches when a task changed: the page's own `#queue`, alone, at
/// the new version; "mine" is each person's own even when both ask at the same version.
#[test]
fn the_queues_rows_alone_are_the_pages_own_and_each_persons() {
    let w = team();
    let web = WebServer::start(&w);
    let anna = web.login(AGENT);
    let vera = web.login(VIEWER);
    let rows = anna.page("/tasks/rows?open=1");
    assert!(rows.starts_with("<div id=\"queue\""), "{rows}");
    assert!(!rows.contains("<html"), "only the rows: {rows}");
    assert!(
        anna.page("/tasks?open=1").contains(&rows),
        "the page holds the same rows"
    );
    let version = |rows: &str| rows.split('"').nth(3).unwrap_or_default().to_string();
    assert_eq!(
        anna.post("/tasks/3/assignee", &[("assignee", AGENT)])
            .status(),
        303
    );
    let after = anna.page("/tasks/rows?open=1");
    assert_ne!(version(&after), version(&rows), "{after}");
    assert!(anna.page("/tasks/rows?view=mine").contains("data-id=\"3\""));
    assert!(!vera.page("/tasks/rows?view=mine").contains("data-id=\"3\""));
    assert!(anna.page("/tasks/rows?view=mine").contains("data-id=\"3\""));
}

#[test]
fn the_api_gives_the_cli_json_by_session_or_token() {
    let w = team();
    let web = WebServer::start(&w);
    let s = web.login(VIEWER);
    let listed: Value = serde_json::from_str(&s.get("/api/tasks").text().unwrap()).unwrap();
    assert_eq!(listed, w.json(&["task", "list"]));
    let shown: Value = serde_json::from_str(&s.get("/api/tasks/3").text().unwrap()).unwrap();
    assert_eq!(shown, w.json(&["task", "show", "3"]));
    assert_eq!(s.get("/api/tasks/999").status(), 404);
    let token = w.ok(&["user", "token", VIEWER]);
    let token = token
        .split_whitespace()
        .find(|t| t.len() > 20)
        .expect("a token")
        .to_string();
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let answer = client
        .get(web.url("/api/tasks?open=1"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let listed: Value = serde_json::from_str(&answer.text().unwrap()).unwrap();
    assert_eq!(listed, w.json(&["task", "list", "--open"]));
    let answer = client
        .get(web.url("/api/tasks"))
        .bearer_auth("mr_1_nonsense")
        .send()
        .unwrap();
    assert_eq!(answer.status(), 401);
    // A token is for the API only: it opens no page.
    let answer = client
        .get(web.url("/tasks"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 303);
}

#[test]
fn an_analytics_table_has_its_rows_a_chart_and_csv() {
    let w = team();
    let web = WebServer::start(&w);
    let s = web.login(VIEWER);
    let table = first_table(&w);
    let path = format!("/analytics/{}", encode_path(&table));
    let page = s.page(&path);
    assert!(page.contains("<div id=\"chart\"><svg"), "{page}");
    let bars = page.matches("<tr class=\"bar\"").count();
    let rows = w.json(&["analytics", "show", &table]);
    assert!(bars >= 1, "{page}");
    assert!(page.matches("class=\"analytics-row\"").count() == rows.as_array().unwrap().len());
    let csv = s.get(&format!("{path}?format=csv"));
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv.headers()["content-disposition"]
        .as_bytes()
        .starts_with(b"attachment; filename=\""));
    let text = csv.text().unwrap();
    assert!(text.starts_with("task,at,"), "{text}");
    assert_eq!(text.lines().count(), rows.as_array().unwrap().len() + 1);
    assert_eq!(s.get("/analytics/no-such-table").status(), 404);
}

#[test]
fn healthz_and_metrics_say_how_the_store_is_without_personal_data() {
    let w = team();
    let web = WebServer::start(&w);
    let metrics = web.get("/metrics").text().unwrap();
    for name in [
        "mailrules_messages_total{status=\"applied\"}",
        "mailrules_outbox_total{status=\"queued\"}",
        "mailrules_apply_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    let applied = w
        .json(&["message", "list", "--status", "applied"])
        .as_array()
        .unwrap()
        .len();
    assert!(
        metrics.contains(&format!(
            "mailrules_messages_total{{status=\"applied\"}} {applied}"
        )),
        "{metrics}"
    );
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        assert!(!line.contains('@'), "an address in {line}");
        assert!(line.is_ascii(), "text from mail in {line}");
    }
}

/// The first analytics table the scenario mail wrote.
pub fn first_table(w: &Workdir) -> String {
    let store = mailrules::store::Store::open(&w.path("store.db")).unwrap();
    store
        .analytics_tables()
        .unwrap()
        .into_iter()
        .next()
        .expect("an analytics table")
}

/// Percent-encodes a path segment.
pub fn encode_path(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
