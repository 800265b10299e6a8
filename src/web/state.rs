//! What every request shares: the configuration, a few store connections (each request takes
//! one on a blocking thread: SQLite is synchronous), the rules (loaded again when their files
//! change) and, under `run`, the daemon's mailbox status board.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::config::{Config, WebConfig};
use crate::daemon::StatusBoard;
use crate::rules::RuleSet;
use crate::store::{ApplyOptions, Store};

use super::WebError;

/// How many tasks are in each status.
pub type StatusCounts = Arc<Vec<(String, u64)>>;

/// Idle connections kept for the next requests; more are opened when requests overlap.
const IDLE_CONNECTIONS: usize = 8;

pub struct WebState {
    pub config: Arc<Config>,
    pub web: WebConfig,
    /// The daemon, when it runs in this process (`run`).
    pub daemon: Option<DaemonLink>,
    idle: Mutex<Vec<Store>>,
    rules: Mutex<RulesCache>,
    /// The count of tasks per status, and the tasks' version it was counted at: counting
    /// reads every task, and the counts change only when the version does.
    status_counts: Mutex<Option<(i64, StatusCounts)>>,
    /// The queue's rendered rows at the latest version, shared by every open queue.
    pub(crate) queue_rows: crate::web::pages::queue_rows::RowsCache,
}

/// What the web may know of the daemon running in the same process.
#[derive(Clone)]
pub struct DaemonLink {
    /// Each mailbox's state (for /mailboxes and `mailrules_mailbox_up`).
    pub mailboxes: StatusBoard,
    /// Wakes the outbox sender: a reply made on the web goes out at once.
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

/// The rules as last loaded, and what their files looked like then.
#[derive(Default)]
struct RulesCache {
    fingerprint: Vec<(PathBuf, u64, Option<SystemTime>)>,
    loaded: Option<Arc<RuleSet>>,
    /// The last load's errors (the rules in `loaded`, if any, are the last good ones).
    error: Option<String>,
    loaded_at: Option<String>,
}

/// What /rules shows about the loaded rules.
#[derive(Debug, Clone)]
pub struct RulesState {
    pub files: Vec<PathBuf>,
    pub rules: Option<Arc<RuleSet>>,
    pub error: Option<String>,
    pub loaded_at: Option<String>,
}

impl WebState {
    /// Opens one store connection up front: a store that cannot be opened (or is too new)
    /// stops `serve` at once with the store's own words.
    pub fn new(
        config: Arc<Config>,
        daemon: Option<DaemonLink>,
    ) -> Result<WebState, crate::store::StoreError> {
        let store = Store::open(&config.store)?;
        Ok(WebState {
            web: config.web.clone().unwrap_or_default(),
            config,
            daemon,
            idle: Mutex::new(vec![store]),
            rules: Mutex::new(RulesCache::default()),
            status_counts: Mutex::new(None),
            queue_rows: Default::default(),
        })
    }

    /// Runs `work` with a store connection on a blocking thread.
    pub async fn with_store<T, F>(self: &Arc<Self>, work: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store, &WebState) -> Result<T, WebError> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = state.take_store()?;
            let result = work(&mut store, &state);
            state.give_back(store);
            result
        })
        .await
        .map_err(|e| WebError::Internal(format!("a request's worker stopped: {e}")))?
    }

    fn take_store(&self) -> Result<Store, WebError> {
        let idle = self.idle.lock().map(|mut idle| idle.pop());
        match idle {
            Ok(Some(store)) => Ok(store),
            _ => Ok(Store::open(&self.config.store)?),
        }
    }

    fn give_back(&self, store: Store) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(store);
            }
        }
    }

    /// The rules, loaded again when a file in the rules directory changed since the last
    /// load. Rules that do not load are an error the person can read (the last good rules
    /// are not used for changes: a change must be checked against what is on disk).
    pub fn rules(&self) -> Result<Arc<RuleSet>, WebError> {
        let state = self.rules_state();
        match (state.rules, state.error) {
            (_, Some(error)) => Err(WebError::RulesDoNotLoad(error)),
            (Some(rules), None) => Ok(rules),
            (None, None) => Err(WebError::RulesDoNotLoad("no rules loaded".into())),
        }
    }

    /// The rules cache, refreshed first.
    pub fn rules_state(&self) -> RulesState {
        let fingerprint = fingerprint(&self.config.rules);
        let mut cache = match self.rules.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cache.loaded_at.is_none() || cache.fingerprint != fingerprint {
            match RuleSet::load_dir(&self.config.rules) {
                Ok(rules) => {
                    cache.loaded = Some(Arc::new(rules));
                    cache.error = None;
                }
                Err(errors) => cache.error = Some(errors.to_string()),
            }
            cache.fingerprint = fingerprint;
            cache.loaded_at = Some(crate::store::timestamp_now());
        }
        RulesState {
            files: cache
                .fingerprint
                .iter()
                .map(|(p, _, _)| p.clone())
                .collect(),
            rules: cache.loaded.clone(),
            error: cache.error.clone(),
            loaded_at: cache.loaded_at.clone(),
        }
    }

    /// The count of tasks per status at tasks' version `version` (`Store::tasks_version`),
    /// counted again only when the version moved.
    pub fn status_counts(&self, store: &Store, version: i64) -> Result<StatusCounts, WebError> {
        if let Ok(cache) = self.status_counts.lock() {
            if let Some((at, counts)) = cache.as_ref() {
                if *at == version {
                    return Ok(counts.clone());
                }
            }
        }
        let counts = Arc::new(store.task_status_counts()?);
        if let Ok(mut cache) = self.status_counts.lock() {
            *cache = Some((version, counts.clone()));
        }
        Ok(counts)
    }

    /// Tells the daemon's outbox sender (when it runs here) that mail may be waiting.
    pub fn wake_outbox(&self) {
        if let Some(daemon) = &self.daemon {
            daemon.outbox_wake.notify_one();
        }
    }

    /// How a person's change is applied (identity, limits, triggers of these rules).
    pub fn apply_options(&self, rules: &Arc<RuleSet>) -> ApplyOptions {
        crate::pipeline::apply_options(&self.config, rules)
    }
}

/// The rule files (`*.toml` in the directory) with their sizes and modification times.
fn fingerprint(dir: &std::path::Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| {
            let meta = std::fs::metadata(&p).ok()?;
            Some((p, meta.len(), meta.modified().ok()))
        })
        .collect();
    files.sort();
    files
}
