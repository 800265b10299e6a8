//! The command line: argument parsing and dispatch to one module per command group.
//!
//! Human output goes to stdout, diagnostics to stderr; `--json` prints one JSON document.
//! Exit codes: 0 success, 1 user error, 2 usage error, 75 store failure on `ingest -`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod analytics;
mod auth;
mod author;
mod check;
mod check_online;
mod docs;
mod explain;
mod failed;
mod ingest;
mod messages;
mod outbox;
mod output;
mod prompt;
mod rule_tests;
mod run;
mod schedules;
mod serve;
mod table;
mod tasks;
mod team_args;
mod users;
mod work;

pub use author::{resolve as resolve_author, Author, AuthorError, USER_VAR};
pub use team_args::{FateArg, MessageCommand, TaskCommand};

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
    #[command(after_help = "Example:\n  mailrules --config /etc/mailrules/mailrules.toml run")]
    Run,
    /// The web alone: the queue, tasks, analytics and the operator's pages in a browser
    /// (`[web]` in the config; loopback by default). `run` also serves it when `[web]` is set.
    #[command(after_help = "Example:\n  mailrules serve; mailrules serve --listen 127.0.0.1:9090")]
    Serve {
        /// Address and port to listen on instead of `[web] listen` (port 0: any free port,
        /// printed on the first line).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
    },
    /// Load the configuration and the rules, and report every error.
    #[command(after_help = "Example:\n  mailrules check --online")]
    Check {
        /// Also log in to every mailbox and the SMTP server, resolve the folders mail is moved
        /// to, and say what each server offers.
        #[arg(long)]
        online: bool,
    },
    /// Process messages from .eml files, Maildir folders, mbox files or `-` (stdin).
    #[command(
        after_help = "Example:\n  mailrules ingest ~/Maildir/.Support archive.mbox --mailbox support"
    )]
    Ingest {
        /// Files, Maildir folders, mbox files, or `-` for one message on standard input.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Mailbox name the messages count as coming from (for `mailbox = [...]` in rules).
        #[arg(long, default_value = "cli")]
        mailbox: String,
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
    /// Dry run of one message: thread, every rule tried and why, extracted values, actions.
    ///
    /// `mailrules explain mail.eml` for a file (`-`: standard input); `mailrules explain
    /// --message 42` for a stored message (a failed one, above all): what happened to it, and
    /// what would happen now with the current rules.
    #[command(
        after_help = "Example:\n  mailrules explain new-mail.eml; mailrules explain --message 12 --json"
    )]
    Explain {
        /// The message file (`-` for standard input).
        #[arg(required_unless_present = "message", conflicts_with = "message")]
        file: Option<PathBuf>,
        /// A stored message, by the id `mailrules message list` shows.
        #[arg(long, value_name = "ID")]
        message: Option<i64>,
        /// The mailbox the message counts as coming from (for `mailbox = [...]` in rules).
        #[arg(long, default_value = "cli")]
        mailbox: String,
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
    /// Run the rule tests: sample mail with what must happen (`NAME.eml` + `NAME.toml`), in a
    /// throwaway store; nothing is sent. Example: `mailrules test rules/tests`.
    #[command(after_help = "Example:\n  mailrules test --bless rules/tests")]
    Test {
        /// Folders of tests, or single tests (`NAME.eml` or `NAME.toml`: the folder's earlier
        /// messages arrive first); default: the `tests` folder beside the rule files.
        paths: Vec<PathBuf>,
        /// Write each test's `.toml` from what happened, instead of checking it.
        #[arg(long)]
        bless: bool,
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
    #[command(
        after_help = "Example:\n  mailrules report \"Причины отказа\" --by Причина --period month --format csv"
    )]
    Report {
        /// The analytics table.
        table: String,
        /// The column whose values are counted.
        #[arg(long)]
        by: String,
        /// Counts per day, week or month as well.
        #[arg(long, value_enum)]
        period: Option<PeriodArg>,
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
        /// The same as `--format json`, like every other command.
        #[arg(long)]
        json: bool,
    },
    /// Every message and its fate; one message's headers, original bytes and attachments.
    Message {
        #[command(subcommand)]
        command: MessageCommand,
    },
    /// Messages that failed, with their errors.
    #[command(after_help = "Example:\n  mailrules failed --json")]
    Failed {
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
    /// Run failed messages again (all of them, or the given ids).
    #[command(after_help = "Example:\n  mailrules retry 12 15")]
    Retry {
        ids: Vec<i64>,
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
    /// Schedules: when each last ran and what it did.
    #[command(after_help = "Example:\n  mailrules schedules; mailrules schedules run --now")]
    Schedules {
        #[command(subcommand)]
        command: Option<SchedulesCommand>,
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
    /// Queued, sent, failed and suppressed outgoing mail.
    #[command(after_help = "Example:\n  mailrules outbox; mailrules outbox retry 7")]
    Outbox {
        #[command(subcommand)]
        command: Option<OutboxCommand>,
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
    /// Staff accounts: who may log in to the web and make changes, with which role.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print a shell completion script: `mailrules completions bash > /etc/bash_completion.d/mailrules`.
    #[command(after_help = "Example:\n  mailrules completions zsh > ~/.zfunc/_mailrules")]
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Sign an OAuth2 mailbox (or the [smtp] account) in with the provider's device-code flow
    /// and store its refresh token where `refresh_token_file` says.
    #[command(after_help = "Example:\n  mailrules auth gmail")]
    Auth {
        /// The [[mailbox]] to sign in, by its name.
        #[arg(required_unless_present = "smtp", conflicts_with = "smtp")]
        mailbox: Option<String>,
        /// Sign in the [smtp] account instead of a mailbox.
        #[arg(long)]
        smtp: bool,
    },
    /// Print the man page (roff): `mailrules man > /usr/local/share/man/man1/mailrules.1`.
    #[command(after_help = "Example:\n  mailrules man | man -l -")]
    Man,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account; the password is read from standard input (one line), or asked for
    /// twice when standard input is a terminal.
    #[command(
        after_help = "Example:\n  mailrules user add anna@acme.example --name \"Анна\" --role agent < password.txt"
    )]
    Add {
        /// The account's email address.
        email: String,
        /// The name shown beside the address.
        #[arg(long)]
        name: Option<String>,
        /// viewer: reads everything; agent: also works tasks; admin: also users, retry, rules.
        #[arg(long, value_enum, default_value = "agent")]
        role: users::RoleArg,
    },
    /// Every account with its role.
    #[command(after_help = "Example:\n  mailrules user list --json")]
    List {
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
    /// Remove an account (its API token stops working).
    #[command(after_help = "Example:\n  mailrules user remove anna@acme.example")]
    Remove {
        /// The account's email address.
        email: String,
    },
    /// Set a new password, read like `user add` reads it.
    #[command(after_help = "Example:\n  mailrules user passwd anna@acme.example")]
    Passwd {
        /// The account's email address.
        email: String,
    },
    /// Print a new API token for the account, once; it replaces the account's previous token.
    #[command(after_help = "Example:\n  mailrules user token anna@acme.example")]
    Token {
        /// The account's email address.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AnalyticsCommand {
    /// Rows of one analytics table.
    #[command(after_help = "Example:\n  mailrules analytics show \"Причины отказа\" --format csv")]
    Show {
        /// The analytics table.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
        /// The same as `--format json`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Run the schedules whose `every` has passed since they last ran (all of them with
    /// --now); each still acts at most once per task per entry into its state.
    #[command(after_help = "Example:\n  mailrules schedules run --now --at 2026-12-02T09:00:00Z")]
    Run {
        /// Run every schedule, whenever it last ran.
        #[arg(long)]
        now: bool,
        /// The time to run at (RFC 3339), instead of the clock: for tests.
        #[arg(long)]
        at: Option<String>,
        /// One JSON document on stdout instead of the table (keys in the docs).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Put failed mail (all, or the given ids) back in the queue.
    #[command(after_help = "Example:\n  mailrules outbox retry 7")]
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
    output::prepare(&cli.command);
    let result = match cli.command {
        Command::Run => run::run(&cli.config),
        Command::Serve { listen } => serve::serve(&cli.config, listen.as_deref()),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man => docs::man_page(),
        Command::Auth { mailbox, smtp } => auth::auth(&cli.config, mailbox.as_deref(), smtp),
        Command::Check { online } => check::check(&cli.config, online),
        Command::Ingest {
            paths,
            mailbox,
            json,
        } => ingest::ingest(&cli.config, &paths, &mailbox, json),
        Command::Explain {
            file,
            message,
            mailbox,
            json,
        } => explain::explain(&cli.config, file, message, &mailbox, json),
        Command::Test { paths, bless } => rule_tests::test(&cli.config, &paths, bless),
        Command::Task {
            command:
                TaskCommand::List {
                    status,
                    open,
                    assignee,
                    field,
                    search,
                    limit,
                    offset,
                    json,
                },
        } => {
            let args = tasks::ListArgs {
                status,
                open,
                assignee,
                field,
                search,
                limit,
                offset,
            };
            tasks::list(&cli.config, args, json)
        }
        Command::Task {
            command: TaskCommand::Show { id, all, json },
        } => tasks::show(&cli.config, id, all, json),
        Command::Task {
            command:
                TaskCommand::Set {
                    id,
                    status,
                    assignee,
                    fields,
                    author,
                },
        } => {
            let args = work::SetArgs {
                status,
                assignee,
                fields,
            };
            work::set(&cli.config, id, args, author.as_deref())
        }
        Command::Task {
            command: TaskCommand::Comment { id, text, author },
        } => work::comment(&cli.config, id, &text, author.as_deref()),
        Command::Task {
            command: TaskCommand::Close { id, author },
        } => work::close(&cli.config, id, author.as_deref()),
        Command::Task {
            command:
                TaskCommand::Reply {
                    id,
                    text,
                    cc,
                    author,
                    json,
                },
        } => work::reply(&cli.config, id, &text, &cc, author.as_deref(), json),
        Command::Task {
            command: TaskCommand::History { id, json },
        } => work::history(&cli.config, id, json),
        Command::Analytics {
            command: AnalyticsCommand::Show { name, format, json },
        } => analytics::analytics(
            &cli.config,
            &name,
            if json { ReportFormat::Json } else { format },
        ),
        Command::Report {
            table,
            by,
            period,
            format,
            json,
        } => {
            let format = if json { ReportFormat::Json } else { format };
            analytics::report(&cli.config, &table, &by, period, format)
        }
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
        Command::User { command } => match command {
            UserCommand::Add { email, name, role } => {
                users::add(&cli.config, &email, name.as_deref(), role.into())
            }
            UserCommand::List { json } => users::list(&cli.config, json),
            UserCommand::Remove { email } => users::remove(&cli.config, &email),
            UserCommand::Passwd { email } => users::passwd(&cli.config, &email),
            UserCommand::Token { email } => users::token(&cli.config, &email),
        },
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

/// Loads the rules, printing every error (file:line:col) when they do not load. A webhook
/// action naming no configured `[[webhook]]` is one of them, as in `check` and `run`: nothing
/// is queued for an endpoint that does not exist.
fn load_rules(config: &crate::config::Config) -> anyhow::Result<crate::rules::RuleSet> {
    let not_loaded = |errors: crate::rules::RuleErrors| {
        anyhow::anyhow!(
            "the rules in {} do not load:\n{errors}",
            config.rules.display()
        )
    };
    let rules = crate::rules::RuleSet::load_dir(&config.rules).map_err(not_loaded)?;
    let names: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
    let unknown = rules.check_webhooks(&names);
    if !unknown.is_empty() {
        return Err(not_loaded(crate::rules::RuleErrors(unknown)));
    }
    Ok(rules)
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
