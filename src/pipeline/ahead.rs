//! A batch parsed ahead of its turn: the daemon starts parsing batch n + 1 as soon as it is
//! fetched, on threads of its own, while batch n is still being applied and committed on the
//! processing thread. Without it the parsing threads stood idle during every commit (its
//! fsync included) and the applying thread waited for the first message of every batch.

use std::sync::mpsc::{sync_channel, Receiver};

use super::{Incoming, PreparedMessage, Preparer, PARSE_AHEAD};
use crate::parallel;

/// Parsed messages a batch may hold ready before its turn, beyond what each parsing thread
/// holds itself: enough to cover a commit's fsync, few enough to bound memory (a parsed
/// message keeps its text, and a batch may hold large mail).
const READY_AHEAD: usize = 4 * PARSE_AHEAD;

/// A batch being parsed on other threads; its messages come out in the order they were
/// fetched. Dropping it stops the parsing at the next message.
pub struct PreparingBatch {
    prepared: Receiver<PreparedMessage>,
    len: usize,
    /// Messages handed out so far.
    taken: usize,
}

impl PreparingBatch {
    /// Messages in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Iterator for PreparingBatch {
    type Item = PreparedMessage;

    fn next(&mut self) -> Option<PreparedMessage> {
        match self.prepared.recv() {
            Ok(message) => {
                self.taken += 1;
                Some(message)
            }
            Err(_) if self.taken == self.len => None,
            // A parsing thread panicked. Ending the batch here would commit the mailbox
            // cursor past messages never recorded, so this thread stops as well, before the
            // commit: exactly what a panic in a parsing thread of `process_batch` does.
            Err(_) => panic!(
                "the thread parsing a batch ahead stopped after {} of {} messages",
                self.taken, self.len
            ),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.taken;
        (left, Some(left))
    }
}

impl Preparer {
    /// Starts parsing `batch` on threads of its own and returns at once. If no thread can be
    /// started (the process is out of threads), the batch comes back untouched, to be
    /// processed the ordinary way.
    pub fn start(&self, batch: Vec<Incoming>) -> Result<PreparingBatch, Vec<Incoming>> {
        let len = batch.len();
        let (to_thread, fetched) = sync_channel::<Vec<Incoming>>(1);
        let (ready, prepared) = sync_channel::<PreparedMessage>(READY_AHEAD);
        let preparer = self.clone();
        let started = std::thread::Builder::new()
            .name("mailrules-prepare-ahead".into())
            .spawn(move || {
                let Ok(batch) = fetched.recv() else {
                    return;
                };
                parallel::map_in_order(
                    batch.into_iter(),
                    parallel::workers(),
                    PARSE_AHEAD,
                    |incoming| preparer.prepare(incoming),
                    |results| {
                        for message in results {
                            if ready.send(message).is_err() {
                                return; // the batch was dropped: nobody wants the rest
                            }
                        }
                    },
                )
            });
        if started.is_err() {
            return Err(batch);
        }
        // The thread waits for exactly this one batch; it cannot have gone away before.
        if let Err(returned) = to_thread.send(batch) {
            return Err(returned.0);
        }
        Ok(PreparingBatch {
            prepared,
            len,
            taken: 0,
        })
    }
}
