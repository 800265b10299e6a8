//! The daemon (`mailrules run`): one watcher task per configured mailbox, the rules reloader,
//! systemd notifications, the outbox sender and the schedule runner, all under one supervisor
//! and one [`Shutdown`].

mod notify;
mod pipeline_sink;
mod policy;
mod reload;
mod shutdown;
mod sink;
mod status;
mod unacknowledged;
mod unreadable;
mod watcher;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::info;

use crate::automation::SCHEDULE_TICK;
use crate::config::{Config, ConfigError};
use crate::pipeline::Pipeline;
use crate::rules::{RuleErrors, RuleSet};
use crate::store::{Store, StoreError};

pub use notify::Notifier;
pub use pipeline_sink::PipelineSink;
pub use policy::{Backoff, RetryPolicy};
pub use shutdown::{listen_for_signals, Reload, Shutdown};
pub use sink::{
    spawn_sink, Batch, BatchSink, Incoming, MailboxCursor, Outcome, OutcomeStatus, SinkError,
    SinkHandle, Submitted,
};
pub use status::{MailboxState, MailboxStatus, StatusBoard};

/// Why the daemon stopped other than by request.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the rules in {dir} do not load:\n{errors}")]
    Rules { dir: String, errors: RuleErrors },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen for signals: {0}")]
    Signals(#[source] std::io::Error),
    #[error("cannot start the message processing thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error(transparent)]
    Watcher(#[from] watcher::WatcherFailed),
    #[error("the message processing thread has stopped")]
    SinkGone(#[from] sink::SinkGone),
    #[error("a daemon task crashed: {0}")]
    Crashed(String),
    #[error("{0}")]
    Service(String),
}

/// Knobs of a daemon run; `Default` is what `mailrules run` uses.
#[derive(Debug, Default)]
pub struct DaemonOptions {
    pub policy: RetryPolicy,
    /// Where mailbox states are published (tests and STATUS= read it).
    pub status: StatusBoard,
    /// Triggers a rules reload (SIGHUP is wired to it by [`listen_for_signals`]).
    pub reload: Reload,
    pub notifier: Notifier,
}

/// What every long-running service gets.
#[derive(Clone)]
pub struct ServiceContext {
    pub config: Arc<Config>,
    pub shutdown: Shutdown,
    pub policy: Arc<RetryPolicy>,
    /// The processing thread: the only store writer. Services that change tasks (the
    /// schedule runner) go through it; readers may open their own `Store`.
    pub sink: SinkHandle,
    /// Notified after every committed batch that applied something: it may have queued
    /// replies, so the outbox sender should look now rather than at its next poll.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Each mailbox's state (the web shows it).
    pub status: StatusBoard,
}

type TaskResult = Result<(), DaemonError>;

/// `mailrules run`: loads the configuration, rules and store, then runs until SIGTERM or
/// SIGINT (exit 0 once every batch in hand is committed and acknowledged). SIGHUP reloads the
/// rules; systemd is notified when `$NOTIFY_SOCKET` is set.
pub async fn run(config_path: &Path) -> Result<(), DaemonError> {
    let shutdown = Shutdown::new();
    let reload = Reload::new();
    listen_for_signals(shutdown.clone(), reload.clone()).map_err(DaemonError::Signals)?;
    let options = DaemonOptions {
        reload,
        notifier: Notifier::from_env(),
        ..DaemonOptions::default()
    };
    run_until(config_path, options, shutdown).await
}

/// [`run`] without the signal handlers: stops when `shutdown` is triggered.
pub async fn run_until(
    config_path: &Path,
    options: DaemonOptions,
    shutdown: Shutdown,
) -> Result<(), DaemonError> {
    let config = Arc::new(Config::load(config_path)?);
    let rules = RuleSet::load_dir(&config.rules).map_err(|errors| DaemonError::Rules {
        dir: config.rules.display().to_string(),
        errors,
    })?;
    let names: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
    let unknown = rules.check_webhooks(&names);
    if !unknown.is_empty() {
        return Err(DaemonError::Rules {
            dir: config.rules.display().to_string(),
            errors: crate::rules::RuleErrors(unknown),
        });
    }
    // A header or secret named by a variable that is not set would never be sent empty: the
    // daemon does not start with it, as it does not with an unreadable password.
    let missing: Vec<String> = config
        .webhooks
        .iter()
        .flat_map(|w| w.environment_problems())
        .map(|e| e.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(DaemonError::Config(ConfigError::Problems {
            path: config.path.clone(),
            problems: missing,
        }));
    }
    let summary = rules.summary();
    info!(
        "loaded {} rules, {} triggers, {} schedules from {} files",
        summary.rules, summary.triggers, summary.schedules, summary.files
    );
    let mut store = Store::open(&config.store)?;
    // A checkpoint inside a commit held one message for hundreds of milliseconds.
    store.checkpoint_on_another_thread()?;
    let pipeline = Pipeline::new(config.clone(), Arc::new(rules), store);
    let sink = PipelineSink::new(pipeline, config.rules.clone());
    run_with(config, sink, options, shutdown).await
}

/// Runs the daemon until `shutdown` is triggered (then returns `Ok` once every batch in hand
/// is committed and acknowledged), or until something it cannot survive happens.
pub async fn run_with<S: BatchSink>(
    config: Arc<Config>,
    sink: S,
    options: DaemonOptions,
    shutdown: Shutdown,
) -> Result<(), DaemonError> {
    let DaemonOptions {
        policy,
        status,
        reload,
        notifier,
    } = options;
    let policy = Arc::new(policy);
    let (sink, processing_thread) = spawn_sink(sink).map_err(DaemonError::Thread)?;
    let mut tasks: JoinSet<TaskResult> = JoinSet::new();
    let mut failure = None;
    let outbox_wake = Arc::new(tokio::sync::Notify::new());

    for mailbox in &config.mailboxes {
        let watcher = watcher::Watcher::new(
            mailbox.clone(),
            sink.clone(),
            policy.clone(),
            status.clone(),
            shutdown.clone(),
            outbox_wake.clone(),
        );
        tasks.spawn(async move { Ok(watcher.run().await?) });
    }
    tasks.spawn({
        let watch = reload::watch_rules_dir(
            config.rules.clone(),
            policy.rules_poll,
            reload.clone(),
            shutdown.clone(),
        );
        async move {
            watch.await;
            Ok(())
        }
    });
    tasks.spawn({
        let (sink, reload, shutdown) = (sink.clone(), reload.clone(), shutdown.clone());
        async move { Ok(reload::serve_reloads(sink, reload, shutdown).await?) }
    });
    let context = ServiceContext {
        config: config.clone(),
        shutdown: shutdown.clone(),
        policy: policy.clone(),
        sink: sink.clone(),
        outbox_wake,
        status: status.clone(),
    };
    if let Err(e) = spawn_services(&mut tasks, context) {
        shutdown.trigger();
        failure.get_or_insert(e);
    }
    drop(sink); // the processing thread ends when the last task holding a handle ends
    tasks.spawn({
        let notify = notify_systemd(notifier, status.clone(), shutdown.clone());
        async move {
            notify.await;
            Ok(())
        }
    });
    info!(
        "watching {} mailbox(es); rules from {}",
        config.mailboxes.len(),
        config.rules.display()
    );

    while let Some(done) = tasks.join_next().await {
        let error = match done {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => DaemonError::Crashed(e.to_string()),
        };
        tracing::error!("{error}; stopping");
        failure.get_or_insert(error);
        shutdown.trigger();
    }
    // Every handle is gone, so the thread has finished its last batch or is about to.
    let joined = tokio::task::spawn_blocking(move || processing_thread.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        failure.get_or_insert(DaemonError::SinkGone(sink::SinkGone));
    }
    match failure {
        Some(e) => Err(e),
        None => {
            info!("stopped cleanly");
            Ok(())
        }
    }
}

/// The daemon's other long-running services, beside the mailbox watchers: the outbox sender
/// (when `[smtp]` is configured), the webhook sender (when `[[webhook]]`s are) and the
/// schedule runner. A service runs
/// until `context.shutdown` triggers and returns `Err(DaemonError::Service(..))` only for
/// failures the daemon cannot survive (that stops the whole daemon, exit 1). Services that
/// change tasks ask the processing thread (`context.sink`), the one writer, to do it.
fn spawn_services(
    tasks: &mut JoinSet<TaskResult>,
    context: ServiceContext,
) -> Result<(), DaemonError> {
    let mail_task = match context.config.smtp.clone() {
        // Its own connection: a delivery takes seconds and must not hold the pipeline's.
        Some(smtp) => Some((
            Store::open(&context.config.store)?,
            smtp,
            context.shutdown.clone(),
        )),
        None => None,
    };
    if !context.config.webhooks.is_empty() {
        let store = Store::open(&context.config.store)?;
        let endpoints = context.config.webhooks.clone();
        // Both senders look when something was queued: one wake-up is handed to each.
        let webhook_wake = Arc::new(tokio::sync::Notify::new());
        let mail_wake = Arc::new(tokio::sync::Notify::new());
        if let Some(smtp_task) = mail_task {
            spawn_mail(tasks, smtp_task, mail_wake.clone());
        }
        let (queued, hooks, shutdown) = (
            context.outbox_wake.clone(),
            webhook_wake.clone(),
            context.shutdown.clone(),
        );
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.wait() => return Ok(()),
                    _ = queued.notified() => {
                        mail_wake.notify_one();
                        hooks.notify_one();
                    }
                }
            }
        });
        let shutdown = context.shutdown.clone();
        tasks.spawn(async move {
            crate::webhook::run_webhooks(store, endpoints, webhook_wake, async move {
                shutdown.wait().await
            })
            .await
            .map_err(|e| DaemonError::Service(format!("webhooks: {e}")))
        });
    } else if let Some(smtp_task) = mail_task {
        spawn_mail(tasks, smtp_task, context.outbox_wake.clone());
    }
    if let Some(web) = context.config.web.clone() {
        // The apply histogram of /metrics is recorded from the processing thread.
        crate::web::install_metrics();
        let config = context.config.clone();
        let shutdown = context.shutdown.clone();
        let link = crate::web::DaemonLink {
            mailboxes: context.status.clone(),
            outbox_wake: context.outbox_wake.clone(),
        };
        tasks.spawn(async move {
            let serve = async {
                let listener = crate::web::bind(&web).await?;
                crate::web::serve(config, listener, shutdown, Some(link)).await
            };
            serve
                .await
                .map_err(|e| DaemonError::Service(format!("web: {e}")))
        });
    }
    tasks.spawn(run_schedules(context));
    Ok(())
}

/// The mail outbox worker, woken by `wake`.
fn spawn_mail(
    tasks: &mut JoinSet<TaskResult>,
    (store, smtp, shutdown): (Store, crate::config::SmtpConfig, Shutdown),
    wake: Arc<tokio::sync::Notify>,
) {
    tasks.spawn(async move {
        crate::outbox::run_outbox(store, smtp, wake, async move { shutdown.wait().await })
            .await
            .map_err(|e| DaemonError::Service(format!("outbox: {e}")))
    });
}

/// Runs the due schedules every [`SCHEDULE_TICK`] on the processing thread (the only store
/// writer), and wakes the outbox sender when a firing may have queued mail.
async fn run_schedules(context: ServiceContext) -> TaskResult {
    let ServiceContext {
        sink,
        shutdown,
        outbox_wake,
        ..
    } = context;
    // A store that cannot be written (disk full) fails every tick: said once when it starts
    // and once when it is over, not every five seconds.
    let failing = Arc::new(AtomicBool::new(false));
    let run = move |now| {
        let sink = sink.clone();
        let outbox_wake = outbox_wake.clone();
        let failing = failing.clone();
        async move {
            let result = match sink.run_schedules(now).await {
                Ok(ran) => ran.map_err(|e| e.to_string()),
                Err(gone) => Err(gone.to_string()),
            };
            let firings = match result {
                Ok(firings) => firings,
                Err(e) => {
                    if !failing.swap(true, Ordering::Relaxed) {
                        tracing::error!(
                            "schedules cannot run: {e}; trying again every {SCHEDULE_TICK:?}"
                        );
                    }
                    return Ok(Vec::new());
                }
            };
            if failing.swap(false, Ordering::Relaxed) {
                info!("schedules run again");
            }
            if !firings.is_empty() {
                outbox_wake.notify_one();
            }
            Ok(firings)
        }
    };
    crate::automation::run_schedules(SCHEDULE_TICK, run, async move { shutdown.wait().await })
        .await;
    Ok(())
}

/// READY=1 once every mailbox has connected or failed its first attempt, STATUS= on every
/// change, WATCHDOG=1 while the runtime is alive, STOPPING=1 on shutdown.
async fn notify_systemd(notifier: Notifier, status: StatusBoard, shutdown: Shutdown) {
    use std::time::Duration;
    use tokio::time::Instant;
    // Counters change with every batch; systemd needs to hear about them once a second at
    // most. A mailbox changing state is told at once.
    const STATUS_EVERY: Duration = Duration::from_secs(1);
    let mut changes = status.subscribe();
    let mut ready = false;
    let mut said = String::new();
    let mut said_states = Vec::new();
    let mut next_status = Instant::now();
    let watchdog_every = notifier
        .watchdog_interval()
        .map(|w| w / 2)
        .unwrap_or(Duration::from_secs(3600));
    let mut watchdog = tokio::time::interval(watchdog_every);
    loop {
        if !ready && status.all_started() {
            ready = true;
            notifier.ready();
            info!("ready: {}", status.summary());
        }
        let summary = status.summary();
        let states: Vec<MailboxState> = status.snapshot().into_values().map(|s| s.state).collect();
        if summary != said && (states != said_states || Instant::now() >= next_status) {
            notifier.status(&summary);
            said = summary.clone();
            said_states = states;
            next_status = Instant::now() + STATUS_EVERY;
        }
        let waiting = summary != said;
        tokio::select! {
            // A change not yet told wins over shutdown: on a busy machine this task may first
            // run when both are ready, and READY must not be lost to the coin toss.
            biased;
            changed = changes.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep_until(next_status), if waiting => {}
            _ = watchdog.tick() => {
                if notifier.watchdog_interval().is_some() {
                    notifier.watchdog();
                }
            }
            _ = shutdown.wait() => break,
        }
    }
    notifier.stopping();
    notifier.status("stopping: finishing the messages in hand");
}
