//! The systemd notification protocol (sd_notify): READY, STATUS, WATCHDOG and STOPPING
//! datagrams to `$NOTIFY_SOCKET`. A no-op when not started by systemd.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

#[derive(Debug)]
struct Target {
    socket: UnixDatagram,
    address: std::os::unix::net::SocketAddr,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC`/`WATCHDOG_PID` as systemd sets them.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|_| match std::env::var("WATCHDOG_PID") {
                Ok(pid) => pid.parse::<u32>().ok() == Some(std::process::id()),
                Err(_) => true,
            })
            .map(Duration::from_micros);
        let mut notifier = match socket {
            Some(path) => Notifier::to_socket(Path::new(&path)),
            None => Notifier::default(),
        };
        notifier.watchdog = watchdog;
        notifier
    }

    /// Notifies the datagram socket at `path` (`@name` for the abstract namespace).
    pub fn to_socket(path: &Path) -> Notifier {
        let target = address(path).and_then(|address| {
            let socket = UnixDatagram::unbound().ok()?;
            // A notification is never worth stalling the daemon: when systemd's queue is
            // full the datagram is dropped instead of blocking a runtime thread.
            socket.set_nonblocking(true).ok()?;
            Some(Target { socket, address })
        });
        if target.is_none() {
            tracing::warn!(
                "NOTIFY_SOCKET {} is not usable; systemd will not hear from us",
                path.display()
            );
        }
        Notifier {
            target,
            watchdog: None,
        }
    }

    /// How often systemd wants WATCHDOG=1, if at all.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    pub fn ready(&self) {
        self.send("READY=1");
    }

    pub fn status(&self, summary: &str) {
        // One line: systemd shows only the first anyway.
        self.send(&format!("STATUS={}", crate::text::single_line(summary)));
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    fn send(&self, state: &str) {
        if let Some(target) = &self.target {
            if let Err(e) = target
                .socket
                .send_to_addr(state.as_bytes(), &target.address)
            {
                tracing::debug!("sd_notify {state:?} failed: {e}");
            }
        }
    }
}

fn address(path: &Path) -> Option<std::os::unix::net::SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            return std::os::unix::net::SocketAddr::from_abstract_name(name).ok();
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return None;
        }
    }
    std::os::unix::net::SocketAddr::from_pathname(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let systemd = UnixDatagram::bind(&path).unwrap();
        systemd
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let notifier = Notifier::to_socket(&path);
        notifier.ready();
        notifier.status("support idle\nsecond line");
        let mut buf = [0u8; 256];
        let n = systemd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let n = systemd.recv(&mut buf).unwrap();
        let status = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(status.starts_with("STATUS=support idle"), "{status}");
        assert!(!status.contains('\n'));
    }

    #[test]
    fn a_full_queue_drops_notifications_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let _nobody_reads = UnixDatagram::bind(&path).unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let notifier = Notifier::to_socket(&path);
            // Far more than the kernel queues (net.unix.max_dgram_qlen, often 10).
            for i in 0..1000 {
                notifier.status(&format!("update {i}"));
            }
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(10))
            .expect("sending must not block while systemd is not reading");
    }

    #[test]
    fn without_systemd_nothing_happens() {
        let notifier = Notifier::default();
        notifier.ready();
        assert_eq!(notifier.watchdog_interval(), None);
    }
}
