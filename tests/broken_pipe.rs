//! cli.md, version 2: every command that prints stops quietly when its reader goes away
//! (`mailrules task list | head -1` exits 0 or 141, never a panic with a stack trace).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Output, Stdio};

use crate::support::workdir::Workdir;

/// Far more output than a pipe holds (64 KiB): the command is still writing when the reader
/// leaves, so the write that fails is certain, not a race.
const TASKS: usize = 1500;

fn workdir_with_many_tasks() -> Workdir {
    let w = Workdir::with_rules(&[]);
    let mbox = w.path("many.mbox");
    let mut out = std::fs::File::create(&mbox).unwrap();
    for i in 0..TASKS {
        write!(
            out,
            "From c{i}@example.org Mon Nov  2 10:00:00 2026\nFrom: Customer {i} <c{i}@example.org>\n\
             To: support@acme.example\nSubject: Request {i}, long enough to fill a table's row\n\
             Message-ID: <m{i}@example.org>\nDate: Mon, 2 Nov 2026 10:00:00 +0000\n\nBody {i}\n\n"
        )
        .unwrap();
    }
    drop(out);
    let result = w.ingest(&mbox);
    assert_eq!(result["processed"], TASKS, "{result:#}");
    w
}

/// `mailrules ARGS | head -1`: reads one line, then closes the pipe.
fn head_1(w: &Workdir, args: &[&str]) -> Output {
    let mut child = w
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(!first.is_empty(), "mailrules {args:?} printed nothing");
    drop(stdout);
    child.wait_with_output().unwrap()
}

/// `mailrules ARGS | true`: the reader is gone before the command prints anything (it may
/// also win the race and print into the pipe first, and then exits 0).
fn nobody_reads(w: &Workdir, args: &[&str]) -> Output {
    let mut child = w
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

/// Exit 0, or 141 as a shell shows a death by SIGPIPE; nothing said about it on stderr.
fn assert_stopped_quietly(args: &[&str], out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "mailrules {args:?} complained:\n{stderr}"
    );
    let quiet = out.status.code() == Some(0)
        || out.status.code() == Some(141)
        || out.status.signal() == Some(libc::SIGPIPE);
    assert!(
        quiet,
        "mailrules {args:?} ended with {:?}\n{stderr}",
        out.status
    );
}

#[test]
fn listing_commands_stop_quietly_when_head_has_its_line() {
    let w = workdir_with_many_tasks();
    for args in [
        &["task", "list"][..],
        &["task", "list", "--json"],
        &["task", "list", "--status", "Новая"],
    ] {
        let out = head_1(&w, args);
        assert_stopped_quietly(args, &out);
        // The reader left long before the end: the command was stopped, not finished.
        assert!(
            !out.status.success(),
            "mailrules {args:?}: {:?}",
            out.status
        );
    }
}

#[test]
fn ingest_stops_quietly_after_storing_when_its_reader_left() {
    let w = workdir_with_many_tasks();
    let mbox = w.path("many.mbox");
    let args = ["ingest", mbox.to_str().unwrap(), "--json"];
    let out = head_1(&w, &args);
    assert_stopped_quietly(&args, &out);
    // Every message was already stored (as duplicates now): the JSON came after the commit.
    assert_eq!(w.json(&["task", "list"]).as_array().unwrap().len(), TASKS);
}

#[test]
fn short_outputs_stop_quietly_when_nobody_reads_them() {
    let w = workdir_with_many_tasks();
    for args in [
        &["task", "show", "1"][..],
        &["task", "show", "1", "--json"],
        &["failed"],
        &["outbox", "--json"],
        &["user", "list"],
        &["check"],
        // Talks to servers, so SIGPIPE stays ignored there: its lines end it the same way.
        &["check", "--online"],
    ] {
        let out = nobody_reads(&w, args);
        assert_stopped_quietly(args, &out);
    }
}
