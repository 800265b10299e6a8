//! A private Cyrus IMAP 3.6 for tests: its own temp dir (imapd.conf, cyrus.conf, sasldb, mail
//! spool), `master` listening on 127.0.0.1 on a free port with plain IMAP, stopped on Drop.
//! The daemons come from the cyrus-imapd package that scripts/test unpacks (it conflicts with
//! Dovecot's, so it is not installed); `master` and the tools come from cyrus-common.
//! Needs root: `master` starts as root and drops to the `cyrus` user. A start takes 0.1-0.4 s
//! (two shared cores, other tests running).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::dovecot::{free_port, greets, PASSWORD, USER};
use super::imap_server::{logs_in, require_root, signal, unpacked};

/// The login name with its domain: Cyrus runs with `virtdomains: userid`, so the user
/// `support@acme.example` is the user `support` in the domain `acme.example`, and its sasldb
/// entry is that user in that realm.
fn user_and_realm() -> (&'static str, &'static str) {
    USER.split_once('@').expect("USER has a domain")
}

pub struct Cyrus {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Plain IMAP on 127.0.0.1.
    pub port: u16,
}

impl Cyrus {
    pub fn start() -> Cyrus {
        let master = PathBuf::from("/usr/lib/cyrus/bin/master");
        let saslpasswd = PathBuf::from("/usr/sbin/saslpasswd2");
        let bin = unpacked("cyrus", "usr/lib/cyrus/bin/imapd")
            .parent()
            .unwrap()
            .to_path_buf();
        for (path, package) in [(&master, "cyrus-common"), (&saslpasswd, "sasl2-bin")] {
            assert!(
                path.exists(),
                "the Cyrus tests need {} from {package}: run scripts/test, which installs it",
                path.display()
            );
        }
        require_root("Cyrus (its master starts as root and becomes the cyrus user)");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let r = root.display();
        // What `mkimap` would make: the config directory's parts and the spool.
        for sub in [
            "conf/db",
            "conf/socket",
            "conf/proc",
            "conf/lock",
            "conf/log",
            "conf/msg",
            "conf/user",
            "conf/quota",
            "conf/sieve",
            "conf/ptclient",
            "spool",
        ] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let port = free_port();
        // `autocreate_quota: 0` creates the user's INBOX at the first login, so no admin has to
        // CREATE `user.support`. The namespace is Debian's default: personal folders below
        // `INBOX.`, `.` as the delimiter. `idlesocket` is where imapd hears from idled.
        let imapd_conf = format!(
            "configdirectory: {r}/conf\npartition-default: {r}/spool\nservername: localhost\n\
             admins: cyrus\nallowplaintext: yes\nsasl_pwcheck_method: auxprop\n\
             sasl_auxprop_plugin: sasldb\nsasl_sasldb_path: {r}/sasldb2\n\
             sasl_mech_list: PLAIN LOGIN\nvirtdomains: userid\nautocreate_quota: 0\n\
             altnamespace: no\nunixhierarchysep: no\nidlesocket: {r}/conf/socket/idle\n\
             syslog_prefix: mailrules-test\n"
        );
        std::fs::write(root.join("imapd.conf"), imapd_conf).unwrap();
        let conf = format!("{r}/imapd.conf");
        let b = bin.display();
        // idled in DAEMON{} is what makes IDLE prompt: without it imapd looks for new mail
        // only every 60 s (Debian ships it commented out). prefork=0: no idle imapd waiting.
        let cyrus_conf = format!(
            "START {{\n  recover cmd=\"/usr/lib/cyrus/bin/ctl_cyrusdb -C {conf} -r\"\n}}\n\
             SERVICES {{\n  imap cmd=\"{b}/imapd -C {conf}\" listen=\"127.0.0.1:{port}\" \
             prefork=0\n}}\nEVENTS {{\n}}\nDAEMON {{\n  idled cmd=\"{b}/idled -C {conf}\"\n}}\n"
        );
        std::fs::write(root.join("cyrus.conf"), cyrus_conf).unwrap();
        let (user, realm) = user_and_realm();
        sasl_password(&saslpasswd, &root, user, realm);
        // Everything below here belongs to the user master becomes.
        let status = Command::new("chown")
            .args(["-R", "cyrus:mail"])
            .arg(&root)
            .status()
            .unwrap();
        assert!(status.success(), "cannot chown the Cyrus dir to cyrus:mail");
        std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut cyrus = Cyrus {
            dir,
            child: None,
            port,
        };
        cyrus.start_again();
        cyrus
    }

    /// Starts `master` (again) with the same config, port and mail; waits until the user can
    /// log in (the first login creates the INBOX).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "cyrus is already running");
        let root = self.dir.path();
        let log = std::fs::File::create(root.join("master.log")).unwrap();
        let child = Command::new("/usr/lib/cyrus/bin/master")
            .arg("-C")
            .arg(root.join("imapd.conf"))
            .arg("-M")
            .arg(root.join("cyrus.conf"))
            .arg("-p")
            .arg(root.join("master.pid"))
            // Its own process group: stop() can reach every imapd it forked.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start the Cyrus master");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if greets(self.port) && logs_in(self.port) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "cyrus master exited with {status}; its output:\n{}",
                    self.log()
                );
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "cyrus did not let {USER} log in within 30s (it logs to syslog only); \
                     master's output:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM to master, which ends its children) and waits until it is
    /// gone; whatever is left of its process group is killed.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = child.id() as i32;
        signal(group, libc::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        signal(-group, libc::SIGKILL);
        let _ = child.kill();
        let _ = child.wait();
    }

    /// What master wrote to stdout and stderr (the services themselves log to syslog only).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("master.log")).unwrap_or_default()
    }

    /// A password file with the right password, as `password_file` would name it.
    pub fn password_file(&self) -> PathBuf {
        super::dovecot::password_file_in(self.dir.path())
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes `user@realm` with [`PASSWORD`] into `dir/sasldb2`.
fn sasl_password(saslpasswd: &Path, dir: &Path, user: &str, realm: &str) {
    use std::io::Write;
    let mut child = Command::new(saslpasswd)
        .args(["-p", "-c", "-f"])
        .arg(dir.join("sasldb2"))
        .args(["-u", realm, user])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    // -p: the password is the first line of stdin, not asked for on a terminal.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "saslpasswd2 failed");
}
