//! Log capture for tests that assert what the daemon logs.

use std::sync::{Arc, Mutex, OnceLock};

/// Every log line the test binary produced (all tests share one subscriber; filter by the
/// mailbox name, which each test makes unique).
pub fn captured_logs() -> Vec<String> {
    let text = LOGS.get_or_init(Default::default).lock().unwrap().clone();
    String::from_utf8_lossy(&text)
        .lines()
        .map(str::to_string)
        .collect()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

/// Installs a subscriber that keeps every log line (and echoes it to the test's stderr).
pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let buffer = LOGS.get_or_init(Default::default).clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || Tee(buffer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

struct Tee(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        eprint!("{}", String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
