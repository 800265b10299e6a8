//! Log output: `tracing` to stderr, filtered by `MAILRULES_LOG` (e.g. `debug`,
//! `mailrules=debug,async_imap=warn`), default `info`.
//!
//! Under systemd (`JOURNAL_STREAM` set) lines carry no timestamp or colour, since journald adds
//! its own time and stores the level from the line.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter =
        EnvFilter::try_from_env("MAILRULES_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if under_journald {
        builder
            .without_time()
            .with_ansi(false)
            .with_target(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
    // A second init (tests calling into the binary's entry twice) keeps the first subscriber.
    let _ = result;
}
