//! A private Dovecot for tests: its own temp dir (config, Maildir, passwd-file, logs), listening
//! on 127.0.0.1 on free ports, stopped on Drop. Works as root (login processes as `dovenull`,
//! mail owned by `dovecot`) and as a normal user (everything as that user).

use std::future::Future;
use std::io::Read;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_imap::Session;
use futures::StreamExt;

pub const USER: &str = "support@acme.example";
pub const PASSWORD: &str = "correct horse";

pub struct Dovecot {
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    /// Plain IMAP (STARTTLS offered when started with TLS).
    pub port: u16,
    /// Implicit TLS, when started with TLS.
    pub tls_port: Option<u16>,
    /// The self-signed certificate (PEM), when started with TLS.
    pub certificate: Option<PathBuf>,
}

impl Dovecot {
    pub fn start() -> Dovecot {
        Dovecot::launch(false, None, "")
    }

    /// With a freshly generated self-signed certificate for 127.0.0.1.
    pub fn start_with_tls() -> Dovecot {
        Dovecot::launch(true, None, "")
    }

    /// Advertising only `capabilities` after login (e.g. without MOVE or UIDPLUS), as an
    /// older server would.
    pub fn start_with_capabilities(capabilities: &str) -> Dovecot {
        Dovecot::launch(false, Some(capabilities), "")
    }

    /// With the user's folders under `INBOX.`, delimiter `.`, as Cyrus and Courier have them.
    pub fn start_with_inbox_prefix() -> Dovecot {
        Dovecot::launch(
            false,
            None,
            "namespace inbox {\n  inbox = yes\n  prefix = INBOX.\n  separator = .\n}\n",
        )
    }

    /// Signing in with OAuth2 access tokens checked at `introspection_url` (RFC 7662, POST),
    /// offering the SASL `mechanisms` (e.g. `xoauth2`, or `xoauth2 oauthbearer`); LOGIN with
    /// [`PASSWORD`] keeps working (for putting mail in).
    pub fn start_with_oauth2(introspection_url: &str, mechanisms: &str) -> Dovecot {
        Dovecot::launch_with(false, None, "", Some((introspection_url, mechanisms)))
    }

    fn launch(tls: bool, capabilities: Option<&str>, extra: &str) -> Dovecot {
        Dovecot::launch_with(tls, capabilities, extra, None)
    }

    fn launch_with(
        tls: bool,
        capabilities: Option<&str>,
        extra: &str,
        oauth2: Option<(&str, &str)>,
    ) -> Dovecot {
        dovecot_binary(); // fails early with a clear message when Dovecot is missing
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let running_as_root = owner_uid(&root) == 0;
        // Dovecot's unprivileged processes must reach the sockets and the mail below here.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["base", "state", "mail"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        let (login_user, internal_user, internal_group, mail_user) = if running_as_root {
            // Dovecot refuses to run login processes or mail access as root.
            let (uid, gid) = (id("-u", "dovecot"), id("-g", "dovecot"));
            std::os::unix::fs::chown(root.join("mail"), Some(uid), Some(gid)).unwrap();
            let dovecot = "dovecot".to_string();
            ("dovenull".to_string(), dovecot.clone(), dovecot, (uid, gid))
        } else {
            // Everything runs as the current user; it cannot switch to anyone else.
            let me = id_text("-un");
            let group = id_text("-gn");
            let uid = owner_uid(&root);
            let gid = std::fs::metadata(&root)
                .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
                .unwrap();
            (me.clone(), me, group, (uid, gid))
        };
        std::fs::write(root.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let port = free_port();
        let tls_port = tls.then(free_port);
        let certificate = tls.then(|| generate_certificate(&root));
        let ssl = match &certificate {
            Some(cert) => format!(
                "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n",
                cert.display(),
                root.join("key.pem").display()
            ),
            None => "ssl = no\n".to_string(),
        };
        let capability = capabilities
            .map(|c| format!("imap_capability = {c}\n"))
            .unwrap_or_default();
        let r = root.display();
        // The oauth2 passdb only for the token mechanisms; LOGIN goes on to the passwd-file.
        let (token_mechanisms, token_passdb) = match oauth2 {
            Some((introspection_url, mechanisms)) => {
                std::fs::write(
                    root.join("dovecot-oauth2.conf.ext"),
                    format!(
                        "introspection_mode = post\nintrospection_url = {introspection_url}\n\
                         username_attribute = username\nactive_attribute = active\n\
                         active_value = true\nforce_introspection = yes\n"
                    ),
                )
                .unwrap();
                (
                    format!(" {mechanisms}"),
                    format!(
                        "auth_verbose = yes\npassdb {{\n  driver = oauth2\n  mechanisms = {mechanisms}\n  \
                         args = {r}/dovecot-oauth2.conf.ext\n}}\n"
                    ),
                )
            }
            None => (String::new(), String::new()),
        };
        let config = format!(
            "base_dir = {r}/base\nstate_dir = {r}/state\nlog_path = {r}/dovecot.log\n\
             protocols = imap\nlisten = 127.0.0.1\n{ssl}{capability}\
             disable_plaintext_auth = no\nauth_mechanisms = plain login{token_mechanisms}\n\
             default_login_user = {login_user}\ndefault_internal_user = {internal_user}\n\
             default_internal_group = {internal_group}\nfirst_valid_uid = 1\n\
             mail_location = maildir:{r}/mail/%u\n\
             {token_passdb}passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={} gid={} home={r}/mail/%u\n}}\n\
             service anvil {{\n  chroot =\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n\
             inet_listener imaps {{\n    address = 127.0.0.1\n    port = {}\n  }}\n}}\n\
             service stats {{\n  chroot =\n}}\n{extra}",
            mail_user.0,
            mail_user.1,
            tls_port.unwrap_or(0),
        );
        let config_path = root.join("dovecot.conf");
        std::fs::write(&config_path, config).unwrap();
        let mut dovecot = Dovecot {
            dir,
            config: config_path,
            child: None,
            port,
            tls_port,
            certificate,
        };
        dovecot.start_again();
        dovecot
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the server (again) with the same config, ports and mail; waits until it greets.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "dovecot is already running");
        let child = Command::new(dovecot_binary())
            .arg("-F")
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start dovecot");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if greets(self.port) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("dovecot exited with {status}; its log:\n{}", self.log());
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!(
                    "dovecot did not accept connections within 20s; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM, as an operator would) and waits until it is gone.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// A password file with the right password, as `password_file` would name it.
    pub fn password_file(&self) -> PathBuf {
        password_file_in(self.dir.path())
    }

    /// A logged-in session of our own, for putting mail in and looking at folders.
    pub async fn session(&self) -> Session<tokio::net::TcpStream> {
        login(self.port).await
    }

    /// APPENDs `raw` to `folder` (created if missing).
    pub async fn append(&self, folder: &str, raw: &[u8]) {
        let mut session = self.session().await;
        let _ = session.create(folder).await;
        session.append(folder, None, None, raw).await.unwrap();
        session.logout().await.unwrap();
    }

    /// APPENDs every message of `raws` to `folder` (created if missing) over one session.
    pub async fn append_all(&self, folder: &str, raws: &[Vec<u8>]) {
        let mut session = self.session().await;
        let _ = session.create(folder).await;
        for raw in raws {
            session.append(folder, None, None, raw).await.unwrap();
        }
        session.logout().await.unwrap();
    }

    /// The raw messages in `folder`, in UID order (empty if the folder does not exist).
    pub async fn messages(&self, folder: &str) -> Vec<Vec<u8>> {
        let mut session = self.session().await;
        let mut raws = Vec::new();
        if let Ok(mailbox) = session.examine(folder).await {
            if mailbox.exists > 0 {
                let mut fetches = session.fetch("1:*", "(UID BODY.PEEK[])").await.unwrap();
                let mut found = Vec::new();
                while let Some(fetch) = fetches.next().await {
                    let fetch = fetch.unwrap();
                    if let (Some(uid), Some(body)) = (fetch.uid, fetch.body()) {
                        found.push((uid, body.to_vec()));
                    }
                }
                drop(fetches);
                found.sort();
                raws = found.into_iter().map(|(_, raw)| raw).collect();
            }
        }
        session.logout().await.unwrap();
        raws
    }

    /// How many messages `folder` holds (0 if it does not exist); reads no message.
    pub async fn count(&self, folder: &str) -> usize {
        let mut session = self.session().await;
        let exists = session.examine(folder).await.map_or(0, |m| m.exists);
        session.logout().await.unwrap();
        exists as usize
    }

    /// The Maildir file holding the message whose raw text contains `needle`.
    pub fn maildir_file(&self, needle: &str) -> PathBuf {
        let mut dirs = vec![self.dir.path().join("mail")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if std::fs::read(&path)
                    .is_ok_and(|raw| String::from_utf8_lossy(&raw).contains(needle))
                {
                    return path;
                }
            }
        }
        panic!("no message file contains {needle:?}");
    }

    /// Message-IDs (without <>) of the messages in `folder`.
    pub async fn message_ids(&self, folder: &str) -> Vec<String> {
        self.messages(folder)
            .await
            .iter()
            .filter_map(|raw| header(raw, "Message-ID"))
            .map(|id| id.trim_matches(['<', '>']).to_string())
            .collect()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `check` every 50 ms until it returns true; panics with `what` after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A small test message with a unique Message-ID.
pub fn message(id: &str, subject: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "From: Client <client@example.org>\r\nTo: support@acme.example\r\n\
         Subject: {subject}\r\nMessage-ID: <{id}@example.org>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n{extra_headers}\r\nHello, this is {id}.\r\n"
    )
    .into_bytes()
}
/// The value of header `name` in `raw` (first occurrence, unfolded lines only).
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    text.lines().take_while(|l| !l.is_empty()).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

fn dovecot_binary() -> PathBuf {
    let path = PathBuf::from("/usr/sbin/dovecot");
    assert!(
        path.exists(),
        "these tests need Dovecot: apt-get install -y dovecot-imapd (scripts/test does it)"
    );
    path
}

fn owner_uid(path: &Path) -> u32 {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(path).unwrap())
}

fn id(flag: &str, user: &str) -> u32 {
    let out = Command::new("id").arg(flag).arg(user).output().unwrap();
    assert!(
        out.status.success(),
        "no user {user:?} (installed with dovecot-core)"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `id FLAG` for the current user, e.g. its name (`-un`) or group name (`-gn`).
fn id_text(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn greets(port: u16) -> bool {
    let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 64];
    matches!(tcp.read(&mut buf), Ok(n) if n > 4 && buf.starts_with(b"* OK"))
}

/// A self-signed certificate for 127.0.0.1 the way operators make one (OpenSSL's defaults mark
/// it as a CA); returns the certificate path, the key is `key.pem` beside it.
fn generate_certificate(dir: &Path) -> PathBuf {
    let cert = dir.join("cert.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the openssl command is needed to make a test certificate");
    assert!(status.success(), "openssl could not make a certificate");
    cert
}

/// `dir/imap.pass` holding [`PASSWORD`], as a mailbox's `password_file` names it (every test
/// server's user has the same password).
pub fn password_file_in(dir: &Path) -> PathBuf {
    let path = dir.join("imap.pass");
    std::fs::write(&path, format!("{PASSWORD}\n")).unwrap();
    path
}

/// A session of our own on the test server at `port`, logged in as [`USER`].
pub async fn login(port: u16) -> Session<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // APPEND writes the command, then the literal, then its CRLF: without NODELAY each small
    // write waits for the server's delayed ACK (~90 ms an APPEND on Cyrus and Courier instead
    // of ~2 ms).
    tcp.set_nodelay(true).unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().unwrap();
    client
        .login(USER, PASSWORD)
        .await
        .map_err(|(e, _)| e)
        .unwrap()
}
