//! `mailrules serve` for the web's tests: started on 127.0.0.1 on a free port against a
//! workdir's config and store, stopped when dropped; a small HTTP client that logs in as a
//! person (session cookie, CSRF token) over plain HTTP with reqwest.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

use super::workdir::Workdir;

pub const PASSWORD: &str = "correct horse battery";

/// A running `mailrules serve` (or the web of a `mailrules run` the test started itself).
pub struct WebServer {
    child: Option<Child>,
    pub base: String,
    client: Client,
}

impl WebServer {
    /// Starts `mailrules serve --listen 127.0.0.1:0` on `w` and waits for its address; its log
    /// (info and up) goes to `serve.log` in the workdir.
    pub fn start(w: &Workdir) -> WebServer {
        let log = std::fs::File::create(w.path("serve.log")).unwrap();
        let mut child = w
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .env("MAILRULES_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("mailrules serve starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep reading so that the server never blocks on a full pipe.
            let mut rest = String::new();
            while reader.read_line(&mut rest).unwrap_or(0) > 0 {
                rest.clear();
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve prints its address");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line of serve: {line:?}"))
            .to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        WebServer {
            child: Some(child),
            base,
            client: client(),
        }
    }

    /// The web already listening on 127.0.0.1:`port` (started by the test; not stopped here).
    pub fn at(port: u16) -> WebServer {
        WebServer {
            child: None,
            base: format!("http://127.0.0.1:{port}"),
            client: client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET without a session.
    pub fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().unwrap()
    }

    /// POST a form without a session (extra cookies in `cookie`, may be empty).
    pub fn post(&self, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(fields));
        if !cookie.is_empty() {
            request = request.header(COOKIE, cookie);
        }
        request.send().unwrap()
    }

    /// Tries to log in; the answer as it came (303 on success).
    pub fn try_login(&self, email: &str, password: &str, next: &str) -> Response {
        let page = self.get("/login");
        let login_cookie =
            cookie_pair(&page, "mailrules_login").expect("the login form sets its cookie");
        let html = page.text().unwrap();
        let token = csrf_in(&html).expect("the login form carries a token");
        self.post(
            "/login",
            &login_cookie,
            &[
                ("csrf", &token),
                ("email", email),
                ("password", password),
                ("next", next),
            ],
        )
    }

    /// Logs in (asserting success) and returns the session.
    pub fn login(&self, email: &str) -> Session<'_> {
        let answer = self.try_login(email, PASSWORD, "/tasks");
        assert_eq!(answer.status(), 303, "login of {email} failed");
        let cookie = cookie_pair(&answer, "mailrules_session").expect("a session cookie");
        let mut session = Session {
            server: self,
            cookie,
            csrf: String::new(),
        };
        let html = session.page("/tasks");
        session.csrf = csrf_in(&html).expect("pages carry the session's CSRF token");
        session
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A logged-in person.
pub struct Session<'a> {
    server: &'a WebServer,
    /// `mailrules_session=...`
    pub cookie: String,
    pub csrf: String,
}

impl Session<'_> {
    pub fn get(&self, path: &str) -> Response {
        self.server
            .client
            .get(self.server.url(path))
            .header(COOKIE, &self.cookie)
            .send()
            .unwrap()
    }

    /// GET that must answer 200; the body.
    pub fn page(&self, path: &str) -> String {
        let answer = self.get(path);
        assert_eq!(answer.status(), 200, "GET {path}");
        answer.text().unwrap()
    }

    /// POST with the session's CSRF token.
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.server.post(path, &self.cookie, &all)
    }

    /// POST without adding a token (`fields` may carry a wrong one).
    pub fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.server.post(path, &self.cookie, fields)
    }
}

/// A client that does not follow redirects (tests look at them) and has no proxy.
fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// `name=value` of a cookie the answer sets.
pub fn cookie_pair(answer: &Response, name: &str) -> Option<String> {
    set_cookie(answer, name).map(|c| c.split(';').next().unwrap_or("").to_string())
}

/// The whole `Set-Cookie` header for `name`.
pub fn set_cookie(answer: &Response, name: &str) -> Option<String> {
    answer
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

pub fn location(answer: &Response) -> String {
    answer
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The value of the first hidden `csrf` field of a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[at..].split('"').next()?.to_string())
}

/// `application/x-www-form-urlencoded`.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Adds a staff account with [`PASSWORD`].
pub fn add_user(w: &Workdir, email: &str, role: &str) {
    let mut child = w
        .command(&["user", "add", email, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add {email}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds `[web]` lines to the workdir's config.
pub fn web_section(w: &Workdir, lines: &str) {
    let mut text = std::fs::read_to_string(&w.config).unwrap();
    text.push_str("\n[web]\n");
    text.push_str(lines);
    text.push('\n');
    std::fs::write(&w.config, text).unwrap();
}
