//! Log output: `tracing` to stderr, filtered by `MAILRULES_LOG` (e.g. `debug`,
//! `mailrules=debug,async_imap=warn`), default `info`.
//!
//! Under systemd (`JOURNAL_STREAM` set) lines carry no timestamp or colour, since journald adds
//! its own time and stores the level from the line.

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Libraries that log the IMAP and SMTP conversation itself below `info`, the LOGIN and AUTH
/// lines with the password in them. They never log below `info`, whatever `MAILRULES_LOG` says:
/// secrets must not reach a log.
const WIRE_LOGGERS: &[&str] = &["async_imap", "imap_proto", "lettre"];

fn shows_no_wire(meta: &Metadata<'_>) -> bool {
    *meta.level() <= Level::INFO
        || !WIRE_LOGGERS.iter().any(|crate_name| {
            meta.target()
                .strip_prefix(crate_name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

pub fn init() {
    let filter = EnvFilter::try_from_env("MAILRULES_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .and(filter_fn(shows_no_wire));
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let layer = fmt::layer().with_writer(std::io::stderr);
    let result = if under_journald {
        tracing_subscriber::registry()
            .with(
                layer
                    .without_time()
                    .with_ansi(false)
                    .with_target(false)
                    .with_filter(filter),
            )
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(
                layer
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_filter(filter),
            )
            .try_init()
    };
    // A second init (tests calling into the binary's entry twice) keeps the first subscriber.
    let _ = result;
}
