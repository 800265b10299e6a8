//! Hostile mail shown in the browser: script in the subject, the body, the sender's name and
//! an attachment's name, and an HTML part with scripts, event handlers, `javascript:` links,
//! remote images, stylesheets and CSS `url()`s, all aimed at a local canary server. Every page
//! that shows the mail is opened; no script may run and the canary must hear nothing.

use serde_json::Value;

use super::{log_in, seeded_desk, AGENT};
use crate::support::browser::Browser;
use crate::support::canary::Canary;

/// Each payload, if it ever ran, would set `window.pwned` and the document's title.
const RUN: &str = "window.pwned=1;document.title='pwned'";

fn hostile_mail(canary: &Canary) -> String {
    let img = canary.url("img.png");
    let css = canary.url("style.css");
    let bg = canary.url("background.png");
    let frame = canary.url("frame.html");
    let script_src = canary.url("evil.js");
    let html = format!(
        r#"<html><head><style>body {{ background: url({bg}); }} @import url({css});</style>
<link rel="stylesheet" href="{css}"><script src="{script_src}"></script>
<meta http-equiv="refresh" content="0; url={frame}"></head>
<body onload="{RUN}">
<p>Здравствуйте!<script>{RUN}</script></p>
<img src="{img}" onerror="{RUN}">
<img src="x" onerror="{RUN}">
<svg onload="{RUN}"><image href="{img}"/></svg>
<div style="background-image: url({bg})">фон</div>
<a href="javascript:{RUN}" id="js-link">нажмите</a>
<iframe src="{frame}"></iframe><iframe srcdoc="<script>{RUN}</script>"></iframe>
<object data="{frame}"></object><embed src="{frame}">
<form action="{frame}"><button formaction="javascript:{RUN}">ok</button></form>
<video poster="{img}"></video><audio src="{img}" autoplay></audio>
</body></html>"#
    );
    format!(
        "From: \"<img src=x onerror={RUN}><script>{RUN}</script>\" <evil@attacker.example>\n\
         To: support@acme.example\n\
         Subject: <script>{RUN}</script><img src=\"{img}\" onerror=\"{RUN}\">\n\
         Date: Mon, 30 Nov 2026 11:00:00 +0000\n\
         Message-ID: <hostile-1@attacker.example>\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\n\n\
         --outer\n\
         Content-Type: multipart/alternative; boundary=\"inner\"\n\n\
         --inner\n\
         Content-Type: text/plain; charset=utf-8\n\n\
         Текст <script>{RUN}</script> <img src=\"{img}\" onerror=\"{RUN}\"> [link](javascript:{RUN})\n\
         --inner\n\
         Content-Type: text/html; charset=utf-8\n\n\
         {html}\n\
         --inner--\n\
         --outer\n\
         Content-Type: text/html; name=\"<img src=x onerror={RUN}>.html\"\n\
         Content-Disposition: attachment; filename=\"<script>{RUN}</script>.html\"\n\n\
         <script>{RUN}</script>\n\
         --outer--\n"
    )
}

/// Asserts that no payload ran on the page now shown.
async fn nothing_ran(browser: &Browser, page: &str) {
    // Give anything that would load (images, frames, stylesheets) its chance first.
    assert!(
        browser
            .wait_until("return document.readyState === 'complete';")
            .await
    );
    assert_eq!(
        browser.eval("return window.pwned === undefined;").await,
        Value::Bool(true),
        "a script ran on {page}"
    );
    let title = browser.client.title().await.unwrap();
    assert_ne!(title, "pwned", "a script ran on {page}");
    let live = browser
        .eval(
            "return [...document.querySelectorAll('script, iframe, object, embed, img[onerror], \
             [onload], [onerror], [onclick], a[href^=\"javascript:\" i], [formaction]')]
              .filter(e => !(e.tagName === 'SCRIPT' && e.src && new URL(e.src).origin === location.origin))
              .map(e => e.outerHTML);",
        )
        .await;
    assert_eq!(
        live,
        Value::Array(vec![]),
        "live markup from the mail on {page}"
    );
}

#[tokio::test]
async fn hostile_mail_runs_no_script_and_fetches_nothing_on_any_page() {
    let canary = Canary::start("<script>window.pwned=1</script>");
    let mut desk = seeded_desk();
    desk.ingest(&hostile_mail(&canary));
    let task = desk
        .json(&["task", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .max()
        .unwrap();
    let browser = Browser::start().await;
    log_in(&browser, &desk, AGENT).await;

    browser.open(&desk.url("/tasks")).await;
    browser.wait_text("#task-table").await;
    nothing_ran(&browser, "the queue").await;

    browser.open(&desk.url(&format!("/tasks/{task}"))).await;
    let title = browser.wait_text("#task-title").await;
    assert!(
        title.contains("<script>"),
        "the subject is shown as text: {title}"
    );
    nothing_ran(&browser, "the task").await;

    let message = browser
        .eval("return document.querySelector('#timeline li.kind-mail').dataset.message;")
        .await;
    let message = message.as_str().unwrap().to_string();
    browser
        .open(&desk.url(&format!("/messages/{message}")))
        .await;
    browser.wait_text("#main").await;
    nothing_ran(&browser, "the message").await;
    let page = browser.eval("return document.body.innerText;").await;
    let page = page.as_str().unwrap();
    assert!(
        page.contains("Здравствуйте!"),
        "the HTML part is shown: {page}"
    );
    assert!(
        page.contains(".html"),
        "the attachment is listed by its name: {page}"
    );

    // The original and the attachment (an HTML file with a script): shown as text or
    // downloaded, never run as a page of the desk.
    let links = browser
        .eval("return [...document.querySelectorAll('a[href*=\"/attachments/\"], a[href$=\"/raw\"]')].map(a => a.getAttribute('href'));")
        .await;
    let links: Vec<String> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert!(
        links.iter().any(|l| l.contains("/attachments/")),
        "the message page links its attachment: {links:?}"
    );
    for link in &links {
        browser.open(&desk.url(link)).await;
        nothing_ran(&browser, link).await;
    }

    browser.open(&desk.url("/messages")).await;
    browser.wait_text("#main").await;
    nothing_ran(&browser, "the messages").await;

    assert_eq!(
        canary.requests(),
        Vec::<String>::new(),
        "a page fetched from the canary"
    );
    browser.close().await;
}
