//! The shutdown and reload handles every daemon task holds.

use std::sync::Arc;

use tokio::sync::{watch, Notify};

/// Asks every task to stop. Cloning shares the same switch; triggering is idempotent.
#[derive(Debug, Clone)]
pub struct Shutdown {
    switch: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            switch: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Tells every holder to stop: no new fetches; the batch in hand is finished.
    pub fn trigger(&self) {
        self.switch.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.switch.borrow()
    }

    /// Resolves once [`Shutdown::trigger`] has been called (at once if it already was).
    pub async fn wait(&self) {
        let mut seen = self.switch.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        let _ = seen.wait_for(|stop| *stop).await;
    }
}

/// Asks for the rules to be loaded again (SIGHUP, or a changed file in the rules directory).
/// Requests made while a reload is pending collapse into one.
#[derive(Debug, Clone, Default)]
pub struct Reload {
    requested: Arc<Notify>,
}

impl Reload {
    pub fn new() -> Reload {
        Reload::default()
    }

    pub fn request(&self) {
        self.requested.notify_one();
    }

    pub(crate) async fn requested(&self) {
        self.requested.notified().await
    }
}

/// Turns SIGTERM and SIGINT into `shutdown`, and SIGHUP into `reload`. SIGXFSZ is caught
/// and dropped: a store file hitting the file size limit (RLIMIT_FSIZE) must fail that
/// write, which the daemon survives like a full disk, instead of killing the process.
pub fn listen_for_signals(shutdown: Shutdown, reload: Reload) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Once tokio has a handler for a signal, the default action stays disabled for the life
    // of the process, even after the stream is dropped.
    drop(signal(SignalKind::from_raw(libc::SIGXFSZ))?);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {
                    tracing::info!("SIGTERM: finishing the messages in hand, then stopping");
                    shutdown.trigger();
                }
                _ = int.recv() => {
                    tracing::info!("SIGINT: finishing the messages in hand, then stopping");
                    shutdown.trigger();
                }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the rules");
                    reload.request();
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn every_clone_sees_the_trigger() {
        let shutdown = Shutdown::new();
        let waiter = shutdown.clone();
        let task = tokio::spawn(async move { waiter.wait().await });
        assert!(!shutdown.is_triggered());
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        // Waiting after the fact returns at once.
        tokio::time::timeout(Duration::from_secs(1), shutdown.wait())
            .await
            .unwrap();
    }
}
