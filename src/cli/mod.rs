//! The command line: argument parsing and dispatch to one module per command group.
//!
//! Human output goes to stdout, diagnostics to stderr; `--json` prints one JSON document.
//! Exit codes: 0 success, 1 user error, 2 usage error, 75 store failure on `ingest -`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod check;
mod check_online;
mod failed;
mod ingest;
mod messages;
mod outbox;
mod run;
mod schedules;
mod table;
mod tasks;

/// sysexits.h EX_TEMPFAIL: the MTA keeps the message and tries again later.
pub const EXIT_TEMPFAIL: u8 = 75;

#[derive(Debug, Parser)]
#[command(
    name = "mailrules",
    version,
    about = "Turns email into work: IMAP mail matched against TOML rules becomes tasks, comments, field updates, analytics rows and replies."
)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "MAILRULES_CONFIG",
        default_value = "mailrules.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: watch every configured mailbox, process mail, send queued mail, run schedules.
    Run,
    /// Load the configuration and the rules, and report every error.
    Check {
        /// Also log in to every mailbox and the SMTP server, resolve the folders mail is moved
        /// to, and say what each server offers.
        #[arg(long)]
        online: bool,
    },
    /// Process messages from .eml files, Maildir folders, mbox files or `-` (stdin).
    Ingest {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Mailbox name the messages count as coming from (for `mailbox = [...]` in rules).
        #[arg(long, default_value = "cli")]
        mailbox: String,
        #[arg(long)]
        json: bool,
    },
    /// Dry run of one message: thread, every rule tried and why, extracted values, actions.
    Explain {
        file: PathBuf,
        #[arg(long, default_value = "cli")]
        mailbox: String,
        #[arg(long)]
        json: bool,
    },
    /// Tasks in the store.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// Analytics tables.
    Analytics {
        #[command(subcommand)]
        command: AnalyticsCommand,
    },
    /// Counts of analytics rows grouped by a column (and a period).
    Report {
        table: String,
        #[arg(long)]
        by: String,
        #[arg(long, value_enum)]
        period: Option<PeriodArg>,
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
    },
    /// Every message and its fate; one message's headers, original bytes and attachments.
    Message {
        #[command(subcommand)]
        command: MessageCommand,
    },
    /// Messages that failed, with their errors.
    Failed {
        #[arg(long)]
        json: bool,
    },
    /// Run failed messages again (all of them, or the given ids).
    Retry {
        ids: Vec<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Schedules: when each last ran and what it did.
    Schedules {
        #[command(subcommand)]
        command: Option<SchedulesCommand>,
        #[arg(long)]
        json: bool,
    },
    /// Queued, sent, failed and suppressed outgoing mail.
    Outbox {
        #[command(subcommand)]
        command: Option<OutboxCommand>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Tasks, newest first.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One task with its fields, comments and analytics rows.
    Show {
        id: i64,
        /// Also show automatic comments (written by rules and triggers).
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// Every message and its fate (applied, ignored, failed), newest first.
    List {
        /// Only these; `duplicate`: messages delivered again after they were processed.
        #[arg(long, value_enum)]
        status: Option<FateArg>,
        /// Only messages that acted on this task.
        #[arg(long)]
        task: Option<i64>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// One message: headers, fate, rule, task, error, attachments.
    Show {
        id: i64,
        /// Write its original bytes as they came (escaped on a terminal).
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        json: bool,
    },
    /// Write the message's N-th attachment (from 1) to stdout, or to a file.
    Attachment {
        id: i64,
        number: usize,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Delete the original bytes of mail received longer ago than `keep_mail` now (the daemon
    /// does it every hour); the messages' records stay.
    Prune {
        /// The time to count from (RFC 3339), instead of the clock.
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FateArg {
    Applied,
    Ignored,
    Failed,
    Duplicate,
}

impl From<FateArg> for crate::store::MessageFate {
    fn from(fate: FateArg) -> Self {
        match fate {
            FateArg::Applied => Self::Applied,
            FateArg::Ignored => Self::Ignored,
            FateArg::Failed => Self::Failed,
            FateArg::Duplicate => Self::Duplicate,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AnalyticsCommand {
    /// Rows of one analytics table.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Run the schedules whose `every` has passed since they last ran (all of them with
    /// --now); each still acts at most once per task per entry into its state.
    Run {
        /// Run every schedule, whenever it last ran.
        #[arg(long)]
        now: bool,
        /// The time to run at (RFC 3339), instead of the clock: for tests.
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Put failed mail (all, or the given ids) back in the queue.
    Retry { ids: Vec<i64> },
    /// Send what is due now and exit (for cron, or when the daemon is not running).
    Send,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PeriodArg {
    Day,
    Week,
    Month,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

/// Runs the parsed command line; errors are printed here and become exit code 1.
pub fn main(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Run => run::run(&cli.config),
        Command::Check { online } => check::check(&cli.config, online),
        Command::Ingest {
            paths,
            mailbox,
            json,
        } => ingest::ingest(&cli.config, &paths, &mailbox, json),
        Command::Explain {
            file,
            mailbox,
            json,
        } => ingest::explain(&cli.config, &file, &mailbox, json),
        Command::Task {
            command: TaskCommand::List { status, json },
        } => tasks::list(&cli.config, status.as_deref(), json),
        Command::Task {
            command: TaskCommand::Show { id, all, json },
        } => tasks::show(&cli.config, id, all, json),
        Command::Analytics {
            command: AnalyticsCommand::Show { name, json },
        } => tasks::analytics(&cli.config, &name, json),
        Command::Report {
            table,
            by,
            period,
            format,
        } => tasks::report(&cli.config, &table, &by, period, format),
        Command::Message { command } => message(&cli.config, command),
        Command::Failed { json } => failed::list(&cli.config, json),
        Command::Retry { ids, json } => failed::retry(&cli.config, &ids, json),
        Command::Schedules {
            command: None,
            json,
        } => schedules::list(&cli.config, json),
        Command::Schedules {
            command: Some(SchedulesCommand::Run { now, at, json }),
            json: json_before,
        } => schedules::run(&cli.config, now, at.as_deref(), json || json_before),
        Command::Outbox {
            command: None,
            json,
        } => outbox::list(&cli.config, json),
        Command::Outbox {
            command: Some(OutboxCommand::Retry { ids }),
            ..
        } => outbox::retry(&cli.config, &ids),
        Command::Outbox {
            command: Some(OutboxCommand::Send),
            ..
        } => outbox::send(&cli.config),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn message(config: &std::path::Path, command: MessageCommand) -> anyhow::Result<ExitCode> {
    match command {
        MessageCommand::List {
            status,
            task,
            limit,
            json,
        } => {
            let filter = crate::store::MessageFilter {
                fate: status.map(Into::into),
                task,
                limit,
            };
            messages::list(config, &filter, json)
        }
        MessageCommand::Show { id, raw, json } => messages::show(config, id, raw, json),
        MessageCommand::Attachment { id, number, output } => {
            messages::attachment(config, id, number, output.as_deref())
        }
        MessageCommand::Prune { at } => messages::prune(config, at.as_deref()),
    }
}

/// Loads the configuration, with the file named in the error.
fn load_config(path: &std::path::Path) -> anyhow::Result<crate::config::Config> {
    Ok(crate::config::Config::load(path)?)
}

/// Opens the store the configuration names.
fn open_store(config: &crate::config::Config) -> anyhow::Result<crate::store::Store> {
    Ok(crate::store::Store::open(&config.store)?)
}

/// Loads the rules, printing every error (file:line:col) when they do not load.
fn load_rules(config: &crate::config::Config) -> anyhow::Result<crate::rules::RuleSet> {
    crate::rules::RuleSet::load_dir(&config.rules).map_err(|errors| {
        anyhow::anyhow!(
            "the rules in {} do not load:\n{errors}",
            config.rules.display()
        )
    })
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
