//! Rule tests (`mailrules test`): sample mail beside the rules (`NAME.eml`) with what must
//! happen when it arrives (`NAME.toml`), run through the real pipeline in a throwaway store.
//!
//! A folder of tests is a little conversation: its messages arrive in byte order of their
//! file names at one in-memory store, so a reply threads onto the task an earlier test's
//! request created. Nothing touches the configured store and nothing is sent: queued mail
//! stays in the throwaway store's outbox, where the test reads it.

pub mod expect;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::pipeline::{Incoming, Outcome, OutcomeStatus, Pipeline};
use crate::rules::RuleSet;
use crate::store::{Store, StoreError};
use expect::{Actual, ActualMail, ActualTask};

/// Why the tests could not be run at all (a failing test is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum RuleTestError {
    #[error("{}: no such file or folder", path.display())]
    NotFound { path: PathBuf },
    #[error(
        "{}: not a rule test (a test is a NAME.eml message with its NAME.toml expectation)",
        path.display()
    )]
    NotATest { path: PathBuf },
    #[error("{}: cannot read the folder: {message}", path.display())]
    ReadDir { path: PathBuf, message: String },
    #[error("{}: the pipeline gave no outcome for the message (a bug: please report it)", path.display())]
    NoOutcome { path: PathBuf },
    #[error("the throwaway store of the tests failed: {0}")]
    Store(#[from] StoreError),
}

/// One folder of tests, and which of them are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub dir: PathBuf,
    /// Every test of the folder up to the last one checked, in byte order of the name: the
    /// earlier ones run first even when not checked, for the conversation they make.
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub message: Option<PathBuf>,
    pub expectation: Option<PathBuf>,
    /// False for an earlier message of the conversation when only a later test was named.
    pub checked: bool,
}

/// What became of one checked test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// Why, one line each (`task.status: expected "…", got "…"`).
    Failed(Vec<String>),
    /// `--bless`: the expectation file, and whether it changed.
    Blessed {
        path: PathBuf,
        changed: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub name: String,
    pub verdict: Verdict,
}

/// The folders to run: each PATH a folder of tests or one test (its `.eml` or `.toml`);
/// without PATHs, `default` (the `tests` folder beside the rule files).
pub fn discover(paths: &[PathBuf], default: &Path) -> Result<Vec<Folder>, RuleTestError> {
    // Folder → the names checked in it (None: all of them).
    let mut wanted: BTreeMap<PathBuf, Option<BTreeSet<String>>> = BTreeMap::new();
    if paths.is_empty() && default.is_dir() {
        wanted.insert(default.to_path_buf(), None);
    }
    for path in paths {
        if path.is_dir() {
            wanted.insert(path.clone(), None);
        } else if path.is_file() {
            let is_test = path.extension().is_some_and(|x| x == "eml" || x == "toml");
            let (Some(stem), true) = (path.file_stem().and_then(|s| s.to_str()), is_test) else {
                return Err(RuleTestError::NotATest { path: path.clone() });
            };
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            // None: the whole folder is run already.
            if let Some(names) = wanted.entry(dir).or_insert_with(|| Some(BTreeSet::new())) {
                names.insert(stem.to_string());
            }
        } else {
            return Err(RuleTestError::NotFound { path: path.clone() });
        }
    }
    let mut folders = Vec::new();
    for (dir, names) in wanted {
        let mut cases = cases_in(&dir)?;
        if let Some(names) = names {
            let last = names.iter().next_back().cloned().unwrap_or_default();
            cases.retain(|c| c.name <= last);
            for case in &mut cases {
                case.checked = names.contains(&case.name);
            }
            if let Some(missing) = names.iter().find(|n| !cases.iter().any(|c| &c.name == *n)) {
                return Err(RuleTestError::NotFound {
                    path: dir.join(format!("{missing}.eml")),
                });
            }
        }
        folders.push(Folder { dir, cases });
    }
    Ok(folders)
}

/// Every `NAME.eml` and `NAME.toml` of `dir`, paired by name, in byte order of the name.
fn cases_in(dir: &Path) -> Result<Vec<Case>, RuleTestError> {
    let unreadable = |e: std::io::Error| RuleTestError::ReadDir {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    let mut cases: BTreeMap<String, Case> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|x| x.to_str()),
        ) else {
            continue;
        };
        if !path.is_file() || !(ext == "eml" || ext == "toml") {
            continue;
        }
        let case = cases.entry(stem.to_string()).or_insert_with(|| Case {
            name: stem.to_string(),
            message: None,
            expectation: None,
            checked: true,
        });
        if ext == "eml" {
            case.message = Some(path);
        } else {
            case.expectation = Some(path);
        }
    }
    // String order is byte order for UTF-8 names.
    Ok(cases.into_values().collect())
}

/// Runs one folder's conversation in a new in-memory store; with `bless`, writes each
/// checked test's expectation file from what happened instead of comparing.
pub fn run_folder(
    folder: &Folder,
    config: Arc<Config>,
    rules: Arc<RuleSet>,
    bless: bool,
) -> Result<Vec<TestResult>, RuleTestError> {
    let mut pipeline = Pipeline::new(config, rules, Store::open_in_memory()?);
    let mut results = Vec::new();
    for case in &folder.cases {
        let verdict = run_case(&mut pipeline, case, bless)?;
        if case.checked {
            results.push(TestResult {
                name: case.name.clone(),
                verdict,
            });
        }
    }
    Ok(results)
}

fn run_case(pipeline: &mut Pipeline, case: &Case, bless: bool) -> Result<Verdict, RuleTestError> {
    let name = &case.name;
    let Some(message) = &case.message else {
        return Ok(Verdict::Failed(vec![format!(
            "no message {name}.eml beside {name}.toml"
        )]));
    };
    let raw = match std::fs::read(message) {
        Ok(raw) => raw,
        Err(e) => {
            return Ok(Verdict::Failed(vec![format!(
                "{}: cannot read: {e}",
                message.display()
            )]))
        }
    };
    let actual = arrive(pipeline, raw, message)?;
    if !case.checked {
        return Ok(Verdict::Passed);
    }
    if bless {
        let path = case
            .expectation
            .clone()
            .unwrap_or_else(|| message.with_extension("toml"));
        let text = expect::bless(&actual);
        let changed = std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str());
        if changed {
            if let Err(e) = std::fs::write(&path, text) {
                let error = expect::ExpectationError::Write {
                    path,
                    message: e.to_string(),
                };
                return Ok(Verdict::Failed(vec![error.to_string()]));
            }
        }
        return Ok(Verdict::Blessed { path, changed });
    }
    let Some(path) = &case.expectation else {
        return Ok(Verdict::Failed(vec![format!(
            "no expectation file {name}.toml beside {name}.eml (`mailrules test --bless` \
             writes it from what happens)"
        )]));
    };
    let expected = match expect::read(path) {
        Ok(expected) => expected,
        Err(e) => return Ok(Verdict::Failed(vec![e.to_string()])),
    };
    let mismatches = expect::compare(&expected, &actual);
    Ok(if mismatches.is_empty() {
        Verdict::Passed
    } else {
        Verdict::Failed(mismatches.iter().map(ToString::to_string).collect())
    })
}

/// Processes one message in the test's store and reads back what it did.
fn arrive(pipeline: &mut Pipeline, raw: Vec<u8>, path: &Path) -> Result<Actual, RuleTestError> {
    let before = last_outbox_id(pipeline.store())?;
    let incoming = Incoming::new(raw, "cli", path.display().to_string());
    let outcomes = pipeline.process_batch(vec![incoming], None)?;
    let Some(outcome) = outcomes.into_iter().next() else {
        return Err(RuleTestError::NoOutcome {
            path: path.to_path_buf(),
        });
    };
    let store = pipeline.store();
    let task = match outcome.task {
        Some(id) => store.task_show(id)?.map(|t| ActualTask {
            id,
            title: t.title,
            status: t.status,
            fields: t.fields,
        }),
        None => None,
    };
    let mut outbox: Vec<ActualMail> = store
        .outbox_list()?
        .into_iter()
        .filter(|row| row.id > before && row.status != "suppressed")
        .map(|row| ActualMail {
            kind: row.kind,
            to: row.recipient,
            subject: row.subject,
        })
        .collect();
    // The store lists the newest first.
    outbox.reverse();
    Ok(Actual {
        rule: outcome.rule.clone().unwrap_or_default(),
        status: fate(&outcome),
        error: outcome.error,
        task,
        outbox,
    })
}

/// The fate `message list` shows: a message that did not fail is ignored when it acted on
/// no task (store/messages.rs decides it the same way).
fn fate(outcome: &Outcome) -> &'static str {
    match (outcome.status, outcome.task) {
        (OutcomeStatus::Failed, _) => "failed",
        (OutcomeStatus::Duplicate, _) => "duplicate",
        (OutcomeStatus::Applied, None) => "ignored",
        (OutcomeStatus::Applied, Some(_)) => "applied",
    }
}

fn last_outbox_id(store: &Store) -> Result<i64, StoreError> {
    Ok(store.outbox_list()?.first().map_or(0, |row| row.id))
}
