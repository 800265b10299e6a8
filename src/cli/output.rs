//! What printing does when stdout's reader goes away (`mailrules task list | head -1`): the
//! process ends quietly, as `cat` or `grep` do (killed by SIGPIPE, status 141 in the shell,
//! nothing on stderr), never with a panic and a stack trace (cli.md, version 2).

use std::fmt;
use std::io::{ErrorKind, Write};

use super::{Command, OutboxCommand};

/// Sets up, once for every command, how a closed stdout ends the process.
///
/// Rust starts every program with SIGPIPE ignored, so a write to a pipe nobody reads returns
/// EPIPE and `println!` panics on it. For the commands that only read and write local files,
/// SIGPIPE's default disposition comes back: the kernel ends the process at the first write
/// nobody reads, whichever of the many print sites makes it, with nothing to change at any of
/// them.
///
/// The commands that talk to servers keep SIGPIPE ignored: their TLS sockets are written with
/// writev, which raises SIGPIPE when a server has closed the connection, and the default
/// disposition would kill the daemon, or a sender with mail half sent, without a word. They
/// print the little they print through [`line`] (the `say!` macro), which ends the process the
/// same way only when it is stdout's reader that went away.
///
/// The match lists every command on purpose: a new command must say which kind it is.
pub fn prepare(command: &Command) {
    let talks_to_servers = match command {
        Command::Run
        | Command::Serve { .. }
        | Command::Check { online: true }
        | Command::Outbox {
            command: Some(OutboxCommand::Send),
            ..
        } => true,
        Command::Check { online: false }
        | Command::Completions { .. }
        | Command::Man
        | Command::Ingest { .. }
        | Command::Explain { .. }
        | Command::Test { .. }
        | Command::Task { .. }
        | Command::Analytics { .. }
        | Command::Report { .. }
        | Command::Failed { .. }
        | Command::Retry { .. }
        | Command::Schedules { .. }
        | Command::Outbox { .. }
        | Command::User { .. }
        | Command::Message { .. } => false,
    };
    if !talks_to_servers {
        // SAFETY: called on the main thread before any other thread exists; SIG_DFL is a valid
        // disposition for SIGPIPE.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
}

/// Prints one line on stdout; when nobody reads stdout any more, ends the process as SIGPIPE
/// would (for the commands that keep SIGPIPE ignored, see [`prepare`]).
pub fn line(args: fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => end_as_by_sigpipe(),
        other => other,
    }
}

/// Ends the process the way a write to a closed pipe does under SIGPIPE's default disposition,
/// so every command looks the same to a shell (status 141) whichever way it learnt of it.
fn end_as_by_sigpipe() -> ! {
    // SAFETY: restoring the default disposition and raising the signal on this thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    // Only reached when this thread blocks SIGPIPE: the same status, by hand.
    std::process::exit(128 + libc::SIGPIPE)
}

/// `println!` for the commands that talk to servers: see [`line`].
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}
pub(crate) use say;
