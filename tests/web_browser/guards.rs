//! The web's guards as a browser meets them: a POST without the session's CSRF token (from
//! the page itself or from another site's form) is refused with 403 and changes nothing; each
//! role sees and may post only what it is allowed; without a session every page but the login
//! sends the browser to it.

use fantoccini::Locator;
use serde_json::Value;

use super::{fetch_status, log_in, seeded_desk, ADMIN, AGENT, VIEWER};
use crate::support::browser::Browser;
use crate::support::canary::Canary;

/// This session's CSRF token, from the logout form every page carries.
async fn csrf(browser: &Browser) -> String {
    let token = browser
        .eval("const f = document.querySelector('#logout-form input[name=csrf]'); return f ? f.value : null;")
        .await;
    token
        .as_str()
        .expect("every page has the logout form with its CSRF token")
        .to_string()
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing() {
    let desk = seeded_desk();
    let before = (desk.task(1), desk.history(1));
    let browser = Browser::start().await;
    log_in(&browser, &desk, AGENT).await;
    browser.open(&desk.url("/tasks/1")).await;
    browser.wait_text("#status-form").await;
    let token = csrf(&browser).await;

    for body in [
        "status=Завершенная".to_string(),
        "status=Завершенная&csrf=".to_string(),
        format!("status=Завершенная&csrf={}", "0".repeat(token.len())),
    ] {
        let status = fetch_status(&browser, "POST", "/tasks/1/status", &body).await;
        assert_eq!(status, 403, "{body}");
    }
    for (path, body) in [
        ("/tasks/1/note", "text=подделка"),
        ("/tasks/1/reply", "text=подделка"),
        ("/tasks/1/close", ""),
        ("/tasks/1/assignee", "assignee=mallory@attacker.example"),
    ] {
        assert_eq!(
            fetch_status(&browser, "POST", path, body).await,
            403,
            "{path}"
        );
    }

    // Another site's page (another port is another origin) posting a form at the desk while
    // the person is logged in: the browser sends the cookie, the missing token stops it.
    let form = format!(
        "<!doctype html><form id=f method=post action=\"{}\">\
         <input name=status value=\"Завершенная\"></form>\
         <script>document.getElementById('f').submit()</script>",
        desk.url("/tasks/1/status")
    );
    let other_site = Canary::start(&form);
    browser.open(&other_site.url("page")).await;
    assert!(
        browser
            .wait_until(&format!(
                "return window.location.href.startsWith({});",
                serde_json::json!(desk.base)
            ))
            .await,
        "the other site's form was not submitted"
    );

    assert_eq!((desk.task(1), desk.history(1)), before);
    assert_eq!(desk.json(&["outbox"]), Value::Array(vec![]));
    // The same change with the token goes through: the refusals were the token's doing.
    let body = format!("status=Завершенная&csrf={token}");
    browser.open(&desk.url("/tasks/1")).await;
    assert_eq!(
        fetch_status(&browser, "POST", "/tasks/1/status", &body).await,
        303
    );
    assert_eq!(desk.task(1)["status"], "Завершенная");
    browser.close().await;
}

/// Pages every logged-in person may read.
const READ: [&str; 9] = [
    "/tasks",
    "/tasks/1",
    "/analytics",
    "/analytics/%D0%9E%D1%86%D0%B5%D0%BD%D0%BA%D0%B8",
    "/messages",
    "/outbox",
    "/mailboxes",
    "/api/tasks",
    "/api/tasks/1",
];

#[tokio::test]
async fn each_role_is_kept_to_its_routes() {
    let desk = seeded_desk();
    let browser = Browser::start().await;

    // No session: pages send the browser to the login, the API answers 401.
    browser.open(&desk.url("/login")).await;
    for path in READ.iter().chain(&["/rules", "/users"]) {
        let expected = if path.starts_with("/api/") { 401 } else { 303 };
        assert_eq!(
            fetch_status(&browser, "GET", path, "").await,
            expected,
            "{path} without a session"
        );
    }
    // A POST is sent to the login too (team.md: every route but three), and changes nothing.
    let before = desk.history(1);
    assert_eq!(
        fetch_status(&browser, "POST", "/tasks/1/note", "text=x").await,
        303
    );
    assert_eq!(desk.history(1), before);

    let message = desk.json(&["message", "list"]);
    let message = message.as_array().unwrap()[0]["id"].as_i64().unwrap();
    for (who, role) in [(VIEWER, "viewer"), (AGENT, "agent"), (ADMIN, "admin")] {
        browser.client.delete_all_cookies().await.unwrap();
        log_in(&browser, &desk, who).await;
        for path in READ {
            assert_eq!(
                fetch_status(&browser, "GET", path, "").await,
                200,
                "{role} reads {path}"
            );
        }
        for admins_only in ["/rules", "/users"] {
            let status = fetch_status(&browser, "GET", admins_only, "").await;
            let expected = if role == "admin" { 200 } else { 403 };
            assert_eq!(status, expected, "{role}: {admins_only}");
        }

        browser.open(&desk.url("/tasks/1")).await;
        browser.wait_text("#task-title").await;
        let forms = browser
            .eval("return ['#status-form', '#assignee-form', '#fields-form', '#note-form', '#reply-form', '#close-form'].filter(f => document.querySelector(f)).length;")
            .await;
        let works = role != "viewer";
        assert_eq!(
            forms,
            Value::from(if works { 6 } else { 0 }),
            "{role}: the task's change forms"
        );
        if !works {
            assert!(browser
                .client
                .find(Locator::Css("#reply-form"))
                .await
                .is_err());
        }

        // Posting with a valid token: a viewer is still refused.
        let token = csrf(&browser).await;
        let note = format!("text=заметка+от+{role}&csrf={token}");
        let posted = fetch_status(&browser, "POST", "/tasks/1/note", &note).await;
        assert_eq!(posted, if works { 303 } else { 403 }, "{role}: a note");
        let retry = format!("csrf={token}");
        let retried = fetch_status(
            &browser,
            "POST",
            &format!("/messages/{message}/retry"),
            &retry,
        )
        .await;
        if role == "admin" {
            assert_ne!(retried, 403, "an admin may retry");
        } else {
            assert_eq!(retried, 403, "{role}: retry is for admins");
        }
    }
    let notes: Vec<String> = desk.task(1)["comments"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|c| c["text"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert!(!notes.iter().any(|n| n.contains("viewer")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("agent")), "{notes:?}");
    browser.close().await;
}
