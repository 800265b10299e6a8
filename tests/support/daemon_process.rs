//! The real `mailrules run` binary as a child process for fault tests: its stderr read through
//! a pipe (so the log survives limits on file writes), SIGKILL/SIGTERM, resource limits.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The daemon process, killed on Drop if still running.
pub struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// `mailrules run --config CONFIG` with logging at info level and no systemd.
    pub fn start(config: &Path) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailrules"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env("MAILRULES_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
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
        Daemon { child, log }
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
    }

    /// SIGTERM, then waits for the exit; panics (with the log) after `limit`.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "the daemon did not exit within {limit:?} of SIGTERM; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
