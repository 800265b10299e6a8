//! Test harness: a real SMTP server (aiosmtpd, driven by `smtp_server.py`) on 127.0.0.1,
//! capturing mail into a Maildir; optional STARTTLS / implicit TLS with a throw-away
//! certificate, and scripted 4xx/5xx answers. Stopped when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use mailrules::config::{PasswordSource, SmtpConfig, TlsMode};

const SERVER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");

/// A Python that can import aiosmtpd: the system one first (where `apt-get install
/// python3-aiosmtpd` puts it), then whatever `python3` is on PATH. Panics when there is none:
/// these tests must never pass by not running.
pub fn python() -> &'static str {
    static FOUND: OnceLock<String> = OnceLock::new();
    FOUND.get_or_init(|| {
        for candidate in ["/usr/bin/python3", "python3"] {
            let ok = Command::new(candidate)
                .args(["-c", "import aiosmtpd"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return candidate.to_string();
            }
        }
        panic!(
            "no python3 with aiosmtpd found (tried /usr/bin/python3 and python3); \
             install it with `apt-get install -y python3-aiosmtpd` or `pip install aiosmtpd`"
        );
    })
}

/// A port nobody listens on right now (for "server down" tests and restarts on a known port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTls {
    Plain,
    Starttls,
    Implicit,
}

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `None`: any free port.
    pub port: Option<u16>,
    /// Capture into this Maildir instead of a fresh one (to keep mail across a restart).
    pub maildir: Option<PathBuf>,
    /// Answer RCPT with this line, e.g. `"550 5.1.1 No such user"`.
    pub reject: Option<String>,
    /// Only for this recipient.
    pub reject_only: Option<String>,
    /// Only the first N times (`None`: always).
    pub reject_times: Option<u32>,
    pub tls: ServerTls,
    /// Require AUTH XOAUTH2, the token checked at this OAuth2 introspection URL.
    pub xoauth2_introspect: Option<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            port: None,
            maildir: None,
            reject: None,
            reject_only: None,
            reject_times: None,
            tls: ServerTls::Plain,
            xoauth2_introspect: None,
        }
    }
}

/// A throw-away self-signed certificate for 127.0.0.1 (made with the openssl CLI).
pub struct TestCert {
    _dir: tempfile::TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCert {
    pub fn new() -> TestCert {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:prime256v1")
            .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("the openssl command is needed to make a test certificate");
        assert!(
            status.success(),
            "openssl could not make a test certificate"
        );
        TestCert {
            _dir: dir,
            cert,
            key,
        }
    }
}

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
    _own_maildir: Option<tempfile::TempDir>,
}

impl SmtpServer {
    /// A plain-text server on a free port that accepts everything.
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(ServerOptions::default(), None)
    }

    /// Starts the server and waits (bounded) until it listens. `cert` is needed for TLS.
    pub fn start_with(opts: ServerOptions, cert: Option<&TestCert>) -> SmtpServer {
        let (maildir, own) = match &opts.maildir {
            Some(dir) => (dir.clone(), None),
            None => {
                let dir = tempfile::tempdir().unwrap();
                (dir.path().join("Maildir"), Some(dir))
            }
        };
        let mut cmd = Command::new(python());
        cmd.arg(SERVER_SCRIPT)
            .arg("--maildir")
            .arg(&maildir)
            .arg("--port")
            .arg(opts.port.unwrap_or(0).to_string());
        if let Some(reject) = &opts.reject {
            cmd.args(["--reject", reject]);
        }
        if let Some(only) = &opts.reject_only {
            cmd.args(["--reject-only", only]);
        }
        if let Some(times) = opts.reject_times {
            cmd.args(["--reject-times", &times.to_string()]);
        }
        if let Some(url) = &opts.xoauth2_introspect {
            cmd.args(["--xoauth2-introspect", url]);
        }
        let tls_flag = match opts.tls {
            ServerTls::Plain => None,
            ServerTls::Starttls => Some("--starttls"),
            ServerTls::Implicit => Some("--implicit"),
        };
        if let Some(flag) = tls_flag {
            let cert = cert.expect("a TLS server needs a TestCert");
            cmd.arg(flag).arg(&cert.cert).arg(&cert.key);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start the test SMTP server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("the test SMTP server did not start within 20s");
            }
        };
        let port = match line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
        {
            Some(port) => port,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the test SMTP server failed to start (said {line:?})");
            }
        };
        SmtpServer {
            child,
            port,
            maildir,
            _own_maildir: own,
        }
    }

    /// Every captured message, oldest first.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        read_maildir(&self.maildir)
    }

    /// An `[smtp]` config pointing at this server.
    pub fn config(&self, tls: TlsMode) -> SmtpConfig {
        smtp_config(self.port, tls)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Messages in `maildir/new`, oldest first (by modification time, then name).
pub fn read_maildir(maildir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).unwrap();
            (modified, e.path())
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|(_, p)| std::fs::read(p).unwrap())
        .collect()
}

/// `[smtp]` settings for a test server on 127.0.0.1:`port`.
pub fn smtp_config(port: u16, tls: TlsMode) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls,
        ca_file: None,
        user: None,
        password: PasswordSource::None,
        oauth2: None,
        from: "Поддержка ACME <support@acme.example>".into(),
        max_attempts: 3,
        timeout: Duration::from_secs(10),
    }
}
