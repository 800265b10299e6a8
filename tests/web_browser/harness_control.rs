//! The control for every "nothing ran, nothing was fetched" assertion: on a page that does
//! run script and load a remote image, the same checks see both. Without it a broken harness
//! (script disabled, images off) would make the hostile-mail tests pass for the wrong reason.

use crate::support::browser::Browser;
use crate::support::canary::Canary;
use serde_json::Value;

#[tokio::test]
async fn the_harness_sees_a_script_run_and_a_remote_image_fetched() {
    let images = Canary::start("");
    let page = format!(
        "<!doctype html><title>control</title><script>window.pwned = 1; \
         document.title = 'pwned';</script><img src=\"{}\">",
        images.url("pixel.png")
    );
    let server = Canary::start(&page);
    let browser = Browser::start().await;
    browser.open(&server.url("page")).await;

    assert_eq!(browser.eval("return window.pwned;").await, Value::from(1));
    assert_eq!(browser.client.title().await.unwrap(), "pwned");
    assert!(
        browser
            .wait_until("return document.images[0].complete;")
            .await
    );
    assert_eq!(images.requests(), ["GET /pixel.png HTTP/1.1"]);
    browser.close().await;
}
