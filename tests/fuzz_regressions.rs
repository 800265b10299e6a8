//! Every input the fuzzers found a bug with (`fuzz/regressions/<target>/`), run through the
//! same code the fuzz target runs (`fuzz/src/lib.rs`, included here), so that a fixed crash,
//! hang or blow-up stays fixed without nightly or cargo-fuzz. The fuzzers' seeds (the fixture
//! messages and rule files) run the same way.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod fuzz_support;

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Files under `dir` (recursively) whose name ends in one of `extensions` (any name when empty).
fn files(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, extensions, out);
        } else if extensions.is_empty()
            || extensions
                .iter()
                .any(|e| path.to_string_lossy().ends_with(e))
        {
            out.push(path);
        }
    }
}

fn inputs(target: &str, seed_dirs: &[&str], extensions: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    files(&root().join("fuzz/regressions").join(target), &[], &mut out);
    for dir in seed_dirs {
        files(&root().join(dir), extensions, &mut out);
    }
    out.sort();
    assert!(!out.is_empty(), "no inputs for {target}");
    out
}

/// Runs `run` on each input on its own thread with a time bound: a regression that hangs
/// must fail the test, not stall it.
fn run_each(target: &str, paths: &[PathBuf], run: fn(&[u8])) {
    for path in paths {
        let bytes = std::fs::read(path).unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            run(&bytes);
            let _ = done.send(());
        });
        match finished.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(()) => worker.join().unwrap(),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("{target}: {} panicked", path.display())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("{target}: {} did not finish in 2 minutes", path.display())
            }
        }
    }
}

const MESSAGE_SEEDS: &[&str] = &[
    "fixtures/corpus",
    "fixtures/encodings",
    "fixtures/scenarios",
    "tests/plans",
];
const MESSAGE_FILES: &[&str] = &[".eml", ".txt"];

#[test]
fn parse_thread_inputs() {
    let paths = inputs("parse_thread", MESSAGE_SEEDS, MESSAGE_FILES);
    run_each("parse_thread", &paths, fuzz_support::parse_thread);
}

#[test]
fn evaluate_inputs() {
    let paths = inputs("evaluate", MESSAGE_SEEDS, MESSAGE_FILES);
    run_each("evaluate", &paths, fuzz_support::evaluate_message);
}

/// The `&str` targets see only valid UTF-8, as libFuzzer hands it to them.
fn as_text(run: fn(&str)) -> impl Fn(&[u8]) {
    move |bytes| {
        if let Ok(text) = std::str::from_utf8(bytes) {
            run(text);
        }
    }
}

#[test]
fn load_rules_inputs() {
    let paths = inputs(
        "load_rules",
        &["fuzz/seeds", "rules", "tests/plans", "fixtures/scenarios"],
        &[".toml"],
    );
    run_each("load_rules", &paths, |b| {
        as_text(fuzz_support::load_rules)(b)
    });
}

#[test]
fn html_quote_inputs() {
    let paths = inputs("html_quote", MESSAGE_SEEDS, MESSAGE_FILES);
    run_each("html_quote", &paths, |b| {
        as_text(fuzz_support::html_quote)(b)
    });
}
