//! A stand-in for systemd's notification socket: collects every datagram as it arrives.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::dovecot::wait_until;

pub struct FakeSystemd {
    path: PathBuf,
    heard: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FakeSystemd {
    /// Binds `path` and starts reading, as systemd does, so the sender's queue never fills.
    pub fn bind(path: &Path) -> FakeSystemd {
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sink, stopping) = (heard.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stopping.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    sink.lock().unwrap().push(text);
                }
            }
        });
        FakeSystemd {
            path: path.to_path_buf(),
            heard,
            stop,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every datagram so far, in order.
    pub fn heard(&self) -> Vec<String> {
        self.heard.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, datagram: &str, limit: Duration) {
        wait_until(limit, &format!("{datagram:?} from the daemon"), || {
            let seen = self.heard().iter().any(|h| h == datagram);
            async move { seen }
        })
        .await;
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
