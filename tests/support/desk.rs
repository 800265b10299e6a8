//! Test harness: a help desk as the web's tests need it. A scratch directory with a config
//! (its `[smtp]` pointing at a private aiosmtpd), rules, a store seeded through the built
//! binary (`ingest`, `user add`), and `mailrules serve` on a free 127.0.0.1 port, stopped when
//! dropped.
//!
//! It starts `serve` itself rather than through `web.rs`'s `WebServer`: that one holds a
//! blocking reqwest client, whose runtime may not be dropped inside the browser tests' async
//! (tokio) test functions.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::smtp::SmtpServer;

pub struct Desk {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub smtp: SmtpServer,
    serve: Option<Child>,
    /// `http://127.0.0.1:PORT` once serving.
    pub base: String,
    mails: usize,
}

impl Desk {
    /// A desk whose rules directory holds `rules` (one file), with its own SMTP server.
    pub fn new(rules: &str) -> Desk {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/10-desk.toml"), rules).unwrap();
        let smtp = SmtpServer::start();
        let config = dir.path().join("mailrules.toml");
        let text = format!(
            "store = \"store.db\"\nrules = \"rules\"\nunmatched = \"thread\"\n\n[staff]\n\
             domains = [\"acme.example\"]\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\n\
             tls = \"none\"\nfrom = \"Поддержка ACME <support@acme.example>\"\n",
            smtp.port
        );
        std::fs::write(&config, text).unwrap();
        Desk {
            dir,
            config,
            smtp,
            serve: None,
            base: String::new(),
            mails: 0,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailrules"));
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env_remove("MAILRULES_CONFIG")
            .env_remove("MAILRULES_USER")
            .env("MAILRULES_LOG", "warn");
        cmd
    }

    /// Runs `mailrules ARGS` with `stdin`, asserts success, returns stdout.
    pub fn ok_with(&self, args: &[&str], stdin: &str) -> String {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out: Output = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "mailrules {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, "")
    }

    /// `mailrules ARGS --json`, parsed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.ok(&args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}"))
    }

    /// `mailrules user add EMAIL --role ROLE` with `password` on standard input.
    pub fn add_user(&self, email: &str, role: &str, password: &str) {
        self.ok_with(
            &["user", "add", email, "--role", role],
            &format!("{password}\n"),
        );
    }

    /// Writes `raw` as an .eml file and runs `mailrules ingest` on it; asserts it applied.
    pub fn ingest(&mut self, raw: &str) -> Value {
        self.mails += 1;
        let path = self.dir.path().join(format!("mail-{}.eml", self.mails));
        std::fs::write(&path, raw.replace('\n', "\r\n")).unwrap();
        let result = self.json(&["ingest", path.to_str().unwrap()]);
        assert_eq!(result["failed"], 0, "{result:#}");
        assert_eq!(result["processed"], 1, "{result:#}");
        result
    }

    /// `task show ID` as JSON.
    pub fn task(&self, id: i64) -> Value {
        self.json(&["task", "show", &id.to_string()])
    }

    /// `task history ID` as JSON entries.
    pub fn history(&self, id: i64) -> Vec<Value> {
        self.json(&["task", "history", &id.to_string()])
            .as_array()
            .unwrap()
            .clone()
    }

    /// Starts `mailrules serve --listen 127.0.0.1:0` and waits until it says its port.
    pub fn serve(&mut self) {
        let mut child = self
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`mailrules serve` did not say where it listens (said {line:?})");
        };
        self.base = base.to_string();
        self.serve = Some(child);
    }

    /// `BASE/PATH` (PATH starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        if let Some(mut child) = self.serve.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A plain-text mail from `from` (`Name <address>`) with this subject, Message-ID and Date.
pub fn mail(n: usize, from: &str, subject: &str, date: &str, body: &str) -> String {
    format!(
        "From: {from}\nTo: support@acme.example\nSubject: {subject}\nDate: {date}\n\
         Message-ID: <desk-{n}@client.example>\nMIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{body}\n"
    )
}
