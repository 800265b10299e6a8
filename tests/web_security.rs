//! The web's defences over HTTP (docs/web.md, "Security"): hostile mail escaped and
//! sanitized on every page that shows it, the Content-Security-Policy, no open redirect after
//! login, failed logins slowed per account, sessions that expire and end at logout, a new
//! session id at each login, and no password or session id in the log or the store.

use crate::support::web::{add_user, location, set_cookie, web_section, WebServer, PASSWORD};
use crate::support::workdir::Workdir;
use crate::web::{one_task, team, AGENT, VIEWER};

const RULES: &str = r#"
[[rule]]
name = "new"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"
"#;

/// Script in the subject, the sender's name, the body and an attachment's name; an HTML part
/// with a script, event handlers, a `javascript:` link, a remote image and CSS that loads.
const HOSTILE: &str = "From: \"<script>alert('name')</script>\" <evil@customer.example>\r\n\
To: support@acme.example\r\n\
Subject: <script>alert('subject')</script> <img src=x onerror=alert(5)>\r\n\
Message-ID: <hostile-1@customer.example>\r\n\
Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: multipart/alternative; boundary=\"b2\"\r\n\
\r\n\
--b2\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Body <script>alert('body')</script> <img src=x onerror=alert(6)>\r\n\
--b2\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<html><head><style>body{background:url(https://tracker.example/css)}</style></head><body>\r\n\
<p onclick=\"alert(2)\">Hi</p><script>alert('html')</script>\r\n\
<img src=\"https://tracker.example/pixel.gif\" onerror=\"alert(3)\">\r\n\
<a href=\"javascript:alert(4)\">click</a> <a href=\"https://shop.example/order\">order</a>\r\n\
<div style=\"background-image:url(https://tracker.example/div)\">styled</div>\r\n\
</body></html>\r\n\
--b2--\r\n\
--b1\r\n\
Content-Type: application/octet-stream; name=\"<script>alert('file')</script>.pdf\"\r\n\
Content-Disposition: attachment; filename=\"<script>alert('file')</script>.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
aGVsbG8=\r\n\
--b1--\r\n";

/// No markup from the mail survives in `html`: our own one script tag only, and no tag with
/// an event handler, a `javascript:` URL, a style or anything from the tracker (mail text
/// that merely looks like markup is escaped, so it is not inside any tag).
fn assert_inert(html: &str, page: &str) {
    assert_eq!(
        html.matches("<script").count(),
        1,
        "{page}: only our script\n{html}"
    );
    assert!(
        html.contains("<script src=\"/static/app.js\" defer></script>"),
        "{page}"
    );
    for tag in html
        .split('<')
        .skip(1)
        .map(|rest| rest.split('>').next().unwrap_or(""))
    {
        let lower = tag.to_lowercase();
        let name = lower.split_whitespace().next().unwrap_or("");
        assert!(
            !matches!(name, "img" | "style" | "iframe" | "object"),
            "{page}: <{tag}>"
        );
        for bad in [" on", "javascript:", "tracker.example", "style="] {
            assert!(!lower.contains(bad), "{page}: {bad:?} in <{tag}>");
        }
    }
}

#[test]
fn hostile_mail_is_escaped_and_its_html_sanitized() {
    let w = one_task(RULES, HOSTILE);
    let web = WebServer::start(&w);
    let s = web.login(AGENT);
    let queue = s.page("/tasks");
    assert_inert(&queue, "queue");
    assert!(
        queue.contains("&lt;script&gt;alert('subject')&lt;/script&gt;"),
        "{queue}"
    );
    let task = s.page("/tasks/1");
    assert_inert(&task, "task");
    assert!(
        task.contains("&lt;script&gt;alert('body')&lt;/script&gt;"),
        "{task}"
    );
    let messages = s.page("/messages");
    assert_inert(&messages, "messages");
    let message = s.page("/messages/1");
    assert_inert(&message, "message");
    assert!(
        message.contains("id=\"mail-html\""),
        "the HTML part is shown, cleaned"
    );
    assert!(
        message.contains("&lt;script&gt;alert('file')&lt;/script&gt;.pdf"),
        "{message}"
    );
    assert!(
        message.contains("https://shop.example/order"),
        "a harmless link stays"
    );
    assert!(message.contains("styled"), "text stays");
    // The attachment is a download whatever its name, never a page.
    let file = s.get("/messages/1/attachments/1");
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "application/octet-stream");
    let disposition = file.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert!(!disposition.contains('<'), "{disposition}");
    assert_eq!(file.bytes().unwrap().as_ref(), b"hello");
    // The original is plain text.
    let raw = s.get("/messages/1/raw");
    assert!(raw.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(raw.headers()["x-content-type-options"], "nosniff");
    let api = s.get("/api/tasks/1").text().unwrap();
    assert!(
        api.contains("<script>alert('subject')"),
        "the API gives the data as it is (JSON)"
    );
}

#[test]
fn every_page_forbids_inline_script_and_loads_from_elsewhere() {
    let w = team();
    let web = WebServer::start(&w);
    let s = web.login(AGENT);
    for path in [
        "/tasks",
        "/tasks/1",
        "/analytics",
        "/messages",
        "/outbox",
        "/mailboxes",
    ] {
        let answer = s.get(path);
        let csp = answer.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(answer.headers()["x-frame-options"], "DENY");
        let html = answer.text().unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://") || path == "/tasks/1",
            "{path} links outside"
        );
        assert!(!html.contains(" style=\""), "{path}: inline style");
        assert!(!html.contains("<script>"), "{path}: inline script");
    }
    let login = web.get("/login");
    assert!(login.headers().contains_key("content-security-policy"));
    let js = web.get("/static/app.js");
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
}

#[test]
fn after_login_only_local_paths_are_followed() {
    let w = team();
    let web = WebServer::start(&w);
    for (next, expected) in [
        ("/tasks/3", "/tasks/3"),
        ("https://evil.example/", "/tasks"),
        ("//evil.example/tasks", "/tasks"),
        ("/\\evil.example", "/tasks"),
        ("javascript:alert(1)", "/tasks"),
    ] {
        let answer = web.try_login(AGENT, PASSWORD, next);
        assert_eq!(answer.status(), 303, "{next}");
        assert_eq!(location(&answer), expected, "{next}");
    }
}

#[test]
fn repeated_failed_logins_slow_that_account_down() {
    let w = team();
    let web = WebServer::start(&w);
    for _ in 0..5 {
        assert_eq!(web.try_login(AGENT, "guess", "/tasks").status(), 401);
    }
    // Even the right password waits now, and the page says for how long.
    let answer = web.try_login(AGENT, PASSWORD, "/tasks");
    assert_eq!(answer.status(), 429);
    assert!(set_cookie(&answer, "mailrules_session").is_none());
    assert!(answer.text().unwrap().contains("try again in"));
    // Another account is not slowed down.
    assert_eq!(web.try_login(VIEWER, PASSWORD, "/tasks").status(), 303);
}

#[test]
fn a_session_ends_when_it_expires_and_at_logout() {
    let w = team();
    web_section(&w, "session_lifetime = \"3s\"");
    let web = WebServer::start(&w);
    let s = web.login(AGENT);
    assert_eq!(s.get("/tasks").status(), 200);
    std::thread::sleep(std::time::Duration::from_millis(3500));
    assert_eq!(s.get("/tasks").status(), 303, "expired");
    let s = web.login(AGENT);
    let answer = s.post("/logout", &[]);
    assert_eq!(answer.status(), 303);
    assert_eq!(location(&answer), "/login");
    let cleared = set_cookie(&answer, "mailrules_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(s.get("/tasks").status(), 303, "logged out");
}

#[test]
fn each_login_gets_a_new_session_id_and_a_made_up_one_is_worthless() {
    let w = team();
    let web = WebServer::start(&w);
    let a = web.login(AGENT);
    let b = web.login(AGENT);
    assert_ne!(a.cookie, b.cookie);
    assert_eq!(a.get("/tasks").status(), 200);
    let planted =
        "mailrules_session=0000000000000000000000000000000000000000000000000000000000000000";
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let answer = client
        .get(web.url("/tasks"))
        .header("cookie", planted)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 303);
    // Logging in with a planted cookie gives a fresh id, not the planted one.
    let answer = web.try_login(AGENT, PASSWORD, "/tasks");
    let fresh = set_cookie(&answer, "mailrules_session").unwrap();
    assert!(!fresh.starts_with(planted), "{fresh}");
}

#[test]
fn passwords_and_session_ids_reach_neither_the_log_nor_the_store() {
    let w = team();
    add_user(&w, "petr@acme.example", "agent");
    let web = WebServer::start(&w);
    assert_eq!(
        web.try_login(AGENT, "my-wrong-secret-guess", "/tasks")
            .status(),
        401
    );
    let s = web.login(VIEWER);
    let id = s
        .cookie
        .trim_start_matches("mailrules_session=")
        .to_string();
    assert_eq!(s.get("/tasks").status(), 200);
    drop(web);
    let log = std::fs::read_to_string(w.path("serve.log")).unwrap();
    assert!(
        log.contains("logged in"),
        "the log says who logged in:\n{log}"
    );
    for secret in [PASSWORD, "my-wrong-secret-guess", id.as_str()] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    let mut store = std::fs::read(w.path("store.db")).unwrap();
    if let Ok(wal) = std::fs::read(w.path("store.db-wal")) {
        store.extend(wal);
    }
    assert!(
        !store.windows(id.len()).any(|win| win == id.as_bytes()),
        "the session id is in the store"
    );
    assert!(!store
        .windows(PASSWORD.len())
        .any(|win| win == PASSWORD.as_bytes()));
}

#[test]
fn a_public_address_without_a_proxy_is_refused() {
    let w = Workdir::with_rules(&[("rules.toml", RULES)]);
    let out = w.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("behind_proxy = true"), "{stderr}");
    web_section(&w, "listen = \"0.0.0.0:8080\"");
    let out = w.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[web]"));
}

#[test]
fn healthz_answers_503_with_the_reason_when_the_store_cannot_be_read() {
    let w = team();
    let web = WebServer::start(&w);
    assert_eq!(web.get("/healthz").status(), 200);
    std::fs::write(w.path("store.db"), vec![b'x'; 8192]).unwrap();
    let _ = std::fs::remove_file(w.path("store.db-wal"));
    let _ = std::fs::remove_file(w.path("store.db-shm"));
    let answer = web.get("/healthz");
    assert_eq!(answer.status(), 503);
    let why = answer.text().unwrap();
    assert!(why.contains("store"), "{why}");
    // A store that is gone is not created again by the check.
    std::fs::remove_file(w.path("store.db")).unwrap();
    assert_eq!(web.get("/healthz").status(), 503);
    assert!(!w.path("store.db").exists());
}
