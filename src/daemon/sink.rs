//! Where fetched mail goes: the [`BatchSink`] (the pipeline: parse, rules, store), run on one
//! dedicated thread because the store is synchronous and must have exactly one writer.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::automation::ScheduleFiring;
use crate::pipeline::{Preparer, PreparingBatch};

pub use crate::pipeline::{Incoming, Outcome, OutcomeStatus};
pub use crate::store::MailboxCursor;

/// The store could not be read or written; nothing of the batch was committed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// A batch of mail for the processing thread.
pub enum Batch {
    /// As fetched.
    Fetched(Vec<Incoming>),
    /// Being parsed on other threads since it was handed over (while the batch before it was
    /// still being applied); only for a sink that has a [`BatchSink::preparer`].
    Preparing(PreparingBatch),
}

impl Batch {
    /// Messages in the batch.
    pub fn len(&self) -> usize {
        match self {
            Batch::Fetched(batch) => batch.len(),
            Batch::Preparing(batch) => batch.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The processing side of the daemon. Implemented by the pipeline; tests use a fake.
pub trait BatchSink: Send + 'static {
    /// The committed cursor of `mailbox`, if any.
    fn mailbox_cursor(&mut self, mailbox: &str) -> Result<Option<MailboxCursor>, SinkError>;
    /// Processes `batch` in one transaction, committing `cursor` with it; returns one outcome
    /// per message, in order. `Err` means nothing was committed.
    fn process_batch(
        &mut self,
        batch: Batch,
        cursor: Option<&MailboxCursor>,
    ) -> Result<Vec<Outcome>, SinkError>;
    /// What parses this sink's batches ahead of their turn on other threads, if it parses
    /// mail at all (the pipeline does; a test's fake does not, and then every batch reaches
    /// it as [`Batch::Fetched`]). Asked at the start and after each reload of the rules.
    fn preparer(&self) -> Option<Preparer> {
        None
    }
    /// Loads the rules again. `Ok` carries a one-line summary; `Err` every problem found (as
    /// `FILE:LINE:COL: message`), in which case the rules in use stay as they were.
    fn reload_rules(&mut self) -> Result<String, Vec<String>>;
    /// Runs the schedules that are due at `now`, in the store like a batch.
    fn run_schedules(&mut self, now: DateTime<Utc>) -> Result<Vec<ScheduleFiring>, SinkError>;
}

enum Request {
    Cursor {
        mailbox: String,
        reply: oneshot::Sender<Result<Option<MailboxCursor>, SinkError>>,
    },
    Process {
        batch: Batch,
        cursor: Option<MailboxCursor>,
        reply: oneshot::Sender<Result<Vec<Outcome>, SinkError>>,
    },
    Reload {
        reply: oneshot::Sender<Result<String, Vec<String>>>,
    },
    Schedules {
        now: DateTime<Utc>,
        reply: oneshot::Sender<Result<Vec<ScheduleFiring>, SinkError>>,
    },
}

/// The processing thread stopped (it panicked): the daemon cannot go on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the message processing thread has stopped")]
pub struct SinkGone;

/// What a request to the processing thread can end with.
#[derive(Debug, thiserror::Error)]
pub enum SinkFailure {
    #[error("cannot write the store: {0}")]
    Store(#[from] SinkError),
    #[error(transparent)]
    Gone(#[from] SinkGone),
}

/// A batch on the processing thread, not answered yet.
pub struct Submitted {
    answer: oneshot::Receiver<Result<Vec<Outcome>, SinkError>>,
}

impl Submitted {
    /// One outcome per message, in order; `Err` if nothing was committed.
    pub async fn outcomes(self) -> Result<Vec<Outcome>, SinkFailure> {
        Ok(self.answer.await.map_err(|_| SinkGone)??)
    }
}

/// A cheap handle to the processing thread; one per task that needs it.
#[derive(Clone)]
pub struct SinkHandle {
    requests: mpsc::Sender<Request>,
    /// The sink's preparer with the rules in use (the processing thread replaces it after a
    /// reload; a batch parsed by the old rules in between is decided again when applied).
    preparer: Arc<RwLock<Option<Preparer>>>,
}

/// Starts the processing thread. It ends when every handle is dropped.
pub fn spawn_sink<S: BatchSink>(
    mut sink: S,
) -> std::io::Result<(SinkHandle, std::thread::JoinHandle<()>)> {
    let (requests, mut incoming) = mpsc::channel::<Request>(16);
    let preparer = Arc::new(RwLock::new(sink.preparer()));
    let preparer_in_use = Arc::clone(&preparer);
    let thread = std::thread::Builder::new()
        .name("mailrules-pipeline".into())
        .spawn(move || {
            while let Some(request) = incoming.blocking_recv() {
                // A requester that went away no longer needs the answer.
                match request {
                    Request::Cursor { mailbox, reply } => {
                        let _ = reply.send(sink.mailbox_cursor(&mailbox));
                    }
                    Request::Process {
                        batch,
                        cursor,
                        reply,
                    } => {
                        let _ = reply.send(sink.process_batch(batch, cursor.as_ref()));
                    }
                    Request::Reload { reply } => {
                        let reloaded = sink.reload_rules();
                        if reloaded.is_ok() {
                            // A poisoned lock only means a panic elsewhere; the value is whole.
                            let mut in_use = preparer_in_use
                                .write()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            *in_use = sink.preparer();
                        }
                        let _ = reply.send(reloaded);
                    }
                    Request::Schedules { now, reply } => {
                        let _ = reply.send(sink.run_schedules(now));
                    }
                }
            }
        })?;
    Ok((SinkHandle { requests, preparer }, thread))
}

impl SinkHandle {
    pub async fn mailbox_cursor(
        &self,
        mailbox: &str,
    ) -> Result<Option<MailboxCursor>, SinkFailure> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Cursor {
            mailbox: mailbox.to_string(),
            reply,
        })
        .await?;
        Ok(answer.await.map_err(|_| SinkGone)??)
    }

    /// Runs a batch to completion.
    pub async fn process_batch(
        &self,
        batch: Vec<Incoming>,
        cursor: Option<MailboxCursor>,
    ) -> Result<Vec<Outcome>, SinkFailure> {
        self.submit(batch, cursor).await?.outcomes().await
    }

    /// Hands a batch to the processing thread and returns at once, so the next batch can be
    /// fetched meanwhile; its parsing starts at once on other threads, even while the
    /// processing thread is still applying an earlier batch. Batches are processed (and their
    /// cursors committed) in the order they were submitted. Once submitted, a batch is
    /// committed whether or not anyone waits for its outcome.
    pub async fn submit(
        &self,
        batch: Vec<Incoming>,
        cursor: Option<MailboxCursor>,
    ) -> Result<Submitted, SinkGone> {
        let preparer = self
            .preparer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let batch = match preparer {
            // A message or two (mail arriving while idling) is parsed sooner on the processing
            // thread than threads can be started for it.
            Some(_) if batch.len() < crate::pipeline::PARSE_ALONGSIDE_FROM => Batch::Fetched(batch),
            Some(preparer) => match preparer.start(batch) {
                Ok(preparing) => Batch::Preparing(preparing),
                Err(fetched) => Batch::Fetched(fetched),
            },
            None => Batch::Fetched(batch),
        };
        let (reply, answer) = oneshot::channel();
        self.send(Request::Process {
            batch,
            cursor,
            reply,
        })
        .await?;
        Ok(Submitted { answer })
    }

    pub async fn reload_rules(&self) -> Result<Result<String, Vec<String>>, SinkGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Reload { reply }).await?;
        answer.await.map_err(|_| SinkGone)
    }

    /// Runs the schedules due at `now` on the processing thread (the only store writer),
    /// after everything submitted before.
    pub async fn run_schedules(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<ScheduleFiring>, SinkError>, SinkGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Schedules { now, reply }).await?;
        answer.await.map_err(|_| SinkGone)
    }

    async fn send(&self, request: Request) -> Result<(), SinkGone> {
        self.requests.send(request).await.map_err(|_| SinkGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Notes what it was asked to do, in order.
    struct Journal(std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>);

    impl Journal {
        fn note(&self, what: &'static str) {
            self.0.lock().unwrap().push(what);
        }
    }

    impl BatchSink for Journal {
        fn mailbox_cursor(&mut self, _: &str) -> Result<Option<MailboxCursor>, SinkError> {
            Ok(None)
        }
        fn process_batch(
            &mut self,
            _: Batch,
            _: Option<&MailboxCursor>,
        ) -> Result<Vec<Outcome>, SinkError> {
            self.note("batch");
            Ok(Vec::new())
        }
        fn reload_rules(&mut self) -> Result<String, Vec<String>> {
            Ok(String::new())
        }
        fn run_schedules(&mut self, _: DateTime<Utc>) -> Result<Vec<ScheduleFiring>, SinkError> {
            self.note("schedules");
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn schedules_run_in_order_after_submitted_batches() {
        let journal = std::sync::Arc::default();
        let (handle, thread) = spawn_sink(Journal(std::sync::Arc::clone(&journal))).unwrap();
        let first = handle.submit(Vec::new(), None).await.unwrap();
        let second = handle.submit(Vec::new(), None).await.unwrap();
        let fired = handle.run_schedules(Utc::now()).await.unwrap().unwrap();
        assert!(fired.is_empty());
        assert_eq!(*journal.lock().unwrap(), ["batch", "batch", "schedules"]);
        first.outcomes().await.unwrap();
        second.outcomes().await.unwrap();
        drop(handle);
        thread.join().unwrap();
    }
}
