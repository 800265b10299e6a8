//! A private Courier-IMAP 5.0 for tests: its own temp dir (authdaemonrc, userdb, Maildir),
//! `couriertcpd` on 127.0.0.1 on a free port running `imaplogin` → `imapd Maildir`, with its
//! own `authdaemond`; stopped on Drop. imapd and imaplogin come from the courier-imap package
//! that scripts/test unpacks (it conflicts with Dovecot's, so it is not installed);
//! couriertcpd, authdaemond and the userdb tools from courier-base, courier-authdaemon and
//! courier-authlib-userdb.
//!
//! Courier's authentication library has its paths compiled in: imaplogin talks to
//! `/run/courier/authdaemon/socket`, authdaemond reads `/etc/courier/authdaemonrc` and the
//! userdb `/etc/courier/userdb.dat`. So everything runs under `unshare` in a mount namespace
//! of its own where the test dir's `run/` and `etc/` are bind-mounted over those two paths:
//! the machine's own Courier files (if any) are never touched, and several test servers run
//! side by side. A PID namespace ends all of them together: killing `unshare` kills its child,
//! PID 1 of the namespace, and with it every process inside. Needs root (for the mounts).
//! A start takes 0.1-0.25 s (two shared cores, other tests running).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::dovecot::{free_port, greets, PASSWORD, USER};
use super::imap_server::{logs_in, require_root, unpacked};

const AUTHDAEMOND: &str = "/usr/lib/courier/courier-authlib/authdaemond";
const COURIERTCPD: &str = "/usr/sbin/couriertcpd";

pub struct Courier {
    dir: tempfile::TempDir,
    /// `unshare`, whose death takes everything in the namespace with it.
    child: Option<Child>,
    /// Plain IMAP on 127.0.0.1.
    pub port: u16,
}

impl Courier {
    pub fn start() -> Courier {
        let imapd = unpacked("courier", "usr/bin/imapd");
        let imaplogin = unpacked("courier", "usr/lib/courier/courier/imaplogin");
        for (path, package) in [
            (AUTHDAEMOND, "courier-authdaemon"),
            (COURIERTCPD, "courier-base"),
            ("/usr/sbin/userdbpw", "courier-authlib-userdb"),
            ("/usr/sbin/makeuserdb", "courier-authlib-userdb"),
            ("/usr/bin/unshare", "util-linux"),
        ] {
            assert!(
                Path::new(path).exists(),
                "the Courier tests need {path} from {package}: run scripts/test, which installs it"
            );
        }
        require_root("Courier (its authdaemond paths are bind-mounted in a mount namespace)");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        for sub in ["etc", "run", "home"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        // imapd refuses to run as root: the mail belongs to the `courier` user.
        let (uid, gid) = (id("-u"), id("-g"));
        let home = root.join("home");
        let maildir = home.join("Maildir");
        for sub in ["", "cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(&home)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::write(
            root.join("etc/authdaemonrc"),
            "authmodulelist=\"authuserdb\"\ndaemons=1\n\
             authdaemonvar=/run/courier/authdaemon\nDEBUG_LOGIN=0\nDEFAULTOPTIONS=\"\"\n",
        )
        .unwrap();
        let userdb = root.join("etc/userdb");
        std::fs::write(
            &userdb,
            format!(
                "{USER}\tuid={uid}|gid={gid}|home={}|mail={}|systempw={}\n",
                home.display(),
                maildir.display(),
                md5_crypt(PASSWORD)
            ),
        )
        .unwrap();
        // makeuserdb refuses a userdb that group or others may read.
        std::fs::set_permissions(&userdb, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let out = Command::new("/usr/sbin/makeuserdb")
            .arg("-f")
            .arg(&userdb)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "makeuserdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        // The settings of Debian's /etc/courier/imapd that matter here, given to couriertcpd
        // in a clean environment (imapd reads them from there, not from a file).
        // IMAP_ENHANCEDIDLE=1 makes IDLE prompt: imapd watches the Maildir through gamin
        // instead of looking every IMAP_IDLE_TIMEOUT (60) seconds. gam_server is shared by
        // all processes of a user that have the same GAM_CLIENT_ID (an abstract socket): one
        // of its own, or a server stopped by another test takes this one's IDLE with it.
        let script = format!(
            "set -e\n\
             mkdir -p /run/courier/authdaemon /etc/courier\n\
             mount --bind {r}/run /run/courier/authdaemon\n\
             mount --bind {r}/etc /etc/courier\n\
             {AUTHDAEMOND} &\n\
             exec env -i PATH=/usr/bin:/bin \
             IMAP_CAPABILITY='IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT \
             THREAD=REFERENCES SORT QUOTA IDLE' \
             IMAP_ENHANCEDIDLE=1 IMAP_IDLE_TIMEOUT=60 IMAP_USELOCKS=1 IMAP_KEYWORDS=1 \
             IMAP_ACL=1 IMAP_MAILBOX_SANITY_CHECK=1 IMAP_UMASK=022 IMAP_CHECK_ALL_FOLDERS=0 \
             IMAP_DISABLETHREADSORT=0 IMAP_TRASHFOLDERNAME=Trash \
             GAM_CLIENT_ID=mailrules-test-{port} \
             {COURIERTCPD} -address=127.0.0.1 -maxprocs=40 -maxperip=40 \
             -nodnslookup -noidentlookup {port} {login} {imapd} Maildir\n",
            r = root.display(),
            login = imaplogin.display(),
            imapd = imapd.display(),
        );
        std::fs::write(root.join("run.sh"), script).unwrap();
        let mut courier = Courier {
            dir,
            child: None,
            port,
        };
        courier.start_again();
        courier
    }

    /// Starts the server (again) with the same config, port and mail; waits until the user
    /// can log in (authdaemond may come up after couriertcpd greets).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "courier is already running");
        let root = self.dir.path();
        let log = std::fs::File::create(root.join("courier.log")).unwrap();
        let child = Command::new("/usr/bin/unshare")
            .args(["--mount", "--propagation", "private"])
            .args(["--pid", "--fork", "--kill-child=SIGKILL"])
            .arg("/bin/sh")
            .arg(root.join("run.sh"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start unshare for Courier");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if greets(self.port) && logs_in(self.port) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("courier exited with {status}; its output:\n{}", self.log());
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "courier did not let {USER} log in within 30s (it logs to syslog only); \
                     its output:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server: SIGKILL to `unshare` ends the namespace and everything in it
    /// (unshare ignores SIGTERM while it waits for its child). Waits until the port is free.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
        let start = Instant::now();
        while greets(self.port) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// What the start script, authdaemond and couriertcpd wrote to stdout and stderr (imapd
    /// itself logs to syslog only).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("courier.log")).unwrap_or_default()
    }

    /// A password file with the right password, as `password_file` would name it.
    pub fn password_file(&self) -> PathBuf {
        super::dovecot::password_file_in(self.dir.path())
    }
}

impl Drop for Courier {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The MD5-crypt hash of `password` for the userdb, made by Courier's own `userdbpw -md5`
/// (it reads the password twice, as if typed and confirmed).
fn md5_crypt(password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("/usr/sbin/userdbpw")
        .arg("-md5")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "userdbpw failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `id FLAG courier`: the uid (`-u`) or gid (`-g`) the mail belongs to.
fn id(flag: &str) -> u32 {
    let out = Command::new("id")
        .arg(flag)
        .arg("courier")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "no user courier (courier-base creates it; run scripts/test)"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
