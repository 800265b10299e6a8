//! Log output: `tracing` to stderr, filtered by `MAILRULES_LOG` (e.g. `debug`,
//! `mailrules=debug,async_imap=warn`), default `info`.
//!
//! Under systemd (`JOURNAL_STREAM` set) lines carry no timestamp or colour, since journald adds
//! its own time, and start with a syslog priority prefix (`<3>` error … `<7>` debug), which
//! journald turns into the entry's priority: `journalctl -p warning -u mailrules` works.

use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{filter_fn, FilterExt};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
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
    let env_filter =
        EnvFilter::try_from_env("MAILRULES_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let most_verbose = env_filter.max_level_hint();
    let filter = env_filter.and(filter_fn(shows_no_wire));
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let layer = fmt::layer().with_writer(std::io::stderr);
    let result = if under_journald {
        tracing_subscriber::registry()
            .with(layer.event_format(journald_format()).with_filter(filter))
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(
                layer
                    .with_ansi(colour(
                        std::env::var_os("NO_COLOR").as_deref(),
                        std::io::IsTerminal::is_terminal(&std::io::stderr()),
                    ))
                    .with_filter(filter),
            )
            .try_init()
    };
    // A second init (tests calling into the binary's entry twice) keeps the first subscriber.
    if result.is_ok() {
        // `try_init` bridges the `log` crate's records with its most verbose level, so that
        // every `log::trace!` of the libraries builds its arguments before the filter drops
        // it: async-imap's decoder checks a whole buffered response as UTF-8 for a trace line
        // at each attempt to parse it (1 % of the daemon's instructions). The bridge need not
        // let through more than the filter ever shows.
        log::set_max_level(log_level(most_verbose));
    }
}

/// The `log` crate's level that lets through what `hint` (tracing's most verbose level) shows.
fn log_level(hint: Option<tracing::level_filters::LevelFilter>) -> log::LevelFilter {
    use tracing::level_filters::LevelFilter;
    match hint {
        Some(LevelFilter::OFF) => log::LevelFilter::Off,
        Some(LevelFilter::ERROR) => log::LevelFilter::Error,
        Some(LevelFilter::WARN) => log::LevelFilter::Warn,
        Some(LevelFilter::INFO) => log::LevelFilter::Info,
        Some(LevelFilter::DEBUG) => log::LevelFilter::Debug,
        // No hint: any level may be shown.
        _ => log::LevelFilter::Trace,
    }
}

/// Colours only on a terminal, and never when `NO_COLOR` is set to anything but the empty
/// string (<https://no-color.org>).
fn colour(no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

fn journald_format() -> SyslogPriority<format::Format<format::Full, ()>> {
    SyslogPriority(
        format::format()
            .without_time()
            .with_ansi(false)
            .with_target(false),
    )
}

/// Prefixes every event with its syslog priority, as journald's `SyslogLevelPrefix` reads it.
struct SyslogPriority<F>(F);

fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

impl<S, N, F> FormatEvent<S, N> for SyslogPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_log_bridge_lets_through_what_the_filter_may_show_and_no_more() {
        let level = |directives: &str| log_level(EnvFilter::new(directives).max_level_hint());
        assert_eq!(level("info"), log::LevelFilter::Info);
        assert_eq!(level("warn,mailrules=debug"), log::LevelFilter::Debug);
        assert_eq!(level("rustls=trace"), log::LevelFilter::Trace);
        assert_eq!(level("off"), log::LevelFilter::Off);
    }

    #[test]
    fn journald_lines_carry_the_syslog_priority_and_no_timestamp() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::DEBUG)
            .with_writer(move || writer.clone())
            .event_format(journald_format())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("password rejected");
            tracing::warn!(mailbox = "support", "connection lost");
            tracing::info!("connected");
            tracing::debug!("idle");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "<3>ERROR password rejected",
                "<4> WARN connection lost mailbox=\"support\"",
                "<6> INFO connected",
                "<7>DEBUG idle",
            ]
        );
    }
}
