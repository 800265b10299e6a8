//! Test harness: a real headless Chromium driven over WebDriver. Starts Debian's
//! `chromedriver` on a free 127.0.0.1 port, opens a session with `fantoccini`, and stops
//! chromedriver and every Chromium process it started when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use super::smtp::free_port;

/// Where Debian's `chromium` and `chromium-driver` packages put the two programs.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The flags that make Chromium run headless in a container without reaching out anywhere:
/// no sandbox (tests may run as root), no GPU, no QUIC, and none of the background fetches
/// (component updates, sync, first-run pages) that would talk to Google. The tests assert
/// that pages fetch nothing; the browser itself must not either.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// How long a page may take to show what a test waits for. Generous: the machine is shared
/// and a debug build is slow; tests never assert how fast anything is.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// Panics with what to install when one of the two programs is missing: these tests must
/// never pass by not running.
fn require(path: &str) {
    if !Path::new(path).is_file() {
        panic!(
            "{path} is missing: the browser tests need Debian's Chromium and its WebDriver; \
             install them with `apt-get install -y chromium chromium-driver` (scripts/test \
             does this on a fresh machine)"
        );
    }
}

/// Whether chromedriver answers `GET /status` with `"ready": true`.
fn driver_ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("\"ready\":true") || answer.contains("\"ready\": true")
}

impl Browser {
    /// Starts chromedriver and opens one headless Chromium session with a fresh profile.
    pub async fn start() -> Browser {
        require(CHROMIUM);
        require(CHROMEDRIVER);
        let profile = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: Chromium and its helpers inherit it, so dropping the
            // Browser can stop them all at once, even when a test panics mid-session.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let deadline = Instant::now() + PAGE_TIMEOUT;
        while !driver_ready(port) {
            if let Ok(Some(status)) = driver.try_wait() {
                panic!(
                    "{CHROMEDRIVER} exited at start ({status}) before it answered on port {port}"
                );
            }
            if Instant::now() > deadline {
                kill_group(&mut driver);
                panic!("{CHROMEDRIVER} did not answer on 127.0.0.1:{port} within {PAGE_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }

        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a json! object literal is an object")
        };
        let connected =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
        let client = match connected {
            Ok(client) => client,
            Err(e) => {
                kill_group(&mut driver);
                panic!("chromedriver could not open a headless Chromium session: {e}");
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Opens `url` and waits until its document has loaded.
    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("the browser could not open {url}: {e}"));
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed in the page: {e}\n{script}"))
    }

    /// Waits (bounded by PAGE_TIMEOUT) until `css` matches an element, and returns its text.
    pub async fn wait_text(&self, css: &str) -> String {
        let element = self
            .client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} appeared on the page: {e}"));
        element.text().await.unwrap()
    }

    /// Waits (bounded) until the page's script `condition` returns true; false after the
    /// timeout. For things that change without a reload (the queue's live updates).
    pub async fn wait_until(&self, condition: &str) -> bool {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            if self.eval(condition).await == Value::Bool(true) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes a PNG of the visible page to `path` (directories made as needed).
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Ends the session cleanly (Chromium exits); Drop stops whatever is left.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// Kills chromedriver's whole process group (chromedriver, Chromium and its helpers).
fn kill_group(driver: &mut Child) {
    let group = driver.id() as libc::pid_t;
    // SAFETY: kill(2) with a negative pid signals that process group; it touches no memory.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
    let _ = driver.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// docs/screenshots/NAME: where the browser run leaves the pictures the docs show.
pub fn screenshot_path(name: &str) -> PathBuf {
    super::workdir::root()
        .join("docs")
        .join("screenshots")
        .join(name)
}
