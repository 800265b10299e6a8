//! A test Dovecot going down the hard way. Its master stops on SIGTERM, but an `imap`
//! process busy with a client keeps serving it; a crash or reboot would not be so kind, so
//! this ends those too.

use std::path::Path;

use super::dovecot::Dovecot;

/// Stops the server and kills every process still serving a client: each connection to it
/// breaks, as when the server crashes.
pub fn stop_dropping_clients(dovecot: &mut Dovecot) {
    dovecot.stop();
    for pid in processes_working_in(dovecot.dir()) {
        // Already gone is fine: it may have ended on its own meanwhile.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// Processes whose working directory is inside `dir` (Dovecot's mail processes work in the
/// user's home, below the test server's own directory; nothing else does).
fn processes_working_in(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cwd = std::fs::read_link(entry.path().join("cwd")).ok()?;
            cwd.starts_with(dir).then_some(pid)
        })
        .collect()
}
