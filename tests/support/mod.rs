//! Shared helpers for the integration tests: a private Dovecot, log capture, bounded waits.
#![allow(dead_code)] // each test binary uses a different part of the support code

pub mod dovecot;

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

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

/// A small test message with a unique Message-ID.
pub fn message(id: &str, subject: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "From: Client <client@example.org>\r\nTo: support@acme.example\r\n\
         Subject: {subject}\r\nMessage-ID: <{id}@example.org>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n{extra_headers}\r\nHello, this is {id}.\r\n"
    )
    .into_bytes()
}
