//! Where fetched mail goes: the [`BatchSink`] (the pipeline: parse, rules, store), run on one
//! dedicated thread because the store is synchronous and must have exactly one writer.

use std::any::Any;

use tokio::sync::{mpsc, oneshot};

pub use crate::pipeline::{Incoming, Outcome, OutcomeStatus};
pub use crate::store::MailboxCursor;

/// The store could not be read or written; nothing of the batch was committed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// The processing side of the daemon. Implemented by the pipeline; tests use a fake.
pub trait BatchSink: Send + 'static {
    /// The committed cursor of `mailbox`, if any.
    fn mailbox_cursor(&mut self, mailbox: &str) -> Result<Option<MailboxCursor>, SinkError>;
    /// Processes `batch` in one transaction, committing `cursor` with it; returns one outcome
    /// per message, in order. `Err` means nothing was committed.
    fn process_batch(
        &mut self,
        batch: Vec<Incoming>,
        cursor: Option<&MailboxCursor>,
    ) -> Result<Vec<Outcome>, SinkError>;
    /// Loads the rules again. `Ok` carries a one-line summary; `Err` every problem found (as
    /// `FILE:LINE:COL: message`), in which case the rules in use stay as they were.
    fn reload_rules(&mut self) -> Result<String, Vec<String>>;
}

/// Work run on the processing thread against the sink (see [`SinkHandle::call`]).
type Job = Box<dyn FnOnce(&mut dyn Any) + Send>;

enum Request {
    Cursor {
        mailbox: String,
        reply: oneshot::Sender<Result<Option<MailboxCursor>, SinkError>>,
    },
    Process {
        batch: Vec<Incoming>,
        cursor: Option<MailboxCursor>,
        reply: oneshot::Sender<Result<Vec<Outcome>, SinkError>>,
    },
    Reload {
        reply: oneshot::Sender<Result<String, Vec<String>>>,
    },
    Call(Job),
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
}

/// Starts the processing thread. It ends when every handle is dropped.
pub fn spawn_sink<S: BatchSink>(
    mut sink: S,
) -> std::io::Result<(SinkHandle, std::thread::JoinHandle<()>)> {
    let (requests, mut incoming) = mpsc::channel::<Request>(16);
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
                        let _ = reply.send(sink.reload_rules());
                    }
                    Request::Call(job) => job(&mut sink),
                }
            }
        })?;
    Ok((SinkHandle { requests }, thread))
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
    /// fetched meanwhile. Batches are processed (and their cursors committed) in the order
    /// they were submitted. Once submitted, a batch is committed whether or not anyone waits
    /// for its outcome.
    pub async fn submit(
        &self,
        batch: Vec<Incoming>,
        cursor: Option<MailboxCursor>,
    ) -> Result<Submitted, SinkGone> {
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

    /// Runs `job` on the processing thread with the sink itself (downcast it to the concrete
    /// type, e.g. `PipelineSink`): how other services write to the store without a second
    /// writer. Runs after everything submitted before it.
    pub async fn call<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut dyn Any) -> R + Send + 'static,
    ) -> Result<R, SinkGone> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Call(Box::new(move |sink: &mut dyn Any| {
            let _ = reply.send(job(sink));
        })))
        .await?;
        answer.await.map_err(|_| SinkGone)
    }

    async fn send(&self, request: Request) -> Result<(), SinkGone> {
        self.requests.send(request).await.map_err(|_| SinkGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts batches; nothing else.
    struct Counting(usize);

    impl BatchSink for Counting {
        fn mailbox_cursor(&mut self, _: &str) -> Result<Option<MailboxCursor>, SinkError> {
            Ok(None)
        }
        fn process_batch(
            &mut self,
            _: Vec<Incoming>,
            _: Option<&MailboxCursor>,
        ) -> Result<Vec<Outcome>, SinkError> {
            self.0 += 1;
            Ok(Vec::new())
        }
        fn reload_rules(&mut self) -> Result<String, Vec<String>> {
            Ok(String::new())
        }
    }

    #[tokio::test]
    async fn calls_run_in_order_after_submitted_batches() {
        let (handle, thread) = spawn_sink(Counting(0)).unwrap();
        let first = handle.submit(Vec::new(), None).await.unwrap();
        let second = handle.submit(Vec::new(), None).await.unwrap();
        let seen = handle
            .call(|sink| sink.downcast_mut::<Counting>().map(|c| c.0))
            .await
            .unwrap();
        assert_eq!(seen, Some(2));
        first.outcomes().await.unwrap();
        second.outcomes().await.unwrap();
        drop(handle);
        thread.join().unwrap();
    }
}
