//! The daemon's checkpoints (copying the WAL into the database file) on a thread and a
//! connection of their own, so that the processing thread never makes one between a message's
//! arrival and its commit.
//!
//! Why: SQLite makes the checkpoint on the connection whose commit took the WAL past
//! `wal_autocheckpoint` pages, inside that commit. With 10,000 pages (40 MiB, `Store::setup`)
//! that is a few hundred milliseconds once every few thousand messages: the one message whose
//! commit it fell on waited that long between the server's notice and its commit
//! (BENCHMARKS.md, "Session 8"). A checkpoint on another connection runs beside the writer
//! (`PASSIVE`: it copies what no reader still needs and never waits for a lock).

use std::os::raw::c_int;
use std::sync::mpsc::{sync_channel, TrySendError};

use rusqlite::hooks::Wal;

use super::{Store, StoreError};

/// WAL pages past which the processing connection asks for a checkpoint: the threshold its
/// own automatic checkpoint had, so that as many pages are written as before, only elsewhere.
const ASK_AT: c_int = 10_000;
/// WAL pages past which it makes the checkpoint itself after all (400 MiB: the checkpointing
/// thread fell far behind, or is gone), so that the WAL never grows without bound.
const MAKE_IT_AT: c_int = 100_000;

impl Store {
    /// Hands this connection's checkpoints to a thread with a connection of its own, which
    /// ends when this store is dropped. For the daemon's processing thread.
    pub fn checkpoint_on_another_thread(&mut self) -> Result<(), StoreError> {
        self.checkpoint_elsewhere(ASK_AT, MAKE_IT_AT)
    }

    fn checkpoint_elsewhere(&mut self, ask_at: c_int, make_it_at: c_int) -> Result<(), StoreError> {
        let checkpointer = Store::open(&self.path)?;
        // One request waiting is enough: the checkpoint it starts copies everything there is.
        let (ask, asked) = sync_channel::<()>(1);
        let spawned = std::thread::Builder::new()
            .name("mailrules-checkpoint".into())
            .spawn(move || {
                // Ends when the writer's connection, which holds `ask`, is closed.
                for () in asked {
                    if let Err(e) = checkpointer.checkpoint() {
                        tracing::warn!("the store's WAL cannot be copied into it now: {e}");
                    }
                }
            });
        if let Err(e) = spawned {
            // Without the thread the writer goes on checkpointing itself, as before.
            tracing::warn!("no thread for the store's checkpoints ({e}); the writer makes them");
            return Ok(());
        }
        // This replaces the connection's automatic checkpoint (`wal_autocheckpoint` is a WAL
        // hook too).
        self.conn
            .wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
                if pages >= make_it_at {
                    return wal.checkpoint();
                }
                if pages >= ask_at {
                    match ask.try_send(()) {
                        Ok(()) | Err(TrySendError::Full(())) => {}
                        // The thread is gone: from now on this connection does it.
                        Err(TrySendError::Disconnected(())) => return wal.checkpoint(),
                    }
                }
                Ok(())
            }))?;
        Ok(())
    }

    /// Copies into the database file what the WAL holds and no reader still needs, without
    /// waiting for anyone.
    fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Commits `n` transactions of a few pages each.
    fn write_pages(store: &Store, n: usize) {
        for i in 0..n {
            store
                .conn
                .execute(
                    "INSERT INTO filler (text) VALUES (?1)",
                    [format!("{i:08}").repeat(1500)],
                )
                .unwrap();
        }
    }

    fn file_len(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    fn store_with_filler(dir: &tempfile::TempDir) -> Store {
        let store = Store::open(&dir.path().join("store.db")).unwrap();
        store
            .conn
            .execute_batch("CREATE TABLE filler (text TEXT)")
            .unwrap();
        store
    }

    #[test]
    fn another_thread_copies_the_wal_into_the_store_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_with_filler(&dir);
        store.checkpoint_elsewhere(50, c_int::MAX).unwrap();
        let before = file_len(&store.path);
        write_pages(&store, 100);
        let deadline = Instant::now() + Duration::from_secs(20);
        while file_len(&store.path) <= before + 100 * 12_000 / 2 {
            assert!(Instant::now() < deadline, "no checkpoint was made");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The rows are in the file, and the thread ends with the store.
        drop(store);
        let again = Store::open(&dir.path().join("store.db")).unwrap();
        let rows: i64 = again
            .conn
            .query_row("SELECT count(*) FROM filler", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 100);
    }

    #[test]
    fn the_writer_checkpoints_itself_when_the_wal_grows_too_long() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_with_filler(&dir);
        // Asks only past a bound it never reaches; makes it itself from 50 pages on.
        store.checkpoint_elsewhere(c_int::MAX, 50).unwrap();
        let before = file_len(&store.path);
        write_pages(&store, 100);
        // No waiting: the writer's own commit made it.
        assert!(file_len(&store.path) > before + 100 * 12_000 / 2);
    }
}
