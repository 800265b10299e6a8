//! The web as a person meets it, in a real headless Chromium driven over WebDriver (issue
//! 15): `mailrules serve` on a free port over a store seeded by the real binary; logging in,
//! the queue, a task, replying, statuses and triggers, live updates, charts, hostile mail,
//! CSRF and roles. Each part is a submodule; this file holds what they share: the desk's
//! rules, its seed mail and logging in.

mod charts;
mod guards;
mod harness_control;
mod hostile;
mod work;

use fantoccini::Locator;
use serde_json::json;

use crate::support::browser::{Browser, PAGE_TIMEOUT};
use crate::support::desk::{mail, Desk};

pub const AGENT: &str = "anna@acme.example";
pub const VIEWER: &str = "vera@acme.example";
pub const ADMIN: &str = "boss@acme.example";
/// Every test account's password (a throw-away store).
pub const PASSWORD: &str = "correct horse battery staple";

/// Declared statuses, a choice field, an analytics table fed by rating mail, and a trigger
/// that marks a task once it waits for the customer: its effect is what the status test sees.
pub const RULES: &str = r#"
[[status]]
name = "Новая"
initial = true
[[status]]
name = "В работе"
[[status]]
name = "Ожидание ответа клиента"
[[status]]
name = "Завершенная"
closed = true

[[field]]
name = "Причина отказа"
type = "choice"
values = ["Дорого", "Не устроили сроки", "Другое"]

[[analytics]]
name = "Оценки"
columns = { "Оценка" = { type = "choice", values = ["отлично", "хорошо", "плохо"] } }

[[rule]]
name = "rating"
[rule.when]
subject = { contains = "Оценка работы" }
[rule.extract]
score = { after = "Оценка:" }
[[rule.do]]
action = "create_task"
[[rule.do]]
action = "analytics"
table = "Оценки"
values = { "Оценка" = "{score}" }

[[rule]]
name = "new-request"
[rule.when]
thread = "new"
[[rule.do]]
action = "create_task"

[[trigger]]
name = "waiting-for-customer"
on = "status_changed"
[trigger.when]
status = "Ожидание ответа клиента"
[[trigger.do]]
action = "set"
fields = { "Ждём клиента с" = "{new}" }
"#;

/// The customers' requests the desk starts with: tasks 1, 2 and 3.
pub const REQUESTS: [(&str, &str); 3] = [
    (
        "Иван Петров <ivan@client.example>",
        "Не печатает принтер в бухгалтерии",
    ),
    (
        "Ольга Смирнова <olga@shop.example>",
        "Счёт на оплату за ноябрь",
    ),
    (
        "Пётр Иванов <petr@factory.example>",
        "Доставка задерживается",
    ),
];

/// The ratings (month, score): tasks 4 to 9, each with one analytics row of that month.
pub const RATINGS: [(&str, &str); 6] = [
    ("Mon, 12 Jan 2026 10:00:00 +0000", "отлично"),
    ("Tue, 13 Jan 2026 10:00:00 +0000", "отлично"),
    ("Wed, 14 Jan 2026 10:00:00 +0000", "хорошо"),
    ("Thu, 15 Jan 2026 10:00:00 +0000", "отлично"),
    ("Mon, 09 Feb 2026 10:00:00 +0000", "плохо"),
    ("Tue, 10 Feb 2026 10:00:00 +0000", "плохо"),
];

/// A desk with the requests, the ratings, one account per role, and the web serving.
pub fn seeded_desk() -> Desk {
    let mut desk = Desk::new(RULES);
    for (n, (from, subject)) in REQUESTS.iter().enumerate() {
        let body = format!("Здравствуйте! {subject}. Помогите, пожалуйста.");
        desk.ingest(&mail(
            n,
            from,
            subject,
            "Mon, 30 Nov 2026 09:00:00 +0000",
            &body,
        ));
    }
    for (n, (date, score)) in RATINGS.iter().enumerate() {
        let body = format!("Оценка: {score}\nСпасибо.");
        let from = format!("Клиент {n} <rater{n}@client.example>");
        desk.ingest(&mail(
            100 + n,
            &from,
            "Оценка работы поддержки",
            date,
            &body,
        ));
    }
    desk.add_user(AGENT, "agent", PASSWORD);
    desk.add_user(VIEWER, "viewer", PASSWORD);
    desk.add_user(ADMIN, "admin", PASSWORD);
    desk.serve();
    desk
}

/// Logs `email` in through the login form and waits until the browser left /login.
pub async fn log_in(browser: &Browser, desk: &Desk, email: &str) {
    browser.open(&desk.url("/login")).await;
    let form = browser
        .client
        .form(Locator::Css("#login-form"))
        .await
        .expect("the login page has #login-form");
    form.set_by_name("email", email).await.unwrap();
    form.set_by_name("password", PASSWORD).await.unwrap();
    form.submit().await.unwrap();
    let left = browser
        .wait_until("return !window.location.pathname.startsWith('/login');")
        .await;
    assert!(left, "{email} was not let in within {PAGE_TIMEOUT:?}");
}

/// `fetch()`es PATH from the page (same origin, the browser's cookies) as METHOD with a
/// form-encoded BODY; the answer's status code.
pub async fn fetch_status(browser: &Browser, method: &str, path: &str, body: &str) -> u16 {
    let (method, path, body) = (json!(method), json!(path), json!(body));
    let script = format!(
        "const done = arguments[arguments.length - 1];
         const init = {{ method: {method}, credentials: 'same-origin', redirect: 'manual' }};
         if ({method} === 'POST') {{
           init.headers = {{ 'Content-Type': 'application/x-www-form-urlencoded' }};
           init.body = {body};
         }}
         fetch({path}, init).then(r => done(r.type === 'opaqueredirect' ? 303 : r.status),
                                    e => done(-1));"
    );
    let answer = browser
        .client
        .execute_async(&script, vec![])
        .await
        .unwrap_or_else(|e| panic!("fetch {method} {path} failed in the page: {e}"));
    answer
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or_else(|| panic!("fetch {method} {path} got no answer ({answer})"))
}
