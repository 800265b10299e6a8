//! The real `mailrules run` binary as a child process for the daemon and fault tests: its
//! stderr read through a pipe (so the log survives limits on file writes), signals, exits,
//! resource limits.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The daemon process, killed on Drop if still running.
pub struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
    /// Reads stderr into `log` until the process closes it.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// `mailrules run --config CONFIG` with logging at info level and no systemd.
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_with_env(config, &[])
    }

    /// [`Daemon::start`] with extra environment, e.g. `NOTIFY_SOCKET`.
    pub fn start_with_env(config: &Path, env: &[(&str, &Path)]) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailrules"));
        command
            .arg("run")
            .arg("--config")
            .arg(config)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env("MAILRULES_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Daemon {
            child,
            log,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// How many log lines contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL: no chance to finish anything. Waits until the process is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
        self.read_to_end();
    }

    /// Sends a signal by name (`TERM`, `HUP`, …).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then waits for the exit; panics (with the log) after `limit`.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(limit)
    }

    /// Waits for the process to exit; panics (with the log) after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.read_to_end();
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "the daemon did not exit within {limit:?}; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// After the exit: the whole log is in `log` once the reader has seen the end of stderr.
    fn read_to_end(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// Waits until `what` has appeared `count` times in the log; panics after `limit`.
    pub async fn wait_for_log(&self, what: &str, count: usize, limit: Duration) {
        super::dovecot::wait_until(
            limit,
            &format!("{count}× {what:?} in the daemon's log"),
            || {
                let seen = self.log().matches(what).count();
                async move { seen >= count }
            },
        )
        .await;
    }

    /// Sets the soft limit on the size of files the daemon writes (RLIMIT_FSIZE), keeping
    /// the hard limit: writes past `bytes` fail with EFBIG, as on a full disk.
    pub fn limit_file_size(&self, bytes: u64) {
        self.prlimit_fsize(&bytes.to_string());
    }

    /// Lifts the soft file size limit back to the hard limit.
    pub fn unlimit_file_size(&self) {
        let out = Command::new("prlimit")
            .args([
                "--pid",
                &self.pid().to_string(),
                "--fsize",
                "--raw",
                "-o",
                "HARD",
                "--noheadings",
            ])
            .output()
            .expect("prlimit (util-linux) is needed for the disk-full test");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hard = String::from_utf8(out.stdout).unwrap().trim().to_string();
        self.prlimit_fsize(&hard);
    }

    fn prlimit_fsize(&self, soft: &str) {
        // `SOFT:` leaves the hard limit as it is.
        let status = Command::new("prlimit")
            .args([
                "--pid",
                &self.pid().to_string(),
                &format!("--fsize={soft}:"),
            ])
            .status()
            .expect("prlimit (util-linux) is needed for the disk-full test");
        assert!(
            status.success(),
            "prlimit could not change the daemon's file size limit"
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- the daemon's log ----\n{}", trouble(&self.log()));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon log without the line written for every message: what a failure should show.
pub fn trouble(log: &str) -> String {
    log.lines()
        .filter(|l| !l.contains(" message{"))
        .collect::<Vec<_>>()
        .join("\n")
}
